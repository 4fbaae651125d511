# SPDX-License-Identifier: GPL-2.0-or-later
"""What the distribution tests share: the RPM and the Arch package built from this checkout
with the real rpmbuild and makepkg (once per test session), and a scratch root
(:mod:`scratchroot`) holding an installed kernel whose Rust metadata a real compiler wrote, a
Rust module registered with DKMS, and /etc/dkms-rustc.conf."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest

import kerneltree
from scratchroot import ScratchRoot, available

ROOT = Path(__file__).resolve().parents[1]
TOOLCHAINS = kerneltree.find_real_toolchains()
RELEASE = "7.2.0-distrotest"


def need_scratch_root(*tools: str) -> None:
    """Skip unless scratch roots work here and ``tools`` are installed (.ci/run installs them)."""
    reason = available()
    if reason:
        pytest.skip(reason)
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (.ci/run installs it with apt)")


def _build(script: str) -> Path:
    built = subprocess.run(
        ["sh", str(ROOT / "packaging" / script)], capture_output=True, text=True, timeout=600
    )
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    return Path(built.stdout.strip().splitlines()[-1])


@functools.cache
def rpm_package() -> Path:
    """``sh packaging/build-rpm.sh``: the real rpmbuild."""
    return _build("build-rpm.sh")


@functools.cache
def arch_package() -> Path:
    """``sh packaging/build-arch.sh``: the real makepkg."""
    return _build("build-arch.sh")


def rpm_install(root: ScratchRoot) -> subprocess.CompletedProcess[str]:
    """``rpm --root`` into the scratch root: a fresh rpm database there, so the dependencies
    (python3 and the three python3-* packages, which dpkg installed here) cannot be resolved
    by rpm: --nodeps."""
    package = rpm_package()
    return root.outside(
        "sh",
        "-c",
        'rpm --root "$0" --initdb && rpm --root "$0" -i --nodeps "$1"',
        str(root.path),
        str(package),
    )


def pacman_args(root: ScratchRoot) -> list[str]:
    """pacman on the scratch root with its own database, cache and log there."""
    r = str(root.path)
    return [
        "pacman", "--root", r, "--dbpath", f"{r}/var/lib/pacman", "--cachedir", f"{r}/var/cache/pacman/pkg",
        "--logfile", f"{r}/var/log/pacman.log", "--noconfirm",
    ]  # fmt: skip


def pacman_install(root: ScratchRoot, *packages: Path) -> subprocess.CompletedProcess[str]:
    """``pacman -U --root``: -dd because pacman's database there knows no python (dpkg's does);
    --overwrite because the machine below the scratch root may hold dkms-rustc's files itself
    (the .deb, installed by tests/test_deb.py), which pacman's database there does not know."""
    root.write("/var/lib/pacman/.keep", "")
    root.write("/var/cache/pacman/pkg/.keep", "")
    return root.outside(*pacman_args(root), "-U", "-dd", "--overwrite", "*", *map(str, packages))


def populate(
    root: ScratchRoot,
    kernel: str | None,
    search: str,
    extra_conf: str = "",
    rust_module: bool = True,
) -> None:
    """An installed kernel built with the real ``kernel`` toolchain (None: no headers), the
    Rust module hello/1.0 registered with DKMS, and a configuration that looks for toolchains
    only in ``search`` (so the machine's other compilers do not decide the outcome)."""
    if kernel is not None:
        kerneltree.make_kernel_tree(
            root.upper_path(f"/lib/modules/{RELEASE}/build"), TOOLCHAINS[kernel], kernelrelease=RELEASE
        )
    conf_line = 'PRE_BUILD="dkms-rustc-pre-build ${kernel_source_dir}"' if rust_module else 'MAKE[0]="make"'
    root.write("/var/lib/dkms/hello/1.0/source/dkms.conf", f'PACKAGE_NAME="hello"\n{conf_line}\n')
    root.write(
        "/etc/dkms-rustc.conf",
        f"search_defaults = no\nsearch = {search}\ncache_dir = /var/cache/dkms-rustc-scratch\n{extra_conf}",
    )


def toolchain_dir(name: str) -> str:
    """The toolchain directory of a real compiler (its bin/ is searched)."""
    return str(TOOLCHAINS[name].rustc.parent.parent)
