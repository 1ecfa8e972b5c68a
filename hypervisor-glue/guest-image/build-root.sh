#!/bin/bash
# Usage: build-root.sh BUSYBOX MODULES-DIR INIT TESTDESK AGENT OUT
#
# Writes OUT, a qcow2 image of a 256 MiB ext4 root filesystem for the test
# guest: static BUSYBOX and its applet links, the module tree MODULES-DIR,
# INIT as /sbin/init, TESTDESK as /usr/bin/testdesk and AGENT as
# /usr/bin/deskpool-agent. The filesystem is
# filled by mke2fs -d from a staged directory, so nothing is mounted and no
# root privileges are needed, and it is reproducible: fixed UUID, hash seed,
# mkfs time and file times, and every file owned by root.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 6 ]] || die "usage: build-root.sh BUSYBOX MODULES-DIR INIT TESTDESK AGENT OUT"
busybox=$1 modules=$2 init=$3 testdesk=$4 agent=$5 out=$6
umask 022

# Fixed identity of the filesystem (any constant UUIDs would do).
readonly FS_UUID=0d35b001-7e57-4e57-8e57-000000000001
readonly HASH_SEED=0d35b001-7e57-4e57-8e57-000000000002
readonly FS_SIZE=256M
readonly FS_INODES=4096

need_tool mkfs.ext4 e2fsprogs
need_tool debugfs e2fsprogs
need_tool qemu-img qemu-utils
need_static "$testdesk" "testdesk"
need_static "$agent" "deskpool-agent"
[[ -f $modules/lib/modules/load-order ]] || die "no module tree in $modules"

stage=$out.stage
raw=$out.raw
rm -rf "$stage" "$raw"
trap 'rm -rf "$stage" "$raw" "$raw.debugfs" "$raw.debugfs.err"' EXIT

mkdir -p "$stage"/{dev,proc,sys,run,tmp,root,var/log,etc}
chmod 1777 "$stage/tmp"
chmod 0700 "$stage/root"
stage_busybox "$busybox" "$stage"
cp -R "$modules/." "$stage/"
rm -f "$stage/sbin/init" # busybox's init applet; ours replaces it
install -m 0755 "$init" "$stage/sbin/init"
install -D -m 0755 "$testdesk" "$stage/usr/bin/testdesk"
install -D -m 0755 "$agent" "$stage/usr/bin/deskpool-agent"
printf 'deskpool-test\n' >"$stage/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$stage/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' >"$stage/etc/group"
fix_mtimes "$stage"

# Create the file first: mke2fs then needs no size and prints nothing.
truncate -s "$FS_SIZE" "$raw"
# E2FSPROGS_FAKE_TIME pins the superblock times and each inode's crtime.
# lazy_*_init=0 zeroes the inode tables and journal now, so the guest's
# kernel does not spend (emulated) time on it at every boot.
E2FSPROGS_FAKE_TIME=$((GUEST_EPOCH + 1)) mkfs.ext4 -q -F -d "$stage" \
	-L deskpool-root -U "$FS_UUID" \
	-E "hash_seed=$HASH_SEED,root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0,nodiscard" \
	-b 4096 -N "$FS_INODES" -m 0 "$raw"

# mke2fs -d copies each file's ctime (which we cannot set) and owner (the
# builder's, unless we run as root) from the staged tree. Rewrite both, and
# atime for good measure, with debugfs. Our own names never contain '"' or
# a newline, which the quoted debugfs commands could not represent.
(
	cd "$stage"
	find . -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' path; do
		path=/${path#./}
		path=${path%/.} # "." is the root directory
		[[ -n $path ]] || path=/
		[[ $path != *[$'"\n']* ]] || die "unsupported file name in the root image: $path"
		for field in uid gid; do
			printf 'set_inode_field "%s" %s 0\n' "$path" "$field"
		done
		for field in atime ctime; do
			printf 'set_inode_field "%s" %s @%s\n' "$path" "$field" "$GUEST_EPOCH"
		done
	done
) >"$raw.debugfs"
E2FSPROGS_FAKE_TIME=$((GUEST_EPOCH + 1)) debugfs -w -f "$raw.debugfs" "$raw" >/dev/null 2>"$raw.debugfs.err" ||
	die "debugfs failed: $(<"$raw.debugfs.err")"
# debugfs reports per-command errors on stderr but still exits 0.
if grep -v '^debugfs [0-9.]* (' "$raw.debugfs.err" >&2; then
	die "debugfs could not fix up the root image"
fi

qemu-img convert -f raw -O qcow2 "$raw" "$out.tmp"
mv -f "$out.tmp" "$out"
