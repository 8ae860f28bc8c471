#!/usr/bin/env python3
"""tree-hash.py [-v] DIR: one SHA-256 over everything a snapshot holds.

Walks DIR without following symlinks and hashes, per path in sorted order:
the type, the size and content of regular files, symlink targets, the
hard-link group (by the first path of each inode), and the NTFS metadata
and named streams as xattrs (system.ntfs_acl, system.ntfs_attrib,
system.ntfs_dos_name, system.ntfs_reparse_data, system.ntfs_object_id,
every user.*).  Times are not hashed (reading changes access times).  -v
prints one line per path before the hash, so two runs can be diffed.
"""
import hashlib
import os
import stat
import sys

XATTRS = ['system.ntfs_acl', 'system.ntfs_attrib', 'system.ntfs_dos_name',
          'system.ntfs_reparse_data', 'system.ntfs_object_id']


def xattrs(path):
    out = []
    try:
        names = sorted(n for n in os.listxattr(path, follow_symlinks=False)
                       if n.startswith('user.'))
    except OSError:
        names = []
    for n in XATTRS + names:
        try:
            v = os.getxattr(path, n, follow_symlinks=False)
        except OSError as e:
            v = ('!%d' % e.errno).encode()
        out.append('%s=%s' % (n, hashlib.sha256(v).hexdigest()[:16]))
    return ' '.join(out)


def main():
    args = sys.argv[1:]
    verbose = args[:1] == ['-v']
    if verbose:
        args = args[1:]
    if len(args) != 1:
        sys.exit('usage: tree-hash.py [-v] DIR')
    root = args[0]
    total = hashlib.sha256()
    first = {}
    paths = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for n in sorted(dirs + files):
            paths.append(os.path.join(dirpath, n))
    paths.sort()
    for p in paths:
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        if stat.S_ISDIR(st.st_mode):
            line = 'd %s' % rel
        elif stat.S_ISLNK(st.st_mode):
            line = 'l %s -> %s' % (rel, os.readlink(p))
        else:
            h = hashlib.sha256()
            with open(p, 'rb') as f:
                for block in iter(lambda: f.read(1 << 20), b''):
                    h.update(block)
            link = first.setdefault(st.st_ino, rel)
            line = 'f %s %d %s link=%s' % (rel, st.st_size, h.hexdigest()[:16], link)
        line += ' ' + xattrs(p)
        if verbose:
            print(line)
        total.update(line.encode('utf-8', 'surrogateescape') + b'\n')
    print(total.hexdigest())


main()
