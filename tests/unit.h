/*
 * A tiny C test harness: TEST(name) { ... CHECK(cond); ... } and RUN(name)
 * from main.  Prints one line per failed check and exits 1 when any failed.
 */
#ifndef WTGFS_TESTS_UNIT_H
#define WTGFS_TESTS_UNIT_H

#include <stdio.h>
#include <stdlib.h>

static int unit_failures;

#define CHECK(cond)                                                                         \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			unit_failures++;                                                    \
		}                                                                           \
	} while (0)

#define TEST(name) static void test_##name(void)
#define RUN(name)                                                                           \
	do {                                                                                \
		int before_ = unit_failures;                                                \
		test_##name();                                                              \
		printf("%s %s\n", unit_failures == before_ ? "ok" : "FAIL", #name);        \
	} while (0)
#define UNIT_EXIT() return unit_failures ? 1 : 0

#endif
