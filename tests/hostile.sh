#!/bin/bash
# Hostile images (issue 9): crafted copies of the test images, each made
# here with a byte patch or through ntfs-3g.  For each: no sanitizer report,
# no hang (every read runs under a time limit), no symlink whose target
# leads out of the mount, no probing of host paths.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool wimexport python3 timeout
test_images small
corrupt="python3 $top_srcdir/tests/wimcorrupt.py"
m="$TMP/mnt"
mkdir -p "$m"

# A hung read leaves its daemon spinning: stop every daemon we started.
hang() {
	for pid in "${MOUNT_PID[@]}"; do
		kill -9 "$pid" 2>/dev/null
	done
	fail "$* did not return in 60 s (a hang)"
}

# bounded CMD...: runs CMD with a time limit; a hang fails the test.
bounded() {
	local rc=0
	timeout -s KILL 60 "$@" || rc=$?
	[ "$rc" = 137 ] && hang "'$*'"
	return "$rc"
}

# read_all DIR: lists DIR and reads every file in it, each under a time
# limit; prints how many reads failed.
read_all() {
	local bad=0
	bounded ls -lR "$1" >/dev/null 2>&1
	while IFS= read -r -d '' f; do
		bounded cat "$f" >/dev/null 2>&1 || bad=$((bad + 1))
	done < <(bounded find "$1" -type f -print0 2>/dev/null)
	echo "$bad"
}

# no_sanitizer_report: the daemon's log holds no ASan/UBSan report.
no_sanitizer_report() {
	if grep -E -q 'AddressSanitizer|runtime error|LeakSanitizer' "$TMP/daemon.log"; then
		cat "$TMP/daemon.log"
		fail "a sanitizer report: $1"
	fi
}

# ---- 1. solid resources whose header claims a size near 2^64 ----
# The chunk count (size + chunk size - 1) / chunk size wrapped to 0: a
# read past the one-entry chunk table, or a read loop that never advanced.
$corrupt "$IMAGES/solid.esd" solid-size 0xFFFFFFFFFFFFFFFF -o "$TMP/huge.esd" >/dev/null
wtg_mount "$TMP/huge.esd" "$m"
bad=$(read_all "$m")
mountpoint -q "$m" && [ -d "$m/Windows" ] || { cat "$TMP/daemon.log"; fail "the mount of huge.esd went away"; }
[ "$bad" -gt 0 ] || fail "every file of a solid resource with a bad header read"
wtg_umount "$m"
no_sanitizer_report huge.esd
grep -q "solid chunk table larger than its resource" "$TMP/daemon.log" ||
	{ cat "$TMP/daemon.log"; fail "huge.esd: the log does not say why"; }
echo "ok: huge.esd: $bad files refused, $(grep -c . "$TMP/daemon.log") lines logged"
: >"$TMP/daemon.log"

# 32 KiB solid chunks and a blob moved to a chunk-aligned offset (2^40):
# a whole-chunk read there made no progress and spun for ever.
wimexport "$IMAGES/lzx.wim" 1 "$TMP/s32.esd" --solid --solid-chunk-size=32768 >/dev/null
$corrupt "$TMP/s32.esd" solid-size 0xFFFFFFFFFFFFFFFF -o "$TMP/s32huge.esd" >/dev/null
$corrupt "$TMP/s32huge.esd" move-blob largest 0x10000000000 -o "$TMP/spin.esd" >/dev/null
wtg_mount "$TMP/spin.esd" "$m"
bad=$(read_all "$m")
mountpoint -q "$m" && [ -d "$m/Windows" ] || { cat "$TMP/daemon.log"; fail "the mount of spin.esd went away"; }
[ "$bad" -gt 0 ] || fail "every file of spin.esd read"
wtg_umount "$m"
no_sanitizer_report spin.esd
echo "ok: spin.esd: $bad files refused, no hang"
: >"$TMP/daemon.log"

echo PASS
