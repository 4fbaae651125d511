"""Compiler versions recorded in ELF files: proc-macro ``.rustc`` sections, ``.comment`` lines.

pyelftools is imported only when an ELF file is actually read: it costs more to import than
the rest of the hook's hot path, and a warm run reads ELF results from the cache instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from dkms_rustc.fileio import open_regular
from dkms_rustc.rmeta import MetadataError, version_from_header

_SECTION_HEADER = 16  # 8-byte magic ("rust\0\0\0" + format) and an 8-byte length
_MAX_SECTION = 64 * 1024 * 1024


class ElfError(Exception):
    """The file is not an ELF file this tool can read, or lacks the section."""


def _section_bytes(stream: BinaryIO, name: str, limit: int) -> bytes:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(stream)
        section = elf.get_section_by_name(name)
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
    except (ELFError, ValueError, KeyError, IndexError, AssertionError, EOFError) as error:
        raise ElfError(f"not a readable ELF file ({error})") from error
    except Exception as error:  # pyelftools raises construct errors of many kinds
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


def read_comment_lines(path: Path) -> list[str]:
    """The NUL-separated strings of the ``.comment`` section (empty when there is none)."""
    with open_regular(path) as stream:
        if stream.read(4) != b"\x7fELF":
            raise ElfError("not an ELF file")
        stream.seek(0)
        try:
            data = _section_bytes(stream, ".comment", 1024 * 1024)
        except ElfError as error:
            if "no .comment" in str(error):
                return []
            raise
    return [part.decode("utf-8", "replace") for part in data.split(b"\0") if part]


def rustc_versions_in_comment(path: Path) -> list[str]:
    """``rustc 1.95.0 (...)`` for each ``rustc version 1.95.0 (...)`` entry of ``.comment``."""
    prefix = "rustc version "
    return ["rustc " + line[len(prefix) :] for line in read_comment_lines(path) if line.startswith(prefix)]
