#!/usr/bin/python3
# wim-integrity.py rechunk WIM SIZE | malform WIM | count WIM
#
# rechunk: writes WIM's integrity table again with chunks of SIZE bytes
#   (WIMGAPI and wimlib write 10 MiB; a table of small chunks lets a small
#   test WIM show which entries an append keeps), at the end of the file,
#   and points the header at it.
# malform: makes the table's size field disagree with its header entry,
#   as a damaged table would.
# count: prints the table's chunk size and number of entries.
#
# The table covers the bytes from the end of the 208-byte header to the end
# of the blob table: le32 size, le32 entries, le32 chunk size, then a SHA-1
# per chunk.  Its resource header is at 0x7C.
#
# This file is part of wtgfs, licensed under the GNU GPL version 3 or later.
import hashlib
import struct
import sys

HEADER = 208


def reshdr(b, off):
    stored = int.from_bytes(b[off:off + 7], "little")
    flags = b[off + 7]
    offset, size = struct.unpack_from("<QQ", b, off + 8)
    return stored, flags, offset, size


def put_reshdr(b, off, stored, flags, offset, size):
    b[off:off + 7] = stored.to_bytes(7, "little")
    b[off + 7] = flags
    struct.pack_into("<QQ", b, off + 8, offset, size)


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        data = bytearray(f.read())
    _, _, bt_off, bt_size = reshdr(data, 0x30)
    _, _, i_off, i_size = reshdr(data, 0x7C)
    if cmd == "count":
        if not i_off:
            print("none")
            return 0
        size, n, cs = struct.unpack_from("<III", data, i_off)
        print(cs, n)
        return 0
    if cmd == "malform":
        if not i_off:
            sys.exit("wim-integrity.py: '%s' has no integrity table" % path)
        struct.pack_into("<I", data, i_off, i_size + 20)
    elif cmd == "rechunk":
        cs = int(sys.argv[3])
        end = bt_off + bt_size
        sums = b"".join(hashlib.sha1(data[o:min(o + cs, end)]).digest()
                        for o in range(HEADER, end, cs))
        table = struct.pack("<III", 12 + len(sums), len(sums) // 20, cs) + sums
        at = len(data)
        data += table
        put_reshdr(data, 0x7C, len(table), 0, at, len(table))
    else:
        sys.exit("usage: wim-integrity.py rechunk WIM SIZE | malform WIM | count WIM")
    with open(path, "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
