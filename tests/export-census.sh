#!/bin/bash
# The base image's counts kept in the delta (wtgfs/census.h): init takes
# them beside the base metadata, and export --append then parses the base
# metadata lazily (only the directories the change reaches) and counts the
# new image as the base's counts and the change.  The appended image must
# be the one a whole count makes, blob for blob (every reference count) and
# count for count (files, directories, bytes, hard link bytes), for a
# change that adds, removes, renames and edits, links names to files of
# the base and unlinks them, and adds a security descriptor; counts that
# are missing, damaged or of another image are set aside.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool wimcapture wiminfo wimverify sqlite3 /usr/bin/python3

# a base with hard links (groups of 2 and 3 names) in many directories
mkdir -p "$TMP/src"
/usr/bin/python3 - "$TMP/src" <<'PY'
import os, sys
top = sys.argv[1]
for d in range(30):
    p = os.path.join(top, 'dir%02d' % d)
    os.mkdir(p)
    os.mkdir(os.path.join(p, 'sub'))
    for f in range(60):
        with open(os.path.join(p, 'f%03d.txt' % f), 'w') as fh:
            fh.write('file %d of %d\n' % (f, d) * (f % 5))
    os.link(os.path.join(p, 'f001.txt'), os.path.join(p, 'sub', 'link1.txt'))
    os.link(os.path.join(p, 'f002.txt'), os.path.join(p, 'sub', 'link2a.txt'))
    os.link(os.path.join(p, 'f002.txt'), os.path.join(p, 'sub', 'link2b.txt'))
PY
wimcapture "$TMP/src" "$TMP/base.wim" --compress=lzx >/dev/null || fail "wimcapture failed"
cp "$TMP/base.wim" "$TMP/pristine.wim"
"$WTGFS" init "$TMP/d.delta" "$TMP/base.wim" >/dev/null || fail "init failed"
[ "$(sqlite3 "$TMP/d.delta" "SELECT count(*) FROM base_census")" = 1 ] ||
	fail "init kept no counts of the base image"

wtg_mount "$TMP/d.delta" "$TMP/m"
m="$TMP/m"
mkdir "$m/dir03/new" "$m/dir03/new/deeper"
for i in 1 2 3; do head -c $((i * 50000)) /dev/urandom >"$m/dir03/new/r$i"; done
echo "a new file" >"$m/dir03/new/deeper/t.txt"
ln "$m/dir03/new/r1" "$m/dir04/r1-link"                   # a new group
ln "$m/dir05/f001.txt" "$m/dir06/third-name-of-f001"      # a name more for a base group
rm "$m/dir07/sub/link2a.txt"                              # a name fewer (3 -> 2)
rm "$m/dir08/sub/link1.txt"                               # a group of 2 -> a single name
rm -r "$m/dir09"                                          # a subtree with links
echo changed >>"$m/dir10/f003.txt"                        # an edit
echo changed >>"$m/dir11/f002.txt"                        # an edit of a file of 3 names
mv "$m/dir12/f004.txt" "$m/dir13/moved.txt"               # a rename across directories
mv "$m/dir14" "$m/dir15/dir14-moved"                      # a directory moved
wtg_umount "$m"

# export_as NAME [DELTA] [ENV...]: the change appended to a fresh copy of
# the base; NAME.blobs, NAME.counts and -v's lines in NAME.log
export_as() {
	local name=$1 delta=${2:-$TMP/d.delta}
	shift 2 2>/dev/null || shift
	cp "$TMP/pristine.wim" "$TMP/base.wim"
	env "$@" "$WTGFS" export "$delta" "$TMP/base.wim" --append --name new -v >"$TMP/$name.out" \
		2>"$TMP/$name.log" || { cat "$TMP/$name.log"; fail "$name: export failed"; }
	grep -q "written by wtgfs's own appender" "$TMP/$name.out" ||
		{ cat "$TMP/$name.out" "$TMP/$name.log"; fail "$name: not the raw append"; }
	wimverify "$TMP/base.wim" >/dev/null 2>&1 || fail "$name: wimverify failed"
	wiminfo "$TMP/base.wim" --blobs >"$TMP/$name.blobs" || fail "$name: wiminfo --blobs failed"
	wiminfo "$TMP/base.wim" 2 | grep -E "^(Directory|File) Count|^(Total|Hard Link) Bytes" \
		>"$TMP/$name.counts"
	mv "$TMP/base.wim" "$TMP/$name.wim"
}
census_served() { grep -q "counted as the base's counts and the change" "$TMP/$1.log"; }
same_as_whole() {
	cmp -s "$TMP/whole.counts" "$TMP/$1.counts" ||
		{ diff "$TMP/whole.counts" "$TMP/$1.counts"; fail "$1: the counts differ from a whole count's"; }
	# (the metadata resource too: the lazy parse writes the same bytes)
	cmp -s "$TMP/whole.blobs" "$TMP/$1.blobs" ||
		{ diff "$TMP/whole.blobs" "$TMP/$1.blobs" | head; fail "$1: the blobs differ from a whole count's"; }
}

export_as whole "$TMP/d.delta" WTGFS_EXPORT_CENSUS=0
census_served whole && fail "WTGFS_EXPORT_CENSUS=0: the census served"
[ "$(wc -l <"$TMP/whole.counts")" = 4 ] || { cat "$TMP/whole.counts"; fail "no counts in wiminfo"; }
export_as census
census_served census || { cat "$TMP/census.log"; fail "the census did not serve"; }
grep -q "whole base metadata read" "$TMP/census.log" &&
	{ cat "$TMP/census.log"; fail "the change read the whole base metadata"; }
same_as_whole census
cat "$TMP/census.counts"

# variant NAME SQL: a copy of the delta changed so; the same image, by a
# whole count
variant() {
	cp "$TMP/d.delta" "$TMP/$1.delta"
	sqlite3 "$TMP/$1.delta" "$2" || fail "$1: sqlite3 failed"
	export_as "$1" "$TMP/$1.delta"
	census_served "$1" && { cat "$TMP/$1.log"; fail "$1: the census served"; }
	same_as_whole "$1"
}
variant none "DELETE FROM base_census"
variant damaged "UPDATE base_census SET data = substr(data, 1, 100) || X'00' || substr(data, 102)"
grep -q "counts of the base image are damaged" "$TMP/damaged.log" ||
	{ cat "$TMP/damaged.log"; fail "damaged: no word of it"; }
# a good census of another image
mkdir -p "$TMP/osrc/other"
echo other >"$TMP/osrc/other/file"
wimcapture "$TMP/osrc" "$TMP/other.wim" >/dev/null || fail "wimcapture of the other image failed"
"$WTGFS" init "$TMP/o.delta" "$TMP/other.wim" >/dev/null || fail "init on the other image failed"
variant other "ATTACH '$TMP/o.delta' AS o; DELETE FROM base_census;
	INSERT INTO base_census SELECT * FROM o.base_census"
echo "the census served and counted as a whole count does; missing, damaged and another image's set aside"
exit 0
