/*
 * Little-endian integers in byte buffers (on-disk formats: WIM, GPT/MBR,
 * security descriptors, BCD), unaligned-safe.
 */
#ifndef WTGFS_LE_H
#define WTGFS_LE_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t wtg_get_le16(const void *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return le16toh(v);
}

static inline uint32_t wtg_get_le32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t wtg_get_le64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline void wtg_put_le16(void *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static inline void wtg_put_le32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline void wtg_put_le64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

#endif
