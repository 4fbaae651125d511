# SPDX-License-Identifier: GPL-2.0-or-later
"""Root never loads code through the kernel tree: target.json, rust/ races, proc macros' libraries.

Every payload here is real: a shared object built with gcc whose constructor appends to a
marker file, or a proc macro built by the real rustc with such a constructor. Ownership is
real too: files owned by uid 1000, and the racing programs run AS uid 1000 (subprocess
``user=``), so what they do is what an unprivileged user can do. Positive controls show that
each payload really is loaded when everything is root's, so a missing marker means "never
loaded", not "the payload does not work".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import kerneltree
import planted
from conftest import check_json, messages_text, system_config, write_config
from dkms_rustc import runner
from dkms_rustc.cli import main
from dkms_rustc.handoff import ARGS_FILE

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant files owned by others"),
]
UID = planted.USER_UID
TOOLCHAINS = kerneltree.find_real_toolchains()
USER_PYTHON = "/usr/bin/python3"  # one uid 1000 can run (pytest's may live in /root)


def _stable() -> kerneltree.RealToolchain:
    kerneltree.need("stable")
    return TOOLCHAINS["stable"]


@pytest.fixture(autouse=True, scope="module")
def _toolchains_stay_roots() -> object:
    """These tests chown trees kerneltree made with hard links into real toolchains: the
    toolchains' own files must never change owner (planted.chown_tree copies such files)."""
    yield
    for toolchain in TOOLCHAINS.values():
        for path in toolchain.target_libdir.glob("*.rmeta"):
            assert path.stat().st_uid == 0, f"{path} changed owner"


@pytest.fixture
def base(public_base: Path) -> Path:
    """conftest.public_base: what a user plants there is public."""
    return public_base


def _copy_tree(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, symlinks=True)
    return dest


def _payload(base: Path, marker: Path) -> Path:
    return planted.payload_library(base / "payload" / "libpayload.so", marker)


def _with_backend(target_json: Path, backend: Path) -> str:
    spec = (
        json.loads(target_json.read_text()) if target_json.exists() else json.loads(planted.X86_TARGET_JSON)
    )
    spec["default-codegen-backend"] = str(backend)
    return json.dumps(spec, indent=4) + "\n"


# -- scripts/target.json -------------------------------------------------------------------


def test_positive_control_rustc_loads_a_default_codegen_backend_named_in_target_json(base: Path) -> None:
    """The payload is real: the real rustc loads it (as root, here on purpose)."""
    marker = base / "MARKER"
    spec = base / "target.json"
    spec.write_text(_with_backend(spec, _payload(base, marker)))
    (base / "x.rs").write_text("#![no_std]\n")
    subprocess.run(
        [str(_stable().rustc), "--crate-type=rlib", "--emit=metadata", f"--target={spec}",
         "-Zunstable-options", "--sysroot=/dev/null", "-o", str(base / "x.rmeta"), str(base / "x.rs")],
        env={"RUSTC_BOOTSTRAP": "1", "PATH": "/usr/bin:/bin"}, capture_output=True, check=False, cwd=base,
    )  # fmt: skip
    assert "libpayload.so was loaded" in marker.read_text()


def _plant_backend(how: str, base: Path, tree: Path, marker: Path) -> str:
    """Make ``tree``'s scripts/target.json name the payload; return what the warning names."""
    payload = _payload(base, marker)
    spec = tree / "scripts" / "target.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    text = _with_backend(spec, payload)
    if how == "user-owned tree":
        spec.write_text(text)
        planted.chown_tree(tree)
        planted.chown_tree(payload.parent)
        return "not root-only"
    if how == "root's tree, target.json a link into a user's directory":
        user = base / "home" / "user"
        user.mkdir(parents=True)
        (user / "target.json").write_text(text)
        planted.chown_tree(base / "home")
        spec.unlink(missing_ok=True)
        spec.symlink_to(user / "target.json")
        return "not root-only"
    assert how == "root's tree, root's target.json"
    spec.write_text(text)
    return "'default-codegen-backend'"


BACKEND_PLANTS = (
    "user-owned tree",
    "root's tree, target.json a link into a user's directory",
    "root's tree, root's target.json",
)


@pytest.mark.parametrize("command", ["check", "status", "pre-build"])
@pytest.mark.parametrize("how", BACKEND_PLANTS)
def test_a_codegen_backend_in_target_json_is_never_loaded(
    how: str,
    command: str,
    kernel_trees: dict[str, Path],
    base: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker = base / "MARKER"
    tree = _copy_tree(kernel_trees["stable"], base / "modules" / "7.2.0-dkmsrustc-test" / "build")
    said = _plant_backend(how, base, tree, marker)
    search = ["--config", str(write_config(base)), "--search", str(_stable().rustc.parent.parent)]
    before = runner.processes_started
    if command == "check":
        code = main(["check", "--kernel-dir", str(tree), *search])
    elif command == "status":
        code = main(
            [
                "status",
                "-v",
                "--modules-dir",
                str(base / "modules"),
                "--dkms-tree",
                str(base / "dkms"),
                *search,
            ]
        )
    else:  # as DKMS runs it: its variables set, in the module's build directory
        build = base / "dkms" / "hello" / "1.0" / "build"
        build.mkdir(parents=True)
        monkeypatch.chdir(build)
        for name, value in {
            "kernelver": "7.2.0-dkmsrustc-test",
            "module": "hello",
            "module_version": "1.0",
        }.items():
            monkeypatch.setenv(name, value)
        code = main(["pre-build", "--kernel-dir", str(tree), *search])
        assert f"RUSTC={_stable().rustc}" in (build / ARGS_FILE).read_text()
    out = capsys.readouterr()
    assert not marker.exists(), marker.read_text()
    assert runner.processes_started == before  # no test compile at all (the version is read from files)
    assert code == 0, out
    assert said in out.out + out.err
    assert "test compile" in out.out + out.err


# -- rust/: what was checked is what rustc reads ----------------------------------------------

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


def _loud_tree(dest: Path, marker: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real kernel tree whose libmacros.so (loaded by rustc for `extern crate kernel`) writes
    to ``marker`` when loaded."""
    source = (
        kerneltree._MACROS_RS + f"\nconst MARKER_PATH: &str = {json.dumps(str(marker))};\n" + _CONSTRUCTOR
    )
    with monkeypatch.context() as patch:
        patch.setattr(kerneltree, "_MACROS_RS", source)
        tree = kerneltree.make_kernel_tree(dest, _stable())
    marker.unlink(missing_ok=True)  # building the tree loaded it (compiling libkernel)
    return tree


def _as_user(script: str, *args: str) -> subprocess.Popen[bytes]:
    if not os.path.exists(USER_PYTHON):
        pytest.skip(f"{USER_PYTHON} is needed to run code as uid {UID}")
    return subprocess.Popen([USER_PYTHON, "-c", script, *args], user=UID, group=UID, cwd="/")


_MOVER = """
import os, sys, time
rust, payload, stop = sys.argv[1:]
while not os.path.exists(stop):
    try:
        os.link(payload, os.path.join(rust, "libmacros.so"))
    except OSError:
        pass
    time.sleep(0.001)
    try:
        os.unlink(os.path.join(rust, "libmacros.so"))
    except OSError:
        pass
"""


def test_a_proc_macro_moved_into_a_users_rust_dir_later_is_never_loaded(
    kernel_trees: dict[str, Path], base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of the report: rust/ holds no .so when listed, then the user moves one in (a
    libkernel.rmeta that depends on it makes rustc load it). A rust/ others can change gets
    no test compile at all, whatever it holds when listed."""
    marker = base / "MARKER"
    loud = _loud_tree(base / "loud", marker, monkeypatch)
    payload = base / "home" / "libmacros.so"
    payload.parent.mkdir()
    shutil.copy2(loud / "rust" / "libmacros.so", payload)
    tree = _copy_tree(loud, base / "tree")
    (tree / "rust" / "libmacros.so").unlink()
    planted.chown_tree(base / "home")
    os.chown(tree / "rust", UID, UID)  # the user's directory; the files in it root's
    stop = base / "STOP"
    mover = _as_user(_MOVER, str(tree / "rust"), str(payload), str(stop))
    conf = write_config(base, cache=False)
    try:
        for _ in range(15):
            code = main(["check", "--kernel-dir", str(tree), "--config", str(conf),
                         "--search", str(_stable().rustc.parent.parent)])  # fmt: skip
            assert code == 0
    finally:
        stop.touch()
        mover.wait(timeout=10)
    assert not marker.exists(), marker.read_text()


_EXCHANGER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b, stop = (arg.encode() for arg in sys.argv[1:])
AT_FDCWD, RENAME_EXCHANGE = -100, 2
while not os.path.exists(stop):
    libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
"""


def test_a_rust_link_swapped_with_rename_exchange_never_loads_the_other_side(
    kernel_trees: dict[str, Path],
    base: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The other race of the report: a user-owned ``rust`` link swapped (renameat2
    RENAME_EXCHANGE, as uid 1000, in a loop) between root's metadata and the user's. rust/ is
    resolved once; the test compile runs only on a root-only resolution, with that path."""
    marker = base / "MARKER"
    loud = _loud_tree(base / "loud", marker, monkeypatch)
    planted.chown_tree(loud)  # the user's metadata, with the payload proc macro
    tree = _copy_tree(kernel_trees["stable"], base / "tree")
    shutil.rmtree(tree / "rust")
    # root's, where every user may read it (as /usr/src/linux-headers-*/rust): from a user's
    # tree only public files are read (pytest's own directories are private)
    (tree / "rust").symlink_to(_copy_tree(kernel_trees["stable"] / "rust", base / "roots-rust"))
    (tree / "rust-other").symlink_to(loud / "rust")
    planted.chown_tree(tree)  # the tree and both links are the user's (no target.json here)
    stop = base / "STOP"
    exchanger = _as_user(_EXCHANGER, str(tree / "rust"), str(tree / "rust-other"), str(stop))
    conf = write_config(base, cache=False)
    proved = skipped = 0
    try:
        for _ in range(30):
            code, data = check_json(capsys, "--kernel-dir", str(tree), "--config", str(conf),
                                "--search", str(_stable().rustc.parent.parent))  # fmt: skip
            assert code == 0, messages_text(data)
            for proof in data["proofs"].values():
                proved += bool(proof["ok"])
                skipped += bool(proof["skipped"])
    finally:
        stop.touch()
        exchanger.wait(timeout=10)
    assert not marker.exists(), marker.read_text()
    assert proved + skipped == 30


def test_rust_is_resolved_once_and_the_test_compile_gets_that_path(
    kernel_trees: dict[str, Path], base: Path
) -> None:
    """The link is read once, by read_kernel: changing it afterwards changes nothing."""
    from dkms_rustc.cache import Cache
    from dkms_rustc.kernel import read_kernel
    from dkms_rustc.proof import proof_command
    from dkms_rustc.toolchains import CandidateKind, Found, Toolchain

    real = (kernel_trees["stable"] / "rust").resolve()
    tree = _copy_tree(kernel_trees["stable"], base / "tree")
    shutil.rmtree(tree / "rust")
    (tree / "rust").symlink_to(real)
    kernel = read_kernel(tree, Cache(None))
    assert kernel.rust_dir == real and kernel.code_problem is None
    (tree / "rust").unlink()
    (tree / "rust").symlink_to(base / "elsewhere")
    rustc = _stable().rustc
    argv = proof_command(
        Toolchain(Found(CandidateKind.RUSTC, rustc, rustc, ("test",))), kernel, base / "work"
    )
    assert argv[argv.index("-L") + 1] == str(real)
    assert "elsewhere" not in " ".join(argv)


def _no_test_compile(capsys: pytest.CaptureFixture[str], kernel_dir: Path, base: Path, why: str) -> None:
    """``check`` of ``kernel_dir`` with the real stable rustc: selected, but the test compile
    is skipped, and the warning says the tree is not root-only because ``why``."""
    code, data = check_json(capsys, "--kernel-dir", str(kernel_dir), "--config", str(write_config(base)),
                        "--search", str(_stable().rustc.parent.parent))  # fmt: skip
    assert code == 0, messages_text(data)
    assert data["proofs"][str(_stable().rustc)]["skipped"] is True
    assert f"not root-only ({why}" in "\n".join(data["warnings"])


def test_a_user_owned_tree_around_a_root_only_rust_dir_gets_no_test_compile(
    kernel_trees: dict[str, Path], base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The module build would run the user's Makefiles as root: the tree is not root-only."""
    tree = _copy_tree(kernel_trees["stable"], base / "tree")
    shutil.rmtree(tree / "rust")
    (tree / "rust").symlink_to(_copy_tree(kernel_trees["stable"] / "rust", base / "roots-rust"))  # public
    os.chown(tree, UID, UID)
    _no_test_compile(capsys, tree, base, f"{tree} is owned by uid {UID}")


def test_a_users_tree_whose_rust_links_into_a_trusted_dir_is_still_the_users(
    kernel_trees: dict[str, Path],
    base: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Found by the tenth red team: when the tree's rust/ resolved into the administrator's
    trusted_dir, nothing else was judged: a user's tree around it (its Makefiles, which the
    module build runs as root, its scripts/target.json) got the test compile and no warning."""
    trusted = base / "trusted"
    trusted.mkdir()
    tree = _copy_tree(kernel_trees["stable"], base / "tree")
    shutil.rmtree(tree / "rust")
    (tree / "rust").symlink_to(_copy_tree(kernel_trees["stable"] / "rust", trusted / "rust"))
    os.chown(tree, UID, UID)
    system_config(base, monkeypatch, f"trusted_dir = {trusted}\n")
    _no_test_compile(capsys, tree, base, f"{tree} is owned by uid {UID}")


def test_roots_tree_reached_through_a_users_link_is_the_users_choice(
    kernel_trees: dict[str, Path], base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the eleventh red team: a user's link to root's tree was judged by where it led
    only: the test compile ran, and no warning said that the user chooses the tree the module
    build runs (they may point the link at their own before kbuild follows it)."""
    home = base / "h"
    home.mkdir()
    (home / "klink").symlink_to(_copy_tree(kernel_trees["stable"], base / "tree"))  # root's, public
    planted.chown_tree(home)
    _no_test_compile(capsys, home / "klink", base, f"{home} is owned by uid {UID}")


def test_a_sticky_rust_dir_others_can_add_to_gets_no_test_compile(
    kernel_trees: dict[str, Path], base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the red team: a 1777 rust/ passed as root-only, though anyone may add a file
    to the directory rustc searches with -L (in the test compile and the module build)."""
    tree = _copy_tree(kernel_trees["stable"], base / "tree")
    (tree / "rust").chmod(0o1777)
    _no_test_compile(capsys, tree, base, f"{tree / 'rust'} is writable by every user (sticky")


# -- what the dynamic loader maps for the kernel's proc macros ----------------------------------


@pytest.mark.parametrize("owner", ["user", "root"])
def test_a_proc_macros_run_path_into_a_users_directory(
    owner: str, base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """libmacros.so needs libdkmspayload.so through a RUNPATH naming another directory: when a
    user owns it, rustc never loads the proc macro (no test compile); when root does, the
    test compile runs and the payload is loaded (the positive control)."""
    marker = base / "MARKER"
    libs = base / "home" / "user" / "lib"
    planted.payload_library(libs / "libdkmspayload.so", marker)
    link_args = [
        f"-Clink-arg={arg}"
        for arg in ("-Wl,--no-as-needed", f"-L{libs}", "-ldkmspayload", f"-Wl,-rpath,{libs}")
    ]
    real_commands = kerneltree.rust_metadata_commands

    def commands(toolchain: kerneltree.RealToolchain, rust_dir: Path, src: Path) -> list[list[str]]:
        found = real_commands(toolchain, rust_dir, src)
        return [[*args, *link_args] if "--crate-type=proc-macro" in args else args for args in found]

    with monkeypatch.context() as patch:
        patch.setattr(kerneltree, "rust_metadata_commands", commands)
        tree = kerneltree.make_kernel_tree(base / "tree", _stable())
    marker.unlink(missing_ok=True)
    if owner == "user":
        planted.chown_tree(base / "home")
    code, data = check_json(capsys, "--kernel-dir", str(tree), "--config", str(write_config(base)),
                        "--search", str(_stable().rustc.parent.parent))  # fmt: skip
    assert code == 0, messages_text(data)
    if owner == "root":
        assert "libdkmspayload.so was loaded" in marker.read_text()
        assert data["proofs"][str(_stable().rustc)]["ok"] is True
        return
    assert not marker.exists(), marker.read_text()
    assert data["proofs"][str(_stable().rustc)]["skipped"] is True
    assert f"{base / 'home'} is owned by uid {UID}" in messages_text(data)


def test_the_note_says_what_a_user_owned_tree_means_for_the_module_build(
    kernel_trees: dict[str, Path], base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = _copy_tree(kernel_trees["stable"], base / "tree")
    planted.chown_tree(tree)
    code, data = check_json(capsys, "--kernel-dir", str(tree), "--config", str(write_config(base)),
                        "--search", str(_stable().rustc.parent.parent))  # fmt: skip
    assert code == 0
    warnings = "\n".join(data["warnings"])
    assert f"the kernel build tree is not root-only ({tree} is owned by uid {UID}" in warnings
    assert "loads its proc macros (rust/*.so) as root" in warnings
    assert f"chown -R root:root {tree}" in warnings
    assert data["proofs"][str(_stable().rustc)]["skipped"] is True


def test_no_process_reads_the_users_tree_on_a_warm_run_either(
    kernel_trees: dict[str, Path], base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tree that became the user's after a remembered success is not trusted because of it."""
    tree = _copy_tree(kernel_trees["stable"], base / "tree")
    argv = [
        "--kernel-dir",
        str(tree),
        "--config",
        str(write_config(base)),
        "--search",
        str(_stable().rustc.parent.parent),
    ]
    code, data = check_json(capsys, *argv)
    assert code == 0 and data["proofs"][str(_stable().rustc)]["ok"] is True
    os.chown(tree / "rust", UID, UID)
    time.sleep(0.01)
    code, data = check_json(capsys, *argv)
    assert data["proofs"][str(_stable().rustc)]["skipped"] is True
    assert "not root-only" in "\n".join(data["warnings"])


def test_as_a_process_too(kernel_trees: dict[str, Path], base: Path) -> None:
    marker = base / "MARKER"
    tree = _copy_tree(kernel_trees["stable"], base / "tree")
    _plant_backend("user-owned tree", base, tree, marker)
    result = subprocess.run(
        planted.hook_argv("check", "--kernel-dir", str(tree), "--config", str(write_config(base)),
                          "--search", str(_stable().rustc.parent.parent)),
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not marker.exists()


def test_a_users_tmpdir_never_holds_the_copy_rustc_reads(
    kernel_trees: dict[str, Path],
    base: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """TMPDIR kept from a user's environment (sudo -E): the user could rename the test
    compile's directory and put a target.json of their own in its place. It goes to /tmp."""
    import tempfile

    user_tmp = base / "home" / "user" / "tmp"
    user_tmp.mkdir(parents=True)
    planted.chown_tree(base / "home")
    monkeypatch.setenv("TMPDIR", str(user_tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # as in a fresh process
    ran: list[list[str]] = []
    real_run = runner.run

    def run(argv: list[str], **kwargs: object) -> runner.RunResult:
        ran.append(argv)
        return real_run(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "run", run)
    argv = ["--kernel-dir", str(kernel_trees["stable"]), "--config", str(write_config(base, cache=False))]
    code, data = check_json(capsys, *argv, "--search", str(_stable().rustc.parent.parent))
    assert code == 0
    assert data["proofs"][str(_stable().rustc)]["ok"] is True
    assert ran and not any(str(user_tmp) in word for argv in ran for word in argv), ran


def test_a_remembered_run_is_not_replayed_once_the_tree_became_a_users(
    kernel_trees: dict[str, Path], base: Path
) -> None:
    """Warm replays (dkms_rustc.warm) compare owners and modes of everything a run examined:
    a tree that became a user's after the run was remembered gets a full run that says so."""
    tree = _copy_tree(kernel_trees["stable"], base / "tree")
    build = base / "build"
    build.mkdir()
    conf = write_config(base)
    argv = ["pre-build", "--kernel-dir", str(tree), "--build-dir", str(build), "--config", str(conf),
            "--search", str(_stable().rustc.parent.parent)]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}

    def run() -> str:
        result = subprocess.run(planted.hook_argv(*argv), capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 0, result.stderr
        return result.stderr

    run()
    time.sleep(1.1)  # older than the replay's one-second guard against same-tick changes
    assert "not root-only" not in run()
    from dkms_rustc import warm

    assert any(path.name.startswith(warm.RECORD_PREFIX) for path in (base / "cache").iterdir())  # remembered
    os.chown(tree / "rust", UID, UID)
    said = run()
    assert "the kernel build tree is not root-only" in said
    assert "test compile skipped" in said
