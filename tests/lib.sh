# Shared by the shell tests: skips with a reason, mounts with cleanup, and
# the test images (built once per run by tests/mkimage.sh, cached).
#
# Mounts run in the foreground as background jobs so that the daemon's
# stderr (and any sanitizer report) lands in the test log and its exit
# status is checked at unmount.

set -u
: "${WTGFS:?WTGFS must name the wtgfs binary}"
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${WTGFS_TEST_IMAGES:=$top_srcdir/build-images}"

skip() {
	echo "SKIP: $*"
	exit 77
}

fail() {
	echo "FAIL: $*"
	exit 1
}

need_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }
need_fuse() { [ -c /dev/fuse ] || skip "no /dev/fuse on this machine"; }

# missing WHAT: something a package of scripts/deps.sh gives is not there
# (a file, a Python module): the test skips, saying WHAT; in CI (CI=true)
# that is a broken setup, and the test fails instead of passing quietly.
missing() {
	[ "${CI:-}" = true ] && fail "$*, and CI=true (scripts/deps.sh installs it)"
	skip "$* (scripts/deps.sh installs it)"
}

# need_tool TOOL...: skips (in CI fails) when a tool is missing; every tool
# a test names comes from a package scripts/deps.sh installs.
need_tool() {
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing "'$t' is not installed"
	done
}

# have_tool TOOL...: for a part of a test: true when every tool is there;
# otherwise says which part is left out and is false, or fails under CI=true
# as need_tool does.
have_tool() {
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 && continue
		[ "${CI:-}" = true ] && fail "'$t' is not installed, and CI=true (scripts/deps.sh installs it)"
		echo "note: '$t' is not installed: that part of the test is left out"
		return 1
	done
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wtgfs-test.XXXXXX")
MOUNTS=""
declare -A MOUNT_PID

cleanup() {
	for m in $MOUNTS; do
		mountpoint -q "$m" 2>/dev/null && umount -l "$m" 2>/dev/null
	done
	for m in $MOUNTS; do
		mountpoint -q "$m" 2>/dev/null && { fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

# ntfs_apply WIM IMAGE IMG DIR [SIZE]: image IMAGE of WIM applied by
# wimapply (NTFS mode) onto a fresh NTFS volume in the file IMG (SIZE bytes,
# default 512M), mounted read-only with ntfs-3g on DIR; fails the test when
# any step does.
ntfs_apply() {
	local wim=$1 image=$2 img=$3 dir=$4 size=${5:-512M}
	truncate -s "$size" "$img"
	mkntfs -Q -F "$img" >/dev/null 2>&1 || fail "mkntfs failed"
	wimapply "$wim" "$image" "$img" >"$img.out" 2>&1 ||
		{ cat "$img.out"; fail "wimapply of '$wim' image $image failed"; }
	mkdir -p "$dir"
	ntfs-3g -o ro "$img" "$dir" || fail "ntfs-3g cannot mount '$img' (image $image of '$wim')"
	MOUNTS="$MOUNTS $dir"
}

# wtg_mount IMAGE MNT [options...]: mounts in the foreground, in the
# background; returns once the mount answers, fails if it never does.
wtg_mount() {
	local image=$1 mnt=$2
	shift 2
	mkdir -p "$mnt"
	"$WTGFS" mount -f "$image" "$mnt" "$@" 2>>"$TMP/daemon.log" &
	local pid=$!
	MOUNT_PID[$mnt]=$pid
	MOUNTS="$MOUNTS $mnt"
	for _ in $(seq 1 600); do
		if mountpoint -q "$mnt"; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || { cat "$TMP/daemon.log"; fail "mount of '$image' exited early"; }
		sleep 0.1
	done
	fail "mount of '$image' did not come up in 60 s"
}

# wtg_umount MNT: unmounts with 'wtgfs umount' and checks that the daemon
# exited cleanly (a sanitizer report makes it exit non-zero).
wtg_umount() {
	local mnt=$1 pid=${MOUNT_PID[$1]}
	"$WTGFS" umount "$mnt" || fail "wtgfs umount '$mnt' failed"
	local rc=0
	wait "$pid" || rc=$?
	[ "$rc" = 0 ] || { cat "$TMP/daemon.log"; fail "the daemon for '$mnt' exited with $rc"; }
}

# kill_daemon_when_written MNT WANT CMD...: runs CMD in the background until
# it has written the file WANT, then kills the daemon of MNT with SIGKILL
# while CMD still holds its files open, unmounts MNT and ends CMD.
kill_daemon_when_written() {
	local mnt=$1 want=$2
	shift 2
	"$@" &
	local writer=$!
	for _ in $(seq 1 600); do
		[ -s "$want" ] && break
		kill -0 "$writer" 2>/dev/null || fail "the writer ended early"
		sleep 0.1
	done
	[ -s "$want" ] || fail "the writer did not finish in 60 s"
	local pid=${MOUNT_PID[$mnt]}
	kill -9 "$pid" || fail "the daemon is not running"
	wait "$pid" 2>/dev/null
	umount -l "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
	kill "$writer" 2>/dev/null
	wait "$writer" 2>/dev/null
}

# test_images SIZE: builds (or reuses) the test images; sets IMAGES.
test_images() {
	IMAGES="$WTGFS_TEST_IMAGES/$1"
	mkdir -p "$IMAGES"
	local rc=0
	"$top_srcdir/tests/mkimage.sh" "$1" "$IMAGES" || rc=$?
	if [ "$rc" = 77 ]; then
		# as root with /dev/fuse, only a missing tool makes mkimage.sh skip
		[ "${CI:-}" = true ] && [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] &&
			fail "cannot build test images: a tool is missing, and CI=true (see above)"
		skip "cannot build test images here (see above)"
	fi
	[ "$rc" = 0 ] || fail "tests/mkimage.sh $1 failed"
}
