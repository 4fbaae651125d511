"""The modules registered with DKMS, read from its tree (``/var/lib/dkms``), and which are Rust.

DKMS keeps ``<tree>/<module>/<version>/source`` (the module's source, with its dkms.conf),
``<tree>/<module>/<version>/<kernel>/<arch>/`` for every kernel it was built for, and a link
``<tree>/<module>/kernel-<kernel>-<arch>`` for every kernel it is installed for. Nothing here
runs DKMS or sources dkms.conf: the files are only read.

A module counts as Rust when its dkms.conf (or an admin's ``/etc/dkms/<module>.conf``
override) runs dkms-rustc (in a ``PRE_BUILD`` or ``MAKE`` line, not a comment), when it is
limited to Rust kernels with ``BUILD_EXCLUSIVE_CONFIG="CONFIG_RUST"`` (the whole package) or
``BUILD_EXCLUSIVE_CONFIG[#]="CONFIG_RUST"`` (one module of the package, DKMS 3.3+), or when its
source holds ``.rs`` files.

dkms.conf is bash; it is read here line by line, never sourced: ``NAME=value`` and
``NAME[#]=value`` assignments, the last one of a name winning, as bash would.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dkms_rustc.fileio import is_dir, is_symlink, listing_problem, read_prefix

_ASSIGNMENT_RE = re.compile(
    r"^[ \t]*([A-Za-z_][A-Za-z0-9_]*)(?:\[[ \t]*([0-9]{1,4})[ \t]*\])?=(.*)$", re.MULTILINE
)  # line-local
_HOOK_NAMES = frozenset({"PRE_BUILD", "MAKE"})
_HOOK_RE = re.compile(r"dkms-rustc")
_MAX_CONF = 256 * 1024
_MAX_SCAN = 5000  # directory entries looked at when searching a source tree for .rs files


@dataclass(frozen=True)
class Build:
    kernelrelease: str
    arch: str
    installed: bool


@dataclass(frozen=True)
class RustExclusion:
    """What a dkms.conf's ``BUILD_EXCLUSIVE_CONFIG`` lines say about Rust.

    Index 0 is the whole package: DKMS reads ``$BUILD_EXCLUSIVE_CONFIG``, which in bash is
    element 0, for every module (3.3+), and older DKMS knows no other. Indexes 1 and up limit
    one module each (DKMS 3.3+; older DKMS ignores them).
    """

    package_wide: bool  # BUILD_EXCLUSIVE_CONFIG (or [0]) requires CONFIG_RUST
    rust_only: tuple[int, ...] = ()  # indexes >= 1 whose modules require CONFIG_RUST
    others: tuple[int, ...] = ()  # indexes of BUILT_MODULE_NAME[#] that do not

    @property
    def mixed(self) -> bool:
        """A package of C and Rust modules: on a kernel without Rust, DKMS 3.3+ builds the C
        ones and skips the Rust ones."""
        return not self.package_wide and bool(self.rust_only) and bool(self.others)


@dataclass(frozen=True)
class DkmsModule:
    name: str
    version: str
    source: Path
    rust_reasons: tuple[str, ...]
    uses_dkms_rustc: bool  # its dkms.conf or an /etc/dkms override runs dkms-rustc
    builds: tuple[Build, ...] = field(default=())

    @property
    def is_rust(self) -> bool:
        return bool(self.rust_reasons)

    def build_for(self, kernelrelease: str | None) -> Build | None:
        return next((build for build in self.builds if build.kernelrelease == kernelrelease), None)


def _read(path: Path) -> str:
    try:  # a module's files: a FIFO or device there must not stall the scan
        return read_prefix(path, _MAX_CONF).decode("utf-8", "replace")
    except OSError:
        return ""


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def assignments(conf: str) -> dict[tuple[str, int], str]:
    """``{(name, index): value}`` of a dkms.conf's assignments (no index: 0), the last wins."""
    found: dict[tuple[str, int], str] = {}
    for match in _ASSIGNMENT_RE.finditer(conf):
        name, index, value = match.groups()
        found[(name, int(index or 0))] = _unquote(value)
    return found


def runs_dkms_rustc(conf: str) -> bool:
    """Does a PRE_BUILD or MAKE line of this dkms.conf (or override) run dkms-rustc?"""
    return any(
        name in _HOOK_NAMES and _HOOK_RE.search(value) for (name, _), value in assignments(conf).items()
    )


def _requires_rust(value: str) -> bool:
    return "CONFIG_RUST" in value.split()  # "!CONFIG_RUST" means the opposite


def rust_exclusion(conf: str) -> RustExclusion:
    """What ``conf``'s BUILD_EXCLUSIVE_CONFIG lines say about Rust (:class:`RustExclusion`)."""
    values = assignments(conf)
    exclusive = {index: value for (name, index), value in values.items() if name == "BUILD_EXCLUSIVE_CONFIG"}
    modules = sorted(index for (name, index) in values if name == "BUILT_MODULE_NAME")
    rust_only = tuple(index for index in sorted(exclusive) if index > 0 and _requires_rust(exclusive[index]))
    return RustExclusion(
        package_wide=_requires_rust(exclusive.get(0, "")),
        rust_only=rust_only,
        others=tuple(index for index in modules if index not in rust_only),
    )


def build_dir_exclusion(build_dir: Path) -> RustExclusion:
    """:func:`rust_exclusion` of the dkms.conf in a module's DKMS build directory."""
    return rust_exclusion(_read(build_dir / "dkms.conf"))


def _has_rust_sources(source: Path) -> str | None:
    seen = 0
    for directory, dirs, files in os.walk(source):
        if listing_problem(directory):  # a private directory's names are as private as its files
            dirs[:] = []
            continue
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        for name in sorted(files):
            if name.endswith(".rs"):
                return os.path.relpath(os.path.join(directory, name), source)
        seen += len(files) + len(dirs)
        if seen > _MAX_SCAN:
            return None
    return None


def rust_reasons(name: str, version: str, source: Path, etc: Path) -> tuple[list[str], bool]:
    """Why the module is Rust (empty: it is not) and whether dkms-rustc already serves it."""
    reasons: list[str] = []
    uses = False
    conf = _read(source / "dkms.conf")
    if runs_dkms_rustc(conf):
        reasons.append("its dkms.conf runs dkms-rustc")
        uses = True
    for override in (etc / f"{name}.conf", etc / f"{name}-{version}.conf"):
        if runs_dkms_rustc(_read(override)):
            reasons.append(f"{override} runs dkms-rustc")
            uses = True
    exclusion = rust_exclusion(conf)
    if exclusion.package_wide:
        reasons.append('its dkms.conf has BUILD_EXCLUSIVE_CONFIG="CONFIG_RUST"')
    for index in exclusion.rust_only:
        reasons.append(f'its dkms.conf has BUILD_EXCLUSIVE_CONFIG[{index}]="CONFIG_RUST"')
    if not reasons:
        found = _has_rust_sources(source)
        if found:
            reasons.append(f"its source has Rust files ({found})")
    return reasons, uses


def _builds(module_dir: Path, version_dir: Path) -> tuple[Build, ...]:
    builds: list[Build] = []
    if listing_problem(version_dir):
        return ()
    try:
        kernels = sorted(os.listdir(version_dir))
    except OSError:
        return ()
    for kernel in kernels:
        if kernel in ("source", "build", "tarball") or not is_dir(version_dir / kernel):
            continue
        if listing_problem(version_dir / kernel):
            continue
        try:
            arches = sorted(os.listdir(version_dir / kernel))
        except OSError:
            continue
        for arch in arches:
            if not is_dir(version_dir / kernel / arch):
                continue
            link = module_dir / f"kernel-{kernel}-{arch}"
            installed = is_symlink(link) and os.path.realpath(link) == os.path.realpath(
                version_dir / kernel / arch
            )
            builds.append(Build(kernel, arch, installed))
    return tuple(builds)


def registered_modules(tree: Path, etc: Path) -> list[DkmsModule]:
    """Every module/version in the DKMS tree, Rust or not. ``tree`` is DKMS's tree
    (``/var/lib/dkms``), ``etc`` its ``/etc/dkms`` (defaults: cli.py)."""
    modules: list[DkmsModule] = []
    if listing_problem(tree):
        return modules
    try:
        names = sorted(os.listdir(tree))
    except OSError:
        return modules
    for name in names:
        module_dir = tree / name
        if not is_dir(module_dir) or name.startswith(".") or listing_problem(module_dir):
            continue
        try:
            versions = sorted(os.listdir(module_dir))
        except OSError:
            continue
        for version in versions:
            version_dir = module_dir / version
            if version.startswith("kernel-") or not is_dir(version_dir) or is_symlink(version_dir):
                continue
            source = version_dir / "source"
            if not is_dir(source):
                continue
            reasons, uses = rust_reasons(name, version, source, etc)
            modules.append(
                DkmsModule(name, version, source, tuple(reasons), uses, _builds(module_dir, version_dir))
            )
    return modules
