#!/bin/bash
# The main job on an embedded default: installs what wtgfs needs, builds it,
# makes a Windows-shaped demo image (tests/mkimage.sh: an NTFS volume laid
# down through ntfs-3g with real ACLs, attributes, streams, DOS names, a
# junction and hard links, captured with wimcapture) and mounts it; then a
# delta over it: a driver injected, a snapshot, a rollback, a diff, a flush
# to a disk image with --verify, and a UEFI boot of that disk in QEMU.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh
[ -x configure ] || autoreconf -fi >/dev/null
mkdir -p build-demo
(cd build-demo && { [ -f Makefile ] || ../configure -q >/dev/null; } && make -s -j2 >/dev/null)
wtgfs=$top/build-demo/wtgfs
images=$top/build-demo/images
mkdir -p "$images"
tests/mkimage.sh small "$images"
mnt=$(mktemp -d /tmp/wtgfs-demo.XXXXXX)
trap 'set +e; "$wtgfs" umount "$mnt" 2>/dev/null; rmdir "$mnt" 2>/dev/null; true' EXIT

run() { printf '\n$ %s\n' "$*"; "$@"; }
run "$wtgfs" info "$images/solid.esd"
run "$wtgfs" mount "$images/solid.esd" "$mnt"
run ls "$mnt" "$mnt/Windows"
run cat "$mnt/WINDOWS/system32/drivers/etc/HOSTS"
run readlink "$mnt/Documents and Settings"
run getfattr -h -e hex -n system.ntfs_acl "$mnt/Windows/System32"
run getfattr -h -e hex -n system.ntfs_attrib_be "$mnt/Windows/System32/config"
run getfattr -h -n system.ntfs_dos_name "$mnt/Program Files"
run stat -c '%h links: %n' "$mnt/Windows/System32/notepad.exe"
run df -h "$mnt"
run "$wtgfs" umount "$mnt"

# the same image made writable: a delta over it, a driver injected
delta=$(mktemp -u /tmp/wtgfs-demo.XXXXXX.delta)
trap 'set +e; "$wtgfs" umount "$mnt" 2>/dev/null; rmdir "$mnt" 2>/dev/null; rm -f "$delta"; true' EXIT
run "$wtgfs" init "$delta" "$images/solid.esd"
run "$wtgfs" mount "$delta" "$mnt"
run mkdir "$mnt/Windows/INF/demo"
printf '[Version]\r\nSignature="$Windows NT$"\r\n' >"$mnt/Windows/INF/demo/demo.inf"
run getfattr -h -e hex -n system.ntfs_attrib "$mnt/Windows/INF/demo/demo.inf"
run mv "$mnt/Windows/INF/demo" "$mnt/Windows/INF/DemoDriver"
run "$wtgfs" umount "$mnt"
run "$wtgfs" mount "$delta" "$mnt"
run cat "$mnt/WINDOWS/inf/demodriver/DEMO.INF"

# layers, while mounted: a snapshot, a change gone wrong, a rollback (undoable)
run "$wtgfs" snapshot "$mnt" driver-in -m "the demo driver injected"
run rm -r "$mnt/Windows/INF/DemoDriver"
run sh -c "echo 'broken' >>'$mnt/Windows/System32/drivers/etc/hosts'"
run ls "$mnt/Windows/INF"
run "$wtgfs" rollback "$mnt" driver-in
run ls "$mnt/Windows/INF"
run tail -n 2 "$mnt/Windows/System32/drivers/etc/hosts"
run "$wtgfs" log --all "$delta"
# a line the stand-in boot manager of the demo image prints when it boots
run sh -c "echo 'wtgfs demo: written through the delta, read at boot' >'$mnt/Windows/wtgfs-boot.txt'"
run "$wtgfs" snapshot "$mnt" bootable -m "a line for the boot check"
run "$wtgfs" umount "$mnt"
# what the delta changed against the image, as git says it (exit 1: different)
run "$wtgfs" diff "$delta" base HEAD || [ $? = 1 ]
run "$wtgfs" diff --status "$delta" base HEAD || [ $? = 1 ]
run "$wtgfs" verify --base "$delta"
# the delta's tree as a bootable Windows To Go disk image, read back
disk=$(mktemp -u /tmp/wtgfs-demo.XXXXXX.img)
trap 'set +e; "$wtgfs" umount "$mnt" 2>/dev/null; rmdir "$mnt" 2>/dev/null; rm -f "$delta" "$disk"; true' EXIT
run "$wtgfs" flush "$delta" "$disk" --yes --verify
run sfdisk -l "$disk"
# UEFI boot check: QEMU + OVMF (software emulation) boots the disk; the demo
# image's bootmgfw.efi is a grub stand-in that finds the Windows partition
# and prints the line the delta wrote there
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
vars=$(mktemp /tmp/wtgfs-demo.XXXXXX.vars)
serial=$(mktemp /tmp/wtgfs-demo.XXXXXX.serial)
trap 'set +e; "$wtgfs" umount "$mnt" 2>/dev/null; rmdir "$mnt" 2>/dev/null; rm -f "$delta" "$disk" "$vars" "$serial"; true' EXIT
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$vars"
printf '\n$ qemu-system-x86_64 -machine q35 -accel tcg (OVMF) %s\n' "$disk"
timeout 300 qemu-system-x86_64 -machine q35 -accel tcg -m 256 -nographic -no-reboot \
	-drive if=pflash,format=raw,readonly=on,file="$ovmf_code" \
	-drive if=pflash,format=raw,file="$vars" -drive file="$disk",format=raw,if=virtio \
	-serial file:"$serial" -monitor none -net none </dev/null >/dev/null 2>&1 || true
tr -d '\r' <"$serial" | grep -a -e WTGFS-STANDIN -e 'wtgfs demo' || true
if ! grep -aq 'wtgfs demo: written through the delta' "$serial"; then
	echo "demo: the flushed disk did not boot to the line the delta wrote (serial log: $serial)" >&2
	trap - EXIT
	exit 1
fi
echo "booted: the flushed disk's boot manager read the file the delta wrote"
# the snapshot back as a WIM image, for DISM or a Windows installer
wim=$(mktemp -u /tmp/wtgfs-demo.XXXXXX.wim)
trap 'set +e; "$wtgfs" umount "$mnt" 2>/dev/null; rmdir "$mnt" 2>/dev/null; rm -f "$delta" "$disk" "$vars" "$serial" "$wim"; true' EXIT
run "$wtgfs" export "$delta@driver-in" "$wim" --compress lzx
run "$wtgfs" info "$wim"
echo
echo "demo done: wtgfs is $wtgfs; the demo images are in $images"
