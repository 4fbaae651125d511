# SPDX-License-Identifier: GPL-2.0-or-later
"""``dkms-rustc upgrade-check`` in-process: the state a transaction starts from, what it lost,
and what is said about it. The compiler is a hard-linked copy of rustup's real stable
toolchain, so "the transaction removed it" is the copy being deleted, and the kernel's
metadata was written by the real compiler (tests/kerneltree.py). The real package managers
run it in test_apt_hook.py and test_alpm_hooks.py."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import kerneltree
from dkms_rustc.cache import Cache
from dkms_rustc.cli import main
from dkms_rustc.exitcodes import ExitCode

pytestmark = pytest.mark.usefixtures("no_system_config")
ROOT = Path(__file__).resolve().parents[1]
RELEASE = "7.2.0-upgradetest"


def _world(tmp_path: Path, rust_module: bool = True, extra_conf: str = "") -> tuple[list[str], Path]:
    kerneltree.need("stable")
    stable = kerneltree.find_real_toolchains()["stable"]
    modules = tmp_path / "modules"
    kerneltree.make_kernel_tree(modules / RELEASE / "build", stable, kernelrelease=RELEASE)
    # The real compiler binary in its own directory; its libraries (../lib) are rustup's.
    toolchain = tmp_path / "toolchain"
    (toolchain / "bin").mkdir(parents=True)
    shutil.copy2(stable.rustc, toolchain / "bin" / "rustc")
    (toolchain / "lib").symlink_to(stable.sysroot / "lib")
    source = tmp_path / "dkms" / "hello" / "1.0" / "source"
    source.mkdir(parents=True)
    line = 'PRE_BUILD="dkms-rustc-pre-build ${kernel_source_dir}"' if rust_module else 'MAKE[0]="make"'
    (source / "dkms.conf").write_text(f'PACKAGE_NAME="hello"\n{line}\n')
    conf = tmp_path / "test.conf"
    conf.write_text(
        f"search_defaults = no\nsearch = {toolchain}\ncache_dir = {tmp_path / 'cache'}\n{extra_conf}"
    )
    options = ["--modules-dir", str(modules), "--dkms-tree", str(tmp_path / "dkms"), "--dkms-etc",
               str(tmp_path / "etc"), "--config", str(conf)]  # fmt: skip
    return options, toolchain


def _run(options: list[str], when: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["upgrade-check", when, *options])
    return code, capsys.readouterr().err


def test_a_transaction_that_removes_the_kernels_rustc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options, toolchain = _world(tmp_path)
    assert _run(options, "--before", capsys) == (ExitCode.OK, "")  # silent before
    shutil.rmtree(toolchain)
    code, err = _run(options, "--after", capsys)
    assert code == ExitCode.OK
    lines = err.splitlines()
    assert lines[0] == "dkms-rustc: " + "*" * 72 and lines[-1] == lines[0]
    assert f"removed or replaced the rustc that kernel {RELEASE} needs" in lines[1]
    assert "hello/1.0 will NOT build" in lines[1]
    assert f"before this transaction that was {toolchain}/bin/rustc" in lines[2]
    assert any(line.startswith("dkms-rustc: fix: ") for line in lines)


def test_nothing_lost_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options, _ = _world(tmp_path, extra_conf="package_hook_fail = yes\n")
    _run(options, "--before", capsys)
    code, err = _run(options, "--after", capsys)
    assert code == ExitCode.OK
    assert err.splitlines() == [
        "dkms-rustc: upgrade check: the Rust DKMS modules (hello/1.0) can still be built for 1 of 1 "
        "installed kernels, as before this transaction"
    ]


def test_package_hook_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options, toolchain = _world(tmp_path, extra_conf="package_hook_fail = yes\n")
    _run(options, "--before", capsys)
    shutil.rmtree(toolchain)
    code, err = _run(options, "--after", capsys)
    assert code == ExitCode.HOOK_FAILED
    assert "package_hook_fail = yes" in err.splitlines()[-1]


def test_a_kernel_that_could_not_build_before_is_not_blamed_on_the_transaction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options, toolchain = _world(tmp_path)
    shutil.rmtree(toolchain)
    _run(options, "--before", capsys)
    code, err = _run(options, "--after", capsys)
    assert code == ExitCode.OK
    assert "WARNING" not in err and "can still be built for 0 of 1" in err


def test_without_a_before_record_every_kernel_without_its_rustc_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options, toolchain = _world(tmp_path)
    shutil.rmtree(toolchain)
    code, err = _run(options, "--after", capsys)  # the hook before the transaction did not run
    assert code == ExitCode.OK
    assert f"WARNING: no installed rustc is the one kernel {RELEASE} needs" in err
    assert "before this transaction that was" not in err  # nothing is known about before


def test_a_damaged_before_record_is_ignored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options, toolchain = _world(tmp_path)
    _run(options, "--before", capsys)
    cache = Cache(tmp_path / "cache")
    key = [str(tmp_path / "modules")]
    assert isinstance(cache.get("upgrade-check", key), dict)  # what --before wrote
    cache.put("upgrade-check", key, {"7.2.0": "not a state"})
    shutil.rmtree(toolchain)
    code, err = _run(options, "--after", capsys)
    assert code == ExitCode.OK
    assert f"kernel {RELEASE} needs" in err  # treated as no record: the kernel is still named
    assert cache.get("upgrade-check", key) is None  # and the record is cleared


def test_silent_without_rust_modules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options, toolchain = _world(tmp_path, rust_module=False, extra_conf="package_hook_fail = yes\n")
    assert _run(options, "--before", capsys) == (ExitCode.OK, "")
    shutil.rmtree(toolchain)
    assert _run(options, "--after", capsys) == (ExitCode.OK, "")


def test_an_unusable_configuration_never_breaks_a_transaction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("policy = sometimes\n")
    code, err = _run(["--config", str(bad), "--modules-dir", str(tmp_path)], "--after", capsys)
    assert code == ExitCode.OK
    assert err.startswith("dkms-rustc: upgrade check: ") and err.rstrip().endswith("nothing checked")


def test_the_hook_scripts_know_the_hook_failed_code() -> None:
    code = str(int(ExitCode.HOOK_FAILED))
    plugin = (ROOT / "dkms" / "kernel" / "38-dkms-rustc.install").read_text()
    assert re.findall(r'"\$status" -eq (\d+)', plugin) == [code]
    alpm = (ROOT / "dkms" / "alpm" / "dkms-rustc-alpm").read_text()
    assert re.findall(r"\[ \$\? -ne (\d+) \]", alpm) == [code, code, code]
    apt = (ROOT / "dkms" / "apt" / "50dkms-rustc").read_text()
    assert re.findall(r"\[ \$\? -ne (\d+) \]", apt) == [code]


@pytest.mark.parametrize(
    ("configured", "touched", "expected"),
    [(True, True, ExitCode.HOOK_FAILED), (True, False, ExitCode.OK), (False, True, ExitCode.OK)],
)
def test_before_stops_a_transaction_only_when_configured_and_it_changes_the_kernels_rustc(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    configured: bool,
    touched: bool,
    expected: ExitCode,
) -> None:
    import io

    options, toolchain = _world(tmp_path, extra_conf="package_hook_fail = yes\n" if configured else "")
    changing = str(toolchain / "bin" / "rustc") if touched else "usr/bin/some-other-tool"
    monkeypatch.setattr("sys.stdin", io.StringIO(changing.lstrip("/") + "\n"))
    code = main(["upgrade-check", "--before", "--changing-stdin", *options])
    err = capsys.readouterr().err
    assert code == expected
    if expected is ExitCode.HOOK_FAILED:
        assert f"STOPPED: this package transaction would remove or replace {toolchain}/bin/rustc" in err
        assert "stopping the transaction" in err
    else:
        assert err == ""
