#!/bin/bash
# Bad input: each a one-line error, or EIO for the one damaged file while the
# mount stays up; never a crash, a hang, or a path outside the mount.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool wimcapture wimexport wimsplit python3
corrupt="python3 $top_srcdir/tests/wimcorrupt.py"
m="$TMP/mnt"
mkdir -p "$m"

mkdir -p "$TMP/src/dir1/sub" "$TMP/src/ab"
echo hello >"$TMP/src/dir1/abc.txt"
echo world >"$TMP/src/dir1/xyz.txt"
echo other >"$TMP/src/dir1/sub/q.txt"
seq 1 200000 >"$TMP/src/big.txt"
seq 1 1000 >"$TMP/src/small.txt"
wimcapture "$TMP/src" "$TMP/none.wim" t --compress=none >/dev/null
wimcapture "$TMP/src" "$TMP/lzx.wim" t --compress=LZX >/dev/null
wimexport "$TMP/lzx.wim" 1 "$TMP/solid.esd" --solid >/dev/null
big_sha=$(sha1sum "$TMP/src/big.txt" | cut -d' ' -f1)

# mount_fails IMAGE PATTERN: the mount is refused with a one-line error
mount_fails() {
	local rc=0
	timeout 60 "$WTGFS" mount -f "$1" "$m" 2>"$TMP/err" || rc=$?
	mountpoint -q "$m" && { umount -l "$m"; fail "'$1' was mounted"; }
	[ "$rc" = 2 ] || { cat "$TMP/err"; fail "'$1': exit $rc, expected 2"; }
	[ "$(grep -c . "$TMP/err")" = 1 ] || { cat "$TMP/err"; fail "'$1': not a one-line error"; }
	grep -q "$2" "$TMP/err" || { cat "$TMP/err"; fail "'$1': error does not say '$2'"; }
	echo "ok: $(cat "$TMP/err")"
}

echo "not a wim" >"$TMP/text.wim"
mount_fails "$TMP/text.wim" "not a WIM file"
: >"$TMP/empty.wim"
mount_fails "$TMP/empty.wim" "the file is empty"
head -c 100000 "$TMP/lzx.wim" >"$TMP/trunc.wim"
mount_fails "$TMP/trunc.wim" "truncated"
$corrupt "$TMP/lzx.wim" truncate 150 -o "$TMP/trunc2.wim" >/dev/null
mount_fails "$TMP/trunc2.wim" "truncated"
wimcapture "$TMP/src" "$TMP/pipable.wim" t --pipable >/dev/null
mount_fails "$TMP/pipable.wim" "pipable WIM"
wimsplit "$TMP/none.wim" "$TMP/split.swm" 1 >/dev/null
mount_fails "$TMP/split.swm" "split WIM"
mount_fails "$TMP/lzx.wim:7" "has no image '7'"
mount_fails "$TMP/lzx.wim:nosuchname" "has no image 'nosuchname'"
$corrupt "$TMP/none.wim" cycle dir1/sub -o "$TMP/cycle.wim" >/dev/null
mount_fails "$TMP/cycle.wim" "metadata resource is invalid"
# XML that does not parse: one line from wtgfs, none from libxml2 (which
# wimlib parses it with, and which would print a screen of its own)
cp "$TMP/lzx.wim" "$TMP/xml.wim"
python3 - "$TMP/xml.wim" <<'PY'
import struct, sys
with open(sys.argv[1], 'r+b') as f:
    h = f.read(208)
    off = struct.unpack('<Q', h[0x50:0x58])[0]
    f.seek(off + 60)
    f.write('<<>>&'.encode('utf-16-le'))
PY
mount_fails "$TMP/xml.wim" "XML data of the WIM is invalid"
for cmd in "info $TMP/xml.wim" "export $TMP/xml.wim $TMP/xml-out.wim"; do
	rc=0
	# shellcheck disable=SC2086 # the command and its words
	"$WTGFS" $cmd >/dev/null 2>"$TMP/err" || rc=$?
	[ "$rc" = 2 ] && [ "$(grep -c . "$TMP/err")" = 1 ] && grep -q "XML" "$TMP/err" ||
		{ cat "$TMP/err"; fail "${cmd%% *} of a WIM with bad XML: exit $rc, not one line naming the XML"; }
done
[ ! -e "$TMP/xml-out.wim" ] || fail "export of a WIM with bad XML left $TMP/xml-out.wim"

# read_fails IMAGE FILE: the mount comes up, FILE gives EIO, the rest reads
read_fails() {
	wtg_mount "$1" "$m"
	cat "$m/$2" >/dev/null 2>"$TMP/err" && fail "'$2' in '$1' read without error"
	grep -q "Input/output error" "$TMP/err" || { cat "$TMP/err"; fail "'$2': not EIO"; }
	cmp "$m/small.txt" "$TMP/src/small.txt" 2>/dev/null ||
		[ "$3" = solid ] || fail "a sound file in '$1' does not read"
	mountpoint -q "$m" || fail "the mount went away"
	wtg_umount "$m"
	grep -q "'$2'" "$TMP/daemon.log" || { cat "$TMP/daemon.log"; fail "the log does not name '$2'"; }
	echo "ok: $(grep "'$2'" "$TMP/daemon.log" | tail -1)"
	: >"$TMP/daemon.log"
}

$corrupt "$TMP/none.wim" flip-data "$big_sha" -o "$TMP/sha.wim" >/dev/null
read_fails "$TMP/sha.wim" big.txt
$corrupt "$TMP/lzx.wim" flip-data "$big_sha" -o "$TMP/lzxbad.wim" >/dev/null
read_fails "$TMP/lzxbad.wim" big.txt
$corrupt "$TMP/lzx.wim" flip-data "$big_sha" 8 --bytes 4 -o "$TMP/table.wim" >/dev/null
read_fails "$TMP/table.wim" big.txt
$corrupt "$TMP/solid.esd" flip-data "$big_sha" -o "$TMP/solidbad.esd" >/dev/null
read_fails "$TMP/solidbad.esd" big.txt solid

# names Linux cannot show: left out with a warning, never a path outside
$corrupt "$TMP/none.wim" rename dir1/abc.txt "a/c.txt" -o "$TMP/slash.wim" >/dev/null
wtg_mount "$TMP/slash.wim" "$m"
[ -e "$m/dir1/a" ] && fail "a name with '/' became a path"
cmp "$m/dir1/xyz.txt" "$TMP/src/dir1/xyz.txt" || fail "its neighbour does not read"
wtg_umount "$m"
grep -q "dir1/a/c.txt': name cannot appear on Linux" "$TMP/daemon.log" || { cat "$TMP/daemon.log"; fail "no warning for the '/' name"; }
: >"$TMP/daemon.log"
$corrupt "$TMP/none.wim" rename ab .. -o "$TMP/dotdot.wim" >/dev/null
wtg_mount "$TMP/dotdot.wim" "$m"
[ "$(ls -a "$m" | grep -c '^\.\.$')" = 1 ] || fail "a second '..' appeared"
cmp "$m/big.txt" "$TMP/src/big.txt" || fail "big.txt does not read beside a '..' entry"
wtg_umount "$m"
$corrupt "$TMP/none.wim" dupname dir1/abc.txt dir1/xyz.txt -o "$TMP/dup.wim" >/dev/null
wtg_mount "$TMP/dup.wim" "$m"
[ "$(ls "$m/dir1" | grep -c '^abc.txt$')" = 1 ] || fail "duplicate names shown twice"
cat "$m/dir1/abc.txt" >/dev/null || fail "the kept duplicate does not read"
wtg_umount "$m"
echo PASS
