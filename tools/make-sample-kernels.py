#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Regenerate examples/kernels/: small sample kernel build trees for the README's quick start.

Each tree is made by tests/kerneltree.py from a real compiler on this machine, then shrunk
so it can live in git: every rust/*.rmeta keeps only its first KiB (the header that names the
compiler, all dkms-rustc reads from it) and libmacros.so keeps only its .rustc section
(objcopy --only-section), and the files dkms-rustc never reads (the stand-in Makefile,
Module.symvers, include/generated/ and include/linux/) are left out. They are enough to run
`dkms-rustc check`, not to compile against (the quick start's configuration turns the test
compile off).

Usage: tools/make-sample-kernels.py [OUTPUT_DIR]   (default: examples/kernels)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import kerneltree  # noqa: E402

SAMPLES = (
    # (directory, toolchain name, variant, kernelrelease)
    ("7.2.0-rustup-stable", "stable", "rust", "7.2.0-sample-stable"),
    ("7.2.0-debian-rustc", "debian", "rust", "7.2.0-sample-debian"),
    ("7.2.0-headers-without-rust-metadata", "stable", "no-metadata", "7.2.0-sample-nometa"),
    ("7.2.0-no-rust", "stable", "no-rust", "7.2.0-sample-norust"),
)


def _shrink(rust_dir: Path) -> None:
    for path in sorted(rust_dir.iterdir()):
        if path.suffix == ".rmeta":
            head = path.read_bytes()[:1024]
            path.unlink()  # may be a hard link into the toolchain: never write through it
            path.write_bytes(head)
        elif path.suffix == ".so":
            small = path.with_suffix(".small")
            subprocess.run(["objcopy", "--only-section=.rustc", str(path), str(small)], check=True)
            path.unlink()
            small.rename(path)


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "examples" / "kernels"
    toolchains = kerneltree.find_real_toolchains()
    for directory, name, variant, release in SAMPLES:
        if name not in toolchains:
            print(f"skipping {directory}: no {name} rustc here", file=sys.stderr)
            continue
        dest = out / directory
        if dest.exists():
            shutil.rmtree(dest)
        kerneltree.make_kernel_tree(dest, toolchains[name], variant=variant, kernelrelease=release)
        if (dest / "rust").is_dir():
            _shrink(dest / "rust")
        for unread in ("Makefile", "Module.symvers"):
            (dest / unread).unlink(missing_ok=True)
        for unread_dir in ("generated", "linux"):
            shutil.rmtree(dest / "include" / unread_dir, ignore_errors=True)
        print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
