/*
 * Opening a base image by its spec "IMAGE[:INDEX|:NAME]" and probing which
 * backend reads it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wtgfs/log.h"
#include "wtgfs/disk_image.h"
#include "wtgfs/source.h"

int wtg_source_split_spec(const char *spec, char **path_ret, char **sel_ret)
{
	struct stat st;
	const char *colon = strrchr(spec, ':');

	*sel_ret = NULL;
	if (stat(spec, &st) == 0 || !colon || colon == spec) {
		*path_ret = strdup(spec);
		return *path_ret ? 0 : -ENOMEM;
	}
	*path_ret = strndup(spec, (size_t)(colon - spec));
	*sel_ret = strdup(colon + 1);
	if (!*path_ret || !*sel_ret) {
		free(*path_ret);
		free(*sel_ret);
		return -ENOMEM;
	}
	return 0;
}

int wtg_source_open(const char *spec, const struct wtg_source_options *opt,
		    struct wtg_source **src_ret)
{
	char *path, *sel;
	int ret = wtg_source_split_spec(spec, &path, &sel);

	if (ret < 0)
		return ret;
	/* a WIM by its magic; anything else is a disk image (or a volume) */
	if (wtg_source_is_wim(path) || access(path, F_OK) != 0)
		ret = wtg_wim_source_open(path, sel, opt, src_ret);
	else
		ret = wtg_disk_image_open(path, sel, opt ? opt->parent : NULL, src_ret);
	free(path);
	free(sel);
	return ret;
}

void wtg_source_free(struct wtg_source *src)
{
	if (src)
		src->ops->free(src);
}
