#!/bin/bash
# What a delta mount keeps of POSIX tools reaches a flushed drive: fifos,
# sockets and devices made on the mount, and NTFS extended attributes,
# read back through ntfs-3g (-o special_files=wsl) from the Windows
# partition as ntfs-3g shows WSL's files, byte for byte in system.ntfs_ea
# and system.ntfs_reparse_data, with the read-only attribute of a chmod.
. "$(dirname "$0")/lib.sh"

need_root
need_fuse
need_tool ntfs-3g sfdisk losetup getfattr setfattr mknod mkfifo
test_images small

D=$TMP/d.delta
M=$TMP/m
"$WTGFS" init "$D" "$IMAGES/lzx.wim" >/dev/null || fail "init failed"
wtg_mount "$D" "$M"
mkdir "$M/wsl"
mkfifo "$M/wsl/fifo" || fail "mkfifo failed"
mknod "$M/wsl/tty1" c 4 1 || fail "mknod c failed"
mknod "$M/wsl/sdb" b 8 16 || fail "mknod b failed"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$M/wsl/sock" ||
	fail "binding a socket failed"
echo "MZ" >"$M/wsl/ea.exe"
EA=0x2c00000080160c00244b45524e454c2e50555247452e455342434143484500000102030405060708090a0b001400000000040400544553540061626364000000
setfattr -n system.ntfs_ea -v $EA "$M/wsl/ea.exe" || fail "setting system.ntfs_ea failed"
echo "read only" >"$M/wsl/ro.txt"
chmod 444 "$M/wsl/ro.txt"
wtg_umount "$M"

IMG=$TMP/disk.img
"$WTGFS" flush "$D" "$IMG" --size 1G --yes --verify --no-wtg-tweaks >"$TMP/flush.out" 2>&1 ||
	{ cat "$TMP/flush.out"; fail "flush failed"; }
range=$(sfdisk -J "$IMG" | python3 -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
p = t["partitions"][-1]
print(p["start"] * t.get("sectorsize", 512), p["size"] * t.get("sectorsize", 512))') ||
	fail "cannot read the partition table"
set -- $range
LOOP=$(losetup -f --show -r -o "$1" --sizelimit "$2" "$IMG") || fail "no loop device"
trap 'losetup -d "$LOOP" 2>/dev/null; cleanup' EXIT
N=$TMP/ntfs
mkdir -p "$N"
ntfs-3g -o ro,special_files=wsl "$LOOP" "$N" || fail "ntfs-3g cannot mount the flushed partition"
MOUNTS="$MOUNTS $N"
for x in "fifo:fifo:0,0:24" "tty1:character special file:4,1:25" \
	"sdb:block special file:8,16:26" "sock:socket:0,0:23"; do
	IFS=: read -r n type dev tag <<<"$x"
	got=$(stat -c '%F:%Hr,%Lr' "$N/wsl/$n")
	[ "$got" = "$type:$dev" ] || fail "ntfs-3g shows the flushed $n as '$got', want '$type:$dev'"
	rp=$(getfattr --absolute-names --only-values -n system.ntfs_reparse_data "$N/wsl/$n" | xxd -p)
	[ "$rp" = "${tag}00008000000000" ] || fail "the flushed $n has reparse data $rp"
done
got=$(getfattr --absolute-names --only-values -n system.ntfs_ea "$N/wsl/ea.exe" | xxd -p | tr -d '\n')
[ "$got" = "${EA#0x}" ] || fail "the flushed EA is $got"
a=$(getfattr --absolute-names --only-values -e hex -n system.ntfs_attrib_be "$N/wsl/ro.txt" | xxd -p)
[ $((0x$a & 1)) = 1 ] || fail "the flushed ro.txt is not read-only (attributes 0x$a)"
umount "$N"
echo "PASS"
