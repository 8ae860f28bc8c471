/*
 * The flush's target: a block device or an image file, checked before
 * anything is written.  A device that is mounted (itself or a partition),
 * holds the running system or swap, is held by another driver (device
 * mapper, md), or holds the files the flush reads is refused; so is a
 * target too small for the tree.  A device is opened O_EXCL, which the
 * kernel refuses while anything mounts or claims it, and checked again
 * (major:minor, size) right before the first write.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "flush_int.h"
#include "wtgfs/disk.h"
#include "wtgfs/fileio.h"
#include "wtgfs/log.h"
#include "wtgfs/tree.h"
#include "wtgfs/view.h"

#define MiB (1ull << 20)

/* ---- sizes ---- */

uint64_t flush_needed_size(struct wtg_view *view, const struct wtg_flush_options *opt)
{
	struct wtg_tree *tree = wtg_view_tree(view);
	uint64_t data = 0, records = 0;

	wtg_view_lock_shared(view);
	for (uint64_t i = 0; i < tree->ninodes; i++) {
		const struct wtg_inode *in = tree->inodes[i];
		if (!in || in->gone)
			continue;
		records++;
		if (in->dir)
			data += 4096 * (1 + in->dir->count / 32); /* its index */
		for (uint32_t s = 0; s < in->nstreams; s++)
			if (in->streams[s].size > 700)
				data += (in->streams[s].size + 4095) & ~4095ull;
	}
	wtg_view_unlock(view);
	/* MFT records (1 KiB each, with room to grow), $LogFile, $Secure and
	 * the other metadata files, then a tenth for what NTFS keeps free */
	uint64_t ntfs = data + records * 2048 + 80 * MiB;
	ntfs += ntfs / 10;
	uint64_t esp = opt->esp_size ? opt->esp_size
		       : opt->scheme == WTG_FLUSH_MBR ? WTG_FLUSH_ESP_SIZE_MBR
						      : WTG_FLUSH_ESP_SIZE_GPT;
	uint64_t msr = opt->scheme == WTG_FLUSH_GPT ? WTG_FLUSH_MSR_SIZE : 0;
	uint64_t total = MiB + ((esp + MiB - 1) & ~(MiB - 1)) + msr + ntfs + MiB;
	return (total + MiB - 1) & ~(MiB - 1);
}

static void human(uint64_t n, char *buf, size_t size)
{
	const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

/* ---- what the system uses ---- */

static int read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (!f)
		return -errno;
	if (!fgets(buf, (int)size, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	/* sysfs pads some values with spaces */
	for (size_t n = strlen(buf); n && buf[n - 1] == ' '; n--)
		buf[n - 1] = '\0';
	return 0;
}

/* The block devices of the disk @name: itself and its partitions. */
struct devset {
	dev_t devs[256];
	char names[256][64];
	int n;
};

static void devset_add(struct devset *s, const char *name)
{
	char path[512], line[64];
	unsigned ma, mi;

	if (s->n >= 256)
		return;
	snprintf(path, sizeof(path), "/sys/class/block/%s/dev", name);
	if (read_line(path, line, sizeof(line)) || sscanf(line, "%u:%u", &ma, &mi) != 2)
		return;
	s->devs[s->n] = makedev(ma, mi);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->n++;
}

static void disk_devices(const char *name, struct devset *s)
{
	char path[512];
	DIR *d;
	struct dirent *e;

	s->n = 0;
	devset_add(s, name);
	snprintf(path, sizeof(path), "/sys/class/block/%s", name);
	if (!(d = opendir(path)))
		return;
	while ((e = readdir(d))) {
		char part[1024];
		if (snprintf(part, sizeof(part), "%s/%s/partition", path, e->d_name) >= (int)sizeof(part))
			continue;
		if (!strncmp(e->d_name, name, strlen(name)) && access(part, F_OK) == 0)
			devset_add(s, e->d_name);
	}
	closedir(d);
}

static int devset_find(const struct devset *s, dev_t dev)
{
	for (int i = 0; i < s->n; i++)
		if (s->devs[i] == dev)
			return i;
	return -1;
}

static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* A mount of any of @s: by the st_dev of the mounted file system, or by
 * the device it was mounted from. */
static int check_mounts(const struct wtg_flush_target *t, const struct devset *s)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	int ret = 0;

	if (!f)
		return 0;
	while (!ret && fgets(line, sizeof(line), f)) {
		char *fields[16], *save;
		int n = 0;
		unsigned ma, mi;
		for (char *tok = strtok_r(line, " \n", &save); tok && n < 16;
		     tok = strtok_r(NULL, " \n", &save))
			fields[n++] = tok;
		if (n < 9 || sscanf(fields[2], "%u:%u", &ma, &mi) != 2)
			continue;
		int hit = devset_find(s, makedev(ma, mi));
		for (int i = 6; hit < 0 && i + 2 < n; i++) {
			if (strcmp(fields[i], "-"))
				continue;
			struct stat st;
			unescape(fields[i + 2]);
			if (fields[i + 2][0] == '/' && stat(fields[i + 2], &st) == 0 &&
			    S_ISBLK(st.st_mode))
				hit = devset_find(s, st.st_rdev);
			break;
		}
		if (hit < 0)
			continue;
		unescape(fields[4]);
		if (!strcmp(fields[4], "/"))
			wtg_error("refusing '%s': /dev/%s holds the running system (mounted on /)",
				  t->path, s->names[hit]);
		else
			wtg_error("refusing '%s': /dev/%s is mounted on '%s' (unmount it first)",
				  t->path, s->names[hit], fields[4]);
		ret = -EBUSY;
	}
	fclose(f);
	return ret;
}

static int check_swaps(const struct wtg_flush_target *t, const struct devset *s)
{
	FILE *f = fopen("/proc/swaps", "re");
	char line[4096];
	int ret = 0;

	if (!f)
		return 0;
	while (!ret && fgets(line, sizeof(line), f)) {
		char dev[4096];
		struct stat st;
		if (sscanf(line, "%4095s", dev) != 1 || dev[0] != '/')
			continue;
		unescape(dev);
		if (stat(dev, &st) == 0 && S_ISBLK(st.st_mode) && devset_find(s, st.st_rdev) >= 0) {
			wtg_error("refusing '%s': '%s' on it is in use as swap (swapoff it first)",
				  t->path, dev);
			ret = -EBUSY;
		}
	}
	fclose(f);
	return ret;
}

static int check_holders(const struct wtg_flush_target *t, const struct devset *s)
{
	for (int i = 0; i < s->n; i++) {
		char path[512];
		snprintf(path, sizeof(path), "/sys/class/block/%s/holders", s->names[i]);
		DIR *d = opendir(path);
		struct dirent *e;
		if (!d)
			continue;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			wtg_error("refusing '%s': /dev/%s is held by /dev/%s (device mapper, RAID or "
				  "LVM: release it first)",
				  t->path, s->names[i], e->d_name);
			closedir(d);
			return -EBUSY;
		}
		closedir(d);
	}
	return 0;
}

/* The files the flush reads must not lie on the target. */
static int check_sources(const struct wtg_flush_target *t, const struct devset *s,
			 const struct stat *tst, const char *const *sources)
{
	for (; sources && *sources; sources++) {
		struct stat st;
		if (stat(*sources, &st) < 0)
			continue;
		bool on = t->device ? (devset_find(s, st.st_dev) >= 0 ||
				       (S_ISBLK(st.st_mode) && devset_find(s, st.st_rdev) >= 0))
				    : (st.st_dev == tst->st_dev && st.st_ino == tst->st_ino);
		if (on) {
			wtg_error("refusing '%s': it holds '%s', which this flush reads", t->path,
				  *sources);
			return -EINVAL;
		}
	}
	return 0;
}

/* An image file attached to a loop device is in use. */
static int check_loop_backing(const struct wtg_flush_target *t, const struct stat *tst)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	int ret = 0;

	if (!d)
		return 0;
	while (!ret && (e = readdir(d))) {
		char path[512], back[4096];
		struct stat st;
		if (strncmp(e->d_name, "loop", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", e->d_name);
		if (read_line(path, back, sizeof(back)) || !back[0])
			continue;
		if (stat(back, &st) == 0 && st.st_dev == tst->st_dev && st.st_ino == tst->st_ino) {
			wtg_error("refusing '%s': it is attached to /dev/%s (losetup -d it first, or "
				  "flush to /dev/%s)",
				  t->path, e->d_name, e->d_name);
			ret = -EBUSY;
		}
	}
	closedir(d);
	return ret;
}

/* The kernel's name of a block device, from sysfs. */
static int device_name(dev_t rdev, char *name, size_t size)
{
	char link[128], target[4096];

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(rdev), minor(rdev));
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	const char *base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) >= size)
		return -ENAMETOOLONG;
	memcpy(name, base, strlen(base) + 1);
	return 0;
}

/* ---- opening ---- */

static int open_device(struct wtg_flush_target *t, const struct stat *st)
{
	char part[600];

	t->device = true;
	t->rdev = st->st_rdev;
	if (device_name(st->st_rdev, t->name, sizeof(t->name)) < 0) {
		wtg_error("refusing '%s': the kernel does not list this block device", t->path);
		return -ENODEV;
	}
	snprintf(part, sizeof(part), "/sys/class/block/%s/partition", t->name);
	if (access(part, F_OK) == 0) {
		wtg_error("refusing '%s': it is a partition; give the whole disk", t->path);
		return -EINVAL;
	}
	t->fd = open(t->path, O_RDWR | O_EXCL | O_CLOEXEC);
	if (t->fd < 0) {
		int err = errno;
		if (err == EBUSY)
			wtg_error("refusing '%s': it is in use (mounted, or opened exclusively by "
				  "another program)",
				  t->path);
		else
			wtg_error("cannot open '%s': %s", t->path, strerror(err));
		return -err;
	}
	if (ioctl(t->fd, BLKGETSIZE64, &t->size) < 0) {
		wtg_error("cannot read the size of '%s': %s", t->path, strerror(errno));
		return -errno;
	}
	int ssz = 512;
	if (ioctl(t->fd, BLKSSZGET, &ssz) < 0)
		ssz = 512;
	t->sector_size = (uint32_t)ssz;
	return 0;
}

static int open_file(struct wtg_flush_target *t, const struct wtg_flush_options *opt,
		     uint64_t needed)
{
	struct stat st;
	char a[32], b[32];

	t->fd = open(t->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (t->fd < 0) {
		wtg_error("cannot open '%s': %s", t->path, strerror(errno));
		return -errno;
	}
	if (fstat(t->fd, &st) < 0)
		return -errno;
	t->sector_size = 512;
	t->size = (uint64_t)st.st_size;
	if (opt->size) {
		if (opt->size < needed) {
			human(opt->size, a, sizeof(a));
			human(needed, b, sizeof(b));
			wtg_error("refusing '%s': --size %s is too small, the tree needs at least %s "
				  "(%" PRIu64 " bytes)",
				  t->path, a, b, needed);
			return -ENOSPC;
		}
		if (opt->size > t->size && ftruncate(t->fd, (off_t)opt->size) < 0) {
			wtg_error("cannot grow '%s' to %" PRIu64 " bytes: %s", t->path, opt->size,
				  strerror(errno));
			return -errno;
		}
		if (opt->size > t->size)
			t->size = opt->size;
	} else if (t->created) {
		if (ftruncate(t->fd, (off_t)needed) < 0) {
			wtg_error("cannot make '%s' %" PRIu64 " bytes: %s", t->path, needed,
				  strerror(errno));
			return -errno;
		}
		t->size = needed;
	}
	t->size &= ~(uint64_t)(t->sector_size - 1);
	return 0;
}

int wtg_flush_target_open(const char *path, struct wtg_view *view,
			  const struct wtg_flush_options *opt, const char *const *sources,
			  struct wtg_flush_target **target_ret)
{
	struct wtg_flush_target *t = calloc(1, sizeof(*t));
	struct devset *set = calloc(1, sizeof(*set));
	struct stat st;
	int ret;
	char a[32], b[32];

	if (!t || !set || !(t->path = strdup(path))) {
		free(t);
		free(set);
		return -ENOMEM;
	}
	t->fd = -1;
	uint64_t needed = flush_needed_size(view, opt);
	if (stat(path, &st) < 0) {
		if (errno != ENOENT) {
			ret = -errno;
			wtg_error("cannot open '%s': %s", path, strerror(-ret));
			goto fail;
		}
		t->created = true;
		ret = open_file(t, opt, needed);
		if (ret)
			goto fail;
		goto done;
	}
	if (S_ISBLK(st.st_mode)) {
		if (opt->size) {
			wtg_error("refusing '%s': --size is for image files, not block devices", path);
			ret = -EINVAL;
			goto fail;
		}
		if (device_name(st.st_rdev, t->name, sizeof(t->name)) == 0) {
			disk_devices(t->name, set);
			if ((ret = check_mounts(t, set)) || (ret = check_swaps(t, set)) ||
			    (ret = check_holders(t, set)) || (ret = check_sources(t, set, &st, sources)))
				goto fail;
		}
		ret = open_device(t, &st);
	} else if (S_ISREG(st.st_mode)) {
		if ((ret = check_sources(t, set, &st, sources)) || (ret = check_loop_backing(t, &st)))
			goto fail;
		ret = open_file(t, opt, needed);
	} else {
		wtg_error("refusing '%s': not a block device or a regular file", path);
		ret = -EINVAL;
	}
	if (ret)
		goto fail;
done:
	if (t->size < needed) {
		human(t->size, a, sizeof(a));
		human(needed, b, sizeof(b));
		wtg_error("refusing '%s': it is too small (%s), the tree needs at least %s (%" PRIu64
			  " bytes)%s",
			  path, a, b, needed,
			  t->device ? "" : "; give --size to grow the image file");
		ret = -ENOSPC;
		goto fail;
	}
	free(set);
	*target_ret = t;
	return 0;
fail:
	if (t->fd >= 0)
		close(t->fd);
	if (t->created)
		unlink(t->path);
	free(t->path);
	free(t);
	free(set);
	return ret;
}

int flush_target_recheck(const struct wtg_flush_target *t)
{
	struct stat st;
	uint64_t size = 0;

	if (fstat(t->fd, &st) < 0)
		return -errno;
	if (t->device) {
		if (!S_ISBLK(st.st_mode) || st.st_rdev != t->rdev ||
		    ioctl(t->fd, BLKGETSIZE64, &size) < 0 || size != t->size) {
			wtg_error("refusing '%s': it is no longer the device that was confirmed "
				  "(%u:%u, %" PRIu64 " bytes)",
				  t->path, major(t->rdev), minor(t->rdev), t->size);
			return -ESTALE;
		}
		struct stat now;
		if (stat(t->path, &now) < 0 || now.st_rdev != t->rdev) {
			wtg_error("refusing '%s': the name now points at another device", t->path);
			return -ESTALE;
		}
	} else if ((uint64_t)st.st_size < t->size) {
		wtg_error("refusing '%s': the image file shrank while the flush began", t->path);
		return -ESTALE;
	}
	return 0;
}

bool wtg_flush_target_is_device(const struct wtg_flush_target *t)
{
	return t->device;
}

void wtg_flush_target_close(struct wtg_flush_target *t)
{
	if (!t)
		return;
	if (t->fd >= 0)
		close(t->fd);
	free(t->path);
	free(t);
}

static int fd_read(void *ctx, void *buf, size_t size, uint64_t off)
{
	const struct wtg_flush_target *t = ctx;

	return wtg_pread_or_zero(t->fd, buf, size, off);
}

int wtg_flush_target_describe(const struct wtg_flush_target *t, char *buf, size_t size)
{
	char sz[32], model[256] = "", vendor[256] = "", serial[256] = "", path[512];
	size_t used = 0;
	struct wtg_disk disk;

	human(t->size, sz, sizeof(sz));
	if (t->device) {
		snprintf(path, sizeof(path), "/sys/class/block/%s/device/model", t->name);
		read_line(path, model, sizeof(model));
		snprintf(path, sizeof(path), "/sys/class/block/%s/device/vendor", t->name);
		read_line(path, vendor, sizeof(vendor));
		snprintf(path, sizeof(path), "/sys/class/block/%s/device/serial", t->name);
		if (read_line(path, serial, sizeof(serial)) || !serial[0]) {
			snprintf(path, sizeof(path), "/sys/class/block/%s/device/wwid", t->name);
			read_line(path, serial, sizeof(serial));
		}
		if (!serial[0]) {
			snprintf(path, sizeof(path), "/sys/class/block/%s/serial", t->name);
			read_line(path, serial, sizeof(serial));
		}
		used += (size_t)snprintf(buf + used, size - used,
					 "%s: %s%s%s, %s (%" PRIu64 " bytes, %u-byte sectors)\n",
					 t->path, vendor, vendor[0] ? " " : "",
					 model[0] ? model : "(no model)", sz, t->size, t->sector_size);
		if (used < size)
			used += (size_t)snprintf(buf + used, size - used, "  serial: %s\n",
						 serial[0] ? serial : "(none)");
		char back[4096];
		snprintf(path, sizeof(path), "/sys/class/block/%s/loop/backing_file", t->name);
		if (used < size && read_line(path, back, sizeof(back)) == 0 && back[0])
			used += (size_t)snprintf(buf + used, size - used, "  loop device of '%s'\n",
						 back);
	} else {
		used += (size_t)snprintf(buf + used, size - used, "%s: image file, %s (%" PRIu64
					 " bytes)%s\n",
					 t->path, sz, t->size, t->created ? ", new" : "");
	}
	if (used < size && wtg_disk_read(fd_read, (void *)t, t->size, 0, t->path, &disk) == 0) {
		if (disk.scheme == WTG_DISK_NONE)
			used += (size_t)snprintf(buf + used, size - used, "  no partition table\n");
		for (int i = 0; i < disk.nparts && used < size; i++) {
			const struct wtg_partition *p = &disk.parts[i];
			const char *type = wtg_partition_type_name(p);
			human(p->size, sz, sizeof(sz));
			used += (size_t)snprintf(buf + used, size - used, "  partition %d: %s, %s%s%s\n",
						 p->number, sz, type ? type : "unknown type",
						 p->name[0] ? ", " : "", p->name);
		}
		wtg_disk_release(&disk);
	}
	return 0;
}

/* ---- the wipe ---- */


static int zero_range(struct wtg_flush_target *t, const uint8_t *zero, uint64_t off, uint64_t len)
{
	if (off >= t->size)
		return 0;
	if (len > t->size - off)
		len = t->size - off;
	return wtg_pwrite_all(t->fd, zero, (size_t)len, off);
}

int flush_wipe(struct wtg_flush_target *t)
{
	uint8_t *zero = calloc(1, MiB);
	struct wtg_disk disk = {0};
	int ret;

	if (!zero)
		return -ENOMEM;
	bool have_table = wtg_disk_read(fd_read, t, t->size, t->sector_size, t->path, &disk) == 0;
	ret = zero_range(t, zero, 0, MiB);
	if (!ret)
		ret = zero_range(t, zero, t->size > MiB ? t->size - MiB : 0, MiB);
	for (int i = 0; have_table && !ret && i < disk.nparts; i++) {
		const struct wtg_partition *p = &disk.parts[i];
		ret = zero_range(t, zero, p->start, p->size < MiB ? p->size : MiB);
		if (!ret && p->size > MiB)
			ret = zero_range(t, zero, p->start + p->size - MiB, MiB);
	}
	if (have_table)
		wtg_disk_release(&disk);
	if (!ret && fdatasync(t->fd) < 0)
		ret = -errno;
	if (ret)
		wtg_error("cannot wipe '%s': %s", t->path, strerror(-ret));
	free(zero);
	return ret;
}
