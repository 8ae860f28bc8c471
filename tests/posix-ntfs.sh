#!/bin/bash
# WSL special files and NTFS extended attributes of an NTFS base, as
# ntfs-3g writes them (-o special_files=wsl, system.ntfs_ea): a read-only
# mount of the volume, and of a VHDX holding it, shows what ntfs-3g shows
# (types, device numbers, system.ntfs_ea byte for byte), and a WIM captured
# from it what wimlib keeps (the types); a delta over it
# shows the same, changes EAs and makes special files that read back after
# a remount, and the base's EAs and special files stay as they were.
. "$(dirname "$0")/lib.sh"

need_root
need_fuse
need_tool mkntfs ntfs-3g getfattr setfattr mknod mkfifo qemu-img wimcapture
V=$TMP/vol.img
truncate -s 32M "$V"
mkntfs -Q -F -L wsl "$V" >/dev/null 2>&1 || fail "mkntfs failed"

REF=$TMP/ref
mkdir -p "$REF"
ntfs-3g -o special_files=wsl,streams_interface=xattr "$V" "$REF" || fail "ntfs-3g mount failed"
MOUNTS="$MOUNTS $REF"
mkdir "$REF/dev" "$REF/Windows"
mkfifo "$REF/dev/fifo"
mknod "$REF/dev/tty0" c 4 0
mknod "$REF/dev/sda2" b 8 2
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$REF/dev/sock"
printf 'MZ' >"$REF/Windows/notepad.exe"
# what Windows keeps on system files: a $Kernel.Purge EA with NEED_EA, and
# $CI.CATALOGHINT
EA=0x2c00000080160c00244b45524e454c2e50555247452e455342434143484500000102030405060708090a0b0024000000000f0c002443492e434154414c4f4748494e54000100080050656e642e636174
setfattr -n system.ntfs_ea -v "$EA" "$REF/Windows/notepad.exe" || fail "ntfs-3g refuses the test EA"
setfattr -n system.ntfs_ea -v 0x1000000000030100414243007a000000 "$REF/Windows" ||
	fail "ntfs-3g refuses an EA on a directory"
fusermount3 -u "$REF" || fail "cannot unmount ntfs-3g"

ntfs-3g -o ro,special_files=wsl,streams_interface=xattr "$V" "$REF" || fail "ntfs-3g ro mount failed"
M=$TMP/m
compare() { # WHAT
	python3 "$top_srcdir/tests/compare-trees.py" --skip times "$M" "$REF" >"$TMP/cmp.out" 2>&1 ||
		{ cat "$TMP/cmp.out"; fail "$1 differs from ntfs-3g's view"; }
	for x in "dev/fifo:fifo:0,0" "dev/tty0:character special file:4,0" \
		"dev/sda2:block special file:8,2" "dev/sock:socket:0,0"; do
		IFS=: read -r n type dev <<<"$x"
		got=$(stat -c '%F:%Hr,%Lr' "$M/$n")
		[ "$got" = "$type:$dev" ] || fail "$1: $n shows as '$got', want '$type:$dev' (ntfs-3g: $(stat -c '%F:%Hr,%Lr' "$REF/$n"))"
	done
}
ea_of() {
	getfattr --absolute-names --only-values -n system.ntfs_ea "$1" | xxd -p | tr -d '\n'
}

echo "== read-only mount of the volume"
wtg_mount "$V" "$M"
compare "a read-only mount"
[ "$(ea_of "$M/Windows/notepad.exe")" = "${EA#0x}" ] || fail "the base's EA reads otherwise"
wtg_umount "$M"

echo "== a VHDX holding the volume"
qemu-img convert -q -f raw -O vhdx "$V" "$TMP/vol.vhdx" || fail "qemu-img convert failed"
wtg_mount "$TMP/vol.vhdx" "$M"
compare "a read-only mount of the VHDX"
wtg_umount "$M"

echo "== a WIM captured from it"
# wimlib keeps the reparse points but gives no EAs: the types show, the
# device numbers (kept in $LXDEV) do not
wimcapture "$V" "$TMP/vol.wim" >/dev/null 2>&1 || fail "wimcapture failed"
wtg_mount "$TMP/vol.wim" "$M"
for x in "dev/fifo:fifo:0,0" "dev/tty0:character special file:0,0" \
	"dev/sda2:block special file:0,0" "dev/sock:socket:0,0"; do
	IFS=: read -r n type dev <<<"$x"
	got=$(stat -c '%F:%Hr,%Lr' "$M/$n")
	[ "$got" = "$type:$dev" ] || fail "the WIM's $n shows as '$got', want '$type:$dev'"
done
getfattr -n system.ntfs_ea "$M/Windows/notepad.exe" >/dev/null 2>&1 && fail "a WIM base shows an EA"
wtg_umount "$M"

echo "== a delta over it"
D=$TMP/d.delta
"$WTGFS" init "$D" "$TMP/vol.vhdx" >/dev/null || fail "init failed"
wtg_mount "$D" "$M"
compare "a delta mount"
setfattr -n system.ntfs_ea -v 0x1000000000030100444546007a000000 "$M/Windows/notepad.exe" ||
	fail "replacing a base's EA failed"
setfattr -x system.ntfs_ea "$M/Windows" || fail "removing a base's EA failed"
mknod "$M/dev/null" c 1 3 || fail "mknod on the delta failed"
rm "$M/dev/fifo" || fail "removing a base's fifo failed"
mkfifo "$M/dev/fifo2" || fail "mkfifo on the delta failed"
wtg_umount "$M"
wtg_mount "$D" "$M"
[ "$(ea_of "$M/Windows/notepad.exe")" = 1000000000030100444546007a000000 ] || fail "the new EA is not kept"
getfattr -n system.ntfs_ea "$M/Windows" >/dev/null 2>&1 && fail "a removed base EA came back"
[ "$(stat -c '%F:%Hr,%Lr' "$M/dev/null")" = "character special file:1,3" ] || fail "the new device is not kept"
[ ! -e "$M/dev/fifo" ] && [ -p "$M/dev/fifo2" ] && [ -S "$M/dev/sock" ] || fail "the fifos and socket are wrong"
[ "$(stat -c '%F:%Hr,%Lr' "$M/dev/sda2")" = "block special file:8,2" ] || fail "the base's device changed"
wtg_umount "$M"
# the base is untouched
[ "$(ea_of "$REF/Windows/notepad.exe")" = "${EA#0x}" ] || fail "the base changed"
echo "PASS"
