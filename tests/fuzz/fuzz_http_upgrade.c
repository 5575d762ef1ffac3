/*
 * fuzz_http_upgrade.c - libFuzzer target for the upgrade request parser.
 *
 * The input is parsed whole, byte by byte and in chunks whose sizes come
 * from a PRNG seeded by the input, under generous limits and under tight
 * limits derived from the input.  Every way of splitting must give the same
 * status, error, bytes consumed and accessor values (compared by hash).  On
 * DONE every accessor, the token iterator, the accept key and the response
 * builders are exercised.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *     src/http_upgrade.c tests/fuzz/fuzz_http_upgrade.c \
 *     $(pkg-config --cflags --libs libcrypto) -o fuzz_http_upgrade
 */
#include "http_upgrade.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What one parse produced. */
struct outcome {
	enum http_upgrade_status status;
	enum http_upgrade_error err;
	size_t consumed;
	uint64_t hash; /* of every accessor value */
};

/* FNV-1a over LEN bytes at P, continuing from H. */
static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Hash a view, length first so boundaries count. */
static uint64_t fnv_str(uint64_t h, struct http_str s)
{
	if (s.p == NULL)
		abort(); /* accessors never return NULL */
	h = fnv(h, &s.len, sizeof(s.len));
	return fnv(h, s.p, s.len);
}

/* Hash all tokens of the fields named NAME; checks they are trimmed. */
static uint64_t hash_tokens(const struct http_upgrade *p, const char *name,
			    uint64_t h)
{
	struct http_str tok;
	size_t cursor = 0, n = 0;

	while (http_upgrade_next_token(p, name, &cursor, &tok)) {
		if (tok.len == 0 || tok.p[0] == ' ' || tok.p[0] == ',' ||
		    tok.p[tok.len - 1] == ' ' || tok.p[tok.len - 1] == '\t' ||
		    memchr(tok.p, ',', tok.len) != NULL)
			abort();
		if (++n > 100000)
			abort(); /* the iterator must terminate */
		h = fnv_str(h, tok);
	}
	return h;
}

/* Exercise the accept key and the response builders for a WebSocket P. */
static void use_websocket(const struct http_upgrade *p)
{
	struct http_str key = http_upgrade_key(p);
	char accept[HTTP_ACCEPT_KEY_LEN + 1];
	char buf[512];
	int n;

	if (key.len != 24 || http_accept_key(key.p, key.len, accept) != 0 ||
	    strlen(accept) != HTTP_ACCEPT_KEY_LEN)
		abort();
	n = http_response_upgrade(buf, sizeof(buf), accept, "chat");
	if (n <= 0 || (size_t)n != strlen(buf))
		abort();
	if (http_response_upgrade(buf, (size_t)n, accept, "chat") != -1)
		abort();
}

/* Hash every accessor of P. */
static uint64_t hash_accessors(const struct http_upgrade *p)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	struct http_str v;
	size_t i, n = http_upgrade_field_count(p);
	bool ws = http_upgrade_is_websocket(p);

	h = fnv(h, &ws, sizeof(ws));
	h = fnv_str(h, http_upgrade_method(p));
	h = fnv_str(h, http_upgrade_target(p));
	h = fnv_str(h, http_upgrade_path(p));
	h = fnv_str(h, http_upgrade_query(p));
	h = fnv_str(h, http_upgrade_host(p));
	h = fnv_str(h, http_upgrade_origin(p));
	h = fnv_str(h, http_upgrade_key(p));
	for (i = 0; i < n; i++) {
		const struct http_field *f = http_upgrade_field(p, i);

		if (f == NULL || f->name.len == 0)
			abort();
		h = fnv_str(h, f->name);
		h = fnv_str(h, f->value);
	}
	if (http_upgrade_field(p, n) != NULL)
		abort();
	if (http_upgrade_header(p, "Sec-WebSocket-Protocol", &v))
		h = fnv_str(h, v);
	h = hash_tokens(p, "sec-websocket-protocol", h);
	h = hash_tokens(p, "Sec-WebSocket-Extensions", h);
	h = hash_tokens(p, "connection", h);
	if (ws)
		use_websocket(p);
	return h;
}

/* xorshift64 step. */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Parse DATA in chunks (MODE 0 whole, 1 bytes, 2 random from SEED). */
static void parse(const uint8_t *data, size_t size,
		  const struct http_limits *lim, int mode, uint64_t seed,
		  struct outcome *o)
{
	struct http_upgrade *p = http_upgrade_new(lim);
	enum http_upgrade_status st = HTTP_UPGRADE_INCOMPLETE;
	size_t off = 0, used;

	if (p == NULL)
		abort();
	o->consumed = 0;
	while (off < size) {
		size_t n = size - off;

		if (mode == 1)
			n = 1;
		else if (mode == 2)
			n = 1 + (size_t)(next_rand(&seed) % 64) % n;
		st = http_upgrade_feed(p, data + off, n, &used);
		if (used > n)
			abort();
		o->consumed += used;
		if (st != HTTP_UPGRADE_INCOMPLETE)
			break;
		if (used != n)
			abort();
		off += n;
	}
	o->status = st;
	o->err = http_upgrade_error(p);
	if ((st == HTTP_UPGRADE_ERROR) != (o->err != HTTP_ERR_NONE))
		abort();
	if (st == HTTP_UPGRADE_DONE &&
	    (o->consumed < 4 ||
	     memcmp(data + o->consumed - 4, "\r\n\r\n", 4) != 0))
		abort();
	if (st != HTTP_UPGRADE_INCOMPLETE &&
	    (http_upgrade_feed(p, data, size, &used) != st || used != 0))
		abort();
	o->hash = hash_accessors(p);
	http_upgrade_free(p);
}

/* All ways of splitting DATA under LIM must agree. */
static void check_limits(const uint8_t *data, size_t size,
			 const struct http_limits *lim, uint64_t seed)
{
	struct outcome whole, other;
	int i;

	parse(data, size, lim, 0, 0, &whole);
	for (i = 0; i < 4; i++) {
		parse(data, size, lim, i == 0 ? 1 : 2, next_rand(&seed) | 1,
		      &other);
		if (other.status != whole.status || other.err != whole.err ||
		    other.consumed != whole.consumed ||
		    other.hash != whole.hash)
			abort();
	}
	if (whole.status == HTTP_UPGRADE_ERROR) {
		char buf[512];
		int status = http_upgrade_error_status(whole.err);

		if (http_response_error(buf, sizeof(buf), status,
					http_upgrade_error_text(whole.err)) <= 0)
			abort();
	}
}

/* N - 1, N or N + 1 depending on R (never below 0). */
static size_t sat_adjust(size_t n, uint64_t r)
{
	switch (r % 3) {
	case 0: return n > 0 ? n - 1 : 0;
	case 1: return n;
	default: return n + 1;
	}
}

/* libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http_limits generous = {8192, 16384, 100};
	uint64_t seed = fnv(0xcbf29ce484222325ULL, data, size) | 1;
	struct http_limits tight;
	const uint8_t *line;
	size_t i, lines;

	check_limits(data, size, &generous, seed);
	/* Limits at, just under and just over what the input itself needs,
	 * so every boundary is hit. */
	line = memchr(data, '\r', size);
	lines = 0;
	for (i = 0; i + 1 < size; i++)
		lines += data[i] == '\r' && data[i + 1] == '\n';
	tight.max_request_line =
		sat_adjust(line ? (size_t)(line - data) : size, seed);
	tight.max_header_bytes = sat_adjust(size, seed >> 8);
	tight.max_headers = sat_adjust(lines > 2 ? lines - 2 : 0, seed >> 16);
	check_limits(data, size, &tight, seed);
	return 0;
}
