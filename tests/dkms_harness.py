# SPDX-License-Identifier: GPL-2.0-or-later
"""Run real DKMS generations side by side against throw-away trees.

Four generations of ``dkms`` are made runnable without touching the system's DKMS state:

* the *old* one, 3.0.x, Debian bookworm's package installed with apt (``/usr/sbin/dkms``):
  PRE_BUILD's exit status is ignored, ``make clean`` runs between PRE_BUILD and MAKE, the hook's
  output goes to the terminal;
* the *current* one, 3.2 or newer, taken from trixie/sid with ``apt-get download`` (a private apt
  state, never the system's sources) and unpacked with ``dpkg -x``: a non-zero PRE_BUILD stops the
  build, the hook's output goes to make.log only;
* *upstream* 3.3.0 and 3.4.3 (:data:`UPSTREAM_PINS`), which no Debian or Ubuntu archive carries:
  ``build_environment``, per-module ``BUILD_EXCLUSIVE_*[#]`` (3.3), ``/etc/dkms/<module>/<script>``
  overrides and ``try_sign_modules`` (3.4). This harness never fetches or builds them. It USES
  an installation made by hand, outside any checkout, by upstream's own install procedure
  (DESTDIR=<dir>/<version>) from the pinned commit of github dkms-project/dkms, found at
  ``<dir>/<version>/usr/sbin/dkms`` with ``<dir>`` = :func:`upstream_dir`
  (``${DKMS_RUSTC_UPSTREAM_DKMS:-/var/cache/dkms-rustc-ci/dkms-upstream}``). It is used only when
  it is root-owned, prints the pinned version and has the pinned checksum; a present but
  different file is an error. Where none is installed, that version is *not provided here*
  (:func:`generation_ids` leaves it out, :func:`versions_report` says so, loudly, at the end of
  every pytest run with DKMS tests) unless ``DKMS_RUSTC_REQUIRE_UPSTREAM_DKMS=1`` makes it a failure.

dkms is one bash script. Each generation runs from a copy of it (``<cache>/<name>/sbin/dkms``)
in which two hard-coded paths were rewritten at set-up time:
``/etc/dkms`` (framework.conf, framework.conf.d, per-module overrides, no-autoinstall) becomes
``${DKMS_HARNESS_ETC:-<cache>/<name>/etc/dkms}``, and ``/var/lib/dkms`` (the default tree and the
default MOK key location) becomes ``<cache>/<name>/var/lib/dkms``. Nothing else is changed.

A :class:`DkmsSandbox` is one test's world: its own etc/dkms (framework.conf pointing everything at
the sandbox and disabling signing), dkms tree, source tree, install tree, TMPDIR and a fake kernel
build directory whose Makefile records how it was called and produces dummy ``.ko`` files. Every
dkms call also gets ``--dkmstree/--sourcetree/--installtree/--kernelsourcedir/-k/--no-depmod``.

Everything downloaded, unpacked or patched lives under
``${DKMS_RUSTC_CI_CACHE:-/var/cache/dkms-rustc-ci}/dkms``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_KERNELVER",
    "HELLO_DKMS_CONF",
    "MAKE_ARGS_FILE",
    "PRE_BUILD_SCRIPT",
    "RUST_KERNEL_CONFIG",
    "STUB_KINDS",
    "UPSTREAM_PINS",
    "DkmsGeneration",
    "DkmsHarnessError",
    "DkmsResult",
    "DkmsSandbox",
    "MakeCall",
    "UpstreamPin",
    "cache_dir",
    "ensure_dkms_generations",
    "ensure_generation",
    "generation_ids",
    "pre_build_stub",
    "upstream_dir",
    "versions_report",
    "write_fake_kernel_dir",
]

#: The dkms.conf lines the project proposes to its users (task brief), verbatim.
HELLO_DKMS_CONF = """\
PACKAGE_NAME="hello"
PACKAGE_VERSION="1.0"
BUILT_MODULE_NAME[0]="hello"
DEST_MODULE_LOCATION[0]="/extra"
PRE_BUILD="dkms-rustc-pre-build ${kernel_source_dir}"
MAKE[0]='make -C ${kernel_source_dir} M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build \
\\$(cat dkms-rustc.make-args 2>/dev/null || echo -f /nonexistent/dkms-rustc-PRE_BUILD-hook-did-not-run)'
BUILD_EXCLUSIVE_CONFIG="CONFIG_RUST"
AUTOINSTALL="yes"
"""
PRE_BUILD_SCRIPT = "dkms-rustc-pre-build"
MAKE_ARGS_FILE = "dkms-rustc.make-args"
#: Made-up release: ``${kernelver%.*}`` of it names no /usr/lib/linux-kbuild-* directory.
DEFAULT_KERNELVER = "0.0.1-dkms-harness"
RUST_KERNEL_CONFIG: tuple[str, ...] = (
    "CONFIG_MODULES=y",
    "CONFIG_RUST=y",
    'CONFIG_RUSTC_VERSION_TEXT="rustc 1.96.0 (ac68faa20 2026-05-25) (built from a source tarball)"',
)

#: Kinds of PRE_BUILD stand-ins :func:`pre_build_stub` can write.
STUB_KINDS = (
    "writes-make-args",
    "exit-1",
    "exit-77",
    "not-executable",
    "missing",
    "writes-make-args-exit-1",
)

_CURRENT_SUITES = ("trixie", "sid")
_OLD_SUITES = ("bookworm",)
_DEBIAN_MIRROR = "http://deb.debian.org/debian"
_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
_DKMS_VERSION_RE = re.compile(r"dkms-(\d+(?:\.\d+)+)")
_SETUP_STAMP = "generation.json"
_SETUP_FORMAT = 1


class DkmsHarnessError(RuntimeError):
    """Setting up or driving dkms failed in a way a test cannot interpret."""


@dataclass(frozen=True)
class UpstreamPin:
    """One upstream DKMS release the suite runs, pinned to its tag's commit.

    ``script_sha256`` is the checksum of ``usr/sbin/dkms`` as upstream's own install procedure
    writes it from that commit (dkms.in with the Makefile's substitutions; deterministic).
    """

    version: str
    tag: str
    commit: str
    script_sha256: str


#: The upstream releases (github dkms-project/dkms) no Debian or Ubuntu archive carries.
UPSTREAM_PINS: tuple[UpstreamPin, ...] = (
    UpstreamPin(
        "3.3.0",
        "v3.3.0",
        "6e32f352f3d8c7ccbc6fecb05b1517248a2f3934",
        "338ff8fedbf3d27fc408049ff785151a208cd89052b19b10155d1a45ecb49531",
    ),
    UpstreamPin(
        "3.4.3",
        "v3.4.3",
        "04154266549a7b3723f8e7a18515b59c34e921b1",
        "a7a45df4e9f8a4fbea258a54b31d21760121560fe0b6187e34d5b39944e2767b",
    ),
)
#: Test ids of the two Debian generations (their versions are known only once set up).
DEBIAN_IDS = ("old", "current")
_REQUIRE_UPSTREAM = "DKMS_RUSTC_REQUIRE_UPSTREAM_DKMS"


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _ci_cache() -> Path:
    return Path(os.environ.get("DKMS_RUSTC_CI_CACHE") or "/var/cache/dkms-rustc-ci")


def cache_dir() -> Path:
    """``${DKMS_RUSTC_CI_CACHE:-/var/cache/dkms-rustc-ci}/dkms``."""
    return _ci_cache() / "dkms"


def upstream_dir() -> Path:
    """Where hand-made upstream installations are looked for: ``<this>/<version>/usr/sbin/dkms``
    (``${DKMS_RUSTC_UPSTREAM_DKMS:-${DKMS_RUSTC_CI_CACHE:-/var/cache/dkms-rustc-ci}/dkms-upstream}``)."""
    return Path(os.environ.get("DKMS_RUSTC_UPSTREAM_DKMS") or _ci_cache() / "dkms-upstream")


def _upstream_script(pin: UpstreamPin) -> Path:
    return upstream_dir() / pin.version / "usr" / "sbin" / "dkms"


def _upstream_required() -> bool:
    return os.environ.get(_REQUIRE_UPSTREAM) == "1"


def _upstream_provided(pin: UpstreamPin) -> bool:
    script = _upstream_script(pin)
    return script.exists() or script.is_symlink()


def generation_ids() -> tuple[str, ...]:
    """The test ids of the generations this machine runs: ``old``, ``current``, then each
    upstream version that is installed (all of them with DKMS_RUSTC_REQUIRE_UPSTREAM_DKMS=1,
    so that a missing one fails). Cheap: one stat per upstream version; call it at collection."""
    upstream = [pin.version for pin in UPSTREAM_PINS if _upstream_required() or _upstream_provided(pin)]
    return (*DEBIAN_IDS, *upstream)


def versions_report() -> list[str]:
    """One line per DKMS version: what runs it here, or why it is not provided (for pytest's
    header and summary, and the README's promise that absence is said out loud)."""
    lines = [
        "dkms old: Debian's package (bookworm: 3.0.10), installed with apt on first use",
        "dkms current: Debian trixie/sid's package (3.2.2), unpacked privately on first use",
    ]
    for pin in UPSTREAM_PINS:
        script = _upstream_script(pin)
        if _upstream_provided(pin):
            lines.append(f"dkms {pin.version}: upstream {pin.tag} ({pin.commit[:12]}) from {script}")
        else:
            lines.append(
                f"dkms {pin.version}: NOT PROVIDED here (no {script}): no DKMS scenario ran on it. "
                f"It is an installation of upstream {pin.tag} ({pin.commit}) made by hand with its own "
                f"install procedure, DESTDIR={script.parents[2]} (README: Testing with upstream DKMS)"
                + ("" if _upstream_required() else f"; {_REQUIRE_UPSTREAM}=1 makes its absence fail")
            )
    return lines


# --------------------------------------------------------------------------- generations


@dataclass(frozen=True)
class DkmsGeneration:
    """One runnable dkms, with what its source says about the behaviours we depend on.

    The boolean facts come from the upstream source (dell/dkms and dkms-project/dkms tags) and
    are checked against real runs by tests/test_dkms_harness.py for the generations set up here.
    """

    name: str  # "3.0.10": what ``dkms --version`` says, used as test id
    version: str
    package_version: str  # Debian version of the package it came from, or "upstream <tag> <commit>"
    origin: str  # how it was obtained, for reports
    script: Path  # the path-patched copy to run
    honours_pre_build_exit: bool  # >= 3.1.5: non-zero PRE_BUILD stops, dkms exits with it
    cleans_between_pre_build_and_make: bool  # <= 3.1.6: "$clean" runs after PRE_BUILD
    pre_build_output_in_make_log: bool  # >= 3.1.5 (before: the terminal only)
    autoinstall_skips_exit_77: bool  # >= 3.0.11: build exit 77 counts as "skipped"
    sources_build_environment: bool = False  # >= 3.3.0: framework.conf's build_environment=
    per_module_build_exclusive: bool = False  # >= 3.3.0: BUILD_EXCLUSIVE_CONFIG[#] per module
    script_overrides: bool = False  # >= 3.4.0: /etc/dkms/<module>/<script> replaces a PRE_BUILD
    try_sign_modules: bool = False  # >= 3.4.0: framework.conf's try_sign_modules=

    @classmethod
    def from_version(cls, version: str, *, package_version: str, origin: str, script: Path) -> DkmsGeneration:
        v = _version_tuple(version)
        return cls(
            name=version,
            version=version,
            package_version=package_version,
            origin=origin,
            script=script,
            honours_pre_build_exit=v >= (3, 1, 5),
            cleans_between_pre_build_and_make=v <= (3, 1, 6),
            pre_build_output_in_make_log=v >= (3, 1, 5),
            autoinstall_skips_exit_77=v >= (3, 0, 11),
            sources_build_environment=v >= (3, 3, 0),
            per_module_build_exclusive=v >= (3, 3, 0),
            script_overrides=v >= (3, 4, 0),
            try_sign_modules=v >= (3, 4, 0),
        )

    def command(self, *args: str) -> list[str]:
        """argv that runs this dkms (set DKMS_HARNESS_ETC, or use a :class:`DkmsSandbox`)."""
        return [str(self.script), *args]

    def sandbox(self, root: Path, **kwargs: Any) -> DkmsSandbox:
        """A :class:`DkmsSandbox` for this generation under ``root``."""
        return DkmsSandbox(self, root, **kwargs)


def _run(cmd: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 900) -> str:
    proc = subprocess.run(
        list(cmd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=None if env is None else dict(env),
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise DkmsHarnessError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-4000:]}")
    return proc.stdout


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _apt_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DEBIAN_FRONTEND"] = "noninteractive"
    env.setdefault("LC_ALL", "C")
    return env


def _installed_package_version(package: str) -> str | None:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    status, _, version = proc.stdout.partition("\t")
    return version if status.endswith(" installed") else None


def _apt_install_system_dkms() -> None:
    """``apt-get install dkms`` from the system's own sources (bookworm: 3.0.10 plus make, gcc,
    patch, kmod, dpkg-dev, which both generations need). Waits for a dpkg lock held by others."""
    if os.geteuid() != 0:
        raise DkmsHarnessError("dkms is not installed and installing it needs root")
    install = [
        "apt-get", "install", "-y", "-q", "--no-install-recommends",
        "-o", "DPkg::Lock::Timeout=900", "dkms",
    ]  # fmt: skip
    try:
        _run(install, env=_apt_env())
    except DkmsHarnessError:
        _run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=900"], env=_apt_env())
        _run(install, env=_apt_env())


class _PrivateApt:
    """apt-get with its own sources, lists and archives: never the system's sources or state."""

    def __init__(self, root: Path, suites: Iterable[str]) -> None:
        self.root = root
        self.suites = tuple(suites)
        (root / "etc" / "sources.list.d").mkdir(parents=True, exist_ok=True)
        (root / "etc" / "preferences.d").mkdir(parents=True, exist_ok=True)
        (root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        sources = "".join(
            f"deb [signed-by={_KEYRING}] {_DEBIAN_MIRROR} {suite} main\n" for suite in self.suites
        )
        sources_list = root / "etc" / "sources.list"
        if not sources_list.exists() or sources_list.read_text() != sources:
            sources_list.write_text(sources)
            for stale in (root / "lists").glob("*_Packages*"):
                stale.unlink()

    def _options(self) -> list[str]:
        r = self.root
        return [
            "-o", f"Dir::Etc::SourceList={r}/etc/sources.list",
            "-o", f"Dir::Etc::SourceParts={r}/etc/sources.list.d",
            "-o", f"Dir::Etc::Preferences={r}/etc/preferences",
            "-o", f"Dir::Etc::PreferencesParts={r}/etc/preferences.d",
            "-o", f"Dir::State::Lists={r}/lists",
            "-o", f"Dir::Cache={r}/cache",
            "-o", "Dir::State::status=/dev/null",
            "-o", "APT::Sandbox::User=root",
            "-o", "Acquire::Languages=none",
            # Download-only: signatures are checked, freshness is not, so a mirror serving
            # trixie/sid as of some day (as CI's does) is accepted like the live archive.
            "-o", "Acquire::Check-Valid-Until=false",
        ]  # fmt: skip

    def update(self) -> None:
        _run(["apt-get", *self._options(), "-q", "update"], env=_apt_env())

    def candidate(self, package: str) -> str | None:
        out = _run(["apt-cache", *self._options(), "policy", package], env=_apt_env())
        match = re.search(r"Candidate:\s*(\S+)", out)
        return None if match is None or match.group(1) == "(none)" else match.group(1)

    def download(self, package: str, version: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        before = set(dest.glob("*.deb"))
        proc = subprocess.run(
            ["apt-get", *self._options(), "-q", "download", f"{package}={version}"],
            cwd=dest,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_apt_env(),
            check=False,
        )
        if proc.returncode != 0:
            raise DkmsHarnessError(f"apt-get download {package}={version}:\n{proc.stdout}")
        quoted = version.replace(":", "%3a")
        found = sorted(dest.glob(f"{package}_{quoted}_*.deb")) or sorted(set(dest.glob("*.deb")) - before)
        if not found:
            raise DkmsHarnessError(f"apt-get download left no .deb for {package}={version}")
        return found[0]


def _patch_script(text: str, gen_dir: Path) -> str:
    """Point the two system locations dkms hard-codes at the generation's own directory."""
    etc = f"${{DKMS_HARNESS_ETC:-{gen_dir}/etc/dkms}}"
    return text.replace("/etc/dkms", etc).replace("/var/lib/dkms", f"{gen_dir}/var/lib/dkms")


def _install_generation(
    script_source: Path | str,
    gen_dir: Path,
    *,
    package_version: str,
    origin: str,
    expect_version: str | None = None,
) -> DkmsGeneration:
    """Write the patched copy of ``script_source`` (a path, or the script's text) and its
    stamp; return the generation."""
    source_text = script_source if isinstance(script_source, str) else script_source.read_text()
    staging = gen_dir.with_name(gen_dir.name + ".staging")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    # Patch with the final path baked in, then move the directory into place.
    (staging / "sbin").mkdir()
    (staging / "etc" / "dkms" / "framework.conf.d").mkdir(parents=True)
    (staging / "var" / "lib" / "dkms").mkdir(parents=True)
    (staging / "etc" / "dkms" / "framework.conf").write_text(
        "# empty on purpose: every DkmsSandbox brings its own (DKMS_HARNESS_ETC)\n"
    )
    script = staging / "sbin" / "dkms"
    script.write_text(_patch_script(source_text, gen_dir))
    script.chmod(0o755)
    etc = str(staging / "etc" / "dkms")
    out = _run([str(script), "--version"], env={**os.environ, "DKMS_HARNESS_ETC": etc})
    match = _DKMS_VERSION_RE.search(out)
    if match is None:
        raise DkmsHarnessError(f"cannot read a version from `dkms --version`: {out!r}")
    version = match.group(1)
    if expect_version is not None and version != expect_version:
        raise DkmsHarnessError(f"{origin}: `dkms --version` says {version}, not {expect_version}")
    stamp = {
        "format": _SETUP_FORMAT,
        "version": version,
        "package_version": package_version,
        "origin": origin,
        "source_sha256": hashlib.sha256(source_text.encode()).hexdigest(),
    }
    (staging / _SETUP_STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
    if gen_dir.exists():
        shutil.rmtree(gen_dir)
    staging.rename(gen_dir)
    return _load_generation(gen_dir)


def _load_generation(gen_dir: Path) -> DkmsGeneration:
    stamp = json.loads((gen_dir / _SETUP_STAMP).read_text())
    if stamp.get("format") != _SETUP_FORMAT:
        raise DkmsHarnessError(f"{gen_dir}: stale set-up format")
    script = gen_dir / "sbin" / "dkms"
    if not os.access(script, os.X_OK):
        raise DkmsHarnessError(f"{script} is missing")
    return DkmsGeneration.from_version(
        stamp["version"],
        package_version=stamp["package_version"],
        origin=stamp["origin"],
        script=script,
    )


def _cached(gen_dir: Path, *, source_sha256: str | None = None) -> DkmsGeneration | None:
    """The generation set up in ``gen_dir``, if complete (and made from that source)."""
    try:
        if source_sha256 is not None:
            stamp = json.loads((gen_dir / _SETUP_STAMP).read_text())
            if stamp.get("source_sha256") != source_sha256:
                return None
        return _load_generation(gen_dir)
    except (OSError, ValueError, KeyError, DkmsHarnessError):
        return None


def _unpacked_dkms(deb: Path, root: Path) -> Path:
    if root.exists():
        shutil.rmtree(root)
    _run(["dpkg-deb", "-x", str(deb), str(root)])
    script = root / "usr" / "sbin" / "dkms"
    if not script.is_file():
        raise DkmsHarnessError(f"{deb} has no usr/sbin/dkms")
    return script


def _ensure_old(cache: Path) -> DkmsGeneration:
    version = _installed_package_version("dkms")
    if version is None:
        _apt_install_system_dkms()
        version = _installed_package_version("dkms")
        if version is None:
            raise DkmsHarnessError("apt-get install dkms did not install dkms")
    gen_dir = cache / f"old-{version}"
    cached = _cached(gen_dir)
    if cached is not None:
        return cached
    if _version_tuple(version) < (3, 1, 5):
        return _install_generation(
            Path("/usr/sbin/dkms"),
            gen_dir,
            package_version=version,
            origin=f"Debian package dkms {version}, installed with apt (/usr/sbin/dkms)",
        )
    # The system's dkms is not an old one (not bookworm): take bookworm's package instead.
    apt = _PrivateApt(cache / "apt-old", _OLD_SUITES)
    apt.update()
    candidate = apt.candidate("dkms")
    if candidate is None:
        raise DkmsHarnessError("no dkms in bookworm")
    deb = apt.download("dkms", candidate, cache / "debs")
    script = _unpacked_dkms(deb, gen_dir.with_name(gen_dir.name + ".root"))
    return _install_generation(
        script,
        gen_dir,
        package_version=candidate,
        origin=f"Debian bookworm dkms {candidate}, apt-get download + dpkg -x",
    )


def _ensure_current(cache: Path, *, refresh: bool) -> DkmsGeneration:
    if not refresh:
        ready = [g for d in sorted(cache.glob("current-*")) if (g := _cached(d)) is not None]
        if ready:
            return max(ready, key=lambda g: _version_tuple(g.version))
    apt = _PrivateApt(cache / "apt", _CURRENT_SUITES)
    apt.update()
    candidate = apt.candidate("dkms")
    if candidate is None:
        raise DkmsHarnessError(f"no dkms in {', '.join(_CURRENT_SUITES)}")
    gen_dir = cache / f"current-{candidate.replace(':', '_').replace('~', '_')}"
    cached = _cached(gen_dir)
    if cached is not None:
        return cached
    deb = apt.download("dkms", candidate, cache / "debs")
    script = _unpacked_dkms(deb, gen_dir.with_name(gen_dir.name + ".root"))
    generation = _install_generation(
        script,
        gen_dir,
        package_version=candidate,
        origin=f"Debian dkms {candidate} ({'/'.join(_CURRENT_SUITES)}), apt-get download + dpkg -x",
    )
    if not generation.honours_pre_build_exit:
        raise DkmsHarnessError(f"the newest dkms found is {generation.version}, not >= 3.1.5")
    return generation


def _check_root_owned(path: Path, stop: Path) -> None:
    """``path`` and its directories up to ``stop``: root's, writable by no one else (the
    harness runs it as root)."""
    for item in (path, *path.parents):
        info = item.lstat() if item == path else item.stat()
        if info.st_uid != 0 or info.st_mode & 0o022:
            raise DkmsHarnessError(
                f"{item} is not root's, or is writable by group or others: not running {path} as root"
            )
        if item == stop or item == item.parent:
            break


def _read_upstream(pin: UpstreamPin) -> str:
    """The installed upstream script's text, after checking it is the pinned one."""
    script = _upstream_script(pin)
    if not _upstream_provided(pin):
        raise DkmsHarnessError(
            f"DKMS {pin.version} is not provided here: no {script} ({_REQUIRE_UPSTREAM}=1 asks for it). "
            f"It is an installation of upstream {pin.tag} ({pin.commit}) made by hand with its own "
            f"install procedure, DESTDIR={script.parents[2]} (README: Testing with upstream DKMS)"
        )
    if script.is_symlink() or not script.is_file():
        raise DkmsHarnessError(f"{script} is not a regular file")
    _check_root_owned(script, upstream_dir())
    data = script.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != pin.script_sha256:
        raise DkmsHarnessError(
            f"{script} is not upstream DKMS {pin.tag} as pinned ({pin.commit}): its sha256 is {digest}, "
            f"the pinned commit's own install procedure writes {pin.script_sha256}. "
            "Reinstall it from that commit"
        )
    return data.decode()


def _ensure_upstream(cache: Path, pin: UpstreamPin) -> DkmsGeneration:
    text = _read_upstream(pin)
    gen_dir = cache / f"upstream-{pin.version}"
    cached = _cached(gen_dir, source_sha256=pin.script_sha256)
    if cached is not None:
        return cached
    return _install_generation(
        text,
        gen_dir,
        package_version=f"upstream {pin.tag} ({pin.commit[:12]})",
        origin=(
            f"dkms-project/dkms {pin.tag} at {pin.commit}, installed by hand at "
            f"{_upstream_script(pin).parents[2]}"
        ),
        expect_version=pin.version,
    )


def _pin(gen_id: str) -> UpstreamPin | None:
    return next((pin for pin in UPSTREAM_PINS if pin.version == gen_id), None)


def ensure_generation(gen_id: str, *, refresh: bool = False) -> DkmsGeneration:
    """The generation with test id ``gen_id`` (one of :func:`generation_ids`), set up if needed.

    Idempotent and safe to call from concurrent processes (a lock file serialises set-up). Once
    cached, it needs no network: only ``dpkg-query`` and a few file reads. ``refresh=True`` (or
    ``DKMS_HARNESS_REFRESH=1``) looks for a newer current dkms in trixie/sid. An upstream id
    whose installation is missing or not the pinned one raises :class:`DkmsHarnessError`.
    """
    cache = cache_dir()
    refresh = refresh or os.environ.get("DKMS_HARNESS_REFRESH") == "1"
    pin = _pin(gen_id)
    if gen_id not in DEBIAN_IDS and pin is None:
        raise DkmsHarnessError(f"unknown dkms generation {gen_id!r}; one of {generation_ids()}")
    with _locked(cache / ".lock"):
        if gen_id == "old":
            return _ensure_old(cache)
        if gen_id == "current":
            return _ensure_current(cache, refresh=refresh)
        assert pin is not None
        return _ensure_upstream(cache, pin)


def ensure_dkms_generations(*, refresh: bool = False) -> list[DkmsGeneration]:
    """Every generation of :func:`generation_ids`, in that order (old, current, upstream)."""
    return [ensure_generation(gen_id, refresh=refresh) for gen_id in generation_ids()]


# --------------------------------------------------------------------------- sandbox


@dataclass(frozen=True)
class MakeCall:
    """One ``make`` process dkms started (recorded by a wrapper first on PATH)."""

    cwd: str
    argv: tuple[str, ...]  # without argv[0]

    @property
    def is_clean(self) -> bool:
        return "clean" in self.argv


@dataclass(frozen=True)
class DkmsResult:
    args: tuple[str, ...]
    exit_code: int
    output: str  # stdout and stderr, interleaved as a terminal would show them
    make_log: Path | None  # where the build's make.log is (None: no build log exists)
    make_log_text: str | None  # its content when the command returned
    make_calls: tuple[MakeCall, ...] = ()  # every make started during this command
    kernel_calls: tuple[str, ...] = ()  # lines the fake kernel Makefile logged during it
    seconds: float = 0.0

    @property
    def builds(self) -> tuple[MakeCall, ...]:
        return tuple(call for call in self.make_calls if not call.is_clean)

    @property
    def cleans(self) -> tuple[MakeCall, ...]:
        return tuple(call for call in self.make_calls if call.is_clean)


_MAKE_WRAPPER = """\
#!/bin/bash
# dkms harness: record how dkms starts make, then run the real one
{{ printf '%s\\037' "$PWD" "$@"; printf '\\036'; }} >> {log}
exec {make} "$@"
"""

# A stand-in for /lib/modules/$kver/build. kbuild reads M= from the command line; this Makefile
# reads obj-m from $(M)/Makefile (or Kbuild), logs its goal and overrides, and makes each .ko a
# copy of a real (empty) ELF object so dkms's strip works. `clean` removes what kbuild's clean
# removes for external modules (checked against Debian's 6.1 kbuild).
_FAKE_KERNEL_MAKEFILE = """\
# fake kernel build directory written by tests/dkms_harness.py
FAKE_KDIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
FAKE_LOG := $(FAKE_KDIR)/invocations.log
-include $(M)/Kbuild
ifeq ($(obj-m),)
-include $(M)/Makefile
endif
.DEFAULT_GOAL := modules
.PHONY: modules clean
modules:
\t@echo 'goal=modules M=$(M) KERNELRELEASE=$(KERNELRELEASE) RUSTC=$(RUSTC) \
MAKEFLAGS=$(MAKEFLAGS)' >> $(FAKE_LOG)
\t@echo 'fake kbuild: building $(obj-m:.o=.ko) in $(M) with RUSTC=$(RUSTC)'
\t@test -n '$(M)' || { echo 'fake kbuild: no M=' >&2; exit 2; }
\t@for ko in $(obj-m:.o=.ko); do cp $(FAKE_KDIR)/dummy.o $(M)/$$ko || exit 2; done
clean:
\t@echo "goal=clean M=$(M) files=$$(cd $(M) && ls -A | tr '\\n' ' ')" >> $(FAKE_LOG)
\t@echo 'fake kbuild: cleaning $(M)'
\t@find $(M) \\( -name '*.[aios]' -o -name '*.ko' -o -name '.*.cmd' -o -name '*.mod' \\
\t   -o -name '*.mod.c' -o -name 'modules.order' -o -name '*.ko.*' -o -name '*.rsi' \\) \\
\t   -type f -delete
\t@rm -f $(M)/Module.symvers
"""


def write_fake_kernel_dir(directory: Path, config: Iterable[str] = RUST_KERNEL_CONFIG) -> Path:
    """A kernel "build directory" dkms accepts: Makefile, include/, .config (``config`` lines)."""
    (directory / "include").mkdir(parents=True, exist_ok=True)
    (directory / "Makefile").write_text(_FAKE_KERNEL_MAKEFILE)
    (directory / ".config").write_text("".join(f"{line}\n" for line in config))
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise DkmsHarnessError("no C compiler (cc) for the dummy .ko; apt-get install gcc")
    _run([cc, "-x", "c", "-c", "/dev/null", "-o", str(directory / "dummy.o")])
    return directory


def pre_build_stub(
    kind: str, *, probe: Path | None = None, make_args: str = "RUSTC=/usr/bin/false-marker"
) -> tuple[str | None, int]:
    """(content, mode) of a stand-in for dkms-rustc-pre-build; content None means "missing".

    writes-make-args: writes ``make_args`` into ./dkms-rustc.make-args and exits 0;
    exit-1 / exit-77: print a line on stdout and stderr, write nothing, exit 1 / 77;
    not-executable: like writes-make-args but mode 0644;
    writes-make-args-exit-1: writes the file, then exits 1 (is the status itself obeyed?).
    With ``probe``, every kind first records argv, cwd, the environment and ``ls -A`` there.
    """
    if kind not in STUB_KINDS:
        raise ValueError(f"unknown stub kind {kind!r}; one of {STUB_KINDS}")
    if kind == "missing":
        return None, 0
    lines = ["#!/bin/sh"]
    if probe is not None:
        lines.append(
            "{ printf 'argv0=%s\\n' \"$0\"; printf 'argc=%s\\n' \"$#\";"
            ' for a in "$@"; do printf \'arg=%s\\n\' "$a"; done;'
            " printf 'cwd=%s\\n' \"$(pwd)\"; echo '--- env'; env | sort;"
            f" echo '--- ls'; ls -A; }} > '{probe}'"
        )
    lines.append(f"echo 'pre-build stub ({kind}): stdout'")
    lines.append(f"echo 'pre-build stub ({kind}): stderr' >&2")
    if kind in ("writes-make-args", "not-executable", "writes-make-args-exit-1"):
        lines.append(f"printf '%s\\n' '{make_args}' > {MAKE_ARGS_FILE}")
    lines.append(f"exit {kind.rsplit('-', 1)[1] if 'exit' in kind else 0}")
    return "\n".join(lines) + "\n", 0o644 if kind == "not-executable" else 0o755


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class DkmsSandbox:
    """One isolated dkms world under ``root`` (a temporary directory the caller owns).

    ``kernel_config`` lines go to the fake kernel's .config; ``record_make`` puts a ``make``
    wrapper first on PATH to record every make dkms starts. ``kernel_source_dir`` names a
    real kbuild-style tree (e.g. from tests/kerneltree.py) to build against instead of the
    fake one (which is then not written; ``kernel_config`` is ignored).
    """

    generation: DkmsGeneration
    root: Path
    kernelver: str = DEFAULT_KERNELVER
    kernel_config: Sequence[str] = RUST_KERNEL_CONFIG
    record_make: bool = True
    extra_env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 180.0
    kernel_source_dir: Path | None = None
    arch: str = field(init=False)
    etc_dir: Path = field(init=False)
    dkms_tree: Path = field(init=False)
    source_tree: Path = field(init=False)
    install_tree: Path = field(init=False)
    kernel_dir: Path = field(init=False)
    tmp_dir: Path = field(init=False)
    bin_dir: Path = field(init=False)
    make_record: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        forbidden = Path("/var/lib/dkms")
        if self.root == forbidden or forbidden in self.root.parents:
            raise DkmsHarnessError("a sandbox may not live in /var/lib/dkms")
        self.arch = platform.machine()
        self.etc_dir = self.root / "etc" / "dkms"
        self.dkms_tree = self.root / "var-lib-dkms"
        self.source_tree = self.root / "usr-src"
        self.install_tree = self.root / "lib-modules"
        self.kernel_dir = (
            self.root / "kernel" if self.kernel_source_dir is None else Path(self.kernel_source_dir)
        )
        self.tmp_dir = self.root / "tmp"
        self.bin_dir = self.root / "bin"
        self.make_record = self.root / "make-calls.log"
        for directory in (
            self.etc_dir / "framework.conf.d",
            self.dkms_tree,
            self.source_tree,
            self.install_tree / self.kernelver,
            self.tmp_dir,
            self.bin_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        (self.etc_dir / "framework.conf").write_text(
            "# dkms harness sandbox\n"
            f'dkms_tree="{self.dkms_tree}"\n'
            f'source_tree="{self.source_tree}"\n'
            f'install_tree="{self.install_tree}"\n'
            f'tmp_location="{self.tmp_dir}"\n'
            'sign_file="/nonexistent/dkms-harness/sign-file"\n'
            f'mok_signing_key="{self.root}/mok.key"\n'
            f'mok_certificate="{self.root}/mok.pub"\n'
        )
        if self.kernel_source_dir is None:
            write_fake_kernel_dir(self.kernel_dir, self.kernel_config)
        if self.record_make:
            real_make = shutil.which("make", path="/usr/bin:/bin:/usr/local/bin")
            if real_make is None:
                raise DkmsHarnessError("make is not installed")
            wrapper = self.bin_dir / "make"
            wrapper.write_text(_MAKE_WRAPPER.format(log=self.make_record, make=real_make))
            wrapper.chmod(0o755)

    # -- set-up helpers

    def set_kernel_config(self, lines: Iterable[str]) -> None:
        if self.kernel_source_dir is not None:
            raise DkmsHarnessError("set_kernel_config: this sandbox builds against a real tree")
        (self.kernel_dir / ".config").write_text("".join(f"{line}\n" for line in lines))

    def enable_signing(self, sign_file: Path) -> None:
        """Let DKMS sign what it builds with ``sign_file`` (a kernel tree's scripts/sign-file)
        and the sandbox's MOK key, which DKMS creates (openssl) on first use. ``try_sign_modules``
        (3.4+): sign even where DKMS believes it runs in a chroot, as it does in some VMs."""
        (self.etc_dir / "framework.conf.d" / "signing.conf").write_text(
            f'sign_file="{sign_file}"\ntry_sign_modules="true"\n'
        )

    @property
    def mok_certificate(self) -> Path:
        return self.root / "mok.pub"

    def module_source(self, name: str, version: str) -> Path:
        return self.source_tree / f"{name}-{version}"

    def write_module(
        self,
        name: str = "hello",
        version: str = "1.0",
        *,
        dkms_conf: str = HELLO_DKMS_CONF,
        pre_build: str = "writes-make-args",
        probe: Path | None = None,
        make_args: str = "RUSTC=/usr/bin/false-marker",
        files: Mapping[str, str] | None = None,
    ) -> Path:
        """Module source in the source tree: dkms.conf, a plain kbuild Makefile, a C file and a
        PRE_BUILD stand-in (:func:`pre_build_stub` kind ``pre_build``) or ``files``."""
        source = self.module_source(name, version)
        if source.exists():
            _remove_tree(source)
        source.mkdir(parents=True)
        (source / "dkms.conf").write_text(dkms_conf)
        (source / "Makefile").write_text(f"obj-m := {name}.o\n")
        (source / f"{name}.c").write_text("/* never compiled by the fake kernel */\n")
        content, mode = pre_build_stub(pre_build, probe=probe, make_args=make_args)
        if content is not None:
            hook = source / PRE_BUILD_SCRIPT
            hook.write_text(content)
            hook.chmod(mode)
        for relative, text in (files or {}).items():
            target = source / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            if text.startswith("#!"):
                target.chmod(0o755)
        return source

    # -- running dkms

    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DKMS_HARNESS_ETC"}
        }
        env["DKMS_HARNESS_ETC"] = str(self.etc_dir)
        env["TMPDIR"] = str(self.tmp_dir)
        env["LC_ALL"] = "C"
        if self.record_make:
            env["PATH"] = f"{self.bin_dir}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        env.update(self.extra_env)
        return env

    def common_args(self) -> list[str]:
        return [
            "--dkmstree", str(self.dkms_tree),
            "--sourcetree", str(self.source_tree),
            "--installtree", str(self.install_tree),
            "--no-depmod",
        ]  # fmt: skip

    def kernel_args(self) -> list[str]:
        return ["-k", self.kernelver, "--kernelsourcedir", str(self.kernel_dir)]

    def make_log_path(self, name: str, version: str) -> Path | None:
        """build/make.log (a failed or running build) else the saved log of a built module."""
        base = self.dkms_tree / name / version
        for candidate in (
            base / "build" / "make.log",
            base / self.kernelver / self.arch / "log" / "make.log",
        ):
            if candidate.is_file():
                return candidate
        return None

    def run(self, *args: str, module: tuple[str, str] | None = None) -> DkmsResult:
        """Run this generation's dkms with ``args`` plus the sandbox's tree options."""
        argv = self.generation.command(*args, *self.common_args())
        calls_before = self._read_make_calls()
        kernel_log = self.kernel_dir / "invocations.log"
        kernel_before = kernel_log.read_text().splitlines() if kernel_log.exists() else []
        # Output goes to a file, not a pipe: dkms's progress-dot loop leaves an orphaned
        # `sleep 3` holding its stdout, and a pipe would only reach EOF when that sleep ends.
        output_file = self.tmp_dir / f"dkms-output.{os.getpid()}.{time.monotonic_ns()}"
        started = time.monotonic()
        with open(output_file, "w+b") as output:
            proc = subprocess.run(
                argv,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env(),
                cwd=self.root,
                timeout=self.timeout,
                check=False,
            )
            output.seek(0)
            text = output.read().decode(errors="replace")
        output_file.unlink()
        seconds = time.monotonic() - started
        make_log = self.make_log_path(*module) if module else None
        kernel_after = kernel_log.read_text().splitlines() if kernel_log.exists() else []
        return DkmsResult(
            args=tuple(args),
            exit_code=proc.returncode,
            output=text,
            make_log=make_log,
            make_log_text=make_log.read_text(errors="replace") if make_log else None,
            make_calls=self._read_make_calls()[len(calls_before) :],
            kernel_calls=tuple(kernel_after[len(kernel_before) :]),
            seconds=seconds,
        )

    def _read_make_calls(self) -> tuple[MakeCall, ...]:
        if not self.make_record.exists():
            return ()
        calls = []
        for record in self.make_record.read_text().split("\x1e"):
            if not record:
                continue
            fields = record.split("\x1f")[:-1]
            calls.append(MakeCall(cwd=fields[0], argv=tuple(fields[1:])))
        return tuple(calls)

    def add(self, name: str = "hello", version: str = "1.0") -> DkmsResult:
        return self.run("add", f"{name}/{version}", *self.kernel_args(), module=(name, version))

    def build(self, name: str = "hello", version: str = "1.0") -> DkmsResult:
        return self.run("build", f"{name}/{version}", *self.kernel_args(), module=(name, version))

    def install(self, name: str = "hello", version: str = "1.0") -> DkmsResult:
        return self.run("install", f"{name}/{version}", *self.kernel_args(), module=(name, version))

    def autoinstall(self, module: tuple[str, str] = ("hello", "1.0")) -> DkmsResult:
        return self.run("autoinstall", *self.kernel_args(), module=module)

    def status(self, name: str | None = None, version: str | None = None) -> DkmsResult:
        target = [] if name is None else [f"{name}/{version}" if version else name]
        return self.run("status", *target)

    def remove(self, name: str = "hello", version: str = "1.0") -> DkmsResult:
        return self.run("remove", f"{name}/{version}", "--all", module=(name, version))


# --------------------------------------------------------------------------- evidence


def _evidence(generation: DkmsGeneration, root: Path, kind: str, config: Sequence[str]) -> str:
    box = DkmsSandbox(generation, root, kernel_config=config)
    box.write_module(pre_build=kind)
    box.add()
    built = box.build()
    hook = f"pre-build stub ({kind}): stderr"
    lines = [
        f"--- dkms {generation.name}, PRE_BUILD stub {kind!r}, "
        f"CONFIG_RUST {'set' if 'CONFIG_RUST=y' in config else 'unset'}",
        f"dkms build exit code: {built.exit_code}",
        f"hook output on the terminal: {hook in built.output}; "
        f"in make.log: {hook in (built.make_log_text or '')}",
        f"make.log: {built.make_log}",
    ]
    lines += [f"make {'(clean)' if c.is_clean else '       '} {' '.join(c.argv)}" for c in built.make_calls]
    lines += [f"kernel Makefile saw: {line}" for line in built.kernel_calls]
    auto = box.autoinstall()
    lines.append(f"dkms autoinstall exit code: {auto.exit_code}")
    box.remove()
    return "\n".join(lines)


def main() -> int:
    """Print what each generation does with each PRE_BUILD stand-in (``python3 dkms_harness.py``)."""
    import tempfile

    started = time.monotonic()
    generations = ensure_dkms_generations()
    print(f"set-up: {time.monotonic() - started:.2f}s")
    for generation in generations:
        print(f"=== {generation}")
        scenarios = [(kind, RUST_KERNEL_CONFIG) for kind in STUB_KINDS]
        scenarios.append(("writes-make-args", ("CONFIG_MODULES=y",)))
        for kind, config in scenarios:
            with tempfile.TemporaryDirectory(prefix="dkms-harness-") as tmp:
                print(_evidence(generation, Path(tmp), kind, config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
