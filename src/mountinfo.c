/*
 * /proc/self/mountinfo lookups.
 */
#include <stdio.h>
#include <string.h>

#include "wtgfs/mountinfo.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* Calls @fn with the mount point and facts of each line, in order. */
static void each_mount(void (*fn)(void *, const char *, const struct wtg_mountinfo *), void *arg)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	static __thread char line[8192];
	struct wtg_mountinfo info;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *fields[12], *save;
		int n = 0;
		for (char *tok = strtok_r(line, " \n", &save); tok && n < 12;
		     tok = strtok_r(NULL, " \n", &save))
			fields[n++] = tok;
		if (n < 9)
			continue;
		unescape_octal(fields[4]);
		info.fstype[0] = info.source[0] = info.options[0] = '\0';
		if (sscanf(fields[2], "%u:%u", &info.major, &info.minor) != 2)
			info.major = info.minor = 0;
		/* optional fields end with "-", then the type */
		for (int i = 6; i + 1 < n; i++) {
			if (!strcmp(fields[i], "-")) {
				snprintf(info.fstype, sizeof(info.fstype), "%s", fields[i + 1]);
				if (i + 2 < n) {
					unescape_octal(fields[i + 2]);
					snprintf(info.source, sizeof(info.source), "%s",
						 fields[i + 2]);
				}
				if (i + 3 < n)
					snprintf(info.options, sizeof(info.options), "%s",
						 fields[i + 3]);
				break;
			}
		}
		fn(arg, fields[4], &info);
	}
	fclose(f);
}

struct by_path {
	const char *path;
	struct wtg_mountinfo *info;
	bool found;
};

static void match_path(void *arg, const char *mnt, const struct wtg_mountinfo *info)
{
	struct by_path *b = arg;

	/* later lines are mounted on top: the last match wins */
	if (!strcmp(mnt, b->path)) {
		*b->info = *info;
		b->found = true;
	}
}

bool wtg_mountinfo_find(const char *path, struct wtg_mountinfo *info)
{
	struct by_path b = {path, info, false};

	each_mount(match_path, &b);
	return b.found;
}

struct by_source {
	const char *fstype, *source;
	char *mnt;
	size_t size;
	bool found;
};

static void match_source(void *arg, const char *mnt, const struct wtg_mountinfo *info)
{
	struct by_source *b = arg;

	if (!strcmp(info->fstype, b->fstype) && !strcmp(info->source, b->source)) {
		snprintf(b->mnt, b->size, "%s", mnt);
		b->found = true;
	}
}

bool wtg_mountinfo_find_source(const char *fstype, const char *source, char *mnt, size_t size)
{
	struct by_source b = {fstype, source, mnt, size, false};

	each_mount(match_source, &b);
	return b.found;
}
