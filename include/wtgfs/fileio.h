/*
 * Whole reads and writes of a file descriptor: read, pread and pwrite go on
 * after a short count or EINTR until every byte is done.
 */
#ifndef WTGFS_FILEIO_H
#define WTGFS_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Reads @size bytes at @off: 0, -errno, or -EIO when the file ends first. */
int wtg_pread_all(int fd, void *buf, size_t size, uint64_t off);
/* The same, but what lies past the file's end reads as zeros (a sparse
 * image file not yet grown to its full size). */
int wtg_pread_or_zero(int fd, void *buf, size_t size, uint64_t off);
/* Reads @size bytes of a stream (a pipe): 0, -errno, or -EIO when it ends
 * first. */
int wtg_read_all(int fd, void *buf, size_t size);
/* Writes @size bytes at @off: 0 or -errno. */
int wtg_pwrite_all(int fd, const void *buf, size_t size, uint64_t off);

#endif
