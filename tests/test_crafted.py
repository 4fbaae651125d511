# SPDX-License-Identifier: GPL-2.0-or-later
"""Crafted inputs of issue 11 that need more than one command or a real process to show.

(The single-command ones are cases of tests/test_bad_inputs.py.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import syslog
from pathlib import Path

import pytest

import planted
from conftest import isolate, write_config
from dkms_rustc import logsink
from dkms_rustc.cli import main
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.handoff import ARGS_FILE, REFUSAL_FILE, HandoffError, check_words
from dkms_rustc.versions import parse_rustc_version, release_numbers, rustup_toolchain_names

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tmp_path.chmod(0o755)
    isolate(monkeypatch, tmp_path)
    return tmp_path


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_dkms_version_with_a_tilde_gets_the_hooks_own_refusal(base: Path) -> None:
    """``1.0~rc1``: the refusal makefile is written there, and make prints the hook's reason
    (not the generic hook-did-not-run fallback)."""
    tree = planted.synthetic_kernel_tree(base / "tree")
    build = base / "dkms" / "hello" / "1.0~rc1" / "build"
    build.mkdir(parents=True)
    code = main(
        [
            "pre-build",
            "--kernel-dir",
            str(tree),
            "--build-dir",
            str(build),
            "--config",
            str(write_config(base)),
        ]
    )
    assert code == ExitCode.REFUSED
    assert (build / REFUSAL_FILE).is_file()
    assert (build / ARGS_FILE).read_text() == f"-f {build / REFUSAL_FILE}\n"
    line = (ROOT / "dkms" / "dkms.conf.snippet").read_text().split("MAKE[0]='", 1)[1].split("'\n", 1)[0]
    env = {**os.environ, "kernel_source_dir": str(tree), "dkms_tree": str(base / "dkms"),
           "PACKAGE_NAME": "hello", "PACKAGE_VERSION": "1.0~rc1"}  # fmt: skip
    result = subprocess.run(
        ["sh", "-c", line.replace("\\$", "$")], cwd=build, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "no rustc found" in result.stdout + result.stderr or "no installed rustc matches" in result.stdout
    assert "hook-did-not-run" not in result.stderr


def test_a_matching_rustc_under_a_path_with_a_space_is_passed_over_alike_by_check_and_pre_build(
    base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """First on PATH, root-owned, the kernel's version: but make cannot be handed its path.
    check and pre-build agree on the equally matching one with a plain path."""
    tree = planted.synthetic_kernel_tree(base / "tree")
    marker = base / "MARKER"
    spaced = planted.fake_toolchain(base / "tool chain", planted.SYNTHETIC_VERSION, marker)
    plain = planted.fake_toolchain(base / "plain", planted.SYNTHETIC_VERSION, marker)
    monkeypatch.setenv("PATH", f"{spaced / 'bin'}:{plain / 'bin'}:/usr/bin:/bin")
    conf = base / "test.conf"
    conf.write_text(f"cache_dir = {base / 'cache'}\n")  # search_defaults = yes: PATH is searched
    assert main(["check", "-v", "--kernel-dir", str(tree), "--config", str(conf)]) == 0
    checked = capsys.readouterr().out
    assert f"from {plain / 'bin' / 'rustc'}" in checked
    build = base / "build"
    build.mkdir()
    assert (
        main(["pre-build", "--kernel-dir", str(tree), "--build-dir", str(build), "--config", str(conf)]) == 0
    )
    assert f"RUSTC={plain / 'bin' / 'rustc'} " in (build / ARGS_FILE).read_text()
    assert f"{spaced / 'bin' / 'rustc'} [PATH]: skipped: unusable: its path" in checked
    assert "the DKMS MAKE line cannot carry" in checked


def test_a_trailing_newline_is_not_a_plain_word() -> None:
    with pytest.raises(HandoffError):
        check_words(["BINDGEN=/usr/bin/bindgen-0.72\n"])
    check_words(["RUSTC=/var/lib/dkms/m/1.0~rc1/x"])  # ~: no expansion in $(cat ...)'s output


@pytest.mark.parametrize("command", ["check", "status", "config"])
def test_a_terminal_that_cannot_encode_the_output_gets_escapes_not_nothing(command: str, base: Path) -> None:
    tree = planted.synthetic_kernel_tree(base / "trée")
    toolchain = planted.fake_toolchain(base / "tc", planted.SYNTHETIC_VERSION, base / "MARKER")
    conf = write_config(base, f"search = {toolchain}\n")
    argv = {
        "check": ["check", "--kernel-dir", str(tree), "--config", str(conf)],
        "status": [
            "status",
            "-v",
            "--kernel-dir",
            str(tree),
            "--config",
            str(conf),
            "--dkms-tree",
            str(base),
        ],
        "config": ["config", "--config", str(conf)],
    }[command]
    result = subprocess.run(
        planted.hook_argv(*argv), capture_output=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(SRC), "PYTHONIOENCODING": "ascii", "LC_ALL": "C"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr and b"internal error" not in result.stdout + result.stderr
    if command != "config":
        assert b"tr\\xe9e" in result.stdout  # the name, escaped
    assert result.stdout.strip()


def test_syslog_gets_no_control_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    monkeypatch.setattr(syslog, "openlog", lambda *args, **kwargs: None)
    monkeypatch.setattr(syslog, "closelog", lambda: None)
    monkeypatch.setattr(syslog, "syslog", lambda priority, message: sent.append(message))
    logsink.send(["ERROR: x\x1b]0;owned\x07\r\ny", "warning: \x1b[2J"], failed=True, context="module m\x1b")
    assert sent and all(message.isprintable() for message in sent), sent
    assert "\\x1b" in sent[0]


def test_a_nightly_date_that_is_no_date() -> None:
    assert parse_rustc_version("rustc 1.97.0-nightly (e50aa6fba 2026-02-30)") is None
    assert parse_rustc_version("rustc 1.97.0-nightly (e50aa6fba 2028-02-29)") is not None  # a leap day
    version = parse_rustc_version("rustc 1.97.0-nightly (e50aa6fba 2026-02-28)")
    assert version is not None
    object.__setattr__(version, "date", "2026-02-30")  # as if parsing ever let one through
    assert rustup_toolchain_names(version) == []


def test_numbers_of_more_than_nine_digits_are_no_version() -> None:
    assert release_numbers("1" * 5000 + ".0.0") is None
    assert release_numbers("1.2.3") == (1, 2, 3)
    assert parse_rustc_version("rustc 1." + "9" * 5000 + ".0") is None


def test_status_says_when_the_match_failed_its_test_compile(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = planted.synthetic_kernel_tree(base / "tree")
    broken = planted.fake_toolchain(
        base / "tc", planted.SYNTHETIC_VERSION, base / "MARKER", behaviour="compile-crash"
    )
    conf = write_config(base)
    code = main(["status", "--kernel-dir", str(tree), "--config", str(conf), "--search", str(broken),
                 "--dkms-tree", str(base)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == ExitCode.REFUSED
    assert "the matching rustc failed the test compile" in out
    assert "none matches" not in out


def test_a_group_writable_directory_of_group_root_is_refused(tmp_path: Path) -> None:
    from dkms_rustc.trust import untrusted_reason

    tmp_path.chmod(0o755)
    binary = tmp_path / "bin" / "rustc"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    os.chown(binary.parent, 0, 0)
    binary.parent.chmod(0o775)
    assert "is writable by group 0" in (untrusted_reason(binary, euid=0) or "")
