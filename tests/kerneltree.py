# SPDX-License-Identifier: GPL-2.0-or-later
"""Kernel build trees made from a REAL Rust toolchain, for tests and benchmarks.

A tree looks like what a distribution's kernel headers package puts behind
``/lib/modules/$kver/build``: ``.config``, ``include/config/auto.conf``,
``include/generated/{autoconf.h,rustc_cfg}``, ``scripts/`` and, for the
``"rust"`` variant, the crate metadata in ``rust/`` that an out-of-tree Rust
module is compiled against.  That metadata is written (or, for ``core`` and
``compiler_builtins``, taken) from the chosen toolchain, so building a module
with any other rustc fails with the compiler's own ``error[E0514]``.

The tree's ``Makefile`` is a small stand-in for kbuild (it says so): it builds
``M=`` modules with kbuild's Rust command line, from ``scripts/Makefile.build``.

Public API::

    find_real_toolchains() -> dict[str, RealToolchain]
    need(name, *more) -> RealToolchain               (skips the test without them)
    KernelTrees(base)                                 (trees made on first use)
    make_kernel_tree(dest, toolchain, *, variant="rust", ...) -> Path
    build_module(tree, module_dir, rustc) -> subprocess.CompletedProcess[str]
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

__all__ = [
    "HELLO_MODULE",
    "VARIANTS",
    "KernelTrees",
    "RealToolchain",
    "build_module",
    "find_real_toolchains",
    "installed_compilers",
    "kconfig_version",
    "llvm_version_number",
    "make_kernel_tree",
    "need",
    "read_stamp",
    "real_kernel_tree",
    "rlib_metadata",
    "rustc_version_number",
    "sysroot_libcore",
]

#: The tiny test module these trees are made for (``obj-m := hello.o``).
HELLO_MODULE = Path(__file__).resolve().parent / "data" / "modules" / "hello"

#: ``"rust"``: full tree with ``rust/`` metadata; ``"no-metadata"``: CONFIG_RUST=y but
#: no ``rust/`` (Debian's headers); ``"no-rust"``: kernel configured without rustc.
VARIANTS = ("rust", "no-metadata", "no-rust")

MIN_RUSTC = "1.85.0"  # scripts/min-tool-version.sh of Linux 7.1+
MIN_BINDGEN = "0.71.1"


# --------------------------------------------------------------------------
# Toolchains
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RealToolchain:
    """A concrete rustc binary (never rustup's proxy) and what ``rustc -vV`` says."""

    name: str  # "stable", "nightly", "debian", or another rustup toolchain's channel
    rustc: Path  # concrete binary
    version_text: str  # first line of `rustc --version`
    release: str  # "1.95.0", "1.97.0-nightly"
    llvm_version: str  # "22.1.2"; "" when rustc reports none
    host: str  # "x86_64-unknown-linux-gnu"
    sysroot: Path

    @property
    def target_libdir(self) -> Path:
        """``<sysroot>/lib/rustlib/<host>/lib``: the toolchain's own ``libcore-*.rmeta``."""
        return self.sysroot / "lib" / "rustlib" / self.host / "lib"


def _rustup_home() -> Path:
    env = os.environ.get("RUSTUP_HOME")
    return Path(env) if env else Path.home() / ".rustup"


def _rustup_binary() -> Path | None:
    found = shutil.which("rustup")
    if found:
        return Path(found)
    cargo_home = os.environ.get("CARGO_HOME")
    for base in (Path(cargo_home) if cargo_home else None, Path.home() / ".cargo"):
        if base is not None and (base / "bin" / "rustup").is_file():
            return base / "bin" / "rustup"
    return None


def _rustup_toolchain_names() -> list[str]:
    """Names as ``rustup toolchain list`` prints them, else the toolchains/ directory."""
    names: list[str] = []
    rustup = _rustup_binary()
    if rustup is not None:
        try:
            out = subprocess.run(
                [str(rustup), "toolchain", "list"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0:
            for line in out.stdout.splitlines():
                word = line.split(" ", 1)[0].strip()
                if word and word != "no" and not word.startswith("("):
                    names.append(word)
    toolchains = _rustup_home() / "toolchains"
    if not names and toolchains.is_dir():
        names = sorted(p.name for p in toolchains.iterdir() if p.is_dir())
    return names


def _is_rustup_proxy(path: Path) -> bool:
    real = path.resolve()
    if real.name.startswith("rustup"):
        return True
    rustup = _rustup_binary()
    return rustup is not None and rustup.resolve() == real


def _probe(name: str, rustc: Path) -> RealToolchain | None:
    """Run ``rustc -vV`` once; None if it is not a working compiler."""
    if not rustc.is_file() or not os.access(rustc, os.X_OK) or _is_rustup_proxy(rustc):
        return None
    env = {k: v for k, v in os.environ.items() if k != "RUSTC_OVERRIDE_VERSION_STRING"}
    try:
        out = subprocess.run(
            [str(rustc), "-vV"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.startswith("rustc "):
        return None
    lines = out.stdout.splitlines()
    fields: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    host = fields.get("host", "")
    if not host:
        return None
    # rustc finds its sysroot next to its own binary: <sysroot>/bin/rustc.
    sysroot = rustc.resolve().parent.parent
    if not (sysroot / "lib" / "rustlib" / host / "lib").is_dir():
        printed = subprocess.run(
            [str(rustc), "--print", "sysroot"],
            capture_output=True,
            text=True,
            check=False,
        )
        if printed.returncode != 0:
            return None
        sysroot = Path(printed.stdout.strip())
    return RealToolchain(
        name=name,
        rustc=rustc,
        version_text=lines[0].strip(),
        release=fields.get("release", ""),
        llvm_version=fields.get("LLVM version", ""),
        host=host,
        sysroot=sysroot,
    )


def _channel_key(toolchain_name: str, host: str) -> str:
    """Drop the host: ``stable-x86_64-unknown-linux-gnu`` -> ``stable``,
    ``nightly-2026-05-19-<host>`` -> ``nightly-2026-05-19``."""
    suffix = f"-{host}"
    return toolchain_name[: -len(suffix)] if toolchain_name.endswith(suffix) else toolchain_name


@functools.cache
def _find_real_toolchains() -> tuple[tuple[str, RealToolchain], ...]:
    found: dict[str, RealToolchain] = {}
    toolchains = _rustup_home() / "toolchains"
    for full_name in _rustup_toolchain_names():
        tc = _probe(full_name, toolchains / full_name / "bin" / "rustc")
        if tc is None:
            continue
        key = _channel_key(full_name, tc.host)
        if key not in found:
            found[key] = dataclasses.replace(tc, name=key)
    # The distribution's compiler (Debian's rustc or rustc-web), if it is a real one.
    system = Path("/usr/bin/rustc")
    if system.exists():
        tc = _probe("debian", system)
        if tc is not None:
            found["debian"] = tc
    return tuple(found.items())


def find_real_toolchains() -> dict[str, RealToolchain]:
    """Real rustc binaries on this machine, by name (``stable``, ``nightly``, ``debian``...).

    rustup toolchains are found through ``rustup toolchain list`` and
    ``$RUSTUP_HOME`` (default ``~/.rustup``); each is keyed by its channel with
    the host triple removed.  ``/usr/bin/rustc`` counts as ``debian`` when it is
    a real compiler rather than rustup's proxy.  ``rustc -vV`` runs once per
    toolchain and process.
    """
    return dict(_find_real_toolchains())


def need(name: str, *more: str) -> RealToolchain:
    """The real toolchain ``name``, after checking ``more`` are here too; the calling test
    skips otherwise (on CI a skip fails)."""
    import pytest

    toolchains = find_real_toolchains()
    for wanted in (name, *more):
        if wanted not in toolchains:
            pytest.skip(f"no real {wanted} rustc on this machine (rustup toolchain list, /usr/bin/rustc)")
    return toolchains[name]


class KernelTrees(Mapping[str, Path]):
    """The "rust" kernel trees, one per real toolchain (keyed like find_real_toolchains()), each
    made on first use under ``base``. A toolchain that is not here skips (on CI: fails) only
    the tests asking for its tree; a tree that cannot be made fails only those tests."""

    def __init__(self, base: Path) -> None:
        self._base = base
        self._trees: dict[str, Path | BaseException] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self._trees:
            toolchain = need(name)
            try:
                self._trees[name] = make_kernel_tree(self._base / name, toolchain)
            except Exception as error:
                self._trees[name] = error
        tree = self._trees[name]
        if isinstance(tree, BaseException):
            raise RuntimeError(f"the {name} kernel tree could not be made: {tree}") from tree
        return tree

    def __contains__(self, name: object) -> bool:
        return name in find_real_toolchains()

    def __iter__(self) -> Iterator[str]:
        return iter(find_real_toolchains())

    def __len__(self) -> int:
        return len(find_real_toolchains())


# --------------------------------------------------------------------------
# Real kernel trees (tests/realkernel/build-kernels.sh)
# --------------------------------------------------------------------------

#: Where build-kernels.sh keeps its trees: ``<REAL_KERNELS>/<compilers>/linux-<series>``.
REAL_KERNELS = Path(os.environ.get("DKMS_RUSTC_KERNELS") or "/var/cache/dkms-rustc-ci/kernels")
DISTRIBUTION_RUSTC = Path("/usr/bin/rustc")


def _first_line(argv: Sequence[str]) -> str | None:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out.strip() else None


def link_tree(source: Path, target: Path) -> None:
    """A copy of the tree ``source`` (a toolchain, library sources) at ``target``, made of hard
    links where it can be (the same real files, no disk), else copied without its ``share/``
    (documentation): on a fresh machine /root/.rustup may be another, read-only filesystem."""
    linked = subprocess.run(["cp", "-al", str(source), str(target)], capture_output=True, text=True)
    if linked.returncode == 0:
        return
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        source,
        target,
        symlinks=True,
        ignore=lambda directory, names: ["share"] if Path(directory) == source else [],
    )


def installed_compilers() -> tuple[str | None, str | None]:
    """(``/usr/bin/rustc --version``, ``gcc --version``'s first line): what the real trees
    are built with, on this machine."""
    return _first_line([str(DISTRIBUTION_RUSTC), "--version"]), _first_line(["gcc", "--version"])


def read_stamp(tree: Path) -> dict[str, str]:
    """A build-kernels.sh tree's ``.dkms-rustc-stamp``: its inputs and results."""
    text = (tree / ".dkms-rustc-stamp").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def real_kernel_tree(series: str, kernels: Path | None = None) -> Path | None:
    """The finished Linux ``series`` tree build-kernels.sh made with the installed Debian rustc
    and gcc (whichever versions they are), or None."""
    rustc_text, cc_text = installed_compilers()
    if rustc_text is None or cc_text is None:
        return None
    for stamp in sorted((kernels or REAL_KERNELS).glob(f"*/linux-{series}/.dkms-rustc-stamp")):
        inputs = read_stamp(stamp.parent)
        if (
            inputs.get("input.rustc") == f"{DISTRIBUTION_RUSTC} {rustc_text}"
            and inputs.get("input.cc") == cc_text
        ):
            return stamp.parent
    return None


# --------------------------------------------------------------------------
# Version numbers as Kconfig computes them
# --------------------------------------------------------------------------


def _three(version: str) -> tuple[int, int, int]:
    m = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", version.strip())
    if not m:
        return (0, 0, 0)
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))


def rustc_version_number(release: str) -> int:
    """scripts/rustc-version.sh: 100000*major + 100*minor + patch (``1.97.0-nightly`` -> 109700)."""
    major, minor, patch = _three(release)
    return 100000 * major + 100 * minor + patch


def llvm_version_number(version: str) -> int:
    """scripts/rustc-llvm-version.sh: 10000*major + 100*minor + patch (``22.1.2`` -> 220102)."""
    if not version:
        return 0
    major, minor, patch = _three(version)
    return 10000 * major + 100 * minor + patch


def kconfig_version(kernelrelease: str) -> str:
    """``7.2.0-dkmsrustc-test`` -> ``7.2.0`` (the version in the config files' heading)."""
    m = re.match(r"\d+\.\d+(?:\.\d+)?", kernelrelease)
    return m.group(0) if m else kernelrelease


@functools.cache
def _cc_version_text() -> str:
    """First line of ``gcc --version``, as kbuild stores it in CONFIG_CC_VERSION_TEXT."""
    try:
        out = subprocess.run(["gcc", "--version"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.splitlines()[0].strip()
    except OSError:
        pass
    return "gcc (Debian 12.2.0-14+deb12u1) 12.2.0"


# --------------------------------------------------------------------------
# Kconfig output, in scripts/kconfig/confdata.c's four formats
# --------------------------------------------------------------------------

# (name, kind, value): kind is "bool", "int" or "string"; a bool whose value is
# None is "not set".
Symbol = tuple[str, str, Union[str, int, None]]


def _escape(value: str) -> str:
    """confdata.c escape_string_value(): quote, and backslash every ``"`` and ``\\``."""
    return '"' + re.sub(r'(["\\])', r"\\\1", value) + '"'


def _heading(kver: str, prefix: str, decoration: str, postfix: str) -> str:
    return (
        f"{prefix}\n{decoration} Automatically generated file; DO NOT EDIT.\n"
        f"{decoration} Linux/x86 {kver} Kernel Configuration\n{postfix}\n"
    )


def _dotconfig(symbols: Iterable[Symbol], kver: str) -> str:
    """``.config``: quoted, escaped strings; unset bools as ``# CONFIG_X is not set``."""
    out = [_heading(kver, "#", "#", "#")]
    for name, kind, value in symbols:
        if kind == "bool" and value is None:
            out.append(f"# CONFIG_{name} is not set\n")
        elif kind == "string":
            out.append(f"CONFIG_{name}={_escape(str(value))}\n")
        else:
            out.append(f"CONFIG_{name}={value}\n")
    return "".join(out)


def _autoconf(symbols: Iterable[Symbol], kver: str) -> str:
    """``include/config/auto.conf``: strings UNQUOTED (kbuild since 5.17), unset bools omitted."""
    out = [_heading(kver, "#", "#", "#")]
    for name, kind, value in symbols:
        if kind == "bool" and value is None:
            continue
        out.append(f"CONFIG_{name}={value}\n")
    return "".join(out)


def _autoconf_h(symbols: Iterable[Symbol], kver: str) -> str:
    """``include/generated/autoconf.h``: ``#define CONFIG_X 1`` / escaped strings."""
    out = [_heading(kver, "/*", " *", " */")]
    for name, kind, value in symbols:
        if kind == "bool":
            if value == "y":
                out.append(f"#define CONFIG_{name} 1\n")
            elif value == "m":
                out.append(f"#define CONFIG_{name}_MODULE 1\n")
        elif kind == "string":
            out.append(f"#define CONFIG_{name} {_escape(str(value))}\n")
        else:
            out.append(f"#define CONFIG_{name} {value}\n")
    return "".join(out)


def _rustc_cfg(symbols: Iterable[Symbol]) -> str:
    """``include/generated/rustc_cfg``: no heading; every value quoted and escaped."""
    out = []
    for name, kind, value in symbols:
        if kind == "bool":
            if value is None:
                continue
            out.append(f"--cfg=CONFIG_{name}\n")
        out.append(f"--cfg=CONFIG_{name}={_escape(str(value))}\n")
    return "".join(out)


def _symbols(
    toolchain: RealToolchain,
    variant: str,
    bindgen_text: str,
    cc_version_text: str,
) -> list[Symbol]:
    rust = variant != "no-rust"
    cc_major, cc_minor, cc_patch = _three(cc_version_text.rsplit(" ", 1)[-1])
    llvm = llvm_version_number(toolchain.llvm_version) if rust else 0
    syms: list[Symbol] = [
        ("CC_VERSION_TEXT", "string", cc_version_text),
        ("CC_IS_GCC", "bool", "y"),
        ("GCC_VERSION", "int", 10000 * cc_major + 100 * cc_minor + cc_patch),
        ("CLANG_VERSION", "int", 0),
        ("AS_IS_GNU", "bool", "y"),
        ("AS_VERSION", "int", 24000),
        ("LD_IS_BFD", "bool", "y"),
        ("LD_VERSION", "int", 24000),
        ("LLD_VERSION", "int", 0),
        ("RUSTC_VERSION", "int", rustc_version_number(toolchain.release) if rust else 0),
        ("RUST_IS_AVAILABLE", "bool", "y" if rust else None),
        ("RUSTC_LLVM_VERSION", "int", llvm),
        ("RUSTC_LLVM_MAJOR_VERSION", "int", llvm // 10000),
        ("CC_CAN_LINK", "bool", "y"),
        ("LOCALVERSION", "string", ""),
        ("HAVE_RUST", "bool", "y"),
        ("RUST", "bool", "y" if rust else None),
    ]
    if rust:  # both `depends on RUST` in init/Kconfig
        syms += [
            ("RUSTC_VERSION_TEXT", "string", toolchain.version_text.replace("#", "")),
            ("BINDGEN_VERSION_TEXT", "string", bindgen_text),
        ]
    syms += [
        ("64BIT", "bool", "y"),
        ("X86_64", "bool", "y"),
        ("X86", "bool", "y"),
        ("PRINTK", "bool", "y"),
        ("MODULES", "bool", "y"),
        ("MODULE_UNLOAD", "bool", "y"),
        ("MODVERSIONS", "bool", None),
    ]
    return syms


# --------------------------------------------------------------------------
# Files of the tree
# --------------------------------------------------------------------------

_MIN_TOOL_VERSION_SH = f"""\
#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Stand-in (tests/kerneltree.py) for the kernel's scripts/min-tool-version.sh
# of Linux 7.1+: print the minimum supported version of the given tool.

set -e

if [ $# != 1 ]; then
\techo "Usage: $0 toolname" >&2
\texit 1
fi

case "$1" in
binutils)
\techo 2.30.0
\t;;
gcc)
\techo 8.1.0
\t;;
llvm)
\techo 15.0.0
\t;;
rustc)
\techo {MIN_RUSTC}
\t;;
bindgen)
\techo {MIN_BINDGEN}
\t;;
*)
\techo "$1: unknown tool" >&2
\texit 1
\t;;
esac
"""

# kbuild's top Makefile, reduced to what an external Rust module needs.
_TOP_MAKEFILE = """\
# SPDX-License-Identifier: GPL-2.0-or-later
#
# STAND-IN FOR KBUILD, written by dkms-rustc's tests/kerneltree.py.
# This is not the kernel's Makefile.  It builds external Rust modules only,
#     make -C <tree> M=<dir> [modules|clean] [RUSTC=...] [V=1] [-j N]
# with kbuild's Rust command line (scripts/Makefile.build) against the crate
# metadata in $(objtree)/rust/, so a rustc other than the one that wrote that
# metadata fails with the compiler's own error[E0514], as with a real kernel.

# Assigned here as in kbuild's top Makefile: an environment RUSTC is ignored,
# only the make command line (or PATH) changes the compiler.  HOSTRUSTC,
# BINDGEN and RUST_LIB_SRC are accepted and not used.  C sources are compiled
# with $(CC) against the stand-in headers in $(srctree)/include.
RUSTC		= rustc
HOSTRUSTC	= rustc
BINDGEN		= bindgen
CC		= gcc
LD		= ld

# Allows the usage of unstable features in stable compilers (as kbuild does).
export RUSTC_BOOTSTRAP := 1

MAKEFLAGS += -rR --no-print-directory

this-makefile	:= $(lastword $(MAKEFILE_LIST))
srctree		:= $(realpath $(dir $(this-makefile)))
objtree		:= $(CURDIR)

KERNELRELEASE = $(shell cat $(objtree)/include/config/kernel.release 2>/dev/null)

# Debian's split headers set ARCH and KERNELRELEASE here.
-include $(objtree)/.kernelvariables

ifeq ($(V),1)
Q :=
else
Q := @
endif

KBUILD_EXTMOD := $(if $(M),$(abspath $(M)))

export RUSTC HOSTRUSTC BINDGEN CC LD KERNELRELEASE srctree objtree Q KBUILD_EXTMOD
ifdef RUST_LIB_SRC
export RUST_LIB_SRC
endif

need-extmod = $(if $(KBUILD_EXTMOD),,$(error stand-in kbuild: external modules only, M=<dir>))

PHONY := modules clean kernelrelease
modules:
	$(need-extmod)
	$(Q)$(MAKE) -f $(srctree)/scripts/Makefile.build obj=$(KBUILD_EXTMOD) __build

# What kbuild's `clean` removes for M= (top Makefile and scripts/Makefile.clean).
RCS_FIND_IGNORE := \\( -name SCCS -o -name BitKeeper -o -name .svn -o \\
		-name CVS -o -name .pc -o -name .hg -o -name .git \\) -prune -o

clean:
	$(need-extmod)
	$(Q)$(MAKE) -f $(srctree)/scripts/Makefile.build obj=$(KBUILD_EXTMOD) __clean
	$(Q)rm -rf $(KBUILD_EXTMOD)/Module.symvers $(KBUILD_EXTMOD)/modules.nsdeps \\
		$(KBUILD_EXTMOD)/compile_commands.json
	$(Q)find $(KBUILD_EXTMOD) $(RCS_FIND_IGNORE) \\
		\\( -name '*.[aios]' -o -name '*.rsi' -o -name '*.expanded.rs' \\
		-o -name '*.ko' -o -name '.*.cmd' -o -name '*.ko.*' \\
		-o -name '*.dtb' -o -name '*.dtbo' -o -name '*.dtb.S' -o -name '*.dtbo.S' \\
		-o -name '*.dt.yaml' -o -name 'dtbs-list' \\
		-o -name '*.dwo' -o -name '*.lst' \\
		-o -name '*.su' -o -name '*.mod' -o -name '*.usyms' \\
		-o -name '.*.d' -o -name '.*.tmp' -o -name '*.mod.c' \\
		-o -name '*.lex.c' -o -name '*.tab.[ch]' \\
		-o -name '*.asn1.[ch]' \\
		-o -name '*.symtypes' -o -name 'modules.order' \\
		-o -name '.tmp_*' \\
		-o -name '*.c.[012]*.*' \\
		-o -name '*.ll' \\
		-o -name '*.gcno' \\
		-o -name '*.*.symversions' \\) -type f -print | xargs rm -f

kernelrelease:
	@echo $(KERNELRELEASE)

.PHONY: $(PHONY)
"""

# kbuild's scripts/Makefile.build, Rust rules only.
_MAKEFILE_BUILD = """\
# SPDX-License-Identifier: GPL-2.0-or-later
#
# STAND-IN FOR KBUILD's scripts/Makefile.build, written by dkms-rustc's
# tests/kerneltree.py: the Rust rules with kbuild's variable names and the
# command line of Linux 7.1+ (rust_common_cmd); C sources and composite
# objects (foo-y := a.o b.o) reduced to a plain compile and `ld -r`.
# Run by the tree's Makefile.

src := $(obj)
obj-m :=
clean-files :=

# Read auto.conf if it exists, otherwise ignore
-include $(objtree)/include/config/auto.conf

kbuild-file := $(or $(wildcard $(src)/Kbuild),$(src)/Makefile)
include $(kbuild-file)

# Compile Rust sources (.rs)
# ---------------------------------------------------------------------------

rust_allowed_features := used_with_arg

KBUILD_RUSTFLAGS := --edition=2021 -Cpanic=abort -Cembed-bitcode=n -Clto=n \\
	-Cforce-unwind-tables=n -Ccodegen-units=1 -Csymbol-mangling-version=v0 \\
	-Crelocation-model=static -Copt-level=2
rust_flags = $(KBUILD_RUSTFLAGS) --cfg MODULE @$(objtree)/include/generated/rustc_cfg
depfile = $(dir $@).$(notdir $@).d

# `--out-dir` is required to avoid temporaries being created by `rustc` in the
# current working directory, which may be not accessible in the out-of-tree
# modules case.
rust_common_cmd = \\
	OBJTREE=$(abspath $(objtree)) \\
	$(RUSTC) $(rust_flags) \\
	-Zallow-features=$(rust_allowed_features) \\
	-Zcrate-attr=no_std \\
	-Zcrate-attr='feature($(rust_allowed_features))' \\
	-Zunstable-options --extern pin_init --extern kernel \\
	--crate-type rlib -L $(objtree)/rust/ \\
	--sysroot=/dev/null \\
	--out-dir $(dir $@) --emit=dep-info=$(depfile)

cmd_rustc_o_rs = $(rust_common_cmd) --emit=obj=$@ $<

# Compile C sources (.c): no kernel headers here, only the stand-ins of
# $(srctree)/include/linux (module.h, init.h, printk.h, kernel.h).
KBUILD_CFLAGS := -nostdinc -I$(srctree)/include \
	-include $(objtree)/include/generated/autoconf.h -D__KERNEL__ -DMODULE \
	-O2 -ffreestanding -fno-pic -fno-common -mno-red-zone
cmd_cc_o_c = $(CC) $(KBUILD_CFLAGS) -c -o $@ $<

# Composite objects: foo.o linked from the objects in foo-y (or foo-objs).
multi-obj-m := $(foreach m,$(obj-m),$(if $(strip $($(m:.o=-y)) $($(m:.o=-objs))),$(m)))

# Link: kbuild runs modpost and links foo.o with foo.mod.o; plain `ld -r` here.
cmd_ld_ko_o = $(LD) -r -m elf_x86_64 --build-id=sha1 -o $@ $<

modules := $(addprefix $(obj)/,$(obj-m:.o=.ko))

__build: $(modules) $(obj)/modules.order $(obj)/Module.symvers

# Always rebuilt (kbuild rebuilds whenever the command line, e.g. RUSTC, changed).
$(obj)/%.o: $(obj)/%.rs FORCE
\t@echo '  RUSTC [M] $@'
\t$(Q)$(cmd_rustc_o_rs)

$(obj)/%.o: $(obj)/%.c FORCE
\t@echo '  CC [M]  $@'
\t$(Q)$(cmd_cc_o_c)

define multi_obj_rule
$$(obj)/$(1): $$(addprefix $$(obj)/,$$($(1:.o=-y)) $$($(1:.o=-objs))) FORCE
\t@echo '  LD [M]  $$@'
\t$$(Q)$$(LD) -r -m elf_x86_64 -o $$@ $$(filter-out FORCE,$$^)
endef
$(foreach m,$(multi-obj-m),$(eval $(call multi_obj_rule,$(m))))

$(obj)/%.ko: $(obj)/%.o FORCE
\t@echo '  LD [M]  $@'
\t$(Q)$(cmd_ld_ko_o)

$(obj)/modules.order: FORCE
\t$(Q)printf '%s\\n' $(obj-m) > $@

$(obj)/Module.symvers: FORCE
\t$(Q): > $@

__clean:
\t$(Q)rm -rf $(addprefix $(obj)/,$(clean-files))

# Keep foo.o after linking foo.ko, as kbuild does.
.SECONDARY:

PHONY := __build __clean FORCE
FORCE:
.PHONY: $(PHONY)
"""

# Stand-ins for the few kernel headers a hello-world C module includes
# (<linux/module.h>, <linux/init.h>, <linux/printk.h>, <linux/kernel.h>), with
# the kernel's macro names, so a module's C-only variant builds in these trees.
_C_HEADERS: dict[str, str] = {
    "init.h": """\
/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Stand-in for <linux/init.h> (tests/kerneltree.py). */
#ifndef _LINUX_INIT_H
#define _LINUX_INIT_H
#define __init __attribute__((__section__(".init.text")))
#define __exit __attribute__((__section__(".exit.text")))
#define module_init(initfn) int init_module(void) __attribute__((__alias__(#initfn)))
#define module_exit(exitfn) void cleanup_module(void) __attribute__((__alias__(#exitfn)))
#endif
""",
    "module.h": """\
/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Stand-in for <linux/module.h> (tests/kerneltree.py). */
#ifndef _LINUX_MODULE_H
#define _LINUX_MODULE_H
#include <linux/init.h>
#define __MODULE_INFO(tag, name, info) \\
	static const char __modinfo_##name[] \\
	__attribute__((__used__, __section__(".modinfo"), __aligned__(1))) = #tag "=" info
#define MODULE_LICENSE(x) __MODULE_INFO(license, license, x)
#define MODULE_DESCRIPTION(x) __MODULE_INFO(description, description, x)
#define MODULE_AUTHOR(x) __MODULE_INFO(author, author, x)
#endif
""",
    "printk.h": """\
/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Stand-in for <linux/printk.h> (tests/kerneltree.py). */
#ifndef _LINUX_PRINTK_H
#define _LINUX_PRINTK_H
#define KERN_INFO "\\0016"
#ifndef pr_fmt
#define pr_fmt(fmt) fmt
#endif
int _printk(const char *fmt, ...);
#define pr_info(fmt, ...) _printk(KERN_INFO pr_fmt(fmt), ##__VA_ARGS__)
#endif
""",
    "kernel.h": """\
/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Stand-in for <linux/kernel.h> (tests/kerneltree.py). */
#ifndef _LINUX_KERNEL_H
#define _LINUX_KERNEL_H
#include <linux/printk.h>
#endif
""",
}

# The stand-in `kernel` crate and its dependencies, compiled by the toolchain.
_MACROS_RS = r"""// SPDX-License-Identifier: GPL-2.0-or-later
//! Stand-in for the kernel's `macros` crate (tests/kerneltree.py).
extern crate proc_macro;

use proc_macro::{TokenStream, TokenTree};

/// `module! { type: T, name: "n", authors: [..], description: "..", license: ".." }`
#[proc_macro]
pub fn module(input: TokenStream) -> TokenStream {
    let mut ty = String::new();
    let mut name = String::new();
    let mut license = String::new();
    let mut key = String::new();
    let mut expect_value = false;
    for tt in input {
        match tt {
            TokenTree::Ident(ident) if !expect_value => key = ident.to_string(),
            TokenTree::Punct(p) if p.as_char() == ':' => expect_value = true,
            TokenTree::Punct(p) if p.as_char() == ',' => expect_value = false,
            other if expect_value => {
                let text = other.to_string();
                match key.as_str() {
                    "type" => ty.push_str(&text),
                    "name" => name = text.trim_matches('"').to_string(),
                    "license" => license = text.trim_matches('"').to_string(),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let modinfo = |tag: &str, value: &str| {
        let bytes = format!("{}={}\0", tag, value);
        format!(
            "#[link_section = \".modinfo\"] #[used(compiler)] \
             static __MODINFO_{}: [u8; {}] = *b{:?};",
            tag.to_uppercase(), bytes.len(), bytes
        )
    };
    format!(
        "{name_info} {license_info}
        static THIS_MODULE: ::kernel::ThisModule = ::kernel::ThisModule::null();
        #[no_mangle]
        pub extern \"C\" fn init_module() -> ::core::ffi::c_int {{
            match <{ty} as ::kernel::Module>::init(&THIS_MODULE) {{
                Ok(m) => {{ ::core::mem::forget(m); 0 }}
                Err(e) => e.to_errno(),
            }}
        }}
        #[no_mangle]
        pub extern \"C\" fn cleanup_module() {{}}",
        name_info = modinfo("name", &name),
        license_info = modinfo("license", &license),
        ty = ty,
    )
    .parse()
    .unwrap()
}
"""

_PIN_INIT_RS = r"""// SPDX-License-Identifier: GPL-2.0-or-later
//! Stand-in for the kernel's `pin_init` crate (tests/kerneltree.py).
#![no_std]

/// An initializer for a pinned `T`.
pub trait PinInit<T, E = core::convert::Infallible>: Sized {}
"""

_KERNEL_RS = r"""// SPDX-License-Identifier: GPL-2.0-or-later
//! Stand-in for the kernel's `kernel` crate (tests/kerneltree.py).
#![no_std]

pub use macros;

/// The module's `struct module`.
pub struct ThisModule(*mut core::ffi::c_void);
// SAFETY: only an opaque pointer is held.
unsafe impl Sync for ThisModule {}
impl ThisModule {
    /// A module with no `struct module` (for the stand-in).
    pub const fn null() -> Self {
        ThisModule(core::ptr::null_mut())
    }
    /// The `struct module` pointer.
    pub fn as_ptr(&self) -> *mut core::ffi::c_void {
        self.0
    }
}

/// A kernel error code.
#[derive(Clone, Copy, Debug)]
pub struct Error(core::ffi::c_int);
impl Error {
    /// The negative errno value.
    pub fn to_errno(self) -> core::ffi::c_int {
        self.0
    }
}

/// The kernel's `Result`.
pub type Result<T = (), E = Error> = core::result::Result<T, E>;

/// What a loadable module implements.
pub trait Module: Sized + Sync {
    /// Called when the module is loaded.
    fn init(module: &'static ThisModule) -> Result<Self>;
}

pub mod print {
    //! Printing to the kernel log.
    /// Log level prefix of `pr_info!`.
    pub const INFO: &[u8] = b"\x016\0";
    extern "C" {
        fn _printk(fmt: *const u8, ...) -> core::ffi::c_int;
    }
    /// Prints `args` at `level`.
    pub fn call_printk(level: &[u8], args: core::fmt::Arguments<'_>) {
        // SAFETY: `%pA` takes a `fmt::Arguments` (as in the real kernel crate).
        unsafe {
            _printk(level.as_ptr(), &args as *const _ as *const core::ffi::c_void);
        }
    }
}

/// Prints an info-level message (`KERN_INFO`).
#[macro_export]
macro_rules! pr_info {
    ($($arg:tt)*) => {
        $crate::print::call_printk($crate::print::INFO, ::core::format_args!($($arg)*))
    };
}

pub mod prelude {
    //! The kernel prelude.
    pub use super::{pr_info, Error, Module, Result, ThisModule};
    pub use macros::module;
    pub use pin_init::PinInit;
}
"""


def _write(path: Path, text: str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mode is not None:
        path.chmod(mode)


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link (as big as the real thing, no extra disk), copy across filesystems."""
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@functools.cache
def _private_dir() -> Path:
    """This process's copies of toolchain metadata (removed at exit)."""
    directory = Path(tempfile.mkdtemp(prefix="kerneltree-sysroot-"))
    atexit.register(shutil.rmtree, directory, True)
    return directory


def rlib_metadata(path: Path) -> bytes:
    """The metadata in an ``.rlib``: its ``lib.rmeta`` member (read with binutils' ``ar``),
    raw or, on ELF targets, the ``.rmeta`` section of the wrapper object (read with pyelftools):
    independent of dkms_rustc.rlib, which the tests check against it."""
    member = subprocess.run(["ar", "p", str(path), "lib.rmeta"], capture_output=True, check=True).stdout
    if member.startswith(b"rust\0\0\0"):
        return member
    from elftools.elf.elffile import ELFFile

    section = ELFFile(io.BytesIO(member)).get_section_by_name(".rmeta")
    if section is None:
        raise ValueError(f"{path}: lib.rmeta has no .rmeta section")
    data: bytes = section.data()
    return data


def _head(path: Path) -> bytes:
    with path.open("rb") as stream:
        return stream.read(256)


@functools.cache
def _sysroot_rmeta(toolchain: RealToolchain, crate: str) -> Path:
    """A ``lib<crate>-<hash>.rmeta`` of the toolchain's own ``<crate>`` (the one naming this
    compiler), as this process's private copy: of the sysroot's ``.rmeta``, else, where the
    sysroot ships only ``.rlib`` files (Debian bookworm's rustc-web 1.85), of the metadata in
    its ``.rlib``. Trees hard-link the copy, never the toolchain's own file: a link changes a
    file's ctime, which other test sessions on the machine see (remembered results, warm runs)."""
    want = toolchain.version_text.encode()
    dest_dir = _private_dir() / toolchain.name
    dest_dir.mkdir(exist_ok=True)
    found = sorted(toolchain.target_libdir.glob(f"lib{crate}-*.rmeta"))
    if found:
        path = next((p for p in found if want in _head(p)), found[0])
        dest = dest_dir / path.name
        shutil.copyfile(path, dest)
        return dest
    archives = sorted(toolchain.target_libdir.glob(f"lib{crate}-*.rlib"))
    if not archives:
        raise FileNotFoundError(f"no lib{crate}-*.rmeta or lib{crate}-*.rlib in {toolchain.target_libdir}")
    blobs = [(path, rlib_metadata(path)) for path in archives]
    path, blob = next(((p, b) for p, b in blobs if want in b[:256]), blobs[0])
    dest = dest_dir / f"{path.stem}.rmeta"
    dest.write_bytes(blob)
    return dest


def sysroot_libcore(toolchain: RealToolchain) -> Path:
    """The file of the toolchain's sysroot that names its compiler: ``libcore-*.rmeta``, else
    ``libcore-*.rlib`` (what dkms_rustc.probe reads)."""
    for suffix in ("rmeta", "rlib"):
        found = sorted(toolchain.target_libdir.glob(f"libcore-*.{suffix}"))
        if found:
            return found[0]
    raise FileNotFoundError(f"no libcore-*.rmeta or libcore-*.rlib in {toolchain.target_libdir}")


def _sysroot_crates(toolchain: RealToolchain) -> tuple[str, ...]:
    """The sysroot crates a tree's ``rust/`` carries: core and compiler_builtins, whose
    metadata the tree takes from the toolchain (the kernel compiles its own), and the
    ``rustc_std_workspace_core`` shim where that compiler_builtins depends on it (1.85)."""
    builtins = _sysroot_rmeta(toolchain, "compiler_builtins").read_bytes()
    if b"rustc_std_workspace_core" in builtins:
        return ("core", "compiler_builtins", "rustc_std_workspace_core")
    return ("core", "compiler_builtins")


def _run_rustc(toolchain: RealToolchain, args: Sequence[str], cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUSTFLAGS", "RUSTC_"))}
    out = subprocess.run(
        [str(toolchain.rustc), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{toolchain.rustc} {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")


def rust_metadata_commands(toolchain: RealToolchain, rust_dir: Path, src: Path) -> list[list[str]]:
    """The rustc argument lists that make ``rust/`` (in order; sources under ``src``)."""
    host_flags = ["--edition=2021", "-Copt-level=0", "-Cdebuginfo=0"]
    target_flags = [
        "--edition=2021",
        "-Cpanic=abort",
        "-Ccodegen-units=1",
        "-Csymbol-mangling-version=v0",
        "--sysroot=/dev/null",
        "-L",
        str(rust_dir),
    ]
    return [
        # Proc macro: a host .so linked by the toolchain; its ELF `.rustc` section
        # carries the metadata (and so the compiler string).
        [
            *host_flags,
            "--crate-type=proc-macro",
            "--crate-name=macros",
            "--extern",
            "proc_macro",
            "-o",
            str(rust_dir / "libmacros.so"),
            str(src / "macros" / "lib.rs"),
        ],
        [
            *target_flags,
            "--crate-type=rlib",
            "--crate-name=pin_init",
            f"--emit=metadata={rust_dir / 'libpin_init.rmeta'}",
            f"--emit=obj={src / 'pin_init.o'}",
            str(src / "pin_init" / "lib.rs"),
        ],
        [
            *target_flags,
            "--crate-type=rlib",
            "--crate-name=kernel",
            "--extern",
            "macros",
            "--extern",
            "pin_init",
            f"--emit=metadata={rust_dir / 'libkernel.rmeta'}",
            f"--emit=obj={src / 'kernel.o'}",
            str(src / "kernel" / "lib.rs"),
        ],
    ]


def _make_rust_dir(toolchain: RealToolchain, rust_dir: Path) -> None:
    rust_dir.mkdir(parents=True, exist_ok=True)
    for crate in _sysroot_crates(toolchain):
        _link_or_copy(_sysroot_rmeta(toolchain, crate), rust_dir / f"lib{crate}.rmeta")
    with tempfile.TemporaryDirectory(prefix="kerneltree-src-") as tmp:
        src = Path(tmp)
        _write(src / "macros" / "lib.rs", _MACROS_RS)
        _write(src / "pin_init" / "lib.rs", _PIN_INIT_RS)
        _write(src / "kernel" / "lib.rs", _KERNEL_RS)
        for args in rust_metadata_commands(toolchain, rust_dir, src):
            _run_rustc(toolchain, args, cwd=src)


def _common_name(dest: Path) -> str:
    """Debian: ``linux-headers-6.1.0-47-amd64`` -> ``linux-headers-6.1.0-47-common``."""
    name = dest.name
    if name.startswith("linux-headers-") and name.count("-") >= 3:
        return name.rsplit("-", 1)[0] + "-common"
    return f"{name}-common"


def make_kernel_tree(
    dest: Path,
    toolchain: RealToolchain,
    *,
    variant: str = "rust",
    kernelrelease: str = "7.2.0-dkmsrustc-test",
    bindgen_text: str = "bindgen 0.72.1",
    split: bool = False,
    cc_version_text: str | None = None,
) -> Path:
    """Write a kbuild-style build tree for ``toolchain`` at ``dest``; return ``dest``.

    ``dest`` is what ``/lib/modules/$kver/build`` would point to (the objtree).
    With ``split=True`` the kbuild files (``Makefile``, ``scripts/``) go to a
    sibling ``*-common`` directory and ``dest/Makefile`` includes it, as in
    Debian's ``linux-headers-<ver>-amd64`` / ``linux-headers-<ver>-common``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    dest = Path(dest).absolute()
    dest.mkdir(parents=True, exist_ok=True)
    srctree = dest.parent / _common_name(dest) if split else dest
    srctree.mkdir(parents=True, exist_ok=True)
    kver = kconfig_version(kernelrelease)
    symbols = _symbols(toolchain, variant, bindgen_text, cc_version_text or _cc_version_text())

    # kbuild's own files (srctree).
    _write(srctree / "Makefile", _TOP_MAKEFILE)
    _write(srctree / "scripts" / "Makefile.build", _MAKEFILE_BUILD)
    _write(srctree / "scripts" / "min-tool-version.sh", _MIN_TOOL_VERSION_SH, 0o755)
    for header, text in _C_HEADERS.items():
        _write(srctree / "include" / "linux" / header, text)

    # The configured, built kernel's files (objtree).
    _write(dest / ".config", _dotconfig(symbols, kver))
    _write(dest / "include" / "config" / "auto.conf", _autoconf(symbols, kver))
    _write(dest / "include" / "config" / "kernel.release", kernelrelease + "\n")
    _write(dest / "include" / "generated" / "autoconf.h", _autoconf_h(symbols, kver))
    _write(dest / "include" / "generated" / "rustc_cfg", _rustc_cfg(symbols))
    _write(dest / "include" / "generated" / "utsrelease.h", f'#define UTS_RELEASE "{kernelrelease}"\n')
    _write(dest / "Module.symvers", "")
    if split:
        # Debian: `include /usr/src/linux-headers-<ver>-common/Makefile`, absolute.
        _write(dest / "Makefile", f"include {srctree}/Makefile\n")
        _write(
            dest / ".kernelvariables",
            f"override ARCH = x86\noverride KERNELRELEASE = {kernelrelease}\n",
        )
        scripts = dest / "scripts"
        if not scripts.is_symlink():
            if scripts.exists():
                shutil.rmtree(scripts)
            scripts.symlink_to(Path("..") / srctree.name / "scripts")
    if (dest / "rust").exists():
        shutil.rmtree(dest / "rust")
    if variant == "rust":
        _make_rust_dir(toolchain, dest / "rust")
    return dest


# --------------------------------------------------------------------------
# Building a module
# --------------------------------------------------------------------------


def build_module(
    tree: Path,
    module_dir: Path,
    rustc: Path | None,
    *,
    target: str = "modules",
    make_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``make -C tree M=module_dir [RUSTC=rustc] <target>`` (real make, output captured).

    ``rustc=None`` passes no ``RUSTC=``, so the tree's Makefile uses ``rustc`` from
    PATH (an environment RUSTC is ignored, as with kbuild).  Never raises on a
    failed build: look at ``returncode`` and ``stderr``.
    """
    cmd = ["make", "-C", str(tree), f"M={Path(module_dir).absolute()}"]
    if rustc is not None:
        cmd.append(f"RUSTC={rustc}")
    cmd += [*make_args, target]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=dict(env) if env is not None else None,
    )
