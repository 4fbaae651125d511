#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# build-kernels.sh - build real Rust-enabled Linux kernel build trees from
# Debian packages alone, for dkms-rustc's "real kernel" tests.
#
# Usage: build-kernels.sh [--force] [7.2] [6.12]
#   (no version argument: build both)
#
# Host: Debian bookworm or trixie (amd64), run as root, network access to
# Debian's archive only.  What it does:
#   * apt-get install Debian's rustc and its library sources (rustc-web +
#     rust-web-src; rustc + rust-src where Debian's rustc package is already
#     installed: whichever version the archive serves, e.g. 1.85.0 on bookworm
#     without bookworm-security, 1.96.0 with it or on trixie), libclang1-19 and
#     the kernel build dependencies;
#   * apt-get download (private sources list and state dir; the system's apt
#     configuration is never touched and nothing foreign is installed)
#     trixie's bindgen 0.71.1 + libc6 + libgcc-s1, unpack them with dpkg -x and
#     write a wrapper that starts bindgen through trixie's own dynamic loader,
#     with LIBCLANG_PATH pointing at bookworm's libclang1-19;
#   * apt-get download linux-source-7.2 (sid) / linux-source-6.12 (trixie),
#     whatever point release the archive serves, unpack the tarball, make
#     tinyconfig + 64BIT MODULES MODULE_UNLOAD PRINTK RUST (7.2 also
#     MODULE_SIG: the tree has its own signing key certs/signing_key.pem and
#     scripts/sign-file, for DKMS's module signing), make olddefconfig, make
#     -j$jobs with the toolchain on the command line.  objtree == srctree.
#
# Output (DKMS_RUSTC_KERNELS, default /var/cache/dkms-rustc-ci/kernels):
#   $out/<compilers>/linux-7.2  $out/<compilers>/linux-6.12   build trees
#   $out/tools/bindgen                bindgen wrapper ("bindgen 0.71.1")
# <compilers> names the rustc and gcc the trees were built with, e.g.
# rustc-1.85.0-4d91de4e4-2025-02-17-built-from-a-source-tarball_gcc-Debian-12.2.0-14+deb12u1-12.2.0,
# so trees for several compilers live side by side (a bookworm and a trixie
# machine may share the directory) and none rebuilds another's.  Each tree is
# built under a temporary name and renamed only after a successful build; its
# stamp file (.dkms-rustc-stamp) records the inputs (the tests pick the tree
# whose stamp names the installed /usr/bin/rustc and gcc).  A tree whose stamp
# matches the current inputs is reused without any network access.  --force
# rebuilds anyway.
#
# Last lines on stdout, one per tree:  <path> <kernelrelease> <seconds> built|reused
# Step timings go to stderr as "== [<seconds>s] <step>".
#
# Environment: DKMS_RUSTC_KERNELS (output dir), DKMS_RUSTC_JOBS (make -j,
# default: number of CPUs).

set -euo pipefail

RECIPE=2 # bump when the way a tree is built changes (invalidates stamps)

OUT=${DKMS_RUSTC_KERNELS:-/var/cache/dkms-rustc-ci/kernels}
JOBS=${DKMS_RUSTC_JOBS:-$(nproc)}
TOOLS=$OUT/tools
WORK=$OUT/.work          # downloads, private apt state, temporary trees
APTDIR=$WORK/apt
DLDIR=$WORK/downloads
STAMP_NAME=.dkms-rustc-stamp

BINDGEN_MIN=0.71.1 # scripts/min-tool-version.sh of Linux 7.1+; trixie serves 0.71.1
BINDGEN_SUITE=trixie
LIBCLANG_DIR=/usr/lib/llvm-19/lib
CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
BUILD_PACKAGES="libclang1-19 make gcc libc6-dev bc flex bison libelf-dev
libssl-dev openssl cpio kmod xz-utils python3 perl"
KCONFIG_ENABLE="64BIT MODULES MODULE_UNLOAD PRINTK RUST"

# options beyond KCONFIG_ENABLE, per series
kconfig_extra() {
	case $1 in
	7.2) echo "MODULE_SIG" ;; # DKMS signs modules for such kernels
	*) echo "" ;;
	esac
}

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
	-h | --help) sed -n '3,46p' "$0"; exit 0 ;;
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
# Debian's rustc: rustc-web (bookworm, trixie) unless Debian's own rustc package
# is installed already (the two conflict: never replace the admin's compiler).
if [ "$(dpkg-query -W -f='${db:Status-Status}' rustc 2>/dev/null)" = installed ]; then
	RUST_PACKAGES="rustc rust-src"
else
	RUST_PACKAGES="rustc-web rust-web-src"
fi
HOST_PACKAGES="$RUST_PACKAGES $BUILD_PACKAGES"

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
[ -f "$RUST_LIB_SRC/core/src/lib.rs" ] || die "$RUST_LIB_SRC/core/src/lib.rs missing ($RUST_PACKAGES)"
CC_VERSION_TEXT=$(gcc --version | head -n 1)
# The directory of the trees built with these compilers: both names, every run of
# characters other than letters, digits, '.' and '+' made one '-'.
name_of() { printf '%s' "$1" | tr -cs 'A-Za-z0-9.+' '-' | sed 's/-$//'; }
COMPILERS=$(name_of "$RUSTC_VERSION_TEXT")_$(name_of "$CC_VERSION_TEXT")
TREES=$OUT/$COMPILERS
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
	# Download-only test fixtures: signatures are checked (signed-by), freshness is not, so a
	# mirror that serves sid as of some day (as CI's does) is accepted like the live archive.
	-o "Acquire::Check-Valid-Until=false"
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
		# (runs inside $(...), where bash does not apply set -e: every status is checked)
		if ! apt-get "${APT_OPTS[@]}" -q update >&2; then
			if ! compgen -G "$APTDIR/lists/*_dists_sid_*Packages*" >/dev/null ||
				! compgen -G "$APTDIR/lists/*_dists_trixie_*Packages*" >/dev/null; then
				die "apt-get update of trixie and sid failed (see above) and no earlier package lists are in $APTDIR/lists"
			fi
			log "warning: apt-get update of trixie and sid failed (see above); using the package lists of an earlier update in $APTDIR/lists"
		fi
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
	local text
	[ -x "$BINDGEN" ] && text=$("$BINDGEN" --version 2>/dev/null) || return 1
	case $text in "bindgen "[0-9]*) ;; *) return 1 ;; esac
	# at least the kernels' minimum, whichever version the archive serves
	[ "$(printf '%s\n%s\n' "$BINDGEN_MIN" "${text#bindgen }" | sort -V | head -n 1)" = "$BINDGEN_MIN" ]
}

setup_bindgen() {
	local root tmp deb spec version
	if [ $FORCE = 0 ] && bindgen_ok; then
		log "reusing $BINDGEN ($("$BINDGEN" --version))"
		return 0
	fi
	tmp=$TOOLS/.bindgen.tmp
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
	version=$(sed -n 's/^bindgen //p' "$tmp/PACKAGES")
	root=$TOOLS/bindgen-$version
	rm -rf "$root"
	mv "$tmp" "$root"
	cat >"$BINDGEN.tmp" <<-EOF
		#!/bin/sh
		# bindgen $version from Debian $BINDGEN_SUITE, run through $BINDGEN_SUITE's own
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
	bindgen_ok || die "$BINDGEN does not print 'bindgen X' with X at least $BINDGEN_MIN"
	log "bindgen wrapper: $BINDGEN ($("$BINDGEN" --version))"
}
timed "bindgen ($BINDGEN_SUITE)" setup_bindgen
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
		input.cc=$CC_VERSION_TEXT
		input.kconfig_enable=$KCONFIG_ENABLE $(kconfig_extra "$1")
	EOF
}

# what an out-of-tree module build (and DKMS's signing) needs from a tree
tree_complete() {
	local tree=$1 series=$2
	[ -f "$tree/rust/libkernel.rmeta" ] && [ -f "$tree/Module.symvers" ] && [ -f "$tree/scripts/module.lds" ] ||
		return 1
	case " $(kconfig_extra "$series") " in
	*" MODULE_SIG "*) [ -x "$tree/scripts/sign-file" ] && [ -f "$tree/certs/signing_key.pem" ] ;;
	esac
}

tree_reusable() {
	local tree=$1 series=$2
	[ $FORCE = 0 ] || return 1
	[ -f "$tree/$STAMP_NAME" ] || return 1
	[ "$(grep '^input\.' "$tree/$STAMP_NAME")" = "$(stamp_inputs "$series")" ] || return 1
	tree_complete "$tree" "$series"
}

unpack_source() {
	local deb=$1 series=$2 tmp=$3
	mkdir -p "$tmp"
	dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/linux-source-$series.tar.xz" |
		xz -d -T0 | tar -x -C "$tmp" --strip-components=1
}

configure_tree() {
	local tmp=$1 series=$2 opt args=()
	kmake -C "$tmp" tinyconfig >&2
	for opt in $KCONFIG_ENABLE $(kconfig_extra "$series"); do args+=(--enable "$opt"); done
	"$tmp/scripts/config" --file "$tmp/.config" "${args[@]}"
	kmake -C "$tmp" olddefconfig >&2
	if ! grep -qx 'CONFIG_RUST=y' "$tmp/.config"; then
		kmake -C "$tmp" rustavailable >&2 || true
		die "CONFIG_RUST=y did not survive olddefconfig in $tmp (see rustavailable above)"
	fi
	for opt in $(kconfig_extra "$series"); do
		grep -qx "CONFIG_$opt=y" "$tmp/.config" || die "CONFIG_$opt=y did not survive olddefconfig in $tmp"
	done
}

build_tree() {
	kmake -C "$1" -j"$JOBS" >&2
}

SUMMARY=()
for series in "${SERIES[@]}"; do
	t_start=$(date +%s)
	tree=$TREES/linux-$series
	if tree_reusable "$tree" "$series"; then
		release=$(sed -n 's/^result.kernelrelease=//p' "$tree/$STAMP_NAME")
		log "reusing $tree ($release)"
		SUMMARY+=("$tree $release $(($(date +%s) - t_start)) reused")
		continue
	fi
	suite=$(suite_for "$series")
	tmp=$WORK/$COMPILERS-linux-$series.tmp
	rm -rf "$tmp"
	deb=$(timed "download linux-source-$series/$suite" download "linux-source-$series/$suite")
	srcver=$(dpkg-deb -f "$deb" Version)
	timed "unpack linux-source-$series $srcver" unpack_source "$deb" "$series" "$tmp"
	timed "configure linux-$series" configure_tree "$tmp" "$series"
	t_build=$(date +%s)
	timed "build linux-$series (make -j$JOBS)" build_tree "$tmp"
	build_secs=$(($(date +%s) - t_build))
	tree_complete "$tmp" "$series" || die "$tmp lacks what a module build needs (rust/, Module.symvers, module.lds, sign-file)"
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
	mkdir -p "$TREES"
	rm -rf "$tree"
	mv "$tmp" "$tree"
	rm -f "$deb"
	SUMMARY+=("$tree $release $(($(date +%s) - t_start)) built")
done

log "== [$(($(date +%s) - T0))s] total"
printf '%s\n' "${SUMMARY[@]}"
