#!/bin/bash
# Delta files from the command line: init on a WIM image and on a VHDX's
# NTFS volume, log, verify, and the refusals (an existing file, a file that
# is not a delta, a newer format, damage found by verify).
. "$(dirname "$0")/lib.sh"
need_tool wimcapture sqlite3 python3
test_images small

expect() { # expect CODE CMD...
	local want=$1 rc=0
	shift
	"$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$TMP/out" "$TMP/err"; fail "'$*' exited $rc, expected $want"; }
}
one_line() { # one_line PATTERN: stderr is one line saying PATTERN
	[ "$(grep -c . "$TMP/err")" = 1 ] || { cat "$TMP/err"; fail "expected a one-line error"; }
	grep -q "$1" "$TMP/err" || { cat "$TMP/err"; fail "the error does not say '$1'"; }
}

d="$TMP/a.delta"
expect 0 "$WTGFS" init "$d" "$IMAGES/lzx.wim:1"
grep -q "wim:" "$TMP/out" || fail "init does not show the identity"
expect 0 "$WTGFS" verify "$d"
grep -q "clean" "$TMP/out" || fail "a new delta is not clean"
expect 0 "$WTGFS" log --json "$d"
python3 - "$TMP/out" "$IMAGES/lzx.wim" <<'PY' || fail "log --json is not what it should be"
import json, os, sys
d = json.load(open(sys.argv[1]))
assert d["base"]["path"] == os.path.realpath(sys.argv[2]), d
assert d["base"]["index"] == 1 and len(d["base"]["id"]) == 32, d
assert len(d["layers"]) == 1 and d["layers"][0]["head"] is True, d
PY
expect 0 "$WTGFS" log "$d"
grep -q "HEAD (layer 1)" "$TMP/out" || fail "log shows no HEAD layer"

# refusals
expect 2 "$WTGFS" init "$d" "$IMAGES/lzx.wim"
one_line "exists already"
expect 2 "$WTGFS" init "$TMP/b.delta" "$IMAGES/lzx.wim:9"
one_line "has no image '9'"
[ -e "$TMP/b.delta" ] && fail "a failed init left a file behind"
expect 2 "$WTGFS" log "$IMAGES/lzx.wim"
one_line "not a wtgfs delta"
expect 2 "$WTGFS" verify "$TMP/nothing.delta"
one_line "nothing.delta"
# a mount that would hide its own delta (the daemon would wait on itself)
expect 2 "$WTGFS" mount "$d" "$TMP"
one_line "lies inside"
expect 2 "$WTGFS" mount --base "$IMAGES/lzx.wim" "$IMAGES/lzx.wim" "$TMP/m"
head -1 "$TMP/err" | grep -q "goes with a delta" || { cat "$TMP/err"; fail "--base on an image"; }
cp "$d" "$TMP/newer.delta"
sqlite3 "$TMP/newer.delta" "PRAGMA user_version = 99" || fail "sqlite3 failed"
expect 2 "$WTGFS" log "$TMP/newer.delta"
one_line "newer wtgfs"
head -c 5000 "$d" >"$TMP/cut.delta"
expect 2 "$WTGFS" verify "$TMP/cut.delta"
one_line "cut.delta"

# verify finds a chunk whose bytes do not match its key
cp "$d" "$TMP/bad.delta"
sqlite3 "$TMP/bad.delta" "INSERT INTO chunks(hash, size, codec, data) VALUES (zeroblob(32), 3, 0, x'616263')" ||
	fail "sqlite3 insert failed"
expect 2 "$WTGFS" verify "$TMP/bad.delta"
grep -q "DAMAGED" "$TMP/out" || fail "verify did not report the damage"

# a damaged schema: each command says so in one line (the read-only retry
# of a reader alone with the file does not say it twice), verify without
# sending the user to itself, and with its DAMAGED summary
cp "$d" "$TMP/schema.delta"
sqlite3 "$TMP/schema.delta" "PRAGMA writable_schema = ON;
	UPDATE sqlite_master SET sql = 'CREATE TABLE chunks(hash BLOB' WHERE name = 'chunks'" ||
	fail "sqlite3 failed"
for c in log verify gc diff; do
	expect 2 "$WTGFS" $c "$TMP/schema.delta"
	one_line "the delta is damaged: malformed database schema"
done
grep -q "run 'wtgfs verify'" "$TMP/err" || { cat "$TMP/err"; fail "diff's line does not name verify"; }
expect 2 "$WTGFS" verify "$TMP/schema.delta"
grep -q "run 'wtgfs verify'" "$TMP/err" && { cat "$TMP/err"; fail "verify sends the user to verify"; }
grep -q "schema.delta: DAMAGED" "$TMP/out" || { cat "$TMP/out"; fail "verify printed no DAMAGED summary"; }
expect 2 "$WTGFS" export "$TMP/schema.delta" "$TMP/schema.wim"
one_line "the delta is damaged"
expect 2 "$WTGFS" info "$d"
one_line "is a delta file, not an image"

# a VHDX base: the volume that holds \Windows, bound by serial number and disk id
if have_tool qemu-img sfdisk; then
	mib=$(($(stat -c %s "$IMAGES/volume.img") / 1048576))
	truncate -s $((mib + 8))M "$TMP/disk.img"
	printf 'label: gpt\nsize=%sM, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' "$mib" | sfdisk -q "$TMP/disk.img"
	dd if="$IMAGES/volume.img" of="$TMP/disk.img" bs=1M seek=1 conv=notrunc,sparse status=none
	qemu-img convert -O vhdx "$TMP/disk.img" "$TMP/disk.vhdx"
	expect 0 "$WTGFS" init "$TMP/v.delta" "$TMP/disk.vhdx"
	grep -q "ntfs:.*:vhdx:.*:1" "$TMP/out" || { cat "$TMP/out"; fail "a VHDX base is not bound to its volume and disk"; }
	expect 0 "$WTGFS" verify "$TMP/v.delta"
	# and mounted read-write over it: a driver in, a base file changed, a
	# remount shows both and the VHDX itself is untouched
	if [ -c /dev/fuse ]; then
		sum=$(sha256sum <"$TMP/disk.vhdx")
		wtg_mount "$TMP/v.delta" "$TMP/vm"
		mkdir "$TMP/vm/Windows/INF/vdrv" && printf 'inf\r\n' >"$TMP/vm/Windows/INF/vdrv/v.inf" ||
			fail "cannot write into a delta over a VHDX"
		printf '10.0.0.2 vhdx\n' >>"$TMP/vm/Windows/System32/drivers/etc/hosts" ||
			fail "cannot change a base file of a VHDX"
		wtg_umount "$TMP/vm"
		wtg_mount "$TMP/v.delta" "$TMP/vm"
		[ "$(cat "$TMP/vm/windows/inf/VDRV/V.INF")" = "$(printf 'inf\r')" ] || fail "the driver is gone after a remount"
		tail -1 "$TMP/vm/Windows/System32/drivers/etc/hosts" | grep -q "10.0.0.2 vhdx" ||
			fail "the changed base file lost its change after a remount"
		wtg_umount "$TMP/vm"
		[ "$(sha256sum <"$TMP/disk.vhdx")" = "$sum" ] || fail "the VHDX base was written"
		expect 0 "$WTGFS" verify "$TMP/v.delta"
	fi
else
	echo "note: qemu-img or sfdisk missing: the VHDX base case was not run"
fi
echo PASS
