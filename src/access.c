/*
 * access.c - Origin normalisation, the client behind trusted proxies, token
 * carriers and log redaction (PURE; see access.h).
 */
#include "access.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Elements of X-Forwarded-For / Forwarded looked at, right-most first. */
#define ACCESS_FWD_ELEMS 64

/* ASCII lower case, whatever the locale. */
static char
access_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* True for ASCII letters and digits. */
static bool
access_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* RFC 6454 7 / RFC 3986 3: normalise an origin; see access.h. */
int
access_origin_normalize(const char *s, size_t len, char *out, size_t cap)
{
	char scheme[16], host[INET6_ADDRSTRLEN + 2];
	size_t i = 0, sl = 0, hl = 0;
	unsigned long port = 0;
	bool has_port = false;
	int n;

	/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
	if (len == 0 || !((s[0] >= 'a' && s[0] <= 'z') ||
			  (s[0] >= 'A' && s[0] <= 'Z')))
		return -1;
	for (; i < len && s[i] != ':'; i++) {
		if (!access_is_alnum(s[i]) && s[i] != '+' && s[i] != '-' &&
		    s[i] != '.')
			return -1;
		if (sl + 1 >= sizeof(scheme))
			return -1;
		scheme[sl++] = access_lower(s[i]);
	}
	scheme[sl] = '\0';
	if (len - i < 3 || memcmp(s + i, "://", 3) != 0)
		return -1;
	i += 3;
	if (i < len && s[i] == '[') {
		char tmp[INET6_ADDRSTRLEN + 1];
		struct in6_addr a6;
		const char *rb = memchr(s + i, ']', len - i);
		size_t al;
		if (rb == NULL)
			return -1;
		al = (size_t)(rb - (s + i)) - 1;
		if (al == 0 || al >= sizeof(tmp))
			return -1;
		memcpy(tmp, s + i + 1, al);
		tmp[al] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return -1;
		host[0] = '[';
		inet_ntop(AF_INET6, &a6, host + 1, sizeof(host) - 2);
		hl = strlen(host);
		host[hl++] = ']';
		host[hl] = '\0';
		i = (size_t)(rb - s) + 1;
	} else {
		for (; i < len && s[i] != ':'; i++) {
			if (!access_is_alnum(s[i]) && s[i] != '-' &&
			    s[i] != '.' && s[i] != '_')
				return -1;
			if (hl + 1 >= sizeof(host))
				return -1;
			host[hl++] = access_lower(s[i]);
		}
		if (hl == 0)
			return -1;
		host[hl] = '\0';
	}
	if (i < len) {
		if (s[i] != ':' || i + 1 == len || len - i - 1 > 5)
			return -1;
		for (i++; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return -1;
			port = port * 10 + (unsigned long)(s[i] - '0');
		}
		if (port < 1 || port > 65535)
			return -1;
		has_port = true;
	}
	if (has_port &&
	    (((strcmp(scheme, "http") == 0 || strcmp(scheme, "ws") == 0) &&
	      port == 80) ||
	     ((strcmp(scheme, "https") == 0 || strcmp(scheme, "wss") == 0) &&
	      port == 443)))
		has_port = false;
	if (has_port)
		n = snprintf(out, cap, "%s://%s:%lu", scheme, host, port);
	else
		n = snprintf(out, cap, "%s://%s", scheme, host);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Trim blanks (SP, HTAB) around [*P, *P + *LEN). */
static void
access_trim(const char **p, size_t *len)
{
	while (*len > 0 && (**p == ' ' || **p == '\t')) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && ((*p)[*len - 1] == ' ' || (*p)[*len - 1] == '\t'))
		(*len)--;
}

/* The address in one Forwarded element ("for=...;proto=..."); 0 or -1. */
static int
access_forwarded_for(const char *e, size_t len, struct sockaddr_storage *out)
{
	size_t i = 0;

	while (i < len) {
		size_t start = i;
		bool quoted = false;
		/* one pair, up to an unquoted ';' */
		for (; i < len && (quoted || e[i] != ';'); i++)
			if (e[i] == '"')
				quoted = !quoted;
		const char *pr = e + start;
		size_t pl = i - start;
		i++;
		access_trim(&pr, &pl);
		const char *eq = memchr(pr, '=', pl);
		if (eq == NULL)
			continue;
		const char *name = pr;
		size_t nl = (size_t)(eq - pr);
		access_trim(&name, &nl);
		if (nl != 3 || strncasecmp(name, "for", 3) != 0)
			continue;
		const char *v = eq + 1;
		size_t vl = (size_t)(pr + pl - v);
		access_trim(&v, &vl);
		if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
			v++;
			vl -= 2;
			if (memchr(v, '\\', vl) != NULL || memchr(v, '"', vl))
				return -1;
		}
		return netaddr_parse_hostport(v, vl, out);
	}
	return -1;
}

/* The client behind trusted proxies; see access.h. */
void
access_forwarded_client(enum access_fwd_header kind,
			const struct access_str *values, size_t n,
			const struct netaddr_net *trusted, size_t n_trusted,
			const struct sockaddr_storage *peer,
			struct sockaddr_storage *out)
{
	struct access_str el[ACCESS_FWD_ELEMS];
	size_t count = 0; /* elements seen; the last ACCESS_FWD_ELEMS kept */

	*out = *peer;
	for (size_t f = 0; f < n; f++) {
		const char *v = values[f].p;
		size_t len = values[f].len, i = 0;
		while (i <= len) {
			size_t start = i;
			bool quoted = false;
			for (; i < len && (quoted || v[i] != ','); i++)
				if (kind == ACCESS_FWD_FORWARDED && v[i] == '"')
					quoted = !quoted;
			const char *p = v + start;
			size_t pl = i - start;
			i++;
			access_trim(&p, &pl);
			if (pl == 0)
				continue; /* RFC 9110 5.6.1: empty elements */
			el[count % ACCESS_FWD_ELEMS].p = p;
			el[count % ACCESS_FWD_ELEMS].len = pl;
			count++;
		}
	}
	for (size_t k = 0; k < count && k < ACCESS_FWD_ELEMS; k++) {
		const struct access_str *e = &el[(count - 1 - k) %
						 ACCESS_FWD_ELEMS];
		struct sockaddr_storage a;
		int rc = kind == ACCESS_FWD_XFF
				 ? netaddr_parse_hostport(e->p, e->len, &a)
				 : access_forwarded_for(e->p, e->len, &a);
		if (rc < 0)
			return; /* the last hop walked added it */
		*out = a;
		if (!netaddr_nets_contain(trusted, n_trusted,
					  (struct sockaddr *)&a))
			return;
	}
}

/* Hex digit value, or -1. */
int
access_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Copy V (LEN bytes) into OUT, percent-decoding if DECODE; the returns of
   access_query_param. */
static int
access_copy_token(const char *v, size_t len, bool decode, char *out,
		  size_t cap)
{
	size_t o = 0;

	if (len == 0 || cap == 0)
		return -2;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (decode && c == '%') {
			int hi, lo;
			if (i + 2 >= len)
				return -2;
			hi = access_hex(v[i + 1]);
			lo = access_hex(v[i + 2]);
			if (hi < 0 || lo < 0)
				return -2;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c < 0x21 || c > 0x7e || o + 1 >= cap)
			return -2;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (int)o;
}

/* Query parameter NAME; see access.h. */
int
access_query_param(const char *q, size_t qlen, const char *name, char *out,
		   size_t cap)
{
	size_t nl = strlen(name), i = 0;

	while (i < qlen) {
		const char *amp = memchr(q + i, '&', qlen - i);
		size_t end = amp ? (size_t)(amp - q) : qlen;
		const char *eq = memchr(q + i, '=', end - i);
		size_t klen = eq ? (size_t)(eq - (q + i)) : end - i;
		if (klen == nl && memcmp(q + i, name, nl) == 0) {
			if (eq == NULL)
				return -2;
			return access_copy_token(eq + 1, end - klen - i - 1,
						 true, out, cap);
		}
		i = end + 1;
	}
	return -1;
}

/* Cookie NAME in one Cookie value; see access.h. */
int
access_cookie(const char *v, size_t vlen, const char *name, char *out,
	      size_t cap)
{
	size_t nl = strlen(name), i = 0;

	while (i < vlen) {
		const char *semi = memchr(v + i, ';', vlen - i);
		size_t end = semi ? (size_t)(semi - v) : vlen;
		const char *p = v + i;
		size_t pl = end - i;
		access_trim(&p, &pl);
		const char *eq = memchr(p, '=', pl);
		if (eq != NULL && (size_t)(eq - p) == nl &&
		    memcmp(p, name, nl) == 0) {
			const char *val = eq + 1;
			size_t vl = pl - nl - 1;
			if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
				val++;
				vl -= 2;
			}
			return access_copy_token(val, vl, false, out, cap);
		}
		i = end + 1;
	}
	return -1;
}

/* "Bearer TOKEN"; see access.h. */
int
access_bearer(const char *v, size_t vlen, char *out, size_t cap)
{
	const char *p = v;
	size_t len = vlen;

	access_trim(&p, &len);
	if (len == 6 && strncasecmp(p, "Bearer", 6) == 0)
		return -2; /* the scheme without a token */
	if (len < 7 || strncasecmp(p, "Bearer", 6) != 0 || p[6] != ' ')
		return -1;
	p += 7;
	len -= 7;
	access_trim(&p, &len);
	return access_copy_token(p, len, false, out, cap);
}

/* True if query parameter name N (LEN bytes) may hold a secret. */
static bool
access_is_secret_name(const char *n, size_t len)
{
	static const char *const words[] = {"token", "auth", "key", "pass",
					    "secret"};

	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		size_t wl = strlen(words[w]);
		for (size_t i = 0; i + wl <= len; i++)
			if (strncasecmp(n + i, words[w], wl) == 0)
				return true;
	}
	return false;
}

/* Append LEN bytes of S to OUT at *O (printable only), leaving room for
   "..." and a NUL; sets *TRUNC when something did not fit. */
static void
access_put(char *out, size_t cap, size_t *o, const char *s, size_t len,
	   bool *trunc)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (*o + 4 >= cap) {
			*trunc = true;
			return;
		}
		out[(*o)++] = (c >= 0x21 && c < 0x7f) ? (char)c : '?';
	}
}

/* Redact a request target for logs; see access.h. */
void
access_redact_target(const char *t, size_t tlen, size_t keep_path, char *out,
		     size_t cap)
{
	static const char red[] = "REDACTED";
	const char *qm = memchr(t, '?', tlen);
	size_t plen = qm ? (size_t)(qm - t) : tlen, o = 0;
	bool trunc = false;

	if (cap < 5) {
		if (cap > 0)
			out[0] = '\0';
		return;
	}
	if (plen > keep_path) {
		access_put(out, cap, &o, t, keep_path, &trunc);
		access_put(out, cap, &o, red, sizeof(red) - 1, &trunc);
	} else {
		access_put(out, cap, &o, t, plen, &trunc);
	}
	if (qm != NULL) {
		size_t i = plen + 1;
		access_put(out, cap, &o, "?", 1, &trunc);
		while (i <= tlen) {
			const char *amp = memchr(t + i, '&', tlen - i);
			size_t end = amp ? (size_t)(amp - t) : tlen;
			const char *eq = memchr(t + i, '=', end - i);
			size_t klen = eq ? (size_t)(eq - (t + i)) : end - i;
			if (eq != NULL && access_is_secret_name(t + i, klen)) {
				access_put(out, cap, &o, t + i, klen + 1, &trunc);
				access_put(out, cap, &o, red, sizeof(red) - 1, &trunc);
			} else {
				access_put(out, cap, &o, t + i, end - i, &trunc);
			}
			if (amp == NULL)
				break;
			access_put(out, cap, &o, "&", 1, &trunc);
			i = end + 1;
		}
	}
	if (trunc) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}
