#!/bin/bash
# Usage: fetch-kernel.sh PACKAGE-FILE KERNEL-DIR OUT
#
# Downloads the Debian kernel package named in PACKAGE-FILE into
# KERNEL-DIR/deb, unpacks it into KERNEL-DIR/root (never installing it on this
# host), generates modules.dep there with depmod, and finally writes the
# kernel release (e.g. 6.1.0-56-amd64) to OUT. OUT is written last, so its
# existence means KERNEL-DIR/root is complete.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 3 ]] || die "usage: fetch-kernel.sh PACKAGE-FILE KERNEL-DIR OUT"
pkg_file=$1 kdir=$2 out=$3

need_tool apt-get apt
need_tool dpkg-deb dpkg
need_tool depmod kmod

pkg=$(<"$pkg_file")
# The name ends up in a path and an apt argument: accept only what a Debian
# kernel package name looks like.
[[ $pkg =~ ^linux-image-[0-9][A-Za-z0-9.+-]*$ ]] || die "'$pkg_file' holds no kernel package name"

debdir=$kdir/deb
mkdir -p "$debdir"
rm -f "$debdir"/*.deb
# apt-get download saves into the current directory. As root, apt wants to
# drop to the _apt user, which cannot write to our build tree; stay root for
# this download instead of printing the "unsandboxed" warning.
apt_opts=()
[[ $EUID -ne 0 ]] || apt_opts=(-o APT::Sandbox::User=root)
if ! (cd "$debdir" && apt-get -q "${apt_opts[@]}" download "$pkg"); then
	die "cannot download $pkg; run 'make deps' to refresh the package lists (and delete $pkg_file if the package is gone)"
fi
debs=("$debdir/${pkg}"_*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || die "expected one ${pkg}_*.deb in $debdir"

# Unpack next to the final place, then swap, so an interrupted build never
# leaves a half-extracted tree that looks complete.
rm -rf "$kdir/root.tmp"
dpkg-deb -x "${debs[0]}" "$kdir/root.tmp"

releases=("$kdir/root.tmp/lib/modules"/*)
[[ ${#releases[@]} -eq 1 && -d ${releases[0]} ]] || die "expected one lib/modules/<release> in $pkg"
release=${releases[0]##*/}
[[ -f $kdir/root.tmp/boot/vmlinuz-$release ]] || die "$pkg has no boot/vmlinuz-$release"

# The package ships no modules.dep (its postinst would run depmod).
depmod -b "$kdir/root.tmp" "$release"

rm -rf "$kdir/root"
mv "$kdir/root.tmp" "$kdir/root"
printf '%s\n' "$release" >"$out.tmp"
mv -f "$out.tmp" "$out"
