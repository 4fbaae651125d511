# SPDX-License-Identifier: GPL-2.0-or-later
"""The dynamic section reader and the loader closure, against real ELF files (rustc's own, and
gcc's) and against crafted ones that must be refused within limits."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

import kerneltree
import planted
from dkms_rustc import loader, trust
from dkms_rustc.cache import Cache
from dkms_rustc.loader import LoaderError, loader_closure, read_dynamic

TOOLCHAINS = kerneltree.find_real_toolchains()
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")


def _readelf(path: Path) -> str:
    if shutil.which("readelf") is None:
        pytest.skip("readelf is not installed")
    return subprocess.run(
        ["readelf", "-d", "-l", str(path)], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize("name", ["stable", "nightly", "debian"])
def test_a_real_rustc_reads_as_readelf_says(name: str) -> None:
    if name not in TOOLCHAINS:
        pytest.skip(f"no real {name} rustc here")
    rustc = TOOLCHAINS[name].rustc.resolve()
    info = read_dynamic(str(rustc))
    assert info is not None
    shown = _readelf(rustc)
    for needed in info.needed:
        assert f"Shared library: [{needed}]" in shown
    assert shown.count("(NEEDED)") == len(info.needed)
    assert ("(RUNPATH)" in shown) is bool(info.runpath)
    assert info.interpreter is not None and f"interpreter: {info.interpreter}]" in shown


@needs_gcc
@pytest.mark.parametrize("new_dtags", [True, False], ids=["RUNPATH", "RPATH"])
def test_run_paths_of_a_gcc_program(new_dtags: bool, tmp_path: Path) -> None:
    tc = planted.elf_toolchain(
        tmp_path / "tc", "rustc 1.95.0 (59807616e 2026-04-14)", tmp_path / "M", new_dtags=new_dtags
    )
    info = read_dynamic(str(tc / "bin" / "rustc"))
    assert info is not None
    assert (info.runpath, info.rpath) == (
        (("$ORIGIN/../lib",), ()) if new_dtags else ((), ("$ORIGIN/../lib",))
    )
    assert "librustc_driver-0123456789abcdef.so" in info.needed
    closure = loader_closure(str(tc / "bin" / "rustc"))
    assert closure.problem is None
    assert str(tc / "bin" / ".." / "lib" / "librustc_driver-0123456789abcdef.so") in closure.files
    assert any(path.endswith("/lib/../lib/librt.so.1") for path in closure.files)  # the driver's own RUNPATH
    assert str(tc / "bin" / ".." / "lib") in closure.search_dirs
    assert loader.LD_SO_CACHE in closure.files and any("ld-linux" in path for path in closure.files)


def test_a_script_maps_its_interpreter(tmp_path: Path) -> None:
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh -e\necho hi\n")
    assert read_dynamic(str(script)) == loader.Dynamic(interpreter="/bin/sh")
    closure = loader_closure(str(script))
    assert "/bin/sh" in closure.files and closure.problem is None


def test_what_the_kernel_would_not_start_maps_nothing(tmp_path: Path) -> None:
    (tmp_path / "data").write_bytes(b"just bytes")
    assert read_dynamic(str(tmp_path / "data")) is None


@needs_gcc
@pytest.mark.parametrize(
    ("runpath", "problem"),
    [("$PLATFORM/lib", "does not resolve"), ("lib", "is relative"), ("${LIB}", "does not resolve")],
)
def test_run_paths_this_tool_cannot_judge_make_the_program_untrusted(
    runpath: str, problem: str, tmp_path: Path
) -> None:
    tc = planted.elf_toolchain(
        tmp_path / "tc", "rustc 1.0.0", tmp_path / "M", runpath=(runpath, "$ORIGIN/../lib")
    )
    closure = loader_closure(str(tc / "bin" / "rustc"))
    assert closure.problem is not None and problem in closure.problem
    reason = trust.untrusted_libraries_reason(tc / "bin" / "rustc", euid=0)
    assert reason is not None and problem in reason


# -- crafted ELF files: refused, quickly ---------------------------------------------------------


@pytest.fixture(scope="module")
def small_elf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    path = tmp_path_factory.mktemp("elf") / "lib.so"
    planted.payload_library(path, Path("/nonexistent/marker"))
    return path.read_bytes()


def _patched(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def _phdrs(data: bytes) -> list[tuple[int, int, int, int, int]]:
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    rows = []
    for index in range(phnum):
        kind, _, offset, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", data, phoff + index * phentsize)
        rows.append((phoff + index * phentsize, kind, offset, vaddr, filesz))
    return rows


def _crafted(small_elf: bytes, how: str) -> bytes:
    rows = _phdrs(small_elf)
    dynamic = next(row for row in rows if row[1] == loader.PT_DYNAMIC)
    if how == "65535 program headers":
        return _patched(small_elf, 0x38, "<H", 0xFFFF)
    if how == "program headers beyond the file":
        return _patched(small_elf, 0x20, "<Q", 1 << 40)
    if how == "a dynamic section of 2**40 bytes":
        return _patched(small_elf, dynamic[0] + 32, "<Q", 1 << 40)
    if how == "a dynamic section without end":
        out = bytearray(small_elf)
        for index in range(dynamic[4] // 16):  # every entry DT_NEEDED 0
            struct.pack_into("<qQ", out, dynamic[2] + 16 * index, loader.DT_NEEDED, 0)
        return bytes(out)
    if how == "a string table outside every segment":
        out = bytearray(small_elf)
        for index in range(dynamic[4] // 16):
            tag, _ = struct.unpack_from("<qQ", out, dynamic[2] + 16 * index)
            if tag == loader.DT_STRTAB:
                struct.pack_into("<qQ", out, dynamic[2] + 16 * index, tag, 1 << 50)
        return bytes(out)
    raise ValueError(how)


@pytest.mark.parametrize(
    "how",
    [
        "65535 program headers",
        "program headers beyond the file",
        "a dynamic section of 2**40 bytes",
        "a dynamic section without end",
        "a string table outside every segment",
    ],
)
def test_crafted_elf_files_are_refused_within_limits(how: str, small_elf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "crafted.so"
    path.write_bytes(_crafted(small_elf, how))
    start = time.monotonic()
    try:
        read_dynamic(str(path))
    except LoaderError:
        pass
    else:
        info = read_dynamic(str(path))
        assert info is not None and len(info.needed) <= 256  # read, but within its bounds
    assert time.monotonic() - start < 1.0
    closure = loader_closure(str(path))  # never an exception, whatever the file holds
    assert closure.problem is None or isinstance(closure.problem, str)


# -- the closure is remembered, and forgotten when anything it came from changes --------------------


@needs_gcc
def test_a_remembered_closure_is_used_until_a_directory_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path.chmod(0o755)
    tc = planted.elf_toolchain(
        tmp_path / "tc", "rustc 1.0.0", tmp_path / "M", runpath=(str(tmp_path / "extra"), "$ORIGIN/../lib")
    )
    cache = Cache(tmp_path / "cache")
    assert trust.untrusted_libraries_reason(tc / "bin" / "rustc", euid=0, cache=cache) is None
    computed: list[str] = []
    real = loader.loader_closure

    def counting(path: str, origin: str | None = None) -> loader.Closure:
        computed.append(path)
        return real(path, origin)

    monkeypatch.setattr(loader, "loader_closure", counting)
    assert (
        trust.untrusted_libraries_reason(tc / "bin" / "rustc", euid=0, cache=Cache(tmp_path / "cache"))
        is None
    )
    assert computed == []  # remembered
    (tmp_path / "extra").mkdir()  # a run-path directory appears: what the loader finds may change
    if os.geteuid() == 0:
        os.chown(tmp_path / "extra", planted.USER_UID, planted.USER_UID)
    reason = trust.untrusted_libraries_reason(tc / "bin" / "rustc", euid=0, cache=Cache(tmp_path / "cache"))
    assert len(computed) == 1
    if os.geteuid() == 0:
        assert reason is not None and f"{tmp_path / 'extra'} is owned by uid {planted.USER_UID}" in reason


@needs_gcc
def test_a_library_dlopened_through_a_link_takes_origin_from_the_link(tmp_path: Path) -> None:
    """glibc's $ORIGIN for a dlopened object is the directory of the name it was opened by
    (a proc macro in rust/ that links elsewhere), for a program that of the file itself."""
    real = tmp_path / "real" / "libmacros.so"
    planted._gcc(real, "int f(void) { return 0; }\n", {}, "-shared", "-fPIC", "-Wl,-rpath,$ORIGIN/lib",
                 "-Wl,--enable-new-dtags")  # fmt: skip
    (tmp_path / "rust").mkdir()
    (tmp_path / "rust" / "libmacros.so").symlink_to(real)
    as_library = loader_closure(str(real), origin=str(tmp_path / "rust"))
    assert str(tmp_path / "rust" / "lib") in as_library.search_dirs
    assert str(tmp_path / "real" / "lib") in loader_closure(str(real)).search_dirs


@needs_gcc
def test_a_library_needed_by_a_relative_path_makes_the_program_untrusted(tmp_path: Path) -> None:
    """DT_NEEDED ``sub/libx.so`` is opened relative to the working directory (make's)."""
    lib = tmp_path / "sub" / "libx.so"
    planted._gcc(lib, "int x(void) { return 0; }\n", {}, "-shared", "-fPIC", "-Wl,-soname,sub/libx.so")
    program = tmp_path / "bin" / "prog"
    planted._gcc(
        program, "extern int x(void);\nint main(void) { return x(); }\n", {}, "-Wl,--no-as-needed", str(lib)
    )
    assert "sub/libx.so" in (read_dynamic(str(program)) or loader.Dynamic()).needed
    closure = loader_closure(str(program))
    assert closure.problem is not None and "a relative path" in closure.problem
