#!/bin/bash
# Layers, end to end: snapshot / write / rollback cycles on a closed delta
# and on a mounted one, each state checked against the tree hash it had;
# a rollback undone; a file open across a rollback; --at beside a
# read-write mount; squash and gc keep every remaining snapshot's content;
# verify and verify --base; another user cannot snapshot or roll back an
# allow_other mount.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3 getfattr setfattr runuser
test_images small

d="$TMP/l.delta"
m="$TMP/mnt"
a="$TMP/at"
hash() { python3 "$top_srcdir/tests/tree-hash.py" "$@"; }
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"

# hash_at SNAP: the tree hash of a read-only mount of snapshot SNAP
hash_at() {
	wtg_mount "$d" "$a" --at "$1"
	hash "$a"
	wtg_umount "$a"
}

# changes N: a round of changes of every kind, different for each N
changes() {
	local n=$1
	echo "round $n" >"$m/round-$n.txt" || fail "round $n: cannot create"
	printf 'line %s\n' "$n" >>"$m/Windows/System32/drivers/etc/hosts" || fail "round $n: cannot append"
	printf "R$n" | dd of="$m/Windows/System32/chunks3plus1.bin" bs=1 seek=$((70000 + n)) conv=notrunc status=none ||
		fail "round $n: cannot write inside a base file"
	mkdir -p "$m/dir-$n/sub" && echo x >"$m/dir-$n/sub/f" || fail "round $n: mkdir"
	setfattr -n user.round -v "$n" "$m/Windows/win.ini" 2>/dev/null ||
		setfattr -n user.round -v "$n" "$m/round-$n.txt" || fail "round $n: setfattr"
	case $n in
	1) rm -f "$m/Windows/System32/config/SAM" || fail "round 1: rm" ;;
	2) mv "$m/round-1.txt" "$m/renamed-1.txt" || fail "round 2: mv" ;;
	3) ln "$m/round-3.txt" "$m/Windows/hardlink-3" && ln -s ../round-3.txt "$m/dir-3/link" || fail "round 3: links" ;;
	esac
	sync
}

echo "== a closed delta: snapshot, write, rollback, undo"
wtg_mount "$d" "$m"
changes 1
h1=$(hash "$m")
wtg_umount "$m"
"$WTGFS" snapshot "$d" s1 -m "round one" || fail "snapshot s1 failed"
wtg_mount "$d" "$m"
changes 2
h2=$(hash "$m")
wtg_umount "$m"
"$WTGFS" snapshot "$d" s2 || fail "snapshot s2 failed"
wtg_mount "$d" "$m"
changes 3
h3=$(hash "$m")
wtg_umount "$m"
[ "$h1" != "$h2" ] && [ "$h2" != "$h3" ] || fail "the rounds did not change the tree"
"$WTGFS" rollback "$d" s1 >"$TMP/out" || fail "rollback to s1 failed"
kept=$(sed -n "s/.*kept as '\([^']*\)'.*/\1/p" "$TMP/out")
[ -n "$kept" ] || { cat "$TMP/out"; fail "rollback did not say where the working layer went"; }
wtg_mount "$d" "$m"
[ "$(hash "$m")" = "$h1" ] || fail "after rollback to s1 the tree is not s1's"
wtg_umount "$m"
"$WTGFS" log "$d" --all | grep -q "$kept" || fail "log --all does not list $kept"
"$WTGFS" log "$d" | grep -q "$kept" && fail "log without --all lists $kept"
"$WTGFS" rollback "$d" "$kept" >/dev/null || fail "rollback to $kept failed"
wtg_mount "$d" "$m"
[ "$(hash "$m")" = "$h3" ] || fail "rolling back to $kept did not bring round 3 back"
wtg_umount "$m"
[ "$(hash_at s1)" = "$h1" ] || fail "snapshot s1 changed"
[ "$(hash_at s2)" = "$h2" ] || fail "snapshot s2 changed"
"$WTGFS" rollback "$d" nope 2>"$TMP/err" && fail "rollback to a missing snapshot worked"
grep -q "no snapshot 'nope'" "$TMP/err" || { cat "$TMP/err"; fail "bad message for a missing snapshot"; }
"$WTGFS" snapshot "$d" s1 2>"$TMP/err" && fail "a second snapshot s1 was taken"
"$WTGFS" snapshot "$d" ../x 2>"$TMP/err" && fail "a snapshot named ../x was taken"
"$WTGFS" verify --base "$d" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "verify --base failed"; }
grep -q "base clean" "$TMP/verify" || { cat "$TMP/verify"; fail "verify --base did not check the base"; }
grep -q "base clean: 0 " "$TMP/verify" && { cat "$TMP/verify"; fail "verify --base read no base stream"; }

echo "== a mounted delta: snapshot, rollback with a file open, undo"
wtg_mount "$d" "$m"
ha=$(hash "$m")
"$WTGFS" snapshot "$m" live1 -m "while mounted" || fail "snapshot of the mount failed"
changes 4
echo "open across" >"$m/open.txt"
"$WTGFS" snapshot "$d" live2 || fail "snapshot through the delta's path failed"
changes 5
hb=$(hash "$m")
# a file open across the rollback: ESTALE, then fine once opened again
python3 - "$m" "$WTGFS" <<'PYEOF' || fail "a file open across a rollback misbehaved"
import errno, os, subprocess, sys
m, wtgfs = sys.argv[1], sys.argv[2]
fd = os.open(m + '/Windows/System32/drivers/etc/hosts', os.O_RDWR)
os.read(fd, 10)
out = subprocess.run([wtgfs, 'rollback', m, 'live2'], capture_output=True, text=True)
if out.returncode:
    sys.exit('rollback failed: ' + out.stderr)
for op in (lambda: os.pread(fd, 10, 0), lambda: os.pwrite(fd, b'x', 0)):
    try:
        op()
        sys.exit('a handle from before the rollback still works')
    except OSError as e:
        if e.errno != errno.ESTALE:
            sys.exit('expected ESTALE, got %s' % e)
os.close(fd)
with open(m + '/Windows/System32/drivers/etc/hosts') as f:
    if 'line 5' in f.read() or 'line 4' not in open(m + '/Windows/System32/drivers/etc/hosts').read():
        sys.exit('hosts does not read as live2 had it')
print(out.stdout.strip())
PYEOF
[ -e "$m/round-5.txt" ] && fail "round 5 is still there after the rollback"
[ "$(cat "$m/open.txt")" = "open across" ] || fail "open.txt is not as live2 had it"
"$WTGFS" rollback "$m" live1 >"$TMP/out" || fail "rollback of the mount to live1 failed"
[ "$(hash "$m")" = "$ha" ] || fail "after rollback to live1 the mount is not live1"
"$WTGFS" log "$d" --all >"$TMP/log" || fail "log of a mounted delta failed"
k1=$(grep -o "abandoned-[0-9.]*" "$TMP/log" | sort -u | tr '\n' ' ')
echo "kept: $k1"
# undo: the layer the first mounted rollback left holds round 5
for k in $k1; do
	"$WTGFS" rollback "$m" "$k" >/dev/null || fail "rollback to $k failed"
	[ "$(hash "$m")" = "$hb" ] && { undone=$k; break; }
done
[ -n "${undone:-}" ] || fail "no kept layer brought round 5 back"
echo "== --at beside the read-write mount"
wtg_mount "$d" "$a" --at live1
[ "$(hash "$a")" = "$ha" ] || fail "--at live1 does not show live1"
(echo x >"$a/new") 2>/dev/null && fail "a --at mount took a write"
touch "$m/beside" || fail "the read-write mount stopped taking writes beside --at"
[ -e "$a/beside" ] && fail "a write to HEAD shows in --at live1"
wtg_umount "$a"
wtg_umount "$m"
"$WTGFS" verify "$d" >/dev/null || fail "verify after the mounted cycles failed"

echo "== squash and gc keep every remaining snapshot"
declare -A before
for s in s1 s2 live1 live2; do before[$s]=$(hash_at "$s"); done
# a branch on live1: HEAD there, what was HEAD kept aside
"$WTGFS" rollback "$d" live1 >/dev/null || fail "rollback to live1 failed"
wtg_mount "$d" "$m"
echo branch >"$m/branch.txt"
hhead=$(hash "$m")
wtg_umount "$m"
"$WTGFS" log --json --all "$d" >"$TMP/log.json" || fail "log --json failed"
python3 - "$TMP/log.json" <<'PYEOF' || fail "log --json --all is not what it should be"
import json, sys
d = json.load(open(sys.argv[1]))
ls = d["layers"]
ids = [l["id"] for l in ls]
assert sum(l["head"] for l in ls) == 1, ls
names = {l["snapshot"]: l for l in ls if l["snapshot"]}
assert {"s1", "s2", "live1", "live2"} <= set(names), names
kept = [l for l in ls if l["abandoned"]]
assert kept and all(l["abandoned_at"] > 0 and l["snapshot"] is None for l in kept), kept
head = [l for l in ls if l["head"]][0]
assert head["parent"] == names["live1"]["id"] and head["files"] >= 1, head
for l in ls:
    assert l["parent"] == 0 or l["parent"] in ids[:ids.index(l["id"])], l
assert names["s2"]["files"] > 0 and names["s2"]["chunk_bytes"] > 0, names["s2"]
PYEOF
# a --at view holds off what would drop what it reads
wtg_mount "$d" "$a" --at s2
"$WTGFS" gc "$d" --expire now 2>"$TMP/err" && fail "gc ran under a --at mount"
grep -q "mounted with --at" "$TMP/err" || { cat "$TMP/err"; fail "gc refused without saying why"; }
"$WTGFS" squash "$d" base..s2 2>"$TMP/err" && fail "squash ran under a --at mount"
wtg_umount "$a"
"$WTGFS" squash "$d" s2..live2 2>"$TMP/err" && fail "squash across a branch point worked"
grep -q "grows from" "$TMP/err" || { cat "$TMP/err"; fail "squash refused without saying why"; }
"$WTGFS" squash "$d" base..s2 || fail "squash base..s2 failed"
"$WTGFS" log "$d" | grep -q " s1 " && fail "s1 is still listed after squash base..s2"
"$WTGFS" gc "$d" --expire now >"$TMP/gc" || fail "gc failed"
cat "$TMP/gc"
grep -q "dropped [1-9]" "$TMP/gc" || fail "gc --expire now dropped no layer a rollback kept"
"$WTGFS" log "$d" --all | grep -q abandoned- && fail "gc --expire now kept an abandoned layer"
for s in s2 live1 live2; do
	[ "$(hash_at "$s")" = "${before[$s]}" ] || fail "snapshot $s changed through squash and gc"
done
wtg_mount "$d" "$m"
[ "$(hash "$m")" = "$hhead" ] || fail "HEAD changed through squash and gc"
wtg_umount "$m"
"$WTGFS" verify --base "$d" >/dev/null || fail "verify --base after squash and gc failed"

echo "== another user cannot snapshot or roll back an allow_other mount"
chmod 755 "$TMP"
wtg_mount "$d" "$m" -o allow_other
ls "$m" >/dev/null
runuser -u nobody -- ls "$m" >/dev/null || fail "allow_other does not let another user in"
runuser -u nobody -- "$WTGFS" snapshot "$m" intruder 2>"$TMP/err" && fail "another user took a snapshot"
grep -q "only the user who mounted it" "$TMP/err" || { cat "$TMP/err"; fail "the refusal does not say who may"; }
runuser -u nobody -- "$WTGFS" rollback "$m" s2 2>"$TMP/err" && fail "another user rolled the mount back"
grep -q "only the user who mounted it" "$TMP/err" || { cat "$TMP/err"; fail "the refusal does not say who may"; }
"$WTGFS" snapshot "$m" owner || fail "the owner cannot snapshot"
wtg_umount "$m"
"$WTGFS" log "$d" | grep -q intruder && fail "the intruder's snapshot is there"
"$WTGFS" verify "$d" >/dev/null || fail "verify at the end failed"
echo PASS
