#!/bin/bash
# wim_meta on the small test image's metadata (LZX, XPRESS, none, solid
# ESD): tests/unit_wim_meta's checks (parse and write back the same bytes,
# the walk equals wimlib_iterate_dir_tree, every dentry re-encodes to its
# bytes, each change gives the tree the model predicts, bad inputs are
# -EINVAL); then the metadata after every kind of change becomes an image's
# metadata resource (tests/wimcorrupt.py set-metadata) or an appended image
# (src/wim_append.c), and wimlib must verify the WIM, see in it what our
# walk sees, and apply it to a directory and to an NTFS volume, whose files,
# xattrs, DOS names and links equal a wtgfs mount of that image.
. "$(dirname "$0")/lib.sh"
need_tool wimverify wimapply python3
test_images small
unit="$top_builddir/tests/unit_wim_meta"

"$unit" "$IMAGES/lzx.wim" "$IMAGES/xpress.wim" "$IMAGES/none.wim" "$IMAGES/solid.esd" ||
	fail "unit_wim_meta failed on the small image"

for w in lzx none; do
	echo "== $w.wim with changed metadata"
	"$unit" --patch "$IMAGES/$w.wim" "$TMP/$w.meta" || fail "the changes failed on $w.wim"
	python3 "$top_srcdir/tests/wimcorrupt.py" "$IMAGES/$w.wim" set-metadata "$TMP/$w.meta" \
		-o "$TMP/$w.wim" >/dev/null || fail "cannot put the metadata into $w.wim"
	wimverify "$TMP/$w.wim" >"$TMP/verify.log" 2>&1 ||
		{ cat "$TMP/verify.log"; fail "wimverify refuses the changed metadata"; }
	"$unit" --same "$TMP/$w.wim" "$TMP/$w.meta" || fail "wimlib reads other facts than our walk"
done

# appended by the raw appender (src/wim_append.c) as image 2, its chunks
# reused from image 1's metadata where they are equal
echo "== lzx.wim: the changed metadata appended as image 2"
cp "$IMAGES/lzx.wim" "$TMP/append.wim"
"$unit" --append "$TMP/append.wim" "$TMP/append.meta" || fail "the append failed"
wimverify "$TMP/append.wim" >"$TMP/verify.log" 2>&1 ||
	{ cat "$TMP/verify.log"; fail "wimverify refuses the appended image"; }
"$unit" --same "$TMP/append.wim" "$TMP/append.meta" 2 || fail "wimlib reads other facts in image 2"
"$top_builddir/tests/wim_meta_dump" "$IMAGES/lzx.wim" 1 "$TMP/base.meta" || fail "cannot read the base"
"$unit" --same "$TMP/append.wim" "$TMP/base.meta" 1 >/dev/null || fail "image 1 changed"

# applied to a directory: the new names, the moved file, the new link
wimapply "$TMP/lzx.wim" 1 "$TMP/apply" >"$TMP/apply.log" 2>&1 ||
	{ tail -5 "$TMP/apply.log"; fail "wimapply to a directory failed"; }
v21="$TMP/apply/Program Files/Contoso Tools/v2.1"
[ -d "$v21/New Dir/sub" ] || fail "the new directory is not there"
[ -f "$v21/New Dir/moved contoso.exe" ] && [ -f "$v21/New Dir/child.bin" ] ||
	fail "the moved and the new file are not there"
link=$(find "$TMP/apply" -name 'new link.txt')
new=$(find "$TMP/apply" -name 'new * file.txt')
[ -n "$link" ] && [ -n "$new" ] || fail "the new file or its second name is missing"
[ "$(stat -c %i "$link")" = "$(stat -c %i "$new")" ] || fail "the two new names are not one file"

# applied to NTFS (security descriptors, DOS names, object ids, streams):
# the same tree as a wtgfs mount of the WIM
if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] && have_tool mkntfs ntfs-3g getfattr; then
	truncate -s 512M "$TMP/ref.img"
	mkntfs -F -Q -q "$TMP/ref.img" >/dev/null 2>&1 || fail "mkntfs failed"
	wimapply "$TMP/append.wim" 2 "$TMP/ref.img" >"$TMP/apply.log" 2>&1 ||
		{ tail -5 "$TMP/apply.log"; fail "wimapply to NTFS failed"; }
	mkdir -p "$TMP/ref"
	ntfs-3g -o ro "$TMP/ref.img" "$TMP/ref" || fail "ntfs-3g mount failed"
	MOUNTS="$MOUNTS $TMP/ref"
	wtg_mount "$TMP/append.wim:2" "$TMP/mnt"
	python3 "$top_srcdir/tests/compare-trees.py" "$TMP/mnt" "$TMP/ref" ||
		fail "the changed image differs from wimapply + ntfs-3g"
	wtg_umount "$TMP/mnt"
else
	echo "the NTFS part needs root, /dev/fuse, mkntfs, ntfs-3g and getfattr: not run"
fi
echo PASS
