"""The files the MAKE line reads, checked with the real make."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dkms_rustc.handoff import ARGS_FILE, REFUSAL_FILE, HandoffError, write_refusal, write_selection

MAKE = shutil.which("make")


def test_selection_is_one_line_of_words(tmp_path: Path) -> None:
    write_selection(tmp_path, ["RUSTC=/usr/bin/rustc", "HOSTRUSTC=/usr/bin/rustc"])
    assert (tmp_path / ARGS_FILE).read_text() == "RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc\n"
    assert not any(path.name.startswith(".") for path in tmp_path.iterdir())


@pytest.mark.parametrize("word", ["RUSTC=/opt/my rust/bin/rustc", "RUSTC=/opt/*/rustc", "X=$(id)", "A='b'"])
def test_selection_refuses_words_the_shell_would_split(tmp_path: Path, word: str) -> None:
    with pytest.raises(HandoffError, match="cannot carry"):
        write_selection(tmp_path, [word])
    assert not (tmp_path / ARGS_FILE).exists()


def test_selection_removes_an_old_refusal(tmp_path: Path) -> None:
    write_refusal(tmp_path, ["x"], "stop")
    write_selection(tmp_path, ["RUSTC=/usr/bin/rustc"])
    assert not (tmp_path / REFUSAL_FILE).exists()


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_refusal_stops_the_real_make_with_the_message(tmp_path: Path) -> None:
    lines = [
        "dkms-rustc: REFUSED: kernel needs rustc 1.96.0 (ac68faa20 2026-05-25) (built from a source tarball)",
        "dkms-rustc: odd characters survive: $HOME #comment ( unbalanced \\ 100% ;",
    ]
    write_refusal(tmp_path, lines, "dkms-rustc: this module build was stopped")
    args = (tmp_path / ARGS_FILE).read_text().split()
    assert args == ["-f", str(tmp_path / REFUSAL_FILE)]
    kernel = tmp_path / "kernel"
    kernel.mkdir()
    (kernel / "Makefile").write_text("all:\n\t@echo COMPILED > compiled\n")
    assert MAKE is not None
    result = subprocess.run([MAKE, "-C", str(kernel), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert lines[0] in result.stdout
    assert lines[1] in result.stdout
    assert "dkms-rustc: this module build was stopped" in result.stderr
    assert not (kernel / "compiled").exists()


def test_unwritable_build_dir_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist"
    with pytest.raises(HandoffError, match="cannot write in"):
        write_selection(missing, ["RUSTC=/usr/bin/rustc"])
