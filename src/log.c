/*
 * Messages: "wtgfs: " plus one line on stderr, or syslog once daemonised.
 */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "wtgfs/log.h"

static bool use_syslog;
static bool verbose;

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
	if (use_syslog) {
		vsyslog(prio, fmt, ap);
		return;
	}
	char line[2048];
	vsnprintf(line, sizeof(line), fmt, ap);
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
