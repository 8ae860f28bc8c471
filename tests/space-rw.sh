#!/bin/bash
# Space on a read-write mount: the data of a deleted or truncated file is
# freed at once (its chunks go when nothing else names them), the freed
# pages are used again so a delta does not grow with files that come and
# go, and verify calls a chunk that nothing names a problem.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3 sqlite3
test_images small

d="$TMP/space.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"

# report: the verify line of the delta (the mount must be down)
report() {
	"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify failed: $1"; }
	cat "$TMP/verify"
}
count() { sqlite3 "$d" "SELECT count(*) FROM $1"; }
delta_size() { cat "$d" "$d-wal" 2>/dev/null | wc -c; }

wtg_mount "$d" "$m"
head -c $((20 << 20)) /dev/urandom >"$TMP/rand"
sizes=()
for round in 1 2 3 4 5; do
	cp "$TMP/rand" "$m/big.bin" || fail "cannot write 20 MiB"
	# a new random first chunk each time: nothing to share with the last
	head -c 65536 /dev/urandom | dd of="$m/big.bin" conv=notrunc status=none
	rm "$m/big.bin" || fail "cannot remove it"
	wtg_umount "$m"
	report "after round $round" >/dev/null
	[ "$(count chunks)" = 0 ] || { cat "$TMP/verify"; fail "round $round: a removed file leaves $(count chunks) chunks"; }
	[ "$(count extents)" = 0 ] || fail "round $round: a removed file leaves extents"
	sizes+=("$(delta_size)")
	wtg_mount "$d" "$m"
done
echo "delta sizes after each round: ${sizes[*]}"
[ "${sizes[4]}" -lt $((sizes[0] + sizes[0] / 2)) ] || fail "the delta grows with files that come and go"

# truncation: O_TRUNC over a big file, three times
for _ in 1 2 3; do
	head -c $((10 << 20)) /dev/urandom >"$m/t.bin" || fail "cannot write 10 MiB"
	printf 'abc' >"$m/t.bin" || fail "cannot truncate it"
done
head -c $((10 << 20)) /dev/urandom >"$m/cut.bin"
truncate -s 100000 "$m/cut.bin" || fail "truncate failed"
wtg_umount "$m"
report "after truncation" >/dev/null
# t.bin: one chunk of 3 bytes; cut.bin: two slots
[ "$(count chunks)" = 3 ] || fail "truncated files keep $(count chunks) chunks (3 expected)"

# verify: a chunk that nothing names is a problem
sqlite3 "$d" "DELETE FROM extents WHERE rowid IN (SELECT rowid FROM extents LIMIT 1)" 2>/dev/null ||
	sqlite3 "$d" "DELETE FROM extents WHERE idx = 1" || fail "cannot drop an extent"
rc=0
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || rc=$?
[ "$rc" != 0 ] || { cat "$TMP/verify"; fail "verify calls a delta with a chunk nothing names clean"; }
grep -q "nothing names" "$TMP/verify" || { cat "$TMP/verify"; fail "verify does not say what is wrong"; }
echo "ok"
