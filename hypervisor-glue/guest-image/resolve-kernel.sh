#!/bin/bash
# Usage: resolve-kernel.sh OUT
#
# Writes to OUT the name of the versioned Debian kernel package that the
# meta-package linux-image-amd64 currently depends on (for example
# linux-image-6.1.0-56-amd64). make runs this once and keeps OUT, so later
# builds neither consult apt nor pick up a new kernel behind our back; delete
# OUT (or the whole build/guest/kernel) to move to a newer kernel.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 1 ]] || die "usage: resolve-kernel.sh OUT"
out=$1

need_tool apt-cache apt

if ! deps=$(LC_ALL=C apt-cache depends linux-image-amd64 2>&1); then
	die "apt-cache knows no linux-image-amd64 (package lists missing?); run 'make deps' first"
fi
pkg=$(printf '%s\n' "$deps" |
	sed -n 's/^ *Depends: \(linux-image-[0-9][A-Za-z0-9.+-]*\)$/\1/p' | head -n 1)
[[ -n $pkg ]] || die "cannot find the versioned kernel package in 'apt-cache depends linux-image-amd64'; run 'make deps' first"

mkdir -p "$(dirname "$out")"
printf '%s\n' "$pkg" >"$out.tmp"
mv -f "$out.tmp" "$out"
