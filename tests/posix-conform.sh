#!/bin/bash
# A focused POSIX conformance run (tests/posix-conform.py: open, rename,
# unlink, link, truncate, ftruncate, mkdir, rmdir, symlink, mknod, chmod,
# chown, utime) on a plain directory of the host (the reference), on an
# ntfs-3g mount of a fresh mkntfs volume and on a wtgfs delta mount, as
# root and as 'nobody' (on mounts with allow_other,umask=0).  Fails where
# wtgfs differs from the reference in a case ntfs-3g gets right; prints
# how many cases each matches.
. "$(dirname "$0")/lib.sh"

need_root
need_fuse
need_tool mkntfs ntfs-3g setpriv
id nobody >/dev/null 2>&1 || skip "no user 'nobody' on this machine"
test_images small
chmod 755 "$TMP"
CONFORM=$top_srcdir/tests/posix-conform.py
# Debian's python (scripts/deps.sh), which 'nobody' can run too
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
}

run() { # OUT WHO DIR
	local out=$1 who=$2 dir=$3
	if [ "$who" = root ]; then
		"$PY" "$CONFORM" "$dir" >"$out" || fail "posix-conform.py failed in $dir"
	else
		as_nobody "$PY" "$CONFORM" "$dir" >"$out" || fail "posix-conform.py failed as nobody in $dir"
	fi
}

V=$TMP/vol.img
N=$TMP/ntfs
M=$TMP/m
D=$TMP/d.delta
mkdir -p "$TMP/plain" "$N"
chmod 777 "$TMP/plain"
truncate -s 64M "$V"
mkntfs -Q -F "$V" >/dev/null 2>&1 || fail "mkntfs failed"
"$WTGFS" init "$D" "$IMAGES/lzx.wim" >/dev/null || fail "init failed"

for who in root nobody; do
	opts=special_files=wsl
	wopts=()
	if [ "$who" = nobody ]; then
		opts=$opts,allow_other,umask=0
		wopts=(-o allow_other,umask=0)
	fi
	run "$TMP/plain-$who.json" $who "$TMP/plain"
	ntfs-3g -o "$opts" "$V" "$N" || fail "ntfs-3g mount failed"
	MOUNTS="$MOUNTS $N"
	run "$TMP/ntfs-3g-$who.json" $who "$N"
	fusermount3 -u "$N" || fail "cannot unmount ntfs-3g"
	wtg_mount "$D" "$M" "${wopts[@]}"
	run "$TMP/wtgfs-$who.json" $who "$M"
	wtg_umount "$M"
	# -o posix: in a directory open to all, as the reference is
	wtg_mount "$D" "$M" -o posix,allow_other
	mkdir -p "$M/pub" && chmod 0777 "$M/pub" || fail "cannot make a public directory with -o posix"
	run "$TMP/posix-$who.json" $who "$M/pub"
	wtg_umount "$M"
done

python3 - "$TMP" <<'EOF' || fail "wtgfs misses cases ntfs-3g passes"
import json, os, sys
tmp = sys.argv[1]
bad = 0
for who in ('root', 'nobody'):
    ref, n3g, wtg = (json.load(open(os.path.join(tmp, '%s-%s.json' % (k, who))))
                     for k in ('plain', 'ntfs-3g', 'wtgfs'))
    for case in sorted(ref):
        if ref[case] == n3g[case] == wtg[case]:
            continue
        worse = n3g[case] == ref[case] and wtg[case] != ref[case]
        bad += worse
        print('%-6s %-34s reference=%-18s ntfs-3g=%-18s wtgfs=%-18s%s' % (
            who, case, ref[case], n3g[case], wtg[case], '  <- worse' if worse else ''))
    print('%s: %d cases; as the reference: ntfs-3g %d, wtgfs %d' % (
        who, len(ref), sum(ref[c] == n3g[c] for c in ref), sum(ref[c] == wtg[c] for c in ref)))
sys.exit(1 if bad else 0)
EOF

# -o posix passes what the reference (ext4, tmpfs...) passes, less what NTFS
# cannot hold (man/wtgfs-mount.1, "-o posix"): none of these cases is one
python3 - "$TMP" <<'EOF' || fail "-o posix differs from the reference"
import json, os, sys
tmp = sys.argv[1]
bad = 0
for who in ('root', 'nobody'):
    ref, px = (json.load(open(os.path.join(tmp, '%s-%s.json' % (k, who)))) for k in ('plain', 'posix'))
    for case in sorted(ref):
        if ref[case] != px[case]:
            bad += 1
            print('-o posix %-6s %-34s reference=%-18s wtgfs=%s' % (who, case, ref[case], px[case]))
    print('-o posix, %s: %d cases; as the reference: %d' % (
        who, len(ref), sum(ref[c] == px[c] for c in ref)))
sys.exit(1 if bad else 0)
EOF
echo "PASS"
