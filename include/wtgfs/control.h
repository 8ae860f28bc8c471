/*
 * The control channel of a mounted delta: how 'wtgfs snapshot MNT' and
 * 'wtgfs rollback MNT' reach the daemon that holds the delta.
 *
 * The daemon listens on a Unix socket (SOCK_SEQPACKET) in the abstract
 * namespace named after the mount's device number, "wtgfs-control-MAJ:MIN",
 * so anyone who can see the mount point finds it from /proc/self/mountinfo
 * and nothing is left on a disk when the daemon dies.  Both ends check who
 * is at the other through SO_PEERCRED: the daemon serves only its own user
 * and root (also when the mount lets other users in with allow_other), and
 * the client talks only to a process of the user the kernel says owns the
 * mount (or root), so a process that took the name first cannot answer for
 * the daemon.
 *
 * A request is one message: an operation and two arguments; the answer is
 * one message: 0 or -errno, the daemon's error lines for it, and a result
 * string.  Requests are served one at a time.
 */
#ifndef WTGFS_CONTROL_H
#define WTGFS_CONTROL_H

#include <stddef.h>

#define WTG_CONTROL_ARG_MAX 4096

struct wtg_control;

/* Serves one request: @op with arguments @a and @b ("" when not given);
 * writes a result string into @out.  Returns 0 or -errno. */
typedef int (*wtg_control_fn)(void *arg, const char *op, const char *a, const char *b, char *out,
			      size_t outsize);

/* Starts serving the mount whose device number is @major:@minor from a
 * thread of its own.  -EADDRINUSE (logged) when another process holds the
 * name. */
int wtg_control_start(unsigned major, unsigned minor, wtg_control_fn fn, void *arg,
		      struct wtg_control **ctl_ret);
/* Stops serving (waits for a request being served) and frees. */
void wtg_control_stop(struct wtg_control *ctl);

/* Asks the daemon of the mount at @mnt (a canonical path) to do @op.  The
 * daemon's messages are printed here (stderr) as it logged them; *out gets
 * its result string.  Returns the daemon's answer, or -ENOTCONN (logged)
 * when no daemon answers, -EPERM when this user may not ask. */
int wtg_control_call(const char *mnt, const char *op, const char *a, const char *b, char *out,
		     size_t outsize);

#endif
