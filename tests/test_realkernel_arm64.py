# SPDX-License-Identifier: GPL-2.0-or-later
"""A real arm64 Rust kernel tree, cross-built on this x86_64 machine with Debian's
gcc-aarch64-linux-gnu and rustc (tests/realkernel/build-arm64.sh): headers for another
architecture whose proc macros are built for this machine, as a cross build makes them. The
tool finds the kernel's target in arch/arm64/Makefile, test-compiles against the arm64 metadata,
hands the make arguments over, and a real module builds from them into an aarch64 .ko."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dkms_rustc.cli import main
from dkms_rustc.elfarch import elf_machine

pytestmark = [pytest.mark.realkernel, pytest.mark.usefixtures("no_system_config")]
TREE = Path(os.environ.get("DKMS_RUSTC_ARM64", "/var/cache/dkms-rustc-ci/arm64")) / "linux-7.2-arm64"
HELLO = Path(__file__).resolve().parent / "data" / "modules" / "hello"
AARCH64, X86_64 = 183, 62


def _tree() -> Path:
    if not (TREE / "rust" / "libkernel.rmeta").is_file():
        pytest.skip(f"no cross-built arm64 tree at {TREE}: run tests/realkernel/build-arm64.sh")
    if os.uname().machine != "x86_64" or shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("an x86_64 host with gcc-aarch64-linux-gnu")
    return TREE


def _conf(tmp_path: Path, search: str) -> Path:
    conf = tmp_path / "test.conf"
    conf.write_text(f"search_defaults = no\nsearch = {search}\ncache_dir = {tmp_path / 'cache'}\n")
    return conf


def test_check_recognises_the_cross_built_arm64_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = _tree()
    assert elf_machine(tree / "rust" / "libmacros.so") == X86_64  # built by HOSTRUSTC, for this host
    main(["check", "--kernel-dir", str(tree), "--config", str(_conf(tmp_path, "/usr/bin")), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "ok", data["messages"]
    assert data["selected"]["rustc"] == "/usr/bin/rustc"
    (proof,) = data["proofs"].values()
    assert proof["ok"] is True, proof  # compiled for aarch64-unknown-none against arm64 metadata
    assert not any("another architecture" in warning for warning in data["warnings"])


def test_another_rustc_is_refused_for_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import kerneltree

    tree = _tree()
    kerneltree.need("stable")
    stable = kerneltree.find_real_toolchains()["stable"]
    conf = _conf(tmp_path, str(stable.sysroot))
    main(["check", "--kernel-dir", str(tree), "--config", str(conf), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "refused", data["messages"]


def test_a_module_builds_for_arm64_from_the_handed_over_arguments(tmp_path: Path) -> None:
    tree = _tree()
    build = tmp_path / "hello"
    shutil.copytree(HELLO, build)
    conf = _conf(tmp_path, "/usr/bin")
    assert (
        main(["pre-build", "--kernel-dir", str(tree), "--build-dir", str(build), "--config", str(conf)]) == 0
    )
    words = (build / "dkms-rustc.make-args").read_text().split()
    assert "RUSTC=/usr/bin/rustc" in words
    made = subprocess.run(
        [
            "make",
            "-C",
            str(tree),
            f"M={build}",
            "ARCH=arm64",
            "CROSS_COMPILE=aarch64-linux-gnu-",
            *words,
            "modules",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    assert elf_machine(build / "hello.ko") == AARCH64
