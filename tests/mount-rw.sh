#!/bin/bash
# The read-write mount of a delta, case by case: what is written reads back
# and survives a remount; rename (also renameat2's NOREPLACE and EXCHANGE),
# unlink of an open file, mkdir/rmdir, hard links, symlinks, truncation at
# chunk edges, sparse writes, mmap; the NTFS side: chmod as the read-only
# attribute, system.ntfs_attrib, the archive bit and the inherited ACL of new
# files, names Windows cannot hold, case-insensitive names; statfs; and the
# refusals: a --base that is another image, a moved base without --base, a
# delta mounted twice.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3 getfattr setfattr
test_images small

d="$TMP/rw.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"

# remount DELTA MNT [options]: unmount, verify clean, mount again
remount() {
	local delta=$1 mnt=$2
	shift 2
	wtg_umount "$mnt"
	"$WTGFS" verify "$delta" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify failed after umount"; }
	grep -q clean "$TMP/verify" || { cat "$TMP/verify"; fail "the delta is not clean after umount"; }
	wtg_mount "$delta" "$mnt" "$@"
}

# one_line FILE PATTERN: FILE is a one-line message saying PATTERN
one_line() {
	[ "$(grep -c . "$1")" = 1 ] || { cat "$1"; fail "expected a one-line error"; }
	grep -qi "$2" "$1" || { cat "$1"; fail "the error does not say '$2'"; }
}

wtg_mount "$d" "$m"

echo "== create, write, read back"
printf 'hello, delta\n' >"$m/hello.txt" || fail "cannot create a file"
[ "$(cat "$m/hello.txt")" = "hello, delta" ] || fail "hello.txt reads back wrong"
head -c 300000 /dev/urandom >"$TMP/rand"
cp "$TMP/rand" "$m/Windows/rand.bin" || fail "cannot copy 300000 bytes in"
cmp "$TMP/rand" "$m/Windows/rand.bin" || fail "a 300000-byte file reads back wrong"
# a write inside a base file, in its second chunk
cp "$m/Windows/System32/drivers/etc/hosts" "$TMP/hosts" || fail "cannot read hosts"
printf '10.0.0.1 delta.example\n' >>"$m/Windows/System32/drivers/etc/hosts" || fail "cannot append to a base file"
printf '10.0.0.1 delta.example\n' >>"$TMP/hosts"
cmp "$TMP/hosts" "$m/Windows/System32/drivers/etc/hosts" || fail "the appended base file reads back wrong"
cp "$m/Windows/System32/chunks3plus1.bin" "$TMP/c3" || fail "cannot read chunks3plus1.bin"
printf 'XYZ' | dd of="$m/Windows/System32/chunks3plus1.bin" bs=1 seek=70000 conv=notrunc status=none ||
	fail "cannot write inside a base file"
printf 'XYZ' | dd of="$TMP/c3" bs=1 seek=70000 conv=notrunc status=none
cmp "$TMP/c3" "$m/Windows/System32/chunks3plus1.bin" || fail "a write inside a base file reads back wrong"

echo "== rename"
echo one >"$m/r1"
echo two >"$m/r2"
mv "$m/r1" "$m/r2" || fail "rename over an existing file failed"
[ -e "$m/r1" ] && fail "the old name is still there after rename"
[ "$(cat "$m/r2")" = one ] || fail "rename over an existing file: wrong content"
mkdir -p "$m/rdir/sub" && echo x >"$m/rdir/sub/f" || fail "mkdir -p failed"
mv "$m/rdir" "$m/Users/Public/rdir2" || fail "rename of a directory failed"
[ "$(cat "$m/Users/Public/rdir2/sub/f")" = x ] || fail "a renamed directory lost its content"
mv "$m/Windows/System32/drivers/etc/networks" "$m/networks.moved" || fail "rename of a base file failed"
[ -e "$m/Windows/System32/drivers/etc/networks" ] && fail "a renamed base file is still at its old name"

python3 - "$m" <<'PY' || fail "renameat2 is not consistent"
import ctypes, errno, os, sys
m = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
def renameat2(a, b, flags):
    r = libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags)
    return 0 if r == 0 else ctypes.get_errno()
def put(p, s):
    with open(p, 'w') as f:
        f.write(s)
def get(p):
    with open(p) as f:
        return f.read()
a, b, c = (os.path.join(m, n) for n in ('ra', 'rb', 'rc'))
put(a, 'A'); put(b, 'B')
# RENAME_NOREPLACE onto an existing name: EEXIST (or EINVAL: not supported)
e = renameat2(a, b, 1)
assert e in (errno.EEXIST, errno.EINVAL), 'NOREPLACE onto an existing name: %s' % errno.errorcode.get(e, e)
assert get(a) == 'A' and get(b) == 'B', 'NOREPLACE failed but changed the files'
# RENAME_NOREPLACE onto a new name
e = renameat2(a, c, 1)
if e == 0:
    assert not os.path.exists(a) and get(c) == 'A', 'NOREPLACE rename to a new name went wrong'
    os.rename(c, a)
else:
    assert e == errno.EINVAL, 'NOREPLACE to a new name: %s' % errno.errorcode.get(e, e)
    assert get(a) == 'A' and not os.path.exists(c)
    print('note: RENAME_NOREPLACE not supported (EINVAL)')
# RENAME_EXCHANGE: swapped, or EINVAL and untouched
e = renameat2(a, b, 2)
if e == 0:
    assert get(a) == 'B' and get(b) == 'A', 'EXCHANGE did not swap: %r %r' % (get(a), get(b))
else:
    assert e == errno.EINVAL, 'EXCHANGE: %s' % errno.errorcode.get(e, e)
    assert get(a) == 'A' and get(b) == 'B', 'EXCHANGE failed but changed the files'
    print('note: RENAME_EXCHANGE not supported (EINVAL)')
# EXCHANGE with a missing name: ENOENT (or EINVAL)
e = renameat2(a, c, 2)
assert e in (errno.ENOENT, errno.EINVAL), 'EXCHANGE with a missing name: %s' % errno.errorcode.get(e, e)
PY

echo "== unlink of an open file"
python3 - "$m" <<'PY' || fail "an unlinked open file is not readable"
import os, sys
p = os.path.join(sys.argv[1], 'open-unlinked')
data = os.urandom(150000)
with open(p, 'wb') as f:
    f.write(data)
fd = os.open(p, os.O_RDWR)
os.unlink(p)
assert not os.path.exists(p), 'the name is still there'
assert os.pread(fd, 200000, 0) == data, 'read after unlink differs'
os.pwrite(fd, b'more', 150000)
assert os.pread(fd, 10, 149998) == data[-2:] + b'more', 'write after unlink does not read back'
assert os.fstat(fd).st_nlink == 0, 'st_nlink of an unlinked open file is %d' % os.fstat(fd).st_nlink
os.close(fd)
# a base file too
b = os.path.join(sys.argv[1], 'Windows/System32/drivers/etc/protocol')
fd = os.open(b, os.O_RDONLY)
before = os.pread(fd, 1 << 20, 0)
os.unlink(b)
assert os.pread(fd, 1 << 20, 0) == before, 'an unlinked open base file reads differently'
os.close(fd)
PY

echo "== mkdir, rmdir"
mkdir "$m/d1" || fail "mkdir failed"
mkdir "$m/d1" 2>/dev/null && fail "mkdir of an existing directory succeeded"
touch "$m/d1/f"
python3 -c 'import os, sys, errno
try:
    os.rmdir(sys.argv[1])
except OSError as e:
    sys.exit(0 if e.errno == errno.ENOTEMPTY else "rmdir of a non-empty directory: %s" % e)
sys.exit("rmdir of a non-empty directory succeeded")' "$m/d1" || fail "rmdir of a non-empty directory"
rm "$m/d1/f" && rmdir "$m/d1" || fail "rmdir of an empty directory failed"
[ -e "$m/d1" ] && fail "a removed directory is still there"
rmdir "$m/Windows/System32/config/systemprofile" || fail "rmdir of an empty base directory failed"

echo "== hard links"
echo linked >"$m/l1"
ln "$m/l1" "$m/Users/l2" || fail "link failed"
[ "$(stat -c %h "$m/l1")" = 2 ] || fail "st_nlink is $(stat -c %h "$m/l1") after link, expected 2"
[ "$(stat -c %i "$m/l1")" = "$(stat -c %i "$m/Users/l2")" ] || fail "two links have different inodes"
echo more >>"$m/Users/l2"
[ "$(cat "$m/l1")" = "$(printf 'linked\nmore')" ] || fail "a write through one link does not show through the other"
n0=$(stat -c %h "$m/Windows/notepad.exe")
ln "$m/Windows/notepad.exe" "$m/notepad-link.exe" || fail "link to a base file failed"
[ "$(stat -c %h "$m/Windows/System32/notepad.exe")" = $((n0 + 1)) ] ||
	fail "a base file's link count is $(stat -c %h "$m/Windows/System32/notepad.exe") after link, expected $((n0 + 1))"
ln "$m/Windows" "$m/dirlink" 2>/dev/null && fail "a hard link to a directory succeeded"

echo "== symlinks"
ln -s "../target dir/x.txt" "$m/Users/sl" || fail "symlink failed"
[ "$(readlink "$m/Users/sl")" = "../target dir/x.txt" ] || fail "readlink gives '$(readlink "$m/Users/sl")'"
ln -s Windows/System32 "$m/sys32" || fail "symlink to a directory failed"
[ -f "$m/sys32/config/SYSTEM" ] || fail "a symlink to a directory does not lead there"
ln -s /etc/hostname "$m/abs-link" && echo "note: absolute symlink reads back as '$(readlink "$m/abs-link")'"
# a relative target keeps its text when the link moves, for every hard
# link of it, and when it climbs to the root and down again; through a
# name where its run of '..' would climb above the root (sl/hl) the run
# stops there, as on Windows
mkdir -p "$m/sl/a/b"
ln -s ../../x "$m/sl/a/b/rel" || fail "symlink failed"
ln "$m/sl/a/b/rel" "$m/sl/hl" || fail "a hard link to a symlink failed"
mv "$m/sl/a/b/rel" "$m/sl/a/moved" || fail "rename of a symlink failed"
ln -s ../../../Windows/System32/config/SYSTEM "$m/Windows/System32/config/up" || fail "symlink failed"
# Right after a name of a hard-linked symlink changes, a name may read the
# target that stays inside from every name until the kernel has dropped its
# entries (the mount does that at once, on a thread of its own) and looks
# it up again: wait for that, never for more than 10 s.
check_symlinks() { # check_symlinks WHEN
	local l t i
	for l in "sl/hl ../x" "sl/a/moved ../../x" "Windows/System32/config/up ../../../Windows/System32/config/SYSTEM"; do
		for i in $(seq 100); do
			t=$(readlink "$m/${l%% *}")
			[ "$t" = "${l#* }" ] && break
			case $(realpath -m "$m/${l%% *}") in
			"$(realpath "$m")"/*) ;;
			*) fail "$1: readlink ${l%% *} gives '$t', outside the mount" ;;
			esac
			sleep 0.1
		done
		[ "$t" = "${l#* }" ] || fail "$1: readlink ${l%% *} gives '$t', not '${l#* }'"
	done
}
check_symlinks "after rename and link"

echo "== truncate at chunk edges, sparse writes"
python3 - "$m" "$TMP" <<'PY' || fail "truncate or a sparse write is wrong"
import os, sys
m, tmp = sys.argv[1], sys.argv[2]
K = 65536
def check(p, ref, what):
    with open(p, 'rb') as f:
        got = f.read()
    assert got == ref, '%s: %d bytes, expected %d; first difference at %s' % (
        what, len(got), len(ref), next((i for i in range(min(len(got), len(ref))) if got[i] != ref[i]), 'the end'))
for name, start in (('trunc.bin', None), ('Windows/System32/chunks3plus1.bin', 'base')):
    p = os.path.join(m, name)
    if start is None:
        ref = bytearray(os.urandom(3 * K + 5000))
        with open(p, 'wb') as f:
            f.write(ref)
    else:
        with open(p, 'rb') as f:
            ref = bytearray(f.read())
    for size in (2 * K + 1, 2 * K, 2 * K - 1, K + 100, K, 3 * K + 7, 5 * K, K - 1, 0, 2 * K + 3):
        os.truncate(p, size)
        ref = ref[:size] + bytearray(max(0, size - len(ref)))
        check(p, ref, '%s truncated to %d' % (name, size))
        # write into the last chunk: bytes past the old end must stay zero
        if size:
            with open(p, 'r+b') as f:
                f.seek(size - 1)
                f.write(b'Z')
            ref[size - 1] = ord('Z')
            check(p, ref, '%s after a write at %d' % (name, size - 1))
# sparse: one byte far past the end, zeros before it
p = os.path.join(m, 'sparse.bin')
with open(p, 'wb') as f:
    f.write(b'head')
    f.seek(64 << 20)
    f.write(b'tail')
assert os.stat(p).st_size == (64 << 20) + 4, 'sparse size %d' % os.stat(p).st_size
with open(p, 'rb') as f:
    for off in (4, K - 1, 10 * K, (64 << 20) - K):
        f.seek(off)
        assert f.read(K) == bytes(K), 'sparse file: not zeros at %d' % off
    f.seek(64 << 20)
    assert f.read() == b'tail'
# a write past the end of a base file
p = os.path.join(m, 'Windows/System32/exact64k.bin')
with open(p, 'rb') as f:
    orig = f.read()
with open(p, 'r+b') as f:
    f.seek(5 * K + 3)
    f.write(b'past')
with open(p, 'rb') as f:
    got = f.read()
assert got == orig + bytes(5 * K + 3 - len(orig)) + b'past', 'a write past the end of a base file'
PY

echo "== chmod and system.ntfs_attrib"
attrib() { python3 -c 'import os, sys; print("0x%x" % int.from_bytes(os.getxattr(sys.argv[1], "system.ntfs_attrib"), "little"))' "$1"; }
echo a >"$m/attr.txt"
a=$(attrib "$m/attr.txt") || fail "cannot read system.ntfs_attrib"
[ $((a & 0x20)) = 32 ] || fail "a new file has attributes $a: no FILE_ATTRIBUTE_ARCHIVE (0x20)"
[ $((a & 0x1)) = 0 ] || fail "a new file is read-only ($a)"
chmod a-w "$m/attr.txt" || fail "chmod a-w failed"
a=$(attrib "$m/attr.txt")
[ $((a & 0x1)) = 1 ] || fail "chmod a-w gives attributes $a, no FILE_ATTRIBUTE_READONLY"
stat -c %A "$m/attr.txt" | grep -q w && fail "a read-only file shows write bits: $(stat -c %A "$m/attr.txt")"
if (echo x >>"$m/attr.txt") 2>/dev/null; then echo "note: root could append to a read-only file"; fi
chmod u+w "$m/attr.txt" || fail "chmod u+w failed"
a=$(attrib "$m/attr.txt")
[ $((a & 0x1)) = 0 ] || fail "chmod u+w leaves attributes $a (read-only still set)"
python3 -c 'import os, sys; os.setxattr(sys.argv[1], "system.ntfs_attrib", (0x22).to_bytes(4, "little"))' "$m/attr.txt" ||
	fail "cannot set system.ntfs_attrib"
[ "$(attrib "$m/attr.txt")" = 0x22 ] || fail "system.ntfs_attrib set to 0x22 reads back $(attrib "$m/attr.txt")"
setfattr -n user.note -v "a named stream" "$m/attr.txt" || fail "cannot set a user.* xattr"
[ "$(getfattr --absolute-names --only-values -n user.note "$m/attr.txt")" = "a named stream" ] || fail "a user.* xattr reads back wrong"

echo "== the ACL of new files"
mkdir "$m/Users/Public/acl"
touch "$m/Users/Public/acl/one" "$m/Users/Public/acl/two"
getfattr --absolute-names --only-values -n system.ntfs_acl "$m/Users/Public/acl/one" >"$TMP/acl1" 2>/dev/null ||
	fail "a new file has no system.ntfs_acl"
getfattr --absolute-names --only-values -n system.ntfs_acl "$m/Users/Public/acl/two" >"$TMP/acl2" || fail "no system.ntfs_acl"
[ "$(stat -c %s "$TMP/acl1")" -ge 20 ] || fail "the security descriptor of a new file is $(stat -c %s "$TMP/acl1") bytes"
cmp -s "$TMP/acl1" "$TMP/acl2" || fail "two new files in one directory have different security descriptors"

echo "== names"
python3 - "$m" <<'PY' || fail "names Windows cannot hold"
import errno, os, sys
m = sys.argv[1]
for n in ('a:b', 'CON', 'x.', 'x ', 'nul', 'LPT1', 'q?', 'p|q', 'ctl\x01'):
    for how in ('create', 'mkdir'):
        p = os.path.join(m, n)
        try:
            if how == 'create':
                os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
            else:
                os.mkdir(p)
        except OSError as e:
            assert e.errno == errno.EINVAL, '%s %r: %s, expected EINVAL' % (how, n, errno.errorcode[e.errno])
            continue
        raise AssertionError('%s %r succeeded' % (how, n))
    assert n not in os.listdir(m), '%r is listed' % n
try:
    os.rename(os.path.join(m, 'hello.txt'), os.path.join(m, 'a:b'))
    raise AssertionError('rename to a:b succeeded')
except OSError as e:
    assert e.errno == errno.EINVAL, 'rename to a:b: %s' % errno.errorcode[e.errno]
PY
echo foo >"$m/Foo.txt"
[ "$(cat "$m/FOO.TXT" 2>/dev/null)" = foo ] || fail "FOO.TXT does not open Foo.txt"
mkdir "$m/foo.txt" 2>"$TMP/err" && fail "mkdir foo.txt succeeded beside Foo.txt"
grep -q "File exists" "$TMP/err" || { cat "$TMP/err"; fail "mkdir foo.txt beside Foo.txt: not EEXIST"; }
echo bar >"$m/FOO.TXT"
ls "$m" | grep -ix foo.txt >"$TMP/names"
[ "$(cat "$TMP/names")" = Foo.txt ] || fail "writing FOO.TXT made the names: $(cat "$TMP/names")"
[ "$(cat "$m/Foo.txt")" = bar ] || fail "writing FOO.TXT did not write Foo.txt"
# a name in another case must not outlive what it named (the kernel caches
# every name it looked up: a rename over the name or an unlink must not leave
# the other case leading to the old file)
echo old >"$m/stale.txt"
ln "$m/stale.txt" "$m/stale-link" # the old file lives on under another name
[ "$(cat "$m/STALE.TXT")" = old ] || fail "STALE.TXT does not open stale.txt"
echo new >"$m/stale-new"
mv "$m/stale-new" "$m/stale.txt"
[ "$(cat "$m/STALE.TXT")" = new ] || fail "STALE.TXT opens the file that stale.txt named before a rename replaced it"
echo gone >"$m/gone.txt"
cat "$m/GONE.TXT" >/dev/null || fail "GONE.TXT does not open gone.txt"
rm "$m/gone.txt"
[ -e "$m/GONE.TXT" ] && fail "GONE.TXT still opens after gone.txt was removed"

echo "== statfs"
df "$m" >/dev/null || fail "df fails on the mount"
[ "$(stat -f -c %b "$m")" -gt 0 ] || fail "statfs shows no blocks"

echo "== mmap"
python3 - "$m/mapped.bin" <<'PY' || fail "mmap write"
import mmap, os, sys
p = sys.argv[1]
with open(p, 'wb') as f:
    f.truncate(3 * 65536 + 10)
with open(p, 'r+b') as f:
    mm = mmap.mmap(f.fileno(), 0)
    mm[0:5] = b'start'
    mm[65534:65538] = b'EDGE'
    mm[-3:] = b'end'
    mm.flush()
    mm.close()
PY

echo "== remount: everything is still there"
n_before=$(stat -c %h "$m/Windows/System32/notepad.exe")
remount "$d" "$m" -o threads=2
[ "$(cat "$m/hello.txt")" = "hello, delta" ] || fail "hello.txt lost at remount"
cmp "$TMP/rand" "$m/Windows/rand.bin" || fail "rand.bin differs after remount"
cmp "$TMP/hosts" "$m/Windows/System32/drivers/etc/hosts" || fail "the appended base file differs after remount"
[ "$(cat "$m/r2")" = one ] || fail "r2 differs after remount"
[ "$(cat "$m/Users/Public/rdir2/sub/f")" = x ] || fail "a renamed directory differs after remount"
[ -e "$m/Windows/System32/drivers/etc/networks" ] && fail "a renamed base file came back at remount"
[ -e "$m/Windows/System32/drivers/etc/protocol" ] && fail "an unlinked base file came back at remount"
[ -e "$m/Windows/System32/config/systemprofile" ] && fail "a removed base directory came back at remount"
[ "$(stat -c %h "$m/l1")" = 2 ] || fail "a link count differs after remount"
[ "$(stat -c %h "$m/Windows/System32/notepad.exe")" = "$n_before" ] || fail "a base file's link count differs after remount"
[ "$(readlink "$m/Users/sl")" = "../target dir/x.txt" ] || fail "a symlink differs after remount"
check_symlinks "after remount"
[ "$(attrib "$m/attr.txt")" = 0x22 ] || fail "system.ntfs_attrib differs after remount: $(attrib "$m/attr.txt")"
[ "$(getfattr --absolute-names --only-values -n user.note "$m/attr.txt")" = "a named stream" ] || fail "a user.* xattr lost at remount"
[ "$(stat -c %s "$m/sparse.bin")" = $(((64 << 20) + 4)) ] || fail "the sparse file's size differs after remount"
[ "$(cat "$m/foo.TXT")" = bar ] || fail "Foo.txt differs after remount"
ls "$m" | grep -qx Foo.txt || fail "Foo.txt lost its case at remount"
python3 - "$m/mapped.bin" <<'PY' || fail "what mmap wrote differs after remount"
import sys
b = open(sys.argv[1], 'rb').read()
assert len(b) == 3 * 65536 + 10, len(b)
assert b[:5] == b'start' and b[65534:65538] == b'EDGE' and b[-3:] == b'end', 'mmap bytes lost'
assert b.count(0) == len(b) - 12, 'stray bytes'
PY

echo "== the same delta mounted twice"
mkdir -p "$TMP/mnt2"
MOUNTS="$MOUNTS $TMP/mnt2"
if timeout 30 "$WTGFS" mount "$d" "$TMP/mnt2" 2>"$TMP/err"; then
	"$WTGFS" umount "$TMP/mnt2"
	fail "the same delta mounted twice"
fi
one_line "$TMP/err" "rw.delta\|in use\|busy"
mountpoint -q "$TMP/mnt2" && fail "a refused mount left a mount behind"
[ "$(cat "$m/hello.txt")" = "hello, delta" ] || fail "the first mount broke when a second was refused"
wtg_umount "$m"

echo "== the base: another image, a moved image"
if timeout 30 "$WTGFS" mount "$d" "$m" --base "$IMAGES/xpress.wim" 2>"$TMP/err"; then
	"$WTGFS" umount "$m"
	fail "mounted with a --base that is another image"
fi
one_line "$TMP/err" "rw.delta\|xpress.wim"
mountpoint -q "$m" && fail "a refused mount left a mount behind"
cp "$IMAGES/lzx.wim" "$TMP/base.wim"
"$WTGFS" init "$TMP/moved.delta" "$TMP/base.wim" >/dev/null || fail "init on a copy failed"
wtg_mount "$TMP/moved.delta" "$m"
echo kept >"$m/kept.txt"
wtg_umount "$m"
mv "$TMP/base.wim" "$TMP/moved.wim"
if timeout 30 "$WTGFS" mount "$TMP/moved.delta" "$m" 2>"$TMP/err"; then
	"$WTGFS" umount "$m"
	fail "mounted although the base is gone"
fi
one_line "$TMP/err" "base.wim"
wtg_mount "$TMP/moved.delta" "$m" --base "$TMP/moved.wim"
[ "$(cat "$m/kept.txt")" = kept ] || fail "the delta over the moved base lost a file"
wtg_umount "$m"
"$WTGFS" log --json "$TMP/moved.delta" | grep -q moved.wim ||
	echo "note: the delta does not record the new base path after --base"
"$WTGFS" verify "$TMP/moved.delta" | grep -q clean || fail "the delta over the moved base is not clean"
echo "== directories removed: what was in them stays gone"
# a base file moved out of a base directory that is then emptied and
# removed; a directory made, filled, emptied and removed
wtg_mount "$TMP/moved.delta" "$m" --base "$TMP/moved.wim"
dl="$m/Users/Public/Downloads"
first=$(ls "$dl" | head -1)
mv "$dl/$first" "$m/moved-out" || fail "cannot move a base file out"
rm -f "$dl"/* && rmdir "$dl" || fail "cannot empty and remove a base directory"
mkdir "$m/made" && touch "$m/made/f" && rm "$m/made/f" && rmdir "$m/made" || fail "made/f"
remount "$TMP/moved.delta" "$m" --base "$TMP/moved.wim"
[ "$(stat -c %h "$m/moved-out")" = 1 ] || fail "a file moved out of a removed directory has $(stat -c %h "$m/moved-out") links"
[ -e "$dl" ] && fail "a removed base directory is back"
[ -e "$m/made" ] && fail "a removed directory is back"
wtg_umount "$m"
echo PASS
