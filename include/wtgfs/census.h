/*
 * The counts of one WIM image that a new image made from it needs: what
 * the XML says of it (files, directories, bytes and hard link bytes, as
 * wimlib counts them), its hard link groups, the highest group id, and
 * every blob it references with how often.  Taken from the base image at
 * init (a whole parse and count, src/export_append.c) and kept in the
 * delta (wtg_store_base_census_put), so that the raw append counts the new
 * image as the base's counts plus the change (wim_meta_each_change),
 * without reading the whole base tree.
 *
 * Its bytes are outside bytes (a delta file): decode checks them (length,
 * order, a SHA-256 of the rest), -EINVAL for any that do not hold.  Fuzzed
 * by fuzz/fuzz_delta.
 */
#ifndef WTGFS_CENSUS_H
#define WTGFS_CENSUS_H

#include <stddef.h>
#include <stdint.h>

struct wtg_census_ref {
	uint8_t sha1[20];
	uint32_t count; /* references from the image's dentries, >= 1 */
	uint32_t at;	/* the blob's index in the WIM's table when taken (a hint) */
};

/* A hard link group as wimlib counts one: a group id and the unnamed
 * data's SHA-1 (names link only where those agree), with its names and
 * the bytes of each (the same for every name: a census is not taken of an
 * image where they differ). */
struct wtg_census_group {
	uint64_t id;
	uint8_t sha1[20];
	uint32_t names; /* >= 1 */
	uint64_t size;
};

struct wtg_census {
	uint8_t meta_sha1[20]; /* the metadata resource it counts */
	uint64_t files, dirs, total, hardlink, max_link;
	struct wtg_census_ref *refs; /* in the order of `at` */
	size_t nrefs;
	struct wtg_census_group *groups; /* by (id, sha1), each once */
	size_t ngroups;
};

/* malloc'd bytes in *@out: 0 or -ENOMEM. */
int wtg_census_encode(const struct wtg_census *c, uint8_t **out, size_t *len);
/* 0, -EINVAL (bytes that are not a census), -ENOMEM; @c freed by
 * wtg_census_free either way. */
int wtg_census_decode(const void *bytes, size_t len, struct wtg_census *c);
void wtg_census_free(struct wtg_census *c);
/* The group (@id, @sha1) or NULL. */
const struct wtg_census_group *wtg_census_group(const struct wtg_census *c, uint64_t id,
						const uint8_t sha1[20]);

#endif
