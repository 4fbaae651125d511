#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Stand-in (tests/kerneltree.py) for the kernel's scripts/min-tool-version.sh
# of Linux 7.1+: print the minimum supported version of the given tool.

set -e

if [ $# != 1 ]; then
	echo "Usage: $0 toolname" >&2
	exit 1
fi

case "$1" in
binutils)
	echo 2.30.0
	;;
gcc)
	echo 8.1.0
	;;
llvm)
	echo 15.0.0
	;;
rustc)
	echo 1.85.0
	;;
bindgen)
	echo 0.71.1
	;;
*)
	echo "$1: unknown tool" >&2
	exit 1
	;;
esac
