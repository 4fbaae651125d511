"""Exact fixes, worded for the administrator's distribution.

Which compiler can satisfy a kernel depends on who built the kernel's rustc: an official
release build (what rustup installs) can be installed with rustup; a distribution build
(a suffix such as ``(built from a source tarball)`` or ``(Fedora 1.89.0-2.fc42)``) can only
be matched by that distribution's own package of exactly that version, and the fix says so.
Every function here is pure: the distribution comes in as a :class:`Platform`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dkms_rustc.versions import RustcVersion, parse_rustc_version, rustup_toolchain_names


@dataclass(frozen=True)
class Platform:
    """The running distribution, as its os-release file names it."""

    id: str  # "debian", "ubuntu", "fedora", "arch", ...
    like: tuple[str, ...] = ()
    version_id: str = ""
    codename: str = ""

    @property
    def family(self) -> str:
        """One of ubuntu, debian, fedora, rhel, arch, suse, gentoo, alpine, nixos, or unknown."""
        for family, names in _FAMILIES:
            if self.id in names:
                return family
        for family, names in _FAMILIES:
            if any(name in self.like for name in names):
                return family
        return "unknown"


# Checked in this order: Ubuntu before Debian (Ubuntu is "like" debian), Fedora before RHEL.
_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ubuntu", ("ubuntu",)),
    ("debian", ("debian",)),
    ("fedora", ("fedora",)),
    ("rhel", ("rhel", "centos", "rocky", "almalinux", "ol")),
    ("arch", ("arch", "archlinux", "manjaro", "endeavouros")),
    ("suse", ("opensuse", "opensuse-tumbleweed", "opensuse-leap", "suse", "sles")),
    ("gentoo", ("gentoo", "funtoo")),
    ("alpine", ("alpine",)),
    ("nixos", ("nixos",)),
)

# Who built a rustc, from the suffix of its version string.
_BUILDERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Fedora "), "fedora"),
    (re.compile(r"^Red Hat "), "rhel"),
    (re.compile(r"^Arch Linux "), "arch"),
    (re.compile(r"^Alpine Linux "), "alpine"),
    (re.compile(r"^gentoo$"), "gentoo"),  # dev-lang/rust's config.toml: description = "gentoo"
    (re.compile(r"^built from a source tarball$"), "source-tarball"),  # Debian, Ubuntu, NixOS, ...
)
# Builders that are also a distribution family (their package manager can install their build).
_BUILDER_FAMILIES = ("fedora", "rhel", "arch", "gentoo", "alpine")
_NAMES = {
    "ubuntu": "Ubuntu",
    "debian": "Debian",
    "fedora": "Fedora",
    "rhel": "Red Hat Enterprise Linux",
    "arch": "Arch Linux",
    "suse": "openSUSE",
    "gentoo": "Gentoo",
    "alpine": "Alpine Linux",
    "nixos": "NixOS",
}


def _from_stdlib() -> Platform | None:
    """os-release through the standard library (Python 3.10+)."""
    import platform

    if not hasattr(platform, "freedesktop_os_release"):
        return None
    info = platform.freedesktop_os_release()
    return Platform(
        id=info.get("ID", "").lower() or "unknown",
        like=tuple(info.get("ID_LIKE", "").split()),
        version_id=info.get("VERSION_ID", ""),
        codename=info.get("VERSION_CODENAME", ""),
    )


def _from_distro(os_release_file: str = "") -> Platform:
    """os-release through ``distro`` (Python 3.9). Its ``id()`` renames some IDs (``ol`` to
    ``oracle``, ``opensuse-leap`` to ``opensuse``): the raw fields are read instead, so both
    paths see the same distribution."""
    import distro

    found = distro.LinuxDistribution(include_lsb=False, include_uname=False, os_release_file=os_release_file)
    return Platform(
        id=found.os_release_attr("id").lower() or "unknown",
        like=tuple(found.os_release_attr("id_like").split()),
        version_id=found.os_release_attr("version_id"),
        codename=found.os_release_attr("version_codename"),
    )


def detect_platform() -> Platform:
    """The distribution, from os-release, without starting a process.

    The standard library reads ``/etc/os-release`` since Python 3.10 (a third of the import
    time of ``distro``, measured: 9 against 25-30 ms); ``distro`` serves 3.9, told not to run
    ``lsb_release`` and ``uname`` (by default it may start eight processes for this).
    """
    try:
        return _from_stdlib() or _from_distro()
    except Exception:  # a missing or broken os-release must not break the hook
        return Platform(id="unknown")


def builder_of(version: RustcVersion) -> str | None:
    """``fedora``, ``rhel``, ``arch``, ``alpine``, ``source-tarball`` or None (no suffix)."""
    if version.suffix is None:
        return None
    for pattern, builder in _BUILDERS:
        if pattern.search(version.suffix):
            return builder
    return "other"


def _minor(version: RustcVersion) -> str:
    major, minor, _ = version.numbers
    return f"{major}.{minor}"


def _numbers(version: RustcVersion) -> str:
    return ".".join(str(part) for part in version.numbers)


def _suffix_package_version(version: RustcVersion) -> str:
    """``1.89.0-2.fc42`` from ``Fedora 1.89.0-2.fc42``, ``1:1.89.0-1`` from ``Arch Linux rust 1:1.89.0-1``."""
    suffix = version.suffix or ""
    return suffix.rsplit(" ", 1)[-1] if " " in suffix else version.release


def _official(version: RustcVersion, platform: Platform) -> list[str]:
    names = rustup_toolchain_names(version)
    if version.channel == "stable":
        toolchain = version.release
    elif len(names) == 2:
        following, commit_day = names
        toolchain = f"{following} (published the day after its commit date; if that is not it, {commit_day})"
    else:
        toolchain = f"{version.channel} of {version.date}"
    lines = [
        f"as root: rustup toolchain install {toolchain} --profile minimal "
        "(an official Rust build: rustup installs exactly this compiler; root's own rustup home is "
        "searched, a user's is not trusted; or set auto_install = rustup in /etc/dkms-rustc.conf)"
    ]
    if platform.family in ("debian", "ubuntu"):
        lines.append("rustup itself, if missing: apt install rustup (Debian 13+, Ubuntu 24.04+)")
    elif platform.family == "fedora":
        lines.append("rustup itself, if missing: dnf install rustup, then rustup-init")
    elif platform.family == "arch":
        lines.append("rustup itself, if missing: pacman -S rustup")
    return lines


def _ubuntu(version: RustcVersion) -> list[str]:
    minor, numbers = _minor(version), _numbers(version)
    return [
        f"apt install rustc-{minor} rust-{minor}-src",
        f"then `rustc-{minor} --version` must print exactly the kernel's string; dkms-rustc finds "
        f"/usr/bin/rustc-{minor} and passes RUST_LIB_SRC=/usr/src/rustc-{numbers}/library itself "
        f"(by hand: make RUSTC=rustc-{minor} RUST_LIB_SRC=/usr/src/rustc-{numbers}/library ...)",
    ]


_BOOKWORM_RUSTC = (1, 63, 0)  # bookworm's own rustc package; newer releases come as rustc-web


def _debian(version: RustcVersion, platform: Platform) -> list[str]:
    numbers = _numbers(version)
    bookworm = platform.codename == "bookworm" or platform.version_id == "12"
    if bookworm and version.numbers > _BOOKWORM_RUSTC:
        first = (
            "apt install rustc-web rust-web-src (on Debian 12 bookworm the newer rustc is packaged as "
            "rustc-web, which installs /usr/bin/rustc; bookworm's own rustc package is older): "
            f"`apt-cache policy rustc-web` must list {numbers}"
        )
    else:
        first = (
            "apt install rustc rust-src at the version whose `rustc --version` is exactly the kernel's: "
            f"`apt-cache policy rustc` must list {numbers}; then apt install rustc=<that version>"
        )
    return [first, f"its library sources land in /usr/src/rustc-{numbers}/library, passed as RUST_LIB_SRC"]


def _rpm(version: RustcVersion, family: str) -> list[str]:
    package = _suffix_package_version(version)
    return [
        f"dnf install rust-{package} rust-src-{package} "
        f"(or dnf downgrade rust-{package} rust-src-{package} when a newer one is installed)"
    ]


def _arch(version: RustcVersion) -> list[str]:
    package = _suffix_package_version(version)
    return [
        "pacman -S rust rust-src when the repositories still carry "
        f"{package}; otherwise downgrade from the Arch Linux Archive: pacman -U "
        f"rust-{package}-x86_64.pkg.tar.zst rust-src-{package}-any.pkg.tar.zst"
    ]


def _suse(version: RustcVersion) -> list[str]:
    minor = _minor(version)
    return [f"zypper install rust{minor} (openSUSE packages each Rust release as rust1.XX)"]


def _gentoo(version: RustcVersion) -> list[str]:
    numbers = _numbers(version)
    return [
        f"emerge --ask --noreplace dev-lang/rust:{numbers} (Gentoo installs every Rust release in its own "
        f"slot, /usr/lib/rust/{numbers}, beside the others; dkms-rustc finds it there, and its "
        "library sources with USE=rust-src)"
    ]


def _alpine(version: RustcVersion) -> list[str]:
    package = _suffix_package_version(version)
    return [f"apk add rust={package} rust-src={package}"]


def _nixos(version: RustcVersion) -> list[str]:
    return [
        "NixOS does not build modules with DKMS: build the module as a Nix derivation for "
        "boot.extraModulePackages against the kernel's own linuxPackages set, whose rustc is the "
        f"kernel's ({version.release} from the same nixpkgs revision)"
    ]


def install_rustc(expected_text: str, platform: Platform) -> list[str]:
    """Lines telling how to install exactly the compiler ``expected_text`` names."""
    version = parse_rustc_version(expected_text)
    if version is None:
        return [
            f"install the compiler that prints exactly {expected_text!r} for `rustc --version`, "
            "then run the build again (or name its directory with search = in /etc/dkms-rustc.conf)"
        ]
    if version.is_official_build:
        return _official(version, platform)
    builder = builder_of(version)
    family = platform.family
    suffix = f" ({version.suffix})" if version.suffix else " (no commit hash: a local build)"
    lines = [
        f"the kernel was built with a distribution's own build of rustc {version.release}{suffix}; "
        "only that distribution's package of exactly that version matches it: rustup's build of "
        f"{version.release} does not"
    ]
    builder_family = builder if builder in _BUILDER_FAMILIES else None
    if builder == "source-tarball" and family in ("fedora", "rhel", "arch", "gentoo", "alpine"):
        # Debian, Ubuntu and Nix builds say "built from a source tarball"; the suffix has no
        # package version to name for another distribution's package manager.
        lines.append(
            'this rustc was built the way Debian, Ubuntu and NixOS build theirs ("built from a source '
            f'tarball"), but this machine runs {_NAMES.get(family, platform.id)}: install the '
            "kernel's matching compiler from the distribution that built the kernel, or use a kernel "
            "built on this distribution"
        )
        return lines
    if builder_family is not None and builder_family != family:
        lines.append(
            f"this rustc was built by {_NAMES[builder_family]}, but this machine runs "
            f"{_NAMES.get(family, platform.id)}: install the kernel's matching compiler from "
            f"{_NAMES[builder_family]}, or use a kernel built on this distribution"
        )
        return lines
    if family == "ubuntu":
        lines += _ubuntu(version)
    elif family == "debian":
        lines += _debian(version, platform)
    elif family in ("fedora", "rhel"):
        lines += _rpm(version, family)
    elif family == "arch":
        lines += _arch(version)
    elif family == "suse":
        lines += _suse(version)
    elif family == "gentoo":
        lines += _gentoo(version)
    elif family == "alpine":
        lines += _alpine(version)
    elif family == "nixos":
        lines = _nixos(version)
    else:
        lines.append(f"install your distribution's rustc package of version {version.release}{suffix}")
    return lines


def install_metadata(kernelrelease: str | None, platform: Platform) -> list[str]:
    """How to get a kernel's ``rust/`` metadata, which out-of-tree Rust modules need."""
    release = kernelrelease or "<kernel release>"
    family = platform.family
    if family == "ubuntu":
        return [f"apt install linux-lib-rust-{release} (Ubuntu ships the kernel's Rust files separately)"]
    if family == "arch":
        return ["pacman -S linux-headers (Arch's headers package ships build/rust; reinstall it if missing)"]
    if family == "debian":
        return [
            f"Debian's linux-headers-{release} carries no Rust metadata (build/rust): out-of-tree Rust "
            "modules need a kernel whose headers include it"
        ]
    if family in ("fedora", "rhel"):
        return [f"dnf install kernel-devel-{release} (its build/rust must hold libkernel.rmeta)"]
    return [
        "install the package that provides the kernel's build/rust directory (libcore.rmeta, "
        "libkernel.rmeta, libmacros.so), or rebuild the headers package with it"
    ]


def install_headers(kernelrelease: str | None, platform: Platform) -> list[str]:
    release = kernelrelease or "$(uname -r)"
    family = platform.family
    if family in ("debian", "ubuntu"):
        return [f"apt install linux-headers-{release}"]
    if family in ("fedora", "rhel"):
        return [f"dnf install kernel-devel-{release}"]
    if family == "arch":
        return ["pacman -S linux-headers"]
    if family == "suse":
        return ["zypper install kernel-devel"]
    if family == "alpine":
        return ["apk add linux-lts-dev (or the -dev package of your kernel flavour)"]
    return [f"install the kernel headers (build tree) for {release}"]


def install_bindgen(wanted: str | None, minimum: str | None, platform: Platform) -> list[str]:
    version = wanted or minimum or "the kernel's version"
    family = platform.family
    if family == "ubuntu" and wanted:
        minor = ".".join(wanted.split(".")[:2])
        return [f"apt install bindgen-{minor}"]
    if family in ("debian", "ubuntu"):
        return [f"apt install bindgen (version {version} or newer)"]
    if family in ("fedora", "rhel"):
        return ["dnf install bindgen-cli"]
    if family == "arch":
        return ["pacman -S rust-bindgen"]
    if family in ("suse", "alpine"):
        return [f"{'zypper install' if family == 'suse' else 'apk add'} rust-bindgen"]
    return [f"as root: cargo install --locked --root /usr/local bindgen-cli@{version}"]


def root_owned_toolchain(
    untrusted: Sequence[tuple[Path, Path | None, str]], kind: str = "rustc"
) -> list[str]:
    """How to make a toolchain that root refused to run usable, for each ``(binary, sysroot, why)``.

    Root runs only what only root can change: otherwise whoever owns the file or a directory
    above it could replace it with anything and have it run as root on the next kernel upgrade.
    """
    lines: list[str] = []
    for binary, sysroot, why in untrusted:
        if why.startswith(f"{binary} "):
            why = "it" + why[len(str(binary)) :]
        lines.append(
            f"{binary} is not run as root because {why}: whoever can change it could make root run "
            "anything. Install a root-owned toolchain instead"
        )
        if kind == "rustc" and sysroot is not None:
            target = f"/opt/dkms-rustc/{sysroot.name}"
            lines.append(
                f"as root: mkdir -p /opt/dkms-rustc && cp -a {sysroot} {target} && "
                f"chown -R root:root {target} && chmod -R go-w {target}, then add "
                f"'search = {target}' to /etc/dkms-rustc.conf (or install the same version with "
                "root's own rustup or the distribution's package)"
            )
        else:
            lines.append(
                f"as root: install -o root -g root -m 755 {binary} /usr/local/bin/{binary.name} "
                "(or install the distribution's package)"
            )
    if untrusted:
        lines.append(
            "only if that user may run code as root anyway: trust the directory explicitly with "
            "'trusted_dir = DIR' in /etc/dkms-rustc.conf (never from a module's dkms.conf or command line)"
        )
    return lines


def keep_toolchain(expected_text: str, previous: str | None, platform: Platform) -> list[str]:
    """How to get back, and keep, the rustc a kernel needs after a package transaction removed
    or replaced it (a rolling upgrade): reinstall exactly that build, then pin it."""
    version = parse_rustc_version(expected_text)
    where = f" (it was {previous})" if previous else ""
    if version is None:
        return [f"reinstall the compiler that prints exactly {expected_text!r}{where} and keep it installed"]
    if version.is_official_build:
        return [
            f"an official Rust build{where}: keep it beside newer ones with rustup, which installs "
            "toolchains side by side: " + _official(version, platform)[0]
        ]
    family = platform.family
    builder = builder_of(version)
    foreign = builder == "source-tarball" and family not in ("debian", "ubuntu")
    if foreign or (builder in _BUILDER_FAMILIES and builder != family):
        return install_rustc(expected_text, platform)  # built elsewhere: nothing here to keep
    package = _suffix_package_version(version)
    numbers, minor = _numbers(version), _minor(version)
    if family == "debian":
        return [
            f"reinstall the package that provided it{where} at the kernel's version and hold it: "
            f"dpkg -S <that path> names the package, then apt install <package>=<version of {numbers}> "
            "and apt-mark hold <package> (apt-mark unhold it once the kernel is rebuilt)"
        ]
    if family == "ubuntu":
        return [
            f"apt install rustc-{minor} rust-{minor}-src: Ubuntu installs these versioned packages "
            "side by side, so a newer default rustc does not remove it"
        ]
    if family == "arch":
        return [
            "downgrade from pacman's cache: pacman -U "
            f"/var/cache/pacman/pkg/rust-{package}-x86_64.pkg.tar.zst "
            f"/var/cache/pacman/pkg/rust-src-{package}-any.pkg.tar.zst (else the Arch Linux Archive), then "
            "keep it with 'IgnorePkg = rust rust-src' in /etc/pacman.conf until the kernel is rebuilt "
            "with the new rustc"
        ]
    if family in ("fedora", "rhel"):
        return [
            f"dnf downgrade rust-{package} rust-src-{package}, then dnf versionlock add rust rust-src "
            "(the versionlock plugin) until the kernel is rebuilt with the new rustc"
        ]
    if family == "suse":
        return [
            f"zypper install --oldpackage rust{minor}, then zypper addlock rust{minor} (openSUSE packages "
            "each Rust release as rust1.XX)"
        ]
    if family == "gentoo":
        return [
            f"emerge --ask --noreplace dev-lang/rust:{numbers} puts the slot in @world, so "
            "emerge --depclean no longer removes it"
        ]
    return [*install_rustc(expected_text, platform), "then keep that package from being upgraded"]
