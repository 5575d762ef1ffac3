/*
 * access.h - the request-level rules of access control (PURE: bytes in,
 * results out, no I/O, no globals): Origin normalisation, the real client
 * address behind trusted proxies (X-Forwarded-For, RFC 7239 Forwarded),
 * taking a token from the query string, a cookie or an Authorization
 * header, and redacting secrets from request targets before they are
 * logged.
 */
#ifndef WSGATE_ACCESS_H
#define WSGATE_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "netaddr.h"

/* Longest normalised origin kept; longer ones are refused. */
#define ACCESS_ORIGIN_MAX 288
/* Longest token taken from a request (bytes, after percent-decoding). */
#define ACCESS_TOKEN_MAX 256

/*
 * RFC 6454 7: an Origin "scheme://host[:port]" (LEN bytes at S) into OUT as
 * "scheme://host[:port]" with scheme and host in lower case, an IPv6 host
 * in its canonical form, and the port dropped when it is the scheme's
 * default (http/ws 80, https/wss 443).  Anything else (a path, user info,
 * "null", an empty host, a bad port) is refused: -1.  0 on success.
 */
int access_origin_normalize(const char *s, size_t len, char *out, size_t cap);

/* Which header names the client behind a trusted proxy. */
enum access_fwd_header {
	ACCESS_FWD_XFF,       /* X-Forwarded-For: addr, addr, ... */
	ACCESS_FWD_FORWARDED, /* RFC 7239: for=addr;..., for="[v6]:port" */
};

/* One header field value. */
struct access_str {
	const char *p;
	size_t len;
};

/*
 * The client address behind a chain of trusted proxies.  PEER is the
 * address that handed us the request (a trusted proxy); VALUES are the N
 * values of every field named by KIND, in the order received.  Elements are
 * read from the right: each trusted address is another hop and the walk
 * goes on; the first address that is not trusted is the client.  If the
 * list runs out, the left-most (trusted) address is the client; if an
 * element cannot be read (garbage, "unknown", an obfuscated identifier), the
 * hop that added it, the last address walked, is.  OUT receives the result
 * (PEER itself when there is no such header).
 */
void access_forwarded_client(enum access_fwd_header kind,
			     const struct access_str *values, size_t n,
			     const struct netaddr_net *trusted, size_t n_trusted,
			     const struct sockaddr_storage *peer,
			     struct sockaddr_storage *out);

/*
 * The value of the first parameter NAME in the query string Q (QLEN bytes,
 * without '?'), percent-decoded ('+' stays '+') into OUT (NUL-terminated).
 * Returns its length; -1 if absent; -2 if malformed, empty, longer than
 * CAP - 1 or not printable ASCII once decoded.
 */
int access_query_param(const char *q, size_t qlen, const char *name,
		       char *out, size_t cap);

/*
 * The value of cookie NAME in one Cookie field value V (RFC 6265 5.4:
 * "a=b; c=d"), surrounding double quotes removed.  Same returns.
 */
int access_cookie(const char *v, size_t vlen, const char *name, char *out,
		  size_t cap);

/*
 * The token of an "Authorization: Bearer TOKEN" value (RFC 6750 2.1; the
 * scheme is case-insensitive).  Same returns (-1 for another scheme).
 */
int access_bearer(const char *v, size_t vlen, char *out, size_t cap);

/*
 * Copy request target T (TLEN bytes) into OUT for a log line, with the
 * value of every query parameter whose name contains "token", "auth",
 * "key", "pass" or "secret" (case-insensitive) replaced by "REDACTED", and
 * everything in the path past the first KEEP_PATH bytes too (SIZE_MAX
 * keeps the whole path).  Non-printable bytes become '?'.  Always
 * NUL-terminates (CAP > 0); truncates with "..." if needed.
 */
void access_redact_target(const char *t, size_t tlen, size_t keep_path,
			  char *out, size_t cap);

/* The value of hex digit C (either case), or -1. */
int access_hex(char c);

#endif
