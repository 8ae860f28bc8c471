#!/usr/bin/env python3
"""compare-trees.py [-q] [--skip NAME]... A B

Compare two mounted trees (e.g. a wtgfs mount and an ntfs-3g mount of the
same image) path by path, never following symlinks:

  paths      the set of paths (including the root itself)
  type       file type (regular, directory, symlink, ...; the number of
             a device)
  size       size of regular files
  content    contents of regular files, byte for byte (streamed)
  symlink    where each symlink resolves relative to its root (`..` is
             normalised against the link's directory; absolute targets must
             point into the root's mount point); a link that escapes its
             root is a difference
  nlink      st_nlink of non-directories
  links      hard-link groups (the partition of non-directory paths by
             st_ino must be identical)
  xattrs     system.ntfs_acl, system.ntfs_attrib, system.ntfs_attrib_be,
             system.ntfs_reparse_data, system.ntfs_dos_name,
             system.ntfs_times (first 24 bytes: creation, last write, last
             access; the 4th, change time, is set by whoever wrote the
             tree), system.ntfs_crtime, system.ntfs_object_id,
             system.ntfs_ea, and every
             name os.listxattr returns on either side (user.* = named
             streams). Missing on both sides is equal; missing on one side
             is a difference.

--skip NAME (repeatable) skips a check kind (paths type size content
symlink nlink links xattrs times user) or one xattr by its full name
(e.g. system.ntfs_object_id); `times` = ntfs_times and ntfs_crtime,
`user` = all user.* xattrs. A value too large for the xattr interface
(E2BIG, named streams > 64 KiB on ntfs-3g) on both sides, and the same
error on both sides (e.g. EPERM for system.ntfs_dos_name of the root), are
reported as warnings on stderr, not as differences.

Mount both trees read-only (or with noatime): reading files through a
read-write ntfs-3g mount updates their last access times, which are
compared. Directory sizes and permission bits are not compared.

Prints one line per difference (at most 50, then a count) and a summary
`compared N paths, M files, K bytes, X xattrs: OK` or `... D differences`.
Exit 0 if equal, 1 if different, 2 on usage errors.
"""
import ctypes
import ctypes.util
import errno
import os
import re
import stat
import sys

KINDS = {'paths', 'type', 'size', 'content', 'symlink', 'nlink', 'links',
         'xattrs', 'times', 'user'}
SYSTEM_XATTRS = ['system.ntfs_acl', 'system.ntfs_attrib', 'system.ntfs_attrib_be',
                 'system.ntfs_reparse_data', 'system.ntfs_dos_name',
                 'system.ntfs_times', 'system.ntfs_crtime', 'system.ntfs_object_id',
                 'system.ntfs_ea']
TIME_XATTRS = {'system.ntfs_times', 'system.ntfs_crtime', 'system.ntfs_times_be',
               'system.ntfs_crtime_be'}
MAX_LINES = 50
CHUNK = 1 << 20


def usage(msg=None):
    if msg:
        print('compare-trees.py: ' + msg, file=sys.stderr)
    print('usage: compare-trees.py [-q] [--skip NAME]... A B', file=sys.stderr)
    sys.exit(2)


class Cmp:
    def __init__(self, a, b, skip, quiet):
        self.roots = (a, b)
        self.skip = skip
        self.quiet = quiet
        self.ndiff = 0
        self.nwarn = 0
        self.npaths = self.nfiles = self.nbytes = self.nxattrs = 0
        self.content_done = set()     # hard links: contents read once per inode pair

    def diff(self, path, msg):
        self.ndiff += 1
        if not self.quiet:
            if self.ndiff <= MAX_LINES:
                print('%s: %s' % (show(path), msg))
        sys.stdout.flush()

    def warn(self, path, msg):
        self.nwarn += 1
        if not self.quiet:
            print('warning: %s: %s' % (show(path), msg), file=sys.stderr)

    def skipped(self, what):
        return what in self.skip

    # ---------------------------------------------------------------- walk
    def walk(self, side):
        """rel path -> lstat result, or an error string for the root."""
        root = self.roots[side]
        out = {}
        errors = []
        stack = ['']
        while stack:
            rel = stack.pop()
            full = os.path.join(root, rel) if rel else root
            try:
                st = os.lstat(full)
            except OSError as e:
                errors.append((rel, 'lstat: %s' % e.strerror))
                continue
            out[rel] = st
            if stat.S_ISDIR(st.st_mode):
                try:
                    with os.scandir(full) as it:
                        names = [e.name for e in it]
                except OSError as e:
                    errors.append((rel, 'readdir: %s' % e.strerror))
                    continue
                for n in names:
                    stack.append(os.path.join(rel, n) if rel else n)
        return out, errors

    # ---------------------------------------------------------------- run
    def run(self):
        trees, errs = [], []
        for side in (0, 1):
            t, e = self.walk(side)
            trees.append(t)
            errs.append(e)
        for side in (0, 1):
            for rel, msg in errs[side]:
                self.diff(rel, '%s: %s' % ('AB'[side], msg))
        ta, tb = trees
        allp = sorted(set(ta) | set(tb))
        self.npaths = len(allp)
        for rel in allp:
            if rel not in tb:
                if not self.skipped('paths'):
                    self.diff(rel, 'only in A')
                continue
            if rel not in ta:
                if not self.skipped('paths'):
                    self.diff(rel, 'only in B')
                continue
            self.compare(rel, ta[rel], tb[rel])
        if not self.skipped('links'):
            self.compare_links(ta, tb)

    def full(self, side, rel):
        return os.path.join(self.roots[side], rel) if rel else self.roots[side]

    def compare(self, rel, sa, sb):
        fa, fb = stat.S_IFMT(sa.st_mode), stat.S_IFMT(sb.st_mode)
        if fa != fb:
            if not self.skipped('type'):
                self.diff(rel, 'type differs: %s vs %s' % (tname(fa), tname(fb)))
            # still compare xattrs, which both have
            self.compare_xattrs(rel)
            return
        if fa == stat.S_IFREG:
            self.nfiles += 1
            if sa.st_size != sb.st_size:
                if not self.skipped('size'):
                    self.diff(rel, 'size differs: %d vs %d' % (sa.st_size, sb.st_size))
            elif not self.skipped('content'):
                key = (sa.st_dev, sa.st_ino, sb.st_dev, sb.st_ino)
                if sa.st_nlink == 1 or key not in self.content_done:
                    self.compare_content(rel, sa.st_size)
                    if sa.st_nlink > 1:
                        self.content_done.add(key)
        elif fa == stat.S_IFLNK and not self.skipped('symlink'):
            self.compare_symlink(rel)
        elif fa in (stat.S_IFCHR, stat.S_IFBLK) and sa.st_rdev != sb.st_rdev:
            if not self.skipped('type'):
                self.diff(rel, 'device number differs: %d,%d vs %d,%d' % (
                    os.major(sa.st_rdev), os.minor(sa.st_rdev),
                    os.major(sb.st_rdev), os.minor(sb.st_rdev)))
        if fa != stat.S_IFDIR and not self.skipped('nlink') and sa.st_nlink != sb.st_nlink:
            self.diff(rel, 'st_nlink differs: %d vs %d' % (sa.st_nlink, sb.st_nlink))
        self.compare_xattrs(rel)

    def compare_content(self, rel, size):
        try:
            with open(self.full(0, rel), 'rb', buffering=0) as a, \
                    open(self.full(1, rel), 'rb', buffering=0) as b:
                off = 0
                while True:
                    ca = read_full(a, CHUNK)
                    cb = read_full(b, CHUNK)
                    if ca != cb:
                        n = min(len(ca), len(cb))
                        i = next((k for k in range(n) if ca[k] != cb[k]), n)
                        self.diff(rel, 'content differs at offset %d' % (off + i))
                        return
                    if not ca:
                        break
                    off += len(ca)
                    self.nbytes += len(ca)
                if off != size:
                    self.diff(rel, 'read %d bytes, st_size says %d' % (off, size))
        except OSError as e:
            self.diff(rel, 'read error: %s (%s)' % (e.strerror, e.filename))

    def resolve_link(self, side, rel):
        r, t = self.resolve_link_raw(side, rel)
        # ntfs-3g shows an absolute link whose target is not on the volume
        # as <mount>/.NTFS-3G/C:/path: the same path from the root
        if r is not None:
            parts = r.split('/')
            if len(parts) >= 2 and parts[0] == '.NTFS-3G' and re.fullmatch('[A-Za-z]:', parts[1]):
                r = '/'.join(parts[2:])
        return r, t

    def resolve_link_raw(self, side, rel):
        root = self.roots[side]
        t = os.readlink(self.full(side, rel))
        if os.path.isabs(t):
            bases = {os.path.abspath(root), os.path.realpath(root)}
            for base in bases:
                if t == base:
                    return '', t
                if t.startswith(base.rstrip('/') + '/'):
                    r = os.path.normpath(t[len(base.rstrip('/')) + 1:])
                    return ('' if r == '.' else r), t
            return None, t
        r = os.path.normpath(os.path.join(os.path.dirname(rel), t))
        if r == '..' or r.startswith('../') or os.path.isabs(r):
            return None, t
        return ('' if r == '.' else r), t

    def compare_symlink(self, rel):
        res = []
        for side in (0, 1):
            try:
                res.append(self.resolve_link(side, rel))
            except OSError as e:
                self.diff(rel, '%s: readlink: %s' % ('AB'[side], e.strerror))
                return
        (ra, ta), (rb, tb) = res
        # ntfs-3g reads a link it cannot follow (a relative one whose target
        # is gone) as this text; the reparse data itself is compared as the
        # system.ntfs_reparse_data xattr
        if any(os.path.basename(t).startswith('unsupported reparse tag 0x') for t in (ta, tb)):
            return
        if ra is None or rb is None:
            for side, (r, t) in enumerate(res):
                if r is None:
                    self.diff(rel, '%s: symlink escapes its root: %r' % ('AB'[side], t))
            return
        if ra != rb:
            self.diff(rel, 'symlink resolves differently: %r (%r) vs %r (%r)'
                      % (ra, ta, rb, tb))

    # ---------------------------------------------------------- hard links
    def compare_links(self, ta, tb):
        groups = []
        for t in (ta, tb):
            by_ino = {}
            for rel, st in t.items():
                if not stat.S_ISDIR(st.st_mode):
                    by_ino.setdefault((st.st_dev, st.st_ino), []).append(rel)
            g = {}
            for paths in by_ino.values():
                fs = frozenset(paths)
                for p in paths:
                    g[p] = fs
            groups.append(g)
        ga, gb = groups
        done = set()
        for rel in sorted(set(ga) & set(gb)):
            if rel in done:
                continue
            a, b = ga[rel], gb[rel]
            if a != b:
                self.diff(rel, 'hard-link group differs: A {%s} vs B {%s}' % (
                    ', '.join(show(x) for x in sorted(a)),
                    ', '.join(show(x) for x in sorted(b))))
                done |= a | b
            else:
                done |= a

    # ---------------------------------------------------------- xattrs
    def getx(self, side, rel, name):
        """-> ('val', bytes) | ('none', None) | ('big', size) | ('err', msg)"""
        p = self.full(side, rel)
        try:
            return 'val', lgetxattr(p, name)
        except OSError as e:
            if e.errno in (errno.ENODATA, getattr(errno, 'ENOATTR', errno.ENODATA)):
                return 'none', None
            if e.errno == errno.E2BIG:
                return 'big', e.filename2 or 0
            return 'err', e.strerror or os.strerror(e.errno)

    def compare_big_stream(self, rel, name):
        """A user.* value too large for getxattr: try ntfs-3g's
        streams_interface=windows spelling FILE:STREAM on both sides."""
        if name.startswith('user.') and rel:
            paths = [self.full(side, rel) + ':' + name[5:] for side in (0, 1)]
            try:
                sa = os.stat(paths[0], follow_symlinks=False)
                sb = os.stat(paths[1], follow_symlinks=False)
            except OSError:
                sa = sb = None
            if sa is not None and sb is not None:
                if sa.st_size != sb.st_size:
                    self.diff(rel, '%s: stream sizes differ: %d vs %d' % (name, sa.st_size, sb.st_size))
                    return
                try:
                    with open(paths[0], 'rb') as a, open(paths[1], 'rb') as b:
                        while True:
                            ca, cb = read_full(a, CHUNK), read_full(b, CHUNK)
                            if ca != cb:
                                self.diff(rel, '%s: stream contents differ' % name)
                                return
                            if not ca:
                                return
                except OSError as e:
                    self.diff(rel, '%s: reading stream: %s' % (name, e.strerror))
                    return
        self.warn(rel, '%s: too large for the xattr interface (E2BIG) on '
                  'both sides: not compared' % name)

    def listx(self, side, rel):
        try:
            return set(os.listxattr(self.full(side, rel), follow_symlinks=False))
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                return set()
            self.diff(rel, '%s: listxattr: %s' % ('AB'[side], e.strerror))
            return set()

    def compare_xattrs(self, rel):
        if self.skipped('xattrs'):
            return
        names = list(SYSTEM_XATTRS)
        listed = self.listx(0, rel) | self.listx(1, rel)
        names += sorted(listed - set(names))
        for name in names:
            if name in self.skip:
                continue
            if name in TIME_XATTRS and self.skipped('times'):
                continue
            if name.startswith('user.') and self.skipped('user'):
                continue
            va = self.getx(0, rel, name)
            vb = self.getx(1, rel, name)
            if va[0] == 'none' and vb[0] == 'none':
                continue
            self.nxattrs += 1
            if va[0] == 'err' or vb[0] == 'err':
                if va == vb:
                    self.warn(rel, '%s: same error on both sides: %s' % (name, va[1]))
                else:
                    self.diff(rel, '%s: error: %s vs %s' % (name, fmt(va), fmt(vb)))
                continue
            if va[0] == 'big' or vb[0] == 'big':
                if va[0] == vb[0] == 'big':
                    self.compare_big_stream(rel, name)
                else:
                    self.diff(rel, '%s differs: %s vs %s' % (name, fmt(va), fmt(vb)))
                continue
            a, b = va[1], vb[1]
            if name == 'system.ntfs_times' and a is not None and b is not None:
                a, b = a[:24], b[:24]
            elif name == 'system.ntfs_times_be' and a is not None and b is not None:
                a, b = a[:24], b[:24]
            if a != b:
                self.diff(rel, '%s differs: %s vs %s' % (name, fmt(va, 24 if 'times' in name else None),
                                                        fmt(vb, 24 if 'times' in name else None)))


_libc = ctypes.CDLL(ctypes.util.find_library('c') or None, use_errno=True)
_lgetxattr = _libc.lgetxattr
_lgetxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
_lgetxattr.restype = ctypes.c_ssize_t


def lgetxattr(path, name):
    """getxattr without following symlinks that asks for the size first.
    (os.getxattr starts with a 128-byte buffer, and ntfs-3g answers a too
    small buffer for system.ntfs_acl with EIO instead of ERANGE.)
    A value too large for the xattr interface raises OSError(E2BIG) with
    the size the kernel reported in filename2."""
    p, n = os.fsencode(path), os.fsencode(name)
    for _ in range(8):
        size = _lgetxattr(p, n, None, 0)
        if size < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        buf = ctypes.create_string_buffer(max(size, 1))
        got = _lgetxattr(p, n, buf, size)
        if got >= 0:
            return buf.raw[:got]
        e = ctypes.get_errno()
        if e == errno.ERANGE:
            continue        # grew in between
        if e == errno.E2BIG:
            raise OSError(e, os.strerror(e), None, None, size)
        raise OSError(e, os.strerror(e))
    raise OSError(errno.ERANGE, 'xattr keeps changing size')


def read_full(f, n):
    buf = bytearray()
    while len(buf) < n:
        c = f.read(n - len(buf))
        if not c:
            break
        buf += c
    return bytes(buf)


def tname(fmt_):
    return {stat.S_IFREG: 'file', stat.S_IFDIR: 'directory', stat.S_IFLNK: 'symlink',
            stat.S_IFCHR: 'chardev', stat.S_IFBLK: 'blockdev', stat.S_IFIFO: 'fifo',
            stat.S_IFSOCK: 'socket'}.get(fmt_, oct(fmt_))


def fmt(v, cut=None):
    kind, x = v
    if kind == 'none':
        return 'absent'
    if kind == 'err':
        return 'error(%s)' % x
    if kind == 'big':
        return '<too large (E2BIG)>'
    if cut is not None:
        x = x[:cut]
    h = x.hex()
    if len(h) > 96:
        h = h[:96] + '...(%d bytes)' % len(x)
    return '0x' + h if h else '<empty>'


def show(rel):
    return '/' + rel if rel else '/'


def main(argv):
    skip = set()
    quiet = False
    args = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ('-h', '--help'):
            print(__doc__)
            return 0
        if a == '-q':
            quiet = True
        elif a == '--skip':
            i += 1
            if i >= len(argv):
                usage('--skip needs an argument')
            skip.add(argv[i])
        elif a.startswith('--skip='):
            skip.add(a[len('--skip='):])
        elif a == '--':
            args += argv[i + 1:]
            break
        elif a.startswith('-') and a != '-':
            usage('unknown option ' + a)
        else:
            args.append(a)
        i += 1
    if len(args) != 2:
        usage()
    for s in skip:
        if s not in KINDS and '.' not in s:
            usage('--skip %s: not a check kind (%s) nor an xattr name'
                  % (s, ' '.join(sorted(KINDS))))
    for r in args:
        if not os.path.isdir(r):
            usage('%s is not a directory' % r)
    if skip and not quiet:
        print('note: skipping %s' % ', '.join(sorted(skip)), file=sys.stderr)
    c = Cmp(args[0], args[1], skip, quiet)
    c.run()
    if c.ndiff > MAX_LINES and not quiet:
        print('... and %d more differences' % (c.ndiff - MAX_LINES))
    summary = 'compared %d paths, %d files, %d bytes, %d xattrs: ' % (
        c.npaths, c.nfiles, c.nbytes, c.nxattrs)
    summary += 'OK' if c.ndiff == 0 else '%d differences' % c.ndiff
    print(summary)
    return 0 if c.ndiff == 0 else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
