# SPDX-License-Identifier: GPL-2.0-or-later
"""The dkms harness, checked with real dkms runs on every generation (3.0.10, 3.2.2 and, where
installed, upstream 3.3.0 and 3.4.3).

These also pin down how DKMS treats the dkms.conf lines the project proposes
(dkms_harness.HELLO_DKMS_CONF): how PRE_BUILD is started, how the MAKE line picks up
dkms-rustc.make-args, the `make clean` in between on old dkms, and exit statuses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dkms_e2e as e2e
from dkms_harness import (
    MAKE_ARGS_FILE,
    UPSTREAM_PINS,
    DkmsGeneration,
    DkmsHarnessError,
    DkmsSandbox,
    UpstreamPin,
    ensure_dkms_generations,
    ensure_generation,
    generation_ids,
    upstream_dir,
    versions_report,
)

pytestmark = pytest.mark.dkms

FALLBACK = ("-f", "/nonexistent/dkms-rustc-PRE_BUILD-hook-did-not-run")
NO_RUST_CONFIG = ("CONFIG_MODULES=y", "CONFIG_HAVE_RUST=y")


@pytest.fixture(scope="session")
def dkms_generations() -> list[DkmsGeneration]:
    return e2e.generations_or_skip()


@pytest.fixture(params=e2e.GENERATION_IDS)
def generation(request: pytest.FixtureRequest) -> DkmsGeneration:
    return e2e.generation_or_skip(request.param)


def _var_lib_dkms_snapshot() -> list[tuple[str, float]]:
    root = Path("/var/lib/dkms")
    if not root.exists():
        return []
    return sorted((str(p), p.lstat().st_mtime) for p in [root, *root.rglob("*")])


@pytest.fixture(autouse=True)
def _real_dkms_tree_untouched() -> object:
    before = _var_lib_dkms_snapshot()
    yield
    assert _var_lib_dkms_snapshot() == before, "a test touched the real /var/lib/dkms"


@pytest.fixture
def sandbox(generation: DkmsGeneration, tmp_path: Path) -> DkmsSandbox:
    return DkmsSandbox(generation, tmp_path / "sandbox")


def _build_dir(box: DkmsSandbox) -> Path:
    return box.dkms_tree / "hello" / "1.0" / "build"


def test_generations_and_their_facts(dkms_generations: list[DkmsGeneration]) -> None:
    """Old first, then newer ones; every fact the tests branch on agrees with the script itself."""
    assert [g.name for g in dkms_generations] == sorted(
        (g.name for g in dkms_generations), key=lambda v: tuple(int(x) for x in v.split("."))
    )
    old, *newer = dkms_generations
    assert not old.honours_pre_build_exit and old.cleans_between_pre_build_and_make
    assert newer and all(g.honours_pre_build_exit and not g.cleans_between_pre_build_and_make for g in newer)
    for generation in dkms_generations:
        text = generation.script.read_text()
        assert f'dkms-{generation.version}"' in text
        assert "${DKMS_HARNESS_ETC:-" in text
        assert '"/etc/dkms/' not in text and " /etc/dkms/" not in text
        assert 'dkms_tree="/var/lib/dkms"' not in text
        # What the upstream source says, read from the script this generation runs.
        assert generation.sources_build_environment == ('source "$build_environment"' in text)
        assert generation.per_module_build_exclusive == ("BUILD_EXCLUSIVE_CONFIG[$module_index]" in text)
        assert generation.script_overrides == ('/$module/${2%% *}"' in text)
        assert generation.try_sign_modules == ("try_sign_modules" in text)


def test_setup_is_idempotent(dkms_generations: list[DkmsGeneration]) -> None:
    assert ensure_dkms_generations() == dkms_generations


def test_add_build_status_remove(sandbox: DkmsSandbox, generation: DkmsGeneration) -> None:
    probe = sandbox.root / "pre-build.probe"
    sandbox.write_module(probe=probe)

    added = sandbox.add()
    assert added.exit_code == 0, added.output
    assert "hello/1.0: added" in sandbox.status().output

    built = sandbox.build()
    assert built.exit_code == 0, built.output + (built.make_log_text or "")

    # PRE_BUILD: ${kernel_source_dir} expanded, one argument, cwd = the build directory,
    # dkms's own variables exported, kernel_source_dir / dkms_tree not.
    report = probe.read_text()
    head, _, rest = report.partition("--- env\n")
    env_text, _, listing = rest.partition("--- ls\n")
    assert f"arg={sandbox.kernel_dir}\n" in head and "argc=1\n" in head
    assert f"cwd={_build_dir(sandbox)}\n" in head
    env = dict(line.split("=", 1) for line in env_text.splitlines() if "=" in line)
    assert env["kernelver"] == sandbox.kernelver
    assert env["module"] == "hello" and env["module_version"] == "1.0"
    assert env["arch"] == sandbox.arch
    assert "kernel_source_dir" not in env and "dkms_tree" not in env
    assert "dkms-rustc-pre-build" in listing.split()

    # MAKE: \$(cat ...) expanded after PRE_BUILD; dkms prefixes -jN KERNELRELEASE=.
    (build,) = built.builds
    assert build.argv[0].startswith("-j") and build.argv[1] == f"KERNELRELEASE={sandbox.kernelver}"
    assert build.argv[2:] == (
        "-C",
        str(sandbox.kernel_dir),
        f"M={_build_dir(sandbox)}",
        "RUSTC=/usr/bin/false-marker",
    )
    assert build.cwd == str(_build_dir(sandbox))

    # make clean between PRE_BUILD and MAKE only on old dkms; the hand-off file survives it.
    if generation.cleans_between_pre_build_and_make:
        assert [call.is_clean for call in built.make_calls] == [True, False, True]
        first_clean = built.kernel_calls[0]
        assert first_clean.startswith("goal=clean") and MAKE_ARGS_FILE in first_clean
    else:
        assert built.cleans == ()

    # Where the hook's output went.
    assert built.make_log is not None
    assert built.make_log.parts[-5:] == ("1.0", sandbox.kernelver, sandbox.arch, "log", "make.log")
    hook_line = "pre-build stub (writes-make-args): stderr"
    assert (hook_line in (built.make_log_text or "")) == generation.pre_build_output_in_make_log
    assert (hook_line in built.output) != generation.pre_build_output_in_make_log
    assert "RUSTC=/usr/bin/false-marker" in (built.make_log_text or "")

    status = sandbox.status()
    assert f"hello/1.0, {sandbox.kernelver}, {sandbox.arch}: built" in status.output

    removed = sandbox.remove()
    assert removed.exit_code == 0, removed.output
    assert list(sandbox.dkms_tree.iterdir()) == []


@pytest.mark.parametrize("kind", ["exit-1", "exit-77"])
def test_failing_pre_build(sandbox: DkmsSandbox, generation: DkmsGeneration, kind: str) -> None:
    status = int(kind.split("-")[1])
    sandbox.write_module(pre_build=kind)
    assert sandbox.add().exit_code == 0
    built = sandbox.build()
    log = built.make_log_text or ""
    assert built.make_log == _build_dir(sandbox) / "make.log"
    if generation.honours_pre_build_exit:
        assert built.exit_code == status, built.output
        assert built.make_calls == ()
        assert f"(bad exit status: {status})" in built.output
        assert f"pre-build stub ({kind}): stdout" in log and f"# exit code: {status}" in log
        assert f"pre-build stub ({kind})" not in built.output
    else:
        # Status ignored: make runs, and only the MAKE line's fallback stops it.
        assert built.exit_code == 10, built.output
        assert [call.argv[-2:] for call in built.builds] == [FALLBACK]
        assert f"pre-build stub ({kind}): stderr" in built.output
        assert "dkms-rustc-PRE_BUILD-hook-did-not-run: No such file or directory" in log
    assert "hello/1.0: added" in sandbox.status().output


def test_pre_build_status_obeyed_even_with_make_args(
    sandbox: DkmsSandbox, generation: DkmsGeneration
) -> None:
    sandbox.write_module(pre_build="writes-make-args-exit-1")
    built = sandbox.build()  # without `add`: build adds on both generations
    if generation.honours_pre_build_exit:
        assert built.exit_code == 1 and built.builds == ()
    else:
        assert built.exit_code == 0, built.output
        assert built.builds[0].argv[-1] == "RUSTC=/usr/bin/false-marker"


@pytest.mark.parametrize("kind", ["not-executable", "missing"])
def test_hook_not_runnable(sandbox: DkmsSandbox, kind: str) -> None:
    sandbox.write_module(pre_build=kind)
    built = sandbox.build()
    assert "The pre_build script is not executable." in built.output
    assert built.exit_code == 10, built.output
    assert [call.argv[-2:] for call in built.builds] == [FALLBACK]


def test_build_exclusive_config(generation: DkmsGeneration, tmp_path: Path) -> None:
    box = DkmsSandbox(generation, tmp_path / "sandbox", kernel_config=NO_RUST_CONFIG)
    probe = box.root / "pre-build.probe"
    box.write_module(probe=probe)
    built = box.build()
    assert built.exit_code == 77, built.output
    assert "BUILD_EXCLUSIVE directive" in built.output
    assert built.make_calls == () and not probe.exists()

    # On a kernel upgrade dkms runs `autoinstall`: 3.0.11+ call that skipped, 3.0.10 failed.
    auto = box.autoinstall()
    if generation.autoinstall_skips_exit_77:
        assert auto.exit_code == 0 and "skipped" in auto.output, auto.output
    else:
        assert auto.exit_code == 11, auto.output
        assert "One or more modules failed to install during autoinstall" in auto.output


def test_autoinstall(sandbox: DkmsSandbox, generation: DkmsGeneration) -> None:
    sandbox.write_module()
    assert sandbox.add().exit_code == 0
    auto = sandbox.autoinstall()
    assert auto.exit_code == 0, auto.output
    installed = sandbox.install_tree / sandbox.kernelver / "updates" / "dkms" / "hello.ko"
    assert installed.is_file()
    assert f"hello/1.0, {sandbox.kernelver}, {sandbox.arch}: installed" in sandbox.status().output
    assert sandbox.remove().exit_code == 0
    assert not installed.exists()


def test_autoinstall_with_pre_build_exit_77(sandbox: DkmsSandbox, generation: DkmsGeneration) -> None:
    sandbox.write_module(pre_build="exit-77")
    assert sandbox.add().exit_code == 0
    auto = sandbox.autoinstall()
    if generation.honours_pre_build_exit:
        # 77 from the hook reads as "skipped": autoinstall succeeds with nothing installed.
        assert auto.exit_code == 0 and "skipped" in auto.output, auto.output
    else:
        assert auto.exit_code == 11, auto.output
    assert not (sandbox.install_tree / sandbox.kernelver / "updates").exists()


REFUSING_HOOK = """#!/bin/sh
echo 'dkms-rustc: refused: the kernel wants rustc X, this machine has Y' >&2
printf '$(error dkms-rustc refused this build: the kernel wants rustc X, this machine has Y)\\n' \\
    > dkms-rustc.refused.mk
echo "-f $PWD/dkms-rustc.refused.mk" > dkms-rustc.make-args
exit 1
"""


def test_refusal_reaches_make_log_on_both(sandbox: DkmsSandbox, generation: DkmsGeneration) -> None:
    """A refusing hook that exits 1 AND hands make a `$(error)` makefile stops both generations
    with the reason in make.log (3.0.10 runs make anyway; 3.2.2 stops at the hook)."""
    sandbox.write_module(pre_build="missing", files={"dkms-rustc-pre-build": REFUSING_HOOK})
    built = sandbox.build()
    log = built.make_log_text or ""
    if generation.honours_pre_build_exit:
        assert built.exit_code == 1 and built.builds == (), built.output
        assert "dkms-rustc: refused: the kernel wants rustc X" in log
    else:
        assert built.exit_code == 10, built.output
        assert "dkms-rustc: refused" in built.output  # the hook's own words, on the terminal
        assert "*** dkms-rustc refused this build: the kernel wants rustc X" in log
        (build,) = built.builds
        assert build.argv[-2:] == ("-f", str(_build_dir(sandbox) / "dkms-rustc.refused.mk"))


# ------------------------------------------------------------------ upstream DKMS, installed by hand

PROVIDED = [pin for pin in UPSTREAM_PINS if pin.version in e2e.GENERATION_IDS]


def _fake_install(root: Path, version: str, text: str) -> Path:
    script = root / version / "usr" / "sbin" / "dkms"
    script.parent.mkdir(parents=True)
    script.write_text(text)
    script.chmod(0o755)
    return script


def test_an_absent_upstream_version_is_not_provided_and_said_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DKMS_RUSTC_UPSTREAM_DKMS", str(tmp_path / "none"))
    monkeypatch.delenv("DKMS_RUSTC_REQUIRE_UPSTREAM_DKMS", raising=False)
    assert generation_ids() == ("old", "current")
    report = versions_report()
    for pin in UPSTREAM_PINS:
        (line,) = [line for line in report if line.startswith(f"dkms {pin.version}: ")]
        assert "NOT PROVIDED here" in line and str(tmp_path / "none" / pin.version) in line, line
        assert pin.commit in line and f"DESTDIR={tmp_path / 'none' / pin.version}" in line
    # Asked for, it is a test id again, and setting it up fails with the same explanation.
    monkeypatch.setenv("DKMS_RUSTC_REQUIRE_UPSTREAM_DKMS", "1")
    assert generation_ids() == ("old", "current", *(pin.version for pin in UPSTREAM_PINS))
    with pytest.raises(DkmsHarnessError, match="is not provided here"):
        ensure_generation(UPSTREAM_PINS[-1].version)


@pytest.mark.root
def test_an_upstream_install_that_is_not_the_pinned_one_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "upstream"
    pin = UPSTREAM_PINS[-1]
    monkeypatch.setenv("DKMS_RUSTC_UPSTREAM_DKMS", str(root))
    monkeypatch.setenv("DKMS_RUSTC_CI_CACHE", str(tmp_path / "cache"))
    script = _fake_install(root, pin.version, f'#!/bin/bash\necho "dkms-{pin.version}"\n')
    assert pin.version in generation_ids()  # present: it is a test id, and it must not pass
    with pytest.raises(DkmsHarnessError, match=f"is not upstream DKMS {pin.tag} as pinned"):
        ensure_generation(pin.version)
    script.parent.chmod(0o777)  # the right bytes would not help: anyone could swap them
    with pytest.raises(DkmsHarnessError, match="writable by group or others"):
        ensure_generation(pin.version)
    assert not (tmp_path / "cache" / "dkms" / f"upstream-{pin.version}").exists()


def _a_pinned_upstream_install_is_used_from_any_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pin: UpstreamPin
) -> None:
    """A copy of this machine's installation, at another DKMS_RUSTC_UPSTREAM_DKMS."""
    installed = e2e.generation_or_skip(pin.version)
    assert installed.package_version == f"upstream {pin.tag} ({pin.commit[:12]})"
    original = upstream_dir() / pin.version / "usr" / "sbin" / "dkms"
    monkeypatch.setenv("DKMS_RUSTC_UPSTREAM_DKMS", str(tmp_path / "upstream"))
    monkeypatch.setenv("DKMS_RUSTC_CI_CACHE", str(tmp_path / "cache"))
    _fake_install(tmp_path / "upstream", pin.version, original.read_text())
    generation = ensure_generation(pin.version)
    assert generation.version == pin.version and generation.script.is_relative_to(tmp_path / "cache")
    assert generation.script.read_text() == installed.script.read_text().replace(
        str(installed.script.parents[1]), str(generation.script.parents[1])
    )
    assert ensure_generation(pin.version) == generation  # cached


if PROVIDED:  # an empty parameter set would be a skip, and a skip fails CI: no upstream, no case
    test_a_pinned_upstream_install_is_used_from_any_location = pytest.mark.root(
        pytest.mark.parametrize("pin", PROVIDED, ids=[pin.version for pin in PROVIDED])(
            _a_pinned_upstream_install_is_used_from_any_location
        )
    )
