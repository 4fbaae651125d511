# SPDX-License-Identifier: GPL-2.0-or-later
"""Tests of tests/kerneltree.py: trees made from real toolchains behave like real ones."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kerneltree as kt
from kerneltree import need

TOOLCHAINS = kt.find_real_toolchains()
PAIRS = [
    ("stable", "stable"),
    ("nightly", "nightly"),
    ("stable", "nightly"),
    ("nightly", "stable"),
    ("debian", "debian"),
    ("debian", "stable"),
    ("stable", "debian"),
]


def module_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "hello"
    shutil.copytree(kt.HELLO_MODULE, dest)
    return dest


def elf_section(path: Path, name: str) -> bytes:
    with path.open("rb") as f:
        section = ELFFile(f).get_section_by_name(name)
        assert section is not None, f"{path} has no {name} section"
        data: bytes = section.data()
        return data


def comment_of(ko: Path) -> list[str]:
    return [s.decode() for s in elf_section(ko, ".comment").split(b"\0") if s]


# -- toolchains and version numbers -----------------------------------------


def test_find_real_toolchains_are_concrete_and_cached() -> None:
    tc = need("stable")
    assert tc.rustc.is_file() and not tc.rustc.resolve().name.startswith("rustup")
    assert tc.version_text.startswith("rustc ") and tc.release in tc.version_text
    assert tc.host and tc.llvm_version
    assert kt.sysroot_libcore(tc).parent == tc.target_libdir
    again = kt.find_real_toolchains()
    assert again == TOOLCHAINS and again is not TOOLCHAINS  # cached, copy returned
    if "nightly" in TOOLCHAINS:
        assert TOOLCHAINS["nightly"].release.endswith("-nightly")


@pytest.mark.parametrize(
    ("release", "number"),
    [
        ("1.82.0", 108200),
        ("1.95.0", 109500),
        ("1.97.0-nightly", 109700),
        ("1.90.0-beta.3", 109000),
        ("1.81", 108100),
    ],
)
def test_rustc_version_number(release: str, number: int) -> None:
    assert kt.rustc_version_number(release) == number


def test_llvm_version_number() -> None:
    assert kt.llvm_version_number("22.1.8") == 220108
    assert kt.llvm_version_number("22.1.2") == 220102
    assert kt.llvm_version_number("") == 0


# -- tree contents ------------------------------------------------------------


def test_config_files_in_kbuild_formats(kernel_trees: dict[str, Path]) -> None:
    tc = need("stable")
    tree = kernel_trees["stable"]
    text = tc.version_text.replace("#", "")
    llvm = kt.llvm_version_number(tc.llvm_version)
    dotconfig = (tree / ".config").read_text()
    assert f'CONFIG_RUSTC_VERSION_TEXT="{text}"\n' in dotconfig
    assert 'CONFIG_BINDGEN_VERSION_TEXT="bindgen 0.72.1"\n' in dotconfig
    assert f"CONFIG_RUSTC_VERSION={kt.rustc_version_number(tc.release)}\n" in dotconfig
    assert f"CONFIG_RUSTC_LLVM_VERSION={llvm}\n" in dotconfig
    assert "CONFIG_RUST=y\n" in dotconfig and "CONFIG_MODULES=y\n" in dotconfig
    assert 'CONFIG_CC_VERSION_TEXT="' in dotconfig
    assert dotconfig.startswith("#\n# Automatically generated file; DO NOT EDIT.\n")
    auto = (tree / "include/config/auto.conf").read_text()
    assert f"CONFIG_RUSTC_VERSION_TEXT={text}\n" in auto  # unquoted since 5.17
    assert "CONFIG_BINDGEN_VERSION_TEXT=bindgen 0.72.1\n" in auto
    assert "is not set" not in auto
    header = (tree / "include/generated/autoconf.h").read_text()
    assert f'#define CONFIG_RUSTC_VERSION_TEXT "{text}"\n' in header
    assert "#define CONFIG_RUST 1\n" in header
    cfg = (tree / "include/generated/rustc_cfg").read_text().splitlines()
    assert f'--cfg=CONFIG_RUSTC_VERSION_TEXT="{text}"' in cfg
    assert "--cfg=CONFIG_RUST" in cfg and '--cfg=CONFIG_RUST="y"' in cfg
    assert f'--cfg=CONFIG_RUSTC_LLVM_VERSION="{llvm}"' in cfg
    assert (tree / "include/config/kernel.release").read_text() == "7.2.0-dkmsrustc-test\n"


def test_scripts(kernel_trees: dict[str, Path]) -> None:
    tree = kernel_trees[need("stable").name]
    script = tree / "scripts/min-tool-version.sh"
    for tool, version in (("rustc", "1.85.0"), ("bindgen", "0.71.1")):
        out = subprocess.run([str(script), tool], capture_output=True, text=True, check=True)
        assert out.stdout == f"{version}\n"
    assert subprocess.run([str(script), "nope"], capture_output=True, check=False).returncode == 1
    build = (tree / "scripts/Makefile.build").read_text()
    assert "rust_common_cmd = " in build
    assert "-Zunstable-options --extern pin_init --extern kernel" in build
    assert "--sysroot=/dev/null" in build
    assert "RUSTC\t\t= rustc\n" in (tree / "Makefile").read_text()


@pytest.mark.parametrize("name", sorted(TOOLCHAINS) or ["none"])
def test_rust_dir_carries_the_compiler_string(kernel_trees: dict[str, Path], name: str) -> None:
    tc = need(name)
    tree = kernel_trees[name]
    rust = tree / "rust"
    want = tc.version_text.encode()
    for crate in ("core", "compiler_builtins", "kernel", "pin_init"):
        head = (rust / f"lib{crate}.rmeta").read_bytes()[:256]
        assert head.startswith(b"rust\0\0\0"), crate
        assert want in head, (name, crate)
    core = rust / "libcore.rmeta"
    # the toolchain's own libcore metadata: its .rmeta, or what its .rlib holds
    own = kt.sysroot_libcore(tc)
    expected = own.read_bytes() if own.suffix == ".rmeta" else kt.rlib_metadata(own)
    assert core.read_bytes() == expected
    assert not core.is_symlink()
    assert want in elf_section(rust / "libmacros.so", ".rustc")[:256]


def test_trees_leave_the_toolchains_files_alone(tmp_path: Path) -> None:
    """Trees link a private copy, never the toolchain's own metadata: a hard link would change
    its ctime, part of what other test sessions on the machine remember about the toolchain."""
    tc = need("stable")
    own = sorted(tc.target_libdir.glob("lib*.rmeta"))
    before = [(p.stat().st_nlink, p.stat().st_ctime_ns) for p in own]
    kt.make_kernel_tree(tmp_path / "a", tc)
    kt.make_kernel_tree(tmp_path / "b", tc)
    assert [(p.stat().st_nlink, p.stat().st_ctime_ns) for p in own] == before
    assert (tmp_path / "a" / "rust" / "libcore.rmeta").stat().st_ino == (
        (tmp_path / "b" / "rust" / "libcore.rmeta").stat().st_ino
    )


def test_escaped_strings(tmp_path: Path) -> None:
    tc = need("stable")
    odd = 'bindgen 0.72.1 "quoted" back\\slash'
    tree = kt.make_kernel_tree(tmp_path / "tree", tc, variant="no-metadata", bindgen_text=odd)
    assert (
        'CONFIG_BINDGEN_VERSION_TEXT="bindgen 0.72.1 \\"quoted\\" back\\\\slash"\n'
        in (tree / ".config").read_text()
    )
    assert f"CONFIG_BINDGEN_VERSION_TEXT={odd}\n" in (tree / "include/config/auto.conf").read_text()
    assert not (tree / "rust").exists()


def test_no_rust_variant_config(tmp_path: Path) -> None:
    tree = kt.make_kernel_tree(tmp_path / "tree", need("stable"), variant="no-rust")
    dotconfig = (tree / ".config").read_text()
    assert "# CONFIG_RUST is not set\n" in dotconfig
    assert "CONFIG_RUSTC_VERSION=0\n" in dotconfig and "CONFIG_HAVE_RUST=y\n" in dotconfig
    assert "RUSTC_VERSION_TEXT" not in dotconfig and "BINDGEN_VERSION_TEXT" not in dotconfig
    assert "CONFIG_RUST=" not in (tree / "include/config/auto.conf").read_text()
    assert not (tree / "rust").exists()


# -- building the module --------------------------------------------------------


@pytest.mark.parametrize(("tree_tc", "build_tc"), PAIRS)
def test_build_module(kernel_trees: dict[str, Path], tmp_path: Path, tree_tc: str, build_tc: str) -> None:
    need(tree_tc)
    builder = need(build_tc)
    module = module_copy(tmp_path)
    result = kt.build_module(kernel_trees[tree_tc], module, builder.rustc)
    ko = module / "hello.ko"
    if TOOLCHAINS[tree_tc].version_text == builder.version_text:
        assert result.returncode == 0, result.stderr
        version = builder.version_text.removeprefix("rustc ")
        assert f"rustc version {version}" in comment_of(ko)
        assert (module / "hello.o").is_file()
    else:
        assert result.returncode != 0
        assert "error[E0514]: found crate `core` compiled by an incompatible version of rustc" in (
            result.stderr
        )
        assert "error[E0514]: found crate `kernel`" in result.stderr
        assert not ko.exists()


@pytest.mark.parametrize("variant", ["no-metadata", "no-rust"])
def test_missing_metadata_is_e0463(tmp_path: Path, variant: str) -> None:
    tc = need("stable")
    tree = kt.make_kernel_tree(tmp_path / "tree", tc, variant=variant)
    result = kt.build_module(tree, module_copy(tmp_path), tc.rustc)
    assert result.returncode != 0
    assert "error[E0463]: can't find crate for `core`" in result.stderr


def _path_with_rustc(tmp_path: Path, rustc: Path) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "rustc").symlink_to(rustc)
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_environment_rustc_is_ignored(kernel_trees: dict[str, Path], tmp_path: Path) -> None:
    stable, nightly = need("stable"), need("nightly")
    module = module_copy(tmp_path)
    # `rustc` on PATH matches the tree; a wrong RUSTC in the environment changes nothing.
    env = {**_path_with_rustc(tmp_path, stable.rustc), "RUSTC": str(nightly.rustc)}
    result = kt.build_module(kernel_trees["stable"], module, None, env=env)
    assert result.returncode == 0, result.stderr
    assert f"rustc version {stable.version_text.removeprefix('rustc ')}" in comment_of(module / "hello.ko")
    # ... and the right RUSTC in the environment does not rescue a wrong `rustc` on PATH.
    result = kt.build_module(kernel_trees["nightly"], module, None, env=env)
    assert result.returncode != 0
    assert "error[E0514]" in result.stderr


def test_command_line_variables_and_jobs(kernel_trees: dict[str, Path], tmp_path: Path) -> None:
    tc = need("stable")
    module = module_copy(tmp_path)
    result = kt.build_module(
        kernel_trees["stable"],
        module,
        tc.rustc,
        make_args=[
            "-j2",
            "KERNELRELEASE=7.2.0-dkmsrustc-test",
            "HOSTRUSTC=/nonexistent/rustc",
            "BINDGEN=/nonexistent/bindgen",
            "RUST_LIB_SRC=/nonexistent/library",
            "V=1",
        ],
    )
    assert result.returncode == 0, result.stderr
    assert f"{tc.rustc} --edition=2021" in result.stdout
    assert "--extern pin_init --extern kernel" in result.stdout


def test_module_with_classic_makefile(kernel_trees: dict[str, Path], tmp_path: Path) -> None:
    tc = need("stable")
    module = module_copy(tmp_path)
    (module / "Kbuild").unlink()
    (module / "Makefile").write_text(
        "ifneq ($(KERNELRELEASE),)\nobj-m += hello.o\nelse\nKDIR ?= /lib/modules/`uname -r`/build\n"
        "default:\n\t$(MAKE) -C $(KDIR) M=$$PWD\nendif\n"
    )
    result = kt.build_module(kernel_trees["stable"], module, tc.rustc)
    assert result.returncode == 0, result.stderr
    assert (module / "hello.ko").is_file()


def test_clean_removes_what_kbuild_removes(kernel_trees: dict[str, Path], tmp_path: Path) -> None:
    tc = need("stable")
    module = module_copy(tmp_path)
    with (module / "Kbuild").open("a") as f:
        f.write("clean-files := generated.txt\n")
    (module / "generated.txt").write_text("x")
    (module / "rustc.args").write_text("RUSTC=/x\n")  # what a PRE_BUILD hook might leave
    (module / ".keep.env").write_text("x")
    assert kt.build_module(kernel_trees["stable"], module, tc.rustc).returncode == 0
    assert (module / ".hello.o.d").exists() and (module / "modules.order").exists()
    result = kt.build_module(kernel_trees["stable"], module, tc.rustc, target="clean")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in module.iterdir()) == [
        ".keep.env",
        "Kbuild",
        "hello.rs",
        "rustc.args",
    ]


def test_example_module_and_its_c_only_variant(kernel_trees: dict[str, Path], tmp_path: Path) -> None:
    """examples/rust-hello (written for real kernels) builds in these trees, from Rust, and with
    RUST_HELLO_C_ONLY=y from C (C rule, composite object, stand-in <linux/*.h>) with no rustc."""
    tc = need("stable")
    module = tmp_path / "rust-hello"
    shutil.copytree(Path(__file__).resolve().parents[1] / "examples" / "rust-hello", module)
    rust = kt.build_module(kernel_trees["stable"], module, tc.rustc)
    assert rust.returncode == 0, rust.stderr
    assert comment_of(module / "rust_hello.ko")[0].startswith("rustc version 1.")
    assert b"license=GPL" in elf_section(module / "rust_hello.ko", ".modinfo")
    assert kt.build_module(kernel_trees["stable"], module, None, target="clean").returncode == 0
    c_only = kt.build_module(
        kernel_trees["stable"], module, Path("/nonexistent/rustc"), make_args=["RUST_HELLO_C_ONLY=y"]
    )
    assert c_only.returncode == 0, c_only.stderr
    assert "CC [M]" in c_only.stdout and "RUSTC" not in c_only.stdout
    ko = module / "rust_hello.ko"
    assert not any(line.startswith("rustc") for line in comment_of(ko))
    assert b"description=Hello world, the C-only variant" in elf_section(ko, ".modinfo")
    with ko.open("rb") as f:
        symbols = ELFFile(f).get_section_by_name(".symtab")
        assert isinstance(symbols, SymbolTableSection)
        names = {symbol.name for symbol in symbols.iter_symbols()}
    assert {"init_module", "cleanup_module"} <= names


def test_split_tree_like_debian(tmp_path: Path) -> None:
    tc = need("stable")
    dest = tmp_path / "usr/src/linux-headers-7.2.0-1-amd64"
    tree = kt.make_kernel_tree(dest, tc, split=True, kernelrelease="7.2.0-1-amd64")
    common = tmp_path / "usr/src/linux-headers-7.2.0-1-common"
    assert tree == dest
    assert (dest / "Makefile").read_text() == f"include {common}/Makefile\n"
    assert (common / "Makefile").is_file() and (common / "scripts/Makefile.build").is_file()
    assert os.readlink(dest / "scripts") == "../linux-headers-7.2.0-1-common/scripts"
    assert "override KERNELRELEASE = 7.2.0-1-amd64" in (dest / ".kernelvariables").read_text()
    for name in (
        ".config",
        "include/config/auto.conf",
        "include/generated/rustc_cfg",
        "rust/libcore.rmeta",
        "rust/libkernel.rmeta",
        "rust/libmacros.so",
    ):
        assert (dest / name).is_file(), name
        assert not (common / name).exists(), name
    module = module_copy(tmp_path)
    result = kt.build_module(dest, module, tc.rustc)
    assert result.returncode == 0, result.stderr
    release = kt.build_module(dest, module, tc.rustc, target="kernelrelease")
    assert "7.2.0-1-amd64" in release.stdout
    if "nightly" in TOOLCHAINS:
        wrong = kt.build_module(dest, module, TOOLCHAINS["nightly"].rustc)
        assert "error[E0514]" in wrong.stderr


def test_bad_variant(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="variant"):
        kt.make_kernel_tree(tmp_path, need("stable"), variant="bogus")
