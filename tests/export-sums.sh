#!/bin/bash
# Stream sums: a mount keeps the SHA-1 of each file it saw written whole in
# order, and wtgfs export --append names such a changed file by it, reading
# only the chunks that changed.  A file patched after it was written, or
# changed by a later mount, has no sum that fits and is read whole.  The
# images verify, hold the files as they were written, and are the images
# the export gives with every sum removed, blob for blob.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool wimcapture wimapply wimverify wiminfo jq /usr/bin/python3

mkdir -p "$TMP/src" "$TMP/want" "$TMP/want1"
# text of random words (LZX shrinks it: a wrong reuse shows), 2 and 1 MiB
python3 - "$TMP/src" <<'PY'
import random, sys
r = random.Random(7)
words = [''.join(r.choice('abcdefghij') for _ in range(r.randint(3, 9))) for _ in range(3000)]
def text(n):
    out = []
    while sum(map(len, out)) < n:
        out.append(' '.join(r.choice(words) for _ in range(100)) + '\n')
    return ''.join(out)[:n]
for name, n in (('hive.bin', 2 << 20), ('patched.bin', 1 << 20), ('later.bin', 1 << 20)):
    open(sys.argv[1] + '/' + name, 'w').write(text(n))
PY
# bytes LZX cannot shrink: the base blob is stored raw, and so would the
# new one be, whole, from bytes the export did not read
head -c 1048576 /dev/urandom >"$TMP/src/random.bin"
wimcapture "$TMP/src" "$TMP/base.wim" --compress=lzx >/dev/null || fail "wimcapture failed"
"$WTGFS" init "$TMP/d.delta" "$TMP/base.wim" >/dev/null || fail "init failed"

# rewrite: the file read, bytes changed at @off, written back whole from 0
# (as hivex commits a hive)
rewrite() { # FILE OFF TEXT
	python3 - "$@" <<'PY'
import sys
path, off, text = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
b = bytearray(open(path, 'rb').read())
b[off:off + len(text)] = text
with open(path, 'wb') as f:
    for i in range(0, len(b), 100000):
        f.write(b[i:i + 100000])
PY
}

wtg_mount "$TMP/d.delta" "$TMP/m"
rewrite "$TMP/m/hive.bin" 1500000 'EDITED-KEY'
rewrite "$TMP/m/later.bin" 300000 'FIRST-MOUNT'
rewrite "$TMP/m/random.bin" 500000 'NOT-SHRUNK'
# written whole, then patched in place: its sum goes with the patch
rewrite "$TMP/m/patched.bin" 10 'WHOLE'
printf 'PATCH' | dd of="$TMP/m/patched.bin" bs=1 seek=700000 conv=notrunc status=none
head -c 1500000 /dev/urandom >"$TMP/m/new.bin"
for f in hive.bin later.bin patched.bin new.bin random.bin; do cp "$TMP/m/$f" "$TMP/want1/$f"; done
wtg_umount "$TMP/m"
"$WTGFS" snapshot "$TMP/d.delta" first >/dev/null || fail "snapshot failed"
wtg_mount "$TMP/d.delta" "$TMP/m"
# changed by a later mount, not from 0, in the 64 KiB slot the first one
# changed (the same slots hold the delta's chunks: only a chunk's hash
# tells): the first mount's sum no longer fits
printf 'SECOND' | dd of="$TMP/m/later.bin" bs=1 seek=300020 conv=notrunc status=none
for f in hive.bin later.bin patched.bin new.bin random.bin; do cp "$TMP/m/$f" "$TMP/want/$f"; done
wtg_umount "$TMP/m"

# the export of DELTA[@AT] appended to the delta's base, kept as WIM
export_as() { # WIM DELTA AT
	cp "$TMP/base.orig" "$TMP/base.wim"
	"$WTGFS" export "$2${3:+@$3}" "$TMP/base.wim" --append --name two --json >"$1.json" ||
		fail "export of $2${3:+@$3} failed: $(tail -n 2 "$1.json")"
	jq -e -s 'map(select(.type == "result"))[0].raw' "$1.json" >/dev/null ||
		fail "not wtgfs's own append: $(tail -n 1 "$1.json")"
	out=$(wimverify "$TMP/base.wim" 2>&1) || fail "wimverify of $2${3:+@$3}'s export: $out"
	mv "$TMP/base.wim" "$1"
}
sums_used() { jq -s 'map(select(.type == "result"))[0].sums_used' "$1.json"; }
# a copy of the delta without sums (its base is the same base.wim)
cp "$TMP/d.delta" "$TMP/nosum.delta"
/usr/bin/python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("DELETE FROM stream_sums"); c.commit()' \
	"$TMP/nosum.delta" || fail "cannot remove the sums from the copy"
cp "$TMP/base.wim" "$TMP/base.orig"

for at in "" first; do
	want="$TMP/want"
	[ -n "$at" ] && want="$TMP/want1"
	export_as "$TMP/with.wim" "$TMP/d.delta" "$at"
	export_as "$TMP/without.wim" "$TMP/nosum.delta" "$at"
	n=$(sums_used "$TMP/with.wim")
	# HEAD: hive.bin alone (later.bin changed after its sum, patched.bin
	# patched, new.bin has no base blob, random.bin would not shrink); at
	# the snapshot later.bin too
	expect=1
	[ -n "$at" ] && expect=2
	[ "$n" = "$expect" ] || fail "${at:-HEAD}: $n changed files named by their sums, not $expect"
	[ "$(sums_used "$TMP/without.wim")" = 0 ] || fail "${at:-HEAD}: sums used from a delta without them"
	wiminfo --blobs "$TMP/with.wim" >"$TMP/a.blobs"
	wiminfo --blobs "$TMP/without.wim" >"$TMP/b.blobs"
	[ -z "$at" ] && cp "$TMP/a.blobs" "$TMP/head.blobs"
	cmp -s "$TMP/a.blobs" "$TMP/b.blobs" ||
		fail "${at:-HEAD}: the blobs differ from the export without sums: $(diff "$TMP/a.blobs" "$TMP/b.blobs" | head -n 6)"
	rm -rf "$TMP/out"
	mkdir "$TMP/out"
	wimapply "$TMP/with.wim" 2 "$TMP/out" >/dev/null || fail "wimapply failed"
	for f in hive.bin later.bin patched.bin new.bin random.bin; do
		cmp "$TMP/out/$f" "$want/$f" || fail "${at:-HEAD}: $f is not the file written"
	done
	echo "${at:-HEAD}: $n file(s) named by their sums; the blobs are the export's without them"
done

# wtgfs verify --base reads each kept sum's bytes again: clean here, a
# wrong SHA-1 in a copy is reported
cp "$TMP/base.orig" "$TMP/base.wim"
"$WTGFS" verify "$TMP/d.delta" --base >"$TMP/verify.out" 2>&1 ||
	fail "verify --base: $(cat "$TMP/verify.out")"
grep -q " 4 kept sums checked" "$TMP/verify.out" ||
	fail "verify --base did not check the 4 sums that fit: $(cat "$TMP/verify.out")"
cp "$TMP/d.delta" "$TMP/bad.delta"
/usr/bin/python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE stream_sums SET sha1 = zeroblob(20) WHERE rowid = (SELECT min(rowid) FROM stream_sums)"); c.commit()' \
	"$TMP/bad.delta" || fail "cannot damage the copy's sums"
"$WTGFS" verify "$TMP/bad.delta" --base >"$TMP/verify.out" 2>&1 && fail "verify --base passed a wrong sum"
grep -q "kept of its stream" "$TMP/verify.out" || fail "verify --base did not say which sum: $(cat "$TMP/verify.out")"

# squashed into one layer and collected: the sums stay with the bytes
"$WTGFS" squash "$TMP/d.delta" base..HEAD >/dev/null || fail "squash failed"
"$WTGFS" gc "$TMP/d.delta" >/dev/null || fail "gc failed"
export_as "$TMP/with.wim" "$TMP/d.delta" ""
[ "$(sums_used "$TMP/with.wim")" = 1 ] ||
	fail "after squash and gc: $(sums_used "$TMP/with.wim") files named by their sums, not 1"
wiminfo --blobs "$TMP/with.wim" >"$TMP/a.blobs"
cmp -s "$TMP/a.blobs" "$TMP/head.blobs" || fail "after squash and gc: the blobs differ from HEAD's export"
echo "ok"
