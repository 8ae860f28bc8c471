#!/bin/bash
# POSIX tools on a delta mount, as root, the way a driver package is
# brought in: cp -a, cp -r --preserve=all, tar -xp, rsync -a and install
# exit 0 with a tree owned by another user, and the copy is right (names,
# types, content, hard links, symlinks, device numbers, the read-only bit),
# also after a remount.  chown succeeds without changing the owner (as
# ntfs-3g's default 'silent'); chmod maps the owner's write bit to the
# read-only attribute.  mkfifo, mknod c/b and a bound Unix socket are WSL
# special files that survive a remount; system.ntfs_ea is set, read,
# replaced, removed and kept; a delta of format 1 (before EAs) still opens.
. "$(dirname "$0")/lib.sh"

need_root
need_fuse
need_tool rsync tar getfattr setfattr mkfifo mknod install sqlite3 stat
test_images small

D=$TMP/d.delta
M=$TMP/m
"$WTGFS" init "$D" "$IMAGES/lzx.wim" >/dev/null || fail "init failed"
wtg_mount "$D" "$M"

echo "== a driver package owned by uid 1000"
S=$TMP/src/drv
mkdir -p "$S/sub/deep" "$S/locked"
printf 'signature=$Windows NT$\r\n' >"$S/drv.inf"
head -c 300000 /dev/urandom >"$S/drv.sys"
: >"$S/empty.cat"
echo "read only" >"$S/sub/ro.txt"
chmod 444 "$S/sub/ro.txt"
ln "$S/drv.sys" "$S/sub/deep/hard.sys"
ln -s ../drv.inf "$S/sub/link.inf"
mkfifo "$S/sub/pipe"
mknod "$S/sub/null" c 1 3
mknod "$S/sub/disk" b 8 16
chmod 700 "$S/locked"
echo x >"$S/locked/x"
chown -R 1000:1000 "$TMP/src"
tar -cf "$TMP/drv.tar" -C "$TMP/src" drv

check_copy() { # DIR WHAT [--no-links]
	python3 "$top_srcdir/tests/posix-compare.py" ${3:-} "$S" "$1" || fail "$2 left the files wrong"
}

cp -a "$S" "$M/cp-a" || fail "cp -a exited $?"
check_copy "$M/cp-a" "cp -a"
cp -r --preserve=all "$S" "$M/cp-preserve" || fail "cp -r --preserve=all exited $?"
check_copy "$M/cp-preserve" "cp -r --preserve=all"
mkdir "$M/tar"
tar -xpf "$TMP/drv.tar" -C "$M/tar" || fail "tar -xp exited $?"
check_copy "$M/tar/drv" "tar -xp"
rsync -a "$S/" "$M/rsync/" || fail "rsync -a exited $?"
check_copy "$M/rsync" "rsync -a" --no-links
rsync -aHX "$S/" "$M/rsync-H/" || fail "rsync -aHX exited $?"
check_copy "$M/rsync-H" "rsync -aHX"
# a second rsync over the copy: nothing to do, still exit 0
rsync -a "$S/" "$M/rsync/" || fail "rsync -a over its own copy exited $?"
install -m 644 "$S/drv.inf" "$M/inst.inf" || fail "install -m 644 exited $?"
install -D -m 444 "$S/drv.inf" "$M/inst/a/b.inf" || fail "install -D -m 444 exited $?"
install -d -m 700 "$M/inst/dir" || fail "install -d exited $?"
[ -w "$M/inst.inf" ] && [ "$(stat -c %a "$M/inst/a/b.inf")" = 555 ] ||
	fail "install -m 444 should make a read-only file ($(stat -c %a "$M/inst/a/b.inf"))"

echo "== chown, chgrp, chmod"
f=$M/cp-a/drv.inf
chown 1000:1000 "$f" || fail "chown exited $?"
chgrp 4242 "$f" || fail "chgrp exited $?"
[ "$(stat -c %u:%g "$f")" = "$(id -u):$(id -g)" ] || fail "chown changed the owner shown: $(stat -c %u:%g "$f")"
chmod 400 "$f" || fail "chmod 400 exited $?"
[ "$(stat -c %a "$f")" = 555 ] || fail "chmod 400 shows $(stat -c %a "$f"), want the read-only 555"
chmod 640 "$f" || fail "chmod 640 exited $?"
[ "$(stat -c %a "$f")" = 755 ] || fail "chmod 640 shows $(stat -c %a "$f"), want 755"

echo "== special files"
mkfifo "$M/fifo" || fail "mkfifo exited $?"
mknod "$M/chr" c 4 5 || fail "mknod c exited $?"
mknod "$M/blk" b 8 1 || fail "mknod b exited $?"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$M/sock" ||
	fail "binding a Unix socket failed"
(sleep 0.2; echo through >"$M/fifo") &
writer=$!
got=$(timeout 20 cat "$M/fifo") || fail "reading the fifo failed"
wait $writer
[ "$got" = through ] || fail "the fifo passed '$got'"
check_special() {
	for x in "fifo:fifo:0,0:24" "chr:character special file:4,5:25" \
		"blk:block special file:8,1:26" "sock:socket:0,0:23"; do
		IFS=: read -r n type dev tag <<<"$x"
		got=$(stat -c '%F:%Hr,%Lr' "$M/$n")
		[ "$got" = "$type:$dev" ] || fail "$n shows as '$got', want '$type:$dev'"
		rp=$(getfattr --absolute-names --only-values -e hex -n system.ntfs_reparse_data "$M/$n" | xxd -p)
		[ "$rp" = "${tag}00008000000000" ] || fail "$n has reparse data $rp, want WSL's tag 0x800000$tag"
	done
	ea=$(getfattr --absolute-names --only-values -n system.ntfs_ea "$M/chr" | xxd -p | tr -d '\n')
	# $LXMOD (S_IFCHR|0644) and $LXDEV 4,5: what ntfs-3g -o special_files=wsl writes
	[ "$ea" = 1400000000060400244c584d4f4400a4210000001800000000060800244c5844455600040000000500000000 ] ||
		fail "chr has the EAs $ea"
}
check_special

echo "== system.ntfs_ea"
e=$M/cp-a/drv.sys
# two entries: NEED_EA on the first (a $Kernel.Purge name), values that need padding
EA=0x2c00000080160c00244b45524e454c2e50555247452e455342434143484500000102030405060708090a0b001400000000040400544553540061626364000000
setfattr -n system.ntfs_ea -v $EA "$e" || fail "setting system.ntfs_ea failed"
[ "$(getfattr --absolute-names --only-values -e hex -n system.ntfs_ea "$e" | xxd -p | tr -d '\n')" = "${EA#0x}" ] ||
	fail "system.ntfs_ea reads back otherwise"
# what ntfs-3g refuses: an offset that is not a multiple of 4
setfattr -n system.ntfs_ea -v 0x1300000000060400244c584d4f4400a411000000 "$e" 2>/dev/null &&
	fail "a malformed system.ntfs_ea was accepted"
setfattr -n system.ntfs_ea -v 0x1400000000060400244c584d4f4400a411000000 "$M/cp-a/empty.cat" ||
	fail "setting system.ntfs_ea on a second file failed"
setfattr -x system.ntfs_ea "$M/cp-a/empty.cat" || fail "removing system.ntfs_ea failed"
getfattr -n system.ntfs_ea "$M/cp-a/empty.cat" >/dev/null 2>&1 && fail "a removed system.ntfs_ea is still there"
setfattr -x system.ntfs_ea "$M/cp-a/empty.cat" 2>/dev/null && fail "removing a missing system.ntfs_ea succeeded"

echo "== after a remount"
wtg_umount "$M"
wtg_mount "$D" "$M"
for d in cp-a cp-preserve tar/drv rsync-H; do check_copy "$M/$d" "$d (after a remount)"; done
check_copy "$M/rsync" "rsync -a (after a remount)" --no-links
check_special
[ "$(getfattr --absolute-names --only-values -e hex -n system.ntfs_ea "$e" | xxd -p | tr -d '\n')" = "${EA#0x}" ] ||
	fail "system.ntfs_ea is not kept"
getfattr -n system.ntfs_ea "$M/cp-a/empty.cat" >/dev/null 2>&1 && fail "a removed system.ntfs_ea came back"
[ "$(stat -c %a "$M/cp-a/drv.inf")" = 755 ] && [ "$(stat -c %a "$M/cp-a/sub/ro.txt")" = 555 ] ||
	fail "the read-only bits are not kept"
wtg_umount "$M"

echo "== a delta of format 1 (before EAs) opens"
D1=$TMP/old.delta
"$WTGFS" init "$D1" "$IMAGES/lzx.wim" >/dev/null || fail "init failed"
wtg_mount "$D1" "$M"
echo old >"$M/old.txt"
wtg_umount "$M"
sqlite3 "$D1" "ALTER TABLE inodes DROP COLUMN ea; PRAGMA user_version = 1;" || fail "cannot make a format-1 delta"
"$WTGFS" log "$D1" >/dev/null || fail "'wtgfs log' of a format-1 delta failed"
[ "$(sqlite3 "$D1" 'PRAGMA user_version')" = 1 ] || fail "a read-only open changed the format"
wtg_mount "$D1" "$M"
[ "$(cat "$M/old.txt")" = old ] || fail "a format-1 delta lost its file"
setfattr -n system.ntfs_ea -v 0x1400000000060400244c584d4f4400a411000000 "$M/old.txt" ||
	fail "an upgraded delta takes no EA"
wtg_umount "$M"
[ "$(sqlite3 "$D1" 'PRAGMA user_version')" = 4 ] || fail "a writable open did not upgrade the format"
"$WTGFS" verify "$D1" >/dev/null || fail "the upgraded delta does not verify"
echo "PASS"
