# SPDX-License-Identifier: GPL-2.0-or-later
"""Reading the compiler out of a ``.rlib`` (dkms_rustc.rlib): the real archives of the real
compilers on this machine, archives GNU ar writes, and whatever bytes arrive (hypothesis).

A sysroot that ships ``libcore-*.rmeta`` files (rustup's, Debian's rustc-web 1.96) puts only a
metadata header (a stub) in each ``.rlib``'s ``lib.rmeta``; a sysroot without them (Debian
bookworm's rustc-web 1.85) the whole metadata; a crate rustc compiles into an ``.rlib`` of
one's own carries the whole metadata too. All three are read here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import kerneltree
import planted
from dkms_rustc import probe, rlib, runner
from dkms_rustc.cache import Cache
from dkms_rustc.rmeta import MetadataError
from dkms_rustc.toolchains import CandidateKind, Found

TOOLCHAINS = kerneltree.find_real_toolchains()
NAMES = sorted(TOOLCHAINS) or ["none"]
VERSION = "rustc 1.85.0 (4d91de4e4 2025-02-17) (built from a source tarball)"
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def member(name: bytes, data: bytes, *, bsd: bool = False) -> bytes:
    """One ``ar`` member: GNU (``name/``) or BSD (``#1/<length>``, the name inside the data)."""
    if bsd:
        data = name + data
        name = b"#1/%d" % len(name)
    elif name not in (b"/", b"//"):
        name += b"/"
    header = name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + b"644".ljust(8)
    header += str(len(data)).encode().ljust(10) + b"`\n"
    return header + data + (b"\n" if len(data) % 2 else b"")


def archive(metadata: bytes, *, bsd: bool = False, tables: bool = True) -> bytes:
    """An ``.rlib`` as rustc lays it out: symbol table, long names, lib.rmeta, an object."""
    parts = [rlib.AR_MAGIC]
    if tables:
        parts += [
            member(b"/", b"\0\0\0\x01\0\0\0\x44sym\0"),
            member(b"//", b"a-very-long-object-name.rcgu.o/\n"),
        ]
    parts += [member(b"lib.rmeta", metadata, bsd=bsd), member(b"/0", b"\x7fELF object")]
    return b"".join(parts)


def wrapped(version: str, *, wide: bool = True, little: bool = True, padding: int = 0) -> bytes:
    """rustc's ELF wrapper object: ``.rmeta`` holding metadata naming ``version``."""
    blob = planted.rmeta_header(10, version) + b"\x18x86_64-unknown-linux-gnu" + bytes(padding)
    sections = [(".note.gnu.property", 7, bytes(32)), (".rmeta", 1, blob), (".symtab", 2, bytes(24))]
    return planted.build_elf(sections, wide=wide, little=little)


def section_beyond_the_member() -> bytes:
    """The wrapper object with its .rmeta section moved past the member's end (into the next)."""
    elf = bytearray(wrapped(VERSION))
    shoff = int.from_bytes(elf[0x28:0x30], "little")
    entry = shoff + 2 * 64  # null, .note.gnu.property, .rmeta
    elf[entry + 24 : entry + 32] = (len(elf) + 70).to_bytes(8, "little")
    return bytes(elf)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- the real archives of the real compilers --------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_rlib_of_the_toolchains_sysroot(name: str) -> None:
    toolchain = kerneltree.need(name)
    archives = sorted(toolchain.target_libdir.glob("*.rlib"))
    assert archives, toolchain.target_libdir
    for path in archives:
        assert rlib.read_rlib_version(path) == toolchain.version_text, path


@pytest.mark.parametrize("name", NAMES)
def test_an_rlib_the_compiler_writes_carries_the_whole_metadata(name: str, tmp_path: Path) -> None:
    """rustc's own default (metadata embedded, as in every .rlib of a sysroot without .rmeta)."""
    toolchain = kerneltree.need(name)
    (tmp_path / "lib.rs").write_text("#![no_std]\npub fn f() -> u32 { 1 }\n")
    out = tmp_path / "libsample.rlib"
    subprocess.run(
        [str(toolchain.rustc), "--edition=2021", "--crate-type=rlib", "--crate-name=sample",
         "-o", str(out), str(tmp_path / "lib.rs")],
        check=True, capture_output=True, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    )  # fmt: skip
    assert rlib.read_rlib_version(out) == toolchain.version_text
    listed = subprocess.run(["ar", "t", str(out)], capture_output=True, text=True, check=True).stdout
    assert listed.splitlines()[0] == "lib.rmeta"  # binutils agrees on the layout


@pytest.mark.parametrize("name", NAMES)
def test_a_sysroot_with_only_rlib_files_is_read_without_running_rustc(name: str, tmp_path: Path) -> None:
    """Debian bookworm's rustc-web 1.85 layout, made from the real toolchain: its .rlib files
    only. The version comes from libcore's archive; rustc is not run."""
    toolchain = kerneltree.need(name)
    sysroot = tmp_path / "sysroot"
    libdir = sysroot / "lib" / "rustlib" / toolchain.host / "lib"
    libdir.mkdir(parents=True)
    for path in toolchain.target_libdir.glob("*.rlib"):
        kerneltree._link_or_copy(path, libdir / path.name)
    (sysroot / "bin").mkdir()
    binary = sysroot / "bin" / "rustc"
    shutil.copy2(toolchain.rustc.resolve(), binary)
    found = Found(kind=CandidateKind.RUSTC, path=binary, binary=binary, origins=("test",))
    with mock.patch.object(runner, "run_many", side_effect=AssertionError("a process was started")):
        tool = probe._from_files(found, Cache(None))
    assert tool is not None
    assert tool.version_text == toolchain.version_text
    assert tool.host == toolchain.host and tool.sysroot == sysroot
    assert tool.learned_from == f"libcore metadata in {sysroot / 'lib' / 'rustlib'}"


def test_rmeta_files_are_preferred_over_rlib_files(tmp_path: Path) -> None:
    """Where both exist (rustup, rustc-web 1.96) the .rmeta answers; the .rlib is not read."""
    libdir = tmp_path / "lib" / "rustlib" / planted.HOST / "lib"
    libdir.mkdir(parents=True)
    write(libdir / "libcore-1.rmeta", planted.rmeta_header(10, "rustc 1.96.0 (ac68faa20 2026-05-25)"))
    write(libdir / "libcore-1.rlib", archive(wrapped("rustc 0.0.0 (never read)")))
    assert probe._libcore_versions(tmp_path / "lib" / "rustlib") == {
        "rustc 1.96.0 (ac68faa20 2026-05-25)": {planted.HOST}
    }
    (libdir / "libcore-1.rmeta").unlink()
    assert probe._libcore_versions(tmp_path / "lib" / "rustlib") == {
        "rustc 0.0.0 (never read)": {planted.HOST}
    }


def test_gnu_ar_archives_with_raw_metadata(tmp_path: Path) -> None:
    """An archive binutils' ar writes (its own symbol table and names), lib.rmeta raw."""
    if shutil.which("ar") is None:
        pytest.skip("no ar (binutils)")
    write(tmp_path / "lib.rmeta", planted.rmeta_header(10, VERSION) + bytes(100))
    write(tmp_path / "x.o", b"object")
    out = tmp_path / "libx.rlib"
    subprocess.run(["ar", "rcs", str(out), "lib.rmeta", "x.o"], cwd=tmp_path, check=True)
    assert rlib.read_rlib_version(out) == VERSION


# -- layouts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("wide", [True, False])
@pytest.mark.parametrize("little", [True, False])
@pytest.mark.parametrize("bsd", [False, True])
def test_layouts(tmp_path: Path, wide: bool, little: bool, bsd: bool) -> None:
    path = write(tmp_path / "libcore-x.rlib", archive(wrapped(VERSION, wide=wide, little=little), bsd=bsd))
    assert rlib.read_rlib_version(path) == VERSION
    raw = write(tmp_path / "raw.rlib", archive(planted.rmeta_header(9, VERSION), bsd=bsd, tables=False))
    assert rlib.read_rlib_version(raw) == VERSION


def test_whole_metadata_is_not_read(tmp_path: Path) -> None:
    """A lib.rmeta of 8 MiB (the whole metadata, as 1.85's libcore: 50 MiB): only headers are read."""
    path = write(tmp_path / "big.rlib", archive(wrapped(VERSION, padding=8 << 20)))
    reads: list[int] = []
    real_pread = os.pread

    def counting(fd: int, length: int, offset: int) -> bytes:
        reads.append(length)
        return real_pread(fd, length, offset)

    with mock.patch.object(os, "pread", counting):
        assert rlib.read_rlib_version(path) == VERSION
    assert sum(reads) <= 4096, reads


BAD_ARCHIVES = [
    (b"", "outside the file"),
    (b"!<thin>\n", "not an ar archive"),
    (b"PK\x03\x04 a zip file....", "not an ar archive"),
    (rlib.AR_MAGIC, "outside the file"),
    (rlib.AR_MAGIC + b"x" * 60, "no terminator"),
    (rlib.AR_MAGIC + member(b"lib.rmeta", b"rust")[:48] + b"12x45     `\n", "not a decimal"),
    (rlib.AR_MAGIC + member(b"lib.rmeta", b"rust")[:48] + b"-1        `\n", "not a decimal"),
    (rlib.AR_MAGIC + member(b"lib.rmeta", b"rust")[:48] + b"9999999999`\n", "a member lies outside the file"),
    (rlib.AR_MAGIC + member(b"/", b"syms") * 5 + member(b"lib.rmeta", b"x"), "after the archive's tables"),
    (archive(b"")[:-120], "outside the file"),
    (rlib.AR_MAGIC + member(b"main.o", b"\x7fELF"), "first member is not lib.rmeta"),
    (rlib.AR_MAGIC + member(b"lib.rmeta-link", b"x"), "first member is not lib.rmeta"),
    (archive(b"plain text"), "neither rustc metadata nor an ELF object"),
    (archive(b"\x7fELF\x02\x01\x01"), "truncated header"),
    (archive(planted.build_elf([(".text", 1, b"\x90")])), "no .rmeta section"),
    (archive(planted.build_elf([(".rmeta", 8, b"")])), "no .rmeta section"),
    (archive(planted.rmeta_header(10, "cargo 1.0")), "unexpected version string"),
    (archive(wrapped(VERSION)[:-40]), "outside the member"),
    (archive(section_beyond_the_member()), "an ELF section lies outside the member"),
]


@pytest.mark.parametrize(("data", "message"), BAD_ARCHIVES, ids=[f"{i}" for i in range(len(BAD_ARCHIVES))])
def test_bad_archives_are_reported(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(rlib.RlibError if "version string" not in message else MetadataError, match=message):
        rlib.read_rlib_version(write(tmp_path / "libcore-x.rlib", data))


def test_a_fifo_is_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "libcore-x.rlib"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        rlib.read_rlib_version(fifo)


# -- whatever bytes arrive (hypothesis) ---------------------------------------------------------


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="dkms-rustc-rlib-"))
    yield directory
    shutil.rmtree(directory)


def _read_safely(path: Path) -> None:
    """Answers a compiler string or raises its own error; never reads more than READ_CAP."""
    total = 0
    real_pread = os.pread

    def counting(fd: int, length: int, offset: int) -> bytes:
        nonlocal total
        total += length
        return real_pread(fd, length, offset)

    with mock.patch.object(os, "pread", counting):
        try:
            version = rlib.read_rlib_version(path)
        except (MetadataError, OSError):
            pass
        else:
            assert version.startswith("rustc ") and version.isprintable()
    assert total <= rlib.READ_CAP


version_strings = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")), min_size=1, max_size=120
).map(lambda tail: "rustc " + tail)
version_strings = version_strings.filter(str.isprintable)


@SETTINGS
@given(version_strings, st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_archives_round_trip(
    scratch: Path, version: str, wide: bool, little: bool, bsd: bool, elf: bool
) -> None:
    metadata = wrapped(version, wide=wide, little=little) if elf else planted.rmeta_header(10, version)
    path = write(scratch / "libcore-x.rlib", archive(metadata, bsd=bsd))
    assert rlib.read_rlib_version(path) == version


@SETTINGS
@given(st.binary(max_size=2048))
@example(rlib.AR_MAGIC)
@example(rlib.AR_MAGIC + b"/".ljust(48) + b"0".ljust(10) + b"`\n")
def test_any_bytes_as_an_rlib_raise_only_its_errors(scratch: Path, data: bytes) -> None:
    _read_safely(write(scratch / "libcore-x.rlib", data))
    _read_safely(write(scratch / "libcore-x.rlib", rlib.AR_MAGIC + data))


@SETTINGS
@given(st.data())
def test_mutated_archives_raise_only_their_errors(scratch: Path, data: st.DataObject) -> None:
    """Mutations aimed at what is parsed: member headers, the ELF header and section table."""
    original = bytearray(
        archive(wrapped(VERSION, wide=data.draw(st.booleans()), little=data.draw(st.booleans())),
                bsd=data.draw(st.booleans()))
    )  # fmt: skip
    for _ in range(data.draw(st.integers(min_value=1, max_value=8))):
        index = data.draw(st.integers(min_value=0, max_value=len(original) - 1))
        original[index] = data.draw(
            st.sampled_from([0, 0x20, 0x30, 0x39, 0x7F, 0xFF, data.draw(st.integers(0, 255))])
        )
    cut = data.draw(st.integers(min_value=len(original) // 2, max_value=len(original)))
    _read_safely(write(scratch / "libcore-x.rlib", bytes(original[:cut])))


@pytest.fixture(scope="module")
def real_rlib_head() -> tuple[bytes, int]:
    """The start of a real libcore .rlib, up to the end of its lib.rmeta (a stub in a sysroot
    that has .rmeta files), and where the lib.rmeta member header is."""
    for toolchain in TOOLCHAINS.values():
        for path in toolchain.target_libdir.glob("libcore-*.rlib"):
            with contextlib.suppress(OSError, MetadataError):
                rlib.read_rlib_version(path)
                head = path.read_bytes()[: 256 * 1024]
                return head, head.index(b"lib.rmeta/")
    pytest.skip("no real .rlib on this machine")


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_real_rlib_raises_only_its_errors(
    scratch: Path, real_rlib_head: tuple[bytes, int], data: st.DataObject
) -> None:
    """Mutations aimed at what is parsed: the archive's first header, lib.rmeta's header, the
    wrapper object (its ELF header and section table) and the metadata header."""
    head, at = real_rlib_head
    blob = bytearray(head)
    regions = [(0, 68), (at, at + 60), (at + 60, min(len(blob), at + 60 + 1024))]
    for _ in range(data.draw(st.integers(min_value=1, max_value=10))):
        start, end = data.draw(st.sampled_from(regions))
        index = data.draw(st.integers(min_value=start, max_value=end - 1))
        blob[index] = data.draw(st.integers(0, 255))
    _read_safely(write(scratch / "libcore-x.rlib", bytes(blob)))


# -- cost ---------------------------------------------------------------------------------------

_IMPORTS = """\
import sys
sys.path.insert(0, sys.argv[1])
import dkms_rustc.probe
before = set(sys.modules)
import dkms_rustc.rlib
print(" ".join(sorted(set(sys.modules) - before)))
print("dkms_rustc.rlib" in before)
"""


def test_probe_imports_the_reader_only_when_a_sysroot_needs_it() -> None:
    """Off the warm path of a sysroot with .rmeta files (rustup's): probe does not import it,
    and importing it costs nothing but itself."""
    src = str(Path(rlib.__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _IMPORTS, src], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["dkms_rustc.rlib", "False"], out
