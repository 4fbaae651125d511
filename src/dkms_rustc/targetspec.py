"""Is the kernel's ``scripts/target.json`` safe to hand to rustc?

x86 kernels describe their Rust target in a JSON target specification that rustc reads with
``--target=scripts/target.json``. rustc honours keys there that load or run code: a
``default-codegen-backend`` naming a shared object is loaded into the compiler at start-up,
``linker`` names a program, ``link-script``, ``*-link-objects`` and ``*-link-args`` name
files and arguments, ``llvm-args`` reach LLVM's option parser. So only the keys the kernel's
own generator (``scripts/generate_rust_target.rs``, Linux 6.1 to 7.2) writes are accepted,
each with the kind of value it writes, and nothing else: anything unknown means no test
compile. The test compile then gets a private copy of exactly the bytes that were checked
(rustc compares a JSON target's contents with what the kernel's metadata recorded, so the
copy is byte for byte, under the same file name).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from dkms_rustc.fileio import read_prefix

MAX_SPEC = 64 * 1024  # the generated file is under 1 KiB
_WORD_RE = re.compile(r"[A-Za-z0-9_.,:+\-\x01 ]{0,512}")  # no '/', no '$': never a path
_LINK_ARG_RE = re.compile(r"-Wl,[A-Za-z0-9,=._-]{1,64}|-m(?:32|64)")

_STRINGS = frozenset(
    {
        "arch", "cpu", "code-model", "data-layout", "env", "features", "frame-pointer",
        "linker-flavor", "llvm-abiname", "llvm-target", "os", "panic-strategy", "relocation-model",
        "relro-level", "rustc-abi", "target-endian", "target-mcount", "vendor",
    }
)  # fmt: skip
_BOOLEANS = frozenset(
    {
        "crt-static-respected", "disable-redzone", "dynamic-linking", "emit-debug-gdb-scripts",
        "executables", "function-sections", "has-elf-tls", "has-rpath", "has-thread-local",
        "linker-is-gnu", "needs-plt", "plt-by-default", "position-independent-executables",
        "static-position-independent-executables",
    }
)  # fmt: skip
_NUMBERS = frozenset({"max-atomic-width", "min-atomic-width", "target-c-int-width", "target-pointer-width"})
_SANITIZERS = frozenset(
    {"address", "cfi", "dataflow", "hwaddress", "kcfi", "kernel-address", "leak", "memory", "memtag",
     "safestack", "shadow-call-stack", "thread"}
)  # fmt: skip
# Keys that name a file, a program, or arguments for one: the module build, which reads the
# same file, would load or run what they name as root.
CODE_KEYS = frozenset(
    {
        "default-codegen-backend", "linker", "link-script", "pre-link-objects", "post-link-objects",
        "pre-link-objects-fallback", "post-link-objects-fallback", "late-link-args",
        "late-link-args-dynamic", "late-link-args-static", "post-link-args", "link-env",
        "link-env-remove", "asm-args", "llvm-args", "llvm-mcount-intrinsic", "bitcode-llvm-cmdline",
    }
)  # fmt: skip


@dataclass(frozen=True)
class TargetSpec:
    """The file as read, and why it must not reach rustc (None: it may)."""

    path: Path
    data: bytes | None
    problem: str | None = None
    loads_code: bool = False  # a key that names code: the module build itself would load it


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(f"the key {key!r} appears twice")
        seen[key] = value
    return seen


def _word(value: object) -> bool:
    return isinstance(value, str) and _WORD_RE.fullmatch(value) is not None


def _value_problem(key: str, value: object) -> str | None:
    if key in _STRINGS:
        return None if _word(value) else "is not a plain word"
    if key in _BOOLEANS:
        return None if isinstance(value, bool) else "is not true or false"
    if key in _NUMBERS:
        ok = (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1024) or (
            isinstance(value, str) and value.isdigit() and len(value) <= 4
        )
        return None if ok else "is not a small number"
    if key == "target-family":
        values = value if isinstance(value, list) else [value]
        return None if len(values) <= 8 and all(_word(item) for item in values) else "is not a plain word"
    if key == "supported-sanitizers":
        ok = isinstance(value, list) and len(value) <= 16 and all(item in _SANITIZERS for item in value)
        return None if ok else "names something that is not a sanitizer"
    if key == "stack-probes":
        if not isinstance(value, dict) or not _word(value.get("kind")):
            return 'is not {"kind": ...}'
        extra = set(value) - {"kind", "min-llvm-version-for-inline"}
        version = value.get("min-llvm-version-for-inline", [0, 0, 0])
        numbers = (
            isinstance(version, list)
            and len(version) == 3
            and all(
                isinstance(part, int) and not isinstance(part, bool) and 0 <= part < 1000 for part in version
            )
        )
        return None if not extra and numbers else "holds more than the kernel writes"
    if key == "pre-link-args":
        # 6.1's generator: {"gcc": ["-Wl,--as-needed", "-Wl,-z,noexecstack", "-m64"]}. A module
        # build never links through rustc, but only these plain flags pass.
        ok = (
            isinstance(value, dict)
            and len(value) <= 4
            and all(
                _word(flavor)
                and isinstance(arguments, list)
                and len(arguments) <= 16
                and all(
                    isinstance(argument, str) and _LINK_ARG_RE.fullmatch(argument) for argument in arguments
                )
                for flavor, arguments in value.items()
            )
        )
        return None if ok else "holds linker arguments the kernel's generator does not write"
    return "is not a key the kernel's target generator writes"


def check(path: Path) -> TargetSpec:
    """Read ``path`` (a regular file, bounded) and judge every key."""
    try:
        data = read_prefix(path, MAX_SPEC + 1)
    except OSError as error:
        return TargetSpec(path, None, f"{path} cannot be read ({error.strerror})")
    if len(data) > MAX_SPEC:
        return TargetSpec(path, None, f"{path} is larger than {MAX_SPEC // 1024} KiB")
    try:
        spec = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        detail = str(error) if isinstance(error, _Duplicate) else "not valid JSON"
        return TargetSpec(path, None, f"{path} is not a target specification rustc would read ({detail})")
    if not isinstance(spec, dict):
        return TargetSpec(path, None, f"{path} is not a JSON object")
    code = sorted(key for key in spec if key in CODE_KEYS)
    if code:
        return TargetSpec(
            path,
            data,
            f"{path} has {', '.join(repr(key[:64]) for key in code)}, which names code or arguments rustc "
            "would load or run",
            loads_code=True,
        )
    for key in sorted(spec):
        problem = _value_problem(key, spec[key])
        if problem:
            return TargetSpec(path, data, f"{path}: {key[:64]!r} {problem}")
    for required in ("arch", "data-layout", "llvm-target", "target-pointer-width"):
        if required not in spec:
            return TargetSpec(path, data, f"{path} lacks {required!r}, which every target specification has")
    return TargetSpec(path, data)
