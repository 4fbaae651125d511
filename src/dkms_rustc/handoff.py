"""The files the documented dkms.conf MAKE line reads after the hook ran.

``dkms-rustc.make-args`` holds make command-line arguments on one line; the MAKE line
expands it with ``$(cat dkms-rustc.make-args)``. Make arguments, not the environment:
kbuild's top Makefile assigns ``RUSTC = rustc``, which only a command-line value overrides.

When the build is refused, the arguments are ``-f <build dir>/dkms-rustc.refused.mk``: a
makefile that prints the hook's message and stops with ``$(error ...)``, so even a DKMS that
ignores PRE_BUILD's exit status (3.1.4 and older) stops at once instead of compiling for
minutes and failing on E0514. Every file is written to a temporary name and renamed, so make
never reads half a file. The words must survive the shell's word splitting and globbing in
the MAKE line, so anything but plain path characters is refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dkms_rustc import warm
from dkms_rustc.fileio import remove_quietly, write_atomically
from dkms_rustc.text import is_plain_word, printable

ARGS_FILE = "dkms-rustc.make-args"
REFUSAL_FILE = "dkms-rustc.refused.mk"


class HandoffError(Exception):
    """The hand-off files could not be written."""


def _write_atomically(path: Path, text: str) -> None:
    try:
        write_atomically(path, text)
    except OSError as error:
        if error.filename == str(path.parent):
            raise HandoffError(f"cannot write in {path.parent} ({error.strerror})") from None
        raise HandoffError(f"cannot write {path} ({error.strerror})") from None
    warm.wrote(str(path), text)  # a replay of this run hands make the same


def check_words(words: Sequence[str]) -> None:
    for word in words:
        if not is_plain_word(word):
            raise HandoffError(
                f"the make argument {word!r} contains characters (spaces, quotes, globs) that the "
                "DKMS MAKE line cannot carry; install the toolchain under a plain path"
            )


def write_selection(build_dir: Path, words: Sequence[str]) -> Path:
    """Hand ``words`` (``RUSTC=/abs/path`` ...) to the MAKE line; remove any old refusal."""
    check_words(words)
    path = build_dir / ARGS_FILE
    _write_atomically(path, " ".join(words) + "\n")
    remove_quietly(build_dir / REFUSAL_FILE)
    warm.removed(str(build_dir / REFUSAL_FILE))
    return path


def _make_literal(text: str) -> str:
    """``text`` as the right-hand side of a make ``:=`` assignment, printed verbatim.

    ``$`` doubles; ``#`` (a comment, even after backslashes) comes from a variable; a
    trailing backslash (a line continuation) and leading blanks (stripped by make) are
    fenced off with an empty variable; control characters are escaped first.
    """
    literal = printable(text.replace("\n", " ")).replace("$", "$$").replace("#", "$(dkms_rustc_hash)")
    if literal[:1].isspace():
        literal = "$(dkms_rustc_empty)" + literal
    if literal.endswith("\\"):
        literal += "$(dkms_rustc_empty)"
    return literal


def refusal_makefile(lines: Sequence[str], last: str) -> str:
    """A makefile that prints ``lines`` and stops with ``last`` as make's error."""
    out = [
        "# Written by dkms-rustc pre-build: this module build was refused. See its messages below.",
        "dkms_rustc_hash := \\#",
        "dkms_rustc_empty :=",
    ]
    for number, line in enumerate(lines):
        out.append(f"dkms_rustc_line_{number} := {_make_literal(line)}")
        out.append(f"$(info $(dkms_rustc_line_{number}))")
    out.append(f"dkms_rustc_error := {_make_literal(last)}")
    out.append("$(error $(dkms_rustc_error))")
    return "\n".join(out) + "\n"


def forget_earlier(build_dir: Path) -> None:
    """Before deciding: remove an earlier run's ``dkms-rustc.make-args``, so that a run killed
    before it writes its own leaves none (the MAKE line then stops at its fallback)."""
    remove_quietly(build_dir / ARGS_FILE)


def withdraw(build_dir: Path) -> bool:
    """After a failed hand-off: remove an older ``dkms-rustc.make-args``, so that the MAKE line
    falls back to its ``-f /nonexistent/...`` and stops instead of using stale arguments.
    True when no arguments file is left."""
    warm.spoil("the hand-off failed")  # a write that failed is not a result to replay
    path = build_dir / ARGS_FILE
    return remove_quietly(path) or not os.path.isfile(path)


def write_refusal(build_dir: Path, lines: Sequence[str], last: str) -> Path:
    """Make the following make stop at once with the hook's message."""
    mk = (build_dir / REFUSAL_FILE).absolute()
    check_words([str(mk)])
    _write_atomically(mk, refusal_makefile(lines, last))
    _write_atomically(build_dir / ARGS_FILE, f"-f {mk}\n")
    return mk
