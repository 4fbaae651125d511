"""Who may choose what root executes. Ownership tests need root to create foreign-owned files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dkms_rustc.trust import untrusted_reason

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create files owned by others")


def _binary(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "rustc"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def root_dir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    return tmp_path


def test_root_owned_binary_is_trusted(root_dir: Path) -> None:
    assert untrusted_reason(_binary(root_dir / "bin"), euid=0) is None


@needs_root
def test_file_owned_by_a_user_is_not(root_dir: Path) -> None:
    path = _binary(root_dir / "bin")
    os.chown(path, 1000, 1000)
    assert "is owned by uid 1000" in (untrusted_reason(path, euid=0) or "")


@needs_root
def test_directory_owned_by_a_user_is_not(root_dir: Path) -> None:
    path = _binary(root_dir / "home" / "bin")
    os.chown(root_dir / "home", 1000, 1000)
    assert f"{root_dir / 'home'} is owned by uid 1000" in (untrusted_reason(path, euid=0) or "")


def test_world_writable_file_is_not(root_dir: Path) -> None:
    path = _binary(root_dir / "bin")
    path.chmod(0o777)
    assert "writable by every user" in (untrusted_reason(path, euid=0) or "")


def test_group_writable_directory_is_not(root_dir: Path) -> None:
    path = _binary(root_dir / "bin")
    os.chown(root_dir / "bin", 0, 100)
    (root_dir / "bin").chmod(0o775)
    assert "writable by group 100" in (untrusted_reason(path, euid=0) or "")


def test_sticky_world_writable_directory_is_allowed(root_dir: Path) -> None:
    path = _binary(root_dir / "shared" / "bin")
    (root_dir / "shared").chmod(0o1777)
    assert untrusted_reason(path, euid=0) is None


@needs_root
def test_symlink_is_judged_by_its_target(root_dir: Path) -> None:
    user_dir = root_dir / "user"
    target = _binary(user_dir / "bin")
    os.chown(target, 1000, 1000)
    link_dir = root_dir / "usr" / "bin"
    link_dir.mkdir(parents=True)
    (link_dir / "rustc").symlink_to(target)
    assert "owned by uid 1000" in (untrusted_reason(link_dir / "rustc", euid=0) or "")


@needs_root
def test_trusted_dir_from_the_admin_overrides(root_dir: Path) -> None:
    path = _binary(root_dir / "home" / "bin")
    os.chown(root_dir / "home", 1000, 1000)
    assert untrusted_reason(path, euid=0, trusted_dirs=[root_dir / "home"]) is None


def test_a_user_trusts_their_own_files(root_dir: Path) -> None:
    path = _binary(root_dir / "bin")
    st = path.stat()
    assert untrusted_reason(path, euid=st.st_uid) is None


def test_missing_file() -> None:
    assert "cannot be examined" in (untrusted_reason(Path("/nonexistent/rustc"), euid=0) or "")
