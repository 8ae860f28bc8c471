#!/usr/bin/env python3
"""posix-conform.py DIR

A focused POSIX conformance run in the manner of pjdfstest: open, rename,
unlink, link, truncate, ftruncate, mkdir, rmdir, symlink, mknod, chmod,
chown and utime cases, run as the calling user in a fresh directory under
DIR.  Prints one JSON object {case: outcome} on standard output, where an
outcome is "ok", "ok <what was seen>" or an errno name, so that runs on
different file systems (ext4, an ntfs-3g mount, a wtgfs delta mount)
compare case by case.
"""
import errno
import json
import os
import socket
import stat
import sys

ROOT = os.geteuid() == 0


def outcome(fn):
    try:
        r = fn()
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return 'ok' if r is None else 'ok %s' % (r,)


def ftype(path):
    m = os.lstat(path).st_mode
    return {stat.S_IFREG: 'reg', stat.S_IFDIR: 'dir', stat.S_IFLNK: 'lnk', stat.S_IFIFO: 'fifo',
            stat.S_IFSOCK: 'sock', stat.S_IFCHR: 'chr', stat.S_IFBLK: 'blk'}.get(stat.S_IFMT(m), '?')


def touch(p, data=b''):
    with open(p, 'wb') as f:
        f.write(data)


def main():
    base = os.path.join(sys.argv[1], 'conform-%d' % os.getpid())
    os.mkdir(base)
    n = [0]

    def fresh():
        n[0] += 1
        d = os.path.join(base, 'c%03d' % n[0])
        os.mkdir(d)
        return d

    cases = {}

    def case(name, setup, fn):
        d = fresh()
        try:
            ctx = setup(d) if setup else d
        except OSError as e:
            cases[name] = 'setup ' + errno.errorcode.get(e.errno, str(e.errno))
            return
        cases[name] = outcome(lambda: fn(d, ctx))

    def with_file(d):
        touch(os.path.join(d, 'f'), b'hello')
        return os.path.join(d, 'f')

    def with_dir(d):
        os.mkdir(os.path.join(d, 'sub'))
        return os.path.join(d, 'sub')

    def with_full_dir(d):
        os.mkdir(os.path.join(d, 'sub'))
        touch(os.path.join(d, 'sub', 'x'))
        return os.path.join(d, 'sub')

    def opn(p, flags, mode=0o644):
        os.close(os.open(p, flags, mode))

    # ---- open
    case('open/creat', None, lambda d, _: opn(os.path.join(d, 'new'), os.O_CREAT | os.O_WRONLY))
    case('open/creat-excl-exists', with_file,
         lambda d, f: opn(f, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    case('open/missing', None, lambda d, _: opn(os.path.join(d, 'nope'), os.O_RDONLY))
    case('open/dir-for-write', with_dir, lambda d, s: opn(s, os.O_WRONLY))
    case('open/through-file', with_file, lambda d, f: opn(f + '/x', os.O_RDONLY))
    case('open/name-255', None, lambda d, _: opn(os.path.join(d, 'n' * 255), os.O_CREAT | os.O_WRONLY))
    case('open/name-256', None, lambda d, _: opn(os.path.join(d, 'n' * 256), os.O_CREAT | os.O_WRONLY))
    case('open/trunc', with_file,
         lambda d, f: (opn(f, os.O_WRONLY | os.O_TRUNC), os.stat(f).st_size)[1])
    case('open/mode-0444-write', with_file,
         lambda d, f: (os.chmod(f, 0o444), opn(f, os.O_WRONLY))[1])
    case('open/creat-mode-0444-then-write', None,
         lambda d, _: (opn(os.path.join(d, 'ro'), os.O_CREAT | os.O_WRONLY, 0o444),
                       opn(os.path.join(d, 'ro'), os.O_WRONLY))[1])
    case('open/unlinked-still-readable', with_file, lambda d, f: _unlinked_read(f))

    # ---- mkdir / rmdir
    case('mkdir/new', None, lambda d, _: (os.mkdir(os.path.join(d, 'x')), ftype(os.path.join(d, 'x')))[1])
    case('mkdir/exists', with_dir, lambda d, s: os.mkdir(s))
    case('mkdir/missing-parent', None, lambda d, _: os.mkdir(os.path.join(d, 'a', 'b')))
    case('mkdir/nlink-of-parent', None,
         lambda d, _: (os.mkdir(os.path.join(d, 'x')), os.stat(d).st_nlink)[1])
    case('rmdir/empty', with_dir, lambda d, s: os.rmdir(s))
    case('rmdir/not-empty', with_full_dir, lambda d, s: os.rmdir(s))
    case('rmdir/file', with_file, lambda d, f: os.rmdir(f))
    case('rmdir/missing', None, lambda d, _: os.rmdir(os.path.join(d, 'nope')))
    case('rmdir/dot', with_dir, lambda d, s: os.rmdir(os.path.join(s, '.')))

    # ---- unlink
    case('unlink/file', with_file, lambda d, f: (os.unlink(f), os.path.exists(f))[1])
    case('unlink/dir', with_dir, lambda d, s: os.unlink(s))
    case('unlink/missing', None, lambda d, _: os.unlink(os.path.join(d, 'nope')))
    case('unlink/fifo', None, lambda d, _: (os.mkfifo(os.path.join(d, 'p')), os.unlink(os.path.join(d, 'p')))[1])

    # ---- rename
    case('rename/file', with_file, lambda d, f: (os.rename(f, f + '2'), ftype(f + '2'))[1])
    case('rename/over-file', with_file,
         lambda d, f: (touch(f + '2', b'x'), os.rename(f, f + '2'), os.stat(f + '2').st_size)[2])
    case('rename/file-over-dir', with_file,
         lambda d, f: (os.mkdir(f + 'd'), os.rename(f, f + 'd'))[1])
    case('rename/dir-over-file', with_dir,
         lambda d, s: (touch(s + 'f'), os.rename(s, s + 'f'))[1])
    case('rename/dir-into-itself', with_dir, lambda d, s: os.rename(s, os.path.join(s, 'in')))
    case('rename/dir-over-full-dir', with_dir,
         lambda d, s: (os.mkdir(s + '2'), touch(os.path.join(s + '2', 'x')), os.rename(s, s + '2'))[2])
    case('rename/dir-over-empty-dir', with_dir,
         lambda d, s: (os.mkdir(s + '2'), os.rename(s, s + '2'), ftype(s + '2'))[2])
    case('rename/to-itself', with_file, lambda d, f: os.rename(f, f))
    case('rename/missing', None, lambda d, _: os.rename(os.path.join(d, 'a'), os.path.join(d, 'b')))
    case('rename/hard-links-of-one-file', with_file,
         lambda d, f: (os.link(f, f + 'l'), os.rename(f, f + 'l'), os.path.exists(f))[2])
    case('rename/fifo', None,
         lambda d, _: (os.mkfifo(os.path.join(d, 'p')), os.rename(os.path.join(d, 'p'), os.path.join(d, 'q')),
                       ftype(os.path.join(d, 'q')))[2])

    # ---- link
    case('link/file', with_file, lambda d, f: (os.link(f, f + 'l'), os.stat(f).st_nlink)[1])
    case('link/dir', with_dir, lambda d, s: os.link(s, s + 'l'))
    case('link/exists', with_file, lambda d, f: (touch(f + 'l'), os.link(f, f + 'l'))[1])
    case('link/missing', None, lambda d, _: os.link(os.path.join(d, 'a'), os.path.join(d, 'b')))
    case('link/unlink-first', with_file,
         lambda d, f: (os.link(f, f + 'l'), os.unlink(f), os.stat(f + 'l').st_nlink,
                       open(f + 'l', 'rb').read())[2:])
    case('link/fifo', None,
         lambda d, _: (os.mkfifo(os.path.join(d, 'p')), os.link(os.path.join(d, 'p'), os.path.join(d, 'q')),
                       os.stat(os.path.join(d, 'p')).st_nlink)[2])

    # ---- symlink
    case('symlink/new', None,
         lambda d, _: (os.symlink('target/x', os.path.join(d, 's')), os.readlink(os.path.join(d, 's')))[1])
    case('symlink/exists', with_file, lambda d, f: os.symlink('x', f))
    # readlink gives back exactly what symlink was given
    def text_back(d, target):
        link = os.path.join(d, 's')
        if target is None:  # an absolute path into this directory
            target = os.path.join(d, 'x')
        if isinstance(target, bytes):
            link = link.encode()
        os.symlink(target, link)
        return os.readlink(link) == target
    for tag, target in (('absolute', '/etc/passwd'), ('dots', 'a/./b//c/'),
                        ('climb', '../../../../../x'), ('bytes', b'a\xffb'),
                        ('into-dir', None)):
        case('symlink/text-' + tag, None, lambda d, _, t=target: text_back(d, t))
    case('symlink/follow', with_file,
         lambda d, f: (os.symlink('f', os.path.join(d, 's')), open(os.path.join(d, 's'), 'rb').read())[1])
    case('symlink/dangling', None,
         lambda d, _: (os.symlink('nope', os.path.join(d, 's')), os.path.exists(os.path.join(d, 's')))[1])

    # ---- truncate / ftruncate
    case('truncate/grow', with_file,
         lambda d, f: (os.truncate(f, 100000), os.stat(f).st_size, open(f, 'rb').read()[5:] == bytes(99995))[1:])
    case('truncate/shrink', with_file, lambda d, f: (os.truncate(f, 2), open(f, 'rb').read())[1])
    case('truncate/negative', with_file, lambda d, f: os.truncate(f, -1))
    case('truncate/dir', with_dir, lambda d, s: os.truncate(s, 0))
    case('truncate/missing', None, lambda d, _: os.truncate(os.path.join(d, 'nope'), 0))
    case('truncate/mode-0444', with_file, lambda d, f: (os.chmod(f, 0o444), os.truncate(f, 0))[1])
    case('ftruncate/grow-shrink', with_file, lambda d, f: _ftrunc(f))
    case('ftruncate/read-only-fd', with_file, lambda d, f: _ftrunc_ro(f))

    # ---- special files
    case('mknod/fifo', None, lambda d, _: (os.mkfifo(os.path.join(d, 'p')), ftype(os.path.join(d, 'p')))[1])
    case('mknod/char', None,
         lambda d, _: (os.mknod(os.path.join(d, 'c'), stat.S_IFCHR | 0o644, os.makedev(4, 5)),
                       ftype(os.path.join(d, 'c')), os.stat(os.path.join(d, 'c')).st_rdev)[1:])
    case('mknod/block', None,
         lambda d, _: (os.mknod(os.path.join(d, 'b'), stat.S_IFBLK | 0o644, os.makedev(8, 1)),
                       ftype(os.path.join(d, 'b')), os.stat(os.path.join(d, 'b')).st_rdev)[1:])
    case('mknod/socket', None, lambda d, _: _bind(os.path.join(d, 's')))
    case('mknod/exists', with_file, lambda d, f: os.mkfifo(f))

    # ---- owners and modes
    case('chown/to-other', with_file, lambda d, f: os.chown(f, 1234, 1234))
    case('chown/same', with_file, lambda d, f: os.chown(f, -1, -1))
    case('chmod/0600', with_file, lambda d, f: os.chmod(f, 0o600))
    case('chmod/write-bit-kept', with_file,
         lambda d, f: (os.chmod(f, 0o444), os.stat(f).st_mode & 0o200, os.chmod(f, 0o644),
                       os.stat(f).st_mode & 0o200)[1::2])
    case('chmod/mode-kept', with_file, lambda d, f: (os.chmod(f, 0o751), os.stat(f).st_mode & 0o7777)[1])
    case('chmod/sticky-dir', with_dir, lambda d, s: (os.chmod(s, 0o1777), os.stat(s).st_mode & 0o7777)[1])
    case('chown/owner-kept', with_file,
         lambda d, f: (os.chown(f, 1234, 1235), os.stat(f).st_uid, os.stat(f).st_gid)[1:])
    case('open/creat-mode-kept', None,
         lambda d, _: (opn(os.path.join(d, 'm'), os.O_CREAT | os.O_WRONLY, 0o640),
                       os.stat(os.path.join(d, 'm')).st_mode & 0o7777)[1])
    case('mkdir/mode-kept', None,
         lambda d, _: (os.mkdir(os.path.join(d, 'm'), 0o711), os.stat(os.path.join(d, 'm')).st_mode & 0o7777)[1])
    case('mknod/fifo-mode-kept', None,
         lambda d, _: (os.mkfifo(os.path.join(d, 'p'), 0o620), os.stat(os.path.join(d, 'p')).st_mode & 0o7777)[1])
    case('open/creat-owner', None,
         lambda d, _: (opn(os.path.join(d, 'o'), os.O_CREAT | os.O_WRONLY),
                       os.stat(os.path.join(d, 'o')).st_uid == os.geteuid())[1])
    case('utime/now', with_file, lambda d, f: os.utime(f))
    case('utime/given', with_file,
         lambda d, f: (os.utime(f, (1000000000, 1000000000)), int(os.stat(f).st_mtime))[1])
    return cases


def _unlinked_read(f):
    fd = os.open(f, os.O_RDONLY)
    try:
        os.unlink(f)
        return os.read(fd, 10)
    finally:
        os.close(fd)


def _ftrunc(f):
    fd = os.open(f, os.O_RDWR)
    try:
        os.ftruncate(fd, 70000)
        a = os.fstat(fd).st_size
        os.ftruncate(fd, 3)
        return (a, os.pread(fd, 10, 0))
    finally:
        os.close(fd)


def _ftrunc_ro(f):
    fd = os.open(f, os.O_RDONLY)
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _bind(p):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(p)
        return ftype(p)
    finally:
        s.close()


if __name__ == '__main__':
    json.dump(main(), sys.stdout, indent=0, sort_keys=True)
    print()
