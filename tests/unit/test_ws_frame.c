/*
 * test_ws_frame.c - Check suite for the RFC 6455 frame codec (ws_frame.c).
 *
 * Every input is decoded whole, byte by byte and at seeded random split
 * points; the events are folded into a log of frames (payload reassembled,
 * flags kept) that must be identical for every split and equal to what the
 * test expects.  Each rejection rule has its own test.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_frame.h"

/* ---- helpers: PRNG, byte buffers ---------------------------------------- */

/* ck_assert costs a syscall per call in fork mode: too slow per byte. */
#define REQUIRE(c)                                                             \
	do {                                                                   \
		if (!(c))                                                      \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c);     \
	} while (0)

/* xorshift64: deterministic, seeded per test. */
static uint64_t
xs(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

struct bytes {
	uint8_t *p;
	size_t n, cap;
};

/* Append N bytes at P to B. */
static void
bytes_put(struct bytes *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 64;

		while (cap < b->n + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		REQUIRE(b->p != NULL);
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
}

/* Append a frame (header built by ws_frame_header, RSV bits ORed in). */
static void
put_frame(struct bytes *b, bool fin, uint8_t rsv, uint8_t opcode,
	  const void *payload, size_t len, const uint8_t *mask)
{
	uint8_t hdr[WS_MAX_HEADER];
	size_t h = ws_frame_header(hdr, fin, opcode, len, mask);
	size_t at;

	hdr[0] |= (uint8_t)(rsv << 4);
	bytes_put(b, hdr, h);
	at = b->n;
	bytes_put(b, payload, len);
	if (mask)
		ws_unmask(b->p + at, len, mask, 0);
}

/* ---- the event log ------------------------------------------------------ */

struct item {
	char kind; /* 'F' data frame, 'C' control frame, 'X' error */
	uint8_t opcode;
	bool rsv1, mstart, mend, complete;
	uint16_t code; /* C: close code; X: error code */
	size_t reason_len;
	struct bytes data;
};

struct log {
	struct item it[2048];
	size_t n;
	bool idle;        /* ws_decoder_is_idle() after the last byte */
	size_t data_evs;  /* DATA events seen */
};

static struct log *
log_new(void)
{
	struct log *lg = calloc(1, sizeof(*lg));

	ck_assert_ptr_nonnull(lg);
	return lg;
}

static void
log_free(struct log *lg)
{
	if (!lg)
		return;
	for (size_t i = 0; i < lg->n; i++)
		free(lg->it[i].data.p);
	free(lg);
}

/* Append an empty item of KIND to LG. */
static struct item *
log_push(struct log *lg, char kind)
{
	struct item *it;

	REQUIRE(lg->n < sizeof(lg->it) / sizeof(lg->it[0]));
	it = &lg->it[lg->n++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	return it;
}

/* Expected complete data frame. */
static void
exp_frame(struct log *lg, uint8_t op, bool rsv1, bool mstart, bool mend,
	  const void *p, size_t n)
{
	struct item *it = log_push(lg, 'F');

	it->opcode = op;
	it->rsv1 = rsv1;
	it->mstart = mstart;
	it->mend = mend;
	it->complete = true;
	bytes_put(&it->data, p, n);
}

/* Expected control frame. */
static void
exp_control(struct log *lg, uint8_t op, const void *p, size_t n, uint16_t code)
{
	struct item *it = log_push(lg, 'C');

	it->opcode = op;
	it->code = code;
	it->reason_len = (op == WS_OP_CLOSE && n >= 2) ? n - 2 : 0;
	bytes_put(&it->data, p, n);
}

/* Expected partial data frame (cut short by an error or end of input). */
static void
exp_partial(struct log *lg, uint8_t op, bool rsv1, bool mstart, const void *p,
	    size_t n)
{
	struct item *it = log_push(lg, 'F');

	it->opcode = op;
	it->rsv1 = rsv1;
	it->mstart = mstart;
	bytes_put(&it->data, p, n);
}

/* Expected error. */
static void
exp_error(struct log *lg, uint16_t code)
{
	log_push(lg, 'X')->code = code;
}

/* Describe the first difference between A and B into MSG; true if equal. */
static bool
log_equal(const struct log *a, const struct log *b, char *msg, size_t msglen)
{
	size_t n = a->n < b->n ? a->n : b->n;

	for (size_t i = 0; i < n; i++) {
		const struct item *x = &a->it[i], *y = &b->it[i];

		if (x->kind != y->kind || x->opcode != y->opcode ||
		    x->rsv1 != y->rsv1 || x->mstart != y->mstart ||
		    x->mend != y->mend || x->complete != y->complete ||
		    x->code != y->code || x->reason_len != y->reason_len ||
		    x->data.n != y->data.n ||
		    (x->data.n && memcmp(x->data.p, y->data.p, x->data.n))) {
			snprintf(msg, msglen,
				 "item %zu: %c op %u rsv1 %d ms %d me %d "
				 "cpl %d code %u len %zu vs %c op %u rsv1 %d "
				 "ms %d me %d cpl %d code %u len %zu",
				 i, x->kind, x->opcode, x->rsv1, x->mstart,
				 x->mend, x->complete, x->code, x->data.n,
				 y->kind, y->opcode, y->rsv1, y->mstart,
				 y->mend, y->complete, y->code, y->data.n);
			return false;
		}
	}
	if (a->n != b->n) {
		snprintf(msg, msglen, "%zu items vs %zu", a->n, b->n);
		return false;
	}
	return true;
}

/* ---- the decoder driver ------------------------------------------------- */

enum feed_mode { FEED_WHOLE, FEED_BYTES, FEED_RANDOM };

/* Decode IN (copied) with CFG, fed per MODE, and fold events into LG. */
static void
run(const struct ws_decoder_config *cfg, const uint8_t *in, size_t len,
    enum feed_mode mode, uint64_t seed, struct log *lg)
{
	uint8_t *buf = malloc(len ? len : 1);
	struct ws_decoder d;
	struct item *cur = NULL;
	bool in_msg = false, failed = false;
	size_t pos = 0;

	REQUIRE(buf != NULL);
	if (len)
		memcpy(buf, in, len);
	ws_decoder_init(&d, cfg);
	seed = seed * 2654435761u + 1;
	while (pos < len && !failed) {
		size_t chunk = len - pos, end;

		if (mode == FEED_BYTES) {
			chunk = 1;
		} else if (mode == FEED_RANDOM) {
			uint64_t r = xs(&seed);
			size_t c = (r & 3) == 0 ? 1 + (size_t)(r >> 8) % 70000
						: 1 + (size_t)(r >> 8) % 20;
			if (c < chunk)
				chunk = c;
		}
		end = pos + chunk;
		for (;;) {
			struct ws_event ev;
			ssize_t r = ws_decoder_feed(&d, buf + pos, end - pos,
						    &ev);
			if (r < 0) {
				REQUIRE(r == -1);
				REQUIRE(ev.type == WS_EV_ERROR);
				REQUIRE(ev.error != NULL);
				if (cur) {
					lg->n++; /* keep it, incomplete */
					cur = NULL;
				}
				exp_error(lg, ev.error_code);
				/* sticky */
				REQUIRE(ws_decoder_feed(&d, buf, len, &ev) == -1);
				REQUIRE(ev.type == WS_EV_ERROR);
				REQUIRE(ev.error_code == lg->it[lg->n - 1].code);
				failed = true;
				break;
			}
			REQUIRE((size_t)r <= end - pos);
			if (ev.type == WS_EV_DATA) {
				lg->data_evs++;
				REQUIRE(ev.data >= buf + pos);
				REQUIRE(ev.data + ev.len <= buf + pos + r);
				REQUIRE(ev.len > 0 ||
					  (ev.frame_start && ev.frame_end));
				REQUIRE(!ev.message_end || ev.frame_end);
				REQUIRE(ev.opcode == WS_OP_TEXT ||
					  ev.opcode == WS_OP_BINARY);
				REQUIRE(ev.message_start == !in_msg);
				if (ev.frame_start) {
					REQUIRE(cur == NULL);
					/* reserve the slot; pushed on end */
					cur = log_push(lg, 'F');
					lg->n--;
					cur->opcode = ev.opcode;
					cur->rsv1 = ev.rsv1;
					cur->mstart = ev.message_start;
				} else {
					REQUIRE(cur != NULL);
					REQUIRE(ev.opcode == cur->opcode);
					REQUIRE(ev.rsv1 == cur->rsv1);
				}
				in_msg = true;
				bytes_put(&cur->data, ev.data, ev.len);
				if (ev.frame_end) {
					cur->mend = ev.message_end;
					cur->complete = true;
					lg->n++;
					cur = NULL;
					if (ev.message_end)
						in_msg = false;
				}
			} else if (ev.type == WS_EV_CONTROL) {
				REQUIRE(cur == NULL);
				REQUIRE(ev.opcode == WS_OP_CLOSE ||
					  ev.opcode == WS_OP_PING ||
					  ev.opcode == WS_OP_PONG);
				REQUIRE(ev.len <= 125);
				exp_control(lg, ev.opcode, ev.data, ev.len,
					    ev.close_code);
				lg->it[lg->n - 1].reason_len = ev.reason_len;
				if (ev.opcode == WS_OP_CLOSE && ev.len >= 2) {
					REQUIRE(ev.reason == ev.data + 2);
					REQUIRE(ev.reason_len == ev.len - 2);
					REQUIRE(ev.close_code ==
						(ev.data[0] << 8 | ev.data[1]));
				}
			} else {
				REQUIRE(ev.type == WS_EV_NONE);
				REQUIRE((size_t)r == end - pos);
			}
			pos += (size_t)r;
			if (ev.type == WS_EV_NONE)
				break;
		}
	}
	if (cur)
		lg->n++; /* a frame cut short by the end of input */
	lg->idle = ws_decoder_is_idle(&d);
	free(buf);
}

static const struct ws_decoder_config cfg_client = {
	.validate_utf8 = true,
};
static const struct ws_decoder_config cfg_server = {
	.require_mask = true,
	.validate_utf8 = true,
};

/* Decode IN whole, byte by byte and at random splits; all must equal EXP. */
static void
check_all(const struct ws_decoder_config *cfg, const uint8_t *in, size_t len,
	  const struct log *exp)
{
	char msg[512];

	for (int i = 0; i < 10; i++) {
		struct log *lg = log_new();
		enum feed_mode mode = i == 0 ? FEED_WHOLE
				    : i == 1 ? FEED_BYTES : FEED_RANDOM;

		run(cfg, in, len, mode, (uint64_t)i, lg);
		if (!log_equal(exp, lg, msg, sizeof(msg)))
			ck_abort_msg("mode %d: %s", i, msg);
		log_free(lg);
	}
}

/* Decode IN every way; it must fail with CODE and hand out no data. */
static void
check_error(const struct ws_decoder_config *cfg, const uint8_t *in, size_t len,
	    uint16_t code)
{
	struct log *exp = log_new();

	exp_error(exp, code);
	check_all(cfg, in, len, exp);
	log_free(exp);
}

/* ---- RFC 6455 5.7 examples ---------------------------------------------- */

static const uint8_t rfc_hello[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
static const uint8_t rfc_masked_hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
					    0x7f, 0x9f, 0x4d, 0x51, 0x58 };

START_TEST(test_rfc_unmasked_hello_client)
{
	struct log *exp = log_new();

	exp_frame(exp, WS_OP_TEXT, false, true, true, "Hello", 5);
	check_all(&cfg_client, rfc_hello, sizeof(rfc_hello), exp);
	log_free(exp);
}
END_TEST

/* RFC 6455 5.1: a server fails the connection on an unmasked frame. */
START_TEST(test_rfc_unmasked_hello_rejected_by_server)
{
	check_error(&cfg_server, rfc_hello, sizeof(rfc_hello), 1002);
}
END_TEST

START_TEST(test_rfc_masked_hello)
{
	struct log *exp = log_new();

	exp_frame(exp, WS_OP_TEXT, false, true, true, "Hello", 5);
	check_all(&cfg_server, rfc_masked_hello, sizeof(rfc_masked_hello), exp);
	check_all(&cfg_client, rfc_masked_hello, sizeof(rfc_masked_hello), exp);
	log_free(exp);
}
END_TEST

START_TEST(test_rfc_fragmented_hello)
{
	static const uint8_t in[] = { 0x01, 0x03, 0x48, 0x65, 0x6c,
				      0x80, 0x02, 0x6c, 0x6f };
	struct log *exp = log_new();

	exp_frame(exp, WS_OP_TEXT, false, true, false, "Hel", 3);
	exp_frame(exp, WS_OP_TEXT, false, false, true, "lo", 2);
	check_all(&cfg_client, in, sizeof(in), exp);
	log_free(exp);
}
END_TEST

START_TEST(test_rfc_ping_pong)
{
	static const uint8_t ping[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c,
					0x6f };
	static const uint8_t pong[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
					0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	struct log *exp = log_new();

	exp_control(exp, WS_OP_PING, "Hello", 5, 0);
	check_all(&cfg_client, ping, sizeof(ping), exp);
	log_free(exp);
	exp = log_new();
	exp_control(exp, WS_OP_PONG, "Hello", 5, 0);
	check_all(&cfg_server, pong, sizeof(pong), exp);
	log_free(exp);
}
END_TEST

START_TEST(test_rfc_256_binary)
{
	struct bytes in = { 0 };
	struct log *exp = log_new();
	uint8_t payload[256], hdr[WS_MAX_HEADER];
	static const uint8_t want[] = { 0x82, 0x7e, 0x01, 0x00 };

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	ck_assert_uint_eq(ws_frame_header(hdr, true, WS_OP_BINARY, 256, NULL),
			  4);
	ck_assert_mem_eq(hdr, want, 4);
	bytes_put(&in, want, sizeof(want));
	bytes_put(&in, payload, sizeof(payload));
	exp_frame(exp, WS_OP_BINARY, false, true, true, payload,
		  sizeof(payload));
	check_all(&cfg_client, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

START_TEST(test_rfc_64k_binary)
{
	struct bytes in = { 0 };
	struct log *exp = log_new();
	uint8_t *payload = malloc(65536), hdr[WS_MAX_HEADER];
	static const uint8_t want[] = { 0x82, 0x7f, 0x00, 0x00, 0x00,
					0x00, 0x00, 0x01, 0x00, 0x00 };

	ck_assert_ptr_nonnull(payload);
	for (size_t i = 0; i < 65536; i++)
		payload[i] = (uint8_t)(i * 13 + (i >> 8));
	ck_assert_uint_eq(
		ws_frame_header(hdr, true, WS_OP_BINARY, 65536, NULL), 10);
	ck_assert_mem_eq(hdr, want, 10);
	bytes_put(&in, want, sizeof(want));
	bytes_put(&in, payload, 65536);
	exp_frame(exp, WS_OP_BINARY, false, true, true, payload, 65536);
	check_all(&cfg_client, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
	free(payload);
}
END_TEST

/* ---- one test per rejection rule ---------------------------------------- */

static const uint8_t mask1[4] = { 0x11, 0x22, 0x33, 0x44 };

/* RFC 6455 5.2: RSV2 and RSV3 must be 0, extension or not. */
START_TEST(test_reject_rsv2_rsv3)
{
	struct ws_decoder_config cfg = cfg_client;

	cfg.allow_rsv1 = true;
	for (uint8_t rsv = 1; rsv <= 3; rsv++) { /* RSV3, RSV2, both */
		struct bytes in = { 0 };

		put_frame(&in, true, rsv, WS_OP_BINARY, "ab", 2, NULL);
		check_error(&cfg, in.p, in.n, 1002);
		free(in.p);
	}
}
END_TEST

START_TEST(test_reject_rsv1_without_extension)
{
	struct bytes in = { 0 };

	put_frame(&in, true, 4, WS_OP_TEXT, "ab", 2, NULL);
	check_error(&cfg_client, in.p, in.n, 1002);
	free(in.p);
}
END_TEST

START_TEST(test_rsv1_allowed_on_first_frame)
{
	struct ws_decoder_config cfg = cfg_client;
	struct bytes in = { 0 };
	struct log *exp = log_new();

	cfg.allow_rsv1 = true;
	put_frame(&in, false, 4, WS_OP_BINARY, "ab", 2, NULL);
	put_frame(&in, true, 0, WS_OP_CONT, "cd", 2, NULL);
	put_frame(&in, true, 0, WS_OP_TEXT, "ef", 2, NULL);
	exp_frame(exp, WS_OP_BINARY, true, true, false, "ab", 2);
	exp_frame(exp, WS_OP_BINARY, true, false, true, "cd", 2);
	exp_frame(exp, WS_OP_TEXT, false, true, true, "ef", 2);
	check_all(&cfg, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

START_TEST(test_reject_rsv1_on_continuation)
{
	struct ws_decoder_config cfg = cfg_client;
	struct bytes in = { 0 };
	struct log *exp = log_new();

	cfg.allow_rsv1 = true;
	put_frame(&in, false, 4, WS_OP_TEXT, "ab", 2, NULL);
	put_frame(&in, true, 4, WS_OP_CONT, "cd", 2, NULL);
	exp_frame(exp, WS_OP_TEXT, true, true, false, "ab", 2);
	exp_error(exp, 1002);
	check_all(&cfg, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

START_TEST(test_reject_rsv1_on_control)
{
	struct ws_decoder_config cfg = cfg_client;
	struct bytes in = { 0 };

	cfg.allow_rsv1 = true;
	put_frame(&in, true, 4, WS_OP_PING, "ab", 2, NULL);
	check_error(&cfg, in.p, in.n, 1002);
	free(in.p);
}
END_TEST

static const uint8_t reserved_ops[] = { 0x3, 0x4, 0x5, 0x6, 0x7,
					0xb, 0xc, 0xd, 0xe, 0xf };

START_TEST(test_reject_reserved_opcode)
{
	struct bytes in = { 0 };

	put_frame(&in, true, 0, reserved_ops[_i], "", 0, mask1);
	check_error(&cfg_server, in.p, in.n, 1002);
	free(in.p);
}
END_TEST

/* RFC 6455 5.5: control payloads <= 125 bytes. */
START_TEST(test_reject_control_too_long)
{
	uint8_t payload[126] = { 0 };
	struct bytes in = { 0 };
	struct log *exp = log_new();

	put_frame(&in, true, 0, WS_OP_PING, payload, 126, NULL);
	check_error(&cfg_client, in.p, in.n, 1002);
	/* 125 is fine */
	in.n = 0;
	put_frame(&in, true, 0, WS_OP_PONG, payload, 125, NULL);
	exp_control(exp, WS_OP_PONG, payload, 125, 0);
	check_all(&cfg_client, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

START_TEST(test_reject_fragmented_control)
{
	struct bytes in = { 0 };

	put_frame(&in, false, 0, WS_OP_PING, "x", 1, mask1);
	check_error(&cfg_server, in.p, in.n, 1002);
	free(in.p);
}
END_TEST

START_TEST(test_reject_orphan_continuation)
{
	struct bytes in = { 0 };
	struct log *exp = log_new();

	put_frame(&in, true, 0, WS_OP_CONT, "ab", 2, mask1);
	check_error(&cfg_server, in.p, in.n, 1002);
	/* also after a message has ended */
	in.n = 0;
	put_frame(&in, true, 0, WS_OP_TEXT, "ab", 2, mask1);
	put_frame(&in, true, 0, WS_OP_CONT, "cd", 2, mask1);
	exp_frame(exp, WS_OP_TEXT, false, true, true, "ab", 2);
	exp_error(exp, 1002);
	check_all(&cfg_server, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

START_TEST(test_reject_new_message_while_fragmented)
{
	struct bytes in = { 0 };
	struct log *exp = log_new();

	put_frame(&in, false, 0, WS_OP_TEXT, "ab", 2, mask1);
	put_frame(&in, true, 0, WS_OP_BINARY, "cd", 2, mask1);
	exp_frame(exp, WS_OP_TEXT, false, true, false, "ab", 2);
	exp_error(exp, 1002);
	check_all(&cfg_server, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

/* RFC 6455 5.2: the 64-bit length's most significant bit must be 0. */
START_TEST(test_reject_len64_top_bit)
{
	static const uint8_t in[] = { 0x82, 0x7f, 0x80, 0x00, 0x00, 0x00,
				      0x00, 0x01, 0x00, 0x00, 0xaa, 0xbb };

	check_error(&cfg_client, in, sizeof(in), 1002);
}
END_TEST

/* RFC 6455 5.2: "the minimal number of bytes MUST be used". */
START_TEST(test_reject_nonminimal_len16)
{
	static const uint8_t in[] = { 0x81, 0x7e, 0x00, 0x05, 'H', 'e', 'l',
				      'l', 'o' };

	check_error(&cfg_client, in, sizeof(in), 1002);
}
END_TEST

START_TEST(test_reject_nonminimal_len64)
{
	uint8_t in[10 + 300] = { 0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0x01, 0x2c };

	check_error(&cfg_client, in, sizeof(in), 1002);
	/* 65535 in 64 bits is non-minimal too */
	in[8] = 0xff;
	in[9] = 0xff;
	check_error(&cfg_client, in, 10, 1002);
}
END_TEST

START_TEST(test_minimal_length_boundaries_ok)
{
	static const uint64_t lens[] = { 125, 126, 65535, 65536 };
	uint8_t *payload = calloc(1, 65536);

	ck_assert_ptr_nonnull(payload);
	for (size_t i = 0; i < 4; i++) {
		struct bytes in = { 0 };
		struct log *exp = log_new();

		put_frame(&in, true, 0, WS_OP_BINARY, payload, lens[i], mask1);
		exp_frame(exp, WS_OP_BINARY, false, true, true, payload,
			  lens[i]);
		check_all(&cfg_server, in.p, in.n, exp);
		log_free(exp);
		free(in.p);
	}
	free(payload);
}
END_TEST

/* RFC 6455 5.4: control frames may be injected between fragments. */
START_TEST(test_ping_between_fragments)
{
	struct bytes in = { 0 };
	struct log *exp = log_new();

	put_frame(&in, false, 0, WS_OP_TEXT, "Hel", 3, mask1);
	put_frame(&in, true, 0, WS_OP_PING, "p", 1, mask1);
	put_frame(&in, false, 0, WS_OP_CONT, "l", 1, mask1);
	put_frame(&in, true, 0, WS_OP_PONG, "", 0, mask1);
	put_frame(&in, true, 0, WS_OP_CONT, "o", 1, mask1);
	exp_frame(exp, WS_OP_TEXT, false, true, false, "Hel", 3);
	exp_control(exp, WS_OP_PING, "p", 1, 0);
	exp_frame(exp, WS_OP_TEXT, false, false, false, "l", 1);
	exp_control(exp, WS_OP_PONG, "", 0, 0);
	exp_frame(exp, WS_OP_TEXT, false, false, true, "o", 1);
	check_all(&cfg_server, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

/* 1009 from the header alone: no byte of the frame is handed out. */
START_TEST(test_max_message_single_frame)
{
	struct ws_decoder_config cfg = cfg_server;
	struct bytes in = { 0 };
	struct log *exp = log_new();

	cfg.max_message = 10;
	put_frame(&in, true, 0, WS_OP_BINARY, "0123456789", 10, mask1);
	exp_frame(exp, WS_OP_BINARY, false, true, true, "0123456789", 10);
	put_frame(&in, true, 0, WS_OP_BINARY, "0123456789A", 11, mask1);
	exp_error(exp, 1009);
	check_all(&cfg, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

START_TEST(test_max_message_fragments)
{
	struct ws_decoder_config cfg = cfg_server;
	struct bytes in = { 0 };
	struct log *exp = log_new();

	cfg.max_message = 10;
	put_frame(&in, false, 0, WS_OP_TEXT, "01234", 5, mask1);
	put_frame(&in, true, 0, WS_OP_PING, "0123456789ab", 12, mask1);
	put_frame(&in, false, 0, WS_OP_CONT, "5678", 4, mask1);
	put_frame(&in, true, 0, WS_OP_CONT, "9A", 2, mask1);
	exp_frame(exp, WS_OP_TEXT, false, true, false, "01234", 5);
	exp_control(exp, WS_OP_PING, "0123456789ab", 12, 0);
	exp_frame(exp, WS_OP_TEXT, false, false, false, "5678", 4);
	exp_error(exp, 1009);
	check_all(&cfg, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

START_TEST(test_max_message_huge_length)
{
	struct ws_decoder_config cfg = cfg_client;
	static const uint8_t in[] = { 0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff,
				      0xff, 0xff, 0xff, 0xff, 0x00 };

	cfg.max_message = 1 << 20;
	check_error(&cfg, in, sizeof(in), 1009);
}
END_TEST

/* RFC 6455 8.1: fail fast; the bytes before the bad one go out first. */
START_TEST(test_utf8_invalid_byte)
{
	static const char text[] = "ab\xc3\xa9" "cd\xff" "ef";
	struct bytes in = { 0 };
	struct log *exp = log_new();

	put_frame(&in, true, 0, WS_OP_TEXT, text, sizeof(text) - 1, mask1);
	exp_partial(exp, WS_OP_TEXT, false, true, "ab\xc3\xa9" "cd", 6);
	exp_error(exp, 1007);
	check_all(&cfg_server, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

START_TEST(test_utf8_invalid_first_byte)
{
	struct bytes in = { 0 };

	put_frame(&in, true, 0, WS_OP_TEXT, "\x80" "abc", 4, mask1);
	check_error(&cfg_server, in.p, in.n, 1007);
	free(in.p);
}
END_TEST

/* A surrogate split across two fragments: the second fragment's first byte
 * is the one that is bad. */
START_TEST(test_utf8_invalid_across_fragments)
{
	struct bytes in = { 0 };
	struct log *exp = log_new();

	put_frame(&in, false, 0, WS_OP_TEXT, "a\xed", 2, mask1);
	put_frame(&in, true, 0, WS_OP_CONT, "\xa0\x80", 2, mask1);
	exp_frame(exp, WS_OP_TEXT, false, true, false, "a\xed", 2);
	exp_error(exp, 1007);
	check_all(&cfg_server, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

START_TEST(test_utf8_split_code_point_ok)
{
	static const char euro[] = "\xe2\x82\xac";
	struct bytes in = { 0 };
	struct log *exp = log_new();

	put_frame(&in, false, 0, WS_OP_TEXT, euro, 1, mask1);
	put_frame(&in, false, 0, WS_OP_CONT, euro + 1, 1, mask1);
	put_frame(&in, true, 0, WS_OP_PING, "", 0, mask1);
	put_frame(&in, true, 0, WS_OP_CONT, euro + 2, 1, mask1);
	exp_frame(exp, WS_OP_TEXT, false, true, false, euro, 1);
	exp_frame(exp, WS_OP_TEXT, false, false, false, euro + 1, 1);
	exp_control(exp, WS_OP_PING, "", 0, 0);
	exp_frame(exp, WS_OP_TEXT, false, false, true, euro + 2, 1);
	check_all(&cfg_server, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

/* A text message that ends inside a code point: the last byte is held. */
START_TEST(test_utf8_truncated_at_fin)
{
	struct bytes in = { 0 };
	struct log *exp = log_new();

	put_frame(&in, false, 0, WS_OP_TEXT, "ab", 2, mask1);
	put_frame(&in, true, 0, WS_OP_CONT, "c\xe2\x82", 3, mask1);
	exp_frame(exp, WS_OP_TEXT, false, true, false, "ab", 2);
	exp_partial(exp, WS_OP_TEXT, false, false, "c\xe2", 2);
	exp_error(exp, 1007);
	check_all(&cfg_server, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
	/* the whole message is one truncated byte */
	in = (struct bytes){ 0 };
	put_frame(&in, true, 0, WS_OP_TEXT, "\xc3", 1, mask1);
	check_error(&cfg_server, in.p, in.n, 1007);
	free(in.p);
}
END_TEST

START_TEST(test_utf8_truncated_at_empty_fin)
{
	struct bytes in = { 0 };
	struct log *exp = log_new();

	put_frame(&in, false, 0, WS_OP_TEXT, "a\xc3", 2, mask1);
	put_frame(&in, true, 0, WS_OP_CONT, "", 0, mask1);
	exp_frame(exp, WS_OP_TEXT, false, true, false, "a\xc3", 2);
	exp_error(exp, 1007);
	check_all(&cfg_server, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

START_TEST(test_utf8_not_checked_when_disabled)
{
	struct ws_decoder_config cfg = cfg_server;
	struct bytes in = { 0 };
	struct log *exp = log_new();

	cfg.validate_utf8 = false;
	put_frame(&in, true, 0, WS_OP_TEXT, "\xff\xc3", 2, mask1);
	exp_frame(exp, WS_OP_TEXT, false, true, true, "\xff\xc3", 2);
	check_all(&cfg, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

START_TEST(test_binary_not_utf8_checked)
{
	struct bytes in = { 0 };
	struct log *exp = log_new();

	put_frame(&in, true, 0, WS_OP_BINARY, "\xff\xc3", 2, mask1);
	exp_frame(exp, WS_OP_BINARY, false, true, true, "\xff\xc3", 2);
	check_all(&cfg_server, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

/* A binary message is never validated, whatever text follows it. */
START_TEST(test_binary_then_text)
{
	struct ws_decoder_config cfg = cfg_server;
	struct bytes in = { 0 };
	struct log *exp = log_new();

	/* binary message ending "inside" a sequence, then a text message */
	put_frame(&in, true, 0, WS_OP_BINARY, "\xe2", 1, mask1);
	put_frame(&in, true, 0, WS_OP_TEXT, "ok", 2, mask1);
	exp_frame(exp, WS_OP_BINARY, false, true, true, "\xe2", 1);
	exp_frame(exp, WS_OP_TEXT, false, true, true, "ok", 2);
	check_all(&cfg, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

/* ---- close frames ------------------------------------------------------- */

START_TEST(test_close_one_byte)
{
	struct bytes in = { 0 };

	put_frame(&in, true, 0, WS_OP_CLOSE, "\x03", 1, mask1);
	check_error(&cfg_server, in.p, in.n, 1002);
	free(in.p);
}
END_TEST

START_TEST(test_close_invalid_code)
{
	static const unsigned bad[] = { 0, 999, 1004, 1005, 1006, 1015,
					1016, 2999, 5000, 65535 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t p[2] = { (uint8_t)(bad[i] >> 8), (uint8_t)bad[i] };
		struct bytes in = { 0 };

		put_frame(&in, true, 0, WS_OP_CLOSE, p, 2, mask1);
		check_error(&cfg_server, in.p, in.n, 1002);
		free(in.p);
	}
}
END_TEST

START_TEST(test_close_bad_utf8_reason)
{
	struct bytes in = { 0 };
	struct ws_decoder_config cfg = cfg_server;
	struct log *exp = log_new();

	put_frame(&in, true, 0, WS_OP_CLOSE, "\x03\xe8" "a\xc0\xaf", 5, mask1);
	check_error(&cfg_server, in.p, in.n, 1007);
	/* not checked when validation is off */
	cfg.validate_utf8 = false;
	exp_control(exp, WS_OP_CLOSE, "\x03\xe8" "a\xc0\xaf", 5, 1000);
	check_all(&cfg, in.p, in.n, exp);
	log_free(exp);
	free(in.p);
}
END_TEST

START_TEST(test_close_fields)
{
	struct bytes in = { 0 };
	struct log *exp = log_new();
	struct ws_decoder d;
	struct ws_event ev;

	put_frame(&in, true, 0, WS_OP_CLOSE, "", 0, mask1);
	put_frame(&in, true, 0, WS_OP_CLOSE, "\x0f\xa0" "bye \xc3\xa9", 8,
		  mask1);
	exp_control(exp, WS_OP_CLOSE, "", 0, 1005);
	exp_control(exp, WS_OP_CLOSE, "\x0f\xa0" "bye \xc3\xa9", 8, 4000);
	check_all(&cfg_server, in.p, in.n, exp);
	/* and the fields directly */
	ws_decoder_init(&d, &cfg_server);
	ck_assert_int_eq(ws_decoder_feed(&d, in.p, in.n, &ev), 6);
	ck_assert_int_eq(ev.type, WS_EV_CONTROL);
	ck_assert_uint_eq(ev.close_code, 1005);
	ck_assert_uint_eq(ev.reason_len, 0);
	ck_assert_int_eq(ws_decoder_feed(&d, in.p + 6, in.n - 6, &ev), 14);
	ck_assert_int_eq(ev.type, WS_EV_CONTROL);
	ck_assert_uint_eq(ev.opcode, WS_OP_CLOSE);
	ck_assert_uint_eq(ev.close_code, 4000);
	ck_assert_uint_eq(ev.reason_len, 6);
	ck_assert_mem_eq(ev.reason, "bye \xc3\xa9", 6);
	ck_assert(ws_decoder_is_idle(&d));
	log_free(exp);
	free(in.p);
}
END_TEST

START_TEST(test_close_parse)
{
	uint16_t code = 0;
	const uint8_t *reason = NULL;
	size_t rl = 99;
	static const uint8_t ok[] = { 0x03, 0xe9, 'h', 'i' };

	ck_assert_int_eq(ws_close_parse(ok, 0, &code, &reason, &rl), 0);
	ck_assert_uint_eq(code, 1005);
	ck_assert_uint_eq(rl, 0);
	ck_assert_int_eq(ws_close_parse(ok, sizeof(ok), &code, &reason, &rl),
			 0);
	ck_assert_uint_eq(code, 1001);
	ck_assert_ptr_eq(reason, ok + 2);
	ck_assert_uint_eq(rl, 2);
	ck_assert_int_eq(ws_close_parse(ok, 1, &code, &reason, &rl), 1002);
	ck_assert_int_eq(ws_close_parse((const uint8_t *)"\x03\xed", 2, &code,
					&reason, &rl), 1002);
	ck_assert_int_eq(ws_close_parse((const uint8_t *)"\x03\xe8\xfe", 3,
					&code, &reason, &rl), 1007);
	/* a truncated code point in the reason is invalid too */
	ck_assert_int_eq(ws_close_parse((const uint8_t *)"\x03\xe8\xe2\x82", 4,
					&code, &reason, &rl), 1007);
}
END_TEST

/* ---- event semantics ---------------------------------------------------- */

START_TEST(test_error_is_sticky)
{
	struct ws_decoder d;
	struct ws_event ev;
	uint8_t bad[] = { 0x83, 0x00 };
	uint8_t good[] = { 0x81, 0x02, 'o', 'k' };

	ws_decoder_init(&d, &cfg_client);
	ck_assert_int_eq(ws_decoder_feed(&d, bad, 2, &ev), -1);
	ck_assert_int_eq(ev.type, WS_EV_ERROR);
	ck_assert_uint_eq(ev.error_code, 1002);
	ck_assert_int_eq(ws_decoder_feed(&d, good, sizeof(good), &ev), -1);
	ck_assert_int_eq(ev.type, WS_EV_ERROR);
	ck_assert_uint_eq(ev.error_code, 1002);
	ck_assert_int_eq(ws_decoder_feed(&d, good, 0, &ev), -1);
	ck_assert(!ws_decoder_is_idle(&d));
}
END_TEST

START_TEST(test_empty_data_frames)
{
	struct bytes in = { 0 };
	struct log *exp = log_new();
	struct ws_decoder d;
	struct ws_event ev;

	put_frame(&in, true, 0, WS_OP_TEXT, "", 0, mask1);
	put_frame(&in, false, 0, WS_OP_BINARY, "", 0, mask1);
	put_frame(&in, true, 0, WS_OP_CONT, "", 0, mask1);
	exp_frame(exp, WS_OP_TEXT, false, true, true, "", 0);
	exp_frame(exp, WS_OP_BINARY, false, true, false, "", 0);
	exp_frame(exp, WS_OP_BINARY, false, false, true, "", 0);
	check_all(&cfg_server, in.p, in.n, exp);
	log_free(exp);
	/* one event each, consuming the 6-byte frame, pointer in the buffer */
	ws_decoder_init(&d, &cfg_server);
	ck_assert_int_eq(ws_decoder_feed(&d, in.p, in.n, &ev), 6);
	ck_assert_int_eq(ev.type, WS_EV_DATA);
	ck_assert_uint_eq(ev.len, 0);
	ck_assert(ev.message_start && ev.message_end && ev.frame_start &&
		  ev.frame_end);
	ck_assert(ev.data >= in.p && ev.data <= in.p + 6);
	free(in.p);
}
END_TEST

/* Exact flags, event by event, for a message fed whole and in pieces. */
START_TEST(test_flags_exact)
{
	struct bytes in = { 0 };
	struct ws_decoder d;
	struct ws_event ev;
	ssize_t r;

	put_frame(&in, false, 0, WS_OP_BINARY, "abcd", 4, mask1); /* 10 */
	put_frame(&in, false, 0, WS_OP_CONT, "ef", 2, mask1);     /* 8 */
	put_frame(&in, true, 0, WS_OP_CONT, "gh", 2, mask1);      /* 8 */
	ws_decoder_init(&d, &cfg_server);
	/* first frame in two pieces: header + 2 bytes, then 2 bytes */
	r = ws_decoder_feed(&d, in.p, 8, &ev);
	ck_assert_int_eq(r, 8);
	ck_assert_int_eq(ev.type, WS_EV_DATA);
	ck_assert_mem_eq(ev.data, "ab", 2);
	ck_assert(ev.message_start && ev.frame_start && !ev.frame_end &&
		  !ev.message_end);
	ck_assert_uint_eq(ev.opcode, WS_OP_BINARY);
	ck_assert(!ws_decoder_is_idle(&d));
	r = ws_decoder_feed(&d, in.p + 8, in.n - 8, &ev);
	ck_assert_int_eq(r, 2);
	ck_assert_mem_eq(ev.data, "cd", 2);
	ck_assert(!ev.message_start && !ev.frame_start && ev.frame_end &&
		  !ev.message_end);
	r = ws_decoder_feed(&d, in.p + 10, in.n - 10, &ev);
	ck_assert_int_eq(r, 8);
	ck_assert_mem_eq(ev.data, "ef", 2);
	ck_assert(!ev.message_start && ev.frame_start && ev.frame_end &&
		  !ev.message_end);
	ck_assert_uint_eq(ev.opcode, WS_OP_BINARY);
	r = ws_decoder_feed(&d, in.p + 18, in.n - 18, &ev);
	ck_assert_int_eq(r, 8);
	ck_assert_mem_eq(ev.data, "gh", 2);
	ck_assert(!ev.message_start && ev.frame_start && ev.frame_end &&
		  ev.message_end);
	ck_assert_uint_eq(ev.opcode, WS_OP_BINARY);
	ck_assert(ws_decoder_is_idle(&d));
	r = ws_decoder_feed(&d, in.p + 26, 0, &ev);
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(ev.type, WS_EV_NONE);
	free(in.p);
}
END_TEST

/* A header split from its payload: NONE, then the payload as DATA. */
START_TEST(test_header_only_gives_none)
{
	struct ws_decoder d;
	struct ws_event ev;
	uint8_t in[11];

	memcpy(in, rfc_masked_hello, sizeof(in));
	ws_decoder_init(&d, &cfg_server);
	ck_assert_int_eq(ws_decoder_feed(&d, in, 6, &ev), 6);
	ck_assert_int_eq(ev.type, WS_EV_NONE);
	ck_assert(!ws_decoder_is_idle(&d));
	ck_assert_int_eq(ws_decoder_feed(&d, in + 6, 5, &ev), 5);
	ck_assert_int_eq(ev.type, WS_EV_DATA);
	ck_assert(ev.frame_start && ev.message_start && ev.message_end);
	ck_assert_ptr_eq(ev.data, in + 6);
	ck_assert_mem_eq(ev.data, "Hello", 5);
}
END_TEST

/* Bytes held back before a pending error are left as they arrived. */
START_TEST(test_unconsumed_bytes_untouched)
{
	struct bytes in = { 0 };
	struct ws_decoder d;
	struct ws_event ev;
	uint8_t orig[32];
	ssize_t r;

	put_frame(&in, true, 0, WS_OP_TEXT, "abc\xff" "defgh", 9, mask1);
	memcpy(orig, in.p, in.n);
	ws_decoder_init(&d, &cfg_server);
	r = ws_decoder_feed(&d, in.p, in.n, &ev);
	ck_assert_int_eq(r, 6 + 3);
	ck_assert_int_eq(ev.type, WS_EV_DATA);
	ck_assert(!ev.frame_end && !ev.message_end);
	ck_assert_mem_eq(ev.data, "abc", 3);
	ck_assert_mem_eq(in.p + r, orig + r, in.n - (size_t)r);
	ck_assert_int_eq(ws_decoder_feed(&d, in.p + r, in.n - (size_t)r, &ev),
			 -1);
	ck_assert_uint_eq(ev.error_code, 1007);
	free(in.p);
}
END_TEST

/* Unmasking in place carries the mask position across chunks. */
START_TEST(test_mask_position_carried)
{
	uint8_t in[sizeof(rfc_masked_hello)];
	struct ws_decoder d;
	struct ws_event ev;
	size_t pos = 6;
	static const size_t cuts[] = { 1, 3, 1 }; /* 5 payload bytes */

	memcpy(in, rfc_masked_hello, sizeof(in));
	ws_decoder_init(&d, &cfg_server);
	ck_assert_int_eq(ws_decoder_feed(&d, in, 6, &ev), 6);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(ws_decoder_feed(&d, in + pos, cuts[i], &ev),
				 (ssize_t)cuts[i]);
		ck_assert_int_eq(ev.type, WS_EV_DATA);
		pos += cuts[i];
	}
	ck_assert_mem_eq(in + 6, "Hello", 5);
}
END_TEST

START_TEST(test_is_idle)
{
	struct ws_decoder d;
	struct ws_event ev;
	uint8_t in[] = { 0x01, 0x01, 'a', 0x89, 0x00, 0x80, 0x01, 'b' };

	ws_decoder_init(&d, &cfg_client);
	ck_assert(ws_decoder_is_idle(&d));
	ck_assert_int_eq(ws_decoder_feed(&d, in, 1, &ev), 1);
	ck_assert(!ws_decoder_is_idle(&d)); /* half a header */
	ck_assert_int_eq(ws_decoder_feed(&d, in + 1, 2, &ev), 2);
	ck_assert(!ws_decoder_is_idle(&d)); /* message open */
	ck_assert_int_eq(ws_decoder_feed(&d, in + 3, 2, &ev), 2);
	ck_assert_int_eq(ev.type, WS_EV_CONTROL);
	ck_assert(!ws_decoder_is_idle(&d)); /* still open */
	ck_assert_int_eq(ws_decoder_feed(&d, in + 5, 3, &ev), 3);
	ck_assert(ev.message_end);
	ck_assert(ws_decoder_is_idle(&d));
}
END_TEST

/* ---- unmasking and encoding --------------------------------------------- */

START_TEST(test_unmask_matches_bytewise)
{
	uint64_t s = 0x9e3779b97f4a7c15u;
	uint8_t a[300], b[300];

	for (int t = 0; t < 2000; t++) {
		uint8_t m[4];
		size_t off = xs(&s) % 16, n = xs(&s) % (sizeof(a) - 16);
		unsigned pos = (unsigned)(xs(&s) % 8), p2, want;

		for (int i = 0; i < 4; i++)
			m[i] = (uint8_t)xs(&s);
		for (size_t i = 0; i < sizeof(a); i++)
			a[i] = b[i] = (uint8_t)xs(&s);
		p2 = ws_unmask(a + off, n, m, pos);
		for (size_t i = 0; i < n; i++)
			b[off + i] ^= m[(pos + i) & 3];
		want = (unsigned)((pos + n) & 3);
		ck_assert_uint_eq(p2, want);
		ck_assert_mem_eq(a, b, sizeof(a));
	}
}
END_TEST

START_TEST(test_mask_copy_matches_bytewise)
{
	uint64_t s = 0x243f6a8885a308d3u;
	uint8_t src[300], keep[300], dst[316], want[316];

	for (int t = 0; t < 2000; t++) {
		uint8_t m[4];
		size_t so = xs(&s) % 16, dso = xs(&s) % 16;
		size_t n = xs(&s) % (sizeof(src) - 16);
		unsigned pos = (unsigned)(xs(&s) % 8), p2;

		for (int i = 0; i < 4; i++)
			m[i] = (uint8_t)xs(&s);
		for (size_t i = 0; i < sizeof(src); i++)
			src[i] = keep[i] = (uint8_t)xs(&s);
		for (size_t i = 0; i < sizeof(dst); i++)
			dst[i] = want[i] = (uint8_t)xs(&s);
		p2 = ws_mask_copy(dst + dso, src + so, n, m, pos);
		for (size_t i = 0; i < n; i++)
			want[dso + i] = src[so + i] ^ m[(pos + i) & 3];
		ck_assert_uint_eq(p2, (unsigned)((pos + n) & 3));
		/* exactly N bytes written, the source untouched */
		ck_assert_mem_eq(dst, want, sizeof(dst));
		ck_assert_mem_eq(src, keep, sizeof(src));
	}
}
END_TEST

START_TEST(test_unmask_twice_restores)
{
	uint8_t a[1000], b[1000];
	static const uint8_t m[4] = { 0xde, 0xad, 0xbe, 0xef };
	unsigned p;

	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)(i * 31);
	p = ws_unmask(a + 3, 997, m, 2);
	ck_assert_uint_eq(p, (2 + 997) & 3);
	ck_assert(memcmp(a, b, sizeof(a)) != 0);
	ws_unmask(a + 3, 500, m, 2);
	ws_unmask(a + 503, 497, m, (2 + 500) & 3);
	ck_assert_mem_eq(a, b, sizeof(a));
}
END_TEST

START_TEST(test_frame_header_lengths)
{
	static const struct {
		uint64_t len;
		size_t hlen;
		uint8_t b1;
	} v[] = {
		{ 0, 2, 0 },        { 125, 2, 125 },     { 126, 4, 126 },
		{ 65535, 4, 126 },  { 65536, 10, 127 },
		{ UINT64_C(0x7fffffffffffffff), 10, 127 },
	};
	uint8_t h[WS_MAX_HEADER];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint64_t got = 0;

		ck_assert_uint_eq(ws_frame_header(h, true, WS_OP_BINARY,
						  v[i].len, NULL), v[i].hlen);
		ck_assert_uint_eq(h[0], 0x82);
		ck_assert_uint_eq(h[1], v[i].b1);
		if (v[i].hlen == 2)
			got = h[1];
		for (size_t k = 2; k < v[i].hlen; k++)
			got = got << 8 | h[k];
		ck_assert_uint_eq(got, v[i].len);
		/* masked: mask bit and key after the length */
		ck_assert_uint_eq(ws_frame_header(h, false, WS_OP_CONT,
						  v[i].len, mask1),
				  v[i].hlen + 4);
		ck_assert_uint_eq(h[0], 0x00);
		ck_assert_uint_eq(h[1], 0x80 | v[i].b1);
		ck_assert_mem_eq(h + v[i].hlen, mask1, 4);
	}
	/* RFC 6455 5.7 masked "Hello" header */
	{
		static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
		uint8_t frame[WS_MAX_HEADER + 5];
		size_t n = ws_frame_header(frame, true, WS_OP_TEXT, 5, key);

		memcpy(frame + n, "Hello", 5);
		ws_unmask(frame + n, 5, key, 0);
		ck_assert_uint_eq(n + 5, sizeof(rfc_masked_hello));
		ck_assert_mem_eq(frame, rfc_masked_hello, n + 5);
	}
}
END_TEST

/* Encoder -> decoder for every length class, masked and not. */
START_TEST(test_roundtrip)
{
	static const size_t lens[] = { 0, 1, 125, 126, 127, 65535, 65536,
				       70001 };
	uint8_t *payload = malloc(70001);
	uint64_t s = 42;

	ck_assert_ptr_nonnull(payload);
	for (size_t i = 0; i < 70001; i++)
		payload[i] = (uint8_t)xs(&s);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (int masked = 0; masked < 2; masked++) {
			struct bytes in = { 0 };
			struct log *lg = log_new();
			char msg[256];
			struct log *exp = log_new();

			put_frame(&in, true, 0, WS_OP_BINARY, payload, lens[i],
				  masked ? mask1 : NULL);
			exp_frame(exp, WS_OP_BINARY, false, true, true,
				  payload, lens[i]);
			run(&cfg_client, in.p, in.n, FEED_RANDOM, i, lg);
			ck_assert_msg(log_equal(exp, lg, msg, sizeof(msg)),
				      "%s", msg);
			ck_assert(lg->idle);
			log_free(lg);
			log_free(exp);
			free(in.p);
		}
	}
	free(payload);
}
END_TEST

START_TEST(test_close_code_is_valid)
{
	for (unsigned c = 0; c < 70000; c++) {
		bool want = (c >= 1000 && c <= 1003) ||
			    (c >= 1007 && c <= 1014) ||
			    (c >= 3000 && c <= 4999);
		if (ws_close_code_is_valid(c) != want)
			ck_abort_msg("code %u", c);
	}
}
END_TEST

START_TEST(test_close_payload_refuses)
{
	static const unsigned bad[] = { 0,    999,  1004, 1005, 1006,
					1015, 1016, 2999, 5000, 65535 };
	uint8_t out[WS_MAX_CONTROL_PAYLOAD];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(ws_close_payload(out, bad[i], "x", 1), -1);
	ck_assert_int_eq(ws_close_payload(out, 1000, NULL, 0), 2);
	ck_assert_uint_eq(out[0], 0x03);
	ck_assert_uint_eq(out[1], 0xe8);
	ck_assert_int_eq(ws_close_payload(out, 4999, "bye", 3), 5);
	ck_assert_mem_eq(out, "\x13\x87" "bye", 5);
}
END_TEST

/* Reasons of 2- and 3-byte characters crossing the 123-byte limit. */
START_TEST(test_close_payload_truncates_at_utf8_boundary)
{
	char reason[200];
	uint8_t out[WS_MAX_CONTROL_PAYLOAD];
	ssize_t n;

	/* 'a' + 2-byte chars: 1 + 2k; 123 falls on a boundary */
	reason[0] = 'a';
	for (size_t i = 1; i + 1 < sizeof(reason); i += 2)
		memcpy(reason + i, "\xc3\xa9", 2);
	n = ws_close_payload(out, 1000, reason, 199);
	ck_assert_int_eq(n, 125);
	ck_assert_mem_eq(out + 2, reason, 123);
	/* no leading 'a': 2k, so byte 123 is a continuation byte */
	n = ws_close_payload(out, 1000, reason + 1, 198);
	ck_assert_int_eq(n, 2 + 122);
	ck_assert(utf8_valid(out + 2, 122));
	/* 3-byte chars (euro sign): 41 fit exactly, shifted by one and two */
	for (size_t shift = 0; shift < 3; shift++) {
		memset(reason, 'x', shift);
		for (size_t i = shift; i + 3 <= sizeof(reason); i += 3)
			memcpy(reason + i, "\xe2\x82\xac", 3);
		n = ws_close_payload(out, 1001, reason, 150);
		ck_assert_int_eq(n, 2 + (ssize_t)(shift +
						  (123 - shift) / 3 * 3));
		ck_assert(utf8_valid(out + 2, (size_t)n - 2));
	}
	/* a reason that fits is kept whole, even 123 bytes */
	memset(reason, 'r', 123);
	ck_assert_int_eq(ws_close_payload(out, 1000, reason, 123), 125);
	ck_assert_mem_eq(out + 2, reason, 123);
	/* and the decoder accepts what was built */
	{
		uint16_t code;
		const uint8_t *r;
		size_t rl;

		n = ws_close_payload(out, 3000, "\xe2\x82\xac", 3);
		ck_assert_int_eq(ws_close_parse(out, (size_t)n, &code, &r, &rl),
				 0);
		ck_assert_uint_eq(code, 3000);
		ck_assert_uint_eq(rl, 3);
	}
}
END_TEST

/* ---- split invariance over random valid streams ------------------------- */

/* Append LEN bytes of valid UTF-8 (mixed 1- to 4-byte code points). */
static void
gen_utf8(uint64_t *s, uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t room = len - i, k = 1 + xs(s) % 4;
		uint32_t cp;

		if (k > room)
			k = room;
		switch (k) {
		case 1:
			p[i++] = (uint8_t)(0x20 + xs(s) % 0x5f);
			break;
		case 2:
			cp = 0x80 + (uint32_t)(xs(s) % (0x800 - 0x80));
			p[i++] = (uint8_t)(0xc0 | cp >> 6);
			p[i++] = (uint8_t)(0x80 | (cp & 0x3f));
			break;
		case 3:
			do
				cp = 0x800 + (uint32_t)(xs(s) % (0x10000 - 0x800));
			while (cp >= 0xd800 && cp <= 0xdfff);
			p[i++] = (uint8_t)(0xe0 | cp >> 12);
			p[i++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
			p[i++] = (uint8_t)(0x80 | (cp & 0x3f));
			break;
		default:
			cp = 0x10000 + (uint32_t)(xs(s) % (0x110000 - 0x10000));
			p[i++] = (uint8_t)(0xf0 | cp >> 18);
			p[i++] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
			p[i++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
			p[i++] = (uint8_t)(0x80 | (cp & 0x3f));
			break;
		}
	}
}

/* A random control frame, appended to IN and expected in EXP. */
static void
gen_control(uint64_t *s, struct bytes *in, struct log *exp, bool must_mask)
{
	uint8_t p[125], m[4];
	size_t n = xs(s) % 3 == 0 ? 125 : xs(s) % 20;
	uint8_t op = xs(s) % 2 ? WS_OP_PING : WS_OP_PONG;
	bool masked = must_mask || xs(s) % 2;

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)xs(s);
	for (int i = 0; i < 4; i++)
		m[i] = (uint8_t)xs(s);
	put_frame(in, true, 0, op, p, n, masked ? m : NULL);
	exp_control(exp, op, p, n, 0);
}

START_TEST(test_split_invariance_random_streams)
{
	static const size_t lens[] = { 0, 1, 2, 3, 7, 125, 126, 127,
				       65535, 65536 };
	uint8_t *payload = malloc(65536 * 4);
	uint64_t s = 0x1234567u + (uint64_t)_i * 7919;
	struct ws_decoder_config cfg = cfg_client;
	struct bytes in = { 0 };
	struct log *exp = log_new();
	size_t nmsg = 2 + xs(&s) % 8;

	ck_assert_ptr_nonnull(payload);
	cfg.require_mask = _i % 2;
	cfg.allow_rsv1 = _i % 3 == 0;
	for (size_t m = 0; m < nmsg; m++) {
		uint8_t op = xs(&s) % 2 ? WS_OP_TEXT : WS_OP_BINARY;
		bool rsv1 = cfg.allow_rsv1 && xs(&s) % 2;
		size_t nfrag = 1 + xs(&s) % 4, flen[4], total = 0, at = 0;

		for (size_t f = 0; f < nfrag; f++) {
			/* big lengths are rare to keep the suite fast */
			size_t k = xs(&s) % 16;
			flen[f] = k < 10 ? lens[k] % 300 : lens[xs(&s) % 10];
			if (k < 10 && xs(&s) % 2)
				flen[f] = lens[k];
			total += flen[f];
		}
		if (op == WS_OP_TEXT)
			gen_utf8(&s, payload, total);
		else
			for (size_t i = 0; i < total; i++)
				payload[i] = (uint8_t)xs(&s);
		for (size_t f = 0; f < nfrag; f++) {
			uint8_t mk[4];
			bool masked = cfg.require_mask || xs(&s) % 2;
			bool fin = f + 1 == nfrag;

			for (int i = 0; i < 4; i++)
				mk[i] = (uint8_t)xs(&s);
			put_frame(&in, fin, f == 0 && rsv1 ? 4 : 0,
				  f == 0 ? op : WS_OP_CONT, payload + at,
				  flen[f], masked ? mk : NULL);
			exp_frame(exp, op, rsv1, f == 0, fin, payload + at,
				  flen[f]);
			at += flen[f];
			/* pings and pongs between fragments and messages */
			while (xs(&s) % 3 == 0)
				gen_control(&s, &in, exp, cfg.require_mask);
		}
	}
	if (xs(&s) % 2) {
		uint8_t cp[WS_MAX_CONTROL_PAYLOAD];
		ssize_t n = ws_close_payload(cp, 1000 + xs(&s) % 4, "done", 4);

		ck_assert_int_gt(n, 0);
		put_frame(&in, true, 0, WS_OP_CLOSE, cp, (size_t)n, mask1);
		exp_control(exp, WS_OP_CLOSE, cp, (size_t)n,
			    (uint16_t)(cp[0] << 8 | cp[1]));
	}
	check_all(&cfg, in.p, in.n, exp);
	/* and the decoder ends idle */
	{
		struct log *lg = log_new();

		run(&cfg, in.p, in.n, FEED_RANDOM, 99, lg);
		ck_assert(lg->idle);
		log_free(lg);
	}
	log_free(exp);
	free(in.p);
	free(payload);
}
END_TEST

/* A stream cut anywhere decodes to a prefix of the whole stream's events. */
START_TEST(test_truncated_stream_is_prefix)
{
	struct bytes in = { 0 };
	struct log *full = log_new();

	put_frame(&in, false, 0, WS_OP_TEXT, "h\xc3\xa9llo", 6, mask1);
	put_frame(&in, true, 0, WS_OP_PING, "x", 1, mask1);
	put_frame(&in, true, 0, WS_OP_CONT, " world", 6, mask1);
	run(&cfg_server, in.p, in.n, FEED_WHOLE, 0, full);
	ck_assert_uint_eq(full->n, 3);
	for (size_t cut = 1; cut < in.n; cut++) {
		struct log *lg = log_new();

		run(&cfg_server, in.p, cut, FEED_BYTES, 0, lg);
		ck_assert_uint_le(lg->n, full->n);
		for (size_t i = 0; i < lg->n; i++) {
			const struct item *x = &lg->it[i], *y = &full->it[i];

			ck_assert_int_eq(x->kind, y->kind);
			ck_assert_uint_le(x->data.n, y->data.n);
			if (x->data.n)
				ck_assert_mem_eq(x->data.p, y->data.p,
						 x->data.n);
		}
		ck_assert(!lg->idle);
		log_free(lg);
	}
	log_free(full);
	free(in.p);
}
END_TEST

/* Cut N bytes at MAX (FIN: they end the message) and check every frame. */
static void
check_cut(uint8_t op, uint64_t n, uint64_t max, bool fin)
{
	struct ws_cut c;
	uint8_t hdr[WS_MAX_HEADER], want[WS_MAX_HEADER];
	uint64_t len, total = 0, frames = 0;
	size_t hlen;
	uint64_t cap = max > 0 ? max : 1;

	ws_cut_init(&c, op, n, max, fin);
	while ((hlen = ws_cut_next(&c, hdr, &len)) > 0) {
		bool last = total + len == n;

		ck_assert(ws_cut_more(&c) == !last);
		ck_assert_uint_le(len, cap);
		if (!last)
			ck_assert_uint_eq(len, cap); /* only the last is short */
		ck_assert_uint_eq(hlen,
				  ws_frame_header(want, last && fin,
						  frames == 0 ? op : WS_OP_CONT,
						  len, NULL));
		ck_assert_int_eq(memcmp(hdr, want, hlen), 0);
		total += len;
		frames++;
		ck_assert_uint_le(frames, n / cap + 1);
	}
	ck_assert(!ws_cut_more(&c));
	ck_assert_uint_eq(total, n);
	ck_assert_uint_eq(frames, n == 0 ? 1 : (n + cap - 1) / cap);
	ck_assert_uint_eq(ws_cut_next(&c, hdr, &len), 0); /* stays done */
}

START_TEST(test_cut_messages)
{
	static const uint64_t ns[] = {0, 1, 125, 126, 1023, 1024, 1025, 65535,
				      65536, 65537, 262144, 262145};
	static const uint64_t maxes[] = {0, 1, 1024, 65536, 16777216};

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		for (size_t j = 0; j < sizeof(maxes) / sizeof(maxes[0]); j++) {
			if (maxes[j] <= 1 && ns[i] > 2000)
				continue; /* a frame per byte: slow, same rule */
			check_cut(WS_OP_BINARY, ns[i], maxes[j], true);
			check_cut(WS_OP_TEXT, ns[i], maxes[j], true);
			check_cut(WS_OP_CONT, ns[i], maxes[j], false);
		}
}
END_TEST

static Suite *
ws_frame_suite(void)
{
	Suite *s = suite_create("ws_frame");
	TCase *tc;

	tc = tcase_create("rfc6455_examples");
	tcase_add_test(tc, test_rfc_unmasked_hello_client);
	tcase_add_test(tc, test_rfc_unmasked_hello_rejected_by_server);
	tcase_add_test(tc, test_rfc_masked_hello);
	tcase_add_test(tc, test_rfc_fragmented_hello);
	tcase_add_test(tc, test_rfc_ping_pong);
	tcase_add_test(tc, test_rfc_256_binary);
	tcase_add_test(tc, test_rfc_64k_binary);
	suite_add_tcase(s, tc);

	tc = tcase_create("rules");
	tcase_add_test(tc, test_reject_rsv2_rsv3);
	tcase_add_test(tc, test_reject_rsv1_without_extension);
	tcase_add_test(tc, test_rsv1_allowed_on_first_frame);
	tcase_add_test(tc, test_reject_rsv1_on_continuation);
	tcase_add_test(tc, test_reject_rsv1_on_control);
	tcase_add_loop_test(tc, test_reject_reserved_opcode, 0,
			    (int)sizeof(reserved_ops));
	tcase_add_test(tc, test_reject_control_too_long);
	tcase_add_test(tc, test_reject_fragmented_control);
	tcase_add_test(tc, test_reject_orphan_continuation);
	tcase_add_test(tc, test_reject_new_message_while_fragmented);
	tcase_add_test(tc, test_reject_len64_top_bit);
	tcase_add_test(tc, test_reject_nonminimal_len16);
	tcase_add_test(tc, test_reject_nonminimal_len64);
	tcase_add_test(tc, test_minimal_length_boundaries_ok);
	tcase_add_test(tc, test_ping_between_fragments);
	tcase_add_test(tc, test_max_message_single_frame);
	tcase_add_test(tc, test_max_message_fragments);
	tcase_add_test(tc, test_max_message_huge_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("utf8");
	tcase_add_test(tc, test_utf8_invalid_byte);
	tcase_add_test(tc, test_utf8_invalid_first_byte);
	tcase_add_test(tc, test_utf8_invalid_across_fragments);
	tcase_add_test(tc, test_utf8_split_code_point_ok);
	tcase_add_test(tc, test_utf8_truncated_at_fin);
	tcase_add_test(tc, test_utf8_truncated_at_empty_fin);
	tcase_add_test(tc, test_utf8_not_checked_when_disabled);
	tcase_add_test(tc, test_binary_not_utf8_checked);
	tcase_add_test(tc, test_binary_then_text);
	suite_add_tcase(s, tc);

	tc = tcase_create("close");
	tcase_add_test(tc, test_close_one_byte);
	tcase_add_test(tc, test_close_invalid_code);
	tcase_add_test(tc, test_close_bad_utf8_reason);
	tcase_add_test(tc, test_close_fields);
	tcase_add_test(tc, test_close_parse);
	tcase_add_test(tc, test_close_code_is_valid);
	tcase_add_test(tc, test_close_payload_refuses);
	tcase_add_test(tc, test_close_payload_truncates_at_utf8_boundary);
	suite_add_tcase(s, tc);

	tc = tcase_create("events");
	tcase_add_test(tc, test_error_is_sticky);
	tcase_add_test(tc, test_empty_data_frames);
	tcase_add_test(tc, test_flags_exact);
	tcase_add_test(tc, test_header_only_gives_none);
	tcase_add_test(tc, test_mask_position_carried);
	tcase_add_test(tc, test_unconsumed_bytes_untouched);
	tcase_add_test(tc, test_is_idle);
	tcase_add_test(tc, test_truncated_stream_is_prefix);
	suite_add_tcase(s, tc);

	tc = tcase_create("codec");
	tcase_add_test(tc, test_unmask_matches_bytewise);
	tcase_add_test(tc, test_unmask_twice_restores);
	tcase_add_test(tc, test_mask_copy_matches_bytewise);
	tcase_add_test(tc, test_frame_header_lengths);
	tcase_add_test(tc, test_cut_messages);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_loop_test(tc, test_split_invariance_random_streams, 0, 12);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ws_frame_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
