#!/bin/bash
# Hostile images (issue 9): crafted copies of the test images, each made
# here with a byte patch or through ntfs-3g.  For each: no sanitizer report,
# no hang (every read runs under a time limit), no symlink whose target
# leads out of the mount, no probing of host paths.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool wimexport wimcapture ntfs-3g python3 timeout realpath qemu-img strace
test_images small
corrupt="python3 $top_srcdir/tests/wimcorrupt.py"
hostile="python3 $top_srcdir/tests/hostile.py"
m="$TMP/mnt"
mkdir -p "$m"

# A hung read leaves its daemon spinning: stop every daemon we started.
hang() {
	for pid in "${MOUNT_PID[@]}"; do
		kill -9 "$pid" 2>/dev/null
	done
	fail "$* did not return in 60 s (a hang)"
}

# bounded CMD...: runs CMD with a time limit; a hang fails the test.
bounded() {
	local rc=0
	timeout -s KILL 60 "$@" || rc=$?
	[ "$rc" = 137 ] && hang "'$*'"
	return "$rc"
}

# read_all DIR: lists DIR and reads every file in it, each under a time
# limit; prints how many reads failed.
read_all() {
	local bad=0
	bounded ls -lR "$1" >/dev/null 2>&1
	while IFS= read -r -d '' f; do
		bounded cat "$f" >/dev/null 2>&1 || bad=$((bad + 1))
	done < <(bounded find "$1" -type f -print0 2>/dev/null)
	echo "$bad"
}

# no_sanitizer_report: the daemon's log holds no ASan/UBSan report.
no_sanitizer_report() {
	if grep -E -q 'AddressSanitizer|runtime error|LeakSanitizer' "$TMP/daemon.log"; then
		cat "$TMP/daemon.log"
		fail "a sanitizer report: $1"
	fi
}

# ---- 1. solid resources whose header claims a size near 2^64 ----
# The chunk count (size + chunk size - 1) / chunk size wrapped to 0: a
# read past the one-entry chunk table, or a read loop that never advanced.
$corrupt "$IMAGES/solid.esd" solid-size 0xFFFFFFFFFFFFFFFF -o "$TMP/huge.esd" >/dev/null
wtg_mount "$TMP/huge.esd" "$m"
bad=$(read_all "$m")
mountpoint -q "$m" && [ -d "$m/Windows" ] || { cat "$TMP/daemon.log"; fail "the mount of huge.esd went away"; }
[ "$bad" -gt 0 ] || fail "every file of a solid resource with a bad header read"
wtg_umount "$m"
no_sanitizer_report huge.esd
grep -q "solid chunk table larger than its resource" "$TMP/daemon.log" ||
	{ cat "$TMP/daemon.log"; fail "huge.esd: the log does not say why"; }
echo "ok: huge.esd: $bad files refused, $(grep -c . "$TMP/daemon.log") lines logged"
: >"$TMP/daemon.log"

# 32 KiB solid chunks and a blob moved to a chunk-aligned offset (2^40):
# a whole-chunk read there made no progress and spun for ever.
wimexport "$IMAGES/lzx.wim" 1 "$TMP/s32.esd" --solid --solid-chunk-size=32768 >/dev/null
$corrupt "$TMP/s32.esd" solid-size 0xFFFFFFFFFFFFFFFF -o "$TMP/s32huge.esd" >/dev/null
$corrupt "$TMP/s32huge.esd" move-blob largest 0x10000000000 -o "$TMP/spin.esd" >/dev/null
wtg_mount "$TMP/spin.esd" "$m"
bad=$(read_all "$m")
mountpoint -q "$m" && [ -d "$m/Windows" ] || { cat "$TMP/daemon.log"; fail "the mount of spin.esd went away"; }
[ "$bad" -gt 0 ] || fail "every file of spin.esd read"
wtg_umount "$m"
no_sanitizer_report spin.esd
echo "ok: spin.esd: $bad files refused, no hang"
: >"$TMP/daemon.log"

# with_ntfs3g IMAGE CMD...: runs CMD with IMAGE mounted read-write by
# ntfs-3g at $TMP/n, and waits until ntfs-3g has written the volume.
with_ntfs3g() {
	local image=$1 pid rc=0
	shift
	mkdir -p "$TMP/n"
	ntfs-3g -o no_detach "$image" "$TMP/n" 2>>"$TMP/ntfs3g.log" &
	pid=$!
	for _ in $(seq 1 200); do
		mountpoint -q "$TMP/n" && break
		kill -0 "$pid" 2>/dev/null || fail "ntfs-3g cannot mount '$image'"
		sleep 0.05
	done
	"$@" || rc=$?
	umount "$TMP/n"
	wait "$pid" || fail "ntfs-3g exited with an error"
	[ "$rc" = 0 ] || fail "'$*' failed in an ntfs-3g mount"
}

# ---- 2, 3, 5. symlink targets that led out of the mount ----
# Relative targets starting with '\' ('\etc\passwd', '\\etc\passwd' read
# as '//etc/passwd'), an absolute link with hard links at other depths, '..'
# runs above the root, a '..' after a link that leads up: written through
# ntfs-3g into a copy of the test volume, and captured from it into a WIM.
cp --sparse=always "$IMAGES/volume.img" "$TMP/links.img"
with_ntfs3g "$TMP/links.img" sh -c "$hostile links '$TMP/n' >'$TMP/links.txt'"
wimcapture "$TMP/links.img" "$TMP/links.wim" links --compress=LZX >/dev/null 2>&1 ||
	fail "wimcapture of the crafted volume failed"

# check_links MNT: every crafted link resolves inside MNT, and no read
# through one shows the host's /etc/passwd.
check_links() {
	local root name t r n=0
	root=$(realpath "$1")
	while IFS= read -r name; do
		t=$(bounded readlink "$1/$name") || fail "readlink '$name' failed"
		r=$(bounded realpath -m "$1/$name")
		case $r in
		"$root" | "$root"/*) ;;
		*) fail "'$name' -> '$t' resolves to '$r', outside the mount" ;;
		esac
		if [ -f /etc/passwd ] && bounded cat "$1/$name" 2>/dev/null | cmp -s - /etc/passwd; then
			fail "'$name' -> '$t' shows the host's /etc/passwd"
		fi
		n=$((n + 1))
	done <"$TMP/links.txt"
	# what Windows resolves them to, as the mount spells it
	want() {
		t=$(readlink "$1/$2")
		[ "$t" = "$3" ] || fail "readlink '$2' gives '$t', not '$3'"
	}
	want "$1" rooted etc/passwd
	want "$1" hostile/rooted ../etc/passwd
	want "$1" unc etc/passwd
	want "$1" hostile/a/unc ../../server/share/etc/passwd
	# hard links at several depths: each name its own target, and still one
	# file (a WIM capture may keep them apart)
	if [ "$(stat -c %h "$1/zabs")" -gt 1 ]; then
		[ "$(stat -c %h:%i "$1/zabs")" = "$(stat -c %h:%i "$1/hostile/a/abs")" ] &&
			[ "$(stat -c %h:%i "$1/zabs")" = "$(stat -c %h:%i "$1/hostile/a/b/c/abs")" ] ||
			fail "the names of one hard-linked symlink show different inodes or counts"
	fi
	want "$1" zabs etc/passwd
	want "$1" hostile/a/abs ../../etc/passwd
	want "$1" hostile/a/b/c/abs ../../../../etc/passwd
	want "$1" hostile/a/b/c/uprel ../../../../etc/passwd
	want "$1" hostile/a/b/up ../../../etc/passwd
	want "$1" zuprel etc/passwd
	want "$1" hostile/a/b/via ../../../etc/passwd
	want "$1" hostile/a/b/rootj ../../..
	want "$1" hostile/a/b/c/sysj ../../../..
	echo "ok: $n links resolve inside the mount"
}

wtg_mount "$TMP/links.img" "$m"
check_links "$m"
wtg_umount "$m"
wtg_mount "$TMP/links.wim" "$m"
check_links "$m"
wtg_umount "$m"
no_sanitizer_report "the crafted links"
: >"$TMP/daemon.log"

# ---- 6. NTFS names with a NUL character ----
# Cut at the NUL, 'Z\0ZZ2' was shown as 'Z', and 'Q\0QQ2' as a second 'Q':
# names written through ntfs-3g, then patched in the volume's bytes.
cp --sparse=always "$IMAGES/volume.img" "$TMP/nul.img"
with_ntfs3g "$TMP/nul.img" sh -c "mkdir '$TMP/n/nuldir' && echo 'real Q' >'$TMP/n/nuldir/Q' &&
	echo other >'$TMP/n/nuldir/QXQQ2' && echo alone >'$TMP/n/nuldir/ZXZZ2'"
$hostile patch-name "$TMP/nul.img" QXQQ2 'Q\0QQ2' >/dev/null
$hostile patch-name "$TMP/nul.img" ZXZZ2 'Z\0ZZ2' >/dev/null
wtg_mount "$TMP/nul.img" "$m"
names=$(bounded ls -A "$m/nuldir" | tr '\n' ' ')
[ "$names" = "Q " ] || fail "nuldir shows '$names', not just 'Q'"
[ "$(bounded cat "$m/nuldir/Q")" = "real Q" ] || fail "nuldir/Q is not the file of that name"
wtg_umount "$m"
no_sanitizer_report "names with a NUL"
for n in 'Q\\0QQ2' 'Z\\0ZZ2'; do
	grep -q "'nuldir': a name holding a NUL character ('$n'); not shown" "$TMP/daemon.log" ||
		{ cat "$TMP/daemon.log"; fail "no line names nuldir and the name $n"; }
done
echo "ok: $(grep -c "NUL character" "$TMP/daemon.log") names with a NUL refused, each logged"
: >"$TMP/daemon.log"

# ---- 4. differencing VHDs whose recorded parent is any host path ----
# The parent is the file of the recorded name in the child's folder, or the
# one given with --parent; the refusal is one message, whether the path
# the child records exists or not, and no host path is opened.
mkdir -p "$TMP/vhd/etc" "$TMP/vhd/none" "$TMP/vhd/beside"
qemu-img create -q -f raw "$TMP/vhd/base.raw" 4M
seq 1 100000 | dd of="$TMP/vhd/base.raw" conv=notrunc status=none
qemu-img convert -O vpc -o force_size=on "$TMP/vhd/base.raw" "$TMP/vhd/base.vhd"
mkdiff="python3 $top_srcdir/tests/mkvhd-diff.py"
w4k=$(printf '5a%.0s' $(seq 4096)) # a whole 4 KiB group (see block-sources.sh)
$mkdiff "$TMP/vhd/base.vhd" "$TMP/vhd/etc/child.vhd" --parent-raw "$TMP/vhd/base.raw" \
	--parent-path /etc/passwd --write "4096:$w4k" --expect "$TMP/vhd/child.raw" >/dev/null || fail "mkvhd-diff.py failed"
$mkdiff "$TMP/vhd/base.vhd" "$TMP/vhd/none/child.vhd" --parent-raw "$TMP/vhd/base.raw" \
	--parent-path /nonexistent/passwd --write "4096:$w4k" >/dev/null || fail "mkvhd-diff.py failed"
$mkdiff "$TMP/vhd/base.vhd" "$TMP/vhd/beside/child.vhd" --parent-raw "$TMP/vhd/base.raw" \
	--parent-path 'C:\Windows\..\..\etc\passwd' --write "4096:$w4k" >/dev/null || fail "mkvhd-diff.py failed"
cp /etc/passwd "$TMP/vhd/beside/passwd" # beside the child, but not a VHD
for d in etc none beside; do
	rc=0
	# (LeakSanitizer cannot run under ptrace: the sanitizer build skips it here)
	(cd "$TMP/vhd/$d" && ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -qq -o "$TMP/vhd/$d.trace" -e trace=file \
		timeout 60 "$WTGFS" info child.vhd) >/dev/null 2>"$TMP/vhd/$d.err" || rc=$?
	[ "$rc" = 2 ] || { cat "$TMP/vhd/$d.err"; fail "info of $d/child.vhd: exit $rc"; }
	[ "$(grep -c . "$TMP/vhd/$d.err")" = 1 ] || { cat "$TMP/vhd/$d.err"; fail "$d: not one line"; }
	if grep -E '"/(etc|nonexistent)/passwd"' "$TMP/vhd/$d.trace"; then
		fail "info of $d/child.vhd looked at the host path the child records"
	fi
done
cmp -s "$TMP/vhd/etc.err" "$TMP/vhd/none.err" && cmp -s "$TMP/vhd/etc.err" "$TMP/vhd/beside.err" ||
	{ head "$TMP"/vhd/*.err; fail "the refusals differ by what lies at the recorded path"; }
grep -q "its parent 'passwd' is not a VHD or VHDX file in its folder" "$TMP/vhd/etc.err" ||
	{ cat "$TMP/vhd/etc.err"; fail "the refusal does not say what to do"; }
echo "ok: $(cat "$TMP/vhd/etc.err")"
# --parent names it; a file that is not a VHD is refused before libvhdi reads it
"$top_builddir/tests/block_cat" -p "$TMP/vhd/base.vhd" "$TMP/vhd/etc/child.vhd" |
	cmp - "$TMP/vhd/child.raw" || fail "the child does not read with --parent"
rc=0
"$WTGFS" info --parent /etc/passwd "$TMP/vhd/etc/child.vhd" 2>"$TMP/vhd/given.err" || rc=$?
[ "$rc" = 2 ] && grep -q "its parent '/etc/passwd' is not a VHD or VHDX file" "$TMP/vhd/given.err" ||
	{ cat "$TMP/vhd/given.err"; fail "--parent /etc/passwd was not refused as not a VHD"; }
echo "ok: $(cat "$TMP/vhd/given.err")"

echo PASS
