#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# build-kernels.sh - build real Rust-enabled Linux kernel build trees from
# Debian packages alone, for dkms-rustc's "real kernel" tests.
#
# Usage: build-kernels.sh [--force] [7.2] [6.12]
#   (no version argument: build both)
#
# Host: Debian bookworm (amd64), run as root, network access to Debian's
# archive only.  What it does (see shared FACTS, section 9):
#   * apt-get install rustc-web + rust-web-src (rustc 1.96.0 "built from a
#     source tarball"), libclang1-19 and the kernel build dependencies;
#   * apt-get download (private sources list and state dir; the system's apt
#     configuration is never touched and nothing foreign is installed)
#     trixie's bindgen 0.71.1 + libc6 + libgcc-s1, unpack them with dpkg -x and
#     write a wrapper that starts bindgen through trixie's own dynamic loader,
#     with LIBCLANG_PATH pointing at bookworm's libclang1-19;
#   * apt-get download linux-source-7.2 (sid) / linux-source-6.12 (trixie),
#     unpack the tarball, make tinyconfig + 64BIT MODULES MODULE_UNLOAD PRINTK
#     RUST, make olddefconfig, make -j$jobs with the toolchain on the command
#     line.  objtree == srctree.
#
# Output (DKMS_RUSTC_KERNELS, default /var/cache/dkms-rustc-ci/kernels):
#   $out/linux-7.2  $out/linux-6.12   finished build trees
#   $out/tools/bindgen                bindgen wrapper ("bindgen 0.71.1")
# Each tree is built under a temporary name and renamed only after a
# successful build; its stamp file (.dkms-rustc-stamp) records the inputs.  A
# tree whose stamp matches the current inputs is reused without any network
# access.  --force rebuilds anyway.
#
# Last lines on stdout, one per tree:  <path> <kernelrelease> <seconds> built|reused
# Step timings go to stderr as "== [<seconds>s] <step>".
#
# Environment: DKMS_RUSTC_KERNELS (output dir), DKMS_RUSTC_JOBS (make -j,
# default: number of CPUs).

set -euo pipefail

RECIPE=1 # bump when the way a tree is built changes (invalidates stamps)

OUT=${DKMS_RUSTC_KERNELS:-/var/cache/dkms-rustc-ci/kernels}
JOBS=${DKMS_RUSTC_JOBS:-$(nproc)}
TOOLS=$OUT/tools
WORK=$OUT/.work          # downloads, private apt state, temporary trees
APTDIR=$WORK/apt
DLDIR=$WORK/downloads
STAMP_NAME=.dkms-rustc-stamp

BINDGEN_VERSION=0.71.1
BINDGEN_SUITE=trixie
LIBCLANG_DIR=/usr/lib/llvm-19/lib
CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOST_PACKAGES="rustc-web rust-web-src libclang1-19 make gcc libc6-dev bc flex
bison libelf-dev libssl-dev cpio kmod xz-utils python3 perl"
KCONFIG_ENABLE="64BIT MODULES MODULE_UNLOAD PRINTK RUST"

# kernel series -> Debian suite that ships linux-source-<series>
suite_for() {
	case $1 in
	7.2) echo sid ;;
	6.12) echo trixie ;;
	*) echo "unknown kernel series: $1 (known: 7.2 6.12)" >&2; return 1 ;;
	esac
}

T0=$(date +%s)
log() { printf '%s\n' "build-kernels: $*" >&2; }
die() { log "error: $*"; exit 1; }

# timed STEP-NAME COMMAND...: run a command, report its duration on stderr
timed() {
	local name=$1 t
	shift
	t=$(date +%s)
	"$@"
	log "== [$(($(date +%s) - t))s] $name"
}

FORCE=0
SERIES=()
for arg in "$@"; do
	case $arg in
	--force) FORCE=1 ;;
	-h | --help) sed -n '3,36p' "$0"; exit 0 ;;
	-*) die "unknown option $arg" ;;
	*) suite_for "$arg" >/dev/null; SERIES+=("$arg") ;;
	esac
done
[ ${#SERIES[@]} -gt 0 ] || SERIES=(7.2 6.12)

[ "$(id -u)" = 0 ] || die "must run as root (apt-get install)"
export PATH=$CLEAN_PATH # never pick up rustup's proxies from ~/.cargo/bin
export LC_ALL=C

mkdir -p "$OUT" "$WORK"
exec 9>"$OUT/.lock"
flock 9 || die "cannot lock $OUT/.lock"

# --- 1. host packages --------------------------------------------------------
host_packages_missing() {
	local p missing=""
	for p in $HOST_PACKAGES; do
		if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
			missing="$missing $p"
		fi
	done
	echo "$missing"
}

install_host_packages() {
	local missing lists_age
	missing=$(host_packages_missing)
	[ -n "$missing" ] || return 0
	log "installing:$missing"
	# refresh the package lists when older than a day (or absent)
	lists_age=$(find /var/lib/apt/lists -maxdepth 1 -name '*InRelease' -mmin -1440 | wc -l)
	if [ "$lists_age" = 0 ]; then
		apt-get update -q
	fi
	# shellcheck disable=SC2086 # word splitting intended
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $HOST_PACKAGES; then
		apt-get update -q
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $HOST_PACKAGES
	fi
}
timed "host packages" install_host_packages

RUSTC=/usr/bin/rustc
RUSTDOC=/usr/bin/rustdoc
RUSTC_VERSION_TEXT=$($RUSTC --version)
RUSTC_RELEASE=$($RUSTC -vV | sed -n 's/^release: //p')
RUST_LIB_SRC=/usr/src/rustc-$RUSTC_RELEASE/library
[ -f "$RUST_LIB_SRC/core/src/lib.rs" ] || die "$RUST_LIB_SRC/core/src/lib.rs missing (rust-web-src)"
[ -e "$LIBCLANG_DIR/libclang.so.1" ] || [ -e "$LIBCLANG_DIR/libclang-19.so.1" ] ||
	die "no libclang in $LIBCLANG_DIR (libclang1-19)"

# --- 2. private apt for trixie / sid (download only) --------------------------
mkdir -p "$APTDIR/lists" "$APTDIR/cache/archives" "$APTDIR/parts" "$APTDIR/prefs" "$DLDIR"
APT_OPTS=(
	-o "Dir::Etc::SourceList=$APTDIR/sources.list"
	-o "Dir::Etc::SourceParts=$APTDIR/parts"
	-o "Dir::Etc::Preferences=$APTDIR/prefs/none"
	-o "Dir::Etc::PreferencesParts=$APTDIR/prefs"
	-o "Dir::State::Lists=$APTDIR/lists"
	-o "Dir::State::status=$APTDIR/status"
	-o "Dir::Cache=$APTDIR/cache"
	-o "APT::Sandbox::User=root"
)
UPDATED_MARK=$APTDIR/.updated.$$
trap 'rm -f "$UPDATED_MARK"' EXIT

# apt-get on the private trixie+sid configuration; lists refreshed once a run
foreign_apt() {
	if [ ! -e "$UPDATED_MARK" ]; then
		: >"$APTDIR/status"
		cat >"$APTDIR/sources.list" <<-EOF
			deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
			deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main
		EOF
		apt-get "${APT_OPTS[@]}" -q update >&2
		: >"$UPDATED_MARK"
	fi
	apt-get "${APT_OPTS[@]}" "$@"
}

# download PKG/SUITE into $DLDIR, print the path of the .deb
download() {
	local spec=$1 pkg=${1%/*} deb
	(cd "$DLDIR" && rm -f "${pkg}"_*.deb && foreign_apt -q download "$spec" >&2)
	deb=$(find "$DLDIR" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
	[ -n "$deb" ] || die "apt-get download $spec produced nothing"
	echo "$deb"
}

# --- 3. bindgen from trixie ---------------------------------------------------
BINDGEN=$TOOLS/bindgen
bindgen_ok() {
	[ -x "$BINDGEN" ] && [ "$("$BINDGEN" --version 2>/dev/null)" = "bindgen $BINDGEN_VERSION" ]
}

setup_bindgen() {
	local root tmp deb spec
	if [ $FORCE = 0 ] && bindgen_ok; then
		log "reusing $BINDGEN ($("$BINDGEN" --version))"
		return 0
	fi
	root=$TOOLS/bindgen-$BINDGEN_VERSION
	tmp=$TOOLS/.bindgen-$BINDGEN_VERSION.tmp
	mkdir -p "$TOOLS"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	for spec in bindgen/$BINDGEN_SUITE libc6/$BINDGEN_SUITE libgcc-s1/$BINDGEN_SUITE; do
		deb=$(download "$spec")
		dpkg -x "$deb" "$tmp"
		echo "${spec%/*} $(dpkg-deb -f "$deb" Version)" >>"$tmp/PACKAGES"
		rm -f "$deb"
	done
	[ -x "$tmp/usr/bin/bindgen" ] || die "bindgen package has no usr/bin/bindgen"
	[ -x "$tmp/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ] || die "no trixie loader"
	rm -rf "$root"
	mv "$tmp" "$root"
	cat >"$BINDGEN.tmp" <<-EOF
		#!/bin/sh
		# bindgen $BINDGEN_VERSION from Debian $BINDGEN_SUITE, run through $BINDGEN_SUITE's own
		# dynamic loader and libc (written by tests/realkernel/build-kernels.sh).
		LIBCLANG_PATH=$LIBCLANG_DIR
		export LIBCLANG_PATH
		root=$root
		exec "\$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \\
		    --library-path "\$root/usr/lib/x86_64-linux-gnu" \\
		    "\$root/usr/bin/bindgen" "\$@"
	EOF
	chmod 755 "$BINDGEN.tmp"
	mv "$BINDGEN.tmp" "$BINDGEN"
	bindgen_ok || die "$BINDGEN does not print 'bindgen $BINDGEN_VERSION'"
	log "bindgen wrapper: $BINDGEN ($("$BINDGEN" --version))"
}
timed "bindgen $BINDGEN_VERSION" setup_bindgen
BINDGEN_VERSION_TEXT=$("$BINDGEN" --version)

# --- 4. kernels ---------------------------------------------------------------
kmake() {
	make RUSTC="$RUSTC" HOSTRUSTC="$RUSTC" RUSTDOC="$RUSTDOC" BINDGEN="$BINDGEN" \
		RUST_LIB_SRC="$RUST_LIB_SRC" "$@"
}

# the inputs a stamp must match for a tree to be reused
stamp_inputs() {
	cat <<-EOF
		input.recipe=$RECIPE
		input.series=$1
		input.rustc=$RUSTC $RUSTC_VERSION_TEXT
		input.rustdoc=$RUSTDOC
		input.bindgen=$BINDGEN $BINDGEN_VERSION_TEXT
		input.libclang=$LIBCLANG_DIR
		input.rust_lib_src=$RUST_LIB_SRC
		input.kconfig_enable=$KCONFIG_ENABLE
	EOF
}

tree_reusable() {
	local tree=$1 series=$2
	[ $FORCE = 0 ] || return 1
	[ -f "$tree/$STAMP_NAME" ] || return 1
	[ "$(grep '^input\.' "$tree/$STAMP_NAME")" = "$(stamp_inputs "$series")" ] || return 1
	[ -f "$tree/rust/libkernel.rmeta" ] && [ -f "$tree/Module.symvers" ] && [ -f "$tree/scripts/module.lds" ]
}

unpack_source() {
	local deb=$1 series=$2 tmp=$3
	mkdir -p "$tmp"
	dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/linux-source-$series.tar.xz" |
		xz -d -T0 | tar -x -C "$tmp" --strip-components=1
}

configure_tree() {
	local tmp=$1 opt args=()
	kmake -C "$tmp" tinyconfig >&2
	for opt in $KCONFIG_ENABLE; do args+=(--enable "$opt"); done
	"$tmp/scripts/config" --file "$tmp/.config" "${args[@]}"
	kmake -C "$tmp" olddefconfig >&2
	if ! grep -qx 'CONFIG_RUST=y' "$tmp/.config"; then
		kmake -C "$tmp" rustavailable >&2 || true
		die "CONFIG_RUST=y did not survive olddefconfig in $tmp (see rustavailable above)"
	fi
}

build_tree() {
	kmake -C "$1" -j"$JOBS" >&2
}

SUMMARY=()
for series in "${SERIES[@]}"; do
	t_start=$(date +%s)
	tree=$OUT/linux-$series
	if tree_reusable "$tree" "$series"; then
		release=$(sed -n 's/^result.kernelrelease=//p' "$tree/$STAMP_NAME")
		log "reusing $tree ($release)"
		SUMMARY+=("$tree $release $(($(date +%s) - t_start)) reused")
		continue
	fi
	suite=$(suite_for "$series")
	tmp=$WORK/linux-$series.tmp
	rm -rf "$tmp"
	deb=$(timed "download linux-source-$series/$suite" download "linux-source-$series/$suite")
	srcver=$(dpkg-deb -f "$deb" Version)
	timed "unpack linux-source-$series $srcver" unpack_source "$deb" "$series" "$tmp"
	timed "configure linux-$series" configure_tree "$tmp"
	t_build=$(date +%s)
	timed "build linux-$series (make -j$JOBS)" build_tree "$tmp"
	build_secs=$(($(date +%s) - t_build))
	release=$(make -s -C "$tmp" kernelrelease)
	{
		stamp_inputs "$series"
		echo "result.source=linux-source-$series $srcver ($suite)"
		echo "result.kernelrelease=$release"
		echo "result.build_seconds=$build_secs"
		echo "result.total_seconds=$(($(date +%s) - t_start))"
		echo "result.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$tmp/$STAMP_NAME.new"
	mv "$tmp/$STAMP_NAME.new" "$tmp/$STAMP_NAME"
	rm -rf "$tree"
	mv "$tmp" "$tree"
	rm -f "$deb"
	SUMMARY+=("$tree $release $(($(date +%s) - t_start)) built")
done

log "== [$(($(date +%s) - T0))s] total"
printf '%s\n' "${SUMMARY[@]}"
