"""The whole path against kbuild-style trees whose rust/ metadata real compilers wrote.

Each scenario runs the real command (in-process, so processes can be counted) and, where the
outcome is a selection, proves it by compiling a module with real make and the selected rustc.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import kerneltree
from conftest import check_json, write_config
from dkms_rustc import runner
from dkms_rustc.cli import main
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.handoff import ARGS_FILE

TOOLCHAINS = kerneltree.find_real_toolchains()


# Results must not depend on this machine's /etc/dkms-rustc.conf (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("no_system_config")


_need = kerneltree.need


def _toolchain_dir(name: str) -> Path:
    return TOOLCHAINS[name].rustc.parent.parent


def test_selects_nightly_although_path_rustc_is_stable(
    kernel_trees: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("stable", "nightly")
    code, data = check_json(
        capsys,
        "--kernel-dir",
        str(kernel_trees["nightly"]),
        "--config",
        str(write_config(tmp_path, search_defaults=True)),
    )
    assert code == 0, data["messages"]
    assert data["verdict"] == "ok"
    assert data["selected"]["rustc"] == str(TOOLCHAINS["nightly"].rustc)
    assert data["kernel"]["rustc"] == TOOLCHAINS["nightly"].version_text
    assert data["kernel"]["rustc_source"].endswith("rust/libkernel.rmeta")


@pytest.mark.parametrize("name", ["stable", "nightly", "debian"])
def test_pre_build_selection_really_builds_and_the_other_compiler_fails(
    name: str, kernel_trees: dict[str, Path], tmp_path: Path
) -> None:
    _need(name)
    tree = kernel_trees[name]
    build = tmp_path / "build"
    shutil.copytree(kerneltree.HELLO_MODULE, build)
    code = main(
        [
            "pre-build",
            "--kernel-dir",
            str(tree),
            "--build-dir",
            str(build),
            "--config",
            str(write_config(tmp_path, search_defaults=True)),
        ]
    )
    assert code == 0
    args = (build / ARGS_FILE).read_text().split()
    assert f"RUSTC={TOOLCHAINS[name].rustc}" in args
    made = subprocess.run(["make", "-C", str(tree), f"M={build}", *args], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    comment = subprocess.run(
        ["readelf", "-p", ".comment", str(build / "hello.ko")], capture_output=True, text=True
    ).stdout
    assert TOOLCHAINS[name].version_text.replace("rustc ", "rustc version ") in comment
    other = next(tc for other_name, tc in TOOLCHAINS.items() if other_name != name)
    elsewhere = tmp_path / "other"
    shutil.copytree(kerneltree.HELLO_MODULE, elsewhere)
    wrong = kerneltree.build_module(tree, elsewhere, other.rustc)
    assert wrong.returncode != 0 and "E0514" in wrong.stderr


def test_refused_when_only_other_compilers_exist(
    kernel_trees: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("stable", "nightly")
    conf = write_config(tmp_path, "search_defaults = no\n", search_defaults=True)
    code, data = check_json(
        capsys,
        "--kernel-dir",
        str(kernel_trees["nightly"]),
        "--config",
        str(conf),
        "--search",
        str(_toolchain_dir("stable")),
    )
    assert code == ExitCode.REFUSED
    assert data["verdict"] == "refused"
    assert data["selected"]["rustc"] is None
    messages = "\n".join(data["messages"])
    assert messages.startswith("REFUSED: no installed rustc matches kernel")
    assert TOOLCHAINS["nightly"].version_text in messages
    assert TOOLCHAINS["stable"].version_text in messages
    assert "rustup toolchain install nightly-" in messages


def test_refusal_stops_make_before_compiling(kernel_trees: dict[str, Path], tmp_path: Path) -> None:
    _need("stable", "nightly")
    tree = kernel_trees["nightly"]
    build = tmp_path / "build"
    shutil.copytree(kerneltree.HELLO_MODULE, build)
    conf = write_config(tmp_path, "search_defaults = no\n", search_defaults=True)
    code = main(
        [
            "pre-build",
            "--kernel-dir",
            str(tree),
            "--build-dir",
            str(build),
            "--config",
            str(conf),
            "--search",
            str(_toolchain_dir("stable")),
        ]
    )
    assert code == ExitCode.REFUSED
    args = (build / ARGS_FILE).read_text().split()
    made = subprocess.run(["make", "-C", str(tree), f"M={build}", *args], capture_output=True, text=True)
    assert made.returncode != 0
    assert "no installed rustc matches kernel" in made.stdout
    assert "this module build was stopped before compiling" in made.stderr
    assert not (build / "hello.o").exists()


def test_warm_run_starts_no_process(kernel_trees: dict[str, Path], tmp_path: Path) -> None:
    _need("stable")
    argv = [
        "pre-build",
        "--kernel-dir",
        str(kernel_trees["stable"]),
        "--build-dir",
        str(tmp_path),
        "--config",
        str(write_config(tmp_path, search_defaults=True)),
    ]
    assert main(argv) == 0
    before = runner.processes_started
    assert main(argv) == 0
    assert runner.processes_started == before


def test_half_upgraded_toolchain_fails_the_test_compile(
    kernel_trees: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A toolchain whose files say stable but whose compiler is nightly's (an interrupted upgrade):
    its libcore metadata names the kernel's compiler, so only the test compile can catch it."""
    _need("stable", "nightly")
    half = tmp_path / "half"
    (half / "bin").mkdir(parents=True)
    (half / "lib").mkdir()
    shutil.copy2(TOOLCHAINS["nightly"].rustc, half / "bin" / "rustc")
    for driver in (_toolchain_dir("nightly") / "lib").glob("lib*.so*"):
        (half / "lib" / driver.name).symlink_to(driver)
    (half / "lib" / "rustlib").symlink_to(_toolchain_dir("stable") / "lib" / "rustlib")
    conf = write_config(tmp_path, "search_defaults = no\n", search_defaults=True)
    code, data = check_json(
        capsys, "--kernel-dir", str(kernel_trees["stable"]), "--config", str(conf), "--search", str(half)
    )
    assert code == ExitCode.REFUSED, data["messages"]
    messages = "\n".join(data["messages"])
    assert "failed the test compile" in messages
    assert "error[E0514]" in messages
    assert "interrupted upgrade" in messages


@pytest.mark.parametrize(
    ("variant", "code", "verdict", "text"),
    [
        ("no-metadata", ExitCode.NO_METADATA, "no-metadata", "carry no Rust metadata"),
        ("no-rust", ExitCode.NO_RUST, "no-rust", "built without Rust support"),
    ],
)
def test_kernels_without_usable_rust(
    variant: str, code: int, verdict: str, text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("stable")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"], variant=variant)
    got, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(tmp_path, search_defaults=True))
    )
    assert (got, data["verdict"]) == (code, verdict)
    assert text in data["messages"][0]


def test_missing_crate_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _need("stable")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"])
    (tree / "rust" / "libpin_init.rmeta").unlink()
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(tmp_path, search_defaults=True))
    )
    assert code == ExitCode.NO_METADATA
    assert "lacks libpin_init.rmeta" in data["messages"][0]


def test_split_tree_is_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _need("stable")
    tree = kerneltree.make_kernel_tree(
        tmp_path / "linux-headers-7.2.0-1-amd64", TOOLCHAINS["stable"], split=True
    )
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(tmp_path, search_defaults=True))
    )
    assert code == 0, data["messages"]


def test_config_text_disagreeing_with_metadata_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("stable")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"])
    auto = tree / "include" / "config" / "auto.conf"
    auto.write_text(
        auto.read_text().replace(TOOLCHAINS["stable"].version_text, "rustc 1.90.0 (aaaaaaaaa 2025-01-01)")
    )
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(tmp_path, search_defaults=True))
    )
    assert code == 0
    assert data["kernel"]["rustc"] == TOOLCHAINS["stable"].version_text
    assert any("the metadata is what rustc checks, so it wins" in w for w in data["warnings"])


def _remove_tree(tree: Path) -> None:
    shutil.rmtree(tree)


def _remove_configs(tree: Path) -> None:
    (tree / "include" / "config" / "auto.conf").unlink()
    (tree / ".config").unlink()


def _garbage_config(tree: Path) -> None:
    (tree / "include" / "config" / "auto.conf").write_bytes(b"\0\1\2garbage")
    (tree / ".config").unlink()


def _config_is_directory(tree: Path) -> None:
    _remove_configs(tree)
    (tree / ".config").mkdir()


@pytest.mark.parametrize(
    ("setup", "text"),
    [
        (_remove_tree, "does not exist"),
        (_remove_configs, "no usable kbuild configuration"),
        (_garbage_config, "binary data"),
        (_config_is_directory, ".config is a directory"),
    ],
)
def test_broken_trees_are_errors(
    setup: Callable[[Path], None], text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("stable")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"])
    setup(tree)
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(tmp_path, search_defaults=True))
    )
    assert (code, data["verdict"]) == (ExitCode.ERROR, "error")
    assert text in data["messages"][0]


def test_damaged_auto_conf_falls_back_to_dot_config_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("stable")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"])
    (tree / "include" / "config" / "auto.conf").write_bytes(b"\0garbage")
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(tmp_path, search_defaults=True))
    )
    assert code == 0
    assert any("binary data" in w and "used" in w for w in data["warnings"])


def test_command_line_entry_point_runs_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dkms_rustc", "check", "--kernel-dir", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    assert result.returncode == ExitCode.ERROR
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout.startswith("dkms-rustc: ERROR: the kernel build tree")


def test_damaged_kernel_metadata_fails_the_test_compile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Headers whose libcore.rmeta was cut short (a full disk during install): the header still
    names the right compiler, so only the test compile notices, and the fix points at the headers."""
    _need("stable")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"])
    libcore = tree / "rust" / "libcore.rmeta"
    head = libcore.read_bytes()[:4096]
    libcore.unlink()  # a hard link into the toolchain: replace, never write through it
    libcore.write_bytes(head)
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(tmp_path, search_defaults=True))
    )
    assert code == ExitCode.REFUSED
    assert any("could not be loaded" in fix for fix in data["fixes"])


def test_builtin_target_is_used_and_a_foreign_one_is_inconclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Headers for a kernel whose arch Makefile names a built-in target (as arm64's does): the
    test compile uses it. Here the metadata was built for the host, so rustc answers E0461; that
    says nothing about the compiler, so the exact version match selects it, with a warning."""
    _need("stable")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"])
    (tree / "arch" / "arm64").mkdir(parents=True)
    (tree / "arch" / "arm64" / "Makefile").write_text("KBUILD_RUSTFLAGS += --target=aarch64-unknown-none\n")
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(tmp_path, search_defaults=True))
    )
    assert code == 0, data["messages"]
    assert any("inconclusive (error[E0461]" in w for w in data["warnings"])
