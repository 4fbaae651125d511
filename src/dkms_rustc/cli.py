"""Command line: ``dkms-rustc check | status | pre-build | toolchains | config | env``.

Run as a program (``main()`` with no arguments: the console script, ``python -m
dkms_rustc``), a run first tries to replay an earlier identical one (:mod:`dkms_rustc.warm`:
nothing else is imported for that); otherwise the command line is parsed
(:mod:`dkms_rustc.arguments`), the subcommand's module and only what it needs is imported,
and the run is recorded for the next time. Called with arguments (``main([...])``, as tests
do), it always runs in full and records nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys

TYPE_CHECKING = False  # typing costs an import the warm path does without
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from dkms_rustc.options import Common


def _tolerant_streams() -> None:
    """Never lose a line (or end in a traceback) to a terminal or pipe that cannot encode it
    (LC_ALL=C without UTF-8, PYTHONIOENCODING=ascii): what cannot be encoded is escaped."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line (``sys.argv`` when none is given) and return its exit status."""
    from dkms_rustc import fileio

    fileio.forget()  # one command, one judgement of the directories it reads under
    _tolerant_streams()
    if argv is not None:
        return _run(list(argv))
    from dkms_rustc import warm

    words = sys.argv[1:]
    replayed = warm.replay(words)
    if replayed is not None:
        return replayed
    warm.start(words)
    try:
        status = _run(words)
    except BaseException:
        warm.spoil("the run did not end normally")
        warm.finish(0)
        raise
    warm.finish(status)
    return status


def _run(words: list[str]) -> int:
    from dkms_rustc.arguments import parse
    from dkms_rustc.config import ConfigFileError
    from dkms_rustc.exitcodes import ExitCode
    from dkms_rustc.output import print_lines

    options = parse(words)
    try:
        return _dispatch(options)
    except ConfigFileError as error:  # the one place an unusable configuration is handled
        return _unusable_configuration(options, error)
    except KeyboardInterrupt:
        print_lines(["ERROR: interrupted"])
        return ExitCode.INTERRUPTED
    except Exception as error:  # the last line of defence: a message and a status, never a traceback
        if os.environ.get("DKMS_RUSTC_DEBUG"):
            raise
        from dkms_rustc import warm

        warm.spoil("internal error")
        where = ""
        trace = error.__traceback__
        while trace is not None and trace.tb_next is not None:
            trace = trace.tb_next
        if trace is not None:
            where = f" at {os.path.basename(trace.tb_frame.f_code.co_filename)}:{trace.tb_lineno}"
        print_lines(
            [
                f"ERROR: internal error ({type(error).__name__}{where}: {error}); nothing was decided. "
                "Please report this with the output of the same command run with DKMS_RUSTC_DEBUG=1"
            ]
        )
        return ExitCode.INTERNAL_ERROR


def _unusable_configuration(options: Common, error: Exception) -> int:
    """What the subcommand makes of an unusable configuration file (its
    ``unusable_configuration``), else: say so, ExitCode.ERROR."""
    from dkms_rustc import warm
    from dkms_rustc.exitcodes import ExitCode
    from dkms_rustc.output import print_lines

    warm.spoil("the configuration is unusable")  # fixing it must take effect at once
    handler = getattr(_command(options), "unusable_configuration", None)
    if handler is not None:
        status: int = handler(options, error)
        return status
    print_lines([f"ERROR: {error}"])
    return ExitCode.ERROR


# Each kind of options and the module of its subcommand (imported when it runs).
_COMMANDS = {
    "CheckOptions": "check",
    "PreBuildOptions": "pre_build",
    "StatusOptions": "status",
    "ConfigOptions": "config",
    "EnvOptions": "env",
    "UpgradeCheckOptions": "upgrade_check",
    "ToolchainsOptions": "toolchains",
}


def _command(options: Common) -> Any:
    import importlib

    return importlib.import_module(f"dkms_rustc.commands.{_COMMANDS[type(options).__name__]}")


def _dispatch(options: Common) -> int:
    status: int = _command(options).run(options)
    return status
