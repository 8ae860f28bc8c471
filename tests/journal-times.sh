#!/bin/bash
# A small fsynced write that changes nothing of its file but the bytes and
# the times leaves the inode's record alone: its journal row carries the
# new mtime and ctime, and a crash loses neither.  A writer fsyncs small
# writes into two base files (the second write of each only changes bytes
# and times), sets an older mtime on the second one with utime() + fsync
# after its writes (a record newer than its rows' times), and the daemon is
# killed with the files open.  The journal holds rows that carry times; the
# next mount gives the first file the times of its last fsync and the
# second the time utime() set, and folds the rows in.  A delta of format 5
# (the journal keyed by slot, without times) with rows a crash left: read
# through by a reader, which leaves it alone, and folded in by a writer,
# which records format 6, with the files as the writer left them.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3
need_tool sqlite3
need_tool wimextract
test_images small

d="$TMP/t.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
wtg_mount "$d" "$m"

cat >"$TMP/writer.py" <<'PY'
import hashlib, os, sys, time
m, tmp = sys.argv[1], sys.argv[2]
paths = [f"{m}/Windows/System32/chunks3plus1.bin", f"{m}/Windows/System32/config/DEFAULT"]
fds = [os.open(p, os.O_RDWR) for p in paths]
for fd in fds:
    os.pwrite(fd, b"a" * 4096, 0)
    os.fsync(fd)
time.sleep(0.05)
for fd in fds:
    os.pwrite(fd, b"b" * 4096, 65536)
    os.fsync(fd)
os.utime(paths[1], ns=(1000000000 * 10**9, 1000000000 * 10**9))
os.fsync(fds[1])
with open(f"{tmp}/want", "w") as f:
    for p, fd in zip(paths, fds):
        st = os.fstat(fd)
        data = open(p, "rb").read()
        f.write("%s %d %d\n" % (hashlib.sha256(data).hexdigest(), st.st_mtime_ns, st.st_ctime_ns))
    f.flush()
    os.fsync(f.fileno())
time.sleep(600)
PY

# check DIR: the files under DIR hold what the writer left, with its times
# unless NOTIMES is given
check() {
	python3 - "$1" "$TMP/want" "${2:-}" <<'PY'
import hashlib, os, sys
m, want, notimes = sys.argv[1], open(sys.argv[2]).read().split("\n"), sys.argv[3]
paths = [f"{m}/Windows/System32/chunks3plus1.bin", f"{m}/Windows/System32/config/DEFAULT"]
for p, w in zip(paths, want):
    digest, mtime, ctime = w.split()
    got = hashlib.sha256(open(p, "rb").read()).hexdigest()
    assert got == digest, (p, "bytes", got, digest)
    st = os.stat(p)
    if not notimes:
        assert st.st_mtime_ns == int(mtime), (p, "mtime", st.st_mtime_ns, mtime)
        assert st.st_ctime_ns == int(ctime), (p, "ctime", st.st_ctime_ns, ctime)
PY
}

kill_daemon_when_written "$m" "$TMP/want" python3 "$TMP/writer.py" "$m" "$TMP"

timed=$(sqlite3 "$d" "SELECT count(*) FROM journal WHERE mtime IS NOT NULL") ||
	fail "cannot read the journal"
[ "$timed" -gt 0 ] || fail "no journal row carries the inode's times (its record rewritten instead?)"
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify fails after the kill"; }

# the same state as a format 5 delta: its journal keyed by slot, no times
d5="$TMP/f5.delta"
cp "$d" "$d5"
[ -e "$d-wal" ] && cp "$d-wal" "$d5-wal"
sqlite3 "$d5" "CREATE TABLE j5(layer INTEGER, ino INTEGER, stream TEXT, idx INTEGER,
	seq INTEGER, off INTEGER NOT NULL, data BLOB NOT NULL,
	PRIMARY KEY(layer, ino, stream, idx, seq)) WITHOUT ROWID;
	INSERT INTO j5 SELECT layer, ino, stream, idx, seq, off, data FROM journal;
	DROP TABLE journal; ALTER TABLE j5 RENAME TO journal; PRAGMA user_version = 5" ||
	fail "cannot make a format 5 delta"
rows=$(sqlite3 "$d5" "SELECT count(*) FROM journal")

wtg_mount "$d" "$m"
check "$m" || fail "the crash lost a write or the times of one"
[ "$(sqlite3 "$d" "SELECT count(*) FROM journal")" = 0 ] || fail "the mount did not fold the journal in"
wtg_umount "$m"
wtg_mount "$d" "$m"
check "$m" || fail "the fold lost a write or the times of one"
wtg_umount "$m"
"$WTGFS" verify "$d" >/dev/null || fail "verify fails after the fold"

# format 5: a reader reads through its rows and leaves it as it is
"$WTGFS" verify "$d5" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify of a format 5 delta fails"; }
grep -q "wait in the journal" "$TMP/verify" || { cat "$TMP/verify"; fail "verify does not see the format 5 rows"; }
"$WTGFS" export "$d5" "$TMP/out.wim" >/dev/null 2>"$TMP/err" || { cat "$TMP/err"; fail "export of a format 5 delta failed"; }
mkdir -p "$TMP/x/Windows/System32/config"
wimextract "$TMP/out.wim" 1 /Windows/System32/chunks3plus1.bin --dest-dir="$TMP/x/Windows/System32" \
	>/dev/null 2>&1 && wimextract "$TMP/out.wim" 1 /Windows/System32/config/DEFAULT \
	--dest-dir="$TMP/x/Windows/System32/config" >/dev/null 2>&1 || fail "cannot extract the exported files"
check "$TMP/x" notimes || fail "the export of a format 5 delta lacks writes its journal holds"
[ "$(sqlite3 "$d5" "PRAGMA user_version")" = 5 ] || fail "a reader changed the format"
[ "$(sqlite3 "$d5" "SELECT count(*) FROM journal")" = "$rows" ] || fail "a reader changed the journal"
wtg_mount "$d5" "$m"
check "$m" notimes || fail "a format 5 delta lost a write the journal held"
wtg_umount "$m"
[ "$(sqlite3 "$d5" "PRAGMA user_version")" = 6 ] || fail "the writer did not record format 6"
[ "$(sqlite3 "$d5" "SELECT count(*) FROM journal")" = 0 ] || fail "the format 5 rows were not folded in"
wtg_mount "$d5" "$m"
check "$m" notimes || fail "the upgraded delta lost a write"
wtg_umount "$m"
"$WTGFS" verify "$d5" >/dev/null || fail "verify fails after the upgrade"
echo PASS
