# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared pytest fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def kernel_trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Ready "rust" kernel build trees (tests/kerneltree.py), one per real toolchain found.

    Keyed like find_real_toolchains(): "stable", "nightly", "debian"...; built once
    per session (about a quarter to two seconds each).  A toolchain that is not on
    the machine simply has no entry: tests that need it skip.
    """
    import kerneltree

    base = tmp_path_factory.mktemp("kernel-trees")
    return {
        name: kerneltree.make_kernel_tree(base / name, toolchain)
        for name, toolchain in kerneltree.find_real_toolchains().items()
    }
