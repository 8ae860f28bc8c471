#!/bin/bash
# Disk images through wtg_block_open, made by qemu-img from one raw file of
# random bytes: every format reads back byte for byte; damaged VHDX and VHD
# files are refused with one line.  No Debian tool writes differencing
# disks: tests/mkvhd-diff.py writes differencing VHDs by hand (differencing
# VHDX stays untested).
. "$(dirname "$0")/lib.sh"
need_tool qemu-img python3 cmp
cat="${top_builddir:?}/tests/block_cat"
cd "$TMP" || fail "no $TMP"

# A recognisable pattern: seeded random bytes, with a hole of zeros left in
# the middle so the dynamic formats have an unallocated block to serve.
qemu-img create -q -f raw raw.img 12M
python3 -c 'import random; random.seed(7); open("r", "wb").write(random.randbytes(4 << 20))'
dd if=r of=raw.img bs=1M count=4 conv=notrunc status=none
dd if=r of=raw.img bs=1M seek=8 count=3 conv=notrunc status=none
qemu-img convert -O vhdx raw.img dyn.vhdx
qemu-img convert -O vhdx -o subformat=fixed raw.img fixed.vhdx
qemu-img convert -O vhdx -o block_size=1M raw.img small-blocks.vhdx
# force_size keeps the size exact (VHD otherwise rounds up to a CHS geometry)
qemu-img convert -O vpc -o force_size=on raw.img dyn.vhd
qemu-img convert -O vpc -o subformat=fixed,force_size=on raw.img fixed.vhd
size=$(stat -c %s raw.img)

# same IMAGE FORMAT: reads back as raw.img, with its size, through the API
same() {
	local info
	info=$("$cat" -i "$1") || fail "'$1' does not open"
	set -- "$1" "$2" $info
	[ "$3" = "$2" ] || fail "'$1' opened as '$3', not '$2'"
	[ "$4" = "$size" ] || fail "'$1' is $4 bytes, not $size"
	[ "$5" = 512 ] || fail "'$1' has $5-byte sectors"
	"$cat" "$1" | cmp - raw.img || fail "'$1' does not read back as raw.img"
	"$cat" "$1" 4194000 9000 | cmp - <(tail -c +4194001 raw.img | head -c 9000) ||
		fail "'$1' does not read across a block boundary"
	echo "ok: $1 ($2, identity $6)"
}
same raw.img raw
same dyn.vhdx vhdx
same fixed.vhdx vhdx
same small-blocks.vhdx vhdx
same dyn.vhd vhd
same fixed.vhd vhd
[ "$("$cat" -i dyn.vhdx | cut -d' ' -f4)" != "$("$cat" -i fixed.vhdx | cut -d' ' -f4)" ] ||
	fail "two VHDX files have one identity"

# vhdx-headers FILE MODE: rewrites the two VHDX headers at 64 and 128 KiB.
# log: a non-zero LogGuid in both, checksums made right, so only the log
# check can refuse it; stale: both damaged, checksums left as they were;
# newer: only the header with the higher sequence number damaged; prints
# the DataWriteGuid of the other, which is then the disk's identity.
vhdx_headers() {
	python3 - "$1" "$2" <<'PY'
import struct, sys
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF
path, mode = sys.argv[1], sys.argv[2]
with open(path, "r+b") as f:
    heads = []
    for off in (64 << 10, 128 << 10):
        f.seek(off)
        heads.append((off, bytearray(f.read(4096))))
    seq = [struct.unpack_from("<Q", h, 8)[0] for _, h in heads]
    newer = seq.index(max(seq))
    for i, (off, h) in enumerate(heads):
        assert h[:4] == b"head"
        if mode == "log":
            h[0x30:0x40] = bytes(range(1, 17))
            h[4:8] = bytes(4)
            h[4:8] = struct.pack("<I", crc32c(bytes(h)))
        elif mode == "stale" or (mode == "newer" and i == newer):
            h[0x20] ^= 0xFF
        elif mode == "newer":
            g = h[0x20:0x30]
            print("-".join(x.hex() for x in (g[3::-1], g[5:3:-1], g[7:5:-1], g[8:10], g[10:])))
        f.seek(off)
        f.write(h)
PY
}

# refused IMAGE PATTERN: block_cat fails with one line that says PATTERN
refused() {
	local rc=0
	"$cat" "$1" >/dev/null 2>err || rc=$?
	[ "$rc" != 0 ] || fail "'$1' was read"
	[ "$(grep -c . err)" = 1 ] || { cat err; fail "'$1': not a one-line error"; }
	grep -q -- "$2" err || { cat err; fail "'$1': the error does not say '$2'"; }
	echo "ok: $(cat err)"
}

cp dyn.vhdx log.vhdx
vhdx_headers log.vhdx log
refused log.vhdx "'log.vhdx': its log holds unreplayed writes (open it once in Windows or Hyper-V, or run 'qemu-img check -r all')"
cp dyn.vhdx stale.vhdx
vhdx_headers stale.vhdx stale
refused stale.vhdx "neither VHDX header is valid"
cp dyn.vhdx newer.vhdx
older=$(vhdx_headers newer.vhdx newer)
same newer.vhdx vhdx
[ "$("$cat" -i newer.vhdx | cut -d' ' -f4)" = "$older" ] ||
	fail "the identity is not the valid header's DataWriteGuid $older"
# the unpatched copy is untouched by the script's checksum code
cp dyn.vhdx same.vhdx
vhdx_headers same.vhdx none
cmp same.vhdx dyn.vhdx || fail "recomputing nothing changed the headers"

for n in 100000 1000000 3500000 6000000; do
	head -c "$n" dyn.vhdx >"trunc$n.vhdx"
	refused "trunc$n.vhdx" "truncated"
done
head -c 5000000 dyn.vhd >trunc.vhd
refused trunc.vhd "truncated VHD file"
echo "not a disk" >text.vhdx
printf 'vhdxfile' >sig-only.vhdx
refused sig-only.vhdx "truncated VHDX file"
: >empty.img
refused empty.img "empty"
refused "$TMP" "not a disk image"
refused missing.vhdx "No such file or directory"
"$cat" raw.img 12582000 1000 >/dev/null 2>&1 && fail "a read past the end was allowed"
"$cat" text.vhdx | cmp - text.vhdx || fail "a text file does not read as a raw disk"

# Differencing VHDs, written by tests/mkvhd-diff.py on top of dyn.vhd: each
# --write changes whole sectors in the child, and the child must read as
# the parent's bytes with the writes applied.  The writes land in blocks 0
# and 1, which keep most of their sectors in the parent, in block 3, a hole
# in the parent, and in the last sector of the disk.  Small writes sit in
# the last sector of a 4 KiB group: libvhdi 20210425 reads a VHD sector
# bitmap byte wrongly when a set bit is followed by a clear one (the clear
# sector is taken from the child).  wtgfs refuses such a disk rather than
# read wrong bytes: checked last.
mkdiff="${top_srcdir:?}/tests/mkvhd-diff.py"
mkdir chain chain/up
cp dyn.vhd chain/base.vhd
python3 "$mkdiff" chain/base.vhd chain/child.vhd --expect child.raw \
	--write $((7 * 512 + 100)):deadbeef \
	$((2 * 1048576 + 65536)):"$(printf '5a%.0s' $(seq 4096))" \
	$((6 * 1048576 + 15 * 512)):0102030405 \
	$((size - 3)):c0ffee || fail "mkvhd-diff.py failed"
cmp -s child.raw raw.img && fail "the writes changed nothing"
info=$("$cat" -i chain/child.vhd) || fail "the differencing VHD does not open"
[ "$(echo "$info" | cut -d' ' -f1-3)" = "vhd $size 512" ] ||
	fail "the differencing VHD opened as '$info'"
"$cat" chain/child.vhd | cmp - child.raw || fail "the differencing VHD does not read back"
"$cat" chain/child.vhd 2097000 70000 | cmp - <(tail -c +2097001 child.raw | head -c 70000) ||
	fail "the differencing VHD does not read across a block boundary"
echo "ok: chain/child.vhd (differencing vhd, parent base.vhd)"
# a child of the child, one folder down, recording its parent as ..\child.vhd
python3 "$mkdiff" chain/child.vhd chain/up/grandchild.vhd --parent-raw child.raw \
	--expect grandchild.raw --write $((7 * 512)):"$(printf '77%.0s' $(seq 512))" \
	$((10 * 1048576 + 4096 + 7 * 512 + 200)):abcdef || fail "mkvhd-diff.py failed on a differencing parent"
"$cat" -p chain/child.vhd chain/up/grandchild.vhd | cmp - grandchild.raw ||
	fail "the second-level differencing VHD does not read back"
echo "ok: chain/up/grandchild.vhd (differencing vhd, parent ../child.vhd given with -p)"
# a parent is looked for in the child's folder only, whatever path it records
refused chain/up/grandchild.vhd "its parent 'child.vhd' is not a VHD or VHDX file in its folder"
python3 "$mkdiff" chain/base.vhd chain/wrong-id.vhd --write $((7 * 512)):00 \
	--parent-id 0123456789abcdef0123456789abcdef || fail "mkvhd-diff.py failed"
refused chain/wrong-id.vhd "'chain/base.vhd' is not its parent"
cp dyn.vhd chain/gone.vhd
python3 "$mkdiff" chain/gone.vhd chain/orphan.vhd --write $((7 * 512)):00 || fail "mkvhd-diff.py failed"
rm chain/gone.vhd
refused chain/orphan.vhd "its parent 'gone.vhd' is not a VHD or VHDX file in its folder (put the parent there, or name it with --parent PATH)"
# a write to the first sector of a 4 KiB group only (bitmap byte 0x80):
# libvhdi would read the next seven sectors from the child
python3 "$mkdiff" chain/base.vhd chain/misread.vhd --write 0:01 || fail "mkvhd-diff.py failed"
refused chain/misread.vhd "libvhdi reads wrongly"
echo PASS
