#!/bin/bash
# A snapshot taken while a writer runs is a consistent point: it holds
# exactly a prefix of the writer's writes, and that prefix covers every
# write acknowledged before 'wtgfs snapshot' began and none begun after it
# returned.  The writer makes 4 KiB records (one write each, one FUSE
# request) in one file and a file per record, and logs each index once the
# write returned; the snapshots are read back through --at mounts.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3
test_images small

d="$TMP/w.delta"
m="$TMP/mnt"
a="$TMP/at"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
wtg_mount "$d" "$m"
mkdir "$m/w" || fail "mkdir failed"

python3 - "$m/w" "$TMP/acked" "$TMP/stop" <<'PYEOF' &
import os, sys
d, acked, stop = sys.argv[1:]
log = open(acked, 'w', buffering=1)
fd = os.open(d + '/records', os.O_WRONLY | os.O_CREAT | os.O_APPEND)
i = 0
while not os.path.exists(stop):
    rec = (b'%08d' % i) * 512  # 4096 bytes
    if os.write(fd, rec) != len(rec):
        sys.exit('short write')
    # a file per record too: names and data of other inodes
    with open('%s/r%06d' % (d, i), 'wb') as f:
        f.write(b'%08d' % i)
    log.write('%d\n' % i)
    i += 1
os.close(fd)
PYEOF
writer=$!

# -1 until the writer has logged a record (the log exists but is empty at
# first: a loaded machine can take longer than the first sleep to write one)
last_acked() {
	local l
	l=$(tail -n 1 "$TMP/acked" 2>/dev/null)
	echo "${l:--1}"
}
for n in 1 2 3 4 5; do
	sleep 0.3
	before=$(last_acked)
	"$WTGFS" snapshot "$m" "w$n" || fail "snapshot w$n failed"
	after=$(last_acked)
	echo "w$n: acknowledged $before before, $after after"
	echo "$n $before $after" >>"$TMP/points"
done
touch "$TMP/stop"
wait "$writer" || fail "the writer failed"

while read -r n before after; do
	wtg_mount "$d" "$a" --at "w$n"
	python3 - "$a/w" "$before" "$after" <<'PYEOF' || fail "snapshot w$n is not a consistent point"
import os, sys
d, before, after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = open(d + '/records', 'rb').read() if os.path.exists(d + '/records') else b''
if len(data) % 4096:
    sys.exit('a record is cut: %d bytes' % len(data))
k = len(data) // 4096
for i in range(k):
    if data[i * 4096:(i + 1) * 4096] != (b'%08d' % i) * 512:
        sys.exit('record %d is not what was written' % i)
files = sorted(n for n in os.listdir(d) if n.startswith('r') and n != 'records')
want = ['r%06d' % i for i in range(len(files))]
if files != want:
    sys.exit('the record files are not a prefix: %s...' % files[:5])
for i, n in enumerate(files):
    if open(d + '/' + n, 'rb').read() not in (b'%08d' % i, b''):
        sys.exit('%s holds the wrong bytes' % n)
# records 0..before were acknowledged before the snapshot began: all in;
# after it returned at most the write then in flight is in beyond 'after'
if k < before + 1 or k > after + 2:
    sys.exit('%d records, acknowledged %d before and %d after' % (k, before + 1, after + 1))
if len(files) < before + 1 or len(files) > after + 2:
    sys.exit('%d files, acknowledged %d before and %d after' % (len(files), before + 1, after + 1))
print('w: %d records, %d files: a prefix, between %d and %d' % (k, len(files), before + 1, after + 2))
PYEOF
	wtg_umount "$a"
done <"$TMP/points"
wtg_umount "$m"
"$WTGFS" verify "$d" >/dev/null || fail "verify failed"
echo PASS
