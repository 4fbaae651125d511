# SPDX-License-Identifier: GPL-2.0-or-later
"""A scratch root for package-manager tests: this machine's own root, seen through an overlay.

``rpm --root``, ``pacman --root`` and ``dpkg --root`` install into any directory, but what they
install (the tool, its hooks, a kernel-install plugin) needs a userland to run in: python3,
/bin/sh, the real kernel-install, apt. An overlay mount whose lower layer is ``/`` and whose
upper layer is a test directory gives exactly that: the machine as it is, plus whatever the
test installs, and every write lands in the upper layer only. Each command runs in its own
mount namespace (``unshare -m``) that mounts the overlay (and /proc, /dev) and then either
runs the command with the root as a path argument or ``chroot``s into it; the upper layer
keeps the state from one command to the next. Needs root and overlayfs.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import kerneltree

SYSTEM_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LC_ALL": "C"}

_MOUNT = (
    "set -e; r=$1; shift; mode=$1; shift; "
    'mount -t overlay overlay -o "lowerdir=/,upperdir=$UPPER,workdir=$WORK" "$r"; '
    'for m in $BINDS; do if [ -d "$r$m" ]; then '  # not where a test hid it (a whiteout)
    'mount --bind "$m" "$r$m"; mount -o remount,bind,ro "$r$m"; fi; done; '
    'mount -t proc proc "$r/proc"; mount --rbind /dev "$r/dev"; '
    'if [ "$mode" = chroot ]; then exec chroot "$r" "$@"; else exec "$@"; fi'
)


def available() -> str | None:
    """None when scratch roots work here, else why not."""
    if os.geteuid() != 0:
        return "needs root (mount namespaces and overlayfs)"
    for tool in ("unshare", "mount", "chroot"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


def _mount_points() -> list[str]:
    """The mount points this process sees (mountinfo's fifth field, octal escapes decoded)."""
    try:
        with open("/proc/self/mountinfo") as mountinfo:
            fields = [line.split(" ") for line in mountinfo]
    except OSError:
        return []
    return [field[4].encode().decode("unicode_escape") for field in fields if len(field) > 4]


def _root_is_a_mount() -> bool:
    """Whether the kernel has a mount at this process's "/". Inside a chroot of a plain
    directory (a fresh root made by ../shared/fresh-debian) it has not, and mountinfo lists no
    mount point "/" (it shows only the mounts below the process's root). os.path.ismount("/")
    cannot tell: "/.." is "/" in any chroot. Without a mountinfo to read: assume it is."""
    points = _mount_points()
    return not points or "/" in points


# unshare makes "/" private so nothing mounted here shows outside; that needs "/" to be a mount
# point. Where it is not, the propagation is left as it is (unshare fails otherwise: "cannot
# change root filesystem propagation: Invalid argument"), so the mounts made then propagate as
# the mount holding this root directory says: private on the machines here (findmnt -o
# PROPAGATION / outside the chroot); where it is shared, they would show outside as well.
_PROPAGATION = "private" if _root_is_a_mount() else "unchanged"


@functools.cache
def _toolchain_mounts() -> str:
    """The mounts below "/" that hold the real compilers the tests hand to the root, read-only
    in it: an overlay of "/" shows the root filesystem only, not the mounts on it (in a fresh
    root made by ../shared/fresh-debian, /root/.rustup is a bind mount, so the scratch root
    would see an empty directory). Space-separated, for the mount script; none on a machine
    whose toolchains live on the root filesystem."""
    places = [str(tc.rustc.parent.parent) for tc in kerneltree.find_real_toolchains().values()]
    found: dict[str, None] = {}
    for mount in sorted(_mount_points()):
        if mount == "/" or any(c.isspace() for c in mount) or mount.startswith(("/proc", "/sys", "/dev")):
            continue
        if any(place == mount or place.startswith(mount + "/") for place in places):
            found[mount] = None
    return " ".join(found)


class ScratchRoot:
    """``/`` plus what the test writes: ``path`` is where the root is seen inside a command."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.upper, self.work, self.path = base / "upper", base / "work", base / "root"
        for directory in (self.upper, self.work, self.path):
            directory.mkdir(parents=True, exist_ok=True)

    def _run(
        self,
        mode: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None,
        stdin: str | None,
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            **SYSTEM_ENV,
            **(env or {}),
            "UPPER": str(self.upper),
            "WORK": str(self.work),
            "BINDS": _toolchain_mounts(),
        }
        return subprocess.run(
            [
                "unshare",
                "-m",
                "--propagation",
                _PROPAGATION,
                "sh",
                "-c",
                _MOUNT,
                "sh",
                str(self.path),
                mode,
                *argv,
            ],
            capture_output=True,
            text=True,
            env=environment,
            input=stdin,
            timeout=timeout,
        )

    def chroot(
        self,
        *argv: str,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the root (its ``/`` is the overlay)."""
        return self._run("chroot", argv, env, stdin, timeout)

    def outside(
        self, *argv: str, env: Mapping[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on the machine with the overlay mounted at :attr:`path` (``--root`` tools)."""
        return self._run("outside", argv, env, None, timeout)

    def upper_path(self, path: str, follow: bool = True) -> Path:
        """Where ``path`` of the root lives in the upper layer. Links of the machine are followed
        (``/lib`` -> ``usr/lib``): a real directory in the upper layer would hide the link.
        ``follow=False`` takes the path as it is, to cover a link with a real directory."""
        return self.upper / (os.path.realpath(path) if follow else path).lstrip("/")

    def write(self, path: str, text: str, mode: int = 0o644) -> Path:
        """Create a file in the root (in the upper layer), e.g. ``/etc/dkms-rustc.conf``."""
        target = self.upper_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)
        return target

    def hide(self, path: str) -> None:
        """Make ``path`` of the machine absent in the root (an overlay whiteout: a 0:0 device)."""
        import stat

        target = self.upper_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))

    def link_copy(self, source: Path, path: str, follow: bool = True) -> Path:
        """A hard-linked copy of the tree ``source`` at ``path`` in the root: the same real files
        (a compiler, library sources) arranged as another distribution arranges them."""
        target = self.upper_path(path, follow)
        target.parent.mkdir(parents=True, exist_ok=True)
        kerneltree.link_tree(source, target)
        return target

    def exists(self, path: str) -> bool:
        """Whether the root holds ``path`` because the test put it there (upper layer)."""
        return os.path.lexists(self.upper_path(path))
