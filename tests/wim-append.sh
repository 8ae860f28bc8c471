#!/bin/bash
# The raw WIM appender (src/wim_append.c) through tests/wim_append_check,
# judged by wimlib's own tools: a copy of the base image appended (its
# metadata's chunks all reused), then a second append on top of it, is
# accepted by wimverify and wiminfo, applies with wimapply (NTFS mode) to
# the same tree as the base image, exports with wimexport, and has the
# blob table wimlib itself writes for the same images (reference counts,
# order); a blob edited in one byte reuses every other chunk of its
# original; a kill between the data and the header leaves the file byte for
# byte as it was; a WIM another program holds locked is refused, not
# written; a WIM's integrity table is kept (and checked by wimlib); an
# ESD's solid runs are kept as they were (the blob table wimlib writes, a
# metadata entry between two runs kept in its place, a solid blob outside
# its resources refused as corrupt).
. "$(dirname "$0")/lib.sh"
need_tool wimverify wiminfo wimapply wimexport wimextract wimdir mkntfs ntfs-3g python3 cmp
test_images small

CHECK="${top_builddir:?}/tests/wim_append_check"
CMP="$top_srcdir/tests/compare-trees.py"
W="$TMP/a.wim"
cp "$IMAGES/lzx.wim" "$W"

# blob_table WIM: one line per entry: flags refcnt sha1 (metadata: no sha1,
# as wimlib writes each image's metadata anew)
blob_table() {
	python3 - "$1" <<'EOF'
import struct, sys
f = open(sys.argv[1], 'rb')
h = f.read(208)
size = int.from_bytes(h[48:55], 'little')
off = struct.unpack('<Q', h[56:64])[0]
f.seek(off)
d = f.read(size)
for i in range(0, len(d), 50):
    e = d[i:i + 50]
    meta = e[7] & 2
    print(e[7], struct.unpack('<I', e[26:30])[0], '-' if meta else e[30:50].hex())
EOF
}

verified() {
	local out
	out=$(wimverify "$1" 2>&1) || fail "wimverify '$1': $out"
	out=$(wiminfo --check "$1" 2>&1) || fail "wiminfo --check '$1': $out"
}

# ---- a copy of the image, appended ----
size0=$(stat -c %s "$W")
"$CHECK" copy "$W" 1 "Copy" >"$TMP/copy.out" || fail "the append failed: $(cat "$TMP/copy.out")"
grep -Eq "meta_chunks=([0-9]+) meta_reused=\1 " "$TMP/copy.out" ||
	fail "the copy's metadata did not reuse every chunk: $(cat "$TMP/copy.out")"
verified "$W"
wiminfo "$W" | grep -q "^Image Count: *2$" || fail "the WIM does not hold 2 images"
wiminfo "$W" 2 | grep -q "^Name: *Copy$" || fail "image 2 is not named 'Copy'"
for f in "File Count" "Directory Count" "Total Bytes" "Hard Link Bytes"; do
	[ "$(wiminfo "$W" 1 | grep "^$f:")" = "$(wiminfo "$W" 2 | grep "^$f:")" ] ||
		fail "image 2's $f differs from image 1's"
done
grew=$(($(stat -c %s "$W") - size0))
[ "$grew" -lt $((size0 / 10)) ] || fail "the copy grew the WIM by $grew bytes"

# the blob table wimlib writes for the same two images
cp "$IMAGES/lzx.wim" "$TMP/oracle.wim"
wimexport "$TMP/oracle.wim" 1 "$TMP/oracle.wim" "Copy" >/dev/null 2>&1 ||
	cp "$IMAGES/lzx.wim" "$TMP/o2.wim"
if [ -e "$TMP/o2.wim" ]; then
	wimexport "$IMAGES/lzx.wim" 1 "$TMP/o2.wim" "Copy" >/dev/null || fail "wimexport failed"
	mv "$TMP/o2.wim" "$TMP/oracle.wim"
fi
diff <(blob_table "$TMP/oracle.wim") <(blob_table "$W") >"$TMP/table.diff" ||
	{ head "$TMP/table.diff"; fail "the blob table is not the one wimlib writes"; }

# ---- a second append on top of the first; wimlib keeps using the result ----
"$CHECK" copy "$W" 2 "Copy of copy" --boot >"$TMP/copy2.out" ||
	fail "the second append failed: $(cat "$TMP/copy2.out")"
verified "$W"
wiminfo "$W" | grep -q "^Image Count: *3$" || fail "the WIM does not hold 3 images"
wiminfo "$W" | grep -q "^Boot Index: *3$" || fail "--boot did not make image 3 the boot image"
wimexport "$W" 3 "$TMP/exported.wim" >/dev/null || fail "wimexport of the appended image failed"
verified "$TMP/exported.wim"
ntfs_apply "$W" 1 "$TMP/one.img" "$TMP/one" 256M
ntfs_apply "$TMP/exported.wim" 1 "$TMP/three.img" "$TMP/three" 256M
python3 "$CMP" "$TMP/one" "$TMP/three" >"$TMP/cmp.out" 2>&1 ||
	{ cat "$TMP/cmp.out"; fail "the appended image, exported, is not the base image's tree"; }
umount "$TMP/one" "$TMP/three"

# ---- an edited blob: every chunk but the edited one reused ----
cp "$IMAGES/lzx.wim" "$TMP/e.wim"
hive=Windows/System32/config/SOFTWARE
sha=$(wimdir "$TMP/e.wim" 1 --path="/$hive" --detailed 2>/dev/null |
	sed -n 's/^Hash *= *0x//p' | head -n 1)
[ -n "$sha" ] || fail "wimdir shows no hash for the hive"
wimextract "$TMP/e.wim" 1 "/$hive" --dest-dir="$TMP" >/dev/null || fail "wimextract failed"
hsize=$(stat -c %s "$TMP/SOFTWARE")
"$CHECK" copy "$TMP/e.wim" 1 "Edited" --edit "$TMP/SOFTWARE" "$sha" 100000 >"$TMP/edit.out" ||
	fail "the append with an edited blob failed: $(cat "$TMP/edit.out")"
chunks=$(((hsize + 32767) / 32768))
grep -q " reused=$((chunks - 1 + $(sed -n 's/.*meta_reused=\([0-9]*\).*/\1/p' "$TMP/edit.out"))) " \
	"$TMP/edit.out" || fail "the edited blob did not reuse $((chunks - 1)) chunks: $(cat "$TMP/edit.out")"
grep -q "blobs_new=1 " "$TMP/edit.out" || fail "the edited blob was not written"
verified "$TMP/e.wim"
# the blob's bytes read back, any range, as wimextract gives them
"$CHECK" read "$TMP/e.wim" "$sha" "$TMP/SOFTWARE" >"$TMP/read.out" ||
	fail "reading the hive's blob failed: $(cat "$TMP/read.out")"
grep -q "^read 9 ranges$" "$TMP/read.out" || fail "not every range was read: $(cat "$TMP/read.out")"

# ---- killed between the data and the header: the WIM as it was ----
cp "$W" "$TMP/before.wim"
WTGFS_TEST_KILL_AT=append-header "$CHECK" copy "$W" 1 "Killed" >/dev/null 2>&1 &&
	fail "the kill point was not reached"
# (the data written after the old end is all that differs)
cmp -n "$(stat -c %s "$TMP/before.wim")" "$W" "$TMP/before.wim" ||
	fail "a killed append changed the WIM's bytes"
verified "$W"
wiminfo "$W" | grep -q "^Image Count: *3$" || fail "a killed append changed the image count"

# ---- a WIM another program holds locked: refused, untouched ----
"$CHECK" hold "$W" 5 >"$TMP/hold.out" &
holder=$!
for _ in $(seq 50); do grep -q locked "$TMP/hold.out" 2>/dev/null && break; sleep 0.1; done
sum=$(sha256sum <"$W")
"$CHECK" copy "$W" 1 "Locked" >/dev/null 2>"$TMP/lock.err"
rc=$?
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
[ "$rc" = 3 ] || fail "a locked WIM was not refused (exit $rc)"
grep -q "another program is writing it" "$TMP/lock.err" || fail "unclear refusal: $(cat "$TMP/lock.err")"
[ "$(sha256sum <"$W")" = "$sum" ] || fail "a refused append changed the WIM"

# ---- an ESD: its solid runs kept as they were, its blobs referenced ----
cp "$IMAGES/solid.esd" "$TMP/s.esd"
"$CHECK" copy "$TMP/s.esd" 1 "Copy" >"$TMP/scopy.out" || fail "the append to an ESD failed: $(cat "$TMP/scopy.out")"
verified "$TMP/s.esd"
for f in "File Count" "Directory Count" "Total Bytes" "Hard Link Bytes"; do
	[ "$(wiminfo "$TMP/s.esd" 1 | grep "^$f:")" = "$(wiminfo "$TMP/s.esd" 2 | grep "^$f:")" ] ||
		fail "the ESD's image 2 $f differs from image 1's"
done
cp "$IMAGES/solid.esd" "$TMP/soracle.esd"
wimexport "$IMAGES/solid.esd" 1 "$TMP/soracle.esd" "Copy" >/dev/null || fail "wimexport into the ESD failed"
diff <(blob_table "$TMP/soracle.esd") <(blob_table "$TMP/s.esd") >"$TMP/stable.diff" ||
	{ head "$TMP/stable.diff"; fail "the ESD's blob table is not the one wimlib writes"; }
ntfs_apply "$TMP/s.esd" 2 "$TMP/s2.img" "$TMP/s2" 256M
ntfs_apply "$IMAGES/solid.esd" 1 "$TMP/s1.img" "$TMP/s1" 256M
python3 "$CMP" "$TMP/s1" "$TMP/s2" >"$TMP/scmp.out" 2>&1 ||
	{ cat "$TMP/scmp.out"; fail "the ESD's appended image is not the base image's tree"; }
umount "$TMP/s1" "$TMP/s2"
rm -f "$TMP/s1.img" "$TMP/s2.img"
# an image's metadata entry between two solid runs (a layout wimlib reads
# but does not write): kept in its place, the runs apart
cp "$IMAGES/solid.esd" "$TMP/s3.esd"
wimexport "$IMAGES/solid.esd" 1 "$TMP/s3.esd" second >/dev/null || fail "wimexport into s3.esd failed"
mkdir -p "$TMP/third"
head -c 300000 /dev/urandom >"$TMP/third/x.bin"
wimappend "$TMP/third" "$TMP/s3.esd" third --solid >/dev/null || fail "wimappend --solid failed"
python3 "$top_srcdir/tests/wimcorrupt.py" "$TMP/s3.esd" split-run -o "$TMP/split.esd" >/dev/null ||
	fail "wimcorrupt.py split-run failed"
verified "$TMP/split.esd"
"$CHECK" copy "$TMP/split.esd" 3 "Copy" >"$TMP/split.out" ||
	fail "the append to the split ESD failed: $(cat "$TMP/split.out")"
verified "$TMP/split.esd"
wiminfo "$TMP/split.esd" 4 | grep -q "^Name: *Copy$" || fail "the split ESD's image 4 is not the copy"
wimextract "$TMP/split.esd" 4 /x.bin --dest-dir="$TMP/x4" >/dev/null || fail "wimextract of image 4 failed"
cmp "$TMP/third/x.bin" "$TMP/x4/x.bin" || fail "the split ESD's copied image holds other data"
# a blob moved out of its solid resource: corrupt, said, the ESD as it was
python3 "$top_srcdir/tests/wimcorrupt.py" "$IMAGES/solid.esd" move-blob largest 0x10000000000 \
	-o "$TMP/moved.esd" >/dev/null || fail "wimcorrupt.py move-blob failed"
sum=$(sha256sum <"$TMP/moved.esd")
"$CHECK" info "$TMP/moved.esd" >/dev/null 2>"$TMP/moved.err" && fail "a solid blob outside its resource was taken"
grep -q "corrupt WIM (a solid blob outside its resources)" "$TMP/moved.err" ||
	fail "unclear refusal of the moved solid blob: $(cat "$TMP/moved.err")"
[ "$(sha256sum <"$TMP/moved.esd")" = "$sum" ] || fail "a refused append changed the ESD"
# ---- a WIM with an integrity table: kept, and wimlib checks it ----
wimexport "$IMAGES/lzx.wim" 1 "$TMP/integrity.wim" --check >/dev/null || fail "wimexport --check failed"
"$CHECK" info "$TMP/integrity.wim" | grep -q unsupported && fail "a WIM with an integrity table is refused"
cp "$TMP/integrity.wim" "$TMP/before.wim"
WTGFS_TEST_KILL_AT=append-header "$CHECK" copy "$TMP/integrity.wim" 1 "Killed" >/dev/null 2>&1 &&
	fail "the kill point was not reached (integrity table)"
cmp -n "$(stat -c %s "$TMP/before.wim")" "$TMP/integrity.wim" "$TMP/before.wim" ||
	fail "a killed append changed the WIM's bytes (integrity table)"
"$CHECK" copy "$TMP/integrity.wim" 1 "Copy" >/dev/null || fail "the append to a WIM with an integrity table failed"
verified "$TMP/integrity.wim"
wiminfo "$TMP/integrity.wim" | grep -q "^Attributes:.*Integrity info" || fail "the append dropped the integrity table"
"$CHECK" info "$IMAGES/xpress.wim" | grep -q unsupported && fail "an XPRESS WIM is refused"
"$CHECK" info "$IMAGES/none.wim" | grep -q unsupported && fail "an uncompressed WIM is refused"
for c in xpress none; do
	cp "$IMAGES/$c.wim" "$TMP/$c.wim"
	"$CHECK" copy "$TMP/$c.wim" 1 "Copy" >/dev/null || fail "the append to the $c WIM failed"
	verified "$TMP/$c.wim"
done
echo "ok: appended copies verified, applied and exported; blob table as wimlib's; kill, lock, refusals"
