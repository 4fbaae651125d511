# SPDX-License-Identifier: GPL-2.0-or-later
"""``syslog = yes``: the decision lines also go to syslog (the stdlib module, imported lazily)."""

from __future__ import annotations

import sys
import syslog
from pathlib import Path

import pytest

from conftest import isolate
from dkms_rustc import logsink
from dkms_rustc.cli import main
from dkms_rustc.exitcodes import ExitCode


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    sent: list[tuple[int, str]] = []
    monkeypatch.setattr(syslog, "openlog", lambda *args, **kwargs: None)
    monkeypatch.setattr(syslog, "closelog", lambda: None)
    monkeypatch.setattr(syslog, "syslog", lambda priority, message: sent.append((priority, message)))
    return sent


@pytest.mark.parametrize("enabled", [True, False])
def test_pre_build_logs_to_syslog_only_when_configured(
    enabled: bool, captured: list[tuple[int, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate(monkeypatch, tmp_path)
    conf = tmp_path / "c.conf"
    conf.write_text(f"cache_dir = {tmp_path / 'cache'}\nsyslog = {'yes' if enabled else 'no'}\n")
    code = main(
        ["pre-build", "--kernel-dir", str(tmp_path / "missing"), "--build-dir", str(tmp_path),
         "--config", str(conf), "--module", "hello"]
    )  # fmt: skip
    assert code == ExitCode.ERROR
    if not enabled:
        assert captured == []
        return
    assert captured[0][0] == syslog.LOG_ERR
    assert captured[0][1].startswith("module hello: ERROR: the kernel build tree")


def test_a_broken_syslog_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise OSError("no socket")

    monkeypatch.setattr(syslog, "openlog", broken)
    logsink.send(["OK: x"], failed=False)


def test_syslog_is_not_imported_on_the_pre_build_path_when_off() -> None:
    import subprocess

    code = (
        "import sys; from dkms_rustc.cli import main; "
        "main(['pre-build', '--kernel-dir', '/nonexistent', '--build-dir', '/tmp', '--no-cache']); "
        "print('syslog' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(Path(__file__).parents[1] / "src")})  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "False"
