# SPDX-License-Identifier: GPL-2.0-or-later
"""dkmsmodules: what a dkms.conf says about Rust, read the way bash would assign it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dkms_rustc.dkmsmodules import (
    RustExclusion,
    build_dir_exclusion,
    runs_dkms_rustc,
    rust_exclusion,
    rust_reasons,
)

ROOT = Path(__file__).resolve().parents[1]
MIXED = ROOT / "examples" / "mixed-hello" / "dkms.conf"


@pytest.mark.parametrize(
    ("conf", "runs"),
    [
        ('PRE_BUILD="dkms-rustc-pre-build ${kernel_source_dir}"\n', True),
        ("MAKE[0]='make \\$(/usr/share/dkms-rustc/dkms-rustc-pre-build x)'\n", True),
        ("  MAKE='make RUSTC=$(dkms-rustc which)'\n", True),
        ("# built with dkms-rustc one day\nMAKE[0]='make'\n", False),  # a comment is not a hook
        ('POST_BUILD="dkms-rustc-something"\n', False),
        ('PACKAGE_NAME="dkms-rustc-demo"\n', False),
        ('PRE_BUILD="dkms-rustc-pre-build"\nPRE_BUILD="configure"\n', False),  # the last one wins
    ],
)
def test_runs_dkms_rustc(conf: str, runs: bool) -> None:
    assert runs_dkms_rustc(conf) is runs


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ('BUILD_EXCLUSIVE_CONFIG="CONFIG_RUST"\nBUILT_MODULE_NAME[0]="a"\n', RustExclusion(True, (), (0,))),
        # Index 0 is the scalar in bash: DKMS applies it to the whole package.
        ('BUILD_EXCLUSIVE_CONFIG[0]="CONFIG_RUST"\nBUILT_MODULE_NAME[0]="a"\nBUILT_MODULE_NAME[1]="b"\n',
         RustExclusion(True, (), (0, 1))),
        ('BUILT_MODULE_NAME[0]="c"\nBUILT_MODULE_NAME[1]="r"\nBUILD_EXCLUSIVE_CONFIG[1]="CONFIG_RUST"\n',
         RustExclusion(False, (1,), (0,))),
        ('BUILT_MODULE_NAME[0]="c"\nBUILD_EXCLUSIVE_CONFIG[1]="CONFIG_MODULES CONFIG_RUST"\n',
         RustExclusion(False, (1,), (0,))),
        ('BUILD_EXCLUSIVE_CONFIG="!CONFIG_RUST"\nBUILT_MODULE_NAME[0]="a"\n', RustExclusion(False, (), (0,))),
        ("BUILD_EXCLUSIVE_CONFIG[2]='CONFIG_RUST_OVERFLOW_CHECKS'\n", RustExclusion(False, (), ())),
        ('# BUILD_EXCLUSIVE_CONFIG="CONFIG_RUST"\n', RustExclusion(False, (), ())),
    ],
)  # fmt: skip
def test_rust_exclusion(conf: str, expected: RustExclusion) -> None:
    assert rust_exclusion(conf) == expected


def test_mixed() -> None:
    assert rust_exclusion(MIXED.read_text()).mixed
    assert not RustExclusion(False, (1,), ()).mixed  # every module is Rust-only
    assert not RustExclusion(True, (1,), (0,)).mixed  # the whole package is
    assert not RustExclusion(False, (), (0, 1)).mixed


def test_build_dir_exclusion_reads_the_build_directory(tmp_path: Path) -> None:
    assert build_dir_exclusion(tmp_path) == RustExclusion(False)  # no dkms.conf: nothing said
    (tmp_path / "dkms.conf").write_text(MIXED.read_text())
    assert build_dir_exclusion(tmp_path).mixed


def test_rust_reasons_name_each_indexed_exclusion(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "dkms.conf").write_text(
        "# a C and a Rust module; see dkms-rustc's README\n"
        'BUILT_MODULE_NAME[0]="c"\nBUILT_MODULE_NAME[1]="r"\nBUILD_EXCLUSIVE_CONFIG[1]="CONFIG_RUST"\n'
    )
    reasons, uses = rust_reasons("m", "1", source, tmp_path / "etc")
    assert reasons == ['its dkms.conf has BUILD_EXCLUSIVE_CONFIG[1]="CONFIG_RUST"'] and not uses
