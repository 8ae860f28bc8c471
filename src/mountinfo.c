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

bool wtg_mountinfo_find(const char *path, struct wtg_mountinfo *info)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char *fields[12], *save;
		int n = 0;
		for (char *tok = strtok_r(line, " \n", &save); tok && n < 12;
		     tok = strtok_r(NULL, " \n", &save))
			fields[n++] = tok;
		if (n < 9)
			continue;
		unescape_octal(fields[4]);
		if (strcmp(fields[4], path))
			continue;
		/* later lines are mounted on top: the last match wins */
		found = true;
		info->fstype[0] = info->source[0] = '\0';
		if (sscanf(fields[2], "%u:%u", &info->major, &info->minor) != 2)
			info->major = info->minor = 0;
		/* optional fields end with "-", then the type */
		for (int i = 6; i + 1 < n; i++) {
			if (!strcmp(fields[i], "-")) {
				snprintf(info->fstype, sizeof(info->fstype), "%s", fields[i + 1]);
				if (i + 2 < n) {
					unescape_octal(fields[i + 2]);
					snprintf(info->source, sizeof(info->source), "%s",
						 fields[i + 2]);
				}
				break;
			}
		}
	}
	fclose(f);
	return found;
}
