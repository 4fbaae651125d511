"""Lines for the admin's terminal and logs: one prefix, every character printable, never a crash.

DKMS puts what the hook writes into make.log (and, on old versions, on the terminal); the
kernel hook's lines land in the package manager's output. Every line starts with
``dkms-rustc: `` so it can be found there, and carries no control character from the files
and programs it quotes. A closed stream or one that cannot encode a character (a non-UTF-8
terminal) must not turn a decision into a traceback.
"""

from __future__ import annotations

import os
import sys

from dkms_rustc.text import printable

TYPE_CHECKING = False  # typing costs an import the warm path does without
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

PREFIX = "dkms-rustc: "


def print_lines(lines: Sequence[str], stream: TextIO | None = None) -> None:
    """Print each line with the ``dkms-rustc: `` prefix (stderr unless told otherwise)."""
    out = stream if stream is not None else sys.stderr
    text = "".join(f"{PREFIX}{printable(line)}\n" for line in lines)
    try:
        out.write(text)
        out.flush()
    except UnicodeEncodeError:
        _write_escaped(out, text)
    except (OSError, ValueError):
        pass  # a closed stream must not turn a decision into a traceback


def _write_escaped(out: TextIO, text: str) -> None:
    """For a stream whose encoding cannot carry ``text`` (LC_ALL=C, a Latin-1 terminal)."""
    encoding = getattr(out, "encoding", None) or "ascii"
    try:
        out.write(text.encode(encoding, "backslashreplace").decode(encoding))
        out.flush()
    except (OSError, ValueError, LookupError):
        pass


def environ_kernelver() -> str | None:
    """The kernel DKMS builds for (``$kernelver``), when it set one."""
    value = os.environ.get("kernelver", "").strip()
    return value or None
