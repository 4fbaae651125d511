# SPDX-License-Identifier: GPL-2.0-or-later
"""The pacman hooks of the Arch package, run by the real pacman (6.0) in a scratch root where
``pacman -U --root`` installed the package built with makepkg: alpm reads the hooks from the
root's /usr/share/libalpm/hooks and runs them chrooted into it.

The packages the transactions install, upgrade and remove are scratch packages made here
(a .PKGINFO and the files, archived with bsdtar as makepkg does): ``linux-headers`` holding a
kernel tree whose Rust metadata a real compiler wrote, and ``rust`` owning /usr/bin/rustc,
first a copy of Debian's real rustc (the compiler the kernel was built with), then, as the
rolling upgrade, a link to rustup's real stable rustc (another compiler)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import kerneltree
from distro_world import (
    RELEASE,
    TOOLCHAINS,
    arch_package,
    need_scratch_root,
    pacman_args,
    pacman_install,
    populate,
)
from scratchroot import ScratchRoot

pytestmark = pytest.mark.root


def scratch_package(directory: Path, name: str, version: str, files: dict[str, Path | str]) -> Path:
    """A pacman package: ``files`` maps a path in the package to a file to copy, or to
    ``"-> TARGET"`` for a symbolic link, or to a directory to copy whole."""
    stage = directory / f"{name}-{version}"
    stage.mkdir(parents=True)
    for inside, source in files.items():
        target = stage / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, str):
            os.symlink(source.removeprefix("-> "), target)
        elif source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target)
    (stage / ".PKGINFO").write_text(
        f"pkgname = {name}\npkgbase = {name}\npkgver = {version}\npkgdesc = scratch package for a test\n"
        "url = https://dkms-rustc.invalid/\nbuilddate = 1700000000\npackager = tests\n"
        "size = 1\narch = x86_64\n"
    )
    package = directory / f"{name}-{version}-x86_64.pkg.tar.gz"
    entries = [".PKGINFO", *sorted({inside.lstrip("/").split("/")[0] for inside in files})]
    subprocess.run(["bsdtar", "-czf", str(package), "-C", str(stage), *entries], check=True)
    return package


def _root(tmp_path: Path, extra_conf: str = "") -> ScratchRoot:
    need_scratch_root("makepkg", "pacman", "bsdtar")
    kerneltree.need("debian", "stable")
    root = ScratchRoot(tmp_path / "arch")
    installed = pacman_install(root, arch_package())
    assert installed.returncode == 0, installed.stdout + installed.stderr
    populate(root, None, "/usr/bin", extra_conf)
    return root


def _pacman(root: ScratchRoot, *args: str) -> tuple[int, str]:
    result = root.outside(*pacman_args(root), *args)
    return result.returncode, result.stdout + result.stderr


def _headers(tmp_path: Path, toolchain: str) -> Path:
    tree = kerneltree.make_kernel_tree(
        tmp_path / "tree" / "build", TOOLCHAINS[toolchain], kernelrelease=RELEASE
    )
    return scratch_package(
        tmp_path / "pkgs", "linux-headers", "7.2.0-1", {f"/usr/lib/modules/{RELEASE}/build": tree}
    )


def test_kernel_headers_hook_one_line_when_fine(tmp_path: Path) -> None:
    root = _root(tmp_path, "kernel_hook_fail = yes\n")
    code, output = _pacman(root, "-U", "-dd", str(_headers(tmp_path, "debian")))
    assert code == 0, output
    assert "Checking the rustc of Rust DKMS modules for new kernels" in output
    assert f"kernel {RELEASE}: Rust DKMS modules (" in output
    assert f"will be built with {TOOLCHAINS['debian'].version_text}" in output
    assert "WARNING" not in output


def test_kernel_headers_hook_banner_when_not(tmp_path: Path) -> None:
    root = _root(tmp_path)
    code, output = _pacman(root, "-U", "-dd", str(_headers(tmp_path, "stable")))
    assert code == 0, output
    assert f"WARNING: the Rust DKMS modules hello/1.0 will NOT build for kernel {RELEASE}" in output
    assert "rustup toolchain install 1." in output  # the fix for an official build
    assert "error: command failed to execute correctly" not in output


def test_kernel_headers_hook_fails_only_when_configured(tmp_path: Path) -> None:
    root = _root(tmp_path, "kernel_hook_fail = yes\n")
    code, output = _pacman(root, "-U", "-dd", str(_headers(tmp_path, "stable")))
    assert "will NOT build" in output
    assert "error: command failed to execute correctly" in output  # pacman names the failed hook
    assert code == 0  # a hook after the transaction cannot undo it: pacman itself succeeds


def _rust(tmp_path: Path, version: str, rustc: Path | str) -> Path:
    return scratch_package(tmp_path / "pkgs", "rust", version, {"/usr/bin/rustc": rustc})


def test_rolling_upgrade_of_rust_is_caught(tmp_path: Path) -> None:
    root = _root(tmp_path)
    code, output = _pacman(root, "-U", "-dd", str(_headers(tmp_path, "debian")))
    assert code == 0 and "will be built with" in output, output
    # The compiler the kernel was built with, now owned by the package "rust".
    code, output = _pacman(
        root, "-U", "-dd", "--overwrite", "*", str(_rust(tmp_path, "1:1.96.0-1", Path("/usr/bin/rustc")))
    )
    assert code == 0, output
    assert "can still be built for 1 of" in output, output  # one line: nothing lost
    # The rolling upgrade: "rust" now brings another compiler.
    code, output = _pacman(
        root, "-U", "-dd", str(_rust(tmp_path, "1:1.97.0-1", f"-> {TOOLCHAINS['stable'].rustc}"))
    )
    assert code == 0, output
    assert "Remembering which rustc the installed kernels need" in output
    assert (
        f"WARNING: this package transaction removed or replaced the rustc that kernel {RELEASE} needs"
        in output
    )
    needs = f"kernel {RELEASE} needs {TOOLCHAINS['debian'].version_text}"
    assert f"{needs}; before this transaction that was /usr/bin/rustc" in output
    assert "fix: " in output
    assert "error: command failed to execute correctly" not in output


def test_removal_of_rust_is_caught(tmp_path: Path) -> None:
    root = _root(tmp_path)
    code, output = _pacman(root, "-U", "-dd", str(_headers(tmp_path, "debian")))
    assert code == 0, output
    rust = _rust(tmp_path, "1:1.96.0-1", Path("/usr/bin/rustc"))
    code, output = _pacman(root, "-U", "-dd", "--overwrite", "*", str(rust))
    assert code == 0, output
    code, output = _pacman(root, "-R", "-dd", "rust")
    assert code == 0, output
    assert (
        f"WARNING: this package transaction removed or replaced the rustc that kernel {RELEASE} needs"
        in output
    )
    assert "error: command failed" not in output
    assert root.chroot("/usr/bin/test", "-e", "/usr/bin/rustc").returncode != 0  # it was removed


def test_package_hook_fail_stops_the_transaction_before_it_changes_the_kernels_rustc(tmp_path: Path) -> None:
    root = _root(tmp_path, "package_hook_fail = yes\n")
    code, output = _pacman(root, "-U", "-dd", str(_headers(tmp_path, "debian")))
    assert code == 0, output
    rust = _rust(tmp_path, "1:1.96.0-1", Path("/usr/bin/rustc"))
    code, output = _pacman(root, "-U", "-dd", "--overwrite", "*", str(rust))
    assert code == 0 and "error: command failed" not in output, output  # installing loses nothing
    code, output = _pacman(root, "-R", "-dd", "rust")
    assert code != 0, output
    stopped = "STOPPED: this package transaction would remove or replace /usr/bin/rustc"
    assert f"{stopped}, the rustc that kernel {RELEASE} needs" in output
    assert "stopping the transaction" in output
    assert root.chroot("/usr/bin/test", "-e", "/usr/bin/rustc").returncode == 0  # still there
    listed = root.outside(*pacman_args(root), "-Q", "rust")
    assert listed.returncode == 0 and listed.stdout.startswith("rust 1:1.96.0-1"), listed.stdout
    # The rolling upgrade is stopped the same way.
    upgrade = _rust(tmp_path, "1:1.97.0-1", f"-> {TOOLCHAINS['stable'].rustc}")
    code, output = _pacman(root, "-U", "-dd", str(upgrade))
    assert code != 0 and "STOPPED: this package transaction would remove or replace" in output, output


def test_silent_without_rust_modules(tmp_path: Path) -> None:
    root = _root(tmp_path, "package_hook_fail = yes\n")
    root.write("/var/lib/dkms/hello/1.0/source/dkms.conf", 'PACKAGE_NAME="hello"\nMAKE[0]="make"\n')
    code, output = _pacman(root, "-U", "-dd", str(_headers(tmp_path, "debian")))
    assert code == 0, output
    assert "no Rust module is registered with DKMS" in output  # the headers hook's one line
    rust = _rust(tmp_path, "1:1.96.0-1", Path("/usr/bin/rustc"))
    code, output = _pacman(root, "-U", "-dd", "--overwrite", "*", str(rust))
    assert code == 0, output
    code, output = _pacman(root, "-R", "-dd", "rust")
    assert code == 0, output
    assert "Checking that the installed kernels keep their rustc" in output  # the hook ran
    assert "dkms-rustc:" not in output  # and said nothing
