/*
 * The list of changes a flush makes beyond copying the tree (WTG settings,
 * BCD choices), which the command prints or hands out as JSON.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "wtgfs/flush.h"

int wtg_flush_report_add(struct wtg_flush_report *rep, const char *fmt, ...)
{
	if (!rep)
		return 0;
	if (rep->nchanges == rep->cap) {
		size_t cap = rep->cap ? 2 * rep->cap : 8;
		char **v = realloc(rep->changes, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		rep->changes = v;
		rep->cap = cap;
	}
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&rep->changes[rep->nchanges], fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	rep->nchanges++;
	return 0;
}

void wtg_flush_report_release(struct wtg_flush_report *rep)
{
	for (size_t i = 0; i < rep->nchanges; i++)
		free(rep->changes[i]);
	free(rep->changes);
	rep->changes = NULL;
	rep->nchanges = rep->cap = 0;
}
