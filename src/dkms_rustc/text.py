"""Text from files and programs others control, made safe to print and to hand to make."""

from __future__ import annotations

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
