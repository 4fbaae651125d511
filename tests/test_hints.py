# SPDX-License-Identifier: GPL-2.0-or-later
"""The fixes printed per distribution: table-driven, one row per (kernel's rustc, platform)."""

from __future__ import annotations

import pytest

from dkms_rustc import hints
from dkms_rustc.hints import Platform

DEBIAN = Platform("debian", (), "13", "trixie")
BOOKWORM = Platform("debian", (), "12", "bookworm")
UBUNTU = Platform("ubuntu", ("debian",), "24.04", "noble")
MINT = Platform("linuxmint", ("ubuntu", "debian"), "22", "wilma")
FEDORA = Platform("fedora", (), "42")
RHEL = Platform("rhel", ("fedora",), "10.0")
ROCKY = Platform("rocky", ("rhel", "centos", "fedora"), "10.0")
ARCH = Platform("arch")
SUSE = Platform("opensuse-tumbleweed", ("opensuse", "suse"))
ALPINE = Platform("alpine", (), "3.22")
NIXOS = Platform("nixos")
UNKNOWN = Platform("unknown")

STABLE = "rustc 1.95.0 (59807616e 2026-04-14)"
NIGHTLY = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)"
TARBALL = "rustc 1.97.1 (8bab26f4f 2026-07-14) (built from a source tarball)"
BOOKWORM_OWN = "rustc 1.63.0 (4b91a6ea7 2022-08-08) (built from a source tarball)"
TARBALL_OLD = "rustc 1.75.0 (82e1608df 2023-12-21) (built from a source tarball)"
FEDORA_RUSTC = "rustc 1.89.0 (29483883e 2025-08-04) (Fedora 1.89.0-2.fc42)"
RHEL_RUSTC = "rustc 1.92.0 (aaaaaaaaa 2025-12-01) (Red Hat 1.92.0-1.el10)"
ARCH_RUSTC = "rustc 1.89.0 (29483883e 2025-08-04) (Arch Linux rust 1:1.89.0-1)"
ALPINE_RUSTC = "rustc 1.96.1 (bbbbbbbbb 2026-06-01) (Alpine Linux Rust 1.96.1-r0)"
BARE = "rustc 1.81.0"

DISTRO_ONLY = "only that distribution's package of exactly that version matches"


@pytest.mark.parametrize(
    ("rustc", "platform", "expected", "absent"),
    [
        # official builds: rustup, and only for them
        (
            STABLE,
            DEBIAN,
            ["rustup toolchain install 1.95.0 --profile minimal", "apt install rustup"],
            [DISTRO_ONLY],
        ),
        (STABLE, FEDORA, ["rustup toolchain install 1.95.0 --profile minimal", "dnf install rustup"], []),
        (STABLE, UNKNOWN, ["rustup toolchain install 1.95.0 --profile minimal", "auto_install = rustup"], []),
        (
            NIGHTLY,
            ARCH,
            ["rustup toolchain install nightly-2026-05-20", "nightly-2026-05-19", "pacman -S rustup"],
            [],
        ),
        # distribution builds: that distribution's package, never rustup
        (
            TARBALL_OLD,
            UBUNTU,
            [
                DISTRO_ONLY,
                "apt install rustc-1.75 rust-1.75-src",
                "RUST_LIB_SRC=/usr/src/rustc-1.75.0/library",
                "RUSTC=rustc-1.75",
            ],
            ["rustup toolchain install"],
        ),
        (TARBALL_OLD, MINT, ["apt install rustc-1.75 rust-1.75-src"], ["rustup toolchain install"]),
        (
            TARBALL,
            DEBIAN,
            [DISTRO_ONLY, "apt install rustc rust-src", "1.97.1", "/usr/src/rustc-1.97.1/library"],
            ["rustup toolchain install", "rustc-web"],
        ),
        (
            TARBALL,
            BOOKWORM,
            ["apt install rustc-web rust-web-src", "`apt-cache policy rustc-web` must list 1.97.1"],
            ["rustup toolchain install", "apt install rustc rust-src"],
        ),
        # bookworm's own (old) rustc is the rustc package
        (BOOKWORM_OWN, BOOKWORM, ["apt install rustc rust-src", "1.63.0"], ["rustc-web"]),
        (
            FEDORA_RUSTC,
            FEDORA,
            [DISTRO_ONLY, "dnf install rust-1.89.0-2.fc42 rust-src-1.89.0-2.fc42"],
            ["rustup toolchain install"],
        ),
        (RHEL_RUSTC, RHEL, ["dnf install rust-1.92.0-1.el10 rust-src-1.92.0-1.el10"], ["rustup toolchain"]),
        (RHEL_RUSTC, ROCKY, ["dnf install rust-1.92.0-1.el10"], ["rustup toolchain"]),
        (
            ARCH_RUSTC,
            ARCH,
            ["pacman -S rust rust-src", "rust-1:1.89.0-1-x86_64.pkg.tar.zst"],
            ["rustup toolchain"],
        ),
        (ALPINE_RUSTC, ALPINE, ["apk add rust=1.96.1-r0 rust-src=1.96.1-r0"], ["rustup toolchain"]),
        (TARBALL, SUSE, [DISTRO_ONLY, "zypper install rust1.97"], ["rustup toolchain"]),
        (TARBALL, NIXOS, ["does not build modules with DKMS", "linuxPackages"], ["rustup toolchain"]),
        (
            TARBALL,
            UNKNOWN,
            [DISTRO_ONLY, "your distribution's rustc package of version 1.97.1"],
            ["rustup toolchain"],
        ),
        # a kernel built elsewhere: say whose package it needs
        (
            FEDORA_RUSTC,
            DEBIAN,
            ["built by Fedora, but this machine runs Debian"],
            ["apt install", "rustup toolchain"],
        ),
        (ARCH_RUSTC, UBUNTU, ["built by Arch Linux, but this machine runs Ubuntu"], ["apt install"]),
        (BARE, DEBIAN, ["no commit hash: a local build"], ["rustup toolchain"]),
        # Debian's/Ubuntu's/Nix's build on a machine whose packages carry versions in the suffix
        (TARBALL, FEDORA, ["built the way Debian, Ubuntu and NixOS", "runs Fedora"], ["tarball rust-src"]),
        (TARBALL, ALPINE, ["built the way Debian, Ubuntu and NixOS"], ["rust=tarball"]),
        (TARBALL, ARCH, ["runs Arch Linux"], ["rust-tarball"]),
    ],
)
def test_install_rustc(rustc: str, platform: Platform, expected: list[str], absent: list[str]) -> None:
    text = "\n".join(hints.install_rustc(rustc, platform))
    for part in expected:
        assert part in text
    for part in absent:
        assert part not in text


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        (UBUNTU, "apt install linux-lib-rust-6.8.0-31-generic"),
        (MINT, "apt install linux-lib-rust-6.8.0-31-generic"),
        (DEBIAN, "linux-headers-6.8.0-31-generic carries no Rust metadata"),
        (ARCH, "pacman -S linux-headers"),
        (FEDORA, "dnf install kernel-devel-6.8.0-31-generic"),
        (UNKNOWN, "build/rust directory"),
    ],
)
def test_install_metadata(platform: Platform, expected: str) -> None:
    assert expected in "\n".join(hints.install_metadata("6.8.0-31-generic", platform))


@pytest.mark.parametrize(
    ("platform", "wanted", "expected"),
    [
        (UBUNTU, "0.65.1", "apt install bindgen-0.65"),
        (DEBIAN, "0.72.1", "apt install bindgen (version 0.72.1 or newer)"),
        (FEDORA, None, "dnf install bindgen-cli"),
        (ARCH, None, "pacman -S rust-bindgen"),
        (SUSE, None, "zypper install rust-bindgen"),
        (ALPINE, None, "apk add rust-bindgen"),
        (UNKNOWN, "0.72.1", "cargo install --locked --root /usr/local bindgen-cli@0.72.1"),
    ],
)
def test_install_bindgen(platform: Platform, wanted: str | None, expected: str) -> None:
    assert expected in "\n".join(hints.install_bindgen(wanted, "0.71.1", platform))


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        (UBUNTU, "apt install linux-headers-7.2.0-1"),
        (RHEL, "dnf install kernel-devel-7.2.0-1"),
        (SUSE, "zypper install kernel-devel"),
        (ALPINE, "apk add linux-lts-dev"),
    ],
)
def test_install_headers(platform: Platform, expected: str) -> None:
    assert expected in hints.install_headers("7.2.0-1", platform)[0]


@pytest.mark.parametrize(
    ("platform", "family"),
    [
        (UBUNTU, "ubuntu"),
        (MINT, "ubuntu"),
        (ROCKY, "rhel"),
        (RHEL, "rhel"),
        (SUSE, "suse"),
        (UNKNOWN, "unknown"),
    ],
)
def test_family(platform: Platform, family: str) -> None:
    assert platform.family == family
