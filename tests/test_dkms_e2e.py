# SPDX-License-Identifier: GPL-2.0-or-later
"""The whole path, with real parts: `dkms add/build/install/status/remove` of examples/rust-hello
(its dkms.conf holds the README's lines verbatim) on every DKMS generation (Debian's 3.0.10,
which ignores PRE_BUILD's exit status, 3.2.2, which stops on it, and upstream 3.3.0 and 3.4.3
where installed: tests/dkms_harness.py), with the real make and
real compilers, against kbuild-style trees whose rust/ metadata a real rustc wrote
(tests/kerneltree.py), so a wrong rustc fails with rustc's own E0514.

The tool runs as DKMS runs it: the module's shim finds THIS checkout's dkms-rustc at
/usr/local/bin and reads /etc/dkms-rustc.conf (both put in place for each test and restored
afterwards by tests/dkms_e2e.py). Run these alone with ``python3 -m pytest -m dkms``.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import dkms_e2e as e2e
import kerneltree
from dkms_harness import DEFAULT_KERNELVER, DkmsGeneration, DkmsResult, DkmsSandbox
from dkms_rustc.exitcodes import ExitCode

pytestmark = [pytest.mark.dkms, pytest.mark.root]

NAME, VERSION = e2e.module_package()
MODULE = "rust_hello"
HOOK_DID_NOT_RUN = "/nonexistent/dkms-rustc-PRE_BUILD-hook-did-not-run"
E0514 = "error[E0514]: found crate `core` compiled by an incompatible version of rustc"


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    if os.geteuid() != 0 and os.environ.get("DKMS_RUSTC_REQUIRE_E2E") != "1":
        pytest.skip("the end-to-end tests install the tool for DKMS's shim: run them as root")


@pytest.fixture(params=e2e.GENERATION_IDS)
def generation(request: pytest.FixtureRequest) -> DkmsGeneration:
    return e2e.generation_or_skip(request.param)


@pytest.fixture(scope="module")
def pair() -> e2e.ToolchainPair:
    chosen = e2e.choose_toolchains(kerneltree.find_real_toolchains())
    if chosen is None:
        pytest.fail("these tests need two different real rustc builds (rustup's, Debian's rustc-web)")
    return chosen


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory, pair: e2e.ToolchainPair) -> dict[str, Path]:
    """The kernel's three variants, all recording the kernel's compiler."""
    base = tmp_path_factory.mktemp("e2e-kernels")
    return {
        variant: kerneltree.make_kernel_tree(
            base / variant, pair.kernel, variant=variant, kernelrelease=DEFAULT_KERNELVER
        )
        for variant in kerneltree.VARIANTS
    }


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


def _config(tmp_path: Path, text: str = "") -> str:
    return f"cache_dir = {tmp_path / 'cache'}\n{text}"


def _no_match(tmp_path: Path, pair: e2e.ToolchainPair, text: str = "") -> str:
    """Discovery restricted to every real toolchain but the kernel's: none matches."""
    searched = "".join(f"search = {tc.rustc.parent}\n" for tc in pair.others)
    return _config(tmp_path, f"search_defaults = no\n{searched}{text}")


def _box(generation: DkmsGeneration, tmp_path: Path, tree: Path, pair: e2e.ToolchainPair) -> DkmsSandbox:
    return e2e.sandbox(generation, tmp_path, tree, path_rustc=pair.path.rustc)


def _explain(result: DkmsResult) -> str:
    return f"exit {result.exit_code}\n--- output\n{result.output}\n--- make.log\n{result.make_log_text}"


def _report(scenario: str, generation: DkmsGeneration, result: DkmsResult, *key: str) -> None:
    """One line per scenario and generation (pytest -s shows them; the issue note uses them)."""
    print(f"\nE2E {scenario} | dkms {generation.name} | exit {result.exit_code} | {result.seconds:.1f}s")
    for line in key:
        print(f"    {line.strip()}")


def _first(text: str, needle: str) -> str:
    return next((line for line in text.splitlines() if needle in line), f"(no line with {needle!r})")


def _no_rust_compiled(box: DkmsSandbox, result: DkmsResult) -> None:
    log = result.make_log_text or ""
    assert "RUSTC [M]" not in log and "error[E" not in log, _explain(result)
    build = box.dkms_tree / NAME / VERSION / "build"
    assert not list(build.glob("*.o")) and not list(build.glob("*.ko")), _explain(result)


def _add(box: DkmsSandbox) -> None:
    added = box.add(NAME, VERSION)
    assert added.exit_code == 0, _explain(added)


# ------------------------------------------------------------------------------ 1. selection


def test_1_selects_the_installed_match_not_the_rustc_on_path(
    generation: DkmsGeneration, trees: dict[str, Path], pair: e2e.ToolchainPair, tmp_path: Path
) -> None:
    with e2e.machine(_config(tmp_path)):
        box = _box(generation, tmp_path, trees["rust"], pair)
        e2e.put_module(box)
        _add(box)
        built = box.build(NAME, VERSION)
        assert built.exit_code == 0, _explain(built)
        hook = e2e.hook_output(generation, built)
        assert f"RUSTC={pair.kernel.rustc}" in hook, _explain(built)
        assert "RUSTC [M]" in (built.make_log_text or "")
        ko = e2e.built_module(box, NAME, VERSION, MODULE)
        assert ko is not None, _explain(built)
        comment = e2e.elf_comment(ko)
        expected = pair.kernel.version_text.replace("rustc ", "rustc version ", 1)
        assert expected in comment, comment
        assert not any(pair.path.release in line for line in comment if line.startswith("rustc"))
        assert f"{NAME}/{VERSION}, {box.kernelver}, {box.arch}: built" in box.status(NAME).output

        installed = box.install(NAME, VERSION)
        assert installed.exit_code == 0, _explain(installed)
        assert list((box.install_tree / box.kernelver).rglob(f"{MODULE}.ko*"))
        assert f"{NAME}/{VERSION}, {box.kernelver}, {box.arch}: installed" in box.status(NAME).output
        assert box.remove(NAME, VERSION).exit_code == 0
        assert not list((box.install_tree / box.kernelver).rglob(f"{MODULE}.ko*"))
    _report(
        "1 match installed, another rustc first on PATH",
        generation,
        built,
        f"PATH rustc: {pair.path.version_text}; kernel: {pair.kernel.version_text}",
        _first(hook, "make arguments in"),
        f".ko .comment: {expected}",
        f"dkms install: exit {installed.exit_code}",
    )


# ------------------------------------------------------------------------------ 2. refusal


def test_2_no_match_stops_before_compiling_with_the_fix(
    generation: DkmsGeneration, trees: dict[str, Path], pair: e2e.ToolchainPair, tmp_path: Path
) -> None:
    with e2e.machine(_no_match(tmp_path, pair)):
        box = _box(generation, tmp_path, trees["rust"], pair)
        e2e.put_module(box)
        _add(box)
        built = box.build(NAME, VERSION)
    log = built.make_log_text or ""
    assert built.exit_code != 0, _explain(built)
    assert built.exit_code == (ExitCode.REFUSED if generation.honours_pre_build_exit else 10), _explain(built)
    headline = f"no installed rustc matches kernel {box.kernelver}: it needs {pair.kernel.version_text}"
    assert headline in log, _explain(built)
    assert "dkms-rustc: fix: " in log
    _no_rust_compiled(box, built)
    if generation.honours_pre_build_exit:
        # 3.1.5+: the terminal says the hook failed and where the log is; make never ran.
        assert f"(bad exit status: {ExitCode.REFUSED})" in built.output, _explain(built)
        assert "make.log" in built.output
        shown = _first(built.output, "bad exit status")
    else:
        # 3.0.10 ignores the status: the hook's words on the terminal, then make stops at once
        # on the refusal makefile (its lines, and make's `*** ... Stop.`, in make.log).
        assert headline in built.output, _explain(built)
        assert "this module build was stopped before compiling (refused)" in log
        shown = _first(built.output, "REFUSED")
    _report(
        "2 no matching toolchain",
        generation,
        built,
        f"make.log: {_first(log, 'REFUSED')}",
        f"make.log: {_first(log, 'fix:')}",
        f"terminal: {shown}",
    )


# ------------------------------------------------------------------------------ 3. no hook


def test_3_without_the_hook_the_same_build_fails_with_e0514(
    generation: DkmsGeneration, trees: dict[str, Path], pair: e2e.ToolchainPair, tmp_path: Path
) -> None:
    with e2e.machine(_no_match(tmp_path, pair)):
        box = _box(generation, tmp_path, trees["rust"], pair)
        source = e2e.put_module(box, hook=False)
        assert "PRE_BUILD" not in (source / "dkms.conf").read_text()
        _add(box)
        built = box.build(NAME, VERSION)
    log = built.make_log_text or ""
    assert built.exit_code == 10, _explain(built)
    assert E0514 in log, _explain(built)
    assert "RUSTC [M]" in log and "dkms-rustc" not in log
    _report(
        "3 hook lines removed (default MAKE)",
        generation,
        built,
        f"make.log: {_first(log, 'E0514')}",
        f"make.log: {_first(log, 'compiled by rustc')}",
    )


# ------------------------------------------------------------------------------ 4. hook broken


@pytest.mark.parametrize("shim", ["not-executable", "missing"])
def test_4_shim_not_runnable_fails_closed(
    generation: DkmsGeneration,
    trees: dict[str, Path],
    pair: e2e.ToolchainPair,
    tmp_path: Path,
    shim: str,
) -> None:
    """Even with a matching rustc installed, a hook that did not run never lets make compile."""
    with e2e.machine(_config(tmp_path)):
        box = _box(generation, tmp_path, trees["rust"], pair)
        e2e.put_module(box, shim=shim)
        _add(box)
        built = box.build(NAME, VERSION)
    log = built.make_log_text or ""
    assert built.exit_code == 10, _explain(built)
    assert "The pre_build script is not executable." in built.output, _explain(built)
    assert f"{HOOK_DID_NOT_RUN}: No such file or directory" in log, _explain(built)
    _no_rust_compiled(box, built)
    _report(
        f"4 shim {shim}",
        generation,
        built,
        f"terminal: {_first(built.output, 'pre_build')}",
        f"make.log: {_first(log, 'No such file or directory')}",
    )


def test_4_tool_not_installed_fails_closed(
    generation: DkmsGeneration, trees: dict[str, Path], pair: e2e.ToolchainPair, tmp_path: Path
) -> None:
    with e2e.machine(_config(tmp_path), tool="missing") as launcher:
        assert launcher is None
        assert not any(path.exists() for path in e2e.tool_paths())
        box = _box(generation, tmp_path, trees["rust"], pair)
        e2e.put_module(box)
        _add(box)
        built = box.build(NAME, VERSION)
    log = built.make_log_text or ""
    message = "dkms-rustc: ERROR: the dkms-rustc tool is not installed"
    assert message in log, _explain(built)  # from the shim's refusal makefile (or its stderr)
    if generation.honours_pre_build_exit:
        code = ExitCode.ERROR
        assert built.exit_code == code and f"(bad exit status: {code})" in built.output, _explain(built)
    else:
        assert built.exit_code == 10 and message in built.output, _explain(built)
    _no_rust_compiled(box, built)
    _report(
        "4 dkms-rustc not installed at the shim's paths",
        generation,
        built,
        f"make.log: {_first(log, message)[:150]}...",
    )


# ------------------------------------------------------------------------------ 5. no Rust


def test_5_kernel_without_rust_is_skipped(
    generation: DkmsGeneration, trees: dict[str, Path], pair: e2e.ToolchainPair, tmp_path: Path
) -> None:
    with e2e.machine(_config(tmp_path)):
        box = _box(generation, tmp_path, trees["no-rust"], pair)
        e2e.put_module(box)
        _add(box)
        built = box.build(NAME, VERSION)
        auto = box.autoinstall((NAME, VERSION))
    assert built.exit_code == ExitCode.NO_RUST, _explain(built)
    assert re.search(r"BUILD_EXCLUSIVE directives?\s+which do(?:es)? not match this kernel", built.output)
    assert not (box.dkms_tree / NAME / VERSION / "build" / "dkms-rustc.make-args").exists()
    assert not list(box.install_tree.rglob(f"{MODULE}.ko*"))
    if generation.autoinstall_skips_exit_77:
        assert auto.exit_code == 0 and "skipped" in auto.output, _explain(auto)
        autoline = _first(auto.output, "skipped")
    else:
        # DKMS 3.0.10 (bookworm) counts the excluded build as a failed autoinstall.
        assert auto.exit_code == 11, _explain(auto)
        assert "One or more modules failed to install during autoinstall" in auto.output
        autoline = _first(auto.output, "failed to install")
    _report(
        "5 kernel without Rust",
        generation,
        built,
        f"dkms build terminal: {_first(built.output, 'BUILD_EXCLUSIVE')}",
        f"dkms autoinstall: exit {auto.exit_code}: {autoline}",
    )


# ------------------------------------------------------------------------------ 6. no metadata


def test_6_headers_without_rust_metadata_stop_with_the_reason(
    generation: DkmsGeneration, trees: dict[str, Path], pair: e2e.ToolchainPair, tmp_path: Path
) -> None:
    with e2e.machine(_config(tmp_path)):
        box = _box(generation, tmp_path, trees["no-metadata"], pair)
        e2e.put_module(box)
        _add(box)
        built = box.build(NAME, VERSION)
    log = built.make_log_text or ""
    assert built.exit_code == (ExitCode.NO_METADATA if generation.honours_pre_build_exit else 10), _explain(
        built
    )
    assert "its headers carry no Rust metadata" in log, _explain(built)
    assert "this module build was stopped before compiling (no-metadata)" in log or (
        generation.honours_pre_build_exit and f"(bad exit status: {ExitCode.NO_METADATA})" in built.output
    )
    _no_rust_compiled(box, built)
    _report(
        "6 Rust kernel, headers without rust/",
        generation,
        built,
        f"make.log: {_first(log, 'no Rust metadata')[:160]}...",
    )


# ------------------------------------------------------------------------------ 7. fallback


def test_7_fallback_policy_builds_the_c_only_variant(
    generation: DkmsGeneration, trees: dict[str, Path], pair: e2e.ToolchainPair, tmp_path: Path
) -> None:
    module_section = f"[module {NAME}]\npolicy = fallback\nfallback_make_args = RUST_HELLO_C_ONLY=y\n"
    with e2e.machine(_no_match(tmp_path, pair, module_section)):
        box = _box(generation, tmp_path, trees["rust"], pair)
        e2e.put_module(box)
        _add(box)
        built = box.build(NAME, VERSION)
    log = built.make_log_text or ""
    hook = e2e.hook_output(generation, built)
    assert built.exit_code == 0, _explain(built)
    assert "policy fallback: the module is built with RUST_HELLO_C_ONLY=y" in hook, _explain(built)
    assert "stopped before compiling" not in hook  # it is not: the C-only variant compiles
    assert "rust_hello_c.o" in _first(log, "CC [M]") and "RUSTC [M]" not in log, _explain(built)
    ko = e2e.built_module(box, NAME, VERSION, MODULE)
    assert ko is not None
    comment = e2e.elf_comment(ko)
    assert comment and not any(line.startswith("rustc") for line in comment), comment
    _report(
        "7 fallback policy, no match",
        generation,
        built,
        _first(hook, "policy fallback"),
        f"make.log: {_first(log, 'CC [M]')}",
        f".ko .comment: {comment}",
    )


# ------------------------------------------------------------------------------ the machinery


def test_launcher_runs_this_checkout(tmp_path: Path) -> None:
    text = e2e.launcher_text().replace(
        "from dkms_rustc.cli import main\nraise SystemExit(main())\n",
        "import dkms_rustc\nprint(dkms_rustc.__file__)\n",
    )
    probe = tmp_path / "launcher"
    probe.write_text(text)
    probe.chmod(0o755)
    out = subprocess.run(
        [str(probe)], capture_output=True, text=True, env={"PATH": e2e.BASE_PATH}, check=True
    )
    assert Path(out.stdout.strip()).parent.parent == e2e.SRC


def test_machine_sets_foreign_files_aside_and_recovers_a_killed_run(tmp_path: Path) -> None:
    """Stand-ins for a real installation at the launcher's path and /etc/dkms-rustc.conf."""
    paths = (e2e.LAUNCHER_PATH, e2e.SYSTEM_CONFIG)
    with e2e.machine_lock():
        e2e.recover()
        if any(path.exists() for path in paths):
            pytest.skip("a real dkms-rustc installation is present; not touching it")
        try:
            for path in paths:
                path.write_text("# foreign stand-in (test_dkms_e2e)\n")
            with e2e.machine("policy = warn\n") as launcher:
                assert launcher == e2e.LAUNCHER_PATH
                assert "dkms_rustc.cli" in e2e.LAUNCHER_PATH.read_text()
                assert "policy = warn" in e2e.SYSTEM_CONFIG.read_text()
                assert oct(e2e.SYSTEM_CONFIG.stat().st_mode & 0o777) == "0o644"
                for path in paths:
                    assert "foreign" in path.with_name(path.name + ".dkms-e2e-aside").read_text()
            for path in paths:
                assert path.read_text() == "# foreign stand-in (test_dkms_e2e)\n"
                assert not path.with_name(path.name + ".dkms-e2e-aside").exists()

            # A run killed inside machine(): our files in place, the originals aside.
            for path in paths:
                path.rename(path.with_name(path.name + ".dkms-e2e-aside"))
            e2e.LAUNCHER_PATH.write_text(e2e.launcher_text())
            e2e.SYSTEM_CONFIG.write_text(
                "# dkms-rustc end-to-end test configuration (tests/dkms_e2e.py)\npolicy = warn\n"
            )
            e2e.recover()
            for path in paths:
                assert path.read_text() == "# foreign stand-in (test_dkms_e2e)\n"
        finally:
            for path in paths:
                for leftover in (path, path.with_name(path.name + ".dkms-e2e-aside")):
                    if leftover.exists() and "foreign stand-in (test_dkms_e2e)" in leftover.read_text():
                        leftover.unlink()
            e2e.recover()
    assert not any(path.exists() for path in paths)
