# SPDX-License-Identifier: GPL-2.0-or-later
"""The RPM (Fedora, RHEL, openSUSE) and the Arch Linux package: built from this checkout with
the real rpmbuild and makepkg, their file lists and dependencies checked, installed into a
scratch root with the real ``rpm --root`` and ``pacman -U --root``, and the installed tool run
from there (the scratch root is this machine seen through an overlay, so the installed files run
on Debian's python3 with dpkg's python3-pyelftools, -packaging and -distro)."""

from __future__ import annotations

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
    rpm_install,
    rpm_package,
    toolchain_dir,
)
from scratchroot import ScratchRoot

pytestmark = pytest.mark.root

# Every file but the Python modules, which the wheel's own RECORD lists.
RPM_FILES = {
    "/usr/bin/dkms-rustc",
    "/usr/lib/kernel/install.d/38-dkms-rustc.install",
    "/usr/share/dkms-rustc",
    "/usr/share/dkms-rustc/build-environment",
    "/usr/share/dkms-rustc/dkms-rustc-pre-build",
    "/usr/share/dkms-rustc/dkms.conf.snippet",
    "/usr/share/dkms-rustc/module-override.conf",
    "/usr/share/doc/dkms-rustc-0.1.0",
    "/usr/share/doc/dkms-rustc-0.1.0/README.md",
    "/usr/share/licenses/dkms-rustc-0.1.0",
    "/usr/share/licenses/dkms-rustc-0.1.0/LICENSE",
}
ARCH_FILES = {
    "/usr/bin/dkms-rustc",
    "/usr/share/dkms-rustc/build-environment",
    "/usr/share/dkms-rustc/dkms-rustc-pre-build",
    "/usr/share/dkms-rustc/dkms.conf.snippet",
    "/usr/share/dkms-rustc/module-override.conf",
    "/usr/share/libalpm/hooks/00-dkms-rustc-upgrade.hook",
    "/usr/share/libalpm/hooks/69-dkms-rustc-kernel.hook",
    "/usr/share/libalpm/hooks/95-dkms-rustc-upgrade.hook",
    "/usr/share/libalpm/scripts/dkms-rustc-alpm",
    "/usr/share/man/man8/dkms-rustc.8.gz",
}
EXECUTABLES = (
    "/usr/bin/dkms-rustc",
    "/usr/share/dkms-rustc/dkms-rustc-pre-build",
)


def _split(paths: list[str]) -> tuple[set[str], set[str]]:
    """(files outside the Python package, the package's own module names)."""
    python = {path for path in paths if "/dkms_rustc" in path}
    modules = {Path(path).name for path in python if path.endswith(".py")}
    return {path for path in paths if path not in python}, modules


def _source_modules() -> set[str]:
    from distro_world import ROOT

    return {path.name for path in (ROOT / "src" / "dkms_rustc").rglob("*.py")}


def test_rpm_file_list_and_requirements() -> None:
    need_scratch_root("rpmbuild")
    package = rpm_package()
    listed = subprocess.run(["rpm", "-qpl", str(package)], capture_output=True, text=True, check=True)
    others, modules = _split(listed.stdout.split())
    # The man page may be compressed by the build host's brp scripts (Fedora) or not (here).
    others = {path for path in others if not path.startswith("/usr/share/man/man8/dkms-rustc.8")}
    others = {path for path in others if not path.rstrip("/").endswith(("/usr/lib/python3", "dist-packages"))}
    assert others == RPM_FILES
    assert modules == _source_modules()  # every module of the checkout, nothing else
    requires = subprocess.run(["rpm", "-qpR", str(package)], capture_output=True, text=True, check=True)
    for name in ("python3-pyelftools", "python3-packaging", "python3-distro", "/usr/bin/python3"):
        assert name in requires.stdout.split(), requires.stdout
    info = subprocess.run(
        ["rpm", "-qp", "--qf", "%{ARCH} %{LICENSE}", str(package)], capture_output=True, text=True, check=True
    )
    assert info.stdout == "noarch GPL-2.0-or-later"
    scripts = subprocess.run(["rpm", "-qp", "--scripts", str(package)], capture_output=True, text=True)
    assert scripts.stdout.strip() == ""  # nothing runs as root at install time


def test_arch_file_list_and_dependencies() -> None:
    need_scratch_root("makepkg", "pacman")
    package = arch_package()
    assert package.name.startswith("dkms-rustc-0.1.0-1-any.pkg.tar")
    info = subprocess.run(["pacman", "-Qip", str(package)], capture_output=True, text=True, check=True)
    depends = next(line for line in info.stdout.splitlines() if line.startswith("Depends On"))
    assert depends.split(":", 1)[1].split() == [
        "python",
        "python-pyelftools",
        "python-packaging",
        "python-distro",
    ]
    assert "Architecture    : any" in info.stdout
    listed = subprocess.run(["pacman", "-Qlpq", str(package)], capture_output=True, text=True, check=True)
    paths = [path for path in listed.stdout.split() if not path.endswith("/")]
    others, modules = _split(paths)
    assert others == ARCH_FILES
    assert modules == _source_modules()


def _runs_from(root: ScratchRoot) -> None:
    """The installed tool, run inside the root on its own files."""
    version = root.chroot("/usr/bin/dkms-rustc", "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == "dkms-rustc 0.1.0"
    where = root.chroot("/usr/bin/python3", "-c", "import dkms_rustc; print(dkms_rustc.__file__)")
    assert where.stdout.strip() == "/usr/lib/python3/dist-packages/dkms_rustc/__init__.py"
    assert root.exists("/usr/lib/python3/dist-packages/dkms_rustc/__init__.py")  # from the package
    # The interpreter the package was built with, by its system path (not a build directory's).
    # The launcher: the system's python3 in isolated mode (no caller's PYTHONPATH for root).
    shebang = root.upper_path("/usr/bin/dkms-rustc").read_text().splitlines()[0]
    assert shebang == "#!/usr/bin/python3 -I", shebang
    for path in EXECUTABLES:
        assert (root.upper_path(path).stat().st_mode & 0o111) == 0o111, path
    kerneltree.need("stable")
    populate(root, "stable", toolchain_dir("stable"))
    status = root.chroot("/usr/bin/dkms-rustc", "status", "--no-cache")
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"OK       {RELEASE}" in status.stdout
    assert TOOLCHAINS["stable"].version_text in status.stdout


def test_rpm_installs_into_a_scratch_root_and_runs_there(tmp_path: Path) -> None:
    need_scratch_root("rpmbuild", "rpm")
    root = ScratchRoot(tmp_path / "fedora")
    installed = rpm_install(root)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # Every file as packaged (digest, mode, owner); the dependencies are dpkg's here.
    verified = root.outside("rpm", "--root", str(root.path), "-V", "--nodeps", "dkms-rustc")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    _runs_from(root)


def test_arch_package_installs_into_a_scratch_root_and_runs_there(tmp_path: Path) -> None:
    need_scratch_root("makepkg", "pacman")
    root = ScratchRoot(tmp_path / "arch")
    installed = pacman_install(root, arch_package())
    assert installed.returncode == 0, installed.stdout + installed.stderr
    checked = root.outside(*pacman_args(root), "-Qkk", "dkms-rustc")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    _runs_from(root)
    removed = root.outside(*pacman_args(root), "-R", "dkms-rustc")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert (
        root.chroot(
            "/usr/bin/python3", "-c", "import os; print(os.path.exists('/usr/bin/dkms-rustc'))"
        ).stdout.strip()
        == "False"
    )
