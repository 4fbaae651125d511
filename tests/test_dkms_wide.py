# SPDX-License-Identifier: GPL-2.0-or-later
"""Enabling Rust DKMS modules without editing their packages, with real dkms on every
generation (tests/dkms_harness.py: 3.0.10, 3.2.2 and, where installed, upstream 3.3.0 and 3.4.3):

* ``dkms/build-environment`` as DKMS 3.3+'s ``build_environment`` (framework.conf.d): every Rust
  module gets the kernel's rustc, or stops with the reason; C modules and modules that run
  dkms-rustc themselves get nothing. DKMS before 3.3 ignores the setting (the plain E0514).
* DKMS 3.4+'s ``/etc/dkms/<module>/<script>`` override: the snippet's lines as
  ``/etc/dkms/<module>.conf`` and the shim linked into ``/etc/dkms/<module>/``. DKMS runs it
  there, not in the build directory; the hand-off must still reach make.
* ``dkms/module-override.conf`` as ``/etc/dkms/<module>.conf`` (any DKMS).

The tool runs as DKMS runs it: THIS checkout's launcher where the shim and build-environment look
(/usr/local/bin) and /etc/dkms-rustc.conf, both set for each test by tests/dkms_e2e.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import dkms_e2e as e2e
import kerneltree
from dkms_harness import DEFAULT_KERNELVER, DkmsGeneration, DkmsResult, DkmsSandbox

TOOLCHAINS = kerneltree.find_real_toolchains()
ROOT = Path(__file__).resolve().parents[1]
BUILD_ENVIRONMENT = ROOT / "dkms" / "build-environment"
OVERRIDE = ROOT / "dkms" / "module-override.conf"
SHIM = ROOT / "dkms" / "dkms-rustc-pre-build"
HELLO_RS = (kerneltree.HELLO_MODULE / "hello.rs").read_text()
HELLO_KBUILD = (kerneltree.HELLO_MODULE / "Kbuild").read_text()
PLAIN_DKMS_CONF = """\
PACKAGE_NAME="hello"
PACKAGE_VERSION="1.0"
BUILT_MODULE_NAME[0]="hello"
DEST_MODULE_LOCATION[0]="/extra"
MAKE[0]="make -C ${kernel_source_dir} M=${dkms_tree}/hello/1.0/build"
AUTOINSTALL="yes"
"""
# dkms.in (3.3.0 to 3.4.3), do_build(): how build_environment is read.
DKMS_SOURCING = 'source <( (source "$build_environment" &>/dev/null; export -p) )'
NAME, VERSION = e2e.module_package()
MODULE = "rust_hello"
E0514 = "error[E0514]: found crate `core` compiled by an incompatible version of rustc"
HOOK_DID_NOT_RUN = "/nonexistent/dkms-rustc-PRE_BUILD-hook-did-not-run: No such file or directory"
#: A PRE_BUILD that records the environment DKMS gives it (after build_environment, on 3.3+).
ENV_PROBE = '#!/bin/sh\nenv > "$PROBE_FILE"\n'

_need = kerneltree.need


@pytest.fixture(params=e2e.GENERATION_IDS)
def generation(request: pytest.FixtureRequest) -> DkmsGeneration:
    return e2e.generation_or_skip(request.param)


@pytest.fixture(scope="module")
def pair() -> e2e.ToolchainPair:
    chosen = e2e.choose_toolchains(TOOLCHAINS)
    if chosen is None:
        pytest.fail("these tests need two different real rustc builds (rustup's, Debian's rustc-web)")
    return chosen


@pytest.fixture(scope="module")
def rust_tree(tmp_path_factory: pytest.TempPathFactory, pair: e2e.ToolchainPair) -> Path:
    base = tmp_path_factory.mktemp("wide-kernel")
    return kerneltree.make_kernel_tree(base / "rust", pair.kernel, kernelrelease=DEFAULT_KERNELVER)


def _config(tmp_path: Path, pair: e2e.ToolchainPair, *, match: bool) -> str:
    """/etc/dkms-rustc.conf: default discovery (the kernel's compiler is installed), or every
    real toolchain but the kernel's (nothing matches)."""
    text = f"cache_dir = {tmp_path / 'cache'}\n"
    if not match:
        text += "search_defaults = no\n" + "".join(f"search = {tc.rustc.parent}\n" for tc in pair.others)
    return text


def _box(generation: DkmsGeneration, tmp_path: Path, tree: Path, pair: e2e.ToolchainPair) -> DkmsSandbox:
    return e2e.sandbox(
        generation,
        tmp_path,
        tree,
        path_rustc=pair.path.rustc,
        extra_env={"PROBE_FILE": str(tmp_path / "env")},
    )


def _explain(result: DkmsResult) -> str:
    return f"exit {result.exit_code}\n--- output\n{result.output}\n--- make.log\n{result.make_log_text}"


def _report(scenario: str, generation: DkmsGeneration, result: DkmsResult) -> None:
    print(f"\nE2E {scenario} | dkms {generation.name} | exit {result.exit_code} | {result.seconds:.1f}s")


def _probe_env(tmp_path: Path) -> dict[str, str]:
    text = (tmp_path / "env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _comment_rustc(box: DkmsSandbox) -> list[str]:
    ko = e2e.built_module(box, NAME, VERSION, MODULE)
    assert ko is not None
    return [line for line in e2e.elf_comment(ko) if line.startswith("rustc")]


def _nothing_compiled(box: DkmsSandbox, result: DkmsResult) -> None:
    log = result.make_log_text or ""
    assert "RUSTC [M]" not in log and "error[E" not in log, _explain(result)
    build = box.dkms_tree / NAME / VERSION / "build"
    assert not list(build.glob("*.o")) and not list(build.glob("*.ko")), _explain(result)


# ------------------------------------------------------------------------ build_environment (3.3+)


def _enable_build_environment(box: DkmsSandbox) -> None:
    """The README's line, with this checkout's file for /usr/share/dkms-rustc/build-environment."""
    (box.etc_dir / "framework.conf.d" / "dkms-rustc.conf").write_text(
        f'build_environment="{BUILD_ENVIRONMENT}"\n'
    )


def _unserved_rust_module(box: DkmsSandbox) -> Path:
    """examples/rust-hello without the dkms-rustc lines and shim, and a PRE_BUILD that records
    its environment: a Rust module whose package knows nothing of dkms-rustc."""
    source = e2e.put_module(box, hook=False, shim="missing")
    (source / "dkms.conf").write_text((source / "dkms.conf").read_text() + 'PRE_BUILD="probe-env"\n')
    probe = source / "probe-env"
    probe.write_text(ENV_PROBE)
    probe.chmod(0o755)
    return source


@pytest.mark.dkms
@pytest.mark.root
def test_build_environment_gives_every_rust_module_the_kernels_rustc(
    generation: DkmsGeneration, rust_tree: Path, pair: e2e.ToolchainPair, tmp_path: Path
) -> None:
    with e2e.machine(_config(tmp_path, pair, match=True)):
        box = _box(generation, tmp_path, rust_tree, pair)
        _enable_build_environment(box)
        _unserved_rust_module(box)
        assert box.add(NAME, VERSION).exit_code == 0
        built = box.build(NAME, VERSION)
    _report("wide build_environment, match", generation, built)
    log = built.make_log_text or ""
    env = _probe_env(tmp_path)
    if generation.sources_build_environment:
        assert built.exit_code == 0, _explain(built)
        assert f"RUSTC={pair.kernel.rustc}" in env.get("MAKEFLAGS", ""), env.get("MAKEFLAGS")
        assert _comment_rustc(box) == [pair.kernel.version_text.replace("rustc ", "rustc version ", 1)]
    else:
        # DKMS before 3.3 has no build_environment: kbuild's plain `rustc`, from PATH.
        assert "MAKEFLAGS" not in env
        assert built.exit_code == 10 and E0514 in log, _explain(built)


@pytest.mark.dkms
@pytest.mark.root
def test_build_environment_stops_make_with_the_reason(
    generation: DkmsGeneration, rust_tree: Path, pair: e2e.ToolchainPair, tmp_path: Path
) -> None:
    with e2e.machine(_config(tmp_path, pair, match=False)):
        box = _box(generation, tmp_path, rust_tree, pair)
        _enable_build_environment(box)
        _unserved_rust_module(box)
        assert box.add(NAME, VERSION).exit_code == 0
        built = box.build(NAME, VERSION)
    _report("wide build_environment, no match", generation, built)
    log = built.make_log_text or ""
    assert built.exit_code == 10, _explain(built)
    if generation.sources_build_environment:
        assert "DKMS_RUSTC_STOP" in _probe_env(tmp_path)
        stop = re.search(r"\*\*\* dkms-rustc: no installed rustc matches kernel (\S+)", log)
        assert stop is not None and stop.group(1).rstrip(":") == box.kernelver, _explain(built)
        assert f"run: dkms-rustc check -k {box.kernelver}" in log
        _nothing_compiled(box, built)
    else:
        assert E0514 in log, _explain(built)


@pytest.mark.dkms
@pytest.mark.root
@pytest.mark.parametrize("module", ["c-module", "runs-dkms-rustc-itself"])
def test_build_environment_leaves_other_modules_alone(
    generation: DkmsGeneration, rust_tree: Path, pair: e2e.ToolchainPair, tmp_path: Path, module: str
) -> None:
    """With nothing matching (where a Rust module would be stopped), a C module and a module
    whose own PRE_BUILD runs dkms-rustc get no MAKEFLAGS and no stop from build_environment."""
    with e2e.machine(_config(tmp_path, pair, match=False)):
        box = _box(generation, tmp_path, rust_tree, pair)
        _enable_build_environment(box)
        if module == "c-module":
            name, version = "hello", "1.0"
            box.write_module(
                dkms_conf=PLAIN_DKMS_CONF + 'PRE_BUILD="probe-env"\n',
                pre_build="missing",
                files={
                    "Kbuild": "obj-m := hello.o\n",
                    "hello.c": (e2e.EXAMPLE_MODULE / "rust_hello_c.c").read_text(),
                    "probe-env": ENV_PROBE,
                },
            )
        else:
            name, version = NAME, VERSION
            source = e2e.put_module(box)
            shim = source / SHIM.name
            shim.rename(source / "real-shim")
            shim.write_text('#!/bin/sh\nenv > "$PROBE_FILE"\nexec "$(pwd)/real-shim" "$@"\n')
            shim.chmod(0o755)
        assert box.add(name, version).exit_code == 0
        built = box.build(name, version)
    env = _probe_env(tmp_path)
    assert "MAKEFLAGS" not in env and "DKMS_RUSTC_STOP" not in env, env
    if module == "c-module":
        assert built.exit_code == 0, _explain(built)
        assert "CC [M]" in (built.make_log_text or "")
    else:
        assert built.exit_code != 0  # the module's own hook refused: nothing matches
        assert "REFUSED: no installed rustc matches" in e2e.hook_output(generation, built), _explain(built)


def test_build_environment_without_the_tool_is_harmless(tmp_path: Path) -> None:
    """The shipped file with its search list cut down to a path that does not exist, sourced
    with DKMS's own line: it exports nothing and says nothing."""
    script = tmp_path / "build-environment"
    script.write_text(
        re.sub(
            r"for _candidate in [^;]*;",
            "for _candidate in ${DKMS_RUSTC:-};",
            Path(BUILD_ENVIRONMENT).read_text(),
            flags=re.S,
        )
    )
    result = subprocess.run(
        [
            "bash",
            "-c",
            f"kernelver=1 module=m build_environment={script}\n{DKMS_SOURCING}\necho ok=${{MAKEFLAGS:-}}",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DKMS_RUSTC": str(tmp_path / "absent")},
    )
    assert result.stdout == "ok=\n"


def test_the_sourcing_line_is_dkms_own() -> None:
    """DKMS_SOURCING above is what every upstream DKMS provided here runs."""
    for gen_id in e2e.GENERATION_IDS:
        if gen_id not in ("old", "current"):
            generation = e2e.generation_or_skip(gen_id)
            assert DKMS_SOURCING in generation.script.read_text()


# ------------------------------------------------------ /etc/dkms/<module>/ script override (3.4+)


def _script_override(box: DkmsSandbox, name: str) -> Path:
    """The README's way: the snippet as /etc/dkms/<module>.conf, the shim linked into
    /etc/dkms/<module>/ (this checkout's shim for /usr/share/dkms-rustc/dkms-rustc-pre-build)."""
    (box.etc_dir / f"{name}.conf").write_text(e2e.SNIPPET.read_text())
    directory = box.etc_dir / name
    directory.mkdir()
    (directory / SHIM.name).symlink_to(SHIM)
    return directory


@pytest.mark.dkms
@pytest.mark.root
@pytest.mark.parametrize("match", [True, False], ids=["match", "no-match"])
def test_script_override_enables_an_unedited_module(
    generation: DkmsGeneration, rust_tree: Path, pair: e2e.ToolchainPair, tmp_path: Path, match: bool
) -> None:
    with e2e.machine(_config(tmp_path, pair, match=match)):
        box = _box(generation, tmp_path, rust_tree, pair)
        e2e.put_module(box, hook=False, shim="missing")  # a package that knows nothing of us
        override = _script_override(box, NAME)
        assert box.add(NAME, VERSION).exit_code == 0
        built = box.build(NAME, VERSION)
    _report(f"wide /etc/dkms/<module>/ override, {'match' if match else 'no match'}", generation, built)
    log = built.make_log_text or ""
    assert sorted(p.name for p in override.iterdir()) == [SHIM.name]  # nothing handed off there
    if not generation.script_overrides:
        # Before 3.4 DKMS looks for the script in the build directory only: not there, so the
        # snippet's MAKE line stops make at once.
        assert "The pre_build script is not executable." in built.output, _explain(built)
        assert built.exit_code == 10 and HOOK_DID_NOT_RUN in log, _explain(built)
        _nothing_compiled(box, built)
    elif match:
        assert built.exit_code == 0, _explain(built)
        assert f"make arguments in {box.dkms_tree / NAME / VERSION / 'build'}/dkms-rustc.make-args" in log
        assert _comment_rustc(box) == [pair.kernel.version_text.replace("rustc ", "rustc version ", 1)]
    else:
        assert built.exit_code not in (0, 10), _explain(built)  # the hook's own verdict
        assert f"(bad exit status: {built.exit_code})" in built.output
        assert "REFUSED: no installed rustc matches" in log, _explain(built)
        _nothing_compiled(box, built)


@pytest.mark.dkms
@pytest.mark.root
def test_script_override_replaces_a_packaged_shim(
    generation: DkmsGeneration, rust_tree: Path, pair: e2e.ToolchainPair, tmp_path: Path
) -> None:
    """A module that ships the snippet with a broken shim: on 3.4+ the admin's copy in
    /etc/dkms/<module>/ runs instead (and still hands off to the build directory)."""
    with e2e.machine(_config(tmp_path, pair, match=True)):
        box = _box(generation, tmp_path, rust_tree, pair)
        e2e.put_module(box, shim="not-executable")
        directory = box.etc_dir / NAME
        directory.mkdir()
        (directory / SHIM.name).symlink_to(SHIM)
        assert box.add(NAME, VERSION).exit_code == 0
        built = box.build(NAME, VERSION)
    if generation.script_overrides:
        assert built.exit_code == 0, _explain(built)
        assert _comment_rustc(box) == [pair.kernel.version_text.replace("rustc ", "rustc version ", 1)]
    else:
        assert built.exit_code == 10 and HOOK_DID_NOT_RUN in (built.make_log_text or ""), _explain(built)


def test_shim_outside_the_build_directory_fails_closed(tmp_path: Path) -> None:
    """Run by DKMS's variables in a directory that is not the build directory, with no
    $OLDPWD leading there, the shim refuses instead of writing the hand-off where make won't look."""
    elsewhere = tmp_path / "etc-dkms-hello"
    elsewhere.mkdir()
    env = {"PATH": e2e.BASE_PATH, "module": "hello", "module_version": "1.0", "OLDPWD": str(tmp_path)}
    result = subprocess.run(
        [str(SHIM), "/lib/modules/x/build"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert result.returncode == 42
    assert (
        f"this PRE_BUILD shim runs in {elsewhere}, not in the build directory of hello/1.0" in result.stderr
    )
    assert list(elsewhere.iterdir()) == []


# -------------------------------------------------------- /etc/dkms/<module>.conf (every DKMS)


def _wrapper(tmp_path: Path) -> Path:
    """This checkout's dkms-rustc, with a test configuration."""
    conf = tmp_path / "test.conf"
    conf.write_text(
        f"cache_dir = {tmp_path / 'cache'}\nsearch_defaults = no\n"
        f"search = {TOOLCHAINS['stable'].rustc.parent.parent}\n"
    )
    wrapper = tmp_path / "dkms-rustc"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH={ROOT / "src"} exec {sys.executable} -m dkms_rustc "$@" --config {conf}\n'
    )
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.dkms
@pytest.mark.parametrize("kernel", ["stable", "nightly"])
def test_module_override_with_real_dkms(tmp_path: Path, generation: DkmsGeneration, kernel: str) -> None:
    _need("stable", "nightly")
    box = DkmsSandbox(generation, tmp_path / "sandbox")
    kerneltree.make_kernel_tree(box.kernel_dir, TOOLCHAINS[kernel], kernelrelease=box.kernelver)
    box.write_module(
        dkms_conf=PLAIN_DKMS_CONF, pre_build="missing", files={"Kbuild": HELLO_KBUILD, "hello.rs": HELLO_RS}
    )
    # The documented override, with the shim's fixed tool locations pointed at this checkout.
    shim = tmp_path / "dkms-rustc-pre-build"
    shim.write_text(
        SHIM.read_text().replace(
            "for candidate in /usr/bin/dkms-rustc", f"for candidate in {_wrapper(tmp_path)}"
        )
    )
    shim.chmod(0o755)
    override = OVERRIDE.read_text().replace("/usr/share/dkms-rustc/dkms-rustc-pre-build", str(shim))
    (box.etc_dir / "hello.conf").write_text(override)

    assert box.add().exit_code == 0
    result = box.build()
    log = result.make_log_text or ""
    if kernel == "stable":
        assert result.exit_code == 0, result.output + log
        assert f"OK: kernel {box.kernelver}: building with {TOOLCHAINS['stable'].version_text}" in log
        builds = [call for call in result.make_calls if not call.is_clean]
        assert any(f"RUSTC={TOOLCHAINS['stable'].rustc.resolve()}" in call.argv for call in builds)
    else:
        assert result.exit_code != 0
        assert f"REFUSED: no installed rustc matches kernel {box.kernelver}" in log
        assert "this module build was stopped before compiling" in log
        assert "E0514" not in log
