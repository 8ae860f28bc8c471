/*
 * Registry hives compared key by key and value by value (through libhivex;
 * src/hive_diff.c is the one file that includes hivex.h).  Pure work on
 * two buffers that hold the old and the new hive file: nothing is written.
 */
#ifndef WTGFS_HIVE_DIFF_H
#define WTGFS_HIVE_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wtg_hive_change {
	WTG_HIVE_KEY_ADDED,
	WTG_HIVE_KEY_REMOVED,
	WTG_HIVE_VALUE_ADDED,
	WTG_HIVE_VALUE_REMOVED,
	WTG_HIVE_VALUE_CHANGED, /* data or type */
};

struct wtg_hive_value {
	uint32_t type; /* REG_* */
	const uint8_t *data;
	size_t len;
};

struct wtg_hive_item {
	enum wtg_hive_change change;
	const char *key;   /* from the root, '\\'-separated; "" for the root key */
	const char *value; /* the value's name ("" the default value); NULL for keys */
	struct wtg_hive_value old, new; /* the sides there are */
};

/* Calls @fn for every key added or removed (and, below a key added or
 * removed, every key and value it holds) and every value added, removed or
 * changed, in the order of the new hive (keys and values matched by name
 * ignoring case, as the registry does).  -EINVAL (logged, naming @what)
 * when a buffer is not a hive hivex can read.  A non-zero return from @fn
 * stops and is returned. */
typedef int (*wtg_hive_fn)(void *arg, const struct wtg_hive_item *item);
int wtg_hive_diff(const char *what, const uint8_t *old, size_t old_len, const uint8_t *new_,
		  size_t new_len, wtg_hive_fn fn, void *arg);

/* True when @p starts with a hive's signature "regf". */
bool wtg_hive_signature(const uint8_t *p, size_t len);
/* "REG_SZ", "REG_DWORD" ...; NULL for a type without a name. */
const char *wtg_hive_type_name(uint32_t type);
/* Value data for people (malloc'd): strings as UTF-8, numbers in decimal,
 * REG_MULTI_SZ as its strings in brackets, anything else in hex. */
char *wtg_hive_value_text(uint32_t type, const uint8_t *data, size_t len);

#endif
