#!/bin/bash
# A batch lost to a full disk is never mixed with later work: once a large
# write fails with ENOSPC on a small tmpfs, every later change fails too
# (the mount's sticky error), nothing more is committed, and after a remount
# the delta is exactly what it was when the batch was lost: the last good
# commit, with no inode that lost its name.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3
test_images small

small="$TMP/small"
mkdir -p "$small"
mount -t tmpfs -o size=40m tmpfs "$small" || skip "cannot mount a tmpfs here"
MOUNTS="$MOUNTS $small"
d="$small/lost.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
wtg_mount "$d" "$m"
base_max=$(find "$m" -xdev -printf '%i\n' | sort -n | tail -1)

# state DELTA: a digest of every table of the delta, read-only
state() {
	python3 - "$1" <<'PY'
import hashlib, sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
for t, cols in [("meta", "*"), ("layers", "*"), ("snapshots", "*"), ("sds", "*"),
                ("chunks", "hash, size, codec, length(data)"), ("inodes", "*"),
                ("names", "*"), ("streams", "*"), ("extents", "*")]:
    rows = sorted(c.execute(f"SELECT {cols} FROM {t}").fetchall(), key=repr)
    print(t, len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
PY
}

python3 - "$m" <<'PY' || fail "the writer did not see ENOSPC"
import errno, os, sys
m = sys.argv[1]
with open(f"{m}/kept.bin", "wb") as f:
    f.write(b"kept " * 1000)
    f.flush()
    os.fsync(f.fileno())
os.mkdir(f"{m}/kept-dir")
fd = os.open(m, os.O_RDONLY | os.O_DIRECTORY)
os.fsync(fd)
os.close(fd)
err = None
fd = os.open(f"{m}/big.bin", os.O_WRONLY | os.O_CREAT)
try:
    for _ in range(120):
        os.write(fd, os.urandom(1 << 20))
    os.fsync(fd)
except OSError as e:
    err = e.errno
try:
    os.close(fd)
except OSError:
    pass
if err != errno.ENOSPC:
    sys.exit(f"expected ENOSPC, got {err and errno.errorcode[err]}")
PY
state "$d" >"$TMP/lost.state" || fail "cannot read the delta after the failure"

python3 - "$m" <<'PY' || fail "a change after the lost batch succeeded"
import os, sys
m = sys.argv[1]
for what, call in [("rename", lambda: os.rename(f"{m}/kept.bin", f"{m}/renamed.bin")),
                   ("mkdir", lambda: os.mkdir(f"{m}/new-dir")),
                   ("create", lambda: open(f"{m}/new.txt", "w").close())]:
    try:
        call()
    except OSError:
        continue
    sys.exit(f"{what} after a lost batch returned 0")
# reads still work
assert open(f"{m}/kept.bin", "rb").read() == b"kept " * 1000
PY

"$WTGFS" umount "$m" || fail "wtgfs umount failed"
rc=0
wait "${MOUNT_PID[$m]}" || rc=$?
[ "$rc" != 0 ] || fail "the daemon exited 0 after losing a batch"
grep -q "cannot store changes" "$TMP/daemon.log" || { cat "$TMP/daemon.log"; fail "the daemon did not say why"; }
[ "$(grep -c "cannot store changes" "$TMP/daemon.log")" = 1 ] || { cat "$TMP/daemon.log"; fail "the daemon said it more than once"; }

state "$d" >"$TMP/after.state" || fail "cannot read the delta after unmount"
diff "$TMP/lost.state" "$TMP/after.state" || fail "the delta changed after the batch was lost"
python3 - "$d" "$base_max" <<'PY' || fail "the delta keeps an inode without a name"
import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
named = {r[0] for r in c.execute("SELECT ino FROM names WHERE ino IS NOT NULL")}
lost = [r for r in c.execute("SELECT ino, size FROM streams WHERE deleted = 0")
        if r[0] not in named and r[0] > int(sys.argv[2])]
assert not lost, f"streams of inodes no name reaches: {lost}"
PY
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify failed after a lost batch"; }

: >"$TMP/daemon.log"
wtg_mount "$d" "$m"
[ "$(cat "$m/kept.bin")" = "$(python3 -c 'print("kept " * 1000, end="")')" ] ||
	fail "what was fsynced before the full disk is gone"
[ -d "$m/kept-dir" ] || fail "a directory synced before the full disk is gone"
[ -e "$m/renamed.bin" ] || [ -e "$m/new-dir" ] || [ -e "$m/new.txt" ] &&
	fail "a change made after the lost batch is in the delta"
wtg_umount "$m"
echo "ok"
