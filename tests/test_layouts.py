# SPDX-License-Identifier: GPL-2.0-or-later
"""Every distribution's toolchain layout, built from the REAL compilers on this machine (rustup's
stable, Debian's rustc-web) and the real library sources of Debian's rust-web-src, hard-linked
into the places each distribution uses: Gentoo's slots, Fedora's (and openSUSE's and Arch's)
/usr/bin/rustc with rust-src under /usr/lib/rustlib, kernel.org's LLVM+Rust trees unpacked
anywhere, and a Nix store. The absolute layouts live in a scratch root (this machine through an
overlay, the RPM's dkms-rustc installed in it); the machine's own rustup home is hidden there so
only the arranged compiler can match. Each test checks what the kernel's build gets: the
compiler, and the library sources as RUST_LIB_SRC."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import kerneltree
from distro_world import RELEASE, TOOLCHAINS, need_scratch_root, rpm_install
from scratchroot import ScratchRoot

pytestmark = pytest.mark.root
LIBRARY = Path("/usr/src/rustc-1.96.0/library")  # Debian's rust-web-src (real library sources)


def _library() -> Path:
    found = sorted(Path("/usr/src").glob("rustc-*/library"))
    if not found or not (found[-1] / "core" / "src" / "lib.rs").is_file():
        pytest.skip("no library sources (Debian's rust-web-src / rust-src) installed")
    return found[-1]


def _root(tmp_path: Path, kernel: str, conf: str = "") -> ScratchRoot:
    need_scratch_root("rpmbuild", "rpm")
    kerneltree.need(kernel)
    root = ScratchRoot(tmp_path / "layout")
    installed = rpm_install(root)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    kerneltree.make_kernel_tree(
        root.upper_path(f"/lib/modules/{RELEASE}/build"), TOOLCHAINS[kernel], kernelrelease=RELEASE
    )
    root.hide("/root/.rustup")  # only the arranged compilers (and Debian's /usr/bin/rustc) remain
    root.hide("/root/.cargo")
    root.write("/etc/dkms-rustc.conf", f"cache_dir = /var/cache/dkms-rustc-scratch\n{conf}")
    return root


def _check(root: ScratchRoot) -> dict[str, Any]:
    result = root.chroot("/usr/bin/dkms-rustc", "check", "-k", RELEASE, "--json", "--no-cache")
    data = json.loads(result.stdout)
    assert isinstance(data, dict), result.stderr
    return data


def _selected(data: dict[str, Any]) -> dict[str, Any]:
    selected = data["selected"]
    assert isinstance(selected, dict)
    return selected


def test_gentoo_slot(tmp_path: Path) -> None:
    """dev-lang/rust installs a slot as /usr/lib/rust/<slot>/ (bin/rustc, lib/rustlib, and the
    library sources with USE=rust-src) and links /usr/bin/rustc-<slot> to it."""
    library = _library()
    root = _root(tmp_path, "stable")
    stable = TOOLCHAINS["stable"]
    slot = stable.release
    root.link_copy(stable.sysroot, f"/usr/lib/rust/{slot}")
    root.link_copy(library, f"/usr/lib/rust/{slot}/lib/rustlib/src/rust/library")
    link = root.upper_path(f"/usr/bin/rustc-{slot}")
    link.symlink_to(f"../lib/rust/{slot}/bin/rustc")
    data = _check(root)
    assert data["verdict"] == "ok", data["messages"]
    selected = _selected(data)
    assert selected["rustc"] == f"/usr/lib/rust/{slot}/bin/rustc"
    assert selected["rust_lib_src"] == f"/usr/lib/rust/{slot}/lib/rustlib/src/rust/library"
    assert f"RUST_LIB_SRC=/usr/lib/rust/{slot}/lib/rustlib/src/rust/library" in selected["make_args"]


def test_gentoo_rust_bin_slot(tmp_path: Path) -> None:
    """dev-lang/rust-bin: the official build unpacked as /opt/rust-bin-<slot>/."""
    root = _root(tmp_path, "stable")
    stable = TOOLCHAINS["stable"]
    root.link_copy(stable.sysroot, f"/opt/rust-bin-{stable.release}")
    data = _check(root)
    assert data["verdict"] == "ok", data["messages"]
    assert _selected(data)["rustc"] == f"/opt/rust-bin-{stable.release}/bin/rustc"


def test_fedora_opensuse_arch_layout(tmp_path: Path) -> None:
    """/usr/bin/rustc with its sysroot /usr and rust-src's library at
    /usr/lib/rustlib/src/rust/library (Fedora's rust-src, openSUSE's, Arch's): here Debian's
    real compiler, with Debian's own /usr/src copy of the sources hidden."""
    library = _library()
    root = _root(tmp_path, "debian")
    # Debian's rust-web-src links /usr/lib/rustlib/src/rust to /usr/src/rustc-<ver>: here a real
    # directory, as Fedora's rust-src installs it, covers the link, and /usr/src's copy is hidden.
    root.link_copy(library, "/usr/lib/rustlib/src/rust/library", follow=False)
    root.hide(str(library.parent))
    data = _check(root)
    assert data["verdict"] == "ok", data["messages"]
    selected = _selected(data)
    assert selected["rustc"] == "/usr/bin/rustc"
    assert selected["rust_lib_src"] == "/usr/lib/rustlib/src/rust/library"
    assert "RUST_LIB_SRC=/usr/lib/rustlib/src/rust/library" in selected["make_args"]


def test_nix_store_compiler_is_listed_and_refused(tmp_path: Path) -> None:
    root = _root(tmp_path, "debian", "search_defaults = no\nsearch = /nix/store/0a1b2c3d-rustc-1.96.0\n")
    store = root.upper_path("/nix/store/0a1b2c3d-rustc-1.96.0/bin")
    store.mkdir(parents=True)
    (store / "rustc").write_bytes(Path("/usr/bin/rustc").read_bytes())
    (store / "rustc").chmod(0o555)
    root.write("/etc/os-release", 'NAME=NixOS\nID=nixos\nVERSION_ID="26.05"\n')
    data = _check(root)
    assert data["verdict"] == "refused"
    candidates = data["candidates"]
    assert isinstance(candidates, list)
    nix = next(tool for tool in candidates if tool["path"].startswith("/nix/store/"))
    assert nix["usable"] is False and "Nix store compiler" in nix["skipped"]
    assert any("Nix derivation" in fix for fix in data["fixes"])


@pytest.mark.usefixtures("no_system_config")
def test_kernel_org_llvm_rust_toolchain_unpacked_anywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kernel.org's llvm-<llvm>-rust-<rust>-<arch>.tar.* unpacks to one directory (bin/ with clang
    and rustc; the sysroot with the library sources): found through search = its parent."""
    kerneltree.need("stable")
    library = _library()
    stable = TOOLCHAINS["stable"]
    opt = tmp_path / "opt"
    unpacked = opt / f"llvm-22.1.2-rust-{stable.release}-x86_64"
    opt.mkdir()
    kerneltree.link_tree(stable.sysroot, unpacked)
    (unpacked / "lib/rustlib/src/rust").mkdir(parents=True)
    kerneltree.link_tree(library, unpacked / "lib/rustlib/src/rust/library")
    tree = kerneltree.make_kernel_tree(tmp_path / "build", stable, kernelrelease=RELEASE)
    conf = tmp_path / "test.conf"
    conf.write_text(f"search_defaults = no\nsearch = {opt}\n")
    from dkms_rustc.cli import main

    main(["check", "--kernel-dir", str(tree), "--config", str(conf), "--no-cache", "--json"])
    result = capsys.readouterr()
    data = json.loads(result.out)
    assert data["verdict"] == "ok", data["messages"]
    assert data["selected"]["rustc"] == str(unpacked / "bin" / "rustc")
    assert data["selected"]["rust_lib_src"] == str(unpacked / "lib/rustlib/src/rust/library")
