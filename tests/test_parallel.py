"""``dkms autoinstall`` may run the hook for several kernels and modules at once: 16 real
processes share one cache, every run decides correctly, and the cache stays intact; damaged,
foreign or truncated records are noticed, ignored and replaced."""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import kerneltree
import planted
from dkms_rustc import warm
from dkms_rustc.cache import FORMAT, _canonical
from dkms_rustc.handoff import ARGS_FILE

TOOLCHAINS = kerneltree.find_real_toolchains()
SRC = Path(__file__).resolve().parents[1] / "src"
RUNS = 16


def _valid(path: Path) -> bool:
    if path.name.startswith(warm.RECORD_PREFIX):  # a warm run's record (dkms_rustc.warm)
        try:
            record = marshal.loads(path.read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            return False
        return path.is_file() and not path.is_symlink() and isinstance(record, dict) and "key" in record
    try:
        record = json.loads(path.read_bytes())
        body = [record["format"], record["kind"], record["key"], record["value"]]
        return bool(
            record["format"] == FORMAT
            and record["checksum"] == hashlib.sha256(_canonical(body).encode()).hexdigest()
            and path.name.startswith(record["kind"] + "-")
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _run_all(base: Path, trees: dict[str, Path]) -> list[tuple[str, Path, subprocess.Popen[str]]]:
    conf = base / "test.conf"
    searches: list[str] = []
    for toolchain in TOOLCHAINS.values():
        searches += ["--search", str(toolchain.rustc.parent.parent)]
    names = sorted(trees)
    # The same build directories every round, made anew, as DKMS does (so a round looks up
    # the replay records an earlier one wrote).
    builds = [base / "builds" / f"build{number}" for number in range(RUNS)]
    for build in builds:
        shutil.rmtree(build, ignore_errors=True)
        shutil.copytree(kerneltree.HELLO_MODULE, build)
    # A run whose inputs (the module's fresh build directory among them) changed within the
    # last second is not remembered (dkms_rustc.warm); which runs were would depend on load.
    time.sleep(warm.RACY_SECONDS + 0.1)
    runs = []
    for number, build in enumerate(builds):
        name = names[number % len(names)]
        argv = planted.hook_argv(
            "pre-build", "--kernel-dir", str(trees[name]), "--config", str(conf), *searches
        )
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC), "module": "hello", "module_version": "1.0"}
        process = subprocess.Popen(
            argv, cwd=build, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        runs.append((name, build, process))
    return runs


def _check_runs(runs: list[tuple[str, Path, subprocess.Popen[str]]]) -> None:
    for name, build, process in runs:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "Traceback" not in out + err
        args = (build / ARGS_FILE).read_text().split()
        assert f"RUSTC={TOOLCHAINS[name].rustc.resolve()}" in args, (name, args)


@pytest.fixture
def setup(kernel_trees: dict[str, Path], tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    if len(kernel_trees) < 2:
        pytest.skip("needs two real toolchains")
    (tmp_path / "test.conf").write_text(f"cache_dir = {tmp_path / 'cache'}\nsearch_defaults = no\n")
    return tmp_path, kernel_trees


def test_sixteen_hooks_in_parallel_share_the_cache(setup: tuple[Path, dict[str, Path]]) -> None:
    base, trees = setup
    _check_runs(_run_all(base, trees))
    records = sorted((base / "cache").iterdir())
    assert records, "nothing was remembered"
    assert [r.name for r in records if r.name.startswith(".")] == []  # no temporary files left over
    assert all(_valid(record) for record in records), [r.name for r in records if not _valid(r)]
    # Warm, still 16 at once: the same answers from the records.
    _check_runs(_run_all(base, trees))
    assert all(_valid(record) for record in (base / "cache").iterdir())


def _damage(records: list[Path]) -> dict[Path, str]:
    """Damage every record a different way; return how."""
    how: dict[Path, str] = {}
    donor = records[0].read_bytes()
    for number, record in enumerate(records):
        kind = number % 7
        data = record.read_bytes()
        record.unlink()
        if kind == 0:
            record.write_bytes(data[: len(data) // 2])
            how[record] = "truncated"
        elif kind == 1:
            record.write_bytes(b"")
            how[record] = "empty"
        elif kind == 2:
            record.write_bytes(os.urandom(300))
            how[record] = "garbage"
        elif kind == 3:
            record.write_bytes(donor if record != records[0] else data.replace(b'"format":1', b'"format":99'))
            how[record] = "foreign"
        elif kind == 4:
            record.write_bytes(data.replace(b'"ok"', b'"no"') if b'"ok"' in data else data[:-3] + b'x"}')
            how[record] = "checksum mismatch"
        elif kind == 5:
            os.mkfifo(record)
            how[record] = "fifo"
        else:
            record.symlink_to(Path("/etc/passwd"))
            how[record] = "symlink"
    return how


def test_damaged_records_are_ignored_and_replaced_under_parallel_load(
    setup: tuple[Path, dict[str, Path]],
) -> None:
    base, trees = setup
    _check_runs(_run_all(base, trees))
    records = sorted((base / "cache").iterdir())
    assert any(record.name.startswith(warm.RECORD_PREFIX) for record in records)  # replays too
    how = _damage(records)
    _check_runs(_run_all(base, trees))  # every run right, none replayed from damage

    # A run that met a damaged record is not remembered (dkms_rustc.warm), so the damaged
    # replay records are replaced by the next round, the others already by this one. A round
    # on a loaded machine may also meet a test compile that ran out of time, which is not
    # remembered either (seen once, with another test suite running beside it): then a later
    # round replaces them. Every round's every run must be right.
    def broken() -> list[tuple[str, str]]:
        return [
            (record.name, damage)
            for record, damage in how.items()
            if not (record.is_file() and not record.is_symlink() and _valid(record))
        ]

    for _ in range(3):
        _check_runs(_run_all(base, trees))
        if not broken():
            break
    assert broken() == []
    assert [r.name for r in (base / "cache").iterdir() if r.name.startswith(".")] == []
