#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""What the dkms-rustc hook costs, next to the interpreter floor and the checks users run today.

A script, not a test: it builds its fixtures under a temporary directory, runs every command
many times round-robin (so that noise from other work on the machine hits all of them alike)
and prints one markdown table of medians and ratios::

    python3 benchmarks/bench.py                     # the interpreter running this script
    python3 benchmarks/bench.py --python /usr/bin/python3 --runs 31 --markdown out.md

Scenarios (each cold, with an empty cache, so the run pays the test compile and the ELF
reading, and warm, the steady state of every later DKMS build):

1. ``pre-build`` against a kernel tree, one toolchain installed, and it matches;
2. the same with 30 toolchains installed (copies of the real rustup and Debian compilers
   under a rustup-style home: a copied ``bin/rustc``, so each is its own file that discovery
   keeps, and the real ``lib/``, so each is a working compiler with its real metadata);
3. 30 toolchains and none matches: the refusal path, which also words a fix;
4. ``status`` over 10 kernel trees x 30 toolchains, or, while the ``status`` command does not
   exist, ``check`` over the same 10 trees in one process (said so in the table).

Baselines, in the same run: ``python -c pass`` (the floor of any Python hook; every ratio is
to it) and ``python -I -S -c pass`` (the interpreter without site, for reference); the naive
shell check (``rustc --version`` against the config text, benchmarks/naive-check.sh); and,
when a real Rust-enabled kernel tree is present (tests/realkernel/build-kernels.sh), the
thorough check users run on it today (benchmarks/thorough-check.sh) next to the hook on the
same tree.

Measured per run with ``os.wait4``: wall time, CPU time (user + system, of the process and
the processes it waited for) and the largest RSS in that process tree (which on Linux is at
least this script's own RSS at the moment it spawned the command: the kernel carries the peak
across exec, so small values are masked; the report prints that RSS). The Python process's
own peak (``VmHWM`` at exit, which starts afresh at exec) is read in a separate pass.
Processes started are counted in another separate pass with ``strace -f -e trace=execve``
(programs executed, not counting the command itself); without strace that column says n/a.
Timed runs never run under strace.

The tool runs the way its console script runs it (``from dkms_rustc.cli import main``), with
the source tree on PYTHONPATH and byte code written once before timing (an installed package
has its .pyc files), in DKMS's minimal environment.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import importlib.util
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import kerneltree  # noqa: E402  (tests/ helper: real toolchains, kbuild-style trees)
from dkms_e2e import LOCK_PATH  # noqa: E402  (the machine-wide lock of the end-to-end tests)

REAL_KERNELS = Path(os.environ.get("DKMS_RUSTC_KERNELS", "/var/cache/dkms-rustc-ci/kernels"))
MINIMAL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SYSTEM_CONFIG = Path("/etc/dkms-rustc.conf")
TOOLCHAIN_COUNT = 30
TREE_COUNT = 10

# The console script pip writes for ``dkms-rustc = dkms_rustc.cli:main``.
CONSOLE_SCRIPT = """\
import re
import sys
from dkms_rustc.cli import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""
# Writes the process's own peak RSS (VmHWM, KiB) to $DKMS_RUSTC_BENCH_RSS at exit.
RSS_REPORT = """\
import atexit, os
def _report():
    with open('/proc/self/status') as status:
        peak = next(line.split()[1] for line in status if line.startswith('VmHWM:'))
    with open(os.environ['DKMS_RUSTC_BENCH_RSS'], 'w') as out:
        out.write(peak)
atexit.register(_report)
"""
# The console script, reporting its peak RSS.
RSS_SCRIPT = RSS_REPORT + "import sys\nfrom dkms_rustc.cli import main\nsys.exit(main())\n"
# Exit status 0 when the tool's command line accepts these arguments.
PARSES = "import sys; from dkms_rustc.cli import build_parser; build_parser().parse_args(sys.argv[1:])"
# Scenario 4 without a status command: check every tree in one process.
CHECK_LOOP = """\
import sys
from dkms_rustc.cli import main
config, search, *trees = sys.argv[1:]
worst = 0
for tree in trees:
    worst = max(worst, main(["check", "--kernel-dir", tree, "--config", config, "--search", search]))
sys.exit(worst)
"""


# Breakdown of the warm scenario 1 path: the standard library modules it imports (printed,
# run with -I -S and the sources on sys.path, so that nothing else imports anything).
HOT_STDLIB = """\
import sys
before = set(sys.modules)
sys.path.insert(0, sys.argv[1])
import dkms_rustc.cli, dkms_rustc.commands.pre_build
names = {name.split('.')[0] for name in set(sys.modules) - before} - {'dkms_rustc'}
print(' '.join(sorted(name for name in names if not name.startswith('_'))))
"""
# The tool's modules on that path, after that standard library, with the time spent creating
# dataclasses and compiling regular expressions at import (printed as four numbers).
MODULE_SPLIT = """\
import sys, time
import {stdlib}
import dataclasses, re
spent = {{"dataclass": [0, 0.0], "re.compile": [0, 0.0]}}
def timed(name, function):
    def call(*args, **kwargs):
        if name == "dataclass" and not args:  # @dataclass(frozen=True): time the decoration
            return lambda cls: call(cls, **kwargs)
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name][0] += 1
            spent[name][1] += time.perf_counter() - start
    return call
dataclasses.dataclass = timed("dataclass", dataclasses.dataclass)
re.compile = timed("re.compile", re.compile)
import dkms_rustc.cli, dkms_rustc.commands.pre_build
for count, seconds in spent.values():
    print(count, seconds * 1000)
"""
PARSE_ONLY = (
    "import sys; from dkms_rustc.cli import build_parser; import dkms_rustc.commands.pre_build; "
    "build_parser().parse_args(sys.argv[1:])"
)


@dataclass
class Case:
    """One command to measure."""

    key: str
    label: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path  # DKMS runs PRE_BUILD in the module's build directory
    expect: int = 0  # exit status the run must have (else the benchmark measured the wrong thing)
    reset: Callable[[], None] | None = None  # set for a cold case: empties its cache before each run
    interpreter: str | None = None  # floor to compare with (None: a shell baseline)
    budget: float | None = None  # at most this many times the floor
    rss_argv: list[str] | None = None  # the same run reporting its own peak RSS
    breakdown: bool = False  # a step of the scenario 1 breakdown, not a row of the main table
    split: list[tuple[float, ...]] = field(default_factory=list)  # MODULE_SPLIT's printed numbers
    runs: int = 0
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    tree_rss: list[float] = field(default_factory=list)
    self_rss: float | None = None
    processes: int | None = None


def spawn(argv: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float, int]:
    """Run ``argv`` in ``cwd`` with output discarded: (wall ms, cpu ms, peak RSS MiB of the
    process tree, exit status)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    here = os.getcwd()
    os.chdir(cwd)  # posix_spawn has no cwd argument; this script runs one thing at a time
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], list(argv), env, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        wall = (time.perf_counter() - start) * 1000
    finally:
        os.chdir(here)
        os.close(devnull)
    cpu = (usage.ru_utime + usage.ru_stime) * 1000
    return wall, cpu, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def count_programs(argv: Sequence[str], env: dict[str, str], cwd: Path, workdir: Path) -> int | None:
    """Programs the command executed, itself not counted (strace -f -e trace=execve)."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    log = workdir / "strace.log"
    subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=execve", "-o", str(log), "--", *argv],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    lines = log.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if "execve(" in line and line.rstrip().endswith("= 0")) - 1


def self_rss(argv: Sequence[str], env: dict[str, str], cwd: Path, workdir: Path) -> float | None:
    report = workdir / "rss.txt"
    report.unlink(missing_ok=True)
    spawn(argv, {**env, "DKMS_RUSTC_BENCH_RSS": str(report)}, cwd)
    try:
        return int(report.read_text()) / 1024
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


def _copy_not_link(src: Path, dst: Path) -> None:
    """kerneltree hard-links the toolchain's own libcore.rmeta into rust/; a link changes that
    file's ctime, which is part of every cache key naming it (on this machine and in other
    people's test runs), so the benchmark's trees get copies."""
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    shutil.copy2(src, dst)


def make_toolchain(home: Path, name: str, real: kerneltree.RealToolchain) -> Path:
    """A rustup-style toolchain directory holding a copy of ``real``'s rustc.

    ``bin/rustc`` is copied (its own inode and real path, so discovery does not fold it into
    the original; a hard link would also change the original's ctime); ``lib/`` is the real
    one (a symlink), so the copy loads the real librustc_driver and its sysroot holds the
    real libcore metadata. Distribution compilers (sysroot /usr) get ``lib/rustlib`` only.
    """
    directory = home / "toolchains" / name
    (directory / "bin").mkdir(parents=True)
    shutil.copy2(real.rustc, directory / "bin" / "rustc")
    real_lib = real.sysroot / "lib"
    if any(real_lib.glob("librustc_driver-*.so")) and real.sysroot != Path("/usr"):
        (directory / "lib").symlink_to(real_lib)
    else:
        (directory / "lib").mkdir()
        (directory / "lib" / "rustlib").symlink_to(real_lib / "rustlib")
    return directory


@dataclass
class Fixtures:
    work: Path
    match: kerneltree.RealToolchain  # the compiler of the scenario 1-3 kernel
    kernel: Path  # scenario 1-3 kernel tree
    one: Path  # rustup home: the matching toolchain only
    thirty: Path  # rustup home: 30 toolchains, one of them matching
    none: Path  # rustup home: 30 toolchains, none matching
    trees: list[Path]  # scenario 4 kernel trees (each has a match among ``thirty``)
    description: list[str]


def build_fixtures(work: Path) -> Fixtures:
    real = kerneltree.find_real_toolchains()
    if not real:
        raise SystemExit("bench: no real rustc on this machine (see tests/kerneltree.py)")
    match = real.get("stable") or next(iter(real.values()))
    others = [tc for tc in real.values() if tc.version_text != match.version_text]
    if not others:
        raise SystemExit("bench: needs two different real compilers (e.g. rustup stable and nightly)")

    kerneltree._link_or_copy = _copy_not_link
    kernel = kerneltree.make_kernel_tree(work / "kernels" / "k0", match, kernelrelease="7.2.0-bench")

    one = work / "homes" / "one"
    make_toolchain(one, f"{match.release}-{match.host}", match)
    thirty = work / "homes" / "thirty"
    none = work / "homes" / "none"
    make_toolchain(thirty, f"{match.release}-{match.host}", match)
    for index in range(TOOLCHAIN_COUNT):
        other = others[index % len(others)]
        name = f"{other.name}-{index:02d}-{other.host}"
        if index < TOOLCHAIN_COUNT - 1:
            make_toolchain(thirty, name, other)
        make_toolchain(none, name, other)

    builders = [match, *others]
    trees = [
        kerneltree.make_kernel_tree(
            work / "kernels" / f"t{index}",
            builders[index % len(builders)],
            kernelrelease=f"7.2.{index}-bench",
        )
        for index in range(TREE_COUNT)
    ]
    versions = sorted({tc.version_text for tc in [match, *others]})
    description = [
        f"kernel trees made by tests/kerneltree.py; scenario 1-3 kernel built with `{match.version_text}`",
        f"{TOOLCHAIN_COUNT} toolchains: copies of {', '.join(f'`{v}`' for v in versions)}",
    ]
    return Fixtures(work, match, kernel, one, thirty, none, trees, description)


def write_config(path: Path, cache: Path, defaults: bool = False) -> Path:
    path.write_text(f"cache_dir = {cache}\nsearch_defaults = {'yes' if defaults else 'no'}\n")
    return path


def empty(directory: Path) -> Callable[[], None]:
    def reset() -> None:
        shutil.rmtree(directory, ignore_errors=True)

    return reset


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------


def status_command(python: str, env: dict[str, str], fx: Fixtures) -> list[str] | None:
    """``status`` over the scenario 4 trees, when the tool has that command (issue 5), with an
    empty DKMS tree if it takes one (so only kernels and toolchains are measured)."""
    trees = [f"--kernel-dir={tree}" for tree in fx.trees]
    empty_dkms = fx.work / "empty-dkms-tree"
    empty_dkms.mkdir(exist_ok=True)
    for extra in ([f"--dkms-tree={empty_dkms}"], []):
        argv = ["status", "--search", str(fx.thirty), *trees, *extra]
        probe = subprocess.run([python, "-c", PARSES, *argv], env=env, capture_output=True, check=False)
        if probe.returncode == 0:
            return argv
    return None


def interpreter_cases(
    python: str, tag: str, fx: Fixtures, src: Path, deps: Path | None, breakdown: bool
) -> list[Case]:
    """The floor and the four scenarios, cold and warm, on one interpreter."""
    work = fx.work / f"py-{tag}"
    work.mkdir(parents=True)
    script = work / "dkms-rustc"
    script.write_text(CONSOLE_SCRIPT)
    rss_script = work / "dkms-rustc-rss"
    rss_script.write_text(RSS_SCRIPT)
    build = work / "build"
    build.mkdir()
    pythonpath = [str(src)] + ([str(deps)] if deps else [])
    env = {
        "PATH": MINIMAL_PATH,
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": os.pathsep.join(pythonpath),
        "module": "bench-module",
        "module_version": "1.0",
    }
    cases = [
        Case(
            f"{tag}:floor",
            "`python -c pass` (the floor)",
            [python, "-c", "pass"],
            env,
            build,
            interpreter=tag,
            rss_argv=[python, "-c", RSS_REPORT],
        ),
        Case(
            f"{tag}:floor-IS",
            "`python -I -S -c pass` (no site)",
            [python, "-I", "-S", "-c", "pass"],
            env,
            build,
            interpreter=tag,
            rss_argv=[python, "-I", "-S", "-c", RSS_REPORT],
        ),
    ]

    def add(key: str, label: str, argv: list[str], expect: int, budget: float | None, cold: bool) -> None:
        """One case; ``argv[0]`` is a command line whose ``{conf}`` word names its config file."""
        mode = "cold" if cold else "warm"
        cache = work / f"cache-{key}-{mode}"  # cold runs empty their own cache only
        conf = str(write_config(work / f"{key}-{mode}.conf", cache, defaults=key == "s1d"))
        argv = [conf if word == "{conf}" else word for word in argv]
        cases.append(
            Case(
                f"{tag}:{key}:{mode}",
                f"{label}, {mode}",
                argv,
                env,
                build,
                expect=expect,
                reset=empty(cache) if cold else None,
                interpreter=tag,
                budget=None if cold else budget,
                rss_argv=[python, str(rss_script), *argv[2:]] if argv[1] == str(script) else None,
            )
        )

    def hook(key: str, label: str, args: list[str], expect: int, budget: float | None) -> None:
        for cold in (True, False):
            if not (cold and key == "s1d"):
                add(
                    key,
                    label,
                    [python, str(script), args[0], "--config", "{conf}", *args[1:]],
                    expect,
                    budget,
                    cold,
                )

    pre = ["pre-build", "--build-dir", str(build), "--kernel-dir", str(fx.kernel)]
    hook("s1", "1 pre-build, 1 toolchain, match", [*pre, "--search", str(fx.one)], 0, 2.5)
    if breakdown:
        names = subprocess.run(
            [python, "-I", "-S", "-c", HOT_STDLIB, str(src)], capture_output=True, text=True, check=True
        ).stdout.split()
        s1 = next(case for case in cases if case.key == f"{tag}:s1:warm")
        steps = [
            (
                "stdlib",
                f"+ the standard library it imports ({len(names)} modules: {_notable(names)})",
                f"import {', '.join(names)}",
            ),
            (
                "modules",
                "+ the dkms_rustc modules it imports",
                "import dkms_rustc.cli, dkms_rustc.commands.pre_build",
            ),
        ]
        for key, label, code in steps:
            cases.append(
                Case(
                    f"{tag}:bd:{key}",
                    label,
                    [python, "-c", code],
                    env,
                    build,
                    interpreter=tag,
                    breakdown=True,
                )
            )
        cases.append(
            Case(
                f"{tag}:bd:parse",
                "+ the command line parsed",
                [python, "-c", PARSE_ONLY, *s1.argv[2:]],
                env,
                build,
                interpreter=tag,
                breakdown=True,
            )
        )
        split = MODULE_SPLIT.format(stdlib=", ".join(names))
        cases.append(
            Case(f"{tag}:bd:split", "", [python, "-c", split], env, build, interpreter=tag, breakdown=True)
        )
    hook("s2", "2 pre-build, 30 toolchains, match", [*pre, "--search", str(fx.thirty)], 0, 3.0)
    hook("s3", "3 pre-build, 30 toolchains, none matches", [*pre, "--search", str(fx.none)], 1, 3.0)
    hook("s1d", "1d pre-build, default search of this machine", pre, 0, None)

    trees = [str(tree) for tree in fx.trees]
    status = status_command(python, env, fx)
    if status is not None:
        hook("s4", f"4 status, {TREE_COUNT} trees x 30 toolchains", status, 0, 5.0)
    else:
        label = f"4 `check` of {TREE_COUNT} trees x 30 toolchains in one process (no `status` yet)"
        for cold in (True, False):
            add("s4", label, [python, "-c", CHECK_LOOP, "{conf}", str(fx.thirty), *trees], 0, 5.0, cold)

    real = kerneltree.real_kernel_tree("7.2", REAL_KERNELS) or REAL_KERNELS / "linux-7.2"
    if (real / "rust").is_dir():
        tools = REAL_KERNELS / "tools"
        real_args = [
            "pre-build",
            "--build-dir",
            str(build),
            "--kernel-dir",
            str(real),
            "--search",
            "/usr/bin",
        ]
        if (tools / "bindgen").is_file():
            real_args += ["--search", str(tools)]
        hook("real", "R pre-build on the real Linux 7.2 tree", real_args, 0, None)
    return cases


def shell_cases(fx: Fixtures) -> list[Case]:
    here = Path(__file__).resolve().parent
    path = f"{fx.match.rustc.parent}:{MINIMAL_PATH}"
    cases = [
        Case(
            "naive",
            "naive shell check (`rustc --version` = config text)",
            ["/bin/sh", str(here / "naive-check.sh"), str(fx.kernel)],
            {"PATH": path, "HOME": os.environ.get("HOME", "/root")},
            fx.work,
        )
    ]
    real = kerneltree.real_kernel_tree("7.2", REAL_KERNELS) or REAL_KERNELS / "linux-7.2"
    stamp = _stamp(real / ".dkms-rustc-stamp")
    rustc = stamp.get("input.rustc", "/usr/bin/rustc").split()[0]
    bindgen = stamp.get("input.bindgen", str(REAL_KERNELS / "tools" / "bindgen")).split()[0]
    lib_src = stamp.get("input.rust_lib_src", "")
    if (real / "scripts" / "rust_is_available.sh").is_file() and Path(rustc).is_file():
        cases.append(
            Case(
                "thorough",
                "thorough check on the real 7.2 tree (rust_is_available.sh + version + probe compile)",
                ["/bin/sh", str(here / "thorough-check.sh"), str(real), rustc, bindgen, lib_src],
                {"PATH": MINIMAL_PATH, "HOME": os.environ.get("HOME", "/root")},
                fx.work,
            )
        )
    return cases


def _stamp(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


# --------------------------------------------------------------------------
# Running and reporting
# --------------------------------------------------------------------------


def run_case(case: Case) -> None:
    if case.reset is not None:
        case.reset()
    wall, cpu, rss, status = spawn(case.argv, case.env, case.cwd)
    if status != case.expect:
        subprocess.run(case.argv, env=case.env, check=False)  # show why
        present = f" ({SYSTEM_CONFIG} exists and may be why)" if SYSTEM_CONFIG.exists() else ""
        raise SystemExit(f"bench: {case.label}: exit status {status}, expected {case.expect}{present}")
    case.wall.append(wall)
    case.cpu.append(cpu)
    case.tree_rss.append(rss)
    case.runs += 1


def measure(cases: list[Case], runs: int, cold_runs: int, work: Path, progress: bool) -> None:
    splits = [case for case in cases if case.key.endswith(":bd:split")]  # in-process timers
    cases = [case for case in cases if case not in splits]
    warm = [case for case in cases if case.reset is None]
    cold = [case for case in cases if case.reset is not None]
    for case in warm:  # prime: fills the caches, writes byte code, checks the exit status
        spawn(case.argv, case.env, case.cwd)
        if case.key.endswith(":warm"):
            spawn(case.argv, case.env, case.cwd)
    for number in range(runs):
        if progress:
            print(f"bench: warm round {number + 1}/{runs}", file=sys.stderr)
        for case in warm:
            run_case(case)
        for case in splits:
            out = subprocess.run(case.argv, env=case.env, capture_output=True, text=True, check=True)
            case.split.append(tuple(float(word) for word in out.stdout.split()))
    for number in range(cold_runs):
        if progress:
            print(f"bench: cold round {number + 1}/{cold_runs}", file=sys.stderr)
        for case in cold:
            run_case(case)
    for case in cases:  # untimed passes: processes started, the hook's own peak RSS
        if case.breakdown:
            continue
        if case.reset is not None:
            case.reset()
        case.processes = count_programs(case.argv, case.env, case.cwd, work)
        if case.rss_argv is not None:
            if case.reset is not None:
                case.reset()
            case.self_rss = self_rss(case.rss_argv, case.env, case.cwd, work)


def table(cases: list[Case], tag: str) -> str:
    """The rows of one interpreter, then the shell baselines, with ratios to its floor."""
    floor = next(case for case in cases if case.key == f"{tag}:floor")
    floor_wall, floor_cpu = statistics.median(floor.wall), statistics.median(floor.cpu)
    rows = [
        "| case | runs | wall ms | CPU ms | peak RSS MiB | tree max RSS MiB | processes "
        "| x floor (wall) | x floor (CPU) | budget (wall) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for case in cases:
        if case.interpreter not in (tag, None) or case.breakdown:
            continue
        wall, cpu = statistics.median(case.wall), statistics.median(case.cpu)
        budget = ""
        if case.budget is not None:
            verdict = "ok" if wall <= case.budget * floor_wall else "**over**"
            budget = f"≤ {case.budget:g}x: {verdict}"
        rss = "" if case.self_rss is None else f"{case.self_rss:.1f}"
        rss += f" | {statistics.median(case.tree_rss):.1f}"
        processes = "n/a" if case.processes is None else str(case.processes)
        rows.append(
            f"| {case.label} | {case.runs} | {wall:.1f} | {cpu:.1f} | {rss} | {processes} "
            f"| {wall / floor_wall:.2f} | {cpu / floor_cpu:.2f} | {budget} |"
        )
    return "\n".join(rows)


def _notable(names: list[str]) -> str:
    direct = ("argparse", "dataclasses", "pathlib", "re", "json", "hashlib", "tempfile", "glob")
    return ", ".join(name for name in direct if name in names) + " and what they import"


def breakdown_table(cases: list[Case], tag: str) -> str:
    """Warm scenario 1, built up step by step, each step a fresh process (medians)."""
    by_key = {case.key: case for case in cases}
    steps = [
        (f"{tag}:floor", "`python -c pass`"),
        (f"{tag}:bd:stdlib", by_key[f"{tag}:bd:stdlib"].label),
        (f"{tag}:bd:modules", by_key[f"{tag}:bd:modules"].label),
        (f"{tag}:bd:parse", by_key[f"{tag}:bd:parse"].label),
        (f"{tag}:s1:warm", "+ the run: read the kernel, discover, probe, remembered proof, decide, hand off"),
    ]
    rows = [
        "| warm scenario 1, step by step | CPU ms | step CPU ms | wall ms | step wall ms |",
        "|---|---:|---:|---:|---:|",
    ]
    cpu_before = wall_before = 0.0
    for key, label in steps:
        cpu, wall = statistics.median(by_key[key].cpu), statistics.median(by_key[key].wall)
        rows.append(
            f"| {label} | {cpu:.1f} | {cpu - cpu_before:+.1f} | {wall:.1f} | {wall - wall_before:+.1f} |"
        )
        cpu_before, wall_before = cpu, wall
    split = by_key[f"{tag}:bd:split"].split
    if split:
        classes, class_ms, patterns, pattern_ms = (statistics.median(column) for column in zip(*split))
        rows.append(
            f"\nOf the dkms_rustc modules' import: {classes:.0f} dataclasses created in {class_ms:.1f} ms, "
            f"{patterns:.0f} regular expressions compiled in {pattern_ms:.1f} ms (in-process timers)."
        )
    return "\n".join(rows)


def comparisons(cases: list[Case]) -> list[str]:
    by_key = {case.key: statistics.median(case.wall) for case in cases if case.wall}
    lines = []
    for key in sorted(k for k in by_key if k.endswith(":real:warm")):
        tag = key.split(":")[0]
        if "thorough" in by_key:
            lines.append(
                f"- thorough check / hook on the same real tree, warm ({tag}): "
                f"{by_key['thorough'] / by_key[key]:.1f}x (budget: at least 10x)"
            )
        if f"{tag}:real:cold" in by_key and "thorough" in by_key:
            lines.append(
                f"- thorough check / hook on the same real tree, cold ({tag}): "
                f"{by_key['thorough'] / by_key[f'{tag}:real:cold']:.1f}x"
            )
    for key in sorted(k for k in by_key if k.endswith(":s1:warm")):
        if "naive" in by_key:
            lines.append(
                f"- hook scenario 1 warm / naive shell check ({key.split(':')[0]}): "
                f"{by_key[key] / by_key['naive']:.1f}x"
            )
    return lines


def machine() -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import distro

        system = distro.name(pretty=True)
    except ImportError:
        system = platform.system()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return [
        f"{datetime.date.today().isoformat()}, {system}, kernel {platform.release()}, "
        f"{os.cpu_count()} CPUs ({cpu}), {memory:.0f} GiB RAM, load average "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} at the end"
    ]


def own_rss() -> float:
    """This script's resident size (MiB): the lower bound of the tree max RSS column."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def quiet_machine(progress: bool) -> Iterator[None]:
    """Hold the test suites' machine-wide lock, shared: the end-to-end tests write
    /etc/dkms-rustc.conf (read by every run of the tool) only while they hold it exclusively,
    so they wait for the benchmark, and the benchmark for them."""
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_PATH, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                print(f"bench: waiting for {LOCK_PATH} (tests are changing the machine)", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def system_config_state() -> tuple[int, int] | None:
    try:
        st = SYSTEM_CONFIG.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def interpreter_name(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import platform, sys; print(platform.python_version(), sys.executable)"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": MINIMAL_PATH},
    )
    return out.stdout.strip()


def deps_dir(work: Path, python: str) -> Path | None:
    """For an interpreter other than this one: pyelftools (read on a cold run) from this one's
    site, without running that site's .pth files."""
    if Path(python).resolve() == Path(sys.executable).resolve():
        return None
    spec = importlib.util.find_spec("elftools")
    if spec is None or spec.origin is None:
        return None
    deps = work / "deps"
    if not deps.exists():
        deps.mkdir()
        (deps / "elftools").symlink_to(Path(spec.origin).parent)
    return deps


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--python",
        action="append",
        help="interpreter to run the tool on (repeatable; default: the one running this script)",
    )
    parser.add_argument(
        "--src",
        type=Path,
        default=REPO / "src",
        help="the dkms_rustc sources to measure (default: this checkout's src/)",
    )
    parser.add_argument("--runs", type=int, default=21, help="warm runs per case (default 21)")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold runs per case (default 5)")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also measure what the warm scenario 1 run spends its time on, step by step",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary fixtures")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    with quiet_machine(not args.quiet):
        return run(args)


def run(args: argparse.Namespace) -> int:
    system_config = system_config_state()
    pythons = args.python or [sys.executable]
    work = Path(tempfile.mkdtemp(prefix="dkms-rustc-bench-"))
    try:
        fx = build_fixtures(work)
        cases: list[Case] = []
        names = []
        for index, python in enumerate(pythons):
            tag = f"py{index + 1}"
            names.append(f"{tag}: Python {interpreter_name(python)}")
            cases += interpreter_cases(
                python, tag, fx, args.src.resolve(), deps_dir(work, python), args.breakdown
            )
        cases += shell_cases(fx)
        measure(cases, args.runs, args.cold_runs, work, not args.quiet)
        lines = [*machine(), *fx.description]
        lines.append(
            f"tree max RSS (wait4) is never below this script's own RSS, {own_rss():.1f} MiB: "
            "Linux keeps the spawning process's peak across exec"
        )
        if system_config is not None or system_config_state() != system_config:
            lines.append(
                f"note: {SYSTEM_CONFIG} (read by every run of the tool) existed or changed during "
                "this run: figures may reflect its settings"
            )
        lines.append("")
        for index, name in enumerate(names):
            lines += [f"**{name}**", "", table(cases, f"py{index + 1}"), ""]
            if args.breakdown:
                lines += [breakdown_table(cases, f"py{index + 1}"), ""]
        lines += comparisons(cases)
    finally:
        if args.keep:
            print(f"bench: fixtures kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report = "\n".join(lines) + "\n"
    sys.stdout.write(report)
    if args.markdown:
        args.markdown.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
