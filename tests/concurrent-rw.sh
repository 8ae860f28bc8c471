#!/bin/bash
# Concurrent writers on one delta mount: four processes at once write their
# own files at random offsets, disjoint blocks of one shared file (also one
# inside a base file), and create, rename and remove names in one shared
# directory.  What each wrote must read back exactly, before and after a
# remount, and the delta must verify clean.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3
test_images small

d="$TMP/c.delta"
m="$TMP/mnt"
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
wtg_mount "$d" "$m" -o threads=8

cat >"$TMP/writer.py" <<'PY'
import hashlib, os, random, sys
m, me, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(me)
own = f"{m}/shared/own-{me}.bin"
model = bytearray()
with open(own, "wb") as f:
    for _ in range(300):
        off = r.randrange(0, 3 << 20)
        data = r.randbytes(r.randrange(1, 70000))
        f.seek(off)
        f.write(data)
        if len(model) < off:
            model.extend(bytes(off - len(model)))
        model[off:off + len(data)] = data
        if r.random() < 0.1:
            f.flush()
            os.fsync(f.fileno())
# block me, me + n, me + 2n, ... of the shared files
for path in (f"{m}/shared/all.bin", f"{m}/Windows/System32/chunks3plus1.bin"):
    fd = os.open(path, os.O_WRONLY)
    for b in range(me, 64, n):
        os.pwrite(fd, bytes([me + 1]) * 4096, b * 4096)
    os.close(fd)
# names coming and going
for i in range(200):
    a, b = f"{m}/shared/n-{me}-{i}", f"{m}/shared/N-{me}-{i}-moved"
    with open(a, "w") as f:
        f.write(f"{me} {i}")
    os.rename(a, b)
    if i % 2:
        os.unlink(b)
with open(f"{m}/shared/own-{me}.sha", "w") as f:
    f.write(hashlib.sha256(model).hexdigest())
PY

mkdir "$m/shared" || fail "mkdir failed"
head -c $((64 * 4096)) /dev/zero >"$m/shared/all.bin" || fail "cannot make the shared file"
base_size=$(stat -c %s "$m/Windows/System32/chunks3plus1.bin")
cp "$m/Windows/System32/chunks3plus1.bin" "$TMP/c3" || fail "cannot read a base file"
pids=""
for me in 0 1 2 3; do
	python3 "$TMP/writer.py" "$m" "$me" 4 &
	pids="$pids $!"
done
for p in $pids; do
	wait "$p" || fail "a writer failed"
done

check() { # check WHEN
	python3 - "$m" "$TMP/c3" "$base_size" "$1" <<'PY' || fail "$1: what the writers wrote does not read back"
import hashlib, sys
m, c3, base_size, when = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
for me in range(4):
    got = hashlib.sha256(open(f"{m}/shared/own-{me}.bin", "rb").read()).hexdigest()
    want = open(f"{m}/shared/own-{me}.sha").read()
    assert got == want, (when, "own", me)
want = bytearray(open(c3, "rb").read())
want.extend(bytes(max(0, 64 * 4096 - len(want))))
shared = bytearray(64 * 4096)
for b in range(64):
    want[b * 4096:(b + 1) * 4096] = bytes([b % 4 + 1]) * 4096
    shared[b * 4096:(b + 1) * 4096] = bytes([b % 4 + 1]) * 4096
assert open(f"{m}/shared/all.bin", "rb").read() == shared, (when, "all.bin")
assert open(f"{m}/Windows/System32/chunks3plus1.bin", "rb").read() == want, (when, "base file")
import os
names = sorted(n for n in os.listdir(f"{m}/shared") if n.startswith(("n-", "N-")))
assert names == sorted(f"N-{me}-{i}-moved" for me in range(4) for i in range(0, 200, 2)), (when, "names")
for me in range(4):
    for i in range(0, 200, 2):
        assert open(f"{m}/shared/N-{me}-{i}-moved").read() == f"{me} {i}"
print(f"{when}: every writer's bytes and names are there")
PY
}
check "before the remount"
wtg_umount "$m"
"$WTGFS" verify "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify failed"; }
wtg_mount "$d" "$m"
check "after the remount"
wtg_umount "$m"
echo PASS
