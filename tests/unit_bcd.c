/*
 * BCD encoding: element value types by format nibble, GUIDs in the on-disk
 * mixed-endian order, the 0x58-byte partition device element for GPT and
 * MBR laid out byte by byte, strings and lists as REG_SZ / REG_MULTI_SZ,
 * the object set bcdboot writes (DESIGN.md "Flush"), and the least ESP
 * that can be FAT32.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "unit.h"
#include "wtgfs/bcd.h"

static const uint8_t guid_disk[16] = {0x67, 0x45, 0x23, 0x01, 0xab, 0x89, 0xef, 0xcd,
				      0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
#define GUID_TEXT "01234567-89ab-cdef-0123-456789abcdef"

TEST(reg_types)
{
	CHECK(wtg_bcd_reg_type(0x11000001) == WTG_REG_BINARY);
	CHECK(wtg_bcd_reg_type(0x21000001) == WTG_REG_BINARY);
	CHECK(wtg_bcd_reg_type(0x12000002) == WTG_REG_SZ);
	CHECK(wtg_bcd_reg_type(0x23000003) == WTG_REG_SZ);
	CHECK(wtg_bcd_reg_type(0x14000006) == WTG_REG_MULTI_SZ);
	CHECK(wtg_bcd_reg_type(0x25000004) == WTG_REG_BINARY);
	CHECK(wtg_bcd_reg_type(0x16000009) == WTG_REG_BINARY);
	CHECK(wtg_bcd_reg_type(0x17000077) == WTG_REG_BINARY);
	CHECK(wtg_bcd_reg_type(0x10000000) == 0);
	CHECK(wtg_bcd_reg_type(0x18000000) == 0);
}

TEST(guids)
{
	uint8_t g[16];
	char key[39];
	CHECK(wtg_bcd_parse_guid(GUID_TEXT, g) == 0);
	CHECK(memcmp(g, guid_disk, 16) == 0);
	CHECK(wtg_bcd_parse_guid("{01234567-89AB-CDEF-0123-456789ABCDEF}", g) == 0);
	CHECK(memcmp(g, guid_disk, 16) == 0);
	wtg_bcd_guid_key(guid_disk, key);
	CHECK(strcmp(key, "{" GUID_TEXT "}") == 0);
	CHECK(wtg_bcd_parse_guid("01234567-89ab-cdef-0123-456789abcde", g) == -EINVAL);
	CHECK(wtg_bcd_parse_guid("01234567+89ab-cdef-0123-456789abcdef", g) == -EINVAL);
	CHECK(wtg_bcd_parse_guid("0123456g-89ab-cdef-0123-456789abcdef", g) == -EINVAL);
	CHECK(wtg_bcd_parse_guid("{01234567-89ab-cdef-0123-456789abcdef", g) == -EINVAL);

	char a[39], b[39];
	CHECK(wtg_bcd_random_key(a) == 0 && wtg_bcd_random_key(b) == 0);
	CHECK(strcmp(a, b) != 0);
	CHECK(strlen(a) == 38 && a[0] == '{' && a[37] == '}');
	CHECK(a[15] == '4');				  /* version 4 */
	CHECK(strchr("89ab", a[20]) != NULL);		  /* RFC 4122 variant */
	CHECK(wtg_bcd_parse_guid(a, g) == 0 && (wtg_bcd_guid_key(g, key), !strcmp(key, a)));
}

static void gpt_layout(struct wtg_flush_layout *l)
{
	memset(l, 0, sizeof(*l));
	l->scheme = WTG_FLUSH_GPT;
	l->sector_size = 512;
	wtg_bcd_parse_guid("a0b1c2d3-e4f5-0617-2839-4a5b6c7d8e9f", l->disk_guid);
	l->esp.number = 1;
	l->esp.offset = 1 << 20;
	l->esp.size = 260 << 20;
	memcpy(l->esp.guid, guid_disk, 16);
	l->windows.number = 3;
	l->windows.offset = 277ull << 20;
	l->windows.size = 1ull << 30;
	wtg_bcd_parse_guid("fedcba98-7654-3210-fedc-ba9876543210", l->windows.guid);
}

TEST(device_gpt)
{
	struct wtg_flush_layout l;
	gpt_layout(&l);
	uint8_t dev[WTG_BCD_DEVICE_SIZE], want[WTG_BCD_DEVICE_SIZE] = {0};
	wtg_bcd_encode_device(&l, &l.esp, dev);
	want[0x10] = 6;
	want[0x18] = 0x48;
	memcpy(want + 0x20, guid_disk, 16);
	/* 0x34: partition style 0 (GPT) */
	static const uint8_t disk[16] = {0xd3, 0xc2, 0xb1, 0xa0, 0xf5, 0xe4, 0x17, 0x06,
					 0x28, 0x39, 0x4a, 0x5b, 0x6c, 0x7d, 0x8e, 0x9f};
	memcpy(want + 0x38, disk, 16);
	CHECK(memcmp(dev, want, sizeof(want)) == 0);
}

TEST(device_mbr)
{
	struct wtg_flush_layout l;
	memset(&l, 0, sizeof(l));
	l.scheme = WTG_FLUSH_MBR;
	l.sector_size = 4096;
	l.mbr_signature = 0x1a2b3c4d;
	l.windows.offset = 0x15e00000ull + (5ull << 32);
	uint8_t dev[WTG_BCD_DEVICE_SIZE], want[WTG_BCD_DEVICE_SIZE] = {0};
	wtg_bcd_encode_device(&l, &l.windows, dev);
	want[0x10] = 6;
	want[0x18] = 0x48;
	static const uint8_t off[8] = {0x00, 0x00, 0xe0, 0x15, 0x05, 0x00, 0x00, 0x00};
	memcpy(want + 0x20, off, 8);
	want[0x34] = 1;
	static const uint8_t sig[4] = {0x4d, 0x3c, 0x2b, 0x1a};
	memcpy(want + 0x38, sig, 4);
	CHECK(memcmp(dev, want, sizeof(want)) == 0);
}

TEST(values)
{
	uint8_t *d;
	size_t n;
	CHECK(wtg_bcd_encode_string("en-US", &d, &n) == 0);
	CHECK(n == 12 && memcmp(d, "e\0n\0-\0U\0S\0\0\0", 12) == 0);
	free(d);
	CHECK(wtg_bcd_encode_string("Ünï", &d, &n) == 0);
	CHECK(n == 8 && memcmp(d, "\xdc\0n\0\xef\0\0\0", 8) == 0);
	free(d);
	CHECK(wtg_bcd_encode_string("\xff", &d, &n) == -EINVAL);

	const char *keys[] = {"{a}", "{bc}"};
	CHECK(wtg_bcd_encode_list(keys, 2, &d, &n) == 0);
	CHECK(n == 20 && memcmp(d, "{\0a\0}\0\0\0{\0b\0c\0}\0\0\0\0\0", 20) == 0);
	free(d);
	CHECK(wtg_bcd_encode_list(keys, 0, &d, &n) == 0 && n == 2 && d[0] == 0 && d[1] == 0);
	free(d);

	uint8_t le[8];
	wtg_bcd_encode_integer(0x15000075, le);
	CHECK(memcmp(le, "\x75\x00\x00\x15\0\0\0\0", 8) == 0);
}

TEST(template_rules)
{
	CHECK(wtg_bcd_keeps_object(WTG_BCD_BOOTMGR));
	CHECK(wtg_bcd_keeps_object("{9DEA862C-5CDD-4E70-ACC1-F32B344D4795}"));
	CHECK(wtg_bcd_keeps_object(WTG_BCD_RESUMELOADERSETTINGS));
	CHECK(!wtg_bcd_keeps_object("{b012b84d-c47c-4ed5-b722-c0c42163e569}"));
	CHECK(!wtg_bcd_keeps_object("{466f5a88-0af2-4f76-9038-095b170dc21c}"));
	CHECK(!wtg_bcd_keeps_object("{9dea862c-5cdd-4e70-acc1-f32b344d4796}"));
	static const uint32_t tmpl[] = {0x45000001, 0x42000002, 0x42000003, 0x46000004,
					0x46000008, 0x47000005, 0x47000006};
	for (size_t i = 0; i < sizeof(tmpl) / sizeof(tmpl[0]); i++)
		CHECK(wtg_bcd_template_element(tmpl[i]));
	CHECK(!wtg_bcd_template_element(0x12000004));
	CHECK(!wtg_bcd_template_element(0x16000009));
}

static bool element_is(const struct wtg_bcd_object *o, uint32_t id, const void *data, size_t len)
{
	const struct wtg_bcd_element *e = o ? wtg_bcd_object_element(o, id) : NULL;
	return e && e->len == len && memcmp(e->data, data, len) == 0 &&
	       e->reg_type == wtg_bcd_reg_type(id);
}

static bool string_is(const struct wtg_bcd_object *o, uint32_t id, const char *s)
{
	uint8_t *d;
	size_t n;
	if (wtg_bcd_encode_string(s, &d, &n))
		return false;
	bool ok = element_is(o, id, d, n);
	free(d);
	return ok;
}

TEST(object_set)
{
	struct wtg_flush_layout l;
	gpt_layout(&l);
	struct wtg_bcd_params p = {.layout = &l, .recovery_off = true};
	strcpy(p.loader_key, "{11111111-2222-4333-8444-555555555555}");
	strcpy(p.resume_key, "{66666666-7777-4888-8999-aaaaaaaaaaaa}");
	struct wtg_bcd bcd;
	CHECK(wtg_bcd_build(&p, &bcd) == 0);
	CHECK(bcd.nobjects == 11);
	CHECK(!strcmp(bcd.objects[0].key, WTG_BCD_BOOTMGR));
	const char *known[] = {WTG_BCD_BOOTMGR, p.loader_key, p.resume_key, WTG_BCD_MEMDIAG,
			       WTG_BCD_GLOBALSETTINGS, WTG_BCD_DBGSETTINGS, WTG_BCD_EMSSETTINGS,
			       WTG_BCD_BADMEMORY, WTG_BCD_BOOTLOADERSETTINGS,
			       WTG_BCD_HYPERVISORSETTINGS, WTG_BCD_RESUMELOADERSETTINGS};
	for (size_t i = 0; i < 11; i++)
		CHECK(wtg_bcd_find(&bcd, known[i]) == &bcd.objects[i]);
	for (size_t i = 0; i < bcd.nobjects; i++)
		for (size_t j = 0; j < bcd.objects[i].nelements; j++)
			CHECK(bcd.objects[i].elements[j].reg_type ==
			      wtg_bcd_reg_type(bcd.objects[i].elements[j].id));

	uint8_t esp[WTG_BCD_DEVICE_SIZE], win[WTG_BCD_DEVICE_SIZE];
	wtg_bcd_encode_device(&l, &l.esp, esp);
	wtg_bcd_encode_device(&l, &l.windows, win);
	const struct wtg_bcd_object *mgr = wtg_bcd_find(&bcd, WTG_BCD_BOOTMGR);
	const struct wtg_bcd_object *ldr = wtg_bcd_find(&bcd, p.loader_key);
	const struct wtg_bcd_object *res = wtg_bcd_find(&bcd, p.resume_key);
	const struct wtg_bcd_object *mem = wtg_bcd_find(&bcd, WTG_BCD_MEMDIAG);
	CHECK(mgr->type == WTG_BCD_TYPE_BOOTMGR && ldr->type == WTG_BCD_TYPE_OSLOADER);
	CHECK(res->type == WTG_BCD_TYPE_RESUME && mem->type == WTG_BCD_TYPE_MEMDIAG);
	CHECK(element_is(mgr, WTG_BCD_E_DEVICE, esp, sizeof(esp)));
	CHECK(element_is(mem, WTG_BCD_E_DEVICE, esp, sizeof(esp)));
	CHECK(element_is(ldr, WTG_BCD_E_DEVICE, win, sizeof(win)));
	CHECK(element_is(ldr, WTG_BCD_E_OSDEVICE, win, sizeof(win)));
	CHECK(element_is(res, WTG_BCD_E_OSDEVICE, win, sizeof(win)));
	CHECK(string_is(mgr, WTG_BCD_E_PATH, "\\EFI\\Microsoft\\Boot\\bootmgfw.efi"));
	CHECK(string_is(mgr, 0x23000003, p.loader_key));
	CHECK(string_is(mgr, 0x23000006, p.resume_key));
	CHECK(string_is(ldr, WTG_BCD_E_PATH, "\\Windows\\system32\\winload.efi"));
	CHECK(string_is(ldr, WTG_BCD_E_DESCRIPTION, "Windows"));
	CHECK(string_is(ldr, 0x12000005, "en-US"));
	CHECK(string_is(ldr, 0x22000002, "\\Windows"));
	CHECK(element_is(ldr, WTG_BCD_E_RECOVERY_ENABLED, "\0", 1));
	CHECK(element_is(mgr, 0x25000004, "\x1e\0\0\0\0\0\0\0", 8));
	CHECK(element_is(ldr, 0x250000c2, "\x01\0\0\0\0\0\0\0", 8));
	CHECK(wtg_bcd_find(&bcd, WTG_BCD_BADMEMORY)->nelements == 0);
	wtg_bcd_release(&bcd);

	p.recovery_off = false;
	p.description = "Windows 10 Pro";
	p.locale = "de-DE";
	CHECK(wtg_bcd_build(&p, &bcd) == 0);
	ldr = wtg_bcd_find(&bcd, p.loader_key);
	CHECK(wtg_bcd_object_element(ldr, WTG_BCD_E_RECOVERY_ENABLED) == NULL);
	CHECK(string_is(ldr, WTG_BCD_E_DESCRIPTION, "Windows 10 Pro"));
	CHECK(string_is(wtg_bcd_find(&bcd, WTG_BCD_BOOTMGR), 0x12000005, "de-DE"));
	wtg_bcd_release(&bcd);

	l.scheme = WTG_FLUSH_MBR;
	l.mbr_signature = 0xdeadbeef;
	p.recovery_off = true;
	CHECK(wtg_bcd_build(&p, &bcd) == 0);
	wtg_bcd_encode_device(&l, &l.windows, win);
	CHECK(win[0x34] == 1 && win[0x38] == 0xef && win[0x3b] == 0xde);
	CHECK(element_is(wtg_bcd_find(&bcd, p.loader_key), WTG_BCD_E_OSDEVICE, win, sizeof(win)));
	wtg_bcd_release(&bcd);
}

TEST(esp_size)
{
	CHECK(wtg_flush_check_esp_size(32ull << 20, 512) == -EINVAL);
	CHECK(wtg_flush_check_esp_size(36ull << 20, 512) == 0);
	CHECK(wtg_flush_check_esp_size(350ull * 1000 * 1000, 512) == 0);
	CHECK(wtg_flush_check_esp_size(256ull << 20, 4096) == -EINVAL);
	CHECK(wtg_flush_check_esp_size(260ull << 20, 4096) == 0);
	CHECK(wtg_flush_check_esp_size(4ull << 30, 4096) == 0);
	CHECK(wtg_flush_check_esp_size(260ull << 20, 0) == -EINVAL);
}

int main(void)
{
	RUN(reg_types);
	RUN(guids);
	RUN(device_gpt);
	RUN(device_mbr);
	RUN(values);
	RUN(template_rules);
	RUN(object_set);
	RUN(esp_size);
	UNIT_EXIT();
}
