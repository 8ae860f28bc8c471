#!/bin/bash
# A DOS name belongs to one name of a file, not to the file.  The volume
# holds Windows\WinSxS\amd64_x\Long File Name With Spaces 000024.mui (DOS
# name L0000O~1.MUI), hard-linked as Windows\System32\hl000024.mui, which
# has no DOS name and comes first in the walk.  Mounted from a WIM captured
# from it and from a VHDX holding it, only the WinSxS name answers the DOS
# name; through a delta, a DOS name set on a name stays on that name across
# remounts, and a rename or removal of the name drops it.  A format 1 delta
# (DOS names on inode records) opens and is carried over to the names.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool mkntfs ntfs-3g wimcapture getfattr setfattr sfdisk qemu-img sqlite3 jq

sxs="Windows/WinSxS/amd64_x"
long="$sxs/Long File Name With Spaces 000024.mui"
s32="Windows/System32/hl000024.mui"

# ---- the volume, made with ntfs-3g: the DOS name first (ntfs-3g refuses
# to set one on a file with several names), then the second name
vol="$TMP/volume.img"
truncate -s 24M "$vol"
mkntfs -q -Q -F -L Windows "$vol" 2>/dev/null || fail "mkntfs failed"
mkdir -p "$TMP/build"
ntfs-3g "$vol" "$TMP/build" || fail "ntfs-3g mount failed"
MOUNTS="$MOUNTS $TMP/build"
b="$TMP/build"
mkdir -p "$b/Windows/System32" "$b/$sxs" "$b/Program Files"
echo "resources 24" >"$b/$long"
setfattr -n system.ntfs_dos_name -v L0000O~1.MUI "$b/$long" || fail "cannot set the DOS name"
ln "$b/$long" "$b/$s32" || fail "cannot make the hard link"
setfattr -n system.ntfs_dos_name -v PROGRA~1 "$b/Program Files" || fail "cannot set PROGRA~1"
echo plain >"$b/Windows/plain file.txt"
umount "$b" || fail "cannot unmount the build volume"

wimcapture "$vol" "$TMP/t.wim" "t" >/dev/null || fail "wimcapture failed"
truncate -s 40M "$TMP/disk.img"
sfdisk -q "$TMP/disk.img" <<SF || fail "sfdisk failed"
label: gpt
start=2048, size=24M, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7
SF
dd if="$vol" of="$TMP/disk.img" bs=512 seek=2048 conv=notrunc,sparse status=none
qemu-img convert -O vhdx "$TMP/disk.img" "$TMP/t.vhdx" || fail "qemu-img failed"

dos() { # dos PATH: its DOS name, or "-" when it has none
	local v rc=0
	v=$(getfattr -h --only-values -n system.ntfs_dos_name "$1" 2>"$TMP/getfattr.err") || rc=$?
	if [ "$rc" != 0 ]; then
		grep -q "No such attribute" "$TMP/getfattr.err" || { cat "$TMP/getfattr.err"; fail "getfattr '$1'"; }
		v=-
	fi
	echo "$v"
}

expect_dos() { # expect_dos MNT PATH WANT
	local got
	got=$(dos "$1/$2")
	[ "$got" = "$3" ] || fail "$(basename "$1"): DOS name of '$2' is '$got', expected '$3'"
}

# the owner and the other name, asked in turn, more than once: each answer
# is the name's own, whichever name was walked before it
check_owner() { # check_owner MNT
	local m=$1
	for _ in 1 2; do
		expect_dos "$m" "$long" L0000O~1.MUI
		expect_dos "$m" "$s32" -
	done
	expect_dos "$m" "Program Files" PROGRA~1
	expect_dos "$m" "Windows/plain file.txt" -
	# NTFS counts the DOS name as a link of its own, as ntfs-3g shows
	[ "$(stat -c %h "$m/$s32")" = 3 ] || fail "link count of '$s32' is $(stat -c %h "$m/$s32")"
	[ "$(stat -c %i "$m/$s32")" = "$(stat -c %i "$m/$long")" ] || fail "the names are not one file"
}

for img in "$TMP/t.wim" "$TMP/t.vhdx"; do
	m="$TMP/ro-$(basename "$img")"
	wtg_mount "$img" "$m"
	check_owner "$m"
	cat "$m/$s32" >/dev/null || fail "cannot read '$s32'"
	check_owner "$m"
	wtg_umount "$m"
done

# ---- through a delta: set, remount, rename, remove
for img in "$TMP/t.wim" "$TMP/t.vhdx"; do
	d="$TMP/$(basename "$img").delta"
	m="$TMP/rw"
	"$WTGFS" init "$d" "$img" >/dev/null || fail "init on '$img' failed"
	wtg_mount "$d" "$m"
	check_owner "$m"
	setfattr -n system.ntfs_dos_name -v HL0000~1.MUI "$m/$s32" || fail "cannot set a DOS name on '$s32'"
	expect_dos "$m" "$s32" HL0000~1.MUI
	expect_dos "$m" "$long" L0000O~1.MUI
	[ "$(stat -c %h "$m/$s32")" = 4 ] || fail "two DOS names: link count $(stat -c %h "$m/$s32")"
	# a DOS name is unique in its directory only, among long and short names
	setfattr -n system.ntfs_dos_name -v PROGRA~1 "$m/Windows/plain file.txt" ||
		fail "PROGRA~1 refused in a directory that has no such name"
	echo x >"$m/Windows/System32/OTHER.MUI"
	setfattr -n system.ntfs_dos_name -v OTHER.MUI "$m/Windows/System32/hl000024.mui" 2>/dev/null &&
		fail "a DOS name equal to another long name was accepted"
	setfattr -x system.ntfs_dos_name "$m/$long" || fail "cannot remove the DOS name of '$long'"
	expect_dos "$m" "$long" -
	expect_dos "$m" "$s32" HL0000~1.MUI
	wtg_umount "$m"
	# diff sees the DOS names of the file's names: the base's on the
	# WinSxS name, now the one on the System32 name
	rc=0
	"$WTGFS" diff --json "$d" base HEAD -- Windows/System32 >"$TMP/diff.json" || rc=$?
	[ "$rc" = 1 ] || fail "diff exited $rc"
	jq -e -s --arg p "$s32" '[.[] | select(.path == $p)][0].dos_name
		== {"old": "L0000O~1.MUI", "new": "HL0000~1.MUI"}' "$TMP/diff.json" >/dev/null ||
		{ cat "$TMP/diff.json"; fail "diff does not show the DOS names moving"; }

	wtg_mount "$d" "$m"
	expect_dos "$m" "$long" -
	expect_dos "$m" "$s32" HL0000~1.MUI
	expect_dos "$m" "Windows/plain file.txt" PROGRA~1
	expect_dos "$m" "Program Files" PROGRA~1
	setfattr -n system.ntfs_dos_name -v L0000O~1.MUI "$m/$long" || fail "cannot set it back"
	mv "$m/$s32" "$m/Windows/System32/hl-renamed.mui" || fail "rename failed"
	expect_dos "$m" "Windows/System32/hl-renamed.mui" -
	expect_dos "$m" "$long" L0000O~1.MUI
	[ "$(stat -c %h "$m/$long")" = 3 ] || fail "after the rename: link count $(stat -c %h "$m/$long")"
	mv "$m/Program Files" "$m/Programs" || fail "rename of a directory failed"
	expect_dos "$m" "Programs" -
	wtg_umount "$m"

	wtg_mount "$d" "$m"
	expect_dos "$m" "Windows/System32/hl-renamed.mui" -
	expect_dos "$m" "$long" L0000O~1.MUI
	expect_dos "$m" "Programs" -
	rm "$m/$long"
	expect_dos "$m" "Windows/System32/hl-renamed.mui" -
	[ "$(stat -c %h "$m/Windows/System32/hl-renamed.mui")" = 1 ] || fail "after rm: link count"
	wtg_umount "$m"
	"$WTGFS" verify "$d" >/dev/null || fail "verify after the changes"
done

# ---- a format 1 delta: the DOS name on the inode record.  The hard-linked
# file's record says L0000O~1.MUI (as format 1 wrote what the base had): it
# stays on the WinSxS name; a new file's DOS name goes to its one name; a
# record that says none drops the base's.
d="$TMP/format1.delta"
m="$TMP/f1"
"$WTGFS" init "$d" "$TMP/t.wim" >/dev/null || fail "init failed"
wtg_mount "$d" "$m"
echo new >"$m/Windows/new file.txt"
touch "$m/$s32" "$m/Program Files"
ino_new=$(stat -c %i "$m/Windows/new file.txt")
ino_hl=$(stat -c %i "$m/$s32")
ino_pf=$(stat -c %i "$m/Program Files")
wtg_umount "$m"
sqlite3 "$d" "ALTER TABLE names DROP COLUMN dos_name; ALTER TABLE inodes DROP COLUMN ea;
	UPDATE inodes SET dos_name = 'NEWFIL~1.TXT' WHERE ino = $ino_new;
	UPDATE inodes SET dos_name = 'L0000O~1.MUI' WHERE ino = $ino_hl;
	UPDATE inodes SET dos_name = NULL WHERE ino = $ino_pf;
	PRAGMA user_version = 1" || fail "cannot make a format 1 delta"
"$WTGFS" log "$d" >/dev/null || fail "log cannot read a format 1 delta"
[ "$(sqlite3 "$d" 'PRAGMA user_version')" = 1 ] || fail "a reader upgraded the delta"
for round in 1 2; do
	wtg_mount "$d" "$m"
	expect_dos "$m" "Windows/new file.txt" NEWFIL~1.TXT
	expect_dos "$m" "$long" L0000O~1.MUI
	expect_dos "$m" "$s32" -
	expect_dos "$m" "Program Files" -
	wtg_umount "$m"
	[ "$(sqlite3 "$d" 'PRAGMA user_version')" = 4 ] || fail "round $round: not upgraded"
done
[ "$(sqlite3 "$d" "SELECT count(*) FROM names WHERE dos_name = 'NEWFIL~1.TXT'")" = 1 ] ||
	fail "the carried-over DOS name is not on its name record"
"$WTGFS" verify "$d" >/dev/null || fail "verify of the upgraded delta"
echo PASS
