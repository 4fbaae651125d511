"""Exact fixes, worded for the administrator's distribution.

Which compiler can satisfy a kernel depends on who built the kernel's rustc: an official
release build (what rustup installs) can be installed with rustup; a distribution build
(a suffix such as ``(built from a source tarball)`` or ``(Fedora 1.89.0-2.fc42)``) can only
be matched by that distribution's own package of exactly that version.
"""

from __future__ import annotations

from dataclasses import dataclass

from dkms_rustc.versions import RustcVersion, parse_rustc_version


@dataclass(frozen=True)
class Platform:
    """The running distribution, as the ``distro`` package reports it."""

    id: str  # "debian", "ubuntu", "fedora", "arch", ...
    like: tuple[str, ...] = ()
    version_id: str = ""
    codename: str = ""

    def is_(self, *names: str) -> bool:
        return self.id in names or any(name in self.like for name in names)


def detect_platform() -> Platform:
    try:
        import distro

        return Platform(
            id=distro.id() or "unknown",
            like=tuple(distro.like().split()),
            version_id=distro.version(),
            codename=distro.codename(),
        )
    except Exception:  # distro reads /etc/os-release; a broken one must not break the hook
        return Platform(id="unknown")


def _minor(version: RustcVersion) -> str:
    major, minor, _ = version.numbers
    return f"{major}.{minor}"


def install_rustc(expected_text: str, platform: Platform) -> list[str]:
    """Lines telling how to install exactly the compiler ``expected_text`` names."""
    version = parse_rustc_version(expected_text)
    if version is None:
        return [
            f"install the compiler that prints exactly {expected_text!r} for `rustc --version`, "
            "then run the build again (or name its directory with search = in /etc/dkms-rustc.conf)"
        ]
    release = version.release
    if version.is_official_build:
        if version.channel == "stable":
            toolchain = release
        elif version.channel == "nightly" and version.date:
            toolchain = f"nightly-{version.date} (or the nightly of the following day)"
        else:
            toolchain = f"{version.channel} of {version.date}"
        return [
            f"as root: rustup toolchain install {toolchain} --profile minimal "
            f"(an official build; root's own rustup home is searched, a user's is not trusted)"
        ]
    suffix = version.suffix or ""
    lines = [
        f"the kernel was built with a distribution's own build of rustc {release} ({suffix or 'no commit'}); "
        "only that distribution's package of that exact version matches, rustup's build does not"
    ]
    if platform.is_("ubuntu"):
        lines.append(
            f"apt install rustc-{_minor(version)} rust-{_minor(version)}-src "
            f"(then check that `rustc-{_minor(version)} --version` prints exactly the kernel's string)"
        )
    elif platform.is_("debian"):
        lines.append(
            f"apt install rustc (or rustc-web on bookworm) at version {release}: "
            "check `apt-cache policy rustc rustc-web`; the kernel package's build dependencies name it"
        )
    elif platform.is_("fedora", "rhel", "centos"):
        package = suffix.split(" ", 1)[1] if " " in suffix else release
        lines.append(f"dnf install rust-{package}")
    elif platform.is_("arch"):
        lines.append(
            f"pacman -S rust (the kernel needs {suffix or release}; downgrade from the archive if newer)"
        )
    elif platform.is_("opensuse", "suse", "opensuse-tumbleweed", "opensuse-leap"):
        lines.append(f"zypper install rust{_minor(version).replace('.', '')}")
    elif platform.is_("alpine"):
        lines.append(f"apk add rust={release}-r0 (the release number the kernel names: {suffix})")
    elif platform.is_("nixos"):
        lines.append("build the module with the rustc of the same nixpkgs revision as the kernel")
    else:
        lines.append(f"install your distribution's rustc package of version {release} ({suffix})")
    return lines


def install_metadata(kernelrelease: str | None, platform: Platform) -> list[str]:
    """How to get a kernel's ``rust/`` metadata, which out-of-tree Rust modules need."""
    release = kernelrelease or "<kernel release>"
    if platform.is_("ubuntu"):
        return [f"apt install linux-lib-rust-{release}"]
    if platform.is_("arch"):
        return ["pacman -S linux-headers (Arch's headers package ships build/rust)"]
    if platform.is_("debian"):
        return [
            "Debian's linux-headers packages ship no Rust metadata: use a kernel whose headers include "
            "build/rust (for example one you build yourself with `make` and install with its rust/ directory)"
        ]
    return [
        "install the package that provides the kernel's build/rust directory (libcore.rmeta, "
        "libkernel.rmeta, libmacros.so), or rebuild the headers package with it"
    ]


def install_headers(kernelrelease: str | None, platform: Platform) -> list[str]:
    release = kernelrelease or "$(uname -r)"
    if platform.is_("debian", "ubuntu"):
        return [f"apt install linux-headers-{release}"]
    if platform.is_("fedora", "rhel", "centos"):
        return [f"dnf install kernel-devel-{release}"]
    if platform.is_("arch"):
        return ["pacman -S linux-headers"]
    if platform.is_("opensuse", "suse"):
        return ["zypper install kernel-devel"]
    return [f"install the kernel headers (build tree) for {release}"]


def install_bindgen(wanted: str | None, minimum: str | None, platform: Platform) -> list[str]:
    version = wanted or minimum or "the kernel's version"
    if platform.is_("ubuntu") and wanted:
        minor = ".".join(wanted.split(".")[:2])
        return [f"apt install bindgen-{minor}"]
    if platform.is_("debian", "ubuntu"):
        return [f"apt install bindgen (version {version} or newer)"]
    if platform.is_("fedora", "rhel", "centos"):
        return ["dnf install bindgen-cli"]
    if platform.is_("arch"):
        return ["pacman -S rust-bindgen"]
    return [f"as root: cargo install --locked --root /usr/local bindgen-cli@{version}"]
