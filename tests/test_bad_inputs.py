"""A corpus of real-world-shaped bad inputs for the whole command line.

Every case starts from a working setup (a synthetic kernel tree and a fake compiler that
matches it, tests/planted.py), breaks one thing the way disks, packages and people break
things, runs the real command, and requires: the documented exit status, a message (lines
starting ``dkms-rustc: ``, or argparse's usage for usage errors), no traceback, no
"internal error" (the last-resort handler must never be what answers), and an answer within
seconds (a FIFO must not block). As root, "unreadable" means what root cannot read: FIFOs,
devices, directories, symlink loops, /proc files that fail with EIO.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import pytest

import planted
from conftest import isolate
from dkms_rustc import config
from dkms_rustc.cli import main
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.handoff import ARGS_FILE

OK, REFUSED, USAGE, NO_METADATA, ERROR, NO_RUST = (
    ExitCode.OK,
    ExitCode.REFUSED,
    ExitCode.USAGE,
    ExitCode.NO_METADATA,
    ExitCode.ERROR,
    ExitCode.NO_RUST,
)
TIME_LIMIT = 10  # seconds for any one case; a blocking open would hang forever


class Hung(BaseException):
    """Raised by the alarm: a BaseException, so no handler in the tool can swallow it."""


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hung(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Setup:
    base: Path
    tree: Path
    toolchain: Path
    conf: Path
    build: Path
    marker: Path
    command: str = "check"
    argv: list[str] | None = None  # replaces the default arguments entirely
    extra: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def arguments(self) -> list[str]:
        if self.argv is not None:
            return self.argv
        argv = [self.command, "--kernel-dir", str(self.tree), "--config", str(self.conf)]
        argv += ["--search", str(self.toolchain), *self.extra]
        if self.command == "pre-build":
            argv += ["--build-dir", str(self.build)]
        return argv


def _setup(base: Path) -> Setup:
    base.chmod(0o755)
    tree = planted.synthetic_kernel_tree(base / "tree")
    marker = base / "MARKER"
    toolchain = planted.fake_toolchain(base / "tc", planted.SYNTHETIC_VERSION, marker)
    conf = base / "test.conf"
    conf.write_text(f"cache_dir = {base / 'cache'}\nsearch_defaults = no\n")
    build = base / "build"
    build.mkdir()
    return Setup(base, tree, toolchain, conf, build, marker)


# -- ways to break things --------------------------------------------------------------------


def _replace(path: Path, how: str) -> None:
    """Put something else where ``path`` was: a FIFO, a directory, a loop, a device, EIO..."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if how == "missing":
        return
    if how == "fifo":
        os.mkfifo(path)
    elif how == "directory":
        path.mkdir()
    elif how == "loop":
        path.symlink_to(path.name)  # points at itself
    elif how == "dangling":
        path.symlink_to("/nonexistent/target")
    elif how == "device":
        path.symlink_to("/dev/zero")
    elif how == "eio":
        path.symlink_to("/proc/self/mem")  # reading it at offset 0 fails with EIO
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(bytes(range(256)) * 40)
    elif how == "huge":
        with path.open("wb") as stream:  # sparse: 17 MiB of NULs without the disk space
            stream.truncate(17 * 1024 * 1024)
    elif how == "socket":
        import socket

        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))
    else:
        raise ValueError(how)


def _truncate(path: Path, size: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:size])


@dataclass(frozen=True)
class Case:
    name: str
    expected: int
    text: str  # a piece of the message the case must produce
    breaks: Callable[[Setup], None]


def _tree_file(relative: str, how: str) -> Callable[[Setup], None]:
    return lambda s: _replace(s.tree / relative, how)


def _both_configs(how: str) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        _replace(s.tree / "include/config/auto.conf", how)
        (s.tree / ".config").unlink()

    return breaks


def _all_rmeta(how: str, *, keep_proc_macro: bool = False) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        if not keep_proc_macro:  # it carries the compiler's name too
            (s.tree / "rust" / "libmacros.so").write_bytes(b"\x7fELF")
        for path in (s.tree / "rust").glob("*.rmeta"):
            if how == "truncate":
                _truncate(path, 11)
            else:
                _replace(path, how)

    return breaks


def _write(relative: str, data: bytes) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        path = s.tree / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return breaks


def _kernel_dir(how: str) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        _replace(s.tree, how)

    return breaks


def _config_file(how: str) -> Callable[[Setup], None]:
    return lambda s: _replace(s.conf, how)


def _both(first: Callable[[Setup], None], second: Callable[[Setup], None]) -> Callable[[Setup], None]:
    def both(s: Setup) -> None:
        first(s)
        second(s)

    return both


def _config_text(data: bytes) -> Callable[[Setup], None]:
    def write(s: Setup) -> None:
        s.conf.write_bytes(data)

    return write


def _system_config(how: str) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        _replace(s.base / "etc" / "dkms-rustc.conf", how)
        config.SYSTEM_CONFIG = s.base / "etc" / "dkms-rustc.conf"

    return breaks


def _argv(*argv: str) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        s.argv = [part.format(tree=s.tree, conf=s.conf, tc=s.toolchain, base=s.base) for part in argv]

    return breaks


def _pre_build(then: Callable[[Setup], None] | None = None) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        s.command = "pre-build"
        if then is not None:
            then(s)

    return breaks


def _env(**values: str) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        s.env.update(values)

    return breaks


def _search(how: str) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        target = s.base / "search"
        if how == "proc":
            target = Path("/proc/self")
        elif how == "many":
            target.mkdir()
            for number in range(300):
                (target / f"rustc-1.{number}").write_bytes(b"\x7fELF not really")
                (target / f"rustc-1.{number}").chmod(0o755)
        elif how == "undecodable":
            target.mkdir()
            planted.fake_tool(Path(os.fsdecode(bytes(target) + b"/rustc-1.95\xff")), "rustc 0.1.0", s.marker)
        else:
            _replace(target, how)
        s.extra += ["--search", str(target)]

    return breaks


def _verbose(then: Callable[[Setup], None]) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        then(s)
        s.extra.append("-v")

    return breaks


def _announcing_sections(count: int) -> bytes:
    """An ELF file whose first section header says it has ``count`` sections (e_shnum = 0)."""
    elf = bytearray(planted.build_elf([(".rustc", 1, planted.rustc_section(planted.SYNTHETIC_VERSION))]))
    (table,) = struct.unpack_from("<Q", elf, 0x28)
    struct.pack_into("<H", elf, 0x3C, 0)  # e_shnum
    struct.pack_into("<Q", elf, table + 32, count)  # the first header's sh_size
    return bytes(elf)


def _fake_prints(output: str) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        script = s.toolchain / "bin" / "rustc"
        script.write_text(f"#!/bin/sh\nprintf '%s' '{output}'\n")

    return breaks


def _cache_dir(how: str) -> Callable[[Setup], None]:
    return lambda s: _replace(s.base / "cache", how)


def _cache_records(how: str) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        with (
            open(os.devnull, "w") as null,
            contextlib.redirect_stdout(null),
            contextlib.redirect_stderr(null),
        ):
            main(
                ["check", "--kernel-dir", str(s.tree), "--config", str(s.conf), "--search", str(s.toolchain)]
            )
        records = list((s.base / "cache").iterdir())
        assert records
        for record in records:
            _replace(record, how)

    return breaks


def _status(how: str) -> Callable[[Setup], None]:
    """``dkms-rustc status`` over a DKMS tree and a modules dir built from the setup."""

    def breaks(s: Setup) -> None:
        dkms, modules = s.base / "dkms", s.base / "modules"
        source = dkms / "hello" / "1.0" / "source"
        source.mkdir(parents=True)
        (source / "dkms.conf").write_text('PRE_BUILD="dkms-rustc-pre-build"\n')
        (modules / "7.2.0-synthetic").mkdir(parents=True)
        (modules / "7.2.0-synthetic" / "build").symlink_to(s.tree)
        if how == "dkms.conf a FIFO":
            _replace(source / "dkms.conf", "fifo")
        elif how == "dkms tree a file":
            shutil.rmtree(dkms)
            dkms.write_bytes(b"garbage")
        elif how == "build links loop":
            (modules / "6.1.0-loop").mkdir()
            _replace(modules / "6.1.0-loop" / "build", "loop")
            (modules / "6.2.0-fifo").mkdir()
            _replace(modules / "6.2.0-fifo" / "build", "fifo")
        elif how == "names with escapes":
            (dkms / "hello").rename(dkms / "he\x1b[2Jllo")
        s.argv = ["status", "--config", str(s.conf), "--search", str(s.toolchain)]
        s.argv += ["--dkms-tree", str(dkms), "--modules-dir", str(modules)]

    return breaks


def _all_metadata_name(version: str) -> Callable[[Setup], None]:
    """Every rust/ file names ``version`` (the kernel's compiler, as its metadata says)."""

    def breaks(s: Setup) -> None:
        for path in (s.tree / "rust").glob("*.rmeta"):
            path.write_bytes(planted.rmeta_header(10, version) + bytes(64))
        (s.tree / "rust" / "libmacros.so").write_bytes(
            planted.build_elf([(".rustc", 1, planted.rustc_section(version))])
        )

    return breaks


def _auto_install(then: Callable[[Setup], None]) -> Callable[[Setup], None]:
    """pre-build with ``auto_install = rustup`` in the system file (root's, in a root-only dir)."""

    def breaks(s: Setup) -> None:
        then(s)
        system = s.base / "etc" / "dkms-rustc.conf"
        system.parent.mkdir()
        system.write_text(f"auto_install = rustup\nrustup = {s.base / 'no-rustup'}\n")
        config.SYSTEM_CONFIG = system
        s.command = "pre-build"

    return breaks


def _replace_in(relative: str, old: str, new: str) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        path = s.tree / relative
        path.write_text(path.read_text().replace(old, new))

    return breaks


LONG = "x" * 300  # more than a file name may have (255 bytes)


def _long_component(option: str) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        if option == "--kernel-dir":
            s.tree = s.base / LONG
        elif option == "--build-dir":
            s.command = "pre-build"
            s.build = s.base / LONG
        elif option == "--config":
            s.conf = s.base / LONG
        else:
            s.extra += [option, str(s.base / LONG)]

    return breaks


def _dkms_version_with_tilde(s: Setup) -> None:
    """A Debian-style module version (1.0~rc1) in DKMS's build directory, and a refusal."""
    s.command = "pre-build"
    s.build = s.base / "dkms" / "hello" / "1.0~rc1" / "build"
    s.build.mkdir(parents=True)
    _fake_prints("rustc 1.0.0 (0000000 2020-01-01)")(s)


def _two_matching_the_first_with_a_space(s: Setup) -> None:
    spaced = planted.fake_toolchain(s.base / "tool chain", planted.SYNTHETIC_VERSION, s.marker)
    s.extra = ["--search", str(spaced), *s.extra]  # first: it would be chosen on its version
    s.command = "pre-build"


def _bindgen_named_with_a_newline(s: Setup) -> None:
    planted.fake_tool(s.toolchain / "bin" / "bindgen-0.72\n", "bindgen 0.72.1", s.marker)
    s.command = "pre-build"


def _status_over(dkms_tree: str) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        modules = s.base / "modules"
        (modules / "7.2.0-synthetic").mkdir(parents=True)
        (modules / "7.2.0-synthetic" / "build").symlink_to(s.tree)
        s.argv = ["status", "--config", str(s.conf), "--search", str(s.toolchain),
                  "--dkms-tree", dkms_tree, "--modules-dir", str(modules)]  # fmt: skip

    return breaks


def _config_argv(*extra: str) -> Callable[[Setup], None]:
    def breaks(s: Setup) -> None:
        s.argv = ["config", "--config", str(s.conf), *extra]

    return breaks


def _with_spaces(s: Setup) -> None:
    spaced = s.base / "tool chain"
    s.toolchain.rename(spaced)
    s.toolchain = spaced


CASES = [
    # The kernel tree itself.
    Case("kernel dir missing", ERROR, "does not exist", _kernel_dir("dangling")),
    Case("kernel dir is a file", ERROR, "is not a directory", _kernel_dir("garbage")),
    Case("kernel dir is a FIFO", ERROR, "is not a directory", _kernel_dir("fifo")),
    Case("kernel dir is a symlink loop", ERROR, "does not exist", _kernel_dir("loop")),
    Case("kernel dir is empty", ERROR, "no usable kbuild configuration", _kernel_dir("directory")),
    Case(
        "kernel dir is /proc/self",
        ERROR,
        "no usable kbuild configuration",
        _argv("check", "--kernel-dir", "/proc/self"),
    ),
    # Its configuration.
    Case(
        "configs missing",
        ERROR,
        "neither include/config/auto.conf nor .config exists",
        _both_configs("missing"),
    ),
    Case(
        "config a dangling symlink",
        ERROR,
        "cannot be read (No such file or directory)",
        _both_configs("dangling"),
    ),
    Case("config empty", ERROR, "holds no CONFIG_ lines", _both_configs("empty")),
    Case("config binary garbage", ERROR, "holds binary data", _both_configs("garbage")),
    Case("config is a FIFO", ERROR, "is a FIFO, not a regular file", _both_configs("fifo")),
    Case("config is a socket", ERROR, "is a socket, not a regular file", _both_configs("socket")),
    Case("config is a directory", ERROR, "is a directory, not a regular file", _both_configs("directory")),
    Case("config is a symlink loop", ERROR, "Too many levels of symbolic links", _both_configs("loop")),
    Case("config is /dev/zero", ERROR, "is a device, not a regular file", _both_configs("device")),
    Case("config fails with EIO", ERROR, "Input/output error", _both_configs("eio")),
    Case("config is 17 MiB", ERROR, "is larger than 16 MiB", _both_configs("huge")),
    Case(
        "config truncated mid-line",
        NO_RUST,
        "built without Rust support",
        _write("include/config/auto.conf", b"CONFIG_RUSTC_VERSION_TEXT=rus"),
    ),
    Case(
        "auto.conf a FIFO, .config good",
        OK,
        "is a FIFO, not a regular file; used",
        _tree_file("include/config/auto.conf", "fifo"),
    ),
    Case(
        "auto.conf EIO, .config good", OK, "Input/output error", _tree_file("include/config/auto.conf", "eio")
    ),
    Case(
        "auto.conf garbage, .config good",
        OK,
        "holds binary data, not a kbuild configuration; used",
        _tree_file("include/config/auto.conf", "garbage"),
    ),
    Case(
        "config not UTF-8, CRLF line ends",
        OK,
        "building with",
        _write(
            "include/config/auto.conf",
            b"CONFIG_RUST=y\r\nCONFIG_CC_VERSION_TEXT=gcc \xff\xfe\r\nCONFIG_RUSTC_VERSION=garbage\r\n",
        ),
    ),
    # Its Rust metadata.
    Case("rust/ missing", NO_METADATA, "carry no Rust metadata", _tree_file("rust", "dangling")),
    Case("rust/ is a file", NO_METADATA, "is not a directory", _tree_file("rust", "garbage")),
    Case("rust/ is a symlink loop", NO_METADATA, "carry no Rust metadata", _tree_file("rust", "loop")),
    Case("rust/ empty", NO_METADATA, "carry no Rust metadata", _tree_file("rust", "directory")),
    Case("every .rmeta truncated", NO_METADATA, "truncated", _all_rmeta("truncate")),
    Case("every .rmeta empty", NO_METADATA, "magic bytes missing", _all_rmeta("empty")),
    Case("every .rmeta a FIFO", NO_METADATA, "is a FIFO, not a regular file", _all_rmeta("fifo")),
    Case("every .rmeta binary garbage", NO_METADATA, "magic bytes missing", _all_rmeta("garbage")),
    Case("every .rmeta huge", NO_METADATA, "magic bytes missing", _all_rmeta("huge")),
    Case(
        "every .rmeta truncated, libmacros.so intact",
        OK,
        "libkernel.rmeta: truncated",
        _all_rmeta("truncate", keep_proc_macro=True),
    ),
    Case(
        "libkernel.rmeta a directory",
        NO_METADATA,
        "lacks libkernel.rmeta",
        _tree_file("rust/libkernel.rmeta", "directory"),
    ),
    Case(
        "libkernel.rmeta EIO",
        OK,
        "libkernel.rmeta: cannot be read (Input/output error)",
        _tree_file("rust/libkernel.rmeta", "eio"),
    ),
    Case(
        "libkernel.rmeta names a compiler with terminal escapes",
        OK,
        "unexpected version string",
        _write("rust/libkernel.rmeta", planted.rmeta_header(10, "rustc 1.95.0 \x1b[2J\x1b]0;owned\x07")),
    ),
    Case(
        "libmacros.so garbage",
        OK,
        "libmacros.so: not an ELF file",
        _tree_file("rust/libmacros.so", "garbage"),
    ),
    Case(
        "libmacros.so a FIFO",
        OK,
        "libmacros.so: is a FIFO, not a regular file",
        _tree_file("rust/libmacros.so", "fifo"),
    ),
    Case(
        "libmacros.so is /dev/zero",
        OK,
        "libmacros.so: is a device",
        _tree_file("rust/libmacros.so", "device"),
    ),
    Case(
        "libmacros.so announces 300000 sections",
        OK,
        "implausibly many sections",
        _write(
            "rust/libmacros.so",
            _announcing_sections(300_000),
        ),
    ),
    Case(
        "libmacros.so truncated ELF",
        OK,
        "libmacros.so: not a readable ELF file",
        _write("rust/libmacros.so", b"\x7fELF\x02\x01\x01\x00"),
    ),
    # Other files of the tree.
    Case("Makefile is a FIFO", OK, "building with", _tree_file("Makefile", "fifo")),
    Case("Makefile is huge", OK, "building with", _tree_file("Makefile", "huge")),
    Case(
        "Makefile includes itself",
        OK,
        "building with",
        _write("Makefile", b"include Makefile\n-include ../tree/Makefile\n"),
    ),
    Case(
        "min-tool-version.sh a FIFO", OK, "building with", _tree_file("scripts/min-tool-version.sh", "fifo")
    ),
    Case("Makefile.build garbage", OK, "building with", _tree_file("scripts/Makefile.build", "garbage")),
    # Text that made line-spanning patterns take quadratic time (minutes to hours).
    Case("Makefile of a million blank lines", OK, "building with", _write("Makefile", b"\t\n" * 500_000)),
    Case(
        ".kernelvariables of blank lines", OK, "building with", _write(".kernelvariables", b"\n" * 1_000_000)
    ),
    Case(
        "min-tool-version.sh of 150000 case labels",
        OK,
        "building with",
        _write("scripts/min-tool-version.sh", b"rustc)\n" * 150_000),
    ),
    Case(
        "kernel.release with control characters",
        OK,
        "building with",
        _write("include/config/kernel.release", b"7.2\x1b[31m\n\x00x"),
    ),
    Case(".kernelvariables a FIFO", OK, "building with", _tree_file(".kernelvariables", "fifo")),
    Case(
        "target.json a FIFO",
        OK,
        "target.json is not a regular file",
        _tree_file("scripts/target.json", "fifo"),
    ),
    # The configuration file and the command line.
    Case("--config missing", ERROR, "does not exist", _config_file("dangling")),
    Case("--config is a directory", ERROR, "is a directory, not a regular file", _config_file("directory")),
    Case("--config is a FIFO", ERROR, "is a FIFO, not a regular file", _config_file("fifo")),
    Case("--config is /dev/zero", ERROR, "is a device, not a regular file", _config_file("device")),
    Case("--config is a symlink loop", ERROR, "Too many levels of symbolic links", _config_file("loop")),
    Case("--config binary", ERROR, "holds binary data", _config_file("garbage")),
    Case("--config huge", ERROR, "is larger than 1 MiB", _config_file("huge")),
    Case("--config fails with EIO", ERROR, "Input/output error", _config_file("eio")),
    # In a 0700 tmp_path: its lines are not quoted (a file only root can read), the key is not named.
    Case("--config unknown key", ERROR, "unknown key", _config_text(b"rustc = /tmp/evil\n")),
    Case("--config not UTF-8", ERROR, "expected key = value", _config_text(b"\xff\xfe\n")),
    Case("--config empty", OK, "building with", _config_file("empty")),
    Case("system config a FIFO", ERROR, "is a FIFO, not a regular file", _system_config("fifo")),
    Case("system config a symlink loop", ERROR, "Too many levels of symbolic links", _system_config("loop")),
    Case(
        "-k with a slash",
        ERROR,
        "is not a kernel release",
        _argv("check", "-k", "../../../etc", "--config", "{conf}"),
    ),
    Case(
        "-k with control characters", ERROR, "\\x1b", _argv("check", "-k", "6.1\x1b[2J", "--config", "{conf}")
    ),
    Case(
        "$kernelver is garbage",
        ERROR,
        "is not a kernel release",
        _pre_build(_env(kernelver="6.1 /../x")),
    ),
    Case("no command", USAGE, "usage:", _argv()),
    Case("unknown command", USAGE, "invalid choice", _argv("frobnicate")),
    Case(
        "conflicting options",
        USAGE,
        "not allowed with",
        _argv("check", "-k", "6.1", "--kernel-dir", "{tree}"),
    ),
    # Where compilers are looked for.
    Case("--search missing", OK, "building with", _search("dangling")),
    Case("--search a FIFO", OK, "building with", _search("fifo")),
    Case("--search a symlink loop", OK, "building with", _search("loop")),
    Case("--search /proc/self", OK, "building with", _search("proc")),
    Case("--search with 300 non-programs", OK, "building with", _search("many")),
    Case("--search with an undecodable name", OK, "rustc-1.95\\udcff", _verbose(_search("undecodable"))),
    Case(
        "fake compiler prints terminal escapes",
        REFUSED,
        "\\x1b[2J",
        _fake_prints("rustc 1.95.0 \x1b[2J\x1b]0;x\x07"),
    ),
    # The cache.
    Case("cache dir is a file", OK, "building with", _cache_dir("garbage")),
    Case("cache dir is a FIFO", OK, "building with", _cache_dir("fifo")),
    Case("cache dir is a symlink loop", OK, "building with", _cache_dir("loop")),
    Case("cache records are FIFOs", OK, "building with", _cache_records("fifo")),
    Case("cache records are symlink loops", OK, "building with", _cache_records("loop")),
    Case("cache records are garbage", OK, "building with", _cache_records("garbage")),
    # dkms-rustc status over DKMS's tree and /lib/modules.
    Case(
        "status: a module's dkms.conf is a FIFO", OK, "1 of 1 kernels can build", _status("dkms.conf a FIFO")
    ),
    Case("status: the DKMS tree is a file", OK, "0 Rust DKMS modules", _status("dkms tree a file")),
    Case(
        "status: build links that loop or are FIFOs",
        REFUSED,
        "kernels can build",
        _status("build links loop"),
    ),
    Case("status: module names with terminal escapes", OK, "he\\x1b[2Jllo", _status("names with escapes")),
    # pre-build and the build directory.
    Case(
        "pre-build into a missing dir",
        ERROR,
        "cannot hand the decision to make",
        _pre_build(lambda s: _replace(s.build, "dangling")),
    ),
    Case(
        "pre-build into a file",
        ERROR,
        "cannot hand the decision to make",
        _pre_build(lambda s: _replace(s.build, "garbage")),
    ),
    Case(
        "pre-build, args file a directory",
        ERROR,
        "Is a directory",
        _pre_build(lambda s: _replace(s.build / ARGS_FILE, "directory")),
    ),
    Case(
        "pre-build, args file a FIFO",
        OK,
        "building with",
        _pre_build(lambda s: _replace(s.build / ARGS_FILE, "fifo")),
    ),
    Case("pre-build, compiler path with a space", REFUSED, "cannot carry", _pre_build(_with_spaces)),
    Case("pre-build, broken tree", ERROR, "does not exist", _pre_build(_kernel_dir("dangling"))),
    # Crafted inputs that once ended in an internal error (issue 11).
    Case(
        "metadata names a nightly of 2026-02-30",
        REFUSED,
        "no installed rustc matches",
        _all_metadata_name("rustc 1.97.0-nightly (e50aa6fba 2026-02-30)"),
    ),
    Case(
        "metadata names a nightly of 2026-02-30, auto_install on",
        REFUSED,
        "auto_install: not attempted",
        _auto_install(_all_metadata_name("rustc 1.97.0-nightly (e50aa6fba 2026-02-30)")),
    ),
    Case(
        "min-tool-version.sh with 5000-digit versions",
        OK,
        "building with",
        _write(
            "scripts/min-tool-version.sh",
            (
                "case x in\nrustc)\n\techo 1."
                + "9" * 5000
                + ".0\n\t;;\nbindgen)\n\techo "
                + "7" * 5000
                + ".1.0\n\t;;\nesac\n"
            ).encode(),
        ),
    ),
    Case(
        "CONFIG_RUSTC_LLVM_VERSION=0xfff...",
        OK,
        "building with",
        _replace_in(
            "include/config/auto.conf",
            "CONFIG_RUSTC_LLVM_VERSION=220102",
            "CONFIG_RUSTC_LLVM_VERSION=0x" + "f" * 5000,
        ),
    ),
    Case(
        "CONFIG_RUSTC_VERSION of 5000 digits",
        OK,
        "building with",
        _replace_in(
            "include/config/auto.conf", "CONFIG_RUSTC_VERSION=109500", "CONFIG_RUSTC_VERSION=" + "9" * 5000
        ),
    ),
    Case("--kernel-dir with a 300-byte name", ERROR, "File name too long", _long_component("--kernel-dir")),
    Case("--search with a 300-byte name", OK, "building with", _long_component("--search")),
    Case(
        "--build-dir with a 300-byte name",
        ERROR,
        "cannot hand the decision to make",
        _long_component("--build-dir"),
    ),
    Case("--config with a 300-byte name", ERROR, "File name too long", _long_component("--config")),
    Case(
        "-k with 300 characters",
        ERROR,
        "is not a kernel release",
        _argv("check", "-k", LONG, "--config", "{conf}"),
    ),
    Case("status --dkms-tree /proc", OK, "1 of 1 kernels can build", _status_over("/proc")),
    Case(
        "status --dkms-tree /proc/self/fd/0", OK, "1 of 1 kernels can build", _status_over("/proc/self/fd/0")
    ),
    Case(
        "pre-build into a DKMS version with ~", REFUSED, "stopped before compiling", _dkms_version_with_tilde
    ),
    Case(
        "pre-build, two matching compilers, the first under a path with a space",
        OK,
        "building with",
        _two_matching_the_first_with_a_space,
    ),
    Case("pre-build, a bindgen named with a newline", OK, "building with", _bindgen_named_with_a_newline),
    Case(
        "config file with a vertical tab",
        ERROR,
        "control characters",
        _config_text(b"policy = warn\x0bsearch = /tmp/evil\n"),
    ),
    Case(
        "config file with a form feed",
        ERROR,
        "control characters",
        _config_text(b"search_defaults = no\x0cpolicy = warn\n"),
    ),
    Case(
        "config: a bad value in another module's section",
        ERROR,
        "policy must be one of",
        _config_text(b"[module other]\npolicy = sometimes\n"),
    ),
    Case(
        "config --module with a terminal escape",
        ERROR,
        "is not a DKMS module name",
        _config_argv("--module", "x\x1b]0;T\x07"),
    ),
    Case(
        "config: a bad value in another module's section, as config shows it",
        ERROR,
        "policy must be one of",
        _both(_config_text(b"[module other]\npolicy = sometimes\n"), _config_argv()),
    ),
]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)


def test_the_corpus_is_large() -> None:
    assert len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = _setup(tmp_path)
    case.breaks(setup)
    for name, value in setup.env.items():
        monkeypatch.setenv(name, value)
    code: int | None = None
    with _time_limit(TIME_LIMIT):
        try:
            code = main(setup.arguments())
        except SystemExit as exit_:  # argparse
            code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    output = out + err
    assert code == case.expected, output
    assert case.text in output, output
    assert "Traceback" not in output and "internal error" not in output, output
    if code != USAGE and setup.arguments()[0] not in ("status", "config"):  # tables on stdout
        assert output.startswith("dkms-rustc: "), output
        assert all(line.startswith("dkms-rustc: ") for line in output.splitlines()), output
    assert "\x1b" not in output  # nothing a terminal would interpret


@pytest.mark.parametrize(
    "name",
    ["config is a FIFO", "every .rmeta a FIFO", "--config is a FIFO", "pre-build, args file a directory"],
)
def test_bad_input_as_a_process(name: str, tmp_path: Path) -> None:
    """A few cases as real processes, with the exit status the shell sees."""
    case = next(case for case in CASES if case.name == name)
    setup = _setup(tmp_path)
    case.breaks(setup)
    result = subprocess.run(
        planted.hook_argv(*setup.arguments()),
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT * 2,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
    )
    assert result.returncode == case.expected
    assert case.text in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_json_output_for_bad_input_is_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup = _setup(tmp_path)
    _both_configs("fifo")(setup)
    with _time_limit(TIME_LIMIT):
        code = main(["check", "--json", *setup.arguments()[1:]])
    data = json.loads(capsys.readouterr().out)
    assert (code, data["verdict"], data["exit_code"]) == (ERROR, "error", ERROR)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_env_refusal_never_lets_make_expand_what_it_quotes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``dkms-rustc env`` output is sourced by a shell and then read by make: a $kernelver
    holding make syntax must reach make as text, never as a $(shell ...) call."""
    setup = _setup(tmp_path)
    marker = tmp_path / "EXPANDED"
    monkeypatch.setenv("kernelver", f"6.1 $(shell touch {marker})")
    with _time_limit(TIME_LIMIT):
        code = main(["env", "--config", str(setup.conf), "--module", "m"])
    out, err = capsys.readouterr()
    assert code == ERROR and "is not a kernel release" in err
    makefile = tmp_path / "Makefile"
    makefile.write_text("all:\n\t@echo compiling with $(RUSTC)\n")
    result = subprocess.run(
        ["sh", "-c", f"{out}\nexec make -s -f {makefile}"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode != 0
    assert "dkms-rustc: " in result.stderr and "compiling with" not in result.stdout
    assert not marker.exists()
