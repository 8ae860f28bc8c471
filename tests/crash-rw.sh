#!/bin/bash
# A read-write mount killed with SIGKILL in the middle of a write storm:
# the delta must verify clean, mount again, and every file whose fsync()
# returned must hold exactly what it held then.  The storm (two threads)
# makes directories; creates, writes, truncates, renames and removes files;
# fsyncs every third file it creates and one base file; and records each
# fsynced file with its hash in a log outside the mount.  Three rounds on
# the same delta, killed at different moments.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3
test_images small

d="$TMP/crash.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"

cat >"$TMP/storm.py" <<'PY'
import hashlib, os, random, sys, threading
mnt, round_, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
top = os.path.join(mnt, 'storm-%d' % round_)
os.makedirs(top, exist_ok=True)
lock = threading.Lock()
log = open(log_path, 'a')

def record(rel, data):
    with lock:
        log.write('%s %d %s\n' % (rel, len(data), hashlib.sha256(data).hexdigest()))
        log.flush()
        os.fsync(log.fileno())

def worker(t):
    rng = random.Random(round_ * 100 + t)
    mine = []
    i = 0
    try:
        # one base file per round, written in place and fsynced first
        if t == 0:
            rel = ['Windows/System32/drivers/etc/hosts', 'Windows/System32/drivers/etc/lmhosts.sam',
                   'Windows/System32/chunks3plus1.bin'][(round_ - 1) % 3]
            p = os.path.join(mnt, rel)
            with open(p, 'r+b') as f:
                f.seek(rng.randrange(1000))
                f.write(rng.randbytes(70000))
                f.flush()
                os.fsync(f.fileno())
            with open(p, 'rb') as f:
                record(rel, f.read())
        while True:
            i += 1
            if i % 40 == 1:  # a new directory now and then
                sub = 'storm-%d/d%d-%d' % (round_, t, i // 40)
                os.mkdir(os.path.join(mnt, sub))
            rel = '%s/t%d-%d.bin' % (sub, t, i)
            p = os.path.join(mnt, rel)
            data = rng.randbytes(rng.choice([1, 100, 4096, 65536, 65537, 200000]))
            if rng.random() < 0.3:
                data = data[:len(data) // 2] + bytes(len(data) - len(data) // 2)
            with open(p, 'wb') as f:
                f.write(data)
                if i % 3 == 0:
                    f.flush()
                    os.fsync(f.fileno())
                    synced = True
                else:
                    synced = False
            if synced:
                record(rel, data)
                continue
            mine.append(p)
            # churn on files never fsynced: rewrite, truncate, rename, remove
            c = rng.random()
            q = rng.choice(mine)
            if c < 0.3:
                with open(q, 'r+b') as f:
                    f.seek(rng.randrange(300000))
                    f.write(rng.randbytes(rng.randrange(1, 100000)))
            elif c < 0.5:
                os.truncate(q, rng.randrange(300000))
            elif c < 0.7:
                n = q + '.r'
                os.rename(q, n)
                mine[mine.index(q)] = n
            elif c < 0.85:
                os.unlink(q)
                mine.remove(q)
            else:
                os.setxattr(q, 'user.s', rng.randbytes(rng.randrange(200)))
    except OSError:
        return  # the daemon is gone

ts = [threading.Thread(target=worker, args=(t,)) for t in (0, 1)]
for t in ts:
    t.start()
for t in ts:
    t.join()
PY

cat >"$TMP/check.py" <<'PY'
import hashlib, os, sys
mnt, log_path = sys.argv[1], sys.argv[2]
bad = 0
n = 0
last = {}
for line in open(log_path):
    rel, size, sha = line.rsplit(' ', 2)
    last[rel] = (int(size), sha.strip())  # a base file may be recorded in several rounds
for rel, (size, sha) in sorted(last.items()):
    n += 1
    try:
        with open(os.path.join(mnt, rel), 'rb') as f:
            data = f.read()
    except OSError as e:
        print('%s: fsynced, now %s' % (rel, e.strerror))
        bad += 1
        continue
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
        print('%s: fsynced with %d bytes %s, now %d bytes %s' %
              (rel, size, sha[:16], len(data), hashlib.sha256(data).hexdigest()[:16]))
        bad += 1
# everything else is readable
for top, dirs, files in os.walk(mnt):
    if top == mnt:
        dirs[:] = [x for x in dirs if x.startswith('storm-')]
    for x in files:
        try:
            with open(os.path.join(top, x), 'rb') as f:
                while f.read(1 << 20):
                    pass
        except OSError as e:
            print('%s: unreadable after the crash: %s' % (os.path.join(top, x), e.strerror))
            bad += 1
print('%d fsynced files checked, %d wrong' % (n, bad))
sys.exit(1 if bad else 0)
PY

log="$TMP/fsynced.log"
: >"$log"
# round: records to wait for before the kill, then extra delay
for spec in "1 1 0" "2 8 0.4" "3 25 1.3"; do
	read -r round want delay <<<"$spec"
	echo "== round $round: kill -9 after $want fsync(s) + ${delay}s"
	wtg_mount "$d" "$m"
	pid=${MOUNT_PID[$m]}
	before=$(wc -l <"$log")
	python3 "$TMP/storm.py" "$m" "$round" "$log" &
	storm=$!
	for _ in $(seq 1 300); do
		[ $(($(wc -l <"$log") - before)) -ge "$want" ] && break
		kill -0 "$storm" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$storm" 2>/dev/null || fail "the write storm ended before the kill"
	[ $(($(wc -l <"$log") - before)) -ge "$want" ] || fail "the storm made $(($(wc -l <"$log") - before)) fsync(s) in 30 s"
	sleep "$delay"
	kill -9 "$pid" || fail "the daemon (pid $pid) is not running"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" = 137 ] || echo "note: the killed daemon exited $rc"
	umount -l "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
	mountpoint -q "$m" && fail "cannot clear the dead mount"
	# the storm sees ENOTCONN and stops; do not let it hang
	for _ in $(seq 1 50); do kill -0 "$storm" 2>/dev/null || break; sleep 0.1; done
	kill "$storm" 2>/dev/null
	wait "$storm" 2>/dev/null
	echo "$(($(wc -l <"$log") - before)) fsynced file(s) recorded this round"

	"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify fails after the kill"; }
	grep -q clean "$TMP/verify" || { cat "$TMP/verify"; fail "the delta is not clean after the kill"; }
	wtg_mount "$d" "$m"
	python3 "$TMP/check.py" "$m" "$log" || fail "fsynced data lost or changed by the kill in round $round"
	wtg_umount "$m"
	"$WTGFS" verify "$d" | grep -q clean || fail "the delta is not clean after the check of round $round"
done
# a file closed (not fsynced) just before a kill -9 is there too: close()
# commits what is pending before it returns
wtg_mount "$d" "$m"
printf 'closed, never fsynced\n' >"$m/closed.txt" || fail "cannot write closed.txt"
pid=${MOUNT_PID[$m]}
kill -9 "$pid"
wait "$pid" 2>/dev/null
umount -l "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
wtg_mount "$d" "$m"
[ "$(cat "$m/closed.txt" 2>/dev/null)" = "closed, never fsynced" ] ||
	fail "a file closed before the kill is not there"
wtg_umount "$m"
echo PASS
