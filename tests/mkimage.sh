#!/bin/bash
# mkimage.sh [-v] SIZE OUTDIR      (SIZE = small | large)
#
# Builds a Windows-shaped NTFS test volume with tools nobody on the team
# wrote (mkntfs + an ntfs-3g mount, metadata set through ntfs-3g's xattrs),
# then captures it with wimlib:
#   OUTDIR/volume.img   raw NTFS volume (the source of truth)
#   OUTDIR/lzx.wim      wimcapture --compress=LZX (NTFS-3G capture mode)
#   OUTDIR/xpress.wim   wimexport --compress=XPRESS
#   OUTDIR/none.wim     wimexport --compress=none
#   OUTDIR/solid.esd    wimexport --solid (LZMS, solid)
#   OUTDIR/manifest.txt what the image carries (metadata summary)
#   OUTDIR/.stamp       checksum of this script (+ mkhive.py, mkboothives.py) and SIZE
# The image boots as far as a flush needs to show: Windows\Boot\EFI\bootmgfw.efi
# is a stand-in EFI program (grub-mkstandalone) that prints WTGFS-STANDIN-BOOTMGR
# on the serial port, finds the partition holding \Windows\wtgfs-boot.txt and
# prints that file; System32\config holds a BCD-Template, a SYSTEM hive with
# ControlSet001\Services\partmgr and a SOFTWARE hive with the edition's name,
# filled with libhivex (tests/mkboothives.py).
# (The stand-in is not byte-for-byte reproducible: grub's memdisk holds mtimes.)
# Re-running with the same script and SIZE is a no-op (cache).
# Deterministic (fixed seed). Exit 77 (skip) if not root or a tool is missing.
set -eu
# The whole script is one compound command, so bash parses it completely
# before running it: editing this file while a build runs cannot break it.
{
VERBOSE=0
if [ "${1:-}" = "-v" ]; then VERBOSE=1; shift; fi
if [ $# -ne 2 ] || { [ "$1" != small ] && [ "$1" != large ]; }; then
	echo "usage: $0 [-v] small|large OUTDIR" >&2
	exit 2
fi
SIZE=$1
OUTDIR=$2
HERE=$(cd "$(dirname "$0")" && pwd)

log() { [ "$VERBOSE" = 1 ] && echo "mkimage: $*" >&2 || true; }
skip() { echo "mkimage: SKIP: $*" >&2; exit 77; }

[ "$(id -u)" = 0 ] || skip "must run as root (ntfs-3g mount, xattrs)"
for t in mkntfs ntfs-3g wimcapture wimexport python3 mountpoint umount sha256sum flock; do
	command -v "$t" >/dev/null 2>&1 || skip "missing tool: $t"
done
[ -c /dev/fuse ] || skip "/dev/fuse missing"
command -v grub-mkstandalone >/dev/null 2>&1 || skip "missing tool: grub-mkstandalone (grub-common)"
[ -d /usr/lib/grub/x86_64-efi ] || skip "missing grub's x86_64-efi modules (grub-efi-amd64-bin)"
/usr/bin/python3 -c 'import hivex' 2>/dev/null || skip "missing python3-hivex (for /usr/bin/python3)"

STAMP_WANT="$( { cat "$0"; for f in mkhive.py mkboothives.py; do [ -f "$HERE/$f" ] && cat "$HERE/$f"; done; true; } | sha256sum | cut -d' ' -f1) $SIZE"
OUTPUTS="volume.img lzx.wim xpress.wim none.wim solid.esd manifest.txt"
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
is_cached() {
	[ -f "$OUTDIR/.stamp" ] && [ "$(cat "$OUTDIR/.stamp")" = "$STAMP_WANT" ] || return 1
	for f in $OUTPUTS; do [ -s "$OUTDIR/$f" ] || return 1; done
}
if is_cached; then log "cached: $OUTDIR"; exit 0; fi
# Serialise concurrent builds of one OUTDIR; whoever waited may find it done.
exec 9>>"$OUTDIR/.lock"
flock 9
if is_cached; then log "cached (built by another process): $OUTDIR"; exit 0; fi

# Build in a private directory next to the outputs and rename into place at
# the end: files that others still have open or mounted (an ntfs-3g mount of
# the old volume.img, a wtgfs mount of the old lzx.wim) keep their old
# inodes and are never overwritten in place.
BUILD=$(mktemp -d "$OUTDIR/.build.XXXXXX")
WORK=$(mktemp -d /tmp/mkimage.XXXXXX)
export WORK
MNT="$WORK/mnt"
mkdir "$MNT"
LOG="$WORK/log"
: >"$LOG"
NTFS_PID=

cleanup() {
	rc=$?
	if mountpoint -q "$MNT" 2>/dev/null; then umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true; fi
	if [ -n "$NTFS_PID" ]; then wait "$NTFS_PID" 2>/dev/null || true; fi
	if [ $rc != 0 ]; then
		echo "mkimage: FAILED (rc=$rc); last log lines:" >&2
		tail -n 25 "$LOG" >&2 || true
	fi
	rm -rf "$BUILD"
	# never recurse into a volume that is still mounted
	mountpoint -q "$MNT" 2>/dev/null || rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run() { # run a tool, output to the log (and to stderr with -v)
	if [ "$VERBOSE" = 1 ]; then "$@" 2>&1 | tee -a "$LOG" >&2; return "${PIPESTATUS[0]}"
	else "$@" >>"$LOG" 2>&1; fi
}

# Mount with ntfs-3g in the background but not detached, so we know its pid
# and can wait for it to finish writing the volume after umount.
mount_ntfs() { # opts
	ntfs-3g -o "no_detach,big_writes,$1" "$BUILD/volume.img" "$MNT" >>"$LOG" 2>&1 9>&- &
	NTFS_PID=$!
	for _ in $(seq 1 200); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$NTFS_PID" 2>/dev/null || { NTFS_PID=; echo "ntfs-3g mount failed" >>"$LOG"; return 1; }
		sleep 0.05
	done
	echo "ntfs-3g mount timed out" >>"$LOG"
	return 1
}
umount_ntfs() {
	sync -f "$MNT" 2>/dev/null || true
	umount "$MNT"
	wait "$NTFS_PID" || { NTFS_PID=; echo "ntfs-3g exited with error" >>"$LOG"; return 1; }
	NTFS_PID=
}

case $SIZE in
small) VOLSIZE=256M ;;
large) VOLSIZE=3G ;;
esac

T0=$(date +%s%N)
elapsed() { echo "$(( ($(date +%s%N) - T0) / 1000000 )) ms"; }
log "creating volume.img ($VOLSIZE) in $BUILD"
truncate -s "$VOLSIZE" "$BUILD/volume.img"
run mkntfs -F -Q -q -L Windows -c 4096 "$BUILD/volume.img"

# ------------------------------------------------- the stand-in boot manager
# A UEFI program made of GRUB: the serial port only (OVMF echoes its console
# there too), a marker, then the file that proves which partition it found.
cat >"$WORK/standin.cfg" <<'CFGEOF'
serial --unit=0 --speed=115200
terminal_output serial
echo WTGFS-STANDIN-BOOTMGR
if search --no-floppy --file --set=root /Windows/wtgfs-boot.txt; then
	cat /Windows/wtgfs-boot.txt
else
	echo WTGFS-STANDIN-NO-WINDOWS-PARTITION
fi
halt
CFGEOF
run grub-mkstandalone -O x86_64-efi -o "$WORK/standin.efi" --locales= --fonts= --themes= \
	--install-modules="part_gpt part_msdos fat ntfs search search_fs_file cat echo serial terminal test halt normal configfile memdisk tar" \
	--modules="part_gpt part_msdos fat ntfs search_fs_file serial" \
	"boot/grub/grub.cfg=$WORK/standin.cfg"
export WTGFS_STANDIN_EFI="$WORK/standin.efi" WTGFS_BOOTHIVES="$HERE/mkboothives.py"

# ---------------------------------------------------------------- generator
cat >"$WORK/gen.py" <<'PYEOF'
import os, sys, struct, random, hashlib, errno, array

PASS, ROOT, SIZE = sys.argv[1], sys.argv[2], sys.argv[3]
MANIFEST = sys.argv[4] if len(sys.argv) > 4 else None
MKHIVE = sys.argv[5] if len(sys.argv) > 5 else ''
LARGE = SIZE == 'large'

def P(rel):
    return os.path.join(ROOT, *rel.split('\\'))

# ------------------------------------------------ security descriptors
SIDS = {
    'SY': 'S-1-5-18', 'LS': 'S-1-5-19', 'NS': 'S-1-5-20',
    'BA': 'S-1-5-32-544', 'BU': 'S-1-5-32-545', 'AU': 'S-1-5-11',
    'WD': 'S-1-1-0', 'CO': 'S-1-3-0',
    'AC': 'S-1-15-2-1', 'RAC': 'S-1-15-2-2',
    'TI': 'S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464',
    'LW': 'S-1-16-4096',
}

def sid(s):
    s = SIDS.get(s, s)
    parts = s.split('-')
    assert parts[0] == 'S' and parts[1] == '1'
    auth = int(parts[2]); subs = [int(x) for x in parts[3:]]
    return struct.pack('<BB', 1, len(subs)) + auth.to_bytes(6, 'big') + \
        b''.join(struct.pack('<I', x) for x in subs)

ALLOW, DENY, AUDIT, LABEL = 0, 1, 2, 0x11
OI, CI, NP, IO, ID = 1, 2, 4, 8, 0x10
FA, RX, MODIFY = 0x1F01FF, 0x1200A9, 0x1301BF
GA, GR, GX, GW = 0x10000000, 0x80000000, 0x20000000, 0x40000000

def ace(typ, flags, mask, who):
    s = sid(who)
    return struct.pack('<BBHI', typ, flags, 8 + len(s), mask) + s

def acl(aces):
    body = b''.join(aces)
    return struct.pack('<BBHHH', 2, 0, 8 + len(body), len(aces), 0) + body

SE_DACL_PRESENT, SE_SACL_PRESENT = 0x4, 0x10
SE_DACL_AUTO_INHERITED, SE_SACL_AUTO_INHERITED = 0x400, 0x800
SE_DACL_PROTECTED, SE_SELF_RELATIVE = 0x1000, 0x8000

def sd(owner, group, dacl_aces, control=0, sacl_aces=None):
    """Self-relative SECURITY_DESCRIPTOR laid out as Windows does:
    header, SACL, DACL, owner, group."""
    ctl = SE_SELF_RELATIVE | SE_DACL_PRESENT | control
    out = bytearray(20)
    off_sacl = off_dacl = 0
    if sacl_aces is not None:
        ctl |= SE_SACL_PRESENT
        off_sacl = len(out); out += acl(sacl_aces)
    off_dacl = len(out); out += acl(dacl_aces)
    off_owner = len(out); out += sid(owner)
    off_group = len(out); out += sid(group)
    struct.pack_into('<BBHIIII', out, 0, 1, 0, ctl, off_owner, off_group,
                     off_sacl, off_dacl)
    return bytes(out)

P_AI = SE_DACL_PROTECTED | SE_DACL_AUTO_INHERITED
SDS = {
    # C:\ itself
    'root': sd('SY', 'SY', [
        ace(ALLOW, OI | CI, FA, 'BA'), ace(ALLOW, OI | CI, FA, 'SY'),
        ace(ALLOW, OI | CI | IO, GA, 'CO'), ace(ALLOW, OI | CI, RX, 'BU'),
        ace(ALLOW, CI, 0x4, 'AU'), ace(ALLOW, OI | CI | IO, 0x10000, 'AU')]),
    # Windows, System32, WinSxS ...: TrustedInstaller-owned, inheritable
    'ti_dir': sd('TI', 'TI', [
        ace(ALLOW, 0, FA, 'TI'), ace(ALLOW, CI | IO, GA, 'TI'),
        ace(ALLOW, 0, MODIFY, 'SY'), ace(ALLOW, OI | CI | IO, GA, 'SY'),
        ace(ALLOW, 0, MODIFY, 'BA'), ace(ALLOW, OI | CI | IO, GA, 'BA'),
        ace(ALLOW, 0, RX, 'BU'), ace(ALLOW, OI | CI | IO, GR | GX, 'BU'),
        ace(ALLOW, OI | CI | IO, GA, 'CO'),
        ace(ALLOW, 0, RX, 'AC'), ace(ALLOW, OI | CI | IO, GR | GX, 'AC'),
        ace(ALLOW, 0, RX, 'RAC'), ace(ALLOW, OI | CI | IO, GR | GX, 'RAC')],
        P_AI),
    # system files: TrustedInstaller full, everybody else read/execute
    'ti_file': sd('TI', 'TI', [
        ace(ALLOW, 0, FA, 'TI'), ace(ALLOW, 0, RX, 'BA'),
        ace(ALLOW, 0, RX, 'SY'), ace(ALLOW, 0, RX, 'BU'),
        ace(ALLOW, 0, RX, 'AC'), ace(ALLOW, 0, RX, 'RAC')], P_AI),
    # ordinary file with inherited ACEs: SYSTEM/Administrators full, Users read
    'inherited': sd('BA', 'SY', [
        ace(ALLOW, ID, FA, 'SY'), ace(ALLOW, ID, FA, 'BA'),
        ace(ALLOW, ID, RX, 'BU')], SE_DACL_AUTO_INHERITED),
    # ProgramData: protected, inheritable, Users may create
    'programdata': sd('SY', 'SY', [
        ace(ALLOW, OI | CI, FA, 'SY'), ace(ALLOW, OI | CI, FA, 'BA'),
        ace(ALLOW, OI | CI | IO, GA, 'CO'), ace(ALLOW, OI | CI, RX, 'BU'),
        ace(ALLOW, CI, 0x116, 'BU')], SE_DACL_PROTECTED),
    # registry config dir
    'config': sd('SY', 'SY', [
        ace(ALLOW, OI | CI, FA, 'SY'), ace(ALLOW, OI | CI, FA, 'BA'),
        ace(ALLOW, OI | CI | IO, GA, 'CO')], P_AI),
    # junctions in the profile tree: Everyone may not list (a DENY ACE)
    'junction': sd('SY', 'SY', [
        ace(DENY, 0, 0x1, 'WD'), ace(ALLOW, 0, RX, 'WD'),
        ace(ALLOW, 0, FA, 'SY'), ace(ALLOW, 0, FA, 'BA')], P_AI),
    # AppData\LocalLow: low mandatory integrity label in the SACL
    'lowlabel': sd('SY', 'SY', [
        ace(ALLOW, OI | CI | ID, FA, 'SY'), ace(ALLOW, OI | CI | ID, FA, 'BA')],
        SE_DACL_AUTO_INHERITED | SE_SACL_AUTO_INHERITED,
        sacl_aces=[ace(LABEL, OI | CI, 0x1, 'LW')]),
}

# ------------------------------------------------ reparse buffers
def rp_mount_point(target, printname):
    s = target.encode('utf-16le'); p = printname.encode('utf-16le')
    data = struct.pack('<HHHH', 0, len(s), len(s) + 2, len(p)) + s + b'\0\0' + p + b'\0\0'
    return struct.pack('<IHH', 0xA0000003, len(data), 0) + data

def rp_symlink(target, printname, relative):
    s = target.encode('utf-16le'); p = printname.encode('utf-16le')
    data = struct.pack('<HHHHI', len(p), len(s), 0, len(p), 1 if relative else 0) + p + s
    return struct.pack('<IHH', 0xA000000C, len(data), 0) + data

# ------------------------------------------------ times
EPOCH_DIFF = 11644473600 * 10**7
def ft(unix):
    return int(unix * 10**7) + EPOCH_DIFF
BUILD_T = 1575709800      # 2019-12-07 09:10 UTC: "file version" date
INSTALL_T = 1614850000    # 2021-03-04: install time

# ------------------------------------------------ content
R = random.Random(0x57469)      # the one seed

def make_pool(nbytes, rng):
    words = ('the of and to in is for on that with as by this be are from '
             'at or an it not which have has was were will can Windows '
             'Microsoft System32 driver service registry HKEY_LOCAL_MACHINE '
             'SOFTWARE CurrentVersion Policies Explorer Shell Folders '
             'Program Files kernel32 ntdll user32 advapi32 GetProcAddress '
             'LoadLibraryExW CreateFileW ReadFile WriteFile CloseHandle '
             'version manifest assembly processorArchitecture amd64 '
             'publicKeyToken 31bf3856ad364e35 language neutral error '
             'failed success status value key data file path name type '
             'default enabled disabled timeout device instance class').split()
    # skewed byte distribution, roughly like x86-64 code
    skew = bytearray()
    common = [0x00, 0xFF, 0x48, 0x8B, 0x89, 0x0F, 0x45, 0x4C, 0xE8, 0x24,
              0x83, 0xC0, 0x85, 0x74, 0x75, 0x33, 0xC3, 0x01, 0x10, 0x08]
    for i, b in enumerate(common):
        skew += bytes([b]) * max(1, 24 - i)
    i = 0
    while len(skew) < 256:
        skew.append(i & 0xFF); i += 7
    skew = bytes(skew[:256])
    out = bytearray()
    kinds = ['text', 'wtext', 'code', 'table', 'zero', 'random']
    weights = [18, 10, 34, 10, 14, 14]
    while len(out) < nbytes:
        k = rng.choices(kinds, weights)[0]
        n = rng.randrange(2048, 65536)
        if k == 'text' or k == 'wtext':
            t = []
            ln = 0
            while ln < n:
                line = ' '.join(rng.choices(words, k=rng.randrange(4, 14)))
                t.append(line); ln += len(line) + 2
            s = '\r\n'.join(t)
            out += s.encode('utf-16le')[:n] if k == 'wtext' else s.encode()[:n]
        elif k == 'code':
            seg = bytearray()
            while len(seg) < n:
                m = rng.randrange(16, 200)
                if len(seg) > 512 and rng.random() < 0.45:
                    st = rng.randrange(0, len(seg) - m) if len(seg) > m else 0
                    seg += seg[st:st + m]
                else:
                    seg += rng.randbytes(m).translate(skew)
            out += seg[:n]
        elif k == 'table':
            st = rng.randrange(0, 1 << 30); step = rng.choice([4, 8, 16, 24, 0x1000])
            a = array.array('I', range(st, st + step * (n // 4), step))
            out += a.tobytes()[:n]
        elif k == 'zero':
            out += bytes(n)
        else:
            out += rng.randbytes(n)
    return bytes(out[:nbytes])

POOL = None
def content(rel, n, rng):
    """Deterministic, compressible, unique-per-path content of length n."""
    if n == 0:
        return b''
    name = rel.rsplit('\\', 1)[-1].lower()
    ext = name.rsplit('.', 1)[-1] if '.' in name else ''
    tag = hashlib.sha1(rel.encode('utf-8', 'surrogatepass')).digest()
    if ext in ('dll', 'exe', 'sys', 'efi', 'mui', 'cpl', 'ocx', 'drv'):
        hdr = b'MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00' + \
              b'\xb8' + bytes(7) + b'@' + bytes(35) + b'\x80\x00\x00\x00' + \
              b'\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21\xb8\x01\x4c\xcd\x21' + \
              b'This program cannot be run in DOS mode.\r\r\n$' + bytes(7) + \
              b'PE\x00\x00\x64\x86' + tag
    elif ext in ('inf', 'txt', 'ini', 'xml', 'manifest', 'mum', 'log', 'json', 'htm', 'css', 'js', 'ps1', 'bat', 'cmd'):
        hdr = ('; %s\r\n; %s\r\n' % (rel, tag.hex())).encode()
    elif ext == 'cat':
        hdr = b'\x30\x82' + tag
    else:
        hdr = tag
    if n <= len(hdr):
        return hdr[:n]
    parts = [hdr]
    left = n - len(hdr)
    L = len(POOL)
    while left > 0:
        m = min(left, L // 2)
        off = rng.randrange(0, L - m)
        parts.append(POOL[off:off + m]); left -= m
    return b''.join(parts)

# ------------------------------------------------ names
SYL = ('win sys net core shell dx media crypt user kernel ui svc host ms wmi '
       'print audio cfg data sec log ntf srv api ext proto base app view mgr '
       'util graph font sync cloud edge store rt http wlan blue usb hid pnp '
       'ras tcp ip dns dhcp smb rpc com ole d3d gdi dwm xaml search update '
       'defender policy auth cred vault tpm bit boot power dev mount disk '
       'vol stor fs cim task sched event perf diag trace hyper vm wsl').split()
APPS = ['Common Files', 'Windows Defender', 'Windows Mail', 'Windows Media Player',
        'Internet Explorer', 'Windows NT', 'WindowsPowerShell', 'Microsoft Office',
        'Contoso Tools', 'Fabrikam Viewer', 'Microsoft Update Health Tools',
        'ModifiableWindowsApps', 'Windows Photo Viewer', 'Windows Sidebar',
        'Reference Assemblies', 'MSBuild', 'Uninstall Information',
        'Windows Portable Devices', 'Windows Security', 'Windows Multimedia Platform']

def rname(rng, ext):
    n = ''.join(rng.choice(SYL) for _ in range(rng.randrange(1, 4)))
    if rng.random() < 0.15:
        n += str(rng.randrange(2, 64))
    if rng.random() < 0.1:
        n = n.capitalize()
    return n + '.' + ext

# ------------------------------------------------ tree builder
class Tree:
    def __init__(self):
        self.dirs = {}        # rel -> True (rel '' is root)
        self.names = {}       # dir rel -> set(lower names)
        self.files = []       # rels of regular files (first names)
        self.links = []       # (existing, new)
        self.meta = []        # manifest lines
        self.times = {}       # rel -> (crtime, mtime, atime)
        self.nbytes = 0
        self.nfiles = 0
        self.dirs[''] = True

    def uniq(self, d, name):
        s = self.names.setdefault(d, set())
        if name.lower() not in s:
            s.add(name.lower()); return name
        base, dot, ext = name.rpartition('.')
        if not dot:
            base, ext = name, ''
        i = 2
        while True:
            cand = '%s (%d)%s%s' % (base, i, '.' if dot else '', ext)
            if cand.lower() not in s:
                s.add(cand.lower()); return cand
            i += 1

    def mkdir(self, rel):
        if rel in self.dirs:
            return
        parent = rel.rpartition('\\')[0]
        self.mkdir(parent)
        name = rel.rpartition('\\')[2]
        self.names.setdefault(parent, set()).add(name.lower())
        os.mkdir(P(rel))
        self.dirs[rel] = True

    def file(self, rel, data, rng=None):
        d, _, name = rel.rpartition('\\')
        self.mkdir(d)
        s = self.names.setdefault(d, set())
        assert name.lower() not in s, rel
        s.add(name.lower())
        with open(P(rel), 'wb') as f:
            if isinstance(data, int):
                data = content(rel, data, rng or R)
            f.write(data)
        self.files.append(rel)
        self.nbytes += len(data)
        self.nfiles += 1
        return rel

    def link(self, existing, rel):
        d, _, name = rel.rpartition('\\')
        self.mkdir(d)
        s = self.names.setdefault(d, set())
        assert name.lower() not in s, rel
        s.add(name.lower())
        os.link(P(existing), P(rel))
        self.links.append((existing, rel))
        self.nfiles += 1

def setx(rel, name, value):
    os.setxattr(P(rel), name, value, follow_symlinks=False)

def set_attrib(rel, attr):
    setx(rel, 'system.ntfs_attrib_be', struct.pack('>I', attr))

def lognorm_sizes(rng, count, median, sigma, cap):
    import math
    mu = math.log(median)
    return [min(cap, int(rng.lognormvariate(mu, sigma))) for _ in range(count)]

BIG_STREAM_FILE = 'Users\\Public\\Pictures\\Sample Pictures\\Koala.jpg'
BIG_STREAM_NAME = 'Thumbnail.Cache'
BIG_STREAM_SIZE = 100_000 + 17

# ===================================================== pass 1
# (mounted with streams_interface=windows: xattrs cannot carry > 64 KiB)
if PASS == 'pass1':
    os.makedirs(P(BIG_STREAM_FILE.rpartition('\\')[0]))
    rng = random.Random(7)
    POOL = make_pool(1 << 20, rng)
    with open(P(BIG_STREAM_FILE), 'wb') as f:
        f.write(b'\xff\xd8\xff\xe0\x00\x10JFIF\x00' + content(BIG_STREAM_FILE, 150_000, rng))
    with open(P(BIG_STREAM_FILE) + ':' + BIG_STREAM_NAME, 'wb') as f:
        f.write(content(BIG_STREAM_FILE + ':' + BIG_STREAM_NAME, BIG_STREAM_SIZE, rng))
    sys.exit(0)

# ===================================================== pass 2
POOL = make_pool((48 << 20) if LARGE else (4 << 20), R)
T = Tree()
T.dirs[BIG_STREAM_FILE.rpartition('\\')[0]] = True
for d in ['Users', 'Users\\Public', 'Users\\Public\\Pictures']:
    T.dirs[d] = True
T.names.setdefault('Users', set()).add('public')
T.names.setdefault('Users\\Public', set()).add('pictures')
T.names.setdefault('Users\\Public\\Pictures', set()).add('sample pictures')
T.names.setdefault('Users\\Public\\Pictures\\Sample Pictures', set()).add('koala.jpg')
T.files.append(BIG_STREAM_FILE)
T.nfiles += 1
T.meta.append('ads %s:%s %d bytes (written via streams_interface=windows)'
              % (BIG_STREAM_FILE, BIG_STREAM_NAME, BIG_STREAM_SIZE))

# ---- 1. directories that get DOS names first (ntfs-3g closes the inode)
DOS = [('Program Files', 'PROGRA~1'), ('Program Files (x86)', 'PROGRA~2'),
       ('ProgramData', 'PROGRA~3'), ('Documents and Settings', 'DOCUME~1'),
       ('Program Files\\Common Files', 'COMMON~1'),
       ('Program Files\\Windows Defender', 'WINDOW~1'),
       ('Program Files\\Internet Explorer', 'INTERN~1')]
# (no "System Volume Information": wimcapture excludes it, as DISM does)
for d, dos in DOS:
    T.mkdir(d)
    setx(d, 'system.ntfs_dos_name', dos.encode())
    T.meta.append('dosname %s -> %s' % (d, dos))
T.file('Program Files\\Windows Defender\\MpCmdRun.exe', 400_000)
setx('Program Files\\Windows Defender\\MpCmdRun.exe', 'system.ntfs_dos_name', b'MPCMDR~1.EXE')
T.meta.append('dosname %s -> %s' % ('Program Files\\Windows Defender\\MpCmdRun.exe', 'MPCMDR~1.EXE'))

# ---- 2. the skeleton
W = 'Windows'
S32 = 'Windows\\System32'
for d in [S32 + '\\drivers\\etc', S32 + '\\config\\systemprofile', S32 + '\\en-US',
          S32 + '\\DriverStore\\FileRepository', S32 + '\\catroot',
          'Windows\\SysWOW64', 'Windows\\WinSxS', 'Windows\\Boot\\EFI',
          'Windows\\Boot\\Fonts', 'Windows\\Boot\\PCAT', 'Windows\\Fonts',
          'Windows\\INF', 'Windows\\servicing\\Packages', 'Windows\\Temp',
          'Windows\\Logs\\CBS', 'Users\\Default\\AppData\\Local\\Microsoft\\Windows',
          'Users\\Default\\AppData\\LocalLow', 'Users\\Default\\AppData\\Roaming',
          'Users\\Public\\Desktop', 'Users\\Public\\Documents',
          'Users\\Public\\Downloads', 'ProgramData\\Microsoft\\Windows\\Start Menu\\Programs',
          'ProgramData\\Microsoft\\Search\\Data\\Applications\\Windows',
          'Program Files\\Common Files\\microsoft shared',
          'Program Files (x86)\\Common Files', 'Program Files (x86)\\Microsoft\\Edge\\Application',
          'Recovery', 'PerfLogs']:
    T.mkdir(d)

# hosts file, as shipped
hosts = ('# Copyright (c) 1993-2009 Microsoft Corp.\r\n#\r\n'
         '# This is a sample HOSTS file used by Microsoft TCP/IP for Windows.\r\n#\r\n'
         '# localhost name resolution is handled within DNS itself.\r\n'
         '#\t127.0.0.1       localhost\r\n#\t::1             localhost\r\n').encode()
T.file(S32 + '\\drivers\\etc\\hosts', hosts)
for n in ['lmhosts.sam', 'networks', 'protocol', 'services']:
    T.file(S32 + '\\drivers\\etc\\' + n, 1000 + R.randrange(20000))

# registry hives
HIVES = [(S32 + '\\config\\SYSTEM', (10 << 20) if LARGE else (2 << 20)),
         (S32 + '\\config\\SOFTWARE', (20 << 20) if LARGE else (3 << 20)),
         (S32 + '\\config\\SAM', 65536), (S32 + '\\config\\SECURITY', 65536),
         (S32 + '\\config\\DEFAULT', 262144),
         (S32 + '\\config\\BCD-Template', 32768),
         ('Users\\Default\\NTUSER.DAT', 262144)]
BOOT_HIVES = {S32 + '\\config\\BCD-Template': 'bcd-template', S32 + '\\config\\SYSTEM': 'system',
              S32 + '\\config\\SOFTWARE': 'software'}
for rel, hsize in HIVES:
    hp = P(rel)
    if MKHIVE:
        import subprocess
        T.mkdir(rel.rpartition('\\')[0])
        tmp = os.path.join(os.environ.get('WORK', '/tmp'), 'hive.tmp')
        kind = BOOT_HIVES.get(rel)
        size_args = ['--bare', '--root', 'NewStoreRoot'] if kind == 'bcd-template' else \
            ['--size', str(hsize)]
        subprocess.run([sys.executable, MKHIVE] + size_args + ['--seed',
                        rel.rpartition('\\')[2], tmp], check=True)
        if kind:
            # libhivex through Debian's python (python3-hivex)
            subprocess.run(['/usr/bin/python3', os.environ['WTGFS_BOOTHIVES'], kind, tmp],
                           check=True)
        with open(tmp, 'rb') as f:
            data = f.read()
        os.unlink(tmp)
        T.file(rel, data)
    else:
        T.file(rel, b'regf' + content(rel, hsize - 4, R))
T.meta.append('hives %s (%s)' % (', '.join(r for r, _ in HIVES),
              'mkhive.py: valid regf' if MKHIVE else 'regf magic + filler'))
for n in ['SYSTEM.LOG1', 'SYSTEM.LOG2', 'SOFTWARE.LOG1', 'SOFTWARE.LOG2']:
    T.file(S32 + '\\config\\' + n, 0 if n.endswith('2') else 8192)
T.file('Users\\Default\\NTUSER.DAT.LOG1', 0)

# boot files: bootmgfw.efi is the stand-in (its filler is still drawn, so
# every other file keeps its content)
content('Windows\\Boot\\EFI\\bootmgfw.efi', 1_900_000 if LARGE else 300_000, R)
with open(os.environ['WTGFS_STANDIN_EFI'], 'rb') as f:
    T.file('Windows\\Boot\\EFI\\bootmgfw.efi', f.read())
T.file('Windows\\wtgfs-boot.txt', b'wtgfs test image: the Windows partition\r\n')
T.meta.append('boot Windows\\Boot\\EFI\\bootmgfw.efi: grub stand-in, prints Windows\\wtgfs-boot.txt')
T.file('Windows\\Boot\\EFI\\bootmgr.efi', 1_300_000 if LARGE else 200_000)
T.file('Windows\\Boot\\EFI\\memtest.efi', 1_200_000 if LARGE else 150_000)
T.file('Windows\\Boot\\PCAT\\bootmgr', 400_000)
for n in ['segmono_boot.ttf', 'segoe_slboot.ttf', 'wgl4_boot.ttf', 'chs_boot.ttf',
          'jpn_boot.ttf', 'kor_boot.ttf', 'msyh_boot.ttf', 'malgun_boot.ttf']:
    T.file('Windows\\Boot\\Fonts\\' + n, 40_000 + R.randrange(3_000_000 if LARGE else 60_000))
for n in ['bootmgfw.efi.mui']:
    T.file('Windows\\Boot\\EFI\\en-US\\' + n, 80_000)

# edge-case files
EDGE = {
    'empty': 'Windows\\System32\\empty.dat',
    '64k': 'Windows\\System32\\exact64k.bin',
    '3chunks+1': 'Windows\\System32\\chunks3plus1.bin',
    'multimb': 'Windows\\System32\\MRT.exe',
    'sparse': 'ProgramData\\Microsoft\\Search\\Data\\Applications\\Windows\\Windows.edb',
    'unicode': 'Users\\Public\\Documents\\Ünïcødé ファイル.txt',
    'astral': 'Users\\Public\\Documents\\emoji \U0001F600 \U0001F4C1.txt',
    'longname': 'Users\\Public\\Documents\\' + ('Long file name ' * 16)[:240] + '.txt',
}
T.file(EDGE['empty'], b'')
T.file(EDGE['64k'], 65536)
T.file(EDGE['3chunks+1'], 32768 * 3 + 1)
T.file(EDGE['multimb'], (60 << 20) if LARGE else (3 << 20) + 12345)
T.file(EDGE['unicode'], 'Grüße, ファイル, ünïcødé\r\n'.encode('utf-8') * 20)
T.file(EDGE['astral'], b'astral plane name\r\n')
T.file(EDGE['longname'], 5000)
T.mkdir('Users\\Public\\Documents\\Ørstedsvej ĳ ß Σίσυφος')
T.file('Users\\Public\\Documents\\Ørstedsvej ĳ ß Σίσυφος\\naïve café.txt', 3333)
# sparse-ish: mostly zeros, a few written islands (holes left by seeking)
sp = P(EDGE['sparse'])
SPARSE_SIZE = (64 << 20) if LARGE else (8 << 20)
with open(sp, 'wb') as f:
    f.truncate(SPARSE_SIZE)
    for off in (0, SPARSE_SIZE // 3, SPARSE_SIZE - 8192):
        f.seek(off)
        f.write(content(EDGE['sparse'] + str(off), 8192, R))
T.files.append(EDGE['sparse'])
T.names.setdefault(EDGE['sparse'].rpartition('\\')[0], set()).add('windows.edb')
T.nfiles += 1
T.nbytes += SPARSE_SIZE
for k, v in EDGE.items():
    T.meta.append('edge %s %s' % (k, v))

# a deep directory chain
deep = 'ProgramData\\Microsoft\\Windows\\WER\\ReportArchive\\' + '\\'.join(
    'level%02d' % i for i in range(12))
T.mkdir(deep)
T.file(deep + '\\Report.wer', 2222)

# notepad.exe: one inode, three names in three directories (as on Windows)
np_ = T.file(S32 + '\\notepad.exe', 201_216)
T.link(np_, 'Windows\\notepad.exe')
T.link(np_, 'Windows\\WinSxS\\amd64_microsoft-windows-notepad_31bf3856ad364e35_10.0.19041.1_none_4a5e3c9d6b0d3a1c\\notepad.exe')
T.meta.append('hardlink3 %s = Windows\\notepad.exe = Windows\\WinSxS\\amd64_microsoft-windows-notepad_...\\notepad.exe' % np_)

# license file: read-only
T.file(S32 + '\\license.rtf', 64_000)

# ---- 3. bulk, Windows-shaped
def sxs_dir(rng, comp):
    return 'Windows\\WinSxS\\amd64_microsoft-windows-%s_31bf3856ad364e35_10.0.19041.%d_none_%016x' % (
        comp, rng.choice([1, 1, 1, 746, 1202, 3636]), rng.getrandbits(64))

if LARGE:
    NBULK, MEDIAN, SIGMA, CAP = 54_000, 3000, 1.9, 48 << 20
else:
    NBULK, MEDIAN, SIGMA, CAP = 260, 1500, 1.4, 256 << 10
sizes = lognorm_sizes(R, NBULK, MEDIAN, SIGMA, CAP)

AREAS = [  # (weight, kind)
    (22, 's32'), (6, 's32mui'), (8, 'wow64'), (14, 'sxs'), (8, 'driverstore'),
    (4, 'inf'), (2, 'fonts'), (5, 'servicing'), (10, 'progfiles'),
    (6, 'progfiles86'), (5, 'programdata'), (3, 'profile'), (3, 'gac'),
    (2, 'catroot'), (2, 'downloads')]
area_kinds = [k for _, k in AREAS]
area_w = [w for w, _ in AREAS]

cur = {}           # kind -> current sub-directory (rotated every few files)
left = {}
s32_files = []
zone_files = []

def subdir(kind, rng):
    if left.get(kind, 0) > 0 and kind in cur:
        left[kind] -= 1
        return cur[kind]
    if kind == 'sxs':
        d = sxs_dir(rng, rname(rng, 'x')[:-2])
        left[kind] = rng.randrange(1, 12)
    elif kind == 'driverstore':
        d = S32 + '\\DriverStore\\FileRepository\\%s.inf_amd64_%016x' % (
            rname(rng, 'x')[:-2], rng.getrandbits(64))
        left[kind] = rng.randrange(2, 8)
    elif kind == 'progfiles':
        app = rng.choice(APPS)
        d = 'Program Files\\%s' % app
        if rng.random() < 0.6:
            d += '\\' + rng.choice(['bin', 'lib', 'resources', 'en-US', 'x64', 'plugins', 'Locales', 'Schemas'])
        left[kind] = rng.randrange(3, 30)
    elif kind == 'progfiles86':
        app = rng.choice(APPS)
        d = 'Program Files (x86)\\%s' % app
        if rng.random() < 0.5:
            d += '\\' + rng.choice(['bin', 'Application', 'resources', 'de-DE'])
        left[kind] = rng.randrange(3, 30)
    elif kind == 'programdata':
        d = 'ProgramData\\Microsoft\\' + rng.choice(
            ['Windows\\WER\\Temp', 'Diagnosis', 'Crypto\\RSA\\MachineKeys',
             'Windows\\Start Menu\\Programs\\Accessories', 'Windows Defender\\Definition Updates',
             'NetFramework\\BreadcrumbStore', 'Windows\\AppRepository'])
        left[kind] = rng.randrange(3, 20)
    elif kind == 'profile':
        d = 'Users\\Default\\AppData\\' + rng.choice(
            ['Local\\Microsoft\\Windows\\Shell', 'Local\\Microsoft\\Windows\\WinX\\Group1',
             'Roaming\\Microsoft\\Windows\\SendTo', 'Roaming\\Microsoft\\Internet Explorer\\Quick Launch',
             'LocalLow\\Microsoft\\CryptnetUrlCache\\Content'])
        left[kind] = rng.randrange(2, 10)
    elif kind == 'gac':
        n = rname(rng, 'x')[:-2].capitalize()
        d = 'Windows\\Microsoft.NET\\assembly\\GAC_MSIL\\System.%s\\v4.0_4.0.0.0__b77a5c561934e089' % n
        left[kind] = 0
    elif kind == 'servicing':
        d = 'Windows\\servicing\\Packages'
        left[kind] = 1 << 30
    else:
        d = {'s32': S32, 's32mui': S32 + '\\en-US', 'wow64': 'Windows\\SysWOW64',
             'inf': 'Windows\\INF', 'fonts': 'Windows\\Fonts', 'catroot':
             S32 + '\\catroot\\{F750E6C3-38EE-11D1-85E5-00C04FC295EE}',
             'downloads': 'Users\\Public\\Downloads'}[kind]
        left[kind] = 1 << 30
    cur[kind] = d
    return d

EXTS = {
    's32': ['dll'] * 8 + ['exe', 'sys', 'cpl', 'tlb', 'dat', 'xml', 'ocx'],
    's32mui': ['dll.mui'] * 5 + ['exe.mui'],
    'wow64': ['dll'] * 6 + ['exe', 'tlb', 'nls'],
    'sxs': ['dll', 'dll', 'manifest', 'exe', 'mui', 'cat'],
    'driverstore': ['inf', 'sys', 'cat', 'dll', 'PNF'],
    'inf': ['inf', 'PNF'], 'fonts': ['ttf', 'ttf', 'fon', 'ttc'],
    'servicing': ['mum', 'cat'],
    'progfiles': ['dll', 'exe', 'json', 'pak', 'xml', 'txt', 'dat', 'png', 'js'],
    'progfiles86': ['dll', 'exe', 'pak', 'xml', 'dat', 'ico'],
    'programdata': ['xml', 'dat', 'log', 'bin', 'etl', 'vdm'],
    'profile': ['lnk', 'ini', 'dat', 'xml'],
    'gac': ['dll'], 'catroot': ['cat'],
    'downloads': ['exe', 'msi', 'zip', 'pdf'],
}

for sz in sizes:
    kind = R.choices(area_kinds, area_w)[0]
    d = subdir(kind, R)
    if kind == 'gac':
        name = d.split('\\')[-2] + '.dll'
    else:
        name = rname(R, R.choice(EXTS[kind]))
    T.mkdir(d)
    name = T.uniq(d, name)
    T.names[d].discard(name.lower())
    rel = T.file(d + '\\' + name, sz)
    if kind == 's32':
        s32_files.append(rel)
    elif kind == 'downloads' or (kind == 'progfiles' and R.random() < 0.05):
        zone_files.append(rel)

# top up to the byte target with a few big binaries (large only)
if LARGE:
    i = 0
    while T.nbytes < 1_080_000_000:
        sz = R.randrange(8 << 20, 90 << 20)
        T.file('Program Files\\Microsoft Office\\root\\Office16\\big%02d.dll' % i, sz)
        i += 1

# WinSxS hard links: most System32 files also live in a component directory
nlinked = 0
for rel in s32_files:
    if R.random() < 0.7:
        base = rel.rpartition('\\')[2]
        comp = base.rpartition('.')[0].lower()
        d = sxs_dir(R, comp)
        T.mkdir(d)
        T.link(rel, d + '\\' + base)
        nlinked += 1
        if R.random() < 0.05:      # a few with a third name (a servicing backup)
            d2 = 'Windows\\WinSxS\\Backup'
            T.mkdir(d2)
            nn = T.uniq(d2, d.rpartition('\\')[2][:60] + '_' + base)
            T.names[d2].discard(nn.lower())
            T.link(rel, d2 + '\\' + nn)
T.meta.append('hardlinks %d System32 files linked into WinSxS component dirs' % nlinked)
# a hard link group outside Windows: two names in Program Files
hl = T.file('Program Files\\Common Files\\microsoft shared\\VC\\msdia140.dll', 1_100_000 if LARGE else 90_000)
T.link(hl, 'Program Files (x86)\\Common Files\\msdia140.dll')
T.meta.append('hardlink2 %s = Program Files (x86)\\Common Files\\msdia140.dll' % hl)

# ---- 4. security descriptors
def set_sd(rel, key):
    setx(rel, 'system.ntfs_acl', SDS[key])

all_dirs = sorted(T.dirs)
for d in all_dirs:
    if d == '':
        key = 'root'
    elif d.startswith('Windows'):
        key = 'ti_dir'
    elif d.startswith('ProgramData'):
        key = 'programdata'
    elif d.startswith('Users\\Default\\AppData\\LocalLow'):
        key = 'lowlabel'
    else:
        key = 'programdata' if d.startswith('Program') else 'root'
    if d == S32 + '\\config':
        key = 'config'
    set_sd(d, key)
for rel in T.files:
    if rel.startswith('Windows') and not rel.startswith('Windows\\Temp'):
        key = 'ti_file'
    elif rel.startswith('Users\\Default\\AppData\\LocalLow'):
        key = 'lowlabel'
    else:
        key = 'inherited'
    if rel.startswith(S32 + '\\config\\'):
        key = 'inherited'
    set_sd(rel, key)
T.meta.append('sds %d distinct security descriptors: %s' % (len(SDS), ', '.join(SDS)))

# ---- 5. attributes
ATTRS = {
    'Users\\Default\\NTUSER.DAT': 0x22,             # hidden|archive
    'Users\\Default': 0x2,                          # hidden dir
    'ProgramData': 0x2002,                          # hidden|not content indexed
    'Recovery': 0x2006,
    'Windows\\Boot\\PCAT\\bootmgr': 0x27,           # ro|hidden|system|archive
    S32 + '\\license.rtf': 0x21,                    # read-only|archive
    'Windows\\Temp': 0x10 | 0x2000,
    S32 + '\\config\\SYSTEM.LOG1': 0x22,
    S32 + '\\config\\SYSTEM.LOG2': 0x22,
    S32 + '\\config\\SOFTWARE.LOG1': 0x22,
    S32 + '\\config\\SOFTWARE.LOG2': 0x22,
    'Users\\Default\\NTUSER.DAT.LOG1': 0x22,
    'Users\\Public\\Desktop': 0x1 | 0x2,            # read-only (customised) + hidden
}
for dini in ['Users\\Public\\desktop.ini', 'Users\\Public\\Desktop\\desktop.ini',
             'Program Files\\desktop.ini', 'Windows\\Fonts\\desktop.ini',
             'ProgramData\\Microsoft\\Windows\\Start Menu\\Programs\\desktop.ini']:
    T.file(dini, ('\r\n[.ShellClassInfo]\r\nLocalizedResourceName=@%%SystemRoot%%\\system32\\shell32.dll,-%d\r\n'
                  % R.randrange(21700, 21800)).encode('utf-16'))
    set_sd(dini, 'inherited')
    ATTRS[dini] = 0x26                               # hidden|system|archive
for rel in R.sample(T.files, min(len(T.files), 40 if LARGE else 6)):
    if rel not in ATTRS:
        ATTRS[rel] = R.choice([0x20 | 0x2, 0x20 | 0x4, 0x20 | 0x2000, 0x20 | 0x100, 0x20 | 0x1])
for rel, a in ATTRS.items():
    set_attrib(rel, a)
    T.meta.append('attrib %s 0x%x' % (rel, a))

# ---- 6. named streams (user.* xattrs)
ZONE = b'[ZoneTransfer]\r\nZoneId=3\r\nReferrerUrl=https://download.example.com/\r\nHostUrl=https://download.example.com/setup.exe\r\n'
for rel in zone_files + ['Users\\Public\\Documents\\' + 'Ünïcødé ファイル.txt']:
    setx(rel, 'user.Zone.Identifier', ZONE)
    T.meta.append('ads %s:Zone.Identifier %d bytes' % (rel, len(ZONE)))
setx(EDGE['multimb'], 'user.SmartScreen', b'Anaheim')
setx(EDGE['multimb'], 'user.Zone.Identifier', ZONE)
setx(EDGE['multimb'], 'user.$CI.CATALOGHINT', b'\x01\x00' + 'Package_for_KB.cat'.encode('utf-16le'))
setx(EDGE['empty'], 'user.empty-stream', b'')
setx(EDGE['empty'], 'user.data-on-empty-file', content('x:data', 30000, R))
setx(BIG_STREAM_FILE, 'user.Zone.Identifier', ZONE)
setx('ProgramData\\Microsoft', 'user.dirstream', b'a named stream on a directory')
for rel, streams in [(EDGE['multimb'], 'SmartScreen,Zone.Identifier,$CI.CATALOGHINT'),
                     (EDGE['empty'], 'empty-stream (0 bytes),data-on-empty-file (30000 bytes)'),
                     (BIG_STREAM_FILE, 'Zone.Identifier'),
                     ('ProgramData\\Microsoft', 'dirstream (on a directory)')]:
    T.meta.append('ads %s: %s' % (rel, streams))

# ---- 7. object ids (16 bytes; ntfs-3g reads back 64 with zero birth ids)
for rel in [S32 + '\\notepad.exe', 'Users\\Default\\NTUSER.DAT']:
    oid = bytes(R.getrandbits(8) for _ in range(16))
    setx(rel, 'system.ntfs_object_id', oid)
    T.meta.append('objectid %s %s' % (rel, oid.hex()))

# ---- 8. reparse points (after DOS names; directories must be empty)
setx('Documents and Settings', 'system.ntfs_reparse_data',
     rp_mount_point('\\??\\C:\\Users', 'C:\\Users'))
set_sd('Documents and Settings', 'junction')
set_attrib('Documents and Settings', 0x2006)
T.meta.append('junction Documents and Settings -> \\??\\C:\\Users (DOS DOCUME~1, hidden|system)')
for j, tgt in [('Users\\Default User', 'C:\\Users\\Default'),
               ('Users\\Default\\Application Data', 'C:\\Users\\Default\\AppData\\Roaming'),
               ('ProgramData\\Application Data', 'C:\\ProgramData')]:
    T.mkdir(j)
    setx(j, 'system.ntfs_reparse_data', rp_mount_point('\\??\\' + tgt, tgt))
    set_sd(j, 'junction')
    set_attrib(j, 0x2006)
    T.meta.append('junction %s -> \\??\\%s' % (j, tgt))
T.mkdir('Users\\All Users')
setx('Users\\All Users', 'system.ntfs_reparse_data',
     rp_symlink('\\??\\C:\\ProgramData', 'C:\\ProgramData', False))
set_sd('Users\\All Users', 'junction')
set_attrib('Users\\All Users', 0x2006)
T.meta.append('symlinkd(absolute) Users\\All Users -> \\??\\C:\\ProgramData')
fl = 'Users\\Public\\Desktop\\hosts'
with open(P(fl), 'wb'):
    pass
setx(fl, 'system.ntfs_reparse_data',
     rp_symlink('\\??\\C:\\Windows\\System32\\drivers\\etc\\hosts',
                'C:\\Windows\\System32\\drivers\\etc\\hosts', False))
T.meta.append('symlink(absolute,file) %s -> \\??\\C:\\Windows\\System32\\drivers\\etc\\hosts' % fl)
rl = 'Users\\Public\\Desktop\\readme.txt'
T.file('Users\\Public\\Documents\\readme.txt', b'Relative symlink target.\r\n')
with open(P(rl), 'wb'):
    pass
setx(rl, 'system.ntfs_reparse_data', rp_symlink('..\\Documents\\readme.txt', '..\\Documents\\readme.txt', True))
T.meta.append('symlink(relative,file) %s -> ..\\Documents\\readme.txt' % rl)
rd = 'Program Files\\Contoso Tools\\current'
T.mkdir('Program Files\\Contoso Tools\\v2.1')
T.file('Program Files\\Contoso Tools\\v2.1\\contoso.exe', 50_000)
T.mkdir(rd)
setx(rd, 'system.ntfs_reparse_data', rp_symlink('v2.1', 'v2.1', True))
for x in (fl, rl, rd):
    set_sd(x, 'inherited')
T.meta.append('symlinkd(relative) %s -> v2.1' % rd)
REPARSE = ['Documents and Settings', 'Users\\Default User', 'Users\\Default\\Application Data',
           'ProgramData\\Application Data', 'Users\\All Users', fl, rl, rd]

# ---- 9. times: deterministic, bottom-up (children before their directory)
def times_for(rel, is_dir):
    h = int.from_bytes(hashlib.md5(rel.encode('utf-8', 'surrogatepass')).digest()[:8], 'little')
    mt = ft(BUILD_T - (h % (400 * 86400))) + (h >> 40) % 10**7
    ct = ft(INSTALL_T + (h >> 20) % 3600) + (h >> 8) % 10**7
    at = ct + (h % 977) * 10**7
    if is_dir:
        mt = ct + 12345678
    return struct.pack('<QQQ', ct, mt, at)

seen_inodes = set()
for rel in T.files + [fl, rl]:
    setx(rel, 'system.ntfs_times', times_for(rel, False))
for d in sorted(T.dirs, key=lambda x: -x.count('\\') if x else 1):
    setx(d, 'system.ntfs_times', times_for(d, True))
# hard links share one inode: its times are those of its first name
for ex, _ in T.links:
    setx(ex, 'system.ntfs_times', times_for(ex, False))

# ---- 10. read everything special back through ntfs-3g
import ctypes, ctypes.util
_libc = ctypes.CDLL(ctypes.util.find_library('c') or None, use_errno=True)
_libc.lgetxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
_libc.lgetxattr.restype = ctypes.c_ssize_t

def getx(rel, name):
    # size first: ntfs-3g answers a short buffer for ntfs_acl with EIO, not ERANGE
    p, n = os.fsencode(P(rel)), name.encode()
    size = _libc.lgetxattr(p, n, None, 0)
    if size < 0:
        return None
    buf = ctypes.create_string_buffer(max(size, 1))
    got = _libc.lgetxattr(p, n, buf, size)
    assert got >= 0, (rel, name, os.strerror(ctypes.get_errno()))
    return buf.raw[:got]

def check(cond, what):
    if not cond:
        raise SystemExit('mkimage: read-back check failed: ' + what)

for d, dos in DOS:
    check(getx(d, 'system.ntfs_dos_name') == dos.encode(), 'dos name of ' + d)
for rel, a in ATTRS.items():
    got = struct.unpack('>I', getx(rel, 'system.ntfs_attrib_be'))[0]
    check(got & ~0x610 == a & ~0x610, 'attrib of %s: 0x%x != 0x%x' % (rel, got, a))
check(struct.unpack('>I', getx(EDGE['sparse'], 'system.ntfs_attrib_be'))[0] & 0x200, 'sparse attribute')
check(getx('Windows\\System32\\notepad.exe', 'system.ntfs_acl') == SDS['ti_file'], 'ti_file sd')
check(getx('Users\\Default\\AppData\\LocalLow', 'system.ntfs_acl') == SDS['lowlabel'], 'lowlabel sd (SACL)')
check(getx('Documents and Settings', 'system.ntfs_acl') == SDS['junction'], 'junction sd')
check(getx('', 'system.ntfs_acl') == SDS['root'], 'root sd')
check(getx('Documents and Settings', 'system.ntfs_reparse_data') ==
      rp_mount_point('\\??\\C:\\Users', 'C:\\Users'), 'junction reparse data')
# (no readlink here: the kernel still caches these as regular files/dirs;
# they only show up as symlinks after a remount)
check(getx(rl, 'system.ntfs_reparse_data') ==
      rp_symlink('..\\Documents\\readme.txt', '..\\Documents\\readme.txt', True), 'relative symlink')
check(getx('Users\\All Users', 'system.ntfs_reparse_data') ==
      rp_symlink('\\??\\C:\\ProgramData', 'C:\\ProgramData', False), 'absolute symlink')
check(getx('Users\\Public\\Documents\\Ünïcødé ファイル.txt', 'user.Zone.Identifier') == ZONE, 'zone identifier')
check(getx(EDGE['empty'], 'user.empty-stream') == b'', 'empty stream')
check(getx('ProgramData\\Microsoft', 'user.dirstream') is not None, 'stream on a directory')
check(os.stat(P(np_)).st_nlink == 3, 'notepad.exe has 3 links')
for rel, tb in [(np_, times_for(np_, False)), ('Windows', times_for('Windows', True))]:
    check(getx(rel, 'system.ntfs_times')[:24] == tb, 'times of ' + rel)
check(len(getx(S32 + '\\notepad.exe', 'system.ntfs_object_id')) == 64, 'object id')
check(len(set(SDS.values())) == len(SDS), 'distinct SDs')

T.meta.insert(0, 'size %s: %d files (+%d extra hard links), %d dirs, %d bytes' % (
    SIZE, len(T.files), len(T.links), len(T.dirs), T.nbytes))
if MANIFEST:
    with open(MANIFEST, 'w') as f:
        f.write('\n'.join(T.meta) + '\n')
PYEOF

HIVEARG=
[ -f "$HERE/mkhive.py" ] && HIVEARG="$HERE/mkhive.py"

log "pass 1: large named stream (streams_interface=windows)"
mount_ntfs streams_interface=windows
run python3 "$WORK/gen.py" pass1 "$MNT" "$SIZE"
umount_ntfs

log "pass 2: tree and metadata"
mount_ntfs streams_interface=xattr
run python3 "$WORK/gen.py" pass2 "$MNT" "$SIZE" "$BUILD/manifest.txt" "$HIVEARG"
umount_ntfs
log "generated in $(elapsed)"

log "wimcapture (LZX)"
run wimcapture "$BUILD/volume.img" "$BUILD/lzx.wim" "Windows Test" --compress=LZX
log "wimexport (XPRESS, none, solid LZMS)"
run wimexport "$BUILD/lzx.wim" 1 "$BUILD/xpress.wim" --compress=XPRESS
run wimexport "$BUILD/lzx.wim" 1 "$BUILD/none.wim" --compress=none
run wimexport "$BUILD/lzx.wim" 1 "$BUILD/solid.esd" --solid

rm -f "$OUTDIR/.stamp"
for f in $OUTPUTS; do mv -f "$BUILD/$f" "$OUTDIR/$f"; done
echo "$STAMP_WANT" >"$OUTDIR/.stamp"
log "done in $(elapsed): $OUTDIR"
exit 0
}
