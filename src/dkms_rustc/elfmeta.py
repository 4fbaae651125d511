"""The compiler version recorded in a proc-macro shared object's ``.rustc`` section.

pyelftools reads the sections. It walks whatever a file's header announces for as long as
that takes (a crafted proc macro announcing 300000 sections, or section names without an
end, stalls it for many seconds), and these files may come from a tree someone else
controls; so :func:`_check_layout` first reads the ELF header, the section header table and
the section name table with hard limits, and only a file whose layout is plausible is handed
to pyelftools. pyelftools is imported only when an ELF file is actually read: a warm run
reads ELF results from the cache instead.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, NamedTuple

from dkms_rustc.fileio import open_regular
from dkms_rustc.rmeta import MetadataError, version_from_header

_SECTION_HEADER = 16  # 8-byte magic ("rust\0\0\0" + format) and an 8-byte length
_MAX_SECTION = 64 * 1024 * 1024
_MAX_SECTIONS = 4096  # a proc macro has about 40
_MAX_NAMES = 1024 * 1024  # the section name table
_MAX_NAME = 4096  # one section name
_SHT_NOBITS = 8
_SHN_XINDEX = 0xFFFF


class ElfError(Exception):
    """The file is not an ELF file this tool can read, or lacks the section."""


class _Section(NamedTuple):
    name: int
    type: int
    offset: int
    size: int
    link: int


def _read_exactly(stream: BinaryIO, offset: int, size: int, what: str) -> bytes:
    stream.seek(offset)
    data = stream.read(size)
    if len(data) != size:
        raise ElfError(f"not a readable ELF file ({what} lies outside the file)")
    return data


def _sections(stream: BinaryIO) -> tuple[list[_Section], int]:
    """Every section header and the index of the section name table."""
    head = stream.read(64)
    if len(head) < 52 or head[:4] != b"\x7fELF" or head[4] not in (1, 2) or head[5] not in (1, 2):
        raise ElfError("not a readable ELF file (truncated header or unknown class)")
    order = "<" if head[5] == 1 else ">"
    wide = head[4] == 2
    if wide:
        if len(head) < 64:
            raise ElfError("not a readable ELF file (truncated header)")
        (shoff,) = struct.unpack_from(order + "Q", head, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", head, 0x3A)
        layout, needed = order + "IIQQQQI", 64
    else:
        (shoff,) = struct.unpack_from(order + "I", head, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", head, 0x2E)
        layout, needed = order + "IIIIIII", 40
    if shoff == 0:
        return [], 0
    if shentsize < needed:
        raise ElfError(f"not a readable ELF file (section headers of {shentsize} bytes)")

    def section(raw: bytes) -> _Section:
        name, kind, _flags, _addr, offset, size, link = struct.unpack_from(layout, raw)
        return _Section(name, kind, offset, size, link)

    first = section(_read_exactly(stream, shoff, shentsize, "the section table"))
    count = shnum or first.size  # more than 0xff00 sections: the count is in the first header
    if count > _MAX_SECTIONS:
        raise ElfError(f"implausibly many sections ({count})")
    table = _read_exactly(stream, shoff, count * shentsize, "the section table")
    headers = [section(table[index * shentsize : (index + 1) * shentsize]) for index in range(count)]
    if shstrndx == _SHN_XINDEX:
        shstrndx = first.link
    return headers, shstrndx


def _check_layout(stream: BinaryIO) -> None:
    """ElfError unless the section table and every section name lie within bounded limits."""
    headers, names_index = _sections(stream)
    if not headers:
        return
    if names_index >= len(headers):
        raise ElfError("not a readable ELF file (no section name table)")
    names_header = headers[names_index]
    if names_header.size > _MAX_NAMES:
        raise ElfError(f"not a readable ELF file (a section name table of {names_header.size} bytes)")
    names = _read_exactly(stream, names_header.offset, names_header.size, "the section name table")
    for header in headers:
        end = names.find(b"\0", header.name, header.name + _MAX_NAME)
        if end < 0:
            raise ElfError("not a readable ELF file (a section name outside the name table)")


def _section_bytes(stream: BinaryIO, name: str, limit: int) -> bytes:
    try:
        _check_layout(stream)
    except (struct.error, OverflowError, ValueError) as error:  # offsets beyond what seek takes
        raise ElfError(f"not a readable ELF file ({error})") from error
    stream.seek(0)
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        section = ELFFile(stream).get_section_by_name(name)
        if section is None:
            raise ElfError(f"no {name} section")
        if section["sh_type"] == "SHT_NOBITS":
            raise ElfError(f"{name} section holds no data")
        size = int(section["sh_size"])
        if size > _MAX_SECTION:
            raise ElfError(f"{name} section is implausibly large ({size} bytes)")
        stream.seek(int(section["sh_offset"]))
        return stream.read(min(size, limit))
    except ElfError:
        raise
    except ELFError as error:
        raise ElfError(f"not a readable ELF file ({error})") from error
    except Exception as error:  # pyelftools' parsers raise errors of many kinds on bad input
        raise ElfError(f"not a readable ELF file ({type(error).__name__})") from error


def read_rustc_section_version(path: Path) -> str:
    """The compiler string in a proc macro's ``.rustc`` section. OSError/ElfError on failure."""
    with open_regular(path) as stream:
        if stream.read(4) != b"\x7fELF":
            raise ElfError("not an ELF file")
        stream.seek(0)
        data = _section_bytes(stream, ".rustc", 4096)
    try:
        return version_from_header(data[_SECTION_HEADER:])
    except MetadataError as error:
        # rustc before 1.80-ish compressed this section; the header is then unreadable.
        raise ElfError(f".rustc section: {error}") from error
