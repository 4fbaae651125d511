# SPDX-License-Identifier: GPL-2.0-or-later
"""The Debian package: built with the documented command, installed with dpkg on this machine,
and used from its installed files (/usr/bin, /usr/share/dkms-rustc, /etc/kernel) with real dkms.
The package is purged afterwards unless it was installed before the test."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import dkms_e2e as e2e
import kerneltree
import planted

pytestmark = [
    pytest.mark.deb,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("dpkg") is None, reason="needs root and dpkg"),
]

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LC_ALL": "C"}


def _no_system_config() -> None:
    """The installed tool always reads /etc/dkms-rustc.conf: its results depend on one."""
    if Path("/etc/dkms-rustc.conf").exists():
        pytest.skip("/etc/dkms-rustc.conf exists (an admin's, or another test's): results depend on it")


def _installed() -> bool:
    query = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "dkms-rustc"], capture_output=True, text=True)
    return query.returncode == 0 and "install ok installed" in query.stdout


@pytest.fixture(scope="module")
def package() -> Iterator[Path]:
    """Built and installed for this module's tests. The package puts dkms-rustc where the shim
    looks (/usr/bin), so it is installed only under the machine-wide lock of the end-to-end
    tests (tests/dkms_e2e.py), which set that path aside in other sessions meanwhile."""
    with e2e.machine_lock():
        e2e.recover()  # what a killed run of another session left
        before = _installed()
        built = subprocess.run(
            ["sh", str(ROOT / "packaging" / "build-deb.sh")], capture_output=True, text=True, timeout=1200
        )
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        deb = Path(built.stdout.strip().splitlines()[-1])
        assert deb.parent == ROOT / "dist"
        # The README's line, `sudo apt install ./dist/dkms-rustc_<version>_all.deb`, from the checkout.
        installed = subprocess.run(
            ["apt", "install", "-y", "-q", f"./dist/{deb.name}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**SYSTEM_ENV, "DEBIAN_FRONTEND": "noninteractive"},
            timeout=600,
        )
        assert installed.returncode == 0, installed.stdout + installed.stderr
        try:
            yield deb
        finally:
            if not before:
                subprocess.run(["dpkg", "--purge", "dkms-rustc"], capture_output=True, check=True)


def test_installed_tool_runs_from_usr_bin(package: Path, tmp_path: Path) -> None:
    # The launcher (python3 -I): a caller's PYTHONPATH (sudo -E) imports nothing into root.
    assert Path("/usr/bin/dkms-rustc").read_text().splitlines()[0] == "#!/usr/bin/python3 -I"
    marker = tmp_path / "imported"
    planted_env = planted.python_path_payload(tmp_path / "pythonpath", marker)
    env = {**SYSTEM_ENV, **planted_env}
    version = subprocess.run(["/usr/bin/dkms-rustc", "--version"], capture_output=True, text=True, env=env)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == "dkms-rustc 0.1.0"
    assert not marker.exists(), marker.read_text()
    # The control: without -I the same environment does make python import the payload.
    subprocess.run(["/usr/bin/python3", "-c", "import dkms_rustc"], env=env, check=False)
    assert marker.exists()
    helped = subprocess.run(["/usr/bin/dkms-rustc", "status", "--help"], capture_output=True, text=True)
    assert helped.stdout.startswith("usage: dkms-rustc status") and "--dkms-tree DIR" in helped.stdout


def test_installed_files(package: Path) -> None:
    for path in (
        "/usr/share/dkms-rustc/dkms-rustc-pre-build",
        "/etc/kernel/postinst.d/50-dkms-rustc",
        "/etc/kernel/header_postinst.d/50-dkms-rustc",
    ):
        assert os.access(path, os.X_OK), path
    for path in (
        "/usr/share/dkms-rustc/dkms.conf.snippet",
        "/usr/share/dkms-rustc/build-environment",
        "/usr/share/dkms-rustc/module-override.conf",
        "/usr/share/man/man8/dkms-rustc.8.gz",
        "/etc/apt/apt.conf.d/50dkms-rustc",  # the package-manager hook (upgrade-check)
    ):
        assert Path(path).is_file(), path
    with gzip.open("/usr/share/man/man8/dkms-rustc.8.gz", "rt") as page_source:
        assert "kernel_hook_fail" in page_source.read()
    if shutil.which("man") is not None:  # man-db (a brand-new Debian has none)
        page = subprocess.run(
            ["man", "-P", "cat", "8", "dkms-rustc"], capture_output=True, text=True, env=SYSTEM_ENV
        )
        assert "kernel_hook_fail" in page.stdout


def test_installed_status_against_a_test_tree(package: Path, tmp_path: Path) -> None:
    _no_system_config()
    stable = kerneltree.need("stable")
    modules = tmp_path / "mods"
    kerneltree.make_kernel_tree(modules / "7.2.0-deb" / "build", stable, kernelrelease="7.2.0-deb")
    result = subprocess.run(
        ["/usr/bin/dkms-rustc", "status", "--modules-dir", str(modules),
         "--dkms-tree", str(tmp_path / "none"), "--no-cache"],
        capture_output=True,
        text=True,
        env=SYSTEM_ENV,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 1 of 1 kernels can build Rust modules")


def test_installed_kernel_hook_runs(package: Path) -> None:
    result = subprocess.run(
        ["/etc/kernel/postinst.d/50-dkms-rustc", "0.0.0-no-such-kernel"],
        capture_output=True,
        text=True,
        env=SYSTEM_ENV,
    )
    assert result.returncode == 0
    assert result.stderr.startswith("dkms-rustc: kernel 0.0.0-no-such-kernel")


@pytest.mark.dkms
def test_packaged_override_and_shim_with_real_dkms(package: Path, tmp_path: Path) -> None:
    """/usr/share/dkms-rustc/module-override.conf, verbatim, as /etc/dkms/hello.conf: the packaged
    shim finds the packaged /usr/bin/dkms-rustc and the module builds with the kernel's rustc."""
    stable = kerneltree.need("stable")
    from dkms_harness import DkmsSandbox, ensure_dkms_generations
    from test_dkms_wide import HELLO_KBUILD, HELLO_RS, PLAIN_DKMS_CONF

    for generation in ensure_dkms_generations():
        box = DkmsSandbox(generation, tmp_path / generation.version)
        kerneltree.make_kernel_tree(box.kernel_dir, stable, kernelrelease=box.kernelver)
        box.write_module(
            dkms_conf=PLAIN_DKMS_CONF,
            pre_build="missing",
            files={"Kbuild": HELLO_KBUILD, "hello.rs": HELLO_RS},
        )
        shutil.copy2("/usr/share/dkms-rustc/module-override.conf", box.etc_dir / "hello.conf")
        assert box.add().exit_code == 0
        result = box.build()
        log = result.make_log_text or ""
        assert result.exit_code == 0, result.output + log
        assert f"building with {stable.version_text}" in log
