/*
 * Messages: "wtgfs: " plus one line on stderr, or syslog once daemonised.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "wtgfs/log.h"

static bool use_syslog;
static bool verbose;
/* Lines kept in a caller's buffer (one per thread and kind). */
struct kept {
	char *buf;
	size_t size;
};
/* a thread serving a request for another process: its lines go there too */
static __thread struct kept capture;
/* a try with a fallback: its lines are kept, not said */
static __thread struct kept hold;

static void keep_in(struct kept *k, char *buf, size_t size)
{
	k->buf = buf;
	k->size = size;
	if (buf && size)
		buf[0] = '\0';
}

static void keep_line(const struct kept *k, const char *lead, const char *prefix, const char *line)
{
	size_t used = strlen(k->buf);
	snprintf(k->buf + used, k->size - used, "%s%s%s\n", lead, prefix, line);
}

void wtg_log_capture(char *buf, size_t size)
{
	keep_in(&capture, buf, size);
}

void wtg_log_hold(char *buf, size_t size)
{
	keep_in(&hold, buf, size);
}

void wtg_log_release(const char *buf, bool say)
{
	/* (a warning's line holds its "warning: " already) */
	for (const char *p = buf; p && *p;) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);
		if (say)
			wtg_error("%.*s", n, p);
		else
			wtg_debug("%.*s", n, p);
		p += n + (nl != NULL);
	}
}

void wtg_log_to_syslog(bool on)
{
	if (on && !use_syslog)
		openlog("wtgfs", LOG_PID, LOG_DAEMON);
	use_syslog = on;
}

void wtg_log_set_verbose(bool on)
{
	verbose = on;
}

static void vlog(int prio, const char *prefix, const char *fmt, va_list ap)
{
	char line[2048];
	vsnprintf(line, sizeof(line), fmt, ap);
	if (hold.buf && prio != LOG_DEBUG) {
		keep_line(&hold, "", prefix, line);
		return;
	}
	if (capture.buf && prio != LOG_DEBUG)
		keep_line(&capture, "wtgfs: ", prefix, line);
	if (use_syslog)
		syslog(prio, "%s%s", prefix, line);
	else
		fprintf(stderr, "wtgfs: %s%s\n", prefix, line);
}

void wtg_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_ERR, "", fmt, ap);
	va_end(ap);
}

void wtg_warning(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_WARNING, "warning: ", fmt, ap);
	va_end(ap);
}

void wtg_debug(const char *fmt, ...)
{
	if (!verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, "debug: ", fmt, ap);
	va_end(ap);
}
