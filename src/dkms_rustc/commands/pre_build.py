"""``dkms-rustc pre-build``: what DKMS runs before make, through the dkms-rustc-pre-build shim.

It decides for the kernel DKMS is building for, prints the decision to stderr (DKMS puts it
in make.log and, on old versions, on the terminal), and writes the hand-off files the
documented MAKE line reads. Whatever happens, the MAKE line then either gets the selected
toolchain or stops at once with this message: a hook that fails never lets make fall back
to whatever ``rustc`` happens to be first on PATH.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dkms_rustc.commands._shared import configuration_refusal, decide_for_build
from dkms_rustc.config import ConfigFileError, Policy
from dkms_rustc.decision import Verdict
from dkms_rustc.engine import Assessment
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.fileio import absolute
from dkms_rustc.handoff import (
    ARGS_FILE,
    HandoffError,
    forget_earlier,
    withdraw,
    write_refusal,
    write_selection,
)
from dkms_rustc.options import PreBuildOptions
from dkms_rustc.output import PREFIX, print_lines


def _module_trees(build_dir: Path, cwd: Path | None) -> tuple[Path, ...]:
    """The module's own directories: no compiler may be taken from inside them."""
    trees = [build_dir]
    module, version = os.environ.get("module"), os.environ.get("module_version")
    if module and version and "/" not in module + version and module + version not in ("", ".", ".."):
        trees.append(Path("/usr/src") / f"{module}-{version}")
        # DKMS's <dkms_tree>/<module>/<version>/build: the whole <version> directory is the module's.
        if (
            build_dir.name == "build"
            and build_dir.parent.name == version
            and (build_dir.parent.parent.name == module)
        ):
            trees.append(build_dir.parent)
    if cwd is not None and cwd not in trees:
        trees.append(cwd)
    return tuple(trees)


def _cwd() -> Path | None:
    try:
        return Path.cwd()
    except OSError:  # the directory DKMS started the hook in was removed
        return None


def _mixed_package(build_dir: Path) -> bool:
    """Does the module's dkms.conf limit only some of its modules to Rust kernels
    (``BUILD_EXCLUSIVE_CONFIG[#]="CONFIG_RUST"``, DKMS 3.3+)?"""
    from dkms_rustc.dkmsmodules import build_dir_exclusion

    return build_dir_exclusion(build_dir).mixed


def _build_c_modules_only(build_dir: Path) -> int:
    """A kernel without Rust and a package of C and Rust modules: DKMS skips the Rust ones
    (their BUILD_EXCLUSIVE_CONFIG[#]) and builds the others, which need no rustc."""
    try:
        path = write_selection(build_dir, ())
    except HandoffError as error:
        print_lines([f"ERROR: cannot hand the decision to make: {error}"])
        withdraw(build_dir)
        return ExitCode.ERROR
    print_lines(
        [
            "the package's C modules build; its Rust modules are skipped by their "
            'BUILD_EXCLUSIVE_CONFIG[#]="CONFIG_RUST" lines (DKMS 3.3 and newer)',
            f"make arguments in {path}: (none)",
        ]
    )
    return ExitCode.OK


def _build_dir(args: PreBuildOptions, cwd: Path | None) -> Path | None:
    given: Path | None = args.build_dir or cwd
    if given is None:
        print_lines(
            [
                "ERROR: the current directory no longer exists, and no --build-dir was given: "
                "there is no build directory to hand the decision to"
            ]
        )
        return None
    # Judged as given (a user's link on the way would choose where root writes; ``..`` taken
    # after the links, as the kernel does), then resolved once: the files go where they were
    # judged, and nobody else can change that path.
    problem = _not_root_only(absolute(given))
    if problem:
        print_lines(
            [
                f"ERROR: the build directory {given} is not root-only ({problem}): as root, "
                "dkms-rustc writes no hand-off there, since whoever can change it could point "
                "make's arguments (or these files) elsewhere; build in a directory only root "
                "can change (DKMS's own build directories are)"
            ]
        )
        return None
    return Path(os.path.realpath(given))


def _not_root_only(build_dir: str) -> str | None:
    if os.geteuid() != 0:
        return None  # a user's own build writes into the user's own directory
    from dkms_rustc.trust import walk_problem

    problem = walk_problem(build_dir, directory=True, missing_ok=True)
    if problem is None or _is_dir_or_link(build_dir):
        return problem
    # Neither a directory nor a link, in a root-only directory (a file in the way, a name too
    # long): nobody else can change it, and the write fails and says so.
    parent = os.path.dirname(build_dir.rstrip("/")) or "/"
    return problem if walk_problem(parent, directory=True) else None


def _is_dir_or_link(path: str) -> bool:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return True  # judged as a directory that does not exist yet
    except OSError:
        return False
    return stat.S_ISDIR(mode) or stat.S_ISLNK(mode)


def run(args: PreBuildOptions) -> int:
    cwd = _cwd()
    build_dir = _build_dir(args, cwd)
    if build_dir is None:
        return ExitCode.ERROR
    # First of all: arguments an earlier run left must never outlive this one. Killed from
    # here on, the hook leaves none, and the MAKE line stops at its hook-did-not-run fallback.
    forget_earlier(build_dir)
    try:
        return _decide_and_hand_off(args, build_dir, cwd)
    except ConfigFileError:
        raise  # decided, not a crash: the command line's handler hands the refusal over
    except BaseException as error:  # a bug, or an interrupt: fail closed, then report it
        _fail_closed(build_dir, error)
        raise


def unusable_configuration(args: PreBuildOptions, error: ConfigFileError) -> int:
    """Nothing can be decided: make must stop, saying why."""
    build_dir = _build_dir(args, _cwd())
    if build_dir is None:
        return ExitCode.ERROR
    assessment, release, lines = configuration_refusal(args, error)
    return _hand_off(build_dir, assessment, release, lines)


def _fail_closed(build_dir: Path, error: BaseException) -> None:
    """After an unexpected error: a refusal that stops make (or, if that cannot be written,
    no arguments file at all, so the MAKE line stops at its fallback)."""
    what = (
        "interrupted" if isinstance(error, KeyboardInterrupt) else f"internal error ({type(error).__name__})"
    )
    line = (
        f"{PREFIX}ERROR: dkms-rustc pre-build {what}: nothing was decided, so this build is "
        "stopped; run dkms-rustc check for the kernel (DKMS_RUSTC_DEBUG=1 shows where it failed) "
        "and report the error"
    )
    try:
        write_refusal(build_dir, [line], f"{PREFIX}this module build was stopped before compiling")
    except Exception:
        withdraw(build_dir)


def _decide_and_hand_off(args: PreBuildOptions, build_dir: Path, cwd: Path | None) -> int:
    module = args.module or os.environ.get("module") or None
    excluded = _module_trees(build_dir, None if args.build_dir else cwd)
    policy = Policy(args.policy) if args.policy else None
    assessment, release, lines = decide_for_build(args, module, excluded, policy)
    decision = assessment.decision
    if decision.verdict is Verdict.NO_RUST and not decision.build_may_proceed and _mixed_package(build_dir):
        return _build_c_modules_only(build_dir)
    return _hand_off(build_dir, assessment, release, lines)


def _hand_off(build_dir: Path, assessment: Assessment, release: str, lines: list[str]) -> int:
    """The selection, or a refusal that stops make, in the files the MAKE line reads."""
    decision = assessment.decision
    try:
        if decision.build_may_proceed:
            path = write_selection(build_dir, decision.make_args)
            # DKMS logs the MAKE line unexpanded: say what it will get.
            print_lines([f"make arguments in {path}: {' '.join(decision.make_args) or '(none)'}"])
            return 0
        write_refusal(
            build_dir,
            [PREFIX + line for line in lines],
            f"{PREFIX}this module build was stopped before compiling "
            f"({decision.verdict}); see the lines above, or run: dkms-rustc check -k {release}",
        )
    except HandoffError as error:
        messages = [f"ERROR: cannot hand the decision to make: {error}"]
        if withdraw(build_dir):
            messages.append(
                f"the MAKE line finds no {ARGS_FILE} and stops; fix the build directory and rebuild"
            )
        else:
            messages.append(f"{build_dir / ARGS_FILE} is left over from before and could not be removed")
        print_lines(messages)
        return ExitCode.ERROR
    return decision.exit_code
