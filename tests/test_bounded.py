# SPDX-License-Identifier: GPL-2.0-or-later
"""Every step is linear and bounded on hostile trees; the cache is bounded in records and bytes.

The cases of issue 11 took minutes: a Makefile with 30,000 ``include`` lines (146 s),
scripts/Makefile.build with 66,000 ``--extern`` names (32-37 s), 15,000 hard links in rust/
(19-26 s and 15,000 cache records). Each must now answer within seconds.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

import planted
from conftest import isolate
from dkms_rustc import cache as cache_module
from dkms_rustc import kernel
from dkms_rustc.cache import Cache
from dkms_rustc.cli import main
from dkms_rustc.exitcodes import ExitCode

LIMIT = 8.0  # seconds for a whole command on a hostile tree (each takes well under one here)


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tmp_path.chmod(0o755)
    isolate(monkeypatch, tmp_path)
    return tmp_path


def _run(base: Path, tree: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], float]:
    toolchain = planted.fake_toolchain(base / "tc", planted.SYNTHETIC_VERSION, base / "MARKER")
    conf = base / "test.conf"
    conf.write_text(f"cache_dir = {base / 'cache'}\nsearch_defaults = no\n")
    start = time.monotonic()
    code = main(
        ["check", "--json", "--kernel-dir", str(tree), "--config", str(conf), "--search", str(toolchain)]
    )
    elapsed = time.monotonic() - start
    return code, json.loads(capsys.readouterr().out), elapsed


def test_a_makefile_with_30000_include_lines(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = planted.synthetic_kernel_tree(base / "tree")
    for number in range(30_000):
        (tree / "d" / str(number)).mkdir(parents=True)
    (tree / "Makefile").write_text("".join(f"include d/{number}/Makefile\n" for number in range(30_000)))
    code, data, elapsed = _run(base, tree, capsys)
    assert code == 0, data["messages"]
    assert elapsed < LIMIT
    assert len(kernel.tree_roots(tree)) <= kernel.MAX_ROOTS


def test_a_makefile_build_with_66000_extern_names(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = planted.synthetic_kernel_tree(base / "tree")
    names = " ".join(f"--extern crate{number}" for number in range(66_000))
    (tree / "scripts" / "Makefile.build").write_text(f"rust_flags = --extern kernel {names}\n")
    code, data, elapsed = _run(base, tree, capsys)
    assert elapsed < LIMIT
    assert code == ExitCode.NO_METADATA, data["messages"]  # the crates are missing: no-metadata, said at once
    assert len(data["kernel"]["required_crates"]) <= kernel.MAX_CRATES


def test_15000_hard_links_in_rust(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = planted.synthetic_kernel_tree(base / "tree")
    for number in range(15_000):
        os.link(tree / "rust" / "libmacros.so", tree / "rust" / f"libm{number}.so")
    code, data, elapsed = _run(base, tree, capsys)
    assert code == 0, data["messages"]
    assert elapsed < LIMIT
    records = list((base / "cache").iterdir())
    assert len(records) < 20, len(records)  # one per inode, not one per name
    assert len(data["kernel"]["metadata"]) <= kernel.MAX_ARTIFACTS


def test_a_rust_dir_with_more_entries_than_are_looked_at(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = planted.synthetic_kernel_tree(base / "tree")
    for number in range(kernel.MAX_RUST_ENTRIES + 10):
        (tree / "rust" / f"junk{number}.o").write_bytes(b"")
    _, data, elapsed = _run(base, tree, capsys)
    assert elapsed < LIMIT
    assert "entries" in "\n".join(data["warnings"])
    assert all(proof["skipped"] for proof in data["proofs"].values())


def test_a_search_dir_with_10000_compilers(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = planted.synthetic_kernel_tree(base / "tree")
    many = base / "many"
    many.mkdir()
    for number in range(10_000):
        (many / f"rustc-1.{number}").write_bytes(b"\x7fELF not really")
        (many / f"rustc-1.{number}").chmod(0o755)
    toolchain = planted.fake_toolchain(base / "tc", planted.SYNTHETIC_VERSION, base / "MARKER")
    conf = base / "test.conf"
    conf.write_text(f"cache_dir = {base / 'cache'}\nsearch_defaults = no\n")
    start = time.monotonic()
    code = main(["check", "--kernel-dir", str(tree), "--config", str(conf), "--search", str(toolchain),
                 "--search", str(many)])  # fmt: skip
    assert time.monotonic() - start < LIMIT
    assert code == 0, capsys.readouterr()


# -- the cache --------------------------------------------------------------------------------


def _records(directory: Path) -> list[Path]:
    return [path for path in directory.iterdir() if path.name.endswith(".json")]


def test_one_run_writes_a_bounded_number_of_records(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    for number in range(cache_module.MAX_WRITES_PER_RUN + 100):
        cache.put("proof", [number], "ok")
    assert len(_records(tmp_path / "c")) == cache_module.MAX_WRITES_PER_RUN


def test_too_many_records_are_evicted_oldest_first(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir()
    for number in range(cache_module.MAX_RECORDS + 200):
        path = directory / f"old-{number:05d}.json"
        path.write_text("{}")
        os.utime(path, ns=(number * 10**9, number * 10**9))
    Cache(directory).put("proof", ["new"], "ok")
    left = _records(directory)
    assert len(left) <= cache_module.MAX_RECORDS * 3 // 4 + 1
    assert not (directory / "old-00000.json").exists()  # the oldest went first
    assert (directory / f"old-{cache_module.MAX_RECORDS + 199:05d}.json").exists()
    assert Cache(directory).get("proof", ["new"]) == "ok"


def test_too_many_bytes_are_evicted(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir()
    for number in range(5):
        with (directory / f"big-{number}.json").open("wb") as stream:
            stream.truncate(cache_module.MAX_BYTES // 4)  # sparse: no disk space used
    Cache(directory).put("proof", ["new"], "ok")
    total = sum(path.stat().st_size for path in _records(directory))
    assert total <= cache_module.MAX_BYTES * 3 // 4 + 4096  # and the new record


def test_a_killed_runs_temporary_files_are_removed(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir()
    stale = directory / ".tmp-left-by-a-killed-run"
    stale.write_text("x")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = directory / ".tmp-being-written"
    fresh.write_text("x")
    Cache(directory).put("proof", ["new"], "ok")
    assert not stale.exists() and fresh.exists()
