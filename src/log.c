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
/* a thread serving a request for another process: its lines go there too */
static __thread char *capture;
static __thread size_t capture_size;

void wtg_log_capture(char *buf, size_t size)
{
	capture = buf;
	capture_size = size;
	if (buf && size)
		buf[0] = '\0';
}

/* a try with a fallback: its lines are kept, not said */
static __thread char *hold;
static __thread size_t hold_size;

void wtg_log_hold(char *buf, size_t size)
{
	hold = buf;
	hold_size = size;
	if (buf && size)
		buf[0] = '\0';
}

void wtg_log_release(const char *buf, bool say)
{
	/* (each line holds its "warning: " already) */
	for (const char *p = buf; p && *p;) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);
		bool warning = !strncmp(p, "warning: ", 9);
		if (say)
			wtg_error("%.*s", n, p);
		else if (warning)
			wtg_debug("%.*s", n - 9, p + 9);
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
	if (hold && prio != LOG_DEBUG) {
		size_t used = strlen(hold);
		snprintf(hold + used, hold_size - used, "%s%s\n", prefix, line);
		return;
	}
	if (capture && prio != LOG_DEBUG) {
		size_t used = strlen(capture);
		snprintf(capture + used, capture_size - used, "wtgfs: %s%s\n", prefix, line);
	}
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
