/*
 * Registry hive comparison for 'wtgfs diff --hives', the one user of
 * libhivex's reading side.  hivex opens files, not buffers, so each version
 * is handed over as an anonymous memory file (memfd) opened through
 * /proc/self/fd: nothing reaches the disk.  Both trees are walked from the
 * root, children and values matched by name ignoring case (as the registry
 * does); what only one side has is reported with everything below it.
 */
#include <errno.h>
#include <hivex.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wtgfs/fileio.h"
#include "wtgfs/hive_diff.h"
#include "wtgfs/log.h"
#include "wtgfs/names.h"

bool wtg_hive_signature(const uint8_t *p, size_t len)
{
	return len >= 4 && !memcmp(p, "regf", 4);
}

/* Opens @len bytes at @data as a hive: the memfd stays open in *fd_ret. */
static hive_h *open_buffer(const char *what, const uint8_t *data, size_t len, int *fd_ret)
{
	char path[64];
	int fd = memfd_create("wtgfs-hive", MFD_CLOEXEC);

	*fd_ret = -1;
	if (fd < 0)
		return NULL;
	if (wtg_pwrite_all(fd, data, len, 0)) {
		close(fd);
		return NULL;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	hive_h *h = wtg_hive_signature(data, len) ? hivex_open(path, 0) : NULL;
	if (!h) {
		wtg_error("'%s': not a registry hive hivex can read", what);
		close(fd);
		return NULL;
	}
	*fd_ret = fd;
	return h;
}

struct walk {
	hive_h *old, *new_;
	wtg_hive_fn fn;
	void *arg;
	char *key; /* the path being walked */
	size_t key_len, key_cap;
};

static int key_push(struct walk *w, const char *name, size_t *saved)
{
	size_t n = strlen(name), need = w->key_len + 1 + n + 1;

	*saved = w->key_len;
	if (need > w->key_cap) {
		char *p = realloc(w->key, need * 2);
		if (!p)
			return -ENOMEM;
		w->key = p;
		w->key_cap = need * 2;
	}
	if (w->key_len)
		w->key[w->key_len++] = '\\';
	memcpy(w->key + w->key_len, name, n + 1);
	w->key_len += n;
	return 0;
}

static void key_pop(struct walk *w, size_t saved)
{
	w->key_len = saved;
	w->key[saved] = 0;
}

struct value {
	char *name;
	hive_type type;
	char *data;
	size_t len;
};

static void values_free(struct value *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].data);
	}
	free(v);
}

static int read_values(hive_h *h, hive_node_h node, struct value **ret, size_t *n_ret)
{
	hive_value_h *vals = hivex_node_values(h, node);
	size_t n = 0;

	*ret = NULL;
	*n_ret = 0;
	if (!vals)
		return -EIO;
	while (vals[n])
		n++;
	struct value *v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		free(vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		v[i].name = hivex_value_key(h, vals[i]);
		v[i].data = hivex_value_value(h, vals[i], &v[i].type, &v[i].len);
		if (!v[i].name || !v[i].data) {
			values_free(v, n);
			free(vals);
			return -EIO;
		}
	}
	free(vals);
	*ret = v;
	*n_ret = n;
	return 0;
}

static struct wtg_hive_value as_value(const struct value *v)
{
	return (struct wtg_hive_value){(uint32_t)v->type, (const uint8_t *)v->data, v->len};
}

static int report(struct walk *w, enum wtg_hive_change change, const char *value,
		  const struct value *o, const struct value *n)
{
	struct wtg_hive_item it = {.change = change, .key = w->key ? w->key : "", .value = value};

	if (o)
		it.old = as_value(o);
	if (n)
		it.new = as_value(n);
	return w->fn(w->arg, &it);
}

/* Everything at and below @node of one side, as added or removed. */
static int one_side(struct walk *w, hive_h *h, hive_node_h node, bool added)
{
	struct value *v;
	size_t nv;
	int r = report(w, added ? WTG_HIVE_KEY_ADDED : WTG_HIVE_KEY_REMOVED, NULL, NULL, NULL);

	if (!r)
		r = read_values(h, node, &v, &nv);
	if (r)
		return r;
	for (size_t i = 0; !r && i < nv; i++)
		r = report(w, added ? WTG_HIVE_VALUE_ADDED : WTG_HIVE_VALUE_REMOVED, v[i].name,
			   added ? NULL : &v[i], added ? &v[i] : NULL);
	values_free(v, nv);
	hive_node_h *kids = r ? NULL : hivex_node_children(h, node);
	if (!r && !kids)
		return -EIO;
	for (size_t i = 0; !r && kids[i]; i++) {
		char *name = hivex_node_name(h, kids[i]);
		size_t saved;
		if (!name) {
			r = -EIO;
			break;
		}
		r = key_push(w, name, &saved);
		free(name);
		if (!r) {
			r = one_side(w, h, kids[i], added);
			key_pop(w, saved);
		}
	}
	free(kids);
	return r;
}

static int compare_values(struct walk *w, hive_node_h o, hive_node_h n)
{
	struct value *ov = NULL, *nv = NULL;
	size_t no = 0, nn = 0;
	int r = read_values(w->old, o, &ov, &no);

	if (!r)
		r = read_values(w->new_, n, &nv, &nn);
	for (size_t i = 0; !r && i < nn; i++) {
		const struct value *match = NULL;
		for (size_t j = 0; j < no && !match; j++)
			if (!strcasecmp(ov[j].name, nv[i].name))
				match = &ov[j];
		if (!match)
			r = report(w, WTG_HIVE_VALUE_ADDED, nv[i].name, NULL, &nv[i]);
		else if (match->type != nv[i].type || match->len != nv[i].len ||
			 memcmp(match->data, nv[i].data, nv[i].len))
			r = report(w, WTG_HIVE_VALUE_CHANGED, nv[i].name, match, &nv[i]);
	}
	for (size_t j = 0; !r && j < no; j++) {
		bool found = false;
		for (size_t i = 0; i < nn && !found; i++)
			found = !strcasecmp(ov[j].name, nv[i].name);
		if (!found)
			r = report(w, WTG_HIVE_VALUE_REMOVED, ov[j].name, &ov[j], NULL);
	}
	values_free(ov, no);
	values_free(nv, nn);
	return r;
}

static int compare_keys(struct walk *w, hive_node_h o, hive_node_h n)
{
	int r = compare_values(w, o, n);
	hive_node_h *okids = r ? NULL : hivex_node_children(w->old, o);
	hive_node_h *nkids = okids ? hivex_node_children(w->new_, n) : NULL;
	size_t no = 0, nn = 0;
	char **onames = NULL;

	if (!r && (!okids || !nkids))
		r = -EIO;
	while (!r && okids[no])
		no++;
	while (!r && nkids[nn])
		nn++;
	if (!r && !(onames = calloc(no ? no : 1, sizeof(*onames))))
		r = -ENOMEM;
	for (size_t j = 0; !r && j < no; j++)
		if (!(onames[j] = hivex_node_name(w->old, okids[j])))
			r = -EIO;
	bool *seen = r ? NULL : calloc(no ? no : 1, 1);
	if (!r && !seen)
		r = -ENOMEM;
	for (size_t i = 0; !r && i < nn; i++) {
		char *name = hivex_node_name(w->new_, nkids[i]);
		size_t saved, j;
		if (!name) {
			r = -EIO;
			break;
		}
		for (j = 0; j < no; j++)
			if (!strcasecmp(onames[j], name))
				break;
		r = key_push(w, name, &saved);
		free(name);
		if (r)
			break;
		if (j < no) {
			seen[j] = true;
			r = compare_keys(w, okids[j], nkids[i]);
		} else {
			r = one_side(w, w->new_, nkids[i], true);
		}
		key_pop(w, saved);
	}
	for (size_t j = 0; !r && j < no; j++) {
		size_t saved;
		if (seen[j])
			continue;
		r = key_push(w, onames[j], &saved);
		if (!r) {
			r = one_side(w, w->old, okids[j], false);
			key_pop(w, saved);
		}
	}
	for (size_t j = 0; onames && j < no; j++)
		free(onames[j]);
	free(onames);
	free(seen);
	free(okids);
	free(nkids);
	return r;
}

int wtg_hive_diff(const char *what, const uint8_t *old, size_t old_len, const uint8_t *new_,
		  size_t new_len, wtg_hive_fn fn, void *arg)
{
	struct walk w = {.fn = fn, .arg = arg};
	int ofd = -1, nfd = -1, r;

	w.old = open_buffer(what, old, old_len, &ofd);
	w.new_ = w.old ? open_buffer(what, new_, new_len, &nfd) : NULL;
	if (!w.old || !w.new_) {
		r = -EINVAL;
		goto out;
	}
	if (!(w.key = calloc(1, 64))) {
		r = -ENOMEM;
		goto out;
	}
	w.key_cap = 64;
	r = compare_keys(&w, hivex_root(w.old), hivex_root(w.new_));
	if (r == -EIO)
		wtg_error("'%s': hivex cannot read a key or value of the hive", what);
out:
	if (w.old)
		hivex_close(w.old);
	if (w.new_)
		hivex_close(w.new_);
	if (ofd >= 0)
		close(ofd);
	if (nfd >= 0)
		close(nfd);
	free(w.key);
	return r;
}

const char *wtg_hive_type_name(uint32_t type)
{
	static const char *const names[] = {
	    "REG_NONE",	     "REG_SZ",	       "REG_EXPAND_SZ",
	    "REG_BINARY",    "REG_DWORD",      "REG_DWORD_BIG_ENDIAN",
	    "REG_LINK",	     "REG_MULTI_SZ",   "REG_RESOURCE_LIST",
	    "REG_FULL_RESOURCE_DESCRIPTOR", "REG_RESOURCE_REQUIREMENTS_LIST", "REG_QWORD",
	};
	return type < sizeof(names) / sizeof(names[0]) ? names[type] : NULL;
}

/* UTF-16LE @units code units as UTF-8 appended to a growing string. */
static int utf16_append(char **s, size_t *len, const uint8_t *p, size_t units)
{
	size_t cap = units * 3 + 1;
	char *q = realloc(*s, *len + cap + 1);

	if (!q)
		return -ENOMEM;
	*s = q;
	long n = wtg_utf16le_to_utf8(p, units, q + *len, cap);
	if (n < 0)
		return (int)n;
	*len += (size_t)n;
	return 0;
}

static char *hex_text(const uint8_t *data, size_t len)
{
	char *s = malloc(len * 2 + 1);

	if (!s)
		return NULL;
	for (size_t i = 0; i < len; i++)
		snprintf(s + 2 * i, 3, "%02x", data[i]);
	s[len * 2] = 0;
	return s;
}

char *wtg_hive_value_text(uint32_t type, const uint8_t *data, size_t len)
{
	char *s = NULL;
	size_t n = 0;

	switch (type) {
	case 1: /* REG_SZ */
	case 2: /* REG_EXPAND_SZ */
	case 6: /* REG_LINK */ {
		size_t units = len / 2;
		while (units && !data[2 * units - 2] && !data[2 * units - 1])
			units--;
		if (utf16_append(&s, &n, data, units)) {
			free(s);
			return hex_text(data, len);
		}
		return s ? s : strdup("");
	}
	case 7: { /* REG_MULTI_SZ: strings, each NUL-terminated */
		size_t units = len / 2, start = 0;
		if (!(s = strdup("[")))
			return NULL;
		n = 1;
		bool first = true;
		for (size_t i = 0; i <= units; i++) {
			bool end = i == units || (!data[2 * i] && !data[2 * i + 1]);
			if (!end)
				continue;
			if (i > start) {
				char *q = realloc(s, n + 4);
				if (!q)
					goto fail;
				s = q;
				n += (size_t)sprintf(s + n, "%s\"", first ? "" : ", ");
				if (utf16_append(&s, &n, data + 2 * start, i - start))
					goto fail;
				q = realloc(s, n + 2);
				if (!q)
					goto fail;
				s = q;
				s[n++] = '"';
				s[n] = 0;
				first = false;
			}
			start = i + 1;
		}
		char *q = realloc(s, n + 2);
		if (!q)
			goto fail;
		s = q;
		strcpy(s + n, "]");
		return s;
	fail:
		free(s);
		return NULL;
	}
	case 4: /* REG_DWORD */
		if (len == 4) {
			uint32_t v = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
				     (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
			return asprintf(&s, "%" PRIu32, v) < 0 ? NULL : s;
		}
		break;
	case 5: /* REG_DWORD_BIG_ENDIAN */
		if (len == 4) {
			uint32_t v = (uint32_t)data[3] | (uint32_t)data[2] << 8 |
				     (uint32_t)data[1] << 16 | (uint32_t)data[0] << 24;
			return asprintf(&s, "%" PRIu32, v) < 0 ? NULL : s;
		}
		break;
	case 11: /* REG_QWORD */
		if (len == 8) {
			uint64_t v = 0;
			for (int i = 7; i >= 0; i--)
				v = v << 8 | data[i];
			return asprintf(&s, "%" PRIu64, v) < 0 ? NULL : s;
		}
		break;
	}
	return hex_text(data, len);
}
