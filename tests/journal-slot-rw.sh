#!/bin/bash
# A slot's journal rows go up to a chunk's bytes before its buffer goes into
# a chunk: 16 fsynced 4 KiB writes into one 64 KiB slot of a base file
# leave 16 journal rows and no chunk for that slot, the 17th into another
# slot stores that slot's chunk and drops its rows.  The daemon is killed
# with the file open; 'wtgfs verify' is clean, and the next mount reads
# every write back.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3
need_tool sqlite3
test_images small

d="$TMP/j.delta"
m="$TMP/mnt"
f=Windows/Boot/PCAT/bootmgr
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
wtg_mount "$d" "$m"

cat >"$TMP/writer.py" <<'PY'
import hashlib, os, random, sys, time
path, tmp = sys.argv[1], sys.argv[2]
r = random.Random(16)
fd = os.open(path, os.O_RDWR)
model = bytearray(open(path, "rb").read())
assert len(model) > 2 * 65536, len(model)
# slot 0: 16 writes; slot 1: 17 writes
for slot, count in ((0, 16), (1, 17)):
    for k in range(count):
        off = slot * 65536 + (k % 16) * 4096
        data = r.randbytes(4096)
        os.pwrite(fd, data, off)
        model[off:off + 4096] = data
        os.fsync(fd)
with open(f"{tmp}/want", "w") as f:
    f.write(hashlib.sha256(model).hexdigest() + "\n")
    f.flush()
    os.fsync(f.fileno())
time.sleep(600)  # the file stays open: no close folds the buffers in
PY

kill_daemon_when_written "$m" "$TMP/want" python3 "$TMP/writer.py" "$m/$f" "$TMP"

rows0=$(sqlite3 "$d" "SELECT count(*) FROM journal WHERE idx = 0") || fail "the delta has no journal"
rows1=$(sqlite3 "$d" "SELECT count(*) FROM journal WHERE idx = 1")
chunk0=$(sqlite3 "$d" "SELECT count(*) FROM extents WHERE idx = 0")
chunk1=$(sqlite3 "$d" "SELECT count(*) FROM extents WHERE idx = 1")
echo "slot 0: $rows0 rows, $chunk0 extents; slot 1: $rows1 rows, $chunk1 extents"
[ "$rows0" = 16 ] || fail "16 fsynced 4 KiB writes into a slot left $rows0 journal rows, not 16"
[ "$chunk0" = 0 ] || fail "a slot whose writes fit the journal was stored as a chunk"
[ "$rows1" = 0 ] || fail "the 17th write into a slot left $rows1 journal rows, not its chunk"
[ "$chunk1" = 1 ] || fail "the 17th write into a slot stored no chunk"
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify fails after the kill"; }
grep -q clean "$TMP/verify" || { cat "$TMP/verify"; fail "the delta is not clean after the kill"; }

wtg_mount "$d" "$m"
got=$(sha256sum <"$m/$f" | cut -d' ' -f1)
[ "$got" = "$(cat "$TMP/want")" ] || fail "fsynced writes lost or changed by the kill"
wtg_umount "$m"
"$WTGFS" verify "$d" | grep -q clean || fail "verify fails after the fold"
echo PASS
