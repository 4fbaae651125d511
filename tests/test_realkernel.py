# SPDX-License-Identifier: GPL-2.0-or-later
"""The real thing: real Rust-enabled Linux 7.2 and 6.12 build trees, the real example module
(examples/rust-hello), real dkms of every generation (tests/dkms_harness.py), real make and real
compilers.

The trees come from tests/realkernel/build-kernels.sh (``${DKMS_RUSTC_KERNELS:-/var/cache/
dkms-rustc-ci/kernels}/<compilers>/linux-<series>``, one directory per rustc and gcc they were
built with); .ci/run builds them before the tests, and the tests use the trees whose stamp
names the installed /usr/bin/rustc and gcc, whichever versions the archive served. Without them
these tests skip with the reason, except where they must run (``CI=true`` or
``DKMS_RUSTC_REALKERNEL=require``, which .ci/run sets): there they fail. Run them alone with
``pytest -m realkernel``.

Scenarios (issue 7), the DKMS ones on every dkms generation and both kernels (more DKMS levers
on the real trees: tests/test_realkernel_dkms.py):
1. rustup's proxy first on PATH, the kernel's rustc (Debian's rustc-web) installed: the module
   builds, its .ko carries the kernel's vermagic and names the kernel's rustc in .comment;
2. the same module without the hook's dkms.conf lines: the build fails in its Rust step, by
   the wrong compiler (rustc's E0514 naming both compilers, or an earlier rejection of a flag
   the kernel chose for its own rustc: how depends on the two versions), and leaves no .ko;
3. the kernel's rustc out of reach (``search_defaults = no``): the build stops before any Rust
   is compiled, naming the kernel's rustc and the Debian package that provides it;
4. both kernels registered: ``dkms autoinstall`` for each builds and installs both;
5. ``dkms-rustc check`` against the real trees agrees with what the trees themselves say.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

import dkms_e2e as e2e
import kerneltree
from conftest import isolate, write_config
from dkms_harness import DkmsGeneration, DkmsHarnessError, DkmsResult, DkmsSandbox

pytestmark = [pytest.mark.realkernel, pytest.mark.dkms, pytest.mark.root]

ROOT = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = ROOT / "tests" / "realkernel" / "build-kernels.sh"
KERNELS = kerneltree.REAL_KERNELS
BINDGEN_WRAPPER = KERNELS / "tools" / "bindgen"
SERIES = ("7.2", "6.12")
MODULE = e2e.module_package()  # ("rust-hello", "0.1"): examples/rust-hello
KO = "rust_hello.ko"
DISTRIBUTION_RUSTC = kerneltree.DISTRIBUTION_RUSTC


def required() -> bool:
    """Must these tests run (CI), rather than skip when something is missing?"""
    return (
        os.environ.get("CI", "").lower() in {"1", "true", "yes"}
        or os.environ.get("DKMS_RUSTC_REALKERNEL") == "require"
    )


def unavailable(reason: str, fix: str = "") -> NoReturn:
    """Skip, saying why; fail instead where these tests must run."""
    if required():
        pytest.fail(
            f"{reason}; the real-kernel tests must run here (CI=true or DKMS_RUSTC_REALKERNEL=require)"
            f"{f': {fix}' if fix else ''}",
            pytrace=False,
        )
    pytest.skip(f"{reason}{f' ({fix})' if fix else ''}")


BUILD_FIX = f"build the trees with: sudo {BUILD_SCRIPT} (.ci/run does)"


# --------------------------------------------------------------------------- what the trees say


def read_auto_conf(tree: Path) -> dict[str, str]:
    values = {}
    for line in (tree / "include" / "config" / "auto.conf").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("CONFIG_"):
            values[key] = value[1:-1] if value.startswith('"') and value.endswith('"') else value
    return values


def kernel_vermagic(vmlinux: Path, release: str) -> str:
    """The string the kernel compares a module's vermagic with (VERMAGIC_STRING in vmlinux)."""
    data = vmlinux.read_bytes()
    found = {m.group(1) for m in re.finditer(rb"\0(" + re.escape(release.encode()) + rb" [ -~]*?)\0", data)}
    assert len(found) == 1, f"vermagic candidates in {vmlinux}: {found}"
    return found.pop().decode()


def length_prefixed_rustc(data: bytes) -> str:
    """The compiler string of a metadata header: a length byte, then ``rustc ...``."""
    start = data.index(b"rustc ")
    return data[start : start + data[start - 1]].decode()


def elf_section(path: Path, name: str) -> bytes:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as stream:
        section = ELFFile(stream).get_section_by_name(name)
        assert section is not None, f"{path} has no {name} section"
        return bytes(section.data())


def ko_facts(ko: Path) -> tuple[str, list[str]]:
    """(vermagic, the rustc lines of .comment) of a built module."""
    modinfo = [part.decode() for part in elf_section(ko, ".modinfo").split(b"\0") if part]
    vermagic = next(entry.split("=", 1)[1] for entry in modinfo if entry.startswith("vermagic="))
    comment = [part.decode() for part in elf_section(ko, ".comment").split(b"\0") if part]
    return vermagic, [line for line in comment if line.startswith("rustc")]


@dataclass(frozen=True)
class RealKernel:
    series: str
    tree: Path
    release: str
    rustc_text: str  # CONFIG_RUSTC_VERSION_TEXT
    bindgen_text: str  # CONFIG_BINDGEN_VERSION_TEXT
    vermagic: str
    stamp: dict[str, str]

    @property
    def comment_line(self) -> str:
        """How rustc names itself in a .ko's .comment section."""
        return "rustc version " + self.rustc_text[len("rustc ") :]


def compilers_name(rustc_text: str, cc_text: str) -> str:
    """build-kernels.sh's directory name for trees built with these compilers (name_of)."""

    def name_of(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9.+]+", "-", text).rstrip("-")

    return f"{name_of(rustc_text)}_{name_of(cc_text)}"


def load_kernel(series: str, rustc_text: str, cc_text: str) -> RealKernel:
    tree = kerneltree.real_kernel_tree(series, KERNELS)
    if tree is None:
        unavailable(
            f"no Linux {series} tree built with {rustc_text!r} and {cc_text!r} in {KERNELS}",
            BUILD_FIX,
        )
    needed = ("rust/libkernel.rmeta", "rust/libmacros.so", "Module.symvers", "scripts/module.lds", "vmlinux")
    missing = [name for name in needed if not (tree / name).exists()]
    if missing:
        unavailable(
            f"the Linux {series} tree at {tree} is unfinished (missing {', '.join(missing)})", BUILD_FIX
        )
    config = read_auto_conf(tree)
    release = (tree / "include" / "config" / "kernel.release").read_text().strip()
    return RealKernel(
        series=series,
        tree=tree,
        release=release,
        rustc_text=config["CONFIG_RUSTC_VERSION_TEXT"],
        bindgen_text=config.get("CONFIG_BINDGEN_VERSION_TEXT", ""),
        vermagic=kernel_vermagic(tree / "vmlinux", release),
        stamp=kerneltree.read_stamp(tree),
    )


@pytest.fixture(scope="session")
def real_kernels() -> dict[str, RealKernel]:
    """The trees built with the compilers installed here (whichever versions those are)."""
    rustc_text, cc_text = kerneltree.installed_compilers()
    if rustc_text is None or cc_text is None:
        unavailable(
            f"no working {DISTRIBUTION_RUSTC} or gcc (Debian's rustc-web or rustc, and gcc)", BUILD_FIX
        )
    kernels = {series: load_kernel(series, rustc_text, cc_text) for series in SERIES}
    for kernel in kernels.values():
        assert kernel.rustc_text == rustc_text, (
            f"{kernel.tree}: CONFIG_RUSTC_VERSION_TEXT {kernel.rustc_text!r}"
        )
    return kernels


# --------------------------------------------------------------------------- dkms set-up


@dataclass(frozen=True)
class Proxy:
    bin_dir: Path  # ~/.cargo/bin
    version_text: str  # what `rustc --version` through it prints (RUSTUP_TOOLCHAIN=stable)


@pytest.fixture(scope="session")
def rustup_proxy() -> Proxy:
    """rustup's ``rustc`` proxy, to put first on PATH: its stable toolchain is not the kernel's."""
    homes = [os.environ.get("CARGO_HOME"), os.path.expanduser("~/.cargo"), "/root/.cargo"]
    for home in filter(None, homes):
        rustc = Path(home) / "bin" / "rustc"
        if rustc.is_file() and os.path.basename(os.path.realpath(rustc)) == "rustup":
            env = {**os.environ, "PATH": f"{rustc.parent}:{e2e.BASE_PATH}", "RUSTUP_TOOLCHAIN": "stable"}
            out = subprocess.run(["rustc", "--version"], capture_output=True, text=True, env=env, check=False)
            if out.returncode == 0:
                return Proxy(rustc.parent, out.stdout.strip())
    unavailable("no rustup proxy (~/.cargo/bin/rustc) with a stable toolchain on this machine")


@pytest.fixture(scope="session")
def dkms_generations() -> list[DkmsGeneration]:
    if os.geteuid() != 0:
        unavailable("the real-DKMS scenarios install the tool for DKMS's shim: they need root")
    try:
        return e2e.generations_or_skip()
    except DkmsHarnessError as error:
        unavailable(f"the dkms generations cannot be set up: {error}")


@pytest.fixture(params=e2e.GENERATION_IDS)
def generation(request: pytest.FixtureRequest, dkms_generations: list[DkmsGeneration]) -> DkmsGeneration:
    return e2e.generation_or_skip(request.param)


def _var_lib_dkms_snapshot() -> list[tuple[str, float]]:
    root = Path("/var/lib/dkms")
    if not root.exists():
        return []
    return sorted((str(p), p.lstat().st_mtime) for p in [root, *root.rglob("*")])


@pytest.fixture(autouse=True)
def _real_dkms_tree_untouched() -> Iterator[None]:
    before = _var_lib_dkms_snapshot()
    yield
    assert _var_lib_dkms_snapshot() == before, "a test touched the real /var/lib/dkms"


def config(tmp_path: Path, extra: str = "") -> str:
    """/etc/dkms-rustc.conf for one test: a private cache, then ``extra``."""
    return f"cache_dir = {tmp_path / 'dkms-rustc-cache'}\n{extra}"


def make_box(generation: DkmsGeneration, tmp_path: Path, kernel: RealKernel, proxy: Proxy) -> DkmsSandbox:
    """A sandbox building against ``kernel`` with the real make; PATH starts with rustup's proxy
    (stable), as on a developer's machine where `rustc` is rustup's."""
    box = e2e.sandbox(
        generation,
        tmp_path,
        kernel.tree,
        extra_env={"PATH": f"{proxy.bin_dir}:{e2e.BASE_PATH}", "RUSTUP_TOOLCHAIN": "stable"},
    )
    box.timeout = 600
    return box


def tool(launcher: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed launcher, run as the shim runs it (a minimal environment)."""
    assert launcher is not None
    env = {"PATH": e2e.BASE_PATH, "LC_ALL": "C"}
    return subprocess.run([str(launcher), *args], capture_output=True, text=True, env=env, check=False)


def dkms(box: DkmsSandbox, kernel: RealKernel | None, *args: str) -> DkmsResult:
    """``dkms ARGS`` in the sandbox; with ``kernel``: ``-k <release> --kernelsourcedir <tree>``."""
    extra: list[str] = []
    if kernel is not None:
        box.kernelver = kernel.release  # where DkmsSandbox looks for the saved make.log
        (box.install_tree / kernel.release).mkdir(parents=True, exist_ok=True)
        extra = ["-k", kernel.release, "--kernelsourcedir", str(kernel.tree)]
    return box.run(*args, *extra, module=MODULE)


def logs(result: DkmsResult) -> str:
    """What the admin sees: dkms's terminal output and the build's make.log."""
    return f"{result.output}\n--- make.log ({result.make_log})\n{result.make_log_text or ''}"


def assert_the_wrong_rustc_failed(built: DkmsResult, kernel: RealKernel, proxy: Proxy) -> None:
    """The build failed in the Rust step: kbuild ran `rustc` (rustup's proxy), and that
    compiler, not the kernel's, stopped it: E0514 (rustc's own words name the kernel's
    compiler, which wrote the crates, and the one kbuild ran), or, between versions further
    apart, an earlier rejection of a flag the kernel's configuration chose for its own rustc
    (rustup's 1.95 against a 1.85 kernel: `unknown unstable option: no-jump-tables`). Which of
    the two depends on the compilers the archive serves; either proves the point."""
    make_log, text = built.make_log_text or "", logs(built)
    step = re.search(r"RUSTC \[M\] \S*rust_hello\.o", make_log)
    assert step is not None, text
    assert re.search(r"^error(\[E\d{4}\])?: ", make_log[step.end() :], re.M), text
    if "error[E0514]" in make_log:
        assert kernel.rustc_text in make_log and proxy.version_text in make_log, text


def built_ko(box: DkmsSandbox, kernel: RealKernel) -> Path:
    return box.dkms_tree / MODULE[0] / MODULE[1] / kernel.release / box.arch / "module" / KO


def build_dir(box: DkmsSandbox) -> Path:
    return box.dkms_tree / MODULE[0] / MODULE[1] / "build"


def assert_built_for(box: DkmsSandbox, kernel: RealKernel) -> None:
    ko = built_ko(box, kernel)
    assert ko.is_file(), f"no {ko}"
    vermagic, rustc_lines = ko_facts(ko)
    assert vermagic == kernel.vermagic
    assert rustc_lines == [kernel.comment_line]


def assert_installed_for(box: DkmsSandbox, kernel: RealKernel) -> None:
    installed = sorted((box.install_tree / kernel.release).rglob(f"{KO}*"))
    assert [path.name for path in installed] == [KO], installed
    assert ko_facts(installed[0]) == ko_facts(built_ko(box, kernel))


# --------------------------------------------------------------------------- scenarios 1-4


def report(scenario: str, generation: DkmsGeneration, series: str, result: DkmsResult) -> None:
    """One line per scenario, generation and kernel (pytest -s shows them; the issue note uses them)."""
    print(f"\nREALKERNEL {scenario} | dkms {generation.name} | linux {series} | exit {result.exit_code} "
          f"| {result.seconds:.1f}s")  # fmt: skip


@pytest.mark.parametrize("series", SERIES)
def test_1_builds_with_the_kernels_rustc_although_rustup_proxy_is_first_on_path(
    series: str,
    generation: DkmsGeneration,
    real_kernels: dict[str, RealKernel],
    rustup_proxy: Proxy,
    tmp_path: Path,
) -> None:
    kernel = real_kernels[series]
    with e2e.machine(config(tmp_path)):
        box = make_box(generation, tmp_path, kernel, rustup_proxy)
        # The premise: plain `rustc` in DKMS's environment is rustup's proxy, not the kernel's.
        assert shutil.which("rustc", path=box.env()["PATH"]) == str(rustup_proxy.bin_dir / "rustc")
        assert rustup_proxy.version_text != kernel.rustc_text
        assert kernel.rustc_text.endswith("(built from a source tarball)")  # Debian's rustc-web

        e2e.put_module(box)
        added = dkms(box, None, "add", "/".join(MODULE))
        assert added.exit_code == 0, added.output
        built = dkms(box, kernel, "build", "/".join(MODULE))
        report("1 proxy first on PATH: build", generation, series, built)
        text = logs(built)
        assert built.exit_code == 0, text
        hook = e2e.hook_output(generation, built)
        assert (
            f"OK: kernel {kernel.release}: building with {kernel.rustc_text} from {DISTRIBUTION_RUSTC}"
            in hook
        )
        assert re.search(
            rf"make arguments in \S+: RUSTC={DISTRIBUTION_RUSTC} HOSTRUSTC={DISTRIBUTION_RUSTC}", hook
        )
        assert re.search(r"RUSTC \[M\] \S*rust_hello\.o", built.make_log_text or ""), text
        assert_built_for(box, kernel)

        installed = dkms(box, kernel, "install", "/".join(MODULE))
        assert installed.exit_code == 0, logs(installed)
        assert_installed_for(box, kernel)


@pytest.mark.parametrize("series", SERIES)
def test_2_without_the_hook_lines_the_wrong_rustc_fails_the_rust_step(
    series: str,
    generation: DkmsGeneration,
    real_kernels: dict[str, RealKernel],
    rustup_proxy: Proxy,
    tmp_path: Path,
) -> None:
    kernel = real_kernels[series]
    with e2e.machine(config(tmp_path)):
        box = make_box(generation, tmp_path, kernel, rustup_proxy)
        # The premise: kbuild's `rustc` (its Makefile's default) is rustup's proxy, another compiler.
        assert shutil.which("rustc", path=box.env()["PATH"]) == str(rustup_proxy.bin_dir / "rustc")
        assert rustup_proxy.version_text != kernel.rustc_text
        e2e.put_module(box, hook=False, shim="missing")
        assert dkms(box, None, "add", "/".join(MODULE)).exit_code == 0
        built = dkms(box, kernel, "build", "/".join(MODULE))
    make_log = built.make_log_text or ""
    e0514 = "error[E0514]: found crate `core` compiled by an incompatible version of rustc" in make_log
    report(
        f"2 without the dkms.conf lines ({'E0514' if e0514 else 'rejected earlier'})",
        generation,
        series,
        built,
    )
    text = logs(built)
    assert built.exit_code != 0, text
    assert_the_wrong_rustc_failed(built, kernel, rustup_proxy)
    assert "dkms-rustc: " not in text  # the hook is not there
    assert not built_ko(box, kernel).exists()
    assert not list(build_dir(box).glob("*.ko"))


def _os_release() -> dict[str, str]:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return {}
    return {k: v.strip('"') for k, _, v in (line.partition("=") for line in text.splitlines()) if k}


@pytest.mark.parametrize("series", SERIES)
def test_3_kernels_rustc_out_of_reach_stops_before_any_rust_is_compiled(
    series: str,
    generation: DkmsGeneration,
    real_kernels: dict[str, RealKernel],
    rustup_proxy: Proxy,
    tmp_path: Path,
) -> None:
    kernel = real_kernels[series]
    # /usr/bin/rustc stays installed; the configuration takes it out of discovery.
    with e2e.machine(config(tmp_path, "search_defaults = no\n")):
        box = make_box(generation, tmp_path, kernel, rustup_proxy)
        e2e.put_module(box)
        assert dkms(box, None, "add", "/".join(MODULE)).exit_code == 0
        built = dkms(box, kernel, "build", "/".join(MODULE))
    report("3 kernel's rustc out of reach", generation, series, built)
    text = logs(built)
    assert built.exit_code != 0, text
    hook = e2e.hook_output(generation, built)
    assert (
        f"REFUSED: no installed rustc matches kernel {kernel.release}: it needs {kernel.rustc_text}" in hook
    )
    assert "were not searched (search_defaults = no, /etc/dkms-rustc.conf:" in hook
    fixes = [line for line in hook.splitlines() if line.startswith("dkms-rustc: fix: ")]
    assert fixes, text
    release = kernel.rustc_text.split()[1]
    if _os_release().get("VERSION_CODENAME") == "bookworm":
        assert any("apt install rustc-web" in line and release in line for line in fixes), fixes
    # Nothing compiled: no Rust step in make.log, no object, no module.
    assert "RUSTC [M]" not in text and "error[E" not in text
    assert not list(build_dir(box).glob("*.o")) and not list(build_dir(box).glob("*.ko"))
    assert not built_ko(box, kernel).exists()
    if not generation.honours_pre_build_exit:
        # dkms 3.0 ran make anyway: the hand-off made it stop at once with the reason.
        assert "this module build was stopped before compiling (refused)" in (built.make_log_text or "")


def _autoinstall_both(box: DkmsSandbox, generation: DkmsGeneration, kernels: dict[str, RealKernel]) -> None:
    e2e.put_module(box)
    assert dkms(box, None, "add", "/".join(MODULE)).exit_code == 0
    for series in SERIES:
        result = dkms(box, kernels[series], "autoinstall")
        report("4 autoinstall", generation, series, result)
        assert result.exit_code == 0, logs(result)


def test_4_autoinstall_builds_and_installs_for_both_kernels(
    generation: DkmsGeneration,
    real_kernels: dict[str, RealKernel],
    rustup_proxy: Proxy,
    tmp_path: Path,
) -> None:
    with e2e.machine(config(tmp_path)) as launcher:
        box = make_box(generation, tmp_path, real_kernels[SERIES[0]], rustup_proxy)
        _autoinstall_both(box, generation, real_kernels)
        status = dkms(box, None, "status").output
        checks = {
            series: tool(launcher, "check", "--kernel-dir", str(real_kernels[series].tree))
            for series in SERIES
        }
    for series in SERIES:
        kernel = real_kernels[series]
        assert_built_for(box, kernel)
        assert_installed_for(box, kernel)
        line = rf"^{MODULE[0]}/{MODULE[1]}, {re.escape(kernel.release)}, \S+: installed"
        assert re.search(line, status, re.M), status
        # and the admin's report for each registered kernel (status itself: the next test)
        check = checks[series]
        assert check.returncode == 0, check.stdout + check.stderr
        headline = f"dkms-rustc: OK: kernel {kernel.release}: building with {kernel.rustc_text}"
        assert check.stdout.startswith(headline), check.stdout


def test_4_status_reports_both_kernels(
    generation: DkmsGeneration,
    real_kernels: dict[str, RealKernel],
    rustup_proxy: Proxy,
    tmp_path: Path,
) -> None:
    """``dkms-rustc status`` over both trees and the sandbox's DKMS tree, after autoinstall."""
    with e2e.machine(config(tmp_path)) as launcher:
        box = make_box(generation, tmp_path, real_kernels[SERIES[0]], rustup_proxy)
        _autoinstall_both(box, generation, real_kernels)
        trees = [arg for series in SERIES for arg in ("--kernel-dir", str(real_kernels[series].tree))]
        table = tool(launcher, "status", *trees, "--dkms-tree", str(box.dkms_tree))
        run = tool(launcher, "status", *trees, "--dkms-tree", str(box.dkms_tree), "--json")
    assert table.returncode == 0 and run.returncode == 0, table.stdout + table.stderr
    assert table.stdout.startswith("OK: 2 of 2 kernels can build Rust modules"), table.stdout
    data = json.loads(run.stdout)
    by_release = {entry["kernel"]["release"]: entry for entry in data["kernels"]}
    assert sorted(by_release) == sorted(real_kernels[series].release for series in SERIES)
    for series in SERIES:
        kernel = real_kernels[series]
        entry = by_release[kernel.release]
        assert entry["verdict"] == "ok", entry["messages"]
        assert entry["kernel"]["rustc"] == kernel.rustc_text
        assert entry["selected"]["rustc"] == str(DISTRIBUTION_RUSTC)
        row = next(line for line in table.stdout.splitlines() if f"  {kernel.release}  " in line)
        assert row.startswith("OK ") and kernel.rustc_text in row and str(DISTRIBUTION_RUSTC) in row, row
    (module,) = [m for m in data["modules"] if (m["name"], m["version"]) == MODULE]
    assert module["uses_dkms_rustc"] is True
    builds = {build["kernel"]: build["installed"] for build in module["builds"]}
    assert builds == {real_kernels[series].release: True for series in SERIES}
    releases = "; ".join(f"{real_kernels[series].release}: installed" for series in SERIES)
    assert f"{MODULE[0]}/{MODULE[1]} [dkms-rustc;" in table.stdout and releases in table.stdout, table.stdout


# --------------------------------------------------------------------------- scenario 5


@pytest.fixture
def check_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No machine configuration; a private cache."""
    isolate(monkeypatch, tmp_path)
    return write_config(tmp_path, search_defaults=True)


@pytest.mark.parametrize("series", SERIES)
def test_5_check_reads_the_real_tree(
    series: str,
    real_kernels: dict[str, RealKernel],
    check_config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dkms_rustc.cli import main

    kernel = real_kernels[series]
    tree = kernel.tree
    code = main(
        ["check", "--json", "--kernel-dir", str(tree), "--search", str(BINDGEN_WRAPPER.parent),
         "--config", str(check_config)]
    )  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["verdict"] == "ok", data["messages"]
    found = data["kernel"]

    # The expected rustc: from the real metadata, equal to what kbuild recorded in auto.conf.
    assert found["release"] == kernel.release
    assert found["config"] == str(tree / "include" / "config" / "auto.conf")
    assert found["config_rustc_text"] == kernel.rustc_text
    assert found["rustc"] == kernel.rustc_text
    assert found["rustc_source"] == str(tree / "rust" / "libkernel.rmeta")
    on_disk = sorted(str(p) for p in (tree / "rust").iterdir() if p.name.endswith((".rmeta", ".so")))
    assert sorted(entry["path"] for entry in found["metadata"]) == on_disk
    for entry in found["metadata"]:
        path = Path(entry["path"])
        # an independent reading: the length-prefixed string after the header
        raw = elf_section(path, ".rustc") if path.suffix == ".so" else path.read_bytes()[:4096]
        assert entry["compiler"] == length_prefixed_rustc(raw) == kernel.rustc_text, entry
    assert str(tree / "rust" / "libmacros.so") in on_disk

    # The crates a module build links against, from the tree's own scripts/Makefile.build.
    makefile = (tree / "scripts" / "Makefile.build").read_text()
    externs = list(dict.fromkeys(re.findall(r"--extern[ =]([A-Za-z_]\w*)", makefile)))
    assert "kernel" in externs
    assert found["required_crates"] == externs and found["missing_crates"] == []
    for crate in ("core", *externs):
        assert any((tree / "rust" / f"lib{crate}.{ext}").is_file() for ext in ("rmeta", "so")), crate

    # bindgen: the wrapper is recognised as the kernel's own bindgen, at or above the minimum.
    minimum = subprocess.run(
        ["sh", str(tree / "scripts" / "min-tool-version.sh"), "bindgen"],
        capture_output=True, text=True, check=True, env={**os.environ, "SRCARCH": "x86"},
    ).stdout.strip()  # fmt: skip
    assert found["min_bindgen"] == minimum
    # the bindgen build-kernels.sh built the tree with (trixie's package; the stamp says which)
    wrapper_text = kernel.stamp["input.bindgen"].removeprefix(f"{BINDGEN_WRAPPER} ")
    assert found["bindgen"] == kernel.bindgen_text == wrapper_text
    selected = data["selected"]
    assert selected["bindgen"] == str(BINDGEN_WRAPPER) and selected["bindgen_version"] == wrapper_text
    assert selected["rustc"] == str(DISTRIBUTION_RUSTC) and selected["rustc_version"] == kernel.rustc_text
    assert f"BINDGEN={BINDGEN_WRAPPER}" in selected["make_args"]
    assert data["proofs"][str(DISTRIBUTION_RUSTC)]["ok"] is True


def test_the_trees_are_the_documented_ones(real_kernels: dict[str, RealKernel]) -> None:
    """7.2 from sid's linux-source-7.2, 6.12 from trixie's linux-source-6.12 (build-kernels.sh),
    each in the directory named after the compilers it was built with; 7.2 with module signing."""
    for series, suite in (("7.2", "sid"), ("6.12", "trixie")):
        kernel = real_kernels[series]
        assert kernel.release.startswith(series + ".")
        assert kernel.stamp["result.source"].startswith(f"linux-source-{series} ")
        assert kernel.stamp["result.source"].endswith(f"({suite})")
        rustc_text = kernel.stamp["input.rustc"].removeprefix(f"{DISTRIBUTION_RUSTC} ")
        assert kernel.tree.parent.name == compilers_name(rustc_text, kernel.stamp["input.cc"])
        print(
            f"linux-{series}: {kernel.release}, built in {kernel.stamp.get('result.build_seconds')}s "
            f"(make), {kernel.stamp.get('result.total_seconds')}s in all, in {kernel.tree}",
            file=sys.stderr,
        )
    signed = real_kernels["7.2"]
    config = read_auto_conf(signed.tree)
    assert config.get("CONFIG_MODULE_SIG") == "y" and config.get("CONFIG_MODULE_SIG_HASH"), config
    assert os.access(signed.tree / "scripts" / "sign-file", os.X_OK)
    assert (signed.tree / "certs" / "signing_key.pem").is_file()
    assert (signed.tree / "certs" / "signing_key.x509").is_file()
    assert read_auto_conf(real_kernels["6.12"].tree).get("CONFIG_MODULE_SIG") is None
