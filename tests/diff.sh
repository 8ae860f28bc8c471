#!/bin/bash
# wtgfs diff: every kind of change made through a read-write mount shows
# with its code and what changed (data ranges, size, attributes by name,
# security descriptor in SDDL, named streams, reparse data, DOS name, hard
# links, object id, extended attributes, times with --times); --json parsed and checked field by
# field; --hives on a hive edited with hivexsh -w lists exactly the key
# added, the value changed and the value deleted; a diff across branches
# after a rollback; the path filter; -z; --stat; a diff beside a running
# mount; exit codes 0 equal, 1 different, 2 error.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool hivexsh setfattr getfattr
[ -x /usr/bin/python3 ] || missing "/usr/bin/python3 is not installed"
test_images small

LAYERS="$top_builddir/tests/delta_layers"
d="$TMP/d.delta"
m="$TMP/mnt"
S=Windows/System32
"$WTGFS" init "$d" "$IMAGES/lzx.wim" >/dev/null || fail "wtgfs init failed"
"$LAYERS" snapshot "$d" s0 || fail "snapshot s0"

# expect_rc RC CMD...: runs CMD (output in $TMP/out) and checks its status
expect_rc() {
	local want=$1 rc=0
	shift
	"$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$TMP/out" "$TMP/err"; fail "'$*' exited $rc, not $want"; }
}

# ---- nothing changed yet: equal
expect_rc 0 "$WTGFS" diff "$d"
[ -s "$TMP/out" ] && fail "a diff of equal versions printed something"
expect_rc 0 "$WTGFS" diff "$d" base s0 --json
[ "$(wc -l <"$TMP/out")" = 1 ] || fail "--json of equal versions is not one header line"

# ---- one change of every kind
wtg_mount "$d" "$m"
echo hello >"$m/newfile.txt"
mkdir "$m/newdir"
printf 'appended' >>"$m/$S/notepad.exe"                       # data + size
dd if=/dev/urandom of="$m/$S/chunks3plus1.bin" bs=4096 count=1 seek=10 conv=notrunc status=none # data only
mv "$m/$S/api.dll" "$m/$S/api-renamed.dll"                   # R
chmod a-w "$m/$S/auth.sys"                                    # +readonly
setfattr -n system.ntfs_attrib_be -v 0x00000022 "$m/$S/bootprint.xml" # +hidden
ln "$m/$S/crypt.dll" "$m/$S/crypt-link.dll"                   # links +
setfattr -n user.Zone.Identifier -v "[ZoneTransfer]" "$m/$S/drivers/etc/hosts" # stream +
getfattr -n system.ntfs_acl -e hex "$m" | sed -n 's/^system.ntfs_acl=//p' >"$TMP/rootacl"
setfattr -n system.ntfs_acl -v "$(cat "$TMP/rootacl")" "$m/$S/cfg.dll" # SD
setfattr -n system.ntfs_object_id -v 0x00112233445566778899aabbccddeeff "$m/$S/cfg.dll"
setfattr -n system.ntfs_dos_name -v "CHUNKS~1.BIN" "$m/$S/chunks3plus1.bin" # DOS name
setfattr -n system.ntfs_ea -v 0x1000000000030100414243007a000000 "$m/$S/cloudcom.exe" # EA
ln -s Windows/System32 "$m/sys32link"                         # A symlink
ln -s Windows "$m/retarget"
rm "$m/$S/blue.ocx"                                           # D
rm "$m/$S/blue.cpl" && mkdir "$m/$S/blue.cpl"                 # T (file -> directory)
rm "$m/$S/MRT.exe" && echo new >"$m/$S/MRT.exe" # replaced
touch -d 2020-01-01 "$m/$S/Mgr.xml"                            # times only
wtg_umount "$m"
"$LAYERS" snapshot "$d" s1 || fail "snapshot s1"
wtg_mount "$d" "$m"
rp=$(getfattr -h -n system.ntfs_reparse_data -e hex "$m/sys32link" | sed -n 's/^system.ntfs_reparse_data=//p')
setfattr -h -n system.ntfs_reparse_data -v "$rp" "$m/retarget"     # reparse target
wtg_umount "$m"

expect_rc 1 "$WTGFS" diff --name-status "$d" s0
cat >"$TMP/want" <<EOF
R	$S/api.dll	$S/api-renamed.dll
M	$S/auth.sys
T	$S/blue.cpl
D	$S/blue.ocx
M	$S/bootprint.xml
M	$S/cfg.dll
M	$S/chunks3plus1.bin
M	$S/cloudcom.exe
M	$S/crypt.dll
M	$S/drivers/etc/hosts
M	$S/MRT.exe
M	$S/notepad.exe
EOF
# blue.cpl has a second name in WinSxS, so its inode lives on there with a link less
grep -v '^[AM].*WinSxS' "$TMP/out" | grep -v 'new\|sys32link\|retarget' >"$TMP/got"
sort "$TMP/want" >"$TMP/want.s"
sort "$TMP/got" >"$TMP/got.s"
diff "$TMP/want.s" "$TMP/got.s" || fail "--name-status lists other paths than expected"
grep -qx "A	newfile.txt" "$TMP/out" || fail "no A for the new file"
grep -qx "A	newdir" "$TMP/out" || fail "no A for the new directory"
grep -qx "A	sys32link" "$TMP/out" || fail "no A for the new symlink"
grep -qx "A	retarget" "$TMP/out" || fail "no A for the symlink made twice"
grep -q "Mgr.xml" "$TMP/out" && fail "a change of times alone shows without --times"
grep -q "WinSxS.*blue.cpl" "$TMP/out" || fail "the inode that lost its System32 name is not listed"

# what changed, in words
expect_rc 1 "$WTGFS" diff "$d" s0
line() { grep -F "	$1	" "$TMP/out" || grep -F "	$1" "$TMP/out" || fail "no line for $1"; }
line "$S/notepad.exe" | grep -q 'data .*; size 201216->201224' || fail "notepad.exe: $(line "$S/notepad.exe")"
line "$S/chunks3plus1.bin" | grep -q "data 0-65535 (65536 bytes)" || fail "chunks3plus1.bin data: $(line "$S/chunks3plus1.bin")"
line "$S/chunks3plus1.bin" | grep -q 'size' && fail "chunks3plus1.bin: a size change that is none"
line "$S/chunks3plus1.bin" | grep -q 'dos name (none)->CHUNKS~1.BIN' || fail "chunks3plus1.bin dos name: $(line "$S/chunks3plus1.bin")"
line "$S/auth.sys" | grep -q 'attributes +readonly$' || fail "auth.sys: $(line "$S/auth.sys")"
line "$S/bootprint.xml" | grep -q 'attributes +hidden$' || fail "bootprint.xml: $(line "$S/bootprint.xml")"
line "$S/crypt.dll" | grep -q "links +$S/crypt-link.dll" || fail "crypt.dll: $(line "$S/crypt.dll")"
line "$S/drivers/etc/hosts" | grep -q 'streams +Zone.Identifier' || fail "hosts: $(line "$S/drivers/etc/hosts")"
line "$S/cfg.dll" | grep -q 'security owner S-1-5-80-[-0-9]*->SY group S-1-5-80-[-0-9]*->SY' || fail "cfg.dll owner: $(line "$S/cfg.dll")"
line "$S/cfg.dll" | grep -qF '+(A;OICI;FA;;;BA)' || fail "cfg.dll: no ACE added"
line "$S/cfg.dll" | grep -qF -- '-(A;;FX;;;BU)' || fail "cfg.dll: no ACE removed"
line "$S/cfg.dll" | grep -q 'object id (none)->00112233445566778899aabbccddeeff' || fail "cfg.dll oid"
line "$S/cloudcom.exe" | grep -q 'ea (none)->ABC$' || fail "cloudcom.exe ea: $(line "$S/cloudcom.exe")"
line "$S/blue.cpl" | grep -q 'replaced; file->directory' || fail "blue.cpl: $(line "$S/blue.cpl")"
line "$S/MRT.exe" | grep -q '^M.*replaced; data 0-.*size [0-9]*->4' || fail "MRT.exe: $(line "$S/MRT.exe")"
line "retarget" | grep -q 'symlink -> Windows/System32' || fail "retarget: $(line retarget)"
line "sys32link" | grep -q 'symlink -> Windows/System32' || fail "sys32link: $(line sys32link)"

# the reparse data of one symlink between two snapshots
expect_rc 1 "$WTGFS" diff "$d" s1 HEAD
grep -qx 'M	retarget	reparse symlink:Windows->symlink:Windows/System32' "$TMP/out" ||
	{ cat "$TMP/out"; fail "the symlink's new target is not a reparse change"; }
[ "$(wc -l <"$TMP/out")" = 1 ] || { cat "$TMP/out"; fail "s1..HEAD lists more than the symlink"; }

# times with --times
expect_rc 1 "$WTGFS" diff --times "$d" s0 s1 -- "$S/Mgr.xml"
grep -q "^M	$S/Mgr.xml	times mtime [-0-9T:.]*Z->2020-01-01T00:00:00.0000000Z" "$TMP/out" ||
	{ cat "$TMP/out"; fail "--times does not show the new write time"; }

# the status column
expect_rc 1 "$WTGFS" diff --status "$d" s0
grep -qx "M cs........	$S/notepad.exe" "$TMP/out" || fail "status column of notepad.exe"
grep -qx "M ..a.......	$S/auth.sys" "$TMP/out" || fail "status column of auth.sys"
grep -qx "M ...p....o.	$S/cfg.dll" "$TMP/out" || fail "status column of cfg.dll"
grep -qx "M ....n.....	$S/drivers/etc/hosts" "$TMP/out" || fail "status column of hosts"
grep -qx "M c.....d...	$S/chunks3plus1.bin" "$TMP/out" || fail "status column of chunks3plus1.bin"
grep -qx "M .......l..	$S/crypt.dll" "$TMP/out" || fail "status column of crypt.dll"
grep -qx "M .........e	$S/cloudcom.exe" "$TMP/out" || fail "status column of cloudcom.exe"
grep -q "^A ..++.+....	sys32link" "$TMP/out" || fail "status column of an added symlink"

# ---- JSON Lines, field by field
expect_rc 1 "$WTGFS" diff --json "$d" s0
/usr/bin/python3 - "$TMP/out" "$S" <<'PY' || fail "--json is not what it should be"
import json, sys
lines = open(sys.argv[1], encoding='utf-8').read().splitlines()
S = sys.argv[2]
objs = [json.loads(l) for l in lines]
h = objs[0]
assert h == {"type": "header", "schema": "wtgfs-diff", "version": 1, "delta": h["delta"],
             "from": "s0", "to": "HEAD", "times": False}, h
by = {o["path"]: o for o in objs[1:]}
assert all(o["type"] == "change" for o in objs[1:])
n = by[S + "/notepad.exe"]
assert n["status"] == "M" and n["old_path"] is None and n["replaced"] is False
assert n["changed"] == ["data", "size"], n["changed"]
assert n["size"] == {"old": 201216, "new": 201224}
assert n["data"]["ranges"] == [{"offset": 196608, "length": 201224 - 196608}], n["data"]
assert n["data"]["bytes"] == 201224 - 196608
assert n["old"]["ino"] == n["new"]["ino"] and n["new"]["type"] == "file"
c = by[S + "/chunks3plus1.bin"]
assert c["changed"] == ["data", "dos_name"], c["changed"]
assert c["data"]["ranges"] == [{"offset": 0, "length": 65536}], c["data"]
assert c["dos_name"] == {"old": None, "new": "CHUNKS~1.BIN"}
r = by[S + "/api-renamed.dll"]
assert r["status"] == "R" and r["old_path"] == S + "/api.dll" and r["changed"] == []
a = by[S + "/auth.sys"]
assert a["attributes"]["added"] == ["readonly"] and a["attributes"]["removed"] == []
assert a["attributes"]["new"] == a["attributes"]["old"] | 1
b = by[S + "/bootprint.xml"]
assert b["attributes"]["added"] == ["hidden"], b
s = by[S + "/cfg.dll"]
assert s["changed"] == ["security", "object_id"], s["changed"]
sec = s["security"]
assert sec["owner"]["new"] == "SY" and sec["owner"]["old"].startswith("S-1-5-80-")
assert sec["group"]["new"] == "SY"
assert "(A;OICI;FA;;;BA)" in sec["dacl_added"] and "(A;;FX;;;BU)" in sec["dacl_removed"]
assert isinstance(sec["old"], str) and isinstance(sec["new"], str)
assert s["object_id"] == {"old": None, "new": "00112233445566778899aabbccddeeff"}
e = by[S + "/cloudcom.exe"]
assert e["changed"] == ["ea"], e["changed"]
assert e["ea"] == {"old": None, "new": "1000000000030100414243007a000000"}, e["ea"]
l = by[S + "/crypt.dll"]
assert l["links"] == {"added": [S + "/crypt-link.dll"], "removed": []}
assert sorted(l["new"]["links"]) == sorted(l["old"]["links"] + [S + "/crypt-link.dll"])
z = by[S + "/drivers/etc/hosts"]
assert z["streams"] == {"added": ["Zone.Identifier"], "removed": [], "changed": []}
assert {"name": "Zone.Identifier", "size": 14} in z["new"]["streams"]
t = by[S + "/blue.cpl"]
assert t["status"] == "T" and t["replaced"] is True
assert t["old"]["type"] == "file" and t["new"]["type"] == "directory"
assert "directory" in t["attributes"]["added"]
dd = by[S + "/blue.ocx"]
assert dd["status"] == "D" and dd["new"] is None and dd["old"]["size"] > 0
sl = by["sys32link"]
assert sl["status"] == "A" and sl["new"]["type"] == "symlink" and sl["old"] is None
assert sl["reparse"]["new"]["tag"] == 0xA000000C and sl["reparse"]["new"]["target"] == "Windows/System32"
nf = by["newfile.txt"]
assert nf["status"] == "A" and nf["size"] == {"old": 0, "new": 6}
mr = by[S + "/MRT.exe"]
assert mr["status"] == "M" and mr["replaced"] is True and mr["old"]["ino"] != mr["new"]["ino"]
for o in objs[1:]:
    for k in ("size",):
        if k in o:
            assert isinstance(o[k]["old"], int) and isinstance(o[k]["new"], int)
print("json ok:", len(objs) - 1, "changes")
PY

# ---- registry hives: a key added, a value changed, a value deleted
hive=$S/config/SOFTWARE
"$LAYERS" snapshot "$d" s2 || fail "snapshot s2"
wtg_mount "$d" "$m"
printf 'add WtgfsKey\nsetval 1\nHiveName\nstring:changed by wtgfs\ncommit\n' |
	hivexsh -w "$m/$hive" >"$TMP/hivexsh.out" 2>&1 || { cat "$TMP/hivexsh.out"; fail "hivexsh -w failed"; }
# diff beside the running mount (the delta is opened read-only)
expect_rc 1 "$WTGFS" diff --name-status "$d" s2 HEAD
grep -qx "M	$hive" "$TMP/out" || { cat "$TMP/out"; fail "a diff beside the mount does not see the hive"; }
wtg_umount "$m"
expect_rc 1 "$WTGFS" diff --hives "$d" s2
cat >"$TMP/want" <<'EOF'
    ~value \HiveName: REG_SZ SOFTWARE -> REG_SZ changed by wtgfs
    -value \(default): REG_SZ default value
    +key \WtgfsKey
EOF
grep '^    ' "$TMP/out" >"$TMP/got"
diff "$TMP/want" "$TMP/got" || fail "--hives lists other registry changes than made"
expect_rc 1 "$WTGFS" diff --hives --json "$d" s2
/usr/bin/python3 - "$TMP/out" "$hive" <<'PY' || fail "--hives --json is not what it should be"
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1])]
e = [o for o in objs if o.get("path") == sys.argv[2]][0]
h = e["hives"]
assert [x["change"] for x in h] == ["value_changed", "value_removed", "key_added"], h
assert h[0]["value"] == "HiveName" and h[0]["old"]["text"] == "SOFTWARE"
assert h[0]["new"] == {"type": 1, "type_name": "REG_SZ",
                       "data": "changed by wtgfs\0".encode("utf-16-le").hex(), "text": "changed by wtgfs"}
assert h[1]["value"] == "" and h[1]["new"] is None and h[1]["old"]["type_name"] == "REG_SZ"
assert h[2]["key"] == "WtgfsKey" and h[2]["value"] is None
PY

# ---- across branches: s1 and a branch made after a rollback to s0
"$LAYERS" rollback "$d" s0 || fail "rollback to s0"
wtg_mount "$d" "$m"
[ -e "$m/newfile.txt" ] && fail "the rollback did not take newfile.txt away"
echo other >"$m/branchfile.txt"
wtg_umount "$m"
"$LAYERS" snapshot "$d" b1 || fail "snapshot b1"
expect_rc 1 "$WTGFS" diff --name-status "$d" s1 b1
grep -qx "A	branchfile.txt" "$TMP/out" || fail "cross-branch: no A for the branch's file"
grep -qx "D	newfile.txt" "$TMP/out" || fail "cross-branch: no D for the other branch's file"
grep -qx "R	$S/api-renamed.dll	$S/api.dll" "$TMP/out" || fail "cross-branch: the rename is not undone"
expect_rc 1 "$WTGFS" diff --name-status "$d" b1 s1
grep -qx "D	branchfile.txt" "$TMP/out" || fail "cross-branch backwards: no D"
expect_rc 1 "$WTGFS" diff --name-status "$d" base b1
[ "$(cat "$TMP/out")" = "A	branchfile.txt" ] || { cat "$TMP/out"; fail "base..b1 is not the one new file"; }
expect_rc 0 "$WTGFS" diff --name-status "$d"   # default: last snapshot (b1) .. HEAD
[ -s "$TMP/out" ] && fail "HEAD has changes since b1: $(cat "$TMP/out")"

# ---- the path filter, -z, --stat
expect_rc 1 "$WTGFS" diff --name-status "$d" s0 s1 -- windows/system32/AUTH.SYS "$S/drivers"
printf 'M\t%s\nM\t%s\n' "$S/auth.sys" "$S/drivers/etc/hosts" >"$TMP/want"
diff "$TMP/want" "$TMP/out" || fail "the path filter keeps other paths"
expect_rc 0 "$WTGFS" diff "$d" s0 s1 -- Program\ Files
expect_rc 1 "$WTGFS" diff -z --name-status "$d" s0 s1 -- "$S/api.dll" "$S/auth.sys"
printf 'R\0%s\0%s\0M\0%s\0' "$S/api.dll" "$S/api-renamed.dll" "$S/auth.sys" | cmp - "$TMP/out" ||
	fail "-z output is not NUL-separated fields"
expect_rc 1 "$WTGFS" diff --stat "$d" s0 s1
grep -q "^ $S  *|  *[0-9]* *[0-9]* +*~*-*$" "$TMP/out" || { cat "$TMP/out"; fail "--stat has no bar for $S"; }
total=$("$WTGFS" diff --name-status "$d" s0 s1 | wc -l)
grep -q "^ $total paths changed in [0-9]* directories: 4 added, 1 deleted, " "$TMP/out" ||
	{ cat "$TMP/out"; fail "--stat summary"; }

# ---- errors: exit 2 with one line
expect_rc 2 "$WTGFS" diff "$d" nosuch
grep -q "no snapshot 'nosuch'" "$TMP/err" || fail "no message for a missing snapshot"
expect_rc 2 "$WTGFS" diff --bogus "$d"
expect_rc 2 "$WTGFS" diff "$TMP/nothing.delta"
expect_rc 2 "$WTGFS" diff "$d" s0 s1 s2
expect_rc 2 "$WTGFS" diff --json --stat "$d"
expect_rc 0 "$WTGFS" diff --help
expect_rc 1 "$WTGFS" diff -q "$d" s0 s1
[ -s "$TMP/out" ] && fail "--quiet printed something"
echo PASS
