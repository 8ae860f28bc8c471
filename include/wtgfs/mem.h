/*
 * Memory: large buffers, malloc'd memory that the kernel backs with huge
 * pages where it can, so that filling tens of megabytes costs a few page
 * faults, not thousands (freed with free()); and arrays that grow.
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

/* *@v grown (doubling, from 64) to hold more than @n elements of @size:
 * 0, or -ENOMEM with *@v as it was. */
int wtg_grow(void **v, size_t *cap, size_t n, size_t size);

#endif
