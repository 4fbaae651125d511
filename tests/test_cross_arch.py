# SPDX-License-Identifier: GPL-2.0-or-later
"""Headers of another architecture: a kernel tree whose proc macro (rust/libmacros.so) is
arm64 code, on this x86_64 machine. The metadata is the real compiler's (tests/kerneltree.py);
the arm64 shared object is a real one, built by Debian's gcc-aarch64-linux-gnu (a C library: what
matters is that it is aarch64 code no compiler here can load). The tool names it as such, and
does not report a failed test compile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import kerneltree
from dkms_rustc.cli import main
from dkms_rustc.elfarch import elf_machine, foreign_objects, machine_name

pytestmark = pytest.mark.usefixtures("no_system_config")
CROSS_GCC = "aarch64-linux-gnu-gcc"


def _aarch64_shared_object(directory: Path) -> Path:
    if shutil.which(CROSS_GCC) is None:
        pytest.skip(f"needs {CROSS_GCC} (.ci/run installs gcc-aarch64-linux-gnu)")
    source = directory / "macros.c"
    source.write_text("int dkms_rustc_test_macro(void) { return 42; }\n")
    target = directory / "libmacros.so"
    # -nostdlib: the cross compiler alone, without an arm64 C library.
    subprocess.run([CROSS_GCC, "-shared", "-fPIC", "-nostdlib", "-o", str(target), str(source)], check=True)
    return target


def test_elf_machine_of_real_files(tmp_path: Path) -> None:
    assert elf_machine(Path("/bin/sh")) == 62 or os.uname().machine != "x86_64"
    assert elf_machine(_aarch64_shared_object(tmp_path)) == 183
    assert machine_name(183) == "aarch64"
    (tmp_path / "text").write_text("not an ELF file, though longer than twenty bytes\n")
    assert elf_machine(tmp_path / "text") is None
    assert elf_machine(tmp_path / "missing") is None
    big_endian = b"\x7fELF\x02\x02\x01" + b"\x00" * 9 + b"\x00\x03\x00\x16"  # s390x
    (tmp_path / "s390").write_bytes(big_endian)
    assert elf_machine(tmp_path / "s390") == 22


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the arm64 headers are foreign only on x86_64")
def test_arm64_headers_on_an_x86_64_host_are_named_not_a_failed_test_compile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kerneltree.need("stable")
    stable = kerneltree.find_real_toolchains()["stable"]
    tree = kerneltree.make_kernel_tree(tmp_path / "build", stable, kernelrelease="7.2.0-arm64")
    foreign = _aarch64_shared_object(tmp_path)
    shutil.copy2(foreign, tree / "rust" / "libmacros.so")
    assert foreign_objects([tree / "rust" / "libmacros.so"]) == [(tree / "rust" / "libmacros.so", 183)]
    conf = tmp_path / "test.conf"
    conf.write_text(f"search_defaults = no\nsearch = {stable.sysroot}\n")
    main(["check", "--kernel-dir", str(tree), "--config", str(conf), "--no-cache", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "ok", data["messages"]  # the rustc is the kernel's: selected
    (proof,) = data["proofs"].values()
    assert proof["skipped"] is True and proof["ok"] is False
    assert "headers for another architecture" in proof["detail"]
    assert "(libmacros.so) are aarch64 code and this machine is x86_64" in proof["detail"]
    assert any("another architecture" in warning for warning in data["warnings"])
    assert not any("failed" in line for line in data["messages"]), data["messages"]


def test_same_architecture_proc_macros_are_test_compiled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kerneltree.need("stable")
    stable = kerneltree.find_real_toolchains()["stable"]
    tree = kerneltree.make_kernel_tree(tmp_path / "build", stable, kernelrelease="7.2.0-native")
    assert foreign_objects(sorted((tree / "rust").glob("*.so"))) == []
    conf = tmp_path / "test.conf"
    conf.write_text(f"search_defaults = no\nsearch = {stable.sysroot}\n")
    main(["check", "--kernel-dir", str(tree), "--config", str(conf), "--no-cache", "--json"])
    (proof,) = json.loads(capsys.readouterr().out)["proofs"].values()
    assert proof["ok"] is True
