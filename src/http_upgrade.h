/*
 * http_upgrade.h - incremental HTTP/1.1 WebSocket upgrade request parser and
 * response builder (PURE: no sockets, no libevent, no globals).
 *
 * Bytes may arrive one at a time.  The parser copies the request head into a
 * buffer it owns (bounded by the limits) and stops right after the blank line
 * that ends it, so bytes the client sent after its request stay with the
 * caller.  When done it reports either a parsed request (a WebSocket upgrade
 * per RFC 6455 4.2.1, or a plain GET) or an error that maps to an HTTP status.
 */
#ifndef WSGATE_HTTP_UPGRADE_H
#define WSGATE_HTTP_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Errors: X(name, http status, short text for the response body). */
#define HTTP_UPGRADE_ERRORS(X)                                                 \
	X(HTTP_ERR_NONE, 0, "ok")                                              \
	X(HTTP_ERR_MALFORMED, 400, "malformed request")                        \
	X(HTTP_ERR_BAD_TARGET, 400, "bad request target")                      \
	X(HTTP_ERR_BAD_HEADER, 400, "malformed header field")                  \
	X(HTTP_ERR_OBS_FOLD, 400, "obsolete line folding is not allowed")      \
	X(HTTP_ERR_BARE_CR, 400, "bare CR is not allowed")                     \
	X(HTTP_ERR_NO_HOST, 400, "missing Host header")                        \
	X(HTTP_ERR_DUP_HOST, 400, "duplicate Host header")                     \
	X(HTTP_ERR_EMPTY_HOST, 400, "empty Host header")                       \
	X(HTTP_ERR_NO_KEY, 400, "missing Sec-WebSocket-Key")                   \
	X(HTTP_ERR_BAD_KEY, 400, "Sec-WebSocket-Key must be 16 bytes base64")  \
	X(HTTP_ERR_DUP_KEY, 400, "duplicate Sec-WebSocket-Key")                \
	X(HTTP_ERR_BAD_UPGRADE, 400, "Connection must include Upgrade")       \
	X(HTTP_ERR_BODY, 400, "upgrade request must not have a body")          \
	X(HTTP_ERR_METHOD, 405, "method not allowed")                          \
	X(HTTP_ERR_VERSION, 426, "Sec-WebSocket-Version 13 required")          \
	X(HTTP_ERR_LINE_TOO_LONG, 431, "request line too long")                \
	X(HTTP_ERR_HEADERS_TOO_LARGE, 431, "request headers too large")        \
	X(HTTP_ERR_TOO_MANY_HEADERS, 431, "too many request headers")          \
	X(HTTP_ERR_HTTP_VERSION, 505, "HTTP/1.1 required")

enum http_upgrade_error {
#define HTTP_UPGRADE_ENUM_(name, status, text) name,
	HTTP_UPGRADE_ERRORS(HTTP_UPGRADE_ENUM_)
#undef HTTP_UPGRADE_ENUM_
};

/* The HTTP status for ERR (400, 405, 426, 431, 505), 0 for HTTP_ERR_NONE. */
int http_upgrade_error_status(enum http_upgrade_error err);
/* A short constant description of ERR, for the response body and logs. */
const char *http_upgrade_error_text(enum http_upgrade_error err);
/* "Bad Request", "Not Found", ... for any status this gateway sends. */
const char *http_status_reason(int status);

struct http_limits {
	size_t max_request_line; /* bytes of the request line, CRLF excluded */
	size_t max_header_bytes; /* bytes of the whole head, request line
				    and final blank line included */
	size_t max_headers;      /* number of header fields */
};

enum http_upgrade_status {
	HTTP_UPGRADE_ERROR = -1,
	HTTP_UPGRADE_INCOMPLETE = 0,
	HTTP_UPGRADE_DONE = 1,
};

/* A view into the parser's buffer; not NUL-terminated. */
struct http_str {
	const char *p;
	size_t len;
};

struct http_field {
	struct http_str name;  /* as sent */
	struct http_str value; /* leading and trailing whitespace removed */
};

/* Parser and, once done, the parsed request.  Owns its buffers. */
struct http_upgrade;

/* A new parser with LIMITS (copied); NULL on allocation failure. */
struct http_upgrade *http_upgrade_new(const struct http_limits *limits);
/* Free P and everything it owns; NULL is fine. */
void http_upgrade_free(struct http_upgrade *p);

/*
 * Feed LEN bytes at DATA.  *CONSUMED receives how many were taken: all of
 * them while INCOMPLETE; on DONE, up to and including the blank line; on
 * ERROR, up to the offending byte.  After DONE or ERROR further calls
 * return the same status and consume nothing.
 */
enum http_upgrade_status http_upgrade_feed(struct http_upgrade *p,
					   const uint8_t *data, size_t len,
					   size_t *consumed);

/* After ERROR: which error. */
enum http_upgrade_error http_upgrade_error(const struct http_upgrade *p);

/*
 * After DONE: true for a valid WebSocket upgrade (RFC 6455 4.2.1: GET,
 * HTTP/1.1+, Host, Upgrade: websocket, Connection: upgrade, a 16-byte key,
 * version 13); false for a plain GET without an Upgrade header (the caller
 * answers it with 426 or serves its own endpoint).
 */
bool http_upgrade_is_websocket(const struct http_upgrade *p);

/* After DONE (all views stay valid until http_upgrade_free): */
struct http_str http_upgrade_method(const struct http_upgrade *p);
struct http_str http_upgrade_target(const struct http_upgrade *p); /* path?query */
struct http_str http_upgrade_path(const struct http_upgrade *p);   /* before '?' */
struct http_str http_upgrade_query(const struct http_upgrade *p);  /* after '?', may be empty */
struct http_str http_upgrade_host(const struct http_upgrade *p);
struct http_str http_upgrade_origin(const struct http_upgrade *p); /* len 0 if absent */
struct http_str http_upgrade_key(const struct http_upgrade *p);

/* The first field named NAME (case-insensitive); false if absent. */
bool http_upgrade_header(const struct http_upgrade *p, const char *name,
			 struct http_str *value);
/* Number of header fields, and field I (0-based) in the order received. */
size_t http_upgrade_field_count(const struct http_upgrade *p);
const struct http_field *http_upgrade_field(const struct http_upgrade *p,
					    size_t i);

/*
 * Iterate over the comma-separated tokens of every field named NAME
 * (RFC 9110 5.6.1 lists: empty elements and surrounding whitespace skipped).
 * Start with *CURSOR = 0; returns false when there are no more.
 * Used for Sec-WebSocket-Protocol and Sec-WebSocket-Extensions offers.
 */
bool http_upgrade_next_token(const struct http_upgrade *p, const char *name,
			     size_t *cursor, struct http_str *token);

/* True if the comma-separated list VALUE contains TOKEN (case-insensitive). */
bool http_list_has_token(struct http_str value, const char *token);

#define HTTP_ACCEPT_KEY_LEN 28
/*
 * RFC 6455 4.2.2 / 1.3: base64(SHA-1(KEY + GUID)) into OUT, NUL-terminated.
 * Returns 0, or -1 if hashing fails.
 */
int http_accept_key(const char *key, size_t key_len,
		    char out[HTTP_ACCEPT_KEY_LEN + 1]);

/*
 * Build "HTTP/1.1 101 Switching Protocols" with Upgrade, Connection,
 * Sec-WebSocket-Accept and (if PROTOCOL is not NULL) Sec-WebSocket-Protocol
 * into BUF.  Returns the length, or -1 if CAP is too small.
 */
int http_response_upgrade(char *buf, size_t cap, const char *accept,
			  const char *protocol);

/*
 * Build an error response: status line, Content-Type: text/plain,
 * Content-Length, Connection: close, "Sec-WebSocket-Version: 13" when
 * STATUS is 426, "WWW-Authenticate: Bearer" when it is 401, and BODY
 * followed by a newline.  Returns the length, or -1 if CAP is too small.
 */
int http_response_error(char *buf, size_t cap, int status, const char *body);

#endif
