#!/usr/bin/env python3
"""Random changes to a mounted wtgfs delta, for tests/export-random.sh.

export-random.py MOUNT SEED N [links]: makes N changes picked by SEED from the
kinds a user makes on a mounted image (new files and directories, writes
into existing files, truncation, deletes of files and of whole trees,
renames within and across directories, hard links, named streams,
attributes, DOS names, security descriptors copied from another file,
symlinks when "links" is given) and prints one line per change.  Changes that the tree refuses
(a name Windows cannot hold, a DOS name already taken) are printed as
refused and count as made: the point is the export of whatever the tree
ends up holding.
"""
import errno
import os
import random
import sys

mnt, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
links = sys.argv[4:] == ["links"]
rnd = random.Random(seed)


def walk():
    files, dirs = [], [""]
    for root, ds, fs in os.walk(mnt):
        rel = os.path.relpath(root, mnt)
        rel = "" if rel == "." else rel
        for d in ds:
            p = os.path.join(rel, d)
            if os.path.islink(os.path.join(mnt, p)):
                continue
            dirs.append(p)
        for f in fs:
            p = os.path.join(rel, f)
            if os.path.islink(os.path.join(mnt, p)):
                continue
            files.append(p)
    return sorted(files), sorted(dirs)


def full(p):
    return os.path.join(mnt, p)


def newname(d, stem):
    return os.path.join(d, "%s%d_%d" % (stem, seed, rnd.randrange(1 << 30)))


def data(n):
    # half compressible text, half random, so both chunk kinds occur
    if rnd.random() < 0.5:
        return (b"wtgfs export random %d\n" % rnd.randrange(1 << 30)) * (n // 24 + 1)
    return rnd.randbytes(n)


def op_create(files, dirs):
    d = rnd.choice(dirs)
    p = newname(d, "new")
    with open(full(p), "wb") as f:
        f.write(data(rnd.choice([0, 1, 100, 5000, 70000, 300000]))[:300000])
    return "create " + p


def op_mkdir(files, dirs):
    d = newname(rnd.choice(dirs), "dir")
    os.mkdir(full(d))
    for i in range(rnd.randrange(4)):
        with open(full(os.path.join(d, "f%d.txt" % i)), "wb") as f:
            f.write(data(rnd.choice([10, 4000, 40000])))
    if rnd.random() < 0.5:
        os.mkdir(full(os.path.join(d, "sub")))
        with open(full(os.path.join(d, "sub", "deep.bin")), "wb") as f:
            f.write(data(1000))
    return "mkdir " + d


def op_write(files, dirs):
    p = rnd.choice(files)
    size = os.path.getsize(full(p))
    off = rnd.randrange(size + 1) if size else 0
    with open(full(p), "r+b") as f:
        f.seek(off)
        f.write(data(rnd.choice([1, 512, 4096, 65536]))[:65536])
    return "write %s at %d" % (p, off)


def op_truncate(files, dirs):
    p = rnd.choice(files)
    size = os.path.getsize(full(p))
    n = rnd.choice([0, size // 2, size + 10000])
    os.truncate(full(p), n)
    return "truncate %s to %d" % (p, n)


def op_unlink(files, dirs):
    p = rnd.choice(files)
    os.unlink(full(p))
    return "unlink " + p


def op_rmtree(files, dirs):
    # a small directory: big ones would leave little to compare
    small = [d for d in dirs if d and sum(len(f) for _, _, f in os.walk(full(d))) <= 8]
    if not small:
        return op_unlink(files, dirs)
    d = rnd.choice(small)
    for root, ds, fs in os.walk(full(d), topdown=False):
        for f in fs:
            os.unlink(os.path.join(root, f))
        for x in ds:
            p = os.path.join(root, x)
            os.unlink(p) if os.path.islink(p) else os.rmdir(p)
    os.rmdir(full(d))
    return "rmtree " + d


def op_rename(files, dirs):
    if rnd.random() < 0.7:
        src = rnd.choice(files)
    else:
        cand = [d for d in dirs if d and "/" in d]
        src = rnd.choice(cand) if cand else rnd.choice(files)
    dst_dir = rnd.choice(dirs)
    if (dst_dir + "/").startswith(src + "/") or dst_dir == src:
        dst_dir = os.path.dirname(src)
    dst = newname(dst_dir, "ren")
    os.rename(full(src), full(dst))
    return "rename %s -> %s" % (src, dst)


def op_link(files, dirs):
    src = rnd.choice(files)
    dst = newname(rnd.choice(dirs), "lnk")
    os.link(full(src), full(dst))
    return "link %s -> %s" % (src, dst)


def op_stream(files, dirs):
    p = rnd.choice(files)
    os.setxattr(full(p), "user.stream%d" % rnd.randrange(3), data(rnd.choice([1, 300, 5000]))[:5000])
    return "stream " + p


def op_attrib(files, dirs):
    p = rnd.choice(files)
    a = int.from_bytes(os.getxattr(full(p), "system.ntfs_attrib"), "little")
    a ^= rnd.choice([0x1, 0x2, 0x4, 0x20])
    os.setxattr(full(p), "system.ntfs_attrib", a.to_bytes(4, "little"))
    return "attrib %s %#x" % (p, a)


def op_dosname(files, dirs):
    d = rnd.choice(dirs)
    p = os.path.join(d, "Long Random Name %d.dat" % rnd.randrange(1 << 20))
    with open(full(p), "wb") as f:
        f.write(b"dos")
    short = "LR%06d.DAT" % rnd.randrange(1000000)
    os.setxattr(full(p), "system.ntfs_dos_name", short.encode())
    return "dosname %s %s" % (p, short)


def op_acl(files, dirs):
    a, b = rnd.choice(files), rnd.choice(files)
    os.setxattr(full(b), "system.ntfs_acl", os.getxattr(full(a), "system.ntfs_acl"))
    return "acl %s from %s" % (b, a)


def op_symlink(files, dirs):
    d = rnd.choice(dirs)
    p = newname(d, "sym")
    target = os.path.relpath(full(rnd.choice(files)), full(d))
    os.symlink(target, full(p))
    return "symlink %s -> %s" % (p, target)


OPS = [(op_create, 4), (op_mkdir, 2), (op_write, 4), (op_truncate, 1), (op_unlink, 2),
       (op_rmtree, 1), (op_rename, 3), (op_link, 2), (op_stream, 1), (op_attrib, 1),
       (op_dosname, 1), (op_acl, 1)]
# symlinks (new reparse data) when asked, so that the other runs test the
# appends that take the raw path whole
if links:
    OPS.append((op_symlink, 1))

made = 0
while made < count:
    files, dirs = walk()
    op = rnd.choices([o for o, _ in OPS], weights=[w for _, w in OPS])[0]
    try:
        print(op(files, dirs))
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EEXIST, errno.ENOTEMPTY, errno.EACCES,
                           errno.EPERM, errno.ENAMETOOLONG, errno.ENODATA):
            raise
        print("refused %s: %s" % (op.__name__, e))
    made += 1
