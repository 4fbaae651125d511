# SPDX-License-Identifier: GPL-2.0-or-later
"""Fixes and discovery rules per distribution family (pure functions; the layouts themselves,
with real compilers, are in test_layouts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dkms_rustc import hints
from dkms_rustc.toolchains import CandidateKind, Found, discover, refusal
from dkms_rustc.versions import parse_rustc_version

ARCH = "rustc 1.89.0 (29483883e 2025-08-04) (Arch Linux rust 1:1.89.0-1)"
FEDORA = "rustc 1.89.0 (29483883e 2025-08-04) (Fedora 1.89.0-2.fc42)"
GENTOO = "rustc 1.85.1 (4eb161250 2025-03-15) (gentoo)"
DEBIAN = "rustc 1.96.0 (ac68faa20 2026-05-25) (built from a source tarball)"
OFFICIAL = "rustc 1.95.0 (59807616e 2026-04-14)"


def _on(family_id: str, like: tuple[str, ...] = ()) -> hints.Platform:
    return hints.Platform(id=family_id, like=like)


@pytest.mark.parametrize(
    ("platform", "family"),
    [(_on("gentoo"), "gentoo"), (_on("funtoo"), "gentoo"), (_on("cachyos", ("arch",)), "arch")],
)
def test_families(platform: hints.Platform, family: str) -> None:
    assert platform.family == family


def test_gentoo_builds_are_recognised_and_fixed_with_their_slot() -> None:
    version = parse_rustc_version(GENTOO)
    assert version is not None and hints.builder_of(version) == "gentoo"
    lines = hints.install_rustc(GENTOO, _on("gentoo"))
    assert "emerge --ask --noreplace dev-lang/rust:1.85.1" in lines[-1]
    assert "/usr/lib/rust/1.85.1" in lines[-1]
    elsewhere = hints.install_rustc(GENTOO, _on("debian"))
    assert "built by Gentoo, but this machine runs Debian" in elsewhere[-1]


@pytest.mark.parametrize(
    ("text", "family", "expected"),
    [
        (ARCH, "arch", "pacman -U /var/cache/pacman/pkg/rust-1:1.89.0-1-x86_64.pkg.tar.zst"),
        (ARCH, "arch", "IgnorePkg = rust rust-src"),
        (FEDORA, "fedora", "dnf downgrade rust-1.89.0-2.fc42 rust-src-1.89.0-2.fc42"),
        (FEDORA, "fedora", "dnf versionlock add rust rust-src"),
        (GENTOO, "gentoo", "emerge --ask --noreplace dev-lang/rust:1.85.1 puts the slot in @world"),
        (DEBIAN, "debian", "apt-mark hold"),
        (DEBIAN, "ubuntu", "apt install rustc-1.96 rust-1.96-src"),
        (OFFICIAL, "arch", "rustup toolchain install 1.95.0 --profile minimal"),
    ],
)
def test_keep_toolchain_per_family(text: str, family: str, expected: str) -> None:
    lines = hints.keep_toolchain(text, "/usr/bin/rustc", _on(family))
    assert any(expected in line for line in lines), lines


def test_keep_toolchain_for_another_distributions_build_says_whose_it_is() -> None:
    lines = hints.keep_toolchain(ARCH, "/usr/bin/rustc", _on("fedora"))
    assert any("built by Arch Linux, but this machine runs Fedora" in line for line in lines)
    lines = hints.keep_toolchain(DEBIAN, None, _on("arch"))
    assert any("but this machine runs Arch Linux" in line for line in lines)


def test_a_nix_store_compiler_is_refused_with_the_reason() -> None:
    store = Path("/nix/store/0a1b2c3d-rustc-wrapper-1.96.0/bin/rustc")
    reason = refusal(Found(CandidateKind.RUSTC, store, store, ("PATH",)))
    assert reason is not None and "Nix derivations" in reason and "boot.extraModulePackages" in reason
    usr = Path("/usr/bin/rustc")
    assert refusal(Found(CandidateKind.RUSTC, usr, usr, ("PATH",))) is None


def _fake(path: Path) -> None:
    """Discovery only lists files: an executable placeholder is enough here."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)


def test_a_search_directory_holding_toolchain_directories(tmp_path: Path) -> None:
    opt = tmp_path / "opt"
    for name in ("llvm-21.1.8-rust-1.92.0-x86_64", "llvm-22.1.2-rust-1.95.0-x86_64"):
        _fake(opt / name / "bin" / "rustc")
        _fake(opt / name / "bin" / "bindgen")
    (opt / "unrelated").mkdir()
    found = discover(search=[opt], use_defaults=False)
    assert [str(tool.path.relative_to(opt)) for tool in found.rustcs] == [
        "llvm-21.1.8-rust-1.92.0-x86_64/bin/rustc",
        "llvm-22.1.2-rust-1.95.0-x86_64/bin/rustc",
    ]
    assert len(found.bindgens) == 2


def test_a_bin_directory_with_only_bindgen_is_still_a_bin_directory(tmp_path: Path) -> None:
    _fake(tmp_path / "tools" / "bindgen")
    _fake(tmp_path / "tools" / "sub" / "bin" / "rustc")
    found = discover(search=[tmp_path / "tools"], use_defaults=False)
    assert [tool.path for tool in found.bindgens] == [tmp_path / "tools" / "bindgen"]
    assert found.rustcs == []  # the directory itself was the answer: no scan below it
