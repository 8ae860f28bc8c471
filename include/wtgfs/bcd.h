/*
 * The BCD store a flush writes, as data: the objects bcdboot writes for a
 * UEFI Windows install (DESIGN.md "Flush", item 5), each with its elements
 * already encoded as registry values.  The encoders and the object set are
 * pure code (src/flush/bcd.c); wtg_bcd_write_store() puts them into a hive
 * with libhivex (src/flush/hive.c, the flush's one libhivex user).
 *
 * Encoding by the element id's format nibble (bits 24-27): 1 device
 * REG_BINARY, 2 string REG_SZ (UTF-16LE with its NUL), 3 object REG_SZ
 * "{guid}" lowercase, 4 object list REG_MULTI_SZ, 5 integer REG_BINARY 8
 * bytes LE, 6 boolean REG_BINARY 1 byte, 7 integer list REG_BINARY n x 8
 * bytes.  GUIDs of the layout (wtgfs/flush.h) are in on-disk mixed-endian
 * order, as device elements hold them.  All calls return 0 or -errno.
 */
#ifndef WTGFS_BCD_H
#define WTGFS_BCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wtgfs/flush.h"

#define WTG_REG_SZ 1
#define WTG_REG_BINARY 3
#define WTG_REG_DWORD 4
#define WTG_REG_MULTI_SZ 7

/* Object types (Description\Type). */
#define WTG_BCD_TYPE_BOOTMGR 0x10100002u
#define WTG_BCD_TYPE_OSLOADER 0x10200003u
#define WTG_BCD_TYPE_RESUME 0x10200004u
#define WTG_BCD_TYPE_MEMDIAG 0x10200005u
#define WTG_BCD_TYPE_INHERIT_ANY 0x20100000u
#define WTG_BCD_TYPE_INHERIT_OSLOADER 0x20200003u
#define WTG_BCD_TYPE_INHERIT_RESUME 0x20200004u

/* The well-known objects, "{...}" as the store spells them. */
#define WTG_BCD_BOOTMGR "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"
#define WTG_BCD_MEMDIAG "{b2721d73-1db4-4c62-bf78-c548a880142d}"
#define WTG_BCD_GLOBALSETTINGS "{7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e}"
#define WTG_BCD_DBGSETTINGS "{4636856e-540f-4170-a130-a84776f4c654}"
#define WTG_BCD_EMSSETTINGS "{0ce4991b-e6b3-4b16-b23c-5e0d9250e5d9}"
#define WTG_BCD_BADMEMORY "{5189b25c-5558-4bf2-bca4-289b11bd29e2}"
#define WTG_BCD_BOOTLOADERSETTINGS "{6efb52bf-1766-41db-a6b3-0ee5eff72bd7}"
#define WTG_BCD_HYPERVISORSETTINGS "{7ff607e0-4395-11db-b0de-0800200c9a66}"
#define WTG_BCD_RESUMELOADERSETTINGS "{1afa9c49-16ab-4a5c-901b-212802da9460}"

/* Elements the flush sets whose meaning a reader wants by name. */
#define WTG_BCD_E_DEVICE 0x11000001u
#define WTG_BCD_E_PATH 0x12000002u
#define WTG_BCD_E_DESCRIPTION 0x12000004u
#define WTG_BCD_E_OSDEVICE 0x21000001u
#define WTG_BCD_E_RECOVERY_ENABLED 0x16000009u

/* The size of a partition device element. */
#define WTG_BCD_DEVICE_SIZE 0x58

struct wtg_bcd_element {
	uint32_t id;
	uint32_t reg_type; /* WTG_REG_* */
	uint8_t *data;
	size_t len;
};

struct wtg_bcd_object {
	char key[39]; /* "{guid}" lowercase */
	uint32_t type;
	struct wtg_bcd_element *elements;
	size_t nelements;
};

struct wtg_bcd {
	struct wtg_bcd_object *objects;
	size_t nobjects;
};

struct wtg_bcd_params {
	const struct wtg_flush_layout *layout;
	char loader_key[39]; /* "{guid}" of the OS loader (a fresh random one) */
	char resume_key[39]; /* ... and of the resume object */
	const char *description; /* the OS loader's: the edition's name (UTF-8) */
	const char *locale;	 /* "en-US" */
	bool recovery_off;	 /* WTG: 16000009 = 0 on the OS loader */
};

/* The objects bcdboot writes, in the order above ({bootmgr} first). */
int wtg_bcd_build(const struct wtg_bcd_params *params, struct wtg_bcd *bcd_ret);
void wtg_bcd_release(struct wtg_bcd *bcd);
const struct wtg_bcd_object *wtg_bcd_find(const struct wtg_bcd *bcd, const char *key);
const struct wtg_bcd_element *wtg_bcd_object_element(const struct wtg_bcd_object *obj, uint32_t id);

/* ---- the starting template (BCD-Template) ---- */

/* True for an object key that stays in the store (the well-known objects
 * above, case-insensitively); the template's other objects (loader,
 * resume, setup and ntldr templates) are removed. */
bool wtg_bcd_keeps_object(const char *key);
/* True for an element only templates carry (45000001, 42000002, 42000003,
 * 46000004, 46000008, 47000005, 47000006). */
bool wtg_bcd_template_element(uint32_t id);

/* ---- encoders ---- */

/* The registry value type of an element id, by its format nibble; 0 for a
 * nibble with no encoding. */
uint32_t wtg_bcd_reg_type(uint32_t id);
/* "{01234567-89ab-cdef-0123-456789abcdef}" (lowercase, NUL-terminated) of
 * 16 bytes in on-disk mixed-endian order (the first three fields
 * little-endian). */
void wtg_bcd_guid_key(const uint8_t guid[16], char out[39]);
/* Parses "{...}" or a bare GUID (any case) into on-disk order; -EINVAL. */
int wtg_bcd_parse_guid(const char *s, uint8_t out[16]);
/* A fresh random GUID (version 4) as a "{guid}" key. */
int wtg_bcd_random_key(char out[39]);
/* The 0x58-byte partition device element of @part on @layout's disk. */
void wtg_bcd_encode_device(const struct wtg_flush_layout *layout, const struct wtg_flush_part *part,
			   uint8_t out[WTG_BCD_DEVICE_SIZE]);
/* UTF-8 to UTF-16LE with its NUL (REG_SZ); *@data_ret malloc'ed. */
int wtg_bcd_encode_string(const char *s, uint8_t **data_ret, size_t *len_ret);
/* GUID keys to REG_MULTI_SZ (each NUL-terminated, then one more NUL). */
int wtg_bcd_encode_list(const char *const *keys, size_t n, uint8_t **data_ret, size_t *len_ret);
void wtg_bcd_encode_integer(uint64_t v, uint8_t out[8]);

/* ---- the store (src/flush/hive.c) ---- */

/* Writes @bcd as a BCD store at @out: starts from the hive at @template_path
 * (BCD-Template: its other objects and template-only elements removed) or,
 * when NULL, from an empty hive whose root is "NewStoreRoot".  A kept
 * object keeps the elements it has beyond the ones @bcd sets. */
int wtg_bcd_write_store(const struct wtg_bcd *bcd, const char *template_path, const char *out);
/* The string value @name of the key @key ("Microsoft\\Windows NT\\...") in
 * the hive file @path, as UTF-8 (*@value_ret malloc'ed); -ENOENT when it is
 * not there.  Logs nothing. */
int wtg_hive_get_string(const char *path, const char *key, const char *name, char **value_ret);

#endif
