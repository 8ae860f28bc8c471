/*
 * The command line: one file per subcommand (cmd_*.c), a table in main.c,
 * and the few helpers they share.  Only the command line parses arguments
 * or prints to the user.
 */
#ifndef WTGFS_CLI_H
#define WTGFS_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes: 0 success, 1 "different" (diff), 2 and up errors. */
#define EXIT_ERROR 2

int cmd_info(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_umount(int argc, char **argv);

/* True (after printing @usage to stdout) when argv asks for help. */
bool cli_wants_help(int argc, char **argv, const char *usage);
/* Prints "usage: ..." to stderr and returns EXIT_ERROR. */
int cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses "256M", "1G", "65536"; false when malformed. */
bool cli_parse_size(const char *s, uint64_t *ret);
/* Writes @s as a JSON string with quotes. */
void cli_json_string(FILE *f, const char *s);

#endif
