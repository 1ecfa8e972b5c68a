#!/bin/bash
# Usage: collect-modules.sh KERNEL-ROOT RELEASE MODULES-LIST OUT-DIR
#
# Builds OUT-DIR, a small tree that is copied as-is into the initrd and the
# root disk:
#   lib/modules/RELEASE/...   the modules named in MODULES-LIST plus all their
#                             dependencies (from KERNEL-ROOT's modules.dep),
#                             with their own modules.dep for busybox modprobe
#   lib/modules/load-order    those modules, dependencies first, as paths
#                             relative to lib/modules; the initrd's /init
#                             insmods them in this order
# Modules that are built into the kernel (modules.builtin) are skipped.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 4 ]] || die "usage: collect-modules.sh KERNEL-ROOT RELEASE MODULES-LIST OUT-DIR"
kroot=$1 release=$2 list=$3 out=$4
umask 022

need_tool depmod kmod

moddir=$kroot/lib/modules/$release
[[ -f $moddir/modules.dep ]] || die "no $moddir/modules.dep (was the kernel unpacked?)"

# Module names use '-' and '_' interchangeably; compare them with '_'.
modname() {
	local n=${1##*/}
	n=${n%.ko}
	printf '%s' "${n//-/_}"
}

declare -A path_of=() deps_of=() builtin=() state=()
while IFS= read -r line; do
	key=${line%%:*}
	n=$(modname "$key")
	path_of[$n]=$key
	deps_of[$n]=${line#*:}
done <"$moddir/modules.dep"
while IFS= read -r line; do
	builtin[$(modname "$line")]=1
done <"$moddir/modules.builtin"

# Depth-first walk: a module is appended only after all its dependencies,
# which is the order insmod needs.
order=()
visit() {
	local n=$1 dep
	case ${state[$n]:-} in
	loaded) return ;;
	visiting) die "dependency cycle through module $n" ;;
	esac
	if [[ -z ${path_of[$n]:-} ]]; then
		[[ -n ${builtin[$n]:-} ]] || die "module '$n' is neither in modules.dep nor built into $release"
		state[$n]=loaded
		return
	fi
	state[$n]=visiting
	for dep in ${deps_of[$n]}; do # word splitting intended: a list of paths
		visit "$(modname "$dep")"
	done
	state[$n]=loaded
	order+=("$n")
}

while read -r name _; do
	[[ -n $name && $name != \#* ]] || continue
	visit "$(modname "$name")"
done <"$list"
[[ ${#order[@]} -gt 0 ]] || die "$list names no loadable module"

rm -rf "$out.tmp"
mkdir -p "$out.tmp/lib/modules/$release"
for n in "${order[@]}"; do
	rel=${path_of[$n]}
	install -D -m 0644 "$moddir/$rel" "$out.tmp/lib/modules/$release/$rel"
	printf '%s/%s\n' "$release" "$rel" >>"$out.tmp/lib/modules/load-order"
done
# depmod wants these to describe the kernel; then it writes modules.dep etc.
# for just the modules we keep.
for f in modules.builtin modules.builtin.modinfo modules.order; do
	install -m 0644 "$moddir/$f" "$out.tmp/lib/modules/$release/$f"
done
depmod -b "$out.tmp" "$release"

rm -rf "$out"
mv "$out.tmp" "$out"
