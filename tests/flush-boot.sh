#!/bin/bash
# The boot side of 'wtgfs flush', GPT and MBR, on image files: the ESP
# (fsck.fat -n clean, no label, hidden sectors = its start, the image's boot
# files where bcdboot puts them), the BCD checked with hivex against the
# partition table sfdisk reads back (tests/check-bcd.py), the store made
# without a BCD-Template, --no-wtg-tweaks, a 4096-byte-sector ESP, ESPs too
# small for FAT32 refused, images
# without boot files refused before anything is written, a SYSTEM hive the
# WTG settings cannot go into refused with its message, and a UEFI boot:
# QEMU + OVMF (TCG) starts the image's stand-in bootmgfw.efi from the ESP,
# which finds the Windows partition by a file in it and prints the file,
# here one the delta changed to hold a random token.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool sfdisk fsck.fat mcopy mdir mlabel hivexget losetup qemu-system-x86_64 timeout
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import hivex' 2>/dev/null ||
	missing "python3-hivex is not installed"
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
[ -f "$ovmf_code" ] && [ -f "$ovmf_vars" ] || missing "OVMF is not installed (ovmf)"
test_images small

# the flush's temporary files where no other test's cleanup reaches them
export TMPDIR="$TMP/tmp"
mkdir -p "$TMPDIR"
CHECK_BCD="/usr/bin/python3 $top_srcdir/tests/check-bcd.py"
export MTOOLS_SKIP_CHECK=1
WIM="$IMAGES/lzx.wim"
token="wtgfs-boot-token-$RANDOM$RANDOM$RANDOM"
LOOPS=""
trap 'for l in $LOOPS; do losetup -d "$l" 2>/dev/null; done; cleanup' EXIT

# field DISK.json EXPR: a value of the partition table (t, p = its partitions)
field() {
	/usr/bin/python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['partitiontable']; p=t['partitions']; print($2)" "$1"
}

# esp_of DISK OUT: the ESP (the first partition) of DISK, copied to OUT; DISK.json its table
esp_of() {
	sfdisk -J "$1" >"$1.json" || fail "sfdisk -J '$1' failed"
	local ss start size
	ss=$(field "$1.json" "t.get('sectorsize', 512)")
	start=$(field "$1.json" "p[0]['start']")
	size=$(field "$1.json" "p[0]['size']")
	dd if="$1" of="$2" bs="$ss" skip="$start" count="$size" status=none || fail "cannot read the ESP of '$1'"
	HIDDEN_WANT=$start
}

# check_esp ESP SCHEME: FAT32 without a label, clean, with bcdboot's files
check_esp() {
	local esp=$1 scheme=$2 out f
	out=$(fsck.fat -n "$esp" 2>&1) || fail "$scheme: fsck.fat -n finds errors in the ESP: $out"
	[ "$(dd if="$esp" bs=1 skip=82 count=8 status=none)" = "FAT32   " ] || fail "$scheme: the ESP is not FAT32"
	[ "$(dd if="$esp" bs=1 skip=71 count=11 status=none)" = "NO NAME    " ] || fail "$scheme: the ESP's boot sector has a label"
	mlabel -s -i "$esp" :: | grep -q 'has no label' || fail "$scheme: the ESP has a volume label"
	[ "$(od -An -tu4 -j28 -N4 "$esp" | tr -d ' ')" = "$HIDDEN_WANT" ] || fail "$scheme: hidden sectors are not the ESP's start"
	for pair in Boot/bootx64.efi:bootmgfw.efi Microsoft/Boot/bootmgfw.efi:bootmgfw.efi \
		Microsoft/Boot/bootmgr.efi:bootmgr.efi Microsoft/Boot/memtest.efi:memtest.efi \
		Microsoft/Boot/en-US/bootmgfw.efi.mui:en-US/bootmgfw.efi.mui; do
		f=EFI/${pair%%:*}
		mcopy -n -i "$esp" "::/$f" "$TMP/got" 2>/dev/null || fail "$scheme: no $f on the ESP"
		cmp -s "$TMP/got" "$TMP/w/Windows/Boot/EFI/${pair#*:}" ||
			fail "$scheme: $f is not the image's Windows\\Boot\\EFI\\${pair#*:}"
	done
	for f in $(cd "$TMP/w/Windows/Boot/Fonts" && ls); do
		mcopy -n -i "$esp" "::/EFI/Microsoft/Boot/Fonts/$f" "$TMP/got" 2>/dev/null || fail "$scheme: no font $f on the ESP"
		cmp -s "$TMP/got" "$TMP/w/Windows/Boot/Fonts/$f" || fail "$scheme: font $f differs"
	done
	mdir -/ -b -i "$esp" ::/ >"$TMP/list" || fail "mdir failed"
	! grep -qi '\.log' "$TMP/list" || fail "$scheme: the ESP holds .LOG files: $(grep -i '\.log' "$TMP/list")"
	! grep -qi 'pcat' "$TMP/list" || fail "$scheme: the BIOS boot files are on the ESP"
	mcopy -n -i "$esp" ::/EFI/Microsoft/Boot/BCD "$TMP/BCD"
}

# boot DISK SCHEME: QEMU + OVMF boots DISK; the serial log must show the token
boot() {
	cp "$ovmf_vars" "$TMP/vars.fd"
	rm -f "$TMP/serial.log"
	local rc=0
	timeout 300 qemu-system-x86_64 -machine q35 -accel tcg -m 256 -nographic -no-reboot \
		-drive if=pflash,format=raw,readonly=on,file="$ovmf_code" \
		-drive if=pflash,format=raw,file="$TMP/vars.fd" \
		-drive file="$1",format=raw,if=virtio \
		-serial file:"$TMP/serial.log" -monitor none -net none </dev/null >"$TMP/qemu.out" 2>&1 || rc=$?
	tr -d '\r' <"$TMP/serial.log" | grep -a -v '^$' | tail -n 3
	grep -aq WTGFS-STANDIN-BOOTMGR "$TMP/serial.log" || fail "$2: the stand-in bootmgfw.efi never ran (qemu rc $rc)"
	grep -aq "$token" "$TMP/serial.log" ||
		fail "$2: the stand-in did not print the Windows partition's file (qemu rc $rc)"
}

wtg_mount "$WIM" "$TMP/w"

# a delta whose Windows partition tells the boot test it was found
"$WTGFS" init "$TMP/d.delta" "$WIM" >/dev/null || fail "wtgfs init failed"
wtg_mount "$TMP/d.delta" "$TMP/m"
echo "$token" >"$TMP/m/Windows/wtgfs-boot.txt"
wtg_umount "$TMP/m"

for scheme in gpt mbr; do
	disk="$TMP/$scheme.img"
	"$WTGFS" flush "$TMP/d.delta" "$disk" --scheme "$scheme" --size 1G --yes >"$TMP/out" 2>&1 ||
		{ cat "$TMP/out"; fail "$scheme: wtgfs flush failed"; }
	grep -q 'recoveryenabled = No' "$TMP/out" || fail "$scheme: the report lacks the BCD change: $(cat "$TMP/out")"
	esp_of "$disk" "$TMP/esp.img"
	check_esp "$TMP/esp.img" "$scheme"
	$CHECK_BCD "$TMP/BCD" "$disk.json" || fail "$scheme: the BCD is wrong (above)"
	echo "$scheme: ESP and BCD ok"
	if [ "$scheme" = gpt ]; then
		# the Windows partition as the stand-in will read it, and SanPolicy
		wtg_mount "$disk" "$TMP/f"
		grep -q "$token" "$TMP/f/Windows/wtgfs-boot.txt" || fail "the flushed partition lacks the delta's file"
		[ "$(hivexget "$TMP/f/Windows/System32/config/SYSTEM" '\ControlSet001\Services\partmgr\Parameters' SanPolicy)" = 4 ] ||
			fail "SanPolicy is not 4 in the flushed SYSTEM hive"
		wtg_umount "$TMP/f"
	fi
	boot "$disk" "$scheme"
	echo "$scheme: UEFI boot ok"
done

# --no-wtg-tweaks: recovery as Windows has it
"$WTGFS" flush "$WIM" "$TMP/plain.img" --size 1G --yes --no-wtg-tweaks >"$TMP/out" 2>&1 ||
	{ cat "$TMP/out"; fail "--no-wtg-tweaks flush failed"; }
! grep -q 'recoveryenabled' "$TMP/out" || fail "--no-wtg-tweaks still changes the BCD"
esp_of "$TMP/plain.img" "$TMP/esp.img"
check_esp "$TMP/esp.img" plain
$CHECK_BCD "$TMP/BCD" "$TMP/plain.img.json" --no-wtg-tweaks || fail "the --no-wtg-tweaks BCD is wrong"
rm -f "$TMP/plain.img"

# 4096-byte sectors: still FAT32 (4 KiB clusters, 66560 of them)
truncate -s 800M "$TMP/disk4k"
dev=$(losetup -f --show --sector-size 4096 "$TMP/disk4k") || fail "losetup --sector-size 4096 failed"
LOOPS="$LOOPS $dev"
"$WTGFS" flush "$WIM" "$dev" --yes >"$TMP/out" 2>&1 || { cat "$TMP/out"; fail "flush to a 4K loop device failed"; }
esp_of "$dev" "$TMP/esp.img"
[ "$(od -An -tu2 -j11 -N2 "$TMP/esp.img" | tr -d ' ')" = 4096 ] || fail "the 4K ESP's sectors are not 4096 bytes"
check_esp "$TMP/esp.img" 4k
$CHECK_BCD "$TMP/BCD" "$dev.json" || fail "the 4K disk's BCD is wrong"
losetup -d "$dev"
rm -f "$TMP/disk4k"
# an ESP too small to be FAT32 is refused before anything is written
truncate -s 800M "$TMP/disk4k"
dev=$(losetup -f --show --sector-size 4096 "$TMP/disk4k") || fail "losetup --sector-size 4096 failed"
LOOPS="$LOOPS $dev"
"$WTGFS" flush "$WIM" "$dev" --esp-size 256M --yes 2>"$TMP/err" >/dev/null && fail "a 256 MiB ESP with 4K sectors was made"
grep -q 'too few clusters with 4096-byte sectors (at least 260 MiB' "$TMP/err" || fail "wrong message: $(cat "$TMP/err")"
[ "$(stat -c %b "$TMP/disk4k")" = 0 ] || fail "the refused flush wrote to the device"
losetup -d "$dev"
rm -f "$TMP/disk4k"
"$WTGFS" flush "$WIM" "$TMP/small-esp.img" --esp-size 32M --size 1G --yes 2>"$TMP/err" >/dev/null &&
	fail "a 32 MiB ESP was made"
grep -q 'at least 33 MiB' "$TMP/err" || fail "wrong message: $(cat "$TMP/err")"
echo "--no-wtg-tweaks, 4096-byte sectors and small ESPs ok"

# without a BCD-Template a fresh store; without a SOFTWARE hive the OS loader is "Windows"
"$WTGFS" init "$TMP/n.delta" "$WIM" >/dev/null || fail "wtgfs init failed"
wtg_mount "$TMP/n.delta" "$TMP/m"
rm "$TMP/m/Windows/System32/config/BCD-Template" "$TMP/m/Windows/System32/config/SOFTWARE"
wtg_umount "$TMP/m"
"$WTGFS" flush "$TMP/n.delta" "$TMP/nt.img" --size 1G --yes >"$TMP/out" 2>&1 ||
	{ cat "$TMP/out"; fail "flush without a BCD-Template failed"; }
esp_of "$TMP/nt.img" "$TMP/esp.img"
check_esp "$TMP/esp.img" no-template
$CHECK_BCD "$TMP/BCD" "$TMP/nt.img.json" --no-template --description=Windows ||
	fail "the BCD made without a template is wrong"
rm -f "$TMP/nt.img"

# an image without Windows\Boot\EFI is refused before anything is written
wtg_mount "$TMP/n.delta" "$TMP/m"
rm -r "$TMP/m/Windows/Boot/EFI"
wtg_umount "$TMP/m"
"$WTGFS" flush "$TMP/n.delta" "$TMP/none.img" --size 1G --yes 2>"$TMP/err" >/dev/null &&
	fail "an image without Windows\\Boot\\EFI was flushed"
grep -q "has no 'Windows\\\\Boot\\\\EFI\\\\bootmgfw.efi'" "$TMP/err" || fail "wrong message: $(cat "$TMP/err")"
[ ! -e "$TMP/none.img" ] || [ "$(stat -c %b "$TMP/none.img")" = 0 ] ||
	fail "the refused flush wrote to its target"
truncate -s 1G "$TMP/old.img"
printf 'label: gpt\ntype=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n' | sfdisk -q "$TMP/old.img"
before=$(sha256sum <"$TMP/old.img")
"$WTGFS" flush "$TMP/n.delta" "$TMP/old.img" --yes 2>/dev/null >/dev/null && fail "flushed without boot files"
[ "$(sha256sum <"$TMP/old.img")" = "$before" ] || fail "the refused flush changed an existing target"

# a SYSTEM hive without the partmgr service: the WTG settings cannot be
# made, the flush says so and leaves no partition table
"$WTGFS" init "$TMP/s.delta" "$WIM" >/dev/null || fail "wtgfs init failed"
wtg_mount "$TMP/s.delta" "$TMP/m"
/usr/bin/python3 "$top_srcdir/tests/mkhive.py" "$TMP/m/Windows/System32/config/SYSTEM" || fail "mkhive.py failed"
wtg_umount "$TMP/m"
"$WTGFS" flush "$TMP/s.delta" "$TMP/s.img" --size 1G --yes 2>"$TMP/err" >/dev/null &&
	fail "a SYSTEM hive without partmgr got WTG settings"
grep -q 'no ControlSet001\\Services\\partmgr (use --no-wtg-tweaks' "$TMP/err" || fail "wrong message: $(cat "$TMP/err")"
! sfdisk -d "$TMP/s.img" >/dev/null 2>&1 || fail "the failed flush left a partition table"
"$WTGFS" flush "$TMP/s.delta" "$TMP/s.img" --size 1G --yes --no-wtg-tweaks >/dev/null 2>&1 ||
	fail "--no-wtg-tweaks does not get past the SYSTEM hive"
rm -f "$TMP/s.img"
echo "the template-less store and the refusals ok"
wtg_umount "$TMP/w"
echo "flush-boot: ok"
