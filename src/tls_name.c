/*
 * tls_name.c - PURE: server_names patterns and their matching against the
 * name a client sends in SNI (RFC 6066 3).
 */
#include "tls_name.h"

#include <string.h>

/* ASCII lower case, whatever the locale. */
static unsigned char
tls_name_lower(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch - 'A' + 'a') : ch;
}

/* ASCII letter or digit. */
static bool
tls_name_is_alnum(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= 'A' && ch <= 'Z');
}

/* NULL if S is a host name of LDH labels (RFC 1123 2.1), else why not;
   *LABELS gets the number of labels. */
static const char *
tls_name_host_error(const char *s, size_t *labels)
{
	size_t n = strlen(s), label = 0;

	*labels = 0;
	if (n == 0)
		return "empty name";
	if (n > TLS_NAME_MAX)
		return "name longer than 253 characters";
	for (size_t i = 0; i <= n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '.' || ch == '\0') {
			if (label == 0)
				return "empty label (two dots, or a dot at "
				       "either end)";
			if (s[i - 1] == '-')
				return "a label ends with '-'";
			(*labels)++;
			label = 0;
		} else if (tls_name_is_alnum(ch) || ch == '-') {
			if (label == 0 && ch == '-')
				return "a label starts with '-'";
			if (++label > 63)
				return "a label is longer than 63 characters";
		} else if (ch == '*') {
			return "'*' is only allowed as the whole first label, "
			       "like *.example.com";
		} else {
			return "names hold letters, digits, '-' and '.' only";
		}
	}
	return NULL;
}

/* Why PATTERN is not a valid server_names entry, or NULL. */
const char *
tls_name_pattern_error(const char *pattern)
{
	size_t labels;
	const char *why;

	if (tls_name_is_wildcard(pattern)) {
		why = tls_name_host_error(pattern + 2, &labels);
		if (why != NULL)
			return why;
		if (labels < 2)
			return "a wildcard needs at least two labels after "
			       "'*.', like *.example.com";
		return NULL;
	}
	return tls_name_host_error(pattern, &labels);
}

/* True if PATTERN starts with "*.". */
bool
tls_name_is_wildcard(const char *pattern)
{
	return pattern[0] == '*' && pattern[1] == '.';
}

/* Case-insensitive equality of A (LEN bytes) and the string B. */
static bool
tls_name_equal(const char *a, size_t len, const char *b)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (b[i] == '\0' ||
		    tls_name_lower((unsigned char)a[i]) !=
			    tls_name_lower((unsigned char)b[i]))
			return false;
	}
	return b[i] == '\0';
}

/* Does NAME (LEN bytes) match PATTERN? */
bool
tls_name_match(const char *pattern, const char *name, size_t len)
{
	const char *dot;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || memchr(name, '\0', len) != NULL)
		return false;
	if (!tls_name_is_wildcard(pattern))
		return tls_name_equal(name, len, pattern);
	/* RFC 6125 6.4.3: '*' covers exactly one non-empty leftmost label. */
	dot = memchr(name, '.', len);
	if (dot == NULL || dot == name)
		return false;
	return tls_name_equal(dot + 1, len - (size_t)(dot + 1 - name),
			      pattern + 2);
}
