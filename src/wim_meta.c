/*
 * WIM metadata resources: a checked parser, a patcher that keeps untouched
 * bytes at their offsets, and the writer (see include/wtgfs/wim_meta.h).
 * First landing: the contract only; the code follows.
 */
#include <errno.h>
#include <string.h>

#include "wtgfs/wim_meta.h"

void wim_meta_entry_init(struct wim_meta_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->security_id = -1;
}

int wim_meta_parse(const void *bytes, size_t len, struct wim_meta **ret)
{
	(void)bytes, (void)len;
	*ret = NULL;
	return -ENOSYS;
}

void wim_meta_free(struct wim_meta *m)
{
	(void)m;
}

uint32_t wim_meta_sd_count(const struct wim_meta *m)
{
	(void)m;
	return 0;
}

int wim_meta_sd_get(const struct wim_meta *m, uint32_t id, const void **sd, size_t *len)
{
	(void)m, (void)id, (void)sd, (void)len;
	return -ENOSYS;
}

int wim_meta_sd_find(const struct wim_meta *m, const void *sd, size_t len)
{
	(void)m, (void)sd, (void)len;
	return -ENOSYS;
}

int wim_meta_sd_add(struct wim_meta *m, const void *sd, size_t len)
{
	(void)m, (void)sd, (void)len;
	return -ENOSYS;
}

int wim_meta_get(const struct wim_meta *m, const char *path, struct wim_meta_entry *out)
{
	(void)m, (void)path, (void)out;
	return -ENOSYS;
}

int wim_meta_set(struct wim_meta *m, const char *path, const struct wim_meta_entry *e)
{
	(void)m, (void)path, (void)e;
	return -ENOSYS;
}

int wim_meta_add(struct wim_meta *m, const char *dir, const struct wim_meta_entry *e)
{
	(void)m, (void)dir, (void)e;
	return -ENOSYS;
}

int wim_meta_remove(struct wim_meta *m, const char *path)
{
	(void)m, (void)path;
	return -ENOSYS;
}

int wim_meta_rename(struct wim_meta *m, const char *from, const char *to)
{
	(void)m, (void)from, (void)to;
	return -ENOSYS;
}

uint64_t wim_meta_max_link_group(const struct wim_meta *m)
{
	(void)m;
	return 0;
}

int wim_meta_walk(const struct wim_meta *m,
		  int (*fn)(void *arg, const char *path, const struct wim_meta_entry *e),
		  void *arg)
{
	(void)m, (void)fn, (void)arg;
	return -ENOSYS;
}

int wim_meta_write(struct wim_meta *m, void **bytes, size_t *len)
{
	(void)m, (void)bytes, (void)len;
	return -ENOSYS;
}
