# SPDX-License-Identifier: GPL-2.0-or-later
"""Fail closed: whatever breaks inside dkms-rustc, make never builds with a stale or default rustc.

A crash is injected at each step of pre-build (reading the tree, discovery, probing, the test
compile, the decision, the report, writing the hand-off, an interrupt) after an earlier run
left ``RUSTC=/stale/rustc`` in dkms-rustc.make-args; then the documented MAKE line
(dkms/dkms.conf.snippet, verbatim) runs with the real make, and must stop with the hook's
message. ``env`` prints a stop; the kernel hook never blocks the kernel upgrade; a hook that
is killed outright leaves no arguments at all.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import planted
from conftest import isolate
from dkms_rustc import decision, engine, report
from dkms_rustc.cli import main
from dkms_rustc.commands import pre_build
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.handoff import ARGS_FILE, REFUSAL_FILE

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
INTERNAL = ExitCode.INTERNAL_ERROR
STALE = "RUSTC=/stale/rustc HOSTRUSTC=/stale/rustc\n"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make_line() -> str:
    """The MAKE[0] value of the documented snippet, as DKMS evaluates it (``\\$`` -> ``$``)."""
    for line in (ROOT / "dkms" / "dkms.conf.snippet").read_text().splitlines():
        if line.startswith("MAKE[0]='"):
            return line[len("MAKE[0]='") : -1].replace("\\$", "$")
    raise AssertionError("no MAKE[0] line in the snippet")


class Setup:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.tree = planted.synthetic_kernel_tree(base / "tree")
        self.marker = base / "MARKER"
        self.toolchain = planted.fake_toolchain(base / "tc", planted.SYNTHETIC_VERSION, self.marker)
        self.conf = base / "test.conf"
        self.conf.write_text(f"cache_dir = {base / 'cache'}\nsearch_defaults = no\n")
        self.dkms_tree = base / "dkms"
        self.build = self.dkms_tree / "hello" / "1.0" / "build"
        self.build.mkdir(parents=True)
        (self.build / ARGS_FILE).write_text(STALE)
        # What make -C reaches when the arguments do not stop it: it says what it compiled with.
        self.kernel_make = base / "kernel-make"
        self.kernel_make.mkdir()
        (self.kernel_make / "Makefile").write_text("all:\n\t@echo COMPILED with $(RUSTC)\n")

    def argv(self) -> list[str]:
        return ["pre-build", "--kernel-dir", str(self.tree), "--build-dir", str(self.build),
                "--config", str(self.conf), "--search", str(self.toolchain)]  # fmt: skip

    def make(self) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "kernel_source_dir": str(self.kernel_make),
            "dkms_tree": str(self.dkms_tree),
            "PACKAGE_NAME": "hello",
            "PACKAGE_VERSION": "1.0",
        }
        return subprocess.run(
            ["sh", "-c", _make_line()], cwd=self.build, env=env, capture_output=True, text=True, timeout=60
        )


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    tmp_path.chmod(0o755)
    isolate(monkeypatch, tmp_path)
    return Setup(tmp_path)


def test_positive_control_the_make_line_uses_what_the_hook_wrote(setup: Setup) -> None:
    assert main(setup.argv()) == 0
    result = setup.make()
    assert result.returncode == 0, result.stderr
    assert f"COMPILED with {setup.toolchain / 'bin' / 'rustc'}" in result.stdout


def test_positive_control_stale_arguments_would_be_used(setup: Setup) -> None:
    """Without a hook run, make does use what the file says: the stale compiler."""
    result = setup.make()
    assert "COMPILED with /stale/rustc" in result.stdout


def _raise(error: BaseException) -> Callable[..., object]:
    def fail(*args: object, **kwargs: object) -> object:
        raise error

    return fail


POINTS: dict[str, tuple[object, str]] = {
    "reading the kernel tree": (engine, "read_kernel"),
    "discovering toolchains": (engine, "discover"),
    "probing the compilers": (engine, "probe_all"),
    "the test compile": (engine, "prove"),
    "the decision": (decision, "decide"),
    "the report": (report, "human_lines"),
    "writing the arguments": (pre_build, "write_selection"),
}


@pytest.mark.parametrize("interrupt", [False, True], ids=["crash", "interrupt"])
@pytest.mark.parametrize("point", list(POINTS))
def test_a_crash_at_any_point_stops_make(
    point: str,
    interrupt: bool,
    setup: Setup,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    owner, name = POINTS[point]
    error: BaseException = KeyboardInterrupt() if interrupt else RuntimeError(f"injected into {point}")
    monkeypatch.setattr(owner, name, _raise(error))
    code = main(setup.argv())
    err = capsys.readouterr().err
    assert code == (ExitCode.INTERRUPTED if interrupt else INTERNAL), err
    assert ("interrupted" if interrupt else "internal error (RuntimeError") in err
    assert "Traceback" not in err
    assert "/stale/" not in (setup.build / ARGS_FILE).read_text()
    assert (setup.build / REFUSAL_FILE).exists()
    result = setup.make()
    assert result.returncode != 0
    assert "COMPILED" not in result.stdout
    said = result.stdout + result.stderr  # $(info) lines go to stdout, $(error) to stderr
    assert "dkms-rustc pre-build " + ("interrupted" if interrupt else "internal error") in said
    assert "this module build was stopped before compiling" in result.stderr


def test_when_even_the_refusal_cannot_be_written_no_arguments_are_left(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(engine, "read_kernel", _raise(RuntimeError("injected")))
    monkeypatch.setattr(pre_build, "write_refusal", _raise(OSError("disk full")))
    assert main(setup.argv()) == INTERNAL
    assert not (setup.build / ARGS_FILE).exists()
    result = setup.make()
    assert result.returncode != 0 and "COMPILED" not in result.stdout
    assert "dkms-rustc-PRE_BUILD-hook-did-not-run" in result.stderr


def test_a_hook_killed_outright_leaves_no_arguments(setup: Setup) -> None:
    """SIGKILL while it waits for a hanging compiler: the stale file is already gone."""
    planted.fake_toolchain(setup.base / "hang", planted.SYNTHETIC_VERSION, setup.marker, behaviour="hang")
    argv = [*setup.argv(), "--search", str(setup.base / "hang"), "--no-cache"]
    process = subprocess.Popen(
        planted.hook_argv(*argv), env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (setup.marker.exists() and "-vV" in setup.marker.read_text()):  # it is waiting now
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert not (setup.build / ARGS_FILE).exists()
    result = setup.make()
    assert result.returncode != 0 and "COMPILED" not in result.stdout
    assert "dkms-rustc-PRE_BUILD-hook-did-not-run" in result.stderr


@pytest.mark.parametrize("point", ["reading the kernel tree", "the decision"])
def test_env_prints_a_stop_on_a_crash(
    point: str, setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    owner, name = POINTS[point]
    monkeypatch.setattr(owner, name, _raise(RuntimeError("injected")))
    code = main(["env", "--kernel-dir", str(setup.tree), "--config", str(setup.conf),
                 "--search", str(setup.toolchain), "--module", "hello"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == INTERNAL and "internal error" in err
    assert "DKMS_RUSTC_STOP" in out
    # As DKMS's build_environment is used: sourced by a shell, then make runs.
    result = subprocess.run(
        ["sh", "-c", f"{out}\nexec make -s -C {setup.kernel_make}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "COMPILED" not in result.stdout
    assert "dkms-rustc: internal error RuntimeError" in result.stderr


def _hook_setup(setup: Setup, fail: bool) -> list[str]:
    source = setup.dkms_tree / "hello" / "1.0" / "source"
    source.mkdir(parents=True)
    (source / "dkms.conf").write_text('PRE_BUILD="dkms-rustc-pre-build ${kernel_source_dir}"\n')
    setup.conf.write_text(setup.conf.read_text() + ("kernel_hook_fail = yes\n" if fail else ""))
    return ["check", "-k", "7.2.0-synthetic", "--kernel-hook", "--config", str(setup.conf),
            "--search", str(setup.toolchain), "--dkms-tree", str(setup.dkms_tree),
            "--modules-dir", str(setup.base / "modules")]  # fmt: skip


@pytest.mark.parametrize("fail", [False, True], ids=["default", "kernel_hook_fail = yes"])
def test_the_kernel_hook_never_blocks_on_a_crash(
    fail: bool, setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (setup.base / "modules" / "7.2.0-synthetic").mkdir(parents=True)
    (setup.base / "modules" / "7.2.0-synthetic" / "build").symlink_to(setup.tree)
    argv = _hook_setup(setup, fail)
    monkeypatch.setattr(engine, "read_kernel", _raise(RuntimeError("injected")))
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "kernel hook: dkms-rustc failed (internal error RuntimeError); the kernel upgrade goes on" in err


def test_the_kernel_hook_script_with_a_crashing_tool(setup: Setup, tmp_path: Path) -> None:
    """The installed hook (dkms/kernel/50-dkms-rustc) with a tool that crashes on start."""
    launcher = tmp_path / "dkms-rustc"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'raise SystemExit(1/0)' \"$@\"\n")
    launcher.chmod(0o755)
    result = subprocess.run(
        ["sh", str(ROOT / "dkms" / "kernel" / "50-dkms-rustc"), "7.2.0-synthetic"],
        env={**os.environ, "DKMS_RUSTC": str(launcher)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0
