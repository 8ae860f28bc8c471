/*
 * A WIM image's counts as bytes (wtgfs/census.h): le64/le32 fields, then
 * the refs and the groups, then a SHA-256 of all before it.
 *
 * This file is part of wtgfs, licensed under the GNU GPL version 3 or later.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/census.h"
#include "wtgfs/hash.h"
#include "wtgfs/le.h"

#define MAGIC "WTGCENS1"
#define HEAD_LEN (8 + 20 + 5 * 8 + 4 + 4)
#define REF_LEN (20 + 4 + 4)
#define GROUP_LEN (8 + 20 + 4 + 8)

static size_t encoded_len(size_t nrefs, size_t ngroups)
{
	return HEAD_LEN + nrefs * REF_LEN + ngroups * GROUP_LEN + WTG_SHA256_LEN;
}

int wtg_census_encode(const struct wtg_census *c, uint8_t **out, size_t *len)
{
	if (c->nrefs > UINT32_MAX || c->ngroups > UINT32_MAX)
		return -ENOMEM;
	size_t n = encoded_len(c->nrefs, c->ngroups);
	uint8_t *b = malloc(n), *p = b;

	if (!b)
		return -ENOMEM;
	memcpy(p, MAGIC, 8);
	memcpy(p + 8, c->meta_sha1, 20);
	p += 28;
	const uint64_t v[5] = {c->files, c->dirs, c->total, c->hardlink, c->max_link};
	for (int i = 0; i < 5; i++, p += 8)
		wtg_put_le64(p, v[i]);
	wtg_put_le32(p, (uint32_t)c->nrefs);
	wtg_put_le32(p + 4, (uint32_t)c->ngroups);
	p += 8;
	for (size_t i = 0; i < c->nrefs; i++, p += REF_LEN) {
		memcpy(p, c->refs[i].sha1, 20);
		wtg_put_le32(p + 20, c->refs[i].count);
		wtg_put_le32(p + 24, c->refs[i].at);
	}
	for (size_t i = 0; i < c->ngroups; i++, p += GROUP_LEN) {
		wtg_put_le64(p, c->groups[i].id);
		memcpy(p + 8, c->groups[i].sha1, 20);
		wtg_put_le32(p + 28, c->groups[i].names);
		wtg_put_le64(p + 32, c->groups[i].size);
	}
	wtg_sha256(b, (size_t)(p - b), p);
	*out = b;
	*len = n;
	return 0;
}

static int group_cmp(uint64_t id, const uint8_t *sha1, const struct wtg_census_group *g)
{
	if (id != g->id)
		return id < g->id ? -1 : 1;
	return memcmp(sha1, g->sha1, 20);
}

int wtg_census_decode(const void *bytes, size_t len, struct wtg_census *c)
{
	const uint8_t *b = bytes, *p;
	uint8_t sum[WTG_SHA256_LEN];

	memset(c, 0, sizeof(*c));
	if (len < encoded_len(0, 0) || memcmp(b, MAGIC, 8))
		return -EINVAL;
	p = b + HEAD_LEN - 8;
	size_t nrefs = wtg_get_le32(p), ngroups = wtg_get_le32(p + 4);
	if (len != encoded_len(nrefs, ngroups))
		return -EINVAL;
	wtg_sha256(b, len - WTG_SHA256_LEN, sum);
	if (memcmp(sum, b + len - WTG_SHA256_LEN, WTG_SHA256_LEN))
		return -EINVAL;
	memcpy(c->meta_sha1, b + 8, 20);
	p = b + 28;
	uint64_t *v[5] = {&c->files, &c->dirs, &c->total, &c->hardlink, &c->max_link};
	for (int i = 0; i < 5; i++, p += 8)
		*v[i] = wtg_get_le64(p);
	p += 8;
	c->refs = malloc((nrefs ? nrefs : 1) * sizeof(*c->refs));
	c->groups = malloc((ngroups ? ngroups : 1) * sizeof(*c->groups));
	if (!c->refs || !c->groups) {
		wtg_census_free(c);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nrefs; i++, p += REF_LEN) {
		struct wtg_census_ref *r = &c->refs[c->nrefs++];
		memcpy(r->sha1, p, 20);
		r->count = wtg_get_le32(p + 20);
		r->at = wtg_get_le32(p + 24);
		if (!r->count)
			goto bad;
	}
	for (size_t i = 0; i < ngroups; i++, p += GROUP_LEN) {
		struct wtg_census_group *g = &c->groups[c->ngroups];
		g->id = wtg_get_le64(p);
		memcpy(g->sha1, p + 8, 20);
		g->names = wtg_get_le32(p + 28);
		g->size = wtg_get_le64(p + 32);
		/* (in order, each once: found by a binary search) */
		if (!g->names || !g->id || (c->ngroups && group_cmp(g->id, g->sha1, g - 1) <= 0))
			goto bad;
		c->ngroups++;
	}
	return 0;
bad:
	wtg_census_free(c);
	return -EINVAL;
}

void wtg_census_free(struct wtg_census *c)
{
	free(c->refs);
	free(c->groups);
	memset(c, 0, sizeof(*c));
}

const struct wtg_census_group *wtg_census_group(const struct wtg_census *c, uint64_t id,
						const uint8_t sha1[20])
{
	size_t lo = 0, hi = c->ngroups;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int k = group_cmp(id, sha1, &c->groups[mid]);
		if (!k)
			return &c->groups[mid];
		if (k < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}
