#!/bin/bash
# wtgfs export: a WIM-based delta (a driver injected, a hive edited), one
# of its snapshots, a VHDX-based delta and a bare ESD image written as WIM
# images, new and appended to the delta's own base.  Each result is checked
# by tools nobody here wrote: wimverify, wiminfo --check, and wimapply in
# NTFS mode onto a fresh NTFS volume (mkntfs on a file), mounted with
# ntfs-3g and compared with a wtgfs mount of the source for file, byte for
# byte, xattr for xattr (security descriptors, attributes, streams, reparse
# points, DOS names, object ids, link counts).  An append keeps the earlier
# image as it was and grows the WIM by about the change; an export killed
# midway leaves OUT.wim as it was; the refusals say why.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool ntfs-3g mkntfs wimapply wiminfo wimverify hivexsh python3 jq sha256sum setfattr \
	qemu-img sfdisk ntfsls cmp
test_images small

CMP="$top_srcdir/tests/compare-trees.py"
export TMPDIR="$TMP/tmp"
mkdir -p "$TMPDIR"
cp "$IMAGES/lzx.wim" "$TMP/base.wim"
BASE="$TMP/base.wim"
D=Windows/System32/drivers

# applied WIM IMAGE MOUNT [compare-trees options]: applies IMAGE of WIM in
# NTFS mode onto a fresh NTFS volume and compares it with MOUNT
NAPPLY=0
applied() {
	local wim=$1 image=$2 src=$3 n=$((++NAPPLY))
	shift 3
	ntfs_apply "$wim" "$image" "$TMP/apply$n.img" "$TMP/ntfs$n"
	python3 "$CMP" "$@" "$src" "$TMP/ntfs$n" >"$TMP/cmp$n" 2>&1 ||
		{ cat "$TMP/cmp$n"; fail "image $image of '$wim' differs from '$src'"; }
	umount "$TMP/ntfs$n"
	rm -f "$TMP/apply$n.img"
	tail -n 1 "$TMP/cmp$n"
}

wim_clean() {
	local out
	out=$(wimverify "$1" 2>&1) || fail "wimverify '$1': $out"
	out=$(wiminfo --check "$1" 2>&1) || fail "wiminfo --check '$1': $out"
}

# killed_export AT WIM WHAT ARGS...: 'wtgfs export ARGS' killed (SIGKILL)
# at AT leaves WIM byte for byte as it was (the export's guard process
# puts the old header and size back, so wait for it)
killed_export() {
	local at=$1 wim=$2 what=$3 sum rc
	shift 3
	sum=$(sha256sum <"$wim")
	WTGFS_TEST_KILL_AT=$at "$WTGFS" export "$@" >/dev/null 2>&1
	rc=$?
	[ "$rc" = 137 ] || fail "the export killed $what exited $rc, not by SIGKILL"
	for _ in $(seq 1 100); do
		[ "$(sha256sum <"$wim")" = "$sum" ] && return 0
		sleep 0.1
	done
	fail "an export killed $what changed the WIM"
}

# ---- a WIM-based delta: a driver package injected, a hive edited ----
"$WTGFS" init "$TMP/d.delta" "$BASE" >/dev/null || fail "init failed"
wtg_mount "$TMP/d.delta" "$TMP/m"
mkdir -p "$TMP/m/$D/pkg" || fail "no drivers directory"
head -c 300000 /dev/urandom >"$TMP/m/$D/injected.sys"
printf '[Version]\nSignature="$Windows NT$"\n' >"$TMP/m/$D/pkg/injected.inf"
setfattr -n user.Zone.Identifier -v 0x5b5a6f6e655472616e736665725d "$TMP/m/$D/injected.sys"
setfattr -n system.ntfs_attrib_be -v 0x00000021 "$TMP/m/$D/pkg/injected.inf"
echo "linked" >"$TMP/m/$D/Long Linked Name.sys"
setfattr -n system.ntfs_dos_name -v "LONGLI~1.SYS" "$TMP/m/$D/Long Linked Name.sys"
ln "$TMP/m/$D/Long Linked Name.sys" "$TMP/m/Windows/Other Long Link Name.sys"
# a sparse file: a hole, then data
truncate -s 8M "$TMP/m/$D/sparse.dat"
echo "tail" | dd of="$TMP/m/$D/sparse.dat" bs=1 seek=$((8 << 20)) conv=notrunc status=none
printf 'add WtgfsKey\nsetval 1\nHiveName\nstring:changed by wtgfs export\ncommit\n' |
	hivexsh -w "$TMP/m/Windows/System32/config/SOFTWARE" >"$TMP/hivexsh.out" 2>&1 ||
	{ cat "$TMP/hivexsh.out"; fail "hivexsh -w failed"; }
cp "$TMP/m/Windows/System32/config/SOFTWARE" "$TMP/hive.copy"
wtg_umount "$TMP/m"
sums_before=$(sha256sum "$TMP/d.delta" "$BASE")

# ---- a new WIM ----
"$WTGFS" export "$TMP/d.delta" "$TMP/new.wim" --json >"$TMP/new.json" 2>"$TMP/new.err" ||
	{ cat "$TMP/new.err"; fail "export of the delta failed"; }
jq -s -e 'map(select(.type == "result")) | length == 1 and .[0].image == 1 and .[0].name == "d" and .[0].incremental' \
	"$TMP/new.json" >/dev/null || fail "no incremental JSON result line: $(tail -n 2 "$TMP/new.json")"
jq -s -e 'map(select(.type == "progress" and .phase == "tree")) | length > 0' "$TMP/new.json" >/dev/null ||
	fail "no JSON progress lines"
[ "$(sha256sum "$TMP/d.delta" "$BASE")" = "$sums_before" ] || fail "the export changed the delta or its base"
wim_clean "$TMP/new.wim"
wiminfo "$TMP/new.wim" 1 | grep -q "^File Count: *[1-9]" || fail "the image's XML has no file count"
ls "$TMPDIR" | grep -q . && fail "the export left files in TMPDIR: $(ls "$TMPDIR")"
# (ntfs-3g answers EMLINK for the DOS name of a hard-linked file, so trees
# holding the linked file skip that xattr: ntfsls -x checks it below, and
# the ESD and VHDX trees compare every DOS name)
NODOS="--skip system.ntfs_dos_name"
wtg_mount "$TMP/d.delta" "$TMP/m"
applied "$TMP/new.wim" 1 "$TMP/m" $NODOS
wtg_umount "$TMP/m"
# the DOS name is on the name it shortens, not on the other link
truncate -s 512M "$TMP/dos.img"
mkntfs -Q -F "$TMP/dos.img" >/dev/null 2>&1 && wimapply "$TMP/new.wim" 1 "$TMP/dos.img" >/dev/null 2>&1 ||
	fail "wimapply for the DOS name check failed"
ntfsls -x -p "/$D" "$TMP/dos.img" 2>/dev/null | grep -qx "LONGLI~1.SYS" ||
	fail "the DOS name is not on the name it shortens"
ntfsls -x -p /Windows "$TMP/dos.img" 2>/dev/null | grep -qx "Other Long Link Name.sys" ||
	fail "the other link of the file got a DOS name"
rm -f "$TMP/dos.img"

# ---- refusals ----
expect_fail() {
	local what=$1 pattern=$2
	shift 2
	if "$WTGFS" "$@" >"$TMP/refuse.out" 2>&1; then fail "$what was not refused"; fi
	head -n 1 "$TMP/refuse.out" | grep -q "$pattern" ||
		fail "$what: unclear message: $(cat "$TMP/refuse.out")"
}
sum_new=$(sha256sum <"$TMP/new.wim")
expect_fail "an existing OUT without --append" "exists" export "$TMP/d.delta" "$TMP/new.wim"
[ "$(sha256sum <"$TMP/new.wim")" = "$sum_new" ] || fail "a refused export changed the WIM"
expect_fail "a bad --compress" "lzx, xpress, lzms or none" export "$TMP/d.delta" "$TMP/x.wim" --compress zip
expect_fail "a missing snapshot" "nosuch" export "$TMP/d.delta@nosuch" "$TMP/x.wim"
expect_fail "--append to a missing WIM" "drop --append" export "$TMP/d.delta" "$TMP/x.wim" --append
expect_fail "--append with another compression" "keeps the WIM's compression" \
	export "$TMP/d.delta" "$TMP/new.wim" --append --compress xpress --name other
expect_fail "--append with a name in use" "already has an image named" \
	export "$TMP/d.delta" "$TMP/new.wim" --append
[ -e "$TMP/x.wim" ] && fail "a refused export made x.wim"
[ "$(sha256sum <"$TMP/new.wim")" = "$sum_new" ] || fail "a refused append changed the WIM"

# ---- a snapshot, with HEAD changed after it ----
"$WTGFS" snapshot "$TMP/d.delta" s1 >/dev/null || fail "snapshot s1"
wtg_mount "$TMP/d.delta" "$TMP/m"
echo "after the snapshot" >"$TMP/m/$D/after.txt"
rm "$TMP/m/$D/pkg/injected.inf"
wtg_umount "$TMP/m"
# (captured whole: the new WIM above was the incremental export)
"$WTGFS" export "$TMP/d.delta@s1" "$TMP/snap.wim" --full --json >"$TMP/snap.out" 2>&1 ||
	{ cat "$TMP/snap.out"; fail "export of a snapshot failed"; }
jq -s -e 'map(select(.type == "result"))[0] | (.incremental | not) and .full_reason == "--full"' \
	"$TMP/snap.out" >/dev/null || fail "--full: $(tail -n 1 "$TMP/snap.out")"
wiminfo "$TMP/snap.wim" 1 | grep -q "^Name: *s1$" || fail "the snapshot's image is not named after it"
wtg_mount "$TMP/d.delta" "$TMP/r" --at s1
applied "$TMP/snap.wim" 1 "$TMP/r" $NODOS
wtg_umount "$TMP/r"

# ---- appended to the delta's own base ----
size0=$(stat -c %s "$BASE")
blobs() { wiminfo --blobs "$1" | sed -n 's/^Hash *= *//p' | sort; }
blobs "$BASE" >"$TMP/blobs0"
wtg_mount "$IMAGES/lzx.wim" "$TMP/w"
"$WTGFS" export "$TMP/d.delta" "$BASE" --append --name injected --json >"$TMP/app.json" 2>"$TMP/app.err" ||
	{ cat "$TMP/app.err"; fail "export --append to the base failed"; }
jq -s -e 'map(select(.type == "result"))[0] | .image == 2 and .append and .raw' "$TMP/app.json" >/dev/null ||
	fail "the append's result (not by the raw appender): $(tail -n 1 "$TMP/app.json")"
# (the DOS name of a hard-linked file: which name owns it, the tree says)
jq -s -e 'map(select(.type == "result"))[0] | .tree and (.tree_reason | test("DOS name"))' \
	"$TMP/app.json" >/dev/null || fail "the append did not load the tree: $(tail -n 1 "$TMP/app.json")"
size1=$(stat -c %s "$BASE")
grown=$((size1 - size0))
echo "the base grew by $grown bytes (it was $size0)"
# the random driver (300000 bytes) must be stored; of the rest only what
# changed: the edited SOFTWARE hive (at most its size), the new files and
# the image's metadata -- 6 new contents (4 files, a named stream, the
# hive) and 1 metadata resource
[ "$grown" -ge 300000 ] || fail "the WIM grew by $grown bytes: the injected driver is not in it"
hive_size=$(stat -c %s "$TMP/hive.copy")
[ "$grown" -le $((300000 + hive_size + 1048576)) ] || fail "the WIM grew by $grown bytes: more than the change"
blobs "$BASE" >"$TMP/blobs1"
new_blobs=$(comm -13 "$TMP/blobs0" "$TMP/blobs1" | wc -l)
echo "$new_blobs new blobs"
[ "$new_blobs" -le 7 ] || fail "the append stored $new_blobs blobs: the unchanged files were not shared"
wim_clean "$BASE"
applied "$BASE" 1 "$TMP/w"
wtg_umount "$TMP/w"
wtg_mount "$TMP/d.delta" "$TMP/m"
applied "$BASE" 2 "$TMP/m" $NODOS
wtg_umount "$TMP/m"

# ---- an append killed midway leaves the WIM as it was ----
# (new data, so that the append has blobs to write when it is killed)
wtg_mount "$TMP/d.delta" "$TMP/m"
head -c 3000000 /dev/urandom >"$TMP/m/$D/killed.sys"
wtg_umount "$TMP/m"
cp "$BASE" "$TMP/kill.wim"
images_k=$(wiminfo "$TMP/kill.wim" | grep -c '^Index:')
killed_export write@1 "$TMP/kill.wim" "while it writes" "$TMP/d.delta" "$TMP/kill.wim" --append \
	--name killed
[ "$(wiminfo "$TMP/kill.wim" | grep -c '^Index:')" = "$images_k" ] || fail "a killed append left an image"
wim_clean "$TMP/kill.wim"
ls "$TMPDIR" | grep -q . && fail "the killed export left files in TMPDIR: $(ls "$TMPDIR")"
# and a new WIM killed midway is not there at all
WTGFS_TEST_KILL_AT=write@1 "$WTGFS" export "$TMP/d.delta" "$TMP/killed-new.wim" >/dev/null 2>&1
[ -e "$TMP/killed-new.wim" ] && fail "a killed export left a half-written new WIM"
ls "$TMP" | grep -q "killed-new.wim." && fail "a killed export left a temporary WIM: $(ls "$TMP")"

# ---- a bare ESD image, as an LZX WIM ----
"$WTGFS" export "$IMAGES/solid.esd:1" "$TMP/esd.wim" --compress lzx >"$TMP/esd.out" 2>&1 ||
	{ cat "$TMP/esd.out"; fail "export of an ESD image failed"; }
wiminfo "$TMP/esd.wim" | grep -q "^Compression: *LZX" || fail "the exported ESD image is not LZX"
wim_clean "$TMP/esd.wim"
wtg_mount "$IMAGES/solid.esd" "$TMP/e"
applied "$TMP/esd.wim" 1 "$TMP/e"
wtg_umount "$TMP/e"

# ---- a VHDX-based delta ----
vol_mib=$(($(stat -c %s "$IMAGES/volume.img") / 1048576))
truncate -s $((vol_mib + 64))M "$TMP/src.img"
sfdisk -q "$TMP/src.img" <<SF || fail "sfdisk (source disk) failed"
label: gpt
size=32M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
size=${vol_mib}M, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7
SF
start=$(sfdisk -J "$TMP/src.img" | jq '.partitiontable.partitions[1].start')
dd if="$IMAGES/volume.img" of="$TMP/src.img" bs=512 seek="$start" conv=notrunc,sparse status=none
qemu-img convert -O vhdx "$TMP/src.img" "$TMP/src.vhdx" || fail "qemu-img convert failed"
rm -f "$TMP/src.img"
"$WTGFS" init "$TMP/v.delta" "$TMP/src.vhdx" >/dev/null || fail "init on a VHDX failed"
wtg_mount "$TMP/v.delta" "$TMP/vm"
echo "from a VHDX delta" >"$TMP/vm/$D/vhdx.txt"
head -c 200000 /dev/urandom >"$TMP/vm/$D/vhdx.sys"
wtg_umount "$TMP/vm"
"$WTGFS" export "$TMP/v.delta" "$TMP/vhdx.wim" --compress xpress --check >"$TMP/v.out" 2>&1 ||
	{ cat "$TMP/v.out"; fail "export of a VHDX-based delta failed"; }
wim_clean "$TMP/vhdx.wim"
wtg_mount "$TMP/v.delta" "$TMP/vm"
applied "$TMP/vhdx.wim" 1 "$TMP/vm"
wtg_umount "$TMP/vm"


# ---- the incremental append: the base image updated with the change ----
# (a snapshot of a fresh delta with every kind of change: the new image
# must equal the snapshot's mount and a full capture of the same snapshot,
# and cost only the change)
cp "$IMAGES/lzx.wim" "$TMP/ibase.wim"
IB="$TMP/ibase.wim"
S=Windows/System32
hexattr() { getfattr -h -n "$1" -e hex "$2" 2>/dev/null | sed -n "s/^$1=//p"; }
"$WTGFS" init "$TMP/i.delta" "$IB" >/dev/null || fail "init (incremental) failed"
wtg_mount "$TMP/i.delta" "$TMP/im"
M="$TMP/im"
mkdir -p "$M/$S/newpkg/sub" && head -c 100000 /dev/urandom >"$M/$S/newpkg/sub/new.sys" ||
	fail "a file in a new directory"
echo "modified" >>"$M/$S/api.dll"
rm "$M/$S/cfg (2).dll" "$M/$S/blue.cpl" # a file; one name of a hard-linked file
rm -r "$M/Program Files/Windows Sidebar"
mv "$M/$S/cfg.dll" "$M/Windows/Temp/cfg-moved.dll"
mv "$M/Program Files/Windows Security/en-US" "$M/Users/en-US-moved"
setfattr -n system.ntfs_attrib_be -v 0x00000022 "$M/$S/crypt.dll"
setfattr -n system.ntfs_acl -v "$(hexattr system.ntfs_acl "$M/Windows/notepad.exe")" \
	"$M/$S/datacfg57.dat" || fail "setting a security descriptor"
setfattr -n user.Zone.Identifier -v 0x5b5a6f6e655d "$M/$S/d3dd3d.dll"
setfattr -h -n system.ntfs_reparse_data \
	-v "$(hexattr system.ntfs_reparse_data "$M/Users/Public/Desktop/hosts")" \
	"$M/Users/Public/Desktop/readme.txt" || fail "setting reparse data"
setfattr -n system.ntfs_dos_name -v "DATATA~1.DLL" "$M/$S/datataskview.dll"
ln "$M/$S/crypt.sys" "$M/Windows/crypt-link.sys"
# directories whose own facts change: one holding an entry with a DOS
# name, one with a DOS name of its own, one only touched
echo "new" >"$M/Program Files/Windows Defender/new.txt"
echo "new" >"$M/Program Files/new.txt"
touch -d 2020-01-02 "$M/Windows/Fonts"
wtg_umount "$TMP/im"
"$WTGFS" snapshot "$TMP/i.delta" inc >/dev/null || fail "snapshot inc"
# after the snapshot: a change of the root's own facts
wtg_mount "$TMP/i.delta" "$TMP/im"
echo "at the root" >"$TMP/im/rootfile.txt"
wtg_umount "$TMP/im"
cp "$IB" "$TMP/ifull.wim"
isize0=$(stat -c %s "$IB")
blobs "$IB" >"$TMP/iblobs0"
"$WTGFS" export "$TMP/i.delta@inc" "$IB" --append --json >"$TMP/inc.json" 2>"$TMP/inc.err" ||
	{ cat "$TMP/inc.err"; fail "the incremental append failed"; }
jq -s -e 'map(select(.type == "result"))[0] | .incremental and .raw and .image == 2 and .changes > 10' \
	"$TMP/inc.json" >/dev/null || fail "the append to the base was not raw: $(tail -n 1 "$TMP/inc.json")"
# (every kind of change, from the diff alone: the base's tree not loaded)
jq -s -e 'map(select(.type == "result"))[0] | (.tree | not)' "$TMP/inc.json" >/dev/null ||
	fail "the raw append loaded the base's tree: $(tail -n 1 "$TMP/inc.json")"
"$WTGFS" export "$TMP/i.delta@inc" "$TMP/ifull.wim" --append --json >"$TMP/ifull.json" 2>&1 ||
	{ cat "$TMP/ifull.json"; fail "the full append failed"; }
jq -s -e 'map(select(.type == "result"))[0] | (.incremental | not) and (.full_reason | test("not the delta.s base"))' \
	"$TMP/ifull.json" >/dev/null || fail "an append to a copy of the base: $(tail -n 1 "$TMP/ifull.json")"
wim_clean "$IB"
igrown=$(($(stat -c %s "$IB") - isize0))
echo "the incremental append grew the base by $igrown bytes"
[ "$igrown" -ge 100000 ] || fail "the WIM grew by $igrown bytes: the new file is not in it"
[ "$igrown" -le $((100000 + 1048576)) ] || fail "the WIM grew by $igrown bytes: more than the change"
blobs "$IB" >"$TMP/iblobs1"
inew=$(comm -13 "$TMP/iblobs0" "$TMP/iblobs1" | wc -l)
echo "$inew new blobs"
[ "$inew" -le 8 ] || fail "the incremental append stored $inew blobs"
wtg_mount "$TMP/i.delta" "$TMP/ir" --at inc
applied "$IB" 2 "$TMP/ir"
wtg_umount "$TMP/ir"
# the same as the full capture, applied side by side
truncate -s 512M "$TMP/ifull.img"
mkntfs -Q -F "$TMP/ifull.img" >/dev/null 2>&1 && wimapply "$TMP/ifull.wim" 2 "$TMP/ifull.img" >/dev/null 2>&1 ||
	fail "wimapply of the full append failed"
mkdir -p "$TMP/ifn"
ntfs-3g -o ro "$TMP/ifull.img" "$TMP/ifn" || fail "ntfs-3g cannot mount the full append"
MOUNTS="$MOUNTS $TMP/ifn"
applied "$IB" 2 "$TMP/ifn"
umount "$TMP/ifn"
# the XML's counts are the full capture's
for f in "Directory Count" "File Count" "Total Bytes" "Hard Link Bytes"; do
	[ "$(wiminfo "$IB" 2 | grep "^$f:")" = "$(wiminfo "$TMP/ifull.wim" 2 | grep "^$f:")" ] ||
		fail "the raw append's $f is not the full capture's: $(wiminfo "$IB" 2 | grep "^$f:")"
done
rm -f "$TMP/ifull.img" "$TMP/ifull.wim"
# wimlib keeps using the result: the image exported to another WIM applies
wimexport "$IB" 2 "$TMP/iexported.wim" >/dev/null || fail "wimexport of the raw-appended image failed"
wim_clean "$TMP/iexported.wim"
wtg_mount "$TMP/i.delta" "$TMP/ir" --at inc
applied "$TMP/iexported.wim" 1 "$TMP/ir"
wtg_umount "$TMP/ir"
rm -f "$TMP/iexported.wim"
# the root's own facts changed, appended on top of the raw append
"$WTGFS" export "$TMP/i.delta" "$IB" --append --name head --description "the root changed" --boot \
	--json >"$TMP/iroot.json" 2>&1 ||
	{ cat "$TMP/iroot.json"; fail "the append of HEAD failed"; }
jq -s -e 'map(select(.type == "result"))[0] | .raw and .image == 3' \
	"$TMP/iroot.json" >/dev/null || fail "a change of the root's facts: $(tail -n 1 "$TMP/iroot.json")"
wim_clean "$IB"
wiminfo "$IB" | grep -q "^Image Count: *3$" || fail "the second raw append did not make image 3"
wiminfo "$IB" | grep -q "^Boot Index: *3$" || fail "--boot did not make image 3 the boot image"
wiminfo "$IB" 3 | grep -q "^Description: *the root changed$" || fail "--description is not in the XML"
wiminfo "$IB" 3 | grep -q "^Name: *head$" || fail "the image is not named 'head'"
wtg_mount "$TMP/i.delta" "$TMP/ir"
applied "$IB" 3 "$TMP/ir"
wtg_umount "$TMP/ir"
# the wimlib path, forced: the same tree
WTGFS_EXPORT_RAW=0 "$WTGFS" export "$TMP/i.delta@inc" "$IB" --append --name by-wimlib --json \
	>"$TMP/iwimlib.json" 2>&1 || { cat "$TMP/iwimlib.json"; fail "the wimlib append failed"; }
jq -s -e 'map(select(.type == "result"))[0] | .incremental and (.raw | not) and (.raw_reason | test("WTGFS_EXPORT_RAW"))' \
	"$TMP/iwimlib.json" >/dev/null || fail "the forced wimlib path: $(tail -n 1 "$TMP/iwimlib.json")"
wim_clean "$IB"
wtg_mount "$TMP/i.delta" "$TMP/ir" --at inc
applied "$IB" 4 "$TMP/ir"
wtg_umount "$TMP/ir"
# --check: the raw append writes an integrity table, which wimlib checks
CORRUPT="python3 $top_srcdir/tests/wimcorrupt.py"
# integ_shape WIM: "none", or its integrity table's chunk size and entries
integ_shape() { $CORRUPT "$1" list | sed -n 's/^integrity table: //p'; }
# integ_op WIM OP [ARGS...]: a tests/wimcorrupt.py operation on WIM in place
integ_op() {
	local wim=$1
	shift
	$CORRUPT "$wim" "$@" -o "$wim.new" >/dev/null && mv "$wim.new" "$wim"
}
cp "$IMAGES/lzx.wim" "$TMP/cbase.wim"
"$WTGFS" init "$TMP/c.delta" "$TMP/cbase.wim" >/dev/null || fail "init (check) failed"
wtg_mount "$TMP/c.delta" "$TMP/im"
echo "checked" >"$TMP/im/Windows/checked.txt"
wtg_umount "$TMP/im"
[ "$(integ_shape "$TMP/cbase.wim")" = none ] || fail "the test WIM has an integrity table already"
killed_export integrity "$TMP/cbase.wim" "while it hashes the WIM for the integrity table" \
	"$TMP/c.delta" "$TMP/cbase.wim" --append --name killed --check
"$WTGFS" export "$TMP/c.delta" "$TMP/cbase.wim" --append --name checked --check --json \
	>"$TMP/icheck.json" 2>&1 || { cat "$TMP/icheck.json"; fail "the append with --check failed"; }
jq -s -e 'map(select(.type == "result"))[0] | .incremental and .raw and .integrity_chunks_hashed > 0' \
	"$TMP/icheck.json" >/dev/null || fail "--check: $(tail -n 1 "$TMP/icheck.json")"
[ "$(integ_shape "$TMP/cbase.wim")" != none ] || fail "--check wrote no integrity table"
"$WTGFS" info "$TMP/cbase.wim" --json | jq -e '.integrity_table' >/dev/null ||
	fail "wtgfs info does not see the integrity table"
wim_clean "$TMP/cbase.wim"
# ... a WIM with an integrity table keeps one, its entries for the bytes
# the append left alone kept (a table of 4 KiB chunks: many of them), the
# rest hashed, and wimlib checks every one
integ_op "$TMP/cbase.wim" integrity-chunks 4096 || fail "rechunking the integrity table failed"
wim_clean "$TMP/cbase.wim"
wtg_mount "$TMP/c.delta" "$TMP/im"
echo "checked again" >"$TMP/im/Windows/checked2.txt"
wtg_umount "$TMP/im"
"$WTGFS" export "$TMP/c.delta" "$TMP/cbase.wim" --append --name integrity --json \
	>"$TMP/iinteg.json" 2>&1 || { cat "$TMP/iinteg.json"; fail "the append to a WIM with an integrity table failed"; }
jq -s -e 'map(select(.type == "result"))[0] | .raw and .integrity_chunks_reused > 100 and .integrity_chunks_hashed > 0' \
	"$TMP/iinteg.json" >/dev/null || fail "an integrity table: $(tail -n 1 "$TMP/iinteg.json")"
integ_shape "$TMP/cbase.wim" | grep -q "^chunk_size=4096 " || fail "the append changed the table's chunk size"
wim_clean "$TMP/cbase.wim"
# ... a malformed old table is written afresh, with a warning
integ_op "$TMP/cbase.wim" integrity-size || fail "malforming the integrity table failed"
wtg_mount "$TMP/c.delta" "$TMP/im"
echo "checked a third time" >"$TMP/im/Windows/checked3.txt"
wtg_umount "$TMP/im"
"$WTGFS" export "$TMP/c.delta" "$TMP/cbase.wim" --append --name integrity-again --json \
	>"$TMP/imal.json" 2>"$TMP/imal.err" || { cat "$TMP/imal.json" "$TMP/imal.err"; fail "the append past a malformed integrity table failed"; }
grep -q "integrity table is not valid" "$TMP/imal.err" || fail "no warning for a malformed integrity table: $(cat "$TMP/imal.err")"
jq -s -e 'map(select(.type == "result"))[0] | .raw and .integrity_chunks_reused == 0' \
	"$TMP/imal.json" >/dev/null || fail "a malformed table: $(tail -n 1 "$TMP/imal.json")"
integ_shape "$TMP/cbase.wim" | grep -q "^chunk_size=10485760 " || fail "a fresh table is not of 10 MiB chunks"
wim_clean "$TMP/cbase.wim"
wtg_mount "$TMP/c.delta" "$TMP/im"
applied "$TMP/cbase.wim" 4 "$TMP/im"
wtg_umount "$TMP/im"
# a changed file with extended attributes: the raw append leaves the $EA
# out, as the full capture does (wimlib 1.13's NTFS-3G capture stores
# none); a new symlink gets the reparse flags wimlib's way gives it
for kind in ea symlink; do
	cp "$IMAGES/lzx.wim" "$TMP/$kind.wim"
	"$WTGFS" init "$TMP/$kind.delta" "$TMP/$kind.wim" >/dev/null || fail "init ($kind) failed"
	wtg_mount "$TMP/$kind.delta" "$TMP/im"
	if [ "$kind" = ea ]; then
		setfattr -n system.ntfs_ea -v 0x1000000000030100414243007a000000 "$TMP/im/$S/api.dll" ||
			fail "setting an EA failed"
		want='.raw'
		skip="--skip system.ntfs_ea"
	else
		ln -s ../notepad.exe "$TMP/im/Windows/Temp/notepad-link" || fail "a new symlink failed"
		want='.raw'
		skip=
	fi
	wtg_umount "$TMP/im"
	cp "$TMP/$kind.wim" "$TMP/$kind-orig.wim"
	"$WTGFS" export "$TMP/$kind.delta" "$TMP/$kind.wim" --append --name "$kind" --json \
		>"$TMP/$kind.json" 2>&1 || { cat "$TMP/$kind.json"; fail "the append with a $kind failed"; }
	jq -s -e "map(select(.type == \"result\"))[0] | .incremental and $want" \
		"$TMP/$kind.json" >/dev/null || fail "a $kind: $(tail -n 1 "$TMP/$kind.json")"
	if [ "$kind" = symlink ]; then
		# the new link's reparse tag and flags (wimlib's fixup flag) are
		# what wimlib's way gives it
		mv "$TMP/$kind.wim" "$TMP/$kind-raw.wim"
		cp "$TMP/$kind-orig.wim" "$TMP/$kind.wim"
		WTGFS_EXPORT_RAW=0 "$WTGFS" export "$TMP/$kind.delta" "$TMP/$kind.wim" --append \
			--name "$kind" >"$TMP/$kind-wimlib.out" 2>&1 ||
			{ cat "$TMP/$kind-wimlib.out"; fail "the wimlib append with a $kind failed"; }
		"${top_builddir:?}/tests/wim_meta_dump" "$TMP/$kind.wim" 2 "$TMP/$kind-wimlib.meta" &&
			"${top_builddir:?}/tests/wim_meta_dump" "$TMP/$kind-raw.wim" 2 "$TMP/$kind-raw.meta" ||
			fail "dumping the metadata failed"
		link=/Windows/Temp/notepad-link
		rp_raw=$($CORRUPT "$TMP/$kind-raw.wim" reparse "$link" --image 2 \
			--metadata "$TMP/$kind-raw.meta")
		rp_wimlib=$($CORRUPT "$TMP/$kind.wim" reparse "$link" --image 2 \
			--metadata "$TMP/$kind-wimlib.meta")
		[ "$rp_raw" = "$rp_wimlib" ] && [ "$rp_raw" != none ] ||
			fail "the new symlink: '$rp_raw' by the raw append, '$rp_wimlib' by wimlib's way"
		mv "$TMP/$kind-raw.wim" "$TMP/$kind.wim"
	fi
	rm -f "$TMP/$kind-orig.wim"
	wim_clean "$TMP/$kind.wim"
	wtg_mount "$TMP/$kind.delta" "$TMP/ir"
	# shellcheck disable=SC2086
	applied "$TMP/$kind.wim" 2 "$TMP/ir" $skip
	wtg_umount "$TMP/ir"
	rm -f "$TMP/$kind.wim"
done
# killed between the data and the header: the WIM as it was, for wimlib too
wtg_mount "$TMP/i.delta" "$TMP/im"
head -c 200000 /dev/urandom >"$TMP/im/Windows/killed-raw.sys"
wtg_umount "$TMP/im"
images_k=$(wiminfo "$IB" | grep -c '^Index:')
for at in append-header write@1; do
	killed_export "$at" "$IB" "at $at (raw)" "$TMP/i.delta" "$IB" --append --name killed
	[ "$(wiminfo "$IB" | grep -c '^Index:')" = "$images_k" ] || fail "a killed raw append left an image"
	wim_clean "$IB"
done
# a WIM another program is appending to (holding wimlib's lock): refused,
# not written
sum_k=$(sha256sum <"$IB")
"${top_builddir:?}/tests/wim_append_check" hold "$IB" 30 >"$TMP/hold.out" &
holder=$!
for _ in $(seq 50); do grep -q locked "$TMP/hold.out" 2>/dev/null && break; sleep 0.1; done
"$WTGFS" export "$TMP/i.delta" "$IB" --append --name locked >"$TMP/locked.out" 2>&1
rc=$?
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
[ "$rc" != 0 ] || fail "an append to a locked WIM was not refused"
grep -q "another program is writing it" "$TMP/locked.out" || fail "unclear refusal: $(cat "$TMP/locked.out")"
[ "$(sha256sum <"$IB")" = "$sum_k" ] || fail "a refused append changed the locked WIM"
# the raw append from the view's tree (the way without it skipped): the same
# snapshot, the same tree
WTGFS_EXPORT_RAW=tree "$WTGFS" export "$TMP/i.delta@inc" "$IB" --append --name by-tree --json \
	>"$TMP/itree.json" 2>&1 || { cat "$TMP/itree.json"; fail "the raw append from the tree failed"; }
jq -s -e 'map(select(.type == "result"))[0] | .raw and .tree and (.tree_reason | test("WTGFS_EXPORT_RAW"))' \
	"$TMP/itree.json" >/dev/null || fail "the raw append from the tree: $(tail -n 1 "$TMP/itree.json")"
wim_clean "$IB"
wtg_mount "$TMP/i.delta" "$TMP/ir" --at inc
applied "$IB" "$(wiminfo "$IB" | grep -c '^Index:')" "$TMP/ir"
wtg_umount "$TMP/ir"
# journal rows a killed mount left (a small fsynced write): the view reads
# them, the layers' records need not show them: HEAD is captured whole, and
# the export holds the write
"$WTGFS" init "$TMP/j.delta" "$IMAGES/lzx.wim" >/dev/null || fail "init (journal) failed"
wtg_mount "$TMP/j.delta" "$TMP/im"
# (the file stays open: a close would store the chunk)
python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, b"journaled", 4096)
os.fsync(fd)
open(sys.argv[2], "w").close()
time.sleep(60)' "$TMP/im/$S/config/SOFTWARE" "$TMP/fsynced" 2>/dev/null &
holder=$!
for _ in $(seq 1 100); do [ -e "$TMP/fsynced" ] && break; sleep 0.1; done
[ -e "$TMP/fsynced" ] || fail "the small fsynced write failed"
pid=${MOUNT_PID[$TMP/im]}
kill -9 "$pid"
wait "$pid" 2>/dev/null
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
umount -l "$TMP/im" 2>/dev/null || fusermount3 -uz "$TMP/im" 2>/dev/null
"$WTGFS" export "$TMP/j.delta" "$TMP/ij.wim" --json >"$TMP/ij.json" 2>&1 ||
	{ cat "$TMP/ij.json"; fail "the export of HEAD with journal rows failed"; }
jq -s -e 'map(select(.type == "result"))[0] | .full_reason | test("journal")' "$TMP/ij.json" >/dev/null ||
	echo "note: the killed mount left no journal rows: $(tail -n 1 "$TMP/ij.json")"
wtg_mount "$TMP/j.delta" "$TMP/ir"
applied "$TMP/ij.wim" 1 "$TMP/ir"
wtg_umount "$TMP/ir"

echo "PASS"
