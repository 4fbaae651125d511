"""Metadata headers and ELF sections as the real compilers on this machine write them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import kerneltree
from dkms_rustc.elfmeta import (
    ElfError,
    read_rustc_section_version,
)
from dkms_rustc.rmeta import MetadataError, read_rmeta_version, version_from_header

TOOLCHAINS = kerneltree.find_real_toolchains()
NAMES = sorted(TOOLCHAINS) or ["none"]


def _toolchain(name: str) -> kerneltree.RealToolchain:
    if name not in TOOLCHAINS:
        pytest.skip(f"no real {name} rustc on this machine")
    return TOOLCHAINS[name]


def _compile(toolchain: kerneltree.RealToolchain, tmp_path: Path, crate_type: str, source: str) -> Path:
    src = tmp_path / "lib.rs"
    src.write_text(source)
    out = tmp_path / ("libsample.so" if crate_type == "proc-macro" else "libsample.rmeta")
    emit = [] if crate_type == "proc-macro" else ["--emit=metadata"]
    subprocess.run(
        [
            str(toolchain.rustc),
            "--edition=2021",
            f"--crate-type={crate_type}",
            "--crate-name=sample",
            *emit,
            "-o",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    )
    return out


@pytest.mark.parametrize("name", NAMES)
def test_rmeta_header_of_a_crate_the_compiler_wrote(name: str, tmp_path: Path) -> None:
    toolchain = _toolchain(name)
    path = _compile(toolchain, tmp_path, "rlib", "#![no_std]\npub fn f() -> u32 { 1 }\n")
    assert read_rmeta_version(path) == toolchain.version_text


@pytest.mark.parametrize("name", NAMES)
def test_rmeta_header_of_the_toolchains_own_libcore(name: str) -> None:
    toolchain = _toolchain(name)
    libcore = next(toolchain.target_libdir.glob("libcore-*.rmeta"))
    assert read_rmeta_version(libcore) == toolchain.version_text


@pytest.mark.parametrize("name", NAMES)
def test_proc_macro_rustc_section(name: str, tmp_path: Path) -> None:
    toolchain = _toolchain(name)
    source = (
        "extern crate proc_macro;\nuse proc_macro::TokenStream;\n"
        "#[proc_macro]\npub fn same(input: TokenStream) -> TokenStream { input }\n"
    )
    path = _compile(toolchain, tmp_path, "proc-macro", source)
    assert read_rustc_section_version(path) == toolchain.version_text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "magic"),
        (b"\x7fELF\x02\x01\x01", "magic"),
        (b"rust\0\0\0\x0a" + b"\0" * 8, "truncated"),
        (b"rust\0\0\0\x0a" + b"\0" * 8 + b"\x23rustc 1.9", "truncated"),
        (b"rust\0\0\0\x0a" + b"\0" * 8 + b"\x05cargo", "unexpected"),
        (b"rust\0\0\0\x0a" + b"\0" * 8 + b"\x08rustc \xff\xfe", "not UTF-8"),
        (b"rust\0\0\0\x03" + b"\0" * 8, "older"),
        (b"rust\0\0\0\x0a" + b"\0" * 8 + b"\xff\xff\xff\xff\xff\xff", "truncated"),
    ],
)
def test_bad_headers_are_reported(data: bytes, message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        version_from_header(data)


def test_old_format_six_layout() -> None:
    text = b"rustc 1.62.0 (a8314ef7d 2022-06-27)"
    data = b"rust\0\0\0\x06" + b"\0\0\0\0" + bytes([len(text)]) + text
    assert version_from_header(data) == text.decode()


@pytest.mark.parametrize("content", [b"", b"\x7fELF", b"\x7fELF" + b"\0" * 60, b"not an elf at all"])
def test_foreign_files_are_elf_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "libmacros.so"
    path.write_bytes(content)
    with pytest.raises(ElfError):
        read_rustc_section_version(path)


def test_elf_without_rustc_section(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match=r"no \.rustc section"):
        read_rustc_section_version(Path("/bin/sh").resolve())
