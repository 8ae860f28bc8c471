#!/usr/bin/env python3
"""Makes a differencing VHD (disk type 4) on top of an existing VHD.

    mkvhd-diff.py PARENT.vhd CHILD.vhd --write OFFSET:HEXBYTES ...
                  [--parent-id HEX] [--parent-path PATH]
                  [--parent-raw RAW] [--expect OUT.raw]

No Debian tool writes differencing VHDs (qemu-img refuses a backing file
for vpc), so this writes one by hand after the Microsoft VHD specification:
a copy of the footer, the dynamic header at 512, the block allocation
table, the parent locators' path sectors, then each written 2 MiB block as
a 512-byte sector bitmap (bit set = the sector is in the child, most
significant bit first) and the block's data, and the footer at the end.

Each --write changes the given bytes; the child holds the whole 512-byte
sectors around them, padded with the parent's bytes.  The parent's bytes
come from --parent-raw, or else from 'qemu-img convert -O raw PARENT'
(which cannot read a differencing parent: give --parent-raw for those).
--expect writes the disk the child should read as: the parent's bytes with
the writes applied.  Sectors of a written block that stay with the parent
are filled with 0xA5 in the child, so a reader that ignores the bitmap is
caught.

--parent-id (32 hex digits, the bytes as stored) records a parent
identifier other than the parent footer's unique id; --parent-path records
another parent path (default: the parent's name, relative to the child).
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time

SECTOR = 512
BLOCK = 2 << 20
VHD_EPOCH = 946684800  # 2000-01-01 00:00:00 UTC


def checksum(data):
    return ~sum(data) & 0xFFFFFFFF


def parent_bytes(parent, raw):
    if raw:
        with open(raw, "rb") as f:
            return bytearray(f.read())
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "parent.raw")
        subprocess.run(["qemu-img", "convert", "-f", "vpc", "-O", "raw", parent, out],
                       check=True)
        with open(out, "rb") as f:
            return bytearray(f.read())


def parse_writes(specs):
    writes = []
    for spec in specs:
        off, sep, data = spec.partition(":")
        if not sep:
            sys.exit("mkvhd-diff: --write wants OFFSET:HEXBYTES, not '%s'" % spec)
        writes.append((int(off, 0), bytes.fromhex(data)))
    return writes


def main():
    ap = argparse.ArgumentParser(description="make a differencing VHD")
    ap.add_argument("parent")
    ap.add_argument("child")
    ap.add_argument("--write", nargs="+", action="extend", default=[],
                    metavar="OFFSET:HEXBYTES")
    ap.add_argument("--parent-id", help="32 hex digits")
    ap.add_argument("--parent-path", help="the parent path the child records")
    ap.add_argument("--parent-raw", help="the parent's bytes, if qemu-img cannot read it")
    ap.add_argument("--expect", metavar="OUT.raw")
    a = ap.parse_args()

    with open(a.parent, "rb") as f:
        f.seek(-SECTOR, os.SEEK_END)
        pfoot = f.read(SECTOR)
    if pfoot[:8] != b"conectix":
        sys.exit("mkvhd-diff: '%s' has no VHD footer" % a.parent)
    size = struct.unpack_from(">Q", pfoot, 48)[0]
    if size % SECTOR:
        sys.exit("mkvhd-diff: '%s' is not a whole number of sectors" % a.parent)
    pid = bytes.fromhex(a.parent_id) if a.parent_id else pfoot[68:84]
    if len(pid) != 16:
        sys.exit("mkvhd-diff: --parent-id wants 16 bytes")
    ppath = a.parent_path or os.path.relpath(os.path.abspath(a.parent),
                                             os.path.dirname(os.path.abspath(a.child)))

    disk = parent_bytes(a.parent, a.parent_raw)
    if len(disk) != size:
        sys.exit("mkvhd-diff: the parent's bytes are %d long, its footer says %d"
                 % (len(disk), size))
    child_sectors = set()
    for off, data in parse_writes(a.write):
        if off < 0 or off + len(data) > size or not data:
            sys.exit("mkvhd-diff: write at %d of %d bytes is outside the disk" % (off, len(data)))
        disk[off:off + len(data)] = data
        child_sectors.update(range(off // SECTOR, (off + len(data) - 1) // SECTOR + 1))

    entries = (size + BLOCK - 1) // BLOCK
    spb = BLOCK // SECTOR
    blocks = sorted({s // spb for s in child_sectors})

    # layout: footer copy, dynamic header, BAT, locator data, blocks, footer
    bat_off = 3 * SECTOR
    bat_len = (entries * 4 + SECTOR - 1) // SECTOR * SECTOR
    rel = ppath.replace("/", "\\")
    if not (rel.startswith(".\\") or rel.startswith("..\\") or rel.startswith("\\")
            or rel[1:2] == ":"):
        rel = ".\\" + rel
    absolute = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(a.child)), ppath))
    locators = [(b"W2ru", rel.encode("utf-16-le")),
                (b"W2ku", absolute.encode("utf-16-le"))]
    pos = bat_off + bat_len
    loc_entries = []
    loc_data = []
    for code, data in locators:
        space = max(SECTOR, (len(data) + SECTOR - 1) // SECTOR * SECTOR)
        # data space in bytes, as Hyper-V writes it (the spec says sectors)
        loc_entries.append(struct.pack(">4sIIIQ", code, space, len(data), 0, pos))
        loc_data.append((pos, data))
        pos += space
    data_start = pos

    bat = [0xFFFFFFFF] * entries
    for i, b in enumerate(blocks):
        bat[b] = (data_start + i * (SECTOR + BLOCK)) // SECTOR
    end = data_start + len(blocks) * (SECTOR + BLOCK)

    name = ppath.replace("/", "\\").encode("utf-16-be")
    if len(name) > 510:
        sys.exit("mkvhd-diff: the parent path is too long for the header")
    try:
        ptime = int(os.stat(a.parent).st_mtime) - VHD_EPOCH
    except OSError:
        ptime = 0
    dyn = bytearray(1024)
    struct.pack_into(">8sQQIII", dyn, 0, b"cxsparse", 0xFFFFFFFFFFFFFFFF, bat_off,
                     0x00010000, entries, BLOCK)
    dyn[40:56] = pid
    struct.pack_into(">I", dyn, 56, ptime & 0xFFFFFFFF)
    dyn[64:64 + len(name)] = name
    for i, e in enumerate(loc_entries):
        dyn[576 + 24 * i:600 + 24 * i] = e
    struct.pack_into(">I", dyn, 36, checksum(dyn))

    foot = bytearray(SECTOR)
    struct.pack_into(">8sIIQI4sI4sQQ", foot, 0, b"conectix", 2, 0x00010000, SECTOR,
                     (int(time.time()) - VHD_EPOCH) & 0xFFFFFFFF, b"wtgf", 0x00010000,
                     b"Wi2k", size, size)
    foot[56:60] = pfoot[56:60]  # the parent's geometry
    struct.pack_into(">I", foot, 60, 4)  # differencing
    foot[68:84] = os.urandom(16)
    struct.pack_into(">I", foot, 64, checksum(foot))

    with open(a.child, "wb") as f:
        f.write(foot)
        f.write(dyn)
        f.write(b"".join(struct.pack(">I", e) for e in bat).ljust(bat_len, b"\xff"))
        for off, data in loc_data:
            f.seek(off)
            f.write(data)
        for i, b in enumerate(blocks):
            f.seek(data_start + i * (SECTOR + BLOCK))
            bitmap = bytearray(SECTOR)
            body = bytearray(b"\xa5" * BLOCK)
            for s in range(spb):
                sec = b * spb + s
                if sec in child_sectors:
                    bitmap[s // 8] |= 0x80 >> (s % 8)
                    body[s * SECTOR:(s + 1) * SECTOR] = disk[sec * SECTOR:(sec + 1) * SECTOR]
            # the disk's last block may be short; its tail is never read
            f.write(bitmap)
            f.write(body)
        f.seek(end)
        f.write(foot)
    if a.expect:
        with open(a.expect, "wb") as f:
            f.write(disk)


if __name__ == "__main__":
    main()
