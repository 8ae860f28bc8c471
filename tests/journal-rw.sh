#!/bin/bash
# Small fsynced writes go to the delta's journal, not to whole chunks, and
# survive a crash: a writer keeps a new file and a base file open and makes
# small pwrite()s, truncations and extensions, fsync() after each; the
# daemon is killed with the files still open.  The journal then holds rows,
# 'wtgfs verify' is clean and says so, what changes the layers refuses until
# a read-write mount folds them in; after that mount both files read back as
# the writer's model says and the journal is empty.  A delta of format 3
# (no journal, no base index) opens, reads, and is upgraded by its first
# read-write mount.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3
need_tool sqlite3
need_tool wimextract
test_images small

d="$TMP/j.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
wtg_mount "$d" "$m"

cat >"$TMP/writer.py" <<'PY'
import hashlib, os, random, sys, time
m, tmp = sys.argv[1], sys.argv[2]
r = random.Random(14)
paths = [f"{m}/new.bin", f"{m}/Windows/System32/chunks3plus1.bin"]
fds, models = [], []
for i, p in enumerate(paths):
    if i == 0:
        fds.append(os.open(p, os.O_RDWR | os.O_CREAT, 0o644))
        models.append(bytearray())
    else:
        fds.append(os.open(p, os.O_RDWR))
        models.append(bytearray(open(p, "rb").read()))
for n in range(300):
    i = r.randrange(2)
    fd, model = fds[i], models[i]
    if r.random() < 0.08:
        size = r.randrange(0, 4 * 65536)
        os.ftruncate(fd, size)
        del model[size:]
        model.extend(bytes(size - len(model)))
    else:
        off = r.randrange(0, 4 * 65536)
        data = r.randbytes(r.choice([1, 100, 4096, 4096, 9000]))
        os.pwrite(fd, data, off)
        if len(model) < off:
            model.extend(bytes(off - len(model)))
        model[off:off + len(data)] = data
    os.fsync(fd)
with open(f"{tmp}/want", "w") as f:
    for model in models:
        f.write(hashlib.sha256(model).hexdigest() + "\n")
    f.flush()
    os.fsync(f.fileno())
# the files stay open: their buffers never went into chunks
time.sleep(600)
PY

kill_daemon_when_written "$m" "$TMP/want" python3 "$TMP/writer.py" "$m" "$TMP"

rows=$(sqlite3 "$d" "SELECT count(*) FROM journal") || fail "the delta has no journal"
[ "$rows" -gt 0 ] || fail "the fsyncs left no journal rows (whole chunks stored instead?)"
echo "$rows journal rows after the kill"
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify fails after the kill"; }
grep -q clean "$TMP/verify" || { cat "$TMP/verify"; fail "the delta is not clean after the kill"; }
grep -q "wait in the journal" "$TMP/verify" || { cat "$TMP/verify"; fail "verify does not mention the journal"; }
"$WTGFS" snapshot "$d" early 2>"$TMP/err" && fail "a snapshot sealed a layer with journal rows"
grep -q "not folded in" "$TMP/err" || { cat "$TMP/err"; fail "the refusal does not say why"; }

# check DIR: both files under DIR are as the writer's model says
check() {
	python3 - "$1" "$TMP/want" <<'PY'
import hashlib, sys
m, want = sys.argv[1], open(sys.argv[2]).read().split()
for p, w in zip([f"{m}/new.bin", f"{m}/Windows/System32/chunks3plus1.bin"], want):
    got = hashlib.sha256(open(p, "rb").read()).hexdigest()
    assert got == w, (p, got, w)
PY
}
# diff reads records, not the journal: it says so
"$WTGFS" diff "$d" >/dev/null 2>"$TMP/err"
grep -q "wait in its journal" "$TMP/err" || { cat "$TMP/err"; fail "diff does not warn of the journal"; }
# a read-only view of HEAD (export) reads through the rows
"$WTGFS" export "$d" "$TMP/out.wim" >/dev/null 2>"$TMP/err" || { cat "$TMP/err"; fail "export failed"; }
mkdir -p "$TMP/x/Windows/System32"
wimextract "$TMP/out.wim" 1 /new.bin --dest-dir="$TMP/x" >/dev/null 2>&1 &&
	wimextract "$TMP/out.wim" 1 /Windows/System32/chunks3plus1.bin --dest-dir="$TMP/x/Windows/System32" \
		>/dev/null 2>&1 || fail "cannot extract the exported files"
check "$TMP/x" || fail "the export lacks writes the journal holds"
[ "$(sqlite3 "$d" "SELECT count(*) FROM journal")" = "$rows" ] || fail "a read-only view changed the journal"

wtg_mount "$d" "$m"
check "$m" || fail "fsynced writes lost or changed by the kill"
[ "$(sqlite3 "$d" "SELECT count(*) FROM journal")" = 0 ] || fail "the mount did not fold the journal in"
wtg_umount "$m"
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify fails after the fold"; }
grep -q "journal" "$TMP/verify" && { cat "$TMP/verify"; fail "verify still sees journal rows"; }
"$WTGFS" snapshot "$d" later >/dev/null || fail "no snapshot after the fold"

# a delta of format 3 has no journal: it reads, and a writer upgrades it
d3="$TMP/old.delta"
"$WTGFS" init "$d3" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
sqlite3 "$d3" "DROP TABLE journal; DROP TABLE base_inodes; DROP TABLE base_names; DROP TABLE base_sds; PRAGMA user_version = 3" || fail "cannot make a format 3 delta"
"$WTGFS" log "$d3" >/dev/null || fail "wtgfs log of a format 3 delta failed"
"$WTGFS" verify "$d3" | grep -q clean || fail "a format 3 delta does not verify"
wtg_mount "$d3" "$m"
python3 - "$m" <<'PY' || fail "cannot write a format 3 delta"
import os, sys
fd = os.open(sys.argv[1] + "/old.txt", os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, b"fsynced into an upgraded delta", 0)
os.fsync(fd)
os.close(fd)
PY
wtg_umount "$m"
[ "$(sqlite3 "$d3" "PRAGMA user_version")" = 6 ] || fail "the writer did not record format 6"
wtg_mount "$d3" "$m"
[ "$(cat "$m/old.txt")" = "fsynced into an upgraded delta" ] || fail "the upgraded delta lost a write"
wtg_umount "$m"
echo PASS
