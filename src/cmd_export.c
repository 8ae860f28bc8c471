/*
 * wtgfs export SOURCE OUT.wim: a delta's tree (its working layer or a
 * snapshot), a bare VHDX/raw NTFS volume, or a WIM/ESD image written as an
 * image of a WIM file.  The writing is src/export.c; this file opens the
 * source, shows progress and reports.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "wtgfs/export.h"
#include "wtgfs/log.h"
#include "wtgfs/source.h"
#include "wtgfs/store.h"
#include "wtgfs/tree.h"
#include "wtgfs/view.h"

static const char usage[] =
    "usage: wtgfs export SOURCE OUT.wim [--append] [--name NAME] [--description TEXT]\n"
    "                    [--compress lzx|xpress|lzms|none] [--solid] [--boot]\n"
    "                    [--threads N] [--check] [--full] [--base PATH] [-v] [--json]\n"
    "\n"
    "Writes the merged tree of SOURCE as an image of a WIM file, with every NTFS\n"
    "fact it holds.  SOURCE is DELTA (its working layer), DELTA@SNAP (a\n"
    "snapshot), IMAGE[:INDEX] (an image of a WIM or ESD file, exported as it\n"
    "is) or DISK[:PART] (the NTFS volume of a VHDX, VHD or raw disk).  Without\n"
    "--append OUT.wim is a new WIM (refused when it exists); with --append a new\n"
    "image is added to it, sharing every blob it already holds.  The delta and\n"
    "its base (unless it is OUT.wim) are only read.  A tree goes through a\n"
    "sparse temporary NTFS image in $TMPDIR (when it has the room), else beside\n"
    "OUT.wim.  A delta on a WIM base is exported incrementally: the base image\n"
    "is copied as the new image (into the base WIM itself: nothing stored\n"
    "again) and updated with only what changed (a full capture when the\n"
    "change is large or of a kind this does not handle).\n"
    "\n"
    "  --append            add an image to an existing OUT.wim\n"
    "  --name NAME         the image's name (default: the snapshot's, the\n"
    "                      delta's file name, or the image's own)\n"
    "  --description TEXT  the image's description\n"
    "  --compress TYPE     lzx (default), xpress, lzms or none; an append keeps\n"
    "                      the WIM's\n"
    "  --solid             one solid resource (LZMS unless --compress says)\n"
    "  --boot              mark the new image as the WIM's boot image\n"
    "  --threads N         compression and reading threads (default: all CPUs)\n"
    "  --check             write an integrity table\n"
    "  --full              capture the whole tree, never incrementally\n"
    "  --base PATH         where a delta's base image lies, when it moved\n"
    "  -v, --verbose       say why an export is not incremental\n"
    "  --json              progress and the result as JSON Lines on stdout\n";

static const struct option options[] = {
    {"append", no_argument, NULL, 'a'},
    {"name", required_argument, NULL, 'n'},
    {"description", required_argument, NULL, 'd'},
    {"compress", required_argument, NULL, 'c'},
    {"solid", no_argument, NULL, 's'},
    {"boot", no_argument, NULL, 'b'},
    {"threads", required_argument, NULL, 't'},
    {"check", no_argument, NULL, 'k'},
    {"full", no_argument, NULL, 'f'},
    {"base", required_argument, NULL, 'B'},
    {"verbose", no_argument, NULL, 'v'},
    {"json", no_argument, NULL, 'j'},
    CLI_OPTIONS_END,
};

static const struct cli_command cmd = {"export", usage, "v", options};

/* ---- interruption ---- */

static const char *out_name = "";
static volatile sig_atomic_t appending;

static void on_signal(int sig)
{
	wtg_export_interrupted();
	cli_put_stderr("\nwtgfs: export interrupted: '");
	cli_put_stderr(out_name);
	cli_put_stderr(appending ? "' still holds its earlier images as they were (wimlib "
				   "writes an append's header last)\n"
				 : "' was not made\n");
	_exit(128 + sig);
}

/* ---- the source ---- */

/* The file name of @path without its directory and last extension. */
static char *stem(const char *path)
{
	char *copy = strdup(path), *s = NULL;

	if (copy) {
		s = strdup(basename(copy));
		char *dot = s ? strrchr(s, '.') : NULL;
		if (dot && dot != s)
			*dot = '\0';
	}
	free(copy);
	return s;
}

static void report(bool json, const char *source, const char *out, const char *name,
		   const struct wtg_export_result *res, bool append, double secs)
{
	if (json) {
		struct json_object *o = json_object_new_object();
		cli_json_add_string(o, "type", "result");
		cli_json_add_name(o, "source", source);
		cli_json_add_name(o, "wim", out);
		cli_json_add_name(o, "name", name);
		cli_json_add_u64(o, "image", (uint64_t)res->image);
		cli_json_add_bool(o, "append", append);
		cli_json_add_bool(o, "incremental", res->incremental);
		if (res->incremental)
			cli_json_add_u64(o, "changes", res->changes);
		cli_json_add_string_or_null(o, "full_reason",
					    res->full_reason[0] ? res->full_reason : NULL);
		cli_json_add_bool(o, "raw", res->raw);
		cli_json_add_bool(o, "tree", !!res->tree_reason[0]);
		cli_json_add_string_or_null(o, "tree_reason",
					    res->tree_reason[0] ? res->tree_reason : NULL);
		cli_json_add_string_or_null(o, "raw_reason",
					    res->raw_reason[0] ? res->raw_reason : NULL);
		if (res->raw) {
			const struct wim_append_stats *st = &res->raw_stats;
			cli_json_add_u64(o, "blobs_new", st->blobs_new);
			cli_json_add_u64(o, "chunks_compressed", st->chunks_compressed + st->chunks_raw);
			cli_json_add_u64(o, "chunks_reused", st->chunks_reused);
			cli_json_add_u64(o, "metadata_chunks", st->meta_chunks);
			cli_json_add_u64(o, "metadata_chunks_reused", st->meta_chunks_reused);
			cli_json_add_u64(o, "sums_used", res->sums_used);
			cli_json_add_u64(o, "integrity_chunks_hashed", st->integrity_hashed);
			cli_json_add_u64(o, "integrity_chunks_reused", st->integrity_reused);
		}
		cli_json_add_u64(o, "size_before", res->size_before);
		cli_json_add_u64(o, "size_after", res->size_after);
		cli_json_add_u64(o, "files", res->files);
		cli_json_add_u64(o, "dirs", res->dirs);
		cli_json_add_u64(o, "bytes", res->bytes);
		cli_json_add_string_or_null(o, "tmp_dir", res->tmp_dir[0] ? res->tmp_dir : NULL);
		cli_json_add_u64(o, "tmp_bytes", res->tmp_bytes);
		json_object_object_add(o, "seconds", json_object_new_double(secs));
		cli_json_print(o, CLI_JSON_LINE);
		return;
	}
	printf("%s: image %d '%s' %s from '%s' in %.1f s; the WIM is %" PRIu64 " bytes", out,
	       res->image, name, append ? "appended" : "written", source, secs, res->size_after);
	if (append)
		printf(" (grew by %" PRIu64 ")", res->size_after - res->size_before);
	printf("\n");
	if (res->incremental)
		printf("  incremental: the base image updated with %" PRIu64 " changed paths%s\n",
		       res->changes, res->raw ? ", written by wtgfs's own appender" : " by wimlib");
	if (res->raw)
		printf("  %" PRIu64 " new blobs; %" PRIu64 " chunks compressed, %" PRIu64
		       " reused from the base\n",
		       res->raw_stats.blobs_new,
		       res->raw_stats.chunks_compressed + res->raw_stats.chunks_raw,
		       res->raw_stats.chunks_reused);
	if (res->raw && res->raw_stats.integrity_reused)
		printf("  integrity table: %" PRIu64 " of %" PRIu64
		       " chunks hashed, the rest kept from the old table\n",
		       res->raw_stats.integrity_hashed,
		       res->raw_stats.integrity_hashed + res->raw_stats.integrity_reused);
	else if (res->raw && res->raw_stats.integrity_hashed)
		printf("  integrity table: %" PRIu64 " chunks hashed\n", res->raw_stats.integrity_hashed);
	if (res->sums_used)
		printf("  %" PRIu64 " changed files named by the SHA-1 their mount kept, not read again\n",
		       res->sums_used);
	if (res->tmp_dir[0])
		printf("  %" PRIu64 " files, %" PRIu64 " directories, %" PRIu64
		       " bytes through a temporary NTFS image in '%s'\n",
		       res->files, res->dirs, res->bytes, res->tmp_dir);
}

/* The image's @what (name or description) checked before any work: wimlib
 * writes it into the WIM's XML as it is, and XML that holds a control
 * character or bytes that are not UTF-8 leaves the whole WIM unreadable. */
static bool xml_text(const char *what, const char *s)
{
	long bad;
	size_t at;

	if (cli_xml_text_ok(s, &bad, &at))
		return true;
	if (bad < 0)
		wtg_error("the image's %s is not UTF-8 (byte %zu): a WIM's XML holds only UTF-8 "
			  "text (give --%s)", what, at + 1, what);
	else
		wtg_error("the image's %s holds U+%04lX (byte %zu), which a WIM's XML cannot hold "
			  "(give --%s)", what, (unsigned long)bad, at + 1, what);
	return false;
}

int cmd_export(int argc, char **argv)
{
	struct wtg_export_options opt = {0};
	bool json = false;
	int c;

	while ((c = cli_getopt(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'a':
			opt.append = true;
			break;
		case 'n':
			if (!*optarg)
				return cli_usage_error(&cmd, "--name cannot be empty");
			opt.name = optarg;
			break;
		case 'd':
			opt.description = optarg;
			break;
		case 'c':
			if (!wtg_export_parse_compress(optarg, &opt.compress))
				return cli_usage_error(
				    &cmd, "--compress is lzx, xpress, lzms or none, not '%s'", optarg);
			break;
		case 's':
			opt.solid = true;
			break;
		case 'b':
			opt.boot = true;
			break;
		case 't': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || end == optarg || n < 1 || n > 256)
				return cli_usage_error(&cmd, "--threads '%s': give 1 to 256", optarg);
			opt.threads = (unsigned)n;
			break;
		}
		case 'k':
			opt.check = true;
			break;
		case 'f':
			opt.full = true;
			break;
		case 'B':
			opt.base_path = optarg;
			break;
		case 'v':
			wtg_log_set_verbose(true);
			break;
		case 'j':
			json = true;
			break;
		default:
			return cli_getopt_exit(c);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(&cmd, "a SOURCE and an OUT.wim are needed");
	/* names given are checked before any work; a default one below */
	if ((opt.name && !xml_text("name", opt.name)) ||
	    (opt.description && !xml_text("description", opt.description)))
		return EXIT_ERROR;
	const char *source = argv[optind], *out = argv[optind + 1];
	out_name = out;
	appending = opt.append;

	struct cli_progress show;
	cli_progress_start(&show, json);
	opt.progress = cli_progress_show;
	opt.ctx = &show;

	struct wtg_export_result res;
	struct wtg_export_stamp stamp;
	struct wtg_view *view = NULL;
	struct cli_source src;
	char *name = NULL;
	int ret;
	bool tree = true;

	if (cli_source_parse(source, opt.base_path, &src) < 0)
		return EXIT_ERROR;
	char *path = src.path;
	const char *sel = src.sel;
	/* an append to the delta's own base: first without the view (no tree
	 * of the base loaded), which may say it needs it */
	bool later = src.delta && opt.append && !opt.full;
	if (src.delta) {
		wtg_export_stamp_delta(path, &stamp);
		opt.stamp = &stamp;
		ret = later ? 0 : cli_source_view(&src, &view);
		name = sel ? strdup(sel) : stem(path);
		opt.delta = path;
		opt.at = sel;
	} else if (wtg_export_is_wim(path)) {
		tree = false;
		ret = 0;
	} else {
		ret = cli_source_view(&src, &view);
		name = stem(path);
	}
	if (ret)
		goto out;
	if (!opt.name)
		opt.name = name;
	if (opt.name == name && name && !xml_text("name", name)) {
		ret = -EINVAL;
		goto out;
	}
	cli_catch_signals(on_signal);
	if (later) {
		ret = wtg_export_delta_append(out, &opt, &res);
		if (ret == -EAGAIN) {
			char why[sizeof(res.tree_reason)];
			snprintf(why, sizeof(why), "%s", res.raw_reason);
			ret = cli_source_view(&src, &view);
			if (!ret)
				ret = wtg_export_view(view, out, &opt, &res);
			memcpy(res.tree_reason, why, sizeof(why));
		}
	} else if (tree)
		ret = wtg_export_view(view, out, &opt, &res);
	else
		ret = wtg_export_wim_image(path, sel, out, &opt, &res);
	double secs = cli_progress_end(&show);
	if (!ret) {
		report(json, source, out, res.name, &res, opt.append, secs);
	} else if (opt.append && ret != -EEXIST && ret != -EINVAL && ret != -ENOENT) {
		fprintf(stderr, "wtgfs: '%s' still holds its earlier images as they were\n", out);
	}
out:
	if (view)
		wtg_view_close(view);
	cli_source_release(&src);
	free(name);
	return ret ? EXIT_ERROR : 0;
}
