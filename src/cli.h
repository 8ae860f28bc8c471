/*
 * The command line: one file per subcommand (cmd_*.c), a table in main.c,
 * and the few helpers they share.  Only the command line parses arguments
 * or prints to the user.
 *
 * Arguments.  Each cmd_*.c keeps, side by side, its usage text, its
 * getopt_long option table and a struct cli_command naming them, and loops
 * over cli_getopt():
 *
 *	static const char usage[] = "usage: wtgfs log DELTA [--json]\n...";
 *	static const struct option options[] = {
 *		{"json", no_argument, NULL, 'j'},
 *		CLI_OPTIONS_END,
 *	};
 *	static const struct cli_command cmd = {"log", usage, "", options};
 *	...
 *	int c;
 *	while ((c = cli_getopt(&cmd, argc, argv)) != -1) {
 *		switch (c) {
 *		case 'j': json = true; break;
 *		default: return cli_getopt_exit(c);
 *		}
 *	}
 *	// operands: argv[optind] .. argv[argc - 1]
 *
 * That gives every command the same rules: long and short options,
 * "--opt=value" and "--opt value", options and operands in any order,
 * "--" ends the options, -h/--help prints the usage to stdout (exit 0), and
 * an unknown option or a missing argument prints "wtgfs CMD: ..." on one
 * line and the usage to stderr (exit 2).
 *
 * JSON.  All JSON goes through json-c: build a json_object (the
 * cli_json_add_* helpers cover strings, names and 64-bit counts), then
 * cli_json_print() writes it and drops the reference.  CLI_JSON_LINE writes
 * the object compactly on one line: a command that prints one document
 * (info, log) prints one line, and a command that prints a stream (diff)
 * prints one object per line, JSON Lines, the first line a header with a
 * "schema" version.  CLI_JSON_PRETTY indents, for output meant for people.
 * Numbers are raw (bytes, seconds since the epoch), never human sizes.
 *
 * Names (paths, labels, image names) are not always valid UTF-8: an NTFS
 * name may hold an unpaired UTF-16 surrogate, a WIM or a file system any
 * bytes.  cli_json_add_name() writes such a string as valid UTF-8 with each
 * byte that is not part of a valid UTF-8 sequence replaced by U+FFFD, and
 * adds a second member "KEY_raw" holding the exact bytes in base64 (RFC
 * 4648, padded).  "KEY_raw" is present exactly when "KEY" was altered, so a
 * script uses "KEY_raw" when it is there and "KEY" otherwise.  man/wtgfs.1
 * documents this for users.
 */
#ifndef WTGFS_CLI_H
#define WTGFS_CLI_H

#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Exit codes: 0 success, 1 "different" (diff), 2 and up errors. */
#define EXIT_ERROR 2

int cmd_info(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_umount(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_flush(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_squash(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* One subcommand's argument syntax. */
struct cli_command {
	const char *name;	      /* "mount": messages say "wtgfs mount: ..." */
	const char *usage;	      /* starts "usage: wtgfs NAME", ends with a newline */
	const char *shortopts;	      /* getopt's optstring, without 'h' or a leading ':' */
	const struct option *options; /* ends with CLI_OPTIONS_END */
};

/* The last entries of every option table: --help, then the terminator. */
/* clang-format off */
#define CLI_OPTIONS_END {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}
/* clang-format on */

/* cli_getopt()'s answers besides options and -1. */
enum {
	CLI_GETOPT_HELP = -2, /* the usage went to stdout: exit 0 */
	CLI_GETOPT_BAD = -3,  /* an error and the usage went to stderr: exit 2 */
};

/*
 * The next option of argv, as getopt_long() returns it (a short letter, or
 * the val of a long option; optarg holds its argument); -1 when the options
 * end, optind then indexing the first operand.  --help and bad options are
 * handled here and answered with CLI_GETOPT_HELP or CLI_GETOPT_BAD, which
 * the caller turns into its exit status with cli_getopt_exit().
 */
int cli_getopt(const struct cli_command *cmd, int argc, char **argv);
/* The exit status for a cli_getopt() answer the command does not know. */
int cli_getopt_exit(int c);

/* Prints "wtgfs CMD: ... (see 'wtgfs CMD --help')", one line, to stderr;
 * returns EXIT_ERROR. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Parses "256M", "1G", "65536"; false when malformed. */
bool cli_parse_size(const char *s, uint64_t *ret);

enum cli_json_style {
	CLI_JSON_LINE,	 /* compact, one line: a document or one JSON Lines record */
	CLI_JSON_PRETTY, /* indented, for people */
};

/* Writes @obj to stdout in @style with a newline, then drops it. 0 or -errno. */
int cli_json_print(struct json_object *obj, enum cli_json_style style);
/* Adds @key: a string meant as text (U+FFFD for any byte that is not UTF-8). */
void cli_json_add_string(struct json_object *obj, const char *key, const char *s);
/* Adds @key: @s, or null when @s is NULL. */
void cli_json_add_string_or_null(struct json_object *obj, const char *key, const char *s);
/* Adds @key for a name of any bytes, and "KEY_raw" when it is not UTF-8. */
void cli_json_add_name(struct json_object *obj, const char *key, const char *s);
void cli_json_add_u64(struct json_object *obj, const char *key, uint64_t v);
void cli_json_add_i64(struct json_object *obj, const char *key, int64_t v);
void cli_json_add_bool(struct json_object *obj, const char *key, bool v);
struct wtg_store;
struct wtg_view;
/* Where DELTA|MNT (@arg) leads, for the commands that work on a mounted
 * delta too: a wtgfs mount point, or a delta a mount holds, gives that mount
 * point (canonical) in @mnt, to reach its daemon (wtgfs/control.h);
 * otherwise the delta is opened for writing in *store_ret.  0, or -errno
 * after one line. */
int cli_delta_target(const char *arg, struct wtg_store **store_ret, char *mnt, size_t size);

/*
 * A SOURCE operand (flush, export): DELTA (its HEAD), DELTA@SNAP,
 * IMAGE[:INDEX] (a WIM or ESD) or DISK[:PART].  A file of that whole name
 * wins over a suffix.  cli_source_parse fills it in or says in one line
 * what is wrong (-ENOENT, -EINVAL); cli_source_view opens the tree it names
 * read-only (a delta's HEAD as its last commit left it, also while mounted).
 */
struct cli_source {
	char *path;	 /* the file */
	const char *sel; /* within @spec: SNAP of a delta, INDEX or PART of an image; NULL none */
	bool delta;
	const char *spec;
	const char *base; /* --base: where a delta's base lies now (NULL: where init saw it) */
};
/* Parses SOURCE @spec; @base (NULL: none) is --base, refused for a source
 * that is not a delta. */
int cli_source_parse(const char *spec, const char *base, struct cli_source *src);
int cli_source_view(const struct cli_source *src, struct wtg_view **view_ret);
void cli_source_release(struct cli_source *src);

/* Whether @s is text a WIM's XML can hold (an image's name or description):
 * UTF-8, and no character XML 1.0 forbids (controls but tab, line feed and
 * carriage return; U+FFFE, U+FFFF).  False with *@bad the offending code
 * point (or -1: not UTF-8) and *@at its byte offset. */
bool cli_xml_text_ok(const char *s, long *bad, size_t *at);

/* The JSON string for a name of any bytes: U+FFFD for what is not UTF-8. */
struct json_object *cli_json_name(const char *s, bool *altered_ret);

/* Writes @s to stderr with write(2): safe in a signal handler. */
void cli_put_stderr(const char *s);
/* Runs @handler on SIGINT, SIGTERM and SIGHUP (long work that says, when
 * interrupted, what state it leaves behind). */
void cli_catch_signals(void (*handler)(int));
/* Seconds since @t (CLOCK_MONOTONIC). */
double cli_seconds_since(const struct timespec *t);

/*
 * Progress of a long job (flush, export), as the library reports it
 * (wtgfs/progress.h): with --json one "progress" line per report on
 * stdout; on a terminal a bar on stderr (bytes, files, rate, time left)
 * for a phase with a measure and "phase..." for one without; otherwise
 * nothing.  Within a phase at most five reports a second get through.
 */
struct wtg_progress;
struct cli_progress {
	bool bar, json;
	struct timespec start, last;
	const char *phase;
	bool drawn; /* the cursor is on a line of ours */
};
/* Starts the clock; @json: JSON lines instead of any bar. */
void cli_progress_start(struct cli_progress *s, bool json);
/* A wtg_progress_fn: @ctx is the struct cli_progress. */
void cli_progress_show(void *ctx, const struct wtg_progress *p);
/* Ends the bar's line, if one is drawn; returns the seconds since start. */
double cli_progress_end(struct cli_progress *s);

#endif
