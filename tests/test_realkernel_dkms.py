# SPDX-License-Identifier: GPL-2.0-or-later
"""DKMS's other levers on the real Linux 7.2 and 6.12 trees (tests/test_realkernel.py: the trees,
rustup's proxy first on PATH, the kernel's rustc = Debian's rustc-web), on every DKMS generation:

1. ``build_environment`` (DKMS 3.3+) gives an unedited Rust module the kernel's rustc;
2. the 3.4 ``/etc/dkms/<module>/`` script override enables an unedited module;
3. a mixed package (examples/mixed-hello): its C and Rust modules both build;
4. module signing (the 7.2 tree is built with CONFIG_MODULE_SIG): DKMS signs the Rust module
   built through the PRE_BUILD hook with its MOK key, and ``modinfo`` names the signer
   (collected where tests/realkernel/build-kernels.sh builds 7.2 with MODULE_SIG).

The tool runs as DKMS runs it (tests/dkms_e2e.py). Run these alone with ``pytest -m realkernel``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import dkms_e2e as e2e
from dkms_harness import DkmsGeneration, DkmsSandbox
from test_realkernel import (  # the trees and the fixtures that set them up
    DISTRIBUTION_RUSTC,
    MODULE,
    SERIES,
    Proxy,
    RealKernel,
    _real_dkms_tree_untouched,  # noqa: F401  (autouse: nothing touches /var/lib/dkms)
    assert_built_for,
    assert_the_wrong_rustc_failed,
    built_ko,
    config,
    dkms,
    dkms_generations,  # noqa: F401  (fixture)
    generation,  # noqa: F401  (fixture: every DKMS generation)
    ko_facts,
    logs,
    make_box,
    read_auto_conf,
    real_kernels,  # noqa: F401  (fixture)
    report,
    rustup_proxy,  # noqa: F401  (fixture)
    unavailable,
)

pytestmark = [pytest.mark.realkernel, pytest.mark.dkms, pytest.mark.root]

ROOT = Path(__file__).resolve().parents[1]
BUILD_ENVIRONMENT = ROOT / "dkms" / "build-environment"
MIXED = ROOT / "examples" / "mixed-hello"
MIXED_MODULE = e2e.module_package(MIXED)
NAME = "/".join(MODULE)


def _unedited(box: DkmsSandbox) -> None:
    """examples/rust-hello as a package that knows nothing of dkms-rustc: no hook lines, no shim."""
    e2e.put_module(box, hook=False, shim="missing")


@pytest.mark.parametrize("series", SERIES)
def test_1_build_environment(
    series: str,
    generation: DkmsGeneration,  # noqa: F811
    real_kernels: dict[str, RealKernel],  # noqa: F811
    rustup_proxy: Proxy,  # noqa: F811
    tmp_path: Path,
) -> None:
    kernel = real_kernels[series]
    with e2e.machine(config(tmp_path)):
        box = make_box(generation, tmp_path, kernel, rustup_proxy)
        (box.etc_dir / "framework.conf.d" / "dkms-rustc.conf").write_text(
            f'build_environment="{BUILD_ENVIRONMENT}"\n'
        )
        _unedited(box)
        assert dkms(box, None, "add", NAME).exit_code == 0
        built = dkms(box, kernel, "build", NAME)
    report("build_environment, unedited module", generation, series, built)
    if generation.sources_build_environment:
        assert built.exit_code == 0, logs(built)
        assert_built_for(box, kernel)
    else:  # DKMS before 3.3 ignores build_environment: rustup's proxy compiles, and fails
        assert built.exit_code == 10, logs(built)
        assert_the_wrong_rustc_failed(built, kernel, rustup_proxy)


@pytest.mark.parametrize("series", SERIES)
def test_2_script_override(
    series: str,
    generation: DkmsGeneration,  # noqa: F811
    real_kernels: dict[str, RealKernel],  # noqa: F811
    rustup_proxy: Proxy,  # noqa: F811
    tmp_path: Path,
) -> None:
    kernel = real_kernels[series]
    with e2e.machine(config(tmp_path)):
        box = make_box(generation, tmp_path, kernel, rustup_proxy)
        _unedited(box)
        (box.etc_dir / f"{MODULE[0]}.conf").write_text(e2e.SNIPPET.read_text())
        (box.etc_dir / MODULE[0]).mkdir()
        (box.etc_dir / MODULE[0] / e2e.SHIM.name).symlink_to(e2e.SHIM)
        assert dkms(box, None, "add", NAME).exit_code == 0
        built = dkms(box, kernel, "build", NAME)
    report("/etc/dkms/<module>/ override, unedited module", generation, series, built)
    if generation.script_overrides:
        assert built.exit_code == 0, logs(built)
        assert f"make arguments in {box.dkms_tree}/{MODULE[0]}/{MODULE[1]}/build/" in (
            built.make_log_text or ""
        )
        assert_built_for(box, kernel)
    else:  # before 3.4 the shim is looked for in the build directory only: make stops at once
        assert built.exit_code == 10, logs(built)
        assert "dkms-rustc-PRE_BUILD-hook-did-not-run" in (built.make_log_text or "")
        assert not built_ko(box, kernel).exists()


@pytest.mark.parametrize("series", SERIES)
def test_3_mixed_package_builds_both_modules(
    series: str,
    generation: DkmsGeneration,  # noqa: F811
    real_kernels: dict[str, RealKernel],  # noqa: F811
    rustup_proxy: Proxy,  # noqa: F811
    tmp_path: Path,
) -> None:
    kernel = real_kernels[series]
    with e2e.machine(config(tmp_path)):
        box = make_box(generation, tmp_path, kernel, rustup_proxy)
        shutil.copytree(MIXED, box.module_source(*MIXED_MODULE))
        assert box.run("add", "/".join(MIXED_MODULE)).exit_code == 0
        box.kernelver = kernel.release
        (box.install_tree / kernel.release).mkdir(parents=True, exist_ok=True)
        built = box.run(
            "build", "/".join(MIXED_MODULE), "-k", kernel.release, "--kernelsourcedir", str(kernel.tree),
            module=MIXED_MODULE,
        )  # fmt: skip
    report("mixed package (C + Rust)", generation, series, built)
    assert built.exit_code == 0, logs(built)
    modules = box.dkms_tree / MIXED_MODULE[0] / MIXED_MODULE[1] / kernel.release / box.arch / "module"
    c_vermagic, c_rustc = ko_facts(modules / "mixed_hello_c.ko")
    rs_vermagic, rs_rustc = ko_facts(modules / "mixed_hello_rs.ko")
    assert c_vermagic == rs_vermagic == kernel.vermagic
    assert c_rustc == [] and rs_rustc == [kernel.comment_line]


def _serial(text: str) -> str:
    return re.sub(r"[^0-9A-F]", "", text.upper()).lstrip("0")


#: Whether this checkout's tree recipe builds 7.2 with module signing. Where it does, a 7.2 tree
#: without it is a failure (on CI) like any other missing tree; where it does not, there is no
#: signed tree to test against, and the test is not collected (a skip would fail CI).
SIGNED_TREE_RECIPE = "MODULE_SIG" in (ROOT / "tests" / "realkernel" / "build-kernels.sh").read_text()


def _dkms_signs_the_rust_module_built_through_the_hook(
    generation: DkmsGeneration,  # noqa: F811
    real_kernels: dict[str, RealKernel],  # noqa: F811
    rustup_proxy: Proxy,  # noqa: F811
    tmp_path: Path,
) -> None:
    kernel = real_kernels["7.2"]
    auto = read_auto_conf(kernel.tree)
    sign_file = kernel.tree / "scripts" / "sign-file"
    if auto.get("CONFIG_MODULE_SIG") != "y" or not sign_file.is_file():
        unavailable(
            f"{kernel.tree} is built without module signing (CONFIG_MODULE_SIG, scripts/sign-file)",
            "rebuild it with tests/realkernel/build-kernels.sh, which enables MODULE_SIG for 7.2",
        )
    with e2e.machine(config(tmp_path)):
        box = make_box(generation, tmp_path, kernel, rustup_proxy)
        box.enable_signing(sign_file)
        e2e.put_module(box)
        assert dkms(box, None, "add", NAME).exit_code == 0
        built = dkms(box, kernel, "build", NAME)
    report("signed by DKMS (MOK key), Rust module through the hook", generation, "7.2", built)
    assert built.exit_code == 0, logs(built)
    assert f"RUSTC={DISTRIBUTION_RUSTC}" in e2e.hook_output(generation, built)
    assert_built_for(box, kernel)
    ko = built_ko(box, kernel)
    info = {
        field: subprocess.run(
            ["modinfo", "-F", field, str(ko)], capture_output=True, text=True, check=True
        ).stdout.strip()
        for field in ("signer", "sig_key", "sig_hashalgo", "sig_id")
    }
    assert info["signer"] == "DKMS module signing key", info
    assert info["sig_id"] == "PKCS#7" and info["sig_hashalgo"] == auto["CONFIG_MODULE_SIG_HASH"], info
    serial = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-in", str(box.mok_certificate), "-noout", "-serial"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert _serial(info["sig_key"]) == _serial(serial.split("=", 1)[1]), (info, serial)
    print(
        f"    modinfo {ko.name}: signer={info['signer']!r} sig_key={info['sig_key']} ({info['sig_hashalgo']})"
    )


if SIGNED_TREE_RECIPE:
    test_4_dkms_signs_the_rust_module_built_through_the_hook = (
        _dkms_signs_the_rust_module_built_through_the_hook
    )
