# SPDX-License-Identifier: GPL-2.0-or-later
"""What real DKMS (every generation of tests/dkms_harness.py) makes of dkms-rustc's answers and of
the other levers dkms.conf gives a module, with real make and real compilers against kbuild-style
trees whose rust/ metadata a real rustc wrote (tests/kerneltree.py):

* `dkms build`'s and `dkms autoinstall`'s status for every verdict of the hook (the README's
  exit-code table, DKMS column);
* a mixed package (examples/mixed-hello: a C module and a Rust module, BUILD_EXCLUSIVE_CONFIG[1]):
  on a kernel without Rust the C module builds and the Rust one is skipped (DKMS 3.3+), on a
  Rust kernel both build;
* a CLEAN that wipes every file the build created (DKMS up to 3.1.6 runs it between PRE_BUILD
  and make): the build stops, it never compiles with another rustc.

The tool runs as DKMS runs it (tests/dkms_e2e.py: this checkout's launcher at /usr/local/bin and
a test /etc/dkms-rustc.conf). ``pytest -s`` prints one line per scenario and DKMS version.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import dkms_e2e as e2e
import kerneltree
from dkms_harness import DEFAULT_KERNELVER, DkmsGeneration, DkmsResult, DkmsSandbox
from dkms_rustc.exitcodes import ExitCode

pytestmark = [pytest.mark.dkms, pytest.mark.root]

NAME, VERSION = e2e.module_package()
MODULE = "rust_hello"
MIXED = e2e.ROOT / "examples" / "mixed-hello"
MIXED_NAME, MIXED_VERSION = e2e.module_package(MIXED)
HOOK_DID_NOT_RUN = "/nonexistent/dkms-rustc-PRE_BUILD-hook-did-not-run: No such file or directory"
#: DKMS's own statuses (dkms.in's header) that these scenarios meet.
DKMS_BUILD_FAILED = 10  # "Bad return status for module build"
DKMS_MODULE_MISSING = 7  # "Build of <module>.ko failed": a BUILT_MODULE_NAME was not built
DKMS_AUTOINSTALL_FAILED = 11


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
    base = tmp_path_factory.mktemp("lever-kernels")
    return {
        variant: kerneltree.make_kernel_tree(
            base / variant, pair.kernel, variant=variant, kernelrelease=DEFAULT_KERNELVER
        )
        for variant in kerneltree.VARIANTS
    }


def _config(tmp_path: Path, pair: e2e.ToolchainPair, *, match: bool = True, extra: str = "") -> str:
    text = f"cache_dir = {tmp_path / 'cache'}\n"
    if not match:
        text += "search_defaults = no\n" + "".join(f"search = {tc.rustc.parent}\n" for tc in pair.others)
    return text + extra


def _box(generation: DkmsGeneration, tmp_path: Path, tree: Path, pair: e2e.ToolchainPair) -> DkmsSandbox:
    return e2e.sandbox(generation, tmp_path, tree, path_rustc=pair.path.rustc)


def _explain(result: DkmsResult) -> str:
    return f"exit {result.exit_code}\n--- output\n{result.output}\n--- make.log\n{result.make_log_text}"


def _report(scenario: str, generation: DkmsGeneration, result: DkmsResult, extra: str = "") -> None:
    print(
        f"\nE2E {scenario} | dkms {generation.name} | exit {result.exit_code} | {result.seconds:.1f}s"
        + (f" | {extra}" if extra else "")
    )


def _kernel_comment(pair: e2e.ToolchainPair) -> list[str]:
    return [pair.kernel.version_text.replace("rustc ", "rustc version ", 1)]


def _rustc_lines(ko: Path) -> list[str]:
    return [line for line in e2e.elf_comment(ko) if line.startswith("rustc")]


def _nothing_compiled(box: DkmsSandbox, name: str, version: str, result: DkmsResult) -> None:
    log = result.make_log_text or ""
    assert "RUSTC [M]" not in log and "CC [M]" not in log and "error[E" not in log, _explain(result)
    build = box.dkms_tree / name / version / "build"
    assert not list(build.glob("*.o")) and not list(build.glob("*.ko")), _explain(result)


# ------------------------------------------------------------------------ exit codes, per verdict

#: scenario -> (the kernel tree variant, the hook's status)
VERDICTS: dict[str, tuple[str, ExitCode]] = {
    "ok": ("rust", ExitCode.OK),
    "refused": ("rust", ExitCode.REFUSED),
    "no-metadata": ("no-metadata", ExitCode.NO_METADATA),
    "error (unusable configuration)": ("rust", ExitCode.ERROR),
    "error (tool not installed)": ("rust", ExitCode.ERROR),
    "usage (bad PRE_BUILD option)": ("rust", ExitCode.USAGE),
    "no-rust (told by the hook)": ("no-rust", ExitCode.NO_RUST),
    "no-rust (DKMS's BUILD_EXCLUSIVE_CONFIG)": ("no-rust", ExitCode.NO_RUST),
}


def expected_build_status(generation: DkmsGeneration, scenario: str) -> int:
    """What `dkms build` exits with: the hook's own status on DKMS 3.1.5+; on older DKMS, which
    ignores it, make stops on the hook's refusal makefile (or the MAKE line's fallback): 10."""
    _, hook = VERDICTS[scenario]
    if hook is ExitCode.OK or scenario.endswith("BUILD_EXCLUSIVE_CONFIG)"):
        return int(hook)  # the build succeeds, or DKMS skips it before PRE_BUILD (77)
    return int(hook) if generation.honours_pre_build_exit else DKMS_BUILD_FAILED


def expected_autoinstall_status(generation: DkmsGeneration, scenario: str) -> int:
    build = expected_build_status(generation, scenario)
    if build == ExitCode.OK or (build == ExitCode.NO_RUST and generation.autoinstall_skips_exit_77):
        return 0
    return DKMS_AUTOINSTALL_FAILED


@pytest.mark.parametrize("scenario", list(VERDICTS))
def test_dkms_status_for_each_verdict(
    generation: DkmsGeneration,
    trees: dict[str, Path],
    pair: e2e.ToolchainPair,
    tmp_path: Path,
    scenario: str,
) -> None:
    variant, hook_status = VERDICTS[scenario]
    config = _config(tmp_path, pair, match=scenario != "refused")
    if scenario.startswith("error (unusable"):
        config += "policy = sometimes\n"
    tool = "missing" if scenario == "error (tool not installed)" else "installed"
    with e2e.machine(config, tool=tool):
        box = _box(generation, tmp_path, trees[variant], pair)
        source = e2e.put_module(box)
        conf = source / "dkms.conf"
        if scenario.startswith("usage"):
            conf.write_text(
                conf.read_text().replace('${kernel_source_dir}"', '${kernel_source_dir} --no-such-option"')
            )
        if scenario == "no-rust (told by the hook)":
            conf.write_text(conf.read_text().replace('BUILD_EXCLUSIVE_CONFIG="CONFIG_RUST"\n', ""))
        assert box.add(NAME, VERSION).exit_code == 0
        built = box.build(NAME, VERSION)
        auto = box.autoinstall((NAME, VERSION))
    _report(f"exit code, {scenario}", generation, built, f"autoinstall exit {auto.exit_code}")
    assert built.exit_code == expected_build_status(generation, scenario), _explain(built)
    assert auto.exit_code == expected_autoinstall_status(generation, scenario), _explain(auto)
    if hook_status is ExitCode.OK:
        ko = e2e.built_module(box, NAME, VERSION, MODULE)
        assert ko is not None and _rustc_lines(ko) == _kernel_comment(pair)
        return
    assert not list(box.install_tree.rglob(f"{MODULE}.ko*"))
    _nothing_compiled(box, NAME, VERSION, built)
    if generation.honours_pre_build_exit and built.exit_code == hook_status != ExitCode.NO_RUST:
        assert f"(bad exit status: {int(hook_status)})" in built.output, _explain(built)


# ---------------------------------------------------------------- mixed package (C + Rust modules)


def _put_mixed(box: DkmsSandbox) -> Path:
    dest = box.module_source(MIXED_NAME, MIXED_VERSION)
    shutil.copytree(MIXED, dest)
    assert os.access(dest / e2e.SHIM.name, os.X_OK)
    return dest


def _built(box: DkmsSandbox, module: str) -> Path | None:
    return e2e.built_module(box, MIXED_NAME, MIXED_VERSION, module)


def test_mixed_package_on_a_kernel_without_rust(
    generation: DkmsGeneration, trees: dict[str, Path], pair: e2e.ToolchainPair, tmp_path: Path
) -> None:
    with e2e.machine(_config(tmp_path, pair)):
        box = _box(generation, tmp_path, trees["no-rust"], pair)
        _put_mixed(box)
        assert box.add(MIXED_NAME, MIXED_VERSION).exit_code == 0
        built = box.build(MIXED_NAME, MIXED_VERSION)
        installed = box.install(MIXED_NAME, MIXED_VERSION)
    log = built.make_log_text or ""
    hook = e2e.hook_output(generation, built)
    _report("mixed package, kernel without Rust", generation, built)
    assert "the package's C modules build; its Rust modules are skipped" in hook, _explain(built)
    assert "CC [M]" in log and "RUSTC [M]" not in log, _explain(built)
    if generation.per_module_build_exclusive:
        assert built.exit_code == 0, _explain(built)
        assert _built(box, "mixed_hello_c") is not None and _built(box, "mixed_hello_rs") is None
        assert installed.exit_code == 0, _explain(installed)
        names = sorted(path.name for path in (box.install_tree / box.kernelver).rglob("*.ko*"))
        assert names == ["mixed_hello_c.ko"], names
    else:
        # Before 3.3 DKMS ignores BUILD_EXCLUSIVE_CONFIG[1] and expects both modules.
        assert built.exit_code == DKMS_MODULE_MISSING, _explain(built)
        assert "mixed_hello_rs.ko failed" in built.output


@pytest.mark.parametrize("match", [True, False], ids=["match", "no-match"])
def test_mixed_package_on_a_rust_kernel(
    generation: DkmsGeneration, trees: dict[str, Path], pair: e2e.ToolchainPair, tmp_path: Path, match: bool
) -> None:
    with e2e.machine(_config(tmp_path, pair, match=match)):
        box = _box(generation, tmp_path, trees["rust"], pair)
        _put_mixed(box)
        assert box.add(MIXED_NAME, MIXED_VERSION).exit_code == 0
        built = box.build(MIXED_NAME, MIXED_VERSION)
    _report(f"mixed package, Rust kernel, {'match' if match else 'no match'}", generation, built)
    if match:
        assert built.exit_code == 0, _explain(built)
        c_module, rust_module = _built(box, "mixed_hello_c"), _built(box, "mixed_hello_rs")
        assert c_module is not None and rust_module is not None, _explain(built)
        assert _rustc_lines(rust_module) == _kernel_comment(pair) and _rustc_lines(c_module) == []
    else:
        # The whole package stops: its Rust module cannot be built right, and a half-built
        # package is not what the admin asked for (policy fallback is the way to choose it).
        refused = ExitCode.REFUSED if generation.honours_pre_build_exit else DKMS_BUILD_FAILED
        assert built.exit_code == refused, _explain(built)
        _nothing_compiled(box, MIXED_NAME, MIXED_VERSION, built)


# ------------------------------------------------------------- CLEAN between PRE_BUILD and make

#: A CLEAN in the spirit of `git clean -fdx`: every file the build created is removed (DKMS
#: copies the source with cp -a, so everything newer than dkms.conf is the build's own).
WIPING_CLEAN = 'CLEAN="find . -type f -newer dkms.conf -delete"\n'


@pytest.mark.parametrize("match", [True, False], ids=["match", "no-match"])
def test_a_clean_that_wipes_the_hand_off_fails_closed(
    generation: DkmsGeneration, trees: dict[str, Path], pair: e2e.ToolchainPair, tmp_path: Path, match: bool
) -> None:
    with e2e.machine(_config(tmp_path, pair, match=match)):
        box = _box(generation, tmp_path, trees["rust"], pair)
        source = e2e.put_module(box)
        conf = source / "dkms.conf"
        conf.write_text(conf.read_text() + WIPING_CLEAN)
        os.utime(conf, (1, 1))  # older than anything the build writes
        assert box.add(NAME, VERSION).exit_code == 0
        built = box.build(NAME, VERSION)
    log = built.make_log_text or ""
    _report(f"CLEAN wipes the build's files, {'match' if match else 'no match'}", generation, built)
    if generation.cleans_between_pre_build_and_make:
        # The hook ran (its words on the terminal), CLEAN removed its hand-off, and the MAKE
        # line's fallback stopped make: nothing was compiled, with any rustc.
        assert "dkms-rustc: OK:" in built.output if match else "dkms-rustc: REFUSED:" in built.output
        assert built.exit_code == DKMS_BUILD_FAILED and HOOK_DID_NOT_RUN in log, _explain(built)
        _nothing_compiled(box, NAME, VERSION, built)
    elif match:
        assert built.exit_code == 0, _explain(built)
        ko = e2e.built_module(box, NAME, VERSION, MODULE)
        assert ko is not None and _rustc_lines(ko) == _kernel_comment(pair)
    else:
        assert built.exit_code == ExitCode.REFUSED, _explain(built)
        _nothing_compiled(box, NAME, VERSION, built)
