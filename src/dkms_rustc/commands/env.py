"""``dkms-rustc env``: what DKMS's ``build_environment`` file (DKMS 3.3+) sources before a build.

DKMS sources that file in a subshell with its own variables set (``kernelver``,
``kernel_source_dir``, ``module``, ``module_version``, ``source_dir``), discards its output
and keeps what it exported. kbuild's top Makefile assigns ``RUSTC = rustc``, so a plain
``RUSTC`` in the environment is ignored; variable definitions in ``MAKEFLAGS`` are not: make
treats them as command-line arguments, in every sub-make too. So a selection becomes
``MAKEFLAGS=... RUSTC=/path HOSTRUSTC=/path BINDGEN=/path``, and a refusal becomes
``RUSTC=$(DKMS_RUSTC_STOP)`` with ``DKMS_RUSTC_STOP='$(error <the reason>)'``: make stops at
the first use of the compiler with the reason in make.log. Modules that are not Rust, or
that run dkms-rustc themselves through PRE_BUILD, get nothing.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

from dkms_rustc.commands._shared import configuration_refusal, decide_for_build
from dkms_rustc.config import ConfigFileError, Policy
from dkms_rustc.decision import Verdict
from dkms_rustc.dkmsmodules import rust_reasons
from dkms_rustc.engine import Assessment
from dkms_rustc.handoff import HandoffError, check_words
from dkms_rustc.options import EnvOptions
from dkms_rustc.output import print_lines

STOP_VARIABLE = "DKMS_RUSTC_STOP"
_UNSAFE_IN_ERROR = re.compile(r"[()$#\\\n]")


def _stop_text(headline: str, release: str) -> str:
    """The reason as make's $(error ...) argument: no parentheses, dollars, hashes or escapes."""
    text = _UNSAFE_IN_ERROR.sub(" ", headline)
    # The release too: it may come from the kernel tree's files or an unvalidated $kernelver.
    release = _UNSAFE_IN_ERROR.sub("", release).replace(" ", "") or "KVER"
    return f"$(error dkms-rustc: {text} -- run: dkms-rustc check -k {release})"


def _stop_lines(reason: str, release: str) -> list[str]:
    """Make the module's make stop at its first use of rustc, with ``reason``."""
    stop = f"$({STOP_VARIABLE})"
    return [
        f"export {STOP_VARIABLE}={shlex.quote(_stop_text(reason, release))}",
        f'export MAKEFLAGS="${{MAKEFLAGS:+$MAKEFLAGS }}"{shlex.quote(f"RUSTC={stop} HOSTRUSTC={stop}")}',
    ]


def shell_lines(assessment: Assessment, release: str) -> list[str]:
    decision = assessment.decision
    words: list[str]
    if decision.verdict is Verdict.OK or decision.policy_applied is Policy.FALLBACK:
        words = list(decision.make_args)
    elif decision.policy_applied is Policy.WARN or decision.verdict is Verdict.NO_RUST:
        return []
    else:
        return _stop_lines(decision.headline, release)
    try:
        check_words(words)
    except HandoffError as error:
        # Never let the build go on with kbuild's default rustc after the log said OK.
        return _stop_lines(str(error), release)
    return [f'export MAKEFLAGS="${{MAKEFLAGS:+$MAKEFLAGS }}"{shlex.quote(" ".join(words))}'] if words else []


def run(args: EnvOptions) -> int:
    try:
        return _run(args)
    except ConfigFileError:
        raise  # decided, not a crash: the command line's handler prints the stop
    except BaseException as error:
        # Fail closed: DKMS sources what is printed; without it make would use kbuild's default
        # rustc. Then report the error as every command does.
        what = (
            "interrupted"
            if isinstance(error, KeyboardInterrupt)
            else f"internal error {type(error).__name__}"
        )
        lines = _stop_lines(f"{what}: nothing was decided, so this build is stopped", "KVER")
        try:
            sys.stdout.write("".join(line + "\n" for line in lines))
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        raise


def unusable_configuration(args: EnvOptions, error: ConfigFileError) -> int:
    """Nothing can be decided: make must stop, saying why."""
    assessment, release, _ = configuration_refusal(args, error)
    sys.stdout.write("".join(line + "\n" for line in shell_lines(assessment, release)))
    return assessment.decision.exit_code


def _run(args: EnvOptions) -> int:
    module = args.module or os.environ.get("module") or None
    source = args.source_dir or (Path(os.environ["source_dir"]) if os.environ.get("source_dir") else None)
    version = args.module_version or os.environ.get("module_version", "")
    if module and source is not None:
        reasons, uses = rust_reasons(module, version, source, args.dkms_etc)
        if uses or not reasons:
            why = "runs dkms-rustc itself" if uses else "is not a Rust module"
            print_lines([f"module {module} {why}: nothing to add to its build environment"])
            return 0
    excluded = (source,) if source is not None else ()
    assessment, release, _ = decide_for_build(args, module, excluded)
    output = shell_lines(assessment, release)
    sys.stdout.write("".join(line + "\n" for line in output))
    return assessment.decision.exit_code
