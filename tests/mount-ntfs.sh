#!/bin/bash
# An NTFS volume as the base: the wtgfs mount of the test image's NTFS
# volume equals an ntfs-3g mount of the same volume file for file, byte for
# byte and xattr for xattr.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool ntfs-3g python3 getfattr
test_images small

mkdir -p "$TMP/ref"
ntfs-3g -o ro "$IMAGES/volume.img" "$TMP/ref" || fail "ntfs-3g mount failed"
MOUNTS="$MOUNTS $TMP/ref"

m="$TMP/mnt"
wtg_mount "$IMAGES/volume.img" "$m"
python3 "$top_srcdir/tests/compare-trees.py" "$m" "$TMP/ref" || fail "the volume differs from ntfs-3g's view"
cmp "$m/WINDOWS/system32/DRIVERS/etc/HOSTS" "$TMP/ref/Windows/System32/drivers/etc/hosts" ||
	fail "case-insensitive lookup failed"
wtg_umount "$m"

# not NTFS, not a WIM: one line
head -c 1048576 /dev/urandom >"$TMP/noise.img"
"$WTGFS" mount "$TMP/noise.img" "$m" 2>"$TMP/err" && fail "mounted noise"
[ "$(grep -c . "$TMP/err")" = 1 ] || { cat "$TMP/err"; fail "not a one-line error"; }
grep -q "not a WIM file, a partitioned disk or an NTFS volume" "$TMP/err" || { cat "$TMP/err"; fail "noise not named"; }
# an NTFS boot sector over a damaged volume: one line
cp "$IMAGES/volume.img" "$TMP/broken.img"
dd if=/dev/zero of="$TMP/broken.img" bs=1M seek=1 count=200 conv=notrunc status=none
rc=0
timeout 60 "$WTGFS" mount -f "$TMP/broken.img" "$m" 2>"$TMP/err" || rc=$?
mountpoint -q "$m" && { umount -l "$m"; fail "mounted a volume with its MFT zeroed"; }
[ "$rc" = 2 ] || { cat "$TMP/err"; fail "damaged volume: exit $rc"; }
grep -q "broken.img" "$TMP/err" || { cat "$TMP/err"; fail "damaged volume not named"; }
echo "ok: $(cat "$TMP/err")"
echo PASS
