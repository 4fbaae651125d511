"""The warm PRE_BUILD path stays cheap: no process started, no heavy module imported.

Every DKMS build of a Rust module runs the hook, so its steady state must cost little more
than starting Python (benchmarks/bench.py measures it; this test keeps it from regressing
without timing anything). The warm run happens in a fresh interpreter started with ``-I -S``,
so nothing but the tool itself can have imported a module, and an audit hook sees every
attempt to start a process, whether through the runner or any library.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import dkms_rustc
import kerneltree
from dkms_rustc import config
from dkms_rustc.cli import main
from dkms_rustc.exitcodes import ExitCode

TOOLCHAINS = kerneltree.find_real_toolchains()


def _import_path() -> str:
    """The tool and its dependencies, for an interpreter started without site (whose .pth
    files could import anything): the directories they were imported from here."""
    paths = [str(Path(dkms_rustc.__file__).resolve().parent.parent)]
    for name in ("elftools", "distro"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            parent = str(Path(spec.origin).resolve().parent.parent)
            if parent not in paths:
                paths.append(parent)
    return ":".join(paths)


# Modules the warm path must not import: each costs milliseconds (or starts processes) and is
# needed only on a cold run (pyelftools, subprocess for a probe or the test compile), for a
# fix (distro on Python 3.9), for a bindgen minimum (packaging), for --json, or only by the
# type checker (typing).
HEAVY = (
    "packaging",
    "subprocess",
    "selectors",
    "threading",
    "signal",
    "elftools",
    "distro",
    "logging",
    "typing",
    "dkms_rustc.elfmeta",
    "dkms_rustc.loader",  # the loader closure is remembered: a warm run reads no ELF file
)

# Runs the command line in a fresh interpreter and reports what it imported and tried to start.
PROBE = """\
import sys
started = []
def audit(event, args):
    if event in ("subprocess.Popen", "os.posix_spawn", "os.fork", "os.forkpty", "os.exec",
                 "os.spawn", "os.system", "pty.spawn"):
        started.append(event)
sys.addaudithook(audit)
report, paths, system_config, *argv = sys.argv[1:]
sys.path[:0] = paths.split(":")
from pathlib import Path
from dkms_rustc import config
config.SYSTEM_CONFIG = Path(system_config)  # as in this test process: not the machine's file
from dkms_rustc.cli import main
code = main(argv)
modules = sorted(sys.modules)
import json
with open(report, "w") as stream:
    json.dump({"code": code, "modules": modules, "started": started}, stream)
"""


# Results must not depend on this machine's /etc/dkms-rustc.conf (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("no_system_config")


def _own_copies(tree: Path) -> Path:
    """kerneltree hard-links the toolchain's libcore into rust/; another test run linking the
    same file changes its ctime, which is part of the remembered proof's key. Copies keep
    this test's warm run warm."""
    for path in (tree / "rust").iterdir():
        if path.is_file() and path.stat().st_nlink > 1:
            copy = path.with_name(path.name + ".copy")
            shutil.copy2(path, copy)
            os.replace(copy, path)
    return tree


def _warm_run(tmp_path: Path, argv: list[str]) -> tuple[int, list[str], set[str]]:
    """Run ``argv`` once in this process (fills the cache), then again in a fresh interpreter:
    its exit status, the processes it tried to start, the modules it imported."""
    main(argv)
    report = tmp_path / "report.json"
    system_config = str(config.SYSTEM_CONFIG)  # the fixture's: nothing there
    child = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(report), _import_path(), system_config, *argv],
        cwd=tmp_path / "build",
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path)},
        check=False,
        capture_output=True,
        text=True,
    )
    assert child.returncode == 0 and report.is_file(), f"the warm run failed:\n{child.stderr}"
    result = json.loads(report.read_text())
    return result["code"], result["started"], set(result["modules"])


def _setup(tmp_path: Path, kernel: str, toolchains: list[str]) -> list[str]:
    for name in [kernel, *toolchains]:
        if name not in TOOLCHAINS:
            pytest.skip(f"no real {name} rustc on this machine")
    tree = _own_copies(kerneltree.make_kernel_tree(tmp_path / "kernel", TOOLCHAINS[kernel]))
    (tmp_path / "build").mkdir()
    conf = tmp_path / "test.conf"
    conf.write_text(f"cache_dir = {tmp_path / 'cache'}\nsearch_defaults = no\n")
    argv = ["pre-build", "--kernel-dir", str(tree), "--build-dir", str(tmp_path / "build")]
    argv += ["--config", str(conf)]
    for name in toolchains:
        argv += ["--search", str(TOOLCHAINS[name].rustc.parent.parent)]
    return argv


def test_warm_selection_starts_nothing_and_imports_nothing_heavy(tmp_path: Path) -> None:
    code, started, modules = _warm_run(tmp_path, _setup(tmp_path, "stable", ["stable"]))
    assert code == 0
    assert started == []
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


@pytest.mark.skipif(sys.version_info < (3, 10), reason="Python 3.9 reads os-release through distro")
def test_warm_refusal_starts_nothing_and_imports_nothing_heavy(tmp_path: Path) -> None:
    """The refusal words a fix for the distribution: reading os-release must not start
    lsb_release or uname, nor import distro."""
    code, started, modules = _warm_run(tmp_path, _setup(tmp_path, "stable", ["nightly"]))
    assert code == ExitCode.REFUSED
    assert started == []
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_platform_read_without_a_process_on_either_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """os-release through the standard library (3.10+), and through distro as on 3.9: the
    same answer, and neither starts lsb_release or uname."""
    import platform

    from dkms_rustc import hints

    pytest.importorskip("distro")
    started: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        started.append(args)
        raise OSError("no process may be started here")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    expected = hints.detect_platform()
    monkeypatch.delattr(platform, "freedesktop_os_release", raising=False)
    assert hints.detect_platform() == expected
    assert started == []


ORACLE_LINUX = """\
NAME="Oracle Linux Server"
VERSION="9.4"
ID="ol"
ID_LIKE="fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
"""


@pytest.mark.skipif(sys.version_info < (3, 10), reason="the standard library reads os-release since 3.10")
def test_both_paths_keep_the_raw_distribution_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Oracle Linux is ``ol`` to both readers (distro's id() would say ``oracle``): it is
    classed as RHEL whichever Python runs the tool."""
    import platform

    from dkms_rustc import hints

    pytest.importorskip("distro")
    os_release = tmp_path / "os-release"
    os_release.write_text(ORACLE_LINUX)
    monkeypatch.setattr(platform, "_os_release_cache", None, raising=False)
    monkeypatch.setattr(platform, "_os_release_candidates", (str(os_release),), raising=False)
    from_stdlib = hints._from_stdlib()
    from_distro = hints._from_distro(str(os_release))
    assert from_stdlib == from_distro == hints.Platform("ol", ("fedora",), "9.4", "")
    assert from_distro.family == "rhel"
