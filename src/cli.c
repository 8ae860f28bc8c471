/*
 * Helpers shared by the subcommands: option parsing with one set of rules
 * for every command, and JSON output through json-c (see cli.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "wtgfs/log.h"
#include "wtgfs/mountinfo.h"
#include "wtgfs/progress.h"
#include "wtgfs/source.h"
#include "wtgfs/store.h"
#include "wtgfs/view.h"

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "wtgfs %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'wtgfs %s --help')\n", cmd->name);
	return EXIT_ERROR;
}

/* The long option that argv[optind - 1] spelled, for a message. */
static const char *spelled(char **argv, int argc)
{
	int i = optind - 1;

	return i > 0 && i < argc ? argv[i] : "?";
}

int cli_getopt(const struct cli_command *cmd, int argc, char **argv)
{
	char optstring[64];

	/* ':' first: a missing argument answers ':', told apart from '?' */
	snprintf(optstring, sizeof(optstring), ":%sh", cmd->shortopts);
	opterr = 0;
	int c = getopt_long(argc, argv, optstring, cmd->options, NULL);
	switch (c) {
	case 'h':
		fputs(cmd->usage, stdout);
		return CLI_GETOPT_HELP;
	case '?': {
		const char *opt = spelled(argv, argc);
		if (opt[0] == '-' && opt[1] == '-') {
			const char *eq = strchr(opt, '=');
			if (eq && optopt)
				return cli_usage_error(cmd, "option '%.*s' takes no value",
						       (int)(eq - opt), opt),
				       CLI_GETOPT_BAD;
			return cli_usage_error(cmd, "unknown option '%s'", opt), CLI_GETOPT_BAD;
		}
		return cli_usage_error(cmd, "unknown option '-%c'", optopt), CLI_GETOPT_BAD;
	}
	case ':': {
		const char *opt = spelled(argv, argc);
		if (opt[0] == '-' && opt[1] == '-') {
			size_t n = strcspn(opt, "=");
			return cli_usage_error(cmd, "option '%.*s' needs a value", (int)n, opt),
			       CLI_GETOPT_BAD;
		}
		return cli_usage_error(cmd, "option '-%c' needs a value", optopt), CLI_GETOPT_BAD;
	}
	default:
		return c;
	}
}

int cli_getopt_exit(int c)
{
	return c == CLI_GETOPT_HELP ? 0 : EXIT_ERROR;
}

bool cli_parse_size(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s)
		return false;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end)
		return false;
	*ret = v;
	return true;
}

int cli_json_print(struct json_object *obj, enum cli_json_style style)
{
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
		    (style == CLI_JSON_PRETTY ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
					      : JSON_C_TO_STRING_PLAIN);
	const char *s = json_object_to_json_string_ext(obj, flags);
	int ret = 0;

	if (!s || fputs(s, stdout) == EOF || putchar('\n') == EOF)
		ret = -EIO;
	json_object_put(obj);
	return ret;
}

/* The length of the valid UTF-8 sequence at @p (at most @n bytes), or 0. */
static size_t utf8_sequence(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned min, cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, min = 0x80, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, min = 0x800, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, min = 0x10000, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates and beyond U+10FFFF are not UTF-8 */
	if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

bool cli_xml_text_ok(const char *s, long *bad, size_t *at)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);

	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence(p + i, len - i);
		/* (the controls are one byte; U+FFFE and U+FFFF are EF BF BE/BF) */
		long cp = n == 1 ? p[i] : n == 3 && p[i] == 0xef && p[i + 1] == 0xbf && p[i + 2] >= 0xbe
						? 0xfffe + (p[i + 2] - 0xbe)
						: 0x20;
		if (!n || (cp < 0x20 && cp != 0x09 && cp != 0x0a && cp != 0x0d) || cp >= 0xfffe) {
			*bad = n ? cp : -1;
			*at = i;
			return false;
		}
		i += n;
	}
	return true;
}

struct json_object *cli_json_name(const char *s, bool *altered_ret)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, o = 0;
	bool altered = false;
	/* each bad byte grows to the 3 bytes of U+FFFD */
	char *buf = malloc(3 * n + 1);

	if (!buf)
		abort();
	while (i < n) {
		size_t len = utf8_sequence(p + i, n - i);
		if (len) {
			memcpy(buf + o, p + i, len);
			o += len;
			i += len;
		} else {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			altered = true;
		}
	}
	struct json_object *str = json_object_new_string_len(buf, (int)o);
	free(buf);
	if (altered_ret)
		*altered_ret = altered;
	return str;
}

static char *base64(const char *s)
{
	static const char digits[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), o = 0;
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	if (!out)
		abort();
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = digits[v >> 18 & 63];
		out[o++] = digits[v >> 12 & 63];
		out[o++] = i + 1 < n ? digits[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? digits[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

void cli_json_add_name(struct json_object *obj, const char *key, const char *s)
{
	bool altered;

	json_object_object_add(obj, key, cli_json_name(s, &altered));
	if (altered) {
		char raw_key[128];
		char *raw = base64(s);
		snprintf(raw_key, sizeof(raw_key), "%s_raw", key);
		json_object_object_add(obj, raw_key, json_object_new_string(raw));
		free(raw);
	}
}

void cli_json_add_string(struct json_object *obj, const char *key, const char *s)
{
	json_object_object_add(obj, key, cli_json_name(s, NULL));
}

void cli_json_add_string_or_null(struct json_object *obj, const char *key, const char *s)
{
	json_object_object_add(obj, key, s ? cli_json_name(s, NULL) : NULL);
}

void cli_json_add_u64(struct json_object *obj, const char *key, uint64_t v)
{
	json_object_object_add(obj, key, json_object_new_uint64(v));
}

void cli_json_add_i64(struct json_object *obj, const char *key, int64_t v)
{
	json_object_object_add(obj, key, json_object_new_int64(v));
}

void cli_json_add_bool(struct json_object *obj, const char *key, bool v)
{
	json_object_object_add(obj, key, json_object_new_boolean(v));
}

int cli_delta_target(const char *arg, struct wtg_store **store_ret, char *mnt, size_t size)
{
	struct wtg_mountinfo mi;
	struct stat sb;
	char canon[PATH_MAX];

	*store_ret = NULL;
	mnt[0] = '\0';
	if (!realpath(arg, canon)) {
		wtg_error("cannot open '%s': %s", arg, strerror(errno));
		return -errno;
	}
	/* a mount point: not stat()ed, a hung daemon would hang us */
	if (wtg_mountinfo_find(canon, &mi)) {
		if (strcmp(mi.fstype, "fuse.wtgfs")) {
			wtg_error("'%s' is a mount point, but not of wtgfs", arg);
			return -EINVAL;
		}
		snprintf(mnt, size, "%s", canon);
		return 0;
	}
	if (stat(canon, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		wtg_error("'%s' is a directory, not a delta or a wtgfs mount point", arg);
		return -EINVAL;
	}
	/* a delta some mount holds goes through its daemon */
	if (wtg_store_is_delta(canon) &&
	    wtg_mountinfo_find_source("fuse.wtgfs", canon, mnt, size))
		return 0;
	mnt[0] = '\0';
	int ret = wtg_store_open(canon, NULL, store_ret);
	return ret < 0 ? ret : 0;
}

void cli_put_stderr(const char *s)
{
	ssize_t n = write(STDERR_FILENO, s, strlen(s));
	(void)n;
}

void cli_catch_signals(void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

double cli_seconds_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* ---- progress ---- */

void cli_progress_start(struct cli_progress *s, bool json)
{
	*s = (struct cli_progress){.json = json, .bar = !json && isatty(STDERR_FILENO)};
	clock_gettime(CLOCK_MONOTONIC, &s->start);
	s->last = s->start;
}

static void mib(double v, char *buf, size_t size)
{
	snprintf(buf, size, "%.1f MiB", v / 1048576.0);
}

static void draw_bar(struct cli_progress *s, const struct wtg_progress *p)
{
	double el = cli_seconds_since(&s->start), rate = el > 0 ? (double)p->bytes_done / el : 0;
	double frac = (double)p->bytes_done / (double)p->bytes_total;
	char done[32], total[32], r[32], eta[32] = "--:--";
	int width = 24;

	if (frac > 1)
		frac = 1;
	int fill = (int)(frac * width + 0.5);
	mib((double)p->bytes_done, done, sizeof(done));
	mib((double)p->bytes_total, total, sizeof(total));
	mib(rate, r, sizeof(r));
	if (rate > 0 && p->bytes_total >= p->bytes_done) {
		long left = (long)((double)(p->bytes_total - p->bytes_done) / rate);
		snprintf(eta, sizeof(eta), "%ld:%02ld", left / 60, left % 60);
	}
	fprintf(stderr,
		"\r%-6s [%.*s%*s] %3.0f%% %s / %s, %" PRIu64 "/%" PRIu64 " files, %s/s, ETA %s ",
		p->phase, fill, "########################", width - fill, "", frac * 100, done,
		total, p->files_done, p->files_total, r, eta);
}

void cli_progress_show(void *ctx, const struct wtg_progress *p)
{
	struct cli_progress *s = ctx;
	bool new_phase = s->phase != p->phase;

	s->phase = p->phase;
	if (!new_phase && cli_seconds_since(&s->last) < 0.2 && p->bytes_done < p->bytes_total)
		return;
	clock_gettime(CLOCK_MONOTONIC, &s->last);
	if (s->json) {
		struct json_object *o = json_object_new_object();
		cli_json_add_string(o, "type", "progress");
		cli_json_add_string(o, "phase", p->phase);
		cli_json_add_u64(o, "bytes", p->bytes_done);
		cli_json_add_u64(o, "bytes_total", p->bytes_total);
		cli_json_add_u64(o, "files", p->files_done);
		cli_json_add_u64(o, "files_total", p->files_total);
		cli_json_print(o, CLI_JSON_LINE);
		fflush(stdout);
		return;
	}
	if (!s->bar)
		return;
	if (p->bytes_total)
		draw_bar(s, p);
	else if (new_phase)
		fprintf(stderr, "%s%s...", s->drawn ? "\n" : "", p->phase);
	else
		return;
	s->drawn = true;
}

double cli_progress_end(struct cli_progress *s)
{
	if (s->drawn)
		fputc('\n', stderr);
	s->drawn = false;
	return cli_seconds_since(&s->start);
}

/* ---- SOURCE operands ---- */

int cli_source_parse(const char *spec, const char *base, struct cli_source *src)
{
	const char *cut = NULL;

	*src = (struct cli_source){.spec = spec, .base = base};
	/* The file is the longest part before an '@' or ':' that exists
	 * ("a@b/disk.vhdx:2", a snapshot "x@y" as "d.delta@x@y"); when none
	 * does, the last such part is the one the error names. */
	if (access(spec, F_OK) != 0) {
		for (const char *p = spec + strlen(spec); p-- > spec + 1;) {
			if (*p != '@' && *p != ':')
				continue;
			if (!cut)
				cut = p;
			char *prefix = strndup(spec, (size_t)(p - spec));
			bool there = prefix && access(prefix, F_OK) == 0;
			free(prefix);
			if (there) {
				cut = p;
				break;
			}
		}
	}
	const char *at = cut && *cut == '@' ? cut : NULL;
	src->path = cut ? strndup(spec, (size_t)(cut - spec)) : strdup(spec);
	if (!src->path)
		return -ENOMEM;
	src->sel = cut ? cut + 1 : NULL;
	int err = access(src->path, F_OK) ? errno : 0;
	if (err) {
		wtg_error("cannot open '%s': %s", src->path, strerror(err));
		cli_source_release(src);
		return -err;
	}
	src->delta = wtg_store_is_delta(src->path);
	if (cut && cut == at && !src->delta) {
		wtg_error("'%s' is not a delta file (DELTA@SNAP needs one)", src->path);
		cli_source_release(src);
		return -EINVAL;
	}
	if (src->delta && cut && cut != at) {
		wtg_error("'%s' is a delta: name a snapshot as '%s@SNAP'", src->path, src->path);
		cli_source_release(src);
		return -EINVAL;
	}
	if (base && !src->delta) {
		wtg_error("--base goes with a delta, and '%s' is not one", src->path);
		cli_source_release(src);
		return -EINVAL;
	}
	return 0;
}

int cli_source_view(const struct cli_source *src, struct wtg_view **view_ret)
{
	struct wtg_source_options so = {0};

	if (src->delta)
		return wtg_view_open_at(src->path, src->base, src->sel, &so, view_ret);
	return wtg_view_open_image(src->spec, &so, view_ret);
}

void cli_source_release(struct cli_source *src)
{
	free(src->path);
	src->path = NULL;
}
