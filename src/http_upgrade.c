/*
 * http_upgrade.c - incremental HTTP/1.1 WebSocket upgrade request parser,
 * accept key and response builder (PURE: no sockets, no libevent, no
 * globals; OpenSSL is used only for SHA-1 and base64 encoding).
 *
 * The parser is a byte-at-a-time state machine: every byte is looked at
 * once, appended to a buffer the parser owns (grown by doubling, never past
 * max_header_bytes), and the positions of the request-line parts and header
 * fields are recorded as offsets while scanning.  Nothing is rescanned per
 * byte, so a client trickling its request one byte per read costs O(n).
 *
 * Strictness (each is a deliberate choice, see the comments where applied):
 *  - lines must end with CRLF; a bare LF is rejected as malformed even though
 *    RFC 9112 2.2 lets a recipient accept it, and a CR not followed by LF is
 *    HTTP_ERR_BARE_CR (RFC 9112 2.2: MUST treat as invalid or replace);
 *  - empty lines before the request line are not skipped (RFC 9112 2.2 SHOULD
 *    ignore at least one; a WebSocket client never sends them);
 *  - obs-fold is rejected (RFC 9112 5.2), as is whitespace between a field
 *    name and its colon (RFC 9112 5.1);
 *  - Sec-WebSocket-Key must be canonical base64 (zero pad bits, RFC 4648 3.5).
 *
 * Order of checks:
 *  1. while scanning, byte by byte: limits (request line length, head size,
 *     field count), then the syntax of the byte in its context (method token,
 *     origin-form target, CR/LF, field name token, field value characters);
 *  2. at the end of the request line: HTTP version (400 if not HTTP/d.d, 505
 *     unless 1.1 or a higher 1.x), then the method (405 unless GET);
 *  3. after the blank line ending the head (RFC 6455 4.2.1): Host exactly
 *     once and not empty, at most one Sec-WebSocket-Key, then Upgrade:
 *     without the token "websocket" the request is a plain GET and only the
 *     body check follows;
 *     with it: Connection contains "upgrade", Sec-WebSocket-Version is exactly
 *     one field "13", Sec-WebSocket-Key present and 16 bytes of base64, and
 *     finally no body (Content-Length other than 0, or Transfer-Encoding).
 *
 * On ERROR, *consumed counts every byte up to and including the byte at which
 * the error was detected (for checks made after the head, the whole head).
 */
#include "http_upgrade.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>


/* First buffer size; doubled as the head grows, capped by the limit. */
#define HTTP_BUF_INITIAL 256
#define HTTP_FIELDS_INITIAL 16
#define HTTP_NONE ((size_t)-1)

/* Parser states: X(name). */
#define HTTP_STATES(X)                                                         \
	X(ST_METHOD)       /* request line: method token */                   \
	X(ST_TARGET_START) /* request line: first byte of the target */       \
	X(ST_TARGET)       /* request line: rest of the target */             \
	X(ST_VERSION)      /* request line: HTTP-version */                   \
	X(ST_LINE_START)   /* first byte of a field line or the blank line */ \
	X(ST_NAME)         /* field name */                                   \
	X(ST_VALUE)        /* field value */                                  \
	X(ST_CR)           /* saw CR; LF must follow (ctx says where) */      \
	X(ST_DONE)                                                             \
	X(ST_ERROR)

enum http_state {
#define HTTP_STATE_ENUM_(name) name,
	HTTP_STATES(HTTP_STATE_ENUM_)
#undef HTTP_STATE_ENUM_
};

/* A header field as offsets into the head buffer (stable across realloc). */
struct http_field_off {
	size_t name_off, name_len;
	size_t value_off, value_len;
};

struct http_upgrade {
	struct http_limits limits;
	enum http_state state;
	enum http_state cr_ctx; /* the state in which the CR was seen */
	enum http_upgrade_error err;
	bool is_websocket;

	char *buf; /* the head as received, CRLFs included */
	size_t len, cap;

	/* Request line: method is [0, method_len). */
	size_t rl_len; /* request line bytes so far, CRLF excluded */
	size_t method_len;
	size_t target_off, target_len;
	size_t query_off; /* first byte after '?', HTTP_NONE if no '?' */
	size_t version_off;

	/* Field being scanned. */
	size_t cur_name_off, cur_name_len;
	size_t cur_value_off, cur_value_end; /* HTTP_NONE until a non-OWS byte */

	struct http_field_off *offs;
	size_t nfields, offs_cap;
	struct http_field *fields; /* pointer views, built once on DONE */

	size_t host_i, origin_i, key_i; /* field indexes, HTTP_NONE if absent */
};

/* The view returned by accessors when there is nothing to show. */
static const struct http_str http_str_empty = {"", 0};

/* The HTTP status of ERR. */
int http_upgrade_error_status(enum http_upgrade_error err)
{
	switch (err) {
#define HTTP_UPGRADE_STATUS_(name, status, text)                               \
	case name:                                                             \
		return status;
		HTTP_UPGRADE_ERRORS(HTTP_UPGRADE_STATUS_)
#undef HTTP_UPGRADE_STATUS_
	}
	return 500;
}

/* The short text of ERR. */
const char *http_upgrade_error_text(enum http_upgrade_error err)
{
	switch (err) {
#define HTTP_UPGRADE_TEXT_(name, status, text)                                 \
	case name:                                                             \
		return text;
		HTTP_UPGRADE_ERRORS(HTTP_UPGRADE_TEXT_)
#undef HTTP_UPGRADE_TEXT_
	}
	return "unknown error";
}

/* RFC 9110 5.6.2: tchar. */
static bool http_is_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* ASCII lower case, independent of the locale. */
static char http_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* True if the LEN bytes at A equal the NUL-terminated B, ignoring case. */
static bool http_ieq(const char *a, size_t len, const char *b)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] == '\0' || http_lower(a[i]) != http_lower(b[i]))
			return false;
	return b[len] == '\0';
}

/* A new parser copying LIMITS. */
struct http_upgrade *http_upgrade_new(const struct http_limits *limits)
{
	struct http_upgrade *p;

	if (limits == NULL)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->limits = *limits;
	p->state = ST_METHOD;
	p->err = HTTP_ERR_NONE;
	p->query_off = HTTP_NONE;
	p->host_i = p->origin_i = p->key_i = HTTP_NONE;
	return p;
}

/* Free P and its buffers. */
void http_upgrade_free(struct http_upgrade *p)
{
	if (p == NULL)
		return;
	free(p->buf);
	free(p->offs);
	free(p->fields);
	free(p);
}

/* Append byte C to the head buffer; the caller has checked the limit. */
static int http_append(struct http_upgrade *p, uint8_t c)
{
	if (p->len == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : HTTP_BUF_INITIAL;
		char *nbuf;

		if (ncap < p->cap || ncap > p->limits.max_header_bytes)
			ncap = p->limits.max_header_bytes;
		if (ncap <= p->len)
			return -1;
		nbuf = realloc(p->buf, ncap);
		if (nbuf == NULL)
			return -1;
		p->buf = nbuf;
		p->cap = ncap;
	}
	p->buf[p->len++] = (char)c;
	return 0;
}

/* Record the field that just ended; the count limit was checked at its start. */
static int http_push_field(struct http_upgrade *p)
{
	struct http_field_off *f;

	if (p->nfields == p->offs_cap) {
		size_t ncap = p->offs_cap ? p->offs_cap * 2 : HTTP_FIELDS_INITIAL;
		struct http_field_off *n;

		if (ncap > p->limits.max_headers)
			ncap = p->limits.max_headers;
		if (ncap <= p->nfields)
			return -1;
		n = realloc(p->offs, ncap * sizeof(*n));
		if (n == NULL)
			return -1;
		p->offs = n;
		p->offs_cap = ncap;
	}
	f = &p->offs[p->nfields++];
	f->name_off = p->cur_name_off;
	f->name_len = p->cur_name_len;
	if (p->cur_value_off == HTTP_NONE) {
		f->value_off = p->len; /* empty value: point at the CR */
		f->value_len = 0;
	} else {
		f->value_off = p->cur_value_off;
		f->value_len = p->cur_value_end - p->cur_value_off;
	}
	return 0;
}

/* RFC 9112 2.3: HTTP-version; 0 if acceptable, else the error. */
static enum http_upgrade_error http_check_version(const char *v, size_t len)
{
	/* HTTP-version = "HTTP/" DIGIT "." DIGIT (case-sensitive) */
	if (len != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' ||
	    v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9')
		return HTTP_ERR_MALFORMED;
	/* RFC 6455 4.1: the handshake needs HTTP/1.1 or higher; a 1.x minor
	 * above 1 is compatible (RFC 9110 2.5), any other major is not. */
	if (v[5] != '1' || v[7] == '0')
		return HTTP_ERR_HTTP_VERSION;
	return HTTP_ERR_NONE;
}

/* RFC 4648 4: the value of a base64 character, -1 if not in the alphabet. */
static int http_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* RFC 6455 4.2.1 item 5: KEY must be base64 of exactly 16 bytes. */
static bool http_key_is_valid(struct http_str key)
{
	size_t i;
	int v;

	/* 16 bytes = 5 full groups + 1 byte: 22 characters and "==". */
	if (key.len != 24 || key.p[22] != '=' || key.p[23] != '=')
		return false;
	for (i = 0; i < 22; i++)
		if (http_b64_value(key.p[i]) < 0)
			return false;
	/* RFC 4648 3.5: the 4 pad bits of the last character must be zero. */
	v = http_b64_value(key.p[21]);
	return (v & 0x0f) == 0;
}

/* RFC 9110 5.6.1: the next non-empty list element of S[*POS..LEN), OWS trimmed. */
static bool http_next_element(const char *s, size_t len, size_t *pos,
			      struct http_str *out)
{
	size_t i = *pos;

	while (i < len) {
		size_t start, end;

		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
			i++;
		start = i;
		while (i < len && s[i] != ',')
			i++;
		end = i;
		while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
			end--;
		if (end > start) {
			out->p = s + start;
			out->len = end - start;
			*pos = i;
			return true;
		}
	}
	*pos = len;
	return false;
}

/* True if the comma-separated list VALUE has TOKEN, ignoring case. */
bool http_list_has_token(struct http_str value, const char *token)
{
	struct http_str el;
	size_t pos = 0;

	if (value.p == NULL || token == NULL)
		return false;
	while (http_next_element(value.p, value.len, &pos, &el))
		if (http_ieq(el.p, el.len, token))
			return true;
	return false;
}

/* Number of fields named NAME; *FIRST gets the index of the first. */
static size_t http_count(const struct http_upgrade *p, const char *name,
			 size_t *first)
{
	size_t i, n = 0;

	if (first != NULL)
		*first = HTTP_NONE;
	for (i = 0; i < p->nfields; i++) {
		if (!http_ieq(p->fields[i].name.p, p->fields[i].name.len, name))
			continue;
		if (n == 0 && first != NULL)
			*first = i;
		n++;
	}
	return n;
}

/* True if any field named NAME lists TOKEN. */
static bool http_any_has_token(const struct http_upgrade *p, const char *name,
			       const char *token)
{
	size_t i;

	for (i = 0; i < p->nfields; i++)
		if (http_ieq(p->fields[i].name.p, p->fields[i].name.len, name) &&
		    http_list_has_token(p->fields[i].value, token))
			return true;
	return false;
}

/* RFC 9112 6.3: true if the request announces a body. */
static bool http_has_body(const struct http_upgrade *p)
{
	size_t i, j;

	for (i = 0; i < p->nfields; i++) {
		const struct http_field *f = &p->fields[i];

		if (http_ieq(f->name.p, f->name.len, "transfer-encoding"))
			return true;
		if (!http_ieq(f->name.p, f->name.len, "content-length"))
			continue;
		/* Only a plain zero (leading zeros allowed) is no body. */
		if (f->value.len == 0)
			return true;
		for (j = 0; j < f->value.len; j++)
			if (f->value.p[j] != '0')
				return true;
	}
	return false;
}

/* The head is complete: build field views and apply RFC 6455 4.2.1. */
static enum http_upgrade_error http_finish_head(struct http_upgrade *p)
{
	size_t i, nver, vi;

	if (p->nfields > 0) {
		p->fields = calloc(p->nfields, sizeof(*p->fields));
		if (p->fields == NULL)
			return HTTP_ERR_HEADERS_TOO_LARGE; /* cannot hold it */
	}
	for (i = 0; i < p->nfields; i++) {
		p->fields[i].name.p = p->buf + p->offs[i].name_off;
		p->fields[i].name.len = p->offs[i].name_len;
		p->fields[i].value.p = p->buf + p->offs[i].value_off;
		p->fields[i].value.len = p->offs[i].value_len;
	}
	/* RFC 9112 3.2: exactly one Host. */
	switch (http_count(p, "host", &p->host_i)) {
	case 0: return HTTP_ERR_NO_HOST;
	case 1: break;
	default: return HTTP_ERR_DUP_HOST;
	}
	/* RFC 9112 3.2: an empty Host is only for a target without an
	 * authority, and an origin-form target always has one (RFC 9110
	 * 4.2.1: an http URI never has an empty host); RFC 6455 4.1: the
	 * value contains the host.  OWS is already trimmed, so a value of
	 * only spaces or tabs is empty here too. */
	if (p->fields[p->host_i].value.len == 0)
		return HTTP_ERR_EMPTY_HOST;
	if (http_count(p, "sec-websocket-key", &p->key_i) > 1)
		return HTTP_ERR_DUP_KEY;
	http_count(p, "origin", &p->origin_i);

	/* No "websocket" in Upgrade: a plain GET the caller may serve. */
	if (!http_any_has_token(p, "upgrade", "websocket")) {
		if (http_has_body(p))
			return HTTP_ERR_BODY;
		p->is_websocket = false;
		return HTTP_ERR_NONE;
	}
	/* RFC 6455 4.2.1 item 4: Connection includes "Upgrade". */
	if (!http_any_has_token(p, "connection", "upgrade"))
		return HTTP_ERR_BAD_UPGRADE;
	/* RFC 6455 4.2.1 item 6: Sec-WebSocket-Version 13, once. */
	nver = http_count(p, "sec-websocket-version", &vi);
	if (nver != 1 || p->fields[vi].value.len != 2 ||
	    memcmp(p->fields[vi].value.p, "13", 2) != 0)
		return HTTP_ERR_VERSION;
	/* RFC 6455 4.2.1 item 5: a 16-byte nonce, base64. */
	if (p->key_i == HTTP_NONE)
		return HTTP_ERR_NO_KEY;
	if (!http_key_is_valid(p->fields[p->key_i].value))
		return HTTP_ERR_BAD_KEY;
	/* RFC 6455 4.1: the opening handshake carries no body. */
	if (http_has_body(p))
		return HTTP_ERR_BODY;
	p->is_websocket = true;
	return HTTP_ERR_NONE;
}

/* A line ended (its CRLF has been appended); CTX is where the CR was seen. */
static enum http_upgrade_error http_end_line(struct http_upgrade *p,
					     enum http_state ctx)
{
	enum http_upgrade_error err;

	switch (ctx) {
	case ST_VERSION:
		/* RFC 9112 3: the version first, then the method. */
		err = http_check_version(p->buf + p->version_off,
					 p->rl_len - p->version_off);
		if (err != HTTP_ERR_NONE)
			return err;
		/* RFC 6455 4.1: the handshake is a GET (methods are
		 * case-sensitive, RFC 9110 9.1). */
		if (p->method_len != 3 || memcmp(p->buf, "GET", 3) != 0)
			return HTTP_ERR_METHOD;
		p->state = ST_LINE_START;
		return HTTP_ERR_NONE;
	case ST_LINE_START:
		err = http_finish_head(p);
		if (err == HTTP_ERR_NONE)
			p->state = ST_DONE;
		return err;
	case ST_VALUE:
		if (http_push_field(p) < 0)
			return HTTP_ERR_HEADERS_TOO_LARGE; /* cannot hold it */
		p->state = ST_LINE_START;
		return HTTP_ERR_NONE;
	case ST_NAME:
		return HTTP_ERR_BAD_HEADER; /* a field line without a colon */
	default:
		return HTTP_ERR_MALFORMED; /* request line cut short */
	}
}

/* True in the states that belong to the request line. */
static bool http_in_request_line(enum http_state s)
{
	return s == ST_METHOD || s == ST_TARGET_START || s == ST_TARGET ||
	       s == ST_VERSION;
}

/* Check the limits for byte C, then handle C in the current state. */
static enum http_upgrade_error http_step(struct http_upgrade *p, uint8_t c)
{
	size_t pos = p->len; /* offset C gets in the buffer */

	if (http_in_request_line(p->state) && c != '\r' && c != '\n' &&
	    p->rl_len + 1 > p->limits.max_request_line)
		return HTTP_ERR_LINE_TOO_LONG;
	if (p->len + 1 > p->limits.max_header_bytes)
		return HTTP_ERR_HEADERS_TOO_LARGE;
	if (p->state == ST_LINE_START && http_is_tchar(c) &&
	    p->nfields + 1 > p->limits.max_headers)
		return HTTP_ERR_TOO_MANY_HEADERS;
	if (http_append(p, c) < 0)
		return HTTP_ERR_HEADERS_TOO_LARGE; /* cannot hold the head */

	if (p->state == ST_CR) {
		/* RFC 9112 2.2: a CR not followed by LF is invalid. */
		if (c != '\n')
			return HTTP_ERR_BARE_CR;
		return http_end_line(p, p->cr_ctx);
	}
	if (c == '\r') {
		p->cr_ctx = p->state;
		p->state = ST_CR;
		return HTTP_ERR_NONE;
	}
	/* Strict: a bare LF line ending is rejected (RFC 9112 2.2 allows a
	 * recipient to accept it; we do not, to avoid parser disagreements
	 * with anything in front of or behind us). */
	if (c == '\n')
		return HTTP_ERR_MALFORMED;
	if (http_in_request_line(p->state))
		p->rl_len++;

	switch (p->state) {
	case ST_METHOD: /* RFC 9112 3.1: method = token */
		if (c == ' ' && p->method_len > 0) {
			p->state = ST_TARGET_START;
			return HTTP_ERR_NONE;
		}
		if (!http_is_tchar(c))
			return HTTP_ERR_MALFORMED;
		p->method_len++;
		return HTTP_ERR_NONE;
	case ST_TARGET_START: /* RFC 9112 3.2.1: origin-form only */
		if (c == ' ')
			return HTTP_ERR_MALFORMED; /* exactly one SP */
		if (c != '/')
			return HTTP_ERR_BAD_TARGET;
		p->target_off = pos;
		p->state = ST_TARGET;
		return HTTP_ERR_NONE;
	case ST_TARGET:
		if (c == ' ') {
			p->target_len = pos - p->target_off;
			p->version_off = pos + 1;
			p->state = ST_VERSION;
			return HTTP_ERR_NONE;
		}
		/* No controls, DEL, raw non-ASCII or fragment (RFC 3986 3). */
		if (c < 0x21 || c >= 0x7f || c == '#')
			return HTTP_ERR_BAD_TARGET;
		if (c == '?' && p->query_off == HTTP_NONE)
			p->query_off = pos + 1;
		return HTTP_ERR_NONE;
	case ST_VERSION:
		/* Checked whole at the end of the line; SP means extra parts. */
		return c == ' ' ? HTTP_ERR_MALFORMED : HTTP_ERR_NONE;
	case ST_LINE_START:
		/* RFC 9112 5.2: obs-fold is rejected. */
		if (c == ' ' || c == '\t')
			return HTTP_ERR_OBS_FOLD;
		if (!http_is_tchar(c))
			return HTTP_ERR_BAD_HEADER;
		p->cur_name_off = pos;
		p->cur_value_off = HTTP_NONE;
		p->state = ST_NAME;
		return HTTP_ERR_NONE;
	case ST_NAME:
		/* RFC 9112 5.1: no whitespace between name and colon. */
		if (c == ':') {
			p->cur_name_len = pos - p->cur_name_off;
			p->state = ST_VALUE;
			return HTTP_ERR_NONE;
		}
		return http_is_tchar(c) ? HTTP_ERR_NONE : HTTP_ERR_BAD_HEADER;
	case ST_VALUE:
		/* RFC 9110 5.5: OWS around the value is not part of it. */
		if (c == ' ' || c == '\t')
			return HTTP_ERR_NONE;
		/* RFC 9110 5.5: no controls (NUL included) but HTAB. */
		if (c < 0x20 || c == 0x7f)
			return HTTP_ERR_BAD_HEADER;
		if (p->cur_value_off == HTTP_NONE)
			p->cur_value_off = pos;
		p->cur_value_end = pos + 1;
		return HTTP_ERR_NONE;
	default:
		return HTTP_ERR_MALFORMED; /* not reached */
	}
}

/* Feed LEN bytes; stops after the blank line or at the first error. */
enum http_upgrade_status http_upgrade_feed(struct http_upgrade *p,
					   const uint8_t *data, size_t len,
					   size_t *consumed)
{
	size_t i;

	if (consumed != NULL)
		*consumed = 0;
	if (p == NULL)
		return HTTP_UPGRADE_ERROR;
	if (p->state == ST_DONE)
		return HTTP_UPGRADE_DONE;
	if (p->state == ST_ERROR)
		return HTTP_UPGRADE_ERROR;
	if (data == NULL)
		len = 0;
	for (i = 0; i < len; i++) {
		enum http_upgrade_error err = http_step(p, data[i]);

		if (err != HTTP_ERR_NONE) {
			p->err = err;
			p->state = ST_ERROR;
			if (consumed != NULL)
				*consumed = i + 1;
			return HTTP_UPGRADE_ERROR;
		}
		if (p->state == ST_DONE) {
			if (consumed != NULL)
				*consumed = i + 1;
			return HTTP_UPGRADE_DONE;
		}
	}
	if (consumed != NULL)
		*consumed = len;
	return HTTP_UPGRADE_INCOMPLETE;
}

/* The error after ERROR; HTTP_ERR_NONE otherwise. */
enum http_upgrade_error http_upgrade_error(const struct http_upgrade *p)
{
	return p == NULL ? HTTP_ERR_MALFORMED : p->err;
}

/* True after DONE for a valid WebSocket upgrade. */
bool http_upgrade_is_websocket(const struct http_upgrade *p)
{
	return p != NULL && p->state == ST_DONE && p->is_websocket;
}

/* True if P finished parsing a head. */
static bool http_is_done(const struct http_upgrade *p)
{
	return p != NULL && p->state == ST_DONE;
}

/* A view of LEN bytes at offset OFF of the head. */
static struct http_str http_view(const struct http_upgrade *p, size_t off,
				 size_t len)
{
	struct http_str s;

	s.p = p->buf + off;
	s.len = len;
	return s;
}

/* The value of field I, or the empty view if I is HTTP_NONE. */
static struct http_str http_field_value(const struct http_upgrade *p, size_t i)
{
	if (!http_is_done(p) || i == HTTP_NONE)
		return http_str_empty;
	return p->fields[i].value;
}

/* The request method. */
struct http_str http_upgrade_method(const struct http_upgrade *p)
{
	if (!http_is_done(p))
		return http_str_empty;
	return http_view(p, 0, p->method_len);
}

/* The request target, path and query. */
struct http_str http_upgrade_target(const struct http_upgrade *p)
{
	if (!http_is_done(p))
		return http_str_empty;
	return http_view(p, p->target_off, p->target_len);
}

/* The target's path: everything before the first '?'. */
struct http_str http_upgrade_path(const struct http_upgrade *p)
{
	if (!http_is_done(p))
		return http_str_empty;
	if (p->query_off == HTTP_NONE)
		return http_view(p, p->target_off, p->target_len);
	return http_view(p, p->target_off, p->query_off - 1 - p->target_off);
}

/* The target's query: everything after the first '?'. */
struct http_str http_upgrade_query(const struct http_upgrade *p)
{
	if (!http_is_done(p) || p->query_off == HTTP_NONE)
		return http_str_empty;
	return http_view(p, p->query_off,
			 p->target_off + p->target_len - p->query_off);
}

/* The Host value. */
struct http_str http_upgrade_host(const struct http_upgrade *p)
{
	return http_field_value(p, p ? p->host_i : HTTP_NONE);
}

/* The Origin value, empty if absent. */
struct http_str http_upgrade_origin(const struct http_upgrade *p)
{
	return http_field_value(p, p ? p->origin_i : HTTP_NONE);
}

/* The Sec-WebSocket-Key value, empty if absent. */
struct http_str http_upgrade_key(const struct http_upgrade *p)
{
	return http_field_value(p, p ? p->key_i : HTTP_NONE);
}

/* The first field named NAME. */
bool http_upgrade_header(const struct http_upgrade *p, const char *name,
			 struct http_str *value)
{
	size_t i;

	if (!http_is_done(p) || name == NULL)
		return false;
	http_count(p, name, &i);
	if (i == HTTP_NONE)
		return false;
	if (value != NULL)
		*value = p->fields[i].value;
	return true;
}

/* Number of header fields after DONE. */
size_t http_upgrade_field_count(const struct http_upgrade *p)
{
	return http_is_done(p) ? p->nfields : 0;
}

/* Field I, or NULL if out of range. */
const struct http_field *http_upgrade_field(const struct http_upgrade *p,
					    size_t i)
{
	if (!http_is_done(p) || i >= p->nfields)
		return NULL;
	return &p->fields[i];
}

/* Next list element of the fields named NAME; *CURSOR is a head offset. */
bool http_upgrade_next_token(const struct http_upgrade *p, const char *name,
			     size_t *cursor, struct http_str *token)
{
	size_t i;

	if (!http_is_done(p) || name == NULL || cursor == NULL)
		return false;
	/* Fields lie in the buffer in order, so one offset orders them all. */
	for (i = 0; i < p->nfields; i++) {
		const struct http_field_off *f = &p->offs[i];
		struct http_str tok;
		size_t pos;

		if (f->value_off + f->value_len <= *cursor ||
		    !http_ieq(p->buf + f->name_off, f->name_len, name))
			continue;
		pos = *cursor > f->value_off ? *cursor - f->value_off : 0;
		if (http_next_element(p->buf + f->value_off, f->value_len, &pos,
				      &tok)) {
			*cursor = f->value_off + pos;
			if (token != NULL)
				*token = tok;
			return true;
		}
	}
	*cursor = p->len;
	return false;
}
