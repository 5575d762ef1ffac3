/*
 * fuzz_access.c - libFuzzer target for the access parsers
 * (src/access.c): Origin, X-Forwarded-For / Forwarded, the query string,
 * Cookie, Authorization and the log redaction of request targets.
 *
 * Byte 0 picks the parameter name, the output capacity and the header
 * kind; every parser then runs on the rest.  Each result is checked:
 * a normalised origin normalises to itself and only fits a smaller buffer
 * if it is shorter; a token is printable, as long as returned, and comes
 * back unchanged when written again (percent-encoded into a query,
 * quoted into a cookie, after "Bearer "); the client behind proxies is
 * the peer or an address that formats and parses back, and does not
 * change when the header values are joined with commas; a redacted
 * target is printable, NUL-terminated within its buffer, redacts to
 * itself again and holds no token value.  Outputs are exact-size heap
 * blocks so ASan sees any write past them.  abort() on any mismatch.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

/* Header values: at most this many, cut at '\n'. */
#define MAX_VALUES 8

/* An exact-size heap block of N bytes. */
static char *
block(size_t n)
{
	char *p = malloc(n ? n : 1);

	CHECK(p != NULL);
	return p;
}

/* Origin: normalises to itself; a smaller buffer fails or agrees. */
static void
fuzz_origin(const char *s, size_t len, size_t small)
{
	char *out = block(ACCESS_ORIGIN_MAX), *again = block(ACCESS_ORIGIN_MAX);
	char *tiny = block(small);

	if (access_origin_normalize(s, len, out, ACCESS_ORIGIN_MAX) == 0) {
		size_t n = strlen(out);
		CHECK(n < ACCESS_ORIGIN_MAX && memchr(out, '/', n) != NULL);
		for (size_t i = 0; out[i] != ':'; i++)
			CHECK(!(out[i] >= 'A' && out[i] <= 'Z'));
		CHECK(access_origin_normalize(out, n, again,
					      ACCESS_ORIGIN_MAX) == 0);
		CHECK(strcmp(out, again) == 0);
		if (access_origin_normalize(s, len, tiny, small) == 0)
			CHECK(n < small && strcmp(out, tiny) == 0);
		else
			CHECK(n >= small);
	} else {
		CHECK(access_origin_normalize(s, len, tiny, small) < 0);
	}
	free(out);
	free(again);
	free(tiny);
}

/* A token result: -1, -2, or a printable string of that length. */
static void
check_token(int rc, const char *out, size_t cap)
{
	CHECK(rc >= -2);
	if (rc < 0)
		return;
	CHECK((size_t)rc < cap && strlen(out) == (size_t)rc && rc > 0);
	for (int i = 0; i < rc; i++)
		CHECK(out[i] >= 0x21 && out[i] <= 0x7e);
}

/* Same result into a smaller buffer, unless it does not fit. */
static void
check_small(int rc, const char *out, int rc_small, const char *tiny,
	    size_t small)
{
	if (rc >= 0 && (size_t)rc < small)
		CHECK(rc_small == rc && strcmp(out, tiny) == 0);
	else if (rc >= 0)
		CHECK(rc_small == -2);
	else
		CHECK(rc_small == rc || rc == -2);
}

/* Query string: token checks, and every byte percent-encoded comes back. */
static void
fuzz_query(const char *q, size_t len, const char *name, size_t small)
{
	char *out = block(ACCESS_TOKEN_MAX), *tiny = block(small);
	int rc = access_query_param(q, len, name, out, ACCESS_TOKEN_MAX);

	check_token(rc, out, ACCESS_TOKEN_MAX);
	check_small(rc, out, access_query_param(q, len, name, tiny, small),
		    tiny, small);
	if (rc > 0) {
		size_t nl = strlen(name), el = nl + 1 + 3 * (size_t)rc + 4;
		char *enc = block(el), *back = block(ACCESS_TOKEN_MAX);
		size_t o = 0;
		o += (size_t)snprintf(enc, el, "x&%s=", name);
		for (int i = 0; i < rc; i++)
			o += (size_t)snprintf(enc + o, el - o, "%%%02X",
					      (unsigned char)out[i]);
		CHECK(access_query_param(enc, o, name, back,
					 ACCESS_TOKEN_MAX) == rc);
		CHECK(strcmp(out, back) == 0);
		free(enc);
		free(back);
	}
	free(out);
	free(tiny);
}

/* Cookie: token checks, and the value quoted comes back. */
static void
fuzz_cookie(const char *v, size_t len, const char *name, size_t small)
{
	char *out = block(ACCESS_TOKEN_MAX), *tiny = block(small);
	int rc = access_cookie(v, len, name, out, ACCESS_TOKEN_MAX);

	check_token(rc, out, ACCESS_TOKEN_MAX);
	check_small(rc, out, access_cookie(v, len, name, tiny, small), tiny,
		    small);
	if (rc > 0 && strchr(out, ';') == NULL) {
		size_t el = strlen(name) + (size_t)rc + 16;
		char *enc = block(el), *back = block(ACCESS_TOKEN_MAX);
		int n = snprintf(enc, el, "zz=b; %s=\"%s\" ;c", name, out);
		CHECK(access_cookie(enc, (size_t)n, name, back,
				    ACCESS_TOKEN_MAX) == rc);
		CHECK(strcmp(out, back) == 0);
		free(enc);
		free(back);
	}
	free(out);
	free(tiny);
}

/* Authorization: token checks, and "bEaReR TOKEN" gives it back. */
static void
fuzz_bearer(const char *v, size_t len, size_t small)
{
	char *out = block(ACCESS_TOKEN_MAX), *tiny = block(small);
	int rc = access_bearer(v, len, out, ACCESS_TOKEN_MAX);

	check_token(rc, out, ACCESS_TOKEN_MAX);
	check_small(rc, out, access_bearer(v, len, tiny, small), tiny, small);
	if (rc > 0) {
		size_t el = (size_t)rc + 16;
		char *enc = block(el), *back = block(ACCESS_TOKEN_MAX);
		int n = snprintf(enc, el, " bEaReR  %s\t", out);
		CHECK(access_bearer(enc, (size_t)n, back, ACCESS_TOKEN_MAX) ==
		      rc);
		CHECK(strcmp(out, back) == 0);
		free(enc);
		free(back);
	}
	free(out);
	free(tiny);
}

/* The client behind trusted proxies: the peer or a parsed address; the
   same whether the values come as several fields or joined by commas. */
static void
fuzz_forwarded(const char *s, size_t len, enum access_fwd_header kind)
{
	static const char *const nets[] = {"10.0.0.0/8", "192.168.0.0/16",
					   "::1/128", "fd00::/8"};
	struct netaddr_net trusted[4];
	struct access_str vals[MAX_VALUES];
	struct sockaddr_storage peer, out, joined, back;
	struct sockaddr_in *p4 = (struct sockaddr_in *)&peer;
	size_t n = 0, i = 0;
	bool balanced = true;
	char buf[NETADDR_STRLEN];

	for (size_t k = 0; k < 4; k++)
		CHECK(netaddr_parse_net(nets[k], &trusted[k]) == 0);
	memset(&peer, 0, sizeof(peer));
	p4->sin_family = AF_INET;
	p4->sin_port = htons(40000);
	p4->sin_addr.s_addr = htonl(0x0a000001); /* 10.0.0.1, trusted */
	while (n < MAX_VALUES && i <= len) {
		const char *nl = memchr(s + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - s) : len, quotes = 0;
		vals[n].p = s + i;
		vals[n].len = e - i;
		for (size_t k = i; k < e; k++)
			quotes += s[k] == '"';
		balanced = balanced && quotes % 2 == 0;
		n++;
		i = e + 1;
	}
	access_forwarded_client(kind, vals, n, trusted, 4, &peer, &out);
	if (memcmp(&out, &peer, sizeof(peer)) != 0) {
		netaddr_format((const struct sockaddr *)&out, buf, sizeof(buf));
		CHECK(netaddr_parse_hostport(buf, strlen(buf), &back) == 0);
		CHECK(memcmp(&back, &out, sizeof(out)) == 0);
	}
	/* RFC 9110 5.3: several fields mean the same as one joined by
	   commas.  A quote left open in one value swallows the next. */
	if (n > 1 && (kind == ACCESS_FWD_XFF || balanced)) {
		char *j = block(len + 1);
		size_t o = 0;
		struct access_str one;
		for (size_t k = 0; k < n; k++) {
			if (k > 0)
				j[o++] = ',';
			memcpy(j + o, vals[k].p, vals[k].len);
			o += vals[k].len;
		}
		one.p = j;
		one.len = o;
		access_forwarded_client(kind, &one, 1, trusted, 4, &peer,
					&joined);
		CHECK(memcmp(&out, &joined, sizeof(out)) == 0);
		free(j);
	}
}

/* True if all of the LEN bytes at S are printable. */
static bool
printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* Redaction: printable and bounded; without truncation and with a
   printable path it redacts to itself and no "token" value is left. */
static void
fuzz_redact(const char *t, size_t len, size_t keep, size_t cap)
{
	size_t big = 2 * len + 64 + 9 * len;
	char *out = block(cap), *full = block(big), *again = block(big);
	const char *qm = memchr(t, '?', len);
	size_t plen = qm ? (size_t)(qm - t) : len;

	access_redact_target(t, len, keep, out, cap);
	CHECK(strlen(out) < cap && printable(out, strlen(out)));
	access_redact_target(t, len, keep, full, big);
	size_t n = strlen(full);
	CHECK(n < big && printable(full, n));
	CHECK(n < 3 || memcmp(full + n - 3, "...", 3) != 0 ||
	      (len >= 3 && memcmp(t + len - 3, "...", 3) == 0));
	if (n + 4 <= cap) {
		CHECK(strcmp(out, full) == 0);
	} else if (cap >= 5) {
		/* truncated: a prefix of the whole, then "..." */
		size_t m = strlen(out);
		CHECK(m >= 3 && memcmp(out + m - 3, "...", 3) == 0);
		CHECK(strncmp(out, full, m - 3) == 0);
	}
	if (printable(t, plen < keep ? plen : keep)) {
		access_redact_target(full, n, keep, again, big);
		CHECK(strcmp(full, again) == 0);
		const char *q = strchr(full, '?');
		if (q != NULL) {
			char v[16];
			int rc = access_query_param(q + 1, strlen(q + 1),
						    "token", v, sizeof(v));
			CHECK(rc < 0 || strcmp(v, "REDACTED") == 0);
		}
	}
	free(out);
	free(full);
	free(again);
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"token", "wsgate_token", "a", ""};
	static const size_t smalls[] = {1, 2, 8, 17, 64, ACCESS_TOKEN_MAX,
					ACCESS_ORIGIN_MAX, 300};
	static const size_t keeps[] = {SIZE_MAX, 0, 1, 5};
	const char *s;
	size_t len, small;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	s = (const char *)data + 1;
	len = size - 1;
	small = smalls[(sel >> 2) & 7];

	fuzz_origin(s, len, small);
	fuzz_query(s, len, names[sel & 3], small);
	fuzz_cookie(s, len, names[sel & 3], small);
	fuzz_bearer(s, len, small);
	fuzz_forwarded(s, len,
		       sel & 0x20 ? ACCESS_FWD_FORWARDED : ACCESS_FWD_XFF);
	fuzz_redact(s, len, keeps[(sel >> 6) & 3], small);
	return 0;
}
