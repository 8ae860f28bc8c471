/*
 * Fuzz target: the input is a WIM image's uncompressed metadata resource.
 * wim_meta_parse must refuse it with -EINVAL (or -ENOMEM) or accept it; an
 * accepted one must write back as the same bytes, walk to as many entries
 * as it holds, and, after a few changes (a time set in place, a longer DOS
 * name, a new file and directory, a removal, a rename, a new security
 * descriptor), write bytes that parse again to the tree the changes make.
 * Any disagreement traps.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/wim_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	size_t n;
	uint64_t sum;
	char first_file[256], first_dir[256];
};

static int visit(void *arg, const char *path, const struct wim_meta_entry *e)
{
	struct seen *s = arg;
	size_t len = strlen(path);

	s->n++;
	/* touch every fact, so that a pointer past the input shows */
	s->sum += e->attributes + e->creation_time + strlen(e->name) + e->tagged_len;
	if (e->dos_name)
		s->sum += strlen(e->dos_name);
	for (size_t i = 0; i < e->object_id_len; i++)
		s->sum += e->object_id[i];
	for (size_t i = 0; i < e->tagged_len; i++)
		s->sum += e->tagged[i];
	for (size_t i = 0; i < e->nstreams; i++)
		s->sum += strlen(e->streams[i].name) + e->streams[i].hash[0];
	bool dir = (e->attributes & 0x410) == 0x10;
	if (*path && len < sizeof(s->first_file)) {
		if (dir && !s->first_dir[0])
			memcpy(s->first_dir, path, len + 1);
		if (!dir && !s->first_file[0])
			memcpy(s->first_file, path, len + 1);
	}
	return 0;
}

static int count_under(void *arg, const char *path, const struct wim_meta_entry *e)
{
	const char *top = ((const char **)arg)[0];
	size_t *n = (size_t *)((void **)arg)[1], tl = strlen(top);

	(void)e;
	if (!strncmp(path, top, tl) && (path[tl] == '/' || !path[tl]))
		(*n)++;
	return 0;
}

static int sum_change(void *arg, const struct wim_meta_entry *e, int sign)
{
	(void)e;
	*(long *)arg += sign;
	return 0;
}

static void change(struct wim_meta *m, const struct seen *s, size_t *expect)
{
	struct wim_meta_entry e, n;

	if (s->first_file[0] && wim_meta_get(m, s->first_file, &e) == 0) {
		e.last_write_time ^= 0x5555;
		if (wim_meta_set(m, s->first_file, &e))
			__builtin_trap();
		e.dos_name = "FUZZED~1.TXT";
		int ret = wim_meta_set(m, s->first_file, &e);
		if (ret && ret != -EINVAL)
			__builtin_trap();
	}
	wim_meta_entry_init(&n);
	n.name = "fuzz \xed\xb0\x80 new";
	n.attributes = 0x10;
	if (wim_meta_add(m, "", &n) == 0) {
		(*expect)++;
		n.name = "inner";
		n.attributes = 0x20;
		n.hard_link_group_id = wim_meta_max_link_group(m) + 1;
		if (wim_meta_add(m, "fuzz \xed\xb0\x80 new", &n))
			__builtin_trap();
		(*expect)++;
	}
	if (s->first_dir[0] && strncmp(s->first_dir, "fuzz ", 5)) {
		size_t gone = 0;
		const void *arg[2] = {s->first_dir, &gone};
		wim_meta_walk(m, count_under, arg);
		if (wim_meta_rename(m, s->first_dir, "fuzz \xed\xb0\x80 new/moved") == 0 &&
		    wim_meta_remove(m, "fuzz \xed\xb0\x80 new/moved") == 0)
			*expect -= gone;
	}
	static const uint8_t sd[20] = {1, 0, 4, 0x80};
	int id = wim_meta_sd_add(m, sd, sizeof(sd));
	if (id < 0 || wim_meta_get(m, "", &e))
		__builtin_trap();
	e.security_id = id;
	if (wim_meta_set(m, "", &e))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact copy, so that a read past the end is caught */
	uint8_t *copy = malloc(size ? size : 1);
	struct wim_meta *m = NULL, *m2 = NULL;
	struct seen s = {0}, s2 = {0};
	void *out = NULL;
	size_t olen, expect;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	int ret = wim_meta_parse(copy, size, &m);
	/* a lazy parse read whole finds what a whole parse finds */
	struct wim_meta *ml = NULL;
	int lret = wim_meta_parse_lazy(copy, size, &ml);
	if (!lret)
		lret = wim_meta_walk(ml, visit, &s2);
	if ((ret == 0) != (lret == 0) && ret != -ENOMEM && lret != -ENOMEM)
		__builtin_trap();
	wim_meta_free(ml);
	s2 = (struct seen){0};
	free(copy);
	if (ret) {
		if (m || (ret != -EINVAL && ret != -ENOMEM))
			__builtin_trap();
		return 0;
	}
	if (wim_meta_write(m, &out, &olen) || olen < size || memcmp(out, data, size))
		__builtin_trap();
	free(out);
	if (wim_meta_walk(m, visit, &s))
		__builtin_trap();
	expect = s.n;
	change(m, &s, &expect);
	/* what changed, named: as many new dentries as the count says */
	long delta = 0;
	if (wim_meta_each_change(m, sum_change, &delta) || (long)expect - (long)s.n != delta)
		__builtin_trap();
	if (wim_meta_write(m, &out, &olen))
		__builtin_trap();
	if (wim_meta_parse(out, olen, &m2) || wim_meta_walk(m2, visit, &s2) || s2.n != expect)
		__builtin_trap();
	free(out);
	wim_meta_free(m2);
	/* the same laid out for an appender of small chunks (so that lists of
	 * a small input span them): the same tree, a map into the old chunks */
	uint32_t *from = NULL;
	size_t nfrom, cs = 256;
	struct seen s3 = {0};
	m2 = NULL;
	if (wim_meta_write_chunked(m, (uint32_t)cs, &out, &olen, &from, &nfrom) ||
	    nfrom != (olen + cs - 1) / cs)
		__builtin_trap();
	for (size_t k = 0; k < nfrom; k++)
		if (from[k] != k && from[k] >= (size + cs - 1) / cs)
			__builtin_trap();
	if (wim_meta_parse(out, olen, &m2) || wim_meta_walk(m2, visit, &s3) || s3.n != expect)
		__builtin_trap();
	free(out);
	free(from);
	wim_meta_free(m2);
	wim_meta_free(m);
	return 0;
}
