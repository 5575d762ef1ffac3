/*
 * fuzz_tls_name.c - libFuzzer target for SNI name matching
 * (src/tls_name.c).
 *
 * Input: a pattern, a newline, then the name a client would send (any
 * bytes, NULs included).  The pattern is checked with
 * tls_name_pattern_error against an independent validator; for a valid
 * pattern, tls_name_match must agree with an independent matcher
 * (RFC 6125 6.4.3), ignore ASCII case, accept one trailing dot on the
 * name, match the pattern itself (with a label for '*') and never match
 * a name with two more labels in place of '*'.  abort() on any mismatch.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls_name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ASCII lower case. */
static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Reference: is S (NUL-terminated) LDH labels of 1-63, 1-253 bytes? */
static bool
ref_host_ok(const char *s, size_t *labels)
{
	size_t n = strlen(s), start = 0;

	*labels = 0;
	if (n == 0 || n > TLS_NAME_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (s[i] != '.' && s[i] != '\0') {
			unsigned char c = (unsigned char)s[i];
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			      (c >= 'A' && c <= 'Z') || c == '-'))
				return false;
			continue;
		}
		size_t len = i - start;
		if (len == 0 || len > 63 || s[start] == '-' || s[i - 1] == '-')
			return false;
		(*labels)++;
		start = i + 1;
	}
	return true;
}

/* Reference: a valid server_names entry? */
static bool
ref_pattern_ok(const char *p)
{
	size_t labels;

	if (p[0] == '*' && p[1] == '.')
		return ref_host_ok(p + 2, &labels) && labels >= 2;
	return ref_host_ok(p, &labels);
}

/* Reference: case-insensitive equality of LEN bytes at A and string B. */
static bool
ref_equal(const char *a, size_t len, const char *b)
{
	if (strlen(b) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

/* Reference matcher. */
static bool
ref_match(const char *pat, const char *name, size_t len)
{
	size_t i;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || memchr(name, '\0', len) != NULL)
		return false;
	if (!(pat[0] == '*' && pat[1] == '.'))
		return ref_equal(name, len, pat);
	for (i = 0; i < len && name[i] != '.'; i++)
		;
	if (i == 0 || i == len)
		return false;
	return ref_equal(name + i + 1, len - i - 1, pat + 2);
}

/* Match NAME (LEN bytes, copied to an exact-size heap block) and compare
   with the reference. */
static bool
match(const char *pat, const char *name, size_t len)
{
	char *copy = malloc(len ? len : 1);
	bool got, want;

	if (copy == NULL)
		abort();
	if (len)
		memcpy(copy, name, len);
	got = tls_name_match(pat, copy, len);
	want = ref_match(pat, copy, len);
	free(copy);
	if (got != want)
		abort();
	return got;
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t plen = nl ? (size_t)(nl - data) : size;
	const char *name = nl ? (const char *)nl + 1 : "";
	size_t nlen = nl ? size - plen - 1 : 0;
	char *pat, *buf;
	const char *why;

	pat = malloc(plen + 1);
	buf = malloc(nlen + 2 * TLS_NAME_MAX + 8);
	if (pat == NULL || buf == NULL)
		abort();
	memcpy(pat, data, plen);
	pat[plen] = '\0'; /* an embedded NUL cuts it, as in a config value */

	why = tls_name_pattern_error(pat);
	if ((why == NULL) != ref_pattern_ok(pat) ||
	    (why != NULL && why[0] == '\0'))
		abort();
	if (tls_name_is_wildcard(pat) != (pat[0] == '*' && pat[1] == '.'))
		abort();
	if (why != NULL)
		goto out;

	bool m = match(pat, name, nlen);
	/* ASCII case does not matter. */
	for (size_t i = 0; i < nlen; i++) {
		unsigned char c = (unsigned char)name[i];
		buf[i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
	}
	if (match(pat, buf, nlen) != m)
		abort();
	/* One trailing dot does not matter either. */
	if (nlen > 0 && name[nlen - 1] != '.') {
		memcpy(buf, name, nlen);
		buf[nlen] = '.';
		if (match(pat, buf, nlen + 1) != m)
			abort();
	}
	/* The pattern matches itself, '*' standing for one label... */
	size_t len = strlen(pat);
	if (tls_name_is_wildcard(pat)) {
		buf[0] = 'x';
		memcpy(buf + 1, pat + 1, len - 1);
		if (!match(pat, buf, len))
			abort();
		/* ... but never for two, nor for none. */
		memcpy(buf, "a.b", 3);
		memcpy(buf + 3, pat + 1, len - 1);
		if (match(pat, buf, len + 2))
			abort();
		if (match(pat, pat + 2, len - 2))
			abort();
	} else if (!match(pat, pat, len)) {
		abort();
	}
out:
	free(pat);
	free(buf);
	return 0;
}
