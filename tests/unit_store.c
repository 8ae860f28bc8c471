/* The delta store: files it refuses, chunks, layers, verify, kill -9, full disk. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "wtgfs/store.h"

static char dir[64];

static const char *tmp_path(const char *name)
{
	static char path[8][128];
	static int next;
	char *p = path[next++ % 8];

	snprintf(p, 128, "%s/%s", dir, name);
	return p;
}

static void remove_delta(const char *path)
{
	char side[160];

	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
}

static struct wtg_store_base test_base(void)
{
	struct wtg_store_base b = {.size = 123456789, .index = 2};

	snprintf(b.path, sizeof(b.path), "/images/install.wim");
	snprintf(b.guid, sizeof(b.guid), "00112233445566778899aabbccddeeff");
	memset(b.meta_hash, 0xab, sizeof(b.meta_hash));
	return b;
}

static struct wtg_store *new_delta(const char *name)
{
	struct wtg_store_base b = test_base();
	struct wtg_store *st = NULL;
	const char *path = tmp_path(name);

	remove_delta(path);
	CHECK(wtg_store_create(path, &b) == 0);
	CHECK(wtg_store_open(path, NULL, &st) == 0);
	return st;
}

/* Stderr into a file between _begin and _end, which returns its lines. */
static int saved_stderr = -1;

static void capture_begin(void)
{
	int fd = open(tmp_path("stderr"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

static int capture_end(void)
{
	char buf[4096];
	int lines = 0;

	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	FILE *f = fopen(tmp_path("stderr"), "r");
	while (f && fgets(buf, sizeof(buf), f)) {
		lines++;
		fprintf(stderr, "  (expected) %s", buf);
	}
	if (f)
		fclose(f);
	return lines;
}

/* Opens @path expecting -@err and exactly one line of explanation. */
static void expect_refused(const char *path, int err)
{
	struct wtg_store *st = NULL;

	capture_begin();
	int r = wtg_store_open(path, NULL, &st);
	int lines = capture_end();
	CHECK(r == err);
	CHECK(lines == 1);
	if (r == 0)
		wtg_store_close(st);
}

static void fill(uint8_t *buf, size_t n, uint32_t seed, bool compressible)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = compressible ? (uint8_t)('a' + (i / 64 + seed) % 7) : (uint8_t)x;
	}
}

static int sql(const char *path, const char *statement)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"%s\" >/dev/null 2>&1", path, statement);
	return system(cmd);
}

/* True when the SQL condition @cond holds in the file (an error otherwise:
 * abs() of the smallest integer overflows). */
static bool sql_true(const char *path, const char *cond)
{
	char q[512];

	snprintf(q, sizeof(q), "SELECT CASE WHEN %s THEN 1 ELSE abs(-9223372036854775808) END",
		 cond);
	return sql(path, q) == 0;
}

static void copy_file(const char *from, const char *to, off_t len)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n;

	while (len > 0 && (n = read(in, buf, sizeof(buf))) > 0) {
		if (n > len)
			n = len;
		CHECK(write(out, buf, (size_t)n) == n);
		len -= n;
	}
	close(in);
	close(out);
}

static void patch_be32(const char *path, off_t at, uint32_t v)
{
	uint8_t b[4] = {v >> 24, v >> 16, v >> 8, v};
	int fd = open(path, O_WRONLY);
	CHECK(pwrite(fd, b, 4, at) == 4);
	close(fd);
}

TEST(create_and_identity)
{
	struct wtg_store_base b = test_base(), got, other;
	struct wtg_store *st = new_delta("id.delta");

	capture_begin();
	CHECK(wtg_store_create(tmp_path("id.delta"), &b) == -EEXIST);
	CHECK(capture_end() == 1);
	CHECK(wtg_store_close(st) == 0);

	CHECK(wtg_store_open(tmp_path("id.delta"), NULL, &st) == 0);
	wtg_store_get_base(st, &got);
	CHECK(!strcmp(got.path, b.path) && !strcmp(got.guid, b.guid));
	CHECK(got.size == b.size && got.index == b.index);
	CHECK(!memcmp(got.meta_hash, b.meta_hash, sizeof(b.meta_hash)));
	other = b;
	snprintf(other.path, sizeof(other.path), "/moved/install.wim");
	CHECK(wtg_store_check_base(st, &other) == 0); /* moved: the path is not identity */
	CHECK(wtg_store_set_base_path(st, other.path) == 0);
	other.index = 1;
	capture_begin();
	CHECK(wtg_store_check_base(st, &other) == -ESTALE);
	other = b;
	other.meta_hash[31] ^= 1;
	CHECK(wtg_store_check_base(st, &other) == -ESTALE);
	other = b;
	other.guid[0] = 'f';
	CHECK(wtg_store_check_base(st, &other) == -ESTALE);
	CHECK(capture_end() == 3);
	CHECK(wtg_store_close(st) == 0);

	struct wtg_store_options ro = {.read_only = true};
	CHECK(wtg_store_open(tmp_path("id.delta"), &ro, &st) == 0);
	wtg_store_get_base(st, &got);
	CHECK(!strcmp(got.path, "/moved/install.wim"));
	uint8_t hash[WTG_STORE_HASH_LEN];
	CHECK(wtg_store_put_chunk(st, "x", 1, hash) == -EROFS);
	CHECK(wtg_store_close(st) == 0);
}

TEST(refuses_bad_files)
{
	struct wtg_store *st = new_delta("good.delta");
	uint8_t buf[WTG_STORE_CHUNK_SIZE], hash[WTG_STORE_HASH_LEN];
	struct stat sb;

	for (uint32_t i = 0; i < 8; i++) { /* a file of several pages to cut */
		fill(buf, sizeof(buf), i, false);
		CHECK(wtg_store_put_chunk(st, buf, sizeof(buf), hash) == 0);
		CHECK(wtg_store_set_extent(st, 9, "", i, hash) == 0);
	}
	CHECK(wtg_store_close(st) == 0);
	char good[128], bad[128];
	snprintf(good, sizeof(good), "%s", tmp_path("good.delta"));
	snprintf(bad, sizeof(bad), "%s", tmp_path("bad.delta"));
	CHECK(stat(good, &sb) == 0 && sb.st_size > 8 * 65536);

	expect_refused(tmp_path("missing.delta"), -ENOENT);
	close(open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0600));
	expect_refused(bad, -EINVAL); /* empty */
	struct stat empty;
	CHECK(stat(bad, &empty) == 0 && empty.st_size == 0); /* and left alone */
	FILE *f = fopen(bad, "w");
	fputs("hello, not a delta\n", f);
	fclose(f);
	expect_refused(bad, -EINVAL);
	fill(buf, sizeof(buf), 99, false);
	f = fopen(bad, "w");
	fwrite(buf, 1, sizeof(buf), f);
	fclose(f);
	expect_refused(bad, -EINVAL); /* garbage */
	expect_refused(dir, -EISDIR);

	copy_file(good, bad, 50);
	expect_refused(bad, -EINVAL); /* cut inside the header */
	copy_file(good, bad, sb.st_size / 2);
	expect_refused(bad, -EIO); /* truncated */
	copy_file(good, bad, sb.st_size);
	patch_be32(bad, 68, 0x12345678);
	expect_refused(bad, -EINVAL); /* another program's SQLite file */
	copy_file(good, bad, sb.st_size);
	patch_be32(bad, 60, WTG_STORE_FORMAT + 1);
	expect_refused(bad, -EPROTO); /* newer format */
	copy_file(good, bad, sb.st_size);
	st = NULL;
	CHECK(wtg_store_open(bad, NULL, &st) == 0); /* the copy itself is fine */
	CHECK(st && wtg_store_verify(st, NULL) == 0);
	wtg_store_close(st);
	if (sql(bad, "PRAGMA user_version = 7") == 0)
		expect_refused(bad, -EPROTO);
	copy_file(good, bad, sb.st_size);
	if (sql(bad, "DELETE FROM meta WHERE key = 'head'") == 0)
		expect_refused(bad, -EIO);
	remove_delta(bad);
}

TEST(chunks)
{
	struct wtg_store *st = new_delta("chunks.delta");
	static uint8_t a[WTG_STORE_CHUNK_SIZE], b[WTG_STORE_CHUNK_SIZE], out[WTG_STORE_CHUNK_SIZE];
	uint8_t ha[WTG_STORE_HASH_LEN], hb[WTG_STORE_HASH_LEN], h2[WTG_STORE_HASH_LEN];
	struct wtg_store_report rep;
	size_t n;

	fill(a, sizeof(a), 1, true);
	fill(b, sizeof(b), 2, false);
	CHECK(wtg_store_put_chunk(st, a, sizeof(a), ha) == 0);
	CHECK(wtg_store_put_chunk(st, b, sizeof(b), hb) == 0);
	CHECK(wtg_store_put_chunk(st, a, sizeof(a), h2) == 0); /* again: stored once */
	CHECK(!memcmp(ha, h2, sizeof(ha)));
	CHECK(wtg_store_put_chunk(st, a, 100, h2) == 0); /* a short chunk */
	CHECK(wtg_store_put_chunk(st, a, 0, h2) == 0);
	CHECK(wtg_store_put_chunk(st, a, sizeof(a) + 1, h2) == -EINVAL);
	CHECK(wtg_store_set_extent(st, 5, "", 0, ha) == 0);
	CHECK(wtg_store_set_extent(st, 5, "", 1, hb) == 0);
	CHECK(wtg_store_set_extent(st, 5, "", 3, h2) == 0);
	CHECK(wtg_store_commit(st) == 0);
	CHECK(wtg_store_close(st) == 0);

	CHECK(wtg_store_open(tmp_path("chunks.delta"), NULL, &st) == 0);
	CHECK(wtg_store_get_chunk(st, ha, out, &n) == 0 && n == sizeof(a) && !memcmp(out, a, n));
	CHECK(wtg_store_get_chunk(st, hb, out, &n) == 0 && n == sizeof(b) && !memcmp(out, b, n));
	CHECK(wtg_store_put_chunk(st, a, 100, h2) == 0);
	CHECK(wtg_store_set_extent(st, 5, "", 2, h2) == 0);
	CHECK(wtg_store_get_chunk(st, h2, out, &n) == 0 && n == 100 && !memcmp(out, a, 100));
	h2[0] ^= 1;
	CHECK(wtg_store_get_chunk(st, h2, out, &n) == -ENOENT);
	CHECK(wtg_store_verify(st, &rep) == 0);
	CHECK(rep.chunks == 4);
	CHECK(rep.chunk_bytes == 2 * sizeof(a) + 100);
	/* the random chunk is stored raw, the text one compressed hard */
	CHECK(rep.stored_bytes >= sizeof(b) && rep.stored_bytes < sizeof(b) + 4096);
	CHECK(wtg_store_close(st) == 0);
}

/* The base metadata kept for export: parts of 1 MiB, the key, damage. */
TEST(base_metadata)
{
	const char *path = tmp_path("chunks.delta");
	struct wtg_store *st;
	struct wtg_store_base_metadata m;
	size_t n = 2500000;
	uint8_t *a = malloc(n), *out = malloc(n), sha1[20] = {1, 2, 3};

	CHECK(a && out);
	if (!a || !out)
		return;
	fill(a, n / 2, 3, true);
	fill(a + n / 2, n - n / 2, 4, false);
	CHECK(wtg_store_open(path, NULL, &st) == 0);
	CHECK(wtg_store_base_metadata_get(st, &m) == -ENOENT);
	CHECK(wtg_store_base_metadata_put(st, sha1, a, 1000) == 0);
	CHECK(wtg_store_base_metadata_put(st, sha1, a, n) == 0); /* replaces it */
	CHECK(wtg_store_close(st) == 0);
	struct wtg_store_options ro = {.read_only = true};
	CHECK(wtg_store_open(path, &ro, &st) == 0);
	CHECK(wtg_store_base_metadata_get(st, &m) == 0);
	CHECK(m.size == n && m.nparts == 3 && !memcmp(m.sha1, sha1, 20));
	CHECK(m.nparts == 3 && m.parts[0].len < m.parts[0].size / 4); /* compressed */
	CHECK(wtg_store_base_metadata_decode(&m, out) == 0 && !memcmp(out, a, n));
	wtg_store_base_metadata_free(&m);
	CHECK(wtg_store_close(st) == 0);
	/* a part that does not decode to its size */
	CHECK(sql(path, "UPDATE base_metadata SET size = size - 1 WHERE part = 2") == 0);
	CHECK(wtg_store_open(path, &ro, &st) == 0);
	capture_begin();
	CHECK(wtg_store_base_metadata_get(st, &m) == -EIO); /* the sum is not the key's */
	CHECK(capture_end() == 1);
	CHECK(wtg_store_close(st) == 0);
	CHECK(sql(path, "UPDATE meta SET value = substr(value, 1, 20) || X'9f25260000000000'"
			" WHERE key = 'base_metadata'") == 0);
	CHECK(wtg_store_open(path, &ro, &st) == 0);
	CHECK(wtg_store_base_metadata_get(st, &m) == 0 && m.size == n - 1);
	CHECK(wtg_store_base_metadata_decode(&m, out) == -EIO);
	wtg_store_base_metadata_free(&m);
	CHECK(wtg_store_close(st) == 0);
	/* a part missing: the rows disagree */
	CHECK(sql(path, "DELETE FROM base_metadata WHERE part = 1") == 0);
	CHECK(wtg_store_open(path, &ro, &st) == 0);
	capture_begin();
	CHECK(wtg_store_base_metadata_get(st, &m) == -EIO);
	CHECK(capture_end() == 1);
	CHECK(wtg_store_close(st) == 0);
	/* put back whole, for the fuzz seed */
	CHECK(wtg_store_open(path, NULL, &st) == 0);
	CHECK(wtg_store_base_metadata_put(st, sha1, a, n) == 0);
	CHECK(wtg_store_close(st) == 0);
	free(a);
	free(out);
}

TEST(layers_and_extents)
{
	struct wtg_store *st = new_delta("layers.delta");
	static uint8_t a[WTG_STORE_CHUNK_SIZE], b[WTG_STORE_CHUNK_SIZE];
	uint8_t ha[WTG_STORE_HASH_LEN], hb[WTG_STORE_HASH_LEN], h[WTG_STORE_HASH_LEN];
	enum wtg_store_state s;
	struct wtg_store_layer *l;
	size_t n;
	uint64_t v;

	fill(a, sizeof(a), 3, true);
	fill(b, sizeof(b), 4, true);
	CHECK(wtg_store_put_chunk(st, a, sizeof(a), ha) == 0);
	CHECK(wtg_store_put_chunk(st, b, sizeof(b), hb) == 0);
	for (uint64_t i = 0; i < 4; i++)
		CHECK(wtg_store_set_extent(st, 7, "", i, ha) == 0);
	CHECK(wtg_store_set_extent(st, 7, "", 5, NULL) == 0);
	CHECK(wtg_store_set_stream(st, 7, "", 6 * 65536, false) == 0);
	CHECK(wtg_store_get_extent(st, 7, "", 0, &s, h) == 0 && s == WTG_STORE_PRESENT);
	CHECK(!memcmp(h, ha, sizeof(h)));
	CHECK(wtg_store_get_extent(st, 7, "", 4, &s, h) == 0 && s == WTG_STORE_BASE);
	CHECK(wtg_store_get_extent(st, 7, "", 5, &s, h) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_get_extent(st, 7, "x", 0, &s, h) == 0 && s == WTG_STORE_BASE);
	CHECK(wtg_store_snapshot(st, "one", "four chunks") == 0);
	capture_begin();
	CHECK(wtg_store_snapshot(st, "one", NULL) == -EEXIST);
	CHECK(capture_end() == 1);

	/* rewriting what the layers below hold costs nothing */
	CHECK(wtg_store_set_extent(st, 7, "", 0, ha) == 0);
	CHECK(wtg_store_set_extent(st, 7, "", 5, NULL) == 0);
	CHECK(wtg_store_set_extent(st, 7, "", 1, hb) == 0);
	CHECK(wtg_store_list_layers(st, &l, &n) == 0 && n == 2);
	CHECK(l[1].head && l[1].extents == 1 && !l[1].snapshot && l[1].sealed == 0);
	CHECK(!l[0].head && l[0].extents == 5 && l[0].sealed && !strcmp(l[0].snapshot, "one"));
	CHECK(!strcmp(l[0].message, "four chunks") && l[1].parent == l[0].id);
	CHECK(l[0].files == 1 && l[0].in_stack && l[1].in_stack && !l[0].abandoned);
	wtg_store_layers_free(l, n);
	CHECK(wtg_store_set_extent(st, 7, "", 1, ha) == 0); /* back as it was: the row goes */
	CHECK(wtg_store_list_layers(st, &l, &n) == 0 && n == 2 && l[1].extents == 0);
	wtg_store_layers_free(l, n);
	/* and hb with it, used by nothing now: a chunk is put before use */
	static uint8_t out[WTG_STORE_CHUNK_SIZE];
	size_t got;
	CHECK(wtg_store_get_chunk(st, hb, out, &got) == -ENOENT);
	CHECK(wtg_store_put_chunk(st, b, sizeof(b), hb) == 0);

	/* truncation hides lower chunks from the first whole chunk past it */
	CHECK(wtg_store_set_extent(st, 7, "", 3, hb) == 0);
	CHECK(wtg_store_set_stream(st, 7, "", 65536 + 10, false) == 0);
	CHECK(wtg_store_get_extent(st, 7, "", 1, &s, h) == 0 && s == WTG_STORE_PRESENT);
	CHECK(wtg_store_get_extent(st, 7, "", 2, &s, h) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_get_extent(st, 7, "", 3, &s, h) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_get_extent(st, 7, "", 9, &s, h) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_set_stream(st, 7, "", 4 * 65536, false) == 0); /* growing shows nothing */
	CHECK(wtg_store_get_extent(st, 7, "", 3, &s, h) == 0 && s == WTG_STORE_DELETED);
	/* the cut released hb, which nothing else named */
	CHECK(wtg_store_get_chunk(st, hb, out, &got) == -ENOENT);
	CHECK(wtg_store_put_chunk(st, b, sizeof(b), hb) == 0);
	CHECK(wtg_store_set_extent(st, 7, "", 3, hb) == 0);
	CHECK(wtg_store_get_extent(st, 7, "", 3, &s, h) == 0 && s == WTG_STORE_PRESENT);
	CHECK(!memcmp(h, hb, sizeof(h)));
	CHECK(wtg_store_get_stream(st, 7, "", &s, &v) == 0 && s == WTG_STORE_PRESENT);
	CHECK(v == 4 * 65536);
	/* the base again below a truncation: an empty row, no chunk */
	CHECK(wtg_store_set_stream(st, 9, "", 0, false) == 0);
	CHECK(wtg_store_set_stream(st, 9, "", 3 * 65536, false) == 0);
	CHECK(wtg_store_get_extent(st, 9, "", 1, &s, h) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_set_extent_base(st, 9, "", 1) == 0);
	CHECK(wtg_store_get_extent(st, 9, "", 1, &s, h) == 0 && s == WTG_STORE_BASE);
	CHECK(wtg_store_get_extent(st, 9, "", 2, &s, h) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_set_stream(st, 9, "", 10, false) == 0); /* cut again: hidden again */
	CHECK(wtg_store_get_extent(st, 9, "", 1, &s, h) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_set_extent_base(st, 10, "", 0) == 0); /* nothing hides it: no row */
	CHECK(wtg_store_get_extent(st, 10, "", 0, &s, h) == 0 && s == WTG_STORE_BASE);
	/* a stream made afresh sees nothing below; a deleted one is gone */
	CHECK(wtg_store_set_stream(st, 7, "ads", 10, true) == 0);
	CHECK(wtg_store_get_extent(st, 7, "ads", 0, &s, h) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_set_stream(st, 8, "", 100, false) == 0);
	CHECK(wtg_store_delete_stream(st, 8, "") == 0);
	CHECK(wtg_store_get_stream(st, 8, "", &s, &v) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_get_extent(st, 8, "", 0, &s, h) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_commit(st) == 0);

	/* a read-only view of the snapshot sees its state, HEAD sees its own */
	struct wtg_store *at;
	struct wtg_store_options opt = {.at = "one"};
	CHECK(wtg_store_open(tmp_path("layers.delta"), &opt, &at) == 0);
	CHECK(wtg_store_get_extent(at, 7, "", 3, &s, h) == 0 && s == WTG_STORE_PRESENT);
	CHECK(!memcmp(h, ha, sizeof(h)));
	CHECK(wtg_store_get_stream(at, 7, "", &s, &v) == 0 && v == 6 * 65536);
	CHECK(wtg_store_set_extent(at, 7, "", 0, hb) == -EROFS);
	CHECK(wtg_store_close(at) == 0);
	opt.at = "nope";
	capture_begin();
	CHECK(wtg_store_open(tmp_path("layers.delta"), &opt, &at) == -ENOENT);
	CHECK(capture_end() == 1);

	/* rollback: a new working layer on the snapshot; the old one kept */
	char *kept = NULL;
	CHECK(wtg_store_rollback(st, "one", &kept) == 0 && kept);
	CHECK(kept && !strcmp(kept, "abandoned-2"));
	free(kept);
	CHECK(wtg_store_get_extent(st, 7, "", 3, &s, h) == 0 && s == WTG_STORE_PRESENT);
	CHECK(!memcmp(h, ha, sizeof(h)));
	CHECK(wtg_store_get_stream(st, 8, "", &s, &v) == 0 && s == WTG_STORE_BASE);
	CHECK(wtg_store_list_layers(st, &l, &n) == 0 && n == 3);
	CHECK(n == 3 && l[1].abandoned && l[1].sealed && !l[1].in_stack && l[2].head);
	wtg_store_layers_free(l, n);
	struct wtg_store_gc_report g;
	CHECK(wtg_store_gc(st, 0, &g) == 0 && g.chunks == 0 && g.layers == 0); /* not expired */
	CHECK(wtg_store_gc(st, INT64_MAX, &g) == 0 && g.chunks == 1); /* hb: only it used it */
	CHECK(g.layers == 1 && g.abandoned == 1 && g.records > 0 && g.chunk_bytes > 0);
	CHECK(wtg_store_verify(st, NULL) == 0);
	CHECK(wtg_store_close(st) == 0);
}

static int collect_name(void *arg, const char *name, uint64_t ino)
{
	char *out = arg;
	size_t len = strlen(out);
	snprintf(out + len, 256 - len, "%s=%llu;", name, (unsigned long long)ino);
	return 0;
}

/* Names with their DOS names: "name=inoDOS;", "-" for a whiteout. */
static int collect_dos(void *arg, const struct wtg_store_record *rec)
{
	char *out = arg;
	size_t n = strlen(out);

	if (rec->deleted)
		snprintf(out + n, 256 - n, "%s=-;", rec->name);
	else
		snprintf(out + n, 256 - n, "%s=%llu%s;", rec->name, (unsigned long long)rec->value,
			 rec->dos_name ? rec->dos_name : "");
	return 0;
}

TEST(inodes_and_names)
{
	struct wtg_store *st = new_delta("inodes.delta");
	struct wtg_store_inode in = {.attributes = 0x20,
				     .crtime = 1,
				     .mtime = 2,
				     .atime = 3,
				     .ctime = 4},
			       got;
	uint8_t reparse[16] = {0x0c, 0, 0, 0xa0}, sd[40] = {1, 0, 4, 0x80};
	enum wtg_store_state s;
	char names[256] = "";
	uint64_t ino;
	uint8_t *data;
	size_t len;

	CHECK(wtg_store_put_sd(st, sd, sizeof(sd), in.sd_hash) == 0);
	in.reparse = reparse;
	in.reparse_len = sizeof(reparse);
	CHECK(wtg_store_set_inode(st, 42, &in) == 0);
	CHECK(wtg_store_set_name_dos(st, 1, "Program Files", 42, "PROGRA~1") == 0);
	CHECK(wtg_store_set_name(st, 1, "pagefile.sys", 0) == 0);
	CHECK(wtg_store_snapshot(st, "s", NULL) == 0);
	CHECK(wtg_store_get_inode(st, 42, &s, &got) == 0 && s == WTG_STORE_PRESENT);
	CHECK(got.attributes == 0x20 && got.crtime == 1 && got.ctime == 4);
	CHECK(got.reparse_len == sizeof(reparse) && !memcmp(got.reparse, reparse, sizeof(reparse)));
	CHECK(!got.object_id && !got.legacy_dos_name);
	CHECK(wtg_store_get_sd(st, got.sd_hash, &data, &len) == 0 && len == sizeof(sd));
	CHECK(!memcmp(data, sd, sizeof(sd)));
	free(data);
	wtg_store_inode_release(&got);
	CHECK(wtg_store_get_inode(st, 43, &s, &got) == 0 && s == WTG_STORE_BASE);

	CHECK(wtg_store_delete_inode(st, 42) == 0);
	CHECK(wtg_store_set_name(st, 1, "Program Files", 0) == 0);
	CHECK(wtg_store_set_name(st, 1, "pagefile.sys", 50) == 0);
	CHECK(wtg_store_get_inode(st, 42, &s, &got) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_get_name(st, 1, "Program Files", &s, &ino) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_get_name(st, 1, "program files", &s, &ino) == 0 && s == WTG_STORE_BASE);
	names[0] = '\0';
	CHECK(wtg_store_each(st, WTG_STORE_NAMES, collect_dos, names) == 0);
	CHECK(!strcmp(names, "Program Files=-;pagefile.sys=50;"));
	names[0] = '\0';
	CHECK(wtg_store_get_name(st, 1, "pagefile.sys", &s, &ino) == 0 && ino == 50);
	CHECK(wtg_store_list_names(st, 1, collect_name, names) == 0);
	CHECK(!strcmp(names, "Program Files=0;pagefile.sys=50;"));
	CHECK(wtg_store_max_ino(st, &ino) == 0 && ino == 50);
	CHECK(wtg_store_rollback(st, "s", NULL) == 0);
	CHECK(wtg_store_get_inode(st, 42, &s, &got) == 0 && s == WTG_STORE_PRESENT);
	wtg_store_inode_release(&got);
	CHECK(wtg_store_get_name(st, 1, "Program Files", &s, &ino) == 0 && ino == 42);
	names[0] = '\0';
	CHECK(wtg_store_each(st, WTG_STORE_NAMES, collect_dos, names) == 0);
	CHECK(!strcmp(names, "Program Files=42PROGRA~1;pagefile.sys=-;"));
	CHECK(wtg_store_verify(st, NULL) == 0);
	CHECK(wtg_store_close(st) == 0);
}

static uint64_t count_chunks(struct wtg_store *st)
{
	struct wtg_store_report rep = {0};
	capture_begin();
	wtg_store_verify(st, &rep);
	capture_end();
	return rep.chunks;
}

static off_t file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* Data that goes gives its space back: a deleted inode's chunks, a cut
 * stream's, at once when nothing else names them; an inode and a name only
 * the working layer ever had leave no record; verify calls a chunk nothing
 * names a problem; gc shrinks the file. */
TEST(space_released)
{
	struct wtg_store *st = new_delta("space.delta");
	static uint8_t a[WTG_STORE_CHUNK_SIZE];
	uint8_t h[4][WTG_STORE_HASH_LEN], x[WTG_STORE_HASH_LEN];
	struct wtg_store_report rep;
	struct wtg_store_inode in = {.attributes = 0x20};
	struct wtg_store_layer *l;
	enum wtg_store_state s;
	uint64_t ino;
	size_t n;
	bool traceless;
	char path[128];

	snprintf(path, sizeof(path), "%s", tmp_path("space.delta"));
	for (int i = 0; i < 4; i++) {
		fill(a, sizeof(a), 40 + i, false);
		CHECK(wtg_store_put_chunk(st, a, sizeof(a), h[i]) == 0);
		CHECK(wtg_store_set_extent(st, 20, "", i, h[i]) == 0);
	}
	CHECK(wtg_store_set_stream(st, 20, "", 4 * 65536, true) == 0);
	CHECK(wtg_store_set_extent(st, 21, "", 0, h[0]) == 0); /* shared with 20 */
	CHECK(wtg_store_commit(st) == 0 && count_chunks(st) == 4);
	CHECK(wtg_store_set_stream(st, 20, "", 65536, false) == 0);
	CHECK(count_chunks(st) == 1);
	CHECK(wtg_store_delete_inode(st, 20) == 0);
	CHECK(count_chunks(st) == 1); /* 21 still names it */
	CHECK(wtg_store_delete_inode(st, 21) == 0);
	CHECK(count_chunks(st) == 0);

	/* born and gone in the working layer: nothing left */
	CHECK(wtg_store_set_inode(st, 30, &in) == 0);
	CHECK(wtg_store_set_name(st, 1, "n.txt", 30) == 0);
	CHECK(wtg_store_set_stream(st, 30, "", 100, true) == 0);
	CHECK(wtg_store_put_chunk(st, a, 100, x) == 0 && wtg_store_set_extent(st, 30, "", 0, x) == 0);
	CHECK(wtg_store_remove_name(st, 1, "n.txt", false) == 0);
	CHECK(wtg_store_get_name(st, 1, "n.txt", &s, &ino) == 0 && s == WTG_STORE_BASE);
	CHECK(wtg_store_delete_new_inode(st, 30, &traceless) == 0 && traceless);
	CHECK(wtg_store_get_inode(st, 30, &s, &in) == 0 && s == WTG_STORE_BASE);
	CHECK(wtg_store_list_layers(st, &l, &n) == 0 && n == 1);
	CHECK(l[0].inodes == 2 && l[0].names == 0 && l[0].extents == 0); /* 20 and 21 */
	wtg_store_layers_free(l, n);
	CHECK(count_chunks(st) == 0);
	/* a name the base holds, or a layer below, takes a whiteout */
	CHECK(wtg_store_remove_name(st, 1, "base.txt", true) == 0);
	CHECK(wtg_store_get_name(st, 1, "base.txt", &s, &ino) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_set_inode(st, 31, &in) == 0 && wtg_store_set_name(st, 1, "k", 31) == 0);
	CHECK(wtg_store_snapshot(st, "s", NULL) == 0);
	CHECK(wtg_store_remove_name(st, 1, "k", false) == 0);
	CHECK(wtg_store_get_name(st, 1, "k", &s, &ino) == 0 && s == WTG_STORE_DELETED);
	CHECK(wtg_store_delete_new_inode(st, 31, &traceless) == 0 && !traceless);
	CHECK(wtg_store_get_inode(st, 31, &s, &in) == 0 && s == WTG_STORE_DELETED);
	/* a layer a rollback left keeps its records: no deleted row in the
	 * new stack, but the number is not free */
	CHECK(wtg_store_set_inode(st, 32, &in) == 0);
	CHECK(wtg_store_rollback(st, "s", NULL) == 0);
	CHECK(wtg_store_set_inode(st, 32, &in) == 0);
	CHECK(wtg_store_delete_new_inode(st, 32, &traceless) == 0 && !traceless);
	CHECK(wtg_store_get_inode(st, 32, &s, &in) == 0 && s == WTG_STORE_BASE);

	/* a chunk nothing names is a problem verify reports, and gc's */
	CHECK(wtg_store_put_chunk(st, a, 1000, x) == 0 && wtg_store_commit(st) == 0);
	capture_begin();
	CHECK(wtg_store_verify(st, &rep) == -EIO && rep.problems == 1);
	CHECK(capture_end() == 1);
	struct wtg_store_gc_report g;
	CHECK(wtg_store_gc(st, 0, &g) == 0 && g.chunks == 1);
	CHECK(wtg_store_verify(st, NULL) == 0);

	/* freed pages are used again, and gc gives them back */
	for (uint32_t i = 0; i < 200; i++) {
		fill(a, sizeof(a), 1000 + i, false);
		CHECK(wtg_store_put_chunk(st, a, sizeof(a), x) == 0);
		CHECK(wtg_store_set_extent(st, 40, "", i, x) == 0);
	}
	CHECK(wtg_store_close(st) == 0);
	off_t full = file_size(path);
	CHECK(wtg_store_open(path, NULL, &st) == 0);
	CHECK(wtg_store_delete_inode(st, 40) == 0 && wtg_store_commit(st) == 0);
	for (uint32_t i = 0; i < 200; i++) {
		fill(a, sizeof(a), 2000 + i, false);
		CHECK(wtg_store_put_chunk(st, a, sizeof(a), x) == 0);
		CHECK(wtg_store_set_extent(st, 41, "", i, x) == 0);
	}
	CHECK(wtg_store_delete_inode(st, 41) == 0 && wtg_store_close(st) == 0);
	CHECK(file_size(path) < full + full / 4);
	CHECK(wtg_store_open(path, NULL, &st) == 0);
	CHECK(wtg_store_gc(st, 0, &g) == 0 && wtg_store_verify(st, &rep) == 0 && rep.chunks == 0);
	CHECK(g.file_after < g.file_before);
	CHECK(wtg_store_close(st) == 0);
	CHECK(file_size(path) < full / 4);
}

static int collect_legacy(void *arg, const struct wtg_store_record *rec)
{
	char *out = arg;
	size_t n = strlen(out);

	const char *said = rec->deleted ? "gone" : rec->inode->legacy_dos_name;

	snprintf(out + n, 256 - n, "%llu=%s;", (unsigned long long)rec->ino, said ? said : "-");
	return 0;
}

/* A format 1 delta kept DOS names on inode records: it still opens, a
 * reader sees what it said ("" for none), a writer upgrades it in place. */
TEST(format1_dos_names)
{
	const char *path = tmp_path("format1.delta");
	struct wtg_store *st = new_delta("format1.delta");
	struct wtg_store_inode in = {.attributes = 0x20};
	struct wtg_store_options ro = {.read_only = true}, rw = {0};
	char got[256] = "";

	CHECK(wtg_store_set_inode(st, 42, &in) == 0);
	CHECK(wtg_store_set_inode(st, 43, &in) == 0);
	CHECK(wtg_store_delete_inode(st, 44) == 0);
	CHECK(wtg_store_set_name(st, 1, "Program Files", 42) == 0);
	CHECK(wtg_store_close(st) == 0);
	/* what format 1 wrote: no names.dos_name, the inode's in inodes */
	CHECK(sql(path, "ALTER TABLE names DROP COLUMN dos_name; ALTER TABLE inodes DROP COLUMN ea;"
			" UPDATE inodes SET dos_name = 'PROGRA~1' WHERE ino = 42;"
			" PRAGMA user_version = 1") == 0);
	CHECK(wtg_store_open(path, &ro, &st) == 0);
	CHECK(wtg_store_each(st, WTG_STORE_INODES, collect_legacy, got) == 0);
	CHECK(!strcmp(got, "42=PROGRA~1;43=;44=gone;"));
	got[0] = '\0';
	CHECK(wtg_store_each(st, WTG_STORE_NAMES, collect_dos, got) == 0);
	CHECK(!strcmp(got, "Program Files=42;"));
	CHECK(wtg_store_close(st) == 0);
	CHECK(sql_true(path, "(SELECT user_version FROM pragma_user_version) = 1"));
	CHECK(wtg_store_open(path, &rw, &st) == 0);
	got[0] = '\0';
	CHECK(wtg_store_each(st, WTG_STORE_INODES, collect_legacy, got) == 0);
	CHECK(!strcmp(got, "42=PROGRA~1;43=;44=gone;"));
	CHECK(wtg_store_set_name_dos(st, 1, "Program Files", 42, "PROGRA~2") == 0);
	got[0] = '\0';
	CHECK(wtg_store_each(st, WTG_STORE_NAMES, collect_dos, got) == 0);
	CHECK(!strcmp(got, "Program Files=42PROGRA~2;"));
	CHECK(wtg_store_verify(st, NULL) == 0);
	CHECK(wtg_store_close(st) == 0);
	CHECK(sql_true(path, "(SELECT user_version FROM pragma_user_version) = 4"));
	CHECK(sql_true(path, "(SELECT count(*) FROM inodes WHERE dos_name = '') = 1"));
}

TEST(verify_finds_damage)
{
	struct wtg_store *st = new_delta("damage.delta");
	static uint8_t a[WTG_STORE_CHUNK_SIZE];
	uint8_t h[WTG_STORE_HASH_LEN];
	struct wtg_store_report rep;
	char path[128];

	snprintf(path, sizeof(path), "%s", tmp_path("damage.delta"));
	for (uint32_t i = 0; i < 3; i++) {
		fill(a, sizeof(a), i, i != 1);
		CHECK(wtg_store_put_chunk(st, a, sizeof(a), h) == 0);
		CHECK(wtg_store_set_extent(st, 9, "", i, h) == 0);
	}
	CHECK(wtg_store_close(st) == 0);
	if (sql(path, "SELECT 1") != 0) {
		printf("verify_finds_damage: skipped, the 'sqlite3' program is not installed\n");
		return;
	}
	/* a chunk whose bytes do not hash to its key (still decodable) */
	CHECK(sql(path, "UPDATE chunks SET size = 1, codec = 0, data = X'00'"
			" WHERE rowid = (SELECT min(rowid) FROM chunks)") == 0);
	CHECK(wtg_store_open(path, NULL, &st) == 0);
	capture_begin();
	CHECK(wtg_store_verify(st, &rep) == -EIO);
	CHECK(capture_end() == 1);
	CHECK(rep.problems == 1 && rep.chunks == 3);
	CHECK(wtg_store_close(st) == 0);
	/* a chunk that does not decode, and an extent to nowhere */
	CHECK(sql(path, "UPDATE chunks SET size = 65536, codec = 1, data = X'28b52ffd00'"
			" WHERE rowid = (SELECT max(rowid) FROM chunks);"
			" INSERT INTO extents VALUES(9, '', 7, 1, randomblob(32))") == 0);
	CHECK(wtg_store_open(path, NULL, &st) == 0);
	capture_begin();
	CHECK(wtg_store_verify(st, &rep) == -EIO);
	CHECK(capture_end() == 3);
	CHECK(rep.problems == 3);
	CHECK(wtg_store_close(st) == 0);
}

TEST(second_writer_refused)
{
	struct wtg_store *st = new_delta("busy.delta");
	int status;

	capture_begin();
	pid_t pid = fork();
	if (pid == 0) {
		struct wtg_store *other;
		struct wtg_store_options ro = {.read_only = true};
		int r = wtg_store_open(tmp_path("busy.delta"), NULL, &other);
		if (r != -EBUSY)
			_exit(1);
		if (wtg_store_open(tmp_path("busy.delta"), &ro, &other) != 0)
			_exit(2);
		wtg_store_close(other);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(capture_end() == 1);
	CHECK(wtg_store_close(st) == 0);
}

/* The content of batch @i: one chunk, and an extent of inode 5 to it. */
static int write_batch(struct wtg_store *st, uint32_t i)
{
	static uint8_t buf[WTG_STORE_CHUNK_SIZE];
	uint8_t h[WTG_STORE_HASH_LEN];
	char name[32];

	fill(buf, 4096 + i % 4096, i, i % 3 != 0);
	int r = wtg_store_put_chunk(st, buf, 4096 + i % 4096, h);
	if (!r)
		r = wtg_store_set_extent(st, 5, "", i, h);
	snprintf(name, sizeof(name), "file%u", i);
	if (!r)
		r = wtg_store_set_name(st, 1, name, 1000 + i);
	return r;
}

TEST(kill_9)
{
	char path[128];
	struct wtg_store *st = new_delta("crash.delta");
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	uint32_t next = 0;

	snprintf(path, sizeof(path), "%s", tmp_path("crash.delta"));
	CHECK(wtg_store_close(st) == 0);
	srand(seed);
	for (int round = 0; round < 4; round++) {
		int fds[2];
		CHECK(pipe(fds) == 0);
		pid_t pid = fork();
		if (pid == 0) {
			close(fds[0]);
			if (wtg_store_open(path, NULL, &st))
				_exit(1);
			for (uint32_t i = next;; i++) {
				if (write_batch(st, i) || (i % 4 == 3 && wtg_store_commit(st)))
					_exit(2);
				if (i % 4 == 3 && write(fds[1], &i, sizeof(i)) != sizeof(i))
					_exit(3);
				char snap[32];
				snprintf(snap, sizeof(snap), "s%u", i);
				if (i % 40 == 39 && wtg_store_snapshot(st, snap, NULL))
					_exit(4);
			}
		}
		close(fds[1]);
		struct timespec t = {0, (long)(rand() % 300 + 20) * 1000000L};
		nanosleep(&t, NULL);
		kill(pid, SIGKILL);
		int status;
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		uint32_t i, last = UINT32_MAX;
		while (read(fds[0], &i, sizeof(i)) == sizeof(i))
			last = i;
		close(fds[0]);
		if (last == UINT32_MAX) {
			printf("kill_9: round %d committed nothing before the kill\n", round);
			continue;
		}

		struct wtg_store_report rep;
		CHECK(wtg_store_open(path, NULL, &st) == 0);
		if (!st)
			break;
		CHECK(wtg_store_verify(st, &rep) == 0);
		int missing = 0;
		for (uint32_t k = next; k <= last; k++) {
			static uint8_t want[WTG_STORE_CHUNK_SIZE], got[WTG_STORE_CHUNK_SIZE];
			enum wtg_store_state s;
			uint8_t h[WTG_STORE_HASH_LEN];
			uint64_t ino;
			size_t n;
			char name[32];

			fill(want, 4096 + k % 4096, k, k % 3 != 0);
			snprintf(name, sizeof(name), "file%u", k);
			if (wtg_store_get_extent(st, 5, "", k, &s, h) || s != WTG_STORE_PRESENT ||
			    wtg_store_get_chunk(st, h, got, &n) || n != 4096 + k % 4096 ||
			    memcmp(got, want, n) || wtg_store_get_name(st, 1, name, &s, &ino) ||
			    ino != 1000 + k)
				missing++;
		}
		CHECK(missing == 0);
		printf("kill_9: round %d: batches %u..%u committed and found (seed %u, %llu "
		       "chunks)\n",
		       round, next / 4, last / 4, seed, (unsigned long long)rep.chunks);
		CHECK(wtg_store_close(st) == 0);
		next = last + 1;
	}
}

TEST(disk_full)
{
	char small[128], path[160];
	struct wtg_store_base b = test_base();
	struct wtg_store *st = NULL;
	int status;

	/* a 2 MiB tmpfs when we may mount one, else a file size limit, which
	 * SQLite reports as an I/O error rather than as a full disk */
	snprintf(small, sizeof(small), "%s/small", dir);
	mkdir(small, 0700);
	bool real = mount("wtgfs-unit", small, "tmpfs", 0, "size=2m") == 0;
	if (!real)
		printf("disk_full: not root, a file size limit stands in for a full disk\n");
	snprintf(path, sizeof(path), "%s/full.delta", real ? small : dir);
	CHECK(wtg_store_create(path, &b) == 0);
	CHECK(wtg_store_open(path, NULL, &st) == 0);
	if (!st)
		goto out;
	CHECK(write_batch(st, 0) == 0 && wtg_store_commit(st) == 0);
	CHECK(wtg_store_close(st) == 0);
	capture_begin();
	pid_t pid = fork();
	if (pid == 0) {
		struct stat sb;
		stat(path, &sb);
		struct rlimit rl = {sb.st_size + 512 * 1024, sb.st_size + 512 * 1024};
		signal(SIGXFSZ, SIG_IGN);
		if (wtg_store_open(path, NULL, &st) || (!real && setrlimit(RLIMIT_FSIZE, &rl)))
			_exit(10);
		for (uint32_t i = 1; i < 100000; i++) {
			int r = write_batch(st, i);
			if (!r && i % 8 == 0)
				r = wtg_store_commit(st);
			if (r)
				_exit(r == -ENOSPC || !real ? 0 : 11);
		}
		_exit(12);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(capture_end() >= 1);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	st = NULL;
	CHECK(wtg_store_open(path, NULL, &st) == 0);
	if (!st)
		goto out;
	enum wtg_store_state s;
	uint8_t h[WTG_STORE_HASH_LEN];
	CHECK(wtg_store_verify(st, NULL) == 0);
	CHECK(wtg_store_get_extent(st, 5, "", 0, &s, h) == 0 && s == WTG_STORE_PRESENT);
	CHECK(wtg_store_close(st) == 0);
out:
	if (real)
		umount(small);
}

/* What a stack says about the keys the layer tests use, as a string. */
static void fingerprint(struct wtg_store *st, char *out, size_t size)
{
	static const char *const names[] = {"a", "b", "c"};
	enum wtg_store_state s;
	uint8_t h[WTG_STORE_HASH_LEN];
	struct wtg_store_inode in;
	uint64_t v;
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < 3; i++) {
		CHECK(wtg_store_get_name(st, 1, names[i], &s, &v) == 0);
		used += (size_t)snprintf(out + used, size - used, "%s=%d/%llu ", names[i], (int)s,
					 (unsigned long long)v);
	}
	CHECK(wtg_store_get_inode(st, 10, &s, &in) == 0);
	used += (size_t)snprintf(out + used, size - used, "i=%d/%u ", (int)s,
				 s == WTG_STORE_PRESENT ? in.attributes : 0);
	if (s == WTG_STORE_PRESENT)
		wtg_store_inode_release(&in);
	CHECK(wtg_store_get_stream(st, 10, "", &s, &v) == 0);
	used += (size_t)snprintf(out + used, size - used, "s=%d/%llu ", (int)s,
				 (unsigned long long)v);
	for (uint64_t x = 0; x < 4; x++) {
		CHECK(wtg_store_get_extent(st, 10, "", x, &s, h) == 0);
		used += (size_t)snprintf(out + used, size - used, "e%llu=%d/%02x ",
					 (unsigned long long)x, (int)s,
					 s == WTG_STORE_PRESENT ? h[0] : 0);
	}
}

static void fingerprint_at(const char *path, const char *at, char *out, size_t size)
{
	struct wtg_store_options opt = {.at = at};
	struct wtg_store *st;

	out[0] = '\0';
	CHECK(wtg_store_open(path, &opt, &st) == 0);
	if (st) {
		fingerprint(st, out, size);
		wtg_store_close(st);
	}
}

TEST(rollback_undo_squash_gc)
{
	struct wtg_store *st = new_delta("undo.delta");
	const char *path = tmp_path("undo.delta");
	struct wtg_store_inode in = {.attributes = 0x20};
	static uint8_t a[100], b[200], c[300];
	uint8_t ha[WTG_STORE_HASH_LEN], hb[WTG_STORE_HASH_LEN], hc[WTG_STORE_HASH_LEN];
	char fp1[512], fp2[512], fp3[512], fp4[512], now[512];
	struct wtg_store_layer *l;
	size_t n;
	char *kept = NULL;

	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	memset(c, 'c', sizeof(c));
	CHECK(wtg_store_put_chunk(st, a, sizeof(a), ha) == 0);
	CHECK(wtg_store_set_inode(st, 10, &in) == 0);
	CHECK(wtg_store_set_name(st, 1, "a", 10) == 0);
	CHECK(wtg_store_set_stream(st, 10, "", 100, true) == 0);
	CHECK(wtg_store_set_extent(st, 10, "", 0, ha) == 0);
	fingerprint(st, fp1, sizeof(fp1));
	CHECK(wtg_store_snapshot(st, "s1", NULL) == 0);

	CHECK(wtg_store_put_chunk(st, b, sizeof(b), hb) == 0);
	CHECK(wtg_store_set_name(st, 1, "b", 10) == 0);
	CHECK(wtg_store_set_stream(st, 10, "", 3 * 65536, false) == 0);
	CHECK(wtg_store_set_extent(st, 10, "", 0, hb) == 0);
	CHECK(wtg_store_set_extent(st, 10, "", 2, ha) == 0);
	in.attributes = 0x21;
	CHECK(wtg_store_set_inode(st, 10, &in) == 0);
	fingerprint(st, fp2, sizeof(fp2));
	CHECK(wtg_store_snapshot(st, "s2", NULL) == 0);

	/* a truncation in the middle layer of the range hides slot 2 of s2 */
	CHECK(wtg_store_put_chunk(st, c, sizeof(c), hc) == 0);
	CHECK(wtg_store_set_name(st, 1, "a", 0) == 0);
	CHECK(wtg_store_set_stream(st, 10, "", 10, false) == 0);
	CHECK(wtg_store_set_stream(st, 10, "", 4 * 65536, false) == 0);
	CHECK(wtg_store_set_extent(st, 10, "", 1, hc) == 0);
	fingerprint(st, fp3, sizeof(fp3));
	CHECK(wtg_store_snapshot(st, "s3", "third") == 0);

	CHECK(wtg_store_set_name(st, 1, "c", 10) == 0);
	fingerprint(st, fp4, sizeof(fp4));
	CHECK(wtg_store_commit(st) == 0);
	CHECK(strcmp(fp1, fp2) && strcmp(fp2, fp3) && strcmp(fp3, fp4));

	/* rollback, then back to what it left: as it was */
	CHECK(wtg_store_rollback(st, "s1", &kept) == 0 && kept);
	fingerprint(st, now, sizeof(now));
	CHECK(!strcmp(now, fp1));
	CHECK(wtg_store_rollback(st, kept ? kept : "?", NULL) == 0);
	fingerprint(st, now, sizeof(now));
	CHECK(!strcmp(now, fp4));
	free(kept);
	kept = NULL;
	/* the empty layer the first rollback opened went; nothing is abandoned */
	CHECK(wtg_store_list_layers(st, &l, &n) == 0 && n == 4);
	for (size_t i = 0; i < n; i++)
		CHECK(!l[i].abandoned && l[i].in_stack);
	wtg_store_layers_free(l, n);
	CHECK(wtg_store_verify(st, NULL) == 0);

	/* bad names, a range the wrong way round */
	capture_begin();
	CHECK(wtg_store_snapshot(st, "base", NULL) == -EINVAL);
	CHECK(wtg_store_snapshot(st, "a/b", NULL) == -EINVAL);
	CHECK(wtg_store_snapshot(st, "x..y", NULL) == -EINVAL);
	CHECK(wtg_store_squash(st, "s3", "s1", NULL) == -EINVAL);
	CHECK(wtg_store_rollback(st, "nope", NULL) == -ENOENT);
	CHECK(capture_end() == 5);

	/* squash s1..s3: s2 goes, s1, s3 and HEAD keep their content */
	uint64_t merged = 0;
	CHECK(wtg_store_squash(st, "s1", "s3", &merged) == 0 && merged == 1);
	fingerprint(st, now, sizeof(now));
	CHECK(!strcmp(now, fp4));
	fingerprint_at(path, "s3", now, sizeof(now));
	CHECK(!strcmp(now, fp3));
	fingerprint_at(path, "s1", now, sizeof(now));
	CHECK(!strcmp(now, fp1));
	CHECK(wtg_store_verify(st, NULL) == 0);
	CHECK(wtg_store_list_layers(st, &l, &n) == 0 && n == 3);
	CHECK(n == 3 && !strcmp(l[1].snapshot, "s3") && l[1].parent == l[0].id);
	wtg_store_layers_free(l, n);
	/* base..HEAD: one layer */
	CHECK(wtg_store_squash(st, "base", "HEAD", &merged) == 0 && merged == 2);
	fingerprint(st, now, sizeof(now));
	CHECK(!strcmp(now, fp4));
	CHECK(wtg_store_verify(st, NULL) == 0);
	struct wtg_store_gc_report g;
	CHECK(wtg_store_gc(st, INT64_MAX, &g) == 0 && g.layers == 0);
	fingerprint(st, now, sizeof(now));
	CHECK(!strcmp(now, fp4));
	CHECK(wtg_store_close(st) == 0);

	/* a kept layer back as HEAD is older than others: its own rows are
	 * still the working layer's (a cut stays a cut) */
	st = new_delta("older.delta");
	enum wtg_store_state es;
	uint8_t eh[WTG_STORE_HASH_LEN];
	CHECK(wtg_store_put_chunk(st, a, sizeof(a), ha) == 0);
	CHECK(wtg_store_set_stream(st, 10, "", 3 * 65536, true) == 0);
	CHECK(wtg_store_set_extent(st, 10, "", 0, ha) == 0);
	CHECK(wtg_store_snapshot(st, "s", NULL) == 0);
	CHECK(wtg_store_set_stream(st, 10, "", 0, false) == 0);
	CHECK(wtg_store_rollback(st, "s", &kept) == 0 && kept);
	CHECK(wtg_store_set_stream(st, 10, "", 5, false) == 0);
	CHECK(wtg_store_rollback(st, kept ? kept : "?", NULL) == 0);
	free(kept);
	kept = NULL;
	CHECK(wtg_store_set_stream(st, 10, "", 65537, false) == 0);
	CHECK(wtg_store_get_extent(st, 10, "", 0, &es, eh) == 0 && es == WTG_STORE_DELETED);
	CHECK(wtg_store_verify(st, NULL) == 0);
	CHECK(wtg_store_close(st) == 0);

	/* a branch inside the range stops a squash */
	st = new_delta("branch.delta");
	CHECK(wtg_store_set_name(st, 1, "a", 10) == 0);
	CHECK(wtg_store_snapshot(st, "s1", NULL) == 0);
	CHECK(wtg_store_set_name(st, 1, "b", 10) == 0);
	CHECK(wtg_store_snapshot(st, "s2", NULL) == 0);
	CHECK(wtg_store_set_name(st, 1, "c", 10) == 0);
	CHECK(wtg_store_snapshot(st, "s3", NULL) == 0);
	CHECK(wtg_store_rollback(st, "s2", NULL) == 0);
	CHECK(wtg_store_set_name(st, 1, "d", 10) == 0);
	capture_begin();
	CHECK(wtg_store_squash(st, "base", "s3", NULL) == -EBUSY);
	CHECK(capture_end() == 1);
	CHECK(wtg_store_verify(st, NULL) == 0);
	CHECK(wtg_store_close(st) == 0);
}

/* The keys between two versions: the layers on the path FROM -> common
 * ancestor -> TO, across branches, and lookups through either stack. */
struct keys {
	int inodes, names, streams, extents;
	uint64_t last_ino;
	char last_name[64];
};

static int count_key(void *arg, const struct wtg_store_change *c)
{
	struct keys *k = arg;

	switch (c->kind) {
	case WTG_STORE_KEY_INODE: k->inodes++; break;
	case WTG_STORE_KEY_NAME: k->names++; break;
	case WTG_STORE_KEY_STREAM: k->streams++; break;
	case WTG_STORE_KEY_EXTENT: k->extents++; break;
	}
	k->last_ino = c->ino;
	snprintf(k->last_name, sizeof(k->last_name), "%s", c->name ? c->name : "");
	return 0;
}

static int count_link(void *arg, uint64_t parent, const char *name)
{
	(*(int *)arg)++;
	return parent == 1 && !strcmp(name, "b") ? 0 : -EINVAL;
}

TEST(versions_and_changes)
{
	struct wtg_store *st = new_delta("versions.delta");
	struct wtg_store_inode in = {.attributes = 0x20};
	struct wtg_store_version base, s1, s2, b1, head;
	static uint8_t a[WTG_STORE_CHUNK_SIZE];
	uint8_t ha[WTG_STORE_HASH_LEN], h[WTG_STORE_HASH_LEN];
	enum wtg_store_state state;
	struct keys k;
	uint64_t ino, size;
	char *last;
	int links;

	CHECK(wtg_store_last_snapshot(st, &last) == 0 && !strcmp(last, "base"));
	free(last);
	/* s1: file 100 named "a" with one chunk */
	fill(a, sizeof(a), 9, true);
	CHECK(wtg_store_put_chunk(st, a, sizeof(a), ha) == 0);
	CHECK(wtg_store_set_inode(st, 100, &in) == 0);
	CHECK(wtg_store_set_name(st, 1, "a", 100) == 0);
	CHECK(wtg_store_set_stream(st, 100, "", 65536, true) == 0);
	CHECK(wtg_store_set_extent(st, 100, "", 0, ha) == 0);
	CHECK(wtg_store_snapshot(st, "s1", NULL) == 0);
	/* s2: renamed to "b" */
	CHECK(wtg_store_set_name(st, 1, "a", 0) == 0);
	CHECK(wtg_store_set_name(st, 1, "b", 100) == 0);
	CHECK(wtg_store_snapshot(st, "s2", NULL) == 0);
	CHECK(wtg_store_last_snapshot(st, &last) == 0 && !strcmp(last, "s2"));
	free(last);
	/* a branch from s1: the chunk becomes a hole */
	CHECK(wtg_store_rollback(st, "s1", NULL) == 0);
	CHECK(wtg_store_set_extent(st, 100, "", 0, NULL) == 0);
	CHECK(wtg_store_snapshot(st, "b1", NULL) == 0);

	CHECK(wtg_store_version_open(st, "base", &base) == 0 && base.nstack == 0);
	CHECK(wtg_store_version_open(st, "s1", &s1) == 0 && s1.nstack == 1);
	CHECK(wtg_store_version_open(st, "s2", &s2) == 0 && s2.nstack == 2);
	CHECK(wtg_store_version_open(st, "b1", &b1) == 0 && b1.nstack == 2);
	CHECK(wtg_store_version_open(st, "HEAD", &head) == 0 && head.nstack == 3);
	capture_begin();
	struct wtg_store_version none;
	CHECK(wtg_store_version_open(st, "nope", &none) == -ENOENT);
	CHECK(capture_end() == 1);

	memset(&k, 0, sizeof(k));
	CHECK(wtg_store_changes(st, &s1, &s1, count_key, &k) == 0);
	CHECK(k.inodes + k.names + k.streams + k.extents == 0);
	memset(&k, 0, sizeof(k));
	CHECK(wtg_store_changes(st, &base, &s1, count_key, &k) == 0);
	CHECK(k.inodes == 1 && k.names == 1 && k.streams == 1 && k.extents == 1);
	memset(&k, 0, sizeof(k));
	CHECK(wtg_store_changes(st, &s1, &s2, count_key, &k) == 0);
	CHECK(k.inodes == 0 && k.names == 2 && k.streams == 0 && k.extents == 0);
	/* across the branches: the rename on one side, the hole on the other */
	memset(&k, 0, sizeof(k));
	CHECK(wtg_store_changes(st, &s2, &b1, count_key, &k) == 0);
	CHECK(k.names == 2 && k.extents == 1 && k.last_ino == 100);

	CHECK(wtg_store_get_name_at(st, &s2, 1, "a", &state, &ino) == 0 &&
	      state == WTG_STORE_DELETED);
	CHECK(wtg_store_get_name_at(st, &b1, 1, "a", &state, &ino) == 0 &&
	      state == WTG_STORE_PRESENT && ino == 100);
	CHECK(wtg_store_get_name_at(st, &base, 1, "a", &state, &ino) == 0 &&
	      state == WTG_STORE_BASE);
	CHECK(wtg_store_get_extent_at(st, &s2, 100, "", 0, &state, h) == 0 &&
	      state == WTG_STORE_PRESENT && !memcmp(h, ha, sizeof(h)));
	CHECK(wtg_store_get_extent_at(st, &b1, 100, "", 0, &state, h) == 0 &&
	      state == WTG_STORE_DELETED);
	CHECK(wtg_store_get_stream_at(st, &b1, 100, "", &state, &size) == 0 &&
	      state == WTG_STORE_PRESENT && size == 65536);
	struct wtg_store_inode got;
	CHECK(wtg_store_get_inode_at(st, &base, 100, &state, &got) == 0 && state == WTG_STORE_BASE);
	CHECK(wtg_store_get_inode_at(st, &s2, 100, &state, &got) == 0 &&
	      state == WTG_STORE_PRESENT && got.attributes == 0x20);
	wtg_store_inode_release(&got);
	/* the names a layer gave an inode: "b" in s2 (the whiteout hides "a") */
	links = 0;
	CHECK(wtg_store_names_of_at(st, &s2, 100, count_link, &links) == 0 && links == 1);
	links = 0;
	CHECK(wtg_store_names_of_at(st, &base, 100, count_link, &links) == 0 && links == 0);
	wtg_store_version_release(&base);
	wtg_store_version_release(&s1);
	wtg_store_version_release(&s2);
	wtg_store_version_release(&b1);
	wtg_store_version_release(&head);
	CHECK(wtg_store_close(st) == 0);
}

/* The journal (format 6): rows come back by slot in the order they were
 * put, with the times they carry; a slot's rows drop alone, a truncation
 * and a deletion take theirs, recording the inode clears its rows' times,
 * and a batch rolled back leaves nothing the store still thinks is there. */
static size_t journal_rows(struct wtg_store *st, struct wtg_store_journal_row **rows)
{
	size_t n = 0;
	CHECK(wtg_store_journal_read(st, rows, &n) == 0);
	return n;
}

TEST(journal)
{
	const char *path = tmp_path("journal.delta");
	struct wtg_store *st = new_delta("journal.delta");
	struct wtg_store_inode in = {.attributes = 0x20, .mtime = 5, .ctime = 5};
	struct wtg_store_journal_row *rows;
	const int64_t t1[2] = {7, 8}, t2[2] = {9, 10};
	uint8_t a[100], b[100];

	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	CHECK(wtg_store_set_inode(st, 40, &in) == 0);
	CHECK(wtg_store_set_stream(st, 40, "", 4 * 65536, false) == 0);
	CHECK(wtg_store_set_inode(st, 41, &in) == 0);
	CHECK(wtg_store_set_stream(st, 41, "", 65536, false) == 0);
	/* slot 2 gets two rows, with slot 1's and another file's between */
	CHECK(wtg_store_journal_put(st, 40, "", 2, 10, a, 100, NULL) == 0);
	CHECK(wtg_store_journal_put(st, 40, "", 1, 0, b, 100, t1) == 0);
	CHECK(wtg_store_journal_put(st, 41, "", 0, 0, a, 100, t1) == 0);
	CHECK(wtg_store_journal_put(st, 40, "", 2, 20, b, 50, t2) == 0);
	CHECK(wtg_store_journal_put(st, 40, "", 3, 0, a, 1, NULL) == 0);
	CHECK(wtg_store_journal_put(st, 40, "", 1, 65536, a, 1, NULL) == -EINVAL);
	CHECK(wtg_store_commit(st) == 0);
	size_t n = journal_rows(st, &rows);
	CHECK(n == 5);
	if (n == 5) {
		CHECK(rows[0].ino == 40 && rows[0].index == 1 && rows[0].timed &&
		      rows[0].mtime == 7 && rows[0].ctime == 8 && rows[0].data[0] == 'b');
		CHECK(rows[1].index == 2 && rows[1].off == 10 && !rows[1].timed);
		CHECK(rows[2].index == 2 && rows[2].off == 20 && rows[2].len == 50 &&
		      rows[2].timed && rows[2].mtime == 9 && rows[1].seq < rows[2].seq);
		CHECK(rows[0].seq < rows[2].seq && rows[2].seq < rows[3].seq);
		CHECK(rows[4].ino == 41 && rows[4].timed);
	}
	wtg_store_journal_free(rows, n);
	/* recording an inode makes its rows' times stale, not the others' */
	CHECK(wtg_store_set_inode(st, 40, &in) == 0);
	n = journal_rows(st, &rows);
	for (size_t i = 0; i < n; i++)
		CHECK(rows[i].timed == (rows[i].ino == 41));
	wtg_store_journal_free(rows, n);
	/* a slot's rows drop alone; a truncation takes the slots past the end */
	CHECK(wtg_store_journal_drop(st, 40, "", 2) == 0);
	CHECK(wtg_store_set_stream(st, 40, "", 2 * 65536, false) == 0);
	CHECK(wtg_store_commit(st) == 0);
	n = journal_rows(st, &rows);
	CHECK(n == 2 && rows[0].ino == 40 && rows[0].index == 1 && rows[1].ino == 41);
	wtg_store_journal_free(rows, n);
	/* a drop rolled back: the rows are there again, and the store knows
	 * it; rows of a batch rolled back are gone */
	CHECK(wtg_store_journal_drop(st, 40, "", 1) == 0);
	CHECK(wtg_store_journal_put(st, 40, "", 0, 0, a, 100, NULL) == 0);
	wtg_store_rollback_batch(st);
	n = journal_rows(st, &rows);
	CHECK(n == 2);
	wtg_store_journal_free(rows, n);
	CHECK(wtg_store_journal_drop(st, 40, "", 1) == 0);
	CHECK(wtg_store_commit(st) == 0);
	n = journal_rows(st, &rows);
	CHECK(n == 1 && rows[0].ino == 41);
	wtg_store_journal_free(rows, n);
	/* a deleted inode takes its rows; the map is read again after a reopen */
	CHECK(wtg_store_journal_put(st, 40, "", 0, 0, b, 100, NULL) == 0);
	CHECK(wtg_store_close(st) == 0);
	CHECK(wtg_store_open(path, NULL, &st) == 0);
	CHECK(wtg_store_delete_inode(st, 41) == 0);
	CHECK(wtg_store_journal_drop(st, 40, "", 0) == 0);
	CHECK(wtg_store_commit(st) == 0);
	uint64_t count = 1;
	CHECK(wtg_store_journal_count(st, &count) == 0 && count == 0);
	CHECK(wtg_store_close(st) == 0);
}

int main(int argc, char **argv)
{
	snprintf(dir, sizeof(dir), "/tmp/wtgfs-unit-store-XXXXXX");
	if (!mkdtemp(dir))
		return 2;
	RUN(create_and_identity);
	RUN(refuses_bad_files);
	RUN(chunks);
	RUN(base_metadata);
	RUN(layers_and_extents);
	RUN(inodes_and_names);
	RUN(format1_dos_names);
	RUN(journal);
	RUN(rollback_undo_squash_gc);
	RUN(versions_and_changes);
	RUN(verify_finds_damage);
	RUN(second_writer_refused);
	RUN(kill_9);
	RUN(disk_full);
	RUN(space_released);
	/* seeds for the fuzz smoke test: WTGFS_KEEP_DELTAS=DIR keeps them */
	const char *keep = getenv("WTGFS_KEEP_DELTAS");
	char cmd[512];
	if (keep)
		snprintf(cmd, sizeof(cmd),
			 "cp '%s'/layers.delta '%s'/inodes.delta '%s'/chunks.delta '%s'/ && "
			 "rm -rf '%s'",
			 dir, dir, dir, keep, dir);
	else
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 2;
	UNIT_EXIT();
}
