#!/bin/bash
# wtgfs export --append on WIMs made other ways than the test images: LZMS
# (not solid), LZX in 64 KiB and 1 MiB chunks, XPRESS in 4 KiB chunks, a
# delta on the second image of a two-image WIM, ESDs (solid: one resource,
# and two resources in one run of the blob table), a WIM captured with UNIX
# data and one captured without reparse-point fixups.  Each gets the same
# change (a file patched in place, one made read-only, a new file with an
# xattr and a second name in a new directory, a new symlink, a file
# deleted, a directory renamed), goes through wtgfs's own appender (the
# symlink's reparse flags as wimlib's capture gives them), passes
# wimverify, and applied with wimapply in NTFS mode equals a wtgfs mount of
# the delta, file for file, byte for byte and xattr for xattr.  (The UNIX
# data WIM's files have FILE_ATTRIBUTE_NORMAL, which a write must drop as
# it sets the archive bit, and chmod as it sets read-only, as NTFS does.)
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool wimexport wimcapture wimapply wimverify mkntfs ntfs-3g jq setfattr python3
test_images small

CMP="$top_srcdir/tests/compare-trees.py"
S="$IMAGES/lzx.wim"
wimexport "$S" 1 "$TMP/lzms.wim" --compress=LZMS >/dev/null || fail "wimexport LZMS failed"
wimexport "$S" 1 "$TMP/lzx64k.wim" --compress=LZX --chunk-size=64K >/dev/null || fail "wimexport 64K failed"
wimexport "$S" 1 "$TMP/lzx1m.wim" --compress=LZX --chunk-size=1M >/dev/null || fail "wimexport 1M failed"
wimexport "$S" 1 "$TMP/xpress4k.wim" --compress=XPRESS --chunk-size=4K >/dev/null ||
	fail "wimexport 4K failed"
wimexport "$S" 1 "$TMP/esd.wim" --solid >/dev/null || fail "wimexport --solid failed"
# three images, the third's blobs in a second solid resource of the same run
cp "$TMP/esd.wim" "$TMP/esd3.wim"
wimexport "$S" 1 "$TMP/esd3.wim" second >/dev/null || fail "wimexport into esd3.wim failed"
mkdir -p "$TMP/third"
head -c 300000 /dev/urandom >"$TMP/third/x.bin"
wimappend "$TMP/third" "$TMP/esd3.wim" third --solid >/dev/null || fail "wimappend --solid failed"
cp "$S" "$TMP/two.wim"
wimexport "$S" 1 "$TMP/two.wim" second >/dev/null || fail "wimexport into two.wim failed"
mkdir -p "$TMP/unix/Windows/System32"
head -c 70000 /dev/urandom >"$TMP/unix/Windows/System32/big.dll"
seq 1 20000 >"$TMP/unix/Windows/System32/lines.txt"
mkdir -p "$TMP/unix/Windows/Temp"
echo small >"$TMP/unix/Windows/Temp/small.txt"
wimcapture "$TMP/unix" "$TMP/unix.wim" --unix-data >/dev/null || fail "wimcapture --unix-data failed"
# (no reparse-point fixups recorded in its header: a new link is "not fixed")
wimcapture "$TMP/unix" "$TMP/norpfix.wim" --norpfix >/dev/null || fail "wimcapture --norpfix failed"

# change MNT: the same change on any of these trees
change() {
	local m=$1 f victim d
	f=$(find "$m/Windows" -type f -size +10k | sort | head -n 1)
	[ -n "$f" ] || fail "no file to patch under '$m'"
	echo "patched in place" | dd of="$f" bs=1 seek=100 conv=notrunc status=none
	head -c 200000 /dev/urandom >"$m/Windows/new.bin"
	setfattr -n user.variant -v hello "$m/Windows/new.bin" || fail "setfattr failed"
	mkdir -p "$m/Windows/NewDir/sub"
	echo deep >"$m/Windows/NewDir/sub/deep.txt"
	ln "$m/Windows/new.bin" "$m/Windows/NewDir/new-link.bin" || fail "a hard link failed"
	ln -s ../new.bin "$m/Windows/NewDir/symlink" || fail "a symlink failed"
	victim=$(find "$m/Windows" -type f ! -path '*/NewDir/*' ! -name new.bin ! -path "$f" | sort | tail -n 1)
	rm -f "$victim"
	ro=$(find "$m/Windows" -type f ! -path '*/NewDir/*' ! -name new.bin ! -path "$f" | sort | head -n 1)
	chmod a-w "$ro" || fail "chmod a-w failed"
	d=$(find "$m/Windows" -mindepth 1 -maxdepth 1 -type d ! -name NewDir | sort | head -n 1)
	[ -n "$d" ] && mv "$d" "$d-renamed"
}

n=0
for v in lzms lzx64k lzx1m xpress4k two:2 esd esd3:1 unix norpfix; do
	wim=${v%%:*}
	image=1
	[ "$v" != "$wim" ] && image=${v#*:}
	n=$((n + 1))
	"$WTGFS" init "$TMP/$n.delta" "$TMP/$wim.wim:$image" >/dev/null || fail "init on $v failed"
	wtg_mount "$TMP/$n.delta" "$TMP/m$n"
	change "$TMP/m$n"
	wtg_umount "$TMP/m$n"
	images=$(wiminfo "$TMP/$wim.wim" | sed -n 's/^Image Count: *//p')
	"$WTGFS" export "$TMP/$n.delta" "$TMP/$wim.wim" --append --name "appended $n" --json \
		>"$TMP/$n.json" 2>&1 || { cat "$TMP/$n.json"; fail "the append to $v failed"; }
	jq -s -e 'map(select(.type == "result"))[0] | .raw and .incremental' "$TMP/$n.json" >/dev/null ||
		fail "the append to $v did not go through wtgfs's appender: $(tail -n 1 "$TMP/$n.json")"
	out=$(wimverify "$TMP/$wim.wim" 2>&1) || fail "wimverify after the append to $v: $out"
	# the new symlink's flags as wimlib's capture gives them: fixed (0) in
	# a WIM whose header records fixups, else WIM_RP_FLAG_NOT_FIXED
	want="tag=0xa000000c rp_flags=0x0001"
	wiminfo "$TMP/$wim.wim" | grep -q "^Attributes:.*Relative path junction" &&
		want="tag=0xa000000c rp_flags=0x0000"
	"${top_builddir:?}/tests/wim_meta_dump" "$TMP/$wim.wim" $((images + 1)) "$TMP/$n.meta" ||
		fail "dumping the metadata of $v failed"
	got=$(python3 "$top_srcdir/tests/wimcorrupt.py" "$TMP/$wim.wim" reparse /Windows/NewDir/symlink \
		--image $((images + 1)) --metadata "$TMP/$n.meta")
	[ "$got" = "$want" ] || fail "the new symlink in $v: '$got', not '$want'"
	ntfs_apply "$TMP/$wim.wim" $((images + 1)) "$TMP/a$n.img" "$TMP/n$n"
	wtg_mount "$TMP/$n.delta" "$TMP/m$n"
	# (a WIM captured off Windows holds no security descriptors: wimapply
	# leaves ntfs-3g's default on every file, its base image's too)
	skip=
	case $wim in unix | norpfix) skip="--skip system.ntfs_acl" ;; esac
	python3 "$CMP" $skip "$TMP/m$n" "$TMP/n$n" >"$TMP/cmp$n" 2>&1 ||
		{ cat "$TMP/cmp$n"; fail "the appended image of $v differs from the delta"; }
	echo "$v: $(tail -n 1 "$TMP/cmp$n")"
	wtg_umount "$TMP/m$n"
	umount "$TMP/n$n"
	rm -f "$TMP/a$n.img"
done
echo "ok"
