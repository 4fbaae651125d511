"""Compilers and tools that hang, crash, print garbage, non-UTF-8 or megabytes: each is skipped
with a clear reason, the decision is still made, and the whole run stays bounded in time.

A rustc whose toolchain has a readable libcore is learned from its files without running it,
so the misbehaving fakes here have none: they must be run to learn what they are.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import kerneltree
import planted
from conftest import isolate, write_config
from dkms_rustc import engine, probe, proof, runner
from dkms_rustc.cli import main
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.handoff import ARGS_FILE

TOOLCHAINS = kerneltree.find_real_toolchains()
SRC = Path(__file__).resolve().parents[1] / "src"
# What a run may cost when every candidate hangs: one probe timeout, plus starting Python.
BOUND = probe.PROBE_TIMEOUT + 2.5

RUSTC_REASONS = {
    "hang": "did not finish in time and was stopped",
    "fork-hang": "did not finish in time and was stopped",
    "crash": "crashed (SIGSEGV)",
    "garbage": "printed 'Segmentation fault (core dumped) -- not a version', not a rustc version",
    "non-utf8": "printed 'rustc \ufffd\ufffd\ufffd (\ufffd\ufffd)', not a rustc version",
    "flood": "printed more output than expected and was stopped",
    "empty": "printed nothing, not a rustc version",
    "exit1": "failed with exit status 1",
}
BINDGEN_REASONS = {
    **RUSTC_REASONS,
    "garbage": "printed 'Segmentation fault (core dumped) -- not a version', not a bindgen version",
    "non-utf8": "printed 'rustc \ufffd\ufffd\ufffd (\ufffd\ufffd)', not a bindgen version",
    "empty": "printed nothing, not a bindgen version",
    "fork-hang": "did not finish in time and was stopped",
}


def _stable() -> kerneltree.RealToolchain:
    if "stable" not in TOOLCHAINS:
        pytest.skip("no real stable rustc on this machine")
    return TOOLCHAINS["stable"]


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tmp_path.chmod(0o755)
    isolate(monkeypatch, tmp_path)
    return tmp_path


def _argv(tree: Path, base: Path, *extra: str) -> list[str]:
    return ["check", "--json", "--kernel-dir", str(tree), "--config", str(write_config(base)), *extra]


def _candidates(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["path"]: c for c in data["candidates"]}


def test_every_misbehaviour_is_skipped_with_its_reason_and_the_decision_is_made(
    kernel_trees: dict[str, Path], base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stable = _stable()
    marker = base / "MARKER"
    searches: list[str] = []
    for behaviour in RUSTC_REASONS:
        tc = planted.fake_toolchain(
            base / behaviour, stable.version_text, marker, behaviour=behaviour, bindgen_text="bindgen 0.72.1"
        )
        searches += ["--search", str(tc)]
    good = planted.fake_tool(base / "good" / "bindgen", "bindgen 0.72.1", marker)
    searches += ["--search", str(stable.rustc.parent.parent), "--search", str(good.parent)]
    start = time.monotonic()
    code = main(
        [
            "check",
            "--json",
            "--kernel-dir",
            str(kernel_trees["stable"]),
            "--config",
            str(write_config(base)),
            *searches,
        ]
    )
    elapsed = time.monotonic() - start
    data = json.loads(capsys.readouterr().out)
    assert code == 0, data["messages"]
    assert data["selected"]["rustc"] == str(stable.rustc)
    assert data["selected"]["bindgen"] == str(good)
    candidates = _candidates(data)
    for behaviour, reason in RUSTC_REASONS.items():
        rustc = candidates[str(base / behaviour / "bin" / "rustc")]
        assert str(rustc["skipped"]).startswith("unusable: "), (behaviour, rustc["skipped"])
        assert reason in str(rustc["skipped"]), (behaviour, rustc["skipped"])
        bindgen = candidates[str(base / behaviour / "bin" / "bindgen")]
        assert BINDGEN_REASONS[behaviour] in str(bindgen["skipped"]), (behaviour, bindgen["skipped"])
    assert elapsed < BOUND, elapsed


def test_twenty_hanging_candidates_cost_one_timeout(
    kernel_trees: dict[str, Path], base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stable = _stable()
    marker = base / "MARKER"
    searches: list[str] = []
    for number in range(20):
        tc = planted.fake_toolchain(
            base / f"hang{number}",
            stable.version_text,
            marker,
            behaviour="hang",
            bindgen_text="bindgen 0.72.1",
        )
        searches += ["--search", str(tc)]
    searches += ["--search", str(stable.rustc.parent.parent)]
    start = time.monotonic()
    code = main(
        [
            "check",
            "--json",
            "--kernel-dir",
            str(kernel_trees["stable"]),
            "--config",
            str(write_config(base)),
            *searches,
        ]
    )
    elapsed = time.monotonic() - start
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["selected"]["rustc"] == str(stable.rustc)
    hung = [c for c in data["candidates"] if "did not finish in time" in str(c["skipped"])]
    assert len(hung) == 40  # 20 rustc and 20 bindgen, all asked, none left "not examined"
    assert probe.PROBE_TIMEOUT <= elapsed < probe.PROBE_TIMEOUT + 1.5, elapsed
    print(f"\n20 hanging rustc + 20 hanging bindgen, in-process check: {elapsed:.2f} s")


@pytest.mark.parametrize("command", ["check", "pre-build"])
def test_whole_hook_as_a_process_is_bounded_when_everything_hangs(
    command: str, kernel_trees: dict[str, Path], base: Path
) -> None:
    """A real ``python -m dkms_rustc`` with 20 hanging rustc and 20 hanging bindgen and nothing
    else: it refuses, with the reasons, within one probe timeout (plus Python's start)."""
    marker = base / "MARKER"
    _stable()
    searches: list[str] = []
    for number in range(20):
        tc = planted.fake_toolchain(
            base / f"hang{number}", "rustc 0.0.0", marker, behaviour="hang", bindgen_text="bindgen 0.72.1"
        )
        searches += ["--search", str(tc)]
    build = base / "build"
    build.mkdir()
    argv = planted.hook_argv(
        command, "--kernel-dir", str(kernel_trees["stable"]), "--config", str(write_config(base))
    )
    argv += searches
    if command == "pre-build":
        argv += ["--build-dir", str(build)]
    start = time.monotonic()
    result = subprocess.run(
        argv, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=60
    )
    elapsed = time.monotonic() - start
    assert result.returncode == ExitCode.REFUSED, result.stderr + result.stdout
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert output.count("did not finish in time and was stopped") >= 20
    assert elapsed < BOUND, elapsed
    if command == "pre-build":
        assert (build / ARGS_FILE).read_text().startswith("-f ")
    print(f"\n{command} with 40 hanging candidates, as a process: {elapsed:.2f} s")


@pytest.mark.parametrize("behaviour", ["compile-hang", "compile-crash"])
def test_a_matching_compiler_that_fails_the_test_compile_is_passed_over(
    behaviour: str,
    kernel_trees: dict[str, Path],
    base: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its files name the kernel's compiler, but compiling hangs or crashes: the next matching
    candidate is proved and selected; the hang costs one PROOF_TIMEOUT (shortened here)."""
    stable = _stable()
    monkeypatch.setattr(proof, "PROOF_TIMEOUT", 1.0)
    monkeypatch.setattr(engine, "PROOF_BUDGET", 3.0)
    marker = base / "MARKER"
    bad = planted.fake_toolchain(
        base / "bad",
        stable.version_text,
        marker,
        behaviour=behaviour,
        libcore_from=kerneltree._sysroot_rmeta(stable, "core"),
    )
    start = time.monotonic()
    code = main(
        _argv(kernel_trees["stable"], base, "--search", str(bad), "--search", str(stable.rustc.parent.parent))
    )
    elapsed = time.monotonic() - start
    data = json.loads(capsys.readouterr().out)
    assert code == 0, data["messages"]
    assert data["selected"]["rustc"] == str(stable.rustc)
    detail = data["proofs"][str(bad / "bin" / "rustc")]["detail"]
    assert ("did not finish in time" if behaviour == "compile-hang" else "crashed (SIGSEGV)") in detail
    assert data["proofs"][str(stable.rustc)]["ok"] is True
    assert elapsed < 3.0


def test_only_a_hanging_match_is_a_refusal_naming_the_test_compile(
    kernel_trees: dict[str, Path],
    base: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stable = _stable()
    monkeypatch.setattr(proof, "PROOF_TIMEOUT", 0.5)
    bad = planted.fake_toolchain(
        base / "bad",
        stable.version_text,
        base / "MARKER",
        behaviour="compile-hang",
        libcore_from=kerneltree._sysroot_rmeta(stable, "core"),
    )
    code = main(_argv(kernel_trees["stable"], base, "--search", str(bad)))
    data = json.loads(capsys.readouterr().out)
    assert (code, data["verdict"]) == (ExitCode.REFUSED, "refused")
    assert "failed the test compile" in data["headline"]
    assert any("did not finish in time and was stopped" in line for line in data["messages"])


def test_no_time_left_for_the_test_compile_selects_with_a_warning(
    kernel_trees: dict[str, Path],
    base: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Running out of time is not evidence against a compiler whose version matches."""
    stable = _stable()
    monkeypatch.setattr(engine, "PROOF_BUDGET", 0.0)
    code = main(_argv(kernel_trees["stable"], base, "--search", str(stable.rustc.parent.parent)))
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["selected"]["rustc"] == str(stable.rustc)
    assert any("test compile not attempted" in warning for warning in data["warnings"])


# -- the runner itself -----------------------------------------------------------------------


def _scripts(base: Path, behaviours: list[str]) -> list[list[str]]:
    return [
        [
            str(planted.fake_tool(base / f"t{n}-{b}", "rustc 1.95.0 (59807616e 2026-04-14)", base / "M", b)),
            "-vV",
        ]
        for n, b in enumerate(behaviours)
    ]


def test_run_many_keeps_order_and_bounds_time(base: Path) -> None:
    behaviours = ["ok", "hang", "crash", "flood", "ok", "fork-hang", "non-utf8", "exit1"] * 3
    start = time.monotonic()
    results = runner.run_many(_scripts(base, behaviours), timeout=1.0, output_cap=64 * 1024)
    elapsed = time.monotonic() - start
    assert elapsed < 2.0
    for behaviour, result in zip(behaviours, results):
        assert result.argv[0].endswith(behaviour)
        if behaviour == "ok":
            assert result.ok and result.stdout.startswith("rustc 1.95.0")
        elif behaviour in ("hang", "fork-hang"):
            assert result.timed_out and not result.ok
        elif behaviour == "crash":
            assert "SIGSEGV" in result.failure()
        elif behaviour == "flood":
            assert result.truncated and len(result.stdout) <= 64 * 1024
        elif behaviour == "non-utf8":
            assert "\ufffd" in result.stdout
        else:
            assert result.returncode == 1  # the fake program's own status


def test_run_many_with_few_slots_reports_what_it_could_not_start(base: Path) -> None:
    results = runner.run_many(_scripts(base, ["hang"] * 4), timeout=0.5, max_parallel=2)
    assert [r.timed_out for r in results] == [True, True, False, False]
    assert all("not started: the time for running it ran out" in r.failure() for r in results[2:])


def test_run_many_frees_slots_for_waiting_programs(base: Path) -> None:
    results = runner.run_many(_scripts(base, ["ok"] * 10), timeout=5, max_parallel=2)
    assert all(result.ok for result in results)


def test_killed_hangs_leave_no_process_behind(base: Path) -> None:
    marker = base / "child-survived"
    script = base / "tool"
    script.write_text(f"#!/bin/sh\n(sleep 1.5; touch {marker}) &\nexec sleep 60\n")
    script.chmod(0o755)
    results = runner.run_many([[str(script)]] * 5, timeout=0.3)
    assert all(r.timed_out for r in results)
    time.sleep(1.8)
    assert not marker.exists()
