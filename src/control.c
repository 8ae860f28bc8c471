/*
 * The control channel: an abstract Unix socket per mount, peer credentials
 * checked on both ends, one request at a time (see wtgfs/control.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "wtgfs/control.h"
#include "wtgfs/log.h"
#include "wtgfs/mountinfo.h"

/* op, two arguments, and room for their NULs */
#define REQUEST_MAX (32 + 2 * WTG_CONTROL_ARG_MAX + 3)
#define ANSWER_MAX 16384

struct wtg_control {
	int fd;
	int wake[2]; /* written to stop the thread */
	pthread_t thread;
	wtg_control_fn fn;
	void *arg;
};

static socklen_t control_address(unsigned major, unsigned minor, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* sun_path[0] = '\0': the abstract namespace */
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "wtgfs-control-%u:%u", major,
			 minor);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static int peer_uid(int fd, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	*uid = cred.uid;
	return 0;
}

/* Splits @n bytes of NUL-separated fields into @want strings. */
static int fields(char *buf, size_t n, const char **out, int want)
{
	size_t at = 0;

	for (int i = 0; i < want; i++) {
		char *end = at < n ? memchr(buf + at, '\0', n - at) : NULL;
		if (!end)
			return -EPROTO;
		out[i] = buf + at;
		at = (size_t)(end - buf) + 1;
	}
	return 0;
}

static void serve(struct wtg_control *ctl, int fd)
{
	static char req[REQUEST_MAX], answer[ANSWER_MAX];
	char msgs[ANSWER_MAX / 2], out[1024] = "";
	const char *f[3];
	uid_t uid = (uid_t)-1;
	int ret;

	msgs[0] = '\0';
	ssize_t n = recv(fd, req, sizeof(req), 0);
	if (n <= 0)
		return;
	if (peer_uid(fd, &uid) < 0 || (uid != 0 && uid != geteuid())) {
		snprintf(msgs, sizeof(msgs),
			 "wtgfs: only the user who mounted it (uid %u) or root may do that\n",
			 (unsigned)geteuid());
		ret = -EPERM;
	} else if (fields(req, (size_t)n, f, 3) < 0) {
		ret = -EPROTO;
	} else {
		wtg_log_capture(msgs, sizeof(msgs));
		ret = ctl->fn(ctl->arg, f[0], f[1], f[2], out, sizeof(out));
		wtg_log_capture(NULL, 0);
	}
	int len = snprintf(answer, sizeof(answer), "%d", ret);
	len += 1 + snprintf(answer + len + 1, sizeof(answer) - (size_t)len - 1, "%s", msgs);
	len += 1 + snprintf(answer + len + 1, sizeof(answer) - (size_t)len - 1, "%s", out);
	if (send(fd, answer, (size_t)len + 1, MSG_NOSIGNAL) < 0)
		wtg_debug("control: cannot answer: %s", strerror(errno));
}

static void *control_thread(void *arg)
{
	struct wtg_control *ctl = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = ctl->fd, .events = POLLIN},
				      {.fd = ctl->wake[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		int fd = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(ctl, fd);
		close(fd);
	}
	return NULL;
}

int wtg_control_start(unsigned major, unsigned minor, wtg_control_fn fn, void *arg,
		      struct wtg_control **ctl_ret)
{
	struct wtg_control *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un sa;
	socklen_t len = control_address(major, minor, &sa);
	int ret;

	if (!ctl)
		return -ENOMEM;
	ctl->fn = fn;
	ctl->arg = arg;
	ctl->wake[0] = ctl->wake[1] = -1;
	ctl->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0 || pipe2(ctl->wake, O_CLOEXEC) < 0) {
		ret = -errno;
		goto fail;
	}
	if (bind(ctl->fd, (struct sockaddr *)&sa, len) < 0 || listen(ctl->fd, 8) < 0) {
		ret = -errno;
		wtg_error("cannot open the control channel of the mount (%s): snapshot and "
			  "rollback will not reach it",
			  strerror(-ret));
		goto fail;
	}
	if (pthread_create(&ctl->thread, NULL, control_thread, ctl) != 0) {
		ret = -EAGAIN;
		goto fail;
	}
	*ctl_ret = ctl;
	return 0;
fail:
	if (ctl->fd >= 0)
		close(ctl->fd);
	if (ctl->wake[0] >= 0) {
		close(ctl->wake[0]);
		close(ctl->wake[1]);
	}
	free(ctl);
	return ret;
}

void wtg_control_stop(struct wtg_control *ctl)
{
	if (!ctl)
		return;
	if (write(ctl->wake[1], "x", 1) < 0)
		wtg_debug("control: cannot wake the thread");
	pthread_join(ctl->thread, NULL);
	close(ctl->fd);
	close(ctl->wake[0]);
	close(ctl->wake[1]);
	free(ctl);
}

/* The uid the kernel gives as the mount's owner (user_id=), -1 if none. */
static long mount_owner(const char *mnt)
{
	struct wtg_mountinfo mi;
	const char *p;

	if (!wtg_mountinfo_find(mnt, &mi) || !(p = strstr(mi.options, "user_id=")))
		return -1;
	return strtol(p + 8, NULL, 10);
}

int wtg_control_call(const char *mnt, const char *op, const char *a, const char *b, char *out,
		     size_t outsize)
{
	static char req[REQUEST_MAX], answer[ANSWER_MAX + 1];
	struct wtg_mountinfo mi;
	struct sockaddr_un sa;
	uid_t uid = (uid_t)-1;
	int ret;

	if (strlen(a) >= WTG_CONTROL_ARG_MAX || strlen(b) >= WTG_CONTROL_ARG_MAX)
		return -E2BIG;
	if (!wtg_mountinfo_find(mnt, &mi)) {
		wtg_error("'%s' is not a mount point", mnt);
		return -ENOTCONN;
	}
	socklen_t len = control_address(mi.major, mi.minor, &sa);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, len) < 0) {
		ret = -errno;
		wtg_error("cannot reach the daemon of '%s' (%s): is it a wtgfs mount of a delta?",
			  mnt, strerror(-ret));
		close(fd);
		return -ENOTCONN;
	}
	long owner = mount_owner(mnt);
	if ((ret = peer_uid(fd, &uid)) < 0 || (uid != 0 && (long)uid != owner)) {
		wtg_error("the control channel of '%s' is held by uid %u, not by the mount's "
			  "owner; refusing to talk to it",
			  mnt, (unsigned)uid);
		close(fd);
		return -EPERM;
	}
	size_t n = (size_t)snprintf(req, sizeof(req), "%s", op) + 1;
	n += (size_t)snprintf(req + n, sizeof(req) - n, "%s", a) + 1;
	n += (size_t)snprintf(req + n, sizeof(req) - n, "%s", b) + 1;
	if (send(fd, req, n, MSG_NOSIGNAL) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ssize_t got = recv(fd, answer, ANSWER_MAX, 0);
	close(fd);
	const char *f[3];
	if (got <= 0 || fields(answer, (size_t)got, f, 3) < 0) {
		wtg_error("the daemon of '%s' gave no answer (see its log)", mnt);
		return -EPROTO;
	}
	fputs(f[1], stderr);
	if (out)
		snprintf(out, outsize, "%s", f[2]);
	return (int)strtol(f[0], NULL, 10);
}
