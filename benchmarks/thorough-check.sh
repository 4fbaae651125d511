#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The thorough check a careful Rust DKMS module runs today before building (a baseline for
# benchmarks/bench.py), the way bcachefs's DKMS script does it:
#   1. the kernel's own scripts/rust_is_available.sh (what `make rustavailable` runs):
#      rustc and bindgen versions against the minimums, libclang through bindgen, the
#      C compiler, the Rust standard library sources;
#   2. a numeric version comparison of `rustc --version` with CONFIG_RUSTC_VERSION;
#   3. a probe compile: a no_std crate loading the kernel's `kernel` crate from rust/.
#
# Usage: thorough-check.sh KERNEL_BUILD_DIR RUSTC BINDGEN [RUST_LIB_SRC]

set -eu
kdir=$1
rustc=$2
bindgen=$3
lib_src=${4:-}

# 1. What kbuild runs for `make rustavailable` (it exports these to the script).
RUSTC=$rustc BINDGEN=$bindgen CC=${CC:-gcc} RUST_LIB_SRC=$lib_src SRCARCH=${SRCARCH:-x86} \
    sh "$kdir/scripts/rust_is_available.sh"

# 2. The numeric comparison (the suffix of a distribution build is ignored, as bcachefs does).
want=$(sed -n 's/^CONFIG_RUSTC_VERSION=//p' "$kdir/include/config/auto.conf")
numbers=$("$rustc" --version | sed -nE 's/^rustc ([0-9]+)\.([0-9]+)\.([0-9]+).*/\1 \2 \3/p')
# shellcheck disable=SC2086 # split the three numbers into $1 $2 $3
set -- $numbers
have=$((100000 * $1 + 100 * $2 + $3))
if [ "$have" != "$want" ]; then
    echo "rustc $have does not match the kernel's $want" >&2
    exit 1
fi

# 3. The probe compile against the kernel's own metadata.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#![no_std]\nextern crate kernel;\n' > "$tmp/probe.rs"
target=
if [ -f "$kdir/scripts/target.json" ]; then
    target="--target=$kdir/scripts/target.json -Zunstable-options"
fi
# shellcheck disable=SC2086 # $target is two words or none
RUSTC_BOOTSTRAP=1 "$rustc" --edition=2021 --crate-type=rlib --emit=metadata \
    --crate-name=probe --sysroot=/dev/null -Cpanic=abort -L "$kdir/rust" $target \
    -o "$tmp/libprobe.rmeta" "$tmp/probe.rs"
