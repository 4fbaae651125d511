# SPDX-License-Identifier: GPL-2.0-or-later
"""Nothing but the kernel's own text reaches the output or the hand-off files.

The report's case: a user-owned tree whose include/config/kernel.release is a link to a
root-only one-line file (a 0600 key in a 0700 directory). As root, ``pre-build --kernel-dir``
printed it and wrote it into the 0644 dkms-rustc.refused.mk; ``check`` and ``status`` printed
it too. The key here has the shape of a kernel release, so only the disclosure rule (a
private file is read only where nobody but root can have put it) keeps it out.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import planted
from conftest import system_config, write_config
from dkms_rustc.cli import main
from dkms_rustc.exitcodes import ExitCode

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to read what only root can"),
]
SECRET = "AKIAsecretKEY42"  # letters and digits: it passes for a kernel release


@pytest.fixture
def base(public_base: Path) -> Path:
    """conftest.public_base: what a user plants there is public."""
    return public_base


def _secret(base: Path) -> Path:
    private = base / "root-only"
    private.mkdir(mode=0o700)
    key = private / "key"
    key.write_text(SECRET + "\n")
    key.chmod(0o600)
    return key


def _tree(base: Path, link: str, *, user: bool) -> Path:
    tree = planted.synthetic_kernel_tree(base / "tree")
    target = tree / link
    target.unlink(missing_ok=True)
    target.symlink_to(_secret(base))
    if user:
        planted.chown_tree(tree)
    return tree


def _everything(base: Path, captured: str) -> str:
    texts = [captured]
    for path in base.rglob("dkms-rustc.*"):
        texts.append(path.read_text())
    return "\n".join(texts)


@pytest.mark.parametrize("link", ["include/config/kernel.release", ".kernelvariables"])
@pytest.mark.parametrize("command", ["pre-build", "check", "status"])
def test_a_link_to_a_root_only_file_never_reaches_the_output(
    command: str, link: str, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = _tree(base, link, user=True)
    conf = write_config(base)
    build = base / "build"
    build.mkdir()
    argv = {  # no compiler at all: a refusal, which names the kernel release
        "pre-build": [
            "pre-build",
            "--kernel-dir",
            str(tree),
            "--build-dir",
            str(build),
            "--config",
            str(conf),
        ],
        "check": ["check", "--json", "--kernel-dir", str(tree), "--config", str(conf)],
        "status": [
            "status",
            "-v",
            "--kernel-dir",
            str(tree),
            "--config",
            str(conf),
            "--dkms-tree",
            str(base),
        ],
    }[command]
    code = main(argv)
    out = capsys.readouterr()
    everything = _everything(base, out.out + out.err)
    assert code == ExitCode.REFUSED, everything
    assert SECRET not in everything
    if command == "pre-build":
        assert (build / "dkms-rustc.refused.mk").is_file()
    assert "is readable only by root" in everything  # said, as why the file was not read


def test_positive_control_root_can_read_its_own_private_files(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same link in a tree only root can change: root put it there, so it is read (and
    here shown, as the kernel release)."""
    tree = _tree(base, "include/config/kernel.release", user=False)
    conf = write_config(base)
    main(["check", "--kernel-dir", str(tree), "--config", str(conf)])
    assert SECRET in capsys.readouterr().out


@pytest.mark.parametrize(
    "release",
    ["7.2 $(shell touch /tmp/x)", "7.2\x1b]0;owned\x07", "../../etc", "x" * 300, "-f /etc/passwd"],
)
def test_a_release_read_from_the_tree_is_validated_before_it_is_written(
    release: str, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = planted.synthetic_kernel_tree(base / "tree")
    (tree / "include" / "config" / "kernel.release").write_text(release + "\n")
    conf = write_config(base)
    build = base / "build"
    build.mkdir()
    code = main(["pre-build", "--kernel-dir", str(tree), "--build-dir", str(build), "--config", str(conf)])
    assert code == ExitCode.REFUSED
    written = (build / "dkms-rustc.refused.mk").read_text() + capsys.readouterr().err
    assert release.strip() not in written
    assert "dkms-rustc check -k KVER" in written


_EXCHANGER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b, stop = (arg.encode() for arg in sys.argv[1:])
while not os.path.exists(stop):
    libc.renameat2(-100, a, -100, b, 2)  # AT_FDCWD, RENAME_EXCHANGE
"""


def test_a_link_swapped_in_a_loop_never_leaks(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As uid 1000: kernel.release swapped (renameat2 RENAME_EXCHANGE) between a public
    release and a link to the key while root reads it, again and again."""
    import subprocess

    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("/usr/bin/python3 is needed to run code as uid 1000")
    tree = _tree(base, "include/config/kernel.release", user=False)
    config_dir = tree / "include" / "config"
    (config_dir / "decoy").write_text("7.2.0-decoy\n")
    planted.chown_tree(config_dir)
    conf = write_config(base)
    stop = base / "STOP"
    names = [str(config_dir / "kernel.release"), str(config_dir / "decoy"), str(stop)]
    racer = subprocess.Popen(
        ["/usr/bin/python3", "-c", _EXCHANGER, *names], user=planted.USER_UID, group=planted.USER_UID, cwd="/"
    )
    seen = ""
    try:
        # At least 40 runs; then on until the public file was read once (the control below),
        # which on a slow or busy machine can take longer: each run reads it only when the
        # swap holds still between the open and the check that the name still leads there.
        for run in range(400):
            main(["check", "--kernel-dir", str(tree), "--config", str(conf)])
            out = capsys.readouterr()
            seen += out.out + out.err
            if run >= 39 and "7.2.0-decoy" in seen:
                break
    finally:
        stop.touch()
        racer.wait(timeout=10)
    assert SECRET not in seen
    assert "7.2.0-decoy" in seen  # the race really ran: sometimes the public file was read


def test_a_config_file_named_through_a_users_link_to_a_private_file_is_not_quoted(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Configuration errors quote the offending line: a --config link to a private file (this
    key) must not make them quote it."""
    user = base / "home" / "user"
    user.mkdir(parents=True)
    (user / "dkms-rustc.conf").symlink_to(_secret(base))
    planted.chown_tree(base / "home")
    code = main(["check", "--kernel-dir", str(base), "--config", str(user / "dkms-rustc.conf")])
    out = capsys.readouterr()
    assert code == ExitCode.ERROR
    assert SECRET not in out.out + out.err
    assert "is readable only by root" in out.out + out.err


def test_a_private_root_file_named_as_the_config_file_is_not_quoted(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the red team: ``--config /etc/shadow`` printed shadow's first line in the
    error (root's file where only root can have put it passes the disclosure rule; whoever
    may run dkms-rustc through sudo chooses the name). A file only root may read is judged,
    but its lines are not quoted: a 0600 file, and (found by the second red team) a 0644 one
    in a 0700 directory, like /root/.bashrc. A public one's still are (the positive control)."""
    key = _secret(base)
    key.write_text(f"{SECRET}:*:20228:0:99999:7:::\n")
    for mode in (0o600, 0o644):
        key.chmod(mode)
        code = main(["check", "--kernel-dir", str(base), "--config", str(key)])
        out = capsys.readouterr()
        assert code == ExitCode.ERROR
        assert SECRET not in out.out + out.err
        assert f"{key}:1: expected key = value (the line is not shown: {key} is readable only by" in out.out
    public = base / "public.conf"
    key.rename(public)
    main(["check", "--kernel-dir", str(base), "--config", str(public)])
    assert f"expected key = value, got '{SECRET}:" in capsys.readouterr().out


ANYONE = 0xFFFFFFFF  # the id field of entries that name no user or group


@pytest.mark.parametrize("how", ["its group", "a directory's group", "an access control list"])
def test_a_config_file_some_users_cannot_read_is_not_quoted(
    how: str, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the third red team: the read bit for others is not read permission for
    everyone: the owning group's members get the group's bits, and an access control list
    can leave a user out. Such a file's lines are not quoted either."""
    directory = base / "conf"
    directory.mkdir()
    conf = directory / "secret.conf"
    conf.write_text(f"{SECRET}\n")
    conf.chmod(0o644)
    if how == "its group":
        os.chown(conf, 0, planted.USER_UID)
        conf.chmod(0o604)
    elif how == "a directory's group":
        os.chown(directory, 0, planted.USER_UID)
        directory.chmod(0o705)
    else:
        # u::rw-,u:<uid>:---,g::r--,m::r--,o::r--: every user but that one may read it.
        entries = [(0x01, 6, ANYONE), (0x02, 0, planted.USER_UID), (0x04, 4, ANYONE), (0x10, 4, ANYONE)]
        entries.append((0x20, 4, ANYONE))
        acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)
        os.setxattr(conf, "system.posix_acl_access", acl)
    code = main(["check", "--kernel-dir", str(base), "--config", str(conf)])
    out = capsys.readouterr()
    assert code == ExitCode.ERROR
    assert SECRET not in out.out + out.err
    assert f"{conf}:1: expected key = value (the line is not shown" in out.out


def test_root_groups_bits_do_not_make_a_file_private(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The positive control: a directory of root's group that denies its group (a fresh
    root's / after chmod o+rx is 0705 root:root) hides nothing from anyone but root."""
    directory = base / "conf"
    directory.mkdir()
    directory.chmod(0o705)
    conf = directory / "public.conf"
    conf.write_text(f"{SECRET}\n")
    conf.chmod(0o604)
    main(["check", "--kernel-dir", str(base), "--config", str(conf)])
    assert f"expected key = value, got '{SECRET}'" in capsys.readouterr().out


def test_an_access_control_list_that_leaves_nobody_out_keeps_a_file_public(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The positive control of the list above: one that leaves nobody out (a named user may
    read it, as every user may) hides nothing, so the line is quoted."""
    conf = base / "public.conf"
    conf.write_text(f"{SECRET}\n")
    conf.chmod(0o644)
    # u::rw-,u:<uid>:r--,g::r--,m::r--,o::r--
    entries = [(0x01, 6, ANYONE), (0x02, 4, planted.USER_UID), (0x04, 4, ANYONE), (0x10, 4, ANYONE)]
    entries.append((0x20, 4, ANYONE))
    os.setxattr(
        conf,
        "system.posix_acl_access",
        struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries),
    )
    main(["check", "--kernel-dir", str(base), "--config", str(conf)])
    assert f"expected key = value, got '{SECRET}'" in capsys.readouterr().out


def _users_side(base: Path) -> Path:
    """A root's link (``<base>/link``) to a directory a user owns: ``<base>/link/..`` is the
    user's directory to the kernel, and ``<base>`` to anyone who removes ``..`` as text."""
    home = base / "home"
    (home / "sub").mkdir(parents=True)
    planted.chown_tree(home)
    (base / "link").symlink_to(home / "sub")
    return home


@pytest.mark.parametrize("command", ["check", "status"])
def test_dotdot_after_a_link_is_judged_where_the_kernel_takes_it(
    command: str, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the fourth red team: ``--kernel-dir <root's link to a user's dir>/../tree``. The
    file read was judged as ``os.path.abspath`` spells it (``<base>/tree/...``, a root-only tree
    beside the link), but opened where the kernel resolves it: the user's tree, whose
    kernel.release is a link to a root-only key."""
    planted.synthetic_kernel_tree(base / "tree")  # root's: what the text-only path names
    home = _users_side(base)
    users = planted.synthetic_kernel_tree(home / "tree")
    release = users / "include/config/kernel.release"
    release.unlink()
    release.symlink_to(_secret(base))
    planted.chown_tree(users)
    conf = write_config(base)
    given = f"{base}/link/../tree"
    argv = ["check", "--kernel-dir", given] if command == "check" else ["status", "-v", "--kernel-dir", given]
    main([*argv, "--config", str(conf)] + (["--dkms-tree", str(base)] if command == "status" else []))
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert "is readable only by root" in out.out + out.err


def _tree_naming(base: Path, other: Path, *, user: bool) -> Path:
    """A tree without its own kernel.release whose Makefile names ``other`` as its other half
    (as Debian's split headers name their -common tree)."""
    tree = planted.synthetic_kernel_tree(base / "tree")
    (tree / "include/config/kernel.release").unlink()
    (tree / "Makefile").write_text(f"include {other}/Makefile\n")
    if user:
        planted.chown_tree(tree)
    return tree


def _root_only_half(base: Path) -> Path:
    other = base / "root-only-tree"
    (other / "include/config").mkdir(parents=True)
    other.chmod(0o700)
    (other / "Makefile").write_text("# root's own\n")
    secret = other / "include/config/kernel.release"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    return other


@pytest.mark.parametrize("command", ["pre-build", "check"])
def test_a_users_makefile_cannot_choose_a_root_only_tree_to_read(
    command: str, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the fourth red team: a user's tree whose Makefile says ``include
    /root-only/Makefile`` made that root-only directory one of the tree's roots, and its
    private files passed as root's (root put them there) although the user chose them."""
    tree = _tree_naming(base, _root_only_half(base), user=True)
    conf = write_config(base)
    build = base / "build"
    build.mkdir()
    argv = ["check", "--kernel-dir", str(tree)]
    if command == "pre-build":
        argv = ["pre-build", "--kernel-dir", str(tree), "--build-dir", str(build)]
    main([*argv, "--config", str(conf)])
    out = capsys.readouterr()
    everything = _everything(base, out.out + out.err)
    assert SECRET not in everything
    assert f"and the kernel build tree {tree} is not root-only ({tree} is owned by uid" in everything


def test_positive_control_roots_makefile_may_name_its_own_private_tree(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same Makefile in a tree only root can change: root chose the other half."""
    tree = _tree_naming(base, _root_only_half(base), user=False)
    conf = write_config(base)
    main(["check", "--kernel-dir", str(tree), "--config", str(conf)])
    assert SECRET in capsys.readouterr().out


def test_a_users_makefile_in_roots_tree_cannot_choose_either(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tree is root's, its Makefile a user's file (or a link to one): the user chose."""
    tree = _tree_naming(base, _root_only_half(base), user=False)
    os.chown(tree / "Makefile", planted.USER_UID, planted.USER_UID)
    conf = write_config(base)
    main(["check", "--kernel-dir", str(tree), "--config", str(conf)])
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert f"{tree / 'Makefile'}, which names the other trees read with it, is not root-only" in out.out


def test_a_relative_kernel_dir_through_a_users_link_cannot_choose_either(
    base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the fifth red team: ``cd /lib/modules/X && check --kernel-dir build``, with
    ``build`` a link into a user's home whose Makefile says ``include ../../root-only/Makefile``:
    the other tree was spelled relative, so the rule for the trees a user's Makefile names
    never matched it."""
    other = _root_only_half(base)
    home = _users_side(base)
    tree = planted.synthetic_kernel_tree(home / "tree")
    (tree / "include/config/kernel.release").unlink()
    # As make would not, but as the tree's roots are found: relative to the tree as spelled.
    (tree / "Makefile").write_text(f"include ../{os.path.relpath(other, base / 'modules')}/Makefile\n")
    planted.chown_tree(tree)
    (base / "modules").mkdir()
    (base / "modules" / "build").symlink_to(tree)
    conf = write_config(base)
    monkeypatch.chdir(base / "modules")
    main(["check", "-v", "--kernel-dir", "build", "--config", str(conf)])
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert "and the kernel build tree build is not root-only" in out.out


PRIVATE_CRATE = "libSECRETNAME.rmeta"


def _private_rust_dir(base: Path) -> Path:
    """A root-only directory holding crate files whose names and contents are secrets."""
    private = base / "private-rust"
    private.mkdir(mode=0o700)
    crate = private / PRIVATE_CRATE
    crate.write_bytes(planted.rmeta_header(10, f"rustc 9.9.9 ({SECRET})") + bytes(16))
    crate.chmod(0o600)
    return private


def test_a_users_rust_link_to_a_private_directory_reveals_nothing(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the fifth red team: rust/ in a user's tree linked to a root-only directory was
    listed (its file names printed) and its crates read by their resolved paths."""
    tree = planted.synthetic_kernel_tree(base / "tree")
    shutil.rmtree(tree / "rust")
    (tree / "rust").symlink_to(_private_rust_dir(base))
    planted.chown_tree(tree)
    conf = write_config(base)
    main(["check", "-v", "--kernel-dir", str(tree), "--config", str(conf)])
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err and "SECRETNAME" not in out.out + out.err
    private = base / "private-rust"
    said = f"{private}: cannot be listed ({private} may be listed only by root, and the kernel build tree"
    assert f"{said} {tree} is not root-only" in out.out


def test_roots_link_to_a_private_rust_dir_is_read_in_roots_tree(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Positive control: the same link in root's own tree (root chose it) is followed."""
    tree = planted.synthetic_kernel_tree(base / "tree")
    shutil.rmtree(tree / "rust")
    (tree / "rust").symlink_to(_private_rust_dir(base))
    conf = write_config(base)
    main(["check", "-v", "--kernel-dir", str(tree), "--config", str(conf)])
    assert SECRET in capsys.readouterr().out


def test_a_remembered_proc_macro_is_no_way_around_the_rule(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the fifth red team: root's check of its own tree remembered what its private
    libmacros.so says, by the file's identity; a user's tree linking to that file then got the
    remembered answer, read without the disclosure rule."""
    roots = planted.synthetic_kernel_tree(base / "roots", f"rustc 1.95.0 ({SECRET} 2026-04-14)")
    macros = roots / "rust" / "libmacros.so"
    macros.chmod(0o600)
    (roots / "rust").chmod(0o700)
    conf = write_config(base)
    main(["check", "--kernel-dir", str(roots), "--config", str(conf)])
    assert SECRET in capsys.readouterr().out  # root's own: read, and remembered
    users = planted.synthetic_kernel_tree(base / "users")
    for path in (users / "rust").iterdir():
        path.unlink()
    (users / "rust" / "libmacros.so").symlink_to(macros)
    planted.chown_tree(users)
    main(["check", "-v", "--kernel-dir", str(users), "--config", str(conf)])
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert "libmacros.so: is readable only by root" in out.out


# -- names and contents reached outside the kernel tree (found by the sixth red team) ----------


def _private_dir(base: Path, name: str = "private") -> Path:
    private = base / name
    private.mkdir(mode=0o700)
    return private


@pytest.mark.parametrize("private_dir", [True, False], ids=["0700 directory", "public directory"])
def test_a_users_link_to_a_private_toolchain_reveals_neither_its_files_nor_its_names(
    private_dir: bool, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user's bin/rustc linked to a real rustc whose private libcore says a secret. In a
    directory every user may search, the candidate is untrusted and what its files say is
    read only from public files (it used to be read by the resolved path, which walked as
    root's). In a 0700 directory the link is not even followed (the ninth red team): no user
    could follow it there."""
    import kerneltree

    stable = kerneltree.need("stable")
    toolchain = (_private_dir(base) if private_dir else base) / "SECRETNAME"
    (toolchain / "bin").mkdir(parents=True)
    shutil.copy2(stable.rustc, toolchain / "bin" / "rustc")
    libdir = toolchain / "lib" / "rustlib" / stable.host / "lib"
    libdir.mkdir(parents=True)
    libcore = libdir / "libcore-0123456789abcdef.rmeta"
    libcore.write_bytes(planted.rmeta_header(10, f"rustc 1.95.0 ({SECRET} 2026-04-14)") + bytes(16))
    libcore.chmod(0o600)
    home = _users_side(base)
    (home / "tc" / "bin").mkdir(parents=True)
    (home / "tc" / "bin" / "rustc").symlink_to(toolchain / "bin" / "rustc")
    planted.chown_tree(home)
    tree = planted.synthetic_kernel_tree(base / "tree")
    conf = write_config(base, f"search = {home / 'tc'}\n")
    main(["check", "-v", "--kernel-dir", str(tree), "--config", str(conf)])
    out = capsys.readouterr()
    if private_dir:
        assert f"not followed: {home / 'tc' / 'bin' / 'rustc'}: someone else's link" in out.out
        assert "SECRETNAME" not in out.out + out.err
    else:
        assert f"candidate {home / 'tc' / 'bin' / 'rustc'} [--search]: skipped: not trusted" in out.out
    assert SECRET not in out.out + out.err


def test_a_users_link_to_a_private_rustup_home_is_not_listed(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``~/.rustup/toolchains`` linked to a root-only directory: its entries are not named."""
    (_private_dir(base) / "SECRETNAME" / "bin").mkdir(parents=True)
    home = _users_side(base)
    (home / "toolchains").symlink_to(base / "private")
    planted.chown_tree(home)
    tree = planted.synthetic_kernel_tree(base / "tree")
    conf = write_config(base, f"search = {home}\n")
    main(["check", "-v", "--kernel-dir", str(tree), "--config", str(conf)])
    out = capsys.readouterr()
    assert "SECRETNAME" not in out.out + out.err
    assert (
        f"not listed: {home / 'toolchains'} may be listed only by root, and {home} is owned by uid" in out.out
    )


@pytest.mark.parametrize("private", [True, False], ids=["private", "public (positive control)"])
def test_status_lists_no_private_directory_a_user_linked_into_the_dkms_tree(
    private: bool, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A module's source (root's link, as ``dkms add`` of a developer's checkout makes) leads
    through a user's link to a root-only directory: its file names are not shown (nor is the
    module, which only they would show to be a Rust one); the same directory public: shown."""
    (_private_dir(base) / "src").mkdir()
    (base / "private" / "src" / "SECRETNAME.rs").write_text("// private\n")
    if not private:
        (base / "private").chmod(0o755)
    home = _users_side(base)
    (home / "foo").symlink_to(base / "private")
    planted.chown_tree(home)
    version = base / "dkms" / "foo" / "1.0"
    version.mkdir(parents=True)
    (version / "source").symlink_to(home / "foo")
    tree = planted.synthetic_kernel_tree(base / "tree")
    conf = write_config(base)
    argv = ["status", "--json", "--kernel-dir", str(tree), "--config", str(conf)]
    main([*argv, "--dkms-tree", str(base / "dkms")])
    out = capsys.readouterr()
    assert ("SECRETNAME" in out.out) is not private
    assert "SECRETNAME" not in out.err


def test_status_names_no_build_in_a_private_directory_a_user_linked(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user's link as the DKMS build directory of a kernel: its private entries (an
    architecture's name here) are not listed."""
    home = _users_side(base)
    (home / "builds").symlink_to(_private_dir(base))
    (base / "private" / "SECRETARCH").mkdir()
    planted.chown_tree(home)
    version = base / "dkms" / "foo" / "1.0"
    (version / "source" / "src").mkdir(parents=True)
    (version / "source" / "src" / "lib.rs").write_text("// a Rust module\n")
    (version / "7.2.0-synthetic").symlink_to(home / "builds")
    tree = planted.synthetic_kernel_tree(base / "tree")
    conf = write_config(base)
    argv = ["status", "--json", "--kernel-dir", str(tree), "--config", str(conf)]
    main([*argv, "--dkms-tree", str(base / "dkms")])
    out = capsys.readouterr()
    assert '"foo"' in out.out
    assert "SECRETARCH" not in out.out + out.err


def test_status_lists_no_private_modules_dir_a_user_linked(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (_private_dir(base) / "SECRETRELEASE" / "build").mkdir(parents=True)
    home = _users_side(base)
    (home / "mods").symlink_to(base / "private")
    planted.chown_tree(home)
    conf = write_config(base)
    main(["status", "--modules-dir", str(home / "mods"), "--config", str(conf),
          "--dkms-tree", str(base / "none")])  # fmt: skip
    out = capsys.readouterr()
    assert "SECRETRELEASE" not in out.out + out.err


def test_missing_crates_say_nothing_about_a_private_rust_dir(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Which crates a private rust/ lacks would say which it holds."""
    tree = planted.synthetic_kernel_tree(base / "tree")
    shutil.rmtree(tree / "rust")
    (tree / "rust").symlink_to(_private_rust_dir(base))
    (tree / "scripts" / "Makefile.build").write_text("rust_flags = --extern SECRETNAME --extern absent\n")
    planted.chown_tree(tree)
    conf = write_config(base)
    main(["check", "--json", "--kernel-dir", str(tree), "--config", str(conf)])
    data = json.loads(capsys.readouterr().out)
    assert data["kernel"]["missing_crates"] == []


def test_where_a_users_rust_link_leads_is_not_named_when_nobody_else_could_find_it(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the seventh red team: root resolves a user's rust link (to /proc/<pid>/cwd of
    a root process, or into a private directory) and printed the resolved path; it is named
    as it was reached instead."""
    hidden = _private_dir(base, "hidden")
    (hidden / "SECRETDIRNAME").mkdir(mode=0o700)
    tree = planted.synthetic_kernel_tree(base / "tree")
    shutil.rmtree(tree / "rust")
    (tree / "rust").symlink_to(hidden / "SECRETDIRNAME")
    planted.chown_tree(tree)
    build = base / "build"
    build.mkdir()
    conf = write_config(base)
    main(["pre-build", "--kernel-dir", str(tree), "--build-dir", str(build), "--config", str(conf)])
    out = capsys.readouterr()
    everything = _everything(base, out.out + out.err)
    assert "SECRETDIRNAME" not in everything
    assert f"({tree / 'rust'} has no readable .rmeta files)" in everything


def test_a_file_hundreds_of_directories_deep_is_judged_without_a_crash(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the seventh red team: judging whether every user may search the directories
    above a file recursed once per directory: a user's tree 1100 deep raised RecursionError.
    Here 400 deep, with the interpreter's recursion limit lowered to 300 for the run (what
    the test's own tools, os.walk and shutil.rmtree, could not go through at 1100)."""
    home = _users_side(base)
    deep = home
    for _ in range(400):
        deep = deep / "a"
        deep.mkdir()
    (deep / "kernel.release").write_text("7.2.0-deep\n")
    tree = planted.synthetic_kernel_tree(base / "tree")
    release = tree / "include" / "config" / "kernel.release"
    release.unlink()
    release.symlink_to(deep / "kernel.release")
    planted.chown_tree(home)
    planted.chown_tree(tree)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(300)
    try:
        conf = write_config(base)
        code = main(["check", "--kernel-dir", str(tree), "--config", str(conf)])
    finally:
        sys.setrecursionlimit(limit)
    out = capsys.readouterr()
    assert code == ExitCode.REFUSED, out.out + out.err
    assert "internal error" not in out.out + out.err
    assert "7.2.0-deep" in out.out  # a public file: read


def test_a_resolved_path_in_a_directory_others_may_search_but_not_list_is_not_named(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the eighth red team: in a 0711 directory every user may open a name they know,
    but cannot find it; root resolved a user's rust link into one and named the directory."""
    hidden = base / "x711"
    hidden.mkdir(mode=0o711)
    hidden.chmod(0o711)
    (hidden / "SECRETDIRNAME").mkdir(mode=0o700)
    tree = planted.synthetic_kernel_tree(base / "tree")
    shutil.rmtree(tree / "rust")
    (tree / "rust").symlink_to(hidden / "SECRETDIRNAME")
    planted.chown_tree(tree)
    build = base / "build"
    build.mkdir()
    conf = write_config(base)
    main(["pre-build", "--kernel-dir", str(tree), "--build-dir", str(build), "--config", str(conf)])
    out = capsys.readouterr()
    everything = _everything(base, out.out + out.err)
    assert "SECRETDIRNAME" not in everything
    assert f"({tree / 'rust'} has no readable .rmeta files)" in everything


@pytest.mark.parametrize("hidden", [True, False], ids=["0711 directory", "listable (positive control)"])
def test_an_untrusted_compiler_a_user_linked_to_is_named_as_reached(
    hidden: bool, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Left by the eighth red team: a user's bin/rustc linked to another user's compiler in a
    directory nobody else may list (what ``/proc/<pid>/exe`` of their process leads to). Root
    resolved the link, judged the resolved file first and named it in the reason
    ("<dir>/SECRETNAME is owned by uid 1001") and in --json's ``binary``. The user's own link
    is the reason now, and the resolved path is named only when every user could find it."""
    parent = base / "x711"
    parent.mkdir()
    parent.chmod(0o711 if hidden else 0o755)
    other = parent / "SECRETNAME"
    (other / "bin").mkdir(parents=True)
    (other / "bin" / "rustc").write_text("#!/bin/sh\nexit 1\n")
    (other / "bin" / "rustc").chmod(0o755)
    planted.chown_tree(other, uid=planted.USER_UID + 1, gid=planted.USER_UID + 1)
    home = _users_side(base)
    (home / "tc" / "bin").mkdir(parents=True)
    link = home / "tc" / "bin" / "rustc"
    link.symlink_to(other / "bin" / "rustc")
    planted.chown_tree(home)
    tree = planted.synthetic_kernel_tree(base / "tree")
    conf = write_config(base, f"search = {home / 'tc'}\npin = * {link}\n")
    main(["check", "-v", "--kernel-dir", str(tree), "--config", str(conf)])
    text = capsys.readouterr()
    assert f"refused: {link if hidden else other / 'bin' / 'rustc'}: not trusted: {home} is owned" in text.out
    main(["check", "--json", "--kernel-dir", str(tree), "--config", str(conf)])
    data = json.loads(capsys.readouterr().out)
    (candidate,) = [tool for tool in data["candidates"] if tool["path"] == str(link)]
    assert candidate["untrusted"] is not None
    reason = f"skipped: not trusted: {home} is owned by uid {planted.USER_UID}"
    assert f"candidate {link} [--search]: {reason}" in text.out
    if hidden:
        assert "SECRETNAME" not in text.out + text.err + json.dumps(data)
        assert candidate["binary"] is None
    else:
        assert f"on the way to {other / 'bin' / 'rustc'} from" in text.out
        assert candidate["binary"] == str(other / "bin" / "rustc")


@pytest.fixture
def process_elsewhere(base: Path) -> Iterator[tuple[int, Path]]:
    """A root process running a copy of sleep from ``<base>/SECRETNAME`` (public), with its
    working directory in ``<base>/x711/SECRETDIR`` (0755 under a 0711 directory, where a user
    may open a name they know but find none): no user may follow its /proc/<pid>/exe or cwd."""
    exe_dir = base / "SECRETNAME"
    exe_dir.mkdir()
    exe = exe_dir / "daemon"
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", exe)
    hidden = base / "x711"
    hidden.mkdir()
    hidden.chmod(0o711)
    cwd = hidden / "SECRETDIR"
    (cwd / "bin").mkdir(parents=True)
    shutil.copy2(exe, cwd / "bin" / "rustc-9-HIDDENNAME")
    import subprocess

    process = subprocess.Popen([str(exe), "60"], cwd=cwd)
    try:
        yield process.pid, exe
    finally:
        process.kill()
        process.wait()


def test_where_a_users_link_into_proc_leads_is_not_followed(
    process_elsewhere: tuple[int, Path], base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the ninth red team: a user's bin/rustc linked to /proc/<pid>/exe of a process
    not theirs (readlink is refused to them): root resolved it, and named the public file it
    leads to ("on the way to <base>/SECRETNAME/daemon", --json's binary). A search directory
    whose bin/ is a link to /proc/<pid>/cwd/bin was listed: its names were printed (and, the
    tenth found, whether it exists decided what was said about it)."""
    pid, _ = process_elsewhere
    home = _users_side(base)
    (home / "tc" / "bin").mkdir(parents=True)
    (home / "tc" / "bin" / "rustc").symlink_to(f"/proc/{pid}/exe")
    (home / "tc" / "bin" / "bindgen").symlink_to(f"/proc/{pid}/exe")
    (home / "tc3").mkdir()
    (home / "tc3" / "bin").symlink_to(f"/proc/{pid}/cwd/bin")
    planted.chown_tree(home)
    tree = planted.synthetic_kernel_tree(base / "tree")
    conf = write_config(base, f"search = {home / 'tc'}\nsearch = {home / 'tc3'}\n")
    main(["check", "-v", "--kernel-dir", str(tree), "--config", str(conf)])
    text = capsys.readouterr()
    main(["toolchains", "--json", "--config", str(conf)])
    data = capsys.readouterr().out
    for name in ("rustc", "bindgen"):
        assert f"not followed: {home / 'tc' / 'bin' / name}: someone else's link" in text.out
    assert f"not followed: {home / 'tc3' / 'bin'}: someone else's link" in text.out
    for secret in ("SECRETNAME", "SECRETDIR", "HIDDENNAME"):
        assert secret not in text.out + text.err + data


def test_a_users_links_into_a_private_directory_say_nothing_of_what_is_there(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the ninth red team: root looked through a user's links to see whether a file
    was there before judging them, so a link to a file in a 0700 directory was listed and a
    link to a missing one was not (and two links to the same file were merged): an oracle for
    names the user cannot see. Both are reported alike now, neither followed."""
    private = _private_dir(base)
    (private / "tool").write_text("#!/bin/sh\n")
    (private / "tool").chmod(0o755)
    home = _users_side(base)
    (home / "tc" / "bin").mkdir(parents=True)
    (home / "tc" / "bin" / "rustc-1").symlink_to(private / "missing")
    (home / "tc" / "bin" / "rustc-2").symlink_to(private / "tool")
    (home / "tc" / "bin" / "rustc-3").symlink_to(private / "tool")
    planted.chown_tree(home)
    conf = write_config(base, f"search = {home / 'tc'}\n")
    main(["toolchains", "-v", "--config", str(conf)])
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if str(home / "tc" / "bin" / "rustc-") in line]
    assert len(lines) == 3, out
    assert {
        line.replace(str(home / "tc" / "bin"), "")
        .replace("rustc-1", "rustc-N")
        .replace("rustc-2", "rustc-N")
        .replace("rustc-3", "rustc-N")
        for line in lines
    } == {
        "dkms-rustc: evidence: not followed: /rustc-N: someone else's link or directory on the way "
        "leads where not every user could follow"
    }, lines


def test_a_public_file_a_users_tree_reaches_through_proc_is_not_read(
    process_elsewhere: tuple[int, Path], base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found with the ninth red team's findings: from a user's tree root read a public file
    through a link to /proc/<pid>/cwd/... of a process not theirs, which they cannot follow."""
    pid, _ = process_elsewhere
    (base / "x711" / "SECRETDIR" / "kernel.release").write_text("7.2.0-hiddenrel\n")
    tree = planted.synthetic_kernel_tree(base / "tree")
    release = tree / "include" / "config" / "kernel.release"
    release.unlink()
    release.symlink_to(f"/proc/{pid}/cwd/kernel.release")
    planted.chown_tree(tree)
    conf = write_config(base)
    main(["check", "--kernel-dir", str(tree), "--config", str(conf)])
    out = capsys.readouterr()
    assert "hiddenrel" not in out.out + out.err
    assert "is reached through a link not every user could follow" in out.out + out.err


def _told(out: str, home: Path) -> list[str]:
    """The lines about ``home``, with its name taken out (to compare two homes' lines)."""
    return sorted(line.replace(str(home), "HOME") for line in out.splitlines() if str(home) in line)


@pytest.mark.parametrize("layout", ["rustup home", "bin directory", "toolchain directory"])
def test_whether_a_directory_a_user_linked_to_exists_is_not_told(
    layout: str, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the tenth red team: a user's ``toolchains`` (or ``bin``, or a toolchain
    directory below a search directory) linked into a 0700 directory was "not listed" when the
    directory there existed and passed over in silence when it did not. Two users' homes, one
    linked to an existing directory and one to a missing one, are told alike now."""
    private = _private_dir(base)
    (private / "there" / "bin").mkdir(parents=True)
    told = []
    for name, target in (("h1", private / "there"), ("h2", private / "missing")):
        home = base / name
        home.mkdir()
        if layout == "rustup home":
            (home / "toolchains").symlink_to(target)
        elif layout == "bin directory":
            (home / "bin").symlink_to(target / "bin")
        else:
            (home / "some").mkdir()
            (home / "toolchain").symlink_to(target)
        planted.chown_tree(home)
        conf = write_config(base, f"search = {home}\n")
        main(["toolchains", "-v", "--config", str(conf)])
        told.append(_told(capsys.readouterr().out, home))
    assert told[0] == told[1]
    assert any("not followed: HOME/" in line for line in told[0]), told[0]


def test_a_pin_by_name_does_not_tell_which_of_a_users_links_leads_to_a_compiler(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the tenth red team: ``pin = * 1.95.0`` took the first entry of a user's
    ``toolchains`` whose ``bin/rustc`` was a file, looked up through the user's links into a
    0700 directory: the entry the pin named told which link led to an existing file."""
    private = _private_dir(base)
    (private / "there" / "bin").mkdir(parents=True)
    (private / "there" / "bin" / "rustc").write_text("#!/bin/sh\n")
    home = base / "h"
    (home / "toolchains").mkdir(parents=True)
    (home / "toolchains" / "1.95.0-a").symlink_to(private / "missing")
    (home / "toolchains" / "1.95.0-b").symlink_to(private / "there")
    planted.chown_tree(home)
    tree = planted.synthetic_kernel_tree(base / "tree")
    conf = write_config(base, f"search = {home}\npin = * 1.95.0\n")
    main(["check", "--kernel-dir", str(tree), "--config", str(conf)])
    out = capsys.readouterr().out
    assert f"{home / 'toolchains' / '1.95.0-a' / 'bin' / 'rustc'} cannot be used: not followed" in out
    assert "1.95.0-b" not in out


def test_a_pin_does_not_tell_whether_a_users_toolchains_link_leads_anywhere(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Which search directories a pin looks in for rustup toolchains was decided by following a
    user's ``toolchains`` link into a 0700 directory ("looked in ..." named it only when the
    directory there existed)."""
    private = _private_dir(base)
    (private / "there").mkdir()
    told = []
    for name, target in (("h1", private / "there"), ("h2", private / "missing")):
        home = base / name
        home.mkdir()
        (home / "toolchains").symlink_to(target)
        planted.chown_tree(home)
        tree = planted.synthetic_kernel_tree(base / f"tree-{name}")
        conf = write_config(base, f"search = {home}\npin = * 1.95.0\n")
        main(["check", "--kernel-dir", str(tree), "--config", str(conf)])
        told.append(_told(capsys.readouterr().out.replace(str(tree), "TREE"), home))
    assert told[0] == told[1]
    assert any("not followed" in line for line in told[0]), told[0]


def test_an_untrusted_toolchains_library_sources_are_not_looked_for_through_a_users_link(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the tenth red team: an untrusted toolchain's ``rust_src`` (--json) was found
    by following its ``lib/rustlib/src/rust/library``, a user's link into a 0700 directory:
    set when ``core/src/lib.rs`` existed there, null when not. An untrusted toolchain is
    never used, so its sources are not looked for at all."""
    import kerneltree

    stable = kerneltree.need("stable")
    private = _private_dir(base)
    (private / "there" / "core" / "src").mkdir(parents=True)
    (private / "there" / "core" / "src" / "lib.rs").write_text("\n")
    home = base / "h"
    libcore = kerneltree.sysroot_libcore(stable)
    marker = base / "MARKER"
    toolchain = planted.fake_toolchain(home / "tc", stable.version_text, marker, libcore_from=libcore)
    source = toolchain / "lib" / "rustlib" / "src" / "rust"
    source.mkdir(parents=True)
    (source / "library").symlink_to(private / "there")
    planted.chown_tree(home)
    conf = write_config(base, f"search = {toolchain}\n")
    main(["toolchains", "--json", "--config", str(conf)])
    data = json.loads(capsys.readouterr().out)
    rustcs = [tool for tool in data["candidates"] if tool["path"].startswith(str(home))]
    assert rustcs and rustcs[0]["untrusted"], data
    assert rustcs[0]["version"] == stable.version_text  # read from its public files
    assert rustcs[0]["rust_src"] is None


def test_a_users_link_into_a_private_trusted_dir_is_not_followed(
    base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the tenth red team: what lies in a trusted_dir is read and listed as root's,
    and that was decided by resolving the path: a user's ``toolchains`` linked into the
    administrator's trusted_dir in a 0700 directory was listed, its names printed. A trusted
    directory counts as named by the administrator (and resolved), not reached by a user."""
    trusted = _private_dir(base) / "tc"
    (trusted / "SECRETNAME" / "bin").mkdir(parents=True)
    system_config(base, monkeypatch, f"trusted_dir = {trusted}\n")
    home = base / "h"
    home.mkdir()
    (home / "toolchains").symlink_to(trusted)
    planted.chown_tree(home)
    conf = write_config(base, f"search = {home}\nsearch = {trusted.parent}\n")
    main(["toolchains", "-v", "--config", str(conf)])
    out = capsys.readouterr()
    assert f"not followed: {home / 'toolchains'}: someone else's link" in out.out
    assert "SECRETNAME" not in out.out + out.err


def test_a_link_swapped_between_the_judgement_and_the_lookup_tells_nothing(
    base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the tenth red team (4 of 40 runs, by a user's loop renaming links): a link was
    judged followable while it led to a missing public name, then swapped to a file in a 0700
    directory before root looked whether a file was there: the candidate was listed. Here the
    swap happens at that very moment, every time: the candidate is passed over, as when
    nothing is there."""
    from dkms_rustc import fileio

    private = _private_dir(base)
    (private / "tool").write_text("#!/bin/sh\n")
    (private / "tool").chmod(0o755)
    home = base / "h"
    (home / "tc" / "bin").mkdir(parents=True)
    link = home / "tc" / "bin" / "rustc-1"
    link.symlink_to(base / "nothing")  # public, missing
    (home / "swap").symlink_to(private / "tool")
    planted.chown_tree(home)
    followable = fileio.followable_by_all

    def swapped_after(path: str) -> bool:
        answer = followable(path)
        if path == str(link) and (home / "swap").is_symlink():
            os.replace(home / "swap", link)  # what the user's rename(2) does, at the worst time
        return answer

    monkeypatch.setattr("dkms_rustc.toolchains.followable_by_all", swapped_after)
    conf = write_config(base, f"search = {home / 'tc'}\n")
    main(["toolchains", "--json", "-v", "--config", str(conf)])
    out = capsys.readouterr()
    assert not (home / "swap").exists()  # the swap happened
    assert str(link) not in out.out + out.err


def test_a_directory_swapped_between_the_judgement_and_the_listing_is_not_listed(
    base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the eleventh red team (2 of 300 runs, a user's loop exchanging two links):
    ``~/.rustup/toolchains`` was judged while it led to a public directory and listed after
    it was swapped to a 0700 one, whose names were printed. Here the swap happens right after
    the judgement, every time: what was opened is judged, and nothing is listed."""
    from dkms_rustc import fileio

    (_private_dir(base) / "SECRETNAME" / "bin").mkdir(parents=True)
    (base / "public" / "pubname" / "bin").mkdir(parents=True)
    home = base / "h"
    home.mkdir()
    (home / "toolchains").symlink_to(base / "public")
    (home / "swap").symlink_to(base / "private")
    planted.chown_tree(home)
    judged = fileio.listing_problem

    def swapped_after(directory: Path, *args: object, **kwargs: object) -> str | None:
        answer = judged(directory, *args, **kwargs)  # type: ignore[arg-type]
        if directory == home / "toolchains" and (home / "swap").is_symlink():
            os.replace(home / "swap", home / "toolchains")
        return answer

    monkeypatch.setattr("dkms_rustc.toolchains.listing_problem", swapped_after)
    conf = write_config(base, f"search = {home}\n")
    main(["toolchains", "-v", "--config", str(conf)])
    out = capsys.readouterr()
    assert not (home / "swap").exists()  # the swap happened
    assert "SECRETNAME" not in out.out + out.err


def test_a_link_swapped_before_a_search_directory_is_looked_into_tells_nothing(
    base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the eleventh red team (20 of 60 runs against 6 of 60, a user's loop exchanging
    links): a search directory's ``toolchains`` was judged followable while it led to a
    missing public name, then swapped into a 0700 directory before root looked whether it was
    a directory: which way the search went told whether it existed there. Here the swap
    happens right after the judgement, every time, for a target that exists and for one that
    does not: both are told alike."""
    from dkms_rustc import toolchains

    private = _private_dir(base)
    (private / "there").mkdir()
    judged = toolchains.unfollowed_reason
    homes = {}
    for name, target in (("h1", private / "there"), ("h2", private / "missing")):
        home = base / name
        home.mkdir()
        (home / "toolchains").symlink_to(base / "nothing")  # public, missing
        (home / "swap").symlink_to(target)
        planted.chown_tree(home)
        homes[home / "toolchains"] = home / "swap"

    def swapped_after(path: Path, memo: dict[str, object]) -> str | None:
        answer = judged(path, memo)
        swap = homes.get(path)
        if swap is not None and swap.is_symlink():
            os.replace(swap, path)
        return answer

    monkeypatch.setattr("dkms_rustc.toolchains.unfollowed_reason", swapped_after)
    told = []
    for home in (base / "h1", base / "h2"):
        conf = write_config(base, f"search = {home}\n")
        main(["toolchains", "-v", "--config", str(conf)])
        told.append(_told(capsys.readouterr().out, home))
        assert not (home / "swap").is_symlink()  # the swap happened
    assert told[0] == told[1]


def test_a_descriptors_path_that_names_something_else_here_is_not_believed(
    base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the twelfth red team: what root opened was judged by its /proc/self/fd path.
    Opened through /proc/<pid>/root of a process in a user's own mount namespace (unshare
    -Urm, with / bound under their home), root's /root reads back as ``/home/<user>/r/root``,
    which in root's namespace is a public directory of theirs: /root's names were printed.
    Here the link is swapped after the judgement (as the red team raced it) and the kernel's
    answer for the descriptor is what that namespace made it say."""
    from dkms_rustc import fileio

    (_private_dir(base) / "SECRETNAME" / "bin").mkdir(parents=True)
    (base / "public").mkdir()
    home = base / "h"
    home.mkdir()
    (home / "toolchains").symlink_to(base / "public")
    (home / "swap").symlink_to(base / "private")
    planted.chown_tree(home)
    judged, readlink = fileio.listing_problem, os.readlink

    def swapped_after(directory: Path, *args: object, **kwargs: object) -> str | None:
        answer = judged(directory, *args, **kwargs)  # type: ignore[arg-type]
        if directory == home / "toolchains" and (home / "swap").is_symlink():
            os.replace(home / "swap", home / "toolchains")
        return answer

    def as_that_namespace_says(path: str | os.PathLike[str], *args: object, **kwargs: object) -> str:
        if str(path).startswith("/proc/self/fd/") and readlink(path) == str(base / "private"):
            return str(base / "public")
        return readlink(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("dkms_rustc.toolchains.listing_problem", swapped_after)
    monkeypatch.setattr(os, "readlink", as_that_namespace_says)
    conf = write_config(base, f"search = {home}\n")
    main(["toolchains", "-v", "--config", str(conf)])
    out = capsys.readouterr()
    assert not (home / "swap").exists()  # the swap happened
    assert "SECRETNAME" not in out.out + out.err


def test_a_descriptors_path_is_believed_for_what_it_names(base: Path) -> None:
    """fileio.names_opened: the path read back names what is open (also after a rename:
    the kernel reports the new name), and not another directory or a deleted one."""
    from dkms_rustc.fileio import names_opened, opened_path

    (base / "a").mkdir()
    (base / "b").mkdir()
    fd = os.open(base / "a", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert opened_path(fd) == str(base / "a")
        assert not names_opened(str(base / "b"), fd)
        os.rename(base / "a", base / "moved")
        assert opened_path(fd) == str(base / "moved")
        os.rmdir(base / "moved")
        assert opened_path(fd) is None  # "<path> (deleted)"
    finally:
        os.close(fd)


def test_a_descriptors_path_through_a_users_link_to_the_same_file_is_not_believed(
    base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the thirteenth red team: through /proc/<pid>/root of a user's namespace, a
    root-only directory's public file read back as a path that, in root's namespace, is the
    user's link to that very file: the identity matched, the directories judged were the
    user's, and ``config --config`` quoted the file's first line. Here the kernel's answer
    for the descriptor is what that namespace made it say."""
    secret = _private_dir(base) / "marker.conf"
    secret.write_text(SECRET + " is not a key\n")
    secret.chmod(0o644)
    home = base / "h"
    home.mkdir()
    (home / "same").symlink_to(secret)
    (home / "c.conf").symlink_to(secret)
    planted.chown_tree(home)
    readlink = os.readlink

    def as_that_namespace_says(path: str | os.PathLike[str], *args: object, **kwargs: object) -> str:
        if str(path).startswith("/proc/self/fd/") and readlink(path) == str(secret):
            return str(home / "same")
        return readlink(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "readlink", as_that_namespace_says)
    code = main(["config", "--config", str(home / "c.conf")])
    out = capsys.readouterr()
    assert code == ExitCode.ERROR
    assert SECRET not in out.out + out.err
