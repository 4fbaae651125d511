#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# sh packaging/source-tarball.sh DIR  ->  DIR/dkms-rustc-<version>.tar.gz
#
# The source tarball the RPM spec and the PKGBUILD build from: only what the packages are
# built from (no caches, virtualenvs, tests or build leftovers), as dkms-rustc-<version>/.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: source-tarball.sh DIR}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$here/pyproject.toml" | head -n 1)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
top="dkms-rustc-$version"
mkdir "$scratch/$top"
tar -C "$here" --exclude=.git --exclude='*.egg-info' --exclude=__pycache__ --exclude=build \
    -cf - pyproject.toml README.md LICENSE src dkms man packaging/dkms-rustc.launcher | tar -C "$scratch/$top" -xf -
mkdir -p "$out"
tar -C "$scratch" --owner=0 --group=0 --numeric-owner -czf "$out/$top.tar.gz" "$top"
echo "$out/$top.tar.gz"
