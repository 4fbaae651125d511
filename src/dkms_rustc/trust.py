"""May this file be executed (or loaded) by this process, in particular as root?

A binary is trusted only when the file and every directory on its resolved path are owned
by root (or by the user running the tool, when that is not root) and cannot be changed by
anyone else: no group or other write permission on the file, and none on a directory unless
the directory is sticky (like /tmp, where others cannot replace what they do not own).
Directories an administrator names in the root-owned configuration file are trusted as a
whole; nothing a module's dkms.conf passes on a command line can add to that list.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path


def _owner_name(uid: int) -> str:
    try:
        import pwd

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def _problem(path: str, st: os.stat_result, allowed_uids: frozenset[int], is_dir: bool) -> str | None:
    if st.st_uid not in allowed_uids:
        return f"{path} is owned by {_owner_name(st.st_uid)}"
    mode = st.st_mode
    sticky = is_dir and bool(mode & stat.S_ISVTX)
    if mode & stat.S_IWOTH and not sticky:
        return f"{path} is writable by every user"
    if mode & stat.S_IWGRP and st.st_gid != 0 and not sticky:
        return f"{path} is writable by group {st.st_gid}"
    return None


def untrusted_reason(
    path: Path,
    *,
    trusted_dirs: Iterable[Path] = (),
    euid: int | None = None,
) -> str | None:
    """None when ``path`` may be executed; otherwise why not, in one short clause."""
    uid = os.geteuid() if euid is None else euid
    allowed = frozenset({0, uid})
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError as error:
        return f"{path} cannot be examined ({error.strerror})"
    for trusted in trusted_dirs:
        base = os.path.realpath(trusted)
        if real == base or real.startswith(base.rstrip("/") + "/"):
            return None
    if not stat.S_ISREG(st.st_mode):
        return f"{real} is not a regular file"
    problem = _problem(real, st, allowed, is_dir=False)
    if problem:
        return problem
    directory = os.path.dirname(real)
    while True:
        try:
            dst = os.stat(directory)
        except OSError as error:
            return f"{directory} cannot be examined ({error.strerror})"
        problem = _problem(directory, dst, allowed, is_dir=True)
        if problem:
            return problem
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def is_inside(path: Path, directory: Path) -> bool:
    real = os.path.realpath(path)
    base = os.path.realpath(directory).rstrip("/") + "/"
    return real.startswith(base)
