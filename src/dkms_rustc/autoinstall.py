"""Opt-in (``auto_install = rustup`` in /etc/dkms-rustc.conf): install the kernel's rustc with rustup.

Only an official release build (what rustup itself installs: ``rustc 1.95.0 (59807616e
2026-04-14)``, or a nightly/beta with its commit and date) can be installed this way; a
distribution's build (``(built from a source tarball)``, ``(Fedora ...)``) cannot, and nothing
is attempted for it. The toolchain goes into root's rustup home (or ``rustup_home``), with the
``minimal`` profile and without rustup updating itself. The program is run like every other:
only when it is trusted, with a fixed environment and a time limit. The caller decides again
afterwards, so an install that produced the wrong compiler is refused like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dkms_rustc import runner
from dkms_rustc.config import Settings
from dkms_rustc.toolchains import home_of_uid
from dkms_rustc.trust import (
    is_inside_any,
    untrusted_directory_reason,
    untrusted_libraries_reason,
    untrusted_reason,
)
from dkms_rustc.versions import parse_rustc_version, rustup_toolchain_names

INSTALL_TIMEOUT = 900.0


@dataclass
class Outcome:
    installed: bool
    rustup_home: Path | None = None
    lines: list[str] = field(default_factory=list)


def root_home() -> Path:
    return home_of_uid(0) or Path("/root")


def rustup_program(settings: Settings) -> Path | None:
    if settings.rustup is not None:
        return settings.rustup
    for candidate in (
        root_home() / ".cargo" / "bin" / "rustup",
        Path("/usr/bin/rustup"),
        Path("/usr/local/bin/rustup"),
    ):
        if candidate.is_file():
            return candidate
    return None


def install(expected_text: str, settings: Settings) -> Outcome:
    """Install the toolchain that prints ``expected_text``; say what was done in ``lines``."""
    version = parse_rustc_version(expected_text)
    if version is None or not version.is_official_build:
        return Outcome(
            False,
            lines=[
                f"auto_install: not attempted: {expected_text} is not an official Rust release build, "
                "so rustup cannot install it"
            ],
        )
    names = rustup_toolchain_names(version)
    if not names:
        return Outcome(
            False, lines=[f"auto_install: not attempted: rustup has no channel for {expected_text}"]
        )
    program = rustup_program(settings)
    if program is None:
        return Outcome(
            False,
            lines=[
                "auto_install: not attempted: rustup is not installed for root "
                "(looked for ~/.cargo/bin/rustup, /usr/bin/rustup, /usr/local/bin/rustup; set rustup = PATH)"
            ],
        )
    # rustup acts on the name it is called by, so the path is run as it is (not resolved): the
    # directory holding it must be root's as well, or the link could be swapped before it runs.
    reason = (
        untrusted_reason(program, trusted_dirs=settings.trusted_dirs)
        or (
            None
            if is_inside_any(program.parent, settings.trusted_dirs)
            else untrusted_directory_reason(program.parent)
        )
        or untrusted_libraries_reason(program, trusted_dirs=settings.trusted_dirs)
    )
    if reason:
        return Outcome(False, lines=[f"auto_install: not attempted: {program} is not trusted ({reason})"])
    home = settings.rustup_home or root_home() / ".rustup"
    cargo_home = home.parent / ".cargo" if settings.rustup_home is None else home / "cargo"
    env = runner.minimal_environment(
        {"RUSTUP_HOME": str(home), "CARGO_HOME": str(cargo_home), "HOME": str(root_home())}
    )
    lines: list[str] = []
    for name in names:
        argv = [str(program), "toolchain", "install", name, "--profile", "minimal", "--no-self-update"]
        result = runner.run(argv, timeout=INSTALL_TIMEOUT, env=env, output_cap=4 * 1024 * 1024)
        if result.ok:
            lines.append(f"auto_install: installed rustup toolchain {name} into {home} ({' '.join(argv)})")
            return Outcome(True, home, lines)
        detail = result.failure()
        last = result.stderr.strip().splitlines()[-1:] if result.stderr.strip() else []
        lines.append(
            f"auto_install: `{' '.join(argv)}` failed: {detail}{': ' + last[0][:200] if last else ''}"
        )
    return Outcome(False, home, lines)
