/*
 * A libFuzzer-compatible driver for any compiler: runs LLVMFuzzerTestOneInput
 * on each file named (or each file in each directory named), then, with
 * -runs=N, on N mutations of them (bit flips, byte changes, cuts, inserted
 * runs, copied blocks) from a seeded PRNG (-seed=S).  Built with sanitizers
 * this is the fuzz smoke test in `make check`; with clang, 'make fuzz'
 * links the same targets against real libFuzzer for long runs.  Under
 * ASan, -malloc_limit_mb=N aborts on any single allocation larger than N
 * MiB, as libFuzzer does: a size field of a few bytes must not make a
 * parser allocate gigabytes, even where a large malloc() would succeed.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define WTG_FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WTG_FUZZ_ASAN 1
#endif
#endif
#ifdef WTG_FUZZ_ASAN
/* sanitizer/allocator_interface.h (clang's; gcc's libasan has the call but
 * not the header) */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
					      void (*free_hook)(const volatile void *));
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__asan_default_options(void);

/* wimlib sizes some buffers from the file before checking them and handles
 * a failed malloc(); under ASan an absurd size must fail, not abort. */
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

#ifdef WTG_FUZZ_ASAN
static size_t malloc_limit;

static void malloc_hook(const volatile void *p, size_t size)
{
	static const char msg[] = "fuzz: an allocation over -malloc_limit_mb\n";

	(void)p;
	if (malloc_limit && size > malloc_limit) {
		/* (no stdio here: it may allocate) */
		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(1);
		abort();
	}
}

static void free_hook(const volatile void *p)
{
	(void)p;
}
#endif

struct input {
	uint8_t *data;
	size_t size;
};

static struct input *inputs;
static size_t ninputs;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void add_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;

	if (!f || fstat(fileno(f), &st) < 0) {
		fprintf(stderr, "fuzz: cannot read '%s'\n", path);
		exit(2);
	}
	uint8_t *d = malloc((size_t)st.st_size + 1);
	size_t n = fread(d, 1, (size_t)st.st_size, f);
	fclose(f);
	inputs = realloc(inputs, (ninputs + 1) * sizeof(*inputs));
	inputs[ninputs++] = (struct input){d, n};
}

static void add_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char p[4096];
			snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
			add_path(p);
		}
		if (d)
			closedir(d);
	} else {
		add_file(path);
	}
}

static size_t mutate(uint8_t *buf, size_t size, size_t cap)
{
	int rounds = 1 + (int)(next() % 4);
	for (int r = 0; r < rounds; r++) {
		size_t at = size ? (size_t)(next() % size) : 0;
		switch (next() % 6) {
		case 0: /* bit flip */
			if (size)
				buf[at] ^= (uint8_t)(1u << (next() % 8));
			break;
		case 1: /* interesting byte */
			if (size) {
				static const uint8_t v[] = {0, 1, 0x7F, 0x80, 0xFF, 0x10, 0x20};
				buf[at] = v[next() % sizeof(v)];
			}
			break;
		case 2: /* cut */
			size = at;
			break;
		case 3: /* insert a run */
			if (size < cap) {
				size_t n = 1 + (size_t)(next() % 64);
				if (n > cap - size)
					n = cap - size;
				memmove(buf + at + n, buf + at, size - at);
				memset(buf + at, (int)(next() & 0xFF), n);
				size += n;
			}
			break;
		case 4: /* copy a block within */
			if (size > 8) {
				size_t from = (size_t)(next() % size), n = 1 + (size_t)(next() % 8);
				if (from + n <= size && at + n <= size)
					memmove(buf + at, buf + from, n);
			}
			break;
		case 5: /* 32-bit value */
			if (size >= 4 && at <= size - 4) {
				uint32_t v = (uint32_t)next();
				if (next() % 2)
					v %= 0x10000;
				memcpy(buf + at, &v, 4);
			}
			break;
		}
	}
	return size;
}

int main(int argc, char **argv)
{
	long runs = 0;

	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "-runs=", 6))
			runs = atol(argv[i] + 6);
		else if (!strncmp(argv[i], "-seed=", 6))
			rng = strtoull(argv[i] + 6, NULL, 10) * 0x9E3779B97F4A7C15ull | 1;
		else if (!strncmp(argv[i], "-malloc_limit_mb=", 17)) {
#ifdef WTG_FUZZ_ASAN
			malloc_limit = (size_t)strtoull(argv[i] + 17, NULL, 10) << 20;
#endif
		} else if (argv[i][0] == '-')
			continue; /* libFuzzer flags we do not implement */
		else
			add_path(argv[i]);
	}
#ifdef WTG_FUZZ_ASAN
	if (malloc_limit)
		__sanitizer_install_malloc_and_free_hooks(malloc_hook, free_hook);
#endif
	for (size_t i = 0; i < ninputs; i++)
		LLVMFuzzerTestOneInput(inputs[i].data, inputs[i].size);
	if (runs && ninputs) {
		for (long r = 0; r < runs; r++) {
			struct input *in = &inputs[next() % ninputs];
			size_t cap = in->size + 256;
			uint8_t *buf = malloc(cap);
			memcpy(buf, in->data, in->size);
			size_t n = mutate(buf, in->size, cap);
			LLVMFuzzerTestOneInput(buf, n);
			free(buf);
		}
	}
	printf("fuzz: %zu inputs, %ld mutations, no crash\n", ninputs, runs);
	for (size_t i = 0; i < ninputs; i++)
		free(inputs[i].data);
	free(inputs);
	return 0;
}
