#!/bin/bash
# An NTFS volume as the base: the wtgfs mount of the test image's NTFS
# volume equals an ntfs-3g mount of the same volume file for file, byte for
# byte and xattr for xattr.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool ntfs-3g mkntfs python3 getfattr setfattr
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

# NTFS compression (LZNT1) reads as ntfs-3g reads it; a file compressed by
# Windows' WOF (CompactOS) gives EIO naming the file and the reason
truncate -s 64M "$TMP/c.img"
mkntfs -F -Q -q "$TMP/c.img" >/dev/null 2>&1 || fail "mkntfs failed"
mkdir -p "$TMP/c"
ntfs-3g -o compression "$TMP/c.img" "$TMP/c" || fail "ntfs-3g rw mount failed"
mkdir "$TMP/c/comp"
setfattr -h -v 0x00000810 -n system.ntfs_attrib_be "$TMP/c/comp"
seq 1 200000 >"$TMP/c/comp/seq.txt"
head -c 300000 /dev/urandom >"$TMP/c/comp/random.bin"
getfattr -e hex -n system.ntfs_attrib_be "$TMP/c/comp/seq.txt" | grep -q '=0x0000082' ||
	fail "ntfs-3g did not compress the test file"
echo "data" >"$TMP/c/wof.dll"
# IO_REPARSE_TAG_WOF, 16 bytes: WOF version 1, provider 2 (file), file version 1, XPRESS4K
setfattr -n system.ntfs_reparse_data -v 0x170000801000000001000000020000000100000000000000 "$TMP/c/wof.dll" ||
	fail "cannot set WOF reparse data"
umount "$TMP/c"
ntfs-3g -o ro "$TMP/c.img" "$TMP/c" || fail "ntfs-3g ro mount failed"
MOUNTS="$MOUNTS $TMP/c"
wtg_mount "$TMP/c.img" "$m"
python3 "$top_srcdir/tests/compare-trees.py" "$m/comp" "$TMP/c/comp" || fail "compressed files differ"
cat "$m/wof.dll" >/dev/null 2>"$TMP/err" && fail "a WOF file read as if it were plain"
grep -q "Input/output error" "$TMP/err" || { cat "$TMP/err"; fail "WOF: not EIO"; }
wtg_umount "$m"
grep -q "'wof.dll': compressed by Windows (WOF/CompactOS)" "$TMP/daemon.log" ||
	{ cat "$TMP/daemon.log"; fail "WOF: the log does not name the file and the reason"; }

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
