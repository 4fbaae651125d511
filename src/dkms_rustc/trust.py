"""May this file be executed (or loaded, or read as root) by this process?

A file is *root-only* when it and every directory the kernel walks to reach it are owned by
root (or by the user running the tool, when that is not root) and cannot be changed by
anyone else: no group or other write permission on the file, none on a directory unless the
directory is sticky (like /tmp, where others cannot replace what they do not own) and only
passed through, and every symbolic link on the way owned by root too; a POSIX access control
list granting write to someone else counts as write permission. A sticky directory others
can write is never the end of a walk: not a directory whose entries are used (a search or
run-path directory, the kernel's rust/: anyone may add an entry), nor the parent of a name
that does not exist yet (anyone may create it). Paths are walked component by component the way
the kernel resolves them (:func:`walk_problem`), so a link in a directory someone else can
change is caught even when it points somewhere safe at the moment.

A rustc or bindgen is run only when it is root-only, and so is everything the dynamic loader
would map for it (:func:`untrusted_libraries_reason`, from :mod:`dkms_rustc.loader`): every
library in the closure of its ``DT_NEEDED`` entries, every ``DT_RPATH``/``DT_RUNPATH``
directory (also those where nothing was found: whoever can write there could plant a library
that is found first), the interpreter, ``/etc/ld.so.cache`` and ``/etc/ld.so.preload``.
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

TYPE_CHECKING = False  # typing costs an import the warm path does without
if TYPE_CHECKING:
    from dkms_rustc.cache import Cache

_ACL_XATTR = "system.posix_acl_access"
_ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK = 0x02, 0x04, 0x08, 0x10
_ACL_WRITE = 0x02
_MAX_SYMLINKS = 40  # what the kernel follows before ELOOP
# A remembered loader closure is used while every file and directory it was computed from
# is unchanged; this names the record's layout.
_CLOSURE_FORMAT = 1


def _owner_name(uid: int) -> str:
    try:
        import pwd

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def _acl_writer(path: str, st: os.stat_result, allowed_uids: frozenset[int]) -> str | None:
    """Who may write ``path`` through its group bits: the owning group, or, when the file has
    an access control list (the group bits are then its mask), a named user or group."""
    try:
        data = os.getxattr(path, _ACL_XATTR, follow_symlinks=False)
    except OSError as error:
        if error.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
            return f"group {st.st_gid}"  # no list: the owning group may write
        return f"an access control list that cannot be read ({error.strerror})"
    from dkms_rustc.fileio import acl_entries  # only a file with an access control list gets here

    entries = acl_entries(data)
    mask_allows = all(perm & _ACL_WRITE for tag, perm, _ in entries if tag == _ACL_MASK)
    if not mask_allows:
        return None
    for tag, perm, ident in entries:
        if not perm & _ACL_WRITE:
            continue
        if tag == _ACL_USER and ident not in allowed_uids:
            return f"uid {ident} (access control list)"
        if tag == _ACL_GROUP_OBJ:
            return f"group {st.st_gid} (access control list)"
        if tag == _ACL_GROUP:
            return f"group {ident} (access control list)"
    return None


def _problem(path: str, st: os.stat_result, allowed_uids: frozenset[int], is_dir: bool) -> str | None:
    if st.st_uid not in allowed_uids:
        return f"{path} is owned by {_owner_name(st.st_uid)}"
    if is_dir and st.st_mode & stat.S_ISVTX:
        return None  # others may add entries, but never replace what root owns
    writer = _writer(path, st, allowed_uids)
    return f"{path} is writable by {writer}" if writer else None


def _writer(path: str, st: os.stat_result, allowed_uids: frozenset[int]) -> str | None:
    """Who else may write ``path``: every user, its group or an access control list's."""
    if st.st_mode & stat.S_IWOTH:
        return "every user"
    if st.st_mode & stat.S_IWGRP:
        return _acl_writer(path, st, allowed_uids)
    return None


def _allowed(euid: int | None) -> frozenset[int]:
    return frozenset({0, os.geteuid() if euid is None else euid})


def _trusted_verdict(path: str, directories: Iterable[Path]) -> str | bool | None:
    """For ``path`` (resolved, or normalised as spelled): False when it lies in none of the
    administrator's ``directories``; else None when it is theirs, or why it is not after all
    (someone else may change something there: :func:`dkms_rustc.fileio.trusted_dir_problem`)."""
    from dkms_rustc.fileio import trusted_base, trusted_dir_problem

    base = trusted_base(path, directories)
    if base is None:
        return False
    return trusted_dir_problem(path, base)


def walk_problem(
    path: str,
    *,
    euid: int | None = None,
    directory: bool = False,
    missing_ok: bool = False,
    memo: dict[str, object] | None = None,
    own_entries_only: bool = False,
) -> str | None:
    """None when nobody but root (or the running user) can change what ``path`` names, or
    redirect it: every directory walked is root-only, every symbolic link followed is
    root's (in a sticky directory its owner could replace it), and the file itself (or, with
    ``directory``, the directory) is root-only; a directory's entries are used, so it must
    not be a sticky one others can add to, unless ``own_entries_only`` (the caller only
    creates its own entry there, exclusively, as mkdtemp does). ``missing_ok``: a path that
    does not exist is fine when the deepest existing directory is root-only and not sticky
    (then nobody else can create it). ``memo`` remembers the directories already judged
    during one run."""
    allowed = _allowed(euid)
    memo = {} if memo is None else memo
    if not path.startswith("/"):
        return f"{path} is a relative path"
    pending = [part for part in path.split("/") if part]
    parent = os.path.dirname(path)
    if (
        memo.get(parent, "") is None
        and "." not in pending
        and ".." not in pending
        and "//" not in path
        and not path.endswith("/")  # then dirname() is the path itself, not its parent
    ):
        # Its directory was judged in this run as a chain of real, root-only directories: only
        # the last component is left (system libraries, a toolchain's lib/: the common case).
        current, pending = parent, pending[-1:]
    else:
        pending.reverse()
        current = "/"
        problem = _judge_dir("/", allowed, memo)
        if problem:
            return problem
    links = 0
    while pending:
        name = pending.pop()
        if name == ".":
            continue
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, name)
        known = memo.get(candidate, "")
        if known is None or (isinstance(known, str) and known):  # a directory judged in this run
            if known:
                return str(known)
            current = candidate
            continue
        if isinstance(known, tuple):  # a root's link in a root-only directory, read in this run
            links += 1
            if links > _MAX_SYMLINKS:
                return f"{path} has too many levels of symbolic links"
            if _queue_link(str(known[0]), pending):
                current = "/"
            continue
        try:
            st = os.lstat(candidate)
        except OSError as error:
            if missing_ok and error.errno in (errno.ENOENT, errno.ENOTDIR):
                # Nobody else can create it, unless the deepest existing directory is sticky.
                return _open_sticky(current, allowed, f"{candidate} does not exist, and ")
            return f"{candidate} cannot be examined ({error.strerror})"
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_SYMLINKS:
                return f"{path} has too many levels of symbolic links"
            if st.st_uid not in allowed:
                return f"{candidate} is a symbolic link owned by {_owner_name(st.st_uid)}"
            try:
                target = os.readlink(candidate)
            except OSError as error:
                return f"{candidate} cannot be examined ({error.strerror})"
            memo[candidate] = (target,)
            if _queue_link(target, pending):
                current = "/"
            continue
        if stat.S_ISDIR(st.st_mode):
            problem = _problem(candidate, st, allowed, is_dir=True)
            memo[candidate] = problem
            if problem:
                return problem
            current = candidate
            continue
        if pending:
            return f"{candidate} is not a directory"
        if directory:
            return f"{candidate} is not a directory"
        if not stat.S_ISREG(st.st_mode):
            return f"{candidate} is not a regular file"
        return _problem(candidate, st, allowed, is_dir=False)
    if not directory:
        return f"{path} is a directory, not a file"
    return None if own_entries_only else _open_sticky(current, allowed, "")


def _open_sticky(directory: str, allowed: frozenset[int], context: str) -> str | None:
    """Why others can add entries to ``directory`` although it passed as sticky (None when
    they cannot): fine on the way through it, not for a directory whose entries are used."""
    try:
        st = os.lstat(directory)
    except OSError as error:
        return f"{directory} cannot be examined ({error.strerror})"
    if not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
        return None
    writer = _writer(directory, st, allowed)
    if writer is None:
        return None
    return f"{context}{directory} is writable by {writer} (sticky: anyone may add entries there)"


def _queue_link(target: str, pending: list[str]) -> bool:
    """Put a link's target in front of what is left to walk; True when it starts again at /."""
    parts = [part for part in target.split("/") if part]
    parts.reverse()
    pending.extend(parts)
    return target.startswith("/")


def _judge_dir(directory: str, allowed: frozenset[int], memo: dict[str, object]) -> str | None:
    if directory in memo:
        return str(memo[directory]) if memo[directory] else None
    try:
        st = os.lstat(directory)
    except OSError as error:
        return f"{directory} cannot be examined ({error.strerror})"
    problem = _problem(directory, st, allowed, is_dir=True)
    memo[directory] = problem
    return problem


def untrusted_reason(
    path: Path,
    *,
    trusted_dirs: Iterable[Path] = (),
    euid: int | None = None,
    concrete: bool = False,
    memo: dict[str, object] | None = None,
) -> str | None:
    """None when ``path`` may be executed; otherwise why not, in one short clause.

    ``concrete``: ``path`` is what will be executed and must already be resolved (no
    symbolic link on the way), so that what was judged is exactly what runs.
    """
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError as error:
        return f"{path} cannot be examined ({error.strerror})"
    if concrete and real != os.path.abspath(path):
        return f"{path} changed while it was examined (it now resolves to {real})"
    verdict = _trusted_verdict(real, trusted_dirs) if trusted_dirs else False
    if verdict is not False:
        return None if verdict is None else str(verdict)
    if not stat.S_ISREG(st.st_mode):
        return f"{real} is not a regular file"
    return walk_problem(real, euid=euid, memo=memo)


def reached_reason(
    paths: Iterable[Path],
    binary: Path,
    *,
    trusted_dirs: Iterable[Path] = (),
    euid: int | None = None,
    memo: dict[str, object] | None = None,
) -> str | None:
    """None when at least one of ``paths`` (how ``binary`` was found) leads to it only through
    root-only directories and root's symbolic links; otherwise why the first one does not.

    Judging the resolved file alone is not enough: a link in a user's directory (a sudo user's
    ``~/.cargo/bin``, a ``PATH`` entry) pointing at any root-owned program would let that user
    choose which program root runs. A path the file itself is reached by directly is covered
    by the walk of the file; one inside a directory of ``trusted_dirs`` is the administrator's.
    """
    trusted = tuple(trusted_dirs)
    first: str | None = None
    for path in paths:
        spelled = str(path)
        if not spelled.startswith("/"):  # not normalised: ``..`` is walked after the links
            spelled = os.path.join(os.getcwd(), spelled)
        if os.path.normpath(spelled) == str(binary):
            return None
        verdict = (
            _trusted_verdict(os.path.normpath(spelled), trusted)
            if trusted and ".." not in spelled.split("/")
            else False
        )
        if verdict is None:
            return None
        problem = walk_problem(spelled, euid=euid, memo=memo) if verdict is False else str(verdict)
        if problem is None:
            return None
        if first is None:
            from dkms_rustc.fileio import known_to_all

            # Where a user's link leads is named only when every user could find it anyway:
            # root resolves links (/proc/<pid>/cwd, links in private directories) they cannot.
            target = f"to {binary} " if known_to_all(str(binary)) else ""
            first = f"{problem} (on the way {target}from {spelled})"
    return first


def untrusted_directory_reason(directory: str | os.PathLike[str], *, euid: int | None = None) -> str | None:
    """None when only root (or the running user) can change what ``directory`` holds."""
    return walk_problem(os.path.realpath(directory), euid=euid, directory=True)


def untrusted_libraries_reason(
    binary: Path,
    *,
    trusted_dirs: Iterable[Path] = (),
    euid: int | None = None,
    cache: Cache | None = None,
    memo: dict[str, object] | None = None,
    library: bool = False,
) -> str | None:
    """None when everything the dynamic loader would map for ``binary`` is root-only.

    ``library``: ``binary`` is a shared object rustc dlopens by this path (a proc macro), so
    ``$ORIGIN`` is the directory of the path as given; for a program it is that of the file
    itself (the loader reads /proc/self/exe).

    The closure (which files and directories the loader could use) is computed from the
    ELF files (:mod:`dkms_rustc.loader`, imported only then) and remembered while every file
    and directory it depends on is unchanged; whether each of them is root-only is judged
    afresh on every run (a few ``lstat`` calls).
    """
    trusted = tuple(trusted_dirs)
    memo = {} if memo is None else memo
    origin = os.path.dirname(os.path.abspath(binary)) if library else None
    closure = _closure(os.path.realpath(binary), cache, memo, origin)
    problem = closure.get("problem")
    if problem:
        return str(problem)
    directories, files = closure["dirs"], closure["files"]
    assert isinstance(directories, list) and isinstance(files, list)
    name = os.path.basename(binary)
    for paths, kind, role in (
        (directories, "dir", f"a directory the dynamic loader searches for {name}"),
        (files, "file", f"the dynamic loader maps it for {name}"),
    ):
        for path in paths:
            verdict = _trusted_verdict(os.path.realpath(path), trusted) if trusted else False
            if verdict is None:
                continue  # the administrator's
            problem = _memoized(memo, kind, path, euid) if verdict is False else str(verdict)
            if problem:
                return f"{problem} ({role})"
    return None


def _memoized(memo: dict[str, object], kind: str, path: str, euid: int | None) -> str | None:
    """walk_problem of a loader path, once per run (system libraries recur in every closure)."""
    key = f"\0{kind}\0{path}"  # cannot collide with the directories walk_problem remembers
    if key not in memo:
        if kind == "dir":
            memo[key] = walk_problem(path, euid=euid, directory=True, missing_ok=True, memo=memo)
        else:
            memo[key] = walk_problem(path, euid=euid, memo=memo)
    found = memo[key]
    return str(found) if found else None


def _identity(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_uid, st.st_mode]


def _unchanged(path: str, identity: object, memo: dict[str, object]) -> bool:
    key = f"\0id\0{path}"
    if key not in memo:
        memo[key] = _identity(path)
    return memo[key] == identity


def _closure(
    binary: str, cache: Cache | None, memo: dict[str, object], origin: str | None
) -> dict[str, object]:
    """``{"files": [...], "dirs": [...], "problem": str | None}`` for ``binary``."""
    identity = _identity(binary)
    key = [_CLOSURE_FORMAT, binary, identity, origin]
    if cache is not None and identity is not None:
        remembered = cache.get("loader", key)
        if (
            isinstance(remembered, dict)
            and isinstance(remembered.get("depends"), list)
            and all(
                isinstance(item, list) and len(item) == 2 and _unchanged(str(item[0]), item[1], memo)
                for item in remembered["depends"]
            )
            and isinstance(remembered.get("files"), list)
            and isinstance(remembered.get("dirs"), list)
        ):
            return remembered
    from dkms_rustc.loader import loader_closure  # only when nothing remembered fits

    found = loader_closure(binary, origin)
    value: dict[str, object] = {
        "files": found.files,
        "dirs": found.search_dirs,
        "problem": found.problem,
        "depends": [[path, _identity(path)] for path in found.depends],
    }
    if cache is not None and identity is not None:
        cache.put("loader", key, value)
    return value


def is_inside_any(path: Path, directories: Iterable[Path]) -> bool:
    """True when ``path`` resolves to one of ``directories`` or to something inside one, and
    nobody but the administrator could have put it there (:func:`_trusted_verdict`)."""
    return _trusted_verdict(os.path.realpath(path), directories) is None


def is_named_inside_any(path: Path, directories: Iterable[Path]) -> bool:
    """True when ``path`` as spelled (absolute, with no ``..``) lies in one of ``directories``
    and nobody but the administrator could have put it there: a user's link into a trusted
    directory is not."""
    from dkms_rustc.fileio import absolute

    spelled = absolute(path)
    if ".." in spelled.split("/"):
        return False
    return _trusted_verdict(os.path.normpath(spelled), directories) is None
