/*
 * wtgfs mount IMAGE[:INDEX|:NAME] MNT: a read-only mount of a bare image;
 * wtgfs mount DELTA MNT: a writable mount of a delta over its base.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "wtgfs/fuse_mount.h"
#include "wtgfs/log.h"
#include "wtgfs/mountinfo.h"
#include "wtgfs/source.h"
#include "wtgfs/store.h"
#include "wtgfs/tree.h"
#include "wtgfs/view.h"

static const char usage[] =
    "usage: wtgfs mount IMAGE[:INDEX|:NAME] MNT [-f] [-d] [-o OPTION[,OPTION...]]\n"
    "       wtgfs mount DISK[:PART] MNT [--parent PATH] [...]\n"
    "       wtgfs mount DELTA MNT [--base PATH] [--at SNAP] [...]\n"
    "\n"
    "Mounts one image of a WIM or ESD file, or the NTFS volume of a disk image\n"
    "(VHDX, VHD, raw; by default the partition that holds \\Windows), a block\n"
    "device or a bare NTFS volume, read-only at MNT as a live NTFS\n"
    "tree: hard links, case-insensitive names, and NTFS metadata as ntfs-3g's\n"
    "extended attributes (system.ntfs_acl, system.ntfs_attrib, ...; named\n"
    "streams as user.NAME).\n"
    "\n"
    "A delta (made by 'wtgfs init') mounts read-write over its base: every\n"
    "change is kept in the delta, copy-on-write in 64 KiB chunks; fsync\n"
    "returns once the change is durable, and changes are committed at least\n"
    "once a second.  The base is found where 'wtgfs init' saw it, and must be\n"
    "the same image (checked by its identity).\n"
    "\n"
    "With --at, a snapshot of the delta mounts read-only, beside a read-write\n"
    "mount of the same delta or alone.\n"
    "\n"
    "      --at SNAP       a read-only view of snapshot SNAP of the delta\n"
    "      --base PATH     the delta's base lies at PATH now (recorded for next time)\n"
    "      --parent PATH   the parent of a differencing VHD/VHDX (default: the file of\n"
    "                      the name it records, in its own folder)\n"
    "  -f, --foreground    stay in the foreground\n"
    "  -d, --debug         debug: log every FUSE request (implies -f)\n"
    "  -o, --options LIST  mount options, separated by commas:\n"
    "      allow_other     let other users see the mount (as the modes allow)\n"
    "      uid=N, gid=N    the owner and group every file shows (default: yours)\n"
    "      umask=OCT       permission bits no file or directory shows (default 022)\n"
    "      fmask=OCT, dmask=OCT  the same for files or directories alone\n"
    "      posix           owners, groups and modes per file, in WSL's EAs\n"
    "      cache=SIZE      decompressed-chunk cache (default: sized to the image; K, M, G)\n"
    "      threads=N       FUSE worker threads (default: up to 10)\n"
    "      ro              read-only (a bare image always is; a delta refuses it)\n"
    "\n"
    "Unmount with 'wtgfs umount MNT'.\n";

static const struct option options[] = {
    {"base", required_argument, NULL, 'b'},
    {"at", required_argument, NULL, 'a'},
    {"parent", required_argument, NULL, 'p'},
    {"foreground", no_argument, NULL, 'f'},
    {"debug", no_argument, NULL, 'd'},
    {"options", required_argument, NULL, 'o'},
    CLI_OPTIONS_END,
};

/* 'b', 'a' and 'p' have no short spelling: only the vals of --base, --at
 * and --parent */
static const struct cli_command cmd = {"mount", usage, "fdo:", options};

static bool ro_asked;

static int parse_options(char *list, struct wtg_mount_options *mo, struct wtg_source_options *so)
{
	for (char *opt = strtok(list, ","); opt; opt = strtok(NULL, ",")) {
		uint64_t v;
		if (!strcmp(opt, "allow_other")) {
			mo->allow_other = true;
		} else if (!strcmp(opt, "posix")) {
			mo->posix = true;
		} else if (!strcmp(opt, "ro")) {
			/* a bare image is always read-only; a delta refuses it */
			ro_asked = true;
		} else if (!strncmp(opt, "uid=", 4) || !strncmp(opt, "gid=", 4)) {
			char *end;
			errno = 0;
			unsigned long id = strtoul(opt + 4, &end, 10);
			if (!opt[4] || *end || errno || id >= UINT32_MAX || opt[4] == '-')
				return cli_usage_error(&cmd, "bad %.3s '%s' (a number)", opt,
						       opt + 4);
			if (opt[0] == 'u') {
				mo->uid = (unsigned)id;
				mo->uid_set = true;
			} else {
				mo->gid = (unsigned)id;
				mo->gid_set = true;
			}
		} else if (!strncmp(opt, "umask=", 6) || !strncmp(opt, "fmask=", 6) ||
			   !strncmp(opt, "dmask=", 6)) {
			char *end;
			unsigned long m = strtoul(opt + 6, &end, 8);
			if (!opt[6] || *end || m > 0777 || opt[6] == '-')
				return cli_usage_error(&cmd, "bad %.5s '%s' (octal, at most 777)",
						       opt, opt + 6);
			if (opt[0] != 'd')
				mo->fmask = (unsigned)m;
			if (opt[0] != 'f')
				mo->dmask = (unsigned)m;
		} else if (!strncmp(opt, "cache=", 6)) {
			if (!cli_parse_size(opt + 6, &v) || v < (1u << 20))
				return cli_usage_error(&cmd, "bad cache size '%s' (at least 1M)",
						       opt + 6);
			so->cache_bytes = (size_t)v;
		} else if (!strncmp(opt, "threads=", 8)) {
			if (!cli_parse_size(opt + 8, &v) || v < 1 || v > 256)
				return cli_usage_error(&cmd, "bad thread count '%s' (1-256)",
						       opt + 8);
			mo->threads = (unsigned)v;
		} else {
			return cli_usage_error(&cmd, "unknown mount option '%s'", opt);
		}
	}
	return 0;
}

static int check_mountpoint(const char *mnt, char *canon)
{
	struct stat st;
	struct wtg_mountinfo mi;

	if (stat(mnt, &st) < 0) {
		wtg_error("cannot mount on '%s': %s", mnt,
			  errno == ENOENT ? "no such directory (create it first)"
					  : strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		wtg_error("cannot mount on '%s': not a directory", mnt);
		return -1;
	}
	if (!realpath(mnt, canon)) {
		wtg_error("cannot mount on '%s': %s", mnt, strerror(errno));
		return -1;
	}
	if (wtg_mountinfo_find(canon, &mi)) {
		wtg_error("cannot mount on '%s': already a mount point (%s); unmount it first", mnt,
			  mi.fstype);
		return -1;
	}
	return 0;
}

int cmd_mount(int argc, char **argv)
{
	struct wtg_mount_options mo = {.fmask = 022, .dmask = 022};
	struct wtg_source_options so = {0};
	int ret;
	char canon[PATH_MAX];
	struct wtg_view *view;
	const char *base = NULL, *at = NULL;

	int c;
	while ((c = cli_getopt(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'f':
			mo.foreground = true;
			break;
		case 'd':
			mo.debug = mo.foreground = true;
			break;
		case 'o':
			if ((ret = parse_options(optarg, &mo, &so)))
				return ret;
			break;
		case 'b':
			base = optarg;
			break;
		case 'a':
			at = optarg;
			break;
		case 'p':
			so.parent = optarg;
			break;
		default:
			return cli_getopt_exit(c);
		}
	}
	if (argc - optind < 2)
		return cli_usage_error(&cmd, "IMAGE and MNT are needed");
	if (argc - optind > 2)
		return cli_usage_error(&cmd, "too many arguments");
	const char *pos[2] = {argv[optind], argv[optind + 1]};
	if (mo.debug)
		wtg_log_set_verbose(true);
	bool delta = wtg_store_is_delta(pos[0]);
	char delta_canon[PATH_MAX], delta_dir[PATH_MAX], fsname[PATH_MAX + 300];
	if (ro_asked && delta && !at) {
		wtg_error("cannot mount '%s' read-only: a delta mounts read-write (mount its base "
			  "to look without changing anything)",
			  pos[0]);
		return EXIT_ERROR;
	}
	if (base && !delta)
		return cli_usage_error(&cmd, "--base goes with a delta, and '%s' is not one",
				       pos[0]);
	if (at && !delta)
		return cli_usage_error(&cmd, "--at goes with a delta, and '%s' is not one",
				       pos[0]);
	if (so.parent && !delta && wtg_source_is_wim(pos[0]))
		return cli_usage_error(&cmd, "--parent goes with a differencing disk, and '%s' is a "
					     "WIM",
				       pos[0]);
	if (check_mountpoint(pos[1], canon) < 0)
		return EXIT_ERROR;
	if (delta) {
		if (!realpath(pos[0], delta_canon)) {
			wtg_error("cannot open '%s': %s", pos[0], strerror(errno));
			return EXIT_ERROR;
		}
		snprintf(delta_dir, sizeof(delta_dir), "%s", delta_canon);
		*strrchr(delta_dir, '/') = '\0';
		if (!delta_dir[0])
			strcpy(delta_dir, "/");
		size_t n = strlen(canon);
		if (!strncmp(delta_canon, canon, n) && (n == 1 || delta_canon[n] == '/')) {
			/* its daemon would wait on its own mount to reach it */
			wtg_error("cannot mount on '%s': the delta '%s' lies inside it", pos[1],
				  pos[0]);
			return EXIT_ERROR;
		}
		if (at) {
			/* another name than the writable mount's: 'wtgfs snapshot
			 * DELTA' finds that one, and umount waits for no writer */
			ret = wtg_view_open_at(delta_canon, base, at, &so, &view);
			snprintf(fsname, sizeof(fsname), "%s@%s", delta_canon, at);
			mo.fsname = fsname;
		} else {
			ret = wtg_view_open_delta(delta_canon, base, &so, &view);
			mo.fsname = delta_canon;
			mo.delta_dir = delta_dir;
		}
	} else {
		ret = wtg_view_open_image(pos[0], &so, &view);
	}
	if (ret < 0)
		return EXIT_ERROR;
	mo.mountpoint = canon;
	if (!delta)
		mo.fsname = wtg_view_base_path(view);
	ret = wtg_fuse_run(view, &mo);
	int r2 = wtg_view_close(view);
	if (!ret)
		ret = r2;
	return ret < 0 ? EXIT_ERROR : 0;
}
