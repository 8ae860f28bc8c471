#!/bin/bash
# wtgfs export --append of a file larger than the append queue takes (a
# 70 MiB blob goes through write_resource): 16 bytes changed in its middle,
# the other chunks are the base's stored bytes, copied by the kernel.  The
# image applied gives the changed file, the WIM verifies, and it grew by the
# file's stored size again (a new blob holds its own chunks), not more.
# Then the same change written whole, as a hive is saved: named by the
# SHA-1 the mount kept, its unchanged chunks not read.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool wimcapture wimapply wimverify wiminfo jq python3

mkdir -p "$TMP/src" "$TMP/out"
# text of random words: LZX shrinks it, so the stored chunks differ from
# the raw bytes and a wrong reuse shows
python3 - "$TMP/src/big.bin" <<'PY'
import random, sys
r = random.Random(1)
words = [''.join(r.choice('abcdefghij') for _ in range(r.randint(3, 9))) for _ in range(5000)]
with open(sys.argv[1], 'w') as f:
    n = 0
    while n < 70 << 20:
        s = ' '.join(r.choice(words) for _ in range(200)) + '\n'
        f.write(s)
        n += len(s)
PY
echo small >"$TMP/src/a.txt"
wimcapture "$TMP/src" "$TMP/base.wim" --compress=lzx >/dev/null || fail "wimcapture failed"
"$WTGFS" init "$TMP/d.delta" "$TMP/base.wim" >/dev/null || fail "init failed"
wtg_mount "$TMP/d.delta" "$TMP/m"
printf 'XXXXXXXXXXXXXXXX' | dd of="$TMP/m/big.bin" bs=1 seek=40000000 conv=notrunc status=none
wtg_umount "$TMP/m"
cp "$TMP/src/big.bin" "$TMP/want.bin"
printf 'XXXXXXXXXXXXXXXX' | dd of="$TMP/want.bin" bs=1 seek=40000000 conv=notrunc status=none

# the export of DELTA appended to WIM, its result line as JQ says, the WIM
# verified and its new image applied: big.bin the changed file
append_check() { # DELTA WIM JQ
	rm -rf "$TMP/out"
	mkdir "$TMP/out"
	"$WTGFS" export "$1" "$2" --append --name two --json >"$TMP/out.json" ||
		fail "export --append of $1 failed"
	jq -s -e "map(select(.type == \"result\"))[0] | .raw and .chunks_reused > 2000 and $3" \
		"$TMP/out.json" >/dev/null || fail "not the raw append asked for ($3): $(tail -n 1 "$TMP/out.json")"
	out=$(wimverify "$2" 2>&1) || fail "wimverify of $1's export: $out"
	wimapply "$2" 2 "$TMP/out" >/dev/null || fail "wimapply of $1's image failed"
	cmp "$TMP/out/big.bin" "$TMP/want.bin" || fail "$1's image's big.bin is not the changed file"
	cmp "$TMP/out/a.txt" "$TMP/src/a.txt" || fail "a.txt changed"
}

size0=$(stat -c %s "$TMP/base.wim")
append_check "$TMP/d.delta" "$TMP/base.wim" '.chunks_compressed <= 4'
grew=$(($(stat -c %s "$TMP/base.wim") - size0))
echo "the WIM grew by $grew bytes (it was $size0)"
[ "$grew" -lt $((size0 + 1048576)) ] || fail "the WIM grew by $grew bytes: more than the file stored again"

# the same change written as a hive is saved (the file rewritten whole
# from 0): the mount keeps its SHA-1, the export reads only the changed
# chunk of the 70 MiB and names the blob by it
wimcapture "$TMP/src" "$TMP/base2.wim" --compress=lzx >/dev/null || fail "wimcapture failed"
"$WTGFS" init "$TMP/w.delta" "$TMP/base2.wim" >/dev/null || fail "init failed"
wtg_mount "$TMP/w.delta" "$TMP/m"
python3 - "$TMP/m/big.bin" <<'PY' || fail "the rewrite failed"
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[40000000:40000016] = b'XXXXXXXXXXXXXXXX'
with open(sys.argv[1], 'wb') as f:
    for i in range(0, len(b), 1 << 20):
        f.write(b[i:i + (1 << 20)])
PY
wtg_umount "$TMP/m"
append_check "$TMP/w.delta" "$TMP/base2.wim" '.sums_used == 1'
echo "ok"
