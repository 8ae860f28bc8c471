#!/bin/bash
# Churn on a read-write mount: rounds of create, write 100 bytes, close,
# unlink leave nothing behind: the daemon frees each inode once the kernel
# forgets it (its memory stays flat), and the delta keeps no name, no
# whiteout and no deleted-inode record of files only the working layer
# ever had.  A file of the base, removed, still takes a whiteout.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3 sqlite3
test_images small

d="$TMP/churn.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
wtg_mount "$d" "$m"
pid=${MOUNT_PID[$m]}

churn() {
	python3 - "$m" "$1" <<'PY' || fail "a churn round failed"
import os, sys
m, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    p = f"{m}/churn-{i}.txt"
    with open(p, "wb") as f:
        f.write(b"x" * 100)
    os.unlink(p)
PY
}
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }

churn 2000
sleep 1.5
before=$(rss)
rounds=10000
churn $rounds
sleep 1.5
after=$(rss)
echo "daemon RSS: $before KiB after 2000 rounds, $after KiB after $rounds more"
# the sanitizers' quarantine keeps freed memory: only the plain build counts
if ! ldd "$WTGFS" 2>/dev/null | grep -q libasan; then
	[ $(((after - before) * 1024 / rounds)) -lt 100 ] ||
		fail "the daemon keeps $(((after - before) * 1024 / rounds)) bytes per file that came and went"
fi
rm "$m/Windows/System32/license.rtf" || fail "cannot remove a base file"
wtg_umount "$m"

names=$(sqlite3 "$d" "SELECT count(*) FROM names")
deleted=$(sqlite3 "$d" "SELECT count(*) FROM inodes WHERE deleted")
streams=$(sqlite3 "$d" "SELECT count(*) FROM streams")
echo "rows left: $names names, $deleted deleted inodes, $streams streams"
[ "$names" = 1 ] || fail "churn left $names name records (1 whiteout expected)"
[ "$(sqlite3 "$d" "SELECT count(*) FROM names WHERE ino IS NULL AND name = 'license.rtf'")" = 1 ] ||
	fail "a removed base file has no whiteout"
[ "$deleted" = 1 ] || fail "churn left $deleted deleted-inode records (1 expected: license.rtf)"
[ "$streams" = 0 ] || fail "churn left $streams stream records"
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify failed after churn"; }
wtg_mount "$d" "$m"
[ -e "$m/Windows/System32/license.rtf" ] && fail "a removed base file came back"
ls "$m" | grep -q churn && fail "a churn file came back"
wtg_umount "$m"
echo "ok"
