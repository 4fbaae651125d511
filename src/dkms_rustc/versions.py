"""Rust compiler and bindgen version strings: parsing, kbuild's encodings, and comparison.

rustc refuses metadata from any compiler build but its own, and the test it applies is
equality of the whole version string (``rustc 1.75.0 (82e1608df 2023-12-21)`` and the same
followed by ``(built from a source tarball)`` are different compilers). So this module never
decides compatibility from numbers; numbers only serve minimum-version checks and hints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TYPE_CHECKING = False  # typing costs an import the warm path does without
if TYPE_CHECKING:
    from packaging.version import Version

# Numbers have at most 9 digits: Python refuses to convert integers of more than 4300 digits
# from text (a crafted version would otherwise end in a traceback), and no real one comes close.
_RUSTC_RE = re.compile(
    r"rustc (?P<release>\d{1,9}\.\d{1,9}\.\d{1,9}(?:-[0-9A-Za-z.]{1,64})?)"
    r"(?: \((?P<commit>[0-9a-f]{7,40}) (?P<date>\d{4}-\d{2}-\d{2})\))?"
    r"(?: \((?P<suffix>[^()\n]*(?:\([^()\n]*\)[^()\n]*)*)\))?"
)
_BINDGEN_RE = re.compile(r"bindgen (?P<release>\d{1,9}\.\d{1,9}\.\d{1,9})(?:\S*)?(?: .*)?")
_NUMBERS_RE = re.compile(r"^(\d{1,9})\.(\d{1,9})\.(\d{1,9})(?![0-9])")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_calendar_date(text: str) -> bool:
    """``2026-02-28`` is a date, ``2026-02-30`` is not (a commit date rustc could have written)."""
    try:
        year, month, day = (int(part) for part in text.split("-"))
    except ValueError:
        return False
    if not (1 <= month <= 12 and year >= 1):
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = 28 if month == 2 and not leap else _MONTH_DAYS[month - 1]
    return 1 <= day <= days


@dataclass(frozen=True)
class RustcVersion:
    """A parsed ``rustc --version`` line. ``text`` is the whole line, the thing that must match."""

    text: str
    release: str  # "1.95.0", "1.97.0-nightly", "1.90.0-beta.3"
    commit: str | None
    date: str | None
    suffix: str | None  # "built from a source tarball", "Fedora 1.89.0-2.fc42", ...

    @property
    def numbers(self) -> tuple[int, int, int]:
        return release_numbers(self.release) or (0, 0, 0)

    @property
    def channel(self) -> str:
        """``stable``, ``beta``, ``nightly`` or ``dev`` as the release names it."""
        if "-" not in self.release:
            return "stable"
        tag = self.release.split("-", 1)[1]
        for channel in ("beta", "nightly", "dev"):
            if tag.startswith(channel):
                return channel
        return tag

    @property
    def is_official_build(self) -> bool:
        """True when this is the Rust project's own build (what rustup installs).

        A distribution build carries a trailing suffix and can only be matched by that
        distribution's package; a bare ``rustc 1.81.0`` (no commit) is a local build.
        """
        return self.suffix is None and self.commit is not None


def parse_rustc_version(text: str) -> RustcVersion | None:
    """Parse a ``rustc --version`` line; None when it does not look like one (a commit date
    that is no calendar date included)."""
    line = text.strip()
    match = _RUSTC_RE.fullmatch(line)
    if match is None or (match["date"] is not None and not is_calendar_date(match["date"])):
        return None
    return RustcVersion(
        text=line,
        release=match["release"],
        commit=match["commit"],
        date=match["date"],
        suffix=match["suffix"],
    )


def kbuild_version_text(version_text: str) -> str:
    """What kbuild stores in CONFIG_RUSTC_VERSION_TEXT for this ``--version`` line.

    Since 6.12 kbuild removes every ``#`` (they would start a comment in auto.conf).
    """
    return version_text.replace("#", "")


def release_numbers(release: str) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` of ``1.95.0`` / ``1.97.0-nightly``; None when malformed."""
    match = _NUMBERS_RE.match(release)
    if match is None:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def version_key(release: str) -> Version:
    """An ordering key for a tool's release (``0.72.1``) by PEP 440, whose rules fit bindgen's
    plain releases and the kernel's minimums; anything it cannot parse sorts first."""
    from packaging.version import InvalidVersion, Version  # only a minimum comparison needs it

    try:
        return Version(release)
    except InvalidVersion:
        return Version("0")


def at_least(release: str, minimum: str | None) -> bool:
    """``release`` is ``minimum`` or newer (True when the kernel names no minimum)."""
    return minimum is None or version_key(release) >= version_key(minimum)


def parse_bindgen_version(text: str) -> str | None:
    """``0.72.1`` from ``bindgen 0.72.1``; None when it does not look like bindgen's output."""
    match = _BINDGEN_RE.fullmatch(text.strip())
    return match["release"] if match else None


def rustup_toolchain_names(version: RustcVersion) -> list[str]:
    """What to ask rustup for. A nightly is published under the day after its commit date
    (usually), so both days are tried; the decision afterwards checks the exact string."""
    if version.channel == "stable":
        return [version.release]
    if version.channel in ("nightly", "beta") and version.date:
        import datetime  # only a nightly or beta needs dates

        try:
            day = datetime.date.fromisoformat(version.date)
        except ValueError:  # a date no calendar has (2026-02-30): no channel rustup would know
            return []
        following = day + datetime.timedelta(days=1)
        return [f"{version.channel}-{following.isoformat()}", f"{version.channel}-{version.date}"]
    return []
