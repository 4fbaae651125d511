#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the Debian package: sh packaging/build-deb.sh  ->  dist/dkms-rustc_<version>_all.deb
#
# Installs the build dependencies with apt when run as root (pass --no-deps to skip; as
# another user, it names the apt command when one is missing), then
# runs `dpkg-buildpackage -us -uc -b` in a scratch copy of the tree, so the checkout stays
# clean. On a machine that has the dependencies, that command alone, run at the top of the
# tree, builds the package too (it lands in the parent directory).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
# build-essential: dpkg-checkbuilddeps requires it of every package (a brand-new Debian root
# lacks it); the rest: debian/control's Build-Depends and the package's own Depends.
build_deps="build-essential debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools"
deps="$build_deps python3-distro python3-packaging python3-pyelftools"

if [ "${1:-}" != "--no-deps" ] && [ "$(id -u)" = 0 ]; then
    # shellcheck disable=SC2086 # a word list
    installed=$(dpkg-query -W -f='${Status}\n' $deps 2>/dev/null | grep -c "install ok installed" || true)
    # shellcheck disable=SC2086
    if [ "$installed" -ne "$(echo $deps | wc -w)" ]; then
        apt-get -o DPkg::Lock::Timeout=900 update -qq
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
            --no-install-recommends $deps
    fi
fi

if [ "$(id -u)" != 0 ] || [ "${1:-}" = "--no-deps" ]; then
    # shellcheck disable=SC2086 # a word list
    absent=$(for package in $build_deps; do
        dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q "install ok installed" || echo "$package"
    done | tr '\n' ' ')
    if [ -n "$absent" ]; then
        echo "build-deb: missing build dependencies; as root: apt install $absent" >&2
        exit 1
    fi
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/dkms-rustc"
# Only what the package is built from: no caches, virtualenvs or build leftovers.
extra=
for name in README.md LICENSE; do
    [ -f "$here/$name" ] && extra="$extra $name"
done
# shellcheck disable=SC2086 # plain file names
tar -C "$here" --exclude=.git --exclude='*.egg-info' --exclude=__pycache__ --exclude=build \
    -cf - pyproject.toml src dkms man debian packaging/dkms-rustc.launcher $extra | tar -C "$scratch/dkms-rustc" -xf -
# pyproject names README.md as the long description; keep a build possible without one.
[ -f "$scratch/dkms-rustc/README.md" ] || echo "dkms-rustc" > "$scratch/dkms-rustc/README.md"

(cd "$scratch/dkms-rustc" && PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -us -uc -b)

mkdir -p "$here/dist"
cp "$scratch"/dkms-rustc_*.deb "$here/dist/"
ls "$here"/dist/dkms-rustc_*.deb
