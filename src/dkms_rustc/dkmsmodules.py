"""The modules registered with DKMS, read from its tree (``/var/lib/dkms``), and which are Rust.

DKMS keeps ``<tree>/<module>/<version>/source`` (the module's source, with its dkms.conf),
``<tree>/<module>/<version>/<kernel>/<arch>/`` for every kernel it was built for, and a link
``<tree>/<module>/kernel-<kernel>-<arch>`` for every kernel it is installed for. Nothing here
runs DKMS or sources dkms.conf: the files are only read.

A module counts as Rust when its dkms.conf (or an admin's ``/etc/dkms/<module>.conf``
override) runs dkms-rustc, when it is limited to Rust kernels with
``BUILD_EXCLUSIVE_CONFIG="CONFIG_RUST"``, or when its source holds ``.rs`` files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dkms_rustc.fileio import is_dir, is_symlink, read_prefix

_EXCLUSIVE_RE = re.compile(
    r"^[ \t]*BUILD_EXCLUSIVE_CONFIG[ \t]*=.*\bCONFIG_RUST\b", re.MULTILINE
)  # line-local
_HOOK_RE = re.compile(r"dkms-rustc")
_MAX_CONF = 256 * 1024
_MAX_SCAN = 5000  # directory entries looked at when searching a source tree for .rs files


@dataclass(frozen=True)
class Build:
    kernelrelease: str
    arch: str
    installed: bool


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


def _has_rust_sources(source: Path) -> str | None:
    seen = 0
    for directory, dirs, files in os.walk(source):
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
    if _HOOK_RE.search(conf):
        reasons.append("its dkms.conf runs dkms-rustc")
        uses = True
    for override in (etc / f"{name}.conf", etc / f"{name}-{version}.conf"):
        if _HOOK_RE.search(_read(override)):
            reasons.append(f"{override} runs dkms-rustc")
            uses = True
    if _EXCLUSIVE_RE.search(conf):
        reasons.append('its dkms.conf has BUILD_EXCLUSIVE_CONFIG="CONFIG_RUST"')
    if not reasons:
        found = _has_rust_sources(source)
        if found:
            reasons.append(f"its source has Rust files ({found})")
    return reasons, uses


def _builds(module_dir: Path, version_dir: Path) -> tuple[Build, ...]:
    builds: list[Build] = []
    try:
        kernels = sorted(os.listdir(version_dir))
    except OSError:
        return ()
    for kernel in kernels:
        if kernel in ("source", "build", "tarball") or not is_dir(version_dir / kernel):
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
    """``tree`` is DKMS's tree (``/var/lib/dkms``), ``etc`` its ``/etc/dkms`` (defaults: cli.py)."""
    """Every module/version in the DKMS tree, Rust or not."""
    modules: list[DkmsModule] = []
    try:
        names = sorted(os.listdir(tree))
    except OSError:
        return modules
    for name in names:
        module_dir = tree / name
        if not is_dir(module_dir) or name.startswith("."):
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
