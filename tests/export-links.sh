#!/bin/bash
# wtgfs export --append on a base whose hard link groups break wimlib's
# (and DISM's) rule, as the install.wim of Windows 7 does: the names of a
# group link only where their unnamed data agree, and never a directory.
# The base holds a file of two names (a.bin, e/a2.bin), and in its group a
# file of other data (b.bin), a directory (sub) and a copy of a.bin's data
# with a named stream of its own (c.bin, which wimlib links to a.bin, its
# stream dropped, so its names' bytes differ).  The raw append's XML counts
# (directories, files, total and hard-link bytes) are those wimlib gives the
# same tree captured afresh (a new file added, a.bin and b.bin changed),
# the appended image passes wimverify, and applied with wimapply it equals
# a wtgfs mount of the delta.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool wimcapture wimapply wimverify wiminfo mkntfs ntfs-3g jq setfattr python3

CMP="$top_srcdir/tests/compare-trees.py"
CORRUPT="$top_srcdir/tests/wimcorrupt.py"

# the tree on NTFS (for the named stream), captured uncompressed (for the
# metadata edits)
truncate -s 64M "$TMP/src.img"
mkntfs -Q -F "$TMP/src.img" >/dev/null 2>&1 || fail "mkntfs failed"
mkdir -p "$TMP/src"
ntfs-3g -o streams_interface=xattr "$TMP/src.img" "$TMP/src" || fail "ntfs-3g cannot mount the source"
MOUNTS="$MOUNTS $TMP/src"
mkdir -p "$TMP/src/d/sub" "$TMP/src/e"
head -c 70000 /dev/urandom >"$TMP/src/d/a.bin"
ln "$TMP/src/d/a.bin" "$TMP/src/e/a2.bin" || fail "a hard link failed"
head -c 30000 /dev/urandom >"$TMP/src/d/b.bin"
cp "$TMP/src/d/a.bin" "$TMP/src/d/c.bin"
setfattr -n user.extra -v "a stream of its own" "$TMP/src/d/c.bin" || fail "a named stream failed"
echo x >"$TMP/src/d/sub/f"
umount "$TMP/src"
wimcapture "$TMP/src.img" "$TMP/ok.wim" --compress=none >/dev/null 2>&1 || fail "wimcapture of the source failed"
python3 "$CORRUPT" "$TMP/ok.wim" link-group d/a.bin d/b.bin -o "$TMP/l1.wim" >/dev/null &&
	python3 "$CORRUPT" "$TMP/l1.wim" link-group d/a.bin d/sub -o "$TMP/l2.wim" >/dev/null &&
	python3 "$CORRUPT" "$TMP/l2.wim" link-group d/a.bin d/c.bin -o "$TMP/base.wim" >/dev/null ||
	fail "wimcorrupt.py link-group failed"
rm -f "$TMP/l1.wim" "$TMP/l2.wim" "$TMP/src.img"

"$WTGFS" init "$TMP/l.delta" "$TMP/base.wim" >/dev/null || fail "init failed"
wtg_mount "$TMP/l.delta" "$TMP/m"
# (wimlib's reading: b.bin and sub stand alone, c.bin is a third name of a.bin)
[ "$(stat -c %h "$TMP/m/d/b.bin")" = 1 ] || fail "b.bin is linked to a file of other data"
[ "$(stat -c %h "$TMP/m/d/c.bin")" = 3 ] || fail "c.bin is not linked to a.bin"
echo new >"$TMP/m/d/new.txt"
# (a file of the group, and the file that stands alone in it, changed)
echo patched | dd of="$TMP/m/d/a.bin" bs=1 seek=100 conv=notrunc status=none
echo more >>"$TMP/m/d/b.bin"
wtg_umount "$TMP/m"

"$WTGFS" export "$TMP/l.delta" "$TMP/base.wim" --append --name appended --json >"$TMP/a.json" 2>&1 ||
	{ cat "$TMP/a.json"; fail "the append failed"; }
jq -s -e 'map(select(.type == "result"))[0] | .raw and .incremental' "$TMP/a.json" >/dev/null ||
	fail "the append did not go through wtgfs's appender: $(tail -n 1 "$TMP/a.json")"
out=$(wimverify "$TMP/base.wim" 2>&1) || fail "wimverify after the append: $out"
# the same tree as a new WIM (written to NTFS and captured by wimlib)
"$WTGFS" export "$TMP/l.delta" "$TMP/full.wim" >/dev/null 2>&1 || fail "the full export failed"
for f in "Directory Count" "File Count" "Total Bytes" "Hard Link Bytes"; do
	got=$(wiminfo "$TMP/base.wim" 2 | grep "^$f:")
	want=$(wiminfo "$TMP/full.wim" 1 | grep "^$f:")
	echo "$got"
	[ -n "$got" ] && [ "$got" = "$want" ] || fail "the raw append's '$got' is not the capture's '$want'"
done
ntfs_apply "$TMP/base.wim" 2 "$TMP/a.img" "$TMP/n" 64M
wtg_mount "$TMP/l.delta" "$TMP/m"
python3 "$CMP" "$TMP/m" "$TMP/n" >"$TMP/cmp" 2>&1 ||
	{ cat "$TMP/cmp"; fail "the appended image differs from the delta"; }
tail -n 1 "$TMP/cmp"
wtg_umount "$TMP/m"

# Link groups whose names lie far apart in the tree (three names each, in
# three directories, of one size each): the append's counts are the
# base's as wimlib counted them at capture, plus the one new file.
mkdir -p "$TMP/src2"
for d in a b c d e f g h; do
	mkdir "$TMP/src2/$d"
	for i in $(seq 1 40); do echo "$d $i" >"$TMP/src2/$d/filler$i"; done
done
for i in 1 2 3; do
	head -c $((i * 5000)) /dev/urandom >"$TMP/src2/a/linked$i"
	ln "$TMP/src2/a/linked$i" "$TMP/src2/h/linked$i"
	ln "$TMP/src2/a/linked$i" "$TMP/src2/e/linked$i"
done
wimcapture "$TMP/src2" "$TMP/b2.wim" >/dev/null || fail "wimcapture of the linked tree failed"
"$WTGFS" init "$TMP/b2.delta" "$TMP/b2.wim" >/dev/null || fail "init failed"
wtg_mount "$TMP/b2.delta" "$TMP/m"
echo "new" >"$TMP/m/d/new.txt"
wtg_umount "$TMP/m"
"$WTGFS" export "$TMP/b2.delta" "$TMP/b2.wim" --append --name appended >/dev/null ||
	fail "the append of the linked tree failed"
field() { wiminfo "$TMP/b2.wim" "$1" | sed -n "s/^$2: *//p"; }
[ "$(field 2 'Hard Link Bytes')" = "$(field 1 'Hard Link Bytes')" ] &&
	[ "$(field 2 'Total Bytes')" = $(($(field 1 'Total Bytes') + 4)) ] &&
	[ "$(field 2 'File Count')" = $(($(field 1 'File Count') + 1)) ] &&
	[ "$(field 2 'Directory Count')" = "$(field 1 'Directory Count')" ] ||
	{ wiminfo "$TMP/b2.wim"; fail "the linked tree's counts are not the base's plus the new file"; }
echo "ok"
