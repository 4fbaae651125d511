#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Quick start: install dkms-rustc into a private virtual environment and run it against the
# sample kernel build trees in examples/kernels (no real kernel needed), then show what the
# PRE_BUILD hook hands to make. Run from anywhere: sh examples/quickstart.sh
# Needs python3 with its venv module (as root on Debian or Ubuntu, python3.X-venv is
# installed with apt when missing) and the package index (pyelftools, packaging, distro).
# Once installed, a run takes a few seconds.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-quickstart"
python=${PYTHON:-python3}

# Installed, and from this checkout (an older quick start installed a copy, not a link)?
installed() {
    [ -x "$venv/bin/dkms-rustc" ] && "$venv/bin/python" -c \
        'import sys, dkms_rustc; sys.exit(not dkms_rustc.__file__.startswith(sys.argv[1]))' \
        "$root/src/" 2>/dev/null
}
if ! installed; then
    echo "== installing dkms-rustc into $venv"
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
        # Debian and Ubuntu ship venv's pip bootstrap separately, as python3.X-venv.
        package=python$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv
        rm -rf "$venv"
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "== apt-get install $package ($python -m venv needs it)"
            apt-get -o DPkg::Lock::Timeout=900 update -qq
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
                --no-install-recommends "$package" >/dev/null
            "$python" -m venv "$venv"
        else
            echo "quickstart: '$python -m venv' does not work here; install $package first:" >&2
            echo "    sudo apt install $package" >&2
            exit 1
        fi
    fi
    # Editable: the quick start always runs this checkout's code.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root"
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
        # ok, refused (no installed rustc fits), no metadata, no Rust: src/dkms_rustc/exitcodes.py
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
