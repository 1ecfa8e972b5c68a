#!/bin/bash
# Usage: build-initrd.sh BUSYBOX MODULES-DIR INIT OUT
#
# Writes OUT, a gzip'd newc cpio initramfs holding a static BUSYBOX with its
# applet links, the module tree MODULES-DIR (see collect-modules.sh) and INIT
# as /init. The archive is reproducible: sorted names, fixed mtimes, owner
# root, no gzip timestamp.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 4 ]] || die "usage: build-initrd.sh BUSYBOX MODULES-DIR INIT OUT"
busybox=$1 modules=$2 init=$3 out=$4
umask 022

need_tool cpio cpio
need_tool gzip gzip
[[ -f $modules/lib/modules/load-order ]] || die "no module tree in $modules"

stage=$out.stage
rm -rf "$stage"
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{dev,proc,sys,newroot}
stage_busybox "$busybox" "$stage"
cp -R "$modules/." "$stage/"
install -m 0755 "$init" "$stage/init"
fix_mtimes "$stage"

(
	cd "$stage"
	find . -print0 | LC_ALL=C sort -z |
		cpio --quiet --null --reproducible -R 0:0 -H newc -o
) | gzip -n -9 >"$out.tmp"
mv -f "$out.tmp" "$out"
