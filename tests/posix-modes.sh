#!/bin/bash
# -o posix: owners, groups and modes kept per file in WSL's EAs ($LXUID,
# $LXGID, $LXMOD), the kernel checking them.  On an allow_other mount the
# user 'nobody' is refused where the mode says so (open for writing,
# unlink and rename in a sticky directory, truncate, mkdir, chmod and
# chown of another's file) and allowed where it does not (its own files in
# a 1777 directory); what it creates is its own; the modes and owners
# survive a remount and show in system.ntfs_ea as WSL writes them.
. "$(dirname "$0")/lib.sh"

need_root
need_fuse
need_tool setpriv getfattr truncate
id nobody >/dev/null 2>&1 || skip "no user 'nobody' on this machine"
test_images small
chmod 755 "$TMP" # mktemp made it 0700: let the other user reach the mount

D=$TMP/d.delta
M=$TMP/m
NOBODY=$(id -u nobody)
NOGROUP=$(id -g nobody)
"$WTGFS" init "$D" "$IMAGES/lzx.wim" >/dev/null || fail "init failed"

as_nobody() {
	setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups -- "$@" 2>/dev/null
}
# may WHAT CMD...: nobody's CMD must succeed; refused WHAT CMD...: must fail
may() {
	local what=$1
	shift
	as_nobody "$@" || fail "-o posix: nobody may $what, but it was refused"
}
refused() {
	local what=$1
	shift
	as_nobody "$@" && fail "-o posix: nobody may not $what, but it was allowed"
	return 0
}
modes() { # the mode, owner and group of each path under $M
	for p in "$@"; do stat -c "$p %a %u %g" "$M/$p"; done
}

wtg_mount "$D" "$M" -o posix,allow_other
mkdir -m 1777 "$M/tmp" || fail "mkdir -m 1777 failed"
mkdir -m 0755 "$M/rootdir" || fail "mkdir failed"
echo "root's" >"$M/tmp/rootfile"
chmod 0644 "$M/tmp/rootfile"
echo "secret" >"$M/rootdir/secret"
chmod 0600 "$M/rootdir/secret"
[ "$(stat -c %a "$M/tmp")" = 1777 ] || fail "the sticky directory shows $(stat -c %a "$M/tmp")"
[ "$(stat -c %a "$M/rootdir/secret")" = 600 ] || fail "chmod 0600 shows $(stat -c %a "$M/rootdir/secret")"

# what the mode allows
may "create a file in a 1777 directory" sh -c "echo mine >'$M/tmp/mine'"
[ "$(stat -c '%u %g' "$M/tmp/mine")" = "$NOBODY $NOGROUP" ] ||
	fail "nobody's new file is owned by $(stat -c '%u %g' "$M/tmp/mine")"
may "read a 0644 file" cat "$M/tmp/rootfile"
may "mkdir in a 1777 directory" mkdir "$M/tmp/mydir"
may "truncate its own file" truncate -s 2 "$M/tmp/mine"
may "chmod its own file" chmod 0640 "$M/tmp/mine"
may "rename its own file in a sticky directory" mv "$M/tmp/mine" "$M/tmp/mine2"
may "unlink its own file in a sticky directory" rm "$M/tmp/mine2"
may "make its own file again" sh -c "echo mine >'$M/tmp/mine'"

# what it does not
refused "open a 0644 file of root's for writing" sh -c "echo x >>'$M/tmp/rootfile'"
refused "read a 0600 file of root's" cat "$M/rootdir/secret"
refused "truncate a 0644 file of root's" truncate -s 0 "$M/tmp/rootfile"
refused "unlink root's file in a sticky directory" rm -f "$M/tmp/rootfile"
refused "rename root's file in a sticky directory" mv "$M/tmp/rootfile" "$M/tmp/stolen"
refused "mkdir in a 0755 directory of root's" mkdir "$M/rootdir/x"
refused "create in a 0755 directory of root's" sh -c "echo x >'$M/rootdir/x'"
refused "chmod root's file" chmod 0666 "$M/tmp/rootfile"
refused "chown its file to root" chown root "$M/tmp/mine"
refused "chown root's file to itself" chown nobody "$M/tmp/rootfile"
[ "$(cat "$M/tmp/rootfile")" = "root's" ] || fail "root's file changed"
[ "$(stat -c %a "$M/tmp/rootfile")" = 644 ] || fail "root's file's mode changed"

# root chowns, and the kernel then lets the new owner in
chown nobody "$M/rootdir/secret" || fail "root's chown failed"
may "read a 0600 file it was given" cat "$M/rootdir/secret"
chown root:root "$M/rootdir/secret"
refused "read a 0600 file taken back" cat "$M/rootdir/secret"
chown "$NOBODY:$NOGROUP" "$M/rootdir" && chmod 2775 "$M/rootdir"
touch "$M/rootdir/setgid-child"
[ "$(stat -c %g "$M/rootdir/setgid-child")" = "$NOGROUP" ] ||
	fail "a file in a set-group-ID directory has group $(stat -c %g "$M/rootdir/setgid-child")"

# the EAs are WSL's: $LXUID, $LXGID, $LXMOD (le32)
ea=$(getfattr --absolute-names --only-values -n system.ntfs_ea "$M/tmp/mine" | xxd -p | tr -d '\n')
for n in 244c58554944 244c58474944 244c584d4f44; do
	case $ea in *"${n}00"*) ;; *) fail "nobody's file has no $n entry in its EA: $ea" ;; esac
done
mkfifo -m 0620 "$M/tmp/fifo" || fail "mkfifo failed"
# what NTFS cannot hold, as man/wtgfs-mount.1 lists it: 255 UTF-16 units, not bytes
long=$(/usr/bin/python3 -c 'print("\u4e2d" * 100)')
may "make a name of 300 bytes and 100 UTF-16 units" touch "$M/tmp/$long"
as_nobody mkdir "$M/tmp/MyDir" && fail "mkdir of a name equal to another ignoring case succeeded"

P="tmp tmp/rootfile tmp/mine tmp/mydir tmp/fifo rootdir rootdir/secret rootdir/setgid-child"
modes $P >"$TMP/before"
wtg_umount "$M"

# modes survive a remount
wtg_mount "$D" "$M" -o posix,allow_other
modes $P >"$TMP/after"
diff "$TMP/before" "$TMP/after" || fail "modes or owners changed across a remount"
[ "$(stat -c %F "$M/tmp/fifo")" = fifo ] || fail "the fifo is no fifo after a remount"
refused "unlink root's file in a sticky directory after a remount" rm -f "$M/tmp/rootfile"
may "write its own file after a remount" sh -c "echo more >>'$M/tmp/mine'"
wtg_umount "$M"

# without -o posix the modes are the mount's again (and nothing is lost)
wtg_mount "$D" "$M"
[ "$(stat -c %a "$M/tmp")" = 755 ] || fail "without -o posix the sticky directory shows $(stat -c %a "$M/tmp")"
wtg_umount "$M"
echo "PASS"
