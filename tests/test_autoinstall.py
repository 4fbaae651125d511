# SPDX-License-Identifier: GPL-2.0-or-later
"""``auto_install = rustup``, driven with a STAND-IN rustup program (this machine has no network,
so a real ``rustup toolchain install`` cannot download anything). The stand-in records how it
was called and "installs" a toolchain by linking a real toolchain already on this machine into
the configured rustup home, which is what a real install leaves behind: the decision that
follows examines it like any other toolchain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import kerneltree
from dkms_rustc import config
from dkms_rustc.cli import main
from dkms_rustc.exitcodes import ExitCode

TOOLCHAINS = kerneltree.find_real_toolchains()

STAND_IN = """#!/bin/sh
# stand-in for rustup: records argv and environment, "installs" by linking a real toolchain
printf '%s\\n' "$*" >> {log}
printf 'RUSTUP_HOME=%s CARGO_HOME=%s\\n' "$RUSTUP_HOME" "$CARGO_HOME" >> {log}
[ "$1 $2" = "toolchain install" ] || exit 2
case "$3" in
    {accept}) ;;
    *) echo "error: toolchain '$3' is not available" >&2; exit 1 ;;
esac
mkdir -p "$RUSTUP_HOME/toolchains"
ln -s {source} "$RUSTUP_HOME/toolchains/$3-x86_64-unknown-linux-gnu"
"""


_need = kerneltree.need


def _setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, accept: str, auto: str = "rustup"
) -> tuple[Path, Path]:
    log = tmp_path / "rustup.log"
    rustup = tmp_path / "bin" / "rustup"
    rustup.parent.mkdir()
    rustup.write_text(STAND_IN.format(log=log, accept=accept, source=TOOLCHAINS[source].rustc.parent.parent))
    rustup.chmod(0o755)
    system = tmp_path / "dkms-rustc.conf"
    system.write_text(
        f"cache_dir = {tmp_path / 'cache'}\nsearch_defaults = no\nauto_install = {auto}\n"
        f"rustup = {rustup}\nrustup_home = {tmp_path / 'rustup-home'}\n"
    )
    system.chmod(0o644)
    monkeypatch.setattr(config, "SYSTEM_CONFIG", system)
    return log, tmp_path / "rustup-home"


def _check(capsys: pytest.CaptureFixture[str], tree: Path) -> tuple[int, dict[str, Any]]:
    """Decide as a build would (pre-build, env and the kernel hook may install; check may not)."""
    from dkms_rustc.cache import Cache
    from dkms_rustc.engine import Request, assess
    from dkms_rustc.report import as_json

    settings = config.load(None, None)
    assessment = assess(
        Request(kernel_dir=tree, kernelrelease=None, may_install=True), settings, Cache(settings.cache_dir)
    )
    data = as_json(assessment)
    return int(data["exit_code"]), data


def test_check_reports_but_never_installs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("stable")
    log, _ = _setup(tmp_path, monkeypatch, "stable", accept=TOOLCHAINS["stable"].release)
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"])
    assert main(["check", "--json", "--kernel-dir", str(tree)]) == ExitCode.REFUSED
    json.loads(capsys.readouterr().out)
    assert not log.exists()


def test_installs_the_kernels_official_release_then_selects_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("stable")
    version = TOOLCHAINS["stable"].release
    log, home = _setup(tmp_path, monkeypatch, "stable", accept=version)
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"])
    code, data = _check(capsys, tree)
    assert code == 0, data["messages"]
    assert data["selected"]["rustc"] == str(TOOLCHAINS["stable"].rustc.resolve())
    calls = log.read_text().splitlines()
    assert calls[0] == f"toolchain install {version} --profile minimal --no-self-update"
    assert calls[1] == f"RUSTUP_HOME={home} CARGO_HOME={home / 'cargo'}"
    assert any(f"auto_install: installed rustup toolchain {version}" in line for line in data["messages"])


def test_nightly_tries_the_day_after_then_the_commit_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("nightly")
    from dkms_rustc.versions import parse_rustc_version

    parsed = parse_rustc_version(TOOLCHAINS["nightly"].version_text)
    assert parsed is not None and parsed.date
    log, _ = _setup(tmp_path, monkeypatch, "nightly", accept=f"nightly-{parsed.date}")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["nightly"])
    code, data = _check(capsys, tree)
    assert code == 0, data["messages"]
    installs = [line for line in log.read_text().splitlines() if line.startswith("toolchain")]
    assert len(installs) == 2 and installs[1].startswith(f"toolchain install nightly-{parsed.date} ")
    assert installs[0] != installs[1]


def test_an_install_that_brings_the_wrong_compiler_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("stable", "nightly")
    # the stand-in "installs" nightly whatever it is asked for
    _setup(tmp_path, monkeypatch, "nightly", accept="*")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"])
    code, data = _check(capsys, tree)
    assert code == ExitCode.REFUSED
    assert data["verdict"] == "refused"


def test_distribution_builds_are_not_attempted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("debian", "stable")
    if "source tarball" not in TOOLCHAINS["debian"].version_text:
        pytest.skip("/usr/bin/rustc is not a distribution build")
    log, _ = _setup(tmp_path, monkeypatch, "stable", accept="*")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["debian"])
    code, data = _check(capsys, tree)
    assert code == ExitCode.REFUSED
    assert not log.exists()
    assert any("not an official Rust release build" in w for w in data["warnings"])


def test_off_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("stable")
    log, _ = _setup(tmp_path, monkeypatch, "stable", accept="*", auto="no")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"])
    code, _ = _check(capsys, tree)
    assert code == ExitCode.REFUSED
    assert not log.exists()
    assert config.Settings().auto_install == "no"


def test_only_the_system_file_can_switch_it_on(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigFileError, match="honoured only in"):
        config.parse("auto_install = rustup", "x.conf", None, system=False, base=config.Settings())
