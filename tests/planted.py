# SPDX-License-Identifier: GPL-2.0-or-later
"""Fake compilers and tools for the tests of what root may run, and of misbehaving programs.

A fake is a small shell script (behind a real ELF launcher that loads a stand-in
librustc_driver where its files name a compiler, since only a program that loads the driver
is believed to be the compiler its sysroot names). Whenever it runs, it first appends a line to its ``marker``
file, so a test proves it was NEVER run by asserting the marker does not exist. It answers
``-vV`` and ``--version`` with the version it is told to claim (usually exactly the kernel's,
so nothing but the trust rules keeps it from being selected), and any other command line
(the test compile) with success.

``behaviour`` makes it misbehave instead: ``hang``, ``crash`` (SIGSEGV), ``garbage``,
``non-utf8``, ``flood`` (megabytes of output), ``empty``, ``exit1``, ``fork-hang`` (a
child keeps the pipes open after the parent exits); ``compile-hang`` and ``compile-crash``
answer the version questions but misbehave in the test compile.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

HOST = "x86_64-unknown-linux-gnu"
RMETA_MAGIC = b"rust\0\0\0"
USER_UID = 1000  # an ordinary user; no passwd entry is needed to own files
BEHAVIOURS = (
    "ok",
    "hang",
    "crash",
    "garbage",
    "non-utf8",
    "flood",
    "empty",
    "exit1",
    "fork-hang",
    "compile-hang",
    "compile-crash",
)

_MISBEHAVIOUR = {
    "ok": "",
    "hang": "exec sleep 60\n",
    "crash": "kill -SEGV $$\n",
    "garbage": "echo 'Segmentation fault (core dumped) -- not a version'; exit 0\n",
    "non-utf8": "printf 'rustc \\377\\376\\375 (\\300\\300)\\n'; exit 0\n",
    "flood": "yes 'rustc 1.95.0 (59807616e 2026-04-14) padding padding padding'; exit 0\n",
    "empty": "exit 0\n",
    "exit1": "echo 'error: something broke' >&2; exit 1\n",
    "fork-hang": "(exec sleep 60) & echo 'rustc 1.0.0'; exit 0\n",
    "compile-hang": "",
    "compile-crash": "",
}
_ON_COMPILE = {"compile-hang": "exec sleep 60", "compile-crash": "kill -SEGV $$"}


def verbose_version(version_text: str, release: str | None = None) -> str:
    """What ``rustc -vV`` prints for ``version_text``."""
    release = release or version_text.split()[1]
    return (
        f"{version_text}\nbinary: rustc\ncommit-hash: unknown\ncommit-date: unknown\n"
        f"host: {HOST}\nrelease: {release}\nLLVM version: 22.1.2\n"
    )


def fake_tool(path: Path, version_text: str, marker: Path, behaviour: str = "ok") -> Path:
    """Write the fake program at ``path`` (executable, owned by root until a test changes it)."""
    if behaviour not in BEHAVIOURS:
        raise ValueError(behaviour)
    kind = "bindgen" if version_text.startswith("bindgen") else "rustc"
    answer = verbose_version(version_text) if kind == "rustc" else version_text + "\n"
    # A test compile (rustc -o <file>) must leave metadata naming the compiler that wrote it:
    # an exit status of 0 alone proves nothing (dkms_rustc.proof checks the file).
    header = "".join(f"\\{byte:03o}" for byte in rmeta_header(10, version_text) + bytes(8))
    compile_ok = (
        'out=; prev=; for arg in "$@"; do [ "$prev" = -o ] && out=$arg; prev=$arg; done; '
        f'[ -z "$out" ] || printf \'{header}\' > "$out"; exit 0'
    )
    script = (
        "#!/bin/sh\n"
        f'echo "ran: $0 $*" >> {shlex.quote(str(marker))}\n' + _MISBEHAVIOUR[behaviour] + 'case "$1" in\n'
        f"  -vV|--version) printf '%s' {shlex.quote(answer)} ;;\n"
        f"  *) {_ON_COMPILE.get(behaviour, compile_ok if kind == 'rustc' else 'exit 0')} ;;\n"
        "esac\n"
        "exit 0\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    path.chmod(0o755)
    return path


def fake_toolchain(
    root: Path,
    version_text: str,
    marker: Path,
    *,
    behaviour: str = "ok",
    libcore_from: Path | None = None,
    bindgen_text: str | None = None,
) -> Path:
    """A toolchain directory ``root`` with ``bin/rustc`` (and ``bin/bindgen``).

    ``libcore_from``: a real ``libcore-*.rmeta`` copied into ``lib/rustlib/<host>/lib``, so the
    toolchain's files name that compiler and it could be selected without being run; without
    it, learning the version means running the fake.
    """
    if libcore_from is None:
        fake_tool(root / "bin" / "rustc", version_text, marker, behaviour)
    else:
        # Believed from its files only if it is a rustc (loads librustc_driver): a real ELF
        # launcher that does, and hands its command line to the script.
        fake_tool(root / "lib" / "fake" / "rustc.sh", version_text, marker, behaviour)
        _launcher(root)
        lib = root / "lib" / "rustlib" / HOST / "lib"
        lib.mkdir(parents=True, exist_ok=True)
        shutil.copy2(libcore_from, lib / libcore_from.name)
    if bindgen_text is not None:
        fake_tool(root / "bin" / "bindgen", bindgen_text, marker, behaviour)
    return root


_LAUNCHER_C = """
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
extern int dkms_rustc_driver(void);
int main(int argc, char **argv) {
    char self[PATH_MAX], script[PATH_MAX + 32];
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    if (length <= 0) return 127;
    self[length] = 0;
    *strrchr(self, '/') = 0;
    snprintf(script, sizeof script, "%s/../lib/fake/rustc.sh", self);
    char *args[argc + 2];
    args[0] = "/bin/sh";
    args[1] = script;
    for (int i = 1; i <= argc; i++) args[i + 1] = argv[i];
    execv("/bin/sh", args);
    return 127 + dkms_rustc_driver();
}
"""
_built_launcher: list[Path] = []  # built once per test session, then copied


def _launcher(root: Path) -> None:
    """``root/bin/rustc``: runs ``root/lib/fake/rustc.sh`` and needs
    ``root/lib/librustc_driver-0123456789abcdef.so`` (run path $ORIGIN/../lib), as rustc does."""
    if not _built_launcher:
        build = Path(tempfile.mkdtemp(prefix="dkms-rustc-launcher-"))
        atexit.register(shutil.rmtree, build, True)
        driver = build / "lib" / "librustc_driver-0123456789abcdef.so"
        _gcc(driver, _DRIVER_C, {}, "-shared", "-fPIC", f"-Wl,-soname,{driver.name}")
        _gcc(build / "bin" / "rustc", _LAUNCHER_C, {}, f"-L{driver.parent}", f"-l:{driver.name}",
             "-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags")  # fmt: skip
        _built_launcher.append(build)
    for relative in ("bin/rustc", "lib/librustc_driver-0123456789abcdef.so"):
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(_built_launcher[0] / relative, target)


@contextlib.contextmanager
def public_base() -> Iterator[Path]:
    """A fresh 0755 directory in /tmp, removed afterwards.

    As root the tool reads a file others could have placed only when every user could read
    it anyway (fileio's disclosure rule), as in a Debian /home/<user>. pytest's tmp_path lies
    under /tmp/pytest-of-root, which every new pytest session on the machine makes 0700
    again, so tests of a user's planted files use this instead."""
    path = Path(tempfile.mkdtemp(prefix="dkms-rustc-test-", dir="/tmp"))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- real ELF programs and libraries (gcc), for what the dynamic loader maps ----------------

_PAYLOAD_C = """
#include <stdio.h>
__attribute__((constructor)) static void dkms_rustc_test_payload(void) {
    FILE *marker = fopen(MARKER_PATH, "a");
    if (marker) { fputs(LIBRARY_NAME " was loaded\\n", marker); fclose(marker); }
}
int dkms_rustc_test_payload_symbol(void) { return 0; }
"""
_DRIVER_C = """
int dkms_rustc_driver(void) { return 0; }
"""
_PROGRAM_C = """
#include <stdio.h>
#include <string.h>
extern int dkms_rustc_driver(void);
int main(int argc, char **argv) {
    FILE *marker = fopen(MARKER_PATH, "a");
    if (marker) {
        fprintf(marker, "ran: %s", argv[0]);
        for (int i = 1; i < argc; i++) fprintf(marker, " %s", argv[i]);
        fputc('\\n', marker);
        fclose(marker);
    }
    if (argc > 1 && (!strcmp(argv[1], "-vV") || !strcmp(argv[1], "--version"))) fputs(ANSWER, stdout);
    for (int i = 1; i + 1 < argc; i++) {  /* a test compile: metadata naming this compiler */
        if (strcmp(argv[i], "-o")) continue;
        FILE *out = fopen(argv[i + 1], "wb");
        for (const char *hex = HEADER_HEX; out && hex[0] && hex[1]; hex += 2) {
            unsigned byte;
            sscanf(hex, "%2x", &byte);
            fputc((int)byte, out);
        }
        if (out) fclose(out);
    }
    return dkms_rustc_driver();
}
"""


def _c_string(text: str) -> str:
    import json

    return json.dumps(text)  # a valid C string literal for what these tests write


def _gcc(output: Path, source: str, defines: dict[str, str], *flags: str) -> None:
    import subprocess
    import tempfile

    gcc = shutil.which("gcc")
    if gcc is None:
        import pytest

        pytest.skip("gcc is not installed")
    header = "".join(f"#define {name} {_c_string(value)}\n" for name, value in defines.items())
    with tempfile.TemporaryDirectory() as tmp:
        c_file = Path(tmp) / "source.c"
        c_file.write_text(header + source)
        output.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([gcc, "-O0", "-o", str(output), str(c_file), *flags], check=True, capture_output=True)


def payload_library(path: Path, marker: Path, soname: str | None = None) -> Path:
    """A shared object whose constructor appends ``<name> was loaded`` to ``marker``."""
    name = soname or path.name
    _gcc(
        path,
        _PAYLOAD_C,
        {"MARKER_PATH": str(marker), "LIBRARY_NAME": name},
        "-shared",
        "-fPIC",
        f"-Wl,-soname,{name}",
    )
    return path


def elf_toolchain(
    root: Path,
    version_text: str,
    marker: Path,
    *,
    needs: str = "librt.so.1",
    runpath: tuple[str, ...] = ("$ORIGIN/../lib",),
    new_dtags: bool = True,
    libcore_from: Path | None = None,
) -> Path:
    """A toolchain laid out like rustup's, made of real ELF files: ``bin/rustc`` (a program that
    appends ``ran: ...`` to ``marker`` and answers ``-vV`` with ``version_text``, run path
    ``runpath``) needs ``lib/librustc_driver-0123456789abcdef.so`` (run path $ORIGIN/../lib),
    which needs ``lib/<needs>``: a payload whose constructor appends ``<needs> was loaded``."""
    lib = root / "lib"
    payload_library(lib / needs, marker)
    dtags = "-Wl,--enable-new-dtags" if new_dtags else "-Wl,--disable-new-dtags"
    driver = lib / "librustc_driver-0123456789abcdef.so"
    _gcc(
        driver, _DRIVER_C, {}, "-shared", "-fPIC", f"-Wl,-soname,{driver.name}", "-Wl,--no-as-needed",
        f"-L{lib}", f"-l:{needs}", "-Wl,-rpath,$ORIGIN/../lib", dtags,
    )  # fmt: skip
    rpath = [f"-Wl,-rpath,{entry}" for entry in runpath]
    _gcc(
        root / "bin" / "rustc",
        _PROGRAM_C,
        {
            "MARKER_PATH": str(marker),
            "ANSWER": verbose_version(version_text),
            "HEADER_HEX": (rmeta_header(10, version_text) + bytes(8)).hex(),
        },
        "-Wl,--no-as-needed", f"-L{lib}", f"-l:{driver.name}", *rpath, dtags,
    )  # fmt: skip
    if libcore_from is not None:
        target = lib / "rustlib" / HOST / "lib"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(libcore_from, target / libcore_from.name)
    return root


def _own(path: str, uid: int, gid: int) -> None:
    st = os.lstat(path)
    if os.path.isfile(path) and not os.path.islink(path) and st.st_nlink > 1:
        # A hard link (kerneltree links a toolchain's libcore into rust/): chowning it would
        # chown the toolchain's own file. Give the tree its own copy first.
        copy = path + ".own-copy"
        shutil.copy2(path, copy)
        os.replace(copy, path)
    os.chown(path, uid, gid, follow_symlinks=False)


def chown_tree(path: Path, uid: int = USER_UID, gid: int = USER_UID) -> None:
    """``chown -R uid:gid path`` without following symbolic links, and without touching what
    a hard link shares with a file outside (each such file gets its own copy first)."""
    _own(str(path), uid, gid)
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            for name in [*dirnames, *filenames]:
                _own(os.path.join(dirpath, name), uid, gid)


def posix_acl_granting_write(uid: int) -> bytes:
    """The ``system.posix_acl_access`` value of ``u::rwx,u:<uid>:rwx,g::r-x,m::rwx,o::r-x``."""
    entries = [(0x01, 7, 0xFFFFFFFF), (0x02, 7, uid), (0x04, 5, 0xFFFFFFFF), (0x10, 7, 0xFFFFFFFF)]
    entries.append((0x20, 5, 0xFFFFFFFF))
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)


def hook_argv(*args: str, system_config: Path | None = None) -> list[str]:
    """``python -m dkms_rustc ARGS`` as a real process, but reading ``system_config`` (default:
    none) instead of /etc/dkms-rustc.conf, which other things on a shared machine may create."""
    import sys

    code = (
        "import runpy, sys; from pathlib import Path; import dkms_rustc.config as c; "
        f"c.SYSTEM_CONFIG = Path({str(system_config or '/nonexistent/dkms-rustc.conf')!r}); "
        "sys.argv = ['dkms-rustc', *sys.argv[1:]]; runpy.run_module('dkms_rustc', run_name='__main__')"
    )
    return [sys.executable, "-c", code, *args]


# -- synthetic files: crate metadata headers and ELF files -----------------------------------


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def rmeta_header(fmt: int, version: str, position: bytes = bytes(8)) -> bytes:
    """The start of a ``.rmeta`` file of metadata format ``fmt`` naming ``version``."""
    raw = version.encode()
    width = 8 if fmt >= 9 else 4
    return (
        RMETA_MAGIC + bytes([fmt]) + position[:width].ljust(width, b"\0") + _leb128(len(raw)) + raw + b"\xc1"
    )


def build_elf(sections: list[tuple[str, int, bytes]], *, wide: bool = True, little: bool = True) -> bytes:
    """A minimal ELF file holding ``(name, sh_type, data)`` sections and a name table."""
    order = "<" if little else ">"
    names = b"\0"
    name_offsets = []
    for name, _, _ in sections:
        name_offsets.append(len(names))
        names += name.encode() + b"\0"
    names_offset = len(names)
    names += b".shstrtab\0"
    header_size = 64 if wide else 52
    contents = [data for _, _, data in sections] + [names]
    offsets = []
    position = header_size
    for content in contents:
        offsets.append(position)
        position += len(content)
    table = position
    shdr = order + "IIQQQQIIQQ" if wide else order + "IIIIIIIIII"
    entries = [struct.pack(shdr, *([0] * 10))]
    kinds = [kind for _, kind, _ in sections] + [3]
    for name_offset, kind, offset, content in zip([*name_offsets, names_offset], kinds, offsets, contents):
        entries.append(struct.pack(shdr, name_offset, kind, 0, 0, offset, len(content), 0, 0, 1, 0))
    ident = b"\x7fELF" + bytes([2 if wide else 1, 1 if little else 2, 1]) + bytes(9)
    if wide:
        rest = struct.pack(
            order + "HHIQQQIHHHHHH", 3, 62, 1, 0, 0, table, 0, 64, 56, 0, 64, len(entries), len(entries) - 1
        )
    else:
        rest = struct.pack(
            order + "HHIIIIIHHHHHH", 3, 3, 1, 0, 0, table, 0, 52, 32, 0, 40, len(entries), len(entries) - 1
        )
    return ident + rest + b"".join(contents) + b"".join(entries)


def rustc_section(version: str) -> bytes:
    """A proc macro's ``.rustc`` section naming ``version``."""
    blob = rmeta_header(10, version, bytes(8))
    return RMETA_MAGIC + b"\x0a" + struct.pack("<Q", len(blob)) + blob


SYNTHETIC_VERSION = "rustc 1.95.0 (59807616e 2026-04-14)"
# What Linux 7.2's scripts/generate_rust_target.rs writes for x86_64 (from a real build).
X86_TARGET_JSON = """{
    "arch": "x86_64",
    "rustc-abi": "x86-softfloat",
    "data-layout": "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128",
    "features": "-mmx,+soft-float",
    "llvm-target": "x86_64-linux-gnu",
    "supported-sanitizers": ["kcfi","kernel-address"],
    "target-pointer-width": 64,
    "emit-debug-gdb-scripts": false,
    "frame-pointer": "may-omit",
    "stack-probes": {"kind": "none"}
}
"""


def synthetic_kernel_tree(dest: Path, version_text: str = SYNTHETIC_VERSION) -> Path:
    """A kbuild-style tree made without any compiler: config files, ``rust/*.rmeta`` headers
    and a ``libmacros.so`` whose ``.rustc`` section name ``version_text``. Only the files this
    tool reads are real; a fake compiler (fake_toolchain) "passes" its test compile."""
    config = {
        "CONFIG_RUST": "y",
        "CONFIG_RUSTC_VERSION_TEXT": version_text,
        "CONFIG_BINDGEN_VERSION_TEXT": "bindgen 0.72.1",
        "CONFIG_RUSTC_VERSION": "109500",
        "CONFIG_RUSTC_LLVM_VERSION": "220102",
    }
    files = {
        "Makefile": "# stand-in kernel Makefile\n",
        ".config": "".join(
            f'{key}="{value}"\n' if not value.isdigit() and value != "y" else f"{key}={value}\n"
            for key, value in config.items()
        ),
        "include/config/auto.conf": "".join(f"{key}={value}\n" for key, value in config.items()),
        "include/config/kernel.release": "7.2.0-synthetic\n",
        "scripts/Makefile.build": "rust_flags = --extern kernel --extern pin_init\n",
        "scripts/min-tool-version.sh": (
            'case "$1" in\nrustc)\n\techo 1.85.0\n\t;;\nbindgen)\n\techo 0.71.1\n\t;;\nesac\n'
        ),
        "scripts/target.json": X86_TARGET_JSON,
    }
    for relative, content in files.items():
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    rust = dest / "rust"
    rust.mkdir(parents=True, exist_ok=True)
    for crate in ("core", "compiler_builtins", "kernel", "pin_init"):
        (rust / f"lib{crate}.rmeta").write_bytes(rmeta_header(10, version_text) + bytes(64))
    (rust / "libmacros.so").write_bytes(build_elf([(".rustc", 1, rustc_section(version_text))]))
    return dest


def python_path_payload(directory: Path, marker: Path) -> dict[str, str]:
    """What a user could set before ``sudo -E dkms ...``: PYTHONPATH naming a directory with
    its own ``dkms_rustc`` package and ``sitecustomize``/``usercustomize`` modules, each of
    which writes ``marker`` when imported. Returns the environment variables to add."""
    code = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    (directory / "dkms_rustc").mkdir(parents=True, exist_ok=True)
    (directory / "dkms_rustc" / "__init__.py").write_text(code)
    (directory / "dkms_rustc" / "cli.py").write_text(code + "def main(): return 0\n")
    for name in ("sitecustomize", "usercustomize"):
        (directory / f"{name}.py").write_text(code)
    return {"PYTHONPATH": str(directory), "PYTHONSTARTUP": str(directory / "sitecustomize.py")}
