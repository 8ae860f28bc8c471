#!/bin/bash
# The base metadata kept in the delta: init stores the base image's
# metadata resource decoded (in 1 MiB parts), and export --append parses
# that copy while the WIM opens instead of decoding the WIM's.  A copy that
# is missing, does not decode, decodes to other bytes than the WIM's SHA-1
# says, or is of another image is set aside and the WIM's read; the
# appended image is the same every way, blob for blob.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool wimcapture wiminfo wimverify sqlite3 /usr/bin/python3

# a tree whose metadata spans several parts: 12,000 names, some data
mkdir -p "$TMP/src"
/usr/bin/python3 - "$TMP/src" <<'PY'
import os, sys
top = sys.argv[1]
for d in range(40):
    p = os.path.join(top, 'directory-with-a-long-name-%03d' % d)
    os.mkdir(p)
    for f in range(300):
        with open(os.path.join(p, 'a-file-with-a-rather-long-name-%04d.txt' % f), 'w') as fh:
            fh.write('file %d of directory %d\n' % (f, d) * (f % 7))
PY
wimcapture "$TMP/src" "$TMP/base.wim" --compress=lzx >/dev/null || fail "wimcapture failed"
cp "$TMP/base.wim" "$TMP/pristine.wim"
"$WTGFS" init "$TMP/d.delta" "$TMP/base.wim" >/dev/null || fail "init failed"
parts=$(sqlite3 "$TMP/d.delta" "SELECT count(*) FROM base_metadata")
size=$(sqlite3 "$TMP/d.delta" "SELECT sum(size) FROM base_metadata")
[ "$parts" -ge 2 ] || fail "the base metadata is kept in $parts parts (want 2 or more)"
key=$(sqlite3 "$TMP/d.delta" "SELECT hex(substr(value, 1, 20)) FROM meta WHERE key = 'base_metadata'")
wiminfo "$TMP/base.wim" --blobs | tr -d ' ' | grep -qi "^Hash=0x$key$" ||
	fail "the kept copy's key $key is no blob of the WIM"
echo "kept: $parts parts, $size bytes"

wtg_mount "$TMP/d.delta" "$TMP/m"
mkdir "$TMP/m/directory-with-a-long-name-007/new"
for i in 1 2 3; do head -c $((i * 70000)) /dev/urandom >"$TMP/m/directory-with-a-long-name-007/new/f$i"; done
echo changed >>"$TMP/m/directory-with-a-long-name-033/a-file-with-a-rather-long-name-0005.txt"
rm "$TMP/m/directory-with-a-long-name-020/a-file-with-a-rather-long-name-0100.txt"
wtg_umount "$TMP/m"

# export DELTA NAME: the delta's change appended to a fresh copy of the
# base; the WIM kept as NAME.wim, -v's lines in NAME.log
export_as() {
	cp "$TMP/pristine.wim" "$TMP/base.wim"
	"$WTGFS" export "$1" "$TMP/base.wim" --append --name new -v >"$TMP/$2.out" 2>"$TMP/$2.log" ||
		{ cat "$TMP/$2.log"; fail "$2: export failed"; }
	grep -q "written by wtgfs's own appender" "$TMP/$2.out" ||
		{ cat "$TMP/$2.out" "$TMP/$2.log"; fail "$2: not the raw append"; }
	wimverify "$TMP/base.wim" >/dev/null 2>&1 || fail "$2: wimverify failed"
	mv "$TMP/base.wim" "$TMP/$2.wim"
	wiminfo "$TMP/$2.wim" --blobs >"$TMP/$2.blobs" || fail "$2: wiminfo --blobs failed"
}
served() { grep -q "decoded from the delta" "$TMP/$1.log" && ! grep -q "did not serve\|not the image's" "$TMP/$1.log"; }

export_as "$TMP/d.delta" kept
served kept || { cat "$TMP/kept.log"; fail "the kept copy did not serve"; }

# variant NAME SQL: the same export from a copy of the delta changed so
variant() {
	cp "$TMP/d.delta" "$TMP/$1.delta"
	sqlite3 "$TMP/$1.delta" "$2" || fail "$1: sqlite3 failed"
	export_as "$TMP/$1.delta" "$1"
	cmp -s "$TMP/kept.blobs" "$TMP/$1.blobs" ||
		{ diff "$TMP/kept.blobs" "$TMP/$1.blobs" | head; fail "$1: the image differs from the kept copy's"; }
}
variant none "DELETE FROM meta WHERE key = 'base_metadata'; DELETE FROM base_metadata"
grep -q "decoded from the delta" "$TMP/none.log" && fail "none: a copy served that is not there"
variant undecodable "UPDATE base_metadata SET data = X'28b52ffd00112233' WHERE part = 1"
grep -q "did not serve" "$TMP/undecodable.log" || { cat "$TMP/undecodable.log"; fail "undecodable: the copy was not set aside"; }
# decodes (stored raw), to zeros: its SHA-1 is not the key's
variant zeros "UPDATE base_metadata SET codec = 0, data = zeroblob(size) WHERE part = 0"
grep -q "did not serve" "$TMP/zeros.log" || { cat "$TMP/zeros.log"; fail "zeros: the copy was not set aside"; }
# the key is not the copy's SHA-1
variant key "UPDATE meta SET value = zeroblob(20) || substr(value, 21) WHERE key = 'base_metadata'"
grep -q "did not serve" "$TMP/key.log" || { cat "$TMP/key.log"; fail "key: the copy was not set aside"; }
# a whole, good copy of another image's metadata
mkdir -p "$TMP/osrc/other"
echo other >"$TMP/osrc/other/file"
wimcapture "$TMP/osrc" "$TMP/other.wim" >/dev/null || fail "wimcapture of the other image failed"
"$WTGFS" init "$TMP/o.delta" "$TMP/other.wim" >/dev/null || fail "init on the other image failed"
variant other "ATTACH '$TMP/o.delta' AS o; DELETE FROM base_metadata;
	INSERT INTO base_metadata SELECT * FROM o.base_metadata;
	UPDATE meta SET value = (SELECT value FROM o.meta WHERE key = 'base_metadata')
	WHERE key = 'base_metadata'"
grep -q "not the image's" "$TMP/other.log" || { cat "$TMP/other.log"; fail "other: the copy was not set aside"; }
variant gap "DELETE FROM base_metadata WHERE part = 0"
grep -q "the delta is damaged" "$TMP/gap.log" || { cat "$TMP/gap.log"; fail "gap: no word of the damage"; }
echo "kept copy served; missing, undecodable, wrong, mis-keyed, another image's and damaged copies set aside"
exit 0
