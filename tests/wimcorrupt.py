#!/usr/bin/env python3
"""wimcorrupt.py - make WIM files with exactly one deliberate fault (test helper).

Usage:
  wimcorrupt.py WIM list
  wimcorrupt.py WIM rename    PATH NEWNAME      -o OUT.wim
  wimcorrupt.py WIM dupname   PATH1 PATH2       -o OUT.wim
  wimcorrupt.py WIM cycle     DIRPATH [--to ANCESTOR] -o OUT.wim
  wimcorrupt.py WIM flip-data SHA1HEX [OFFSET]  -o OUT.wim
  wimcorrupt.py WIM truncate  BYTES             -o OUT.wim
  wimcorrupt.py WIM solid-size SIZE             -o OUT.esd
  wimcorrupt.py WIM move-blob SHA1HEX OFFSET    -o OUT.esd
  wimcorrupt.py WIM set-metadata FILE           -o OUT.wim
  wimcorrupt.py WIM integrity-chunks SIZE       -o OUT.wim
  wimcorrupt.py WIM integrity-size              -o OUT.wim
  wimcorrupt.py WIM reparse PATH [--metadata FILE]
  wimcorrupt.py WIM link-group PATH1 PATH2      -o OUT.wim
  wimcorrupt.py WIM split-run                   -o OUT.esd

Common options:
  --image N   image to work on (default 1)
  -e          interpret Python-style escapes (\\xNN, \\uNNNN, \\\\) in NEWNAME /
              PATH arguments, e.g. to put a NUL or a control character in a name

flip-data: OFFSET (decimal or 0x..) counts from the first stored byte of the
blob's resource, chunk table included, so small OFFSETs in a compressed
resource damage the chunk table; default is the middle of the chunk data.
--bytes N flips N consecutive bytes (XOR 0xFF, default 1).  For a blob in a
solid resource the byte in the middle of the compressed chunk holding the
blob's data (at OFFSET into the blob's uncompressed data, default its
middle) is flipped; other blobs in that chunk break too.

cycle: --to takes 'parent' or an ancestor path; default the root.

solid-size: writes SIZE (up to 2^64 - 1) as the uncompressed size in the
header of the first solid resource (wimlib reads the size from there).
move-blob: sets where a blob in a solid resource starts inside the
uncompressed resource (its blob table entry's offset) to OFFSET;
SHA1HEX 'largest' picks the largest such blob.
set-metadata: not a fault: the image's metadata resource becomes FILE's
bytes (an uncompressed metadata resource, as wim_meta writes them), stored
uncompressed after the end of the file, its blob table entry (and the boot
entry of the header) pointing there with FILE's SHA-1; refused for a WIM with
an integrity table.

integrity-chunks: not a fault: the integrity table is written again with
chunks of SIZE bytes (wimlib and WIMGAPI write 10 MiB; small chunks let a
small WIM show which entries an append keeps), after the end of the file.
integrity-size: the integrity table's own size field disagrees with its
header entry, as in a damaged table.
reparse: prints PATH's reparse tag and rp_flags ('none' when it is not a
reparse point); --metadata FILE takes the image's metadata from FILE (an
uncompressed metadata resource, as tests/wim_meta_dump writes it), for a
WIM whose metadata is compressed.

link-group: PATH2 gets PATH1's hard link group id (PATH1 must have one), as
in the install.wim of Windows 7 whose groups name files of different data
(wimlib and DISM link the names of a group only where their unnamed data
agree, and never a directory).

split-run: not a fault: the blob table's last metadata entry moved between
the first and the second resource of its first solid run, the blobs after
it given offsets in the resources that follow (a metadata entry ends a run,
so the run becomes two): a layout wimlib and WIMGAPI read, which wimlib
itself does not write.

PATH is a '/'-separated path from the image root ("dir1/abc.txt") or a bare
name that matches exactly one dentry anywhere in the image.

Everything except the intended fault is kept valid: the metadata resource's
SHA-1 in the blob table is recomputed, and an integrity table (wimcapture
--check) is recomputed as well, so wimlib opens the file and sees only the
planted fault.  The metadata operations (rename, dupname, cycle, and the tree
part of list) need an uncompressed metadata resource, i.e. a WIM captured
with --compress=none; otherwise the script says so and exits 2.

Exit status: 0 done, 2 usage / unsupported input / not found.
Standard library only.
"""

import argparse
import hashlib
import os
import shutil
import struct
import sys

HEADER_SIZE = 208
MAGIC = b"MSWIM\0\0\0"
PWM_MAGIC = b"WLPWM\0\0\0"

# resource header flags
RF_FREE, RF_METADATA, RF_COMPRESSED, RF_SPANNED, RF_SOLID = 1, 2, 4, 8, 0x10
SOLID_MAGIC = 0x100000000

BLOB_ENTRY_SIZE = 50
DENTRY_DISK_SIZE = 102
FILE_ATTRIBUTE_DIRECTORY = 0x10
FILE_ATTRIBUTE_REPARSE_POINT = 0x400

# header field offsets
H_CHUNK_SIZE = 20
H_IMAGE_COUNT = 44
H_BLOB_TABLE = 48
H_XML = 72
H_BOOT_META = 96
H_BOOT_IDX = 120
H_INTEGRITY = 124

HDR_FLAG_COMPRESSION = 0x2
HDR_FLAG_XPRESS, HDR_FLAG_LZX, HDR_FLAG_LZMS = 0x20000, 0x40000, 0x80000


class Fail(Exception):
    pass


def die(msg, code=2):
    print("wimcorrupt: " + msg, file=sys.stderr)
    sys.exit(code)


# ---------------------------------------------------------------------------
# On-disk structures


class Reshdr:
    """struct wim_reshdr_disk: size_in_wim (7 bytes) | flags (1) | offset (8) | usize (8)."""

    def __init__(self, raw):
        v = struct.unpack_from("<Q", raw, 0)[0]
        self.size = v & 0x00FFFFFFFFFFFFFF
        self.flags = v >> 56
        self.offset, self.usize = struct.unpack_from("<QQ", raw, 8)

    def pack(self):
        return struct.pack("<QQQ", self.size | (self.flags << 56), self.offset, self.usize)

    def flagstr(self):
        names = []
        for bit, n in ((RF_FREE, "free"), (RF_METADATA, "metadata"),
                       (RF_COMPRESSED, "compressed"), (RF_SPANNED, "spanned"),
                       (RF_SOLID, "solid")):
            if self.flags & bit:
                names.append(n)
        return ",".join(names) or "-"


class BlobEntry:
    def __init__(self, index, file_off, raw):
        self.index = index
        self.file_off = file_off  # where this 50-byte entry lives in the file
        self.reshdr = Reshdr(raw[0:24])
        self.part, self.refcnt = struct.unpack_from("<HI", raw, 24)
        self.hash = bytes(raw[30:50])

    @property
    def is_solid_resource(self):
        return (self.reshdr.flags & RF_SOLID) and self.reshdr.usize == SOLID_MAGIC


class Wim:
    def __init__(self, data):
        self.data = data  # bytearray, modified in place
        if data[0:8] == PWM_MAGIC:
            raise Fail("pipable WIMs are not supported")
        if len(data) < HEADER_SIZE or data[0:8] != MAGIC:
            raise Fail("not a WIM file (bad magic or shorter than 208 bytes)")
        self.hdr_flags = struct.unpack_from("<I", data, 16)[0]
        self.chunk_size = struct.unpack_from("<I", data, H_CHUNK_SIZE)[0]
        self.part, self.total_parts = struct.unpack_from("<HH", data, 40)
        self.image_count = struct.unpack_from("<I", data, H_IMAGE_COUNT)[0]
        self.bt = Reshdr(data[H_BLOB_TABLE:H_BLOB_TABLE + 24])
        self.integ = Reshdr(data[H_INTEGRITY:H_INTEGRITY + 24])
        self.boot_idx = struct.unpack_from("<I", data, H_BOOT_IDX)[0]
        if self.bt.flags & RF_COMPRESSED:
            raise Fail("compressed blob table is not supported")
        if self.bt.offset + self.bt.size > len(data):
            raise Fail("blob table lies beyond end of file")
        self.blobs = []
        n = self.bt.size // BLOB_ENTRY_SIZE
        for i in range(n):
            off = self.bt.offset + i * BLOB_ENTRY_SIZE
            self.blobs.append(BlobEntry(i, off, data[off:off + BLOB_ENTRY_SIZE]))
        self.metadata_blobs = [b for b in self.blobs
                               if b.reshdr.flags & RF_METADATA]

    def ctype_name(self):
        f = self.hdr_flags
        if not f & HDR_FLAG_COMPRESSION:
            return "none"
        for bit, n in ((HDR_FLAG_XPRESS, "XPRESS"), (HDR_FLAG_LZX, "LZX"),
                       (HDR_FLAG_LZMS, "LZMS")):
            if f & bit:
                return n
        return "?"

    def metadata_blob(self, image):
        if image < 1 or image > len(self.metadata_blobs):
            raise Fail("image %d does not exist (WIM has %d metadata resources)"
                       % (image, len(self.metadata_blobs)))
        return self.metadata_blobs[image - 1]

    def write_blob_hash(self, blob, h):
        blob.hash = h
        self.data[blob.file_off + 30:blob.file_off + 50] = h

    def integrity_end(self):
        """The end of the bytes an integrity table covers: the blob table's."""
        return self.bt.offset + self.bt.size

    def fix_integrity(self):
        """Recompute the integrity table (if any) over [208, blob table end)."""
        ig = self.integ
        if ig.offset == 0 or ig.size == 0:
            return False
        base = ig.offset
        table_size, num, csize = struct.unpack_from("<III", self.data, base)
        end = self.integrity_end()
        total = end - HEADER_SIZE
        want = (total + csize - 1) // csize if csize else 0
        if csize == 0 or want != num or 12 + num * 20 > ig.size:
            raise Fail("integrity table has unexpected shape (chunk size %d, "
                       "%d entries, expected %d); cannot recompute" % (csize, num, want))
        self.data[base + 12:base + 12 + num * 20] = integrity_sums(self.data, end, csize)
        return True


def integrity_sums(data, end, csize):
    """The SHA-1 of each csize-byte chunk of data[208:end]."""
    return b"".join(hashlib.sha1(data[s:min(s + csize, end)]).digest()
                    for s in range(HEADER_SIZE, end, csize))


# ---------------------------------------------------------------------------
# Metadata resource


class Dentry:
    def __init__(self, off, parent):
        self.off = off  # offset inside the metadata resource
        self.parent = parent
        self.children = []

    def path(self):
        parts = []
        d = self
        while d.parent is not None:
            parts.append(d.name)
            d = d.parent
        return "/" + "/".join(reversed(parts))


def parse_dentry(buf, off, parent):
    """Parse the dentry at off; return (Dentry or None for end-of-dir, next offset)."""
    if off + 8 > len(buf):
        raise Fail("dentry at metadata offset %d runs past end of resource" % off)
    raw_len = struct.unpack_from("<Q", buf, off)[0]
    length = (raw_len + 7) & ~7
    if length <= 8:
        return None, off + 8
    if length < DENTRY_DISK_SIZE or off + length > len(buf):
        raise Fail("bad dentry length %d at metadata offset %d" % (raw_len, off))
    d = Dentry(off, parent)
    d.length = raw_len
    d.attributes, d.security_id, d.subdir = struct.unpack_from("<IiQ", buf, off + 8)
    # (a reparse point's tag and rp_flags; a link group id otherwise)
    d.reparse_tag, _, d.rp_flags = struct.unpack_from("<IHH", buf, off + 0x58)
    d.main_hash = bytes(buf[off + 64:off + 84])
    d.num_streams, d.short_nbytes, d.name_nbytes = struct.unpack_from("<HHH", buf, off + 96)
    d.name_off = off + DENTRY_DISK_SIZE
    d.name_raw = bytes(buf[d.name_off:d.name_off + d.name_nbytes])
    d.name = d.name_raw.decode("utf-16-le", errors="replace")
    nxt = off + length
    # skip extra stream entries
    for _ in range(d.num_streams):
        if nxt + 8 > len(buf):
            raise Fail("stream entry past end of resource")
        slen = (struct.unpack_from("<Q", buf, nxt)[0] + 7) & ~7
        if slen < 38:
            raise Fail("bad stream entry length at %d" % nxt)
        nxt += slen
    d.next_off = nxt
    return d, nxt


class Metadata:
    def __init__(self, wim, image, buf=None):
        self.wim = wim
        self.blob = wim.metadata_blob(image)
        r = self.blob.reshdr
        if buf is not None:
            self.base = None  # (read only: not written back)
            self.buf = buf
        elif r.flags & (RF_COMPRESSED | RF_SOLID):
            raise Fail("metadata resource of image %d is compressed (WIM compression: %s); "
                       "this operation needs an uncompressed metadata resource - capture with "
                       "--compress=none (or convert: wimoptimize --compress=none)"
                       % (image, wim.ctype_name()))
        elif r.size != r.usize:
            raise Fail("uncompressed metadata resource with size_in_wim != uncompressed size")
        else:
            self.base = r.offset
            self.buf = wim.data[r.offset:r.offset + r.size]  # a copy; written back in commit()
            if len(self.buf) != r.size:
                raise Fail("metadata resource extends past end of file")
        sd_len = struct.unpack_from("<I", self.buf, 0)[0]
        sd_len = (sd_len + 7) & ~7
        if sd_len == 0:
            sd_len = 8
        self.root_off = sd_len
        self.root, _ = parse_dentry(self.buf, sd_len, None)
        if self.root is None:
            raise Fail("metadata resource has no root dentry")
        self.all = [self.root]
        self._read_children(self.root, set())

    def _read_children(self, d, ancestors):
        if d.subdir == 0 or not (d.attributes & FILE_ATTRIBUTE_DIRECTORY):
            return
        if d.subdir in ancestors:
            d.cycle = True  # do not follow (only matters for `list` on broken files)
            return
        ancestors = ancestors | {d.subdir}
        off = d.subdir
        while True:
            c, off = parse_dentry(self.buf, off, d)
            if c is None:
                break
            d.children.append(c)
            self.all.append(c)
            self._read_children(c, ancestors)

    def find(self, spec):
        spec = spec.strip("/") if spec not in ("/",) else spec
        if spec in ("", "/"):
            return self.root
        if "/" in spec:
            cur = self.root
            for comp in spec.split("/"):
                nxt = [c for c in cur.children if c.name == comp]
                if not nxt:
                    break
                cur = nxt[0]
            else:
                return cur
        hits = [d for d in self.all if d is not self.root and d.name == spec]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise Fail("no dentry named %r in the image" % spec)
        raise Fail("name %r is ambiguous (%s); give a path"
                   % (spec, ", ".join(h.path() for h in hits)))

    def set_name(self, d, new_raw):
        if len(new_raw) != d.name_nbytes:
            raise Fail("new name must have the same UTF-16 length as %r (%d code units, got %d)"
                       % (d.name, d.name_nbytes // 2, len(new_raw) // 2))
        self.buf[d.name_off:d.name_off + d.name_nbytes] = new_raw

    def set_subdir(self, d, value):
        struct.pack_into("<Q", self.buf, d.off + 16, value)

    def commit(self):
        """Write the metadata back and fix its SHA-1 in the blob table."""
        r = self.blob.reshdr
        self.wim.data[r.offset:r.offset + r.size] = self.buf
        self.wim.write_blob_hash(self.blob, hashlib.sha1(self.buf).digest())


# ---------------------------------------------------------------------------
# Operations


def attr_str(a):
    names = []
    for bit, n in ((0x1, "R"), (0x2, "H"), (0x4, "S"), (0x10, "D"), (0x20, "A"),
                   (0x80, "N"), (0x200, "sparse"), (0x400, "reparse"), (0x800, "C"),
                   (0x4000, "E")):
        if a & bit:
            names.append(n)
    return "0x%x(%s)" % (a, ",".join(names))


def op_list(wim, args):
    print("header: chunk_size=%d compression=%s images=%d part=%d/%d boot_idx=%d"
          % (wim.chunk_size, wim.ctype_name(), wim.image_count, wim.part,
             wim.total_parts, wim.boot_idx))
    for name, off in (("blob table", H_BLOB_TABLE), ("xml", H_XML),
                      ("boot metadata", H_BOOT_META), ("integrity", H_INTEGRITY)):
        r = Reshdr(wim.data[off:off + 24])
        print("  %-13s offset=%d size=%d usize=%d flags=%s"
              % (name, r.offset, r.size, r.usize, r.flagstr()))
    if wim.integ.offset:
        size, num, csize = struct.unpack_from("<III", wim.data, wim.integ.offset)
        print("integrity table: chunk_size=%d entries=%d" % (csize, num))
    else:
        print("integrity table: none")
    print("blob table (%d entries):" % len(wim.blobs))
    print("  %4s %10s %10s %12s %-22s %5s %s"
          % ("#", "offset", "stored", "original", "flags", "refs", "sha1"))
    for b in wim.blobs:
        r = b.reshdr
        usize = "SOLID-RES" if b.is_solid_resource else str(r.usize)
        print("  %4d %10d %10d %12s %-22s %5d %s"
              % (b.index, r.offset, r.size, usize, r.flagstr(), b.refcnt, b.hash.hex()))
    try:
        md = Metadata(wim, args.image)
    except Fail as e:
        print("dentry tree of image %d: not shown: %s" % (args.image, e))
        return 0
    print("dentry tree of image %d (metadata offset %d, root dentry at +%d):"
          % (args.image, md.base, md.root_off))

    def show(d, depth):
        extra = " CYCLE-NOT-FOLLOWED" if getattr(d, "cycle", False) else ""
        print("  %s%-24s attr=%-16s subdir=%-6d at=+%-6d streams=%d sha1=%s%s"
              % ("  " * depth, repr(d.name) if d.parent else "<root>", attr_str(d.attributes),
                 d.subdir, d.off, d.num_streams, d.main_hash.hex(), extra))
        for c in d.children:
            show(c, depth + 1)

    show(md.root, 0)
    return 0


def encode_name(s):
    raw = s.encode("utf-16-le", errors="surrogatepass")
    return raw


def op_rename(wim, args):
    md = Metadata(wim, args.image)
    d = md.find(args.name)
    if d is md.root:
        raise Fail("cannot rename the root")
    new = encode_name(args.newname)
    md.set_name(d, new)
    md.commit()
    print("renamed %s -> %r (dentry at metadata +%d, name bytes at file offset %d)"
          % (d.path(), args.newname, d.off, md.base + d.name_off))


def two_dentries(wim, args):
    """The image's metadata and the two distinct dentries args.name1, name2."""
    md = Metadata(wim, args.image)
    a = md.find(args.name1)
    b = md.find(args.name2)
    if a is b:
        raise Fail("%s and %s are the same dentry" % (args.name1, args.name2))
    return md, a, b


def op_dupname(wim, args):
    md, a, b = two_dentries(wim, args)
    if a.parent is not b.parent:
        raise Fail("%s and %s are not in the same directory" % (a.path(), b.path()))
    md.set_name(b, a.name_raw)
    md.commit()
    print("dentry %s (at metadata +%d) now named %r, same as %s"
          % (b.path(), b.off, a.name, a.path()))


def op_link_group(wim, args):
    md, a, b = two_dentries(wim, args)
    if (a.attributes | b.attributes) & FILE_ATTRIBUTE_REPARSE_POINT:
        raise Fail("a reparse point has no link group id")
    gid = struct.unpack_from("<Q", md.buf, a.off + 0x58)[0]
    if not gid:
        raise Fail("%s is in no link group" % a.path())
    struct.pack_into("<Q", md.buf, b.off + 0x58, gid)
    md.commit()
    print("dentry %s now in link group %d, with %s" % (b.path(), gid, a.path()))


def op_cycle(wim, args):
    md = Metadata(wim, args.image)
    d = md.find(args.dirname)
    if d is md.root or not (d.attributes & FILE_ATTRIBUTE_DIRECTORY):
        raise Fail("%s is not a (non-root) directory" % d.path())
    if args.to is None:
        target = md.root
    elif args.to == "parent":
        target = d.parent
    else:
        target = md.find(args.to)
    anc = d.parent
    while anc is not None and anc is not target:
        anc = anc.parent
    if anc is None:
        raise Fail("%s is not an ancestor of %s" % (target.path(), d.path()))
    old = d.subdir
    md.set_subdir(d, target.subdir)
    md.commit()
    print("subdir_offset of %s changed %d -> %d (the child list of %s)"
          % (d.path(), old, target.subdir, target.path()))


def solid_group(wim, blob):
    """For a blob inside solid resources: the run of solid-resource entries it
    belongs to (those preceding it in the blob table, consecutive run)."""
    i = blob.index
    # walk back over the run of SOLID-flagged entries
    j = i
    while j > 0 and (wim.blobs[j - 1].reshdr.flags & RF_SOLID):
        j -= 1
    # the run is [j, ...]; its resource entries are those with SOLID_MAGIC
    k = j
    while k < len(wim.blobs) and (wim.blobs[k].reshdr.flags & RF_SOLID):
        k += 1
    return [b for b in wim.blobs[j:k] if b.is_solid_resource]


def flip_at(wim, pos, nbytes, region_end):
    if pos < 0 or pos + nbytes > region_end or pos + nbytes > len(wim.data):
        raise Fail("offset outside the blob's stored data")
    for p in range(pos, pos + nbytes):
        wim.data[p] ^= 0xFF


def op_flip(wim, args):
    try:
        want = bytes.fromhex(args.sha1)
    except ValueError:
        raise Fail("SHA1HEX must be 40 hex digits")
    if len(want) != 20:
        raise Fail("SHA1HEX must be 40 hex digits")
    hits = [b for b in wim.blobs if b.hash == want and not b.is_solid_resource]
    if not hits:
        raise Fail("no blob with SHA-1 %s in the blob table" % args.sha1)
    blob = hits[0]
    r = blob.reshdr
    nb = args.bytes
    if r.flags & RF_SOLID:
        # offset in the concatenation of the group's uncompressed solid resources
        group = solid_group(wim, blob)
        if not group:
            raise Fail("solid blob without solid resource entries")
        uoff = r.offset + (args.offset if args.offset is not None else r.usize // 2)
        for res in group:
            h = res.reshdr
            res_usize, csize, cfmt = struct.unpack_from("<QII", wim.data, h.offset)
            if uoff >= res_usize:
                uoff -= res_usize
                continue
            nchunks = (res_usize + csize - 1) // csize
            tbl = h.offset + 16
            sizes = struct.unpack_from("<%dI" % nchunks, wim.data, tbl)
            data_start = tbl + 4 * nchunks
            ci = uoff // csize
            cstart = data_start + sum(sizes[:ci])
            pos = cstart + sizes[ci] // 2
            flip_at(wim, pos, nb, h.offset + h.size)
            print("blob %s is in a solid resource (stored at %d, %d bytes, format %d, "
                  "chunk size %d); flipped %d byte(s) at file offset %d, the middle of "
                  "compressed chunk %d (%d bytes stored)"
                  % (args.sha1, h.offset, h.size, cfmt, csize, nb, pos, ci, sizes[ci]))
            print("note: other blobs in the same chunk are damaged too")
            return
        raise Fail("blob offset beyond its solid resources")
    start = r.offset
    end = r.offset + r.size
    if r.size == 0:
        raise Fail("blob has no stored data")
    data_off = 0
    if r.flags & RF_COMPRESSED:
        nchunks = (r.usize + wim.chunk_size - 1) // wim.chunk_size
        esz = 8 if r.usize > 0xFFFFFFFF else 4
        data_off = (nchunks - 1) * esz
    if args.offset is None:
        rel = data_off + (r.size - data_off) // 2
    else:
        rel = args.offset
    flip_at(wim, start + rel, nb, end)
    print("flipped %d byte(s) (XOR 0xFF) at offset %d into blob %s (stored at %d, %d bytes "
          "stored, %d original, %s%s); file offset %d"
          % (nb, rel, args.sha1, r.offset, r.size, r.usize, r.flagstr(),
             ", chunk table %d bytes" % data_off if r.flags & RF_COMPRESSED else "",
             start + rel))


def op_solid_size(wim, args):
    res = [b for b in wim.blobs if b.is_solid_resource]
    if not res:
        raise Fail("no solid resource in the WIM")
    h = res[0].reshdr
    old = struct.unpack_from("<Q", wim.data, h.offset)[0]
    struct.pack_into("<Q", wim.data, h.offset, args.size)
    print("solid resource at %d: header size %d -> %d" % (h.offset, old, args.size))


def op_move_blob(wim, args):
    if args.sha1 == "largest":
        hits = sorted((b for b in wim.blobs if b.reshdr.flags & RF_SOLID and
                       not b.is_solid_resource), key=lambda b: -b.reshdr.size)[:1]
        if hits:
            args.sha1 = hits[0].hash.hex()
    else:
        want = bytes.fromhex(args.sha1)
        hits = [b for b in wim.blobs if b.hash == want and not b.is_solid_resource]
    if not hits or not hits[0].reshdr.flags & RF_SOLID:
        raise Fail("no blob with SHA-1 %s in a solid resource" % args.sha1)
    b = hits[0]
    old = b.reshdr.offset
    struct.pack_into("<Q", wim.data, b.file_off + 8, args.offset)
    print("blob %s: offset in its solid resource %d -> %d" % (args.sha1, old, args.offset))


def op_split_run(wim, args):
    bl = wim.blobs
    first = next((i for i, b in enumerate(bl) if b.reshdr.flags & RF_SOLID), None)
    if first is None:
        raise Fail("the WIM has no solid resources")
    end = first
    while end < len(bl) and bl[end].reshdr.flags & RF_SOLID:
        end += 1
    res = [i for i in range(first, end) if bl[i].is_solid_resource]
    if len(res) < 2:
        raise Fail("the first solid run holds %d resource(s), not 2 or more" % len(res))
    metas = [i for i, b in enumerate(bl) if b.reshdr.flags & RF_METADATA and i < first]
    if not metas:
        raise Fail("no metadata entry before the first solid run")
    usize0 = struct.unpack_from("<Q", wim.data, bl[res[0]].reshdr.offset)[0]
    raw = [bytearray(wim.data[b.file_off:b.file_off + BLOB_ENTRY_SIZE]) for b in bl]
    for i in range(first, end):
        b = bl[i]
        if b.is_solid_resource:
            continue
        off, size = b.reshdr.offset, b.reshdr.size
        if i < res[1]:
            if off + size > usize0:
                raise Fail("a blob before the second resource lies past the first")
        else:
            if off < usize0:
                raise Fail("a blob after the second resource lies in the first")
            struct.pack_into("<Q", raw[i], 8, off - usize0)
    m = metas[-1]
    order = [i for i in range(len(bl)) if i != m]
    at = order.index(res[1])
    order.insert(at, m)
    pos = wim.bt.offset
    for i in order:
        wim.data[pos:pos + BLOB_ENTRY_SIZE] = raw[i]
        pos += BLOB_ENTRY_SIZE
    wim.fix_integrity()
    print("metadata entry %d moved before entry %d; %d blob offsets rebased by %d"
          % (m, res[1], sum(1 for i in range(res[1], end) if not bl[i].is_solid_resource),
             usize0))


def op_integrity_chunks(wim, args):
    if args.size < 1:
        raise Fail("SIZE must be positive")
    sums = integrity_sums(wim.data, wim.integrity_end(), args.size)
    table = struct.pack("<III", 12 + len(sums), len(sums) // 20, args.size) + sums
    r = Reshdr(bytes(24))
    r.size, r.offset, r.usize = len(table), len(wim.data), len(table)
    wim.data += table
    wim.data[H_INTEGRITY:H_INTEGRITY + 24] = r.pack()
    print("integrity table of %d entries of %d bytes at %d" % (len(sums) // 20, args.size, r.offset))


def op_integrity_size(wim, args):
    if not wim.integ.offset:
        raise Fail("the WIM has no integrity table")
    struct.pack_into("<I", wim.data, wim.integ.offset, wim.integ.size + 20)
    print("integrity table's size field %d -> %d" % (wim.integ.size, wim.integ.size + 20))


def op_reparse(wim, args):
    buf = None
    if args.metadata:
        try:
            with open(args.metadata, "rb") as f:
                buf = bytearray(f.read())
        except OSError as e:
            raise Fail("cannot read %s: %s" % (args.metadata, e.strerror))
    d = Metadata(wim, args.image, buf).find(args.path)
    if not d.attributes & FILE_ATTRIBUTE_REPARSE_POINT:
        print("none")
    else:
        print("tag=0x%08x rp_flags=0x%04x" % (d.reparse_tag, d.rp_flags))
    return 0


def op_set_metadata(wim, args):
    try:
        with open(args.file, "rb") as f:
            new = f.read()
    except OSError as e:
        raise Fail("cannot read %s: %s" % (args.file, e.strerror))
    if wim.integ.offset:
        raise Fail("the WIM has an integrity table, which would not cover the new resource")
    blob = wim.metadata_blob(args.image)
    r = blob.reshdr
    r.size, r.flags, r.offset, r.usize = len(new), RF_METADATA, len(wim.data), len(new)
    wim.data += new
    wim.data[blob.file_off:blob.file_off + 24] = r.pack()
    wim.write_blob_hash(blob, hashlib.sha1(new).digest())
    if wim.boot_idx == args.image:
        wim.data[H_BOOT_META:H_BOOT_META + 24] = r.pack()
    print("image %d: metadata resource of %d bytes at %d" % (args.image, len(new), r.offset))


# ---------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(prog="wimcorrupt.py",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("wim")
    p.add_argument("-o", "--output", help="output WIM (required except for list)")
    p.add_argument("--image", type=int, default=1)
    p.add_argument("-e", "--escapes", action="store_true",
                   help="interpret backslash escapes in name arguments")
    sub = p.add_subparsers(dest="op", required=True)
    s = sub.add_parser("rename", help="replace a dentry's name (same UTF-16 length)")
    s.add_argument("name")
    s.add_argument("newname")
    s = sub.add_parser("dupname", help="give NAME2 the name of NAME1 (same directory)")
    s.add_argument("name1")
    s.add_argument("name2")
    s = sub.add_parser("link-group", help="give PATH2 the hard link group id of PATH1")
    s.add_argument("name1")
    s.add_argument("name2")
    sub.add_parser("split-run", help="the last metadata entry moved into the first solid run")
    s = sub.add_parser("cycle", help="point a directory's subdir_offset at an ancestor's children")
    s.add_argument("dirname")
    s.add_argument("--to", help="ancestor path, or 'parent' (default: the root)")
    s = sub.add_parser("flip-data", help="flip bytes in a blob's stored data")
    s.add_argument("sha1")
    s.add_argument("offset", nargs="?", type=lambda x: int(x, 0))
    s.add_argument("--bytes", type=int, default=1, help="number of bytes to flip (default 1)")
    s = sub.add_parser("truncate", help="cut the file to BYTES")
    s.add_argument("size", type=lambda x: int(x, 0))
    s = sub.add_parser("solid-size", help="the first solid resource's header size")
    s.add_argument("size", type=lambda x: int(x, 0))
    s = sub.add_parser("move-blob", help="a solid blob's offset in its resource")
    s.add_argument("sha1")
    s.add_argument("offset", type=lambda x: int(x, 0))
    s = sub.add_parser("set-metadata", help="the image's metadata resource from FILE")
    s.add_argument("file")
    s = sub.add_parser("integrity-chunks", help="the integrity table again in SIZE-byte chunks")
    s.add_argument("size", type=lambda x: int(x, 0))
    sub.add_parser("integrity-size", help="the integrity table's size field off by 20")
    s = sub.add_parser("reparse", help="print a dentry's reparse tag and rp_flags")
    s.add_argument("path")
    s.add_argument("--metadata", help="the image's uncompressed metadata resource, from FILE")
    sub.add_parser("list", help="print header, blob table and dentry tree")
    # allow -o/--image/-e anywhere on the command line
    a, rest = p.parse_known_args(argv)
    if rest:
        a2 = argparse.ArgumentParser(add_help=False)
        a2.add_argument("-o", "--output")
        a2.add_argument("--image", type=int)
        a2.add_argument("-e", "--escapes", action="store_true")
        a2.add_argument("--bytes", type=int)
        a2.add_argument("--to")
        b, rest2 = a2.parse_known_args(rest)
        if rest2:
            p.error("unrecognized arguments: %s" % " ".join(rest2))
        for k, v in vars(b).items():
            if v is not None and v is not False:
                setattr(a, k, v)
    if a.escapes:
        for k in ("name", "newname", "name1", "name2", "dirname", "to"):
            v = getattr(a, k, None)
            if v is not None:
                setattr(a, k, v.encode("latin-1", "backslashreplace").decode("unicode_escape"))
    return a


def main(argv):
    args = parse_args(argv)
    try:
        with open(args.wim, "rb") as f:
            data = bytearray(f.read())
    except OSError as e:
        die("cannot read %s: %s" % (args.wim, e.strerror))
    if args.op == "truncate":
        if not args.output:
            die("-o OUT.wim is required")
        if args.size > len(data):
            die("BYTES (%d) is larger than the file (%d)" % (args.size, len(data)))
        with open(args.output, "wb") as f:
            f.write(data[:args.size])
        print("truncated %d -> %d bytes" % (len(data), args.size))
        return 0
    try:
        wim = Wim(data)
        if args.op == "list":
            return op_list(wim, args)
        if args.op == "reparse":
            return op_reparse(wim, args)
        if not args.output:
            die("-o OUT.wim is required")
        if os.path.abspath(args.output) == os.path.abspath(args.wim):
            die("OUT.wim must differ from the input")
        integrity_ops = {"integrity-chunks": op_integrity_chunks,
                         "integrity-size": op_integrity_size}
        if args.op in integrity_ops:
            integrity_ops[args.op](wim, args)  # (the table is what they change)
        else:
            {"rename": op_rename, "dupname": op_dupname, "link-group": op_link_group,
             "split-run": op_split_run, "cycle": op_cycle, "flip-data": op_flip, "solid-size": op_solid_size,
             "move-blob": op_move_blob, "set-metadata": op_set_metadata}[args.op](wim, args)
            if wim.fix_integrity():
                print("integrity table recomputed")
    except Fail as e:
        die(str(e))
    tmp = args.output + ".tmp%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(wim.data)
    try:
        shutil.copymode(args.wim, tmp)
    except OSError:
        pass
    os.replace(tmp, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
