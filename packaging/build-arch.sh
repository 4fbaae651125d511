#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the Arch Linux package: sh packaging/build-arch.sh  ->  dist/dkms-rustc-<version>-1-any.pkg.tar.*
#
# Copies packaging/arch/PKGBUILD and the source tarball made from this checkout into a scratch
# directory and runs makepkg there. makepkg refuses to run as root: as root, the build runs as
# the user `nobody`. On Arch, install the makedepends first (pacman -S --needed python-build
# python-installer python-setuptools python-wheel). makepkg also runs on other distributions
# (Debian's `makepkg` package): where pacman's database lacks the dependencies they are not
# checked (--nodeps), `python` is python3, and python3's build and installer modules must be
# installed (Debian: python3-build python3-installer python3-setuptools python3-wheel).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp "$here/packaging/arch/PKGBUILD" "$scratch/"
sh "$here/packaging/source-tarball.sh" "$scratch" >/dev/null

nodeps=
# shellcheck disable=SC2046 # the depends and makedepends, one word each
if ! pacman -T $(sed -n "s/^\(make\)\{0,1\}depends=(\(.*\))$/\2/p" "$scratch/PKGBUILD" | tr -d "'") >/dev/null 2>&1; then
    nodeps=--nodeps  # pacman's database lacks them: a foreign host
    # Arch calls it python; here it is the system's python3 (not a user's pyenv shim), run
    # by its own name: installed scripts get the interpreter's own path as their #! line.
    mkdir "$scratch/bin"
    printf '#!/bin/sh\nexec /usr/bin/python3 "$@"\n' > "$scratch/bin/python"
    chmod 755 "$scratch/bin/python"
    PATH="$scratch/bin:$PATH"
    # Debian's python3 installs into /usr/local unless told it is a distribution build.
    [ -f /etc/debian_version ] && export DEB_PYTHON_INSTALL_LAYOUT=deb_system
fi

run_as=
if [ "$(id -u)" = 0 ]; then
    chown -R nobody "$scratch"
    run_as="setpriv --reuid=nobody --regid=$(id -g nobody) --clear-groups --"
fi
# shellcheck disable=SC2086 # empty or one option; a fixed command prefix
(cd "$scratch" && HOME="$scratch" PATH="$PATH" $run_as makepkg --noconfirm --nocheck $nodeps)

mkdir -p "$here/dist"
cp "$scratch"/dkms-rustc-*-any.pkg.tar.* "$here/dist/"
ls "$here"/dist/dkms-rustc-*-any.pkg.tar.*
