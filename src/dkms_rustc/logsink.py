"""Optional copy of the decision lines to syslog / the journal (``syslog = yes``).

The stdlib ``syslog`` module is imported only when the setting is on. Lines go out with the
identifier ``dkms-rustc`` (``journalctl -t dkms-rustc``), the verdict line at a priority that
matches it, the others as information.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing and collections cost imports a warm replay does without
if TYPE_CHECKING:
    from collections.abc import Sequence

IDENT = "dkms-rustc"


def send(lines: Sequence[str], *, failed: bool, context: str | None = None) -> None:
    """Log ``lines``; never raises (logging must not change a decision)."""
    from dkms_rustc import warm

    warm.logged(lines, failed, context)  # a replay of this run logs the same
    try:
        import syslog

        syslog.openlog(IDENT, syslog.LOG_PID, syslog.LOG_USER)
        from dkms_rustc.text import printable

        prefix = f"{printable(context)}: " if context else ""
        for number, raw in enumerate(lines):
            line = printable(raw)  # no control characters into the journal either
            if number == 0:
                priority = syslog.LOG_ERR if failed else syslog.LOG_INFO
            elif line.startswith("warning:"):
                priority = syslog.LOG_WARNING
            else:
                priority = syslog.LOG_INFO
            syslog.syslog(priority, prefix + line)
        syslog.closelog()
    except Exception:
        pass
