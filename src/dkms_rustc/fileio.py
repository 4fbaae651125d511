"""Open and read files named by others without being stalled or fooled by what they really are.

Every file this tool reads (kernel configuration, crate metadata, proc-macro objects, its own
configuration and cache) may be damaged or planted: a FIFO would block ``open`` forever, a
character device such as ``/dev/zero`` never ends, a directory cannot be read. Files are
therefore opened non-blocking and checked with ``fstat`` on the open descriptor (no race with
a rename), and only regular files are read, up to a limit.

As root, what is read may end up in messages, make.log and the hand-off files, which others
can read: a kernel tree a user controls could hold ``include/config/kernel.release`` as a link
to a root-only key. So as root a file is read only when every user could read it anyway (the
opened file has the read bit for others and its group, every directory above it the search
bit likewise, and no access control list leaves a user or group out) or when
nobody but root could have put it where it was found (:func:`dkms_rustc.trust.walk_problem`
of the path as given, ``..`` applied after links as the kernel does), and nobody else chose
to have it read: while a kernel tree others can change is read (its links, its Makefile's
other trees, its ``rust/``, all theirs to point anywhere), only public files are
(:func:`read_public_files_only`); otherwise :class:`NotPublicError`.
"""

from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False  # typing costs an import the warm path does without
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import BinaryIO


class NotRegularFileError(OSError):
    """The path names something that is not a regular file (a FIFO, device, socket, directory)."""


class NotPublicError(OSError):
    """As root: the file is private and someone other than root could have put it there."""


# Directories every user may search, judged once per command (cli.main empties it): a warm
# run reads some tens of files under the same few directories.
_searchable: dict[str, bool] = {}
_walked: dict[str, object] = {}  # trust.walk_problem's findings, for the same reason
# Set while a kernel tree others can change is read: whatever it names (links, its Makefile's
# other trees, rust/), root put there or not, was chosen by them, so only public files are read.
_public_only: list[str] = []
# The administrator's trusted_dir directories, as named (trust_directories).
_trusted: list[str] = []


def forget() -> None:
    """Judge directories afresh (a new command starts)."""
    _searchable.clear()
    _walked.clear()
    _public_only.clear()
    _trusted.clear()


def trust_directories(directories: Iterable[str | os.PathLike[str]]) -> None:
    """The administrator's ``trusted_dir`` directories: whoever may change them may run code
    as root anyway, so what lies in them is root's to read and list, as their programs are
    root's to run (except while only public files are read: someone else chose to go there)."""
    _trusted[:] = [absolute(directory) for directory in directories]  # trusted_base: both spellings


def trusted_base(path: str, directories: Iterable[str | os.PathLike[str]]) -> str | None:
    """The directory of ``directories`` (as named or resolved) that ``path`` (normalised, or
    resolved) lies in, if any."""
    for directory in directories:
        for base in {os.path.normpath(absolute(directory)), os.path.realpath(directory)}:
            if path == base or path.startswith(base.rstrip("/") + "/"):
                return base
    return None


def trusted_dir_problem(path: str, base: str) -> str | None:
    """Why ``path`` (in the trusted directory ``base``, spelled from it: normalised or
    resolved) is not the administrator's after all (None when it is). A trusted directory
    trusts its owner (and root), not whoever its owner let in, nor whoever could put another
    directory in its place: every directory above ``base`` (as named and as resolved) must be
    root's or the owner's and writable by nobody else (in a sticky directory such as ``/tmp``
    the entry below must be root's: anyone may create a missing name there); ``base`` must
    exist; and ``base`` and everything below it on the way to ``path`` must be the owner's or
    root's and writable by nobody else (:func:`_others_may_write`). Where the way ends at a
    missing name, only what was judged above it could create it (a library directory the
    loader would search)."""
    real_base = os.path.realpath(base)
    try:
        owner = os.stat(real_base).st_uid
    except OSError as error:
        return f"the trusted_dir {base} cannot be examined ({error.strerror})"
    for spelled in dict.fromkeys((base, real_base)):
        problem = _above_trusted_problem(spelled, base, owner)
        if problem:
            return problem
    current = base
    rest = [part for part in path[len(base) :].split("/") if part]
    while True:
        try:
            st = os.lstat(current)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ENOTDIR):
                return None  # only what was judged on the way could create it
            return f"{current} cannot be examined ({error.strerror})"
        if st.st_uid not in (0, owner):
            return f"{current} is owned by uid {st.st_uid}, in the trusted_dir {base} of uid {owner}"
        writers = _others_may_write(current, st, owner)
        if writers:
            return f"{current} {writers}, in the trusted_dir {base}"
        if not rest:
            return None
        current = os.path.join(current, rest.pop(0))


def _above_trusted_problem(spelled: str, base: str, owner: int) -> str | None:
    """Why someone else could put another directory at ``spelled`` (``base`` as named or
    resolved), judged from ``/`` down, links on the way included (None: nobody could)."""
    current = "/"
    for name in [part for part in spelled.split("/") if part]:
        entry = os.path.join(current, name)
        try:
            st = os.stat(current)
            entry_st = os.lstat(entry)
        except OSError as error:
            return f"{entry}, on the way to the trusted_dir {base}, cannot be examined ({error.strerror})"
        if st.st_uid not in (0, owner):
            return f"{current}, above the trusted_dir {base}, is owned by uid {st.st_uid}"
        writers = _others_may_write(current, st, owner)
        if writers and not (st.st_mode & stat.S_ISVTX and entry_st.st_uid == 0):
            return f"{current}, above the trusted_dir {base}, {writers}"
        if entry_st.st_uid not in (0, owner):
            return f"{entry}, on the way to the trusted_dir {base}, is owned by uid {entry_st.st_uid}"
        current = entry
    return None


def _others_may_write(path: str, st: os.stat_result, owner: int) -> str | None:
    """Who besides ``owner`` and root may write ``path`` (a symbolic link: nobody), as a
    clause: every user, a group that is not the owner's own (a user private group, as
    Fedora's and RHEL's umask 002 leaves writable), or an access control list's user or group
    entry; None when nobody."""
    if stat.S_ISLNK(st.st_mode):
        return None
    if st.st_mode & stat.S_IWOTH:
        return "is writable by every user"
    try:
        data: bytes | None = os.getxattr(path, "system.posix_acl_access", follow_symlinks=False)
    except OSError:
        data = None
    if data is None:
        if st.st_mode & stat.S_IWGRP and not _private_group(st.st_gid, owner):
            return f"is writable by group {st.st_gid}"
        return None
    if len(data) < 4 or (len(data) - 4) % 8:
        return "has an access control list that cannot be read"
    entries = acl_entries(data)
    mask = next((perm for tag, perm, _ in entries if tag == _ACL_MASK), 7)
    for tag, perm, ident in entries:
        if not perm & mask & 2:
            continue
        if tag == _ACL_USER and ident not in (0, owner):
            return f"is writable by uid {ident} (an access control list)"
        if tag == _ACL_GROUP and not _private_group(ident, owner):
            return f"is writable by group {ident} (an access control list)"
        if tag == _ACL_GROUP_OBJ and not _private_group(st.st_gid, owner):
            return f"is writable by group {st.st_gid}"
    return None


def _private_group(gid: int, uid: int) -> bool:
    """Is ``gid`` the user private group of ``uid`` (its primary group, of the same name, with
    no other member: listed, or with it as their primary group)? Groups granted at login
    (pam_group) are not seen: such a setup should not make a trusted_dir group-writable."""
    import grp  # only a trusted_dir's group-writable entries get here
    import pwd

    try:
        user = pwd.getpwuid(uid)
        group = grp.getgrgid(gid)
    except KeyError:
        return False
    if user.pw_gid != gid or group.gr_name != user.pw_name or any(m != user.pw_name for m in group.gr_mem):
        return False
    # gr_mem does not list the users whose primary group it is (useradd -g alice bob).
    return all(other.pw_gid != gid or other.pw_uid == uid for other in pwd.getpwall())


def in_trusted_dir(path: str | os.PathLike[str]) -> bool:
    """Does ``path`` lie in a directory of :func:`trust_directories`, as spelled (up to a
    ``..``) and as resolved, with nothing on either way that the administrator did not make
    (:func:`trusted_dir_problem`)? Resolving alone would take a user's link there (or to
    ``/proc/<pid>/cwd`` of a process there) as the administrator's."""
    if not _trusted or _public_only:
        return False
    spelled = absolute(path)
    parts = spelled.split("/")
    # As spelled up to the first "..", which the kernel takes after the links before it (the
    # loader's $ORIGIN/../lib): the resolved path is judged as well.
    named = "/".join(parts[: parts.index("..")]) if ".." in parts else spelled
    for candidate in (os.path.normpath(named or "/"), os.path.realpath(spelled)):
        base = trusted_base(candidate, _trusted)
        if base is None or trusted_dir_problem(candidate, base) is not None:
            return False
    return True


def absolute(path: str | os.PathLike[str]) -> str:
    """``path`` made absolute without normalising it: ``link/../x`` keeps its ``..``, which the
    kernel (and :func:`dkms_rustc.trust.walk_problem`) applies after following ``link``, so
    what is judged is what is opened (``os.path.abspath`` would judge another path)."""
    text = os.fspath(path)
    return text if text.startswith("/") else os.path.join(os.getcwd(), text)


def read_public_files_only(why: str | None) -> None:
    """As root, from now on read no private file at all (``why``: who else chose what is read,
    e.g. "the kernel build tree ... is not root-only (...)"), until called with None."""
    _public_only[:] = [why] if why else []


def public_files_only() -> str | None:
    """Why only public files are read now (:func:`read_public_files_only`), else None."""
    return _public_only[0] if _public_only else None


def _granted_to_all(target: int | str, st: os.stat_result, other_bit: int, group_bit: int) -> bool:
    """Does every user get ``other_bit``? The owning group's members get the group's bits
    instead (root's group, gid 0, is taken to be root's alone), and an access control list
    can deny named users or groups: only a mode that grants the bit to others and the group,
    and an access control list (if any) that denies it to no named user or group, grants it
    to all."""
    if not st.st_mode & other_bit or (st.st_gid != 0 and not st.st_mode & group_bit):
        return False
    try:
        data = os.getxattr(target, "system.posix_acl_access")
    except OSError as error:
        return error.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS)
    return _acl_grants_all(data, other_bit, st.st_gid)


_ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK = 0x02, 0x04, 0x08, 0x10


def acl_entries(data: bytes) -> list[tuple[int, int, int]]:
    """The ``(tag, permissions, id)`` entries of a ``system.posix_acl_access`` value (after
    its 4-byte version; a partial entry at the end is ignored)."""
    import struct  # only a file with an access control list gets here

    return [struct.unpack_from("<HHI", data, offset) for offset in range(4, len(data) - 7, 8)]


def _acl_grants_all(data: bytes, bit: int, gid: int) -> bool:
    """Does an access control list leave nobody without ``bit`` (4 read, 1 search: the values
    of the bits for others)? Others get it (the caller checked), so: does every named user and
    group, and the owning group (unless root's), get it too, through the mask where there is
    one? A list that cannot be parsed grants nothing."""
    if len(data) < 4 or (len(data) - 4) % 8:
        return False
    entries = acl_entries(data)
    mask = next((perm for tag, perm, _ in entries if tag == _ACL_MASK), 7)
    for tag, perm, _ in entries:
        if tag == _ACL_GROUP_OBJ and gid == 0:
            continue
        if tag in (_ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP) and not perm & mask & bit:
            return False
    return True


def _searchable_by_all(directory: str) -> bool:
    """May every user search ``directory`` and every directory above it? A loop, not a
    recursion: a user's tree may be thousands of directories deep."""
    unjudged: list[str] = []
    allowed = True
    while directory not in _searchable:
        unjudged.append(directory)
        try:
            allowed = _granted_to_all(directory, os.stat(directory), stat.S_IXOTH, stat.S_IXGRP)
        except OSError:
            allowed = False
        parent = os.path.dirname(directory)
        if not allowed or parent == directory:
            break
        directory = parent
    else:
        allowed = _searchable[directory]
    for judged in unjudged:  # each is searchable by all exactly when all above it are too
        _searchable[judged] = allowed
    return allowed


def known_to_all(path: str) -> bool:
    """Could every user find the resolved ``path`` (every directory above it listable by all,
    not only searchable: in a 0711 directory a name can be opened but not found)? Then
    printing it tells nobody anything."""
    if not path.startswith("/"):
        return False
    directory = os.path.dirname(path) or "/"
    while True:
        try:
            st = os.stat(directory)
        except OSError:
            return False
        if not (
            _granted_to_all(directory, st, stat.S_IROTH, stat.S_IRGRP)
            and _granted_to_all(directory, st, stat.S_IXOTH, stat.S_IXGRP)
        ):
            return False
        if directory == "/":
            return True
        directory = os.path.dirname(directory)


_MAX_LINKS = 40  # as the kernel's path resolution


def followable_by_all(path: str) -> bool:
    """Could every user follow ``path`` (absolute, not normalised) as far as it leads: look up
    each name in a directory all may search, and go through nothing under ``/proc``, whose
    links (``/proc/<pid>/exe``, ``cwd``, ``fd/N``) only a process's owner may follow? Root
    resolves what a user cannot; where someone else's link leads is theirs to know only when
    they could have gone there themselves. A missing name ends the walk as followed (every
    user could see that it is missing)."""
    pending = [part for part in path.split("/") if part]
    pending.reverse()
    current = "/"
    links = 0
    while pending:
        name = pending.pop()
        if name == ".":
            continue
        try:
            st = os.stat(current)
        except OSError:
            return False
        if not _granted_to_all(current, st, stat.S_IXOTH, stat.S_IXGRP):
            return False
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, name)
        if candidate == "/proc":
            return False
        try:
            st = os.lstat(candidate)
        except OSError:
            return True
        if stat.S_ISLNK(st.st_mode):
            links += 1
            try:
                target = os.readlink(candidate)
            except OSError:
                return False
            if links > _MAX_LINKS:
                return False
            parts = [part for part in target.split("/") if part]
            parts.reverse()
            pending.extend(parts)
            if target.startswith("/"):
                current = "/"
            continue
        if pending and not stat.S_ISDIR(st.st_mode):
            return True  # "not a directory", for everyone alike
        current = candidate
    return True


def listable_by_all(directory: str) -> bool:
    """Could every user list ``directory`` (already resolved) anyway: the read and search bits
    for all (:func:`_granted_to_all`), and every directory above searchable by all?"""
    try:
        st = os.stat(directory)
    except OSError:
        return False
    return (
        _granted_to_all(directory, st, stat.S_IROTH, stat.S_IRGRP)
        and _granted_to_all(directory, st, stat.S_IXOTH, stat.S_IXGRP)
        and _searchable_by_all(os.path.dirname(directory) or "/")
    )


def listing_problem(
    directory: str | os.PathLike[str], shown: str | os.PathLike[str] | None = None
) -> str | None:
    """As root, why the names in ``directory`` must not be used (None when they may): the
    same rule as for reading a file. Every user could list it anyway, or nobody but root can
    have put it where it was found (and nobody else chose it: :func:`read_public_files_only`).
    ``shown``: how to name it (the path a resolved ``directory`` was reached by)."""
    if os.geteuid() != 0:
        return None
    problem = _public_only[0] if _public_only else None
    if problem is None:  # first the walk: its directories were mostly judged in this run already
        from dkms_rustc.trust import walk_problem

        problem = walk_problem(absolute(directory), directory=True, own_entries_only=True, memo=_walked)
        if problem is None:
            return None
    if listable_by_all(os.path.realpath(directory)) and followable_by_all(absolute(directory)):
        return None
    if in_trusted_dir(directory):
        return None
    return f"{directory if shown is None else shown} may be listed only by root, and {problem}"


def readable_by_all(fd: int, st: os.stat_result, path: str | os.PathLike[str]) -> bool:
    """Could every user read the file open on ``fd`` anyway (the read bit for others and
    for its group on it, the search bit likewise on every directory above what was opened,
    and no access control list on any of them)?"""
    if not _granted_to_all(fd, st, stat.S_IROTH, stat.S_IRGRP):
        return False
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")  # what was opened, not what the name says now
    except OSError:
        real = os.path.realpath(path)  # no /proc
    else:
        if not names_opened(real, fd):
            return False
    return real.startswith("/") and _searchable_by_all(os.path.dirname(real))


def opened_path(fd: int) -> str | None:
    """The path of what is open on ``fd`` (``/proc/self/fd``), or None when that path names
    something else here (:func:`names_opened`) or cannot be read."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return real if names_opened(real, fd) else None


def names_opened(real: str, fd: int) -> bool:
    """Does ``real`` (read from ``/proc/self/fd``) name, in this process's mount namespace,
    what is open on ``fd``? Not when it was opened through ``/proc/<pid>/root`` of a process
    in another namespace (a user's own, from ``unshare -Urm``: the path is theirs to shape,
    and here names a directory of their choosing), nor when it was deleted or moved since,
    nor when a link on the way leads there (their link, in their namespace's copy of this
    one's tree, to the very file: the directories judged would be theirs)."""
    try:
        if os.path.realpath(real) != real:
            return False
        now, opened = os.lstat(real), os.fstat(fd)
    except (OSError, ValueError):
        return False
    return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)


def _disclosure_problem(fd: int, st: os.stat_result, path: str | os.PathLike[str]) -> str | None:
    """Why root must not read the file open on ``fd`` (None when it may)."""
    public = readable_by_all(fd, st, path)
    if public and not _public_only:
        return None
    if _public_only:
        if public and followable_by_all(absolute(path)):
            return None
        how = (
            "is reached through a link not every user could follow"
            if public
            else ("is readable only by root (or its owner)")
        )
        return (
            f"{how}, and {_public_only[0]}: as root, dkms-rustc reads such a file only where nobody "
            "but root chose to have it read"
        )
    if in_trusted_dir(path):
        return None
    from dkms_rustc.trust import walk_problem  # only a private file gets here

    problem = walk_problem(absolute(path), memo=_walked)
    if problem is None:
        return None
    return (
        f"is readable only by root (or its owner), and {problem}: as root, dkms-rustc reads such a "
        "file only where nobody but root can have put it"
    )


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


def open_regular_fd(
    path: str | os.PathLike[str], *, follow_symlinks: bool = True, private_ok: bool = False
) -> int:
    """An O_RDONLY descriptor of the regular file ``path``; OSError otherwise (never blocks).

    As root, also NotPublicError for a private file others could have placed (module doc);
    ``private_ok`` for files the caller vouches for itself (its root-only cache)."""
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
        st = os.fstat(fd)
        mode = st.st_mode
        if not stat.S_ISREG(mode):
            kind = _kind(mode)
            code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
            raise NotRegularFileError(code, f"is {kind}, not a regular file", str(path))
        if not private_ok and os.geteuid() == 0:
            problem = _disclosure_problem(fd, st, path)
            if problem:
                raise NotPublicError(errno.EACCES, problem, str(path))
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


def mode_of(path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> int | None:
    """``st_mode`` of ``path``, None when it cannot be examined for any reason (missing, a
    name too long, a loop, no permission, a NUL byte): pathlib's exists() and is_dir()
    raise for several of these, which a hostile name must never turn into a traceback."""
    try:
        return os.stat(path, follow_symlinks=follow_symlinks).st_mode
    except (OSError, ValueError):
        return None


def is_dir(path: str | os.PathLike[str]) -> bool:
    mode = mode_of(path)
    return mode is not None and stat.S_ISDIR(mode)


def is_file(path: str | os.PathLike[str]) -> bool:
    mode = mode_of(path)
    return mode is not None and stat.S_ISREG(mode)


def exists(path: str | os.PathLike[str]) -> bool:
    return mode_of(path) is not None


def is_symlink(path: str | os.PathLike[str]) -> bool:
    mode = mode_of(path, follow_symlinks=False)
    return mode is not None and stat.S_ISLNK(mode)


def write_atomically(path: str | os.PathLike[str], data: str | bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new, never half.

    Written to a new name in the same directory (created exclusively, never through a link
    someone placed there) and renamed over ``path``. OSError when it cannot be done; nothing
    is left behind then (its ``filename`` is the directory when nothing could be created
    there, else ``path``). No fsync: the readers (make, the next run) need atomicity, not
    durability across a power cut, and fsync costs milliseconds during an upgrade's writeback.
    """
    target = os.fspath(path)
    temporary = os.path.join(
        os.path.dirname(target) or ".", f".{os.path.basename(target)}.{os.getpid()}.{os.urandom(6).hex()}"
    )
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temporary, flags, mode)
    except OSError as error:  # nothing can be written there: name the directory
        raise OSError(error.errno, error.strerror, os.path.dirname(temporary)) from None
    try:
        try:
            os.fchmod(fd, mode)  # by descriptor: the umask must not narrow it, nobody can swap it
            payload = data.encode("utf-8") if isinstance(data, str) else data
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except OSError as error:
        remove_quietly(temporary)
        raise OSError(error.errno, error.strerror, target) from None
    except BaseException:
        remove_quietly(temporary)
        raise


def remove_quietly(path: str | os.PathLike[str]) -> bool:
    """Remove ``path``; True when it is gone (also when it never was). Errors are not raised:
    the caller has already failed, or the file was only an optimisation."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
