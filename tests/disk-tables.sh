#!/bin/bash
# Partition tables made by sfdisk on sparse files, read by tests/disk_dump
# and compared with what `sfdisk --json` reads: GPT with 512- and 4096-byte
# sectors (the latter through a loop device), MBR with primary, extended and
# logical partitions, a hybrid MBR (sgdisk); and damaged tables: a bad
# primary GPT header (the backup is used), both headers bad, a partition
# past the end of the disk, a protective MBR without a GPT — each a one-line
# error.
. "$(dirname "$0")/lib.sh"
need_tool sfdisk jq
dump="${top_builddir:?}/tests/disk_dump"
cd "$TMP" || fail "no $TMP"

# sfdisk's JSON, as the JSON lines disk_dump prints
to_lines='.partitiontable as $t | ($t.sectorsize // 512) as $ss |
	{scheme: (if $t.label == "dos" then "mbr" else $t.label end), sector_size: $ss, id: $t.id},
	($t.partitions[] | {number: (.node | capture("(?<n>[0-9]+)$").n | tonumber),
		start: (.start * $ss), size: (.size * $ss), type: .type,
		bootable: (.bootable // false)} +
		(if $t.label == "gpt" then {uuid: .uuid, name: (.name // "")} else {} end))'

# expect DEVICE OUT: what sfdisk reads on DEVICE, into OUT
expect() {
	local json
	json=$(sfdisk --json "$1" 2>/dev/null) && jq -S -c "$to_lines" <<<"$json" >"$2"
}

# same IMAGE EXPECTED [SECTOR_SIZE]: disk_dump reads IMAGE as sfdisk did
same() {
	"$dump" "$1" ${3:+"$3"} >"$1.out" 2>"$1.err" || { cat "$1.err"; fail "disk_dump '$1' failed"; }
	jq -S -c 'if .scheme then del(.size) else del(.attrs, .type_name) end' "$1.out" >"$1.got"
	diff -u "$2" "$1.got" || fail "'$1' does not read as sfdisk reads it"
	echo "ok: $1${3:+ ($3-byte sectors)}: $(($(wc -l <"$1.got") - 1)) partitions"
}

# refused IMAGE PATTERN [SECTOR_SIZE]: disk_dump gives a one-line error
refused() {
	local rc=0
	"$dump" "$1" ${3:+"$3"} >/dev/null 2>"$1.err" || rc=$?
	[ "$rc" = 1 ] || { cat "$1.err"; fail "'$1': exit $rc, expected 1"; }
	[ "$(grep -c . "$1.err")" = 1 ] || { cat "$1.err"; fail "'$1': not a one-line error"; }
	grep -q "'$1': $2" "$1.err" || { cat "$1.err"; fail "'$1': error does not say '$2'"; }
	echo "ok: $(cat "$1.err")"
}

# flip IMAGE OFFSET: inverts one byte
flip() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\x$(printf %02x $((b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# GPT, 512-byte sectors, with a hole in the numbering (2 deleted)
truncate -s 64M gpt.img
sfdisk -q gpt.img <<'EOF' || fail "sfdisk cannot write a GPT"
label: gpt
size=8M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system partition"
size=4M, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE, name="gone"
size=16M, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE, name="Microsoft reserved partition"
size=20M, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="Données ☃"
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
EOF
sfdisk -q --delete gpt.img 2 || fail "sfdisk cannot delete a partition"
expect gpt.img gpt.expected || fail "sfdisk cannot read gpt.img"
same gpt.img gpt.expected
same gpt.img gpt.expected 512

# MBR: active primary, primary, extended, primary, two logicals
truncate -s 64M mbr.img
sfdisk -q mbr.img <<'EOF' || fail "sfdisk cannot write an MBR"
label: dos
label-id: 0x12ab34cd
,8M,7,*
,8M,c
,40M,5
,4M,83
,4M,82
,,7
EOF
expect mbr.img mbr.expected || fail "sfdisk cannot read mbr.img"
same mbr.img mbr.expected

# a bad primary GPT header: the backup, with a warning
cp gpt.img primary.img
flip primary.img $((512 + 16))
same primary.img gpt.expected
grep -q "primary GPT header has a bad CRC, using the backup" primary.img.err ||
	{ cat primary.img.err; fail "no warning about the primary header"; }
echo "ok: $(cat primary.img.err)"
# a bad primary partition array: the backup too
cp gpt.img array.img
flip array.img $((1024 + 40))
same array.img gpt.expected

# both bad
cp primary.img both.img
flip both.img $((64 * 1048576 - 512 + 16))
refused both.img "no valid GPT header"

# a disk cut short: the primary's partitions run past its end
cp gpt.img short.img
truncate -s 40M short.img
refused short.img "partition 4 runs past the end of the disk"

# a protective MBR and no GPT behind it
truncate -s 8M pmbr.img
echo ',,ee' | sfdisk -q --label dos pmbr.img || fail "sfdisk cannot write a protective MBR"
refused pmbr.img "protective MBR but no GPT header"

# no table at all
truncate -s 1M blank.img
"$dump" blank.img | grep -q '"scheme":"none"' || fail "a blank disk has a table"
echo "ok: blank.img: no table"

# a hybrid MBR: the GPT is the table
if have_tool sgdisk; then
	cp gpt.img hybrid.img
	sgdisk -h 4 hybrid.img >/dev/null || fail "sgdisk cannot make a hybrid MBR"
	types=$(for i in 0 1 2 3; do od -An -tx1 -j $((446 + 16 * i + 4)) -N1 hybrid.img; done)
	[[ $types == *ee* && $types == *07* ]] || fail "sgdisk did not make a hybrid MBR: $types"
	same hybrid.img gpt.expected
else
	echo "note: sgdisk is not installed, the hybrid MBR case is not tested"
fi

# on4k IMAGE OUT: sfdisk writes the table on stdin to IMAGE through a loop
# device with 4096-byte sectors, and what it reads back into OUT
on4k() {
	local loop ok=1
	loop=$(losetup --sector-size 4096 -f --show "$1") || return 1
	# (sfdisk's partition re-read fails on a loop device without partscan)
	sfdisk -q --no-reread "$loop" >/dev/null 2>&1 || ok=0
	[ "$ok" = 1 ] && { expect "$loop" "$2" || ok=0; }
	losetup -d "$loop"
	[ "$ok" = 1 ]
}

# 4096-byte sectors
truncate -s 64M gpt4k.img mbr4k.img
if [ "$(id -u)" = 0 ] && losetup -f >/dev/null 2>&1; then
	on4k gpt4k.img gpt4k.expected <<-'EOF' || fail "sfdisk cannot write a GPT with 4096-byte sectors"
	label: gpt
	size=16M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI"
	size=16M, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="Windows"
	type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
	EOF
	same gpt4k.img gpt4k.expected
	same gpt4k.img gpt4k.expected 4096
	refused gpt4k.img "protective MBR but no GPT header" 512

	on4k mbr4k.img mbr4k.expected <<-'EOF' || fail "sfdisk cannot write an MBR with 4096-byte sectors"
	label: dos
	,8M,7,*
	,32M,f
	,8M,83
	,4M,82
	,4M,83
	,,7
	EOF
	same mbr4k.img mbr4k.expected 4096
else
	echo "note: no loop device (needs root), the 4096-byte sector cases are not tested"
fi
echo PASS
