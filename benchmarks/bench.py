#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""What the dkms-rustc hook costs, next to the floor of the interpreter it runs on.

A script, not a test: it builds its fixtures in a temporary directory, runs every case many
times round-robin (so that noise from other work on the machine hits all cases alike) and
prints one markdown table per installation, medians and ratios::

    python3 benchmarks/bench.py                            # Debian's python3: venv and system
    python3 benchmarks/bench.py --python /usr/bin/python3 --python python3.11 --markdown out.md

Installations, for each ``--python`` (default: /usr/bin/python3, else this interpreter):

- ``venv``: a virtual environment made from that interpreter, holding the tool and its
  dependencies, run through the launcher ``packaging/install-venv.sh`` installs
  (``packaging/dkms-rustc.launcher``, ``python -I``: the README's install);
- ``system``: the interpreter itself with the tool on a private sys.path directory (where a
  distribution package puts it), run through the console script pip writes: the packages'
  launcher runs ``-I``, which would ignore the ``PYTHONPATH`` that names that directory here
  (pip's script costs about a millisecond more: it imports ``re``).

Every ratio divides by ``python -c pass`` of the interpreter that runs the tool in that
installation (the venv's own, or the system one), never by another; ``python -I -S -c pass``
is shown beside it. The tool's code is installed with its byte code, as a package manager
does.

Scenarios, warm (the steady state of every later build: the run replays the remembered
outcome) and cold (an empty cache: the first build for a kernel, with its test compile):

1. ``pre-build``, one toolchain installed, and it matches (budget 2x the floor, warm);
2. ``pre-build``, 30 toolchains (copies of the real rustup and Debian compilers in a
   rustup-style home), one matches (2.5x);
3. ``pre-build``, 30 toolchains, none matches: the refusal (2.5x);
4. ``status`` over 10 kernel trees and the 30 toolchains (4x);
R. ``pre-build`` on the real Linux 7.2 tree of tests/realkernel/build-kernels.sh, when it is
   there, beside the thorough check users run today on it (benchmarks/thorough-check.sh) and
   the naive one (benchmarks/naive-check.sh).

Each run is timed with ``os.wait4`` (wall and CPU time). In separate untimed passes the
programs a run executes are counted with ``strace -f -e trace=execve`` and the tool's own
peak RSS is read (``VmHWM`` at exit). The runs use DKMS's minimal environment and the
module's build directory as working directory. While measuring, the script holds the test
suites' machine-wide lock (shared), so end-to-end tests do not rewrite /etc/dkms-rustc.conf.
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
from collections.abc import Iterator, Sequence
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
DEPENDENCIES = ("elftools", "packaging", "distro")
WARM_RUNS, COLD_RUNS = 31, 7

# The console script pip writes for ``dkms-rustc = dkms_rustc.cli:main``.
CONSOLE_SCRIPT = """\
#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from dkms_rustc.cli import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""
# Writes the process's own peak RSS (VmHWM, KiB) to $DKMS_RUSTC_BENCH_RSS at exit.
RSS_HOOK = """\
import atexit, os
def _report():
    with open('/proc/self/status') as status:
        peak = next(line.split()[1] for line in status if line.startswith('VmHWM:'))
    with open(os.environ['DKMS_RUSTC_BENCH_RSS'], 'w') as out:
        out.write(peak)
atexit.register(_report)
"""


@dataclass
class Case:
    """One command to measure."""

    label: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    expect: int = 0  # the exit status the run must have (else the wrong thing was measured)
    cache: Path | None = None  # emptied before every run: a cold case
    budget: float | None = None  # at most this many times the floor (warm cases)
    rss_argv: list[str] | None = None  # the same run, reporting its own peak RSS
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    self_rss: float | None = None
    processes: int | None = None

    @property
    def cold(self) -> bool:
        return self.cache is not None

    def reset(self) -> None:
        if self.cache is not None:
            shutil.rmtree(self.cache, ignore_errors=True)


@dataclass
class Installation:
    """The tool installed for one interpreter, one way, and the cases measured on it."""

    name: str
    python: Path  # the interpreter that runs the tool (a venv's own, or the system one)
    script: Path  # the console script
    env: dict[str, str]
    floor: Case
    bare: Case
    cases: list[Case] = field(default_factory=list)


def spawn(argv: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """Run ``argv`` in ``cwd``, output discarded: (wall ms, CPU ms, exit status)."""
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
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, os.waitstatus_to_exitcode(status)


def count_programs(case: Case, work: Path) -> int | None:
    """Programs the run executed, itself not counted (strace -f -e trace=execve)."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    log = work / "strace.log"
    subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=execve", "-o", str(log), "--", *case.argv],
        env=case.env,
        cwd=case.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    lines = log.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if "execve(" in line and line.rstrip().endswith("= 0")) - 1


def peak_rss(case: Case, work: Path) -> float | None:
    if case.rss_argv is None:
        return None
    report = work / "rss.txt"
    report.unlink(missing_ok=True)
    spawn(case.rss_argv, {**case.env, "DKMS_RUSTC_BENCH_RSS": str(report)}, case.cwd)
    try:
        return int(report.read_text()) / 1024
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- fixtures


def _copy_not_link(src: Path, dst: Path) -> None:
    """kerneltree hard-links the toolchain's libcore into rust/; a link changes that file's
    ctime, which is part of every identity naming it, so the benchmark's trees get copies."""
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    shutil.copy2(src, dst)


def make_toolchain(home: Path, name: str, real: kerneltree.RealToolchain) -> Path:
    """A rustup-style toolchain directory holding a copy of ``real``'s rustc.

    ``bin/rustc`` is copied (its own file, so discovery keeps it apart from the original);
    ``lib/`` is the real one (a symlink), so the copy is a working compiler whose sysroot
    holds the real metadata. Distribution compilers (sysroot /usr) get ``lib/rustlib`` only.
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
    kernel: Path  # the scenario 1-3 kernel tree
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
    one, thirty, none = (work / "homes" / name for name in ("one", "thirty", "none"))
    make_toolchain(one, f"{match.release}-{match.host}", match)
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
    versions = sorted({tc.version_text for tc in builders})
    description = [
        f"kernel trees made by tests/kerneltree.py; scenario 1-3's built with `{match.version_text}`",
        f"{TOOLCHAIN_COUNT} toolchains: copies of {', '.join(f'`{v}`' for v in versions)}",
    ]
    return Fixtures(work, match, kernel, one, thirty, none, trees, description)


def real_tree() -> Path | None:
    """The real Linux 7.2 tree tests/realkernel/build-kernels.sh made with the installed
    Debian rustc and gcc, if any (the cache may also hold trees other compilers made, which
    no compiler here matches)."""
    return kerneltree.real_kernel_tree("7.2", REAL_KERNELS)


def _stamp(tree: Path) -> dict[str, str]:
    text = (tree / ".dkms-rustc-stamp").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


# --------------------------------------------------------------------------- installations


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": MINIMAL_PATH},
    )
    return Path(out.stdout.strip())


def _install_into(directory: Path, src: Path, python: Path) -> None:
    """The tool's package (a copy, with byte code) and this interpreter's dependencies (links)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        src / "dkms_rustc", directory / "dkms_rustc", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise SystemExit(f"bench: {name} is not installed for {sys.executable}")
        (directory / name).symlink_to(Path(spec.origin).parent)
    subprocess.run(
        [str(python), "-m", "compileall", "-q", str(directory / "dkms_rustc")],
        check=True,
        env={"PATH": MINIMAL_PATH},
    )


def _floor_cases(python: Path, env: dict[str, str], build: Path) -> tuple[Case, Case]:
    floor = Case("`python -c pass` (the floor)", [str(python), "-c", "pass"], env, build)
    floor.rss_argv = [str(python), "-c", RSS_HOOK]
    bare = Case("`python -I -S -c pass`", [str(python), "-I", "-S", "-c", "pass"], env, build)
    return floor, bare


def installations(python: Path, src: Path, work: Path) -> list[Installation]:
    """The tool for ``python``: in a venv made from it, and on the interpreter itself."""
    made: list[Installation] = []
    base_env = {"PATH": MINIMAL_PATH, "module": "bench-module", "module_version": "1.0"}
    version = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    venv = work / "venv"
    subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], check=True)
    venv_python = venv / "bin" / "python3"
    _install_into(_site_packages(venv_python), src, venv_python)
    made.append(
        _installation(
            f"venv of {python} (Python {version})",
            venv_python,
            base_env,
            work / "b-venv",
            _launcher(venv_python),
        )
    )

    system_dir = work / "system-site"
    _install_into(system_dir, src, python)
    system_env = {**base_env, "PYTHONPATH": str(system_dir)}  # where a package would put it
    made.append(
        _installation(
            f"{python} itself (Python {version})",
            python,
            system_env,
            work / "b-system",
            CONSOLE_SCRIPT.format(python=python),
        )
    )
    return made


def _launcher(python: Path) -> str:
    """packaging/dkms-rustc.launcher for ``python``, as install-venv.sh writes it."""
    text = (REPO / "packaging" / "dkms-rustc.launcher").read_text()
    return f"#!{python} -I\n" + text.split("\n", 1)[1]


def _installation(
    name: str, python: Path, env: dict[str, str], where: Path, script_text: str
) -> Installation:
    where.mkdir(parents=True)
    script = where / "dkms-rustc"
    script.write_text(script_text)
    script.chmod(0o755)
    build = where / "build"
    build.mkdir()
    floor, bare = _floor_cases(python, env, build)
    return Installation(name, python, script, env, floor, bare)


# --------------------------------------------------------------------------- cases


def _hook_cases(
    inst: Installation, key: str, label: str, args: list[str], expect: int, budget: float | None
) -> list[Case]:
    """A warm and a cold case of ``dkms-rustc ARGS``, each with its own configuration and cache."""
    cases = []
    for cold in (False, True):
        mode = "cold" if cold else "warm"
        where = inst.script.parent
        cache = where / f"cache-{key}-{mode}"
        conf = where / f"{key}-{mode}.conf"
        conf.write_text(f"cache_dir = {cache}\nsearch_defaults = no\n")
        argv = [str(inst.script), args[0], "--config", str(conf), *args[1:]]
        rss = [str(inst.python), "-c", RSS_HOOK + f"import sys; sys.argv={argv!r}\n" + _RUN_SCRIPT]
        cases.append(
            Case(
                f"{label}: {mode}",
                argv,
                inst.env,
                inst.floor.cwd,
                expect=expect,
                cache=cache if cold else None,
                budget=None if cold else budget,
                rss_argv=rss,
            )
        )
    return cases


_RUN_SCRIPT = "from dkms_rustc.cli import main\nsys.exit(main())\n"


def scenario_cases(inst: Installation, fx: Fixtures) -> list[Case]:
    build = inst.floor.cwd
    pre = ["pre-build", "--build-dir", str(build), "--kernel-dir", str(fx.kernel)]
    status = ["status", "--search", str(fx.thirty), f"--dkms-tree={fx.work / 'empty-dkms-tree'}"]
    status += [f"--kernel-dir={tree}" for tree in fx.trees]
    (fx.work / "empty-dkms-tree").mkdir(exist_ok=True)
    cases = [
        *_hook_cases(inst, "s1", "1 pre-build, 1 toolchain, match", [*pre, "--search", str(fx.one)], 0, 2.0),
        *_hook_cases(
            inst, "s2", "2 pre-build, 30 toolchains, match", [*pre, "--search", str(fx.thirty)], 0, 2.5
        ),
        *_hook_cases(
            inst, "s3", "3 pre-build, 30 toolchains, none matches", [*pre, "--search", str(fx.none)], 40, 2.5
        ),
        *_hook_cases(inst, "s4", f"4 status, {TREE_COUNT} trees x 30 toolchains", status, 0, 4.0),
    ]
    real = real_tree()
    if real is not None:
        stamp = _stamp(real)
        rustc = stamp.get("input.rustc", "/usr/bin/rustc").split()[0]
        bindgen = stamp.get("input.bindgen", "").split()[0] if stamp.get("input.bindgen") else ""
        args = [
            "pre-build",
            "--build-dir",
            str(build),
            "--kernel-dir",
            str(real),
            "--search",
            str(Path(rustc).parent),
        ]
        if bindgen:
            args += ["--search", str(Path(bindgen).parent)]
        cases += _hook_cases(
            inst, "real", f"R pre-build on the real Linux 7.2 tree ({real.name})", args, 0, None
        )
    return cases


def shell_cases(fx: Fixtures, work: Path) -> list[Case]:
    here = Path(__file__).resolve().parent
    env = {"PATH": f"{fx.match.rustc.parent}:{MINIMAL_PATH}"}
    cases = [
        Case(
            "naive shell check (`rustc --version` = the config text)",
            ["/bin/sh", str(here / "naive-check.sh"), str(fx.kernel)],
            env,
            work,
        )
    ]
    real = real_tree()
    if real is not None and (real / "scripts" / "rust_is_available.sh").is_file():
        stamp = _stamp(real)
        rustc = stamp.get("input.rustc", "/usr/bin/rustc").split()[0]
        bindgen = stamp.get("input.bindgen", "bindgen").split()[0]
        lib_src = stamp.get("input.rust_lib_src", "")
        cases.append(
            Case(
                "thorough check on the real 7.2 tree (rust_is_available.sh, version, probe compile)",
                ["/bin/sh", str(here / "thorough-check.sh"), str(real), rustc, bindgen, lib_src],
                {"PATH": MINIMAL_PATH},
                work,
            )
        )
    return cases


# --------------------------------------------------------------------------- measuring


def run_case(case: Case) -> None:
    case.reset()
    wall, cpu, status = spawn(case.argv, case.env, case.cwd)
    if status != case.expect:
        subprocess.run(case.argv, env=case.env, cwd=case.cwd, check=False)  # show why
        present = f" ({SYSTEM_CONFIG} exists and may be why)" if SYSTEM_CONFIG.exists() else ""
        raise SystemExit(f"bench: {case.label}: exit status {status}, expected {case.expect}{present}")
    case.wall.append(wall)
    case.cpu.append(cpu)


def measure(cases: list[Case], runs: int, cold_runs: int, work: Path, progress: bool) -> None:
    warm = [case for case in cases if not case.cold]
    cold = [case for case in cases if case.cold]
    time.sleep(1.1)  # inputs younger than a second are not remembered (dkms_rustc.warm)
    for case in warm:  # prime: the full run that is remembered, checked for its exit status
        run_case(case)
        case.wall.clear()
        case.cpu.clear()
    for number in range(runs):
        if progress:
            print(f"bench: warm round {number + 1}/{runs}", file=sys.stderr)
        for case in warm:
            run_case(case)
    for number in range(cold_runs):
        if progress:
            print(f"bench: cold round {number + 1}/{cold_runs}", file=sys.stderr)
        for case in cold:
            run_case(case)
    for case in cases:  # untimed: programs executed, the tool's own peak RSS
        case.reset()
        case.processes = count_programs(case, work)
        case.reset()
        case.self_rss = peak_rss(case, work)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(inst: Installation, shells: list[Case]) -> str:
    floor_wall = _median(inst.floor.wall)
    rows = [
        "| case | runs | wall ms | CPU ms | peak RSS MiB | processes | x floor | budget |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for case in [inst.floor, inst.bare, *inst.cases, *shells]:
        wall = _median(case.wall)
        budget = ""
        if case.budget is not None:
            budget = f"≤ {case.budget:g}x: {'ok' if wall <= case.budget * floor_wall else '**over**'}"
        rss = "" if case.self_rss is None else f"{case.self_rss:.1f}"
        processes = "n/a" if case.processes is None else str(case.processes)
        rows.append(
            f"| {case.label} | {len(case.wall)} | {wall:.1f} | {_median(case.cpu):.1f} | {rss} | {processes} "
            f"| {wall / floor_wall:.2f} | {budget} |"
        )
    return "\n".join(rows)


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        import distro

        system = distro.name(pretty=True)
    except ImportError:
        system = platform.system()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{datetime.date.today().isoformat()}, {system}, kernel {platform.release()}, {os.cpu_count()} CPUs "
        f"({cpu}), {memory:.0f} GiB RAM, load average {load} at the end"
    )


@contextlib.contextmanager
def quiet_machine(progress: bool) -> Iterator[None]:
    """Hold the test suites' machine-wide lock, shared: the end-to-end tests write
    /etc/dkms-rustc.conf (which every run reads) only while they hold it exclusively."""
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


def default_pythons() -> list[Path]:
    debian = Path("/usr/bin/python3")
    return [debian] if debian.is_file() else [Path(sys.executable)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--python",
        action="append",
        type=Path,
        help="an interpreter to run the tool on, in a venv and itself (repeatable; default: "
        "/usr/bin/python3, else the one running this script)",
    )
    parser.add_argument("--src", type=Path, default=REPO / "src", help="the dkms_rustc sources to measure")
    parser.add_argument(
        "--runs", type=int, default=WARM_RUNS, help=f"warm runs per case (default {WARM_RUNS})"
    )
    parser.add_argument(
        "--cold-runs", type=int, default=COLD_RUNS, help=f"cold runs per case (default {COLD_RUNS})"
    )
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary fixtures")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    with quiet_machine(not args.quiet):
        report = run(args)
    sys.stdout.write(report)
    if args.markdown:
        args.markdown.write_text(report)
    return 0


def run(args: argparse.Namespace) -> str:
    work = Path(tempfile.mkdtemp(prefix="dkms-rustc-bench-"))
    try:
        fx = build_fixtures(work)
        insts: list[Installation] = []
        for index, python in enumerate(args.python or default_pythons()):
            for inst in installations(python, args.src.resolve(), work / f"py{index}"):
                inst.cases = scenario_cases(inst, fx)
                insts.append(inst)
        shells = shell_cases(fx, work)
        cases = [case for inst in insts for case in (inst.floor, inst.bare, *inst.cases)] + shells
        measure(cases, args.runs, args.cold_runs, work, not args.quiet)
        lines = [machine(), *fx.description, ""]
        if SYSTEM_CONFIG.exists():
            lines += [f"note: {SYSTEM_CONFIG} exists; every run read it", ""]
        for inst in insts:
            lines += [f"**{inst.name}**", "", table(inst, shells), ""]
    finally:
        if args.keep:
            print(f"bench: fixtures kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
