"""The module's own tree must not choose the compiler.

A module's files are installed by root, so a ``rustc`` inside its tree passes every ownership
rule: only the exclusion of the module's directories keeps it out. The hostile tree below
carries fake compilers (root-owned, claiming exactly the kernel's version, tests/planted.py)
in every place rustup, a shell or kbuild might look, plus toolchain files and environment
variables naming them; the selection must be the one made without any of it, and the fakes
must never run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import kerneltree
import planted
from conftest import isolate, write_config
from dkms_rustc.cli import main
from dkms_rustc.handoff import ARGS_FILE
from dkms_rustc.toolchains import discover

TOOLCHAINS = kerneltree.find_real_toolchains()
SRC = Path(__file__).resolve().parents[1] / "src"
NOT_IN_ENVIRONMENT = ("RUSTUP_HOME", "CARGO_HOME", "RUSTUP_TOOLCHAIN", "RUSTC", "SUDO_USER")


def _need(name: str) -> kerneltree.RealToolchain:
    if name not in TOOLCHAINS:
        pytest.skip(f"no real {name} rustc on this machine")
    return TOOLCHAINS[name]


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tmp_path.chmod(0o755)
    isolate(monkeypatch, tmp_path)
    for name in NOT_IN_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _hostile_module(base: Path, version_text: str, marker: Path) -> tuple[Path, dict[str, str]]:
    """A DKMS-style build dir full of compilers, and the environment pointing at them."""
    libcore = kerneltree._sysroot_rmeta(_need("stable"), "core")
    version_dir = base / "var" / "lib" / "dkms" / "hello" / "1.0"
    build = version_dir / "build"
    shutil.copytree(kerneltree.HELLO_MODULE, build)

    def fake(root: Path) -> None:
        planted.fake_toolchain(
            root, version_text, marker, libcore_from=libcore, bindgen_text="bindgen 0.72.1"
        )

    fake(build / "evil")  # named by the toolchain files and PATH
    planted.fake_tool(build / "rustc", version_text, marker)  # `rustc` in the working directory
    planted.fake_tool(build / "bindgen", "bindgen 0.72.1", marker)
    fake(build / ".rustup" / "toolchains" / f"stable-{planted.HOST}")  # RUSTUP_HOME
    fake(build / ".rustup" / "toolchains" / "evil")
    planted.fake_tool(build / ".cargo" / "bin" / "bindgen", "bindgen 0.72.1", marker)  # CARGO_HOME
    fake(version_dir / "tools")  # DKMS's <module>/<version>, beside build/
    (build / "rust-toolchain.toml").write_text(f'[toolchain]\npath = "{build / "evil"}"\n')
    (build / "rust-toolchain").write_text("evil\n")
    (version_dir / "rust-toolchain.toml").write_text('[toolchain]\nchannel = "evil"\n')
    # A root-owned link outside the tree, pointing into it.
    (base / "outside" / "bin").mkdir(parents=True)
    (base / "outside" / "bin" / "rustc").symlink_to(build / "evil" / "bin" / "rustc")
    path = ":".join(
        [
            str(build / "evil" / "bin"),
            "evil/bin",  # relative: resolved against the build dir the hook runs in
            "",  # empty: the current directory
            ".",
            str(build),
            str(version_dir / "tools" / "bin"),
            str(base / "outside" / "bin"),
            os.environ.get("PATH", "/usr/bin:/bin"),
        ]
    )
    env = {
        "PATH": path,
        "RUSTUP_HOME": str(build / ".rustup"),
        "RUSTUP_TOOLCHAIN": "evil",
        "CARGO_HOME": str(build / ".cargo"),
        "RUSTC": str(build / "rustc"),
        "BINDGEN": str(build / "bindgen"),
        "module": "hello",
        "module_version": "1.0",
        "kernelver": "7.2.0-dkmsrustc-test",
    }
    return build, env


def _pre_build(tree: Path, build: Path, conf: Path) -> list[str]:
    assert main(["pre-build", "--kernel-dir", str(tree), "--config", str(conf)]) == 0
    return (build / ARGS_FILE).read_text().split()


@pytest.mark.parametrize("kernel", ["stable", "nightly", "debian"])
def test_hostile_tree_and_environment_change_nothing(
    kernel: str,
    kernel_trees: dict[str, Path],
    base: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = _need(kernel)
    tree = kernel_trees[kernel]
    marker = base / "MARKER"
    build, env = _hostile_module(base, real.version_text, marker)
    conf = write_config(base, search_defaults=True)

    # The selection made from a neutral place, with the caller's ordinary environment.
    neutral = base / "neutral-build"
    neutral.mkdir()
    monkeypatch.chdir(neutral)
    expected = _pre_build(tree, neutral, conf)

    monkeypatch.chdir(build)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    got = _pre_build(tree, build, conf)
    assert not marker.exists(), marker.read_text()
    assert got == expected
    rustc = next(word.split("=", 1)[1] for word in got if word.startswith("RUSTC="))
    assert rustc == str(real.rustc.resolve())
    _assert_concrete_compiler(rustc, real.version_text)


def _assert_concrete_compiler(rustc: str, version_text: str) -> None:
    """Absolute, no link on the way, not rustup's proxy, and itself the kernel's compiler
    (asked with an empty environment: no rustup can be choosing for it)."""
    assert os.path.isabs(rustc) and os.path.realpath(rustc) == rustc
    assert os.path.basename(rustc) == "rustc"
    for proxy in (Path.home() / ".cargo" / "bin" / "rustup", Path("/usr/bin/rustup")):
        if proxy.exists():
            assert not os.path.samefile(rustc, proxy)
    out = subprocess.run([rustc, "--version"], capture_output=True, text=True, env={}, cwd="/", check=True)
    assert out.stdout.strip() == version_text


def test_hostile_tree_as_a_real_process(kernel_trees: dict[str, Path], base: Path) -> None:
    """The same as a real process (tests/planted.hook_argv), started in the build dir like DKMS."""
    real = _need("stable")
    marker = base / "MARKER"
    build, env = _hostile_module(base, real.version_text, marker)
    environment = {
        key: value for key, value in os.environ.items() if key not in NOT_IN_ENVIRONMENT and key != "PATH"
    }
    environment.update(env)
    environment["PYTHONPATH"] = str(SRC)
    result = subprocess.run(
        planted.hook_argv(
            "pre-build",
            "--kernel-dir",
            str(kernel_trees["stable"]),
            "--config",
            str(write_config(base, search_defaults=True)),
        ),
        cwd=build,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    args = (build / ARGS_FILE).read_text().split()
    assert f"RUSTC={real.rustc.resolve()}" in args
    assert not any(str(build) in word for word in args)


def test_every_planted_place_is_ignored_and_said_so(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = base / "MARKER"
    build, env = _hostile_module(base, "rustc 1.95.0 (59807616e 2026-04-14)", marker)
    found = discover(environ=env, excluded=(build, build.parent))
    for tool in [*found.rustcs, *found.bindgens]:
        assert not str(tool.binary).startswith(str(build.parent)), tool
    ignored = "\n".join(found.evidence)
    assert f"ignored {base / 'outside' / 'bin' / 'rustc'}: inside the module's own tree" in ignored
    assert f"ignored {build / '.rustup' / 'toolchains' / 'evil' / 'bin' / 'rustc'}" in ignored
    assert not marker.exists()


def test_rustup_proxy_is_replaced_by_its_toolchains_also_when_hard_linked(base: Path) -> None:
    """rustup installs rustc, cargo... as hard links to itself where it can (else symlinks)."""
    cargo_bin = base / "home" / ".cargo" / "bin"
    cargo_bin.mkdir(parents=True)
    marker = base / "MARKER"
    planted.fake_tool(cargo_bin / "rustup", "rustc 1.95.0 (59807616e 2026-04-14)", marker)
    os.link(cargo_bin / "rustup", cargo_bin / "rustc")
    planted.fake_toolchain(
        base / "home" / ".rustup" / "toolchains" / f"stable-{planted.HOST}",
        "rustc 1.95.0 (59807616e 2026-04-14)",
        marker,
    )
    found = discover(environ={"PATH": str(cargo_bin)})
    assert str(cargo_bin / "rustc") in found.proxies
    binaries = [str(tool.binary) for tool in found.rustcs]
    assert str(cargo_bin / "rustc") not in binaries
    assert (
        str(base / "home" / ".rustup" / "toolchains" / f"stable-{planted.HOST}" / "bin" / "rustc") in binaries
    )
