# SPDX-License-Identifier: GPL-2.0-or-later
"""The apt hook (dkms/apt/50dkms-rustc, the .deb's /etc/apt/apt.conf.d/50dkms-rustc), run by the
real apt and dpkg in a scratch root: this machine seen through an overlay, with its own dpkg
database, so the transactions change nothing outside it.

The tool is /usr/bin/dkms-rustc as the RPM installs it there (quicker to build than the .deb;
the same files). The package the transactions install, upgrade and remove is a scratch
package built here with dpkg-deb: ``rustc-standin``, whose /opt/rustc-standin/bin/rustc is first
a copy of Debian's real rustc (the compiler the kernel was built with), then, as the upgrade,
a link to rustup's real stable rustc (another compiler)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import kerneltree
from distro_world import RELEASE, ROOT, TOOLCHAINS, need_scratch_root, populate, rpm_install
from scratchroot import ScratchRoot

pytestmark = pytest.mark.root
STANDIN = "/opt/rustc-standin/bin"


def standin_deb(directory: Path, version: str, rustc: Path | str) -> Path:
    """``rustc-standin`` at ``version``: its rustc a copy of ``rustc``, or a link (``-> TARGET``)."""
    stage = directory / f"rustc-standin-{version}"
    (stage / "DEBIAN").mkdir(parents=True)
    (stage / STANDIN.lstrip("/")).mkdir(parents=True)
    target = stage / STANDIN.lstrip("/") / "rustc"
    if isinstance(rustc, str):
        os.symlink(rustc.removeprefix("-> "), target)
    else:
        shutil.copy2(rustc, target)
    (stage / "DEBIAN" / "control").write_text(
        f"Package: rustc-standin\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: tests <tests@dkms-rustc.invalid>\nDescription: a scratch package standing in for rustc\n"
    )
    deb = directory / f"rustc-standin_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(stage), str(deb)], check=True, capture_output=True
    )
    return deb


def _root(tmp_path: Path, extra_conf: str = "", rust_module: bool = True) -> ScratchRoot:
    need_scratch_root("rpmbuild", "rpm", "apt-get", "dpkg-deb")
    kerneltree.need("debian", "stable")
    root = ScratchRoot(tmp_path / "debian")
    installed = rpm_install(root)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    root.write("/etc/apt/apt.conf.d/50dkms-rustc", (ROOT / "dkms" / "apt" / "50dkms-rustc").read_text())
    populate(root, "debian", STANDIN, extra_conf, rust_module)
    return root


def _apt(root: ScratchRoot, *args: str) -> tuple[int, str]:
    result = root.chroot("apt-get", "-y", "-q", *args, env={"DEBIAN_FRONTEND": "noninteractive"}, timeout=600)
    return result.returncode, result.stdout + result.stderr


def test_upgrade_replacing_the_kernels_rustc_is_caught(tmp_path: Path) -> None:
    root = _root(tmp_path)
    code, output = _apt(root, "install", str(standin_deb(tmp_path, "1.96.0-1", Path("/usr/bin/rustc"))))
    assert code == 0, output
    assert "upgrade check: the Rust DKMS modules (" in output and "can still be built for 1 of" in output
    code, output = _apt(
        root, "install", str(standin_deb(tmp_path, "1.97.0-1", f"-> {TOOLCHAINS['stable'].rustc}"))
    )
    assert code == 0, output
    assert (
        f"WARNING: this package transaction removed or replaced the rustc that kernel {RELEASE} needs"
        in output
    )
    assert f"before this transaction that was {STANDIN}/rustc" in output
    assert "apt-mark hold" in output  # the fix for Debian: reinstall and hold the old toolchain
    assert "check again with: dkms-rustc status" in output


def test_removal_is_caught_and_fails_apt_only_when_configured(tmp_path: Path) -> None:
    root = _root(tmp_path, "package_hook_fail = yes\n")
    code, output = _apt(root, "install", str(standin_deb(tmp_path, "1.96.0-1", Path("/usr/bin/rustc"))))
    assert code == 0, output
    code, output = _apt(root, "remove", "rustc-standin")
    assert f"the rustc that kernel {RELEASE} needs" in output
    assert "package_hook_fail = yes" in output
    assert code != 0 and "DPkg::Post-Invoke" in output  # apt reports the hook's failure
    listed = root.chroot("dpkg-query", "-W", "-f=${Status}", "rustc-standin")
    assert "install ok installed" not in listed.stdout  # the removal itself happened


def test_removal_warns_but_apt_succeeds_by_default(tmp_path: Path) -> None:
    root = _root(tmp_path)
    code, output = _apt(root, "install", str(standin_deb(tmp_path, "1.96.0-1", Path("/usr/bin/rustc"))))
    assert code == 0, output
    code, output = _apt(root, "remove", "rustc-standin")
    assert code == 0, output
    assert (
        f"WARNING: this package transaction removed or replaced the rustc that kernel {RELEASE} needs"
        in output
    )


def test_silent_without_rust_modules(tmp_path: Path) -> None:
    root = _root(tmp_path, "package_hook_fail = yes\n", rust_module=False)
    code, output = _apt(root, "install", str(standin_deb(tmp_path, "1.96.0-1", Path("/usr/bin/rustc"))))
    assert code == 0, output
    code, output = _apt(root, "remove", "rustc-standin")
    assert code == 0, output
    assert "dkms-rustc:" not in output
