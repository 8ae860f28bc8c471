/*
 * The whole flush, in the order that keeps an interrupted one harmless:
 * check the image can boot, plan the table in memory, check the target is
 * still the one confirmed, wipe every old signature, make and fill the NTFS
 * volume, apply the WTG settings, build the ESP, sync, and only then write
 * the partition table, sync again and flush the device's cache.  Until the
 * table is written the disk has none, so nothing boots from it or mounts
 * it, and running the flush again starts from scratch.
 *
 * The view is only read: the delta and the base are never written.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flush_int.h"
#include "wtgfs/fileio.h"
#include "wtgfs/log.h"
#include "wtgfs/ntfs_write.h"
#include "wtgfs/view.h"

#define MiB (1ull << 20)
#define SYSTEM_HIVE "Windows/System32/config/SYSTEM"
#define UNATTEND "Windows/Panther/unattend.xml"
#define UNATTEND_MAX (16u << 20)

/* Temporary files, removed by wtg_flush_interrupted() from a signal
 * handler too (unlink is async-signal-safe). */
static char tmp_paths[3][4096];
static volatile sig_atomic_t tmp_used[3];

static int make_tmp(int slot, uint64_t size)
{
	const char *dir = getenv("TMPDIR");
	char path[sizeof(tmp_paths[0])];

	if (!dir || !*dir || strlen(dir) > sizeof(path) - 32)
		dir = "/tmp";
	snprintf(path, sizeof(path), "%s/wtgfs-flush.XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0) {
		int err = errno;
		wtg_error("cannot make a temporary file in '%s': %s", path, strerror(err));
		return -err;
	}
	memcpy(tmp_paths[slot], path, sizeof(path));
	tmp_used[slot] = 1;
	if (size && ftruncate(fd, (off_t)size) < 0) {
		int err = errno;
		wtg_error("cannot make a temporary file of %" PRIu64 " bytes in '%s': %s", size, path,
			  strerror(err));
		close(fd);
		return -err;
	}
	return fd;
}

static void drop_tmp(int slot)
{
	if (tmp_used[slot]) {
		tmp_used[slot] = 0;
		unlink(tmp_paths[slot]);
	}
}

void wtg_flush_interrupted(void)
{
	for (int i = 0; i < 3; i++)
		if (tmp_used[i])
			unlink(tmp_paths[i]);
}

/* The written extents of the sparse file @from (@size bytes) to @off of
 * @to: what mkntfs or mkfs.fat wrote, nothing else. */
static int copy_extents(int from, int to, uint64_t off, uint64_t size)
{
	uint8_t *buf = malloc(MiB);
	off_t pos = 0;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while ((uint64_t)pos < size) {
		off_t data = lseek(from, pos, SEEK_DATA);
		if (data < 0)
			break; /* ENXIO: only a hole is left */
		off_t hole = lseek(from, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		for (off_t p = data; p < hole;) {
			size_t n = (size_t)(hole - p) < MiB ? (size_t)(hole - p) : MiB;
			ssize_t got = pread(from, buf, n, p);
			if (got <= 0) {
				ret = got < 0 ? -errno : -EIO;
				goto out;
			}
			if ((ret = wtg_pwrite_all(to, buf, (size_t)got, off + (uint64_t)p)))
				goto out;
			p += got;
		}
		pos = hole;
	}
out:
	free(buf);
	return ret;
}

struct run {
	struct wtg_view *view;
	struct wtg_flush_target *t;
	const struct wtg_flush_options *opt;
	wtg_progress_fn progress;
	void *ctx;
	struct wtg_progress p;
	struct wtg_flush_report *rep;
	const char *changed[4];
	int nchanged;
};

static void phase(struct run *r, const char *name)
{
	r->p.phase = name;
	if (r->progress)
		r->progress(r->ctx, &r->p);
	wtg_progress_test_kill(&r->p, true);
}

static void tree_progress(void *ctx, const struct wtg_ntfs_write_stats *done,
			  const struct wtg_ntfs_write_stats *total)
{
	struct run *r = ctx;

	wtg_progress_of_tree(&r->p, done, total);
	if (r->progress)
		r->progress(r->ctx, &r->p);
	wtg_progress_test_kill(&r->p, false);
}

static int make_ntfs(struct run *r, const struct wtg_flush_layout *layout)
{
	const struct wtg_flush_part *w = &layout->windows;
	struct wtg_ntfs_geometry geo = {
	    .sector_size = layout->sector_size,
	    .hidden_sectors = w->offset / layout->sector_size,
	    .label = r->opt->label ? r->opt->label : "Windows",
	};
	int fd = make_tmp(0, w->size), ret;

	if (fd < 0)
		return fd;
	ret = wtg_ntfs_mkfs(tmp_paths[0], &geo);
	if (!ret && (ret = copy_extents(fd, r->t->fd, w->offset, w->size)))
		wtg_error("cannot copy the new NTFS volume into '%s': %s", r->t->path,
			  strerror(-ret));
	close(fd);
	drop_tmp(0);
	return ret;
}

/* SanPolicy in the offline SYSTEM hive of the new volume. */
static int tweak_system(struct run *r, struct _ntfs_volume *vol)
{
	void *data;
	size_t len;
	int ret = wtg_ntfs_get_file(vol, SYSTEM_HIVE, &data, &len);

	if (ret == -ENOENT) {
		wtg_flush_report_add(r->rep, "SYSTEM: no Windows\\System32\\config\\SYSTEM hive, "
					     "SanPolicy not set");
		return 0;
	}
	if (ret) {
		wtg_error("cannot read the SYSTEM hive of the new volume: %s", strerror(-ret));
		return ret;
	}
	int fd = make_tmp(1, 0);
	if (fd < 0) {
		free(data);
		return fd;
	}
	ret = wtg_pwrite_all(fd, data, len, 0);
	free(data);
	data = NULL;
	if (!ret)
		ret = wtg_flush_tweak_system_hive(tmp_paths[1], r->rep);
	struct stat st;
	if (!ret && fstat(fd, &st) < 0)
		ret = -errno;
	if (!ret && !(data = malloc((size_t)st.st_size ? (size_t)st.st_size : 1)))
		ret = -ENOMEM;
	if (!ret && pread(fd, data, (size_t)st.st_size, 0) != st.st_size)
		ret = -EIO;
	if (!ret)
		ret = wtg_ntfs_put_file(vol, SYSTEM_HIVE, data, (size_t)st.st_size, NULL);
	if (!ret)
		r->changed[r->nchanged++] = SYSTEM_HIVE;
	free(data);
	close(fd);
	drop_tmp(1);
	return ret;
}

static int place_unattend(struct run *r, struct _ntfs_volume *vol)
{
	const char *path = r->opt->unattend;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	struct stat st;
	void *data = NULL;
	bool created = false;

	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		wtg_error("cannot read '%s': %s", path, strerror(-ret));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > UNATTEND_MAX) {
		wtg_error("cannot use '%s' as unattend.xml: not a regular file of at most 16 MiB",
			  path);
		ret = -EINVAL;
		goto out;
	}
	data = malloc((size_t)st.st_size + 1);
	if (!data) {
		ret = -ENOMEM;
		goto out;
	}
	if (pread(fd, data, (size_t)st.st_size, 0) != st.st_size) {
		ret = -EIO;
		wtg_error("cannot read '%s': short read", path);
		goto out;
	}
	ret = wtg_ntfs_put_file(vol, UNATTEND, data, (size_t)st.st_size, &created);
	if (!ret) {
		r->changed[r->nchanged++] = UNATTEND;
		wtg_flush_report_add(r->rep, "unattend: '%s' %s Windows\\Panther\\unattend.xml", path,
				     created ? "placed as" : "replaces");
	}
out:
	if (fd >= 0)
		close(fd);
	free(data);
	return ret;
}

static int write_windows(struct run *r, const struct wtg_flush_layout *layout)
{
	const struct wtg_flush_part *w = &layout->windows;
	struct _ntfs_volume *vol;
	char what[4200];
	int ret;

	phase(r, "ntfs");
	if ((ret = make_ntfs(r, layout)))
		return ret;
	snprintf(what, sizeof(what), "%s:%u", r->t->path, w->number);
	if ((ret = wtg_ntfs_mount_fd(r->t->fd, w->offset, w->size, what, &vol)))
		return ret;
	phase(r, "tree");
	/* the display throttles itself */
	struct wtg_ntfs_write_options wo = {.progress = tree_progress, .ctx = r, .interval_ms = 1};
	struct wtg_ntfs_write_stats st;
	ret = wtg_ntfs_write_tree(r->view, vol, &wo, &st);
	if (!ret && !r->opt->no_wtg_tweaks)
		ret = tweak_system(r, vol);
	if (!ret && r->opt->unattend)
		ret = place_unattend(r, vol);
	int uret = wtg_ntfs_umount(vol);
	return ret ? ret : uret;
}

static int write_esp(struct run *r, const struct wtg_flush_layout *layout)
{
	const struct wtg_flush_part *e = &layout->esp;
	int fd = make_tmp(2, e->size), ret;

	phase(r, "esp");
	if (fd < 0)
		return fd;
	ret = wtg_flush_build_esp(r->view, layout, r->opt, tmp_paths[2], r->rep);
	if (!ret && (ret = copy_extents(fd, r->t->fd, e->offset, e->size)))
		wtg_error("cannot copy the ESP into '%s': %s", r->t->path, strerror(-ret));
	close(fd);
	drop_tmp(2);
	return ret;
}

static int sync_target(struct wtg_flush_target *t)
{
	if (fsync(t->fd) < 0) {
		wtg_error("cannot sync '%s': %s", t->path, strerror(errno));
		return -errno;
	}
	/* drop the device's buffers so what is read next comes from the disk */
	if (t->device && ioctl(t->fd, BLKFLSBUF, 0) < 0 && errno != ENOTTY) {
		wtg_error("cannot flush the buffers of '%s': %s", t->path, strerror(errno));
		return -errno;
	}
	return 0;
}

int wtg_flush_run(struct wtg_view *view, struct wtg_flush_target *t,
		  const struct wtg_flush_options *opt, wtg_progress_fn progress, void *ctx,
		  struct wtg_flush_layout *layout_ret, struct wtg_flush_report *rep)
{
	struct run r = {.view = view, .t = t, .opt = opt, .progress = progress, .ctx = ctx,
			.rep = rep};
	struct wtg_flush_layout layout;
	struct flush_table *table = NULL;
	int ret;

	if ((ret = wtg_flush_check_boot(view)))
		return ret;
	if ((ret = flush_table_plan(t, opt, &table, &layout)))
		return ret;
	if ((ret = wtg_flush_check_esp_size(layout.esp.size, layout.sector_size)))
		goto out;
	if ((ret = flush_target_recheck(t)))
		goto out;
	phase(&r, "wipe");
	if ((ret = flush_wipe(t)))
		goto out;
	if ((ret = write_windows(&r, &layout)))
		goto out;
	if ((ret = write_esp(&r, &layout)))
		goto out;
	/* everything the table will point at is on the disk before the table */
	phase(&r, "sync");
	if ((ret = sync_target(t)))
		goto out;
	phase(&r, "table");
	if ((ret = flush_table_write(table)))
		goto out;
	phase(&r, "sync");
	if ((ret = sync_target(t)))
		goto out;
	if (opt->verify) {
		phase(&r, "verify");
		r.changed[r.nchanged] = NULL;
		ret = flush_verify(view, t, &layout, r.changed);
		if (ret)
			goto out;
	}
	if (layout_ret)
		*layout_ret = layout;
out:
	flush_table_free(table);
	return ret;
}
