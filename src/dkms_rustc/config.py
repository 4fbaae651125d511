"""The configuration file, ``/etc/dkms-rustc.conf``: ``key = value`` lines, parsed, never sourced.

::

    # what to do when no installed rustc matches the kernel: select (stop), warn, fallback
    policy = select
    # extra places to look for toolchains (a rustup home, a toolchain dir or a bin dir)
    search = /opt/rust
    # directories whose compilers root may run although a non-root user owns them
    trusted_dir = /home/builder/.rustup
    [module bcachefs]
    policy = fallback
    fallback_make_args = BCACHEFS_RUST=n

Keys after a ``[module NAME]`` line apply only to that DKMS module. ``trusted_dir`` widens
what root will execute, so it is honoured only in the system file, never from a file given
on the command line (which a module's dkms.conf controls).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

SYSTEM_CONFIG = Path("/etc/dkms-rustc.conf")
POLICIES = ("select", "warn", "fallback")
_SECTION_RE = re.compile(r"^\[\s*module\s+([A-Za-z0-9_.+@-]+)\s*\]$")
_SAFE_WORD_RE = re.compile(r"^[A-Za-z0-9_./+,:@=-]+$")
_BOOLEANS = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
MODULE_KEYS = ("policy", "fallback_make_args", "proof", "require_bindgen")
GLOBAL_KEYS = ("search", "search_defaults", "trusted_dir", "cache_dir", *MODULE_KEYS)


class ConfigFileError(Exception):
    """The configuration file is unreadable, untrusted or malformed."""


@dataclass(frozen=True)
class Settings:
    policy: str = "select"
    fallback_make_args: tuple[str, ...] = ()
    search: tuple[Path, ...] = ()
    search_defaults: bool = True
    trusted_dirs: tuple[Path, ...] = ()
    proof: bool = True
    require_bindgen: bool = False
    cache_dir: Path | None = None
    origins: dict[str, str] = field(default_factory=dict)  # key -> where its value came from


def _boolean(value: str, where: str) -> bool:
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise ConfigFileError(f"{where}: expected yes or no, got {value!r}") from None


def _directory(value: str, where: str) -> Path:
    if not value.startswith("/"):
        raise ConfigFileError(f"{where}: {value!r} is not an absolute path")
    return Path(value)


def _apply(settings: Settings, key: str, value: str, where: str) -> Settings:
    origins = {**settings.origins, key: where}
    if key == "policy":
        if value not in POLICIES:
            raise ConfigFileError(f"{where}: policy must be one of {', '.join(POLICIES)}, not {value!r}")
        return replace(settings, policy=value, origins=origins)
    if key == "fallback_make_args":
        words = tuple(value.split())
        bad = [word for word in words if not _SAFE_WORD_RE.match(word)]
        if bad:
            raise ConfigFileError(f"{where}: {bad[0]!r} is not a plain make argument (VAR=value)")
        return replace(settings, fallback_make_args=words, origins=origins)
    if key == "search":
        return replace(settings, search=(*settings.search, _directory(value, where)), origins=origins)
    if key == "trusted_dir":
        directory = _directory(value, where)
        return replace(settings, trusted_dirs=(*settings.trusted_dirs, directory), origins=origins)
    if key == "cache_dir":
        return replace(settings, cache_dir=_directory(value, where), origins=origins)
    if key == "search_defaults":
        return replace(settings, search_defaults=_boolean(value, where), origins=origins)
    if key == "proof":
        return replace(settings, proof=_boolean(value, where), origins=origins)
    if key == "require_bindgen":
        return replace(settings, require_bindgen=_boolean(value, where), origins=origins)
    raise ConfigFileError(f"{where}: unknown key {key!r}")


def _check_owner(path: Path, stat_result: os.stat_result) -> None:
    if os.geteuid() != 0:
        return
    if stat_result.st_uid != 0 or stat_result.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigFileError(
            f"{path} is not owned by root or is writable by others; as root, dkms-rustc reads "
            f"only a configuration file that only root can change (chown root: {path}; chmod 644 {path})"
        )


def parse(text: str, name: str, module: str | None, *, system: bool, base: Settings) -> Settings:
    settings = base
    section: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{name}:{number}"
        if not line or line.startswith("#"):
            continue
        match = _SECTION_RE.match(line)
        if match:
            section = match.group(1)
            continue
        if line.startswith("["):
            raise ConfigFileError(f"{where}: expected [module NAME], got {line!r}")
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ConfigFileError(f"{where}: expected key = value, got {line!r}")
        if section is not None and key not in MODULE_KEYS:
            raise ConfigFileError(f"{where}: {key!r} cannot be set per module")
        if key not in GLOBAL_KEYS:
            raise ConfigFileError(f"{where}: unknown key {key!r}")
        if key == "trusted_dir" and not system:
            raise ConfigFileError(
                f"{where}: trusted_dir is honoured only in {SYSTEM_CONFIG}, "
                "not in a file named on the command line"
            )
        if section is not None and section != module:
            continue
        settings = _apply(settings, key, value, where if section is None else f"{where} [module {section}]")
    return settings


def load(path: Path | None, module: str | None) -> Settings:
    """Settings from the system file (when present) and then ``path`` (when given)."""
    settings = Settings()
    files = [(SYSTEM_CONFIG, True)]
    if path is not None:
        files.append((path, False))
    for file_path, system in files:
        try:
            fd = os.open(file_path, os.O_RDONLY)
        except FileNotFoundError:
            if system:
                continue
            raise ConfigFileError(f"the configuration file {file_path} does not exist") from None
        except OSError as error:
            raise ConfigFileError(
                f"the configuration file {file_path} cannot be read ({error.strerror})"
            ) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ConfigFileError(f"the configuration file {file_path} is not a regular file")
            _check_owner(file_path, st)
            data = os.read(fd, 1024 * 1024)
        except OSError as error:
            raise ConfigFileError(
                f"the configuration file {file_path} cannot be read ({error.strerror})"
            ) from None
        finally:
            os.close(fd)
        text = data.decode("utf-8", "replace")
        settings = parse(text, str(file_path), module, system=system, base=settings)
    return settings
