/*
 * test_http_upgrade.c - Check suite for the upgrade request parser, the
 * accept key and the response builders.
 *
 * Every request is fed whole, byte by byte and at seeded random split
 * points; all three must agree on status, error, bytes consumed and every
 * accessor (see run_all).  Each rejection rule has its own test asserting
 * the exact error, so removing the rule changes the outcome.
 */
#include "http_upgrade.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_SPLITS 24

/* The default limits used by most tests. */
static const struct http_limits lim_default = {1024, 8192, 64};

/* Everything observable about one parse. */
struct result {
	enum http_upgrade_status status;
	enum http_upgrade_error err;
	size_t consumed;
	char dump[8192];
};

/* xorshift64: deterministic PRNG with explicit state. */
static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* Append "LABEL=[view]" and a newline to R's dump. */
static void dump_add(struct result *r, const char *label, const char *p,
		     size_t len)
{
	size_t used = strlen(r->dump);

	snprintf(r->dump + used, sizeof(r->dump) - used, "%s=[%.*s]\n", label,
		 (int)len, p);
}

/* Append "tok<view>" to R's dump, or the newline that ends a list (P NULL). */
static void dump_tok(struct result *r, const char *p, size_t len)
{
	size_t used = strlen(r->dump);

	if (p == NULL)
		snprintf(r->dump + used, sizeof(r->dump) - used, "\n");
	else
		snprintf(r->dump + used, sizeof(r->dump) - used, "tok<%.*s>",
			 (int)len, p);
}

/* Append a view to R's dump under LABEL. */
static void dump_str(struct result *r, const char *label, struct http_str s)
{
	ck_assert_ptr_nonnull(s.p);
	dump_add(r, label, s.p, s.len);
}

/* Append all tokens of the fields named NAME to R's dump. */
static void dump_tokens(struct result *r, struct http_upgrade *p,
			const char *name)
{
	struct http_str tok;
	size_t cursor = 0;

	while (http_upgrade_next_token(p, name, &cursor, &tok))
		dump_tok(r, tok.p, tok.len);
	dump_tok(r, NULL, 0);
}

/* Record every accessor of P into R. */
static void snapshot(struct http_upgrade *p, struct result *r)
{
	struct http_str v;
	size_t i;

	r->err = http_upgrade_error(p);
	snprintf(r->dump, sizeof(r->dump), "ws=%d fields=%zu\n",
		 http_upgrade_is_websocket(p), http_upgrade_field_count(p));
	dump_str(r, "method", http_upgrade_method(p));
	dump_str(r, "target", http_upgrade_target(p));
	dump_str(r, "path", http_upgrade_path(p));
	dump_str(r, "query", http_upgrade_query(p));
	dump_str(r, "host", http_upgrade_host(p));
	dump_str(r, "origin", http_upgrade_origin(p));
	dump_str(r, "key", http_upgrade_key(p));
	for (i = 0; i < http_upgrade_field_count(p); i++) {
		const struct http_field *f = http_upgrade_field(p, i);

		dump_str(r, "name", f->name);
		dump_str(r, "value", f->value);
	}
	ck_assert_ptr_null(http_upgrade_field(p, http_upgrade_field_count(p)));
	if (http_upgrade_header(p, "sec-websocket-protocol", &v))
		dump_str(r, "proto", v);
	dump_tokens(r, p, "Sec-WebSocket-Protocol");
	dump_tokens(r, p, "sec-websocket-extensions");
	dump_tokens(r, p, "Connection");
	dump_tokens(r, p, "Upgrade");
}

/*
 * Feed LEN bytes of REQ in chunks: MODE 0 whole, 1 byte by byte, 2 random
 * chunk sizes from SEED.  Stops at the first non-INCOMPLETE status, then
 * checks that another feed returns the same status and consumes nothing.
 */
static void run(const char *req, size_t len, const struct http_limits *lim,
		int mode, uint64_t seed, struct result *r)
{
	struct http_upgrade *p = http_upgrade_new(lim);
	const uint8_t *data = (const uint8_t *)req;
	enum http_upgrade_status st = HTTP_UPGRADE_INCOMPLETE;
	size_t off = 0, used;

	ck_assert_ptr_nonnull(p);
	r->consumed = 0;
	while (off < len) {
		size_t n = len - off;

		if (mode == 1)
			n = 1;
		else if (mode == 2)
			n = 1 + (size_t)(xorshift64(&seed) % 17) % n;
		st = http_upgrade_feed(p, data + off, n, &used);
		ck_assert_uint_le(used, n);
		r->consumed += used;
		if (st != HTTP_UPGRADE_INCOMPLETE)
			break;
		ck_assert_uint_eq(used, n);
		off += n;
	}
	r->status = st;
	if (st != HTTP_UPGRADE_INCOMPLETE) {
		ck_assert_int_eq(http_upgrade_feed(p, data, len, &used), st);
		ck_assert_uint_eq(used, 0);
	}
	snapshot(p, r);
	http_upgrade_free(p);
}

/* Parse REQ whole, byte by byte and at random splits; all must agree. */
static void run_all_lim(const char *req, size_t len,
			const struct http_limits *lim, struct result *out)
{
	struct result *r = malloc(sizeof(*r));
	uint64_t seed = 0x9e3779b97f4a7c15ULL ^ len;
	int i;

	ck_assert_ptr_nonnull(r);
	run(req, len, lim, 0, 0, out);
	for (i = 0; i <= RUN_SPLITS; i++) {
		run(req, len, lim, i == 0 ? 1 : 2, xorshift64(&seed), r);
		ck_assert_int_eq(r->status, out->status);
		ck_assert_int_eq(r->err, out->err);
		ck_assert_uint_eq(r->consumed, out->consumed);
		ck_assert_str_eq(r->dump, out->dump);
	}
	free(r);
}

/* run_all_lim with the default limits on a C string. */
static void run_all(const char *req, struct result *out)
{
	run_all_lim(req, strlen(req), &lim_default, out);
}

/* REQ must fail with ERR, consistently however it is split. */
static void expect_error_lim(const char *req, size_t len,
			     const struct http_limits *lim,
			     enum http_upgrade_error err)
{
	struct result r;

	run_all_lim(req, len, lim, &r);
	ck_assert_msg(r.status == HTTP_UPGRADE_ERROR && r.err == err,
		      "expected error %s, got status %d error %s",
		      http_upgrade_error_text(err), r.status,
		      http_upgrade_error_text(r.err));
	ck_assert_uint_le(r.consumed, len);
	ck_assert_uint_gt(r.consumed, 0);
}

/* expect_error_lim with the default limits on a C string. */
static void expect_error(const char *req, enum http_upgrade_error err)
{
	expect_error_lim(req, strlen(req), &lim_default, err);
}

/* REQ must be accepted, as a WebSocket upgrade if WS. */
static void expect_ok(const char *req, bool ws, struct result *r)
{
	run_all(req, r);
	ck_assert_msg(r->status == HTTP_UPGRADE_DONE,
		      "expected DONE, got status %d error %s", r->status,
		      http_upgrade_error_text(r->err));
	ck_assert_int_eq(r->err, HTTP_ERR_NONE);
	ck_assert_uint_eq(r->consumed, strlen(req));
	ck_assert_int_eq(strncmp(r->dump, ws ? "ws=1" : "ws=0", 4), 0);
}

/* True if the dump of R contains NEEDLE. */
static bool has(const struct result *r, const char *needle)
{
	return strstr(r->dump, needle) != NULL;
}

#define RL "GET /chat HTTP/1.1\r\n"
#define H_HOST "Host: server.example.com\r\n"
#define H_UPG "Upgrade: websocket\r\n"
#define H_CONN "Connection: Upgrade\r\n"
#define H_KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define H_VER "Sec-WebSocket-Version: 13\r\n"
#define WS_HEAD RL H_HOST H_UPG H_CONN H_KEY H_VER
#define WS_REQ WS_HEAD "\r\n"

/* ---- valid requests ---- */

START_TEST(test_rfc6455_sample)
{
	struct result r;

	expect_ok(RL H_HOST H_UPG H_CONN H_KEY
		  "Origin: http://example.com\r\n"
		  "Sec-WebSocket-Protocol: chat, superchat\r\n" H_VER "\r\n",
		  true, &r);
	ck_assert(has(&r, "method=[GET]\n"));
	ck_assert(has(&r, "target=[/chat]\npath=[/chat]\nquery=[]\n"));
	ck_assert(has(&r, "host=[server.example.com]\n"));
	ck_assert(has(&r, "origin=[http://example.com]\n"));
	ck_assert(has(&r, "key=[dGhlIHNhbXBsZSBub25jZQ==]\n"));
	ck_assert(has(&r, "proto=[chat, superchat]\n"));
	ck_assert(has(&r, "tok<chat>tok<superchat>\n"));
}
END_TEST

START_TEST(test_chrome_like)
{
	struct result r;

	expect_ok("GET /chat?room=1&x=y HTTP/1.1\r\n"
		  "Host: example.com:8080\r\n"
		  "Connection: Upgrade\r\n"
		  "Pragma: no-cache\r\n"
		  "Cache-Control: no-cache\r\n"
		  "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
		  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
		  "Upgrade: websocket\r\n"
		  "Origin: https://example.com\r\n"
		  "Sec-WebSocket-Version: 13\r\n"
		  "Accept-Encoding: gzip, deflate, br\r\n"
		  "Accept-Language: en-US,en;q=0.9\r\n"
		  "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
		  "Sec-WebSocket-Extensions: permessage-deflate; "
		  "client_max_window_bits\r\n"
		  "\r\n",
		  true, &r);
	ck_assert(has(&r, "target=[/chat?room=1&x=y]\n"));
	ck_assert(has(&r, "path=[/chat]\nquery=[room=1&x=y]\n"));
	ck_assert(has(&r, "host=[example.com:8080]\n"));
	ck_assert(has(&r, "origin=[https://example.com]\n"));
	ck_assert(has(&r, "key=[x3JJHMbDL1EzLkh9GBhXDw==]\n"));
	ck_assert(has(&r, "fields=12\n"));
	ck_assert(has(&r,
		      "tok<permessage-deflate; client_max_window_bits>\n"));
}
END_TEST

START_TEST(test_firefox_like)
{
	struct result r;

	expect_ok("GET /ws HTTP/1.1\r\n"
		  "Host: localhost:9000\r\n"
		  "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) "
		  "Gecko/20100101 Firefox/121.0\r\n"
		  "Accept: */*\r\n"
		  "Accept-Language: en-US,en;q=0.5\r\n"
		  "Accept-Encoding: gzip, deflate, br\r\n"
		  "Sec-WebSocket-Version: 13\r\n"
		  "Origin: http://localhost:9000\r\n"
		  "Sec-WebSocket-Extensions: permessage-deflate\r\n"
		  "Sec-WebSocket-Key: E4WSEcseoWr4csPLS2QJHA==\r\n"
		  "Connection: keep-alive, Upgrade\r\n"
		  "Sec-Fetch-Dest: empty\r\n"
		  "Sec-Fetch-Mode: websocket\r\n"
		  "Sec-Fetch-Site: same-origin\r\n"
		  "Pragma: no-cache\r\n"
		  "Cache-Control: no-cache\r\n"
		  "Upgrade: websocket\r\n"
		  "\r\n",
		  true, &r);
	ck_assert(has(&r, "tok<keep-alive>tok<Upgrade>\n"));
	ck_assert(has(&r, "query=[]\n"));
	ck_assert(has(&r, "fields=16\n"));
}
END_TEST

START_TEST(test_python_websockets_like)
{
	struct result r;

	expect_ok("GET / HTTP/1.1\r\n"
		  "Host: 127.0.0.1:8765\r\n"
		  "Upgrade: websocket\r\n"
		  "Connection: Upgrade\r\n"
		  "Sec-WebSocket-Key: 9uvbqLJbaDNmMOl/ZKaKKQ==\r\n"
		  "Sec-WebSocket-Version: 13\r\n"
		  "Sec-WebSocket-Extensions: permessage-deflate; "
		  "client_max_window_bits\r\n"
		  "Sec-WebSocket-Protocol: chat\r\n"
		  "User-Agent: Python/3.11 websockets/12.0\r\n"
		  "\r\n",
		  true, &r);
	ck_assert(has(&r, "path=[/]\n"));
	ck_assert(has(&r, "origin=[]\n"));
	ck_assert(has(&r, "host=[127.0.0.1:8765]\n"));
}
END_TEST

START_TEST(test_case_insensitive_names_and_tokens)
{
	struct result r;

	expect_ok(RL "HOST: a\r\nuPgRaDe: WebSocket\r\nconnection: UPGRADE\r\n"
		  "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		  "SEC-WEBSOCKET-VERSION: 13\r\n\r\n",
		  true, &r);
	ck_assert(has(&r, "host=[a]\n"));
}
END_TEST

START_TEST(test_ows_trimmed_and_tabs_kept_inside)
{
	struct result r;

	expect_ok(RL "Host:\t \tserver.example.com \t\r\n" H_UPG H_CONN H_KEY
		  H_VER "X-Empty:\r\nX-Blank:  \t \r\nX-Tab: a\tb  c\r\n\r\n",
		  true, &r);
	ck_assert(has(&r, "host=[server.example.com]\n"));
	ck_assert(has(&r, "name=[X-Empty]\nvalue=[]\n"));
	ck_assert(has(&r, "name=[X-Blank]\nvalue=[]\n"));
	ck_assert(has(&r, "value=[a\tb  c]\n"));
}
END_TEST

START_TEST(test_obs_text_allowed_in_value)
{
	struct result r;

	expect_ok(WS_HEAD "X-Latin: caf\xc3\xa9\x80\xff\r\n\r\n", true, &r);
	ck_assert(has(&r, "value=[caf\xc3\xa9\x80\xff]\n"));
}
END_TEST

START_TEST(test_http_1_x_minor_accepted)
{
	struct result r;

	expect_ok("GET /chat HTTP/1.2\r\n" H_HOST H_UPG H_CONN H_KEY H_VER
		  "\r\n",
		  true, &r);
	expect_ok("GET /chat HTTP/1.9\r\n" H_HOST "\r\n", false, &r);
}
END_TEST

START_TEST(test_plain_get)
{
	struct result r;

	expect_ok("GET /metrics?x HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n"
		  "Content-Length: 0\r\n\r\n",
		  false, &r);
	ck_assert(has(&r, "path=[/metrics]\nquery=[x]\n"));
	ck_assert(has(&r, "host=[h]\n"));
	ck_assert(has(&r, "key=[]\n"));
}
END_TEST

START_TEST(test_plain_get_upgrade_without_websocket)
{
	struct result r;

	/* Not a WebSocket upgrade: no Connection/key checks apply. */
	expect_ok("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n\r\n", false,
		  &r);
	/* "websockets" is not the token "websocket". */
	expect_ok("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websockets\r\n"
		  "Connection: Upgrade\r\n\r\n",
		  false, &r);
}
END_TEST

START_TEST(test_upgrade_token_in_list_and_second_field)
{
	struct result r;

	expect_ok(RL H_HOST "Upgrade: h2c, , WebSocket \r\n" H_CONN H_KEY H_VER
		  "\r\n",
		  true, &r);
	expect_ok(RL H_HOST "Upgrade: foo\r\n" H_CONN H_KEY H_VER
		  "Upgrade: websocket\r\nConnection: close\r\n\r\n",
		  true, &r);
}
END_TEST

START_TEST(test_content_length_zero_allowed)
{
	struct result r;

	expect_ok(WS_HEAD "Content-Length: 0\r\n\r\n", true, &r);
	expect_ok(WS_HEAD "Content-Length: 000\r\n\r\n", true, &r);
}
END_TEST

START_TEST(test_trailing_bytes_not_consumed)
{
	static const char req[] = WS_REQ "\x81\x85\x37\xfa\x21\x3d\x7f\x9f"
				  "GET / HTTP/1.1\r\n\r\n";
	struct result r;

	run_all_lim(req, sizeof(req) - 1, &lim_default, &r);
	ck_assert_int_eq(r.status, HTTP_UPGRADE_DONE);
	ck_assert_uint_eq(r.consumed, strlen(WS_REQ));
}
END_TEST

START_TEST(test_incomplete_consumes_all)
{
	struct http_upgrade *p = http_upgrade_new(&lim_default);
	size_t used = 99;

	ck_assert_int_eq(http_upgrade_feed(p, (const uint8_t *)WS_HEAD,
					   strlen(WS_HEAD), &used),
			 HTTP_UPGRADE_INCOMPLETE);
	ck_assert_uint_eq(used, strlen(WS_HEAD));
	ck_assert_int_eq(http_upgrade_feed(p, NULL, 0, &used),
			 HTTP_UPGRADE_INCOMPLETE);
	ck_assert_uint_eq(used, 0);
	/* Before DONE the accessors show nothing. */
	ck_assert_uint_eq(http_upgrade_method(p).len, 0);
	ck_assert_uint_eq(http_upgrade_host(p).len, 0);
	ck_assert_uint_eq(http_upgrade_field_count(p), 0);
	ck_assert(!http_upgrade_is_websocket(p));
	ck_assert(!http_upgrade_header(p, "host", NULL));
	ck_assert_int_eq(http_upgrade_error(p), HTTP_ERR_NONE);
	ck_assert_int_eq(http_upgrade_feed(p, (const uint8_t *)"\r\n", 2,
					   &used),
			 HTTP_UPGRADE_DONE);
	ck_assert_uint_eq(used, 2);
	ck_assert(http_upgrade_is_websocket(p));
	http_upgrade_free(p);
	http_upgrade_free(NULL);
	ck_assert_ptr_null(http_upgrade_new(NULL));
}
END_TEST

START_TEST(test_header_lookup_first_of_many)
{
	struct http_upgrade *p = http_upgrade_new(&lim_default);
	static const char req[] = WS_HEAD "X-A: one\r\nx-a: two\r\n\r\n";
	struct http_str v;
	size_t used;

	ck_assert_int_eq(http_upgrade_feed(p, (const uint8_t *)req,
					   sizeof(req) - 1, &used),
			 HTTP_UPGRADE_DONE);
	ck_assert(http_upgrade_header(p, "X-a", &v));
	ck_assert_uint_eq(v.len, 3);
	ck_assert_int_eq(memcmp(v.p, "one", 3), 0);
	ck_assert(!http_upgrade_header(p, "X-", &v));
	ck_assert(!http_upgrade_header(p, "X-AB", &v));
	ck_assert_uint_eq(http_upgrade_field(p, 6)->name.len, 3);
	ck_assert_int_eq(memcmp(http_upgrade_field(p, 6)->name.p, "x-a", 3), 0);
	http_upgrade_free(p);
}
END_TEST

START_TEST(test_next_token_across_fields)
{
	struct http_upgrade *p = http_upgrade_new(&lim_default);
	static const char req[] =
		WS_HEAD "Sec-WebSocket-Protocol: , chat ,,\t\r\n"
			"X-Other: nope\r\n"
			"Sec-WebSocket-Protocol:\r\n"
			"sec-websocket-protocol: superchat,v2.bin \r\n\r\n";
	static const char *want[] = {"chat", "superchat", "v2.bin"};
	struct http_str tok;
	size_t cursor = 0, used, n = 0;

	ck_assert_int_eq(http_upgrade_feed(p, (const uint8_t *)req,
					   sizeof(req) - 1, &used),
			 HTTP_UPGRADE_DONE);
	while (http_upgrade_next_token(p, "Sec-WebSocket-Protocol", &cursor,
				       &tok)) {
		ck_assert_uint_lt(n, 3);
		ck_assert_uint_eq(tok.len, strlen(want[n]));
		ck_assert_int_eq(memcmp(tok.p, want[n], tok.len), 0);
		n++;
	}
	ck_assert_uint_eq(n, 3);
	/* Exhausted stays exhausted. */
	ck_assert(!http_upgrade_next_token(p, "Sec-WebSocket-Protocol",
					   &cursor, &tok));
	cursor = 0;
	ck_assert(!http_upgrade_next_token(p, "X-Missing", &cursor, &tok));
	http_upgrade_free(p);
}
END_TEST

START_TEST(test_list_has_token)
{
	struct http_str v = {"keep-alive, Upgrade", 19};
	struct http_str w = {" ,upgraded,\tx ,", 15};
	struct http_str e = {"", 0};

	ck_assert(http_list_has_token(v, "upgrade"));
	ck_assert(http_list_has_token(v, "KEEP-ALIVE"));
	ck_assert(!http_list_has_token(v, "keep"));
	ck_assert(!http_list_has_token(w, "upgrade"));
	ck_assert(http_list_has_token(w, "x"));
	ck_assert(!http_list_has_token(e, "x"));
	/* The view is bounded by len, not by a NUL. */
	v.len = 10;
	ck_assert(!http_list_has_token(v, "upgrade"));
	ck_assert(http_list_has_token(v, "keep-alive"));
}
END_TEST

/* ---- request line rejections ---- */

START_TEST(test_reject_method_post)
{
	expect_error("POST /chat HTTP/1.1\r\n" H_HOST "\r\n", HTTP_ERR_METHOD);
}
END_TEST

START_TEST(test_reject_method_lowercase_get)
{
	/* RFC 9110 9.1: methods are case-sensitive. */
	expect_error("get /chat HTTP/1.1\r\n", HTTP_ERR_METHOD);
}
END_TEST

START_TEST(test_reject_version_before_method)
{
	expect_error("POST / HTTP/1.0\r\n", HTTP_ERR_HTTP_VERSION);
	expect_error("POST / HTTP/1.x\r\n", HTTP_ERR_MALFORMED);
}
END_TEST

START_TEST(test_reject_http_1_0)
{
	expect_error("GET / HTTP/1.0\r\nHost: h\r\n\r\n",
		     HTTP_ERR_HTTP_VERSION);
}
END_TEST

START_TEST(test_reject_http_0_9_and_2_0)
{
	expect_error("GET / HTTP/0.9\r\n", HTTP_ERR_HTTP_VERSION);
	expect_error("GET / HTTP/2.0\r\n", HTTP_ERR_HTTP_VERSION);
	expect_error("GET / HTTP/3.1\r\n", HTTP_ERR_HTTP_VERSION);
}
END_TEST

START_TEST(test_reject_malformed_version)
{
	expect_error("GET / HTTP/1.10\r\n", HTTP_ERR_MALFORMED);
	expect_error("GET / http/1.1\r\n", HTTP_ERR_MALFORMED);
	expect_error("GET / HTTP/1\r\n", HTTP_ERR_MALFORMED);
	expect_error("GET / HTTP/a.1\r\n", HTTP_ERR_MALFORMED);
	expect_error("GET / \r\n", HTTP_ERR_MALFORMED);
}
END_TEST

START_TEST(test_reject_extra_spaces)
{
	expect_error("GET  / HTTP/1.1\r\n", HTTP_ERR_MALFORMED);
	expect_error("GET / HTTP/1.1 \r\n", HTTP_ERR_MALFORMED);
	expect_error("GET /  HTTP/1.1\r\n", HTTP_ERR_MALFORMED);
	expect_error(" GET / HTTP/1.1\r\n", HTTP_ERR_MALFORMED);
	expect_error("GET\t/ HTTP/1.1\r\n", HTTP_ERR_MALFORMED);
}
END_TEST

START_TEST(test_reject_short_request_line)
{
	expect_error("GET /\r\n\r\n", HTTP_ERR_MALFORMED);
	expect_error("GET\r\n", HTTP_ERR_MALFORMED);
	expect_error("\r\nGET / HTTP/1.1\r\n", HTTP_ERR_MALFORMED);
}
END_TEST

START_TEST(test_reject_bad_method_char)
{
	expect_error("G(T / HTTP/1.1\r\n", HTTP_ERR_MALFORMED);
}
END_TEST

START_TEST(test_reject_bare_lf_request_line)
{
	/* Strict: bare LF is not a line ending here. */
	expect_error("GET / HTTP/1.1\nHost: h\n\n", HTTP_ERR_MALFORMED);
}
END_TEST

START_TEST(test_reject_bare_lf_header)
{
	expect_error(RL "Host: h\nUpgrade: websocket\r\n\r\n",
		     HTTP_ERR_MALFORMED);
}
END_TEST

START_TEST(test_reject_bare_lf_blank_line)
{
	expect_error(RL H_HOST "\n", HTTP_ERR_MALFORMED);
}
END_TEST

START_TEST(test_reject_absolute_form_target)
{
	expect_error("GET http://a/chat HTTP/1.1\r\n" H_HOST "\r\n",
		     HTTP_ERR_BAD_TARGET);
}
END_TEST

START_TEST(test_reject_asterisk_target)
{
	expect_error("GET * HTTP/1.1\r\n" H_HOST "\r\n", HTTP_ERR_BAD_TARGET);
}
END_TEST

START_TEST(test_reject_fragment_in_target)
{
	expect_error("GET /chat#frag HTTP/1.1\r\n" H_HOST "\r\n",
		     HTTP_ERR_BAD_TARGET);
}
END_TEST

START_TEST(test_reject_control_in_target)
{
	expect_error("GET /ch\x01t HTTP/1.1\r\n", HTTP_ERR_BAD_TARGET);
	expect_error("GET /ch\x7ft HTTP/1.1\r\n", HTTP_ERR_BAD_TARGET);
	expect_error("GET /ch\tt HTTP/1.1\r\n", HTTP_ERR_BAD_TARGET);
	expect_error("GET /caf\xc3\xa9 HTTP/1.1\r\n", HTTP_ERR_BAD_TARGET);
	expect_error_lim("GET /a\0b HTTP/1.1\r\n", 19, &lim_default,
			 HTTP_ERR_BAD_TARGET);
}
END_TEST

/* ---- header line rejections ---- */

START_TEST(test_reject_space_before_colon)
{
	expect_error(RL "Host : h\r\n\r\n", HTTP_ERR_BAD_HEADER);
	expect_error(RL "Host\t: h\r\n\r\n", HTTP_ERR_BAD_HEADER);
}
END_TEST

START_TEST(test_reject_line_without_colon)
{
	expect_error(RL H_HOST "NoColonHere\r\n\r\n", HTTP_ERR_BAD_HEADER);
}
END_TEST

START_TEST(test_reject_bad_name_char)
{
	expect_error(RL "Ho(st: h\r\n\r\n", HTTP_ERR_BAD_HEADER);
	expect_error(RL ": empty name\r\n\r\n", HTTP_ERR_BAD_HEADER);
}
END_TEST

START_TEST(test_reject_nul_in_value)
{
	static const char req[] = RL "Host: a\0b\r\n\r\n";

	expect_error_lim(req, sizeof(req) - 1, &lim_default,
			 HTTP_ERR_BAD_HEADER);
}
END_TEST

START_TEST(test_reject_control_in_value)
{
	expect_error(RL "Host: a\x1b[0mb\r\n\r\n", HTTP_ERR_BAD_HEADER);
	expect_error(RL "Host: a\x7f\r\n\r\n", HTTP_ERR_BAD_HEADER);
}
END_TEST

START_TEST(test_reject_obs_fold)
{
	expect_error(RL H_HOST "X-A: one\r\n two\r\n\r\n", HTTP_ERR_OBS_FOLD);
	expect_error(RL H_HOST "X-A: one\r\n\ttwo\r\n\r\n", HTTP_ERR_OBS_FOLD);
}
END_TEST

START_TEST(test_reject_bare_cr_request_line)
{
	expect_error("GET / HTTP/1.1\rHost: h\r\n\r\n", HTTP_ERR_BARE_CR);
}
END_TEST

START_TEST(test_reject_bare_cr_value)
{
	expect_error(RL "Host: a\rb\r\n\r\n", HTTP_ERR_BARE_CR);
}
END_TEST

START_TEST(test_reject_bare_cr_blank_line)
{
	expect_error(RL H_HOST "\r\r\n", HTTP_ERR_BARE_CR);
}
END_TEST

/* ---- head-level rejections (RFC 6455 4.2.1) ---- */

START_TEST(test_reject_no_host)
{
	expect_error(RL H_UPG H_CONN H_KEY H_VER "\r\n", HTTP_ERR_NO_HOST);
	expect_error("GET / HTTP/1.1\r\n\r\n", HTTP_ERR_NO_HOST);
}
END_TEST

START_TEST(test_reject_dup_host)
{
	expect_error(WS_HEAD "host: other.example.com\r\n\r\n",
		     HTTP_ERR_DUP_HOST);
	expect_error("GET / HTTP/1.1\r\nHost: a\r\nHOST: a\r\n\r\n",
		     HTTP_ERR_DUP_HOST);
}
END_TEST

/* RFC 9112 3.2, RFC 6455 4.1: a Host that is empty or only OWS. */
START_TEST(test_reject_empty_host)
{
	static const char *const hosts[] = {
		"Host:\r\n", "Host: \r\n", "Host:   \r\n", "Host:\t\r\n",
		"host: \t \t\r\n",
	};
	char req[512];
	size_t i;

	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		snprintf(req, sizeof(req), "%s%s%s", RL, hosts[i],
			 H_UPG H_CONN H_KEY H_VER "\r\n");
		expect_error(req, HTTP_ERR_EMPTY_HOST);
		/* a plain GET (the admin endpoint) too */
		snprintf(req, sizeof(req), "%s%s\r\n", RL, hosts[i]);
		expect_error(req, HTTP_ERR_EMPTY_HOST);
	}
	/* the shortest real host still passes */
	{
		struct result r;

		expect_ok(RL "Host: a\r\n" H_UPG H_CONN H_KEY H_VER "\r\n",
			  true, &r);
		ck_assert(has(&r, "host=[a]\n"));
	}
}
END_TEST

START_TEST(test_reject_dup_key)
{
	expect_error(WS_HEAD H_KEY "\r\n", HTTP_ERR_DUP_KEY);
	/* Checked before Upgrade, so a plain GET is refused too. */
	expect_error("GET / HTTP/1.1\r\nHost: a\r\n" H_KEY H_KEY "\r\n",
		     HTTP_ERR_DUP_KEY);
}
END_TEST

START_TEST(test_reject_no_connection)
{
	expect_error(RL H_HOST H_UPG H_KEY H_VER "\r\n", HTTP_ERR_BAD_UPGRADE);
}
END_TEST

START_TEST(test_reject_connection_without_upgrade)
{
	expect_error(RL H_HOST H_UPG "Connection: keep-alive, upgraded\r\n"
		     H_KEY H_VER "\r\n",
		     HTTP_ERR_BAD_UPGRADE);
}
END_TEST

START_TEST(test_reject_no_ws_version)
{
	expect_error(RL H_HOST H_UPG H_CONN H_KEY "\r\n", HTTP_ERR_VERSION);
}
END_TEST

START_TEST(test_reject_wrong_ws_version)
{
	expect_error(RL H_HOST H_UPG H_CONN H_KEY
		     "Sec-WebSocket-Version: 8\r\n\r\n",
		     HTTP_ERR_VERSION);
	expect_error(RL H_HOST H_UPG H_CONN H_KEY
		     "Sec-WebSocket-Version: 13, 8\r\n\r\n",
		     HTTP_ERR_VERSION);
	expect_error(RL H_HOST H_UPG H_CONN H_KEY
		     "Sec-WebSocket-Version: 130\r\n\r\n",
		     HTTP_ERR_VERSION);
}
END_TEST

START_TEST(test_reject_two_ws_version_fields)
{
	expect_error(WS_HEAD H_VER "\r\n", HTTP_ERR_VERSION);
}
END_TEST

START_TEST(test_reject_no_key)
{
	expect_error(RL H_HOST H_UPG H_CONN H_VER "\r\n", HTTP_ERR_NO_KEY);
}
END_TEST

/* A WebSocket request with key KEY must fail with BAD_KEY. */
static void expect_bad_key(const char *key)
{
	char req[1024];

	snprintf(req, sizeof(req),
		 RL H_HOST H_UPG H_CONN "Sec-WebSocket-Key: %s\r\n" H_VER
					"\r\n",
		 key);
	expect_error(req, HTTP_ERR_BAD_KEY);
}

START_TEST(test_reject_bad_key)
{
	expect_bad_key("");
	expect_bad_key("dGhlIHNhbXBsZSBub25jZQ=");    /* 23 chars */
	expect_bad_key("dGhlIHNhbXBsZSBub25jZQ");     /* no padding */
	expect_bad_key("dGhlIHNhbXBsZSBub25jZQ===");  /* 25 chars */
	expect_bad_key("dGhlIHNhbXBsZSBub25jZ*==");   /* alphabet */
	expect_bad_key("dGhlIHNhbXBsZSBub25jZ-==");   /* base64url */
	expect_bad_key("dGhlIHNhbXBsZSBub25jZR==");   /* pad bits set */
	expect_bad_key("dGhlIHNhbXBsZSBub25j=Q==");   /* '=' inside */
	expect_bad_key("dGhlIHNhbXBsZSBub25jZXk=");   /* 17 bytes */
	expect_bad_key("dGhlIHNhbXBsZSBub25jZQ== x"); /* trailing junk */
}
END_TEST

START_TEST(test_reject_body_content_length)
{
	expect_error(WS_HEAD "Content-Length: 5\r\n\r\nhello",
		     HTTP_ERR_BODY);
	expect_error(WS_HEAD "Content-Length:\r\n\r\n", HTTP_ERR_BODY);
}
END_TEST

START_TEST(test_reject_body_transfer_encoding)
{
	expect_error(WS_HEAD "Transfer-Encoding: chunked\r\n\r\n",
		     HTTP_ERR_BODY);
}
END_TEST

START_TEST(test_reject_body_plain_get)
{
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx",
		     HTTP_ERR_BODY);
	expect_error("GET / HTTP/1.1\r\nHost: h\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n",
		     HTTP_ERR_BODY);
}
END_TEST

START_TEST(test_check_order)
{
	/* Host before the key, dup key before Upgrade/Connection, Connection
	 * before the version, the version before the key. */
	expect_error(RL H_UPG H_KEY H_KEY "\r\n", HTTP_ERR_NO_HOST);
	expect_error(RL H_HOST H_UPG H_KEY H_KEY "\r\n", HTTP_ERR_DUP_KEY);
	expect_error(RL H_HOST H_UPG "\r\n", HTTP_ERR_BAD_UPGRADE);
	expect_error(RL H_HOST H_UPG H_CONN "\r\n", HTTP_ERR_VERSION);
	expect_error(RL H_HOST H_UPG H_CONN H_VER
		     "Content-Length: 3\r\n\r\n",
		     HTTP_ERR_NO_KEY);
}
END_TEST

/* ---- limits ---- */

/* A plain GET whose request line is exactly N bytes long (CRLF excluded). */
static char *line_of(size_t n)
{
	static const char tail[] = " HTTP/1.1\r\nHost: h\r\n\r\n";
	char *s = malloc(n + sizeof(tail) + 8);
	size_t pathlen = n - 4 - (sizeof(" HTTP/1.1") - 1);

	ck_assert_ptr_nonnull(s);
	memcpy(s, "GET /", 5);
	memset(s + 5, 'a', pathlen - 1);
	memcpy(s + 4 + pathlen, tail, sizeof(tail));
	ck_assert_uint_eq(strchr(s, '\r') - s, n);
	return s;
}

START_TEST(test_limit_request_line_exact)
{
	struct http_limits lim = {100, 8192, 64};
	struct result r;
	char *s = line_of(100);

	run_all_lim(s, strlen(s), &lim, &r);
	ck_assert_int_eq(r.status, HTTP_UPGRADE_DONE);
	free(s);
	s = line_of(101);
	expect_error_lim(s, strlen(s), &lim, HTTP_ERR_LINE_TOO_LONG);
	/* Detected at byte 101, not at the end of the line. */
	expect_error_lim(s, 101, &lim, HTTP_ERR_LINE_TOO_LONG);
	run_all_lim(s, 100, &lim, &r);
	ck_assert_int_eq(r.status, HTTP_UPGRADE_INCOMPLETE);
	free(s);
}
END_TEST

START_TEST(test_limit_header_bytes_exact)
{
	struct http_limits lim = {1024, sizeof(WS_REQ) - 1, 64};
	struct result r;

	run_all_lim(WS_REQ, strlen(WS_REQ), &lim, &r);
	ck_assert_int_eq(r.status, HTTP_UPGRADE_DONE);
	lim.max_header_bytes--;
	/* The final LF is one too many. */
	expect_error_lim(WS_REQ, strlen(WS_REQ), &lim,
			 HTTP_ERR_HEADERS_TOO_LARGE);
	run_all_lim(WS_REQ, strlen(WS_REQ), &lim, &r);
	ck_assert_uint_eq(r.consumed, strlen(WS_REQ));
}
END_TEST

START_TEST(test_limit_header_bytes_early)
{
	struct http_limits lim = {1024, 64, 64};
	char big[200];

	/* An endless header value fails once byte 65 arrives. */
	memset(big, 'x', sizeof(big));
	memcpy(big, RL "X-A: ", strlen(RL "X-A: "));
	expect_error_lim(big, sizeof(big), &lim, HTTP_ERR_HEADERS_TOO_LARGE);
	expect_error_lim(big, 65, &lim, HTTP_ERR_HEADERS_TOO_LARGE);
}
END_TEST

START_TEST(test_limit_max_headers_exact)
{
	struct http_limits lim = {1024, 8192, 5};
	struct result r;

	run_all_lim(WS_REQ, strlen(WS_REQ), &lim, &r);
	ck_assert_int_eq(r.status, HTTP_UPGRADE_DONE);
	ck_assert(has(&r, "fields=5\n"));
	lim.max_headers = 4;
	expect_error_lim(WS_REQ, strlen(WS_REQ), &lim,
			 HTTP_ERR_TOO_MANY_HEADERS);
	/* Detected at the first byte of the fifth field. */
	expect_error_lim(WS_REQ, strlen(RL H_HOST H_UPG H_CONN H_KEY) + 1,
			 &lim, HTTP_ERR_TOO_MANY_HEADERS);
	run_all_lim(WS_REQ, strlen(RL H_HOST H_UPG H_CONN H_KEY), &lim, &r);
	ck_assert_int_eq(r.status, HTTP_UPGRADE_INCOMPLETE);
}
END_TEST

START_TEST(test_trickle_is_linear)
{
	/* 256 KiB head fed one byte per call: a per-byte rescan would take
	 * minutes and hit the test timeout. */
	size_t n = 1 << 18, i, used;
	struct http_limits lim = {1024, n + 64, 8};
	struct http_upgrade *p = http_upgrade_new(&lim);
	char *req = malloc(n + 64);
	size_t len;

	ck_assert_ptr_nonnull(req);
	len = (size_t)snprintf(req, n + 64, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
	memset(req + len, 'b', n - len);
	memcpy(req + n, "\r\n\r\n", 4);
	len = n + 4;
	for (i = 0; i + 1 < len; i++)
		if (http_upgrade_feed(p, (uint8_t *)req + i, 1, &used) !=
		    HTTP_UPGRADE_INCOMPLETE)
			break;
	ck_assert_uint_eq(i + 1, len);
	ck_assert_int_eq(http_upgrade_feed(p, (uint8_t *)req + i, 1, &used),
			 HTTP_UPGRADE_DONE);
	ck_assert(!http_upgrade_is_websocket(p));
	ck_assert_uint_eq(http_upgrade_field(p, 1)->value.len,
			  n - strlen("GET / HTTP/1.1\r\nHost: h\r\nX-Big: "));
	http_upgrade_free(p);
	free(req);
}
END_TEST

START_TEST(test_zero_limits)
{
	struct http_limits lim = {0, 8192, 64};

	expect_error_lim("G", 1, &lim, HTTP_ERR_LINE_TOO_LONG);
	lim.max_request_line = 64;
	lim.max_header_bytes = 0;
	expect_error_lim("G", 1, &lim, HTTP_ERR_HEADERS_TOO_LARGE);
	lim.max_header_bytes = 8192;
	lim.max_headers = 0;
	expect_error_lim("GET / HTTP/1.1\r\n\r\n", 18, &lim,
			 HTTP_ERR_NO_HOST);
	expect_error_lim("GET / HTTP/1.1\r\nH", 17, &lim,
			 HTTP_ERR_TOO_MANY_HEADERS);
}
END_TEST

/* Every error value is produced by some input (keep in sync with the enum). */
START_TEST(test_every_error_reachable)
{
	static const struct {
		enum http_upgrade_error err;
		const char *req;
	} cases[] = {
		{HTTP_ERR_MALFORMED, "GET / HTTP/1.1\n"},
		{HTTP_ERR_BAD_TARGET, "GET x HTTP/1.1\r\n"},
		{HTTP_ERR_BAD_HEADER, RL "Host : h\r\n"},
		{HTTP_ERR_OBS_FOLD, RL " x\r\n"},
		{HTTP_ERR_BARE_CR, RL "\rx"},
		{HTTP_ERR_NO_HOST, RL "\r\n"},
		{HTTP_ERR_DUP_HOST, RL H_HOST H_HOST "\r\n"},
		{HTTP_ERR_EMPTY_HOST, RL "Host: \r\n\r\n"},
		{HTTP_ERR_NO_KEY, RL H_HOST H_UPG H_CONN H_VER "\r\n"},
		{HTTP_ERR_BAD_KEY, RL H_HOST H_UPG H_CONN H_VER
		 "Sec-WebSocket-Key: abc\r\n\r\n"},
		{HTTP_ERR_DUP_KEY, WS_HEAD H_KEY "\r\n"},
		{HTTP_ERR_BAD_UPGRADE, RL H_HOST H_UPG "\r\n"},
		{HTTP_ERR_BODY, WS_HEAD "Transfer-Encoding: x\r\n\r\n"},
		{HTTP_ERR_METHOD, "PUT / HTTP/1.1\r\n"},
		{HTTP_ERR_VERSION, RL H_HOST H_UPG H_CONN "\r\n"},
		{HTTP_ERR_LINE_TOO_LONG, NULL},
		{HTTP_ERR_HEADERS_TOO_LARGE, NULL},
		{HTTP_ERR_TOO_MANY_HEADERS, NULL},
		{HTTP_ERR_HTTP_VERSION, "GET / HTTP/2.0\r\n"},
	};
	bool seen[HTTP_ERR_HTTP_VERSION + 1] = {false};
	char *buf = malloc(16384);
	size_t i, j;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].err == HTTP_ERR_TOO_MANY_HEADERS) {
			size_t o = (size_t)snprintf(buf, 16384, "%s", RL);
			for (j = 0; j < 70; j++)
				o += (size_t)snprintf(buf + o, 16384 - o, "A: b\r\n");
		} else if (cases[i].err == HTTP_ERR_LINE_TOO_LONG) {
			snprintf(buf, 16384, "GET /");
			memset(buf + 5, 'a', 1100);
			buf[5 + 1100] = '\0';
		} else if (cases[i].err == HTTP_ERR_HEADERS_TOO_LARGE) {
			snprintf(buf, 16384, "%s", RL "X: ");
			memset(buf + strlen(buf), 'a', 9000);
			buf[strlen(RL "X: ") + 9000] = '\0';
		} else {
			snprintf(buf, 16384, "%s", cases[i].req);
		}
		expect_error(buf, cases[i].err);
		seen[cases[i].err] = true;
	}
	for (i = 1; i <= HTTP_ERR_HTTP_VERSION; i++)
		ck_assert_msg(seen[i], "error %zu not covered", i);
	free(buf);
}
END_TEST

START_TEST(test_error_status_and_text)
{
	ck_assert_int_eq(http_upgrade_error_status(HTTP_ERR_NONE), 0);
	ck_assert_int_eq(http_upgrade_error_status(HTTP_ERR_MALFORMED), 400);
	ck_assert_int_eq(http_upgrade_error_status(HTTP_ERR_METHOD), 405);
	ck_assert_int_eq(http_upgrade_error_status(HTTP_ERR_VERSION), 426);
	ck_assert_int_eq(http_upgrade_error_status(HTTP_ERR_LINE_TOO_LONG),
			 431);
	ck_assert_int_eq(
		http_upgrade_error_status(HTTP_ERR_TOO_MANY_HEADERS), 431);
	ck_assert_int_eq(http_upgrade_error_status(HTTP_ERR_HTTP_VERSION),
			 505);
	ck_assert_str_eq(http_upgrade_error_text(HTTP_ERR_NO_HOST),
			 "missing Host header");
	ck_assert_str_eq(
		http_upgrade_error_text((enum http_upgrade_error)999),
		"unknown error");
}
END_TEST

START_TEST(test_status_reasons)
{
	static const struct {
		int status;
		const char *reason;
	} t[] = {
		{101, "Switching Protocols"},
		{400, "Bad Request"},
		{401, "Unauthorized"},
		{403, "Forbidden"},
		{404, "Not Found"},
		{405, "Method Not Allowed"},
		{426, "Upgrade Required"},
		{429, "Too Many Requests"},
		{431, "Request Header Fields Too Large"},
		{500, "Internal Server Error"},
		{502, "Bad Gateway"},
		{503, "Service Unavailable"},
		{505, "HTTP Version Not Supported"},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ck_assert_str_eq(http_status_reason(t[i].status), t[i].reason);
	ck_assert_str_eq(http_status_reason(299), "Unknown");
}
END_TEST

/* ---- accept key and responses ---- */

START_TEST(test_accept_key_rfc6455)
{
	char out[HTTP_ACCEPT_KEY_LEN + 1];

	/* RFC 6455 1.3. */
	ck_assert_int_eq(http_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out),
			 0);
	ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	ck_assert_int_eq(http_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out),
			 0);
	ck_assert_str_eq(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
	/* Only KEY_LEN bytes are hashed. */
	ck_assert_int_eq(
		http_accept_key("dGhlIHNhbXBsZSBub25jZQ==junk", 24, out), 0);
	ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

START_TEST(test_response_upgrade_exact)
{
	static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
				   "Upgrade: websocket\r\n"
				   "Connection: Upgrade\r\n"
				   "Sec-WebSocket-Accept: "
				   "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
				   "\r\n";
	char buf[512];
	int n;

	n = http_response_upgrade(buf, sizeof(buf),
				  "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", NULL);
	ck_assert_int_eq(n, (int)strlen(want));
	ck_assert_str_eq(buf, want);
	/* Exactly enough room (NUL included) works, one less does not. */
	ck_assert_int_eq(http_response_upgrade(buf, sizeof(want),
					       "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
					       NULL),
			 n);
	ck_assert_int_eq(http_response_upgrade(buf, sizeof(want) - 1,
					       "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
					       NULL),
			 -1);
	ck_assert_int_eq(http_response_upgrade(buf, 0, "x", NULL), -1);
}
END_TEST

START_TEST(test_response_upgrade_protocol)
{
	static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
				   "Upgrade: websocket\r\n"
				   "Connection: Upgrade\r\n"
				   "Sec-WebSocket-Accept: "
				   "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
				   "Sec-WebSocket-Protocol: chat\r\n"
				   "\r\n";
	char buf[512];

	ck_assert_int_eq(http_response_upgrade(buf, sizeof(buf),
					       "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
					       "chat"),
			 (int)strlen(want));
	ck_assert_str_eq(buf, want);
	/* Header injection is refused. */
	ck_assert_int_eq(http_response_upgrade(buf, sizeof(buf), "a",
					       "chat\r\nX-Evil: 1"),
			 -1);
}
END_TEST

START_TEST(test_response_error_exact)
{
	static const char want400[] = "HTTP/1.1 400 Bad Request\r\n"
				      "Content-Type: text/plain\r\n"
				      "Content-Length: 20\r\n"
				      "Connection: close\r\n"
				      "\r\n"
				      "missing Host header\n";
	static const char want426[] = "HTTP/1.1 426 Upgrade Required\r\n"
				      "Content-Type: text/plain\r\n"
				      "Content-Length: 34\r\n"
				      "Connection: close\r\n"
				      "Sec-WebSocket-Version: 13\r\n"
				      "\r\n"
				      "Sec-WebSocket-Version 13 required\n";
	static const char want405[] = "HTTP/1.1 405 Method Not Allowed\r\n"
				      "Content-Type: text/plain\r\n"
				      "Content-Length: 19\r\n"
				      "Connection: close\r\n"
				      "Allow: GET\r\n"
				      "\r\n"
				      "method not allowed\n";
	char buf[512];

	ck_assert_int_eq(http_response_error(buf, sizeof(buf), 400,
					     "missing Host header"),
			 (int)strlen(want400));
	ck_assert_str_eq(buf, want400);
	ck_assert_int_eq(
		http_response_error(
			buf, sizeof(buf), 426,
			http_upgrade_error_text(HTTP_ERR_VERSION)),
		(int)strlen(want426));
	ck_assert_str_eq(buf, want426);
	ck_assert_int_eq(http_response_error(buf, sizeof(buf), 405,
					     "method not allowed"),
			 (int)strlen(want405));
	ck_assert_str_eq(buf, want405);
}
END_TEST

START_TEST(test_response_error_small_cap)
{
	char buf[256];
	int n;

	memset(buf, 'Z', sizeof(buf));
	n = http_response_error(buf, 200, 404, NULL);
	ck_assert_int_gt(n, 0);
	ck_assert_str_eq(buf + n - strlen("\r\n\r\nNot Found\n"),
			 "\r\n\r\nNot Found\n");
	ck_assert_int_eq(http_response_error(buf, (size_t)n + 1, 404, NULL),
			 n);
	memset(buf, 'Z', sizeof(buf));
	ck_assert_int_eq(http_response_error(buf, (size_t)n, 404, NULL), -1);
	/* Never writes past CAP. */
	ck_assert_int_eq(buf[n], 'Z');
	memset(buf, 'Z', sizeof(buf));
	ck_assert_int_eq(http_response_error(buf, 10, 404, "x"), -1);
	ck_assert_int_eq(buf[10], 'Z');
	ck_assert_int_eq(http_response_error(buf, sizeof(buf), 42, "x"), -1);
}
END_TEST

/* The suite. */
static Suite *http_upgrade_suite(void)
{
	Suite *s = suite_create("http_upgrade");
	TCase *ok = tcase_create("valid");
	TCase *rl = tcase_create("request_line");
	TCase *hd = tcase_create("header_lines");
	TCase *ws = tcase_create("rfc6455");
	TCase *lm = tcase_create("limits");
	TCase *rs = tcase_create("responses");

	tcase_add_test(ok, test_rfc6455_sample);
	tcase_add_test(ok, test_chrome_like);
	tcase_add_test(ok, test_firefox_like);
	tcase_add_test(ok, test_python_websockets_like);
	tcase_add_test(ok, test_case_insensitive_names_and_tokens);
	tcase_add_test(ok, test_ows_trimmed_and_tabs_kept_inside);
	tcase_add_test(ok, test_obs_text_allowed_in_value);
	tcase_add_test(ok, test_http_1_x_minor_accepted);
	tcase_add_test(ok, test_plain_get);
	tcase_add_test(ok, test_plain_get_upgrade_without_websocket);
	tcase_add_test(ok, test_upgrade_token_in_list_and_second_field);
	tcase_add_test(ok, test_content_length_zero_allowed);
	tcase_add_test(ok, test_trailing_bytes_not_consumed);
	tcase_add_test(ok, test_incomplete_consumes_all);
	tcase_add_test(ok, test_header_lookup_first_of_many);
	tcase_add_test(ok, test_next_token_across_fields);
	tcase_add_test(ok, test_list_has_token);
	suite_add_tcase(s, ok);

	tcase_add_test(rl, test_reject_method_post);
	tcase_add_test(rl, test_reject_method_lowercase_get);
	tcase_add_test(rl, test_reject_version_before_method);
	tcase_add_test(rl, test_reject_http_1_0);
	tcase_add_test(rl, test_reject_http_0_9_and_2_0);
	tcase_add_test(rl, test_reject_malformed_version);
	tcase_add_test(rl, test_reject_extra_spaces);
	tcase_add_test(rl, test_reject_short_request_line);
	tcase_add_test(rl, test_reject_bad_method_char);
	tcase_add_test(rl, test_reject_bare_lf_request_line);
	tcase_add_test(rl, test_reject_absolute_form_target);
	tcase_add_test(rl, test_reject_asterisk_target);
	tcase_add_test(rl, test_reject_fragment_in_target);
	tcase_add_test(rl, test_reject_control_in_target);
	tcase_add_test(rl, test_reject_bare_cr_request_line);
	suite_add_tcase(s, rl);

	tcase_add_test(hd, test_reject_bare_lf_header);
	tcase_add_test(hd, test_reject_bare_lf_blank_line);
	tcase_add_test(hd, test_reject_space_before_colon);
	tcase_add_test(hd, test_reject_line_without_colon);
	tcase_add_test(hd, test_reject_bad_name_char);
	tcase_add_test(hd, test_reject_nul_in_value);
	tcase_add_test(hd, test_reject_control_in_value);
	tcase_add_test(hd, test_reject_obs_fold);
	tcase_add_test(hd, test_reject_bare_cr_value);
	tcase_add_test(hd, test_reject_bare_cr_blank_line);
	suite_add_tcase(s, hd);

	tcase_add_test(ws, test_reject_no_host);
	tcase_add_test(ws, test_reject_dup_host);
	tcase_add_test(ws, test_reject_empty_host);
	tcase_add_test(ws, test_reject_dup_key);
	tcase_add_test(ws, test_reject_no_connection);
	tcase_add_test(ws, test_reject_connection_without_upgrade);
	tcase_add_test(ws, test_reject_no_ws_version);
	tcase_add_test(ws, test_reject_wrong_ws_version);
	tcase_add_test(ws, test_reject_two_ws_version_fields);
	tcase_add_test(ws, test_reject_no_key);
	tcase_add_test(ws, test_reject_bad_key);
	tcase_add_test(ws, test_reject_body_content_length);
	tcase_add_test(ws, test_reject_body_transfer_encoding);
	tcase_add_test(ws, test_reject_body_plain_get);
	tcase_add_test(ws, test_check_order);
	tcase_add_test(ws, test_every_error_reachable);
	suite_add_tcase(s, ws);

	tcase_add_test(lm, test_limit_request_line_exact);
	tcase_add_test(lm, test_limit_header_bytes_exact);
	tcase_add_test(lm, test_limit_header_bytes_early);
	tcase_add_test(lm, test_limit_max_headers_exact);
	tcase_add_test(lm, test_trickle_is_linear);
	tcase_add_test(lm, test_zero_limits);
	suite_add_tcase(s, lm);

	tcase_add_test(rs, test_error_status_and_text);
	tcase_add_test(rs, test_status_reasons);
	tcase_add_test(rs, test_accept_key_rfc6455);
	tcase_add_test(rs, test_response_upgrade_exact);
	tcase_add_test(rs, test_response_upgrade_protocol);
	tcase_add_test(rs, test_response_error_exact);
	tcase_add_test(rs, test_response_error_small_cap);
	suite_add_tcase(s, rs);
	return s;
}

/* Run the suite; non-zero exit on failure. */
int main(void)
{
	SRunner *sr = srunner_create(http_upgrade_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
