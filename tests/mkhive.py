#!/usr/bin/env python3
"""mkhive.py [--size BYTES] [--seed TEXT] [--root NAME] [--bare] PATH

Writes a valid Windows registry hive file (regf, version 1.5): a base
block with a correct checksum, 4 KiB hive bins, a root key with one
security cell (sk), subkeys in sorted "lf" lists, and values of the usual
types (REG_SZ, REG_EXPAND_SZ, REG_DWORD, REG_QWORD, REG_BINARY,
REG_MULTI_SZ; data of at most 4 bytes stored inline). hivexsh opens it and
hivexsh -w can modify it. With --size, keys are added (deterministically,
from --seed) until the file is about that large; without it the hive holds
a root, one subkey and a few values; with --bare, the root alone (a start
for tests/mkboothives.py).
"""
import random
import struct
import sys

REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_QWORD = 1, 2, 3, 4, 7, 11
FILETIME = 132202212000000000        # 2019-12-07


def sid(s):
    p = s.split('-')
    subs = [int(x) for x in p[3:]]
    return struct.pack('<BB', 1, len(subs)) + int(p[2]).to_bytes(6, 'big') + \
        b''.join(struct.pack('<I', x) for x in subs)


def default_sd():
    """O:BA G:SY D:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)(A;CI;KR;;;BU)"""
    aces = b''
    for mask, who in ((0xF003F, 'S-1-5-18'), (0xF003F, 'S-1-5-32-544'), (0x20019, 'S-1-5-32-545')):
        s = sid(who)
        aces += struct.pack('<BBHI', 0, 2, 8 + len(s), mask) + s
    dacl = struct.pack('<BBHHH', 2, 0, 8 + len(aces), 3, 0) + aces
    owner, group = sid('S-1-5-32-544'), sid('S-1-5-18')
    off_dacl = 20
    off_owner = off_dacl + len(dacl)
    off_group = off_owner + len(owner)
    return struct.pack('<BBHIIII', 1, 0, 0x9004, off_owner, off_group, 0, off_dacl) + \
        dacl + owner + group


class Key:
    def __init__(self, name):
        self.name = name
        self.subkeys = []
        self.values = []        # (name, type, bytes)


class Writer:
    def __init__(self):
        self.data = bytearray()       # hive bins, offsets are relative to the first
        self.bin_start = 0
        self.bin_end = 0

    def _new_bin(self, need):
        size = max(4096, (need + 32 + 4095) // 4096 * 4096)
        self.bin_start = len(self.data)
        self.data += bytearray(size)
        self.bin_end = len(self.data)
        struct.pack_into('<4sIIQQI', self.data, self.bin_start, b'hbin',
                         self.bin_start, size, 0, FILETIME, 0)
        self.pos = self.bin_start + 32

    def alloc(self, n):
        n = (n + 4 + 7) // 8 * 8
        if not self.data or self.pos + n > self.bin_end:
            if self.data:
                self._close_bin()
            self._new_bin(n)
        off = self.pos
        struct.pack_into('<i', self.data, off, -n)
        self.pos += n
        return off

    def _close_bin(self):
        free = self.bin_end - self.pos
        if free:
            struct.pack_into('<i', self.data, self.pos, free)
        self.pos = self.bin_end

    def put(self, off, b):
        self.data[off + 4:off + 4 + len(b)] = b

    def finish(self):
        self._close_bin()
        return bytes(self.data)


def name_bytes(name):
    try:
        return name.encode('latin-1'), True
    except UnicodeEncodeError:
        return name.encode('utf-16le'), False


def write_key(w, key, parent_off, sk_off, flags):
    nb, comp = name_bytes(key.name)
    nk = w.alloc(76 + len(nb))
    child_offs = []
    for sub in sorted(key.subkeys, key=lambda k: k.name.upper()):
        child_offs.append((sub, write_key(w, sub, nk, sk_off, 0)))
    subs_off = 0xFFFFFFFF
    if child_offs:
        lst = struct.pack('<2sH', b'lf', len(child_offs))
        for sub, o in child_offs:
            hint = name_bytes(sub.name)[0][:4] if name_bytes(sub.name)[1] else b'\0\0\0\0'
            lst += struct.pack('<I', o) + hint.ljust(4, b'\0')
        subs_off = w.alloc(len(lst))
        w.put(subs_off, lst)
    vals_off = 0xFFFFFFFF
    max_vname = max_vdata = 0
    if key.values:
        voffs = []
        for vname, vtype, vdata in key.values:
            vn, vcomp = name_bytes(vname)
            vk = w.alloc(20 + len(vn))
            if len(vdata) <= 4:
                doff = struct.unpack('<I', vdata.ljust(4, b'\0'))[0]
                dsize = len(vdata) | 0x80000000
            else:
                assert len(vdata) <= 16344, 'big data (db) not supported'
                doff = w.alloc(len(vdata))
                w.put(doff, vdata)
                dsize = len(vdata)
            w.put(vk, struct.pack('<2sHIIIHH', b'vk', len(vn), dsize, doff, vtype,
                                  1 if vcomp else 0, 0) + vn)
            voffs.append(vk)
            max_vname = max(max_vname, len(vname) * 2)
            max_vdata = max(max_vdata, len(vdata))
        vals_off = w.alloc(4 * len(voffs))
        w.put(vals_off, b''.join(struct.pack('<I', o) for o in voffs))
    max_sub = max((len(s.name) * 2 for s in key.subkeys), default=0)
    w.put(nk, struct.pack('<2sHQ' + 'I' * 15 + 'HH', b'nk', flags | (0x20 if comp else 0),
                          FILETIME, 0, parent_off, len(key.subkeys), 0, subs_off,
                          0xFFFFFFFF, len(key.values), vals_off, sk_off, 0xFFFFFFFF,
                          max_sub, 0, max_vname, max_vdata, 0, len(nb), 0) + nb)
    return nk


def count_keys(k):
    return 1 + sum(count_keys(s) for s in k.subkeys)


def build_hive(root, path_name='\\SystemRoot\\System32\\Config\\HIVE'):
    w = Writer()
    sd = default_sd()
    sk = w.alloc(20 + len(sd))
    nkeys = count_keys(root)
    w.put(sk, struct.pack('<2sHIIII', b'sk', 0, sk, sk, nkeys, len(sd)) + sd)
    root_off = write_key(w, root, 0xFFFFFFFF, sk, 0x2C)   # HIVE_ENTRY|NO_DELETE|COMP_NAME
    bins = w.finish()
    base = bytearray(4096)
    fname = path_name.encode('utf-16le')[-64:]
    struct.pack_into('<4sIIQIIIIIII', base, 0, b'regf', 1, 1, FILETIME, 1, 5, 0, 1,
                     root_off, len(bins), 1)
    base[48:48 + len(fname)] = fname
    csum = 0
    for i in range(0, 508, 4):
        csum ^= struct.unpack_from('<I', base, i)[0]
    if csum == 0:
        csum = 1
    elif csum == 0xFFFFFFFF:
        csum = 0xFFFFFFFE
    struct.pack_into('<I', base, 508, csum)
    return bytes(base) + bins


WORDS = ('Services Control Enum Parameters Linkage Security Tcpip Dhcp Dnscache '
         'NetBT LanmanServer LanmanWorkstation Winsock Performance Interfaces '
         'Classes Microsoft Windows CurrentVersion Policies Explorer Shell Run '
         'Setup Installer Uninstall Drivers Power Session Manager Environment '
         'Memory Management Prefetch Audio Display Storage Volume Disk Usb Hid').split()


def grow(root, target, rng):
    """Add Windows-looking keys and values until about target bytes."""
    est = 8192
    tops = []
    for t in ['ControlSet001', 'Setup', 'Software', 'Microsoft', 'Classes', 'Objects']:
        k = Key(t)
        root.subkeys.append(k)
        tops.append(k)
    n = 0
    while est < target:
        top = rng.choice(tops)
        parent = top
        for _ in range(rng.randrange(0, 3)):
            if parent.subkeys and rng.random() < 0.7:
                parent = rng.choice(parent.subkeys)
        if rng.random() < 0.5:
            name = '{%08X-%04X-%04X-%04X-%012X}' % (rng.getrandbits(32), rng.getrandbits(16),
                                                     rng.getrandbits(16), rng.getrandbits(16),
                                                     rng.getrandbits(48))
        else:
            name = rng.choice(WORDS) + rng.choice(WORDS) + str(n)
        k = Key(name)
        n += 1
        parent.subkeys.append(k)
        est += 120 + len(name) * 2
        for i in range(rng.randrange(0, 8)):
            t = rng.choice([REG_SZ, REG_SZ, REG_DWORD, REG_DWORD, REG_EXPAND_SZ,
                            REG_BINARY, REG_MULTI_SZ, REG_QWORD])
            vname = rng.choice(['Type', 'Start', 'ErrorControl', 'ImagePath', 'DisplayName',
                                'Description', 'Group', 'Tag', 'ObjectName', 'Owners',
                                'DependOnService', 'FailureActions', 'Version', 'Data',
                                'InstallDate', 'Flags', 'Path']) + str(i)
            if t == REG_DWORD:
                data = struct.pack('<I', rng.getrandbits(32) if rng.random() < 0.3 else rng.randrange(5))
            elif t == REG_QWORD:
                data = struct.pack('<Q', FILETIME + rng.getrandbits(40))
            elif t == REG_BINARY:
                data = rng.randbytes(rng.choice([8, 16, 20, 24, 64, 256, 1200]))
            elif t == REG_MULTI_SZ:
                data = ('\0'.join(rng.choice(WORDS) for _ in range(rng.randrange(1, 5))) + '\0\0').encode('utf-16le')
            else:
                s = rng.choice(['%SystemRoot%\\System32\\drivers\\', '\\SystemRoot\\System32\\',
                                '@%SystemRoot%\\system32\\', 'C:\\Program Files\\', ''])
                s += rng.choice(WORDS).lower() + rng.choice(['.sys', '.dll', '.exe,-100', ''])
                data = (s + '\0').encode('utf-16le')
            k.values.append((vname, t, data))
            est += 40 + len(vname) + (len(data) + 15 if len(data) > 4 else 0)


def main(argv):
    size = 0
    seed = 'hive'
    rootname = 'ROOT'
    bare = False
    args = []
    it = iter(argv)
    for a in it:
        if a == '--size':
            size = int(next(it))
        elif a == '--seed':
            seed = next(it)
        elif a == '--root':
            rootname = next(it)
        elif a == '--bare':
            bare = True
        elif a in ('-h', '--help'):
            print(__doc__)
            return 0
        else:
            args.append(a)
    if len(args) != 1:
        print('usage: mkhive.py [--size BYTES] [--seed TEXT] [--root NAME] [--bare] PATH',
              file=sys.stderr)
        return 2
    root = Key(rootname)
    if bare:
        with open(args[0], 'wb') as f:
            f.write(build_hive(root, '\\SystemRoot\\System32\\Config\\' + seed))
        return 0
    sub = Key('Select')
    sub.values = [('Current', REG_DWORD, struct.pack('<I', 1)),
                  ('Default', REG_DWORD, struct.pack('<I', 1)),
                  ('LastKnownGood', REG_DWORD, struct.pack('<I', 1))]
    root.subkeys.append(sub)
    root.values = [('', REG_SZ, 'default value\0'.encode('utf-16le')),
                   ('HiveName', REG_SZ, (seed + '\0').encode('utf-16le'))]
    if size:
        grow(root, size, random.Random(seed))
    data = build_hive(root, '\\SystemRoot\\System32\\Config\\' + seed)
    with open(args[0], 'wb') as f:
        f.write(data)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
