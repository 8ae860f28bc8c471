#!/bin/bash
# The boot side of a flush, on disk image files partitioned here with
# sfdisk, GPT and MBR: the ESP (fsck.fat -n clean, no label, the image's
# boot files where bcdboot puts them), the BCD checked with hivex against
# the partition table (tests/check-bcd.py), SanPolicy 4 in a copy of the
# SYSTEM hive, images without boot files refused, a store made without a
# BCD-Template, and a UEFI boot: QEMU + OVMF (TCG) starts the image's
# stand-in bootmgfw.efi from the ESP, which finds the Windows partition by
# a file in it and prints the file (written here with a random token).
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool sfdisk mkfs.fat fsck.fat mcopy mdir mlabel mkntfs ntfs-3g hivexget
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import hivex' 2>/dev/null ||
	skip "python3-hivex is not installed (scripts/deps.sh)"
test_images small

FB="$top_builddir/tests/flush_boot"
CHECK_BCD="/usr/bin/python3 $top_srcdir/tests/check-bcd.py"
export MTOOLS_SKIP_CHECK=1
MiB=1048576
token="wtgfs-boot-token-$RANDOM$RANDOM$RANDOM"

# mkdisk SCHEME DISK: a 400 MiB disk laid out as a flush lays it out
mkdisk() {
	rm -f "$2"
	truncate -s 400M "$2"
	if [ "$1" = gpt ]; then
		printf 'label: gpt\nsize=260MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nsize=16MiB, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE\ntype=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n'
	else
		printf 'label: dos\nsize=333MiB, type=c, bootable\ntype=7\n'
	fi | sfdisk -q "$2" || fail "sfdisk $1 failed"
	sfdisk -J "$2" >"$2.json" || fail "sfdisk -J failed"
}

# field DISK.json EXPR: a value of the partition table
field() { /usr/bin/python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['partitiontable']; p=t['partitions']; print($2)" "$1"; }

# build_esp SCHEME DISK ESPFILE SECTOR [--no-wtg-tweaks]: the ESP for DISK's table
build_esp() {
	local scheme=$1 disk=$2 esp=$3 ss=$4
	shift 4
	local w=2
	[ "$scheme" = gpt ] || w=1
	local es ws
	es=$(field "$disk.json" "p[0]['start'] * t['sectorsize']")
	ws=$(field "$disk.json" "p[$w]['start'] * t['sectorsize']")
	rm -f "$esp"
	truncate -s "$(field "$disk.json" "p[0]['size'] * t['sectorsize']")" "$esp"
	if [ "$scheme" = gpt ]; then
		"$FB" esp "$IMAGE" "$esp" gpt "$ss" "$es" "$ws" "$(field "$disk.json" "t['id']")" \
			"$(field "$disk.json" "p[0]['uuid']")" "$(field "$disk.json" "p[$w]['uuid']")" "$@"
	else
		"$FB" esp "$IMAGE" "$esp" mbr "$ss" "$es" "$ws" "$(field "$disk.json" "t['id'][2:]")" - - "$@"
	fi
}

IMAGE="$IMAGES/lzx.wim"
for scheme in gpt mbr; do
	disk="$TMP/$scheme.img"
	esp="$TMP/$scheme-esp.img"
	mkdisk "$scheme" "$disk"
	build_esp "$scheme" "$disk" "$esp" 512 >"$TMP/report" || fail "$scheme: building the ESP failed"
	grep -q 'recoveryenabled = No' "$TMP/report" || fail "$scheme: the report does not list the BCD change"
	fsck.fat -n "$esp" >"$TMP/fsck" 2>&1 || { cat "$TMP/fsck"; fail "$scheme: fsck.fat -n finds errors in the ESP"; }
	[ "$(dd if="$esp" bs=1 skip=82 count=8 status=none)" = "FAT32   " ] || fail "$scheme: the ESP is not FAT32"
	[ "$(dd if="$esp" bs=1 skip=71 count=11 status=none)" = "NO NAME    " ] || fail "$scheme: the ESP's boot sector has a label"
	mlabel -s -i "$esp" :: | grep -q 'has no label' || fail "$scheme: the ESP has a volume label"
	hidden=$(od -An -tu4 -j28 -N4 "$esp" | tr -d ' ')
	[ "$hidden" = "$(field "$disk.json" "p[0]['start']")" ] || fail "$scheme: hidden sectors $hidden, not the partition start"
	# the files, as bcdboot lays them out
	for f in EFI/Boot/bootx64.efi EFI/Microsoft/Boot/bootmgfw.efi EFI/Microsoft/Boot/bootmgr.efi \
		EFI/Microsoft/Boot/memtest.efi EFI/Microsoft/Boot/BCD EFI/Microsoft/Boot/en-US/bootmgfw.efi.mui \
		EFI/Microsoft/Boot/Fonts/segmono_boot.ttf EFI/Microsoft/Boot/Fonts/wgl4_boot.ttf; do
		mcopy -n -i "$esp" "::/$f" "$TMP/got" 2>/dev/null || fail "$scheme: no $f on the ESP"
	done
	mdir -/ -b -i "$esp" ::/ >"$TMP/list" || fail "mdir failed"
	grep -qi '\.log' "$TMP/list" && fail "$scheme: the ESP holds .LOG files: $(grep -i '\.log' "$TMP/list")"
	grep -qi 'PCAT' "$TMP/list" && fail "$scheme: the BIOS boot files are on the ESP"
	mcopy -n -i "$esp" ::/EFI/Boot/bootx64.efi "$TMP/bootx64.efi"
	wtg_mount "$IMAGE" "$TMP/m"
	cmp -s "$TMP/bootx64.efi" "$TMP/m/Windows/Boot/EFI/bootmgfw.efi" || fail "$scheme: bootx64.efi is not the image's bootmgfw.efi"
	for f in $(cd "$TMP/m/Windows/Boot/Fonts" && ls); do
		mcopy -n -i "$esp" "::/EFI/Microsoft/Boot/Fonts/$f" "$TMP/font"
		cmp -s "$TMP/font" "$TMP/m/Windows/Boot/Fonts/$f" || fail "$scheme: font $f differs"
	done
	wtg_umount "$TMP/m"
	# the store
	mcopy -n -i "$esp" ::/EFI/Microsoft/Boot/BCD "$TMP/BCD"
	$CHECK_BCD "$TMP/BCD" "$disk.json" || fail "$scheme: the BCD is wrong (above)"
	echo "$scheme: ESP and BCD ok"

	# the Windows partition (made here until the NTFS writer lands):
	# mkntfs + ntfs-3g, then the token file the stand-in prints
	w=2
	[ "$scheme" = mbr ] && w=1
	ws=$(field "$disk.json" "p[$w]['start']")
	wn=$(field "$disk.json" "p[$w]['size']")
	truncate -s $((wn * 512)) "$TMP/ntfs.img"
	mkntfs -Q -q -F -p "$ws" -H 255 -S 63 "$TMP/ntfs.img" >/dev/null 2>&1 || fail "mkntfs failed"
	mkdir -p "$TMP/n"
	ntfs-3g "$TMP/ntfs.img" "$TMP/n" || fail "ntfs-3g mount failed"
	MOUNTS="$MOUNTS $TMP/n"
	mkdir "$TMP/n/Windows"
	echo "$token $scheme" >"$TMP/n/Windows/wtgfs-boot.txt"
	umount "$TMP/n"
	dd if="$TMP/ntfs.img" of="$disk" bs=1M seek=$((ws * 512 / MiB)) conv=notrunc status=none
	dd if="$esp" of="$disk" bs=1M seek=$(($(field "$disk.json" "p[0]['start']") * 512 / MiB)) conv=notrunc status=none
	sfdisk --verify "$disk" >/dev/null || fail "$scheme: sfdisk --verify"
	rm -f "$TMP/ntfs.img"
done

# --no-wtg-tweaks: recovery stays as Windows has it
build_esp gpt "$TMP/gpt.img" "$TMP/plain-esp.img" 512 --no-wtg-tweaks >"$TMP/report" || fail "--no-wtg-tweaks ESP failed"
[ -s "$TMP/report" ] && fail "--no-wtg-tweaks still reports changes: $(cat "$TMP/report")"
mcopy -n -i "$TMP/plain-esp.img" ::/EFI/Microsoft/Boot/BCD "$TMP/BCD"
$CHECK_BCD "$TMP/BCD" "$TMP/gpt.img.json" --no-wtg-tweaks || fail "the --no-wtg-tweaks BCD is wrong"

# 4096-byte sectors: FAT32 still (4 KiB clusters, 66560 of them)
build_esp gpt "$TMP/gpt.img" "$TMP/4k-esp.img" 4096 >/dev/null || fail "4096-byte sector ESP failed"
fsck.fat -n "$TMP/4k-esp.img" >/dev/null || fail "fsck.fat -n: the 4096-byte sector ESP"
[ "$(od -An -tu2 -j11 -N2 "$TMP/4k-esp.img" | tr -d ' ')" = 4096 ] || fail "the 4K ESP's sectors are not 4096 bytes"
[ "$(dd if="$TMP/4k-esp.img" bs=1 skip=82 count=8 status=none)" = "FAT32   " ] || fail "the 4K ESP is not FAT32"

# SanPolicy 4 in a copy of the SYSTEM hive; the image stays as it is
wtg_mount "$IMAGE" "$TMP/m"
cp "$TMP/m/Windows/System32/config/SYSTEM" "$TMP/SYSTEM"
wtg_umount "$TMP/m"
hivexget "$TMP/SYSTEM" '\ControlSet001\Services\partmgr\Parameters' SanPolicy >/dev/null 2>&1 &&
	fail "the test image's SYSTEM hive has a SanPolicy already"
"$FB" system "$TMP/SYSTEM" >"$TMP/report" || fail "SanPolicy failed"
grep -q 'SanPolicy = 4' "$TMP/report" || fail "the report does not list SanPolicy"
[ "$(hivexget "$TMP/SYSTEM" '\ControlSet001\Services\partmgr\Parameters' SanPolicy)" = 4 ] ||
	fail "SanPolicy is not 4"
hivexget "$TMP/SYSTEM" '\ControlSet001\Services\partmgr' Start >/dev/null || fail "partmgr lost its values"
hivexget "$TMP/SYSTEM" '\Select' Current >/dev/null || fail "the SYSTEM hive lost its other keys"
/usr/bin/python3 "$top_srcdir/tests/mkhive.py" "$TMP/NOPARTMGR"
"$FB" system "$TMP/NOPARTMGR" 2>"$TMP/err" && fail "a SYSTEM hive without partmgr was accepted"
grep -q 'no ControlSet001\\Services\\partmgr' "$TMP/err" || fail "wrong message: $(cat "$TMP/err")"

# an image without boot files is refused; one without a BCD-Template gets a
# fresh store, and without a SOFTWARE hive the OS loader is just "Windows"
d="$TMP/x.delta"
"$WTGFS" init "$d" "$IMAGE" >/dev/null || fail "wtgfs init failed"
wtg_mount "$d" "$TMP/m"
rm "$TMP/m/Windows/System32/config/BCD-Template" "$TMP/m/Windows/System32/config/SOFTWARE"
wtg_umount "$TMP/m"
IMAGE="$d" build_esp gpt "$TMP/gpt.img" "$TMP/nt-esp.img" 512 >/dev/null || fail "ESP without a BCD-Template failed"
fsck.fat -n "$TMP/nt-esp.img" >/dev/null || fail "fsck.fat -n: ESP without a BCD-Template"
mcopy -n -i "$TMP/nt-esp.img" ::/EFI/Microsoft/Boot/BCD "$TMP/BCD"
$CHECK_BCD "$TMP/BCD" "$TMP/gpt.img.json" --no-template --description=Windows || fail "the BCD made without a template is wrong"
wtg_mount "$d" "$TMP/m"
rm -r "$TMP/m/Windows/Boot/EFI"
wtg_umount "$TMP/m"
"$FB" check "$d" 2>"$TMP/err" && fail "an image without Windows\\Boot\\EFI was accepted"
grep -q "has no 'Windows\\\\Boot\\\\EFI\\\\bootmgfw.efi'" "$TMP/err" || fail "wrong message: $(cat "$TMP/err")"
"$FB" check "$IMAGE" || fail "the test image is refused"
echo "SanPolicy, refusals and the template-less store ok"

# UEFI boot of both disks
need_tool qemu-system-x86_64 timeout
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
[ -f "$ovmf_code" ] && [ -f "$ovmf_vars" ] || skip "OVMF is not installed (ovmf)"
for scheme in gpt mbr; do
	cp "$ovmf_vars" "$TMP/vars.fd"
	rm -f "$TMP/serial.log"
	timeout 300 qemu-system-x86_64 -machine q35 -accel tcg -m 256 -nographic -no-reboot \
		-drive if=pflash,format=raw,readonly=on,file="$ovmf_code" \
		-drive if=pflash,format=raw,file="$TMP/vars.fd" \
		-drive file="$TMP/$scheme.img",format=raw,if=virtio \
		-serial file:"$TMP/serial.log" -monitor none -net none </dev/null >"$TMP/qemu.out" 2>&1
	rc=$?
	tr -d '\r' <"$TMP/serial.log" | grep -a -v '^$' | tail -n 5
	grep -aq WTGFS-STANDIN-BOOTMGR "$TMP/serial.log" || fail "$scheme: the stand-in bootmgfw.efi never ran (qemu rc $rc)"
	grep -aq "$token $scheme" "$TMP/serial.log" || fail "$scheme: the stand-in did not find the Windows partition's file (qemu rc $rc)"
	echo "$scheme: UEFI boot ok"
done
echo "flush-boot: ok"
