/*
 * The ESP of a flushed drive: a FAT32 file system without a label (made by
 * mkfs.fat in a file of the partition's size, which the core copies into
 * place) holding what bcdboot puts there: the image's Windows\Boot\EFI in
 * \EFI\Microsoft\Boot (language folders included), bootmgfw.efi again as
 * the removable-media loader \EFI\Boot\bootx64.efi, the boot fonts and
 * resources, and the BCD store.  The files are read from the view (the
 * merged tree), staged in a private temporary directory, and copied in with
 * mtools' mcopy: no FAT code of our own.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wtgfs/bcd.h"
#include "wtgfs/fileio.h"
#include "wtgfs/flush.h"
#include "wtgfs/log.h"
#include "wtgfs/tree.h"
#include "wtgfs/view.h"

#define BOOT_EFI "Windows\\Boot\\EFI"
#define BOOTMGFW BOOT_EFI "\\bootmgfw.efi"
#define BCD_TEMPLATE "Windows\\System32\\config\\BCD-Template"
#define SOFTWARE_HIVE "Windows\\System32\\config\\SOFTWARE"
#define CURRENT_VERSION "Microsoft\\Windows NT\\CurrentVersion"

/* The inode at @path (backslash-separated from the root), under the view's
 * shared lock; NULL when a component is missing. */
static struct wtg_inode *lookup_locked(struct wtg_view *view, const char *path)
{
	struct wtg_tree *tree = wtg_view_tree(view);
	struct wtg_inode *at = wtg_tree_inode(tree, WTG_ROOT_INO);
	while (at && *path) {
		const char *end = strchr(path, '\\');
		size_t len = end ? (size_t)(end - path) : strlen(path);
		struct wtg_dentry *de = at->dir ? wtg_tree_lookup(tree, at, path, len) : NULL;
		at = de ? de->inode : NULL;
		path += len + (end ? 1 : 0);
	}
	return at;
}

static bool is_plain_file(const struct wtg_inode *inode)
{
	return !wtg_inode_is_dir(inode) && !wtg_inode_is_link(inode);
}

int wtg_flush_check_boot(struct wtg_view *view)
{
	wtg_view_lock_shared(view);
	struct wtg_inode *in = lookup_locked(view, BOOTMGFW);
	bool ok = in && is_plain_file(in);
	wtg_view_unlock(view);
	if (ok)
		return 0;
	wtg_error("cannot flush: the image has no '%s' (a flush makes a UEFI boot drive from the "
		  "image's own boot files; use an image of Windows 8 or later)",
		  BOOTMGFW);
	return -ENOENT;
}

/* Writes the unnamed stream of @inode to the new host file @dst. */
static int copy_out(struct wtg_view *view, struct wtg_inode *inode, const char *dst)
{
	enum { PIECE = 1 << 20 };
	int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	char *buf = malloc(PIECE);
	int ret = buf ? 0 : -ENOMEM;
	for (uint64_t off = 0; !ret;) {
		wtg_view_lock_shared(view);
		struct wtg_stream *s = wtg_inode_data(inode);
		long n = s ? wtg_view_read(view, inode, s, buf, PIECE, off) : 0;
		wtg_view_unlock(view);
		if (n < 0)
			ret = (int)n;
		if (n <= 0)
			break;
		ret = wtg_pwrite_all(fd, buf, (size_t)n, off);
		off += (uint64_t)n;
	}
	free(buf);
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

/* Copies the tree under the view's directory @dir to the host directory
 * @dst (which exists): files and directories; links are left out (an ESP
 * holds none). */
static int copy_tree(struct wtg_view *view, struct wtg_inode *dir, const char *dst)
{
	int ret = 0;
	for (uint32_t i = 0; !ret; i++) {
		wtg_view_lock_shared(view);
		struct wtg_dentry *de = i < dir->dir->count ? dir->dir->entries[i] : NULL;
		struct wtg_inode *in = de ? de->inode : NULL;
		char *path = NULL;
		if (de && asprintf(&path, "%s/%s", dst, de->name) < 0)
			path = NULL;
		wtg_view_unlock(view);
		if (!de)
			break;
		if (!path)
			return -ENOMEM;
		if (wtg_inode_is_link(in))
			ret = 0;
		else if (wtg_inode_is_dir(in))
			ret = mkdir(path, 0755) ? -errno : copy_tree(view, in, path);
		else
			ret = copy_out(view, in, path);
		if (ret)
			wtg_error("cannot copy boot file to '%s': %s", path, strerror(-ret));
		free(path);
	}
	return ret;
}

/* Copies the view's directory @src (if it exists and @need is false) into
 * the new host directory @dst. */
static int copy_dir(struct wtg_view *view, const char *src, const char *dst, bool need)
{
	wtg_view_lock_shared(view);
	struct wtg_inode *in = lookup_locked(view, src);
	bool is_dir = in && wtg_inode_is_dir(in) && !wtg_inode_is_link(in);
	wtg_view_unlock(view);
	if (!is_dir) {
		if (!need)
			return 0;
		wtg_error("cannot flush: the image has no directory '%s'", src);
		return -ENOENT;
	}
	if (mkdir(dst, 0755) && errno != EEXIST)
		return -errno;
	return copy_tree(view, in, dst);
}

/* Copies the view's file @src to @dst; -ENOENT when it is missing. */
static int copy_file(struct wtg_view *view, const char *src, const char *dst)
{
	wtg_view_lock_shared(view);
	struct wtg_inode *in = lookup_locked(view, src);
	bool ok = in && is_plain_file(in);
	wtg_view_unlock(view);
	return ok ? copy_out(view, in, dst) : -ENOENT;
}

/* A template for mkstemp/mkdtemp in $TMPDIR (else /tmp): "DIR/wtgfs-WHAT.XXXXXX". */
static int tmp_template(char *buf, size_t size, const char *what)
{
	const char *dir = getenv("TMPDIR");
	int n = snprintf(buf, size, "%s/wtgfs-%s.XXXXXX", dir && *dir ? dir : "/tmp", what);
	return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* Runs a tool with @env added to the environment (posix_spawn: the view's
 * threads make fork() and work in the child unsafe), its output discarded
 * and its errors kept; on failure logs the last line of its errors.  Finds
 * the tool in PATH, then in /usr/sbin and /sbin (mkfs.fat lives there). */
static int run_tool(const char *const argv[], const char *env)
{
	char errfile[PATH_MAX];
	int efd = -1, err = tmp_template(errfile, sizeof(errfile), "tool");
	if (!err && (efd = mkostemp(errfile, O_CLOEXEC)) < 0)
		err = -errno;
	if (err) {
		wtg_error("cannot make a temporary file for %s's messages: %s", argv[0],
			  strerror(-err));
		return err;
	}
	unlink(errfile);

	size_t n = 0;
	while (environ[n])
		n++;
	char **envp = calloc(n + 2, sizeof(*envp));
	posix_spawn_file_actions_t fa;
	int ret = envp ? posix_spawn_file_actions_init(&fa) : ENOMEM;
	if (ret) {
		free(envp);
		close(efd);
		return -ret;
	}
	memcpy(envp, environ, n * sizeof(*envp));
	envp[n] = (char *)env; /* NULL ends the list when there is none */
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, efd, 2);

	pid_t pid;
	ret = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, envp);
	static const char *const dirs[] = {"/usr/sbin/", "/sbin/"};
	for (size_t i = 0; ret == ENOENT && i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s%s", dirs[i], argv[0]);
		ret = posix_spawn(&pid, path, &fa, NULL, (char *const *)argv, envp);
	}
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	if (ret) {
		wtg_error("cannot run %s: %s%s", argv[0], strerror(ret),
			  ret == ENOENT ? " (install it: scripts/deps.sh)" : "");
		close(efd);
		return -ret;
	}

	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			ret = -errno;
			close(efd);
			return ret;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		char msg[512] = "";
		struct stat st;
		off_t from = !fstat(efd, &st) && st.st_size > (off_t)sizeof(msg) - 1
				 ? st.st_size - (off_t)sizeof(msg) + 1
				 : 0;
		ssize_t got = pread(efd, msg, sizeof(msg) - 1, from);
		msg[got > 0 ? got : 0] = 0;
		while (got > 0 && (msg[got - 1] == '\n' || msg[got - 1] == ' '))
			msg[--got] = 0;
		char *last = strrchr(msg, '\n');
		wtg_error("%s failed: %s", argv[0], last ? last + 1 : msg[0] ? msg : "no message");
		ret = -EIO;
	}
	close(efd);
	return ret;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* An ESP is FAT32 as Windows formats one: 4 KiB clusters, smaller only when
 * a small partition would otherwise hold too few clusters for FAT32. */
enum { FAT32_MIN_CLUSTERS = 65525 + 1024 }; /* + room for the FATs */

static uint32_t esp_cluster(uint64_t size, uint32_t ss)
{
	uint32_t cluster = ss > 4096 ? ss : 4096;
	while (cluster > ss && size / cluster < FAT32_MIN_CLUSTERS)
		cluster /= 2;
	return cluster;
}

int wtg_flush_check_esp_size(uint64_t size, uint32_t sector_size)
{
	if (sector_size && size / esp_cluster(size, sector_size) >= FAT32_MIN_CLUSTERS)
		return 0;
	/* fewer clusters make it FAT16 to every reader, firmware included */
	wtg_error("cannot make the ESP FAT32: %" PRIu64 " MiB hold too few clusters with "
		  "%" PRIu32 "-byte sectors (at least %" PRIu64 " MiB: use --esp-size)",
		  size >> 20, sector_size,
		  ((uint64_t)FAT32_MIN_CLUSTERS * sector_size + (1 << 20) - 1) >> 20);
	return -EINVAL;
}

static int format_fat32(const struct wtg_flush_layout *layout, const char *esp_path)
{
	uint32_t ss = layout->sector_size;
	int ret = wtg_flush_check_esp_size(layout->esp.size, ss);
	if (ret)
		return ret;
	char sector[16], per_cluster[16], hidden[32];
	snprintf(sector, sizeof(sector), "%" PRIu32, ss);
	snprintf(per_cluster, sizeof(per_cluster), "%" PRIu32, esp_cluster(layout->esp.size, ss) / ss);
	snprintf(hidden, sizeof(hidden), "%" PRIu64, layout->esp.offset / ss);
	/* no -n: no volume label (a label has broken booting in the field) */
	const char *const argv[] = {"mkfs.fat", "-F", "32",   "-S",	sector, "-s",
				    per_cluster, "-h", hidden, esp_path, NULL};
	return run_tool(argv, NULL);
}

/* The edition's name for the OS loader ("Windows 10 Pro"): ProductName in
 * the image's SOFTWARE hive, "Windows" when it has none. */
static char *edition_name(struct wtg_view *view, const char *stage)
{
	char *path = NULL, *name = NULL;
	if (asprintf(&path, "%s/SOFTWARE", stage) < 0)
		return NULL;
	if (!copy_file(view, SOFTWARE_HIVE, path) &&
	    wtg_hive_get_string(path, CURRENT_VERSION, "ProductName", &name))
		name = NULL;
	unlink(path);
	free(path);
	if (name && !*name) {
		free(name);
		name = NULL;
	}
	return name;
}

static int note_bcd(struct wtg_flush_report *rep, const struct wtg_bcd_params *p)
{
	if (!p->recovery_off)
		return 0;
	return wtg_flush_report_add(rep, "BCD: recoveryenabled = No on the OS loader %s",
				    p->loader_key);
}

int wtg_flush_build_esp(struct wtg_view *view, const struct wtg_flush_layout *layout,
			const struct wtg_flush_options *opt, const char *esp_path,
			struct wtg_flush_report *rep)
{
	char stage[PATH_MAX];
	int err = tmp_template(stage, sizeof(stage), "esp");
	if (!err && !mkdtemp(stage))
		err = -errno;
	if (err) {
		wtg_error("cannot make a temporary directory for the ESP: %s", strerror(-err));
		return err;
	}
	char *efi = NULL, *msboot = NULL, *fallback = NULL, *bcd_path = NULL, *tmpl = NULL;
	char *edition = NULL;
	struct wtg_bcd bcd = {0};
	int ret = -ENOMEM;
	if (asprintf(&efi, "%s/EFI", stage) < 0 ||
	    asprintf(&msboot, "%s/EFI/Microsoft/Boot", stage) < 0 ||
	    asprintf(&fallback, "%s/EFI/Boot", stage) < 0 ||
	    asprintf(&bcd_path, "%s/BCD", msboot) < 0 ||
	    asprintf(&tmpl, "%s/BCD-Template", stage) < 0)
		goto out;
	char *ms = strndup(msboot, strlen(msboot) - strlen("/Boot"));
	ret = ms ? 0 : -ENOMEM;
	if (!ret && (mkdir(efi, 0755) || mkdir(ms, 0755) || mkdir(fallback, 0755)))
		ret = -errno;
	free(ms);
	if (ret)
		goto out;

	ret = copy_dir(view, BOOT_EFI, msboot, true);
	if (!ret) {
		char *p = NULL;
		ret = asprintf(&p, "%s/bootx64.efi", fallback) < 0 ? -ENOMEM
								    : copy_file(view, BOOTMGFW, p);
		free(p);
		if (ret == -ENOENT)
			wtg_error("cannot flush: the image has no '%s'", BOOTMGFW);
	}
	static const char *const extra[] = {"Fonts", "Resources"};
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]) && !ret; i++) {
		char *src = NULL, *dst = NULL;
		if (asprintf(&src, "Windows\\Boot\\%s", extra[i]) < 0 ||
		    asprintf(&dst, "%s/%s", msboot, extra[i]) < 0)
			ret = -ENOMEM;
		else
			ret = copy_dir(view, src, dst, false);
		free(src);
		free(dst);
	}
	if (ret)
		goto out;

	/* the store, from the image's template when it has one (as bcdboot) */
	struct wtg_bcd_params params = {
	    .layout = layout,
	    .recovery_off = !opt->no_wtg_tweaks,
	};
	edition = edition_name(view, stage);
	params.description = edition;
	if ((ret = wtg_bcd_random_key(params.loader_key)) ||
	    (ret = wtg_bcd_random_key(params.resume_key)) || (ret = wtg_bcd_build(&params, &bcd)))
		goto out;
	ret = copy_file(view, BCD_TEMPLATE, tmpl);
	if (ret && ret != -ENOENT)
		goto out;
	ret = wtg_bcd_write_store(&bcd, ret ? NULL : tmpl, bcd_path);
	unlink(tmpl);
	if (ret || (ret = note_bcd(rep, &params)))
		goto out;

	if ((ret = format_fat32(layout, esp_path)))
		goto out;
	const char *const mcopy[] = {"mcopy", "-s", "-Q", "-i", esp_path, efi, "::/", NULL};
	ret = run_tool(mcopy, "MTOOLS_SKIP_CHECK=1");
out:
	if (ret == -ENOMEM)
		wtg_error("cannot build the ESP: out of memory");
	nftw(stage, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	wtg_bcd_release(&bcd);
	free(edition);
	free(efi);
	free(msboot);
	free(fallback);
	free(bcd_path);
	free(tmpl);
	return ret;
}
