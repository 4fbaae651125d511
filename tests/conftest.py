# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared pytest fixtures, and the helpers many test modules use (``from conftest import ...``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Variables a caller's environment may hold that would change an in-process run's decision.
NOT_FROM_THE_CALLER = (
    "kernelver",
    "module",
    "module_version",
    "RUSTUP_HOME",
    "CARGO_HOME",
    "SUDO_USER",
    "RUSTUP_TOOLCHAIN",
    "RUSTC",
    "DKMS_RUSTC_DEBUG",
)


def isolate(monkeypatch: pytest.MonkeyPatch, base: Path) -> None:
    """In-process runs read no /etc/dkms-rustc.conf (results must not depend on the
    machine's) and none of the caller's DKMS or rustup variables."""
    from dkms_rustc import config

    monkeypatch.setattr(config, "SYSTEM_CONFIG", base / "no-system.conf")
    for name in NOT_FROM_THE_CALLER:
        monkeypatch.delenv(name, raising=False)


def write_config(base: Path, extra: str = "", *, search_defaults: bool = False, cache: bool = True) -> Path:
    """``base/test.conf``: a private cache in ``base`` (unless ``cache`` is false), searching
    only where a test says (unless ``search_defaults``), then ``extra``."""
    path = base / "test.conf"
    lines = [f"cache_dir = {base / 'cache'}\n"] if cache else []
    lines.append(f"search_defaults = {'yes' if search_defaults else 'no'}\n")
    path.write_text("".join(lines) + extra)
    return path


def system_config(base: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    """``base/etc/dkms-rustc.conf`` holding ``text``, read as the system configuration (where
    alone ``trusted_dir``, ``auto_install`` and the like count) for this test."""
    from dkms_rustc import config

    path = base / "etc" / "dkms-rustc.conf"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    monkeypatch.setattr(config, "SYSTEM_CONFIG", path)
    return path


def check_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """``dkms-rustc check --json ARGV`` in this process: its exit status and its JSON."""
    from dkms_rustc.cli import main

    code = main(["check", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def messages_text(data: dict[str, Any]) -> str:
    """The human lines of a ``--json`` answer, as one text."""
    return "\n".join(data["messages"])


@pytest.fixture
def public_base(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 0755 directory in /tmp (planted.public_base), isolated (:func:`isolate`): what a user
    plants there is public, as in a Debian /home/<user>; pytest's tmp_path is private."""
    import planted

    with planted.public_base() as path:
        isolate(monkeypatch, path)
        yield path


@pytest.fixture
def no_system_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """See :func:`isolate`."""
    isolate(monkeypatch, tmp_path)


@pytest.fixture(scope="session")
def kernel_trees(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, Path]:
    """Ready "rust" kernel build trees (tests/kerneltree.py), one per real toolchain found.

    Keyed like find_real_toolchains(): "stable", "nightly", "debian"...; each tree is made
    the first time a test asks for it (about a quarter to two seconds each) and kept for the
    session. A toolchain that is not on the machine skips only the tests asking for its tree
    (on CI: fails them); one whose tree cannot be made fails only those tests.
    """
    import kerneltree

    return kerneltree.KernelTrees(tmp_path_factory.mktemp("kernel-trees"))


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
