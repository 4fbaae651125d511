"""Text from files and programs others control, made safe to print and to hand to make."""

from __future__ import annotations

import re

# What survives the DKMS MAKE line's word splitting and globbing unchanged, and make's parsing
# of a command-line argument: no blanks, quotes, globs, dollars, hashes or backslashes.
# (``~`` is safe: the shell expands it only where a word starts, never in $(cat ...)'s output.)
_PLAIN_WORD_RE = re.compile(r"[A-Za-z0-9_./+,:@=~-]+")

# Control characters (terminal escapes, carriage returns), format characters (bidirectional
# overrides that reorder what the reader sees) and lone surrogates (undecodable file names).
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def printable(text: str) -> str:
    """``text`` with every control, format or undecodable character written as an escape."""
    if text.isprintable():
        return text
    import unicodedata  # only for text that needs it

    out: list[str] = []
    for char in text:
        if char == "\t" or unicodedata.category(char) not in _UNPRINTABLE:
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


def is_plain_word(word: str) -> bool:
    """True when ``word`` can be handed to make through the MAKE line unchanged."""
    return _PLAIN_WORD_RE.fullmatch(word) is not None
