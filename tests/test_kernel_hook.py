# SPDX-License-Identifier: GPL-2.0-or-later
"""The kernel hook (dkms/kernel/50-dkms-rustc), run as the kernel packages run it:
``run-parts --arg=<version> /etc/kernel/postinst.d`` with the new kernel's version."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kerneltree

TOOLCHAINS = kerneltree.find_real_toolchains()
ROOT = Path(__file__).resolve().parents[1]
HOOK = ROOT / "dkms" / "kernel" / "50-dkms-rustc"
RELEASE = "7.2.0-hooktest"


_need = kerneltree.need


def _world(
    tmp_path: Path, kernel: str | None, rust_module: bool = True, extra_conf: str = ""
) -> dict[str, str]:
    """A modules dir holding the new kernel, a DKMS tree, a config, and DKMS_RUSTC: a wrapper
    running this checkout's dkms-rustc with them (the hook itself passes only the version)."""
    modules, dkms = tmp_path / "lib-modules", tmp_path / "dkms"
    modules.mkdir()
    if kernel is not None:
        kerneltree.make_kernel_tree(modules / RELEASE / "build", TOOLCHAINS[kernel], kernelrelease=RELEASE)
    source = dkms / "hello" / "1.0" / "source"
    source.mkdir(parents=True)
    conf_line = 'PRE_BUILD="dkms-rustc-pre-build ${kernel_source_dir}"' if rust_module else 'MAKE[0]="make"'
    (source / "dkms.conf").write_text(f'PACKAGE_NAME="hello"\n{conf_line}\n')
    conf = tmp_path / "test.conf"
    conf.write_text(
        f"cache_dir = {tmp_path / 'cache'}\nsearch_defaults = no\n"
        f"search = {TOOLCHAINS['stable'].rustc.parent.parent}\n{extra_conf}"
    )
    wrapper = tmp_path / "dkms-rustc"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH={ROOT / "src"} exec {sys.executable} -m dkms_rustc "$@" '
        f"--modules-dir {modules} --dkms-tree {dkms} --dkms-etc {tmp_path / 'etc'} --config {conf}\n"
    )
    wrapper.chmod(0o755)
    return {"DKMS_RUSTC": str(wrapper)}


def _run_hook(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HOOK), *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env},
        timeout=120,
    )


def test_runs_before_dkms_own_hook(tmp_path: Path) -> None:
    postinst = tmp_path / "postinst.d"
    postinst.mkdir()
    for name in ("dkms", "zz-update-grub", "initramfs-tools"):
        (postinst / name).write_text("#!/bin/sh\n")
        (postinst / name).chmod(0o755)
    shutil.copy2(HOOK, postinst / HOOK.name)
    listed = subprocess.run(
        ["run-parts", "--test", str(postinst)], capture_output=True, text=True, check=True
    )
    names = [Path(line).name for line in listed.stdout.split()]
    assert names.index("50-dkms-rustc") < names.index("dkms")


def test_loud_banner_when_rust_modules_will_not_build_but_the_upgrade_goes_on(tmp_path: Path) -> None:
    _need("stable", "nightly")
    result = _run_hook(_world(tmp_path, "nightly"), RELEASE, f"/boot/vmlinuz-{RELEASE}")
    assert result.returncode == 0
    err = result.stderr
    assert "*" * 72 in err
    assert f"WARNING: the Rust DKMS modules hello/1.0 will NOT build for kernel {RELEASE}" in err
    assert f"REFUSED: no installed rustc matches kernel {RELEASE}" in err
    assert "rustup toolchain install nightly-" in err  # what to install, spelled out


def test_fails_only_when_the_admin_opted_in(tmp_path: Path) -> None:
    _need("stable", "nightly")
    result = _run_hook(_world(tmp_path, "nightly", extra_conf="kernel_hook_fail = yes\n"), RELEASE)
    assert result.returncode == 1  # the hook script turns HOOK_FAILED into run-parts' failure
    assert "kernel_hook_fail = yes" in result.stderr


def test_quiet_when_the_modules_will_build(tmp_path: Path) -> None:
    _need("stable")
    result = _run_hook(_world(tmp_path, "stable", extra_conf="kernel_hook_fail = yes\n"), RELEASE)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"dkms-rustc: kernel {RELEASE}: Rust DKMS modules (hello/1.0) will be built with "
        f"{TOOLCHAINS['stable'].version_text}"
    ]


def test_quiet_without_rust_modules(tmp_path: Path) -> None:
    _need("stable", "nightly")
    result = _run_hook(
        _world(tmp_path, "nightly", rust_module=False, extra_conf="kernel_hook_fail = yes\n"), RELEASE
    )
    assert result.returncode == 0
    assert "no Rust module is registered with DKMS" in result.stderr
    assert "WARNING" not in result.stderr


def test_headers_not_installed_yet(tmp_path: Path) -> None:
    _need("stable")
    result = _run_hook(_world(tmp_path, None, extra_conf="kernel_hook_fail = yes\n"), RELEASE)
    assert result.returncode == 0
    assert "checked again when the headers package is configured" in result.stderr


def test_a_crashing_tool_never_blocks_the_upgrade(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\necho Traceback >&2\nexit 1\n")
    broken.chmod(0o755)
    assert _run_hook({"DKMS_RUSTC": str(broken)}, RELEASE).returncode == 0
    assert (
        _run_hook({"DKMS_RUSTC": str(tmp_path / "missing")}, RELEASE).returncode == 0
        or not Path("/usr/bin/dkms-rustc").exists()
    )


def test_no_version_given() -> None:
    result = _run_hook({})
    assert result.returncode == 0
    assert "no kernel version given" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="run-parts as the kernel packages run it")
def test_through_run_parts(tmp_path: Path) -> None:
    _need("stable", "nightly")
    env = _world(tmp_path, "nightly")
    postinst = tmp_path / "postinst.d"
    postinst.mkdir()
    shutil.copy2(HOOK, postinst / HOOK.name)
    result = subprocess.run(
        [
            "run-parts",
            "--report",
            "--exit-on-error",
            f"--arg={RELEASE}",
            f"--arg=/boot/vmlinuz-{RELEASE}",
            str(postinst),
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env},
        timeout=120,
    )
    assert result.returncode == 0
    assert "will NOT build" in result.stdout + result.stderr
