/*
 * utf8.c - streaming UTF-8 validator (PURE: no I/O, no globals).
 *
 * RFC 3629 section 4 gives the grammar of well-formed UTF-8 as byte ranges:
 *
 *   UTF8-1 = %x00-7F
 *   UTF8-2 = %xC2-DF UTF8-tail
 *   UTF8-3 = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2( UTF8-tail ) /
 *            %xED %x80-9F UTF8-tail / %xEE-EF 2( UTF8-tail )
 *   UTF8-4 = %xF0 %x90-BF 2( UTF8-tail ) / %xF1-F3 3( UTF8-tail ) /
 *            %xF4 %x80-8F 2( UTF8-tail )
 *   UTF8-tail = %x80-BF
 *
 * The lead byte fixes the sequence length and the allowed range of the
 * second byte; every later byte is a plain tail.  Checking each byte against
 * the range the grammar allows at that position rejects overlong forms,
 * surrogates and values above U+10FFFF on the very byte that rules them out,
 * which is the fail-fast behaviour RFC 6455 8.1 asks for.
 *
 * Between sequences, runs of ASCII are skipped a word at a time: the bytes
 * are copied into a uint64_t with memcpy (no unaligned access, no aliasing
 * games) and their high bits tested together.
 */
#include "utf8.h"

#include <string.h>

#define UTF8_HIGH_BITS UINT64_C(0x8080808080808080)
#define UTF8_TAIL_LO 0x80
#define UTF8_TAIL_HI 0xBF

/* Index (0..7), in memory order, of the first byte of W with its high bit. */
static size_t utf8_first_high(uint64_t w)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && \
	__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (size_t)__builtin_ctzll(w & UTF8_HIGH_BITS) >> 3;
#else
	uint8_t bytes[8];
	size_t k = 0;

	memcpy(bytes, &w, 8);
	while (k < 7 && bytes[k] < 0x80)
		k++;
	return k;
#endif
}

/* True if any of the 64 bytes at Q has its high bit set. */
static bool utf8_block_has_high(const uint8_t *q)
{
	uint64_t w0, w1, w2, w3, w4, w5, w6, w7;

	memcpy(&w0, q, 8);
	memcpy(&w1, q + 8, 8);
	memcpy(&w2, q + 16, 8);
	memcpy(&w3, q + 24, 8);
	memcpy(&w4, q + 32, 8);
	memcpy(&w5, q + 40, 8);
	memcpy(&w6, q + 48, 8);
	memcpy(&w7, q + 56, 8);
	return (((w0 | w1) | (w2 | w3) | (w4 | w5) | (w6 | w7)) &
		UTF8_HIGH_BITS) != 0;
}

/*
 * Return the index of the first non-ASCII byte of P at or after I (or LEN).
 * The overlapping loads at the end may re-read bytes before I: a high bit
 * among those only sends us on to the slower loop, never to a wrong answer.
 */
static size_t utf8_skip_ascii(const uint8_t *p, size_t i, size_t len)
{
	size_t blocks;
	uint64_t w;

	if (len - i < 8) {
		while (i < len && p[i] < 0x80)
			i++;
		return i;
	}
	/* One word first, so that short ASCII runs stay cheap. */
	memcpy(&w, p + i, 8);
	if (w & UTF8_HIGH_BITS)
		return i + utf8_first_high(w);
	i += 8;
	/* Then eight words per step, one test per 64 bytes. */
	for (blocks = (len - i) / 64; blocks > 0; blocks--, i += 64) {
		if (utf8_block_has_high(p + i))
			break;
	}
	/* Under 64 bytes left: the last 64 bytes of P as one block. */
	if (len - i < 64 && len >= 64 && !utf8_block_has_high(p + len - 64))
		return len;
	/* A word at a time, to find the byte (or for short runs). */
	while (len - i >= 8) {
		memcpy(&w, p + i, 8);
		if (w & UTF8_HIGH_BITS)
			return i + utf8_first_high(w);
		i += 8;
	}
	/* Under 8 bytes left: the last 8 bytes of P as one word. */
	if (i < len) {
		memcpy(&w, p + len - 8, 8);
		if (!(w & UTF8_HIGH_BITS))
			return len;
		return len - 8 + utf8_first_high(w);
	}
	return i;
}

/*
 * RFC 3629 4: classify lead byte B.  Returns the number of tail bytes that
 * must follow (1..3) and the range of the next one in *LO..*HI, or 0 if B
 * cannot start a sequence (a stray tail 80..BF, overlong C0/C1, F5..FF).
 */
static unsigned utf8_lead(uint8_t b, uint8_t *lo, uint8_t *hi)
{
	*lo = UTF8_TAIL_LO;
	*hi = UTF8_TAIL_HI;
	if (b < 0xC2)
		return 0;
	if (b < 0xE0)
		return 1;
	if (b < 0xF0) {
		if (b == 0xE0)
			*lo = 0xA0; /* E0 80..9F would be overlong */
		else if (b == 0xED)
			*hi = 0x9F; /* ED A0..BF would be a surrogate */
		return 2;
	}
	if (b < 0xF5) {
		if (b == 0xF0)
			*lo = 0x90; /* F0 80..8F would be overlong */
		else if (b == 0xF4)
			*hi = 0x8F; /* F4 90..BF would exceed U+10FFFF */
		return 3;
	}
	return 0;
}

/* Reset V to the initial state (a code point boundary). */
void utf8_init(struct utf8_validator *v)
{
	memset(v, 0, sizeof(*v));
}

/* Validate LEN more bytes at P, resuming wherever the last call stopped. */
enum utf8_status utf8_feed(struct utf8_validator *v, const uint8_t *p,
			   size_t len, size_t *bad_offset)
{
	unsigned need = v->need, seen = v->seen;
	uint8_t lo = v->lo, hi = v->hi;
	size_t i = 0;

	/* Already invalid: nothing can repair it; the offset reported is 0. */
	if (v->failed)
		goto fail;
	while (i < len) {
		uint8_t byte = p[i];
		unsigned k;

		if (need > 0) {
			/* Inside a sequence begun in an earlier chunk. */
			if (byte < lo || byte > hi)
				goto fail;
			lo = UTF8_TAIL_LO;
			hi = UTF8_TAIL_HI;
			i++;
			need--;
			seen = need > 0 ? seen + 1 : 0;
			continue;
		}
		if (byte < 0x80) {
			i = utf8_skip_ascii(p, i, len);
			continue;
		}
		need = utf8_lead(byte, &lo, &hi);
		if (need == 0)
			goto fail;
		if (len - i <= need) {
			/* Truncated by the chunk end: carry the state over. */
			seen = 1;
			i++;
			continue;
		}
		/* The whole sequence is in this chunk: check it in one go. */
		if (p[i + 1] < lo || p[i + 1] > hi) {
			i += 1;
			goto fail;
		}
		for (k = 2; k <= need; k++) {
			if (p[i + k] < UTF8_TAIL_LO || p[i + k] > UTF8_TAIL_HI) {
				i += k;
				goto fail;
			}
		}
		i += need + 1;
		need = 0;
	}
	v->need = (uint8_t)need;
	v->seen = (uint8_t)seen;
	v->lo = lo;
	v->hi = hi;
	return need ? UTF8_PARTIAL : UTF8_COMPLETE;

fail:
	v->failed = true;
	v->need = 0;
	v->seen = 0;
	if (bad_offset)
		*bad_offset = i;
	return UTF8_INVALID;
}

/* True when V is at a code point boundary and has not failed. */
bool utf8_is_complete(const struct utf8_validator *v)
{
	return !v->failed && v->need == 0;
}

/* Bytes of the unfinished trailing sequence (0 when failed or at a boundary). */
size_t utf8_pending(const struct utf8_validator *v)
{
	return v->failed ? 0 : v->seen;
}

/* One-shot check of a whole buffer: complete and valid. */
bool utf8_valid(const uint8_t *p, size_t len)
{
	struct utf8_validator v;

	utf8_init(&v);
	return utf8_feed(&v, p, len, NULL) == UTF8_COMPLETE;
}
