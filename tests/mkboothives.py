#!/usr/bin/python3
"""mkboothives.py bcd-template|system|software HIVE

Fills hives of the test images with libhivex (python3-hivex, so run it with
Debian's /usr/bin/python3), starting from a hive tests/mkhive.py wrote:
  bcd-template  HIVE gets what a Windows BCD-Template holds: Description,
                the well-known objects ({bootmgr}, {memdiag}, the settings
                objects), the template objects a flush must drop (EFI and BIOS
                OS loader and resume templates, Setup, {ntldr}, and
                {ramdiskoptions}), and template-only elements (45000001,
                42000002, 46000004, 47000005, ...) on objects that stay.
                {dbgsettings} keeps debugport 15000013 = 1, which a flush
                does not set, so a test can see that the template was used.
  system        HIVE gets ControlSet001\\Services\\partmgr (Start, Type,
                ImagePath, Group) without Parameters, as a flush finds it.
  software      HIVE gets Microsoft\\Windows NT\\CurrentVersion with the
                edition's name (ProductName "Windows 10 Pro"), EditionID and
                CurrentBuild, which a flush names the OS loader after.
"""
import struct
import sys

import hivex

REG_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ = 1, 3, 4, 7


def sz(s):
    return (s + '\0').encode('utf-16le')


def multi(items):
    return (''.join(i + '\0' for i in items) + '\0').encode('utf-16le')


def child(h, node, name):
    c = h.node_get_child(node, name)
    return c if c else h.node_add_child(node, name)


def value(key, t, data):
    return {'key': key, 't': t, 'value': data}


BOOTMGR = '{9dea862c-5cdd-4e70-acc1-f32b344d4795}'
MEMDIAG = '{b2721d73-1db4-4c62-bf78-c548a880142d}'
GLOBAL = '{7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e}'
DBG = '{4636856e-540f-4170-a130-a84776f4c654}'
EMS = '{0ce4991b-e6b3-4b16-b23c-5e0d9250e5d9}'
BADMEM = '{5189b25c-5558-4bf2-bca4-289b11bd29e2}'
LOADERSET = '{6efb52bf-1766-41db-a6b3-0ee5eff72bd7}'
HYPERV = '{7ff607e0-4395-11db-b0de-0800200c9a66}'
RESUMESET = '{1afa9c49-16ab-4a5c-901b-212802da9460}'


def i64(v):
    return struct.pack('<Q', v)


def bcd_template(h):
    root = h.root()
    desc = child(h, root, 'Description')
    h.node_set_values(desc, [value('KeyName', REG_SZ, sz('BCD00000000')),
                             value('System', REG_DWORD, struct.pack('<I', 1)),
                             value('TreatAsSystem', REG_DWORD, struct.pack('<I', 1))])
    objs = child(h, root, 'Objects')
    templ_dev = bytes(16) + struct.pack('<IIII', 5, 0, 0x48, 0) + bytes(0x38)   # "boot"
    objects = [
        (BOOTMGR, 0x10100002, [(0x12000004, REG_SZ, sz('Windows Boot Manager')),
                               (0x12000005, REG_SZ, sz('en-US')),
                               (0x14000006, REG_MULTI_SZ, multi([GLOBAL])),
                               (0x45000001, REG_BINARY, i64(1)),
                               (0x46000004, REG_BINARY, b'\x01'),
                               (0x25000004, REG_BINARY, i64(30))]),
        (MEMDIAG, 0x10200005, [(0x12000002, REG_SZ, sz('\\boot\\memtest.exe')),
                               (0x12000004, REG_SZ, sz('Windows Memory Diagnostic')),
                               (0x14000006, REG_MULTI_SZ, multi([GLOBAL])),
                               (0x42000002, REG_SZ, sz('\\EFI\\Microsoft\\Boot\\memtest.efi')),
                               (0x42000003, REG_SZ, sz('\\boot\\memtest.exe')),
                               (0x45000001, REG_BINARY, i64(3))]),
        (GLOBAL, 0x20100000, [(0x14000006, REG_MULTI_SZ, multi([DBG, EMS, BADMEM]))]),
        (DBG, 0x20100000, [(0x15000011, REG_BINARY, i64(4)),
                           (0x15000013, REG_BINARY, i64(1))]),
        (EMS, 0x20100000, [(0x16000020, REG_BINARY, b'\x00')]),
        (BADMEM, 0x20100000, []),
        (LOADERSET, 0x20200003, [(0x14000006, REG_MULTI_SZ, multi([GLOBAL, HYPERV])),
                                 (0x47000005, REG_BINARY, i64(2) + i64(3))]),
        (HYPERV, 0x20200003, [(0x250000f3, REG_BINARY, i64(0)),
                              (0x250000f4, REG_BINARY, i64(1)),
                              (0x250000f5, REG_BINARY, i64(115200))]),
        (RESUMESET, 0x20200004, [(0x14000006, REG_MULTI_SZ, multi([GLOBAL])),
                                 (0x47000006, REG_BINARY, i64(1)),
                                 (0x46000008, REG_BINARY, b'\x00')]),
        # the template objects a flush must not keep
        ('{a1943bbc-ea85-487c-97c7-c9ede908a38a}', 0x10200003,
         [(0x12000002, REG_SZ, sz('\\Windows\\system32\\winload.exe')),
          (0x11000001, REG_BINARY, templ_dev), (0x45000001, REG_BINARY, i64(2))]),
        ('{b012b84d-c47c-4ed5-b722-c0c42163e569}', 0x10200003,
         [(0x12000002, REG_SZ, sz('\\Windows\\system32\\winload.efi')),
          (0x45000001, REG_BINARY, i64(2))]),
        ('{98b02a23-0674-4ce7-bdad-e0a15a8ff97b}', 0x10200004,
         [(0x12000002, REG_SZ, sz('\\Windows\\system32\\winresume.exe'))]),
        ('{0c334284-9a41-4de1-99b3-a7e87e8ff07e}', 0x10200004,
         [(0x12000002, REG_SZ, sz('\\Windows\\system32\\winresume.efi'))]),
        ('{7254a080-1510-4e85-ac0f-e7fb3d444736}', 0x10200003,
         [(0x12000004, REG_SZ, sz('Windows Setup'))]),
        ('{cbd971bf-b7b8-4885-951a-fa03044f5d71}', 0x10200003,
         [(0x12000004, REG_SZ, sz('Windows Setup'))]),
        ('{466f5a88-0af2-4f76-9038-095b170dc21c}', 0x10300006,
         [(0x12000004, REG_SZ, sz('Earlier Version of Windows'))]),
        ('{ae5534e0-a924-466c-b836-758539a3ee3a}', 0x30000000,
         [(0x32000004, REG_SZ, sz('\\boot\\boot.sdi'))]),
    ]
    for key, typ, elements in objects:
        o = child(h, objs, key)
        h.node_set_values(child(h, o, 'Description'),
                          [value('Type', REG_DWORD, struct.pack('<I', typ))])
        els = child(h, o, 'Elements')
        for eid, t, data in elements:
            h.node_set_values(child(h, els, '%08x' % eid), [value('Element', t, data)])


def system(h):
    node = h.root()
    for name in ['ControlSet001', 'Services', 'partmgr']:
        node = child(h, node, name)
    h.node_set_values(node, [
        value('Start', REG_DWORD, struct.pack('<I', 0)),
        value('Type', REG_DWORD, struct.pack('<I', 1)),
        value('ErrorControl', REG_DWORD, struct.pack('<I', 3)),
        value('Group', REG_SZ, sz('System Bus Extender')),
        value('ImagePath', 2, sz('System32\\drivers\\partmgr.sys'))])


def software(h):
    node = h.root()
    for name in ['Microsoft', 'Windows NT', 'CurrentVersion']:
        node = child(h, node, name)
    h.node_set_values(node, [
        value('ProductName', REG_SZ, sz('Windows 10 Pro')),
        value('EditionID', REG_SZ, sz('Professional')),
        value('CurrentBuild', REG_SZ, sz('19045'))])


def main(argv):
    kinds = {'bcd-template': bcd_template, 'system': system, 'software': software}
    if len(argv) != 2 or argv[0] not in kinds:
        print(__doc__, file=sys.stderr)
        return 2
    h = hivex.Hivex(argv[1], write=True)
    kinds[argv[0]](h)
    h.commit(argv[1])
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
