/*
 * ws_frame.c - RFC 6455 frame codec: resumable decoder, unmasking, header
 * encoder and close payloads (PURE: no I/O, no globals).
 *
 * The decoder is a state machine that may be suspended at any byte (RFC 6455
 * 5.2): HEADER gathers the 2..14 header bytes in d->hdr; a data frame's
 * payload is then unmasked in place in the caller's buffer and handed out
 * chunk by chunk (DATA), while a control frame's payload (at most 125 bytes,
 * 5.5) is copied into d->ctl and handed out whole (CONTROL).
 *
 * The event stream does not depend on how the input is split: an error
 * found inside a payload (invalid UTF-8) is reported without ever handing
 * out the byte that revealed it.  The bytes before that byte go out as a
 * DATA event and the ERROR follows on the next call (ERROR_PENDING).
 */
#include "ws_frame.h"

#include <string.h>

/* Decoder states, private to this file. */
#define WS_DECODER_STATES(X)                                                   \
	X(WS_ST_HEADER)        /* gathering a frame header */                  \
	X(WS_ST_DATA)          /* streaming a text/binary frame's payload */   \
	X(WS_ST_CONTROL)       /* gathering a control frame's payload */       \
	X(WS_ST_ERROR_PENDING) /* bytes before an error were handed out */     \
	X(WS_ST_FAILED)        /* sticky: the error was reported */

enum ws_decoder_state {
#define WS_ST_ENUM_(name) name,
	WS_DECODER_STATES(WS_ST_ENUM_)
#undef WS_ST_ENUM_
};

#define WS_MAX_CLOSE_REASON (WS_MAX_CONTROL_PAYLOAD - 2)

/* Mark D failed with CODE and WHY and report it in EV; returns -1. */
static ssize_t
ws_decoder_fail(struct ws_decoder *d, struct ws_event *ev, uint16_t code,
		const char *why)
{
	d->state = WS_ST_FAILED;
	d->failed = true;
	d->error_code = code;
	d->error = why;
	ev->type = WS_EV_ERROR;
	ev->error_code = code;
	ev->error = why;
	return -1;
}

/* Check a close payload; on failure returns the close code and sets *WHY. */
static int
ws_close_check(const uint8_t *p, size_t len, bool check_utf8, uint16_t *code,
	       const uint8_t **reason, size_t *reason_len, const char **why)
{
	unsigned c;

	*code = WS_CLOSE_NO_STATUS;
	*reason = NULL;
	*reason_len = 0;
	if (len == 0)
		return 0; /* RFC 6455 7.1.5: no status code -> 1005 */
	/* RFC 6455 5.5.1: a body starts with a 2-byte code; 5.5: <= 125 */
	if (len == 1 || len > WS_MAX_CONTROL_PAYLOAD) {
		*why = "close payload of invalid length";
		return WS_CLOSE_PROTOCOL_ERROR;
	}
	c = (unsigned)p[0] << 8 | p[1];
	if (!ws_close_code_is_valid(c)) { /* RFC 6455 7.4 */
		*why = "invalid close code";
		return WS_CLOSE_PROTOCOL_ERROR;
	}
	/* RFC 6455 5.5.1: the reason is UTF-8 */
	if (check_utf8 && !utf8_valid(p + 2, len - 2)) {
		*why = "close reason is not valid UTF-8";
		return WS_CLOSE_INVALID_DATA;
	}
	*code = (uint16_t)c;
	*reason = p + 2;
	*reason_len = len - 2;
	return 0;
}

/* Fill EV with a DATA event for N bytes at P, updating frame/message state. */
static void
ws_decoder_emit_data(struct ws_decoder *d, struct ws_event *ev, uint8_t *p,
		     size_t n, bool frame_end)
{
	ev->type = WS_EV_DATA;
	ev->opcode = d->msg_opcode;
	ev->rsv1 = d->msg_rsv1;
	ev->message_start = !d->msg_started;
	ev->frame_start = !d->frame_started;
	ev->frame_end = frame_end;
	ev->message_end = frame_end && d->fin;
	ev->data = p;
	ev->len = n;
	d->msg_started = true;
	d->frame_started = true;
	if (frame_end) {
		d->state = WS_ST_HEADER;
		if (d->fin) {
			d->in_message = false;
			d->msg_started = false;
		}
	}
}

/* Validate the first two header bytes; returns 0 or the close code. */
static uint16_t
ws_decoder_check_start(struct ws_decoder *d, const char **why)
{
	uint8_t b0 = d->hdr[0], b1 = d->hdr[1];
	uint8_t len7 = b1 & 0x7f;
	bool control;

	d->fin = (b0 & 0x80) != 0;
	d->rsv1 = (b0 & 0x40) != 0;
	d->opcode = b0 & 0x0f;
	d->masked = (b1 & 0x80) != 0;
	/* RFC 6455 5.2: RSV2/RSV3 MUST be 0 (no extension defines them) */
	if (b0 & 0x30) {
		*why = "reserved bit set";
		return WS_CLOSE_PROTOCOL_ERROR;
	}
	switch (d->opcode) {
	case WS_OP_CONT:
	case WS_OP_TEXT:
	case WS_OP_BINARY:
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		break;
	default: /* RFC 6455 5.2: 0x3-0x7 and 0xB-0xF are reserved */
		*why = "reserved opcode";
		return WS_CLOSE_PROTOCOL_ERROR;
	}
	control = (d->opcode & 0x08) != 0;
	/* RFC 7692 6: RSV1 marks a message, so only its first frame has it */
	if (d->rsv1 && !d->cfg.allow_rsv1) {
		*why = "RSV1 set without a negotiated extension";
		return WS_CLOSE_PROTOCOL_ERROR;
	}
	if (d->rsv1 && d->opcode != WS_OP_TEXT && d->opcode != WS_OP_BINARY) {
		*why = "RSV1 set on a continuation or control frame";
		return WS_CLOSE_PROTOCOL_ERROR;
	}
	if (control) {
		/* RFC 6455 5.5: control frames are never fragmented */
		if (!d->fin) {
			*why = "fragmented control frame";
			return WS_CLOSE_PROTOCOL_ERROR;
		}
		/* RFC 6455 5.5: control payload <= 125 (so no extended length) */
		if (len7 > WS_MAX_CONTROL_PAYLOAD) {
			*why = "control frame longer than 125 bytes";
			return WS_CLOSE_PROTOCOL_ERROR;
		}
	} else if (d->opcode == WS_OP_CONT && !d->in_message) {
		/* RFC 6455 5.4: a continuation continues something */
		*why = "continuation frame without a message";
		return WS_CLOSE_PROTOCOL_ERROR;
	} else if (d->opcode != WS_OP_CONT && d->in_message) {
		/* RFC 6455 5.4: fragments of messages are not interleaved */
		*why = "new message inside a fragmented message";
		return WS_CLOSE_PROTOCOL_ERROR;
	}
	/* RFC 6455 5.1: a server MUST close on an unmasked client frame */
	if (d->cfg.require_mask && !d->masked) {
		*why = "unmasked client frame";
		return WS_CLOSE_PROTOCOL_ERROR;
	}
	d->hdr_need = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) +
				(d->masked ? 4 : 0));
	return 0;
}

/* Validate the whole header and set up the frame; returns 0 or a code. */
static uint16_t
ws_decoder_begin_frame(struct ws_decoder *d, const char **why)
{
	uint8_t len7 = d->hdr[1] & 0x7f;
	const uint8_t *h = d->hdr + 2;
	uint64_t len = len7;

	if (len7 == 126) {
		len = (uint64_t)h[0] << 8 | h[1];
		h += 2;
		/* RFC 6455 5.2: "the minimal number of bytes MUST be used" */
		if (len < 126) {
			*why = "non-minimal 16-bit length";
			return WS_CLOSE_PROTOCOL_ERROR;
		}
	} else if (len7 == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | h[i];
		h += 8;
		/* RFC 6455 5.2: "the most significant bit MUST be 0" */
		if (len >> 63) {
			*why = "64-bit length with the top bit set";
			return WS_CLOSE_PROTOCOL_ERROR;
		}
		/* RFC 6455 5.2: "the minimal number of bytes MUST be used" */
		if (len < 65536) {
			*why = "non-minimal 64-bit length";
			return WS_CLOSE_PROTOCOL_ERROR;
		}
	}
	if (d->masked)
		memcpy(d->mask, h, 4);
	d->mask_pos = 0;
	d->frame_len = len;
	d->frame_left = len;
	d->frame_started = false;
	d->hdr_have = 0;
	if (d->opcode & 0x08) {
		d->ctl_len = 0;
		d->state = WS_ST_CONTROL;
		return 0;
	}
	if (d->opcode != WS_OP_CONT) {
		d->in_message = true;
		d->msg_opcode = d->opcode;
		d->msg_rsv1 = d->rsv1;
		d->msg_started = false;
		d->msg_len = 0;
		utf8_init(&d->utf8);
	}
	/* Cap the message before any of this frame's payload goes out. */
	if (d->cfg.max_message && len > d->cfg.max_message - d->msg_len) {
		*why = "message too big";
		return WS_CLOSE_TOO_BIG;
	}
	d->msg_len += len;
	d->state = WS_ST_DATA;
	return 0;
}

/* Hand out the next chunk of a data frame from BUF[OFF..LEN). */
static ssize_t
ws_decoder_data(struct ws_decoder *d, uint8_t *buf, size_t len, size_t off,
		struct ws_event *ev)
{
	uint8_t *p = buf + off;
	size_t n = len - off, keep;
	unsigned pos0 = d->mask_pos;
	const char *why = NULL;

	if (n == 0)
		return (ssize_t)off;
	if (n > d->frame_left)
		n = (size_t)d->frame_left;
	if (d->masked)
		d->mask_pos = (uint8_t)ws_unmask(p, n, d->mask, pos0);
	keep = n;
	/* RFC 6455 8.1: text is UTF-8; fail fast on the first bad byte */
	if (d->msg_opcode == WS_OP_TEXT && d->cfg.validate_utf8) {
		struct utf8_validator v = d->utf8;
		size_t bad = 0;
		enum utf8_status st = utf8_feed(&v, p, n, &bad);

		if (st == UTF8_INVALID) {
			keep = bad < n ? bad : 0;
			why = "invalid UTF-8 in text message";
		} else if (st != UTF8_COMPLETE && d->fin &&
			   n == d->frame_left) {
			keep = n - 1; /* the last byte reveals the error */
			why = "text message ends inside a UTF-8 sequence";
		} else {
			d->utf8 = v;
		}
	}
	if (why) {
		/* Restore the bytes not consumed: masking twice restores. */
		if (d->masked)
			ws_unmask(p + keep, n - keep, d->mask,
				  (pos0 + (unsigned)keep) & 3);
		if (keep == 0)
			return ws_decoder_fail(d, ev, WS_CLOSE_INVALID_DATA,
					       why);
		d->frame_left -= keep;
		ws_decoder_emit_data(d, ev, p, keep, false);
		d->state = WS_ST_ERROR_PENDING;
		d->error_code = WS_CLOSE_INVALID_DATA;
		d->error = why;
		return (ssize_t)(off + keep);
	}
	d->frame_left -= n;
	ws_decoder_emit_data(d, ev, p, n, d->frame_left == 0);
	return (ssize_t)(off + n);
}

/* Fill EV with the complete control frame in d->ctl. */
static ssize_t
ws_decoder_control(struct ws_decoder *d, size_t off, struct ws_event *ev)
{
	if (d->masked)
		ws_unmask(d->ctl, d->ctl_len, d->mask, 0);
	d->state = WS_ST_HEADER;
	if (d->opcode == WS_OP_CLOSE) {
		const char *why = NULL;
		const uint8_t *reason;
		size_t reason_len;
		uint16_t close_code;
		int code = ws_close_check(d->ctl, d->ctl_len,
					  d->cfg.validate_utf8, &close_code,
					  &reason, &reason_len, &why);
		if (code)
			return ws_decoder_fail(d, ev, (uint16_t)code, why);
		ev->close_code = close_code;
		ev->reason = reason;
		ev->reason_len = reason_len;
	}
	ev->type = WS_EV_CONTROL;
	ev->opcode = d->opcode;
	ev->data = d->ctl;
	ev->len = d->ctl_len;
	return (ssize_t)off;
}

/* Initialise D with configuration CFG (copied). */
void
ws_decoder_init(struct ws_decoder *d, const struct ws_decoder_config *cfg)
{
	memset(d, 0, sizeof(*d));
	if (cfg)
		d->cfg = *cfg;
	d->state = WS_ST_HEADER;
	utf8_init(&d->utf8);
}

/* Decode from BUF, at most one event per call (see ws_frame.h). */
ssize_t
ws_decoder_feed(struct ws_decoder *d, uint8_t *buf, size_t len,
		struct ws_event *ev)
{
	size_t off = 0, take;
	const char *why = NULL;
	uint16_t code;

	memset(ev, 0, sizeof(*ev));
	if (d->state == WS_ST_FAILED || d->state == WS_ST_ERROR_PENDING)
		return ws_decoder_fail(d, ev, d->error_code, d->error);
	for (;;) {
		switch (d->state) {
		case WS_ST_HEADER:
			if (d->hdr_have < 2) {
				take = 2u - d->hdr_have;
				if (take > len - off)
					take = len - off;
				memcpy(d->hdr + d->hdr_have, buf + off, take);
				d->hdr_have = (uint8_t)(d->hdr_have + take);
				off += take;
				if (d->hdr_have < 2)
					return (ssize_t)off;
				code = ws_decoder_check_start(d, &why);
				if (code)
					return ws_decoder_fail(d, ev, code, why);
			}
			take = (size_t)(d->hdr_need - d->hdr_have);
			if (take > len - off)
				take = len - off;
			memcpy(d->hdr + d->hdr_have, buf + off, take);
			d->hdr_have = (uint8_t)(d->hdr_have + take);
			off += take;
			if (d->hdr_have < d->hdr_need)
				return (ssize_t)off;
			code = ws_decoder_begin_frame(d, &why);
			if (code)
				return ws_decoder_fail(d, ev, code, why);
			if (d->state == WS_ST_DATA && d->frame_left == 0) {
				/* RFC 6455 5.6: the FIN frame ends the text */
				if (d->fin && d->msg_opcode == WS_OP_TEXT &&
				    d->cfg.validate_utf8 &&
				    !utf8_is_complete(&d->utf8))
					return ws_decoder_fail(
						d, ev, WS_CLOSE_INVALID_DATA,
						"text message ends inside a "
						"UTF-8 sequence");
				ws_decoder_emit_data(d, ev, buf + off, 0, true);
				return (ssize_t)off;
			}
			break;
		case WS_ST_DATA:
			return ws_decoder_data(d, buf, len, off, ev);
		case WS_ST_CONTROL:
			take = len - off;
			if (take > d->frame_left)
				take = (size_t)d->frame_left;
			memcpy(d->ctl + d->ctl_len, buf + off, take);
			d->ctl_len = (uint8_t)(d->ctl_len + take);
			d->frame_left -= take;
			off += take;
			if (d->frame_left)
				return (ssize_t)off;
			return ws_decoder_control(d, off, ev);
		default: /* not reached: every state is handled above */
			return ws_decoder_fail(d, ev, WS_CLOSE_INTERNAL_ERROR,
					       "decoder state corrupt");
		}
	}
}

/* True when no frame is partially decoded and no message is open. */
bool
ws_decoder_is_idle(const struct ws_decoder *d)
{
	return d->state == WS_ST_HEADER && d->hdr_have == 0 &&
	       !d->in_message;
}

#if defined(__GNUC__)
/* 16 bytes that gcc and clang map to SSE2/NEON registers. */
typedef uint8_t ws_vec16 __attribute__((vector_size(16)));
#endif

/*
 * Write N bytes of SRC XORed with MASK from MASK[POS % 4] to DST (RFC 6455
 * 5.3), in one pass; DST may be SRC (ws_unmask).  The mask is
 * rotated to POS once and repeated over 16 bytes; since 16 and 8 are
 * multiples of 4 it lines up again after every block and word, so only
 * the last few bytes go one at a time.  memcpy does the (unaligned) loads
 * and stores; compilers turn it into plain vector or word moves.
 */
unsigned
ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t n,
	     const uint8_t mask[4], unsigned pos)
{
	uint8_t twice[8], rot[16];
	uint32_t r32;
	uint64_t m64, w;
	size_t i;

	pos &= 3;
	memcpy(twice, mask, 4);
	memcpy(twice + 4, mask, 4);
	memcpy(&r32, twice + pos, 4);
	for (i = 0; i < sizeof(rot); i += 4)
		memcpy(rot + i, &r32, 4);
	memcpy(&m64, rot, 8);
#if defined(__GNUC__)
	if (n >= 16) {
		ws_vec16 m, a, b, c, d;

		memcpy(&m, rot, 16);
		while (n >= 64) {
			memcpy(&a, src, 16);
			memcpy(&b, src + 16, 16);
			memcpy(&c, src + 32, 16);
			memcpy(&d, src + 48, 16);
			a ^= m;
			b ^= m;
			c ^= m;
			d ^= m;
			memcpy(dst, &a, 16);
			memcpy(dst + 16, &b, 16);
			memcpy(dst + 32, &c, 16);
			memcpy(dst + 48, &d, 16);
			src += 64;
			dst += 64;
			n -= 64;
		}
		while (n >= 16) {
			memcpy(&a, src, 16);
			a ^= m;
			memcpy(dst, &a, 16);
			src += 16;
			dst += 16;
			n -= 16;
		}
	}
#endif
	while (n >= 8) {
		memcpy(&w, src, 8);
		w ^= m64;
		memcpy(dst, &w, 8);
		src += 8;
		dst += 8;
		n -= 8;
	}
	for (i = 0; i < n; i++)
		dst[i] = src[i] ^ rot[i];
	return (unsigned)((pos + n) & 3);
}

/* XOR N bytes at P in place; see ws_mask_copy. */
unsigned
ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], unsigned pos)
{
	return ws_mask_copy(p, p, n, mask, pos);
}

/* Write a minimal RFC 6455 5.2 frame header; returns its length. */
size_t
ws_frame_header(uint8_t out[WS_MAX_HEADER], bool fin, uint8_t opcode,
		uint64_t len, const uint8_t *mask)
{
	size_t n = 2;
	uint8_t maskbit = mask ? 0x80 : 0;

	out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (len < 126) {
		out[1] = (uint8_t)(maskbit | len);
	} else if (len <= 0xffff) {
		out[1] = maskbit | 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		n = 4;
	} else {
		out[1] = maskbit | 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		n = 10;
	}
	if (mask) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

/* Start cutting a message into frames; see ws_frame.h. */
void
ws_cut_init(struct ws_cut *c, uint8_t opcode, uint64_t n, uint64_t max,
	    bool fin)
{
	c->left = n;
	c->max = max > 0 ? max : 1;
	c->opcode = opcode;
	c->fin = fin;
	c->done = false;
}

/* The next frame of the message; see ws_frame.h. */
size_t
ws_cut_next(struct ws_cut *c, uint8_t hdr[WS_MAX_HEADER], uint64_t *len)
{
	uint64_t n;

	if (c->done)
		return 0;
	n = c->left < c->max ? c->left : c->max;
	c->left -= n;
	c->done = c->left == 0;
	*len = n;
	n = ws_frame_header(hdr, c->done && c->fin, c->opcode, n, NULL);
	c->opcode = WS_OP_CONT;
	return n;
}

/* True while frames remain. */
bool
ws_cut_more(const struct ws_cut *c)
{
	return !c->done;
}

/* True for codes a peer may send (RFC 6455 7.4.1, 7.4.2, IANA). */
bool
ws_close_code_is_valid(unsigned code)
{
	return (code >= 1000 && code <= 1003) ||
	       (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

/* Build a close payload, the reason cut at a code point boundary. */
ssize_t
ws_close_payload(uint8_t out[WS_MAX_CONTROL_PAYLOAD], unsigned code,
		 const char *reason, size_t reason_len)
{
	const uint8_t *r = (const uint8_t *)reason;
	size_t n = reason ? reason_len : 0;

	if (!ws_close_code_is_valid(code))
		return -1;
	if (n > WS_MAX_CLOSE_REASON) {
		n = WS_MAX_CLOSE_REASON;
		/* Back up to the lead byte of the code point that is cut. */
		while (n > 0 && (r[n] & 0xc0) == 0x80)
			n--;
	}
	/* RFC 6455 5.5.1: never send a reason the peer must reject. */
	if (n > 0 && !utf8_valid(r, n))
		n = 0;
	out[0] = (uint8_t)(code >> 8);
	out[1] = (uint8_t)code;
	if (n > 0)
		memcpy(out + 2, r, n);
	return (ssize_t)(n + 2);
}

/* Check a received close payload (RFC 6455 5.5.1, 7.4). */
int
ws_close_parse(const uint8_t *p, size_t len, uint16_t *code,
	       const uint8_t **reason, size_t *reason_len)
{
	const char *why = NULL;

	return ws_close_check(p, len, true, code, reason, reason_len, &why);
}
