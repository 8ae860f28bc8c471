#!/bin/bash
# The read-only mount against wimlib's own extraction: for the LZX, XPRESS
# and solid (LZMS) test images, every file, xattr, named stream, hard-link
# group and link count through wtgfs equals what an ntfs-3g mount shows of
# the same image applied with wimapply to a fresh NTFS volume.
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool mkntfs ntfs-3g wimapply python3 getfattr
test_images small

# The reference: wimlib's extraction onto NTFS, seen through ntfs-3g.
truncate -s 512M "$TMP/ref.img"
mkntfs -F -Q -q "$TMP/ref.img" >/dev/null 2>&1 || fail "mkntfs failed"
wimapply "$IMAGES/lzx.wim" 1 "$TMP/ref.img" >"$TMP/apply.log" 2>&1 || { cat "$TMP/apply.log"; fail "wimapply failed"; }
mkdir -p "$TMP/ref"
ntfs-3g -o ro "$TMP/ref.img" "$TMP/ref" || fail "ntfs-3g mount failed"
MOUNTS="$MOUNTS $TMP/ref"

m="$TMP/mnt"
for image in lzx.wim xpress.wim solid.esd; do
	echo "== $image"
	wtg_mount "$IMAGES/$image" "$m"
	python3 "$top_srcdir/tests/compare-trees.py" "$m" "$TMP/ref" || fail "$image differs from wimapply + ntfs-3g"

	# two readers at once get the same bytes (multithreaded daemon, shared cache)
	(cd "$m" && tar -cf - . | md5sum) >"$TMP/sum1" &
	(cd "$m" && tar -cf - . | md5sum) >"$TMP/sum2" &
	wait %2 %3 2>/dev/null || wait
	cmp -s "$TMP/sum1" "$TMP/sum2" || fail "$image: concurrent readers saw different bytes"
	wtg_umount "$m"
done

echo "== names, links and refusals"
wtg_mount "$IMAGES/lzx.wim" "$m"
# case-insensitive, case-preserving
cmp "$m/WINDOWS/system32/DRIVERS/etc/HOSTS" "$TMP/ref/Windows/System32/drivers/etc/hosts" ||
	fail "case-insensitive lookup failed"
ls "$m/Windows" | grep -qx System32 || fail "the stored case is not preserved"
# every symlink resolves inside the mount
find "$m" -type l | while read -r l; do
	t=$(realpath -m "$l")
	case "$t" in "$m" | "$m"/*) ;; *) fail "'$l' points outside the mount: $t" ;; esac
done
[ "$(readlink "$m/Documents and Settings")" = Users ] || fail "junction target is $(readlink "$m/Documents and Settings")"
[ -d "$m/Documents and Settings/Public" ] || fail "the junction does not lead to Users"
# read-only
touch "$m/new" 2>/dev/null && fail "created a file on a read-only mount"
echo x 2>/dev/null >>"$m/Windows/System32/drivers/etc/hosts" && fail "wrote a file on a read-only mount"
setfattr -n user.x -v 1 "$m/Windows" 2>/dev/null && fail "set an xattr on a read-only mount"
# a busy mount point is refused with one line
"$WTGFS" mount "$IMAGES/lzx.wim" "$m" 2>"$TMP/err" && fail "mounted twice on one mount point"
grep -q "already a mount point" "$TMP/err" || { cat "$TMP/err"; fail "busy mount point not said"; }
statfs=$(stat -f -c '%b %c' "$m")
[ "${statfs% *}" -gt 0 ] || fail "statfs shows no blocks"
wtg_umount "$m"

# other users see the mount only with -o allow_other
if have_tool setpriv; then
	chmod 755 "$TMP" # mktemp made it 0700: let the other user reach the mount
	wtg_mount "$IMAGES/lzx.wim" "$m"
	setpriv --reuid=65534 --regid=65534 --clear-groups ls "$m/Windows" >/dev/null 2>&1 &&
		fail "another user saw a mount made without allow_other"
	wtg_umount "$m"
	wtg_mount "$IMAGES/lzx.wim" "$m" -o allow_other
	setpriv --reuid=65534 --regid=65534 --clear-groups cat "$m/Windows/System32/drivers/etc/hosts" >/dev/null ||
		fail "another user cannot read a mount made with allow_other"
	wtg_umount "$m"
fi

# a missing mount point
"$WTGFS" mount "$IMAGES/lzx.wim" "$TMP/nowhere" 2>"$TMP/err" && fail "mounted on a missing directory"
grep -q "no such directory" "$TMP/err" || fail "missing mount point not said"

# daemon mode: returns once mounted, serves, exits on umount
"$WTGFS" mount "$IMAGES/solid.esd:1" "$m" || fail "daemon mount failed"
mountpoint -q "$m" || fail "daemon mount returned before the mount was up"
MOUNTS="$MOUNTS $m"
cmp "$m/Windows/System32/notepad.exe" "$TMP/ref/Windows/System32/notepad.exe" || fail "daemon mount reads wrong data"
"$WTGFS" umount "$m" || fail "umount of the daemon mount failed"
for _ in $(seq 50); do mountpoint -q "$m" || break; sleep 0.1; done
mountpoint -q "$m" && fail "still mounted after umount"

# image selection by name; a two-image WIM needs a choice
cp "$IMAGES/lzx.wim" "$TMP/two.wim"
wimlib-imagex export "$IMAGES/xpress.wim" 1 "$TMP/two.wim" "Second" >/dev/null || fail "wimexport failed"
"$WTGFS" mount "$TMP/two.wim" "$m" 2>"$TMP/err" && fail "mounted a two-image WIM without a choice"
grep -q "choose one" "$TMP/err" || { cat "$TMP/err"; fail "no hint to choose an image"; }
wtg_mount "$TMP/two.wim:Second" "$m"
cmp "$m/Windows/System32/notepad.exe" "$TMP/ref/Windows/System32/notepad.exe" || fail "image by name reads wrong data"
wtg_umount "$m"
"$WTGFS" mount "$TMP/two.wim:3" "$m" 2>"$TMP/err" && fail "mounted image 3 of 2"
grep -q "has no image '3'" "$TMP/err" || { cat "$TMP/err"; fail "missing image index not said"; }
echo PASS
