/*
 * wtgfs gc DELTA [--expire TIME]: drops what nothing keeps and gives the
 * space back.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "wtgfs/store.h"

static const char usage[] =
    "usage: wtgfs gc DELTA [--expire TIME] [--json]\n"
    "\n"
    "Drops the layers a rollback kept that were left before TIME and that no\n"
    "snapshot or HEAD still stands on, then the chunks and security\n"
    "descriptors no record uses, and shrinks the file (incremental vacuum).\n"
    "Snapshots and HEAD are never touched.  Prints what was reclaimed.  The\n"
    "delta must not be mounted.\n"
    "\n"
    "  --expire TIME  'now', 'never', an age (30d, 12h, 90m, 2w, 45s), a date\n"
    "                 (2026-12-01 or 2026-12-01T08:30:00, UTC) or @SECONDS;\n"
    "                 default 30d: what a rollback left a month ago or more\n"
    "  --json         the report as one JSON object\n";

static const struct option options[] = {
    {"expire", required_argument, NULL, 'e'},
    {"json", no_argument, NULL, 'j'},
    CLI_OPTIONS_END,
};

static const struct cli_command cmd = {"gc", usage, "", options};

/* TIME as Unix seconds: what was left before it goes. */
static bool parse_expire(const char *s, int64_t *ret)
{
	int64_t now = (int64_t)time(NULL);
	char *end;
	struct tm tm;

	if (!strcmp(s, "now")) {
		*ret = INT64_MAX; /* everything left so far */
		return true;
	}
	if (!strcmp(s, "never")) {
		*ret = 0;
		return true;
	}
	if (s[0] == '@') {
		long long v = strtoll(s + 1, &end, 10);
		*ret = v;
		return end != s + 1 && !*end;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || *end) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
	}
	if (end && !*end) {
		*ret = (int64_t)timegm(&tm);
		return true;
	}
	unsigned long long n = strtoull(s, &end, 10);
	if (end == s || !end[0] || end[1] || n > 1000000000ull)
		return false;
	int64_t unit = 0;
	switch (*end) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	case 'w': unit = 7 * 86400; break;
	default: return false;
	}
	*ret = now - (int64_t)n * unit;
	return true;
}

int cmd_gc(int argc, char **argv)
{
	struct wtg_store *store;
	struct wtg_store_gc_report r = {0};
	int64_t expire = 0;
	bool json = false;
	int c;

	parse_expire("30d", &expire);
	while ((c = cli_getopt(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'e':
			if (!parse_expire(optarg, &expire))
				return cli_usage_error(&cmd, "bad TIME '%s'", optarg);
			break;
		case 'j':
			json = true;
			break;
		default:
			return cli_getopt_exit(c);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(&cmd, "one DELTA is needed");
	const char *path = argv[optind];
	if (wtg_store_open(path, NULL, &store) < 0)
		return EXIT_ERROR;
	int ret = wtg_store_gc(store, expire, &r);
	int r2 = wtg_store_close(store);
	if (!ret)
		ret = r2;
	if (ret < 0)
		return EXIT_ERROR;
	if (json) {
		struct json_object *o = json_object_new_object();
		cli_json_add_name(o, "delta", path);
		cli_json_add_u64(o, "layers", r.layers);
		cli_json_add_u64(o, "abandoned", r.abandoned);
		cli_json_add_u64(o, "records", r.records);
		cli_json_add_u64(o, "chunks", r.chunks);
		cli_json_add_u64(o, "chunk_bytes", r.chunk_bytes);
		cli_json_add_u64(o, "file_before", r.file_before);
		cli_json_add_u64(o, "file_after", r.file_after);
		cli_json_print(o, CLI_JSON_LINE);
	} else {
		printf("%s: dropped %" PRIu64 " layers (%" PRIu64 " a rollback kept), %" PRIu64
		       " records, %" PRIu64 " chunks (%" PRIu64 " bytes); the file went from %" PRIu64
		       " to %" PRIu64 " bytes\n",
		       path, r.layers, r.abandoned, r.records, r.chunks, r.chunk_bytes,
		       r.file_before, r.file_after);
	}
	return 0;
}
