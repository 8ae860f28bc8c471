/* Name folding and validity. */
#include <string.h>

#include "unit.h"
#include "wtgfs/names.h"

static int eq(const char *a, const char *b)
{
	return wtg_name_equal_ci(a, strlen(a), b, strlen(b));
}

static int hash_eq(const char *a, const char *b)
{
	return wtg_name_hash(a, strlen(a)) == wtg_name_hash(b, strlen(b));
}

TEST(fold_ascii)
{
	CHECK(eq("System32", "SYSTEM32"));
	CHECK(eq("system32", "System32"));
	CHECK(hash_eq("system32", "SYSTEM32"));
	CHECK(!eq("System32", "System3"));
	CHECK(!eq("a", "b"));
}

TEST(fold_unicode)
{
	CHECK(eq("Ünïcødé", "ÜNÏCØDÉ"));
	CHECK(hash_eq("ünïcødé", "ÜNÏCØDÉ"));
	CHECK(eq("привет", "ПРИВЕТ"));
	CHECK(eq("ファイル", "ファイル"));
	CHECK(!eq("é", "e"));
}

TEST(invalid_utf8_compares_as_bytes)
{
	/* an unpaired surrogate (WTF-8) and a stray byte */
	CHECK(eq("a\xED\xA0\x80z", "A\xED\xA0\x80Z"));
	CHECK(!eq("a\xED\xA0\x80", "a\xED\xA0\x81"));
	CHECK(eq("\xFF", "\xFF"));
	CHECK(!eq("\xFF", "\xFE"));
	CHECK(hash_eq("x\xFFy", "X\xFFY"));
}

TEST(posix_names)
{
	CHECK(wtg_name_posix_ok("a", 1));
	CHECK(!wtg_name_posix_ok("", 0));
	CHECK(!wtg_name_posix_ok(".", 1));
	CHECK(!wtg_name_posix_ok("..", 2));
	CHECK(wtg_name_posix_ok("...", 3));
	CHECK(!wtg_name_posix_ok("a/b", 3));
	CHECK(!wtg_name_posix_ok("a\0b", 3));
	CHECK(wtg_name_posix_ok("a\\b", 3));
}

static int win(const char *s)
{
	return wtg_name_windows_ok(s, strlen(s));
}

TEST(windows_names)
{
	CHECK(win("notepad.exe"));
	CHECK(win("Program Files (x86)"));
	CHECK(!win("a:b"));
	CHECK(!win("a\\b"));
	CHECK(!win("a*"));
	CHECK(!win("what?"));
	CHECK(!win("a|b"));
	CHECK(!win("trailing."));
	CHECK(!win("trailing "));
	CHECK(!win("CON"));
	CHECK(!win("con.txt"));
	CHECK(!win("NUL"));
	CHECK(!win("com1"));
	CHECK(!win("LPT9.log"));
	CHECK(win("COM0"));
	CHECK(win("CONSOLE"));
	CHECK(!win("tab\there"));
	CHECK(win("\xC5\x9C")); /* U+015C must not look like '\' */
	char longname[300];
	memset(longname, 'a', 255);
	longname[255] = 0;
	CHECK(win(longname));
	longname[255] = 'a';
	longname[256] = 0;
	CHECK(!win(longname));
}

TEST(utf16)
{
	char out[32];
	const unsigned char abc[] = {'a', 0, 0xE9, 0, 0x3D, 0xD8, 0x00, 0xDE}; /* a é 😀 */
	CHECK(wtg_utf16le_to_utf8(abc, 4, out, sizeof(out)) == 7);
	CHECK(!strcmp(out, "a\xC3\xA9\xF0\x9F\x98\x80"));
	const unsigned char lone[] = {0x00, 0xD8, 'x', 0}; /* unpaired high surrogate */
	CHECK(wtg_utf16le_to_utf8(lone, 2, out, sizeof(out)) == 4);
	CHECK(!memcmp(out, "\xED\xA0\x80x", 4));
	CHECK(wtg_utf16le_to_utf8(abc, 4, out, 7) < 0);
}

int main(void)
{
	RUN(fold_ascii);
	RUN(fold_unicode);
	RUN(invalid_utf8_compares_as_bytes);
	RUN(posix_names);
	RUN(windows_names);
	RUN(utf16);
	UNIT_EXIT();
}
