"""The compiler string of a Rust library archive (``.rlib``), read without running anything.

Some toolchains ship no ``libcore-*.rmeta`` beside their ``.rlib`` files (Debian bookworm's
rustc-web 1.85, whose sysroot is ``/usr``): there the version is only inside the archive.

An ``.rlib`` is an ``ar`` archive (``!<arch>\\n``, then 60-byte member headers). rustc writes
the archive's symbol table (``/`` or ``/SYM64/``) and long-name table (``//``) first, then
the member ``lib.rmeta``: the crate's metadata, either raw (``rust\\0\\0\\0`` ...; see
:mod:`dkms_rustc.rmeta`) or, on ELF targets, wrapped in a small relocatable ELF object whose
section ``.rmeta`` holds it. Toolchains that also ship ``.rmeta`` files put only the header
there (a stub); others the whole metadata. Either way its header names the compiler.

The file is untrusted input: it is read by descriptor in small pieces at offsets checked
against the file's real size, at most ``READ_CAP`` bytes in all whatever its headers say,
and every size or offset field is checked before it is used.
"""

from __future__ import annotations

import os
from pathlib import Path

from dkms_rustc.fileio import open_regular_fd
from dkms_rustc.rmeta import HEADER_READ, MAGIC, MetadataError, version_from_header

TYPE_CHECKING = False  # typing costs an import the warm path does without
if TYPE_CHECKING:
    from typing import Literal

AR_MAGIC = b"!<arch>\n"
METADATA_MEMBER = b"lib.rmeta"
READ_CAP = 64 * 1024  # everything read from one file, headers included
_MEMBER_HEADER = 60
_SPECIAL_MEMBERS = (b"/", b"//", b"/SYM64/", b"__.SYMDEF", b"__.SYMDEF SORTED")
_MAX_SPECIAL = 4  # symbol tables and long names come before lib.rmeta: a few at most
_MAX_BSD_NAME = 256
_MAX_SECTIONS = 64  # rustc's wrapper object has 5 or 6
_MAX_SECTION_NAMES = 4096
_SHT_NOBITS = 8


class RlibError(MetadataError):
    """The file is not a Rust library archive whose ``lib.rmeta`` this tool can read."""


class _Reader:
    """Bounded reads of one open file: within its size, within READ_CAP bytes in all."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.left = READ_CAP

    def read(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise RlibError(f"{what} lies outside the file")
        if length > self.left:
            raise RlibError(f"{what} is larger than this tool reads")
        data = os.pread(self.fd, length, offset)
        self.left -= len(data)
        if len(data) != length:
            raise RlibError(f"{what} is truncated")
        return data


def _decimal(field: bytes, what: str) -> int:
    digits = field.rstrip(b" ")
    if not digits or not digits.isdigit() or len(digits) > 10:
        raise RlibError(f"{what}: not a decimal number")
    return int(digits)


def _metadata_member(reader: _Reader) -> tuple[int, int]:
    """(offset, size) of the ``lib.rmeta`` member, which must be the first regular one."""
    if reader.read(0, len(AR_MAGIC), "the archive magic") != AR_MAGIC:
        raise RlibError("not an ar archive (no !<arch> magic)")
    offset = len(AR_MAGIC)
    for _ in range(_MAX_SPECIAL + 1):
        header = reader.read(offset, _MEMBER_HEADER, "a member header")
        if header[58:60] != b"`\n":
            raise RlibError("damaged member header (no terminator)")
        size = _decimal(header[48:58], "a member size")
        name = header[:16].rstrip(b" ")
        data = offset + _MEMBER_HEADER
        if data + size > reader.size:
            raise RlibError("a member lies outside the file")
        if name in _SPECIAL_MEMBERS:
            offset = data + size + (size & 1)
            continue
        if name.startswith(b"#1/"):  # BSD: the name precedes the data, inside the member
            length = _decimal(name[3:], "a member name length")
            if length > min(size, _MAX_BSD_NAME):
                raise RlibError("damaged member name")
            name = reader.read(data, length, "a member name").rstrip(b"\0")
            data, size = data + length, size - length
        elif name.endswith(b"/"):  # GNU: "lib.rmeta/"
            name = name[:-1]
        if name != METADATA_MEMBER:
            raise RlibError(f"the first member is not {METADATA_MEMBER.decode()}: not a Rust library")
        return data, size
    raise RlibError(f"no {METADATA_MEMBER.decode()} member after the archive's tables")


# (offset, width) of e_shoff, e_shentsize, e_shnum, e_shstrndx in the ELF header, and of
# sh_name, sh_type, sh_offset, sh_size in a section header (with its least size), per class.
_ELF64 = (((0x28, 8), (0x3A, 2), (0x3C, 2), (0x3E, 2)), ((0, 4), (4, 4), (24, 8), (32, 8)), 64)
_ELF32 = (((0x20, 4), (0x2E, 2), (0x30, 2), (0x32, 2)), ((0, 4), (4, 4), (16, 4), (20, 4)), 40)


def _fields(data: bytes, layout: tuple[tuple[int, int], ...], little: bool) -> list[int]:
    order: Literal["little", "big"] = "little" if little else "big"
    return [int.from_bytes(data[at : at + width], order) for at, width in layout]


def _elf_rmeta_section(reader: _Reader, base: int, size: int) -> tuple[int, int]:
    """(offset, size) within the member of the ``.rmeta`` section of the ELF object at ``base``."""
    head = reader.read(base, min(64, size), "the ELF header")
    if len(head) < 52 or head[4] not in (1, 2) or head[5] not in (1, 2):
        raise RlibError("lib.rmeta: not a readable ELF object (truncated header or unknown class)")
    header_layout, section_layout, needed = _ELF64 if head[4] == 2 else _ELF32
    little = head[5] == 1
    if len(head) < 64 and head[4] == 2:
        raise RlibError("lib.rmeta: not a readable ELF object (truncated header)")
    shoff, shentsize, shnum, shstrndx = _fields(head, header_layout, little)
    if not 0 < shnum <= _MAX_SECTIONS or not needed <= shentsize <= 256 or shstrndx >= shnum:
        raise RlibError("lib.rmeta: not a readable ELF object (implausible section table)")
    if shoff + shnum * shentsize > size:
        raise RlibError("lib.rmeta: the ELF section table lies outside the member")
    table = reader.read(base + shoff, shnum * shentsize, "the ELF section table")
    sections = []
    for index in range(shnum):
        entry = table[index * shentsize : index * shentsize + needed]
        name, kind, offset, length = _fields(entry, section_layout, little)
        if kind != _SHT_NOBITS and offset + length > size:
            raise RlibError("lib.rmeta: an ELF section lies outside the member")
        sections.append((name, kind, offset, length))
    _, _, names_offset, names_size = sections[shstrndx]
    names = reader.read(base + names_offset, min(names_size, _MAX_SECTION_NAMES), "the ELF section names")
    for name, kind, offset, length in sections:
        if kind != _SHT_NOBITS and names[name : name + 7] == b".rmeta\0":
            return offset, length
    raise RlibError("lib.rmeta: the ELF object has no .rmeta section")


def version_from_fd(fd: int) -> str:
    """The compiler string of the ``.rlib`` open at ``fd``. RlibError, MetadataError or OSError."""
    reader = _Reader(fd, os.fstat(fd).st_size)
    base, size = _metadata_member(reader)
    head = reader.read(base, min(len(MAGIC), size), "lib.rmeta")
    if head == MAGIC:
        start, length = 0, size
    elif head[:4] == b"\x7fELF":
        start, length = _elf_rmeta_section(reader, base, size)
    else:
        raise RlibError("lib.rmeta is neither rustc metadata nor an ELF object")
    return version_from_header(reader.read(base + start, min(HEADER_READ, length), "the metadata header"))


def read_rlib_version(path: Path) -> str:
    """The compiler string of the ``.rlib`` at ``path`` (only a regular file is read).

    OSError or MetadataError (RlibError) on failure."""
    fd = open_regular_fd(path)
    try:
        return version_from_fd(fd)
    finally:
        os.close(fd)
