"""Remembered results, so that a warm run reads files instead of starting processes.

Each record is one small JSON file named after a hash of what it is about (its ``key``:
file identities such as device, inode, size and modification time). A record is used only
when it parses, names the same kind and key, and its checksum matches; anything else
(truncated, foreign, from another version of this tool, or not owned by us when we are
root) is ignored and recomputed. Writes go to a temporary file that is renamed into place,
so concurrent hooks never see half a record.

The cache is bounded: one run writes at most MAX_WRITES_PER_RUN records (a hostile tree
with thousands of files must not fill the disk), and before its first write a run evicts the
least recently written records while the directory holds more than MAX_RECORDS records or
MAX_BYTES bytes (down to three quarters of either), plus temporary files left by killed runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from dkms_rustc.fileio import open_regular_fd

# typing takes milliseconds to import and only the type checker needs it here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FORMAT = 1
MAX_RECORD = 256 * 1024
MAX_RECORDS = 4096
MAX_BYTES = 32 * 1024 * 1024
MAX_WRITES_PER_RUN = 256
_STALE_TEMPORARY = 3600.0  # seconds after which a .tmp- file is a killed run's leftover


def default_cache_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/cache/dkms-rustc")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dkms-rustc"


def file_identity(path: Path) -> list[int] | None:
    """``[device, inode, size, mtime_ns, ctime_ns]`` of a file, None when it cannot be examined."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class Cache:
    """A directory of records. ``Cache(None)`` remembers nothing (``--no-cache``)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.ignored: list[str] = []  # why records were not used, for -v
        self._checked = False
        self._writes = 0

    def _ignore(self, why: str) -> None:
        """A record (or the whole cache) that could not be used: say so in -v, and do not let
        a warm replay repeat a run that met it (the next full run replaces the record)."""
        from dkms_rustc import warm

        self.ignored.append(why)
        warm.spoil(why)

    def _usable(self) -> bool:
        """As root, only a directory nobody else can change is read or written (once per run)."""
        if self.directory is None:
            return False
        if not self._checked:
            self._checked = True
            if os.geteuid() == 0:
                from dkms_rustc.trust import untrusted_directory_reason

                existing = self.directory  # or, before it is created, the directory it goes in
                while not os.path.lexists(existing) and existing.parent != existing:
                    existing = existing.parent
                problem = untrusted_directory_reason(existing)
                if problem:
                    self._ignore(f"cache {self.directory} not used: {problem}")
                    self.directory = None
                    return False
        return True

    def _evict(self) -> None:
        """Keep the directory within MAX_RECORDS and MAX_BYTES (oldest records go first)."""
        import time

        assert self.directory is not None
        records: list[tuple[int, int, str]] = []  # (mtime_ns, size, name)
        now = time.time()
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if entry.name.startswith(".tmp-"):
                        if now - st.st_mtime > _STALE_TEMPORARY:
                            with contextlib.suppress(OSError):
                                os.unlink(os.path.join(self.directory, entry.name))
                        continue
                    if entry.name.endswith(".json"):
                        records.append((st.st_mtime_ns, st.st_size, entry.name))
        except OSError:
            return
        total = sum(size for _, size, _ in records)
        if len(records) <= MAX_RECORDS and total <= MAX_BYTES:
            return
        records.sort()
        count = len(records)
        for _, size, name in records:
            if count <= MAX_RECORDS * 3 // 4 and total <= MAX_BYTES * 3 // 4:
                break
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.directory, name))
            count -= 1
            total -= size

    def _path(self, kind: str, key: object) -> Path:
        assert self.directory is not None
        digest = hashlib.sha256(_canonical([kind, key]).encode()).hexdigest()[:40]
        return self.directory / f"{kind}-{digest}.json"

    def get(self, kind: str, key: object) -> Any | None:
        if not self._usable():
            return None
        path = self._path(kind, key)
        try:
            fd = open_regular_fd(path, follow_symlinks=False, private_ok=True)
        except FileNotFoundError:
            return None
        except OSError as error:
            self._ignore(f"{path}: {error.strerror}")
            return None
        try:
            st = os.fstat(fd)
            if os.geteuid() == 0 and (st.st_uid != 0 or st.st_mode & 0o022):
                self._ignore(f"{path}: not owned by root or writable by others")
                return None
            data = os.read(fd, MAX_RECORD + 1)
        except OSError:
            return None
        finally:
            os.close(fd)
        try:
            record = json.loads(data)
            body = [record["format"], record["kind"], record["key"], record["value"]]
            valid = (
                record["format"] == FORMAT
                and record["kind"] == kind
                and record["key"] == json.loads(_canonical(key))
                and record["checksum"] == hashlib.sha256(_canonical(body).encode()).hexdigest()
            )
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            self._ignore(f"{path}: damaged or foreign record ignored")
            return None
        return record["value"]

    def put(self, kind: str, key: object, value: object) -> None:
        """Store a record; failure to store is silent (the cache is an optimisation)."""
        if not self._usable() or self._writes >= MAX_WRITES_PER_RUN:
            return
        assert self.directory is not None
        if self._writes == 0:
            self._evict()
        self._writes += 1
        body = [FORMAT, kind, key, value]
        record = {
            "format": FORMAT,
            "kind": kind,
            "key": key,
            "value": value,
            "checksum": hashlib.sha256(_canonical(body).encode()).hexdigest(),
        }
        import tempfile  # only a cache miss writes

        try:
            self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
        except OSError:
            return
        try:
            with os.fdopen(fd, "w") as stream:
                os.fchmod(stream.fileno(), 0o644)  # by descriptor, never by a name others could swap
                stream.write(_canonical(record))
            os.replace(temporary, self._path(kind, key))
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
