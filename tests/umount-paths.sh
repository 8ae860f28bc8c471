#!/bin/bash
# A delta whose path holds a comma, a space, a tab, a backslash or a
# newline: the mount's source in /proc/self/mountinfo reads back as the
# delta's path exactly, and 'wtgfs umount' waits for the daemon's last
# commit on that path (a daemon that cannot finish keeps umount waiting).
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3
test_images small

dir="$TMP/a,b c	d\\e"$'\n'"f"
mkdir -p "$dir" || fail "cannot make a directory with an odd name"
d="$dir/x,y.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
wtg_mount "$d" "$m"

python3 - "$d" "$m" <<'PY' || fail "the mount's source is not the delta's path"
import os, re, sys
delta, mnt = sys.argv[1], sys.argv[2]
unesc = lambda s: re.sub(r"\\([0-7]{3})", lambda x: chr(int(x.group(1), 8)), s)
for line in open("/proc/self/mountinfo"):
    f = line.split()
    if unesc(f[4]) == mnt:
        src = unesc(f[f.index("-") + 2])
        assert src == delta, (src, delta)
        break
else:
    sys.exit("the mount is not in mountinfo")
PY

echo "kept across umount" >"$m/kept.txt" || fail "cannot write"
# the daemon cannot commit while stopped: umount must wait for it
pid=${MOUNT_PID[$m]}
kill -STOP "$pid"
"$WTGFS" umount "$m" 2>"$TMP/umount.err" &
upid=$!
sleep 1
if ! kill -0 "$upid" 2>/dev/null; then
	kill -CONT "$pid"
	cat "$TMP/umount.err"
	fail "wtgfs umount returned while the daemon had not committed"
fi
kill -CONT "$pid"
wait "$upid" || { cat "$TMP/umount.err"; fail "wtgfs umount failed"; }
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || { cat "$TMP/daemon.log"; fail "the daemon exited with $rc"; }

"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify failed"; }
wtg_mount "$d" "$m"
[ "$(cat "$m/kept.txt")" = "kept across umount" ] || fail "the last write did not survive umount"
wtg_umount "$m"
echo "ok"
