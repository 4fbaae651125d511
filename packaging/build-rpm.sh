#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the RPM: sh packaging/build-rpm.sh  ->  dist/dkms-rustc-<version>-1.noarch.rpm
#
# Runs rpmbuild on packaging/rpm/dkms-rustc.spec with the source tarball made from this
# checkout, in a scratch directory. On Fedora, RHEL or openSUSE install the build
# dependencies first (dnf builddep packaging/rpm/dkms-rustc.spec). rpmbuild also runs on
# other distributions (Debian's `rpm` package): where its database knows no packages, the
# build dependencies cannot be checked and are skipped (--nodeps); python3's build,
# installer and setuptools modules must then be installed (Debian: python3-build
# python3-installer python3-setuptools python3-wheel).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sh "$here/packaging/source-tarball.sh" "$scratch/SOURCES" >/dev/null

nodeps=
if ! rpm -q python3 >/dev/null 2>&1; then
    nodeps=--nodeps  # the rpm database knows no python3: a foreign host
    # Debian's python3 installs into /usr/local unless told it is a distribution build.
    [ -f /etc/debian_version ] && export DEB_PYTHON_INSTALL_LAYOUT=deb_system
fi
rpmbuild -bb $nodeps --define "_topdir $scratch" "$here/packaging/rpm/dkms-rustc.spec"

mkdir -p "$here/dist"
cp "$scratch"/RPMS/noarch/dkms-rustc-*.rpm "$here/dist/"
ls "$here"/dist/dkms-rustc-*.noarch.rpm
