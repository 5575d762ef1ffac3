/*
 * fuzz_ws_frame.c - libFuzzer target for the RFC 6455 frame decoder.
 *
 * Input: byte 0 picks the decoder configuration, bytes 1-2 seed the split
 * points, the rest is the byte stream.  The stream is decoded whole and
 * again in random-size chunks, each chunk in its own exact-size heap block
 * (so ASan sees any read past what was handed in).  Both event streams are
 * folded into a log of frames that must be identical, and the log is
 * checked against an independent walk of the frame headers in the input:
 * every frame handed out has the announced length and the payload unmasked
 * byte by byte.  Any mismatch or broken invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_frame.h"

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

enum { REC_COMPLETE = 1, REC_MSTART = 2, REC_MEND = 4, REC_RSV1 = 8 };

/* One data frame, control frame or error, as the events describe it. */
struct rec {
	char kind; /* 'F' data, 'C' control, 'X' error */
	uint8_t opcode, flags;
	uint16_t code;
	size_t reason_len;
	size_t off, len; /* payload in the log's data stream */
};

struct flog {
	struct rec *r;
	size_t n, cap;
	uint8_t *data;
	size_t nd, capd;
};

/* Grow-or-die realloc. */
static void *
grow(void *p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return p;
	while (*cap < need)
		*cap = *cap ? *cap * 2 : 16;
	p = realloc(p, *cap * elem);
	CHECK(p != NULL);
	return p;
}

/* Append an empty record of KIND. */
static struct rec *
flog_push(struct flog *lg, char kind)
{
	struct rec *r;

	lg->r = grow(lg->r, &lg->cap, lg->n + 1, sizeof(*lg->r));
	r = &lg->r[lg->n++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->off = lg->nd;
	return r;
}

/* Append N payload bytes to the data stream. */
static void
flog_data(struct flog *lg, const uint8_t *p, size_t n)
{
	lg->data = grow(lg->data, &lg->capd, lg->nd + n, 1);
	if (n)
		memcpy(lg->data + lg->nd, p, n);
	lg->nd += n;
}

/* xorshift32 for the split points. */
static uint32_t
xs32(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

/* Decode IN; CHUNKED: random pieces, each in its own heap block. */
static void
decode(const struct ws_decoder_config *cfg, const uint8_t *in, size_t len,
       bool chunked, uint32_t seed, struct flog *lg)
{
	struct ws_decoder d;
	struct rec *cur = NULL; /* the data frame being handed out */
	bool in_msg = false;
	size_t pos = 0;

	ws_decoder_init(&d, cfg);
	while (pos < len) {
		size_t n = len - pos, at = 0;
		uint8_t *buf;

		if (chunked) {
			uint32_t r = xs32(&seed);
			size_t c = (r & 7) == 0 ? 1 + (r >> 8) % 512
						: 1 + (r >> 8) % 9;
			if (c < n)
				n = c;
		}
		buf = malloc(n);
		CHECK(buf != NULL);
		memcpy(buf, in + pos, n);
		for (;;) {
			struct ws_event ev;
			ssize_t r = ws_decoder_feed(&d, buf + at, n - at, &ev);

			if (r < 0) {
				uint16_t code = ev.error_code;

				CHECK(r == -1 && ev.type == WS_EV_ERROR);
				CHECK(ev.error != NULL);
				CHECK(code == 1002 || code == 1007 ||
				      code == 1009);
				cur = NULL;
				flog_push(lg, 'X')->code = code;
				/* sticky, whatever is fed next */
				CHECK(ws_decoder_feed(&d, buf, n, &ev) == -1);
				CHECK(ev.type == WS_EV_ERROR &&
				      ev.error_code == code);
				CHECK(ws_decoder_feed(&d, NULL, 0, &ev) == -1);
				CHECK(!ws_decoder_is_idle(&d));
				free(buf);
				return;
			}
			CHECK((size_t)r <= n - at);
			if (ev.type == WS_EV_DATA) {
				CHECK(ev.data >= buf + at);
				CHECK(ev.data + ev.len <= buf + at + r);
				CHECK(ev.len > 0 ||
				      (ev.frame_start && ev.frame_end));
				CHECK(!ev.message_end || ev.frame_end);
				CHECK(ev.opcode == WS_OP_TEXT ||
				      ev.opcode == WS_OP_BINARY);
				CHECK(ev.message_start == !in_msg);
				CHECK(ev.rsv1 == false || cfg->allow_rsv1);
				if (ev.frame_start) {
					CHECK(cur == NULL);
					cur = flog_push(lg, 'F');
					cur->opcode = ev.opcode;
					cur->flags = (uint8_t)(
						(ev.message_start ? REC_MSTART
								  : 0) |
						(ev.rsv1 ? REC_RSV1 : 0));
				} else {
					CHECK(cur != NULL);
					CHECK(cur->opcode == ev.opcode);
					CHECK(!!(cur->flags & REC_RSV1) ==
					      ev.rsv1);
				}
				in_msg = true;
				flog_data(lg, ev.data, ev.len);
				cur->len += ev.len;
				if (ev.frame_end) {
					cur->flags |= REC_COMPLETE;
					if (ev.message_end) {
						cur->flags |= REC_MEND;
						in_msg = false;
					}
					cur = NULL;
				}
			} else if (ev.type == WS_EV_CONTROL) {
				struct rec *c;

				CHECK(cur == NULL);
				CHECK(ev.opcode == WS_OP_CLOSE ||
				      ev.opcode == WS_OP_PING ||
				      ev.opcode == WS_OP_PONG);
				CHECK(ev.len <= WS_MAX_CONTROL_PAYLOAD);
				c = flog_push(lg, 'C');
				c->opcode = ev.opcode;
				c->flags = REC_COMPLETE;
				c->code = ev.close_code;
				c->reason_len = ev.reason_len;
				c->len = ev.len;
				flog_data(lg, ev.data, ev.len);
				if (ev.opcode == WS_OP_CLOSE) {
					CHECK(ev.len != 1);
					CHECK(ev.len ? ws_close_code_is_valid(
							       ev.close_code)
						     : ev.close_code == 1005);
					CHECK(ev.reason_len ==
					      (ev.len ? ev.len - 2 : 0));
					CHECK(!cfg->validate_utf8 ||
					      utf8_valid(ev.reason,
							 ev.reason_len));
				}
			} else {
				CHECK(ev.type == WS_EV_NONE);
				CHECK((size_t)r == n - at);
			}
			at += (size_t)r;
			if (ev.type == WS_EV_NONE)
				break;
		}
		free(buf);
		pos += n;
	}
	/* idle exactly when nothing is left half done */
	if (ws_decoder_is_idle(&d))
		CHECK(cur == NULL && !in_msg);
}

/* Compare two logs record by record and byte by byte. */
static void
flog_compare(const struct flog *a, const struct flog *b)
{
	CHECK(a->n == b->n);
	CHECK(a->nd == b->nd);
	for (size_t i = 0; i < a->n; i++) {
		const struct rec *x = &a->r[i], *y = &b->r[i];

		CHECK(x->kind == y->kind && x->opcode == y->opcode &&
		      x->flags == y->flags && x->code == y->code &&
		      x->reason_len == y->reason_len && x->off == y->off &&
		      x->len == y->len);
	}
	CHECK(a->nd == 0 || memcmp(a->data, b->data, a->nd) == 0);
}

/* Check LG against an independent walk of the frame headers in IN. */
static void
flog_check_input(const struct flog *lg, const uint8_t *in, size_t len,
		 const struct ws_decoder_config *cfg)
{
	size_t pos = 0;
	uint64_t msg_len = 0;

	for (size_t i = 0; i < lg->n; i++) {
		const struct rec *r = &lg->r[i];
		uint8_t op, len7, mask[4] = { 0 };
		bool fin, masked;
		uint64_t plen;
		size_t h = 2, avail;

		if (r->kind == 'X')
			return;
		CHECK(pos + 2 <= len);
		fin = in[pos] & 0x80;
		op = in[pos] & 0x0f;
		masked = in[pos + 1] & 0x80;
		len7 = in[pos + 1] & 0x7f;
		CHECK((in[pos] & 0x30) == 0);
		CHECK(!cfg->require_mask || masked);
		plen = len7;
		if (len7 == 126) {
			CHECK(pos + 4 <= len);
			plen = (uint64_t)in[pos + 2] << 8 | in[pos + 3];
			CHECK(plen >= 126);
			h = 4;
		} else if (len7 == 127) {
			CHECK(pos + 10 <= len);
			plen = 0;
			for (int k = 0; k < 8; k++)
				plen = plen << 8 | in[pos + 2 + k];
			CHECK(plen >= 65536 && plen >> 63 == 0);
			h = 10;
		}
		if (masked) {
			CHECK(pos + h + 4 <= len);
			memcpy(mask, in + pos + h, 4);
			h += 4;
		}
		pos += h;
		avail = len - pos;
		if (r->kind == 'C') {
			CHECK(op == r->opcode && fin && plen <= 125);
		} else {
			CHECK(op == ((r->flags & REC_MSTART) ? r->opcode
							     : WS_OP_CONT));
			if (r->flags & REC_MSTART)
				msg_len = 0;
			msg_len += plen;
			CHECK(!cfg->max_message || msg_len <= cfg->max_message);
			if (r->flags & REC_COMPLETE)
				CHECK(!!(r->flags & REC_MEND) == fin);
		}
		if (r->flags & REC_COMPLETE)
			CHECK(r->len == plen);
		else
			CHECK(r->len < plen && r->len <= avail);
		/* the payload, unmasked one byte at a time */
		for (size_t k = 0; k < r->len; k++)
			CHECK(lg->data[r->off + k] ==
			      (uint8_t)(in[pos + k] ^ mask[k & 3]));
		if (!(r->flags & REC_COMPLETE))
			return;
		pos += r->len;
	}
}

/* Free LG's storage. */
static void
flog_free(struct flog *lg)
{
	free(lg->r);
	free(lg->data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t max_messages[8] = { 0, 0, 1, 125, 126, 300,
						  65535, 65536 };
	struct ws_decoder_config cfg;
	struct flog whole = { 0 }, pieces = { 0 };
	uint32_t seed;

	if (size < 3)
		return 0;
	memset(&cfg, 0, sizeof(cfg));
	cfg.require_mask = data[0] & 1;
	cfg.allow_rsv1 = data[0] & 2;
	cfg.validate_utf8 = !(data[0] & 4);
	cfg.max_message = max_messages[(data[0] >> 3) & 7];
	seed = (uint32_t)data[1] << 8 | data[2];
	seed = seed * 2654435761u | 1;
	data += 3;
	size -= 3;

	decode(&cfg, data, size, false, 0, &whole);
	flog_check_input(&whole, data, size, &cfg);
	decode(&cfg, data, size, true, seed, &pieces);
	flog_compare(&whole, &pieces);
	flog_free(&whole);
	flog_free(&pieces);
	return 0;
}
