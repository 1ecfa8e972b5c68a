# shellcheck shell=bash
# Helpers shared by the guest-image build scripts (sourced, not run).

# Every staged file gets this mtime (and, in the ext4 image, atime/ctime) so
# that two builds from the same inputs are byte-identical.
readonly GUEST_EPOCH=0

die() {
	printf 'guest-image: error: %s\n' "$*" >&2
	exit 1
}

need_tool() {
	local tool=$1 package=$2
	command -v "$tool" >/dev/null 2>&1 ||
		die "'$tool' not found; install the Debian package '$package' (make deps)"
}

# The guest has no libc, so anything we copy in must be statically linked.
# ldd says "not a dynamic executable" for a classic static binary and
# "statically linked" for a static-pie one; anything else lists libraries.
need_static() {
	local bin=$1 what=$2 deps
	[[ -f $bin && -x $bin ]] || die "$what: '$bin' is missing or not executable"
	deps=$(LC_ALL=C ldd "$bin" 2>&1) || true
	case $deps in
	*"not a dynamic executable"* | *"statically linked"*) ;;
	*) die "$what: '$bin' is not statically linked; the guest has no shared libraries" ;;
	esac
}

# Copy a static busybox to <stage>/bin/busybox and add a symlink for every
# applet it has, at the path busybox itself reports (bin/, sbin/, usr/...).
# Doing this at build time keeps the images read-only friendly and means the
# guest never runs `busybox --install`.
stage_busybox() {
	local busybox=$1 stage=$2 applet
	need_static "$busybox" "busybox (Debian package busybox-static)"
	install -D -m 0755 "$busybox" "$stage/bin/busybox"
	while IFS= read -r applet; do
		case $applet in
		bin/busybox | linuxrc) continue ;; # the binary itself; a legacy alias
		esac
		mkdir -p "$stage/${applet%/*}"
		ln -s /bin/busybox "$stage/$applet"
	done < <("$busybox" --list-full)
}

# Fix the mtime (and atime) of everything in a staged tree, symlinks included.
fix_mtimes() {
	find "$1" -exec touch -h -d "@$GUEST_EPOCH" {} +
}
