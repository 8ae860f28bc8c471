#!/bin/bash
# A delta on a file system that fills up under a mount: the writer gets
# ENOSPC, what was fsynced before stays, the delta verifies clean and mounts
# again, and the daemon says what happened in one line.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3
test_images small

small="$TMP/small"
mkdir -p "$small"
mount -t tmpfs -o size=24m tmpfs "$small" || skip "cannot mount a tmpfs here"
MOUNTS="$MOUNTS $small"
d="$small/full.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
wtg_mount "$d" "$m"

python3 - "$m" <<'PY' || fail "the writer did not see ENOSPC as it should"
import errno, os, sys
m = sys.argv[1]
# something durable first
with open(f"{m}/kept.bin", "wb") as f:
    f.write(b"kept " * 1000)
    f.flush()
    os.fsync(f.fileno())
# then incompressible data until the delta's file system is full
err = None
fd = os.open(f"{m}/big.bin", os.O_WRONLY | os.O_CREAT)
try:
    for _ in range(64):
        os.write(fd, os.urandom(1 << 20))
    os.fsync(fd)
except OSError as e:
    err = e.errno
# close() says it again: the file could not be committed
try:
    os.close(fd)
except OSError as e:
    assert e.errno == errno.ENOSPC, e
if err != errno.ENOSPC:
    sys.exit(f"expected ENOSPC, got {err and errno.errorcode[err]}")
print("ENOSPC reached the writer")
# the mount still reads
assert open(f"{m}/kept.bin", "rb").read() == b"kept " * 1000
PY

# the daemon ends with an error (it could not commit the last batch)
"$WTGFS" umount "$m" || fail "wtgfs umount failed"
rc=0
wait "${MOUNT_PID[$m]}" || rc=$?
[ "$rc" != 0 ] || fail "the daemon exited 0 after losing a batch to a full disk"
grep -q "cannot store changes" "$TMP/daemon.log" || { cat "$TMP/daemon.log"; fail "the daemon did not say why"; }

"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify failed after a full disk"; }
grep -q clean "$TMP/verify" || fail "the delta is not clean after a full disk"
: >"$TMP/daemon.log"
wtg_mount "$d" "$m"
[ "$(cat "$m/kept.bin")" = "$(python3 -c 'print("kept " * 1000, end="")')" ] ||
	fail "what was fsynced before the disk filled is not there"
wtg_umount "$m"
echo PASS
