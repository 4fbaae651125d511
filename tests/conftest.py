# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared pytest fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def no_system_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No /etc/dkms-rustc.conf for in-process runs: results must not depend on the machine's."""
    from dkms_rustc import config

    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "no-system.conf")


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On CI (CI=true) a skipped test is a failure: CI installs everything the tests need, so a
    skip there means a prerequisite silently went missing (a toolchain, dkms, root)."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped on CI, where nothing may be skipped: {reason}"


_DKMS_RAN = pytest.StashKey[bool]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[_DKMS_RAN] = any(item.get_closest_marker("dkms") for item in items)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    """After any run with DKMS tests: which DKMS versions ran them, and, loudly, which upstream
    versions are not provided on this machine (tests/dkms_harness.py: not a skip, not a pass)."""
    if not config.stash.get(_DKMS_RAN, False):
        return
    from dkms_harness import versions_report

    lines = versions_report()
    missing = [line for line in lines if "NOT PROVIDED" in line]
    terminalreporter.section("DKMS versions", red=bool(missing), green=not missing, bold=bool(missing))
    for line in lines:
        terminalreporter.line(line, red="NOT PROVIDED" in line)
