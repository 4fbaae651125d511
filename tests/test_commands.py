"""Policies, configuration errors, usage errors and the toolchains listing, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kerneltree
from conftest import isolate
from dkms_rustc.cli import main
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.handoff import ARGS_FILE, REFUSAL_FILE

TOOLCHAINS = kerneltree.find_real_toolchains()


@pytest.fixture(autouse=True)
def _no_system_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def nightly_tree(kernel_trees: dict[str, Path]) -> Path:
    if "stable" not in TOOLCHAINS or "nightly" not in TOOLCHAINS:
        pytest.skip("needs real stable and nightly toolchains")
    return kernel_trees["nightly"]


def _refusing_conf(tmp_path: Path, extra: str) -> list[str]:
    """Discovery limited to stable, so a nightly kernel has no match."""
    path = tmp_path / "test.conf"
    path.write_text(f"cache_dir = {tmp_path / 'cache'}\nsearch_defaults = no\n{extra}")
    stable_dir = TOOLCHAINS["stable"].rustc.parent.parent
    return ["--config", str(path), "--search", str(stable_dir)]


def _pre_build(tree: Path, build: Path, *extra: str) -> int:
    build.mkdir(exist_ok=True)
    return main(["pre-build", "--kernel-dir", str(tree), "--build-dir", str(build), *extra])


def test_warn_policy_lets_the_build_go_on(
    nightly_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _pre_build(nightly_tree, tmp_path / "b", *_refusing_conf(tmp_path, "policy = warn\n"))
    assert code == 0
    assert (tmp_path / "b" / ARGS_FILE).read_text() == "\n"
    assert not (tmp_path / "b" / REFUSAL_FILE).exists()
    err = capsys.readouterr().err
    assert err.startswith("dkms-rustc: REFUSED, building anyway (policy warn): no installed rustc matches")
    assert "policy warn" in err


def test_fallback_policy_for_one_module_hands_its_switch_to_make(
    nightly_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("module", "bcachefs")  # DKMS exports the module's name
    conf = "[module bcachefs]\npolicy = fallback\nfallback_make_args = BCACHEFS_RUST=n\n"
    code = _pre_build(nightly_tree, tmp_path / "b", *_refusing_conf(tmp_path, conf))
    assert code == 0
    assert (tmp_path / "b" / ARGS_FILE).read_text() == "BCACHEFS_RUST=n\n"
    assert "building the fallback variant (policy fallback)" in capsys.readouterr().err


def test_fallback_for_another_module_does_not_apply(nightly_tree: Path, tmp_path: Path) -> None:
    conf = "[module bcachefs]\npolicy = fallback\nfallback_make_args = BCACHEFS_RUST=n\n"
    code = _pre_build(nightly_tree, tmp_path / "b", "--module", "zfs", *_refusing_conf(tmp_path, conf))
    assert code == ExitCode.REFUSED
    assert (tmp_path / "b" / ARGS_FILE).read_text().startswith("-f ")


def test_fallback_without_arguments_refuses(
    nightly_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _pre_build(nightly_tree, tmp_path / "b", "--policy", "fallback", *_refusing_conf(tmp_path, ""))
    assert code == ExitCode.REFUSED
    assert "fallback_make_args is empty" in capsys.readouterr().err


def test_policy_flag_overrides_the_file(nightly_tree: Path, tmp_path: Path) -> None:
    code = _pre_build(
        nightly_tree, tmp_path / "b", "--policy", "select", *_refusing_conf(tmp_path, "policy = warn\n")
    )
    assert code == ExitCode.REFUSED


def test_bad_configuration_is_an_error_and_still_stops_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("policy = sometimes\n")
    code = _pre_build(tmp_path / "kernel", tmp_path / "b", "--config", str(conf))
    assert code == ExitCode.ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"dkms-rustc: ERROR: {conf}:1: policy must be one of")
    assert (tmp_path / "b" / ARGS_FILE).read_text().startswith("-f ")


def test_missing_kernel_tree_in_pre_build_names_the_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:  # --kernel-dir and -k together are a usage error
        _pre_build(tmp_path / "absent", tmp_path / "b", "-k", "9.9.9-test")
    assert info.value.code == ExitCode.USAGE
    capsys.readouterr()
    build = tmp_path / "b"
    code = main(["pre-build", "-k", "9.9.9-test", "--build-dir", str(build), "--no-cache"])
    assert code == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "/lib/modules/9.9.9-test/build" in err and "does not exist" in err
    from dkms_rustc import hints

    package = hints.install_headers("9.9.9-test", hints.detect_platform())[0]
    assert "9.9.9-test" in package and f"dkms-rustc: fix: {package}\n" in err


def test_usage_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "--no-such-option"])
    assert info.value.code == ExitCode.USAGE
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == ExitCode.USAGE


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["pre-build", "--help"])
    out = capsys.readouterr().out
    for code in ExitCode:
        if code is not ExitCode.INTERRUPTED:
            assert f"\n  {code:<3} " in out


def test_toolchains_lists_proxy_and_concrete_compilers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if "stable" not in TOOLCHAINS:
        pytest.skip("needs rustup's stable toolchain")
    conf = tmp_path / "t.conf"
    conf.write_text(f"cache_dir = {tmp_path}\n")
    assert main(["toolchains", "--json", "--config", str(conf)]) == 0
    data = json.loads(capsys.readouterr().out)
    binaries = {item["binary"] for item in data["candidates"]}
    assert str(TOOLCHAINS["stable"].rustc) in binaries
    assert all("rustup" not in Path(binary).name for binary in binaries)
    stable = next(item for item in data["candidates"] if item["binary"] == str(TOOLCHAINS["stable"].rustc))
    assert stable["version"] == TOOLCHAINS["stable"].version_text
    assert stable["learned_from"].startswith("libcore metadata")


def test_env_stops_make_when_the_selection_cannot_be_carried(tmp_path: Path) -> None:
    """A selected path the shell would split must not turn into "no arguments" (kbuild's rustc)."""
    from dkms_rustc.commands.env import STOP_VARIABLE, shell_lines
    from dkms_rustc.decision import Decision, Verdict
    from dkms_rustc.engine import Assessment

    decision = Decision(verdict=Verdict.OK, headline="ok", make_args=("RUSTC=/opt/my rust/bin/rustc",))
    lines = shell_lines(Assessment(decision), "7.2.0")
    assert any(line.startswith(f"export {STOP_VARIABLE}=") and "cannot carry" in line for line in lines)
    assert any("RUSTC=$(" in line for line in lines)


def test_policy_exit_status_is_zero_everywhere(
    nightly_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["check", "--json", "--kernel-dir", str(nightly_tree), *_refusing_conf(tmp_path, "policy = warn\n")]
    )
    data = json.loads(capsys.readouterr().out)
    assert (code, data["exit_code"], data["verdict"], data["policy_applied"]) == (0, 0, "refused", "warn")


def test_fallback_builds_the_c_variant_for_a_kernel_without_rust(tmp_path: Path) -> None:
    if "stable" not in TOOLCHAINS:
        pytest.skip("needs rustup's stable toolchain")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"], variant="no-rust")
    conf = tmp_path / "f.conf"
    conf.write_text(
        f"cache_dir = {tmp_path / 'c'}\npolicy = fallback\nfallback_make_args = RUST_HELLO_C_ONLY=y\n"
    )
    assert _pre_build(tree, tmp_path / "b", "--config", str(conf)) == 0
    assert (tmp_path / "b" / ARGS_FILE).read_text() == "RUST_HELLO_C_ONLY=y\n"
