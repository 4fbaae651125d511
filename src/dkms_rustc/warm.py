"""Warm runs: replay what an earlier identical run did, after checking it saw the same things.

The hook runs for every Rust module on every kernel on every upgrade, and nearly every run
sees exactly what the one before it saw. So a full run is recorded: every path it examined
(stat, lstat, open, listdir, scandir, glob, extended attributes), each with its identity
(device, inode, type and mode, owner, group, link count, size, modification and change
times, or the error it gave), every environment variable it read, the running kernel's
release, the files of this tool's own code, and what the run did: what it printed, the
files it handed to make, what it logged, its exit status. A later run with the same command
line, working directory and user finds that record by name, checks every identity with one
``lstat`` or ``stat`` each, and replays it, importing nothing but this module and the few
small ones it needs; any difference at all, and the full run happens (and is recorded
anew). The decision logic exists once: a replay repeats its outcome, it never re-decides.

Nothing is recorded from a run that met a timeout, a crash or any other surprise (a program
that did not answer in time is not an answer to remember), that installed a toolchain, that
found damaged cache records, or whose inputs changed less than :data:`RACY_SECONDS` ago (a
change in the same clock tick as the recording would not show in a timestamp). Records live
in the cache directory, are used only when it and they are nobody's but this user's (root's),
and are written atomically like everything else.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs an import the warm path does without
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, TextIO

FORMAT = 1
RACY_SECONDS = 1.0
MAX_RECORD = 4 * 1024 * 1024
RECORD_PREFIX = "warm-"
# The commands whose outcome depends only on what they read.
COMMANDS = frozenset({"pre-build", "check", "status", "toolchains", "env"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


# How a path was looked at, and so what of it a replay compares.
STAT, LSTAT, LIST, XATTR = 0, 1, 2, 3
_S_IFMT, _S_IFDIR = 0o170000, 0o040000


def _identity(path: Any, how: int, attribute: str = "") -> tuple[Any, ...]:
    """What of ``path`` a run that looked at it ``how`` could have depended on.

    A file: everything (device, inode, mode, owner, group, links, size, both times). A
    directory only examined (as path resolution and trust checks examine every directory
    above a file): its type, mode and owners, not which directory it is (DKMS makes the build
    directory anew for every build) nor what it holds, which matters only for the names
    looked up in it (recorded for those names) or where it was listed (LIST: then also which
    directory, and its modification time). An extended attribute (an access control list):
    its value."""
    try:
        if how == XATTR:
            return ("x", os.getxattr(path, attribute))
        st = os.lstat(path) if how == LSTAT else os.stat(path)
    except OSError as error:
        return ("e", error.errno or 0)
    except ValueError:  # an embedded NUL: no file can have that name
        return ("e", -1)
    if st.st_mode & _S_IFMT == _S_IFDIR:
        if how == LIST:
            return ("l", st.st_dev, st.st_ino, st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns)
        return ("d", st.st_mode, st.st_uid, st.st_gid)
    return (
        "f",
        st.st_dev,
        st.st_ino,
        st.st_mode,
        st.st_uid,
        st.st_gid,
        st.st_nlink,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
    )


def _times(identity: tuple[Any, ...]) -> tuple[int, ...]:
    """The timestamps in an identity (for the racy check)."""
    if identity[0] == "f":
        return identity[8:]
    if identity[0] == "l":
        return identity[6:]
    return ()


def _key(argv: Sequence[str]) -> tuple[Any, ...]:
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    return (FORMAT, sys.hexversion, os.geteuid(), cwd, tuple(argv))


def _record_name(key: tuple[Any, ...]) -> str:
    import marshal
    import zlib

    return f"{RECORD_PREFIX}{zlib.crc32(marshal.dumps(key)):08x}"


# --------------------------------------------------------------------------- where records live


def default_cache_dir() -> str:
    if os.geteuid() == 0:
        return "/var/cache/dkms-rustc"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dkms-rustc")


def _configured_cache_dir(path: str) -> str | None:
    """The last global ``cache_dir = DIR`` of a configuration file, read without the parser.

    Only to find where a record would be: a record is used only when every file it read,
    this one included, is unchanged, so a line this reading gets wrong costs a full run."""
    from dkms_rustc.fileio import read_prefix

    try:
        text = read_prefix(path, 1024 * 1024).decode("utf-8", "replace")
    except OSError:
        return None
    found = None
    for line in text.split("\n"):
        line = line.strip()
        if line.startswith("["):
            break  # cache_dir cannot be set per module
        key, sep, value = line.partition("=")
        if sep and key.strip() == "cache_dir" and value.strip().startswith("/"):
            found = value.strip()
    return found


def _option(argv: Sequence[str], name: str) -> str | None:
    value = None
    for index, word in enumerate(argv):
        if word == name and index + 1 < len(argv):
            value = argv[index + 1]
        elif word.startswith(name + "="):
            value = word[len(name) + 1 :]
    return value


def _cache_dir_for(argv: Sequence[str], system_config: str) -> str:
    given = _option(argv, "--config")
    configured = (_configured_cache_dir(given) if given else None) or _configured_cache_dir(system_config)
    return configured or default_cache_dir()


# --------------------------------------------------------------------------- replay


def _owned_safely(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _load(directory: str, name: str) -> Any | None:
    """The record, if it and the directory it is in are this user's alone."""
    from dkms_rustc.fileio import open_regular_fd
    from dkms_rustc.trust import untrusted_directory_reason

    if untrusted_directory_reason(directory) is not None:
        return None
    try:
        fd = open_regular_fd(os.path.join(directory, name), follow_symlinks=False)
    except OSError:
        return None
    try:
        if not _owned_safely(os.fstat(fd)):
            return None
        data = os.read(fd, MAX_RECORD + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    import marshal

    try:
        return marshal.loads(data)
    except (ValueError, EOFError, TypeError):
        return None


def _still_true(record: Any, key: tuple[Any, ...]) -> bool:
    if not isinstance(record, dict) or record.get("key") != key:
        return False
    if record.get("uname") != os.uname().release:
        return False
    environ = os.environ
    for name, value in record["env"]:
        if environ.get(name) != value:
            return False
    return all(
        _identity(path, how, attribute) == identity for path, how, attribute, identity in record["paths"]
    )


def _perform(events: Sequence[Any]) -> None:
    from dkms_rustc.fileio import remove_quietly, write_atomically

    for event in events:
        kind = event[0]
        if kind == "out":
            stream = sys.stdout if event[1] == 1 else sys.stderr
            try:
                stream.write(event[2])
                stream.flush()
            except (OSError, ValueError, UnicodeEncodeError):
                pass
        elif kind == "write":
            write_atomically(event[1], event[2])
        elif kind == "unlink":
            remove_quietly(event[1])
        elif kind == "syslog":
            from dkms_rustc import logsink

            logsink.send(event[1], failed=event[2], context=event[3])


def replay(argv: Sequence[str], system_config: str = "/etc/dkms-rustc.conf") -> int | None:
    """The exit status of an earlier run of ``argv`` that saw what this one would, after
    repeating what it did; None when there is no such run (then the full run happens)."""
    if not argv or argv[0] not in COMMANDS or "--no-cache" in argv:
        return None
    try:
        key = _key(argv)
        record = _load(_cache_dir_for(argv, system_config), _record_name(key))
        if record is None or not _still_true(record, key):
            return None
        _perform(record["events"])
    except Exception:  # a record this code cannot use is no record: decide in full
        return None
    status: int = record["exit"]
    return status


# --------------------------------------------------------------------------- recording


class _Tee:
    """Writes through to ``stream`` and keeps what was written, in order with the rest."""

    def __init__(self, stream: TextIO, fd: int, recorder: _Recorder) -> None:
        self._stream = stream
        self._fd = fd
        self._recorder = recorder

    def write(self, text: str) -> int:
        self._recorder.events.append(("out", self._fd, text))
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Recorder:
    """What a full run looks at and does (see the module's description)."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.key = _key(argv)
        self.started = _now()
        self.looked: dict[tuple[Any, int, str], None] = {}
        self.created: list[str] = []  # made or changed by this run: outputs, not inputs
        self.env: dict[str, str | None] = {}
        self.events: list[tuple[Any, ...]] = []
        self.cache_dir: str | None = None
        self.spoiled: str | None = None  # why this run must not be remembered
        self.active = True
        self.restore: tuple[Any, ...] = ()

    def spoil(self, why: str) -> None:
        if self.spoiled is None:
            self.spoiled = why

    def saw(self, path: Any, how: int, attribute: str = "") -> None:
        if self.active and not isinstance(path, int):
            self.looked[(os.fspath(path), how, attribute)] = None

    def made(self, path: Any) -> None:
        if self.active and not isinstance(path, int):
            self.created.append(os.path.abspath(os.fspath(path)))

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int) or str(path).endswith((".py", ".pyc")):
                return  # an import: the tool's own code is compared file by file (_code_files)
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing:
                self.made(path)
            else:
                self.saw(path, STAT)
        elif event in ("os.listdir", "os.scandir"):
            if sys._getframe(1).f_code.co_filename.startswith("<frozen importlib"):
                return  # the import system looking for modules, not the tool for toolchains
            if args and args[0] is not None and not isinstance(args[0], int):
                self.saw(args[0], LIST)
            elif not args or args[0] is None:
                self.saw(".", LIST)
        elif event in ("glob.glob", "glob.glob/2"):
            pass  # glob lists directories (os.scandir), each seen there
        elif event == "os.getxattr":
            self.saw(args[0], XATTR, args[1])
        elif event in ("os.mkdir", "tempfile.mkdtemp", "tempfile.mkstemp", "os.remove", "os.rmdir"):
            self.made(args[0])
        elif event == "os.rename":
            self.made(args[0])
            self.made(args[1])
        elif event in ("subprocess.Popen", "os.posix_spawn", "os.exec"):
            pass  # programs: their answers are cached by the identities of their files

    def note_env(self, name: str, value: str | None) -> None:
        if self.active:
            self.env.setdefault(name, value)

    def _inputs(self) -> list[tuple[Any, int, str, tuple[Any, ...]]]:
        outputs = [path.rstrip("/") for path in self.created]
        if self.cache_dir:
            outputs.append(os.path.abspath(self.cache_dir).rstrip("/"))
        found: list[tuple[Any, int, str, tuple[Any, ...]]] = []
        racy_after = int((self.started - RACY_SECONDS) * 1e9)
        for path, how, attribute in self.looked:
            absolute = os.path.abspath(path) if isinstance(path, str) else path
            if isinstance(absolute, str) and any(
                absolute == out or absolute.startswith(out + "/") for out in outputs
            ):
                continue
            if isinstance(absolute, str) and absolute.startswith("/proc/"):
                continue
            identity = _identity(path, how, attribute)
            if any(time >= racy_after for time in _times(identity)):
                raise _Racy(path)
            found.append((path, how, attribute, identity))
        return _without_implied(found)

    def record(self, status: int) -> None:
        """Remember this run's outcome under its key, unless something spoiled it."""
        if self.spoiled is not None or self.cache_dir is None:
            return
        import marshal

        from dkms_rustc.fileio import write_atomically
        from dkms_rustc.trust import untrusted_directory_reason

        try:
            paths = self._inputs() + _code_files()
        except _Racy:
            return
        record = {
            "key": self.key,
            "uname": os.uname().release,
            "env": sorted(self.env.items()),
            "paths": paths,
            "events": self.events,
            "exit": int(status),
        }
        data = marshal.dumps(record)
        if len(data) > MAX_RECORD:
            return
        try:
            os.makedirs(self.cache_dir, mode=0o755, exist_ok=True)
            if untrusted_directory_reason(self.cache_dir) is not None:
                return
            write_atomically(os.path.join(self.cache_dir, _record_name(self.key)), data)
        except OSError:
            pass  # remembering is an optimisation


class _Racy(Exception):
    """An input changed too recently for its timestamps to show a later change."""


class _RecordingEnviron(dict):  # type: ignore[type-arg]
    """``os.environ`` as the full run sees it, noting every variable it asks about."""

    def __init__(self, real: Any, recorder: _Recorder) -> None:
        super().__init__(real)
        self._real = real
        self._recorder = recorder

    def __getitem__(self, name: str) -> str:
        self._recorder.note_env(name, self._real.get(name))
        return self._real[name]  # type: ignore[no-any-return]

    def get(self, name: str, default: Any = None) -> Any:
        self._recorder.note_env(name, self._real.get(name))
        return self._real.get(name, default)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self._recorder.note_env(name, self._real.get(name))
        return name in self._real

    def __iter__(self) -> Any:
        self._recorder.spoil("the whole environment was read")
        return iter(self._real)

    def copy(self) -> dict[str, str]:
        self._recorder.spoil("the whole environment was read")
        return dict(self._real)


def _now() -> float:
    import time

    return time.time()


_ENOENT = 2


def _without_implied(
    found: list[tuple[Any, int, str, tuple[Any, ...]]],
) -> list[tuple[Any, int, str, tuple[Any, ...]]]:
    """``found`` without the missing paths another missing path implies: when ``P`` does not
    exist, ``P/name`` cannot either, and a replay that finds ``P`` still missing knows it
    (the loader's search directories: ``lib/tls``, ``lib/tls/haswell``, ...: over a quarter of a warm
    run's checks with 30 toolchains)."""
    missing = {path for path, _, _, identity in found if identity == ("e", _ENOENT)}
    return [
        entry
        for entry in found
        if not (
            entry[3] == ("e", _ENOENT)
            and isinstance(entry[0], str)
            and entry[0].startswith("/")  # dirname("x") is "", which is always missing
            and os.path.dirname(entry[0]) in missing
            and os.path.dirname(entry[0]) != entry[0]
        )
    ]


def _code_files() -> list[tuple[Any, int, str, tuple[Any, ...]]]:
    """This tool's own module files: an upgrade of the tool is a change like any other."""
    files = []
    for name, module in list(sys.modules.items()):
        if name == "dkms_rustc" or name.startswith("dkms_rustc."):
            path = getattr(module, "__file__", None)
            if path:
                files.append((path, STAT, "", _identity(path, STAT)))
    return files


_recorder: _Recorder | None = None


def start(argv: Sequence[str]) -> None:
    """Record this run (a full run of a recordable command)."""
    global _recorder
    if not argv or argv[0] not in COMMANDS or "--no-cache" in argv or _recorder is not None:
        return
    recorder = _Recorder(argv)
    _recorder = recorder
    real_stat, real_lstat = os.stat, os.lstat

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if kwargs.get("dir_fd") is not None:
            recorder.spoil("a path relative to a directory descriptor was examined")
        recorder.saw(path, STAT if kwargs.get("follow_symlinks", True) else LSTAT)
        return real_stat(path, *args, **kwargs)

    def lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if kwargs.get("dir_fd") is not None:
            recorder.spoil("a path relative to a directory descriptor was examined")
        recorder.saw(path, LSTAT)
        return real_lstat(path, *args, **kwargs)

    recorder.restore = (os.stat, os.lstat, os.environ, sys.stdout, sys.stderr)
    os.stat = stat
    os.lstat = lstat
    os.environ = _RecordingEnviron(os.environ, recorder)  # type: ignore[assignment]  # noqa: B003
    sys.stdout = _Tee(sys.stdout, 1, recorder)
    sys.stderr = _Tee(sys.stderr, 2, recorder)
    sys.addaudithook(recorder.audit)  # for good (hooks cannot be removed); inert after finish()


def finish(status: int) -> None:
    """The run ended with ``status``: put everything back, and remember the run (when
    nothing spoiled it)."""
    global _recorder
    recorder, _recorder = _recorder, None
    if recorder is None:
        return
    recorder.active = False
    os.stat, os.lstat, os.environ, sys.stdout, sys.stderr = recorder.restore
    recorder.record(status)


def spoil(why: str) -> None:
    """Something happened that must not be replayed (a timeout, an install, an error)."""
    if _recorder is not None:
        _recorder.spoil(why)


def use_cache_dir(directory: str | None) -> None:
    """Where this run keeps its cache (None: it keeps none, so nothing is remembered)."""
    if _recorder is not None:
        if directory is None:
            _recorder.spoil("no cache")
        else:
            _recorder.cache_dir = os.fspath(directory)


def listed(path: str | os.PathLike[str]) -> None:
    """This run listed ``path`` through a descriptor, which the audit hook cannot name."""
    if _recorder is not None:
        _recorder.saw(path, LIST)


def wrote(path: str, text: str | bytes) -> None:
    """This run handed ``text`` to make in ``path``: a replay writes it again."""
    if _recorder is not None:
        _recorder.events.append(("write", os.path.abspath(path), text))


def removed(path: str) -> None:
    if _recorder is not None:
        _recorder.events.append(("unlink", os.path.abspath(path)))


def logged(lines: Sequence[str], failed: bool, context: str | None) -> None:
    if _recorder is not None:
        _recorder.events.append(("syslog", list(lines), failed, context))
