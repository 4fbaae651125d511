# SPDX-License-Identifier: GPL-2.0-or-later
"""The kernel-install plugin (dkms/kernel/38-dkms-rustc.install) as Fedora, RHEL and openSUSE
run it: installed by the RPM into a scratch root, then the real ``kernel-install add`` of
systemd (252 here) runs every plugin of that root in name order, with DKMS's own real
40-dkms.install (from DKMS 3.2) beside it.

DKMS's plugin calls ``/etc/kernel/postinst.d/dkms``, which would build every registered module;
in the scratch root that script is replaced by one that only records that DKMS was reached, so
the tests can tell whether the kernel installation went on past dkms-rustc."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import kerneltree
from distro_world import RELEASE, need_scratch_root, populate, rpm_install, toolchain_dir
from scratchroot import ScratchRoot

pytestmark = pytest.mark.root
PLUGIN = "/usr/lib/kernel/install.d/38-dkms-rustc.install"
DKMS_REACHED = "/var/tmp/dkms-postinst-ran"


def _dkms_plugin() -> Path:
    """DKMS's own 40-dkms.install, from the DKMS 3.2 package the DKMS tests unpack."""
    from dkms_harness import cache_dir, ensure_dkms_generations

    ensure_dkms_generations()
    found = sorted(cache_dir().glob("current-*.root/usr/lib/kernel/install.d/40-dkms.install"))
    if not found:
        pytest.skip("the DKMS 3.2 package holds no 40-dkms.install")
    return found[-1]


def _root(tmp_path: Path, kernel: str | None, extra_conf: str = "", rust_module: bool = True) -> ScratchRoot:
    need_scratch_root("rpmbuild", "rpm", "kernel-install")
    kerneltree.need("stable", "nightly")
    root = ScratchRoot(tmp_path / "fedora")
    installed = rpm_install(root)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    target = root.upper_path("/usr/lib/kernel/install.d/40-dkms.install")
    shutil.copy2(_dkms_plugin(), target)
    root.write("/etc/kernel/postinst.d/dkms", f'#!/bin/sh\necho "$1" >> {DKMS_REACHED}\n', 0o755)
    root.write(f"/boot/vmlinuz-{RELEASE}", "not a real kernel image\n")
    root.write("/etc/kernel/install.conf", "layout=other\n")
    populate(root, kernel, toolchain_dir("stable"), extra_conf, rust_module)
    return root


def _install(root: ScratchRoot, *options: str) -> tuple[int, str]:
    result = root.chroot(
        "kernel-install", *options, "add", RELEASE, f"/boot/vmlinuz-{RELEASE}", env={"BOOT_ROOT": "/boot"}
    )
    return result.returncode, result.stdout + result.stderr


def test_plugin_runs_before_dkms_plugin(tmp_path: Path) -> None:
    root = _root(tmp_path, "stable")
    code, output = _install(root, "--verbose")
    assert code == 0, output
    # The plugins in the order the output first names them: systemd 252's shell script lists
    # one per line, newer C versions name them inside longer log lines.
    named = re.findall(r"/(?:usr/lib|etc)/kernel/install\.d/[\w.+-]+\.install", output)
    plugins = list(dict.fromkeys(named))
    assert PLUGIN in plugins and "/usr/lib/kernel/install.d/40-dkms.install" in plugins, output
    assert plugins.index(PLUGIN) < plugins.index("/usr/lib/kernel/install.d/40-dkms.install"), plugins


def test_one_line_when_the_modules_will_build(tmp_path: Path) -> None:
    root = _root(tmp_path, "stable", extra_conf="kernel_hook_fail = yes\n")
    code, output = _install(root)
    assert code == 0, output
    ours = [line for line in output.splitlines() if line.startswith("dkms-rustc: ")]
    assert len(ours) == 1, output
    assert f"kernel {RELEASE}: Rust DKMS modules (" in ours[0] and "hello/1.0" in ours[0]
    assert ours[0].endswith(f"will be built with {kerneltree.find_real_toolchains()['stable'].version_text}")
    assert root.upper_path(DKMS_REACHED).read_text() == f"{RELEASE}\n"  # DKMS's plugin ran after


def test_banner_with_the_fix_and_the_install_goes_on(tmp_path: Path) -> None:
    root = _root(tmp_path, "nightly")
    code, output = _install(root)
    assert code == 0, output
    assert "*" * 72 in output
    assert f"will NOT build for kernel {RELEASE}" in output
    assert "rustup toolchain install nightly-" in output  # the fix, spelled out
    assert root.upper_path(DKMS_REACHED).read_text() == f"{RELEASE}\n"


def test_kernel_hook_fail_stops_kernel_install_before_dkms(tmp_path: Path) -> None:
    root = _root(tmp_path, "nightly", extra_conf="kernel_hook_fail = yes\n")
    code, output = _install(root)
    assert code != 0, output
    assert "kernel_hook_fail = yes" in output and "will NOT build" in output
    assert not root.exists(DKMS_REACHED)  # DKMS never built, no initramfs with a broken module


def test_quiet_without_rust_modules_and_on_remove(tmp_path: Path) -> None:
    root = _root(tmp_path, "nightly", extra_conf="kernel_hook_fail = yes\n", rust_module=False)
    code, output = _install(root)
    assert code == 0, output
    assert "WARNING" not in output
    removed = root.chroot("kernel-install", "remove", RELEASE, env={"BOOT_ROOT": "/boot"})
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "dkms-rustc" not in removed.stdout + removed.stderr


def test_a_crashing_tool_never_blocks(tmp_path: Path) -> None:
    root = _root(tmp_path, "nightly", extra_conf="kernel_hook_fail = yes\n")
    root.write("/usr/local/bin/broken-dkms-rustc", "#!/bin/sh\necho Traceback >&2\nexit 43\n", 0o755)
    result = root.chroot(
        "kernel-install",
        "add",
        RELEASE,
        f"/boot/vmlinuz-{RELEASE}",
        env={"BOOT_ROOT": "/boot", "DKMS_RUSTC": "/usr/local/bin/broken-dkms-rustc"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert root.upper_path(DKMS_REACHED).read_text() == f"{RELEASE}\n"
