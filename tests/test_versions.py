"""Version strings as real compilers and distributions print them (FACTS section 4)."""

from __future__ import annotations

import pytest

from dkms_rustc.versions import (
    kbuild_version_text,
    parse_bindgen_version,
    parse_rustc_version,
)


@pytest.mark.parametrize(
    ("text", "release", "commit", "suffix", "official", "channel"),
    [
        ("rustc 1.95.0 (59807616e 2026-04-14)", "1.95.0", "59807616e", None, True, "stable"),
        ("rustc 1.97.0-nightly (e50aa6fba 2026-05-19)", "1.97.0-nightly", "e50aa6fba", None, True, "nightly"),
        (
            "rustc 1.97.1 (8bab26f4f 2026-07-14) (built from a source tarball)",
            "1.97.1",
            "8bab26f4f",
            "built from a source tarball",
            False,
            "stable",
        ),
        (
            "rustc 1.89.0 (29483883e 2025-08-04) (Fedora 1.89.0-2.fc42)",
            "1.89.0",
            "29483883e",
            "Fedora 1.89.0-2.fc42",
            False,
            "stable",
        ),
        (
            "rustc 1.89.0 (29483883e 2025-08-04) (Arch Linux rust 1:1.89.0-1)",
            "1.89.0",
            "29483883e",
            "Arch Linux rust 1:1.89.0-1",
            False,
            "stable",
        ),
        ("rustc 1.90.0-beta.3 (0123456ab 2025-08-20)", "1.90.0-beta.3", "0123456ab", None, True, "beta"),
        ("rustc 1.81.0", "1.81.0", None, None, False, "stable"),
    ],
)
def test_parse_rustc_version(
    text: str, release: str, commit: str | None, suffix: str | None, official: bool, channel: str
) -> None:
    version = parse_rustc_version(text)
    assert version is not None
    assert version.text == text
    assert version.release == release
    assert version.commit == commit
    assert version.suffix == suffix
    assert version.is_official_build is official
    assert version.channel == channel


@pytest.mark.parametrize(
    "text", ["", "rustc", "cargo 1.95.0 (f2d3ce0bd 2026-03-21)", "rustc version 1.95.0", "rustc 1.95", "n"]
)
def test_parse_rustc_version_rejects(text: str) -> None:
    assert parse_rustc_version(text) is None


def test_kbuild_removes_every_hash() -> None:
    # Linux 6.12+ strips '#' from CONFIG_RUSTC_VERSION_TEXT (it would start a comment).
    assert (
        kbuild_version_text("rustc 1.0.0 (#abc 2020-01-01) (#1 build)")
        == "rustc 1.0.0 (abc 2020-01-01) (1 build)"
    )


@pytest.mark.parametrize(
    ("text", "release"),
    [("bindgen 0.72.1", "0.72.1"), ("bindgen 0.71.1\n", "0.71.1"), ("bindgen-cli 0.72.1", None), ("", None)],
)
def test_parse_bindgen_version(text: str, release: str | None) -> None:
    assert parse_bindgen_version(text) == release
