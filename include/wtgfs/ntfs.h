/*
 * NTFS facts shared by every module: attribute flags, reparse tags, the time
 * base, and the layout of reparse buffers.  Pure definitions and small pure
 * helpers; no I/O.
 */
#ifndef WTGFS_NTFS_H
#define WTGFS_NTFS_H

#include <stdint.h>
#include <time.h>

#define NTFS_ATTR_READONLY 0x00000001u
#define NTFS_ATTR_HIDDEN 0x00000002u
#define NTFS_ATTR_SYSTEM 0x00000004u
#define NTFS_ATTR_DIRECTORY 0x00000010u
#define NTFS_ATTR_ARCHIVE 0x00000020u
#define NTFS_ATTR_NORMAL 0x00000080u
#define NTFS_ATTR_SPARSE 0x00000200u
#define NTFS_ATTR_REPARSE_POINT 0x00000400u
#define NTFS_ATTR_COMPRESSED 0x00000800u
#define NTFS_ATTR_ENCRYPTED 0x00004000u
#define NTFS_ATTR_RECALL_ON_OPEN 0x00040000u

#define NTFS_REPARSE_TAG_MOUNT_POINT 0xA0000003u
#define NTFS_REPARSE_TAG_SYMLINK 0xA000000Cu
#define NTFS_REPARSE_TAG_WOF 0x80000017u
/* WSL's special files: an empty reparse point of one of these tags, the
 * mode in the EA $LXMOD and, for devices, the number in $LXDEV. */
#define NTFS_REPARSE_TAG_AF_UNIX 0x80000023u
#define NTFS_REPARSE_TAG_LX_FIFO 0x80000024u
#define NTFS_REPARSE_TAG_LX_CHR 0x80000025u
#define NTFS_REPARSE_TAG_LX_BLK 0x80000026u
/* WSL's symbolic link: a le32 version (2), then the POSIX target in UTF-8,
 * byte for byte as symlink(2) was given it. */
#define NTFS_REPARSE_TAG_LX_SYMLINK 0xA000001Du
#define NTFS_LX_SYMLINK_VERSION 2u
#define NTFS_SYMLINK_FLAG_RELATIVE 0x1u

/* A reparse buffer starts with this header; the tag's own data follows. */
struct ntfs_reparse_header {
	uint32_t tag;	   /* 0x00 le32 */
	uint16_t data_len; /* 0x04 le16: bytes after this 8-byte header */
	uint16_t reserved; /* 0x06 */
} __attribute__((packed));
_Static_assert(sizeof(struct ntfs_reparse_header) == 8, "reparse header is 8 bytes");

/* Symlink and mount point data after the header (mount points lack flags). */
struct ntfs_link_reparse {
	uint16_t subst_offset; /* 0x00 le16, into the path buffer */
	uint16_t subst_len;    /* 0x02 le16, bytes */
	uint16_t print_offset; /* 0x04 le16 */
	uint16_t print_len;    /* 0x06 le16 */
			       /* symlinks only: le32 flags at 0x08, then the path buffer */
} __attribute__((packed));
_Static_assert(sizeof(struct ntfs_link_reparse) == 8, "link reparse is 8 bytes");

/* 100 ns intervals between 1601-01-01 and 1970-01-01. */
#define NTFS_EPOCH_OFFSET 116444736000000000LL

static inline int64_t ntfs_time_from_unix(int64_t sec, uint32_t nsec)
{
	return sec * 10000000LL + nsec / 100 + NTFS_EPOCH_OFFSET;
}

static inline struct timespec ntfs_time_to_timespec(int64_t t)
{
	int64_t u = t - NTFS_EPOCH_OFFSET;
	int64_t sec = u / 10000000LL, rem = u % 10000000LL;
	if (rem < 0) {
		rem += 10000000LL;
		sec--;
	}
	return (struct timespec){.tv_sec = sec, .tv_nsec = rem * 100};
}

/* Little-endian fields of NTFS structures (reparse buffers, security
 * descriptors) at any alignment. */
static inline uint16_t ntfs_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t ntfs_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void ntfs_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void ntfs_put_le32(uint8_t *p, uint32_t v)
{
	ntfs_put_le16(p, (uint16_t)v);
	ntfs_put_le16(p + 2, (uint16_t)(v >> 16));
}

#endif
