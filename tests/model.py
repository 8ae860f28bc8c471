#!/usr/bin/env python3
"""model.py: randomized model test of a read-write wtgfs mount.

  model.py --wtgfs BIN --image WIM[:INDEX] --work DIR [--seed N] [--ops N]
           [--cycles N] [--check-every N] [--verbose]
  model.py --selftest --work DIR [...]

Makes a delta over the image with 'wtgfs init', mounts it read-write and
copies a few base directories (Windows/System32/config with the registry
hives, Users/Public/Downloads with named streams, Program Files
(x86)/Common Files with a file hard-linked from elsewhere) into a plain
directory, the model, next to a fresh directory made on both sides.  Then
it applies the same random operations to the mount and to the model:
create, write (inside base files, at chunk edges, sparse past the end),
truncate, rename (over existing names, across directories), unlink
(also of an open file, read on through its descriptor), link, mkdir, rmdir,
symlink, user.* xattrs (named streams), fsync, utimens, chown (which
succeeds and changes nothing on the mount), chmod (whose owner write bit
must come back as the mount's read-only attribute), mkfifo (and renames
and unlinks of fifos), writes through descriptors held across other
operations, and layers: 'wtgfs snapshot' of the mount (the model keeps a
copy of itself under the snapshot's name, and a read-only --at mount of
the snapshot must equal that copy) and 'wtgfs rollback' of the mount to a
snapshot or to a layer an earlier rollback kept (the model becomes the
copy; the mount must equal it at once, and a descriptor held across the
rollback must answer ESTALE).  Every operation must end the
same way on both sides: the same result or the same errno.

Some operations run on the mount only and check what only NTFS does: a
lookup with the name in another case reaches the same file, O_CREAT with
another case opens the existing file, mkdir with another case fails EEXIST,
and names Windows cannot hold fail EINVAL.

At the end of each cycle, 'wtgfs diff' of base..HEAD, of a layer a
rollback kept against a snapshot (two branches), and of two more versions
picked at random (snapshots, kept layers, HEAD, base) must each list what
a diff of the model's copies of those versions finds, and nothing that
did not change.

Every --check-every operations, and at the end of each cycle, the two
trees are compared: names (exact case), types, sizes, content, symlink
targets, link counts, hard-link groups, user.* xattrs, and the mtime of
files last given one with utime.  A cycle ends with 'wtgfs umount', 'wtgfs
verify' (must say clean), a new mount and another comparison.

New names are unique ignoring case, so the case-insensitive mount and the
case-sensitive model always agree on what a name means.  Not compared:
modes, owners, directory sizes and link counts, times other than the above,
and the target of a relative symlink that a rename has left pointing above
the root (NTFS cannot hold that; the mount may clamp the ..s).

--selftest runs the same operations on two plain directories (no wtgfs):
it tests the harness itself.

On a mismatch it prints the seed, cycle, operation number, the operation
and both outcomes, the operations that led there, and exits 1.  Exit 0 when
all cycles pass, 2 on usage errors.
"""
import argparse
import errno
import hashlib
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import traceback

CHUNK = 65536
MAX_SIZE = 6 << 20  # files do not grow past this (keeps compares fast)
FRESH = 'wtgmodel'
BASE_ROOTS = ['Windows/System32/config', 'Users/Public/Downloads',
              'Program Files (x86)/Common Files']
ROOTS = BASE_ROOTS + [FRESH]
STEMS = ['n', 'File ', 'é-ü ', 'data.', 'Ünï ', 'x_y-', '日本 ', 'Mixed Case ']
EXTS = ['', '.txt', '.dat', '.bin', '.reg', ' copy.log', '.LOG1']
XNAMES = ['user.s1', 'user.Zone.Identifier', 'user.Thumbnail.Cache', 'user.meta data',
          'user.x']
BAD_NAMES = ['a:b', 'x*y', 'q?', 'say"hi"', '<x', 'x>', 'p|q', 'back\\slash',
             'ctl\x01x', 'dot.', 'space ', 'CON', 'nul', 'Aux', 'PRN', 'COM1', 'lpt9']


class Mismatch(Exception):
    pass


def err_name(e):
    return errno.errorcode.get(e, str(e))


def attempt(fn):
    """('ok', value) or ('err', ERRNO-NAME)."""
    try:
        return ('ok', fn())
    except OSError as e:
        return ('err', err_name(e.errno))


def read_all(fd):
    out = []
    off = 0
    while True:
        b = os.pread(fd, 1 << 20, off)
        if not b:
            return b''.join(out)
        out.append(b)
        off += len(b)


def digest_fd(fd):
    h = hashlib.sha256()
    off = 0
    while True:
        b = os.pread(fd, 1 << 20, off)
        if not b:
            return off, h.hexdigest()[:16]
        h.update(b)
        off += len(b)


def digest_path(p):
    fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        return digest_fd(fd)
    finally:
        os.close(fd)


def swap_ascii_case(s):
    return ''.join(c.swapcase() if c.isascii() else c for c in s)


def is_mounted(path):
    """Whether @path is a mount point (also a bind mount on the same device)."""
    path = os.path.realpath(path)
    with open('/proc/self/mountinfo') as f:
        for line in f:
            mp = line.split()[4]
            mp = mp.replace('\\040', ' ').replace('\\011', '\t').replace('\\012', '\n')
            mp = mp.replace('\\134', '\\')
            if mp == path:
                return True
    return False


def escapes(rel, target):
    """Whether a relative symlink target climbs above the mount's root from
    the link at @rel: NTFS cannot say that, so the mount may clamp the ..s
    (Windows resolves .. at a volume's root to the root)."""
    t = os.path.normpath(os.path.join(os.path.dirname(rel), target))
    return not os.path.isabs(target) and (t == '..' or t.startswith('../'))


def short(v, n=120):
    s = repr(v)
    return s if len(s) <= n else s[:n] + '...'


class Model:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = os.path.abspath(args.work)
        self.selftest = args.selftest
        self.mnt = os.path.join(self.work, 'plain' if self.selftest else 'mnt')
        self.model = os.path.join(self.work, 'model')
        self.delta = os.path.join(self.work, 'model.delta')
        self.daemon_log = os.path.join(self.work, 'daemon.log')
        self.proc = None
        self.roots = (self.mnt, self.model)
        self.counter = 0
        self.used = set()         # case-folded names ever handed out
        self.nlink_offset = {}    # model ino -> links the mount has outside the roots
        self.mtimes = {}          # model ino -> mtime_ns set by utime
        self.held = []            # [(fd on mount, fd on model, rel)]
        self.trace = []
        self.cycle = 0
        self.opno = 0
        self.block = self.rng.randbytes(4096)
        self.stats = {}           # operation -> count
        self.op_started = None    # when the running operation began (watchdog)
        self.hung = None          # the operation the watchdog gave up on
        self.errs = {}            # operation -> count that failed (on both sides)
        self.snaps = {}           # snapshot or kept layer -> (copy, {rel: (nlink off, mtime)})
        self.nsnaps = 0
        self.ncopies = 0
        self.base_state = {}      # the model's roots as the base has them (diff check)
        self.diffs = 0            # entries of the last 'wtgfs diff base HEAD'
        self.snap_states = {}     # snapshot or kept layer -> model_state() of its copy
        self.pair_diffs = []      # the version pairs diffed at the end of the last cycle

    # ------------------------------------------------------------ mounting
    def run_wtgfs(self, *argv, check=True):
        p = subprocess.run([self.args.wtgfs] + list(argv), capture_output=True, text=True)
        if check and p.returncode != 0:
            raise Mismatch('wtgfs %s exited %d: %s%s' % (' '.join(argv), p.returncode,
                                                         p.stdout, p.stderr))
        return p

    def mount(self):
        os.makedirs(self.mnt, exist_ok=True)
        log = open(self.daemon_log, 'a')
        argv = [self.args.wtgfs, 'mount', '-f', self.delta, self.mnt]
        if self.args.threads:
            argv += ['-o', 'threads=%d' % self.args.threads]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.time() + 60
        while not is_mounted(self.mnt):
            if self.proc.poll() is not None:
                raise Mismatch('the mount exited early (%d): %s' %
                               (self.proc.returncode, self.daemon_tail()))
            if time.time() > deadline:
                raise Mismatch('the mount did not come up in 60 s')
            time.sleep(0.05)

    def umount(self):
        for _ in range(50):
            p = self.run_wtgfs('umount', self.mnt, check=False)
            if p.returncode == 0:
                break
            if 'busy' not in p.stderr:
                raise Mismatch('wtgfs umount failed: %s' % p.stderr.strip())
            time.sleep(0.1)
        else:
            raise Mismatch('wtgfs umount: still busy after 5 s')
        try:
            rc = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            raise Mismatch('the daemon did not exit within 120 s of the unmount')
        self.proc = None
        if rc != 0:
            raise Mismatch('the daemon exited with %d: %s' % (rc, self.daemon_tail()))

    def daemon_tail(self):
        try:
            with open(self.daemon_log, errors='replace') as f:
                return ''.join(f.readlines()[-20:])
        except OSError:
            return ''

    def cleanup(self):
        for fa, fb, _ in self.held:
            for fd in (fa, fb):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.held = []
        if self.selftest:
            return
        if is_mounted(self.mnt) and self.proc is not None and self.proc.poll() is None:
            self.run_wtgfs('umount', self.mnt, check=False)
        if is_mounted(self.mnt):
            subprocess.run(['umount', '-l', self.mnt], capture_output=True)
            if is_mounted(self.mnt):
                subprocess.run(['fusermount3', '-uz', self.mnt], capture_output=True)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def verify(self):
        p = self.run_wtgfs('verify', self.delta, check=False)
        if p.returncode != 0 or 'clean' not in p.stdout:
            raise Mismatch('wtgfs verify is not clean (exit %d):\n%s%s' %
                           (p.returncode, p.stdout, p.stderr))

    # --------------------------------------------------------------- setup
    def setup(self):
        if is_mounted(self.mnt):
            raise Mismatch("'%s' is mounted: unmount it first" % self.mnt)
        # a delta's SQLite companions too: a stale -wal would be replayed into
        # the new delta made under the same name
        for p in (self.model, self.delta, self.delta + '-wal', self.delta + '-shm',
                  self.delta + '-journal'):
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif os.path.exists(p):
                os.unlink(p)
        os.makedirs(self.model)
        if self.selftest:
            if os.path.isdir(self.mnt):
                shutil.rmtree(self.mnt)
            self.fake_base(self.mnt)
        else:
            self.run_wtgfs('init', self.delta, self.args.image)
            self.mount()
        # copy the base roots into the model, keeping hard-link groups
        for r in BASE_ROOTS:
            self.copy_root(r)
        self.base_state = self.model_state()
        for side in (0, 1):
            os.mkdir(os.path.join(self.roots[side], FRESH))

    def fake_base(self, top):
        """--selftest: a small base shaped like the image's."""
        rng = random.Random(1)
        for r in BASE_ROOTS:
            d = os.path.join(top, r)
            os.makedirs(d)
            for i, n in enumerate(['SYSTEM', 'SOFTWARE', 'hosts', 'task.pdf']):
                with open(os.path.join(d, n), 'wb') as f:
                    f.write(rng.randbytes(rng.choice([0, 100, CHUNK, 3 * CHUNK + 1, 200000])))
                if i == 3:
                    os.setxattr(os.path.join(d, n), 'user.Zone.Identifier', b'[ZoneTransfer]')
            os.link(os.path.join(d, 'hosts'), os.path.join(d, 'hosts2'))
        os.makedirs(os.path.join(top, 'outside'))
        os.link(os.path.join(top, BASE_ROOTS[2], 'SYSTEM'), os.path.join(top, 'outside', 'l'))

    def copy_root(self, r):
        src = os.path.join(self.mnt, r)
        dst = os.path.join(self.model, r)
        os.makedirs(dst)
        groups = {}   # mount ino -> (model path, mount nlink)
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            rel = os.path.relpath(dirpath, src)
            ddst = os.path.normpath(os.path.join(dst, rel))
            for d in dirnames:
                os.mkdir(os.path.join(ddst, d))
                self.copy_xattrs(os.path.join(dirpath, d), os.path.join(ddst, d))
            for n in sorted(filenames):
                s = os.path.join(dirpath, n)
                t = os.path.join(ddst, n)
                st = os.lstat(s)
                self.used.add(n.casefold())
                if stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(s), t)
                    continue
                if st.st_ino in groups:
                    os.link(groups[st.st_ino][0], t)
                    continue
                shutil.copyfile(s, t, follow_symlinks=False)
                self.copy_xattrs(s, t)
                groups[st.st_ino] = (t, st.st_nlink)
            for d in dirnames:
                self.used.add(d.casefold())
        for t, nlink in groups.values():
            mst = os.lstat(t)
            if nlink != mst.st_nlink:
                self.nlink_offset[mst.st_ino] = nlink - mst.st_nlink

    @staticmethod
    def copy_xattrs(s, t):
        for n in os.listxattr(s, follow_symlinks=False):
            if n.startswith('user.'):
                os.setxattr(t, n, os.getxattr(s, n, follow_symlinks=False),
                            follow_symlinks=False)

    # -------------------------------------------------------------- layers
    def file_facts(self, top, offsets, mtimes):
        """{rel: (nlink offset, utime mtime)} of the files under @top."""
        out = {}
        for dirpath, _, filenames in os.walk(top):
            for n in filenames:
                full = os.path.join(dirpath, n)
                st = os.lstat(full)
                f = (offsets.get(st.st_ino), mtimes.get(st.st_ino))
                if f != (None, None):
                    out[os.path.relpath(full, top)] = f
        return out

    def copy_tree(self, src, dst):
        """@src to @dst with hard links, symlinks, xattrs and mtimes."""
        groups = {}
        os.makedirs(dst)
        stack = ['.']
        while stack:
            rel = stack.pop()
            sdir, ddir = os.path.join(src, rel), os.path.normpath(os.path.join(dst, rel))
            self.copy_xattrs(sdir, ddir)
            for n in sorted(os.listdir(sdir)):
                s, t = os.path.join(sdir, n), os.path.join(ddir, n)
                st = os.lstat(s)
                if stat.S_ISDIR(st.st_mode):
                    os.mkdir(t)
                    stack.append(os.path.join(rel, n))
                elif st.st_ino in groups:  # symlinks have hard links too
                    os.link(groups[st.st_ino], t, follow_symlinks=False)
                else:
                    if stat.S_ISLNK(st.st_mode):
                        os.symlink(os.readlink(s), t)
                    elif stat.S_ISFIFO(st.st_mode):
                        os.mkfifo(t, stat.S_IMODE(st.st_mode))
                    else:
                        shutil.copyfile(s, t, follow_symlinks=False)
                        self.copy_xattrs(s, t)
                        os.chmod(t, stat.S_IMODE(st.st_mode))
                        os.utime(t, ns=(st.st_atime_ns, st.st_mtime_ns))
                    groups[st.st_ino] = t

    def adopt(self, top, facts):
        """The ino-keyed maps for the files under @top from @facts."""
        offsets, mtimes = {}, {}
        for rel, (off, mt) in facts.items():
            ino = os.lstat(os.path.join(top, rel)).st_ino
            if off is not None:
                offsets[ino] = off
            if mt is not None:
                mtimes[ino] = mt
        return offsets, mtimes

    def keep(self, name):
        self.ncopies += 1
        copy = os.path.join(self.work, 'snap-%d' % self.ncopies)
        if os.path.exists(copy):
            shutil.rmtree(copy)
        self.copy_tree(self.model, copy)
        self.snaps[name] = (copy, self.file_facts(self.model, self.nlink_offset, self.mtimes))
        self.snap_states[name] = self.model_state(copy)

    def check_at(self, name):
        """A read-only mount of snapshot @name equals the model's copy."""
        copy, facts = self.snaps[name]
        at = os.path.join(self.work, 'at')
        os.makedirs(at, exist_ok=True)
        log = open(self.daemon_log, 'a')
        proc = subprocess.Popen([self.args.wtgfs, 'mount', '-f', self.delta, at, '--at', name],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.time() + 60
        while not is_mounted(at):
            if proc.poll() is not None or time.time() > deadline:
                raise Mismatch('the --at %s mount did not come up: %s' % (name,
                                                                          self.daemon_tail()))
            time.sleep(0.05)
        saved = (self.roots, self.nlink_offset, self.mtimes)
        try:
            self.roots = (at, copy)
            self.nlink_offset, self.mtimes = self.adopt(copy, facts)
            self.compare('between --at %s and its copy' % name)
        finally:
            self.roots, self.nlink_offset, self.mtimes = saved
            self.run_wtgfs('umount', at, check=False)
            if proc.wait(timeout=120) != 0:
                raise Mismatch('the --at daemon exited with %d' % proc.returncode)

    def op_snapshot(self, dirs, files, links):
        if self.selftest:
            return
        self.nsnaps += 1
        name = 's%d.%d' % (self.cycle, self.nsnaps)
        self.trace.append('%s.%s snapshot %s' % (self.cycle, self.opno, name))
        if self.args.verbose:
            print(self.trace[-1])
        self.stats['snapshot'] = self.stats.get('snapshot', 0) + 1
        self.run_wtgfs('snapshot', self.mnt, name, '-m', 'model op %s' % self.opno)
        self.keep(name)
        if self.rng.random() < 0.3:
            self.check_at(name)

    def op_rollback(self, dirs, files, links):
        if self.selftest or not self.snaps:
            return
        name = self.rng.choice(sorted(self.snaps))
        self.trace.append('%s.%s rollback %s' % (self.cycle, self.opno, name))
        if self.args.verbose:
            print(self.trace[-1])
        self.stats['rollback'] = self.stats.get('rollback', 0) + 1
        held = self.held
        p = self.run_wtgfs('rollback', self.mnt, name)
        # descriptors from before: stale on the mount, then closed on both sides
        for fa, fb, rel in held:
            # a write always reaches the daemon; a read of an empty file
            # need not (the kernel knows there is nothing to read)
            for op, what in ((lambda: os.pwrite(fa, b'x', 0), 'writes'),
                             (lambda: os.pread(fa, 1, 0),
                              'reads')):
                try:
                    got = op()
                    if what == 'writes' or got:
                        raise Mismatch('a descriptor of %r held across a rollback still %s' %
                                       (rel, what))
                except OSError as e:
                    if e.errno != errno.ESTALE:
                        raise Mismatch('a descriptor of %r held across a rollback: %s, '
                                       'expected ESTALE' % (rel, err_name(e.errno)))
            os.close(fa)
            os.close(fb)
        self.held = []
        kept = None
        if "kept as '" in p.stdout:
            kept = p.stdout.split("kept as '")[1].split("'")[0]
            self.keep(kept)  # the model as it was: what the kept layer holds
        copy, facts = self.snaps[name]
        if name.startswith('abandoned-'):
            del self.snaps[name]  # it is HEAD again, not kept any more
            del self.snap_states[name]
        shutil.rmtree(self.model)
        self.copy_tree(copy, self.model)
        self.nlink_offset, self.mtimes = self.adopt(self.model, facts)
        self.compare('right after rollback to %s' % name)

    # ------------------------------------------------------------- choices
    def listing(self):
        """What the model holds now: (dirs incl. roots, files, symlinks);
        fifos go to self.fifos (no other operation opens them)."""
        dirs, files, links = [], [], []
        self.fifos = []
        inos = set()
        for r in ROOTS:
            dirs.append(r)
            stack = [r]
            while stack:
                d = stack.pop()
                for n in sorted(os.listdir(os.path.join(self.model, d))):
                    rel = d + '/' + n
                    st = os.lstat(os.path.join(self.model, rel))
                    inos.add(st.st_ino)
                    if stat.S_ISDIR(st.st_mode):
                        dirs.append(rel)
                        stack.append(rel)
                    elif stat.S_ISLNK(st.st_mode):
                        links.append(rel)
                    elif stat.S_ISREG(st.st_mode):
                        files.append(rel)
                    else:
                        self.fifos.append(rel)
        # an inode number gone from the model may come back for a new file
        for d in (self.mtimes, self.nlink_offset):
            for ino in [i for i in d if i not in inos]:
                del d[ino]
        return dirs, files, links

    def newname(self):
        self.counter += 1
        name = self.rng.choice(STEMS) + str(self.counter) + self.rng.choice(EXTS)
        assert name.casefold() not in self.used, name
        self.used.add(name.casefold())
        return name

    def data(self, n):
        k = self.rng.random()
        if k < 0.35:
            return self.rng.randbytes(n)
        if k < 0.5:
            return bytes([self.rng.randrange(256)]) * n
        if k < 0.6:
            return bytes(n)
        reps = self.block * (n // len(self.block) + 1)
        return reps[:n]

    def pick_offset(self, size):
        r = self.rng
        c = r.random()
        if c < 0.12:
            off = 0
        elif c < 0.35:
            off = r.randrange(size) if size else 0
        elif c < 0.5:
            off = size
        elif c < 0.65:
            off = size + r.randrange(1, 3 * CHUNK)
        elif c < 0.92:
            k = r.randrange(0, size // CHUNK + 2)
            off = max(0, k * CHUNK + r.choice([-1, 0, 0, 1, -100, 7]))
        else:
            off = r.randrange(0, 4 << 20)
        return min(off, MAX_SIZE - 1)

    def pick_len(self):
        r = self.rng
        return r.choice([1, r.randrange(1, 200), r.randrange(1, 70000), CHUNK, 2 * CHUNK + 3,
                         r.randrange(1, 4096)])

    def pick_size(self, size):
        r = self.rng
        k = r.randrange(0, size // CHUNK + 2)
        return min(MAX_SIZE, max(0, r.choice([
            0, size - 1, size + 1, size // 2, k * CHUNK, k * CHUNK - 1, k * CHUNK + 1,
            k * CHUNK + r.randrange(1, CHUNK), size + r.randrange(1, 300000)])))

    def model_ino(self, rel):
        try:
            return os.lstat(os.path.join(self.model, rel)).st_ino
        except OSError:
            return None

    def model_size(self, rel):
        try:
            return os.lstat(os.path.join(self.model, rel)).st_size
        except OSError:
            return 0

    # ------------------------------------------------------ doing and checking
    def both(self, desc, fn, same_errors=()):
        """Runs fn(side) on the mount (side 0) then the model (side 1)."""
        self.trace.append(desc)
        self.stats[desc.split()[0]] = self.stats.get(desc.split()[0], 0) + 1
        if self.args.verbose:
            print('%s.%s %s' % (self.cycle, self.opno, desc))
        self.op_started = time.time()
        ra = attempt(lambda: fn(0))
        self.op_started = None
        if self.hung:
            raise Mismatch('%s: no answer from the mount in %d s (the daemon was killed)' %
                           (desc, self.args.timeout))
        rb = attempt(lambda: fn(1))
        if rb[0] == 'err':
            self.errs[desc.split()[0]] = self.errs.get(desc.split()[0], 0) + 1
        if ra != rb:
            if ra[0] == rb[0] == 'err' and ra[1] in same_errors and rb[1] in same_errors:
                return rb
            raise Mismatch('%s\n  mount: %s\n  model: %s' % (desc, short(ra, 400),
                                                             short(rb, 400)))
        return rb

    def mount_only(self, desc, fn):
        self.trace.append(desc)
        self.stats[desc.split()[0]] = self.stats.get(desc.split()[0], 0) + 1
        if self.args.verbose:
            print('%s.%s %s' % (self.cycle, self.opno, desc))
        self.op_started = time.time()
        try:
            msg = fn()
        finally:
            self.op_started = None
        if self.hung:
            raise Mismatch('%s: no answer from the mount in %d s (the daemon was killed)' %
                           (desc, self.args.timeout))
        if msg:
            raise Mismatch('%s\n  %s' % (desc, msg))

    def p(self, side, rel):
        return os.path.join(self.roots[side], rel)

    def forget_mtime(self, rel=None, ino=None):
        if ino is None:
            ino = self.model_ino(rel)
        self.mtimes.pop(ino, None)

    def pick_xname(self, rel):
        """Mostly a user.* name the model's @rel has."""
        try:
            have = sorted(n for n in os.listxattr(self.p(1, rel), follow_symlinks=False)
                          if n.startswith('user.'))
        except OSError:
            have = []
        if have and self.rng.random() < 0.75:
            return self.rng.choice(have)
        return self.rng.choice(XNAMES)

    # ----------------------------------------------------------------- ops
    def op_create(self, dirs, files, links):
        r = self.rng
        if r.random() < 0.1 and files:
            rel = r.choice(files)  # exists: EEXIST
        else:
            rel = r.choice(dirs) + '/' + self.newname()
        data = self.data(r.choice([0, 1, r.randrange(1, 5000), r.randrange(1, 200000),
                                   CHUNK, 2 * CHUNK]))

        def f(side):
            fd = os.open(self.p(side, rel), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            try:
                return os.write(fd, data)
            finally:
                os.close(fd)
        self.both('create %r %d bytes' % (rel, len(data)), f)

    def op_write(self, dirs, files, links):
        if not files:
            return
        rel = self.rng.choice(files)
        size = self.model_size(rel)
        off = self.pick_offset(size)
        data = self.data(min(self.pick_len(), MAX_SIZE - off))
        self.forget_mtime(rel)

        def f(side):
            fd = os.open(self.p(side, rel), os.O_WRONLY)
            try:
                return os.pwrite(fd, data, off)
            finally:
                os.close(fd)
        self.both('write %r at %d len %d (size %d)' % (rel, off, len(data), size), f)

    def op_truncate(self, dirs, files, links):
        if not files:
            return
        rel = self.rng.choice(files)
        size = self.model_size(rel)
        n = self.pick_size(size)
        self.forget_mtime(rel)
        self.both('truncate %r %d -> %d' % (rel, size, n),
                  lambda side: os.truncate(self.p(side, rel), n))

    def op_read(self, dirs, files, links):
        if not files:
            return
        rel = self.rng.choice(files)
        size = self.model_size(rel)
        off = self.pick_offset(size)
        n = self.pick_len()

        def f(side):
            fd = os.open(self.p(side, rel), os.O_RDONLY)
            try:
                return hashlib.sha256(os.pread(fd, n, off)).hexdigest()[:16]
            finally:
                os.close(fd)
        self.both('read %r at %d len %d (size %d)' % (rel, off, n, size), f)

    def op_rename(self, dirs, files, links):
        r = self.rng
        entries = files + links + [d for d in dirs if d not in ROOTS]
        if not entries:
            return
        src = r.choice(entries)
        c = r.random()
        if c < 0.55:
            dst = r.choice(dirs) + '/' + self.newname()
        elif c < 0.8:
            same = [e for e in entries if (e in dirs) == (src in dirs)]
            dst = r.choice(same)
        else:
            dst = r.choice(entries + dirs)

        # rename of a directory over a non-empty one: POSIX allows either errno
        self.both('rename %r -> %r' % (src, dst),
                  lambda side: os.rename(self.p(side, src), self.p(side, dst)),
                  same_errors=('EEXIST', 'ENOTEMPTY'))

    def op_unlink(self, dirs, files, links):
        r = self.rng
        cand = files + links
        if r.random() < 0.08:
            cand = [d for d in dirs if d not in ROOTS] or cand  # EISDIR
        if not cand:
            return
        rel = r.choice(cand)
        self.both('unlink %r' % rel, lambda side: os.unlink(self.p(side, rel)))

    def op_unlink_open(self, dirs, files, links):
        if not files:
            return
        rel = self.rng.choice(files)
        fds = []
        try:
            for side in (0, 1):
                fds.append(os.open(self.p(side, rel), os.O_RDONLY))
            before = [digest_fd(fd) for fd in fds]
            self.both('unlink-open %r' % rel, lambda side: os.unlink(self.p(side, rel)))
            after = [digest_fd(fd) for fd in fds]
            if before[0] != after[0] or after[0] != after[1]:
                raise Mismatch('unlink-open %r: read through the open descriptor: '
                               'mount before %s after %s, model %s' %
                               (rel, before[0], after[0], after[1]))
        finally:
            for fd in fds:
                os.close(fd)

    def op_link(self, dirs, files, links):
        r = self.rng
        cand = files + links
        if r.random() < 0.08:
            cand = [d for d in dirs if d not in ROOTS] or cand  # EPERM
        if not cand:
            return
        src = r.choice(cand)
        if r.random() < 0.1:
            dst = r.choice(files + links + dirs)  # EEXIST
        else:
            dst = r.choice(dirs) + '/' + self.newname()
        self.both('link %r -> %r' % (src, dst),
                  lambda side: os.link(self.p(side, src), self.p(side, dst),
                                       follow_symlinks=False))

    def op_mkdir(self, dirs, files, links):
        r = self.rng
        if r.random() < 0.1:
            rel = r.choice(files + links + dirs)
        else:
            rel = r.choice(dirs) + '/' + self.newname()
        self.both('mkdir %r' % rel, lambda side: os.mkdir(self.p(side, rel)))

    def op_rmdir(self, dirs, files, links):
        r = self.rng
        cand = [d for d in dirs if d not in ROOTS]
        if r.random() < 0.1 and files:
            cand = files  # ENOTDIR
        if not cand:
            return
        rel = r.choice(cand)
        self.both('rmdir %r' % rel, lambda side: os.rmdir(self.p(side, rel)))

    def op_symlink(self, dirs, files, links):
        r = self.rng
        d = r.choice(dirs)
        others = files + links + dirs
        c = r.random()
        if c < 0.4 and others:
            t = os.path.relpath(r.choice(others), d)
        elif c < 0.7:
            t = 'missing ' + str(r.randrange(1000))
        elif c < 0.85:
            t = '../' + r.choice(['SYSTEM', 'x/y/z', 'Windows', 'a b.txt'])
        else:
            t = 'sub dir/' + r.choice(['SOFTWARE', 'é.txt', 'x'])
        rel = d + '/' + self.newname()
        if r.random() < 0.05 and others:
            rel = r.choice(others)  # EEXIST
        self.both('symlink %r -> %r' % (rel, t), lambda side: os.symlink(t, self.p(side, rel)))

    def op_readlink(self, dirs, files, links):
        if not links:
            return
        rel = self.rng.choice(links)
        target = os.readlink(self.p(1, rel))
        if escapes(rel, target):  # may read back clamped (see escapes())
            self.both('readlink %r' % rel, lambda side: os.path.islink(self.p(side, rel)))
        else:
            self.both('readlink %r' % rel, lambda side: os.readlink(self.p(side, rel)))

    def op_setxattr(self, dirs, files, links):
        r = self.rng
        cand = files if r.random() < 0.85 else dirs
        if r.random() < 0.03:
            cand = links or cand  # EPERM on symlinks
        if not cand:
            return
        rel = r.choice(cand)
        name = r.choice(XNAMES)
        value = self.data(r.choice([0, 1, r.randrange(1, 300)]))
        flags = r.choice([0, 0, 0, os.XATTR_CREATE, os.XATTR_REPLACE])
        self.forget_mtime(rel)  # a named stream written may count as a write
        self.both('setxattr %r %s %d bytes flags %d' % (rel, name, len(value), flags),
                  lambda side: os.setxattr(self.p(side, rel), name, value, flags,
                                           follow_symlinks=False))

    def op_getxattr(self, dirs, files, links):
        r = self.rng
        cand = files if r.random() < 0.8 else dirs
        if not cand:
            return
        rel = r.choice(cand)
        name = self.pick_xname(rel)
        self.both('getxattr %r %s' % (rel, name),
                  lambda side: os.getxattr(self.p(side, rel), name, follow_symlinks=False))

    def op_removexattr(self, dirs, files, links):
        r = self.rng
        cand = files if r.random() < 0.8 else dirs
        if not cand:
            return
        rel = r.choice(cand)
        name = self.pick_xname(rel)
        self.forget_mtime(rel)
        self.both('removexattr %r %s' % (rel, name),
                  lambda side: os.removexattr(self.p(side, rel), name,
                                              follow_symlinks=False))

    def op_fsync(self, dirs, files, links):
        r = self.rng
        rel = r.choice(files) if files and r.random() < 0.75 else r.choice(dirs)

        def f(side):
            fd = os.open(self.p(side, rel), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.both('fsync %r' % rel, f)

    def op_utime(self, dirs, files, links):
        if not files:
            return
        rel = self.rng.choice(files)
        # 100 ns units, after 1980 and before 2100
        ns = self.rng.randrange(315532800 * 10**7, 4102444800 * 10**7) * 100
        ino = self.model_ino(rel)
        res = self.both('utime %r %d' % (rel, ns),
                        lambda side: os.utime(self.p(side, rel), ns=(ns, ns)))
        if res[0] == 'ok':
            self.mtimes[ino] = ns
            got = os.stat(self.p(0, rel)).st_mtime_ns
            if got != ns:
                raise Mismatch('utime %r: mtime on the mount is %d, set %d' % (rel, got, ns))

    def op_hold(self, dirs, files, links):
        r = self.rng
        if len(self.held) >= 4:
            return self.op_fdclose(dirs, files, links)
        if files and r.random() < 0.7:
            rel, flags = r.choice(files), os.O_RDWR
        else:
            rel, flags = r.choice(dirs) + '/' + self.newname(), os.O_RDWR | os.O_CREAT | os.O_EXCL
        fds = []
        res = self.both('hold-open %r' % rel,
                        lambda side: fds.append(os.open(self.p(side, rel), flags, 0o644)))
        if res[0] == 'ok':
            self.held.append((fds[0], fds[1], rel))

    def op_fdwrite(self, dirs, files, links):
        if not self.held:
            return self.op_hold(dirs, files, links)
        fa, fb, rel = self.rng.choice(self.held)
        size = os.fstat(fb).st_size
        self.forget_mtime(ino=os.fstat(fb).st_ino)
        if self.rng.random() < 0.25:
            n = self.pick_size(size)
            self.both('fd-truncate (%r) %d -> %d' % (rel, size, n),
                      lambda side: os.ftruncate((fa, fb)[side], n))
            return
        off = self.pick_offset(size)
        data = self.data(min(self.pick_len(), MAX_SIZE - off))
        self.both('fd-write (%r) at %d len %d (size %d)' % (rel, off, len(data), size),
                  lambda side: os.pwrite((fa, fb)[side], data, off))

    def op_fdread(self, dirs, files, links):
        if not self.held:
            return
        fa, fb, rel = self.rng.choice(self.held)
        self.both('fd-read (%r)' % rel,
                  lambda side: (os.fstat((fa, fb)[side]).st_size, digest_fd((fa, fb)[side])))

    def op_fdclose(self, dirs, files, links):
        if not self.held:
            return
        i = self.rng.randrange(len(self.held))
        fa, fb, rel = self.held.pop(i)
        self.both('fd-close (%r)' % rel, lambda side: os.close((fa, fb)[side]))

    # --- mount only: what NTFS names do
    def op_case(self, dirs, files, links):
        if self.selftest or not files:
            return
        r = self.rng
        rel = r.choice(files)
        alt = swap_ascii_case(rel)
        if alt == rel:
            return
        exact, other = self.p(0, rel), self.p(0, alt)
        c = r.random()

        def check():
            try:
                se, so = os.lstat(exact), os.lstat(other)
            except OSError as e:
                return 'lstat: %s (%s)' % (e.strerror, e.filename)
            if se.st_ino != so.st_ino:
                return '%r is inode %d, %r is inode %d' % (rel, se.st_ino, alt, so.st_ino)
            if c < 0.5:
                a, b = digest_path(exact), digest_path(other)
                if a != b:
                    return 'content: %s vs %s' % (a, b)
            elif c < 0.8:
                fd = os.open(other, os.O_CREAT | os.O_WRONLY, 0o644)
                os.close(fd)
                names = os.listdir(os.path.dirname(exact))
                base = os.path.basename(alt)
                if base != os.path.basename(rel) and base in names:
                    return 'O_CREAT of %r made a new name beside %r' % (base, rel)
                if digest_path(exact) != digest_path(self.p(1, rel)):
                    return 'O_CREAT of another case changed the file'
            else:
                try:
                    os.mkdir(other)
                    return 'mkdir %r succeeded although %r exists' % (alt, rel)
                except OSError as e:
                    if e.errno != errno.EEXIST:
                        return 'mkdir %r: %s, expected EEXIST' % (alt, err_name(e.errno))
            return None
        self.mount_only('case %r as %r' % (rel, alt), check)

    def op_badname(self, dirs, files, links):
        if self.selftest:
            return
        r = self.rng
        d = r.choice(dirs)
        bad = r.choice(BAD_NAMES)
        rel = d + '/' + bad
        how = r.choice(['create', 'mkdir', 'symlink', 'rename', 'link'])
        if how in ('rename', 'link') and not files:
            how = 'create'
        src = r.choice(files) if files else None

        def check():
            try:
                if how == 'create':
                    os.close(os.open(self.p(0, rel), os.O_CREAT | os.O_WRONLY, 0o644))
                elif how == 'mkdir':
                    os.mkdir(self.p(0, rel))
                elif how == 'symlink':
                    os.symlink('x', self.p(0, rel))
                elif how == 'rename':
                    os.rename(self.p(0, src), self.p(0, rel))
                else:
                    os.link(self.p(0, src), self.p(0, rel))
            except OSError as e:
                if e.errno != errno.EINVAL:
                    return '%s: %s, expected EINVAL' % (how, err_name(e.errno))
                return None
            return '%s of %r succeeded' % (how, bad)
        self.mount_only('badname %s %r' % (how, rel), check)

    def op_chown(self, dirs, files, links):
        r = self.rng
        rel = r.choice(files + dirs)
        uid, gid = r.choice([(1000, 1000), (0, 0), (4242, -1), (-1, 65534)])
        self.both('chown %r %d:%d' % (rel, uid, gid),
                  lambda side: os.chown(self.p(side, rel), uid, gid))

    def op_chmod(self, dirs, files, links):
        if not files:
            return
        r = self.rng
        rel = r.choice(files)
        mode = r.choice([0o644, 0o444, 0o600, 0o400, 0o755, 0o555, 0o200, 0o000])
        self.both('chmod %r %o' % (rel, mode), lambda side: os.chmod(self.p(side, rel), mode))

        def check():
            got = os.lstat(self.p(0, rel)).st_mode
            if (got & 0o200) != (mode & 0o200):
                return 'mode %o on the mount after chmod %o: the owner write bit differs' % (
                    got & 0o7777, mode)
            return None
        self.mount_only('chmod-check %r' % rel, check)

    def op_fifo(self, dirs, files, links):
        r = self.rng
        c = r.random()
        fifos = getattr(self, 'fifos', [])
        if c < 0.6 or not fifos:
            rel = r.choice(dirs) + '/' + self.newname()
            if r.random() < 0.1 and files:
                rel = r.choice(files)  # EEXIST
            self.both('mkfifo %r' % rel, lambda side: os.mkfifo(self.p(side, rel)))
        elif c < 0.8:
            src, dst = r.choice(fifos), r.choice(dirs) + '/' + self.newname()
            self.both('rename-fifo %r -> %r' % (src, dst),
                      lambda side: os.rename(self.p(side, src), self.p(side, dst)))
        else:
            rel = r.choice(fifos)
            self.both('unlink-fifo %r' % rel, lambda side: os.unlink(self.p(side, rel)))

    OPS = [('create', 10), ('write', 16), ('truncate', 8), ('read', 5), ('rename', 10),
           ('unlink', 5), ('unlink_open', 3), ('link', 5), ('mkdir', 5), ('rmdir', 4),
           ('symlink', 4), ('readlink', 2), ('setxattr', 5), ('getxattr', 3),
           ('removexattr', 2), ('fsync', 3), ('utime', 3), ('hold', 2), ('fdwrite', 5),
           ('fdread', 2), ('fdclose', 2), ('case', 4), ('badname', 2), ('chown', 2),
           ('chmod', 3), ('fifo', 2), ('snapshot', 2), ('rollback', 2)]

    def watchdog(self):
        """Kills the daemon when one operation hangs: the kernel then fails
        the waiting call with ENOTCONN and the run ends with a report."""
        while True:
            time.sleep(1)
            t = self.op_started
            if t is not None and time.time() - t > self.args.timeout and self.proc:
                self.hung = True
                print('model.py: the last operation has waited %d s: killing the daemon '
                      '(pid %d)' % (self.args.timeout, self.proc.pid), flush=True)
                self.proc.kill()
                return

    # ------------------------------------------------------------ compare
    def scan(self, side):
        out = {}
        top = self.roots[side]
        for r in ROOTS:
            stack = [r]
            while stack:
                rel = stack.pop()
                full = os.path.join(top, rel)
                try:
                    st = os.lstat(full)
                except OSError as e:
                    out[rel] = ('lstat error', err_name(e.errno))
                    continue
                x = {}
                if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                    for n in sorted(os.listxattr(full, follow_symlinks=False)):
                        if n.startswith('user.'):
                            x[n] = hashlib.sha256(
                                os.getxattr(full, n, follow_symlinks=False)).hexdigest()[:16]
                if stat.S_ISDIR(st.st_mode):
                    names = sorted(os.listdir(full))
                    out[rel] = ('dir', names, x, st.st_ino)
                    stack.extend(rel + '/' + n for n in names)
                elif stat.S_ISLNK(st.st_mode):
                    out[rel] = ('symlink', os.readlink(full), st.st_nlink, st.st_ino)
                elif stat.S_ISREG(st.st_mode):
                    size, sha = digest_path(full)
                    if size != st.st_size:
                        sha = 'read %d bytes, st_size %d' % (size, st.st_size)
                    nlink = st.st_nlink
                    if side == 1:
                        nlink += self.nlink_offset.get(st.st_ino, 0)
                    out[rel] = ('file', st.st_size, sha, nlink, x, st.st_ino, st.st_mtime_ns)
                else:
                    out[rel] = ('other', stat.S_IFMT(st.st_mode))
        return out

    def compare(self, when):
        self.op_started = time.time()
        try:
            ta = self.scan(0)
        finally:
            self.op_started = None
        if self.hung:
            raise Mismatch('comparing the trees %s: no answer from the mount in %d s' %
                           (when, self.args.timeout))
        tb = self.scan(1)
        diffs = []
        for rel in sorted(set(ta) | set(tb)):
            a, b = ta.get(rel), tb.get(rel)
            if a is None or b is None:
                diffs.append('%s: only on the %s' % (rel, 'model' if a is None else 'mount'))
                continue
            if a[0] != b[0]:
                diffs.append('%s: %s on the mount, %s in the model' % (rel, a[0], b[0]))
                continue
            if a[0] == 'dir':
                if a[1] != b[1]:
                    diffs.append('%s: names differ: mount only %s, model only %s' %
                                 (rel, sorted(set(a[1]) - set(b[1])),
                                  sorted(set(b[1]) - set(a[1]))))
                if a[2] != b[2]:
                    diffs.append('%s: xattrs differ: %s vs %s' % (rel, a[2], b[2]))
            elif a[0] == 'symlink':
                if a[1] != b[1] and not escapes(rel, b[1]):
                    diffs.append('%s: symlink target %r vs %r' % (rel, a[1], b[1]))
                if a[2] != b[2]:
                    diffs.append('%s: nlink %d vs %d' % (rel, a[2], b[2]))
            elif a[0] == 'file':
                for i, what in ((1, 'size'), (2, 'content'), (3, 'nlink'), (4, 'xattrs')):
                    if a[i] != b[i]:
                        diffs.append('%s: %s %s on the mount, %s in the model' %
                                     (rel, what, a[i], b[i]))
                want = self.mtimes.get(b[5])
                if want is not None and a[6] != want:
                    diffs.append('%s: mtime %d, set to %d with utime' % (rel, a[6], want))
            elif a != b:
                diffs.append('%s: %s vs %s' % (rel, a, b))
        # hard-link groups: the same partition of non-directories by inode
        ga, gb = {}, {}
        for t, g in ((ta, ga), (tb, gb)):
            for rel, v in t.items():
                if v[0] in ('file', 'symlink'):
                    g.setdefault(v[-2] if v[0] == 'file' else v[3], set()).add(rel)
        pa = sorted(sorted(s) for s in ga.values() if len(s) > 1)
        pb = sorted(sorted(s) for s in gb.values() if len(s) > 1)
        if pa != pb:
            diffs.append('hard-link groups differ:\n    mount %s\n    model %s' % (pa, pb))
        if not self.selftest:
            try:
                sv = os.statvfs(self.mnt)
                if sv.f_blocks <= 0:
                    diffs.append('statfs shows no blocks')
            except OSError as e:
                diffs.append('statfs: %s' % e.strerror)
        if diffs:
            raise Mismatch('trees differ %s:\n  %s%s' % (
                when, '\n  '.join(diffs[:30]),
                '\n  ... %d more' % (len(diffs) - 30) if len(diffs) > 30 else ''))
        return len(ta)

    # ---------------------------------------------------------------- diff
    def model_state(self, tree=None):
        """Per path of the model's roots (of @tree, a copy of it, when
        given): what a diff can see of it."""
        state = {}
        tree = tree or self.model
        for r in ROOTS:
            top = os.path.join(tree, r)
            if not os.path.isdir(top):
                continue
            for dirpath, dirnames, filenames in os.walk(top):
                for n in dirnames + filenames:
                    p = os.path.join(dirpath, n)
                    rel = os.path.relpath(p, tree)
                    st = os.lstat(p)
                    if stat.S_ISLNK(st.st_mode):
                        state[rel] = ('l', os.readlink(p))
                        continue
                    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                        state[rel] = ('s', stat.S_IFMT(st.st_mode))  # never opened
                        continue
                    xs = tuple(sorted((x, os.getxattr(p, x, follow_symlinks=False))
                                      for x in os.listxattr(p, follow_symlinks=False)
                                      if x.startswith('user.')))
                    if stat.S_ISDIR(st.st_mode):
                        state[rel] = ('d', xs)
                    else:
                        state[rel] = ('f', st.st_size, digest_path(p), xs)
            state[r] = ('d', ())
        return state

    def check_pairs(self):
        """'wtgfs diff' between snapshots (and layers a rollback kept, so
        across branches, and HEAD) against a diff of the model's copies of
        them: a pair across a rollback's branch when there is one, and two
        more picked at random (from an rng of their own, so the operations
        of the next cycle stay those of the seed)."""
        if self.selftest:
            return
        rng = random.Random(self.args.seed * 1000 + self.cycle)
        names = sorted(self.snap_states)
        pairs = []
        kept = [n for n in names if n.startswith('abandoned-')]
        taken = [n for n in names if not n.startswith('abandoned-')]
        if kept and taken:
            pairs.append((rng.choice(kept), rng.choice(taken)))
        versions = names + ['HEAD', 'base']
        for _ in range(2 if names else 0):
            pairs.append(tuple(rng.sample(versions, 2)))
        self.pair_diffs = []
        for a, b in pairs:
            if a == b:
                continue
            sa = self.base_state if a == 'base' else self.snap_states.get(a, None)
            sb = self.base_state if b == 'base' else self.snap_states.get(b, None)
            sa = self.model_state() if a == 'HEAD' else sa
            sb = self.model_state() if b == 'HEAD' else sb
            n = self.check_diff(a, b, sa, sb)
            self.pair_diffs.append('%s..%s %d' % (a, b, n))

    def check_diff(self, frm='base', to='HEAD', was=None, now=None):
        """'wtgfs diff FROM TO' of the roots against a diff of the model's
        copies of the two versions (@was, @now; the base and the model
        itself by default): every path that differs is in the diff, and
        what the diff says changed did change.  Returns its entries."""
        if self.selftest:
            return 0
        import json
        p = self.run_wtgfs('diff', '--json', self.delta, frm, to, '--', *ROOTS, check=False)
        if p.returncode not in (0, 1):
            raise Mismatch('wtgfs diff %s %s exited %d: %s' % (frm, to, p.returncode, p.stderr))
        lines = p.stdout.splitlines()
        head = json.loads(lines[0])
        if head.get('schema') != 'wtgfs-diff' or head.get('from') != frm or head.get('to') != to:
            raise Mismatch('wtgfs diff: a wrong header: %s' % lines[0])
        entries = [json.loads(x) for x in lines[1:]]
        if (p.returncode == 1) != bool(entries):
            raise Mismatch('wtgfs diff exited %d with %d entries' % (p.returncode, len(entries)))
        if was is None:
            was = self.base_state
        if now is None:
            now = self.model_state()
        touched, moved = set(), []
        for e in entries:
            touched.add(e['path'])
            if e['old_path']:
                touched.add(e['old_path'])
            for side in ('old', 'new'):
                if e[side]:
                    touched.update(e[side]['links'])
            if e['status'] == 'R' and e['new']['type'] == 'directory':
                moved += [e['path'] + '/', e['old_path'] + '/']
        for rel in sorted(set(was) | set(now)):
            if was.get(rel) == now.get(rel) or rel in touched:
                continue
            if any(rel.startswith(m) for m in moved):
                continue
            raise Mismatch('wtgfs diff %s %s does not list %r (was %s, now %s)' %
                           (frm, to, rel, short(was.get(rel)), short(now.get(rel))))
        # a path another inode left (renamed or unlinked away) or took over
        left, taken = set(), set()
        for e in entries:
            if e['status'] == 'R':
                left.add(e['old_path'])
                taken.add(e['path'])
            left.update(e.get('links', {}).get('removed', []))
            taken.update(e.get('links', {}).get('added', []))
        for e in entries:
            rel, st = e['path'], e['status']
            if st == 'A' and (rel not in now or (rel in was and rel not in left)):
                raise Mismatch('wtgfs diff: A %r, but the model %s it' %
                               (rel, 'had' if rel in was else 'lacks'))
            if st == 'D' and (rel not in was or (rel in now and rel not in taken)):
                raise Mismatch('wtgfs diff: D %r, but the model %s it' %
                               (rel, 'has' if rel in now else 'never had'))
            if st == 'M' and not e['replaced'] and ({'data', 'size'} & set(e['changed'])):
                a, b = was.get(rel), now.get(rel)
                if a and b and a[0] == b[0] == 'f' and a[1:3] == b[1:3]:
                    raise Mismatch('wtgfs diff %s %s: data of %r changed, but the model has '
                                   'the same bytes' % (frm, to, rel))
        if (frm, to) == ('base', 'HEAD'):
            self.diffs = len(entries)
        return len(entries)

    # ----------------------------------------------------------------- run
    def close_held(self):
        while self.held:
            fa, fb, rel = self.held.pop()
            self.both('fd-close (%r)' % rel, lambda side: os.close((fa, fb)[side]))

    def run(self):
        a = self.args
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        if not self.selftest:
            threading.Thread(target=self.watchdog, daemon=True).start()
        self.setup()
        n = self.compare('after setup')
        print('model.py: seed %d: %d paths copied; %d cycles of %d operations' %
              (a.seed, n, a.cycles, a.ops))
        for self.cycle in range(1, a.cycles + 1):
            for self.opno in range(1, a.ops + 1):
                name = self.rng.choices(names, weights)[0]
                getattr(self, 'op_' + name)(*self.listing())
                if self.opno % a.check_every == 0:
                    self.compare('after operation %d of cycle %d' % (self.opno, self.cycle))
            self.opno = 'end'
            self.close_held()
            n = self.compare('at the end of cycle %d' % self.cycle)
            if not self.selftest:
                t0 = time.time()
                self.umount()
                self.verify()
                self.check_diff()
                self.check_pairs()
                self.mount()
                n = self.compare('after the remount of cycle %d' % self.cycle)
                print('model.py: cycle %d: %d paths equal; umount, verify, diff (%d changes; '
                      '%s), mount %.1f s' % (self.cycle, n, self.diffs,
                                             ', '.join(self.pair_diffs) or 'no snapshots',
                                             time.time() - t0))
            else:
                print('model.py: cycle %d: %d paths equal' % (self.cycle, n))
        if not self.selftest:
            self.umount()
            self.verify()
        print('model.py: seed %d: PASS (%s)' % (a.seed, ', '.join(
            '%s %d%s' % (k, v, '/%d err' % self.errs[k] if k in self.errs else '')
            for k, v in sorted(self.stats.items()))))


def main(argv):
    ap = argparse.ArgumentParser(description='randomized model test of a read-write wtgfs mount')
    ap.add_argument('--wtgfs', help='the wtgfs binary')
    ap.add_argument('--image', help='WIM[:INDEX] the delta is made on')
    ap.add_argument('--work', required=True, help='work directory (delta, mount point, model)')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--ops', type=int, default=300, help='operations per cycle')
    ap.add_argument('--cycles', type=int, default=3, help='umount/verify/mount cycles')
    ap.add_argument('--check-every', type=int, default=50,
                    help='compare the trees every N operations')
    ap.add_argument('--threads', type=int, default=0, help='-o threads=N for the mount')
    ap.add_argument('--timeout', type=int, default=60,
                    help='seconds one operation may take before the daemon is killed')
    ap.add_argument('--selftest', action='store_true',
                    help='two plain directories, no wtgfs: tests the harness')
    ap.add_argument('--verbose', '-v', action='store_true', help='print every operation')
    a = ap.parse_args(argv)
    if not a.selftest and not (a.wtgfs and a.image):
        ap.error('--wtgfs and --image are needed (or --selftest)')
    if a.check_every < 1 or a.ops < 0 or a.cycles < 1:
        ap.error('bad counts')
    os.makedirs(a.work, exist_ok=True)
    # a kill (timeout, make's interrupt) still unmounts and stops the daemon
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    m = Model(a)
    rc = 0
    try:
        m.run()
    except Mismatch as e:
        rc = 1
        print('model.py: FAIL seed %d cycle %d operation %s:\n%s' % (a.seed, m.cycle, m.opno, e))
    except Exception:
        rc = 1
        print('model.py: FAIL seed %d cycle %d operation %s: the harness broke:' %
              (a.seed, m.cycle, m.opno))
        traceback.print_exc(file=sys.stdout)
    finally:
        m.cleanup()
    if rc:
        print('the last operations:')
        for t in m.trace[-25:]:
            print('  ' + t)
        tail = '' if a.selftest else m.daemon_tail()
        if tail:
            print('daemon log (tail):\n' + tail)
        print('rerun: %s --seed %d --ops %d --cycles %d --check-every %d%s' % (
            sys.argv[0], a.seed, a.ops, a.cycles, a.check_every,
            ' --selftest' if a.selftest else ' --wtgfs %s --image %s --work DIR' % (
                a.wtgfs, a.image)))
    sys.stdout.flush()
    return rc


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
