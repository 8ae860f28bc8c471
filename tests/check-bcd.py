#!/usr/bin/python3
"""check-bcd.py BCD DISK.json [--no-wtg-tweaks] [--no-template] [--description=NAME]

Checks a BCD store a flush wrote against the partition table of its disk
(DISK.json: `sfdisk -J` of the flushed disk) with libhivex (python3-hivex;
run with Debian's /usr/bin/python3): exactly the objects bcdboot writes,
{bootmgr} and {memdiag} on the ESP, the OS loader and resume object on the
Windows partition (GPT: the partitions' unique GUIDs and the disk GUID in
mixed-endian order; MBR: the partition's byte offset and the disk
signature), winload.efi, the OS loader named NAME (default "Windows 10 Pro",
the test images' edition), recovery off unless --no-wtg-tweaks, no template
object or template-only element left, and whether the image's BCD-Template
was the start (its {dbgsettings} debugport element stays) or not.
Prints one line per failed check; exit 1 when any failed.
"""
import json
import struct
import sys
import uuid

import hivex

BOOTMGR = '{9dea862c-5cdd-4e70-acc1-f32b344d4795}'
MEMDIAG = '{b2721d73-1db4-4c62-bf78-c548a880142d}'
GLOBAL = '{7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e}'
DBG = '{4636856e-540f-4170-a130-a84776f4c654}'
EMS = '{0ce4991b-e6b3-4b16-b23c-5e0d9250e5d9}'
BADMEM = '{5189b25c-5558-4bf2-bca4-289b11bd29e2}'
LOADERSET = '{6efb52bf-1766-41db-a6b3-0ee5eff72bd7}'
HYPERV = '{7ff607e0-4395-11db-b0de-0800200c9a66}'
RESUMESET = '{1afa9c49-16ab-4a5c-901b-212802da9460}'
TEMPLATE_ONLY = {0x45000001, 0x42000002, 0x42000003, 0x46000004, 0x46000008, 0x47000005,
                 0x47000006}

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('check-bcd: FAIL: ' + what)


def main(argv):
    args = [a for a in argv if not a.startswith('--')]
    tweaks = '--no-wtg-tweaks' not in argv
    template = '--no-template' not in argv
    description = 'Windows 10 Pro'
    for a in argv:
        if a.startswith('--description='):
            description = a.split('=', 1)[1]
    bcd_path, disk_json = args
    table = json.load(open(disk_json))['partitiontable']
    parts = table['partitions']
    ss = table.get('sectorsize', 512)
    h = hivex.Hivex(bcd_path)
    root = h.root()

    def sub(node, name):
        return h.node_get_child(node, name) if node else None

    def val(node, name):
        v = h.node_get_value(node, name)
        return h.value_value(v)

    def sz(data):
        return data.decode('utf-16le').rstrip('\0')

    desc = sub(root, 'Description')
    check(desc and sz(val(desc, 'KeyName')[1]) == 'BCD00000000', 'Description\\KeyName')
    check(desc and val(desc, 'System') == (4, b'\x01\0\0\0'), 'Description\\System = 1')
    objs = {h.node_name(n).lower(): n for n in h.node_children(sub(root, 'Objects'))}

    def obj_type(key):
        return struct.unpack('<I', val(sub(objs[key], 'Description'), 'Type')[1])[0]

    def elements(key):
        out = {}
        for e in h.node_children(sub(objs[key], 'Elements')):
            out[int(h.node_name(e), 16)] = val(e, 'Element')
        return out

    loaders = [k for k in objs if obj_type(k) == 0x10200003]
    resumes = [k for k in objs if obj_type(k) == 0x10200004]
    check(len(loaders) == 1 and len(resumes) == 1, 'one OS loader and one resume object')
    if failures:
        return 1
    loader, resume = loaders[0], resumes[0]
    want = {BOOTMGR, MEMDIAG, GLOBAL, DBG, EMS, BADMEM, LOADERSET, HYPERV, RESUMESET, loader,
            resume}
    check(set(objs) == want, 'objects: extra %s, missing %s' % (sorted(set(objs) - want),
                                                               sorted(want - set(objs))))
    for k in objs:
        left = set(elements(k)) & TEMPLATE_ONLY
        check(not left, 'template-only elements left in %s: %s' % (k, sorted(map(hex, left))))

    # the devices
    if table['label'] == 'gpt':
        esp = next(p for p in parts if p['type'].upper() == 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B')
        win = next(p for p in parts if p['type'].upper() == 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7')
        disk = uuid.UUID(table['id']).bytes_le

        def device(p):
            return (bytes(16) + struct.pack('<IIII', 6, 0, 0x48, 0) + uuid.UUID(p['uuid']).bytes_le +
                    struct.pack('<II', 0, 0) + disk + bytes(16))
    else:
        esp = next(p for p in parts if p.get('bootable'))
        win = next(p for p in parts if p['type'] == '7')
        sig = int(table['id'], 16)

        def device(p):
            return (bytes(16) + struct.pack('<IIII', 6, 0, 0x48, 0) +
                    struct.pack('<Q', p['start'] * ss) + bytes(8) + struct.pack('<II', 0, 1) +
                    struct.pack('<I', sig) + bytes(12) + bytes(16))
    esp_dev, win_dev = (3, device(esp)), (3, device(win))

    m = elements(BOOTMGR)
    check(m.get(0x11000001) == esp_dev, '{bootmgr} device is the ESP')
    check(sz(m[0x12000002][1]) == '\\EFI\\Microsoft\\Boot\\bootmgfw.efi', '{bootmgr} path')
    check(sz(m[0x23000003][1]) == loader, '{bootmgr} default is the OS loader')
    check(sz(m[0x23000006][1]) == resume, '{bootmgr} resumeobject')
    check(m[0x24000001] == (7, (loader + '\0\0').encode('utf-16le')), '{bootmgr} displayorder')
    check(m[0x24000010] == (7, (MEMDIAG + '\0\0').encode('utf-16le')), '{bootmgr} toolsdisplayorder')
    check(m[0x25000004] == (3, struct.pack('<Q', 30)), '{bootmgr} timeout 30')
    d = elements(MEMDIAG)
    check(d.get(0x11000001) == esp_dev, '{memdiag} device is the ESP')
    check(sz(d[0x12000002][1]) == '\\EFI\\Microsoft\\Boot\\memtest.efi', '{memdiag} path')
    o = elements(loader)
    check(o.get(0x11000001) == win_dev, 'OS loader device is the Windows partition')
    check(o.get(0x21000001) == win_dev, 'OS loader osdevice is the Windows partition')
    check(sz(o[0x12000002][1]) == '\\Windows\\system32\\winload.efi', 'OS loader path winload.efi')
    check(sz(o[0x22000002][1]) == '\\Windows', 'OS loader systemroot')
    check(sz(o[0x12000004][1]) == description, 'OS loader description %r, not %r' % (
        sz(o[0x12000004][1]), description))
    check(sz(o[0x23000003][1]) == resume, 'OS loader resumeobject')
    if tweaks:
        check(o.get(0x16000009) == (3, b'\0'), 'OS loader: recoveryenabled No')
    else:
        check(0x16000009 not in o, 'OS loader: recoveryenabled left alone (--no-wtg-tweaks)')
    r = elements(resume)
    check(r.get(0x11000001) == win_dev and r.get(0x21000001) == win_dev,
          'resume object on the Windows partition')
    check(sz(r[0x12000002][1]) == '\\Windows\\system32\\winresume.efi', 'resume path')
    check(elements(DBG).get(0x15000011) == (3, struct.pack('<Q', 4)), '{dbgsettings} debugtype')
    check((0x15000013 in elements(DBG)) == template,
          'the store started from the BCD-Template' if template else 'the store started empty')
    if not template:
        check(h.node_name(root) == 'NewStoreRoot', 'root key NewStoreRoot')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
