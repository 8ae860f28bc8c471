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


def main(argv):
    if len(argv) == 2 and argv[0] == 'links':
        op_links(argv[1])
    elif len(argv) == 4 and argv[0] == 'patch-name':
        op_patch_name(argv[1], argv[2], argv[3].replace('\\0', '\0'))
    else:
        sys.exit(__doc__)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
