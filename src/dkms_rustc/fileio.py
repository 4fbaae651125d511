"""Open and read files named by others without being stalled or fooled by what they really are.

Every file this tool reads (kernel configuration, crate metadata, proc-macro objects, its own
configuration and cache) may be damaged or planted: a FIFO would block ``open`` forever, a
character device such as ``/dev/zero`` never ends, a directory cannot be read. Files are
therefore opened non-blocking and checked with ``fstat`` on the open descriptor (no race with
a rename), and only regular files are read, up to a limit.
"""

from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False  # typing costs an import the warm path does without
if TYPE_CHECKING:
    from typing import BinaryIO


class NotRegularFileError(OSError):
    """The path names something that is not a regular file (a FIFO, device, socket, directory)."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def open_regular_fd(path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> int:
    """An O_RDONLY descriptor of the regular file ``path``; OSError otherwise (never blocks)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno != errno.ENXIO:  # a socket (or a device without a driver)
            raise
        mode = os.stat(path).st_mode
        raise NotRegularFileError(errno.EINVAL, f"is {_kind(mode)}, not a regular file", str(path)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _kind(mode)
            code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
            raise NotRegularFileError(code, f"is {kind}, not a regular file", str(path))
        # Reads of a regular file never block; clear the flag so nothing else is surprised.
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``open(path, "rb")`` for regular files only; OSError (NotRegularFileError) otherwise."""
    return os.fdopen(open_regular_fd(path), "rb")


def read_prefix(path: str | os.PathLike[str], limit: int) -> bytes:
    """At most ``limit`` bytes from the start of the regular file ``path``."""
    with open_regular(path) as stream:
        return stream.read(limit)
