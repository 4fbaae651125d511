#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# build-arm64.sh - cross-build one real Rust-enabled arm64 Linux build tree on this x86_64
# machine, for tests/test_realkernel_arm64.py: headers for another architecture whose proc
# macros (rust/libmacros.so) are built for the build machine, as a cross build makes them.
#
# Usage: build-arm64.sh [--force]
#
# Separate from build-kernels.sh (its trees and stamps are left alone), but it uses that
# script's bindgen wrapper ($DKMS_RUSTC_KERNELS/tools/bindgen: run build-kernels.sh first) and
# the same Debian packages: rustc-web + rust-web-src, libclang1-19, gcc-aarch64-linux-gnu,
# and linux-source-7.2 from sid (apt-get download with a private sources list and state; the
# system's apt configuration is never touched). tinyconfig for ARCH=arm64 plus MODULES
# MODULE_UNLOAD PRINTK RUST, make -j with CROSS_COMPILE=aarch64-linux-gnu- and the Rust
# toolchain on the command line. The build is bounded (DKMS_RUSTC_ARM64_TIMEOUT seconds,
# default 1200) and a finished tree is reused while its stamp matches the inputs.
#
# Output (DKMS_RUSTC_ARM64, default /var/cache/dkms-rustc-ci/arm64): linux-7.2-arm64/.
# Last line on stdout: <path> <kernelrelease> <seconds> built|reused
set -euo pipefail

RECIPE=1
OUT=${DKMS_RUSTC_ARM64:-/var/cache/dkms-rustc-ci/arm64}
KERNELS=${DKMS_RUSTC_KERNELS:-/var/cache/dkms-rustc-ci/kernels}
JOBS=${DKMS_RUSTC_JOBS:-$(nproc)}
LIMIT=${DKMS_RUSTC_ARM64_TIMEOUT:-1200}
SERIES=7.2
WORK=$OUT/.work
APTDIR=$WORK/apt
TREE=$OUT/linux-$SERIES-arm64
STAMP=.dkms-rustc-stamp
KCONFIG_ENABLE="MODULES MODULE_UNLOAD PRINTK RUST"
FORCE=0
[ "${1:-}" = --force ] && FORCE=1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
T0=$(date +%s)

log() { printf '%s\n' "build-arm64: $*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get)"
command -v aarch64-linux-gnu-gcc >/dev/null || die "aarch64-linux-gnu-gcc missing (apt install gcc-aarch64-linux-gnu)"
BINDGEN=$KERNELS/tools/bindgen
[ -x "$BINDGEN" ] || die "$BINDGEN missing: run tests/realkernel/build-kernels.sh first"
RUSTC=/usr/bin/rustc
RUSTDOC=/usr/bin/rustdoc
RUSTC_RELEASE=$($RUSTC -vV | sed -n 's/^release: //p')
RUST_LIB_SRC=/usr/src/rustc-$RUSTC_RELEASE/library
[ -f "$RUST_LIB_SRC/core/src/lib.rs" ] || die "$RUST_LIB_SRC missing (rust-web-src)"

inputs() {
	cat <<-EOF
		input.recipe=$RECIPE
		input.series=$SERIES
		input.rustc=$($RUSTC --version)
		input.bindgen=$("$BINDGEN" --version)
		input.cross=$(aarch64-linux-gnu-gcc --version | head -n 1)
		input.kconfig_enable=$KCONFIG_ENABLE
	EOF
}
if [ $FORCE = 0 ] && [ -f "$TREE/$STAMP" ] && [ -f "$TREE/rust/libkernel.rmeta" ] &&
	[ "$(grep '^input\.' "$TREE/$STAMP")" = "$(inputs)" ]; then
	echo "$TREE $(sed -n 's/^result.kernelrelease=//p' "$TREE/$STAMP") $(($(date +%s) - T0)) reused"
	exit 0
fi

mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/parts" "$APTDIR/prefs" "$WORK/downloads"
: >"$APTDIR/status"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main" \
	>"$APTDIR/sources.list"
APT_OPTS=(
	-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=$APTDIR/parts"
	-o "Dir::Etc::Preferences=$APTDIR/prefs/none" -o "Dir::Etc::PreferencesParts=$APTDIR/prefs"
	-o "Dir::State::Lists=$APTDIR/lists" -o "Dir::State::status=$APTDIR/status"
	-o "Dir::Cache=$APTDIR/cache" -o "APT::Sandbox::User=root"
	# Signatures are checked (signed-by), freshness is not: a mirror serving sid as of some day.
	-o "Acquire::Check-Valid-Until=false"
)
apt-get "${APT_OPTS[@]}" -q update >&2
rm -f "$WORK/downloads"/linux-source-*.deb
(cd "$WORK/downloads" && apt-get "${APT_OPTS[@]}" -q download "linux-source-$SERIES" >&2)
deb=$(find "$WORK/downloads" -maxdepth 1 -name "linux-source-${SERIES}_*.deb" | head -n 1)
[ -n "$deb" ] || die "apt-get download linux-source-$SERIES produced nothing"

tmp=$WORK/linux-$SERIES-arm64.tmp
rm -rf "$tmp"
mkdir -p "$tmp"
dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/linux-source-$SERIES.tar.xz" | xz -d -T0 |
	tar -x -C "$tmp" --strip-components=1
kmake() {
	make ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- RUSTC="$RUSTC" HOSTRUSTC="$RUSTC" \
		RUSTDOC="$RUSTDOC" BINDGEN="$BINDGEN" RUST_LIB_SRC="$RUST_LIB_SRC" "$@"
}
kmake -C "$tmp" tinyconfig >&2
args=()
for opt in $KCONFIG_ENABLE; do args+=(--enable "$opt"); done
"$tmp/scripts/config" --file "$tmp/.config" "${args[@]}"
kmake -C "$tmp" olddefconfig >&2
if ! grep -qx 'CONFIG_RUST=y' "$tmp/.config"; then
	kmake -C "$tmp" rustavailable >&2 || true
	die "CONFIG_RUST=y did not survive olddefconfig for arm64 (see rustavailable above)"
fi
t_build=$(date +%s)
export -f kmake
export RUSTC RUSTDOC BINDGEN RUST_LIB_SRC
# shellcheck disable=SC2016 # expanded by the inner bash
timeout "$LIMIT" bash -c 'kmake -C "$0" -j"$1"' "$tmp" "$JOBS" >&2 || die "the arm64 build failed or took over ${LIMIT}s"
release=$(make -s -C "$tmp" ARCH=arm64 kernelrelease)
{
	inputs
	echo "result.source=linux-source-$SERIES $(dpkg-deb -f "$deb" Version) (sid)"
	echo "result.kernelrelease=$release"
	echo "result.build_seconds=$(($(date +%s) - t_build))"
} >"$tmp/$STAMP"
rm -rf "$TREE"
mv "$tmp" "$TREE"
rm -f "$deb"
echo "$TREE $release $(($(date +%s) - T0)) built"
