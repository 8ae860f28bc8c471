#!/bin/bash
# wtgfs export --append, differential: random changes (tests/export-random.py:
# new files and trees, writes, truncation, deletes, renames across
# directories, hard links, named streams, attributes, DOS names, security
# descriptors, symlinks on even seeds) made on a mounted delta, snapshotted and appended
# to the delta's own base WIM round after round, so each append lands on a
# WIM that earlier appends grew.  Each appended image, applied with
# wimapply onto a fresh NTFS volume, must equal the --at mount of its
# snapshot file for file, byte for byte and xattr for xattr, and the WIM
# must stay clean for wimverify.  WTGFS_EXPORT_RANDOM="SEEDS ROUNDS CHANGES"
# (SEEDS a comma list; default "2,5 4 40": seed 5 renames a directory
# into one that a later round adds whole) runs others; "1,2,3,4,5,6,7,8 4 40"
# is a longer run.  WTGFS_EXPORT_RANDOM_IMAGE names the test image the
# bases are copies of (default lzx.wim; solid.esd for an ESD).
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool ntfs-3g mkntfs wimapply wiminfo wimverify python3 jq
test_images small

read -r SEEDS ROUNDS CHANGES <<<"${WTGFS_EXPORT_RANDOM:-2,5 4 40}"
CMP="$top_srcdir/tests/compare-trees.py"
RANDOM_PY="$top_srcdir/tests/export-random.py"
export TMPDIR="$TMP/tmp"
mkdir -p "$TMPDIR"
# (ntfs-3g answers EMLINK for the DOS name of a hard-linked file)
NODOS="--skip system.ntfs_dos_name"
raw=0 appends=0
echo "bases: copies of ${WTGFS_EXPORT_RANDOM_IMAGE:-lzx.wim}"

for seed in ${SEEDS//,/ }; do
	base="$TMP/base$seed.wim"
	cp "$IMAGES/${WTGFS_EXPORT_RANDOM_IMAGE:-lzx.wim}" "$base"
	"$WTGFS" init "$TMP/d$seed.delta" "$base" >/dev/null || fail "init failed"
	for round in $(seq 1 "$ROUNDS"); do
		wtg_mount "$TMP/d$seed.delta" "$TMP/m"
		python3 "$RANDOM_PY" "$TMP/m" $((seed * 100 + round)) "$CHANGES" $([ $((seed % 2)) = 0 ] && echo links) >"$TMP/ops$seed.$round" 2>&1 ||
			{ cat "$TMP/ops$seed.$round"; fail "the random changes failed (seed $seed round $round)"; }
		wtg_umount "$TMP/m"
		"$WTGFS" snapshot "$TMP/d$seed.delta" "s$round" >/dev/null || fail "snapshot failed"
		"$WTGFS" export "$TMP/d$seed.delta@s$round" "$base" --append --json >"$TMP/app.json" 2>"$TMP/app.err" ||
			{ cat "$TMP/ops$seed.$round" "$TMP/app.err"; fail "export --append failed (seed $seed round $round)"; }
		appends=$((appends + 1))
		jq -s -e 'map(select(.type == "result"))[0] | .raw' "$TMP/app.json" >/dev/null && raw=$((raw + 1))
		jq -s -r --arg s "$seed" 'map(select(.type == "result"))[0] | "  seed \($s) image \(.image): raw=\(.raw) tree=\(.tree) full_reason=\(.full_reason) raw_reason=\(.raw_reason) tree_reason=\(.tree_reason)"' \
			"$TMP/app.json"
		out=$(wimverify "$base" 2>&1) || fail "wimverify after seed $seed round $round: $out"
		image=$((round + 1))
		[ "$(wiminfo "$base" | sed -n 's/^Image Count: *//p')" = "$image" ] ||
			fail "the WIM does not hold $image images after round $round"
		ntfs_apply "$base" "$image" "$TMP/apply.img" "$TMP/n"
		wtg_mount "$TMP/d$seed.delta" "$TMP/r" --at "s$round"
		python3 "$CMP" $NODOS "$TMP/r" "$TMP/n" >"$TMP/cmp" 2>&1 ||
			{ cat "$TMP/ops$seed.$round" "$TMP/cmp"; fail "image $image (seed $seed round $round) differs from its snapshot"; }
		wtg_umount "$TMP/r"
		umount "$TMP/n"
		rm -f "$TMP/apply.img"
	done
done
# a new file with two new names (one in a new directory): the diff alone
# places it, both names on one file
cp "$IMAGES/lzx.wim" "$TMP/hl.wim"
"$WTGFS" init "$TMP/hl.delta" "$TMP/hl.wim" >/dev/null || fail "init failed"
wtg_mount "$TMP/hl.delta" "$TMP/m"
mkdir "$TMP/m/Drivers" && echo linked >"$TMP/m/Windows/new.txt" &&
	ln "$TMP/m/Windows/new.txt" "$TMP/m/Drivers/link.txt" || fail "cannot make the hard link"
wtg_umount "$TMP/m"
"$WTGFS" snapshot "$TMP/hl.delta" s1 >/dev/null || fail "snapshot failed"
"$WTGFS" export "$TMP/hl.delta@s1" "$TMP/hl.wim" --append --json >"$TMP/hl.json" 2>"$TMP/hl.err" ||
	{ cat "$TMP/hl.err"; fail "export --append of a new hard link failed"; }
jq -s -e 'map(select(.type == "result"))[0] | .raw and (.tree | not)' "$TMP/hl.json" >/dev/null ||
	fail "a new file of two names did not take the diff way: $(tail -n 1 "$TMP/hl.json")"
rm -rf "$TMP/hl.out" && mkdir "$TMP/hl.out" && wimapply "$TMP/hl.wim" 2 "$TMP/hl.out" >/dev/null 2>&1 ||
	fail "wimapply of the hard link's image failed"
[ "$(stat -c %i "$TMP/hl.out/Windows/new.txt")" = "$(stat -c %i "$TMP/hl.out/Drivers/link.txt")" ] &&
	[ "$(stat -c %h "$TMP/hl.out/Drivers/link.txt")" = 2 ] || fail "the two names are not one file in the image"

echo "$appends appends, $raw by the raw appender, each equal to its snapshot"
[ "$raw" -gt 0 ] || fail "no append took the raw path"
echo "ok"
