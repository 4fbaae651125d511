"""Find every rustc and bindgen on the machine, without going through rustup's proxy.

Discovery only lists files; :mod:`dkms_rustc.probe` learns what each one is. Places looked at:
PATH (a rustup proxy there is replaced by the toolchains of its rustup home), every rustup
home (RUSTUP_HOME, root's, the invoking sudo user's, the current user's), the distribution
layouts (``/usr/bin/rustc`` of Debian, Fedora, openSUSE and Arch, Ubuntu's
``/usr/bin/rustc-1.XX`` and ``/usr/lib/rust-1.XX``, Gentoo's slots ``/usr/lib/rust/<slot>`` and
``/opt/rust-bin-<slot>``), cargo-installed bindgen, and every directory given with ``--search``
or ``search =`` (kernel.org's LLVM+Rust toolchains are found there, unpacked anywhere). A
compiler in a Nix store is listed but never used (:func:`refusal`).
"""

from __future__ import annotations

import enum
import fnmatch
import glob
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from dkms_rustc.fileio import (
    absolute,
    followable_by_all,
    in_trusted_dir,
    is_dir,
    is_file,
    listable_by_all,
    listing_problem,
    opened_path,
)
from dkms_rustc.runner import MINIMAL_PATH

_PROXY_NAMES = frozenset({"rustup", "rustup-init"})
_TOOL_NAMES = ("rustc*", "bindgen*")
_O_PATH = getattr(os, "O_PATH", os.O_RDONLY)  # Linux: a descriptor that reads nothing
_MAX_TOOLCHAIN_DIRS = 200  # toolchain directories looked at below one search directory
_DISTRIBUTION_RUSTC_GLOBS = (
    "/usr/bin/rustc",  # Debian, Fedora, RHEL, openSUSE, Arch; Gentoo's eselect-rust link
    "/usr/bin/rustc-[0-9]*",  # Ubuntu's rustc-1.XX; Gentoo's rustc-<slot> links
    "/usr/lib/rust-[0-9]*/bin/rustc",  # Ubuntu's versioned sysroots
    "/usr/lib/rust/[0-9]*/bin/rustc",  # Gentoo's dev-lang/rust slots (/usr/lib/rust/<slot>)
    "/opt/rust-bin-[0-9]*/bin/rustc",  # Gentoo's dev-lang/rust-bin slots
    "/usr/local/bin/rustc",
)
# Bounds, so that a hostile rustup home or --search directory cannot make discovery slow or
# crowd out the places after it: a machine has a handful of compilers, a busy home some tens.
MAX_PER_PLACE = 128  # toolchains of one rustup home, files of one pattern in one directory
MAX_CANDIDATES = 1024  # of each kind, in all
# NixOS builds out-of-tree modules as Nix derivations, not with DKMS: its compilers (wrapper
# scripts in the store) are listed, never used.
NIX_STORE = "/nix/store/"
_DISTRIBUTION_BINDGEN_GLOBS = ("/usr/bin/bindgen", "/usr/bin/bindgen-[0-9]*", "/usr/local/bin/bindgen")


class CandidateKind(str, enum.Enum):
    """What a candidate file is looked at as."""

    RUSTC = "rustc"
    BINDGEN = "bindgen"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Found:
    """A file that may be a compiler: where it was found and how."""

    kind: CandidateKind
    path: Path  # as found
    binary: Path  # resolved, the file that would run
    origins: tuple[str, ...]
    rustup_toolchain: str | None = None  # toolchain name when inside a rustup home
    also: tuple[Path, ...] = ()  # other paths found leading to the same binary


@dataclass(frozen=True)
class Toolchain:
    """A discovered rustc or bindgen and what is known about it."""

    found: Found
    version_text: str | None = None  # "rustc 1.95.0 (...)" or "bindgen 0.72.1"
    release: str | None = None  # "1.95.0" / "0.72.1"
    llvm_version: str | None = None
    host: str | None = None
    sysroot: Path | None = None
    rust_src: Path | None = None
    learned_from: str | None = None
    skipped: str | None = None  # why it cannot be used; None when usable
    untrusted: str | None = None  # why it must not be run (as root): then it is also skipped
    binary_hidden: bool = False  # untrusted, resolved where not every user could find it: not named

    @property
    def path(self) -> Path:
        return self.found.path

    @property
    def binary(self) -> Path:
        return self.found.binary

    @property
    def shown(self) -> Path:
        """The file to name in messages: the binary, or the path as found when it is hidden."""
        return self.found.path if self.binary_hidden else self.found.binary

    @property
    def usable(self) -> bool:
        return self.skipped is None and self.version_text is not None


@dataclass
class Discovery:
    """Every rustc and bindgen file found, and the places looked at."""

    rustcs: list[Found] = field(default_factory=list)
    bindgens: list[Found] = field(default_factory=list)
    proxies: list[str] = field(default_factory=list)  # rustup proxies seen, for the report
    evidence: list[str] = field(default_factory=list)  # places looked at, for -v


def _home_of(user: str) -> Path | None:
    try:
        import pwd

        return Path(pwd.getpwnam(user).pw_dir)
    except (KeyError, ImportError):
        return None


def home_of_uid(uid: int) -> Path | None:
    try:
        import pwd

        return Path(pwd.getpwuid(uid).pw_dir)
    except (KeyError, ImportError):
        return None


def default_rustup_homes(environ: Mapping[str, str]) -> list[Path]:
    homes: list[Path] = []
    if environ.get("RUSTUP_HOME", "").startswith("/"):
        homes.append(Path(environ["RUSTUP_HOME"]))
    root_home = home_of_uid(0)
    if root_home:
        homes.append(root_home / ".rustup")
    sudo_user = environ.get("SUDO_USER")
    if sudo_user:
        home = _home_of(sudo_user)
        if home:
            homes.append(home / ".rustup")
    own = home_of_uid(os.geteuid())
    if own:
        homes.append(own / ".rustup")
    return homes


def default_cargo_bins(environ: Mapping[str, str]) -> list[Path]:
    bins: list[Path] = []
    if environ.get("CARGO_HOME", "").startswith("/"):
        bins.append(Path(environ["CARGO_HOME"]) / "bin")
    for home in (home_of_uid(0), _home_of(environ["SUDO_USER"]) if environ.get("SUDO_USER") else None):
        if home:
            bins.append(home / ".cargo" / "bin")
    return bins


def _is_linked_proxy(binary: str) -> bool:
    """rustup installs its proxies (rustc, cargo, ...) as hard links to itself where it can."""
    sibling = os.path.join(os.path.dirname(binary), "rustup")
    try:
        return os.path.samefile(binary, sibling)
    except OSError:
        return False


def _chosen_by_others(spelled: str, memo: dict[str, object]) -> bool:
    """As root: did someone else choose where ``spelled`` (absolute) leads, a directory or
    link on the way not being root-only (nor in the administrator's trusted_dir)?"""
    if os.geteuid() != 0:
        return False
    from dkms_rustc.trust import walk_problem

    return (
        walk_problem(spelled, missing_ok=True, memo=memo) is not None
        and walk_problem(spelled, directory=True, missing_ok=True, memo=memo) is not None  # a pin's
        and not in_trusted_dir(spelled)
    )


def unfollowed_reason(path: Path, memo: dict[str, object]) -> str | None:
    """As root, why ``path`` is not followed (None when it may be): someone else chose where
    it leads (:func:`_chosen_by_others`) and not every user could follow it there (a link to
    ``/proc/<pid>/exe`` or into a directory they cannot search). Root could resolve it; what
    it found (that it exists, what it is, where it is, that it is the same file as another)
    would tell them what they cannot find out themselves."""
    spelled = absolute(path)
    if followable_by_all(spelled) or not _chosen_by_others(spelled, memo):
        return None
    return (
        f"not followed: {path}: someone else's link or directory on the way leads where not every "
        "user could follow"
    )


def _is_followed_dir(path: Path, memo: dict[str, object]) -> bool:
    """Is ``path`` a directory? Looked up once: where others chose where it leads, only a
    directory every user could reach counts (judged by the descriptor's own path), so neither
    a private directory's existence nor a link swapped meanwhile decides the answer."""
    try:
        fd = os.open(path, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if _chosen_by_others(absolute(path), memo):
            opened = opened_path(fd)
            return opened is not None and followable_by_all(opened)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _listed(directory: Path, memo: dict[str, object]) -> list[str] | None:
    """The names in ``directory`` (judged listable before, by its path), as opened: a path
    others chose is listed only when what was opened is a directory every user could list
    anyway (judged by the descriptor's own path), so a link swapped after the judgement leads
    nowhere. None when it cannot be listed."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if _chosen_by_others(absolute(directory), memo):
            opened = opened_path(fd)
            if opened is None or not (listable_by_all(opened) and followable_by_all(opened)):
                return None
        from dkms_rustc import warm  # loaded already: the command line starts with it

        warm.listed(directory)  # a replay checks it by its path, as a listing by path would be
        return sorted(os.listdir(fd))
    except OSError:
        return None
    finally:
        os.close(fd)


class _Collector:
    def __init__(self, excluded: tuple[Path, ...]) -> None:
        self.result = Discovery()
        self._index: dict[tuple[str, str], int] = {}
        self._excluded = tuple(os.path.realpath(path).rstrip("/") + "/" for path in excluded)
        self._capped = False
        self._walked: dict[str, object] = {}

    def add(self, kind: CandidateKind, path: Path, origin: str, toolchain: str | None = None) -> None:
        items = self.result.rustcs if kind is CandidateKind.RUSTC else self.result.bindgens
        if len(items) >= MAX_CANDIDATES:  # a hostile rustup home or --search dir: stay bounded
            if not self._capped:
                self._capped = True
                self.result.evidence.append(
                    f"more than {MAX_CANDIDATES} candidates: the rest were not looked at"
                )
            return
        unfollowed = unfollowed_reason(path, self._walked)
        if unfollowed:
            self.result.evidence.append(unfollowed)
            return
        if not os.path.isfile(path):
            return
        binary = os.path.realpath(path)
        if not (os.path.isfile(binary) and followable_by_all(binary)) and _chosen_by_others(
            absolute(path), self._walked
        ):
            # Its owner swapped a link while it was looked at (followable then, not now): as
            # when nothing is there, whatever the lookups in between found.
            return
        if any(binary.startswith(prefix) for prefix in self._excluded):
            self.result.evidence.append(f"ignored {path}: inside the module's own tree")
            return
        if os.path.basename(binary) in _PROXY_NAMES or _is_linked_proxy(binary):
            if str(path) not in self.result.proxies:
                self.result.proxies.append(str(path))
            return
        key = (kind, binary)
        if key in self._index:
            existing = items[self._index[key]]
            if origin not in existing.origins:
                existing = replace(existing, origins=(*existing.origins, origin))
            if path != existing.path and path not in existing.also:
                existing = replace(existing, also=(*existing.also, path))
            items[self._index[key]] = existing
            return
        self._index[key] = len(items)
        items.append(Found(kind, path, Path(binary), (origin,), toolchain))

    def rustup_home(self, home: Path, origin: str) -> None:
        toolchains = home / "toolchains"
        evidence = f"rustup home {home}"
        if evidence in self.result.evidence:
            return  # the same home reached twice (RUSTUP_HOME, root's, a proxy's)
        self.result.evidence.append(evidence)
        problem = self._unlisted(toolchains)
        if problem:
            self.result.evidence.append(problem)
            return
        names = _listed(toolchains, self._walked)
        if names is None:
            return
        if len(names) > MAX_PER_PLACE:
            self.result.evidence.append(
                f"{toolchains} holds {len(names)} entries; the first {MAX_PER_PLACE} were looked at"
            )
            names = names[:MAX_PER_PLACE]
        for name in names:
            self.add(CandidateKind.RUSTC, toolchains / name / "bin" / "rustc", f"{origin} {home}", name)
            self.add(CandidateKind.BINDGEN, toolchains / name / "bin" / "bindgen", f"{origin} {home}", name)

    def _unlisted(self, directory: Path) -> str | None:
        """Why ``directory`` is not looked into (None: it is, when it exists). Whether it may be
        followed is asked first: where it leads is not looked at otherwise, not even whether
        it exists."""
        unfollowed = unfollowed_reason(directory, self._walked)
        if unfollowed:
            return unfollowed
        problem = listing_problem(directory) if _is_followed_dir(directory, self._walked) else None
        return f"not listed: {problem}" if problem else None

    def bin_dir(self, directory: Path, origin: str) -> None:
        problem = self._unlisted(directory)
        if problem:
            self.result.evidence.append(problem)
            return
        names = _listed(directory, self._walked) or []
        for pattern, kind in (
            ("rustc", CandidateKind.RUSTC),
            ("rustc-[0-9]*", CandidateKind.RUSTC),
            ("bindgen", CandidateKind.BINDGEN),
            ("bindgen-[0-9]*", CandidateKind.BINDGEN),
        ):
            matching = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
            for name in matching[:MAX_PER_PLACE]:
                self.add(kind, directory / name, origin)

    def search_dir(self, directory: Path, origin: str) -> None:
        """A rustup home, a toolchain directory (with bin/), a bin directory, or a directory
        holding toolchain directories (``/opt`` with kernel.org's unpacked
        ``llvm-<ver>-rust-<ver>-<arch>/`` trees, or several unpacked standalone installs)."""
        # Whether each path may be followed is asked before anything is looked up through it:
        # otherwise which branch is taken would tell whether something exists where it leads.
        for path in (directory, directory / "toolchains", directory / "bin"):
            unfollowed = unfollowed_reason(path, self._walked)
            if unfollowed:
                self.result.evidence.append(unfollowed)
                return
        if _is_followed_dir(directory / "toolchains", self._walked):
            self.rustup_home(directory, origin)
        elif _is_followed_dir(directory / "bin", self._walked):
            self.bin_dir(directory / "bin", origin)
        elif problem := listing_problem(directory):
            self.result.evidence.append(f"not listed: {problem}")
        else:
            names = _listed(directory, self._walked)
            if names is None:
                return
            if any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in _TOOL_NAMES):
                self.bin_dir(directory, origin)
                return
            entries = [name for name in names if not name.startswith(".")]
            taken = 0
            for name in entries:
                bin_dir = directory / name / "bin"
                unfollowed = unfollowed_reason(bin_dir, self._walked)
                if unfollowed:
                    self.result.evidence.append(unfollowed)
                elif _is_followed_dir(bin_dir, self._walked):
                    self.bin_dir(bin_dir, origin)
                else:
                    continue
                taken += 1
                if taken == _MAX_TOOLCHAIN_DIRS:
                    break


def discover(
    *,
    search: Iterable[Path] = (),
    use_defaults: bool = True,
    environ: Mapping[str, str] | None = None,
    excluded: tuple[Path, ...] = (),
) -> Discovery:
    """Every rustc and bindgen file found, each once (by resolved path), first place first."""
    env = os.environ if environ is None else environ
    collector = _Collector(excluded)
    for directory in search:
        collector.search_dir(Path(directory), "--search")
    if use_defaults:
        path_dirs = [entry for entry in env.get("PATH", "").split(":") if entry.startswith("/")]
        for entry in MINIMAL_PATH.split(":"):
            if entry not in path_dirs:
                path_dirs.append(entry)
        seen_proxies = len(collector.result.proxies)
        for entry in path_dirs:
            collector.bin_dir(Path(entry), "PATH")
        proxy_homes = []
        for proxy in collector.result.proxies[seen_proxies:]:
            # ~/.cargo/bin/rustc -> ~/.rustup: the toolchains that proxy could have run.
            proxy_homes.append(Path(proxy).parent.parent.parent / ".rustup")
        for home in [*proxy_homes, *default_rustup_homes(env)]:
            collector.rustup_home(home, "rustup home")
        for pattern in _DISTRIBUTION_RUSTC_GLOBS:
            for path in sorted(glob.glob(pattern)):
                collector.add(CandidateKind.RUSTC, Path(path), "distribution")
        for pattern in _DISTRIBUTION_BINDGEN_GLOBS:
            for path in sorted(glob.glob(pattern)):
                collector.add(CandidateKind.BINDGEN, Path(path), "distribution")
        for directory in default_cargo_bins(env):
            collector.add(CandidateKind.BINDGEN, directory / "bindgen", "cargo install")
    return collector.result


def refusal(found: Found) -> str | None:
    """Why a discovered compiler is listed but never used, whatever it is: a Nix store's."""
    if str(found.binary).startswith(NIX_STORE):
        return (
            "a Nix store compiler: on NixOS, out-of-tree kernel modules are built as Nix "
            "derivations (boot.extraModulePackages, against the kernel's own linuxPackages), not "
            "with DKMS, so dkms-rustc does not use it"
        )
    return None


def resolve_pin_target(
    target: str, homes: Iterable[Path], excluded: tuple[Path, ...] = ()
) -> tuple[Found | None, str | None]:
    """The rustc a ``pin`` names: an absolute path (a rustc, or a toolchain directory with
    bin/rustc) or a rustup toolchain name (``1.95.0``, ``nightly-2026-05-20`` or the full
    ``<name>-<host>``) looked up in the given rustup homes. Returns the file or why none."""
    origin = "pin"
    if target.startswith("/"):
        path = Path(target)
        unfollowed = unfollowed_reason(path, {})
        if unfollowed:
            return None, unfollowed
        if is_dir(path):
            path = path / "bin" / "rustc"
        if not is_file(path):
            return None, f"{path} does not exist"
        candidates = [path]
        name = None
    else:
        candidates = []
        homes = list(homes)
        for home in homes:
            toolchains = home / "toolchains"
            exact = toolchains / target / "bin" / "rustc"
            if unfollowed_reason(exact, {}) or is_file(exact):  # then add() says why
                candidates.append(exact)
                continue
            try:
                names = [] if listing_problem(toolchains) else (_listed(toolchains, {}) or [])
            except OSError:
                continue
            for entry in names:
                prefixed = toolchains / entry / "bin" / "rustc"
                # One not followed is taken as it is (add() says why), whatever lies there.
                if entry.startswith(target + "-") and (unfollowed_reason(prefixed, {}) or is_file(prefixed)):
                    candidates.append(prefixed)
                    break
        if not candidates:
            looked = ", ".join(str(home) for home in homes) or "no rustup home"
            return None, f"no rustup toolchain named {target} is installed (looked in {looked})"
        path, name = candidates[0], candidates[0].parent.parent.name
    collector = _Collector(excluded)
    collector.add(CandidateKind.RUSTC, path, origin, name)
    if not collector.result.rustcs:
        why = collector.result.evidence[-1] if collector.result.evidence else "it is rustup's proxy"
        return None, f"{path} cannot be used: {why}"
    return collector.result.rustcs[0], None


def is_rustup_home(directory: Path) -> bool:
    """Does ``directory`` hold ``toolchains/`` (a rustup home)? A path others chose that
    leads where not every user could follow counts as one (then whoever uses it says why it
    is not followed): whether anything is there is not looked at."""
    toolchains = directory / "toolchains"
    return bool(unfollowed_reason(toolchains, {})) or _is_followed_dir(toolchains, {})
