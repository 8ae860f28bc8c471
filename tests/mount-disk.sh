#!/bin/bash
# Disk images as the base: the test image's NTFS volume placed in a GPT and
# in an MBR disk (as a logical partition), converted by qemu-img to dynamic
# and fixed VHDX and to VHD; each mounts (the partition holding \Windows by
# default) and equals ntfs-3g's view of the same volume file for file and
# xattr for xattr.  'wtgfs info' lists the partitions.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool ntfs-3g python3 sfdisk qemu-img mkfs.fat
test_images small

mkdir -p "$TMP/ref"
ntfs-3g -o ro "$IMAGES/volume.img" "$TMP/ref" || fail "ntfs-3g mount failed"
MOUNTS="$MOUNTS $TMP/ref"
vol_mib=$(($(stat -c %s "$IMAGES/volume.img") / 1048576))

# GPT: ESP, MSR, Windows (as Windows lays out a disk)
gpt="$TMP/gpt.img"
truncate -s $((vol_mib + 64))M "$gpt"
sfdisk -q "$gpt" <<SF || fail "sfdisk (GPT) failed"
label: gpt
size=32M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system partition"
size=16M, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE, name="Microsoft reserved partition"
size=${vol_mib}M, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="Basic data partition"
SF
esp_start=$(sfdisk -J "$gpt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][0]["start"])')
win_start=$(sfdisk -J "$gpt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][2]["start"])')
mkfs.fat -F 32 --offset "$esp_start" "$gpt" $((32 * 1024)) >/dev/null 2>&1 || fail "mkfs.fat failed"
dd if="$IMAGES/volume.img" of="$gpt" bs=512 seek="$win_start" conv=notrunc,sparse status=none

# MBR: a primary FAT partition, then the volume as a logical partition
mbr="$TMP/mbr.img"
truncate -s $((vol_mib + 64))M "$mbr"
sfdisk -q "$mbr" <<SF || fail "sfdisk (MBR) failed"
label: dos
size=16M, type=c, bootable
type=5
size=${vol_mib}M, type=7
SF
log_start=$(sfdisk -J "$mbr" | python3 -c 'import json,sys; print([p for p in json.load(sys.stdin)["partitiontable"]["partitions"] if p["node"].endswith("5")][0]["start"])')
dd if="$IMAGES/volume.img" of="$mbr" bs=512 seek="$log_start" conv=notrunc,sparse status=none

qemu-img convert -O vhdx "$gpt" "$TMP/gpt.vhdx" || fail "qemu-img vhdx failed"
qemu-img convert -O vhdx -o subformat=fixed "$gpt" "$TMP/gpt-fixed.vhdx" || fail "qemu-img fixed vhdx failed"
qemu-img convert -O vpc -o force_size=on "$mbr" "$TMP/mbr.vhd" || fail "qemu-img vpc failed"

"$WTGFS" info "$TMP/gpt.vhdx" >"$TMP/info" || fail "info on a VHDX failed"
cat "$TMP/info"
grep -q "vhdx disk" "$TMP/info" && grep -q "GPT" "$TMP/info" || fail "info does not say VHDX/GPT"
grep -E '^ +3 .*NTFS +Windows +yes' "$TMP/info" >/dev/null || fail "info does not show partition 3 as NTFS with Windows"
grep -E '^ +1 .*FAT32' "$TMP/info" >/dev/null || fail "info does not show the ESP as FAT32"
"$WTGFS" info --json "$TMP/mbr.vhd" >"$TMP/json" || fail "info --json on a VHD failed"
python3 - "$TMP/json" <<'PY' || fail "info --json is not what it should be"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "vhd" and d["scheme"] == "mbr", d
parts = {p["number"]: p for p in d["partitions"]}
assert parts[5]["fs"] == "NTFS" and parts[5]["windows"] is True and parts[5]["label"] == "Windows", parts
assert 2 not in parts, "the extended container is not a volume"
PY

m="$TMP/mnt"
for disk in gpt.img gpt.vhdx gpt-fixed.vhdx mbr.img mbr.vhd; do
	echo "== $disk"
	wtg_mount "$TMP/$disk" "$m"
	python3 "$top_srcdir/tests/compare-trees.py" -q "$m" "$TMP/ref" || fail "$disk differs from ntfs-3g's view"
	wtg_umount "$m"
done
wtg_mount "$TMP/gpt.vhdx:3" "$m"
cmp "$m/Windows/System32/notepad.exe" "$TMP/ref/Windows/System32/notepad.exe" || fail "gpt.vhdx:3 reads wrong data"
wtg_umount "$m"

# wrong choices: one line each
for spec in "gpt.vhdx:9|has no partition '9'" "gpt.vhdx:1|not an NTFS volume" "mbr.vhd:2|has no partition '2'"; do
	"$WTGFS" mount "$TMP/${spec%%|*}" "$m" 2>"$TMP/err" && fail "mounted ${spec%%|*}"
	[ "$(grep -c . "$TMP/err")" = 1 ] || { cat "$TMP/err"; fail "${spec%%|*}: not one line"; }
	grep -q "${spec#*|}" "$TMP/err" || { cat "$TMP/err"; fail "${spec%%|*}: does not say '${spec#*|}'"; }
	echo "ok: $(cat "$TMP/err")"
done
# two partitions holding \Windows: the choice is the user's
two="$TMP/two.img"
truncate -s $((2 * vol_mib + 8))M "$two"
sfdisk -q "$two" <<SF || fail "sfdisk (two) failed"
label: gpt
size=${vol_mib}M, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7
size=${vol_mib}M, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7
SF
for n in 0 1; do
	start=$(sfdisk -J "$two" | python3 -c "import json,sys; print(json.load(sys.stdin)['partitiontable']['partitions'][$n]['start'])")
	dd if="$IMAGES/volume.img" of="$two" bs=512 seek="$start" conv=notrunc,sparse status=none
done
"$WTGFS" mount "$two" "$m" 2>"$TMP/err" && fail "mounted an ambiguous disk"
grep -q "partitions 1, 2 each hold" "$TMP/err" || { cat "$TMP/err"; fail "the candidates are not listed"; }
echo "ok: $(cat "$TMP/err")"
wtg_mount "$two:2" "$m"
cmp "$m/Windows/System32/notepad.exe" "$TMP/ref/Windows/System32/notepad.exe" || fail "two.img:2 reads wrong data"
wtg_umount "$m"
echo PASS
