"""The compiler version string stored at the start of rustc's crate metadata.

Layout (rustc-internal, so parsed defensively):
bytes 0-6 ``rust\\0\\0\\0``, byte 7 the metadata format version, then

- formats 9 and later (rustc 1.78 and newer): an 8-byte little-endian position, then a
  LEB128 length and the version string (``rustc 1.95.0 (59807616e 2026-04-14)``);
- format 6 to 8: a 4-byte big-endian position, then the LEB128 length and string at 12.

A proc-macro shared object carries the same blob in its ELF section ``.rustc``, behind an
8-byte magic and an 8-byte length (see :mod:`dkms_rustc.elfmeta`).
"""

from __future__ import annotations

from pathlib import Path

from dkms_rustc.fileio import read_prefix

MAGIC = b"rust\0\0\0"
HEADER_READ = 512  # enough for any version string rustc has written


class MetadataError(Exception):
    """The bytes are not rustc metadata this tool can read."""


def _leb128(data: bytes, offset: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while offset < len(data) and shift < 35:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
    raise MetadataError("truncated length field")


def version_from_header(data: bytes) -> str:
    """The compiler string in a metadata blob's header; MetadataError when absent."""
    if len(data) < 9 or not data.startswith(MAGIC):
        raise MetadataError("no rustc metadata header (magic bytes missing)")
    fmt = data[7]
    if fmt >= 9:
        offset = 16
    elif fmt >= 6:
        offset = 12
    else:
        raise MetadataError(f"metadata format {fmt} is older than this tool understands")
    length, offset = _leb128(data, offset)
    raw = data[offset : offset + length]
    if length == 0 or len(raw) != length:
        raise MetadataError("truncated version string")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MetadataError("version string is not UTF-8") from error
    if not text.startswith("rustc ") or not text.isprintable():
        raise MetadataError(f"unexpected version string {text[:80]!r}")
    return text


def read_rmeta_version(path: Path) -> str:
    """The compiler string of a ``.rmeta`` file. OSError or MetadataError on failure."""
    return version_from_header(read_prefix(path, HEADER_READ))
