"""Planted compilers: whatever a non-root user can change is never run as root, and says why.

Each fake writes a marker whenever it runs (tests/planted.py). Every planted fake claims to
be exactly the kernel's compiler (and, where it has a libcore, its files say so too), so
only the trust rules keep it from being run by the probe, by the test compile, and in the
end by make as root. Positive controls run the same fakes root-owned (or trusted by the
administrator) and see the marker, so a missing marker really means "never ran".
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import kerneltree
import planted
from conftest import check_json, messages_text, system_config, write_config
from dkms_rustc import config, runner, toolchains
from dkms_rustc.cli import main
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.handoff import ARGS_FILE

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant files owned by others"),
]

TOOLCHAINS = kerneltree.find_real_toolchains()
UID = planted.USER_UID


def _stable() -> kerneltree.RealToolchain:
    if "stable" not in TOOLCHAINS:
        pytest.skip("no real stable rustc on this machine")
    return TOOLCHAINS["stable"]


@pytest.fixture
def tree(kernel_trees: dict[str, Path]) -> Path:
    _stable()
    return kernel_trees["stable"]


@pytest.fixture
def base(public_base: Path) -> Path:
    """conftest.public_base: what a user plants there is public."""
    return public_base


def _libcore() -> Path:
    return kerneltree._sysroot_rmeta(_stable(), "core")


def _candidate(data: dict[str, Any], path: Path) -> dict[str, Any]:
    for candidate in data["candidates"]:
        if candidate["path"] == str(path):
            return candidate  # type: ignore[no-any-return]
    raise AssertionError(f"{path} not among {[c['path'] for c in data['candidates']]}")


# -- where a rustc can be planted: each returns (search dir, the rustc path, the reason) ----------


def _plant(base: Path, marker: Path, libcore: bool) -> Path:
    return planted.fake_toolchain(
        base / "tc", _stable().version_text, marker, libcore_from=_libcore() if libcore else None
    )


def _file_owned_by_user(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    tc = _plant(base, marker, libcore)
    os.chown(tc / "bin" / "rustc", UID, UID)
    return tc, tc / "bin" / "rustc", f"{tc / 'bin' / 'rustc'} is owned by uid {UID}"


def _toolchain_dir_owned_by_user(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    tc = _plant(base, marker, libcore)
    os.chown(tc, UID, UID)
    return tc, tc / "bin" / "rustc", f"{tc} is owned by uid {UID}"


def _bin_dir_group_writable(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    tc = _plant(base, marker, libcore)
    os.chown(tc / "bin", 0, UID)
    (tc / "bin").chmod(0o775)
    return tc, tc / "bin" / "rustc", f"{tc / 'bin'} is writable by group {UID}"


def _bin_dir_world_writable(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    tc = _plant(base, marker, libcore)
    (tc / "bin").chmod(0o777)
    return tc, tc / "bin" / "rustc", f"{tc / 'bin'} is writable by every user"


def _file_group_writable(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    tc = _plant(base, marker, libcore)
    os.chown(tc / "bin" / "rustc", 0, UID)
    (tc / "bin" / "rustc").chmod(0o775)
    return tc, tc / "bin" / "rustc", f"{tc / 'bin' / 'rustc'} is writable by group {UID}"


def _symlink_from_root_dir_into_user_dir(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    user_tc = planted.fake_toolchain(
        base / "home" / "user" / "tc",
        _stable().version_text,
        marker,
        libcore_from=_libcore() if libcore else None,
    )
    planted.chown_tree(base / "home" / "user")
    (base / "opt" / "bin").mkdir(parents=True)
    (base / "opt" / "bin" / "rustc").symlink_to(user_tc / "bin" / "rustc")
    return base / "opt", base / "opt" / "bin" / "rustc", "is owned by uid 1000"


def _linked_toolchain_in_root_rustup_home(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    """``rustup toolchain link mine ~user/rust`` in root's rustup home."""
    user_tc = planted.fake_toolchain(
        base / "home" / "user" / "rust",
        _stable().version_text,
        marker,
        libcore_from=_libcore() if libcore else None,
    )
    planted.chown_tree(base / "home" / "user")
    home = base / "rustup"
    (home / "toolchains").mkdir(parents=True)
    (home / "toolchains" / "mine").symlink_to(user_tc)
    return home, home / "toolchains" / "mine" / "bin" / "rustc", "is owned by uid 1000"


def _access_control_list_on_bin_dir(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    tc = _plant(base, marker, libcore)
    (tc / "bin").chmod(0o775)  # the group bits are the list's mask
    try:
        os.setxattr(tc / "bin", "system.posix_acl_access", planted.posix_acl_granting_write(UID))
    except OSError as error:
        if error.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            pytest.skip("this file system has no POSIX access control lists")
        raise
    return tc, tc / "bin" / "rustc", f"{tc / 'bin'} is writable by uid {UID} (access control list)"


def _elf(base: Path, marker: Path, libcore: bool, **options: Any) -> Path:
    """A real ELF toolchain (tests/planted.elf_toolchain): its lib/librt.so.1 is a payload whose
    constructor writes to the marker, so a test sees whether it was ever loaded."""
    return planted.elf_toolchain(
        base / "tc", _stable().version_text, marker, libcore_from=_libcore() if libcore else None, **options
    )


def _library_the_compiler_needs_owned_by_user(
    base: Path, marker: Path, libcore: bool
) -> tuple[Path, Path, str]:
    """bin/rustc and librustc_driver are root's, but the librt.so.1 the driver needs is not."""
    tc = _elf(base, marker, libcore)
    os.chown(tc / "lib" / "librt.so.1", UID, UID)
    return tc, tc / "bin" / "rustc", f"{tc / 'lib' / 'librt.so.1'} is owned by uid {UID}"


def _library_linked_into_a_users_directory(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    tc = _elf(base, marker, libcore)
    user = base / "home" / "user"
    user.mkdir(parents=True)
    shutil.move(str(tc / "lib" / "librt.so.1"), str(user / "librt.so.1"))
    (tc / "lib" / "librt.so.1").symlink_to(user / "librt.so.1")
    planted.chown_tree(base / "home")
    return tc, tc / "bin" / "rustc", f"{base / 'home'} is owned by uid {UID}"


def _user_dir(base: Path) -> Path:
    user = base / "home" / "user" / "lib"
    user.mkdir(parents=True)
    planted.chown_tree(base / "home")
    return user


def _runpath_names_a_users_directory(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    """RUNPATH lists a user's (empty) directory before $ORIGIN/../lib: every library is found
    in lib/, but the user could plant one that is found first."""
    user = _user_dir(base)
    tc = _elf(base, marker, libcore, runpath=(str(user), "$ORIGIN/../lib"))
    return tc, tc / "bin" / "rustc", f"{base / 'home'} is owned by uid {UID}"


def _old_rpath_names_a_users_directory(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    user = _user_dir(base)
    tc = _elf(base, marker, libcore, runpath=(str(user), "$ORIGIN/../lib"), new_dtags=False)
    return tc, tc / "bin" / "rustc", f"{base / 'home'} is owned by uid {UID}"


def _runpath_into_a_directory_a_user_could_create(
    base: Path, marker: Path, libcore: bool
) -> tuple[Path, Path, str]:
    user = _user_dir(base)
    tc = _elf(base, marker, libcore, runpath=(str(user / "not-yet"), "$ORIGIN/../lib"))
    return tc, tc / "bin" / "rustc", f"{base / 'home'} is owned by uid {UID}"


def _sticky_dir(base: Path) -> Path:
    shared = base / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: root's, but anyone may add an entry
    return shared


def _runpath_names_a_sticky_directory(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    """Found by the red team: a RUNPATH of /tmp passed as "nobody can replace root's files"
    there, and a user's libfoo.so dropped there after the check is loaded by make's rustc."""
    shared = _sticky_dir(base)
    tc = _elf(base, marker, libcore, runpath=(str(shared), "$ORIGIN/../lib"))
    return tc, tc / "bin" / "rustc", f"{shared} is writable by every user (sticky: anyone may add entries"


def _runpath_into_a_sticky_directory(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    """The same with a directory that does not exist yet in /tmp: anyone may create it."""
    shared = _sticky_dir(base)
    tc = _elf(base, marker, libcore, runpath=(str(shared / "not-yet"), "$ORIGIN/../lib"))
    return tc, tc / "bin" / "rustc", f"{shared / 'not-yet'} does not exist, and {shared} is writable by every"


def _glibc_hwcaps_owned_by_user(base: Path, marker: Path, libcore: bool) -> tuple[Path, Path, str]:
    """Found by the second red team: lib/glibc-hwcaps (empty) was never judged, and a
    subdirectory its owner makes there later is a place the loader looks first."""
    tc = _elf(base, marker, libcore)
    hwcaps = tc / "lib" / "glibc-hwcaps"
    hwcaps.mkdir()
    os.chown(hwcaps, UID, UID)
    return tc, tc / "bin" / "rustc", f"{hwcaps} is owned by uid {UID}"


PLANTS: dict[str, Callable[[Path, Path, bool], tuple[Path, Path, str]]] = {
    "file owned by a user": _file_owned_by_user,
    "toolchain dir owned by a user": _toolchain_dir_owned_by_user,
    "group-writable bin dir": _bin_dir_group_writable,
    "world-writable bin dir": _bin_dir_world_writable,
    "group-writable file": _file_group_writable,
    "symlink from a root dir into a user dir": _symlink_from_root_dir_into_user_dir,
    "linked toolchain in root's rustup home": _linked_toolchain_in_root_rustup_home,
    "access control list on the bin dir": _access_control_list_on_bin_dir,
    "a library the compiler needs owned by a user": _library_the_compiler_needs_owned_by_user,
    "a library linked into a user's directory": _library_linked_into_a_users_directory,
    "RUNPATH names a user's directory": _runpath_names_a_users_directory,
    "old-style RPATH names a user's directory": _old_rpath_names_a_users_directory,
    "RUNPATH into a directory a user could create": _runpath_into_a_directory_a_user_could_create,
    "RUNPATH names a sticky directory": _runpath_names_a_sticky_directory,
    "RUNPATH into a sticky directory": _runpath_into_a_sticky_directory,
    "glibc-hwcaps of lib/ owned by a user": _glibc_hwcaps_owned_by_user,
}


@pytest.mark.parametrize("libcore", [True, False], ids=["files-name-kernel-rustc", "must-run-to-know"])
@pytest.mark.parametrize("where", list(PLANTS))
def test_planted_rustc_is_skipped_with_the_reason_and_never_run(
    where: str, libcore: bool, tree: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = base / "MARKER"
    search, rustc, reason = PLANTS[where](base, marker, libcore)
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(base)), "--search", str(search)
    )
    assert not marker.exists(), marker.read_text()
    assert (code, data["verdict"]) == (ExitCode.REFUSED, "refused"), messages_text(data)
    candidate = _candidate(data, rustc)
    assert candidate["usable"] is False
    assert str(candidate["skipped"]).startswith("not trusted: ")
    assert reason in str(candidate["untrusted"])
    messages = messages_text(data)
    assert reason in messages
    assert "Install a root-owned toolchain instead" in messages
    assert "trusted_dir = DIR" in messages
    # Its files were read (never run): the report says it would have matched. Not where an
    # access control list is on bin/: as root the program itself is then not read (the
    # disclosure rule), so nothing shows it is a rustc, and a sysroot beside it proves nothing.
    if libcore and where != "access control list on the bin dir":
        assert candidate["version"] == _stable().version_text
        assert "are not trusted to run as root" in data["headline"]


def test_positive_control_a_root_owned_plant_does_run(
    tree: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same fakes, owned by root: probed (-vV) and proved, so the marker shows up."""
    for libcore in (False, True):
        marker = base / f"MARKER-{libcore}"
        tc = planted.fake_toolchain(
            base / f"tc-{libcore}",
            _stable().version_text,
            marker,
            libcore_from=_libcore() if libcore else None,
        )
        code, data = check_json(
            capsys, "--kernel-dir", str(tree), "--config", str(write_config(base)), "--search", str(tc)
        )
        assert code == 0, messages_text(data)
        assert data["selected"]["rustc"] == str(tc / "bin" / "rustc")
        runs = marker.read_text()
        assert (" -vV" in runs) is (not libcore)  # read from its files when it can be
        assert "--emit=metadata" in runs  # the test compile ran it


def test_positive_control_a_root_owned_elf_toolchain_runs_and_loads_its_libraries(
    tree: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ELF plants above, all root's: run (-vV and the test compile) and the payload library
    is loaded, so the missing marker above means "never loaded"."""
    marker = base / "MARKER"
    tc = _elf(base, marker, libcore=False, runpath=(str(base / "root-lib"), "$ORIGIN/../lib"))
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(base)), "--search", str(tc)
    )
    assert code == 0, messages_text(data)
    assert data["selected"]["rustc"] == str(tc / "bin" / "rustc")
    runs = marker.read_text()
    assert "librt.so.1 was loaded" in runs and " -vV" in runs and "--emit=metadata" in runs


BINDGEN_PLANTS = ("file owned by a user", "group-writable bin dir", "symlink from a root dir into a user dir")


@pytest.mark.parametrize("where", BINDGEN_PLANTS)
def test_planted_bindgen_is_skipped_and_never_run(
    where: str, tree: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = base / "MARKER"
    bin_dir = base / "tools" / "bin"
    target = planted.fake_tool(bin_dir / "bindgen", "bindgen 0.72.1", marker)
    if where == "file owned by a user":
        os.chown(target, UID, UID)
        search, path = bin_dir, target
    elif where == "group-writable bin dir":
        os.chown(bin_dir, 0, UID)
        bin_dir.chmod(0o775)
        search, path = bin_dir, target
    else:
        user = base / "home" / "user"
        shutil.move(str(bin_dir), str(user))
        planted.chown_tree(user)
        link_dir = base / "usr" / "bin"
        link_dir.mkdir(parents=True)
        (link_dir / "bindgen").symlink_to(user / "bindgen")
        search, path = link_dir, link_dir / "bindgen"
    conf = write_config(base, "require_bindgen = yes\n")
    stable_dir = _stable().rustc.parent.parent
    code, data = check_json(
        capsys,
        "--kernel-dir",
        str(tree),
        "--config",
        str(conf),
        "--search",
        str(stable_dir),
        "--search",
        str(search),
    )
    assert not marker.exists()
    assert (code, data["verdict"]) == (ExitCode.REFUSED, "refused"), messages_text(data)
    assert "not trusted" in str(_candidate(data, path)["skipped"])
    messages = messages_text(data)
    assert "no suitable bindgen" in messages
    assert "Install a root-owned toolchain instead" in messages
    assert "install -o root -g root -m 755" in messages


def test_positive_control_root_owned_bindgen_runs(
    tree: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = base / "MARKER"
    planted.fake_tool(base / "tools" / "bindgen", "bindgen 0.72.1", marker)
    stable_dir = _stable().rustc.parent.parent
    code, data = check_json(
        capsys,
        "--kernel-dir",
        str(tree),
        "--config",
        str(write_config(base)),
        "--search",
        str(stable_dir),
        "--search",
        str(base / "tools"),
    )
    assert code == 0
    assert data["selected"]["bindgen"] == str(base / "tools" / "bindgen")
    assert "--version" in marker.read_text()


# -- the administrator's opt-in, and nothing else, widens trust -------------------------------


def _user_toolchain(base: Path, marker: Path) -> Path:
    tc = planted.fake_toolchain(
        base / "home" / "user" / "tc", _stable().version_text, marker, libcore_from=_libcore()
    )
    planted.chown_tree(base / "home" / "user")
    return tc


@pytest.mark.parametrize("mode", [0o755, 0o700])
def test_trusted_dir_in_the_system_config_is_honoured(
    mode: int, tree: Path, base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Also in a 0700 home, which no other user could follow into (the ninth red team's rule
    does not follow such a path others chose, unless the administrator trusts it)."""
    marker = base / "MARKER"
    tc = _user_toolchain(base, marker)
    (base / "home" / "user").chmod(mode)
    system_config(base, monkeypatch, f"trusted_dir = {base / 'home' / 'user'}\n")
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(base)), "--search", str(tc)
    )
    assert code == 0, messages_text(data)
    assert data["selected"]["rustc"] == str(tc / "bin" / "rustc")
    assert marker.exists()  # the administrator's choice: it is run (the test compile)


@pytest.mark.parametrize("how", ["a directory all may write", "a directory another user owns"])
def test_what_others_may_change_in_a_trusted_dir_is_not_trusted(
    how: str, tree: Path, base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the tenth red team: everything below a trusted_dir was run as root, also in a
    1777 directory there, where anyone may plant a toolchain. A trusted_dir trusts its owner
    (and root): what someone else may change there is judged as anywhere else."""
    marker = base / "MARKER"
    trusted = base / "admin"
    if how == "a directory all may write":
        tc = _user_toolchain(base, marker)  # the owner's home, with a 1777 directory on the way
        trusted = base / "home" / "user"
        (trusted / "tc").chmod(0o1777)
        expected = f"{trusted / 'tc'} is writable by every user, in the trusted_dir {trusted}"
    else:
        trusted.mkdir()
        tc = planted.fake_toolchain(trusted / "tc", _stable().version_text, marker, libcore_from=_libcore())
        planted.chown_tree(trusted / "tc")
        expected = (
            f"{trusted / 'tc'} is owned by uid {planted.USER_UID}, in the trusted_dir {trusted} of uid 0"
        )
    system_config(base, monkeypatch, f"trusted_dir = {trusted}\n")
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(base)), "--search", str(tc)
    )
    assert not marker.exists()
    assert code == ExitCode.REFUSED, messages_text(data)
    assert expected in _candidate(data, tc / "bin" / "rustc")["untrusted"]


@pytest.mark.parametrize("how", ["--config", "--search", "search= in --config", "both"])
def test_nothing_on_the_command_line_widens_trust(
    how: str, tree: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = base / "MARKER"
    tc = _user_toolchain(base, marker)
    argv = ["--kernel-dir", str(tree)]
    if how in ("--config", "both"):
        argv += ["--config", str(write_config(base, f"trusted_dir = {base / 'home' / 'user'}\n"))]
    elif how == "search= in --config":
        argv += ["--config", str(write_config(base, f"search = {tc}\n"))]
    else:
        argv += ["--config", str(write_config(base))]
    if how in ("--search", "both"):
        argv += ["--search", str(tc)]
    code, data = check_json(capsys, *argv)
    assert not marker.exists()
    if how in ("--config", "both"):
        assert (code, data["verdict"]) == (ExitCode.ERROR, "error")
        assert "trusted_dir is honoured only in" in str(data["headline"])
    else:
        assert (code, data["verdict"]) == (ExitCode.REFUSED, "refused")
        assert "not trusted" in str(_candidate(data, tc / "bin" / "rustc")["skipped"])


@pytest.mark.parametrize("owner", ["config owned by a user", "config in a user's directory"])
def test_a_config_file_a_user_controls_is_refused(
    owner: str, tree: Path, base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = base / "MARKER"
    tc = _user_toolchain(base, marker)
    directory = base / "home" / "user" if owner == "config in a user's directory" else base
    system = directory / "dkms-rustc.conf"
    system.write_text(f"trusted_dir = {base / 'home' / 'user'}\n")
    if owner == "config owned by a user":
        os.chown(system, UID, UID)
    monkeypatch.setattr(config, "SYSTEM_CONFIG", system)
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(base)), "--search", str(tc)
    )
    assert (code, data["verdict"]) == (ExitCode.ERROR, "error")
    assert "only root can change" in str(data["headline"])
    assert not marker.exists()


# -- a user's rustup home reached through the environment -------------------------------------


def _check_as_sudo_from(
    home: Path, tree: Path, base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    """``sudo dkms-rustc check`` run by mallory, whose home (given to her) is ``home``; root's
    own stable toolchain searched too."""
    planted.chown_tree(home)
    monkeypatch.setenv("SUDO_USER", "mallory")
    real_home_of = toolchains._home_of
    monkeypatch.setattr(
        toolchains, "_home_of", lambda user: home if user == "mallory" else real_home_of(user)
    )
    return check_json(
        capsys,
        "--kernel-dir",
        str(tree),
        "--config",
        str(write_config(base, search_defaults=True)),
        "--search",
        str(_stable().rustc.parent.parent),
    )


def test_sudo_users_rustup_home_is_listed_skipped_and_never_run(
    tree: Path, base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = base / "MARKER"
    home = base / "home" / "mallory"
    name = f"stable-{planted.HOST}"
    planted.fake_toolchain(home / ".rustup" / "toolchains" / name, _stable().version_text, marker)
    planted.fake_tool(home / ".cargo" / "bin" / "bindgen", "bindgen 0.72.1", marker)
    code, data = _check_as_sudo_from(home, tree, base, monkeypatch, capsys)
    assert not marker.exists()
    assert code == 0 and data["selected"]["rustc"] == str(_stable().rustc)
    for path in (
        home / ".rustup" / "toolchains" / name / "bin" / "rustc",
        home / ".cargo" / "bin" / "bindgen",
    ):
        assert f"owned by uid {UID}" in str(_candidate(data, path)["skipped"])


def test_rustup_home_from_the_environment_is_judged_like_any_other(
    tree: Path, base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = base / "MARKER"
    home = base / "home" / "user" / ".rustup"
    planted.fake_toolchain(
        home / "toolchains" / "evil", _stable().version_text, marker, libcore_from=_libcore()
    )
    planted.chown_tree(base / "home" / "user")
    monkeypatch.setenv("RUSTUP_HOME", str(home))
    monkeypatch.setenv("RUSTUP_TOOLCHAIN", "evil")
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(base, search_defaults=True))
    )
    assert not marker.exists()
    assert code == 0, messages_text(data)  # root's own stable toolchain
    assert data["selected"]["rustc"] != str(home / "toolchains" / "evil" / "bin" / "rustc")
    assert "owned by uid 1000" in str(
        _candidate(data, home / "toolchains" / "evil" / "bin" / "rustc")["skipped"]
    )


def test_pre_build_refusal_with_only_planted_compilers(tree: Path, base: Path) -> None:
    marker = base / "MARKER"
    tc = _user_toolchain(base, marker)
    build = base / "build"
    build.mkdir()
    code = main(
        [
            "pre-build",
            "--kernel-dir",
            str(tree),
            "--build-dir",
            str(build),
            "--config",
            str(write_config(base)),
            "--search",
            str(tc),
        ]
    )
    assert code == ExitCode.REFUSED
    assert not marker.exists()
    assert (build / ARGS_FILE).read_text().startswith("-f ")  # make stops with the message
    assert "RUSTC=" not in (build / ARGS_FILE).read_text()


def test_pre_build_writes_nothing_into_a_build_dir_a_user_can_change(
    tree: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the red team: a user who owns the build directory (or a directory above it)
    swaps it for a link after the check, so root writes the hand-off files into another
    module's directory, and the arguments file points make back into the user's makefile."""
    build = base / "build"
    build.mkdir()
    os.chown(build, UID, UID)
    code = main(["pre-build", "--kernel-dir", str(tree), "--build-dir", str(build),
                 "--config", str(write_config(base))])  # fmt: skip
    assert code == ExitCode.ERROR
    assert list(build.iterdir()) == []
    err = capsys.readouterr().err
    assert f"the build directory {build} is not root-only ({build} is owned by uid {UID}" in err


def test_pre_build_never_follows_a_users_link_as_the_build_dir(
    tree: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the third red team: a user's link given as --build-dir, to a root-only
    directory (another module's build directory), chose where root wrote (and removed) the
    hand-off files: the path is judged as given, links on the way included."""
    victim = base / "victim"
    victim.mkdir(mode=0o700)
    home = _user_dir(base)
    (home / "bd").symlink_to(victim)
    os.chown(home / "bd", UID, UID, follow_symlinks=False)
    code = main(["pre-build", "--kernel-dir", str(tree), "--build-dir", str(home / "bd"),
                 "--config", str(write_config(base))])  # fmt: skip
    assert code == ExitCode.ERROR
    assert list(victim.iterdir()) == []
    assert f"is not root-only ({base / 'home'} is owned by uid {UID}" in capsys.readouterr().err


def test_pre_build_takes_dotdot_after_a_link_as_the_kernel_does(
    tree: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the fourth red team: ``--build-dir <root's link to a user's dir>/../bd`` was
    judged as ``os.path.abspath`` spells it (``<base>/bd``: missing, in a root-only directory)
    and written where the kernel resolves it: the user's ``bd``, a link to a root-only victim."""
    victim = base / "victim"
    victim.mkdir(mode=0o700)
    home = _user_dir(base)
    (home / "bd").symlink_to(victim)
    os.chown(home / "bd", UID, UID, follow_symlinks=False)
    (base / "link").symlink_to(home / "sub")
    (home / "sub").mkdir()
    code = main(["pre-build", "--kernel-dir", str(tree), "--build-dir", f"{base}/link/../bd",
                 "--config", str(write_config(base))])  # fmt: skip
    assert code == ExitCode.ERROR
    assert list(victim.iterdir()) == []
    assert f"is not root-only ({base / 'home'} is owned by uid {UID}" in capsys.readouterr().err


def test_pre_build_hands_off_through_the_build_dir_it_resolved(tree: Path, base: Path) -> None:
    """The files are written, and named to make, by the one path that was judged."""
    real = base / "real-build"
    real.mkdir()
    (base / "build").symlink_to(real)
    search = str(_user_toolchain(base, base / "MARKER"))  # only a user's: refused
    code = main(["pre-build", "--kernel-dir", str(tree), "--build-dir", str(base / "build"),
                 "--config", str(write_config(base)), "--search", search])  # fmt: skip
    assert code == ExitCode.REFUSED
    assert (real / ARGS_FILE).read_text() == f"-f {real / 'dkms-rustc.refused.mk'}\n"


# -- the kernel tree's proc macros, which rustc loads (runs) during the test compile -----------

_CONSTRUCTOR = """
#[used]
#[link_section = ".init_array"]
static DKMS_RUSTC_TEST_CONSTRUCTOR: extern "C" fn() = dkms_rustc_test_constructor;
extern "C" fn dkms_rustc_test_constructor() {
    use std::io::Write;
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(MARKER_PATH) {
        let _ = file.write_all(b"libmacros.so was loaded\\n");
    }
}
"""


def _tree_with_loud_proc_macro(base: Path, marker: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    source = (
        kerneltree._MACROS_RS + f"\nconst MARKER_PATH: &str = {json.dumps(str(marker))};\n" + _CONSTRUCTOR
    )
    monkeypatch.setattr(kerneltree, "_MACROS_RS", source)
    tree = kerneltree.make_kernel_tree(base / "kernel", _stable())
    marker.unlink(missing_ok=True)  # building the tree loads it too (compiling libkernel)
    return tree


@pytest.mark.parametrize("owned", ["root", "user-owned libmacros.so", "user-owned rust dir"])
def test_kernel_proc_macros_are_loaded_only_from_a_trusted_tree(
    owned: str, base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = base / "MACRO-MARKER"
    tree = _tree_with_loud_proc_macro(base, marker, monkeypatch)
    if owned == "user-owned libmacros.so":
        os.chown(tree / "rust" / "libmacros.so", UID, UID)
    elif owned == "user-owned rust dir":
        os.chown(tree / "rust", UID, UID)
    before = runner.processes_started
    code, data = check_json(
        capsys,
        "--kernel-dir",
        str(tree),
        "--config",
        str(write_config(base)),
        "--search",
        str(_stable().rustc.parent.parent),
    )
    assert code == 0, messages_text(data)  # the version matches: selected either way
    if owned == "root":
        assert marker.exists()  # positive control: the test compile really loads it
        assert data["proofs"][str(_stable().rustc)]["ok"] is True
    else:
        assert not marker.exists()
        assert runner.processes_started == before  # no test compile was started at all
        warnings = "\n".join(data["warnings"])
        assert "test compile skipped: the kernel tree is not trusted" in warnings
        assert f"owned by uid {UID}" in warnings


# -- auto_install's rustup (opt-in, system file only): the same rules -------------------------


@pytest.mark.parametrize(
    "where",
    [
        "rustup owned by a user",
        "rustup's directory group-writable",
        "a link in a group-writable dir",
        "root's",
    ],
)
def test_auto_install_runs_only_a_rustup_only_root_can_change(
    where: str,
    kernel_trees: dict[str, Path],
    base: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No installed compiler matches, so auto_install runs rustup: a planted one never runs."""
    _stable()
    marker = base / "MARKER"
    rustup = base / "tools" / "bin" / "rustup"
    rustup.parent.mkdir(parents=True)
    rustup.write_text(f'#!/bin/sh\necho "ran: $0 $*" >> {marker}\nexit 1\n')
    rustup.chmod(0o755)
    if where == "rustup owned by a user":
        os.chown(rustup, UID, UID)
    elif where == "rustup's directory group-writable":
        os.chown(rustup.parent, 0, UID)
        rustup.parent.chmod(0o775)
    elif where == "a link in a group-writable dir":  # rustup runs by its name: the link is run
        links = base / "links"
        links.mkdir()
        (links / "rustup").symlink_to(rustup)
        os.chown(links, 0, UID)
        links.chmod(0o775)
        rustup = links / "rustup"
    system = base / "etc" / "dkms-rustc.conf"
    system.parent.mkdir()
    system.write_text(
        f"cache_dir = {base / 'cache'}\nsearch_defaults = no\nauto_install = rustup\n"
        f"rustup = {rustup}\nrustup_home = {base / 'rustup-home'}\n"
    )
    monkeypatch.setattr(config, "SYSTEM_CONFIG", system)
    # auto_install runs only where a build is about to happen: the PRE_BUILD hook.
    build = base / "build"
    build.mkdir()
    code = main(["pre-build", "--kernel-dir", str(kernel_trees["stable"]), "--build-dir", str(build)])
    assert code == ExitCode.REFUSED
    warnings = capsys.readouterr().err
    if where == "root's":  # positive control: it is run (and fails, as this stand-in does)
        assert "toolchain install" in marker.read_text()
        assert "auto_install: `" in warnings
    else:
        assert not marker.exists()
        assert f"auto_install: not attempted: {rustup} is not trusted" in warnings
        assert f"uid {UID}" in warnings or f"group {UID}" in warnings


def test_a_users_link_to_a_root_owned_program_is_not_followed(
    tree: Path, base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The attack: in a home sudo points at, links to any program root owns (here one that
    writes the marker). Judging the program alone would let the user choose what root runs
    with -vV or --version; the way there (the user's directory, the user's link) is judged too."""
    marker = base / "MARKER"
    program = planted.fake_tool(base / "root-owned" / "anyprog", _stable().version_text, marker)
    home = base / "home" / "mallory"
    name = f"stable-{planted.HOST}"
    links = (home / ".rustup" / "toolchains" / name / "bin" / "rustc", home / ".cargo" / "bin" / "bindgen")
    for link in links:
        link.parent.mkdir(parents=True)
        link.symlink_to(program)
    code, data = _check_as_sudo_from(home, tree, base, monkeypatch, capsys)
    assert not marker.exists()
    assert code == 0 and data["selected"]["rustc"] == str(_stable().rustc)
    for link in links:
        skipped = str(_candidate(data, link)["skipped"])
        assert f"owned by uid {UID}" in skipped and f"on the way to {program}" in skipped, skipped


def test_a_root_owned_link_to_a_root_owned_program_is_followed(
    tree: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Control for the attack above: the same link, made by root in root's directory, runs."""
    marker = base / "MARKER"
    program = planted.fake_tool(base / "root-owned" / "anyprog", _stable().version_text, marker)
    link = base / "rootlinks" / "bin" / "rustc"
    link.parent.mkdir(parents=True)
    link.symlink_to(program)
    check_json(
        capsys,
        "--kernel-dir",
        str(tree),
        "--config",
        str(write_config(base)),
        "--search",
        str(link.parent.parent),
    )
    assert marker.exists()


def test_a_compiler_also_reached_through_a_users_link_stays_usable(
    tree: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user's link to the real compiler, found first, must not make root refuse that
    compiler: it is used because root's own path reaches it too."""
    link = base / "home" / "mallory" / "bin" / "rustc"
    link.parent.mkdir(parents=True)
    link.symlink_to(_stable().rustc)
    planted.chown_tree(base / "home" / "mallory")
    code, data = check_json(
        capsys,
        "--kernel-dir",
        str(tree),
        "--config",
        str(write_config(base)),
        "--search",
        str(link.parent.parent),
        "--search",
        str(_stable().rustc.parent.parent),
    )
    assert code == 0, messages_text(data)
    assert data["selected"]["rustc"] == str(_stable().rustc)
