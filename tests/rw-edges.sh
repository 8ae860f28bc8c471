#!/bin/bash
# Corners of a read-write mount that ordinary tools walk into: a directory
# removed while open (link count 0, an empty listing, no ESTALE), st_blocks
# of sparse and huge files (what is stored, no overflow), and renames that
# change only the case of a name, and junctions removed as the links POSIX
# sees.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3 setfattr getfattr xxd
test_images small

d="$TMP/edges.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
wtg_mount "$d" "$m"

echo "== a directory removed while open"
python3 - "$m" <<'PY' || fail "an open directory does not behave as on Linux once removed"
import os, sys
m = sys.argv[1]
os.mkdir(f"{m}/gone")
os.mkdir(f"{m}/gone/sub")
os.rmdir(f"{m}/gone/sub")
fd = os.open(f"{m}/gone", os.O_RDONLY | os.O_DIRECTORY)
os.rmdir(f"{m}/gone")
st = os.fstat(fd)
assert st.st_nlink == 0, f"link count {st.st_nlink} after rmdir"
assert os.listdir(fd) == [], os.listdir(fd)
cwd = os.getcwd()
os.chdir(fd)
assert os.listdir(".") == [], "ls . lists something"
try:
    open("new", "w")
    sys.exit("a file was created in a removed directory")
except FileNotFoundError:
    pass
os.chdir(cwd)
os.close(fd)
assert not os.path.exists(f"{m}/gone")
print("ok")
PY

echo "== st_blocks: what is stored, no overflow"
python3 - "$m" <<'PY' || fail "st_blocks does not say what is stored"
import os, sys
m = sys.argv[1]
def blocks(p):
    return os.stat(p).st_blocks
# sparse: 1 GiB with one byte written in the middle
with open(f"{m}/sparse.bin", "wb") as f:
    f.truncate(1 << 30)
    f.seek(500 << 20)
    f.write(b"x")
b = blocks(f"{m}/sparse.bin")
assert 0 < b <= 65536 // 512, f"a sparse file of 1 GiB with one byte written takes {b} blocks"
# dense: every byte counts
data = os.urandom(300000)
with open(f"{m}/dense.bin", "wb") as f:
    f.write(data)
b = blocks(f"{m}/dense.bin")
assert b * 512 >= 300000 and b * 512 < 300000 + 65536, f"a 300000-byte file takes {b} blocks"
# the largest size a file can have
with open(f"{m}/huge.bin", "wb") as f:
    f.truncate((1 << 63) - 1)
st = os.stat(f"{m}/huge.bin")
assert st.st_size == (1 << 63) - 1 and 0 <= st.st_blocks < 1024, (st.st_size, st.st_blocks)
# a base file: its bytes
st = os.stat(f"{m}/Windows/System32/chunks3plus1.bin")
assert st.st_blocks * 512 >= st.st_size, (st.st_size, st.st_blocks)
print("ok")
PY
du -k "$m/sparse.bin" | awk '$1 > 128 { exit 1 }' || fail "du counts the holes of a sparse file"

echo "== renames that change only the case"
echo one >"$m/foo.txt"
# rename(2) sees one file under both spellings and does nothing, as on
# Windows' own POSIX layers; through another name it works
mv "$m/foo.txt" "$m/foo.tmp" && mv "$m/foo.tmp" "$m/Foo.txt" || fail "a rename through another name failed"
ls "$m" | grep -qx "Foo.txt" || fail "a rename through another name did not change the case"
# the direct way
setfattr -n system.wtgfs_name -v FOO.TXT "$m/foo.txt" || fail "system.wtgfs_name did not change the case"
ls "$m" | grep -qx "FOO.TXT" || { ls "$m"; fail "system.wtgfs_name did not change the listing"; }
[ "$(cat "$m/FOO.TXT")" = one ] || fail "a file lost its data to a change of case"
setfattr -n system.wtgfs_name -v Windows "$m/Windows" || fail "a directory cannot change case"
ls "$m" | grep -qx "Windows" || fail "a directory lost its name"
setfattr -n system.wtgfs_name -v other.txt "$m/FOO.TXT" 2>/dev/null && fail "system.wtgfs_name renamed to another name"
setfattr -n system.wtgfs_name -v SYSTEM32 "$m/Windows/System32" || fail "a base directory cannot change case"
[ -d "$m/Windows/SYSTEM32/drivers" ] || fail "a base directory lost its content to a change of case"
ls "$m/Windows" | grep -qx "SYSTEM32" || fail "a base directory did not change case"

echo "== a file with no attribute reads FILE_ATTRIBUTE_NORMAL, as on ntfs-3g"
echo plain >"$m/plain.txt"
setfattr -n system.ntfs_attrib -v 0x00000000 "$m/plain.txt" || fail "cannot clear a file's attributes"
a=$(getfattr -e hex --only-values -n system.ntfs_attrib "$m/plain.txt" 2>/dev/null | xxd -p)
[ "$a" = 80000000 ] || fail "a file with no attribute reads 0x$a, not FILE_ATTRIBUTE_NORMAL (80000000)"

echo "== a junction is a link to POSIX: rm takes it, rm -r walks past it"
j="$m/Program Files/Contoso Tools/current"
[ -L "$j" ] || fail "the image's junction is not a symlink"
rmdir "$j" 2>/dev/null && fail "rmdir removed a symlink"
rm "$j" || fail "rm cannot remove a junction (ntfs-3g can)"
[ -e "$j" ] || [ -L "$j" ] && fail "the junction is still there after rm"
[ -f "$m/Program Files/Contoso Tools/v2.1/contoso.exe" ] || fail "rm of the junction removed its target's content"
find "$m/ProgramData" -maxdepth 1 -type l | grep -q . || fail "no junction under ProgramData to remove with rm -r"
rm -r "$m/ProgramData" || fail "rm -r of a tree holding junctions failed"
[ -e "$m/ProgramData" ] && fail "rm -r left ProgramData"

wtg_umount "$m"
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify failed"; }
wtg_mount "$d" "$m"
[ -L "$m/Program Files/Contoso Tools/current" ] && fail "a removed junction came back after a remount"
ls "$m" | grep -qx "FOO.TXT" || fail "a change of case did not survive a remount"
ls "$m/Windows" | grep -qx "SYSTEM32" || fail "a change of case did not survive a remount"
[ "$(cat "$m/foo.txt")" = one ] || fail "a respelled file lost its data after a remount"

wtg_umount "$m"
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify failed"; }
echo "ok"
