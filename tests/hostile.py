#!/usr/bin/env python3
"""hostile.py - crafted NTFS content for tests/hostile.sh (test helper).

Usage:
  hostile.py links DIR      in an ntfs-3g mount at DIR, make symbolic links
                            whose targets led out of a wtgfs mount; prints
                            each name made, one a line
  hostile.py patch-name IMAGE OLD NEW
                            replaces every UTF-16LE copy of the name OLD in
                            IMAGE (an NTFS volume file) with NEW, of the
                            same length; NEW may hold '\\0' (a NUL)
  hostile.py resource-seeds OUTDIR WIM...
                            seeds for fuzz/fuzz_resource: each WIM behind
                            parameters that read its resources (solid ones
                            by their header, compressed ones by their blob
                            table entry), and a few generic ones
  hostile.py readlink-seeds OUTDIR
                            seeds for fuzz/fuzz_readlink: the links above
                            and POSIX targets, at several depths
  hostile.py size-bombs OUTDIR WIM
                            copies of WIM (an uncompressed one) whose size
                            fields alone claim a huge amount of work: a
                            chunk size of 1 and a metadata resource marked
                            compressed that claims ~1 GB (a reader that
                            sizes its chunk table by the claim alone
                            allocates 8 GB), and the same at 32 KiB chunks

Reparse data is written through ntfs-3g's system.ntfs_reparse_data, on
empty files, after every hard link of them is made.  Standard library only.
"""

import mmap
import os
import struct
import sys


def rp_symlink(target, relative):
    s = target.encode('utf-16le')
    data = struct.pack('<HHHHI', len(s), len(s), 0, len(s), 1 if relative else 0) + s + s
    return struct.pack('<IHH', 0xA000000C, len(data), 0) + data


def rp_junction(target):
    s = target.encode('utf-16le')
    data = struct.pack('<HHHH', 0, len(s), len(s) + 2, 0) + s + b'\0\0' + b'\0\0'
    return struct.pack('<IHH', 0xA0000003, len(data), 0) + data


# name (with '/'), hard links of it, target, kind ('rel', 'abs', 'junction')
UP = '..\\' * 12
LINKS = [
    # relative targets starting with '\': resolved from the volume root
    ('rooted', [], '\\etc\\passwd', 'rel'),
    ('hostile/rooted', [], '\\etc\\passwd', 'rel'),
    ('unc', [], '\\\\etc\\passwd', 'rel'),
    ('hostile/a/unc', [], '\\\\server\\share\\etc\\passwd', 'rel'),
    # an absolute link with hard links at other depths, the first name
    # (in the walk's order) the deepest
    ('hostile/a/b/c/abs', ['zabs', 'hostile/a/abs'], '\\??\\C:\\etc\\passwd', 'abs'),
    # '..' runs above the root
    ('hostile/a/b/up', [], UP + 'etc\\passwd', 'rel'),
    ('hostile/a/b/c/uprel', ['zuprel'], '..\\..\\..\\..\\etc\\passwd', 'rel'),
    # a '..' after a link that leads higher than its name: lexical
    ('hostile/a/b/toroot', [], '..\\..\\..', 'rel'),
    ('hostile/a/b/via', [], 'toroot\\' + UP + 'etc\\passwd', 'rel'),
    # a junction to the root, with a name deep below it
    ('hostile/a/b/rootj', [], '\\??\\C:\\', 'junction'),
    ('hostile/a/b/c/sysj', [], '\\??\\C:\\Windows\\System32\\..\\..\\..\\..', 'abs'),
]


def op_links(top):
    made = []
    for name, others, target, kind in LINKS:
        path = os.path.join(top, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if kind == 'junction':
            os.mkdir(path)
            buf = rp_junction(target)
        else:
            open(path, 'wb').close()
            for o in others:
                os.makedirs(os.path.dirname(os.path.join(top, o)), exist_ok=True)
                os.link(path, os.path.join(top, o))
            buf = rp_symlink(target, kind == 'rel')
        os.setxattr(path, 'system.ntfs_reparse_data', buf, follow_symlinks=False)
        made += [name] + others
    for n in made:
        print(n)


def op_patch_name(image, old, new):
    o = old.encode('utf-16le')
    n = new.encode('utf-16le')
    if len(o) != len(n):
        sys.exit('hostile.py: OLD and NEW differ in length')
    count = 0
    with open(image, 'r+b') as f, mmap.mmap(f.fileno(), 0) as m:
        at = m.find(o)
        while at >= 0:
            m[at:at + len(n)] = n
            count += 1
            at = m.find(o, at + len(n))
    if not count:
        sys.exit('hostile.py: %r is not in %s' % (old, image))
    print('%d copies of %r patched' % (count, old))


def wim_resources(data):
    """(offset, stored size, uncompressed size, flags) of each resource in a
    WIM's blob table, solid ones by their own header's size."""
    if data[:8] != b'MSWIM\0\0\0' or len(data) < 208:
        return []
    bt_size = struct.unpack_from('<Q', data, 48)[0] & ((1 << 56) - 1)
    bt_off = struct.unpack_from('<Q', data, 56)[0]
    out = []
    for i in range(bt_size // 50):
        e = bt_off + i * 50
        if e + 50 > len(data):
            break
        v, off, usize = struct.unpack_from('<QQQ', data, e)
        stored, flags = v & ((1 << 56) - 1), v >> 56
        if flags & 0x10 and usize == 0x100000000 and off + 16 <= len(data):
            usize = struct.unpack_from('<Q', data, off)[0]  # a solid resource
        elif flags & 0x10:
            continue  # a blob inside a solid resource
        out.append((off, stored, usize, flags))
    return out


def resource_params(flags, ctype, chunk_exp, rlen, at, size, roff, stored):
    return struct.pack('<BBBBQQQI', flags, ctype, chunk_exp, rlen, at, size, roff, stored)


def op_resource_seeds(outdir, wims):
    os.makedirs(outdir, exist_ok=True)
    n = 0
    for w in wims:
        with open(w, 'rb') as f:
            data = f.read()
        ctype = 0
        hflags, csize = struct.unpack_from('<II', data, 16) if len(data) >= 24 else (0, 0)
        for bit, t in ((0x20000, 1), (0x40000, 2), (0x80000, 3)):
            if hflags & bit:
                ctype = t
        exp = max(0, min(4, (csize // 4096).bit_length() - 1)) if csize else 3
        seeds = [resource_params(k, n % 4, 3, 15, 0, 100000, 16, 0) for k in range(4)]
        compressed = 0
        for off, stored, usize, flags in wim_resources(data):
            if stored >= 1 << 32:
                continue  # a fuzzed WIM's table: no seed to make of it
            if flags & 0x10:  # solid: by its header; a whole chunk and a part
                seeds.append(resource_params(1 | 8 | 16, ctype, exp, 255, off, usize, 0, stored))
                seeds.append(resource_params(1 | 8 | 16 | 192, ctype, exp, 127, off, usize,
                                             usize // 2, stored))
            elif flags & 4 and compressed < 3 and usize > 4096:
                compressed += 1
                seeds.append(resource_params(2 | 8 | 16, ctype, exp, 255, off, usize, 0, stored))
        for s in seeds:
            with open(os.path.join(outdir, 'res%d' % n), 'wb') as f:
                f.write(s + data)
            n += 1
    print('%d seeds' % n)


def op_readlink_seeds(outdir):
    os.makedirs(outdir, exist_ok=True)
    n = 0
    posix = ['/etc/passwd', '../../../../../etc/passwd', 'a/../../b', '..', '/',
             'Windows/System32', '//etc//passwd']
    seeds = []
    for i, (name, others, target, kind) in enumerate(LINKS):
        depth = name.count('/')
        second = (others[0].count('/') if others else 0x80)
        buf = rp_junction(target) if kind == 'junction' else rp_symlink(target, kind == 'rel')
        seeds.append(bytes([depth, second, 0, 0]) + buf)
        mode = 2 if kind == 'junction' else 1
        seeds.append(bytes([depth, second, mode, 1 if kind == 'rel' else 0]) +
                     target.encode('utf-8'))
    for i, t in enumerate(posix):
        seeds.append(bytes([i % 9, (i * 5) % 9, 3, 0]) + t.encode('utf-8'))
    for s in seeds:
        with open(os.path.join(outdir, 'link%d' % n), 'wb') as f:
            f.write(s)
        n += 1
    print('%d seeds' % n)


def op_size_bombs(outdir, wim):
    os.makedirs(outdir, exist_ok=True)
    with open(wim, 'rb') as f:
        data = bytearray(f.read())
    bt_size = struct.unpack_from('<Q', data, 48)[0] & ((1 << 56) - 1)
    bt_off = struct.unpack_from('<Q', data, 56)[0]
    meta = None
    for i in range(bt_size // 50):
        e = bt_off + i * 50
        if data[e + 7] & 0x02:  # the metadata resource
            meta = e
    if meta is None:
        sys.exit('hostile.py: no metadata resource in %s' % wim)
    n = 0
    for chunk in (1, 32768):
        d = bytearray(data)
        struct.pack_into('<I', d, 20, chunk)
        d[meta + 7] |= 0x04                                  # "compressed"
        struct.pack_into('<Q', d, meta + 16, 1056965096)     # ~1 GB claimed
        with open(os.path.join(outdir, 'bomb%d.wim' % n), 'wb') as f:
            f.write(d)
        n += 1
    print('%d seeds' % n)


def main(argv):
    if len(argv) == 2 and argv[0] == 'links':
        op_links(argv[1])
    elif len(argv) == 4 and argv[0] == 'patch-name':
        op_patch_name(argv[1], argv[2], argv[3].replace('\\0', '\0'))
    elif len(argv) >= 3 and argv[0] == 'resource-seeds':
        op_resource_seeds(argv[1], argv[2:])
    elif len(argv) == 2 and argv[0] == 'readlink-seeds':
        op_readlink_seeds(argv[1])
    elif len(argv) == 3 and argv[0] == 'size-bombs':
        op_size_bombs(argv[1], argv[2])
    else:
        sys.exit(__doc__)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
