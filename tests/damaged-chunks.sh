#!/bin/bash
# Damaged chunks and security descriptors are never served.  Every chunk
# and security descriptor of a delta is stored under the SHA-256 of its
# bytes; a row whose bytes were changed on disk (a flipped bit, one chunk's
# data in another's row) must read as EIO from the mount, stop an export
# and a flush with a clear line and a non-zero exit, and leave the target
# WIM as it was.  Writing the file anew heals it.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool sqlite3 getfattr setfattr wiminfo
test_images small
WIM="$IMAGES/lzx.wim"
cp "$WIM" "$TMP/base.wim"
"$WTGFS" init "$TMP/d.delta" "$TMP/base.wim" >/dev/null || fail "init failed"

wtg_mount "$TMP/d.delta" "$TMP/m"
yes "the quick brown fox" | head -c 200000 >"$TMP/m/text"  # four zstd chunks
head -c 150000 /dev/urandom >"$TMP/m/rand"                 # raw chunks
echo intact >"$TMP/m/intact"
touch "$TMP/m/acl"
# a security descriptor of the delta's own: the root's, set on a new file
sd=$(getfattr -h -e hex -n system.ntfs_acl "$TMP/m/" 2>/dev/null | sed -n 's/^system.ntfs_acl=0x//p') ||
	fail "cannot read the root's security descriptor"
[ -n "$sd" ] || fail "the root has no security descriptor"
setfattr -h -n system.ntfs_acl -v "0x$sd" "$TMP/m/acl" || fail "cannot set a security descriptor"
text_ino=$(stat -c %i "$TMP/m/text")
rand_ino=$(stat -c %i "$TMP/m/rand")
acl_ino=$(stat -c %i "$TMP/m/acl")
wtg_umount "$TMP/m"
"$WTGFS" verify "$TMP/d.delta" >/dev/null || fail "the delta is damaged before the test damages it"

chunk() { sqlite3 "$TMP/d.delta" "SELECT hex(chunk) FROM extents WHERE ino = $1 AND idx = $2"; }
flip() { # flip KEY OFFSET: one byte of the chunk KEY's stored data
	sqlite3 "$TMP/d.delta" "UPDATE chunks SET data = substr(data, 1, $2) ||
		CASE WHEN substr(data, $2 + 1, 1) = X'00' THEN X'01' ELSE X'00' END ||
		substr(data, $2 + 2) WHERE hash = X'$1'" || fail "sqlite3 failed"
}
# damage of each kind, one file each: a byte of a zstd frame, a byte of a
# raw chunk, and a row that holds another chunk's data whole (decodes fine)
flip "$(chunk "$text_ino" 1)" 20
flip "$(chunk "$rand_ino" 0)" 1000
sqlite3 "$TMP/d.delta" "UPDATE chunks SET data = (SELECT data FROM chunks WHERE hash = X'$(chunk "$text_ino" 0)')
	WHERE hash = X'$(chunk "$text_ino" 2)'" || fail "sqlite3 failed"
sd_key="(SELECT sd FROM inodes WHERE ino = $acl_ino)"
sd_data=$(sqlite3 "$TMP/d.delta" "SELECT hex(data) FROM sds WHERE hash = $sd_key")
[ -n "$sd_data" ] || fail "the new file's security descriptor is not in the delta"
sqlite3 "$TMP/d.delta" "UPDATE sds SET data = substr(data, 1, length(data) - 2) ||
	CASE WHEN substr(data, -1, 1) = X'00' THEN X'0100' ELSE X'0000' END
	WHERE hash = $sd_key" || fail "sqlite3 failed"

"$WTGFS" verify "$TMP/d.delta" >"$TMP/verify.out" 2>&1 && fail "verify found the damaged delta clean"
for what in "chunk $(chunk "$text_ino" 1 | cut -c1-16 | tr A-F a-f)" \
	"chunk $(chunk "$text_ino" 2 | cut -c1-16 | tr A-F a-f)" \
	"chunk $(chunk "$rand_ino" 0 | cut -c1-16 | tr A-F a-f)" "security descriptor [0-9a-f]*"; do
	grep -q "$what: its bytes do not hash to its key" "$TMP/verify.out" ||
		{ cat "$TMP/verify.out"; fail "verify did not name the $what"; }
done
echo "verify: $(tail -n 1 "$TMP/verify.out")"

# A mount refuses a delta whose security descriptors are damaged: serving
# another descriptor than the one written could open a file to anyone.
"$WTGFS" mount -f "$TMP/d.delta" "$TMP/m" >"$TMP/mount.out" 2>&1 &&
	fail "a delta with a damaged security descriptor was mounted"
grep -q "security descriptor [0-9a-f]*: its bytes do not hash to its key" "$TMP/mount.out" ||
	{ cat "$TMP/mount.out"; fail "the mount did not say which security descriptor is damaged"; }
# the descriptor made good again: now the chunks alone are damaged
sqlite3 "$TMP/d.delta" "UPDATE sds SET data = X'$sd_data' WHERE hash = $sd_key" || fail "sqlite3 failed"

wtg_mount "$TMP/d.delta" "$TMP/m"
for f in text rand; do
	cat "$TMP/m/$f" >/dev/null 2>"$TMP/cat.err" && fail "the damaged file '$f' was read without an error"
	grep -q "Input/output error" "$TMP/cat.err" || { cat "$TMP/cat.err"; fail "'$f': not EIO"; }
done
[ "$(cat "$TMP/m/intact")" = intact ] || fail "an intact file is not read as it was written"
wtg_umount "$TMP/m"
grep -q "the delta is damaged: chunk" "$TMP/daemon.log" || { cat "$TMP/daemon.log"; fail "the mount said nothing"; }
n=$(grep -c "chunk $(chunk "$rand_ino" 0 | cut -c1-16 | tr A-F a-f)" "$TMP/daemon.log")
[ "$n" = 1 ] || { cat "$TMP/daemon.log"; fail "a damaged chunk was told of $n times (want once)"; }

# export, new and appended: refused, nothing made, the WIM as it was
"$WTGFS" export "$TMP/d.delta" "$TMP/new.wim" >"$TMP/export.out" 2>&1 && fail "a damaged delta was exported"
grep -q "its bytes do not hash to its key" "$TMP/export.out" || { cat "$TMP/export.out"; fail "export did not say why"; }
[ -e "$TMP/new.wim" ] && fail "a failed export left '$TMP/new.wim'"
cp "$TMP/base.wim" "$TMP/pristine.wim"
"$WTGFS" export "$TMP/d.delta" "$TMP/base.wim" --append --name x >"$TMP/append.out" 2>&1 &&
	fail "a damaged delta was appended"
grep -q "its bytes do not hash to its key" "$TMP/append.out" || { cat "$TMP/append.out"; fail "export --append did not say why"; }
cmp -s "$TMP/base.wim" "$TMP/pristine.wim" || fail "a failed append changed the WIM"

# flush: refused
"$WTGFS" flush "$TMP/d.delta" "$TMP/disk.img" --size 1G --yes >"$TMP/flush.out" 2>&1 &&
	fail "a damaged delta was flushed"
grep -q "its bytes do not hash to its key" "$TMP/flush.out" || { cat "$TMP/flush.out"; fail "flush did not say why"; }
rm -f "$TMP/disk.img"

# Written anew, the files are whole again and the damaged chunks gone.
wtg_mount "$TMP/d.delta" "$TMP/m"
yes "fresh" | head -c 200000 >"$TMP/m/text"
head -c 150000 /dev/urandom >"$TMP/m/rand"
[ "$(cat "$TMP/m/text" "$TMP/m/rand" | wc -c)" = 350000 ] || fail "the rewritten files do not read back"
wtg_umount "$TMP/m"
"$WTGFS" verify "$TMP/d.delta" >"$TMP/verify.out" 2>&1 || { cat "$TMP/verify.out"; fail "the rewritten delta is not clean"; }
echo "ok: damaged chunks are EIO, and stop export and flush"
