/*
 * Large buffers: malloc'd memory that the kernel backs with huge pages
 * where it can, so that filling tens of megabytes costs a few page faults,
 * not thousands.  Freed with free().
 */
#ifndef WTGFS_MEM_H
#define WTGFS_MEM_H

#include <stddef.h>

/* malloc(@size), huge pages asked for when it is large. */
void *wtg_malloc_large(size_t size);
/* The same, zeroed. */
void *wtg_calloc_large(size_t size);
/* realloc(@p, @size) the same way. */
void *wtg_realloc_large(void *p, size_t size);

#endif
