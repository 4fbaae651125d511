"""The command line's grammar: every subcommand, option and help text, and typed options.

:func:`parse` turns the words of a command line into one of the frozen option values of
:mod:`dkms_rustc.options`, which the subcommands take. Only the full (not the warm) path
imports this module: argparse and the help texts cost milliseconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from dkms_rustc import __version__, exitcodes, options
from dkms_rustc.config import POLICIES
from dkms_rustc.exitcodes import ExitCode

TYPE_CHECKING = False  # typing costs an import the warm path does without
if TYPE_CHECKING:
    from typing import Any, NoReturn

DKMS_TREE, DKMS_ETC = options.DKMS_TREE, options.DKMS_ETC

DESCRIPTION = """\
Build out-of-tree Rust kernel modules (DKMS) with the exact rustc the kernel was built with.

A Rust module is compiled against files the kernel build left in its headers (rust/*.rmeta,
"crate metadata"), and rustc accepts those only from the very same compiler build: another
version, or the same version built by another distribution, fails with "error[E0514]: found
crate `core` compiled by an incompatible version of rustc". dkms-rustc reads which compiler
wrote the kernel's files, finds every rustc and bindgen installed on this machine (never
through rustup's proxy), and either hands the matching one to the module's make or stops the
build with the exact command that fixes it.

Start with: dkms-rustc status
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
        help="read this configuration file after /etc/dkms-rustc.conf (it cannot widen what root runs)",
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


class _Parser(argparse.ArgumentParser):
    """argparse with the usage error's exit status from the one table (not argparse's 2,
    which is one of DKMS's own: "bad option")."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="dkms-rustc", description=DESCRIPTION, epilog=exitcodes.HELP, formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"dkms-rustc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    check = sub.add_parser(
        "check",
        help="say which rustc one kernel needs and whether it is installed (start here after a failed build)",
        description="Say which rustc and bindgen a kernel was built with, every compiler found on "
        "this machine, and whether a Rust module can be built for the kernel; when it cannot, "
        "print the command that fixes it. Writes nothing but its cache of remembered results.",
        epilog=exitcodes.HELP,
        formatter_class=raw,
    )
    _kernel_options(check)
    _common(check)
    check.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    check.add_argument(
        "--kernel-hook",
        action="store_true",
        help="the kernel package hook's mode: quiet when no Rust DKMS module is registered or all is "
        f"well, a loud banner otherwise; exit 0, or {ExitCode.HOOK_FAILED} when kernel_hook_fail = yes "
        "and the modules will not build",
    )
    check.add_argument("--dkms-tree", metavar="DIR", type=Path, default=DKMS_TREE, help=argparse.SUPPRESS)
    check.add_argument("--dkms-etc", metavar="DIR", type=Path, default=DKMS_ETC, help=argparse.SUPPRESS)
    check.add_argument("--modules-dir", metavar="DIR", type=Path, help=argparse.SUPPRESS)

    status = sub.add_parser(
        "status",
        help="every installed kernel and Rust DKMS module at a glance, with what to fix",
        description="One line per installed kernel (/lib/modules/*/build and the running kernel): "
        "the rustc it was built with, the installed compiler that would be used or why none can "
        "be, bindgen, and what to do. Then every DKMS module written in Rust and, per kernel, "
        "whether it is built or would build. Toolchains are examined once for all kernels.",
        epilog=f"exit status:\n  {ExitCode.OK:<3} every kernel can build Rust modules (or has no Rust)\n"
        f"  {ExitCode.REFUSED:<3} at least one kernel cannot\n"
        f"  {ExitCode.ERROR:<3} the configuration file is unusable\n"
        f"  {ExitCode.USAGE:<3} usage error: bad command line\n",
        formatter_class=raw,
    )
    status.add_argument(
        "--modules-dir",
        metavar="DIR",
        action="append",
        type=Path,
        default=[],
        help="look for kernels in DIR/*/build instead of /lib/modules (repeatable)",
    )
    status.add_argument(
        "--kernel-dir",
        metavar="DIR",
        action="append",
        type=Path,
        default=[],
        help="also show this kernel build tree (repeatable); given alone, only these trees are shown",
    )
    status.add_argument(
        "--dkms-tree",
        metavar="DIR",
        type=Path,
        default=DKMS_TREE,
        help=f"read the modules registered with DKMS from DIR (default: {DKMS_TREE})",
    )
    status.add_argument("--dkms-etc", metavar="DIR", type=Path, default=DKMS_ETC, help=argparse.SUPPRESS)
    _common(status)
    status.add_argument("--json", action="store_true", help="print one JSON object instead of the table")

    pre = sub.add_parser(
        "pre-build",
        help="the DKMS PRE_BUILD step (run through the dkms-rustc-pre-build shim)",
        description="Decide for the module DKMS is building and write the make arguments the "
        "documented MAKE line reads (dkms-rustc.make-args in the build directory). When no "
        "installed compiler fits, the arguments make the following make stop at once with the "
        "same message, instead of compiling for minutes and failing with E0514.",
        epilog=exitcodes.HELP,
        formatter_class=raw,
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
    pre.add_argument("--policy", choices=POLICIES, help="override the configured policy for this run")

    env = sub.add_parser(
        "env",
        help="shell lines for DKMS's build_environment file (DKMS 3.3+): enable every Rust module",
        description="Print shell lines that DKMS's build_environment file (DKMS 3.3 and newer) "
        "sources before each module build: for a Rust module, MAKEFLAGS carrying the selected "
        "RUSTC/HOSTRUSTC/BINDGEN (kbuild ignores them in the plain environment), or, when no "
        "installed compiler fits, a RUSTC that stops the build with the reason. Prints nothing "
        "for modules that are not Rust or that run dkms-rustc themselves. The decision is also "
        "printed to stderr (and syslog when configured).",
        epilog=exitcodes.HELP,
        formatter_class=raw,
    )
    env.add_argument(
        "-k", "--kernelver", metavar="KVER", help="the kernel DKMS builds for (default: $kernelver)"
    )
    env.add_argument(
        "--kernel-dir", metavar="DIR", type=Path, help="its build tree (default: /lib/modules/KVER/build)"
    )
    _common(env)
    env.add_argument("--module", metavar="NAME", help="the module DKMS is building (default: $module)")
    env.add_argument("--module-version", metavar="VERSION", help="its version (default: $module_version)")
    env.add_argument(
        "--source-dir",
        metavar="DIR",
        type=Path,
        help="the module's source, to tell whether it is written in Rust (default: $source_dir)",
    )
    env.add_argument("--dkms-etc", metavar="DIR", type=Path, default=DKMS_ETC, help=argparse.SUPPRESS)

    tools = sub.add_parser(
        "toolchains",
        help="list every rustc and bindgen found and whether it can be used",
        description="List every rustc and bindgen found on this machine, how it was found, what "
        "it is, and why it was or was not usable (for example: not trusted as root).",
        epilog=exitcodes.HELP,
        formatter_class=raw,
    )
    _common(tools)
    tools.add_argument("--json", action="store_true", help="print one JSON object instead of lines")

    upgrade = sub.add_parser(
        "upgrade-check",
        help="the package-manager hook: warn when a transaction removes the rustc a kernel needs",
        description="Run by apt (DPkg::Pre-Invoke / Post-Invoke) and pacman (PreTransaction / "
        "PostTransaction hooks) around a package transaction. --before remembers which installed "
        "kernels can build their Rust DKMS modules and with which rustc; --after looks again and, "
        "for every kernel that could before and cannot now (the transaction removed or replaced "
        "its rustc), prints a banner with the fix: reinstall and pin the old toolchain. Silent "
        "when no Rust module is registered with DKMS.",
        epilog=f"exit status:\n  {ExitCode.OK:<3} always, unless package_hook_fail = yes\n"
        f"  {ExitCode.HOOK_FAILED:<3} package_hook_fail = yes and a kernel lost (--after) or would lose "
        "(--before --changing-stdin) its rustc\n",
        formatter_class=raw,
    )
    when = upgrade.add_mutually_exclusive_group(required=True)
    when.add_argument("--before", action="store_true", help="before the transaction: remember the state")
    when.add_argument("--after", action="store_true", help="after it: compare, and warn")
    upgrade.add_argument(
        "--changing-stdin",
        action="store_true",
        help="with --before: read the files the transaction will change from stdin, one a line "
        "(pacman's NeedsTargets); with package_hook_fail = yes, exit 44 (which stops the "
        "transaction) when they include the rustc an installed kernel's modules are built with",
    )
    _common(upgrade)
    upgrade.add_argument("--dkms-tree", metavar="DIR", type=Path, default=DKMS_TREE, help=argparse.SUPPRESS)
    upgrade.add_argument("--dkms-etc", metavar="DIR", type=Path, default=DKMS_ETC, help=argparse.SUPPRESS)
    upgrade.add_argument("--modules-dir", metavar="DIR", action="append", type=Path, help=argparse.SUPPRESS)

    conf = sub.add_parser(
        "config",
        help="show the effective configuration and where each value came from",
        description="Show every setting in effect (from /etc/dkms-rustc.conf, a --config file, or "
        "the default) and the file and line it came from. With --module, as that DKMS module's "
        "build sees it ([module NAME] sections applied).",
        formatter_class=raw,
    )
    conf.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="read this configuration file after /etc/dkms-rustc.conf",
    )
    conf.add_argument("--module", metavar="NAME", help="apply this module's [module NAME] section")
    conf.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    return parser


_OPTIONS: dict[str, type[options.Common]] = {
    "check": options.CheckOptions,
    "status": options.StatusOptions,
    "pre-build": options.PreBuildOptions,
    "env": options.EnvOptions,
    "toolchains": options.ToolchainsOptions,
    "config": options.ConfigOptions,
    "upgrade-check": options.UpgradeCheckOptions,
}


def parse(argv: Sequence[str]) -> options.Common:
    """The typed options of a command line; SystemExit (ExitCode.USAGE) when it is wrong."""
    namespace = vars(build_parser().parse_args(list(argv)))
    cls = _OPTIONS[namespace["command"]]
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        value = namespace.get(item.name, item.default)
        values[item.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)
