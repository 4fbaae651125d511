# SPDX-License-Identifier: GPL-2.0-or-later
"""DKMS-wide enablement without editing module packages.

* ``dkms/build-environment`` for DKMS 3.3+'s ``build_environment``: sourced exactly as DKMS
  3.3 sources it (``source <( (source "$build_environment" &>/dev/null; export -p) )``, copied
  from dkms.in), then the module is built with real make against trees real compilers wrote.
  The harness's dkms generations (3.0.10, 3.2.2) predate build_environment, so this part runs
  DKMS's line in bash rather than dkms itself.
* ``dkms/module-override.conf`` as ``/etc/dkms/<module>.conf``: driven through both real dkms
  generations of tests/dkms_harness.py.
"""

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
BUILD_ENVIRONMENT = ROOT / "dkms" / "build-environment"
OVERRIDE = ROOT / "dkms" / "module-override.conf"
SHIM = ROOT / "dkms" / "dkms-rustc-pre-build"
HELLO_RS = (kerneltree.HELLO_MODULE / "hello.rs").read_text()
HELLO_KBUILD = (kerneltree.HELLO_MODULE / "Kbuild").read_text()
PLAIN_DKMS_CONF = """\
PACKAGE_NAME="hello"
PACKAGE_VERSION="1.0"
BUILT_MODULE_NAME[0]="hello"
DEST_MODULE_LOCATION[0]="/extra"
MAKE[0]="make -C ${kernel_source_dir} M=${dkms_tree}/hello/1.0/build"
AUTOINSTALL="yes"
"""
# dkms.in (3.3.0 to 3.4.3), prepare_build(): how build_environment is read.
DKMS_SOURCING = 'source <( (source "$build_environment" &>/dev/null; export -p) )'


_need = kerneltree.need


def _conf(tmp_path: Path) -> Path:
    conf = tmp_path / "test.conf"
    conf.write_text(
        f"cache_dir = {tmp_path / 'cache'}\nsearch_defaults = no\n"
        f"search = {TOOLCHAINS['stable'].rustc.parent.parent}\n"
    )
    return conf


def _wrapper(tmp_path: Path) -> Path:
    """This checkout's dkms-rustc, with the test configuration."""
    wrapper = tmp_path / "dkms-rustc"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH={ROOT / "src"} exec {sys.executable} -m dkms_rustc "$@" '
        f"--config {_conf(tmp_path)}\n"
    )
    wrapper.chmod(0o755)
    return wrapper


def _module(directory: Path, *, rust: bool = True, conf: str = PLAIN_DKMS_CONF) -> Path:
    directory.mkdir(parents=True)
    (directory / "dkms.conf").write_text(conf)
    if rust:
        (directory / "Kbuild").write_text(HELLO_KBUILD)
        (directory / "hello.rs").write_text(HELLO_RS)
    else:
        (directory / "hello.c").write_text("/* C */\n")
    return directory


def _dkms_33_build(
    tmp_path: Path, tree: Path, source: Path, release: str
) -> subprocess.CompletedProcess[str]:
    """What DKMS 3.3+ does around a build: source build_environment its way, then make."""
    build = tmp_path / "build"
    if build.exists():
        shutil.rmtree(build)
    shutil.copytree(source, build)
    script = f"""
kernelver={release}; kernel_source_dir={tree}; module=hello; module_version=1.0
source_dir={source}; build_environment={BUILD_ENVIRONMENT}
{DKMS_SOURCING}
echo "MAKEFLAGS=${{MAKEFLAGS:-}}"
cd {build} && make -j2 KERNELRELEASE=$kernelver -C $kernel_source_dir M={build}
"""
    return subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DKMS_RUSTC": str(_wrapper(tmp_path)), "HOME": "/root"},
        timeout=300,
    )


def test_build_environment_hands_the_kernels_rustc_to_make(tmp_path: Path) -> None:
    _need("stable", "debian")  # /usr/bin/rustc, first on PATH, is the wrong compiler
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"], kernelrelease="7.2.0-env")
    source = _module(tmp_path / "src" / "hello-1.0")
    result = _dkms_33_build(tmp_path, tree, source, "7.2.0-env")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"RUSTC={TOOLCHAINS['stable'].rustc.resolve()}" in result.stdout
    comment = subprocess.run(
        ["readelf", "-p", ".comment", str(tmp_path / "build" / "hello.ko")], capture_output=True, text=True
    ).stdout
    assert TOOLCHAINS["stable"].version_text.replace("rustc ", "rustc version ") in comment


def test_build_environment_stops_make_with_the_reason(tmp_path: Path) -> None:
    _need("stable", "nightly")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["nightly"], kernelrelease="7.2.0-env")
    source = _module(tmp_path / "src" / "hello-1.0")
    result = _dkms_33_build(tmp_path, tree, source, "7.2.0-env")
    assert result.returncode != 0
    assert "dkms-rustc: no installed rustc matches kernel 7.2.0-env" in result.stderr
    assert "run: dkms-rustc check -k 7.2.0-env" in result.stderr
    assert "E0514" not in result.stderr  # stopped before compiling
    assert not (tmp_path / "build" / "hello.o").exists()


@pytest.mark.parametrize(
    ("rust", "conf"),
    [
        (False, PLAIN_DKMS_CONF),  # a C module
        (True, PLAIN_DKMS_CONF + 'PRE_BUILD="dkms-rustc-pre-build ${kernel_source_dir}"\n'),  # already served
    ],
)
def test_build_environment_leaves_other_modules_alone(tmp_path: Path, rust: bool, conf: str) -> None:
    _need("stable")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"], kernelrelease="7.2.0-env")
    source = _module(tmp_path / "src" / "hello-1.0", rust=rust, conf=conf)
    result = _dkms_33_build(tmp_path, tree, source, "7.2.0-env")
    assert "MAKEFLAGS=\n" in result.stdout


def test_build_environment_without_the_tool_is_harmless(tmp_path: Path) -> None:
    """The shipped file with its search list cut down to a path that does not exist."""
    import re

    script = tmp_path / "build-environment"
    script.write_text(
        re.sub(
            r"for _candidate in [^;]*;",
            "for _candidate in ${DKMS_RUSTC:-};",
            Path(BUILD_ENVIRONMENT).read_text(),
            flags=re.S,
        )
    )
    result = subprocess.run(
        [
            "bash",
            "-c",
            f"kernelver=1 module=m build_environment={script}\n{DKMS_SOURCING}\necho ok=${{MAKEFLAGS:-}}",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DKMS_RUSTC": str(tmp_path / "absent")},
    )
    assert result.stdout == "ok=\n"


# ------------------------------------------------------------- real dkms, /etc/dkms/<module>.conf


@pytest.mark.dkms
@pytest.mark.parametrize("generation_index", [0, 1], ids=["old", "current"])
@pytest.mark.parametrize("kernel", ["stable", "nightly"])
def test_module_override_with_real_dkms(tmp_path: Path, generation_index: int, kernel: str) -> None:
    _need("stable", "nightly")
    from dkms_harness import DkmsHarnessError, DkmsSandbox, ensure_dkms_generations

    try:
        generation = ensure_dkms_generations()[generation_index]
    except DkmsHarnessError as error:
        if os.geteuid() != 0:
            pytest.skip(f"dkms generations not set up and not root: {error}")
        raise
    box = DkmsSandbox(generation, tmp_path / "sandbox")
    kerneltree.make_kernel_tree(box.kernel_dir, TOOLCHAINS[kernel], kernelrelease=box.kernelver)
    box.write_module(
        dkms_conf=PLAIN_DKMS_CONF, pre_build="missing", files={"Kbuild": HELLO_KBUILD, "hello.rs": HELLO_RS}
    )
    # The documented override, with the shim's fixed tool locations pointed at this checkout.
    shim = tmp_path / "dkms-rustc-pre-build"
    shim.write_text(
        SHIM.read_text().replace(
            "for candidate in /usr/bin/dkms-rustc", f"for candidate in {_wrapper(tmp_path)}"
        )
    )
    shim.chmod(0o755)
    override = OVERRIDE.read_text().replace("/usr/share/dkms-rustc/dkms-rustc-pre-build", str(shim))
    (box.etc_dir / "hello.conf").write_text(override)

    assert box.add().exit_code == 0
    result = box.build()
    log = result.make_log_text or ""
    if kernel == "stable":
        assert result.exit_code == 0, result.output + log
        assert f"OK: kernel {box.kernelver}: building with {TOOLCHAINS['stable'].version_text}" in log
        builds = [call for call in result.make_calls if not call.is_clean]
        assert any(f"RUSTC={TOOLCHAINS['stable'].rustc.resolve()}" in call.argv for call in builds)
    else:
        assert result.exit_code != 0
        assert f"REFUSED: no installed rustc matches kernel {box.kernelver}" in log
        assert "this module build was stopped before compiling" in log
        assert "E0514" not in log
