#!/bin/bash
# wtgfs flush: a delta (WIM- and VHDX-based) and a bare image written to
# image files and loop devices (512- and 4096-byte sectors), GPT and MBR.
# Each result is checked by tools nobody here wrote: sfdisk --verify,
# sgdisk -v, fsck.fat -n on the ESP, ntfsfix -n on the Windows partition,
# and an ntfs-3g mount of it compared with a wtgfs mount of the source file
# for file, byte for byte, xattr for xattr.  Then every safety refusal with
# its message, and flushes killed (SIGKILL) at each phase: no partition
# table and no signature is left, and a second flush succeeds.  The delta
# and its base are never changed.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool ntfs-3g python3 sfdisk sgdisk ntfsfix fsck.fat losetup blkid qemu-img jq sha256sum \
	mkfs.ext4 findmnt lsblk setfattr ntfsls
test_images small

CMP="$top_srcdir/tests/compare-trees.py"
# the flush's temporary files, where this test alone looks at them
export TMPDIR="$TMP/tmp"
mkdir -p "$TMPDIR"
WIM="$IMAGES/lzx.wim"
# Loop devices this test attached and has not detached yet: only those are
# detached at the end (a number detached once may be another test's now).
LOOPS=""
cleanup_loops() {
	for l in $LOOPS; do losetup -d "$l" 2>/dev/null; done
}
unloop() {
	losetup -d "$1"
	LOOPS=$(for l in $LOOPS; do [ "$l" = "$1" ] || printf ' %s' "$l"; done)
}
trap 'cleanup_loops; cleanup' EXIT

# part_range IMG N: "START SIZE" of partition N in bytes
part_range() {
	sfdisk -J "$1" | python3 -c "
import json, sys
t = json.load(sys.stdin)['partitiontable']
p = [p for p in t['partitions'] if p['node'].endswith('$2')][0]
ss = t.get('sectorsize', 512)
print(p['start'] * ss, p['size'] * ss)"
}

# loop_part IMG N: LOOP = a loop device on partition N of the image file
# IMG (not in a subshell: LOOPS must know it)
loop_part() {
	local range
	LOOP=
	range=$(part_range "$1" "$2") || return 1
	set -- "$1" $range
	LOOP=$(losetup -f --show -r -o "$2" --sizelimit "$3" "$1") || return 1
	LOOPS="$LOOPS $LOOP"
}

# check_disk IMG [SCHEME]: the table, the ESP and the NTFS volume are clean
check_disk() {
	local img=$1 scheme=${2:-gpt} out
	out=$(sfdisk --verify "$img" 2>&1) || fail "sfdisk --verify '$img': $out"
	echo "$out" | grep -q "No errors detected" || fail "sfdisk --verify '$img': $out"
	if [ "$scheme" = gpt ]; then
		out=$(sgdisk -v "$img" 2>&1) || fail "sgdisk -v '$img': $out"
		echo "$out" | grep -q "No problems found" || fail "sgdisk -v '$img': $out"
	fi
	local esp win
	loop_part "$img" 1 || fail "no loop device for the ESP of '$img'"
	esp=$LOOP
	out=$(fsck.fat -n "$esp" 2>&1) || fail "fsck.fat -n on the ESP of '$img': $out"
	unloop "$esp"
	loop_part "$img" "$([ "$scheme" = gpt ] && echo 3 || echo 2)" ||
		fail "no loop device for the Windows partition of '$img'"
	win=$LOOP
	out=$(ntfsfix -n "$win" 2>&1) || fail "ntfsfix -n on '$img': $out"
	echo "$out" | grep -q "processed successfully" || fail "ntfsfix -n on '$img': $out"
	WIN_LOOP=$win
}

# same_tree SOURCE-MOUNT LOOP [compare-trees options]: the Windows
# partition equals the source
same_tree() {
	local n=$((++NCMP)) src=$1 dev=$2
	shift 2
	mkdir -p "$TMP/ntfs$n"
	ntfs-3g -o ro "$dev" "$TMP/ntfs$n" || fail "ntfs-3g cannot mount the flushed partition"
	MOUNTS="$MOUNTS $TMP/ntfs$n"
	python3 "$CMP" "$@" "$src" "$TMP/ntfs$n" >"$TMP/cmp$n" 2>&1 ||
		{ cat "$TMP/cmp$n"; fail "the flushed tree differs from '$src'"; }
	umount "$TMP/ntfs$n"
	unloop "$dev"
	tail -n 1 "$TMP/cmp$n"
}
NCMP=0

# ---- a WIM-based delta with a change, to an image file, GPT ----
"$WTGFS" init "$TMP/d.delta" "$WIM" >/dev/null || fail "init failed"
wtg_mount "$TMP/d.delta" "$TMP/m"
mkdir -p "$TMP/m/Windows/System32/drivers" || fail "no drivers directory"
head -c 300000 /dev/urandom >"$TMP/m/Windows/System32/drivers/injected.sys"
setfattr -n user.Zone.Identifier -v 0x5b5a6f6e655472616e736665725d "$TMP/m/Windows/System32/drivers/injected.sys"
# compressed: a file, and a compressed directory holding a file that is not
python3 -c 'import sys; sys.stdout.write("compress me " * 40000)' >"$TMP/m/Windows/System32/drivers/packed.bin"
setfattr -n system.ntfs_attrib_be -v 0x00000820 "$TMP/m/Windows/System32/drivers/packed.bin"
mkdir "$TMP/m/Windows/Packed"
setfattr -n system.ntfs_attrib_be -v 0x00000810 "$TMP/m/Windows/Packed"
echo "plain" >"$TMP/m/Windows/Packed/plain.txt"
setfattr -n system.ntfs_attrib_be -v 0x00000020 "$TMP/m/Windows/Packed/plain.txt"
# a DOS name on one name of a hard-linked file
echo "linked" >"$TMP/m/Windows/System32/drivers/Long Linked Name.sys"
setfattr -n system.ntfs_dos_name -v "LONGLI~1.SYS" "$TMP/m/Windows/System32/drivers/Long Linked Name.sys"
ln "$TMP/m/Windows/System32/drivers/Long Linked Name.sys" "$TMP/m/Windows/Other Long Link Name.sys"
wtg_umount "$TMP/m"
sums_before=$(sha256sum "$TMP/d.delta" "$WIM")

"$WTGFS" flush "$TMP/d.delta" "$TMP/gpt.img" --yes --verify --no-wtg-tweaks --json \
	>"$TMP/gpt.json" 2>"$TMP/gpt.err" || { cat "$TMP/gpt.err"; fail "flush of the delta failed"; }
jq -s -e 'map(select(.type == "result")) | length == 1 and .[0].verified and .[0].scheme == "gpt"' "$TMP/gpt.json" >/dev/null ||
	fail "no JSON result line: $(tail -n 2 "$TMP/gpt.json")"
jq -s -e 'map(select(.type == "progress" and .phase == "tree")) | length > 0' "$TMP/gpt.json" >/dev/null ||
	fail "no JSON progress lines"
[ "$(sha256sum "$TMP/d.delta" "$WIM")" = "$sums_before" ] || fail "the flush changed the delta or its base"
check_disk "$TMP/gpt.img"
# the layout the flush reports (and hands the BCD) is the table's
sfdisk -J "$TMP/gpt.img" | jq -r '.partitiontable | [.id, (.partitions[] | .uuid)] | map(ascii_downcase) | join(" ")' >"$TMP/ids.table"
jq -s -r 'map(select(.type == "result"))[0] | [.disk_guid, .esp.guid, .msr.guid, .windows.guid] | join(" ")' "$TMP/gpt.json" >"$TMP/ids.json"
cmp -s "$TMP/ids.table" "$TMP/ids.json" || fail "the reported GUIDs $(cat "$TMP/ids.json") are not the table's $(cat "$TMP/ids.table")"
# the table: types, names, 1 MiB alignment, the ESP's no-drive-letter bit
sfdisk -J "$TMP/gpt.img" | python3 -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
p = t["partitions"]
assert [q["type"] for q in p] == ["C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
    "E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"], p
assert p[0]["size"] * 512 == 260 << 20 and p[1]["size"] * 512 == 16 << 20, p
assert all(q["start"] * 512 % (1 << 20) == 0 and q["size"] * 512 % (1 << 20) == 0 for q in p), p
assert p[0].get("attrs") == "GUID:63", p[0]
assert len({q["uuid"] for q in p} | {t["id"]}) == 4, p
' || fail "the GPT is not the layout the flush promises"
# (ntfs-3g answers EMLINK for the DOS name of a hard-linked file: ntfsls -x
# lists each name's DOS name instead of its long one where it has one)
ntfsls -x -p /Windows/System32/drivers "$WIN_LOOP" >"$TMP/ntfsls.out" 2>"$TMP/ntfsls.err"
grep -qx "LONGLI~1.SYS" "$TMP/ntfsls.out" ||
	{ # (seen once under load in the ASan build: say what ntfsls saw)
	  echo "ntfsls of /Windows/System32/drivers on $WIN_LOOP said:"; grep -i "long\|~" "$TMP/ntfsls.out"
	  cat "$TMP/ntfsls.err"; ntfsls -p /Windows/System32/drivers "$WIN_LOOP" 2>&1 | grep -i "long"
	  fail "the DOS name is not on the name it shortens"; }
ntfsls -x -p /Windows "$WIN_LOOP" 2>/dev/null | grep -qx "Other Long Link Name.sys" ||
	fail "the other link of a file got a DOS name"
# (ntfs-3g answers EMLINK for the DOS name of a hard-linked file; --verify
# and ntfsls checked the DOS names above)
wtg_mount "$TMP/d.delta" "$TMP/m"
same_tree "$TMP/m" "$WIN_LOOP" --skip system.ntfs_dos_name
wtg_umount "$TMP/m"

# a snapshot of the delta: its tree, not the working layer's
if "$WTGFS" snapshot --help >/dev/null 2>&1; then
	"$WTGFS" snapshot "$TMP/d.delta" injected -m "a driver" >/dev/null || fail "snapshot failed"
	wtg_mount "$TMP/d.delta" "$TMP/m"
	echo "after the snapshot" >"$TMP/m/Windows/System32/drivers/later.txt"
	wtg_umount "$TMP/m"
	"$WTGFS" flush "$TMP/d.delta@injected" "$TMP/snap.img" --yes --verify --no-wtg-tweaks >"$TMP/snap.out" 2>&1 ||
		{ cat "$TMP/snap.out"; fail "flush of a snapshot failed"; }
	check_disk "$TMP/snap.img"
	names=$(ntfsls -p /Windows/System32/drivers "$WIN_LOOP" 2>/dev/null)
	echo "$names" | grep -qx injected.sys || fail "the snapshot's file is not on the drive"
	! echo "$names" | grep -qx later.txt || fail "a file made after the snapshot is on the drive"
	unloop "$WIN_LOOP"
else
	echo "note: no 'wtgfs snapshot' in this build: the snapshot flush is left out"
fi

# a second flush of the same delta: fresh GUIDs, still clean
id1=$(sfdisk -J "$TMP/gpt.img" | jq -r .partitiontable.id)
"$WTGFS" flush "$TMP/d.delta" "$TMP/gpt.img" --yes --no-wtg-tweaks >"$TMP/again.out" 2>&1 ||
	fail "second flush failed: $(cat "$TMP/again.out")"
id2=$(sfdisk -J "$TMP/gpt.img" | jq -r .partitiontable.id)
[ "$id1" != "$id2" ] || fail "the second flush kept the disk GUID $id1"

# ---- a bare image, MBR, to an image file of a given size ----
"$WTGFS" flush "$WIM" "$TMP/mbr.img" --scheme mbr --size 700M --yes --verify --no-wtg-tweaks \
	>"$TMP/mbr.out" 2>&1 || { cat "$TMP/mbr.out"; fail "MBR flush failed"; }
[ "$(stat -c %s "$TMP/mbr.img")" = $((700 << 20)) ] || fail "--size 700M was not the file's size"
check_disk "$TMP/mbr.img" mbr
sfdisk -J "$TMP/mbr.img" | python3 -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
p = t["partitions"]
assert t["label"] == "dos" and [q["type"] for q in p] == ["c", "7"], p
assert p[0].get("bootable") is True and not p[1].get("bootable"), p
assert p[0]["size"] * 512 >= 350 * 1000 * 1000, p
' || fail "the MBR is not Microsoft's WTG layout"
wtg_mount "$WIM" "$TMP/w"
same_tree "$TMP/w" "$WIN_LOOP"

# ---- the WTG settings and unattend.xml, verified ----
printf '<?xml version="1.0"?>\n<unattend/>\n' >"$TMP/unattend.xml"
"$WTGFS" flush "$WIM" "$TMP/wtg.img" --yes --verify --unattend "$TMP/unattend.xml" >"$TMP/wtg.out" 2>&1 ||
	{ cat "$TMP/wtg.out"; fail "flush with the WTG settings failed"; }
grep -q "change: SYSTEM: .*SanPolicy = 4" "$TMP/wtg.out" || fail "the report lacks SanPolicy: $(cat "$TMP/wtg.out")"
grep -q "change: unattend: .* placed as Windows.Panther.unattend.xml" "$TMP/wtg.out" ||
	fail "the report lacks unattend.xml: $(cat "$TMP/wtg.out")"
check_disk "$TMP/wtg.img"
mkdir -p "$TMP/wtgmnt"
ntfs-3g -o ro "$WIN_LOOP" "$TMP/wtgmnt" || fail "ntfs-3g cannot mount the WTG partition"
MOUNTS="$MOUNTS $TMP/wtgmnt"
cmp -s "$TMP/unattend.xml" "$TMP/wtgmnt/Windows/Panther/unattend.xml" || fail "unattend.xml is not in place"
if have_tool hivexget; then
	[ "$(hivexget "$TMP/wtgmnt/Windows/System32/config/SYSTEM" 'ControlSet001\Services\partmgr\Parameters' SanPolicy)" = 4 ] ||
		fail "SanPolicy is not 4 in the flushed SYSTEM hive"
fi
umount "$TMP/wtgmnt"
unloop "$WIN_LOOP"

# ---- a loop device with 4096-byte sectors ----
truncate -s 800M "$TMP/disk4k"
dev=$(losetup -f --show --sector-size 4096 "$TMP/disk4k") || fail "losetup --sector-size 4096 failed"
LOOPS="$LOOPS $dev"
name=${dev#/dev/}
read -r _ _ _ _ w0 _ </sys/block/"$name"/stat
"$WTGFS" flush "$WIM" "$dev" --yes --verify --no-wtg-tweaks >"$TMP/4k.out" 2>&1 ||
	{ cat "$TMP/4k.out"; fail "flush to a 4096-byte-sector loop device failed"; }
read -r _ _ _ _ w1 _ </sys/block/"$name"/stat
echo "loop device: $((w1 - w0)) write requests"
grep -q "4096-byte sectors" "$TMP/4k.out" || fail "the flush did not see 4096-byte sectors: $(cat "$TMP/4k.out")"
out=$(sfdisk --verify "$dev" 2>&1) && echo "$out" | grep -q "No errors" || fail "sfdisk --verify on $dev: $out"
out=$(sgdisk -v "$dev" 2>&1) && echo "$out" | grep -q "No problems found" || fail "sgdisk -v on $dev: $out"
[ "$(sfdisk -J "$dev" | jq .partitiontable.sectorsize)" = 4096 ] || fail "the table on $dev is not in 4096-byte sectors"
read -r start size < <(part_range "$dev" 3)
win=$(losetup -f --show -r -o "$start" --sizelimit "$size" "$TMP/disk4k") || fail "losetup of the 4K Windows partition"
LOOPS="$LOOPS $win"
out=$(ntfsfix -n "$win" 2>&1) && echo "$out" | grep -q "processed successfully" || fail "ntfsfix -n (4K): $out"
same_tree "$TMP/w" "$win"
wtg_umount "$TMP/w"

# ---- a VHDX-based delta ----
vol_mib=$(($(stat -c %s "$IMAGES/volume.img") / 1048576))
truncate -s $((vol_mib + 64))M "$TMP/src.img"
sfdisk -q "$TMP/src.img" <<SF || fail "sfdisk (source disk) failed"
label: gpt
size=32M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
size=16M, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE
size=${vol_mib}M, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7
SF
read -r start _ < <(part_range "$TMP/src.img" 3)
dd if="$IMAGES/volume.img" of="$TMP/src.img" bs=1M seek=$((start >> 20)) conv=notrunc,sparse status=none
qemu-img convert -O vhdx "$TMP/src.img" "$TMP/src.vhdx" || fail "qemu-img convert failed"
"$WTGFS" init "$TMP/v.delta" "$TMP/src.vhdx" >/dev/null || fail "init on a VHDX failed"
wtg_mount "$TMP/v.delta" "$TMP/vm"
echo "from a VHDX delta" >"$TMP/vm/Windows/System32/drivers/vhdx.txt"
wtg_umount "$TMP/vm"
"$WTGFS" flush "$TMP/v.delta" "$TMP/vhdx.img" --yes --verify --no-wtg-tweaks >"$TMP/v.out" 2>&1 ||
	{ cat "$TMP/v.out"; fail "flush of a VHDX-based delta failed"; }
check_disk "$TMP/vhdx.img"
wtg_mount "$TMP/v.delta" "$TMP/vm"
same_tree "$TMP/vm" "$WIN_LOOP"
wtg_umount "$TMP/vm"

# ---- refusals, each with its message ----
refuse() { # EXPECTED-TEXT ARGS...: the flush fails, says so, writes nothing
	local want=$1 rc=0
	shift
	"$WTGFS" flush "$@" </dev/null >"$TMP/refuse.out" 2>&1 || rc=$?
	[ "$rc" = 2 ] || fail "flush $* exited $rc, not 2: $(cat "$TMP/refuse.out")"
	grep -q -- "$want" "$TMP/refuse.out" || fail "flush $*: expected '$want', got: $(cat "$TMP/refuse.out")"
	[ "$(wc -l <"$TMP/refuse.out")" = 1 ] || fail "flush $*: more than one line: $(cat "$TMP/refuse.out")"
}
cp "$TMP/mbr.img" "$TMP/keep.img"
sum=$(sha256sum <"$TMP/keep.img")
refuse "without --yes: standard input is not a terminal" "$WIM" "$TMP/keep.img"
[ "$(sha256sum <"$TMP/keep.img")" = "$sum" ] || fail "a refused flush changed the target"
# asked on a terminal: anything but 'yes' leaves the target alone
if have_tool script; then
	echo no | script -qec "'$WTGFS' flush '$WIM' '$TMP/keep.img'" /dev/null >"$TMP/ask.out" 2>&1 &&
		fail "a flush answered 'no' succeeded"
	grep -q "image file, .*Everything on '$TMP/keep.img' will be overwritten" <(tr -d '\r' <"$TMP/ask.out" | tr '\n' ' ') ||
		fail "the question: $(cat "$TMP/ask.out")"
	grep -q "flush cancelled" "$TMP/ask.out" || fail "no cancel message: $(cat "$TMP/ask.out")"
	[ "$(sha256sum <"$TMP/keep.img")" = "$sum" ] || fail "a cancelled flush changed the target"
	echo yes | script -qec "'$WTGFS' flush '$WIM' '$TMP/keep.img' --no-wtg-tweaks" /dev/null >"$TMP/ask.out" 2>&1 ||
		fail "a flush answered 'yes' failed: $(cat "$TMP/ask.out")"
	cp "$TMP/mbr.img" "$TMP/keep.img"
fi
truncate -s 50M "$TMP/small.img"
refuse "is too small (50.0 MiB), the tree needs at least" "$WIM" "$TMP/small.img" --yes
refuse "size 60.0 MiB is too small" "$WIM" "$TMP/new.img" --size 60M --yes
"$WTGFS" flush "$WIM" "$TMP/small.img" --size 600M --yes --no-wtg-tweaks >/dev/null 2>&1 ||
	fail "--size could not grow an image file"
[ "$(stat -c %s "$TMP/small.img")" = $((600 << 20)) ] || fail "--size 600M did not grow the image file"
out=$(sfdisk --verify "$TMP/small.img" 2>&1) || fail "after growing: $out"
[ ! -e "$TMP/new.img" ] || fail "a refused flush left a new image file behind"
refuse "it holds '$TMP/d.delta', which this flush reads" "$TMP/d.delta" "$TMP/d.delta" --yes
refuse "which this flush reads" "$WIM" "$WIM" --yes
refuse "no snapshot 'nope'" "$TMP/d.delta@nope" "$TMP/nope.img" --yes
attached=$(losetup -f --show "$TMP/keep.img") || fail "losetup failed"
LOOPS="$LOOPS $attached"
refuse "is attached to $attached" "$WIM" "$TMP/keep.img" --yes
unloop "$attached"
# a mounted device
truncate -s 64M "$TMP/ext.img"
mkfs.ext4 -q -F "$TMP/ext.img" || fail "mkfs.ext4 failed"
extdev=$(losetup -f --show "$TMP/ext.img") || fail "losetup failed"
LOOPS="$LOOPS $extdev"
mkdir -p "$TMP/extmnt"
mount "$extdev" "$TMP/extmnt" || fail "mount of an ext4 loop device failed"
MOUNTS="$MOUNTS $TMP/extmnt"
refuse "$extdev is mounted on '$TMP/extmnt'" "$WIM" "$extdev" --yes
umount "$TMP/extmnt"
unloop "$extdev"
# a mounted partition of the target (the node made from sysfs when no udev
# makes it)
truncate -s 100M "$TMP/parted.img"
printf 'label: gpt\nstart=2048, size=100000, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' |
	sfdisk -q "$TMP/parted.img" || fail "sfdisk failed"
pdev=$(losetup -f --show -P "$TMP/parted.img") || fail "losetup -P failed"
LOOPS="$LOOPS $pdev"
pname=${pdev#/dev/}
for _ in $(seq 1 50); do [ -e "/sys/block/$pname/${pname}p1/dev" ] && break; sleep 0.1; done
if [ -e "/sys/block/$pname/${pname}p1/dev" ]; then
	[ -b "${pdev}p1" ] || mknod "${pdev}p1" b $(tr ':' ' ' <"/sys/block/$pname/${pname}p1/dev")
	mkfs.ext4 -q -F "${pdev}p1" || fail "mkfs.ext4 on ${pdev}p1 failed"
	mount "${pdev}p1" "$TMP/extmnt" || fail "mount of ${pdev}p1 failed"
	refuse "${pname}p1 is mounted on '$TMP/extmnt'" "$WIM" "$pdev" --yes
	refuse "it is a partition; give the whole disk" "$WIM" "${pdev}p1" --yes
	umount "$TMP/extmnt"
else
	echo "note: the kernel shows no partitions of $pdev: the mounted-partition refusal is left out"
fi
unloop "$pdev"
# the disk that holds the running system (without --yes: nothing is written
# even if the check were missing)
root_src=$(findmnt -n -o SOURCE /)
root_dev=$(lsblk -n -d -o PKNAME "$root_src" 2>/dev/null)
[ -n "$root_dev" ] && root_dev=/dev/$root_dev || root_dev=$root_src
if [ -b "$root_dev" ]; then
	refuse "holds the running system" "$WIM" "$root_dev"
else
	echo "note: / is not on a block device here: the running-system refusal is left out"
fi
# swap
truncate -s 16M "$TMP/swap.img"
swapdev=$(losetup -f --show "$TMP/swap.img") && LOOPS="$LOOPS $swapdev"
if mkswap "$swapdev" >/dev/null 2>&1 && swapon "$swapdev" 2>/dev/null; then
	refuse "is in use as swap" "$WIM" "$swapdev" --yes
	swapoff "$swapdev"
else
	echo "note: swapon is not allowed here: the swap refusal is left out"
fi
refuse "is not a command\|not a block device or a regular file" "$WIM" /dev/null --yes
rc=0
"$WTGFS" flush "$WIM" "$TMP/x.img" --scheme apm >"$TMP/usage.out" 2>&1 || rc=$?
[ "$rc" = 2 ] && head -n 1 "$TMP/usage.out" | grep -q "wtgfs flush: --scheme is gpt or mbr, not 'apm'" ||
	fail "--scheme apm: $(head -n 1 "$TMP/usage.out")"
[ ! -e "$TMP/x.img" ] || fail "a bad option created the target"

# ---- killed at each phase: no table, no signature; a second flush works ----
for at in wipe ntfs tree@1 tree@100 esp sync; do
	cp "$TMP/mbr.img" "$TMP/kill.img"
	rc=0
	# bash reports the kill on the stderr of the group
	{ WTGFS_TEST_KILL_AT=$at "$WTGFS" flush "$WIM" "$TMP/kill.img" --yes --no-wtg-tweaks \
		>/dev/null 2>&1; } 2>/dev/null || rc=$?
	[ "$rc" = 137 ] || fail "the flush killed at '$at' exited $rc, not 137"
	if [ "$at" = wipe ]; then
		# killed before the first write: the old disk is untouched
		cmp -s "$TMP/mbr.img" "$TMP/kill.img" || fail "killed before the wipe, yet the target changed"
		continue
	fi
	if sfdisk -d "$TMP/kill.img" >/dev/null 2>&1; then
		fail "killed at '$at': '$TMP/kill.img' still has a partition table"
	fi
	sig=$(blkid -p -o export "$TMP/kill.img" 2>/dev/null || true)
	[ -z "$sig" ] || fail "killed at '$at': a signature is left: $sig"
	rm -f "$TMPDIR"/wtgfs-flush.* # SIGKILL leaves them: nothing can clean up after it
	"$WTGFS" flush "$WIM" "$TMP/kill.img" --yes --no-wtg-tweaks --verify >/dev/null 2>&1 ||
		fail "the flush after one killed at '$at' failed"
	out=$(sfdisk --verify "$TMP/kill.img" 2>&1) || fail "after '$at': $out"
done
# SIGTERM: the message says what state the disk is in, temporary files go
rm -f "$TMPDIR"/wtgfs-flush.*
"$WTGFS" flush "$IMAGES/none.wim" "$TMP/term.img" --yes --no-wtg-tweaks >/dev/null 2>"$TMP/term.err" &
pid=$!
for _ in $(seq 1 100); do
	ls "$TMPDIR"/wtgfs-flush.* >/dev/null 2>&1 && break
	sleep 0.01
done
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
if [ "$rc" = 143 ]; then
	grep -q "flush interrupted: '$TMP/term.img' has no partition table yet" "$TMP/term.err" ||
		fail "the message after SIGTERM: $(cat "$TMP/term.err")"
	! ls "$TMPDIR"/wtgfs-flush.* >/dev/null 2>&1 || fail "SIGTERM left temporary files"
	! sfdisk -d "$TMP/term.img" >/dev/null 2>&1 || fail "after SIGTERM '$TMP/term.img' has a table"
else
	echo "note: the flush finished before SIGTERM came (rc $rc)"
fi
echo "PASS"
