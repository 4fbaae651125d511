"""Remembered results: only intact records of the same kind and key are ever used."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dkms_rustc.cache import Cache, file_identity


def test_round_trip(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    cache.put("proof", ["a", 1], "ok")
    assert cache.get("proof", ["a", 1]) == "ok"
    assert cache.get("proof", ["a", 2]) is None
    assert cache.get("other", ["a", 1]) is None


def test_disabled_cache_remembers_nothing() -> None:
    cache = Cache(None)
    cache.put("proof", ["a"], "ok")
    assert cache.get("proof", ["a"]) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],
        lambda text: "",
        lambda text: text.replace('"ok"', '"no"'),
        lambda text: "\x00\xff garbage",
        lambda text: json.dumps({"format": 1}),
    ],
)
def test_damaged_records_are_ignored(tmp_path: Path, damage: object) -> None:
    cache = Cache(tmp_path)
    cache.put("proof", ["k"], "ok")
    (record,) = tmp_path.iterdir()
    record.write_text(damage(record.read_text()))  # type: ignore[operator]
    assert cache.get("proof", ["k"]) is None
    assert cache.ignored


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks apply to root")
def test_record_not_owned_by_root_is_ignored(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put("proof", ["k"], "ok")
    (record,) = tmp_path.iterdir()
    os.chown(record, 1000, 1000)
    assert cache.get("proof", ["k"]) is None


def test_unwritable_cache_is_silent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A cache that cannot be written (its directory is a file) is no error: nothing is
    stored, nothing is printed, and the same put into a usable directory does store."""
    (tmp_path / "file").write_text("")
    cache = Cache(tmp_path / "file" / "sub")
    cache.put("proof", ["k"], "ok")
    assert cache.get("proof", ["k"]) is None
    assert (tmp_path / "file").read_text() == "" and sorted(os.listdir(tmp_path)) == ["file"]
    assert capsys.readouterr() == ("", "")
    usable = Cache(tmp_path / "usable")
    usable.put("proof", ["k"], "ok")
    assert usable.get("proof", ["k"]) == "ok"


def test_identity_changes_with_content(tmp_path: Path) -> None:
    """Other bytes of the same size, with the modification time put back as it was (what a
    careful attacker or a sloppy copy does): the change time still tells."""
    path = tmp_path / "f"
    path.write_text("a")
    before = os.stat(path)
    first = file_identity(path)
    time.sleep(0.01)  # the change time moves on (file systems keep nanoseconds)
    path.write_text("b")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns and os.stat(path).st_size == before.st_size
    assert file_identity(path) != first
    assert file_identity(tmp_path / "absent") is None


def test_ignored_records_are_shown_as_evidence(tmp_path: Path) -> None:
    """A damaged record is not used, and -v says so (the admin can see why a run was cold)."""
    from dkms_rustc.cache import Cache as _Cache
    from dkms_rustc.decision import Reason, error_decision
    from dkms_rustc.engine import Assessment
    from dkms_rustc.report import evidence_lines

    cache = _Cache(tmp_path)
    cache.put("proof", ["k"], "ok")
    (record,) = tmp_path.iterdir()
    record.write_text("{")
    assert cache.get("proof", ["k"]) is None
    assessment = Assessment(error_decision("x", Reason.CONFIGURATION), cache_notes=list(cache.ignored))
    assert any(
        "evidence: cache:" in line and "damaged or foreign" in line for line in evidence_lines(assessment)
    )
