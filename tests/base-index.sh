#!/bin/bash
# The index of the base a delta keeps for diff (format 4): every field of
# every inode and every name equal to the loaded tree's, on a WIM and on an
# NTFS volume (tests/base_index_check), and verify checks it is whole; a
# diff of metadata changes that works with the base image moved away (it
# reads the index, never the image); a delta made before the index (format 3): a read-only diff loads
# the image and says nothing more, leaves the file as it was, and the first
# writable open builds the index; data of the base read (--hives) opens
# the image then, and says so when it is gone.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool sqlite3 setfattr
test_images small

CHECK="$top_builddir/tests/base_index_check"
S=Windows/System32

echo "== the index equals the loaded tree, field by field"
for img in lzx.wim solid.esd volume.img; do
	"$WTGFS" init "$TMP/$img.delta" "$IMAGES/$img" >/dev/null || fail "init on $img failed"
	"$CHECK" "$TMP/$img.delta" "$IMAGES/$img" >"$TMP/out" 2>&1 || {
		head -40 "$TMP/out"
		fail "the index of $img differs from its tree"
	}
	echo "ok: $img: $(tail -1 "$TMP/out")"
done

echo "== verify checks the index"
"$WTGFS" verify "$TMP/lzx.wim.delta" >/dev/null || fail "verify of a new delta"
cp "$TMP/lzx.wim.delta" "$TMP/cut.delta"
sqlite3 "$TMP/cut.delta" "DELETE FROM base_inodes WHERE ino = 5" || fail "cannot cut the index"
rc=0
"$WTGFS" verify "$TMP/cut.delta" >/dev/null 2>"$TMP/err" || rc=$?
[ "$rc" -ge 2 ] || fail "verify of a delta whose index lost a record exited $rc"
grep -q "the index of the base is incomplete" "$TMP/err" || { cat "$TMP/err"; fail "verify said no word of the index"; }

echo "== diff reads the index, not the image"
cp "$IMAGES/lzx.wim" "$TMP/base.wim"
d="$TMP/d.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$TMP/base.wim" >/dev/null || fail "init failed"
"$WTGFS" snapshot "$d" s0 >/dev/null || fail "snapshot s0"
wtg_mount "$d" "$m"
echo new >"$m/new.txt"
mv "$m/$S/api.dll" "$m/$S/api-renamed.dll"
chmod a-w "$m/$S/auth.sys"
setfattr -n system.ntfs_dos_name -v "CHUNKS~1.BIN" "$m/$S/chunks3plus1.bin"
ln "$m/$S/crypt.dll" "$m/$S/crypt-link.dll"
printf 'more' >>"$m/$S/notepad.exe"
wtg_umount "$m"
"$WTGFS" snapshot "$d" s1 >/dev/null || fail "snapshot s1"
rc=0
"$WTGFS" diff "$d" s0 s1 >"$TMP/want" 2>"$TMP/err" || rc=$?
[ "$rc" = 1 ] || { cat "$TMP/err"; fail "diff exited $rc, not 1"; }
[ "$(wc -l <"$TMP/want")" = 6 ] || { cat "$TMP/want"; fail "not the 6 changes made"; }
mv "$TMP/base.wim" "$TMP/moved.wim"
rc=0
"$WTGFS" diff "$d" s0 s1 >"$TMP/got" 2>"$TMP/err" || rc=$?
[ "$rc" = 1 ] || { cat "$TMP/err"; fail "with the image moved away, diff exited $rc"; }
cmp -s "$TMP/want" "$TMP/got" || { diff "$TMP/want" "$TMP/got"; fail "the diff changed with the image gone"; }
[ -s "$TMP/err" ] && { cat "$TMP/err"; fail "the diff said something on stderr"; }
grep -q "auth.sys.*+readonly" "$TMP/got" || fail "the attribute change is missing"
grep -q "^R.*api.dll" "$TMP/got" || fail "the rename is missing"

echo "== bytes of the base are read from the image, opened then"
rc=0
"$WTGFS" diff "$d" s0 s1 --hives -- "$S/auth.sys" >"$TMP/out" 2>"$TMP/err" || rc=$?
[ "$rc" = 1 ] || { cat "$TMP/err"; fail "a diff that reads no hive needs no image ($rc)"; }
# a file that starts like a hive: its old bytes come from the base
printf 'regf' | dd of="$TMP/x" bs=4 count=1 status=none
mv "$TMP/moved.wim" "$TMP/base.wim"
wtg_mount "$d" "$m"
dd if="$TMP/x" of="$m/$S/notepad.exe" conv=notrunc status=none
wtg_umount "$m"
mv "$TMP/base.wim" "$TMP/moved.wim"
rc=0
"$WTGFS" diff "$d" s0 --hives -- "$S/notepad.exe" >"$TMP/out" 2>"$TMP/err" || rc=$?
[ "$rc" -ge 2 ] || { cat "$TMP/out" "$TMP/err"; fail "a hive diff without its base exited $rc"; }
grep -q "is gone" "$TMP/err" || { cat "$TMP/err"; fail "no word that the base is gone"; }
[ "$(wc -l <"$TMP/err")" -le 2 ] || { cat "$TMP/err"; fail "more than one line of error"; }
mv "$TMP/moved.wim" "$TMP/base.wim"

echo "== a delta made before the index (format 3)"
o="$TMP/old.delta"
cp "$d" "$o"
# (what format 3 lacks: the base index, and the journal of format 5; the
# index's mark in meta is left, as a file edited by hand might: without
# its tables it is no index)
sqlite3 "$o" "DROP TABLE base_inodes; DROP TABLE base_names; DROP TABLE base_sds;
	DROP TABLE journal; PRAGMA user_version = 3" ||
	fail "cannot make a format 3 delta"
rc=0
"$WTGFS" diff "$o" s0 s1 >"$TMP/got" 2>"$TMP/err" || rc=$?
[ "$rc" = 1 ] || { cat "$TMP/err"; fail "a format 3 delta: diff exited $rc"; }
cmp -s "$TMP/want" "$TMP/got" || { diff "$TMP/want" "$TMP/got"; fail "a format 3 delta diffs otherwise"; }
[ -s "$TMP/err" ] && { cat "$TMP/err"; fail "the read-only diff of a format 3 delta said something"; }
[ "$(sqlite3 "$o" 'PRAGMA user_version')" = 3 ] || fail "a read-only diff changed the format"
mv "$TMP/base.wim" "$TMP/moved.wim"
rc=0
"$WTGFS" diff "$o" s0 s1 >/dev/null 2>"$TMP/err" || rc=$?
[ "$rc" -ge 2 ] || fail "a format 3 delta diffed without its image: it has no index to read"
grep -q "is gone" "$TMP/err" || { cat "$TMP/err"; fail "no word that the base is gone"; }
mv "$TMP/moved.wim" "$TMP/base.wim"
wtg_mount "$o" "$m"
wtg_umount "$m"
[ "$(sqlite3 "$o" 'PRAGMA user_version')" -ge 4 ] || fail "a writable open did not upgrade the format"
[ "$(sqlite3 "$o" "SELECT value FROM meta WHERE key = 'base_indexed'")" -gt 100 ] ||
	fail "a writable open did not build the index"
mv "$TMP/base.wim" "$TMP/moved.wim"
rc=0
"$WTGFS" diff "$o" s0 s1 >"$TMP/got" 2>"$TMP/err" || rc=$?
[ "$rc" = 1 ] || { cat "$TMP/err"; fail "the upgraded delta: diff exited $rc without its image"; }
cmp -s "$TMP/want" "$TMP/got" || { diff "$TMP/want" "$TMP/got"; fail "the upgraded delta diffs otherwise"; }
"$WTGFS" verify "$o" >/dev/null || fail "the upgraded delta does not verify"
echo PASS
