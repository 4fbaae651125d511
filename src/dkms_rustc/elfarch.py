"""Which machine an ELF file was built for, from its first 20 bytes (no pyelftools needed).

A kernel's proc macros (``rust/libmacros.so`` and the like) are shared objects the compiler
loads into itself while it compiles a module: they run only on the machine they were built
for. Headers from an arm64 machine installed on an x86_64 one (to build modules for a board,
say) hold arm64 proc macros no compiler here can load, which is not the compiler's fault.
"""

from __future__ import annotations

import os
from pathlib import Path

from dkms_rustc.fileio import read_prefix

# e_machine values (the ELF specification's registry) of the architectures Linux builds Rust for.
_NAMES = {
    3: "i386",
    8: "mips",
    20: "powerpc",
    21: "powerpc64",
    22: "s390",
    40: "arm",
    62: "x86_64",
    183: "aarch64",
    243: "riscv",
    258: "loongarch",
}
# os.uname().machine -> e_machine
_HOSTS = {
    "x86_64": 62,
    "amd64": 62,
    "i386": 3,
    "i686": 3,
    "aarch64": 183,
    "arm64": 183,
    "armv7l": 40,
    "armv6l": 40,
    "riscv64": 243,
    "ppc64le": 21,
    "ppc64": 21,
    "s390x": 22,
    "loongarch64": 258,
    "mips64": 8,
}


def elf_machine(path: Path) -> int | None:
    """The file's e_machine, or None when it is not a readable ELF file."""
    try:
        header = read_prefix(path, 20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != b"\x7fELF" or header[5] not in (1, 2):
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def host_machine() -> int | None:
    return _HOSTS.get(os.uname().machine)


def machine_name(machine: int) -> str:
    return _NAMES.get(machine, f"ELF machine {machine}")


def foreign_objects(paths: list[Path]) -> list[tuple[Path, int]]:
    """The shared objects among ``paths`` built for another machine than this one."""
    host = host_machine()
    if host is None:
        return []  # an architecture this table does not know: nothing is claimed
    found = []
    for path in paths:
        machine = elf_machine(path)
        if machine is not None and machine != host:
            found.append((path, machine))
    return found
