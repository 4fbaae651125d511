"""May this file be executed (or loaded) by this process, in particular as root?

A binary is trusted only when the file and every directory on its resolved path are owned
by root (or by the user running the tool, when that is not root) and cannot be changed by
anyone else: no group or other write permission on the file, and none on a directory unless
the directory is sticky (like /tmp, where others cannot replace what they do not own); a
POSIX access control list granting write to someone else counts as write permission. For a
rustc, the libraries its ``$ORIGIN/../lib`` run path loads (librustc_driver, libstd,
libLLVM) are held to the same rule: whoever can replace them runs code as root.
Directories an administrator names in the root-owned configuration file are trusted as a
whole; nothing a module's dkms.conf passes on a command line can add to that list.
"""

from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False  # the warm path checks its record's directory with this module alone
if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

_ACL_XATTR = "system.posix_acl_access"
_ACL_USER, _ACL_GROUP = 0x02, 0x08
_ACL_WRITE = 0x02
# What a rustc's run path ($ORIGIN/../lib) loads: the compiler proper, std, LLVM.
_RUNPATH_LIBRARIES = ("librustc_driver-", "libstd-", "libLLVM", "librustc-")


def _owner_name(uid: int) -> str:
    try:
        import pwd

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def _acl_writers(path: str, allowed_uids: frozenset[int]) -> str | None:
    """Who else an access control list lets write ``path`` (None when nobody)."""
    try:
        data = os.getxattr(path, _ACL_XATTR, follow_symlinks=False)
    except OSError as error:
        if error.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
            return None
        return f"its access control list cannot be read ({error.strerror})"
    import struct  # only a directory with an access control list gets here

    for offset in range(4, len(data) - 7, 8):
        tag, perm, ident = struct.unpack_from("<HHI", data, offset)
        if not perm & _ACL_WRITE:
            continue
        if tag == _ACL_USER and ident not in allowed_uids:
            return f"uid {ident}"
        if tag == _ACL_GROUP and ident != 0:
            return f"group {ident}"
    return None


def _problem(path: str, st: os.stat_result, allowed_uids: frozenset[int], is_dir: bool) -> str | None:
    if st.st_uid not in allowed_uids:
        return f"{path} is owned by {_owner_name(st.st_uid)}"
    mode = st.st_mode
    sticky = is_dir and bool(mode & stat.S_ISVTX)
    if mode & stat.S_IWOTH and not sticky:
        return f"{path} is writable by every user"
    if mode & stat.S_IWGRP and st.st_gid != 0 and not sticky:
        return f"{path} is writable by group {st.st_gid}"
    if mode & stat.S_IWGRP and not sticky:
        # With an access control list the group bits are its mask: named entries may write.
        writer = _acl_writers(path, allowed_uids)
        if writer:
            return f"{path} is writable by {writer} (access control list)"
    return None


def _allowed(euid: int | None) -> frozenset[int]:
    return frozenset({0, os.geteuid() if euid is None else euid})


def _inside(real: str, directories: Iterable[Path]) -> bool:
    for trusted in directories:
        base = os.path.realpath(trusted)
        if real == base or real.startswith(base.rstrip("/") + "/"):
            return True
    return False


def _directories_problem(directory: str, allowed: frozenset[int]) -> str | None:
    """The first problem on ``directory`` (resolved) and each of its parents."""
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


def untrusted_reason(
    path: Path,
    *,
    trusted_dirs: Iterable[Path] = (),
    euid: int | None = None,
    concrete: bool = False,
) -> str | None:
    """None when ``path`` may be executed; otherwise why not, in one short clause.

    ``concrete``: ``path`` is what will be executed and must already be resolved (no
    symbolic link on the way), so that what was judged is exactly what runs.
    """
    allowed = _allowed(euid)
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError as error:
        return f"{path} cannot be examined ({error.strerror})"
    if concrete and real != os.path.abspath(path):
        return f"{path} changed while it was examined (it now resolves to {real})"
    if _inside(real, trusted_dirs):
        return None
    if not stat.S_ISREG(st.st_mode):
        return f"{real} is not a regular file"
    problem = _problem(real, st, allowed, is_dir=False)
    if problem:
        return problem
    return _directories_problem(os.path.dirname(real), allowed)


def untrusted_directory_reason(directory: str | os.PathLike[str], *, euid: int | None = None) -> str | None:
    """None when only root (or the running user) can change what ``directory`` holds."""
    real = os.path.realpath(directory)
    return _directories_problem(real, _allowed(euid))


def untrusted_libraries_reason(
    binary: Path, *, trusted_dirs: Iterable[Path] = (), euid: int | None = None
) -> str | None:
    """None when the libraries a rustc loads through ``$ORIGIN/../lib`` are as safe as it is.

    rustup's and the distributions' rustc find librustc_driver (the whole compiler), libstd
    and libLLVM there, before the system's library directories.
    """
    lib = os.path.realpath(os.path.join(os.path.dirname(os.path.realpath(binary)), os.pardir, "lib"))
    if not os.path.isdir(lib) or _inside(lib, trusted_dirs):
        return None
    allowed = _allowed(euid)
    problem = _directories_problem(lib, allowed)
    if problem:
        return problem
    try:
        names = os.listdir(lib)
    except OSError as error:
        return f"{lib} cannot be listed ({error.strerror})"
    for name in sorted(names):
        if not name.startswith(_RUNPATH_LIBRARIES) or ".so" not in name:
            continue
        path = os.path.join(lib, name)
        real = os.path.realpath(path)
        if _inside(real, trusted_dirs):
            continue
        try:
            st = os.stat(real)
        except OSError:
            continue  # a dangling link loads nothing
        problem = _problem(real, st, allowed, is_dir=False)
        if problem is None and real != path:
            problem = _directories_problem(os.path.dirname(real), allowed)
        if problem:
            return problem
    return None


def is_inside_any(path: Path, directories: Iterable[Path]) -> bool:
    """True when ``path`` resolves to one of ``directories`` or to something inside one."""
    return _inside(os.path.realpath(path), directories)
