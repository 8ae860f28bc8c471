/*
 * Cryptographic hashes (the one user of Nettle): SHA-1, which WIM files
 * use to name and check their blobs, and SHA-256, which names the delta's
 * chunks and security descriptors.
 */
#ifndef WTGFS_HASH_H
#define WTGFS_HASH_H

#include <stddef.h>
#include <stdint.h>

#define WTG_SHA1_LEN 20
#define WTG_SHA256_LEN 32

struct wtg_sha1;

/* NULL when out of memory. */
struct wtg_sha1 *wtg_sha1_new(void);
void wtg_sha1_update(struct wtg_sha1 *ctx, const void *data, size_t len);
/* Writes the digest and frees @ctx. */
void wtg_sha1_final(struct wtg_sha1 *ctx, uint8_t out[WTG_SHA1_LEN]);
void wtg_sha1_free(struct wtg_sha1 *ctx);

/* One-shot SHA-1 of @len bytes: 0, or -ENOMEM. */
int wtg_sha1(const void *data, size_t len, uint8_t out[WTG_SHA1_LEN]);

/* One-shot SHA-256 of @len bytes. */
void wtg_sha256(const void *data, size_t len, uint8_t out[WTG_SHA256_LEN]);

void wtg_hex(const uint8_t *in, size_t len, char *out);

#endif
