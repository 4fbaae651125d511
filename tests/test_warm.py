# SPDX-License-Identifier: GPL-2.0-or-later
"""Warm runs (dkms_rustc.warm): a run that saw what an earlier one saw replays its outcome;
any change to what it looked at makes the next run a full one.

Every test runs the real program (``main()`` as the console script calls it) in a fresh
interpreter against a kernel tree written by the real rustup stable compiler, and tells a
replay from a full run by what was imported (a replay never loads the command-line parser).
One test per kind of input: a toolchain installed or removed, a pin added (the configuration
edited), a kernel file replaced, an owner or mode changed, PATH changed, the tool's own code
changed; and the things that must never be remembered.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import dkms_e2e
import kerneltree
from dkms_rustc import warm
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.handoff import ARGS_FILE

SRC = Path(__file__).resolve().parents[1] / "src"
TOOLCHAINS = kerneltree.find_real_toolchains()

PROBE = """\
import json, sys
report, paths, system_config, *argv = sys.argv[1:]
sys.path[:0] = paths.split(":")
before = set(sys.modules)
if system_config:
    from pathlib import Path
    from dkms_rustc import config
    config.SYSTEM_CONFIG = Path(system_config)  # not the machine's file (the full run reads it)
sys.argv = ["dkms-rustc", *argv]
from dkms_rustc.cli import main
code = main()
loaded = sorted(set(sys.modules) - before)
with open(report, "w") as stream:
    json.dump({"code": code, "loaded": loaded}, stream)
"""


def _paths(src: Path) -> str:
    """The tool and its dependencies, for an interpreter started without site."""
    import importlib.util

    paths = [str(src)]
    for name in ("elftools", "distro", "packaging"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            parent = str(Path(spec.origin).resolve().parent.parent)
            if parent not in paths:
                paths.append(parent)
    return ":".join(paths)


@dataclass
class Run:
    code: int
    stderr: str
    loaded: list[str]

    @property
    def replayed(self) -> bool:
        return "dkms_rustc.arguments" not in self.loaded


@dataclass
class World:
    """A kernel tree, a root-owned copy of rustup's stable toolchain, a build directory."""

    base: Path
    tree: Path
    toolchain: Path  # a copy we may chmod: bin/rustc and lib/
    build: Path
    conf: Path
    env: dict[str, str]
    src: Path = SRC  # where the tool's code is imported from

    def argv(self) -> list[str]:
        return [
            "pre-build",
            "--kernel-dir",
            str(self.tree),
            "--config",
            str(self.conf),
            "--search",
            str(self.toolchain / "bin"),
        ]

    def run(self, *, plain: bool = False) -> Run:
        """The program, as DKMS runs it (from the build directory, a minimal environment)."""
        report = self.base / "report.json"
        system_config = "" if plain else str(self.base / "no-system.conf")
        process = subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                PROBE,
                str(report),
                _paths(self.src),
                system_config,
                *self.argv(),
            ],
            cwd=self.build,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert process.returncode == 0, process.stderr
        data = json.loads(report.read_text())
        return Run(data["code"], process.stderr, data["loaded"])

    def settle(self) -> None:
        """Let timestamps age past the racy window, so the next run can be remembered."""
        time.sleep(warm.RACY_SECONDS + 0.1)


def _copy_toolchain(source: Path, dest: Path) -> Path:
    """rustup's stable, copied (not linked: another test linking a file changes its ctime)."""
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(source / "bin" / "rustc", dest / "bin" / "rustc")
    shutil.copytree(source / "lib", dest / "lib", symlinks=True)
    return dest


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    kerneltree.need("stable")
    stable = TOOLCHAINS["stable"]
    toolchain = _copy_toolchain(stable.sysroot, tmp_path / "toolchain")
    tree = kerneltree.make_kernel_tree(tmp_path / "kernel", stable)
    for path in (tree / "rust").iterdir():  # own copies, for the same reason
        if path.is_file() and path.stat().st_nlink > 1:
            copy = path.with_name(path.name + ".copy")
            shutil.copy2(path, copy)
            os.replace(copy, path)
    build = tmp_path / "build"
    build.mkdir()
    conf = tmp_path / "test.conf"
    conf.write_text(f"cache_dir = {tmp_path / 'cache'}\nsearch_defaults = no\n")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "LC_ALL": "C"}
    made = World(tmp_path, tree, toolchain, build, conf, env)
    # What a replay compares includes this machine's own directories (PATH, rustup homes):
    # other suites installing launchers or packages meanwhile would make it a full run.
    with dkms_e2e.machine_lock():
        made.settle()
        yield made


def _warm(world: World) -> Run:
    """A full run that is remembered, then its replay."""
    first = world.run()
    assert not first.replayed and first.code == ExitCode.OK, first.stderr
    second = world.run()
    assert second.replayed, "the second identical run was not replayed"
    assert (second.code, second.stderr) == (first.code, first.stderr)
    return second


def test_a_replay_hands_make_the_same_and_imports_almost_nothing(world: World) -> None:
    _warm(world)
    (world.build / ARGS_FILE).unlink()  # DKMS makes the build directory anew for every build
    replay = world.run(plain=True)
    assert replay.replayed and replay.code == ExitCode.OK
    assert (world.build / ARGS_FILE).read_text() == (
        f"RUSTC={world.toolchain}/bin/rustc HOSTRUSTC={world.toolchain}/bin/rustc\n"
    )
    heavy = {"argparse", "pathlib", "re", "dataclasses", "json", "enum", "typing", "subprocess"}
    assert not heavy & set(replay.loaded), sorted(heavy & set(replay.loaded))
    assert {name for name in replay.loaded if name.startswith("dkms_rustc")} <= {
        "dkms_rustc",
        "dkms_rustc.cli",
        "dkms_rustc.warm",
        "dkms_rustc.fileio",
        "dkms_rustc.trust",
    }


def test_a_new_build_directory_replays_too(world: World) -> None:
    _warm(world)
    shutil.rmtree(world.build)
    world.build.mkdir()  # another inode at the same place, as DKMS makes it
    assert world.run().replayed
    assert (world.build / ARGS_FILE).is_file()


def test_a_toolchain_installed_or_removed_is_seen(world: World) -> None:
    _warm(world)
    # Another rustc appears where the tool searches (a copy: its own file).
    shutil.copy2(world.toolchain / "bin" / "rustc", world.toolchain / "bin" / "rustc-1.99")
    assert not world.run().replayed
    world.settle()
    world.run()  # remembered now
    assert world.run().replayed
    (world.toolchain / "bin" / "rustc-1.99").unlink()
    assert not world.run().replayed


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="the trust rules apply as root")
def test_a_library_directory_made_where_none_was_is_seen(world: World) -> None:
    """A replay checks a missing directory the dynamic loader would search (lib/tls), not each
    missing one below it (lib/tls/haswell: implied): making them, even owned by root and
    empty, is a change; one a user owns is not root-only, and the compiler is refused."""
    _warm(world)
    nested = world.toolchain / "lib" / "tls" / "haswell"
    nested.mkdir(parents=True)
    os.chown(nested, 1000, 1000)
    run = world.run()
    assert not run.replayed and run.code == ExitCode.REFUSED, run.stderr
    assert f"{nested} is owned by uid 1000" in run.stderr


def test_a_pin_added_in_the_configuration_is_seen(world: World) -> None:
    _warm(world)
    with world.conf.open("a") as stream:
        stream.write(f"pin = * {world.toolchain}/bin/rustc\n")
    run = world.run()
    assert not run.replayed
    assert "selected because of pin * " in run.stderr


def test_a_kernel_file_replaced_is_seen(world: World) -> None:
    _warm(world)
    kernel = world.tree / "rust" / "libkernel.rmeta"
    copy = kernel.with_name("libkernel.rmeta.new")
    shutil.copy2(kernel, copy)
    os.replace(copy, kernel)  # the same bytes and times, another file
    assert not world.run().replayed


def test_the_kernel_built_by_another_compiler_is_refused_at_once(world: World) -> None:
    _warm(world)
    kerneltree.need("nightly")
    kerneltree.make_kernel_tree(world.tree, TOOLCHAINS["nightly"])
    run = world.run()
    assert not run.replayed and run.code == ExitCode.REFUSED
    assert (world.build / ARGS_FILE).read_text().startswith("-f ")


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="the trust rules apply as root")
def test_an_owner_or_mode_changed_is_seen(world: World) -> None:
    _warm(world)
    bin_dir = world.toolchain / "bin"
    bin_dir.chmod(0o775)  # now group 0 may write there: that is not root's alone
    os.chown(bin_dir, 0, 1000)
    run = world.run()
    assert not run.replayed and run.code == ExitCode.REFUSED, run.stderr
    assert "not trusted" in run.stderr
    bin_dir.chmod(0o755)
    os.chown(bin_dir, 0, 0)
    assert world.run().code == ExitCode.OK


def test_path_changed_is_seen_where_path_is_searched(world: World) -> None:
    world.conf.write_text(f"cache_dir = {world.base / 'cache'}\n")  # search_defaults = yes: PATH counts
    world.settle()
    _warm(world)
    world.env["PATH"] = f"{world.toolchain / 'bin'}:{world.env['PATH']}"
    assert not world.run().replayed


def test_path_does_not_matter_where_it_is_not_searched(world: World) -> None:
    _warm(world)
    world.env["PATH"] = "/opt/elsewhere:" + world.env["PATH"]
    assert world.run().replayed  # search_defaults = no: the run never read PATH


def test_a_damaged_record_is_no_record(world: World) -> None:
    _warm(world)
    (record,) = (world.base / "cache").glob(warm.RECORD_PREFIX + "*")
    record.write_bytes(b"\x00garbage")
    run = world.run()
    assert not run.replayed and run.code == ExitCode.OK


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="ownership of the record matters as root")
def test_a_record_someone_else_could_have_written_is_not_used(world: World) -> None:
    _warm(world)
    (record,) = (world.base / "cache").glob(warm.RECORD_PREFIX + "*")
    os.chown(record, 1000, 1000)
    assert not world.run().replayed
    cache = world.base / "cache"
    for path in cache.glob(warm.RECORD_PREFIX + "*"):
        os.chown(path, 0, 0)
    cache.chmod(0o777)  # a directory others can write: nothing in it is trusted
    assert not world.run().replayed


def test_the_tools_own_code_changed_is_seen(world: World) -> None:
    world.src = world.base / "src"
    shutil.copytree(
        SRC / "dkms_rustc", world.src / "dkms_rustc", ignore=shutil.ignore_patterns("__pycache__")
    )
    world.settle()
    _warm(world)
    decision = world.src / "dkms_rustc" / "decision.py"
    decision.write_text(decision.read_text() + "\n# an upgrade\n")
    assert not world.run().replayed


def test_nothing_recently_changed_is_remembered(world: World) -> None:
    (world.tree / "rust" / "libkernel.rmeta").touch()  # changed a moment ago
    first = world.run()
    assert not first.replayed and first.code == ExitCode.OK
    assert not world.run().replayed  # its timestamp could hide a change in the same tick


def test_no_cache_means_no_replay(world: World) -> None:
    _warm(world)
    world_argv = world.argv

    def argv_without_cache() -> list[str]:
        return [*world_argv(), "--no-cache"]

    world.argv = argv_without_cache  # type: ignore[method-assign]
    assert not world.run().replayed
    assert not world.run().replayed


def test_a_record_leaves_out_only_the_missing_paths_a_missing_parent_implies() -> None:
    gone, here, stat_ = ("e", 2), ("d", 0o40755, 0, 0), warm.STAT
    found = [
        ("/t/lib/tls", stat_, "", gone),
        ("/t/lib/tls/haswell", stat_, "", gone),  # implied by /t/lib/tls
        ("/t/lib/tls/haswell/x86_64", stat_, "", gone),  # implied by /t/lib/tls/haswell
        ("/t/lib/x86_64", stat_, "", gone),  # /t/lib exists: kept
        ("/t/lib", stat_, "", here),
        ("/t/lib/tls/f", stat_, "", ("e", 20)),  # another error: kept
    ]
    assert warm._without_implied(found) == [found[0], found[3], found[4], found[5]]


def test_a_relative_missing_path_is_never_taken_as_implied() -> None:
    """dirname("x") is "", which is always missing: a relative path is kept."""
    gone, stat_ = ("e", 2), warm.STAT
    found = [("", stat_, "", gone), ("x", stat_, "", gone)]
    assert warm._without_implied(found) == found
