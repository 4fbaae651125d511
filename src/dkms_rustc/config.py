"""The configuration file, ``/etc/dkms-rustc.conf``: ``key = value`` lines, parsed, never sourced.

::

    # what to do when no installed rustc matches the kernel: select (stop), warn, fallback
    policy = select
    # extra places to look for toolchains (a rustup home, a toolchain dir or a bin dir)
    search = /opt/rust
    # directories whose compilers root may run although a non-root user owns them
    trusted_dir = /home/builder/.rustup
    # for kernels whose release matches the pattern, prefer this rustc (a path or a rustup
    # toolchain name); it is still checked against the kernel and refused when it does not match
    pin = 7.2.* /opt/rust-1.96/bin/rustc
    [module bcachefs]
    policy = fallback
    fallback_make_args = BCACHEFS_RUST=n

Keys after a ``[module NAME]`` line apply only to that DKMS module. The keys that widen
what root executes (``trusted_dir``, ``auto_install``, ``rustup``, ``rustup_home``) are
honoured only in the system file, never from a file given on the command line (which a
module's dkms.conf controls). Every key is described in :data:`KEYS`.
"""

from __future__ import annotations

import enum
import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from dkms_rustc.fileio import NotRegularFileError, open_regular_fd, readable_by_all
from dkms_rustc.text import is_plain_word
from dkms_rustc.trust import untrusted_directory_reason

SYSTEM_CONFIG = Path("/etc/dkms-rustc.conf")
MAX_CONFIG_FILE = 1024 * 1024


class Policy(str, enum.Enum):
    """What to do when no installed rustc fits the kernel."""

    SELECT = "select"  # stop the build
    WARN = "warn"  # build anyway with kbuild's default rustc
    FALLBACK = "fallback"  # build with fallback_make_args (a module's C-only variant)

    def __str__(self) -> str:
        return self.value


POLICIES = tuple(policy.value for policy in Policy)
MODULE_NAME_RE = re.compile(r"[A-Za-z0-9_.+@-]{1,128}")  # what a [module NAME] section may name
_SECTION_RE = re.compile(r"^\[\s*module\s+([A-Za-z0-9_.+@-]{1,128})\s*\]$")
_BOOLEANS = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
MODULE_KEYS = ("policy", "fallback_make_args", "proof", "require_bindgen", "pin")
GLOBAL_KEYS = (
    "search",
    "search_defaults",
    "trusted_dir",
    "cache_dir",
    "syslog",
    "auto_install",
    "rustup",
    "rustup_home",
    "kernel_hook_fail",
    "package_hook_fail",
    *MODULE_KEYS,
)
SYSTEM_ONLY_KEYS = ("trusted_dir", "auto_install", "rustup", "rustup_home")
AUTO_INSTALL = ("no", "rustup")

# Every key, its default as written in the file, and what it does: for `dkms-rustc config`,
# the man page and the README.
KEYS: dict[str, tuple[str, str]] = {
    "policy": (
        "select",
        "what to do when no installed rustc matches the kernel: select (stop the build), "
        "warn (build anyway with kbuild's default rustc), fallback (build with fallback_make_args)",
    ),
    "fallback_make_args": ("", "make arguments for policy fallback, e.g. BCACHEFS_RUST=n"),
    "proof": ("yes", "test-compile against the kernel's Rust metadata before selecting a rustc"),
    "require_bindgen": ("no", "refuse the build when no suitable bindgen is installed"),
    "pin": (
        "",
        "PATTERN TOOLCHAIN: for kernels whose release matches the glob PATTERN, prefer TOOLCHAIN "
        "(a rustc path or a rustup toolchain name); checked like any candidate (repeatable)",
    ),
    "search": (
        "",
        "also look for toolchains here: a rustup home, a toolchain dir or a bin dir (repeatable)",
    ),
    "search_defaults": ("yes", "look in the usual places (PATH, rustup homes, /usr/bin, /usr/lib/rust-*)"),
    "trusted_dir": (
        "",
        "run compilers from this directory although a non-root user owns it (system file only; repeatable)",
    ),
    "cache_dir": ("/var/cache/dkms-rustc", "where results are remembered between runs"),
    "syslog": ("no", "also send every decision line to syslog / the journal (identifier dkms-rustc)"),
    "auto_install": (
        "no",
        "rustup: when no toolchain matches and the kernel's rustc is an official release, install it "
        "with rustup into root's rustup home, then decide again (system file only)",
    ),
    "rustup": (
        "",
        "the rustup program auto_install runs (default: root's ~/.cargo/bin/rustup, then "
        "/usr/bin/rustup, /usr/local/bin/rustup; system file only)",
    ),
    "rustup_home": (
        "",
        "the rustup home auto_install installs into (default: root's ~/.rustup; system file only)",
    ),
    "kernel_hook_fail": (
        "no",
        "make the kernel hook fail (and so the kernel package's configuration) when Rust modules "
        "would not build for a newly installed kernel",
    ),
    "package_hook_fail": (
        "no",
        "pacman: stop a transaction that would remove or replace the rustc an installed kernel needs "
        "for its Rust DKMS modules; apt: report an error after one that did",
    ),
}


@dataclass(frozen=True)
class Pin:
    """``pin = PATTERN TOOLCHAIN``: prefer TOOLCHAIN for kernels whose release matches PATTERN."""

    pattern: str
    target: str  # an absolute rustc path or a rustup toolchain name
    where: str  # file:line, for messages

    @property
    def for_module(self) -> bool:
        return "[module " in self.where

    def applies_to(self, kernelrelease: str | None) -> bool:
        import fnmatch

        return kernelrelease is not None and fnmatch.fnmatchcase(kernelrelease, self.pattern)


class ConfigFileError(Exception):
    """The configuration file is unreadable, untrusted or malformed. ``unquoted``: the same
    message without the file's own text, where the message quotes it."""

    def __init__(self, message: str, unquoted: str | None = None) -> None:
        super().__init__(message)
        self.unquoted = unquoted


def applicable_pin(pins: tuple[Pin, ...], kernelrelease: str | None) -> Pin | None:
    """The pin for this kernel: a module section's own pins first, then file order."""
    for pin in sorted(pins, key=lambda pin: not pin.for_module):
        if pin.applies_to(kernelrelease):
            return pin
    return None


@dataclass(frozen=True)
class Settings:
    """What the configuration files say, with where each value came from."""

    policy: Policy = Policy.SELECT
    fallback_make_args: tuple[str, ...] = ()
    search: tuple[Path, ...] = ()
    search_defaults: bool = True
    trusted_dirs: tuple[Path, ...] = ()
    proof: bool = True
    require_bindgen: bool = False
    cache_dir: Path | None = None
    pins: tuple[Pin, ...] = ()
    syslog: bool = False
    auto_install: str = "no"
    rustup: Path | None = None
    rustup_home: Path | None = None
    kernel_hook_fail: bool = False
    package_hook_fail: bool = False
    origins: dict[str, str] = field(default_factory=dict)  # key -> where its value came from


def _boolean(value: str, where: str) -> bool:
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise ConfigFileError(
            f"{where}: expected yes or no, got {value!r}", f"{where}: expected yes or no"
        ) from None


def _directory(value: str, where: str) -> Path:
    if not value.startswith("/"):
        raise ConfigFileError(f"{where}: {value!r} is not an absolute path", f"{where}: not an absolute path")
    return Path(value)


_TOOLCHAIN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _pin(value: str, where: str) -> Pin:
    words = value.split()
    if len(words) != 2:
        raise ConfigFileError(
            f"{where}: expected pin = PATTERN TOOLCHAIN, got {value!r}",
            f"{where}: expected pin = PATTERN TOOLCHAIN",
        )
    pattern, target = words
    if not target.startswith("/") and not _TOOLCHAIN_NAME_RE.match(target):
        raise ConfigFileError(
            f"{where}: {target!r} is neither an absolute rustc path nor a rustup toolchain name",
            f"{where}: the pin's toolchain is neither an absolute rustc path nor a rustup toolchain name",
        )
    return Pin(pattern, target, where)


def _apply(settings: Settings, key: str, value: str, where: str) -> Settings:
    origins = {**settings.origins, key: where}
    if key == "pin":
        pin = _pin(value, where)
        pins = (*settings.pins, pin)
        previous = settings.origins.get("pin")
        origins["pin"] = where if previous is None else f"{previous}; {where}"
        return replace(settings, pins=pins, origins=origins)
    if key == "syslog":
        return replace(settings, syslog=_boolean(value, where), origins=origins)
    if key == "kernel_hook_fail":
        return replace(settings, kernel_hook_fail=_boolean(value, where), origins=origins)
    if key == "package_hook_fail":
        return replace(settings, package_hook_fail=_boolean(value, where), origins=origins)
    if key == "auto_install":
        if value not in AUTO_INSTALL:
            raise ConfigFileError(
                f"{where}: auto_install must be one of {', '.join(AUTO_INSTALL)}, not {value!r}",
                f"{where}: auto_install must be one of {', '.join(AUTO_INSTALL)}",
            )
        return replace(settings, auto_install=value, origins=origins)
    if key == "rustup":
        return replace(settings, rustup=_directory(value, where), origins=origins)
    if key == "rustup_home":
        return replace(settings, rustup_home=_directory(value, where), origins=origins)
    if key == "policy":
        if value not in POLICIES:
            raise ConfigFileError(
                f"{where}: policy must be one of {', '.join(POLICIES)}, not {value!r}",
                f"{where}: policy must be one of {', '.join(POLICIES)}",
            )
        return replace(settings, policy=Policy(value), origins=origins)
    if key == "fallback_make_args":
        words = tuple(value.split())
        bad = [word for word in words if not is_plain_word(word)]
        if bad:
            raise ConfigFileError(
                f"{where}: {bad[0]!r} is not a plain make argument (VAR=value)",
                f"{where}: fallback_make_args holds a word that is not a plain make argument (VAR=value)",
            )
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
    raise ConfigFileError(f"{where}: unknown key {key!r}", f"{where}: unknown key")


def _check_owner(path: Path, stat_result: os.stat_result) -> None:
    if os.geteuid() != 0:
        return
    fix = f"chown root: {path}; chmod 644 {path}"
    if stat_result.st_uid != 0 or stat_result.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigFileError(
            f"{path} is not owned by root or is writable by others; as root, dkms-rustc reads "
            f"only a configuration file that only root can change ({fix})"
        )
    problem = untrusted_directory_reason(Path(os.path.realpath(path)).parent)
    if problem:
        raise ConfigFileError(
            f"{path} lies where others can replace it ({problem}); as root, dkms-rustc reads "
            "only a configuration file that only root can change"
        )


def parse(
    text: str, name: str, module: str | None, *, system: bool, base: Settings, quote: bool = True
) -> Settings:
    """The settings ``text`` gives on top of ``base``. ``quote``: errors may quote the file's
    lines (not for a file only root may read: it could be any private file, /etc/shadow, or a
    public one in a private directory, /root/.bashrc)."""
    settings = base
    section: str | None = None
    # Lines end at \n only: str.splitlines() would also split at \v, \f and others, so one
    # line could read as two here and as one to a person.
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        where = f"{name}:{number}"
        if not line or line.startswith("#"):
            continue
        try:
            settings, section = _line(settings, section, line, where, module, system)
        except ConfigFileError as error:
            if quote or error.unquoted is None:
                raise
            raise ConfigFileError(
                f"{error.unquoted} (the line is not shown: {name} is readable only by root, and "
                "it may not be a dkms-rustc configuration file at all)"
            ) from None
    return settings


def _line(
    settings: Settings, section: str | None, line: str, where: str, module: str | None, system: bool
) -> tuple[Settings, str | None]:
    """One line that is neither blank nor a comment: the settings and section after it."""
    if not line.replace("\t", " ").isprintable():
        raise ConfigFileError(f"{where}: the line holds control characters (a line feed, escape, ...)")
    match = _SECTION_RE.match(line)
    if match:
        section = match.group(1)
        return settings, section
    if line.startswith("["):
        raise ConfigFileError(
            f"{where}: expected [module NAME], got {line!r}", f"{where}: expected [module NAME]"
        )
    key, sep, value = line.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key:
        raise ConfigFileError(
            f"{where}: expected key = value, got {line!r}", f"{where}: expected key = value"
        )
    if section is not None and key not in MODULE_KEYS:
        raise ConfigFileError(
            f"{where}: {key!r} cannot be set per module", f"{where}: a key that cannot be set per module"
        )
    if key not in GLOBAL_KEYS:
        raise ConfigFileError(f"{where}: unknown key {key!r}", f"{where}: unknown key")
    if key in SYSTEM_ONLY_KEYS and not system:
        raise ConfigFileError(
            f"{where}: {key} is honoured only in {SYSTEM_CONFIG}, not in a file named on the command line"
        )
    if section is not None and section != module:
        _apply(Settings(), key, value, where)  # validated even where it does not apply
        return settings, section
    settings = _apply(settings, key, value, where if section is None else f"{where} [module {section}]")
    return settings, section


def load(path: Path | None, module: str | None) -> Settings:
    """Settings from the system file (when present) and then ``path`` (when given)."""
    settings = Settings()
    files = [(SYSTEM_CONFIG, True)]
    if path is not None:
        files.append((path, False))
    for file_path, system in files:
        try:
            # The system file is judged by _check_owner (root-only or refused); a file named on
            # the command line also by the disclosure rule. Errors quote lines of public files.
            fd = open_regular_fd(file_path, private_ok=system)
        except FileNotFoundError:
            if system:
                continue
            raise ConfigFileError(f"the configuration file {file_path} does not exist") from None
        except NotRegularFileError as error:
            raise ConfigFileError(f"the configuration file {file_path} {error.strerror}") from None
        except OSError as error:
            raise ConfigFileError(
                f"the configuration file {file_path} cannot be read ({error.strerror})"
            ) from None
        try:
            stat_result = os.fstat(fd)
            _check_owner(file_path, stat_result)
            public = readable_by_all(fd, stat_result, file_path)  # else no line is quoted
            data = os.read(fd, MAX_CONFIG_FILE + 1)
        except OSError as error:
            raise ConfigFileError(
                f"the configuration file {file_path} cannot be read ({error.strerror})"
            ) from None
        finally:
            os.close(fd)
        if len(data) > MAX_CONFIG_FILE:
            raise ConfigFileError(f"the configuration file {file_path} is larger than 1 MiB")
        if b"\0" in data:
            raise ConfigFileError(f"the configuration file {file_path} holds binary data")
        text = data.decode("utf-8", "replace")
        settings = parse(text, str(file_path), module, system=system, base=settings, quote=public)
    return settings
