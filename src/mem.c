/*
 * Large buffers (see include/wtgfs/mem.h).  glibc serves a large malloc
 * with an mmap of its own, which this kernel aligns to huge pages; asking
 * for them (MADV_HUGEPAGE, for THP set to "madvise") before the first touch
 * makes each 2 MiB one fault.  The advice covers the whole huge pages inside
 * the buffer; the rest stays as it was.  Where the kernel has no THP the
 * advice fails and nothing changes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "wtgfs/mem.h"

#define HUGE_PAGE (2u << 20)
/* Smaller buffers gain too little for a split of the mapping. */
#define LARGE (4u << 20)

static void advise(void *p, size_t size)
{
	uintptr_t start = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
	uintptr_t end = ((uintptr_t)p + size) & ~(uintptr_t)(HUGE_PAGE - 1);

	if (size >= LARGE && end > start)
		madvise((void *)start, end - start, MADV_HUGEPAGE);
}

void *wtg_malloc_large(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p)
		advise(p, size);
	return p;
}

void *wtg_calloc_large(size_t size)
{
	/* (calloc clears only memory it reuses, which is in place already: a
	 * fresh mapping is zero and still untouched when advised) */
	void *p = calloc(1, size ? size : 1);

	if (p)
		advise(p, size);
	return p;
}

void *wtg_realloc_large(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);

	/* (again where it grew in place: the advice is for the new pages) */
	if (q)
		advise(q, size);
	return q;
}

int wtg_grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 64;
	if (c < *cap || c > SIZE_MAX / size)
		return -ENOMEM;
	void *p = realloc(*v, c * size);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}
