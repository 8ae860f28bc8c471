#!/usr/bin/env python3
"""posix-compare.py [--no-links] SRC DST

Compares a copy DST of a plain directory tree SRC, as POSIX tools leave it
on a wtgfs mount (which keeps no owners and no modes beyond the owner's
write bit, the NTFS read-only attribute): the same names, the same types,
the same content, symlink targets and device numbers, the same hard-link
groups, and the owner's write bit of every file as the source has it.
--no-links leaves hard links out (rsync -a without -H makes copies).
Prints one line per difference; exits 0 when there is none, 1 otherwise.
"""
import os
import stat
import sys


def walk(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = os.lstat(p)
    return out


def main():
    args = sys.argv[1:]
    links = args[0] != '--no-links'
    if not links:
        args = args[1:]
    src, dst = args
    a, b = walk(src), walk(dst)
    diffs = []
    for rel in sorted(set(a) | set(b)):
        if rel not in b:
            diffs.append('%s: missing in the copy' % rel)
            continue
        if rel not in a:
            diffs.append('%s: only in the copy' % rel)
            continue
        sa, sb = a[rel], b[rel]
        ta, tb = stat.S_IFMT(sa.st_mode), stat.S_IFMT(sb.st_mode)
        if ta != tb:
            diffs.append('%s: type %o vs %o' % (rel, ta, tb))
            continue
        if ta == stat.S_IFREG:
            with open(os.path.join(src, rel), 'rb') as f, open(os.path.join(dst, rel), 'rb') as g:
                if f.read() != g.read():
                    diffs.append('%s: content differs' % rel)
        elif ta == stat.S_IFLNK:
            ra, rb = os.readlink(os.path.join(src, rel)), os.readlink(os.path.join(dst, rel))
            if ra != rb:
                diffs.append('%s: symlink %r vs %r' % (rel, ra, rb))
        elif ta in (stat.S_IFCHR, stat.S_IFBLK) and sa.st_rdev != sb.st_rdev:
            diffs.append('%s: device %d,%d vs %d,%d' % (
                rel, os.major(sa.st_rdev), os.minor(sa.st_rdev),
                os.major(sb.st_rdev), os.minor(sb.st_rdev)))
        if ta == stat.S_IFREG and (sa.st_mode & 0o200) != (sb.st_mode & 0o200):
            diffs.append('%s: owner write bit %o vs %o (mode %o vs %o)' % (
                rel, sa.st_mode & 0o200, sb.st_mode & 0o200, sa.st_mode & 0o7777,
                sb.st_mode & 0o7777))
        if links and ta != stat.S_IFDIR and sa.st_nlink != sb.st_nlink:
            diffs.append('%s: %d links vs %d' % (rel, sa.st_nlink, sb.st_nlink))
    # hard-link groups: the partition of the paths by inode
    def groups(t):
        by = {}
        for rel, st in t.items():
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                by.setdefault(st.st_ino, set()).add(rel)
        return sorted(sorted(g) for g in by.values())
    if links and groups(a) != groups(b):
        diffs.append('hard-link groups differ: %s vs %s' % (groups(a), groups(b)))
    for d in diffs[:50]:
        print(d)
    print('compared %d paths: %s' % (len(a), 'OK' if not diffs else '%d differences' % len(diffs)))
    return 1 if diffs else 0


if __name__ == '__main__':
    sys.exit(main())
