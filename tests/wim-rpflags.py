#!/usr/bin/python3
# wim-rpflags.py META PATH: prints the reparse tag and rp_flags of PATH's
# dentry in META, an image's uncompressed metadata resource (as
# tests/wim_meta_dump writes it), or "none" when it is not a reparse point.
#
# The metadata: the security data (le32 total length, 8-aligned), then the
# root dentry; a dentry is le64 length, le32 attributes (0x08), le64 subdir
# offset (0x10), the reparse tag (0x58), reserved (0x5C) and rp_flags (0x5E)
# when it is a reparse point, le16 extra stream entries (0x60), le16 DOS
# name bytes (0x62), le16 name bytes (0x64), the UTF-16LE name (0x66); each
# extra stream entry (le64 length) follows it, 8-aligned.  A directory's
# list is its children's dentries one after another, ended by a length of 0.
#
# This file is part of wtgfs, licensed under the GNU GPL version 3 or later.
import struct
import sys

REPARSE = 0x400


def align8(n):
    return (n + 7) & ~7


def entry(b, off):
    length = struct.unpack_from("<Q", b, off)[0]
    if length < 8:
        return None
    attrs, = struct.unpack_from("<I", b, off + 0x08)
    subdir, = struct.unpack_from("<Q", b, off + 0x10)
    tag, _, rp_flags = struct.unpack_from("<IHH", b, off + 0x58)
    nstreams, _, name_len = struct.unpack_from("<HHH", b, off + 0x60)
    name = b[off + 0x66:off + 0x66 + name_len].decode("utf-16-le")
    end = off + align8(length)
    for _ in range(nstreams):
        end += align8(struct.unpack_from("<Q", b, end)[0])
    return {"attrs": attrs, "subdir": subdir, "tag": tag, "rp_flags": rp_flags,
            "name": name, "end": end}


def children(b, off):
    while True:
        e = entry(b, off)
        if e is None:
            return
        yield e
        off = e["end"]


def main():
    b = open(sys.argv[1], "rb").read()
    root = entry(b, align8(struct.unpack_from("<I", b, 0)[0]))
    e = root
    for part in [p for p in sys.argv[2].split("/") if p]:
        e = next((c for c in children(b, e["subdir"]) if c["name"] == part), None)
        if e is None:
            sys.exit("wim-rpflags.py: no '%s' in the image" % sys.argv[2])
    if not e["attrs"] & REPARSE:
        print("none")
    else:
        print("tag=0x%08x rp_flags=0x%04x" % (e["tag"], e["rp_flags"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
