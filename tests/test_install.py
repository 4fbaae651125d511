# SPDX-License-Identifier: GPL-2.0-or-later
"""The README's install lines, run: every one of them is run by a test or a CI step (checked
here), and the root-owned virtual environment of packaging/install-venv.sh is installed
where the README says, found by the real PRE_BUILD shim and the kernel hook, upgraded and
removed, with Debian's own python3 (no pip, no pipx, system packages untouched)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import dkms_e2e as e2e
import kerneltree
import planted

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SCRIPT = ROOT / "packaging" / "install-venv.sh"
PREFIX = Path("/opt/dkms-rustc")
LINK = Path("/usr/local/sbin/dkms-rustc")
SYSTEM_ENV = {"PATH": e2e.BASE_PATH, "HOME": "/root", "LC_ALL": "C"}
MARKER = ".dkms-rustc-install-venv"

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="installs for root")


def install_lines() -> list[str]:
    """The command lines of the README's Quick start, Install, Debian package and Development
    sections (indented code, comments dropped)."""
    lines = []
    section = ""
    for line in README.read_text().splitlines():
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        elif section in {"Quick start", "Install", "Debian package", "Development"} and line.startswith(
            "    "
        ):
            command = line.strip().split("  #", 1)[0].strip()
            if command:
                lines.append(command)
    return lines


# Where each line runs: a file of this checkout and what in it runs the line.
RUN_BY = {
    "sh examples/quickstart.sh": (".ci/run", "sh examples/quickstart.sh"),
    "sudo bash .ci/run": (".ci/run", "the README's test command"),  # what CI runs
    "sudo sh packaging/install-venv.sh": (
        "tests/test_install.py",
        "def test_install_venv_as_the_readme_says",
    ),
    "sudo sh packaging/install-venv.sh --uninstall": (
        "tests/test_install.py",
        "def test_install_venv_as_the_readme_says",
    ),
    "sh packaging/build-deb.sh": ("tests/test_deb.py", '"packaging" / "build-deb.sh"'),
    "sudo apt install ./dist/dkms-rustc_0.1.0_all.deb": ("tests/test_deb.py", '"apt", "install"'),
    "python3 -m venv .venv": (".ci/run", '"$python" -m venv "$venv"'),
    ".venv/bin/pip install -e '.[test]'": (
        ".ci/run",
        '-m pip install --quiet --disable-pip-version-check -e ".[test]"',
    ),
    ".venv/bin/python -m pytest -q": (".ci/run", '"$python" -m pytest -q'),
}


def test_every_install_line_of_the_readme_is_run_somewhere() -> None:
    lines = install_lines()
    assert "sudo sh packaging/install-venv.sh" in lines
    assert not [line for line in lines if "pip install ." in line or "pipx" in line], lines
    for line in lines:
        assert line in RUN_BY, f"README line {line!r} is run by no test or CI step (add it to RUN_BY)"
        path, what = RUN_BY[line]
        assert what in (ROOT / path).read_text(), (line, path, what)


def test_the_deb_version_in_the_readme_is_the_projects() -> None:
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    assert f"dkms-rustc_{version.group(1)}_all.deb" in README.read_text()


def run(
    *args: str, env: dict[str, str] | None = None, script: Path = SCRIPT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env or SYSTEM_ENV,
        timeout=900,
    )


def assert_root_alone(path: Path) -> None:
    """``path`` and everything in it: root's, writable by root alone."""
    for entry in [path, *path.rglob("*")]:
        info = entry.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        assert (info.st_uid, info.st_gid) == (0, 0), entry
        assert not info.st_mode & 0o022, f"{entry}: mode {oct(info.st_mode)}"


def pyproject_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert match is not None
    return match.group(1)


@root_only
def test_install_venv_as_the_readme_says(tmp_path: Path) -> None:
    """``sudo sh packaging/install-venv.sh``: /opt/dkms-rustc and /usr/local/sbin/dkms-rustc,
    which the real shim and kernel hook find and run; again (an upgrade); then --uninstall."""
    stable = kerneltree.need("stable")
    with e2e.machine(f"cache_dir = {tmp_path / 'cache'}\n", tool="missing"):
        if PREFIX.exists() and not (PREFIX / MARKER).exists():
            pytest.skip(f"{PREFIX} is someone else's installation")
        try:
            first = run()
            assert first.returncode == 0, first.stdout + first.stderr
            launcher = PREFIX / "sbin" / "dkms-rustc"
            assert LINK.is_symlink() and os.readlink(LINK) == str(launcher)
            assert launcher.read_text().splitlines()[0] == f"#!{PREFIX}/bin/python3 -I"
            assert_root_alone(PREFIX)
            # A caller's PYTHONPATH (sudo -E) cannot make root import the caller's modules,
            # neither through the link nor through the environment's bin/ (pip's script ran
            # without -I before: found by the red team).
            assert os.readlink(PREFIX / "bin" / "dkms-rustc") == "../sbin/dkms-rustc"
            marker = tmp_path / "imported"
            planted_env = planted.python_path_payload(tmp_path / "pythonpath", marker)
            for command in (LINK, PREFIX / "bin" / "dkms-rustc"):
                version = subprocess.run(
                    [str(command), "--version"],
                    capture_output=True,
                    text=True,
                    env={**SYSTEM_ENV, **planted_env},
                )
                assert version.stdout.strip() == f"dkms-rustc {pyproject_version()}", version.stderr
                assert not marker.exists(), marker.read_text()
            assert f"installed dkms-rustc {pyproject_version()} in {PREFIX}" in first.stdout

            # The real shim, as DKMS runs it (minimal PATH, in the module's build directory).
            tree = kerneltree.make_kernel_tree(tmp_path / "kernel", stable)
            build = tmp_path / "build"
            build.mkdir()
            shim = subprocess.run(
                [str(e2e.SHIM), str(tree)], cwd=build, capture_output=True, text=True, env=SYSTEM_ENV
            )
            assert shim.returncode == 0, shim.stderr
            assert f"RUSTC={stable.rustc}" in (build / "dkms-rustc.make-args").read_text()
            hook = subprocess.run(
                [str(ROOT / "dkms" / "kernel" / "50-dkms-rustc"), "0.0.0-no-such-kernel"],
                capture_output=True, text=True, env=SYSTEM_ENV,
            )  # fmt: skip
            assert hook.returncode == 0 and hook.stderr.startswith("dkms-rustc: kernel 0.0.0-no-such-kernel")

            again = run()  # an upgrade: the environment is replaced whole
            assert again.returncode == 0, again.stdout + again.stderr
            assert not Path(f"{PREFIX}.previous").exists()
            assert (
                subprocess.run([str(LINK), "--version"], capture_output=True, env=SYSTEM_ENV).returncode == 0
            )
        finally:
            removed = run("--uninstall")
        assert removed.returncode == 0, removed.stderr
        assert not PREFIX.exists() and not LINK.is_symlink()


# -- refusals: nothing is written -------------------------------------------------------------


@pytest.fixture
def root_dir() -> Iterator[Path]:
    """A directory root alone can write to (as /opt is); /tmp is not one."""
    directory = Path(tempfile.mkdtemp(prefix="dkms-rustc-install-test-", dir="/opt"))
    yield directory
    shutil.rmtree(directory)


@root_only
def test_refuses_a_prefix_others_can_write_to(tmp_path: Path) -> None:
    result = run("--prefix", str(tmp_path / "venv"), "--link", str(tmp_path / "link"))
    assert result.returncode == 1
    assert "install-venv: error: /tmp is writable by others than root (mode 1777)" in result.stderr
    assert not (tmp_path / "venv").exists()


@root_only
def test_refuses_a_directory_of_another_user(root_dir: Path) -> None:
    theirs = root_dir / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 1000, 1000)
    result = run("--prefix", str(theirs / "venv"), "--link", str(root_dir / "link"))
    assert result.returncode == 1
    assert f"{theirs} belongs to uid 1000, not root" in result.stderr
    assert list(theirs.iterdir()) == []


@root_only
def test_refuses_to_replace_what_it_did_not_make(root_dir: Path) -> None:
    (root_dir / "venv").mkdir()
    (root_dir / "venv" / "admin's file").write_text("x")
    result = run("--prefix", str(root_dir / "venv"), "--link", str(root_dir / "link"))
    assert result.returncode == 1 and "was not made by this script" in result.stderr
    removed = run("--prefix", str(root_dir / "venv"), "--link", str(root_dir / "link"), "--uninstall")
    assert removed.returncode == 1 and (root_dir / "venv" / "admin's file").exists()


@root_only
def test_a_failed_upgrade_puts_the_previous_installation_back(root_dir: Path) -> None:
    """pip fails (here: a checkout whose pyproject.toml is broken): the previous environment
    and the link are as they were, and no half-made environment is left."""
    checkout = root_dir / "checkout"
    (checkout / "packaging").mkdir(parents=True)
    shutil.copy2(SCRIPT, checkout / "packaging" / "install-venv.sh")
    (checkout / "pyproject.toml").write_text("[project\nbroken")
    previous = root_dir / "venv"
    (previous / "bin").mkdir(parents=True)
    (previous / MARKER).write_text("")
    (previous / "bin" / "dkms-rustc").write_text("#!/bin/sh\necho previous\n")
    link = root_dir / "link"
    link.symlink_to(previous / "bin" / "dkms-rustc")
    result = run(
        "--prefix", str(previous), "--link", str(link), script=checkout / "packaging" / "install-venv.sh"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "nothing changed: the previous installation" in result.stderr
    assert (previous / "bin" / "dkms-rustc").read_text() == "#!/bin/sh\necho previous\n"
    assert sorted(p.name for p in root_dir.iterdir()) == ["checkout", "link", "venv"]
    assert os.readlink(link) == str(previous / "bin" / "dkms-rustc")


@root_only
def test_usage_and_not_root() -> None:
    assert run("--bogus").returncode == 64
    assert run("--prefix").returncode == 64
    relative = run("--prefix", "opt/x")
    assert relative.returncode == 1 and "must be an absolute path" in relative.stderr
    readable = Path(tempfile.mkdtemp(prefix="dkms-rustc-install-test-"))
    try:
        readable.chmod(0o755)
        script = shutil.copy(SCRIPT, readable / "install-venv.sh")
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        if shutil.which("setpriv") and subprocess.run([*nobody, "true"], capture_output=True).returncode == 0:
            user = subprocess.run(
                [*nobody, "sh", str(script)], capture_output=True, text=True, env=SYSTEM_ENV, cwd="/"
            )
        else:
            # No ordinary user can run anything here (a chroot whose / is root's alone, mode
            # 0700): an `id` on PATH answers as one, so the script's own check is what runs.
            fake = readable / "bin"
            fake.mkdir()
            (fake / "id").write_text("#!/bin/sh\necho 65534\n")
            (fake / "id").chmod(0o755)
            env = {**SYSTEM_ENV, "PATH": f"{fake}:{SYSTEM_ENV['PATH']}"}
            user = subprocess.run(["sh", str(script)], capture_output=True, text=True, env=env, cwd="/")
    finally:
        shutil.rmtree(readable)
    assert user.returncode == 1 and "run as root" in user.stderr, user.stderr
