#!/bin/bash
# Short fuzz runs of every parser of outside bytes (the sanitizer build makes
# this the ASan + UBSan fuzz check); long runs: bench/fuzz-long.
. "$(dirname "$0")/lib.sh"
need_tool wimcapture wimexport python3 sqlite3
fuzz="${top_builddir:?}/fuzz"
runs=${WTGFS_FUZZ_RUNS:-400}

mkdir -p "$TMP/src/d/e" "$TMP/wim" "$TMP/res"
printf 'hello\n' >"$TMP/src/a.txt"
head -c 70000 /dev/zero | tr '\0' 'x' >"$TMP/src/d/big.txt"
seq 1 5000 >"$TMP/src/d/e/seq.txt"
ln "$TMP/src/a.txt" "$TMP/src/d/link.txt"
ln -s ../a.txt "$TMP/src/d/sym"
wimcapture "$TMP/src" "$TMP/wim/lzx.wim" t --compress=LZX >/dev/null
wimexport "$TMP/wim/lzx.wim" 1 "$TMP/wim/xpress.wim" --compress=XPRESS >/dev/null
wimexport "$TMP/wim/lzx.wim" 1 "$TMP/wim/solid.esd" --solid >/dev/null
wimexport "$TMP/wim/lzx.wim" 1 "$TMP/wim/none.wim" --compress=none >/dev/null
# two solid resources in one run of the blob table, and two images
mkdir -p "$TMP/src2"
seq 1 3000 | rev >"$TMP/src2/other.txt"
cp "$TMP/wim/solid.esd" "$TMP/wim/solid2.esd"
wimappend "$TMP/src2" "$TMP/wim/solid2.esd" second --solid >/dev/null
# and the run split in two by the second image's metadata entry
python3 "$top_srcdir/tests/wimcorrupt.py" "$TMP/wim/solid2.esd" split-run -o "$TMP/wim/split.esd" \
	>/dev/null || fail "cannot split the solid run of the seed"
# integrity tables: wimlib's (10 MiB chunks) and one of 4 KiB chunks
wimexport "$TMP/wim/lzx.wim" 1 "$TMP/wim/check.wim" --check >/dev/null
python3 "$top_srcdir/tests/wimcorrupt.py" "$TMP/wim/check.wim" integrity-chunks 4096 \
	-o "$TMP/wim/check4k.wim" >/dev/null || fail "cannot rechunk the integrity table seed"
# crafted ones (tests/hostile.sh): a solid header claiming 2^64 - 1 bytes,
# and 32 KiB solid chunks with a blob moved to 2^40
corrupt="python3 $top_srcdir/tests/wimcorrupt.py"
wimexport "$TMP/wim/lzx.wim" 1 "$TMP/s32.esd" --solid --solid-chunk-size=32768 >/dev/null
$corrupt "$TMP/wim/solid.esd" solid-size 0xFFFFFFFFFFFFFFFF -o "$TMP/wim/huge.esd" >/dev/null
$corrupt "$TMP/s32.esd" solid-size 0xFFFFFFFFFFFFFFFF -o "$TMP/s32huge.esd" >/dev/null
$corrupt "$TMP/s32huge.esd" move-blob largest 0x10000000000 -o "$TMP/wim/spin.esd" >/dev/null
# parameters (see fuzz_resource.c) followed by a real WIM's bytes: generic
# ones, and ones that read each WIM's own resources, sizes up to 2^64
python3 "$top_srcdir/tests/hostile.py" resource-seeds "$TMP/res" "$TMP"/wim/* "$TMP/s32.esd" >/dev/null ||
	fail "cannot write the fuzz_resource seeds"
# size fields alone that claim a huge amount of work (an uncompressed WIM
# with a chunk size of 1 and a metadata resource "compressed" to ~1 GB)
python3 "$top_srcdir/tests/hostile.py" size-bombs "$TMP/wim" "$TMP/wim/none.wim" >/dev/null ||
	fail "cannot write the size-bomb seeds"
# (fuzz/regress/TARGET: inputs that once crashed TARGET, found by
# bench/fuzz-long; under ASan no one allocation may pass -malloc_limit_mb)
"$fuzz/fuzz_wim" -runs="$runs" -seed=1 -malloc_limit_mb=4096 "$TMP/wim" \
	"$top_srcdir/fuzz/regress/wim" 2>"$TMP/fuzz_wim.log" ||
	{ tail -40 "$TMP/fuzz_wim.log"; fail "fuzz_wim crashed"; }
# (the appender's largest allocation is a metadata resource, at most 2 GiB)
"$fuzz/fuzz_wim_append" -runs="$runs" -seed=1 -malloc_limit_mb=3072 "$TMP/wim" \
	"$top_srcdir/fuzz/regress/wim_append" \
	2>"$TMP/fuzz_wim_append.log" ||
	{ tail -40 "$TMP/fuzz_wim_append.log"; fail "fuzz_wim_append crashed"; }
"$fuzz/fuzz_resource" -runs="$((runs * 10))" -seed=1 "$TMP/res" 2>"$TMP/fuzz_resource.log" ||
	{ tail -40 "$TMP/fuzz_resource.log"; fail "fuzz_resource crashed"; }
# WIM metadata resources: those of the WIM above (a hard link, a symlink),
# of one captured with UNIX data (tagged items), and the small test image's
# (security descriptors, DOS names, object ids, named streams) when built.
mkdir -p "$TMP/meta"
wimcapture "$TMP/src" "$TMP/unix.wim" t --unix-data >/dev/null
dump="$top_builddir/tests/wim_meta_dump"
"$dump" "$TMP/wim/lzx.wim" 1 "$TMP/meta/lzx" && "$dump" "$TMP/unix.wim" 1 "$TMP/meta/unix" ||
	fail "cannot write the fuzz_wim_meta seeds"
if [ -f "$WTGFS_TEST_IMAGES/small/lzx.wim" ]; then
	"$dump" "$WTGFS_TEST_IMAGES/small/lzx.wim" 1 "$TMP/meta/small" || fail "cannot read the small image"
fi
"$fuzz/fuzz_wim_meta" -runs="$((runs * 5))" -seed=1 "$TMP/meta" || fail "fuzz_wim_meta crashed"
# Symlink targets: the links tests/hostile.sh writes, as reparse buffers and
# as targets, and POSIX targets, at several depths (see fuzz_readlink.c).
python3 "$top_srcdir/tests/hostile.py" readlink-seeds "$TMP/link" >/dev/null ||
	fail "cannot write the fuzz_readlink seeds"
"$fuzz/fuzz_readlink" -runs="$((runs * 25))" -seed=1 "$TMP/link" "$top_srcdir/fuzz/regress/readlink" ||
	fail "fuzz_readlink crashed"

# Delta files: the small real deltas unit_store leaves behind when asked
# (layers and snapshots, inodes and names, chunks raw and compressed).
mkdir -p "$TMP/delta"
WTGFS_KEEP_DELTAS="$TMP/delta" "$top_builddir/tests/unit_store" >"$TMP/unit_store.log" 2>&1 ||
	{ tail -20 "$TMP/unit_store.log"; fail "unit_store cannot write the delta seeds"; }
# and one that init made of the WIM above: its base metadata and counts
"$WTGFS" init "$TMP/init.delta" "$TMP/wim/lzx.wim" >/dev/null || fail "init of the seed delta failed"
[ -f "$TMP/init.journal" ] && rm -f "$TMP/init.journal"
cp "$TMP/init.delta" "$TMP/delta/init.delta"
"$fuzz/fuzz_delta" -runs="$((runs * 2))" -seed=1 "$TMP/delta" 2>"$TMP/fuzz_delta.log" ||
	{ tail -40 "$TMP/fuzz_delta.log"; fail "fuzz_delta crashed"; }

# Disk images: small VHDX and VHD files made by qemu-img from a 1 MiB raw
# disk, and the first 320 KiB of the VHDX (headers and region tables: cheap
# to mutate where our own checks read).
if have_tool qemu-img; then
	mkdir -p "$TMP/block"
	qemu-img create -q -f raw "$TMP/disk.img" 1M
	seq 1 20000 | dd of="$TMP/disk.img" conv=notrunc status=none
	qemu-img convert -O vhdx -o block_size=1M "$TMP/disk.img" "$TMP/block/dyn.vhdx"
	qemu-img convert -O vpc -o force_size=on "$TMP/disk.img" "$TMP/block/dyn.vhd"
	qemu-img convert -O vpc -o subformat=fixed,force_size=on "$TMP/disk.img" "$TMP/block/fixed.vhd"
	head -c 320K "$TMP/block/dyn.vhdx" >"$TMP/block/head.vhdx"
	# each refused input logs a line; keep them out of the way, not a crash
	"$fuzz/fuzz_block" -runs="$((runs * 2))" -seed=1 "$TMP/block" 2>"$TMP/fuzz_block.log" ||
		{ tail -40 "$TMP/fuzz_block.log"; fail "fuzz_block crashed"; }
else
	echo "fuzz_block not run: 'qemu-img' is not installed (scripts/deps.sh installs it)"
fi

# Partition tables: GPT and MBR disks of 1 MiB and of 128 KiB (where most
# mutations land on the tables) made by sfdisk, backup GPT included, a
# large GPT disk's first MiB, and with root a GPT with 4096-byte sectors.
# A seed's first two bytes are fuzz_disk's parameters (see fuzz_disk.c):
# sector size, CRC fix-up, what lies past the bytes, and how many MiB the
# disk claims beyond them.
if have_tool sfdisk; then
	mkdir -p "$TMP/disk"
	truncate -s 1M "$TMP/gpt.img" "$TMP/mbr.img"
	truncate -s 128K "$TMP/small-gpt.img" "$TMP/small-mbr.img"
	truncate -s 64M "$TMP/big.img"
	sfdisk -q "$TMP/gpt.img" <<-'EOF' || fail "sfdisk cannot write a GPT"
	label: gpt
	first-lba: 34
	size=100, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI"
	size=200, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="Windows"
	EOF
	sfdisk -q "$TMP/mbr.img" <<-'EOF' || fail "sfdisk cannot write an MBR"
	label: dos
	start=64, size=100, type=7, bootable
	start=200, size=100, type=c
	start=400, size=1000, type=5
	start=1500, size=100, type=83
	start=500, size=100, type=82
	start=700, size=100, type=7
	EOF
	printf 'label: gpt\nsize=8M, type=U\nsize=16M, type=L\n' | sfdisk -q "$TMP/big.img" ||
		fail "sfdisk cannot write a GPT"
	sfdisk -q "$TMP/small-gpt.img" <<-'EOF' || fail "sfdisk cannot write a GPT"
	label: gpt
	first-lba: 34
	size=20, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI"
	size=16, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE
	size=100, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="Windows"
	EOF
	sfdisk -q "$TMP/small-mbr.img" <<-'EOF' || fail "sfdisk cannot write an MBR"
	label: dos
	start=8, size=20, type=7, bootable
	start=30, size=10, type=c
	start=50, size=150, type=5
	start=210, size=30, type=83
	start=60, size=10, type=82
	start=80, size=10, type=7
	start=100, size=10, type=7
	EOF
	# seed NAME PARAMETERS IMAGE
	seed() { { printf "$2"; head -c 1M "$3"; } >"$TMP/disk/$1"; }
	seed gpt '\x00\x00' "$TMP/gpt.img"
	seed gpt-fixed '\x09\x00' "$TMP/gpt.img"
	seed mbr '\x00\x00' "$TMP/mbr.img"
	seed mbr-4096 '\x02\x00' "$TMP/mbr.img"
	seed small-gpt '\x00\x00' "$TMP/small-gpt.img"
	seed small-gpt-fixed '\x08\x00' "$TMP/small-gpt.img"
	seed small-mbr '\x00\x00' "$TMP/small-mbr.img"
	seed big '\x00\x00' "$TMP/big.img"
	seed big-zeros '\x18\x3f' "$TMP/big.img"
	seed big-eio '\x08\x3f' "$TMP/big.img"
	truncate -s 1M "$TMP/gpt4k.img"
	if [ "$(id -u)" = 0 ] && loop=$(losetup --sector-size 4096 -f --show "$TMP/gpt4k.img" 2>/dev/null); then
		printf 'label: gpt\nfirst-lba: 6\nsize=20, type=U\nsize=40, type=L\n' |
			sfdisk -q --no-reread "$loop" >/dev/null 2>&1
		losetup -d "$loop"
		seed gpt4k '\x08\x00' "$TMP/gpt4k.img"
		seed gpt4k-told '\x0a\x00' "$TMP/gpt4k.img"
	fi
	"$fuzz/fuzz_disk" -runs="$((runs * 10))" -seed=1 "$TMP/disk" 2>"$TMP/fuzz_disk.log" ||
		{ tail -40 "$TMP/fuzz_disk.log"; fail "fuzz_disk crashed"; }
else
	echo "fuzz_disk not run: 'sfdisk' is not installed"
fi
# Security descriptors: the parents unit_sd builds (two of them real, from
# the test image's C:\ and C:\Windows), written out when asked.
mkdir -p "$TMP/sd"
WTGFS_KEEP_SDS="$TMP/sd" "$top_builddir/tests/unit_sd" >"$TMP/unit_sd.log" 2>&1 ||
	{ tail -20 "$TMP/unit_sd.log"; fail "unit_sd cannot write the SD seeds"; }
"$fuzz/fuzz_sd" -runs="$((runs * 50))" -seed=1 "$TMP/sd" || fail "fuzz_sd crashed"
# NTFS $EA values: what ntfs-3g writes for 'mknod c 4 5' and for a fifo
mkdir -p "$TMP/ea"
printf '\x14\0\0\0\0\x06\x04\0$LXMOD\0\xa4\x21\0\0\0\x18\0\0\0\0\x06\x08\0$LXDEV\0\x04\0\0\0\x05\0\0\0\0' >"$TMP/ea/chr"
printf '\x14\0\0\0\0\x06\x04\0$LXMOD\0\xa4\x11\0\0\0' >"$TMP/ea/fifo"
"$fuzz/fuzz_ea" -runs="$((runs * 100))" -seed=1 "$TMP/ea" || fail "fuzz_ea crashed"
# Base index records: every inode's record of a delta made on the WIM above
mkdir -p "$TMP/base"
"$WTGFS" init "$TMP/b.delta" "$TMP/wim/lzx.wim" >/dev/null || fail "wtgfs init for the base seeds failed"
(cd "$TMP/base" && sqlite3 "$TMP/b.delta" "SELECT writefile('r' || ino, data) FROM base_inodes" >/dev/null) ||
	fail "cannot write the base record seeds"
[ "$(ls "$TMP/base" | wc -l)" -gt 5 ] || fail "the delta holds too few base records"
"$fuzz/fuzz_base_record" -runs="$((runs * 100))" -seed=1 "$TMP/base" || fail "fuzz_base_record crashed"
echo PASS
