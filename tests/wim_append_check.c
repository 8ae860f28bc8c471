/*
 * wim_append_check: drives the raw WIM appender (src/wim_append.c) for
 * tests/wim-append.sh, with wimlib as the reader that says what the base
 * image references.
 *
 *   wim_append_check copy WIM IMAGE NAME [--boot] [--edit FILE SHA1 OFFSET]
 *     appends a copy of image IMAGE named NAME: its metadata resource's
 *     bytes (every chunk reused), every blob it references one reference
 *     more (counted with wimlib_iterate_dir_tree: per name, per stream, as
 *     wimlib counts them), the XML counts copied.  --edit also adds FILE's
 *     bytes with one byte flipped at OFFSET as a new blob whose chunks are
 *     reused from blob SHA1 (the file's original), and prints its SHA-1.
 *   wim_append_check hold WIM SECONDS
 *     holds the append lock of WIM for SECONDS (another program appending).
 *   wim_append_check info WIM
 *     prints what the appender reads (or why it would fall back).
 *   wim_append_check read WIM SHA1 FILE
 *     reads ranges of blob SHA1 (whole, chunk-aligned and not, one byte,
 *     across many chunks) with wim_append_read_blob and compares each with
 *     FILE, the blob's bytes; prints "read N ranges".
 * Prints "stats" lines; exits 1 on errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wimlib.h>

#include "wtgfs/wim_append.h"

struct refs {
	struct wim_append *wa;
	uint64_t streams, missing;
};

static int count_refs(const struct wimlib_dir_entry *de, void *arg)
{
	struct refs *r = arg;
	static const uint8_t zero[20];

	for (uint32_t i = 0; i <= de->num_named_streams; i++) {
		const struct wimlib_resource_entry *re = &de->streams[i].resource;
		if (!re->uncompressed_size || !memcmp(re->sha1_hash, zero, 20))
			continue;
		r->streams++;
		if (wim_append_ref(r->wa, re->sha1_hash, 1))
			r->missing++;
	}
	return 0;
}

static uint64_t property(WIMStruct *w, int image, const char *name)
{
	const char *s = wimlib_get_image_property(w, image, name);
	return s ? strtoull(s, NULL, 10) : 0;
}

struct filebuf {
	const uint8_t *p;
	uint64_t len, flip;
};

static int read_file(void *ctx, void *buf, size_t len, uint64_t off)
{
	const struct filebuf *f = ctx;

	memcpy(buf, f->p + off, len);
	if (f->flip >= off && f->flip < off + len)
		((uint8_t *)buf)[f->flip - off] ^= 0x5a;
	return 0;
}

static int hex_sha1(const char *s, uint8_t out[20])
{
	if (strlen(s) != 40)
		return -1;
	for (int i = 0; i < 20; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static void print_stats(struct wim_append *wa)
{
	struct wim_append_stats st;

	wim_append_get_stats(wa, &st);
	printf("stats blobs_new=%" PRIu64 " blobs_shared=%" PRIu64 " compressed=%" PRIu64
	       " raw=%" PRIu64 " reused=%" PRIu64 " meta_chunks=%" PRIu64
	       " meta_reused=%" PRIu64 " written=%" PRIu64 "\n",
	       st.blobs_new, st.blobs_shared, st.chunks_compressed, st.chunks_raw,
	       st.chunks_reused, st.meta_chunks, st.meta_chunks_reused, st.bytes_written);
}

static int copy(int argc, char **argv)
{
	const char *path = argv[2], *name = argv[4], *edit = NULL, *edit_sha = NULL;
	int image = atoi(argv[3]);
	uint64_t edit_off = 0;
	bool boot = false;
	WIMStruct *w;

	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "--boot")) {
			boot = true;
		} else if (!strcmp(argv[i], "--edit") && i + 3 < argc) {
			edit = argv[++i];
			edit_sha = argv[++i];
			edit_off = strtoull(argv[++i], NULL, 0);
		} else {
			fprintf(stderr, "wim_append_check: bad argument '%s'\n", argv[i]);
			return 2;
		}
	}
	wimlib_global_init(0);
	if (wimlib_open_wim(path, 0, &w)) {
		fprintf(stderr, "wim_append_check: wimlib cannot open '%s'\n", path);
		return 1;
	}
	struct wim_append *wa;
	int ret = wim_append_open(path, &wa);
	if (ret) {
		wimlib_free(w);
		return ret == -EBUSY ? 3 : 1;
	}
	if (wim_append_unsupported(wa)) {
		printf("unsupported: %s\n", wim_append_unsupported(wa));
		goto fail;
	}
	struct refs r = {.wa = wa};
	if (wimlib_iterate_dir_tree(w, image, "/", WIMLIB_ITERATE_DIR_TREE_FLAG_RECURSIVE,
				    count_refs, &r) || r.missing) {
		fprintf(stderr, "wim_append_check: cannot count the references of image %d\n",
			image);
		goto fail;
	}
	if (edit) {
		uint8_t base[20], sha1[20];
		int fd = open(edit, O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) || hex_sha1(edit_sha, base))
			goto fail;
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		close(fd);
		if (p == MAP_FAILED)
			goto fail;
		struct filebuf f = {.p = p, .len = (uint64_t)st.st_size, .flip = edit_off};
		ret = wim_append_add_blob(wa, f.len, read_file, &f, base, 1, sha1);
		munmap(p, (size_t)st.st_size);
		if (ret)
			goto fail;
		printf("edited ");
		for (int i = 0; i < 20; i++)
			printf("%02x", sha1[i]);
		printf("\n");
	}
	void *meta;
	size_t len;
	if (wim_append_read_metadata(wa, image, &meta, &len))
		goto fail;
	ret = wim_append_set_metadata(wa, meta, len, image);
	free(meta);
	if (ret)
		goto fail;
	struct wim_append_image img = {
	    .name = name,
	    .copy_of = image,
	    .dir_count = property(w, image, "DIRCOUNT"),
	    .file_count = property(w, image, "FILECOUNT"),
	    .total_bytes = property(w, image, "TOTALBYTES"),
	    .hard_link_bytes = property(w, image, "HARDLINKBYTES"),
	    .creation_time = wim_append_nt_now(),
	    .boot = boot,
	};
	img.last_modification_time = img.creation_time;
	if (wim_append_commit(wa, &img))
		goto fail;
	printf("references %" PRIu64 "\n", r.streams);
	print_stats(wa);
	wim_append_free(wa);
	wimlib_free(w);
	return 0;
fail:
	wim_append_free(wa);
	wimlib_free(w);
	return 1;
}

static int read_ranges(const char *path, const char *hex, const char *file)
{
	struct wim_append *wa;
	uint8_t sha1[20];
	struct stat st;
	int fd = open(file, O_RDONLY), ret = 1;

	if (fd < 0 || fstat(fd, &st) || hex_sha1(hex, sha1) || st.st_size < 2)
		return 1;
	uint64_t size = (uint64_t)st.st_size;
	uint8_t *want = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0), *got = malloc(size);
	close(fd);
	if (want == MAP_FAILED || !got || wim_append_open(path, &wa))
		return 1;
	struct wim_append_info info;
	wim_append_get_info(wa, &info);
	wim_append_set_threads(wa, 2);
	uint64_t cs = info.chunk_size;
	const uint64_t ranges[][2] = {
	    {0, size}, {1, size - 1}, {0, 1}, {size - 1, 1}, {cs - 1, 2}, {cs, cs},
	    {cs + 5, size - cs - 5}, {size / 3, size / 3}, {cs * 3 + 7, cs * 9 - 3},
	};
	size_t n = 0;
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		uint64_t off = ranges[i][0], len = ranges[i][1];
		if (off + len > size)
			continue;
		memset(got, 0xa5, len);
		if (wim_append_read_blob(wa, sha1, got, len, off) || memcmp(got, want + off, len)) {
			fprintf(stderr, "wim_append_check: bytes %" PRIu64 "+%" PRIu64 " differ\n", off,
				len);
			goto out;
		}
		n++;
	}
	uint8_t zero[20] = {0};
	if (wim_append_read_blob(wa, zero, got, 1, 0) != -ENOENT ||
	    wim_append_read_blob(wa, sha1, got, 2, size - 1) != -EINVAL) {
		fprintf(stderr, "wim_append_check: a bad read was not refused\n");
		goto out;
	}
	printf("read %zu ranges\n", n);
	ret = 0;
out:
	wim_append_free(wa);
	munmap(want, size);
	free(got);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "copy"))
		return copy(argc, argv);
	if (argc == 4 && !strcmp(argv[1], "hold")) {
		int fd = open(argv[2], O_RDWR);
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB)) {
			perror("wim_append_check: lock");
			return 1;
		}
		printf("locked\n");
		fflush(stdout);
		sleep((unsigned)atoi(argv[3]));
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "read"))
		return read_ranges(argv[2], argv[3], argv[4]);
	if (argc == 3 && !strcmp(argv[1], "info")) {
		struct wim_append *wa;
		int fd = open(argv[2], O_RDONLY);
		if (fd < 0 || wim_append_open_fd(fd, argv[2], &wa))
			return 1;
		struct wim_append_info info;
		wim_append_get_info(wa, &info);
		printf("images %" PRIu32 " chunk %" PRIu32 " ctype %d blobs %" PRIu64 "\n",
		       info.image_count, info.chunk_size, info.ctype, info.blobs);
		if (wim_append_unsupported(wa))
			printf("unsupported: %s\n", wim_append_unsupported(wa));
		wim_append_free(wa);
		close(fd);
		return 0;
	}
	fprintf(stderr, "usage: wim_append_check copy WIM IMAGE NAME [--boot] [--edit FILE SHA1 "
			"OFFSET] | hold WIM SECONDS | info WIM | read WIM SHA1 FILE\n");
	return 2;
}
