#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Quick start: install dkms-rustc into a private virtual environment and run it against the
# sample kernel build trees in examples/kernels (no real kernel needed), then show what the
# PRE_BUILD hook hands to make. Run from anywhere: sh examples/quickstart.sh
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-quickstart"
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/dkms-rustc" ]; then
    echo "== installing dkms-rustc into $venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet "$root"
fi
tool="$venv/bin/dkms-rustc"
conf="$root/examples/quickstart.conf"
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
printf 'cache_dir = %s\n' "$cache" >> "$cache/quickstart.conf"
cat "$conf" >> "$cache/quickstart.conf"

echo
echo "== the toolchains on this machine"
"$tool" toolchains --config "$cache/quickstart.conf"

for tree in "$root"/examples/kernels/*/; do
    echo
    echo "== dkms-rustc check --kernel-dir ${tree#"$root"/}"
    status=0
    "$tool" check --kernel-dir "$tree" --config "$cache/quickstart.conf" || status=$?
    case $status in
        0|40|41|77) echo "(exit status $status)" ;;
        *) echo "unexpected exit status $status" >&2; exit 1 ;;
    esac
done

echo
echo "== what the PRE_BUILD hook hands to make for 7.2.0-rustup-stable"
build="$cache/build"
mkdir "$build"
status=0
(cd "$build" && "$tool" pre-build --kernel-dir "$root/examples/kernels/7.2.0-rustup-stable" \
    --config "$cache/quickstart.conf") || status=$?
echo "(exit status $status) $build/dkms-rustc.make-args:"
cat "$build/dkms-rustc.make-args"
