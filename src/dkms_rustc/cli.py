"""Command line: ``dkms-rustc check | pre-build | toolchains``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from dkms_rustc import __version__

EXIT_CODES_HELP = """\
exit status:
  0   ok: a matching rustc was selected (or a warn/fallback policy let the build go on)
  1   refused: no installed rustc matches the kernel; the build must not start
  2   usage error: bad command line
  3   no-metadata: the kernel has Rust enabled but its headers lack rust/*.rmeta
  4   error: kernel tree missing or unreadable, bad configuration file, cannot write hand-off
  77  no-rust: the kernel is built without Rust (DKMS's "skipped" status)
"""

DESCRIPTION = """\
Build out-of-tree Rust kernel modules with the exact rustc the kernel was built with.

rustc refuses crate metadata written by any other compiler build, even the same release
built by another distribution ("error[E0514]: found crate `core` compiled by an incompatible
version of rustc"). dkms-rustc reads which compiler the kernel's rust/*.rmeta files were
written by, finds every rustc and bindgen installed on this machine (never through rustup's
proxy), and either hands the matching one to the module's make or stops the build with the
exact fix.
"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--search",
        metavar="DIR",
        action="append",
        type=Path,
        default=[],
        help="also look for toolchains here: a rustup home, a toolchain dir or a bin dir (repeatable)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="read this configuration file after /etc/dkms-rustc.conf (it cannot add trusted directories)",
    )
    parser.add_argument("--no-cache", action="store_true", help="do not read or write remembered results")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also print the evidence: files read, candidates"
    )


def _kernel_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--kernel-dir",
        metavar="DIR",
        type=Path,
        help="the kernel build tree (default: /lib/modules/KVER/build)",
    )
    group.add_argument(
        "-k",
        "--kernelver",
        metavar="KVER",
        help="kernel release (default: $kernelver from DKMS, else the running kernel)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dkms-rustc",
        description=DESCRIPTION,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dkms-rustc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    check = sub.add_parser(
        "check",
        help="say which rustc a kernel needs and whether one is installed",
        description="Report what a kernel needs (rustc, bindgen), every candidate found, and the "
        "verdict, without writing anything. Run it when a Rust module did not build.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _kernel_options(check)
    _common(check)
    check.add_argument("--json", action="store_true", help="print one JSON object instead of lines")

    pre = sub.add_parser(
        "pre-build",
        help="the DKMS PRE_BUILD step (run through the dkms-rustc-pre-build shim)",
        description="Decide for the module being built by DKMS and write the make arguments the "
        "documented MAKE line reads (dkms-rustc.make-args in the build directory). On refusal "
        "the arguments make the following make stop at once with the same message.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _kernel_options(pre)
    _common(pre)
    pre.add_argument(
        "--build-dir",
        metavar="DIR",
        type=Path,
        help="the module's build directory (default: the current directory, as DKMS runs it)",
    )
    pre.add_argument(
        "--module", metavar="NAME", help="module name for per-module settings (default: $module from DKMS)"
    )
    pre.add_argument(
        "--policy", choices=("select", "warn", "fallback"), help="override the configured policy for this run"
    )

    tools = sub.add_parser(
        "toolchains",
        help="list every rustc and bindgen found and whether it can be used",
        description="List every rustc and bindgen found on this machine, how it was found, what "
        "it is, and why it was or was not usable (for example: not trusted as root).",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(tools)
    tools.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "check":
        from dkms_rustc.commands import check

        return check.run(args)
    if args.command == "pre-build":
        from dkms_rustc.commands import pre_build

        return pre_build.run(args)
    from dkms_rustc.commands import toolchains

    return toolchains.run(args)


def print_lines(lines: Sequence[str], stream: TextIO | None = None) -> None:
    """Print each line with the stable ``dkms-rustc: `` prefix (stderr unless told otherwise)."""
    from dkms_rustc.report import PREFIX

    out = stream if stream is not None else sys.stderr
    text = "".join(f"{PREFIX}{line}\n" for line in lines)
    try:
        out.write(text)
        out.flush()
    except (OSError, ValueError):
        pass  # a closed stderr must not turn a decision into a traceback


def environ_kernelver() -> str | None:
    value = os.environ.get("kernelver", "").strip()
    return value or None
