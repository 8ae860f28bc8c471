/*
 * Error and warning messages.  Library code reports what went wrong where it
 * sees it, in the form the user reads ("cannot open 'x': not a WIM file");
 * the command line decides whether messages go to stderr or to syslog (a
 * daemonised mount has no terminal).
 */
#ifndef WTGFS_LOG_H
#define WTGFS_LOG_H

#include <stdbool.h>
#include <stddef.h>

void wtg_log_to_syslog(bool on);
void wtg_log_set_verbose(bool on);
/* From now on this thread's errors and warnings are also appended to @buf
 * (@size bytes, emptied here), one "wtgfs: ..." line each; NULL stops. */
void wtg_log_capture(char *buf, size_t size);

/* From now on this thread's errors and warnings are kept in @buf (@size
 * bytes, emptied here), one line each, instead of being said: for a try
 * that has a fallback.  NULL stops; wtg_log_release says what was kept. */
void wtg_log_hold(char *buf, size_t size);
/* The lines wtg_log_hold kept in @buf said as they were (@say) or, with
 * -v, as debug lines. */
void wtg_log_release(const char *buf, bool say);

void wtg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void wtg_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void wtg_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
