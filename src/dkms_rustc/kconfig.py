"""Read a kernel's kbuild configuration the way kbuild writes it.

Three files can hold it, in the order kbuild itself trusts them:
``include/config/auto.conf`` (what make includes; strings unquoted since Linux 5.17),
``.config`` (strings quoted with ``\\`` escapes), and ``/boot/config-<release>``
(a copy of ``.config``). Only ``CONFIG_*`` assignments are read; anything else is ignored,
and a line that is not valid UTF-8 is decoded with replacement characters, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dkms_rustc.fileio import read_prefix

_ASSIGNMENT_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$", re.DOTALL)

# Only these are needed; the rest of a multi-thousand-line config is skipped cheaply.
WANTED = (
    "CONFIG_RUST",
    "CONFIG_RUSTC_VERSION_TEXT",
    "CONFIG_BINDGEN_VERSION_TEXT",
    "CONFIG_RUSTC_VERSION",
    "CONFIG_RUSTC_LLVM_VERSION",
    # The architecture, which says whose arch/<dir>/Makefile names the Rust target (kernel.py).
    "CONFIG_ARM64",
    "CONFIG_RISCV",
    "CONFIG_LOONGARCH",
    "CONFIG_X86",
    "CONFIG_ARM",
    "CONFIG_S390",
    "CONFIG_PPC",
    "CONFIG_UML",
)

MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_NUMBER = 10**9  # CONFIG_RUSTC_VERSION and CONFIG_RUSTC_LLVM_VERSION are six digits


class ConfigError(Exception):
    """The configuration file exists but cannot be read as one."""


@dataclass(frozen=True)
class KbuildConfig:
    """The wanted ``CONFIG_*`` values of one configuration file."""

    path: Path
    values: dict[str, str]

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def enabled(self, name: str) -> bool:
        return self.values.get(name) in ("y", "m")

    def number(self, name: str) -> int | None:
        """An integer (decimal or 0x hex) from 0 to MAX_NUMBER; None when absent or not one
        (``CONFIG_RUSTC_LLVM_VERSION=0xfff...`` is not a version anyone could print)."""
        raw = self.values.get(name)
        if raw is None or len(raw) > 20:
            return None
        try:
            value = int(raw, 0)
        except ValueError:
            return None
        return value if 0 <= value <= MAX_NUMBER else None


def unquote(raw: str) -> str:
    """The value of a ``.config`` assignment, unescaped exactly as kbuild's confdata.c does.

    A value that starts with ``"`` runs to the first unescaped ``"``; a backslash keeps the
    character after it. Anything else, and a string with no closing quote, is returned as is.
    """
    if not raw.startswith('"'):
        return raw
    out: list[str] = []
    index = 1
    while index < len(raw):
        char = raw[index]
        if char == '"':
            return "".join(out)
        if char == "\\":
            index += 1
            if index == len(raw):
                break
            char = raw[index]
        out.append(char)
        index += 1
    return raw


def parse_config_text(text: str, wanted: tuple[str, ...] = WANTED, *, escaped: bool = True) -> dict[str, str]:
    """The ``CONFIG_*`` assignments in a .config or auto.conf text (later lines win).

    Lines end at ``\\n`` only, as kbuild reads them (one trailing ``\\r`` is dropped).
    ``escaped``: string values are quoted and escaped (``.config``); include/config/auto.conf
    holds them raw since Linux 5.17, older than any kernel with Rust.
    """
    values: dict[str, str] = {}
    wanted_set = frozenset(wanted)
    for line in text.split("\n"):
        if not line.startswith("CONFIG_"):
            continue
        if line.endswith("\r"):
            line = line[:-1]
        match = _ASSIGNMENT_RE.match(line)
        if match is None or match.group(1) not in wanted_set:
            continue
        values[match.group(1)] = unquote(match.group(2)) if escaped else match.group(2)
    return values


def read_config(path: Path, wanted: tuple[str, ...] = WANTED) -> KbuildConfig:
    """Parse one config file. Raises OSError when unreadable, ConfigError when not a config."""
    data = read_prefix(path, MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB")
    if b"\0" in data:
        raise ConfigError(f"{path} holds binary data, not a kbuild configuration")
    text = data.decode("utf-8", errors="replace")
    values = parse_config_text(text, wanted, escaped=Path(path).name != "auto.conf")
    if not values and "CONFIG_" not in text:
        raise ConfigError(f"{path} holds no CONFIG_ lines")
    return KbuildConfig(path=path, values=values)
