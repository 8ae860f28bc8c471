/*
 * Whole reads and writes: see include/wtgfs/fileio.h.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "wtgfs/fileio.h"

enum io { IO_READ, IO_PREAD, IO_PWRITE };

/* Goes on until @size bytes are done or the file gives no more (a count of
 * 0): 0 or -errno, the count done in *done. */
static int io_all(enum io op, int fd, void *buf, size_t size, uint64_t off, size_t *done)
{
	*done = 0;
	while (*done < size) {
		char *p = (char *)buf + *done;
		size_t left = size - *done;
		off_t at = (off_t)(off + *done);
		ssize_t n = op == IO_READ    ? read(fd, p, left)
			    : op == IO_PREAD ? pread(fd, p, left, at)
					     : pwrite(fd, p, left, at);
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

/* io_all with a short count as -EIO. */
static int io_whole(enum io op, int fd, void *buf, size_t size, uint64_t off)
{
	size_t done;
	int ret = io_all(op, fd, buf, size, off, &done);

	return ret ? ret : done < size ? -EIO : 0;
}

int wtg_pread_all(int fd, void *buf, size_t size, uint64_t off)
{
	return io_whole(IO_PREAD, fd, buf, size, off);
}

int wtg_pread_or_zero(int fd, void *buf, size_t size, uint64_t off)
{
	size_t done;
	int ret = io_all(IO_PREAD, fd, buf, size, off, &done);

	if (!ret)
		memset((char *)buf + done, 0, size - done);
	return ret;
}

int wtg_read_all(int fd, void *buf, size_t size)
{
	return io_whole(IO_READ, fd, buf, size, 0);
}

int wtg_pwrite_all(int fd, const void *buf, size_t size, uint64_t off)
{
	/* (written from, never into: the cast only shares the loop) */
	return io_whole(IO_PWRITE, fd, (void *)buf, size, off);
}
