#!/bin/bash
# A registry edit through the read-write mount: hivexsh -w sets a value in
# the SOFTWARE hive of the mounted image, and after umount and mount hivexget
# reads it back.  hivex commits by rewriting the whole file (O_TRUNC, then
# every byte), so this also checks that the delta keeps only the chunks that
# changed, not a copy of the hive: at most 8 chunks of 64 KiB.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool hivexsh hivexget python3
test_images small

d="$TMP/hive.delta"
m="$TMP/mnt"
hive=Windows/System32/config/SOFTWARE
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"

# chunks the delta holds: count and stored bytes (sqlite3 when present)
chunks() {
	if command -v sqlite3 >/dev/null; then
		sqlite3 -separator ' ' "$d" "SELECT count(*), coalesce(sum(length(data)), 0) FROM chunks"
	else
		python3 - "$d" <<'PY'
import sqlite3, sys
db = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True)
print(*db.execute('SELECT count(*), coalesce(sum(length(data)), 0) FROM chunks').fetchone())
PY
	fi
}

wtg_mount "$d" "$m"
size=$(stat -c %s "$m/$hive") || fail "no $hive in the image"
echo "hive $hive: $size bytes ($(((size + 65535) / 65536)) chunks)"
[ "$size" -lt 262144 ] && echo "note: the hive is smaller than 256 KiB: the chunk count says less"
hivexget "$m/$hive" '\Microsoft' >/dev/null || fail "hivexget cannot read the hive through the mount"
cp "$m/$hive" "$TMP/before.hiv"
wtg_umount "$m"
read -r n0 b0 < <(chunks) || fail "cannot count the chunks of the delta"
s0=$(stat -c %s "$d")

wtg_mount "$d" "$m"
printf 'cd \\Microsoft\nsetval 1\nWtgfsTest\nstring:written through wtgfs\ncommit\n' |
	hivexsh -w "$m/$hive" >"$TMP/hivexsh.out" 2>&1 || { cat "$TMP/hivexsh.out"; fail "hivexsh -w failed on the mount"; }
[ "$(hivexget "$m/$hive" '\Microsoft' WtgfsTest)" = "written through wtgfs" ] ||
	fail "hivexget does not see the new value before the remount"
cp "$m/$hive" "$TMP/after.hiv"
wtg_umount "$m"
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 && grep -q clean "$TMP/verify" || { cat "$TMP/verify"; fail "the delta is not clean"; }

wtg_mount "$d" "$m"
[ "$(hivexget "$m/$hive" '\Microsoft' WtgfsTest)" = "written through wtgfs" ] ||
	fail "the new value is gone after the remount"
cmp "$TMP/after.hiv" "$m/$hive" || fail "the hive differs after the remount"
# another hive is untouched
[ "$(hivexget "$m/Windows/System32/config/SYSTEM" '\Select' Current)" = 1 ] ||
	fail "the SYSTEM hive reads wrong"
wtg_umount "$m"

read -r n1 b1 < <(chunks)
s1=$(stat -c %s "$d")
changed=$(cmp -l "$TMP/before.hiv" "$TMP/after.hiv" 2>/dev/null | awk '{print int(($1 - 1) / 65536)}' | sort -u | wc -l)
size2=$(stat -c %s "$TMP/after.hiv")
echo "hivexsh changed bytes in $changed chunk(s) of the hive; its size went from $size to $size2"
echo "delta: $((n1 - n0)) new chunk(s), $((b1 - b0)) stored bytes; file $s0 -> $s1 bytes"
[ $((n1 - n0)) -ge 1 ] || fail "the delta holds no new chunk after the edit"
[ $((n1 - n0)) -le 8 ] || fail "the edit stored $((n1 - n0)) chunks (at most 8 expected): the delta copies the hive"
[ $((b1 - b0)) -lt "$size" ] || fail "the edit stored $((b1 - b0)) bytes, the whole hive is $size"
echo PASS
