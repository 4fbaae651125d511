"""Running programs: timeouts, crashes, floods of output, garbage. The programs are small
shell scripts because they stand for misbehaving compilers no real rustc imitates on demand."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dkms_rustc.runner import run


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "tool"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_output_and_status(tmp_path: Path) -> None:
    result = run([str(_script(tmp_path, 'echo "$LC_ALL $RUSTUP_TOOLCHAIN"; echo err >&2; exit 3\n'))])
    assert result.returncode == 3
    assert result.stdout == "C \n"  # minimal environment: nothing leaks from the caller
    assert result.stderr == "err\n"
    assert "exit status 3" in result.failure()


def test_hang_is_stopped_with_its_children(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "child-still-running"
    tool = _script(tmp_path, f"(sleep 3; touch {marker}) & sleep 30\n")
    start = time.monotonic()
    result = run([str(tool)], timeout=0.5)
    assert time.monotonic() - start < 2.5
    assert result.timed_out and not result.ok
    assert "did not finish in time" in result.failure()
    time.sleep(3.2)
    assert not marker.exists()


def test_crash_is_named(tmp_path: Path) -> None:
    result = run([str(_script(tmp_path, "kill -SEGV $$\n"))])
    assert "crashed (SIGSEGV)" in result.failure()


def test_flood_of_output_is_capped(tmp_path: Path) -> None:
    result = run([str(_script(tmp_path, "yes rustc 1.95.0\n"))], output_cap=100_000, timeout=5)
    assert result.truncated and not result.ok
    assert len(result.stdout) <= 100_000
    assert "more output than expected" in result.failure()


def test_non_utf8_output_is_replaced(tmp_path: Path) -> None:
    result = run([str(_script(tmp_path, r"printf 'rustc \377\376\n'" + "\n"))])
    assert result.ok
    assert result.stdout == "rustc \ufffd\ufffd\n"


def test_missing_program_is_a_start_error(tmp_path: Path) -> None:
    result = run([str(tmp_path / "absent")])
    assert result.start_error and "could not be started" in result.failure()


def test_relative_programs_are_refused() -> None:
    with pytest.raises(ValueError, match="not an absolute path"):
        run(["rustc", "--version"])
