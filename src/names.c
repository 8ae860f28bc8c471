/*
 * Windows name rules: folding for case-insensitive lookup and validity.
 */
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <string.h>
#include <wctype.h>

#include "wtgfs/names.h"

static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void utf8_locale_init(void)
{
	utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/*
 * Decodes one code point at @s (at most @len bytes).  Returns its length in
 * bytes and sets *cp; a byte that does not start a well-formed sequence
 * decodes as itself with the high bit set out of Unicode's range, so it can
 * only equal the same byte.  Surrogates (WTF-8) decode as code points and
 * fold to themselves.
 */
static size_t decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		v = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		v = c & 0x07;
	} else {
		goto invalid;
	}
	if (n > len)
		goto invalid;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			goto invalid;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)))
		goto invalid;
	*cp = v;
	return n;
invalid:
	*cp = 0x80000000u | c;
	return 1;
}

static uint32_t fold(uint32_t cp)
{
	if (cp < 0x80)
		return (cp >= 'a' && cp <= 'z') ? cp - 32 : cp;
	if (cp >= 0xD800 && cp <= 0xDFFF)
		return cp;
	if (cp & 0x80000000u)
		return cp;
	pthread_once(&utf8_once, utf8_locale_init);
	if (!utf8_locale)
		return cp;
	return (uint32_t)towupper_l((wint_t)cp, utf8_locale);
}

uint32_t wtg_name_hash(const char *name, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;
	uint32_t h = 2166136261u;

	while (len) {
		uint32_t cp;
		size_t n = decode(s, len, &cp);
		cp = fold(cp);
		for (int i = 0; i < 4; i++) {
			h ^= (cp >> (8 * i)) & 0xFF;
			h *= 16777619u;
		}
		s += n;
		len -= n;
	}
	return h;
}

bool wtg_name_equal_ci(const char *a, size_t alen, const char *b, size_t blen)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;

	while (alen && blen) {
		uint32_t ca, cb;
		size_t na = decode(x, alen, &ca), nb = decode(y, blen, &cb);
		if (ca != cb && fold(ca) != fold(cb))
			return false;
		x += na;
		alen -= na;
		y += nb;
		blen -= nb;
	}
	return alen == 0 && blen == 0;
}

bool wtg_name_posix_ok(const char *name, size_t len)
{
	if (len == 0 || (len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return !memchr(name, '/', len) && !memchr(name, '\0', len);
}

static bool is_reserved_device(const char *name, size_t len)
{
	static const char *const three[] = {"CON", "PRN", "AUX", "NUL"};
	size_t base = len;
	const char *dot = memchr(name, '.', len);

	if (dot)
		base = (size_t)(dot - name);
	/* Windows also ignores trailing spaces before the extension. */
	while (base && name[base - 1] == ' ')
		base--;
	if (base == 3) {
		for (size_t i = 0; i < 4; i++)
			if (!strncasecmp(name, three[i], 3))
				return true;
	}
	if (base == 4 && (!strncasecmp(name, "COM", 3) || !strncasecmp(name, "LPT", 3)) &&
	    name[3] >= '1' && name[3] <= '9')
		return true;
	return false;
}

bool wtg_name_windows_ok(const char *name, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t units = 0;

	if (!wtg_name_posix_ok(name, len))
		return false;
	if (name[len - 1] == '.' || name[len - 1] == ' ')
		return false;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = decode(s + i, len - i, &cp);
		if (cp < 0x20 || (cp < 0x80 && strchr("\\:*?\"<>|", (int)cp) != NULL))
			return false;
		units += cp >= 0x10000 && !(cp & 0x80000000u) ? 2 : 1;
		i += n;
	}
	return units <= 255 && !is_reserved_device(name, len);
}

long wtg_utf16le_to_utf8(const uint8_t *in, size_t units, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < units; i++) {
		uint32_t cp = (uint32_t)in[2 * i] | (uint32_t)in[2 * i + 1] << 8;
		if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < units) {
			uint32_t lo = (uint32_t)in[2 * i + 2] | (uint32_t)in[2 * i + 3] << 8;
			if (lo >= 0xDC00 && lo <= 0xDFFF) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				i++;
			}
		}
		unsigned char b[4];
		size_t n;
		if (cp < 0x80) {
			b[0] = (unsigned char)cp;
			n = 1;
		} else if (cp < 0x800) {
			b[0] = (unsigned char)(0xC0 | cp >> 6);
			b[1] = (unsigned char)(0x80 | (cp & 0x3F));
			n = 2;
		} else if (cp < 0x10000) {
			b[0] = (unsigned char)(0xE0 | cp >> 12);
			b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
			b[2] = (unsigned char)(0x80 | (cp & 0x3F));
			n = 3;
		} else {
			b[0] = (unsigned char)(0xF0 | cp >> 18);
			b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
			b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
			b[3] = (unsigned char)(0x80 | (cp & 0x3F));
			n = 4;
		}
		if (o + n + 1 > size)
			return -ENAMETOOLONG;
		memcpy(out + o, b, n);
		o += n;
	}
	if (o + 1 > size)
		return -ENAMETOOLONG;
	out[o] = '\0';
	return (long)o;
}

long wtg_utf8_to_utf16le(const char *in, size_t len, uint8_t *out, size_t units)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		uint32_t cp;
		i += decode(s + i, len - i, &cp);
		if (cp & 0x80000000u)
			return -EINVAL; /* not UTF-8: Windows cannot hold it */
		if (cp >= 0x10000) {
			if (o + 2 > units)
				return -ENAMETOOLONG;
			cp -= 0x10000;
			uint16_t hi = (uint16_t)(0xD800 | (cp >> 10)), lo = (uint16_t)(0xDC00 | (cp & 0x3FF));
			out[2 * o] = (uint8_t)hi;
			out[2 * o + 1] = (uint8_t)(hi >> 8);
			out[2 * o + 2] = (uint8_t)lo;
			out[2 * o + 3] = (uint8_t)(lo >> 8);
			o += 2;
		} else {
			if (o + 1 > units)
				return -ENAMETOOLONG;
			out[2 * o] = (uint8_t)cp;
			out[2 * o + 1] = (uint8_t)(cp >> 8);
			o++;
		}
	}
	return (long)o;
}
