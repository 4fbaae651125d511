#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install dkms-rustc for root in a virtual environment of its own, without touching the
# system's Python packages (Debian 12/13, Ubuntu 24.04: their python3 is "externally
# managed", and pipx before 1.5 has no --global):
#
#   sudo sh packaging/install-venv.sh                # install, or upgrade, from this checkout
#   sudo sh packaging/install-venv.sh --uninstall
#
# Makes PREFIX (default /opt/dkms-rustc) a virtual environment of PYTHON (default
# /usr/bin/python3) holding dkms-rustc and its dependencies (pyelftools, packaging, distro,
# from the package index pip is configured with), and the link LINK (default
# /usr/local/sbin/dkms-rustc) to PREFIX/sbin/dkms-rustc (packaging/dkms-rustc.launcher: the
# environment's python in isolated mode, -I), where the PRE_BUILD shim, the kernel
# hook and build-environment look for the tool. Everything is root's and writable by root
# alone, and so is every directory above it: root runs this code on every kernel upgrade, so
# nobody else may be able to change it (the script refuses otherwise). An upgrade replaces
# the environment whole; a failed one puts the previous one back.
#
# Options: --prefix DIR, --link PATH, --uninstall. Exit status: 0 done, 1 failed (nothing
# changed), 64 usage error. On Debian and Ubuntu, python3.X-venv is installed with apt when
# `python3 -m venv` needs it.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/dkms-rustc
link=/usr/local/sbin/dkms-rustc
python=${PYTHON:-/usr/bin/python3}
action=install
MARKER=.dkms-rustc-install-venv

say() { echo "install-venv: $*"; }
fail() { echo "install-venv: error: $*" >&2; exit 1; }
usage() { echo "usage: sh packaging/install-venv.sh [--prefix DIR] [--link PATH] [--uninstall]" >&2; exit 64; }

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
        --link) [ $# -ge 2 ] || usage; link=$2; shift 2 ;;
        --uninstall) action=uninstall; shift ;;
        -h|--help) sed -n '3,23p' "$0"; exit 0 ;;
        *) usage ;;
    esac
done
case $prefix in /?*) ;; *) fail "--prefix must be an absolute path, not '$prefix'" ;; esac
case $link in /?*) ;; *) fail "--link must be an absolute path, not '$link'" ;; esac
prefix=${prefix%/}
launcher=$prefix/sbin/dkms-rustc
# A link this script made (to the launcher; earlier versions linked pip's bin/dkms-rustc).
ours() { [ "$1" = "$launcher" ] || [ "$1" = "$prefix/bin/dkms-rustc" ]; }
[ "$(id -u)" = 0 ] || fail "run as root (sudo sh packaging/install-venv.sh): the tool is installed for root"
umask 022

# Every existing directory from / down to $1 must be root's and writable by root alone.
check_dirs() {
    path=$1
    while :; do
        if [ -e "$path" ] || [ -L "$path" ]; then
            if ! [ -d "$path" ] || [ -L "$path" ]; then fail "$path is not a directory"; fi
            owner=$(stat -c %u "$path")
            mode=$(stat -c %a "$path")
            [ "$owner" = 0 ] || fail "$path belongs to uid $owner, not root: its owner could change what root runs"
            case $mode in
                *[2367]? | *?[2367]) fail "$path is writable by others than root (mode $mode): they could change what root runs" ;;
            esac
        fi
        [ "$path" = / ] && break
        path=$(dirname "$path")
    done
}

if [ "$action" = uninstall ]; then
    if [ -L "$link" ] && ours "$(readlink "$link")"; then
        rm -f "$link"
        say "removed $link"
    fi
    if [ -f "$prefix/$MARKER" ]; then
        rm -rf "$prefix"
        say "removed $prefix"
    elif [ -e "$prefix" ]; then
        fail "$prefix was not made by this script (no $MARKER): not removed"
    fi
    exit 0
fi

check_dirs "$(dirname "$prefix")"
check_dirs "$(dirname "$link")"
if [ -e "$prefix" ] && ! [ -f "$prefix/$MARKER" ]; then
    fail "$prefix exists and was not made by this script (no $MARKER): remove it or choose --prefix"
fi
if { [ -e "$link" ] || [ -L "$link" ]; } && ! ours "$(readlink "$link" || true)"; then
    fail "$link exists and is not this script's link to $launcher: remove it or choose --link"
fi
command -v "$python" >/dev/null || fail "no $python (set PYTHON to a Python 3.9 or newer)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || fail "$python is older than Python 3.9"

# Only what the package is built from, copied, so nothing is built inside the checkout
# (which may be someone else's) and nothing from it stays writable by them.
source=$(mktemp -d)
old='' started='' finished=''
cleanup() {
    rm -rf "$source"
    [ -n "$started" ] && [ -z "$finished" ] || return 0
    rm -rf "$prefix" "$link.new.$$"  # never a half-made environment
    if [ -n "$old" ]; then  # a failed upgrade: the previous one comes back
        mv "$old" "$prefix"
        echo "install-venv: nothing changed: the previous installation in $prefix is back" >&2
    else
        echo "install-venv: nothing installed" >&2
    fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
files=
for name in pyproject.toml src README.md LICENSE packaging/dkms-rustc.launcher; do
    [ -e "$here/$name" ] && files="$files $name"
done
# shellcheck disable=SC2086 # plain file names
tar -C "$here" --exclude=__pycache__ --exclude='*.egg-info' -cf - $files | tar -C "$source" -xf -

make_venv() { "$python" -m venv "$prefix" >/dev/null 2>&1; }

started=1
if [ -e "$prefix" ]; then
    old=$prefix.previous
    rm -rf "$old"
    mv "$prefix" "$old"
fi
if ! make_venv; then
    rm -rf "$prefix"
    package=python$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv
    command -v apt-get >/dev/null || fail "'$python -m venv' does not work here (install its venv module)"
    say "apt-get install $package ($python -m venv needs it)"
    apt-get -o DPkg::Lock::Timeout=900 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
        --no-install-recommends "$package" >/dev/null
    make_venv || fail "'$python -m venv $prefix' failed also with $package installed"
fi
say "installing dkms-rustc and its dependencies into $prefix"
"$prefix/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir "$source" ||
    fail "pip could not install dkms-rustc into $prefix (see above)"
: > "$prefix/$MARKER"

# Root's, writable by root alone, all the way down (pip keeps the modes it is given).
foreign=$(find "$prefix" ! -type l \( ! -user 0 -o ! -group 0 -o -perm /022 \) -print | head -n 3)
[ -z "$foreign" ] || fail "files in $prefix that others than root could change: $foreign"
mkdir -p "$prefix/sbin"
sed "1s|.*|#!$prefix/bin/python3 -I|" "$source/packaging/dkms-rustc.launcher" > "$launcher"
chmod 755 "$launcher"
"$launcher" --version >/dev/null || fail "$launcher does not run"
# pip's own bin/dkms-rustc runs without -I: whoever runs that one gets the launcher too.
ln -sfn ../sbin/dkms-rustc "$prefix/bin/dkms-rustc"

mkdir -p "$(dirname "$link")"
ln -sfn "$launcher" "$link.new.$$"
mv -fT "$link.new.$$" "$link"
finished=1
[ -z "$old" ] || rm -rf "$old"
say "installed $("$link" --version) in $prefix; $link -> $launcher"
