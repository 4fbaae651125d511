# SPDX-License-Identifier: GPL-2.0-or-later
"""scripts/target.json: what the kernel's generator writes passes; anything that could make
rustc load or run something, or that this tool does not know, does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import kerneltree
import planted
from dkms_rustc import targetspec

# Linux 6.1's generator (x86_64), as mainline wrote it.
LINUX_6_1 = {
    "arch": "x86_64",
    "code-model": "kernel",
    "cpu": "x86-64",
    "data-layout": "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-f80:128-n8:16:32:64-S128",
    "disable-redzone": True,
    "emit-debug-gdb-scripts": False,
    "features": "-mmx,-sse,-sse2,-sse3,-ssse3,-sse4.1,-sse4.2,-3dnow,-3dnowa,-avx,-avx2,+soft-float",
    "frame-pointer": "always",
    "llvm-target": "x86_64-elf",
    "max-atomic-width": 64,
    "needs-plt": True,
    "pre-link-args": {"gcc": ["-Wl,--as-needed", "-Wl,-z,noexecstack", "-m64"]},
    "stack-probes": {"kind": "none"},
    "target-c-int-width": "32",
    "target-pointer-width": "64",
    "vendor": "unknown",
    "env": "gnu",
    "function-sections": False,
    "linker-is-gnu": True,
    "os": "none",
    "position-independent-executables": True,
    "relocation-model": "static",
    "linker-flavor": "gcc",
    "panic-strategy": "abort",
    "relro-level": "full",
    "target-endian": "little",
    "target-mcount": "\u0001__gnu_mcount_nc",
    "target-family": "unix",
}


def _check(tmp_path: Path, text: str | bytes) -> targetspec.TargetSpec:
    path = tmp_path / "target.json"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return targetspec.check(path)


@pytest.mark.parametrize("series", ["6.12", "7.2"])
def test_the_real_generated_files_pass(series: str, tmp_path: Path) -> None:
    tree = kerneltree.real_kernel_tree(series)
    if tree is None or not (tree / "scripts" / "target.json").is_file():
        pytest.skip(f"no real Linux {series} tree here (tests/realkernel/build-kernels.sh)")
    path = tree / "scripts" / "target.json"
    spec = targetspec.check(path)
    assert (spec.problem, spec.data) == (None, path.read_bytes())


def test_what_6_1_and_7_2_write_passes(tmp_path: Path) -> None:
    assert _check(tmp_path, planted.X86_TARGET_JSON).problem is None
    assert _check(tmp_path, json.dumps(LINUX_6_1)).problem is None


@pytest.mark.parametrize("key", sorted(targetspec.CODE_KEYS))
def test_every_key_that_names_code_is_refused(key: str, tmp_path: Path) -> None:
    spec = json.loads(planted.X86_TARGET_JSON)
    spec[key] = "/home/user/x.so"
    result = _check(tmp_path, json.dumps(spec))
    assert result.loads_code and result.problem is not None and repr(key) in result.problem


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"some-new-key": True}, "is not a key the kernel's target generator writes"),
        ({"features": "+x,/home/user/lib.so"}, "is not a plain word"),
        ({"features": "$(shell id)"}, "is not a plain word"),
        ({"target-pointer-width": 10**30}, "is not a small number"),
        ({"emit-debug-gdb-scripts": "no"}, "is not true or false"),
        ({"supported-sanitizers": ["kcfi", "/x.so"]}, "is not a sanitizer"),
        ({"stack-probes": {"kind": "call", "path": "/x"}}, "holds more than the kernel writes"),
        ({"pre-link-args": {"gcc": ["-Wl,-plugin=/home/user/x.so"]}}, "linker arguments"),
        ({"pre-link-args": {"gcc": ["-fplugin=x"]}}, "linker arguments"),
    ],
)
def test_anything_else_is_refused(change: dict[str, Any], said: str, tmp_path: Path) -> None:
    spec = {**json.loads(planted.X86_TARGET_JSON), **change}
    result = _check(tmp_path, json.dumps(spec))
    assert result.problem is not None and said in result.problem
    assert not result.loads_code


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (b'{"arch": "x86_64", "arch": "x86_64"}', "appears twice"),
        (b"[" * 100_000 + b"]" * 100_000, "larger than"),
        (b"[" * 30_000 + b"]" * 30_000, "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'"just a string"', "not a JSON object"),
        (b"{}", "lacks 'arch'"),
        (b"", "not valid JSON"),
    ],
)
def test_malformed_files(text: bytes, said: str, tmp_path: Path) -> None:
    result = _check(tmp_path, text)
    assert result.problem is not None and said in result.problem


def test_a_fifo_is_never_waited_on(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "target.json")
    result = targetspec.check(tmp_path / "target.json")
    assert result.problem is not None and "not a regular file" in result.problem
