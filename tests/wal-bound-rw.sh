#!/bin/bash
# A long copy into a mounted delta keeps the delta's -wal file bounded:
# checkpoints run on the daemon's own thread beside the writer, and the
# writer still makes the log start again from its beginning once it holds
# 64 MiB.  240 MiB of incompressible data, 8 MiB a file, each closed: the
# -wal file never grows past 64 MiB and one file's commit, every file reads
# back, the -wal file is gone after the unmount and the delta verifies clean.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3
test_images small

d="$TMP/w.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
wtg_mount "$d" "$m"

python3 - "$m" "$d-wal" >"$TMP/sums" <<'PY' || fail "the copy failed"
import hashlib, os, sys
m, wal = sys.argv[1], sys.argv[2]
os.mkdir(f"{m}/bulk")
most = 0
# made first: no pause between the files for the checkpoints to catch up
data = [os.urandom(8 << 20) for i in range(30)]
for i, d in enumerate(data):
    with open(f"{m}/bulk/f{i}", "wb") as f:
        for off in range(0, len(d), 1 << 20):
            f.write(d[off:off + (1 << 20)])
            if os.path.exists(wal):
                most = max(most, os.stat(wal).st_size)
    print(f"f{i} {hashlib.sha256(d).hexdigest()}")
print(f"wal {most}", file=sys.stderr)
limit = (64 << 20) + (10 << 20)
if most > limit:
    sys.exit(f"the -wal file grew to {most} bytes during the copy (at most {limit})")
PY
wtg_umount "$m"
[ ! -e "$d-wal" ] || fail "the -wal file is still there after the unmount"
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify fails after the copy"; }
grep -q clean "$TMP/verify" || { cat "$TMP/verify"; fail "the delta is not clean after the copy"; }
wtg_mount "$d" "$m"
while read -r name sum; do
	got=$(sha256sum <"$m/bulk/$name" | cut -d' ' -f1)
	[ "$got" = "$sum" ] || fail "bulk/$name reads back wrong"
done <"$TMP/sums"
wtg_umount "$m"
echo PASS
