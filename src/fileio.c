/*
 * Whole reads and writes: see include/wtgfs/fileio.h.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "wtgfs/fileio.h"

/* Reads what the file holds; the count read in *done. */
static int pread_until_end(int fd, void *buf, size_t size, uint64_t off, size_t *done)
{
	*done = 0;
	while (*done < size) {
		ssize_t n = pread(fd, (char *)buf + *done, size - *done, (off_t)(off + *done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		*done += (size_t)n;
	}
	return 0;
}

int wtg_pread_all(int fd, void *buf, size_t size, uint64_t off)
{
	size_t done;
	int ret = pread_until_end(fd, buf, size, off, &done);

	return ret ? ret : done < size ? -EIO : 0;
}

int wtg_pread_or_zero(int fd, void *buf, size_t size, uint64_t off)
{
	size_t done;
	int ret = pread_until_end(fd, buf, size, off, &done);

	if (!ret)
		memset((char *)buf + done, 0, size - done);
	return ret;
}

int wtg_read_all(int fd, void *buf, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = read(fd, (char *)buf + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

int wtg_pwrite_all(int fd, const void *buf, size_t size, uint64_t off)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = pwrite(fd, (const char *)buf + done, size - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}
