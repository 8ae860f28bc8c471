#!/bin/bash
# Export and flush read a mounted delta's HEAD as one commit left it: a
# writer keeps replacing a file (a whole new file renamed over it, so every
# committed state holds one whole version) while exports of HEAD run; each
# exported file is one version, whole.  A flush of a mounted delta's HEAD
# is not refused, and the drive holds the tree.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3 wimextract sha256sum
test_images small

d="$TMP/w.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
wtg_mount "$d" "$m"

# version i: 8 MiB of the byte i, so a torn read shows as two byte values;
# the first is made durable (fsync commits the mount's batch), so every
# export of the last commit holds some version
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT)
os.write(fd, b"@" * (8 << 20))
os.fsync(fd)
os.close(fd)' "$m/f" || fail "writing the first version failed"
python3 - "$m" "$TMP/stop" <<'PYEOF' &
import os, sys
m, stop = sys.argv[1:]
i = 0
while not os.path.exists(stop):
    with open(m + '/tmp', 'wb') as f:
        f.write(bytes([65 + i % 26]) * (8 << 20))
    os.rename(m + '/tmp', m + '/f')
    i += 1
PYEOF
writer=$!
trap 'touch "$TMP/stop"; wait $writer 2>/dev/null' EXIT

for n in 1 2 3 4; do
	rm -f "$TMP/e.wim"
	"$WTGFS" export "$d" "$TMP/e.wim" --compress none >"$TMP/export.out" 2>&1 ||
		{ cat "$TMP/export.out"; fail "export $n of a mounted delta failed"; }
	wimextract "$TMP/e.wim" 1 /f --to-stdout >"$TMP/f.out" 2>"$TMP/wimextract.err" ||
		{ cat "$TMP/wimextract.err"; fail "export $n holds no /f"; }
	kinds=$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); print(len(d), len(set(d)))' "$TMP/f.out")
	[ "$kinds" = "8388608 1" ] || fail "export $n: /f is torn or short (size, distinct bytes: $kinds)"
done

rc=0
"$WTGFS" flush "$d" "$TMP/drive.img" --size 4G --yes --no-wtg-tweaks --verify >"$TMP/flush.out" 2>&1 || rc=$?
[ "$rc" = 0 ] || { cat "$TMP/flush.out"; fail "flush of a mounted delta exited $rc"; }
touch "$TMP/stop"
wait $writer || fail "the writer failed"
trap - EXIT
wtg_umount "$m"
"$WTGFS" verify "$d" >/dev/null || fail "verify after the exports failed"
echo "ok: 4 exports and a verified flush of a mounted delta under a writer"
