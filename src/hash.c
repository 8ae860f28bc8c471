/*
 * Hashes through OpenSSL's libcrypto (EVP interface).  The digests are
 * fetched from the provider once: EVP_sha1() and EVP_sha256() make every
 * call look the algorithm up again, which cost as much as hashing 64 KiB.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "wtgfs/hash.h"

static EVP_MD *sha1_md, *sha256_md;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_fetch(void)
{
	sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL);
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *md_sha1(void)
{
	pthread_once(&md_once, md_fetch);
	return sha1_md ? sha1_md : EVP_sha1();
}

static const EVP_MD *md_sha256(void)
{
	pthread_once(&md_once, md_fetch);
	return sha256_md ? sha256_md : EVP_sha256();
}

struct wtg_sha1 *wtg_sha1_new(void)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx && EVP_DigestInit_ex(ctx, md_sha1(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	return (struct wtg_sha1 *)ctx;
}

void wtg_sha1_update(struct wtg_sha1 *ctx, const void *data, size_t len)
{
	EVP_DigestUpdate((EVP_MD_CTX *)ctx, data, len);
}

void wtg_sha1_final(struct wtg_sha1 *ctx, uint8_t out[WTG_SHA1_LEN])
{
	unsigned n = WTG_SHA1_LEN;

	EVP_DigestFinal_ex((EVP_MD_CTX *)ctx, out, &n);
	EVP_MD_CTX_free((EVP_MD_CTX *)ctx);
}

void wtg_sha1_free(struct wtg_sha1 *ctx)
{
	EVP_MD_CTX_free((EVP_MD_CTX *)ctx);
}

int wtg_sha1(const void *data, size_t len, uint8_t out[WTG_SHA1_LEN])
{
	struct wtg_sha1 *h = wtg_sha1_new();

	if (!h)
		return -ENOMEM;
	wtg_sha1_update(h, data, len);
	wtg_sha1_final(h, out);
	return 0;
}

void wtg_sha256(const void *data, size_t len, uint8_t out[WTG_SHA256_LEN])
{
	unsigned n = WTG_SHA256_LEN;

	EVP_Digest(data, len, out, &n, md_sha256(), NULL);
}

void wtg_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}
