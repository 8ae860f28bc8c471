#!/bin/bash
# wtgfs export on input that must not harm the target WIM:
# - an image name or description that a WIM's XML cannot hold (a control
#   character, bytes that are not UTF-8, U+FFFE) is refused in one line
#   before any work, the target as it was (wimlib would write it into the
#   XML as it is, and no program could read the WIM again); tabs, line
#   feeds and any Unicode go through;
# - an append through wimlib (--solid) that another append overtakes while
#   it works (wtgfs's own appender here) is refused, and the image the
#   other one added stays (wimlib locks the WIM only while it writes, from
#   what it read at open);
# - snapshots whose names hold '@' or ':' are named as DELTA@NAME (the
#   file is the longest part of the operand that exists);
# - a delta whose base moved is exported and flushed with --base PATH (the
#   error without it says so), and --base on a source that is no delta is
#   refused;
# - the temporary NTFS image goes beside OUT.wim when $TMPDIR is read-only
#   or too small, and when neither will do the one-line refusal says why of
#   each;
# - a WIM wtgfs's own appender will not read (a blob table size that is no
#   whole number of entries) but wimlib reads is appended to through wimlib
#   with no error printed, and the exit status says it worked.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool wiminfo wimverify wimextract cmp /usr/bin/python3
test_images small

cp "$IMAGES/lzx.wim" "$TMP/base.wim"
cp "$TMP/base.wim" "$TMP/pristine.wim"
"$WTGFS" init "$TMP/d.delta" "$TMP/base.wim" >/dev/null || fail "init failed"

# refused NAME-OPTION TEXT WANT: an append with the option refused in one
# line that says WANT, the WIM unchanged; a new WIM not made
refused() {
	local opt=$1 text=$2 want=$3 rc=0
	"$WTGFS" export "$TMP/d.delta" "$TMP/base.wim" --append "$opt" "$text" \
		>"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" = 2 ] || { cat "$TMP/err"; fail "$opt $(printf %q "$text"): exit $rc, not 2"; }
	[ "$(wc -l <"$TMP/err")" = 1 ] || { cat "$TMP/err"; fail "$opt: not one line"; }
	grep -q "$want" "$TMP/err" || { cat "$TMP/err"; fail "$opt: no word of '$want'"; }
	cmp -s "$TMP/base.wim" "$TMP/pristine.wim" || fail "$opt $(printf %q "$text"): the WIM changed"
	rc=0
	"$WTGFS" export "$IMAGES/lzx.wim" "$TMP/new.wim" "$opt" "$text" >/dev/null 2>&1 || rc=$?
	[ "$rc" = 2 ] && [ ! -e "$TMP/new.wim" ] || fail "$opt: a new WIM was made (exit $rc)"
}
refused --name "$(printf 'a\001b')" "U+0001"
refused --name "$(printf 'x\377\376y')" "not UTF-8"
refused --name "$(printf 'a\357\277\276')" "U+FFFE"
refused --name "$(printf '\355\240\200')" "not UTF-8" # a surrogate
refused --name "$(printf '\300\201')" "not UTF-8"     # an overlong form
refused --description "$(printf 'text\033[1m')" "U+001B"
refused --description "$(printf 'caf\351')" "not UTF-8"
name=$(printf 'Ünï 😀 <&>')
"$WTGFS" export "$TMP/d.delta" "$TMP/base.wim" --append --name "$name" \
	--description "$(printf 'one\ttab\ntwo lines\r')" >/dev/null || fail "a good name was refused"
wiminfo "$TMP/base.wim" 2 | grep -qF "Name:                   $name" ||
	{ wiminfo "$TMP/base.wim" 2; fail "the good name is not the image's"; }
wimverify "$TMP/base.wim" >/dev/null || fail "the WIM with the good name does not verify"
echo "names and descriptions XML cannot hold refused, the WIM unchanged; others kept"

# overtaken: the wimlib append stopped as it is about to write, the raw one
# run to its end meanwhile, then the first let go
cp "$TMP/pristine.wim" "$TMP/base.wim"
WTGFS_TEST_STOP_AT=write "$WTGFS" export "$TMP/d.delta" "$TMP/base.wim" --append --name slow \
	--solid >"$TMP/slow.out" 2>"$TMP/slow.err" &
slow=$!
for _ in $(seq 1 600); do
	[ "$(awk '{print $3}' "/proc/$slow/stat" 2>/dev/null)" = T ] && break
	kill -0 "$slow" 2>/dev/null || break
	sleep 0.1
done
[ "$(awk '{print $3}' "/proc/$slow/stat" 2>/dev/null)" = T ] ||
	{ cat "$TMP/slow.err"; fail "the wimlib append did not stop where it writes"; }
"$WTGFS" export "$TMP/d.delta" "$TMP/base.wim" --append --name quick --json >"$TMP/quick.out" ||
	{ kill -CONT "$slow"; fail "the raw append failed"; }
jq -e 'select(.type == "result") | .raw' "$TMP/quick.out" >/dev/null ||
	{ kill -CONT "$slow"; fail "the quick append was not the raw one"; }
kill -CONT "$slow"
rc=0
wait "$slow" || rc=$?
[ "$rc" = 2 ] || { cat "$TMP/slow.err"; fail "the overtaken append: exit $rc, not 2"; }
grep -q "changed it while this export ran" "$TMP/slow.err" || { cat "$TMP/slow.err"; fail "no word of why"; }
[ "$(wiminfo "$TMP/base.wim" | sed -n 's/^Name: *//p' | tail -n +2)" = quick ] ||
	{ wiminfo "$TMP/base.wim"; fail "the WIM does not hold the quick image alone"; }
wimverify "$TMP/base.wim" >/dev/null || fail "the WIM does not verify after the race"
echo "an append overtaken while it worked refused; the other one's image kept"

# a blob table size that is no whole number of entries: wimlib's way
cp "$TMP/pristine.wim" "$TMP/base.wim"
/usr/bin/python3 - "$TMP/base.wim" <<'PY'
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(0x30)
    b = bytearray(f.read(1))
    b[0] ^= 0xff
    f.seek(0x30)
    f.write(b)
PY
rc=0
"$WTGFS" export "$TMP/d.delta" "$TMP/base.wim" --append --name odd >/dev/null 2>"$TMP/odd.err" || rc=$?
[ "$rc" = 0 ] || { cat "$TMP/odd.err"; fail "the append to the odd WIM failed ($rc)"; }
[ ! -s "$TMP/odd.err" ] || { cat "$TMP/odd.err"; fail "an append that worked printed errors"; }
wiminfo "$TMP/base.wim" 2 | grep -q "^Name: *odd" || fail "the odd WIM lacks the new image"
echo "a WIM the raw appender does not read appended to through wimlib, quietly"

# snapshot names with '@' and ':' (any printable byte but '/' names one)
for snap in 'x@y' 'p:q' '@lead'; do
	"$WTGFS" snapshot "$TMP/d.delta" "$snap" >/dev/null || fail "snapshot '$snap' failed"
	rm -f "$TMP/snap.wim"
	"$WTGFS" export "$TMP/d.delta@$snap" "$TMP/snap.wim" >/dev/null 2>"$TMP/snap.err" ||
		{ cat "$TMP/snap.err"; fail "export of '$TMP/d.delta@$snap' failed"; }
	wiminfo "$TMP/snap.wim" 1 | grep -q "^Name: *$snap\$" || fail "'$snap': not the image's name"
done
"$WTGFS" export "$TMP/d.delta@x@z" "$TMP/none.wim" 2>"$TMP/err" && fail "a snapshot that is not there was exported"
grep -q "no snapshot 'x@z'" "$TMP/err" || { cat "$TMP/err"; fail "not the snapshot's name in the error"; }
echo "snapshots named with '@' and ':' exported as DELTA@NAME"

# the base moved: --base names its new place
cp "$IMAGES/lzx.wim" "$TMP/mv.wim"
"$WTGFS" init "$TMP/mv.delta" "$TMP/mv.wim" >/dev/null || fail "init failed"
wtg_mount "$TMP/mv.delta" "$TMP/m"
echo moved >"$TMP/m/moved.txt"
wtg_umount "$TMP/m"
mv "$TMP/mv.wim" "$TMP/moved.wim"
"$WTGFS" export "$TMP/mv.delta" "$TMP/mv-new.wim" 2>"$TMP/err" && fail "a delta whose base is gone was exported"
grep -q "with --base" "$TMP/err" || { cat "$TMP/err"; fail "the error does not name --base"; }
"$WTGFS" export "$TMP/mv.delta" "$TMP/mv-new.wim" --base "$TMP/moved.wim" >/dev/null 2>"$TMP/err" ||
	{ cat "$TMP/err"; fail "export --base failed"; }
"$WTGFS" export "$TMP/mv.delta" "$TMP/moved.wim" --append --name moved --base "$TMP/moved.wim" \
	>"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err"; fail "export --append --base failed"; }
grep -q "own appender" "$TMP/out" || { cat "$TMP/out"; fail "the append to the moved base was not incremental"; }
wimverify "$TMP/moved.wim" >/dev/null 2>&1 || fail "wimverify of the moved base failed"
for w in "$TMP/mv-new.wim:1" "$TMP/moved.wim:2"; do
	wimextract "${w%:*}" "${w##*:}" /moved.txt --to-stdout 2>/dev/null | grep -q moved ||
		fail "'$w' lacks the delta's file"
done
"$WTGFS" flush "$TMP/mv.delta" "$TMP/mv.img" --size 1G --yes --base "$TMP/moved.wim" >/dev/null 2>"$TMP/err" ||
	{ cat "$TMP/err"; fail "flush --base failed"; }
rm -f "$TMP/mv.img"
rc=0
"$WTGFS" export "$TMP/moved.wim" "$TMP/x.wim" --base "$TMP/moved.wim" 2>"$TMP/err" || rc=$?
[ "$rc" = 2 ] && grep -q "goes with a delta" "$TMP/err" || { cat "$TMP/err"; fail "--base on a WIM source: exit $rc"; }
echo "a moved base named with --base"

# $TMPDIR read-only, then both places too small
for t in ro tiny outdir; do
	mkdir -p "$TMP/$t"
	mount -t tmpfs -o size=1m tmpfs "$TMP/$t" || fail "cannot mount a tmpfs"
	MOUNTS="$MOUNTS $TMP/$t"
done
mount -o remount,ro "$TMP/ro" || fail "cannot make the tmpfs read-only"
TMPDIR="$TMP/ro" "$WTGFS" export "$TMP/mv.delta" "$TMP/beside.wim" --base "$TMP/moved.wim" \
	>"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err"; fail "a read-only TMPDIR stopped the export"; }
grep -q "temporary NTFS image in '$TMP'" "$TMP/out" || { cat "$TMP/out"; fail "the image was not made beside OUT.wim"; }
rc=0
TMPDIR="$TMP/tiny" "$WTGFS" export "$TMP/mv.delta" "$TMP/outdir/x.wim" --base "$TMP/moved.wim" \
	>/dev/null 2>"$TMP/err" || rc=$?
[ "$rc" = 2 ] && [ "$(wc -l <"$TMP/err")" = 1 ] || { cat "$TMP/err"; fail "no room anywhere: exit $rc"; }
grep -q "'$TMP/tiny' has [01] MiB free; '$TMP/outdir' has [01] MiB free" "$TMP/err" ||
	{ cat "$TMP/err"; fail "the refusal does not say why of each place"; }
[ -e "$TMP/outdir/x.wim" ] && fail "a refused export left its WIM"
echo "the temporary image beside OUT.wim when TMPDIR will not do"
exit 0
