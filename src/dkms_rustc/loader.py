"""What the dynamic loader could map when a program starts: every file and directory involved.

Running a rustc runs more than ``bin/rustc``: glibc's loader maps the interpreter named in
``PT_INTERP``, every ``DT_NEEDED`` library, found through ``DT_RPATH`` (of the object and of
every object that loaded it, unless the object has ``DT_RUNPATH``), ``DT_RUNPATH`` (with
``$ORIGIN`` replaced by the object's directory), ``/etc/ld.so.cache`` and the default
directories, each also in its ``glibc-hwcaps`` (and, glibc 2.36 and older, legacy hwcap)
subdirectories, plus whatever ``/etc/ld.so.preload`` names. :func:`loader_closure` does not
try to predict which candidate the loader picks: it returns EVERY existing candidate for
every name (and the libraries those need, and so on), so judging all of them root-only is
a safe superset of what will be mapped. A ``#!`` script maps its interpreter instead.

Everything is read with hard limits (program headers, dynamic entries, string lengths,
objects in the closure), because a hostile file must not make the reader slow. Only the cold
path imports this module: :mod:`dkms_rustc.trust` remembers a closure while the files and
directories listed in :attr:`Closure.depends` are unchanged.
"""

from __future__ import annotations

import glob
import os
import struct
from dataclasses import dataclass, field

from dkms_rustc.fileio import open_regular

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 1, 5, 15, 29
DT_AUXILIARY, DT_FILTER = 0x7FFFFFFD, 0x7FFFFFFF
_MAX_PHDRS = 256
_MAX_DYNAMIC = 4096  # entries in a dynamic section; real ones have tens
_MAX_NAME = 4096  # bytes of one string (a library name, a run path)
_MAX_NEEDED = 256
_MAX_OBJECTS = 256  # files in one closure; rustc's is about 12
_MAX_CACHE_FILE = 16 * 1024 * 1024
_SCRIPT_LINE = 256  # the kernel reads this much of a #! line (BINPRM_BUF_SIZE)
LD_SO_CACHE = "/etc/ld.so.cache"
LD_SO_PRELOAD = "/etc/ld.so.preload"
_CACHE_MAGIC = b"glibc-ld.so.cache1.1"
_TRIPLETS = {
    "x86_64": "x86_64-linux-gnu",
    "aarch64": "aarch64-linux-gnu",
    "riscv64": "riscv64-linux-gnu",
    "ppc64le": "powerpc64le-linux-gnu",
    "s390x": "s390x-linux-gnu",
    "loongarch64": "loongarch64-linux-gnu",
    "i686": "i386-linux-gnu",
    "armv7l": "arm-linux-gnueabihf",
}
# glibc 2.36 and older also look in these subdirectories of every search directory (x86).
_LEGACY_HWCAPS = tuple(
    f"{tls}{platform}{cap}".rstrip("/")
    for tls in ("", "tls/")
    for platform in ("", "haswell/", "xeon_phi/")
    for cap in ("", "x86_64/", "avx512_1/")
    if tls or platform or cap
)


class LoaderError(Exception):
    """An ELF file this tool cannot read within its limits."""


@dataclass(frozen=True)
class Dynamic:
    """What one file asks the loader (or the kernel, for a script) to map."""

    interpreter: str | None = None
    needed: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()


@dataclass
class Closure:
    """Every file the loader could map (first the program), every run-path directory it would
    search, what the answer depends on, or why it could not be determined."""

    files: list[str] = field(default_factory=list)
    search_dirs: list[str] = field(default_factory=list)
    depends: list[str] = field(default_factory=list)  # files and directories whose change matters
    problem: str | None = None


def _read_at(stream: object, offset: int, size: int, what: str) -> bytes:
    stream.seek(offset)  # type: ignore[attr-defined]
    data: bytes = stream.read(size)  # type: ignore[attr-defined]
    if len(data) != size:
        raise LoaderError(f"{what} lies outside the file")
    return data


def _string(stream: object, offset: int) -> str:
    stream.seek(offset)  # type: ignore[attr-defined]
    raw: bytes = stream.read(_MAX_NAME)  # type: ignore[attr-defined]
    end = raw.find(b"\0")
    if end < 0:
        raise LoaderError("a name in the dynamic section has no end")
    return os.fsdecode(raw[:end])


def read_dynamic(path: str) -> Dynamic | None:
    """What ``path`` makes the loader map; None for a file the kernel would not start
    (neither ELF nor ``#!``) or a static program. LoaderError/OSError when unreadable."""
    with open_regular(path) as stream:
        head = stream.read(64)
        if head.startswith(b"#!"):
            stream.seek(0)
            line = stream.read(_SCRIPT_LINE).split(b"\n", 1)[0][2:].strip()
            words = line.split()
            return Dynamic(interpreter=os.fsdecode(words[0])) if words else None
        if len(head) < 52 or head[:4] != b"\x7fELF" or head[4] not in (1, 2) or head[5] not in (1, 2):
            return None
        order = "<" if head[5] == 1 else ">"
        wide = head[4] == 2
        if wide:
            if len(head) < 64:
                raise LoaderError("truncated ELF header")
            (phoff,) = struct.unpack_from(order + "Q", head, 0x20)
            phentsize, phnum = struct.unpack_from(order + "HH", head, 0x36)
            phdr, phdr_size, dyn, dyn_size = order + "IIQQQQQQ", 56, order + "qQ", 16
        else:
            (phoff,) = struct.unpack_from(order + "I", head, 0x1C)
            phentsize, phnum = struct.unpack_from(order + "HH", head, 0x2A)
            phdr, phdr_size, dyn, dyn_size = order + "IIIIIIII", 32, order + "iI", 8
        if phnum == 0:
            return None
        if phnum > _MAX_PHDRS or phentsize < phdr_size:
            raise LoaderError(f"implausible program header table ({phnum} entries of {phentsize} bytes)")
        table = _read_at(stream, phoff, phnum * phentsize, "the program header table")
        loads: list[tuple[int, int, int]] = []  # (vaddr, filesz, offset)
        interpreter: str | None = None
        dynamic: tuple[int, int] | None = None
        for index in range(phnum):
            fields = struct.unpack_from(phdr, table, index * phentsize)
            if wide:
                kind, _flags, offset, vaddr, _paddr, filesz = fields[:6]
            else:
                kind, offset, vaddr, _paddr, filesz = fields[:5]
            if kind == PT_LOAD:
                loads.append((vaddr, filesz, offset))
            elif kind == PT_INTERP:
                raw = _read_at(stream, offset, min(filesz, _MAX_NAME), "the interpreter name")
                interpreter = os.fsdecode(raw.split(b"\0", 1)[0])
            elif kind == PT_DYNAMIC:
                dynamic = (offset, min(filesz, _MAX_DYNAMIC * dyn_size))
        if dynamic is None:
            return Dynamic(interpreter=interpreter)
        entries = _read_at(stream, dynamic[0], dynamic[1] - dynamic[1] % dyn_size, "the dynamic section")
        strtab: int | None = None
        wanted: list[tuple[int, int]] = []
        for index in range(len(entries) // dyn_size):
            tag, value = struct.unpack_from(dyn, entries, index * dyn_size)
            if tag == DT_NULL:
                break
            if tag == DT_STRTAB:
                strtab = value
            elif tag in (DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_AUXILIARY, DT_FILTER):
                wanted.append((tag, value))
        if len(wanted) > _MAX_NEEDED:
            raise LoaderError(f"implausibly many library names ({len(wanted)})")
        if not wanted:
            return Dynamic(interpreter=interpreter)
        if strtab is None:
            raise LoaderError("a dynamic section without a string table")
        base = next(
            (offset + strtab - vaddr for vaddr, size, offset in loads if vaddr <= strtab < vaddr + size), None
        )
        if base is None:
            raise LoaderError("the string table lies outside the file")
        needed: list[str] = []
        rpath: list[str] = []
        runpath: list[str] = []
        for tag, value in wanted:
            text = _string(stream, base + value)
            if tag == DT_RPATH:
                rpath += text.split(":")
            elif tag == DT_RUNPATH:
                runpath += text.split(":")
            else:
                needed.append(text)
    # glibc ignores DT_RPATH when DT_RUNPATH is present.
    return Dynamic(interpreter, tuple(needed), () if runpath else tuple(rpath), tuple(runpath))


def _expand(entry: str, origin: str) -> str:
    """A run-path entry with $ORIGIN replaced; LoaderError for what this tool cannot resolve."""
    expanded = entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
    if "$" in expanded:
        raise LoaderError(f"its run path {entry!r} uses a token ($LIB, $PLATFORM) this tool does not resolve")
    if not expanded.startswith("/"):
        raise LoaderError(
            f"its run path {entry!r} is relative: the loader resolves it against the working directory, "
            "which the module build chooses"
        )
    return expanded


def hwcap_dirs(directory: str) -> list[str]:
    """The subdirectories of ``directory`` glibc also searches, where they exist."""
    found = sorted(glob.glob(os.path.join(glob.escape(directory), "glibc-hwcaps", "*")))
    if os.uname().machine == "x86_64" and os.path.isdir(directory):
        found += [os.path.join(directory, sub) for sub in _LEGACY_HWCAPS]
    return [path for path in found if os.path.isdir(path)]


def default_dirs() -> list[str]:
    """The loader's built-in directories (Debian's multiarch ones first), where they exist."""
    triplet = _TRIPLETS.get(os.uname().machine, "")
    candidates = [f"/lib/{triplet}", f"/usr/lib/{triplet}"] if triplet else []
    candidates += ["/lib64", "/usr/lib64", "/lib", "/usr/lib"]
    return [path for path in dict.fromkeys(candidates) if os.path.isdir(path)]


def read_ld_so_cache(path: str = LD_SO_CACHE) -> dict[str, list[str]]:
    """Library name -> the paths ``/etc/ld.so.cache`` names for it (glibc 2.32+ format)."""
    try:
        with open_regular(path) as stream:
            data = stream.read(_MAX_CACHE_FILE + 1)
    except OSError:
        return {}
    start = data.find(_CACHE_MAGIC)
    if start < 0 or len(data) > _MAX_CACHE_FILE:
        return {}
    try:
        count, _strings = struct.unpack_from("<II", data, start + 20)
    except struct.error:
        return {}
    entries: dict[str, list[str]] = {}

    def text(offset: int) -> str:
        end = data.find(b"\0", start + offset, start + offset + _MAX_NAME)
        return os.fsdecode(data[start + offset : end]) if end >= 0 else ""

    for index in range(min(count, (len(data) - start - 48) // 24)):
        _flags, key, value = struct.unpack_from("<iII", data, start + 48 + 24 * index)
        name, target = text(key), text(value)
        if name and target.startswith("/"):
            entries.setdefault(name, []).append(target)
    return entries


_parsed_cache: tuple[object, dict[str, list[str]]] | None = None


def _ld_so_cache() -> dict[str, list[str]]:
    """read_ld_so_cache(), parsed once per process while the file is unchanged."""
    global _parsed_cache
    try:
        st = os.stat(LD_SO_CACHE)
        identity: object = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    except OSError:
        identity = None
    if _parsed_cache is None or _parsed_cache[0] != identity:
        _parsed_cache = (identity, read_ld_so_cache())
    return _parsed_cache[1]


def _preloaded() -> list[str]:
    try:
        with open_regular(LD_SO_PRELOAD) as stream:
            text = os.fsdecode(stream.read(64 * 1024))
    except OSError:
        return []
    return [word for word in text.replace(":", " ").split() if not word.startswith("#")]


class _Walker:
    def __init__(self) -> None:
        self.closure = Closure()
        self.defaults = default_dirs()
        self._cache: dict[str, list[str]] | None = None
        self._seen: set[tuple[str, tuple[str, ...]]] = set()
        self._depends: dict[str, None] = {}
        self._dirs: dict[str, None] = {}
        self._files: dict[str, None] = {}
        self._hwcaps: dict[str, list[str]] = {}

    def hwcaps(self, directory: str) -> list[str]:
        if directory not in self._hwcaps:
            self._hwcaps[directory] = hwcap_dirs(directory)
        return self._hwcaps[directory]

    def cache_entries(self, name: str) -> list[str]:
        if self._cache is None:
            self._cache = _ld_so_cache()
        return self._cache.get(name, [])

    def depend(self, path: str) -> None:
        self._depends.setdefault(path, None)

    def candidates(self, name: str, search: tuple[str, ...]) -> list[str]:
        """Every existing file the loader could open for ``name``, in any place it looks."""
        if "/" in name:
            if not name.startswith("/"):
                raise LoaderError(
                    f"it needs {name!r}, a relative path: the loader resolves it against the working "
                    "directory, which the module build chooses"
                )
            return [name]
        places: list[str] = []
        for directory in search:
            # glibc-hwcaps itself is judged too: whoever can add a subdirectory there adds a
            # place the loader looks first (and the closure is remembered until it changes).
            for searched in (directory, os.path.join(directory, "glibc-hwcaps")):
                self._dirs.setdefault(searched, None)
                self.depend(searched)
            for sub in self.hwcaps(directory):
                self._dirs.setdefault(sub, None)
                self.depend(sub)
                places.append(sub)
            places.append(directory)
        found = [os.path.join(place, name) for place in places]
        found += self.cache_entries(name)
        for directory in self.defaults:
            self.depend(directory)
            self.depend(os.path.join(directory, "glibc-hwcaps"))
            found += [os.path.join(sub, name) for sub in self.hwcaps(directory)]
            found.append(os.path.join(directory, name))
        return [path for path in dict.fromkeys(found) if os.path.lexists(path)]

    def visit(self, path: str, origin: str, chain: tuple[str, ...]) -> list[tuple[str, str, tuple[str, ...]]]:
        """Record ``path``; return the objects it makes the loader map next."""
        self._files.setdefault(path, None)
        self.depend(path)
        if (path, chain) in self._seen:
            return []
        self._seen.add((path, chain))
        if len(self._seen) > _MAX_OBJECTS:
            raise LoaderError(f"more than {_MAX_OBJECTS} files in its library closure")
        try:
            info = read_dynamic(path)
        except OSError as error:
            raise LoaderError(f"{path} cannot be read ({error.strerror})") from None
        except (LoaderError, struct.error, OverflowError, ValueError) as error:
            raise LoaderError(f"{path}: not an ELF file this tool can read ({error})") from None
        if info is None:
            return []
        following: list[tuple[str, str, tuple[str, ...]]] = []
        if info.interpreter:
            following.append((info.interpreter, os.path.dirname(os.path.realpath(info.interpreter)), ()))
        rpath = tuple(_expand(entry, origin) for entry in info.rpath)
        runpath = tuple(_expand(entry, origin) for entry in info.runpath)
        for directory in (*rpath, *runpath):
            self._dirs.setdefault(directory, None)
        inherited = (*rpath, *chain)
        # Conservatively every place: the RPATH chain (unless this object has a RUNPATH, glibc
        # then skips it), this object's RUNPATH, the cache and the default directories.
        search = (*runpath,) if runpath else inherited
        for name in info.needed:
            for candidate in self.candidates(name, search):
                following.append((candidate, os.path.dirname(candidate), inherited))
        return following

    def run(self, program: str, origin: str | None = None) -> Closure:
        if origin is None:
            origin = os.path.dirname(os.path.realpath(program))  # the loader's $ORIGIN for a program
        pending: list[tuple[str, str, tuple[str, ...]]] = [(program, origin, ())]
        for preloaded in _preloaded():
            pending.append((preloaded, os.path.dirname(preloaded), ()))
        for config in (LD_SO_CACHE, LD_SO_PRELOAD):
            if os.path.lexists(config):
                self._files.setdefault(config, None)
                self.depend(config)
        while pending:
            path, where, chain = pending.pop(0)
            pending += self.visit(path, where, chain)
        self.closure.files = [path for path in self._files if path != program]
        self.closure.search_dirs = list(self._dirs)
        self.closure.depends = list(self._depends)
        return self.closure


def loader_closure(program: str, origin: str | None = None) -> Closure:
    """Everything the loader could map for ``program`` (a resolved path); ``problem`` says
    why that cannot be told (then the program must not be run). ``origin``: ``$ORIGIN`` when
    it is not the program's own directory (a shared object dlopened through a link)."""
    walker = _Walker()
    try:
        return walker.run(program, origin)
    except LoaderError as error:
        closure = walker.closure
        closure.problem = str(error)
        closure.depends = list(walker._depends)  # fixing what failed changes one of these
        return closure
