#!/bin/bash
# A shared mount is safe by default: root mounts a delta with -o
# allow_other, and the unprivileged user 'nobody' reads everything but
# cannot write, create, rename, remove, truncate, chmod or change extended
# attributes (user.* and system.ntfs_*); with -o umask=0 all of that is
# allowed, and with -o uid= the files are that user's.  A read-only mount
# of the bare image lets nobody write either.
. "$(dirname "$0")/lib.sh"

need_root
need_fuse
need_tool setpriv getfattr setfattr
id nobody >/dev/null 2>&1 || skip "no user 'nobody' on this machine"
test_images small
chmod 755 "$TMP" # mktemp made it 0700: let the other user reach the mount

D=$TMP/d.delta
M=$TMP/m
"$WTGFS" init "$D" "$IMAGES/lzx.wim" >/dev/null || fail "init failed"
wtg_mount "$D" "$M"
mkdir "$M/shared"
echo "root's" >"$M/shared/file.txt"
echo "root's" >"$M/shared/mv.txt"
echo "root's" >"$M/shared/rm.txt"
setfattr -n user.note -v root "$M/shared/file.txt"
wtg_umount "$M"

as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@" 2>/dev/null
}

SYS=Windows/System32
HIVE=$SYS/config/SYSTEM
# Every change 'nobody' tries; each line is NAME and a shell command run
# as nobody inside the mount.
CHANGES=(
	"create:echo evil >$SYS/evil.txt"
	"append:echo evil >>$HIVE"
	"truncate:truncate -s 0 shared/file.txt"
	"mkdir:mkdir $SYS/evil"
	"rename:mv shared/mv.txt shared/moved.txt"
	"remove:rm -f shared/rm.txt"
	"rmdir:rmdir Windows/Temp"
	"link:ln shared/file.txt shared/hard.txt"
	"symlink:ln -s file.txt shared/sym.txt"
	"touch:touch shared/file.txt"
	"user xattr:setfattr -n user.evil -v 1 shared/file.txt"
	"user xattr removal:setfattr -x user.note shared/file.txt"
	"attributes:setfattr -n system.ntfs_attrib_be -v 0x00000006 shared/file.txt"
	"security descriptor:setfattr -n system.ntfs_acl -v \$SD shared/file.txt"
	"EAs:setfattr -n system.ntfs_ea -v 0x1400000000060400244c584d4f4400a411000000 shared/file.txt"
	"times:setfattr -n system.ntfs_crtime -v 0x0000000000000000 shared/file.txt"
)

# What POSIX leaves to the owner whatever the mode says.
OWNER_ONLY=(
	"chmod:chmod 777 shared/file.txt"
	"set times:touch -d 2001-01-01 shared/file.txt"
	"chown:chown nobody shared/file.txt"
)

try_changes() { # WANT (refused|allowed) CHANGE...
	local want=$1
	shift
	for c in "$@"; do
		name=${c%%:*}
		cmd=${c#*:}
		rc=0
		(cd "$M" && as_nobody sh -c "$cmd") || rc=$?
		if [ "$want" = refused ] && [ $rc = 0 ]; then
			fail "nobody's $name succeeded on a shared mount ($cmd)"
		elif [ "$want" = allowed ] && [ $rc != 0 ]; then
			fail "nobody's $name was refused with -o umask=0 ($cmd)"
		fi
	done
}

echo "== allow_other: reads work, changes are refused"
wtg_mount "$D" "$M" -o allow_other
[ -f "$M/$HIVE" ] || fail "the test image has no $HIVE"
[ "$(stat -c %a:%U "$M/shared/file.txt")" = 755:root ] ||
	fail "a file shows $(stat -c %a:%U "$M/shared/file.txt"), want 755:root"
[ "$(stat -c %a "$M/shared")" = 755 ] || fail "a directory shows $(stat -c %a "$M/shared"), want 755"
as_nobody cat "$M/shared/file.txt" >/dev/null || fail "nobody cannot read a file"
as_nobody ls "$M/$SYS" >/dev/null || fail "nobody cannot list a directory"
as_nobody cmp -s "$M/$HIVE" "$M/$HIVE" || fail "nobody cannot read the hive"
[ "$(as_nobody getfattr --only-values -n user.note "$M/shared/file.txt")" = root ] ||
	fail "nobody cannot read a named stream"
sum=$(sha256sum <"$M/$HIVE")
SD=0x$(getfattr --absolute-names --only-values -n system.ntfs_acl "$M/shared/file.txt" | xxd -p | tr -d '\n')
export SD
try_changes refused "${CHANGES[@]}" "${OWNER_ONLY[@]}"
[ "$(sha256sum <"$M/$HIVE")" = "$sum" ] || fail "the hive changed"
[ ! -e "$M/$SYS/evil.txt" ] && [ "$(cat "$M/shared/file.txt")" = "root's" ] &&
	[ -e "$M/shared/mv.txt" ] && [ -e "$M/shared/rm.txt" ] ||
	fail "a refused change landed"
getfattr -n system.ntfs_ea "$M/shared/file.txt" >/dev/null 2>&1 && fail "nobody's EA landed"
# root still can
echo ok >"$M/shared/root.txt" || fail "root cannot write on its shared mount"
wtg_umount "$M"

echo "== allow_other,umask=0: everyone may change everything"
wtg_mount "$D" "$M" -o allow_other,umask=0
[ "$(stat -c %a "$M/shared/file.txt")" = 777 ] || fail "umask=0 shows $(stat -c %a "$M/shared/file.txt")"
try_changes allowed "${CHANGES[@]}"
try_changes refused "${OWNER_ONLY[@]}"
[ -e "$M/$SYS/evil.txt" ] || fail "nobody's file is not there"
wtg_umount "$M"

echo "== uid=, gid=, fmask=, dmask="
nuid=$(id -u nobody)
ngid=$(id -g nobody)
wtg_mount "$D" "$M" -o allow_other,uid=$nuid,gid=$ngid,fmask=133,dmask=022
[ "$(stat -c %u:%g:%a "$M/shared/root.txt")" = "$nuid:$ngid:644" ] ||
	fail "uid=/gid=/fmask= show $(stat -c %u:%g:%a "$M/shared/root.txt")"
[ "$(stat -c %a "$M/shared")" = 755 ] || fail "dmask=022 shows $(stat -c %a "$M/shared")"
(cd "$M" && as_nobody sh -c 'echo mine >shared/nobody.txt') || fail "the owner uid= names cannot write"
as_nobody setfattr -n system.ntfs_attrib_be -v 0x00000021 "$M/shared/nobody.txt" ||
	fail "the owner cannot set attributes"
wtg_umount "$M"

echo "== a read-only mount of the image"
wtg_mount "$IMAGES/lzx.wim" "$M" -o allow_other
as_nobody cat "$M/$HIVE" >/dev/null || fail "nobody cannot read a read-only mount"
(cd "$M" && as_nobody sh -c "echo x >>$HIVE") && fail "nobody wrote to a read-only mount"
[ "$(stat -c %a "$M/$HIVE")" = 444 ] || fail "a read-only file shows $(stat -c %a "$M/$HIVE")"
wtg_umount "$M"
echo "PASS"
