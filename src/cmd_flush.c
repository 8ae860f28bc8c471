/*
 * wtgfs flush SOURCE TARGET: the merged tree of a delta (or a bare image)
 * written to a block device or an image file as a bootable Windows To Go
 * drive.  The checks, the layout and the writing are src/flush/; this file
 * asks, shows progress and reports.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "wtgfs/flush.h"
#include "wtgfs/source.h"
#include "wtgfs/store.h"
#include "wtgfs/view.h"

static const char usage[] =
    "usage: wtgfs flush SOURCE TARGET [--scheme gpt|mbr] [--esp-size N] [--size N]\n"
    "                   [--label L] [--unattend FILE] [--no-wtg-tweaks] [--verify]\n"
    "                   [--base PATH] [--yes] [--json]\n"
    "\n"
    "Writes the merged tree of SOURCE to TARGET as a bootable Windows To Go\n"
    "drive (UEFI): a partition table, an ESP with the boot files and a BCD,\n"
    "and an NTFS Windows partition holding every file with all its NTFS\n"
    "metadata.  SOURCE is DELTA (its working layer), DELTA@SNAP (a snapshot),\n"
    "IMAGE[:INDEX] (a WIM or ESD image) or DISK[:PART] (the NTFS volume of a\n"
    "VHDX, VHD or raw disk).  TARGET is a whole block device or an image file\n"
    "(created when missing).  The delta and its base are only read.\n"
    "\n"
    "  --scheme gpt|mbr  partition table (gpt: ESP + MSR + Windows; mbr: an\n"
    "                    active 350 MB FAT32 system partition + Windows)\n"
    "  --esp-size N      size of the ESP or system partition (260M / 350MB)\n"
    "  --size N          make or grow the image file to N bytes (K, M, G)\n"
    "  --label L         NTFS volume label (Windows)\n"
    "  --unattend FILE   place FILE as Windows\\Panther\\unattend.xml\n"
    "  --no-wtg-tweaks   leave SanPolicy and the recovery setting alone\n"
    "  --verify          read the drive back and compare it with the tree\n"
    "  --base PATH       where a delta's base image lies, when it moved\n"
    "  -y, --yes         do not ask before overwriting TARGET\n"
    "  --json            progress and the result as JSON Lines on stdout\n";

static const struct option options[] = {
    {"scheme", required_argument, NULL, 's'},
    {"esp-size", required_argument, NULL, 'e'},
    {"size", required_argument, NULL, 'S'},
    {"label", required_argument, NULL, 'L'},
    {"unattend", required_argument, NULL, 'u'},
    {"no-wtg-tweaks", no_argument, NULL, 'n'},
    {"verify", no_argument, NULL, 'v'},
    {"base", required_argument, NULL, 'B'},
    {"yes", no_argument, NULL, 'y'},
    {"json", no_argument, NULL, 'j'},
    CLI_OPTIONS_END,
};

static const struct cli_command cmd = {"flush", usage, "y", options};

/* ---- interruption ---- */

static volatile sig_atomic_t table_written;
static const char *target_name = "";

static void on_signal(int sig)
{
	wtg_flush_interrupted();
	cli_put_stderr("\nwtgfs: flush interrupted: '");
	cli_put_stderr(target_name);
	if (table_written)
		cli_put_stderr("' was written in full but not verified; run the same flush again "
			       "to be sure\n");
	else
		cli_put_stderr("' has no partition table yet, so it neither boots nor mounts; "
			       "run the same flush again\n");
	_exit(128 + sig);
}

/* Notes when the table may be on the disk, for the message if interrupted. */
static void progress(void *ctx, const struct wtg_progress *p)
{
	if (!strcmp(p->phase, "table"))
		table_written = 1;
	cli_progress_show(ctx, p);
}

/* ---- the source ---- */

/* ---- asking ---- */

static bool confirm(struct wtg_flush_target *t, const char *target)
{
	char desc[8192], line[64];

	wtg_flush_target_describe(t, desc, sizeof(desc));
	fprintf(stderr, "%s\nEverything on '%s' will be overwritten. Type 'yes' to go on: ", desc,
		target);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\n")] = '\0';
	return !strcmp(line, "yes");
}

static void print_part(const char *what, const struct wtg_flush_part *p)
{
	printf("  %-8s partition %u at %" PRIu64 ", %" PRIu64 " bytes%s%s\n", what, p->number,
	       p->offset, p->size, p->guid_str[0] ? ", GUID " : "", p->guid_str);
}

static void json_part(struct json_object *o, const char *key, const struct wtg_flush_part *p)
{
	struct json_object *j = json_object_new_object();

	cli_json_add_u64(j, "number", p->number);
	cli_json_add_u64(j, "offset", p->offset);
	cli_json_add_u64(j, "size", p->size);
	cli_json_add_string_or_null(j, "guid", p->guid_str[0] ? p->guid_str : NULL);
	json_object_object_add(o, key, j);
}

static void report(bool json, const char *source, const char *target,
		   const struct wtg_flush_layout *l, const struct wtg_flush_report *rep,
		   bool verified, double secs)
{
	if (json) {
		struct json_object *o = json_object_new_object(), *ch = json_object_new_array();
		cli_json_add_string(o, "type", "result");
		cli_json_add_name(o, "source", source);
		cli_json_add_name(o, "target", target);
		cli_json_add_string(o, "scheme", l->scheme == WTG_FLUSH_GPT ? "gpt" : "mbr");
		cli_json_add_u64(o, "sector_size", l->sector_size);
		cli_json_add_u64(o, "disk_size", l->disk_size);
		if (l->scheme == WTG_FLUSH_GPT) {
			cli_json_add_string(o, "disk_guid", l->disk_guid_str);
		} else {
			char sig[16];
			snprintf(sig, sizeof(sig), "%08" PRIx32, l->mbr_signature);
			cli_json_add_string(o, "mbr_signature", sig);
		}
		json_part(o, "esp", &l->esp);
		if (l->msr.number)
			json_part(o, "msr", &l->msr);
		json_part(o, "windows", &l->windows);
		for (size_t i = 0; i < rep->nchanges; i++)
			json_object_array_add(ch, json_object_new_string(rep->changes[i]));
		json_object_object_add(o, "changes", ch);
		cli_json_add_bool(o, "verified", verified);
		json_object_object_add(o, "seconds", json_object_new_double(secs));
		cli_json_print(o, CLI_JSON_LINE);
		return;
	}
	printf("%s: written from '%s' in %.1f s (%s, %u-byte sectors)%s\n", target, source, secs,
	       l->scheme == WTG_FLUSH_GPT ? "GPT" : "MBR", l->sector_size,
	       verified ? ", verified" : "");
	if (l->scheme == WTG_FLUSH_GPT)
		printf("  disk GUID %s\n", l->disk_guid_str);
	else
		printf("  disk signature %08" PRIx32 "\n", l->mbr_signature);
	print_part(l->scheme == WTG_FLUSH_GPT ? "ESP" : "system", &l->esp);
	if (l->msr.number)
		print_part("MSR", &l->msr);
	print_part("Windows", &l->windows);
	for (size_t i = 0; i < rep->nchanges; i++)
		printf("  change: %s\n", rep->changes[i]);
}

int cmd_flush(int argc, char **argv)
{
	struct wtg_flush_options opt = {.scheme = WTG_FLUSH_GPT};
	bool yes = false, json = false;
	const char *base = NULL;
	int c;

	while ((c = cli_getopt(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 's':
			if (!strcmp(optarg, "gpt"))
				opt.scheme = WTG_FLUSH_GPT;
			else if (!strcmp(optarg, "mbr"))
				opt.scheme = WTG_FLUSH_MBR;
			else
				return cli_usage_error(&cmd, "--scheme is gpt or mbr, not '%s'", optarg);
			break;
		case 'e':
			if (!cli_parse_size(optarg, &opt.esp_size) || opt.esp_size < (32u << 20) ||
			    opt.esp_size > (4ull << 30))
				return cli_usage_error(&cmd, "--esp-size '%s': give 32M to 4G", optarg);
			break;
		case 'S':
			if (!cli_parse_size(optarg, &opt.size) || !opt.size)
				return cli_usage_error(&cmd, "--size '%s' is not a size", optarg);
			break;
		case 'L':
			if (!*optarg || strlen(optarg) > 32)
				return cli_usage_error(&cmd, "--label: 1 to 32 characters");
			opt.label = optarg;
			break;
		case 'u':
			opt.unattend = optarg;
			break;
		case 'n':
			opt.no_wtg_tweaks = true;
			break;
		case 'v':
			opt.verify = true;
			break;
		case 'B':
			base = optarg;
			break;
		case 'y':
			yes = true;
			break;
		case 'j':
			json = true;
			break;
		default:
			return cli_getopt_exit(c);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(&cmd, "a SOURCE and a TARGET are needed");
	const char *source = argv[optind], *target = argv[optind + 1];
	target_name = target;

	struct wtg_view *view;
	struct cli_source src;
	if (cli_source_parse(source, base, &src) < 0)
		return EXIT_ERROR;
	if (cli_source_view(&src, &view) < 0) {
		cli_source_release(&src);
		return EXIT_ERROR;
	}
	const char *sources[] = {wtg_view_base_path(view), src.delta ? src.path : NULL, NULL};
	struct wtg_flush_target *t;
	int ret = wtg_flush_target_open(target, view, &opt, sources, &t);
	if (ret) {
		wtg_view_close(view);
		cli_source_release(&src);
		return EXIT_ERROR;
	}
	if (!yes) {
		if (!isatty(STDIN_FILENO)) {
			fprintf(stderr, "wtgfs: refusing to overwrite '%s' without --yes: standard "
					"input is not a terminal to ask on\n",
				target);
			ret = -EPERM;
		} else if (!confirm(t, target)) {
			fprintf(stderr, "wtgfs: flush cancelled; '%s' is unchanged\n", target);
			ret = -ECANCELED;
		}
	}
	struct wtg_flush_layout layout;
	struct wtg_flush_report rep = {0};
	struct cli_progress show;
	if (!ret) {
		cli_catch_signals(on_signal);
		cli_progress_start(&show, json);
		ret = wtg_flush_run(view, t, &opt, progress, &show, &layout, &rep);
		double secs = cli_progress_end(&show);
		if (!ret)
			report(json, source, target, &layout, &rep, opt.verify, secs);
		else if (!table_written)
			fprintf(stderr, "wtgfs: '%s' was not finished: it has no partition table, so it "
					"neither boots nor mounts; fix the cause and run the flush again\n",
				target);
	}
	wtg_flush_report_release(&rep);
	wtg_flush_target_close(t);
	wtg_view_close(view);
	cli_source_release(&src);
	return ret ? EXIT_ERROR : 0;
}
