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

_ASSIGNMENT_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_QUOTED_RE = re.compile(r'^"((?:[^"\\]|\\.)*)"$')
_ESCAPE_RE = re.compile(r"\\(.)")

# Only these are needed; the rest of a multi-thousand-line config is skipped cheaply.
WANTED = (
    "CONFIG_RUST",
    "CONFIG_RUST_IS_AVAILABLE",
    "CONFIG_HAVE_RUST",
    "CONFIG_RUSTC_VERSION_TEXT",
    "CONFIG_BINDGEN_VERSION_TEXT",
    "CONFIG_RUSTC_VERSION",
    "CONFIG_RUSTC_LLVM_VERSION",
    "CONFIG_RUSTC_LLVM_MAJOR_VERSION",
    "CONFIG_CC_IS_CLANG",
    "CONFIG_CC_VERSION_TEXT",
    "CONFIG_MODULES",
)

MAX_CONFIG_BYTES = 16 * 1024 * 1024


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
        raw = self.values.get(name)
        if raw is None:
            return None
        try:
            return int(raw, 0)
        except ValueError:
            return None


def unquote(raw: str) -> str:
    """The value of a kconfig assignment: quoted strings unescaped, anything else as is."""
    match = _QUOTED_RE.match(raw)
    if match is None:
        return raw
    return _ESCAPE_RE.sub(r"\1", match.group(1))


def parse_config_text(text: str, wanted: tuple[str, ...] = WANTED) -> dict[str, str]:
    """The ``CONFIG_*`` assignments in a .config or auto.conf text (later lines win)."""
    values: dict[str, str] = {}
    wanted_set = frozenset(wanted)
    for line in text.splitlines():
        if not line.startswith("CONFIG_"):
            continue
        match = _ASSIGNMENT_RE.match(line.rstrip("\r"))
        if match is None or match.group(1) not in wanted_set:
            continue
        values[match.group(1)] = unquote(match.group(2))
    return values


def read_config(path: Path, wanted: tuple[str, ...] = WANTED) -> KbuildConfig:
    """Parse one config file. Raises OSError when unreadable, ConfigError when not a config."""
    with open(path, "rb") as stream:
        data = stream.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB")
    if b"\0" in data:
        raise ConfigError(f"{path} holds binary data, not a kbuild configuration")
    text = data.decode("utf-8", errors="replace")
    values = parse_config_text(text, wanted)
    if not values and "CONFIG_" not in text:
        raise ConfigError(f"{path} holds no CONFIG_ lines")
    return KbuildConfig(path=path, values=values)


def config_candidates(tree: Path, kernelrelease: str | None) -> list[Path]:
    """Where to look for the configuration, most authoritative first."""
    paths = [tree / "include" / "config" / "auto.conf", tree / ".config"]
    if kernelrelease:
        paths.append(Path("/boot") / f"config-{kernelrelease}")
    return paths
