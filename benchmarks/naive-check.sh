#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The naive check users write today (a baseline for benchmarks/bench.py): does the first
# `rustc` on PATH print what the kernel was configured with? It starts one process and
# reads one file, and it is wrong in the ways FACTS.md describes (rustup's proxy, config
# text instead of the metadata), but it is what the hook's cost is compared with.
#
# Usage: naive-check.sh KERNEL_BUILD_DIR

set -u
kdir=$1
want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$kdir/.config")
have=$(rustc --version)
if [ "$have" != "$want" ]; then
    echo "rustc mismatch: the kernel was configured with '$want', PATH has '$have'" >&2
    exit 1
fi
