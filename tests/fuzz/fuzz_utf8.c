/*
 * fuzz_utf8.c - libFuzzer target for the streaming UTF-8 validator.
 *
 * The input is the byte string to validate.  It is fed whole, in two and
 * in several pieces at split points derived from the input itself, and byte
 * by byte (short inputs), and every way must agree with a slow reference
 * oracle on status, offending byte offset and pending count; abort() on any
 * mismatch.  The oracle decodes code points and asks, after each byte,
 * whether any valid value is still reachable (RFC 3629 3, RFC 6455 8.1).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What feeding a byte string produced. */
struct outcome {
	enum utf8_status status;
	size_t bad;
	size_t pending;
};

/* True if some value in LO..HI is a valid scalar encoded in N bytes. */
static bool oracle_reachable(uint32_t lo, uint32_t hi, unsigned n)
{
	uint32_t min = n == 1 ? 0 : n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
	uint32_t max = n == 1 ? 0x7F : n == 2 ? 0x7FF : n == 3 ? 0xFFFF
							       : 0x10FFFF;

	if (lo < min)
		lo = min;
	if (hi > max)
		hi = max;
	return lo <= hi && !(lo >= 0xD800 && hi <= 0xDFFF);
}

/* Slow reference: decode P code point by code point. */
static struct outcome oracle(const uint8_t *p, size_t len)
{
	struct outcome o = {UTF8_COMPLETE, 0, 0};
	size_t i = 0;

	while (i < len) {
		unsigned n, k, ones = 0;
		uint32_t cp;

		while (ones < 8 && (p[i] & (0x80u >> ones)))
			ones++;
		if (ones == 1 || ones > 4) {
			o.status = UTF8_INVALID;
			o.bad = i;
			return o;
		}
		n = ones == 0 ? 1 : ones;
		cp = p[i] & (0x7Fu >> ones);
		for (k = 0; k < n; k++) {
			unsigned rest = 6 * (n - 1 - k);

			if (k > 0) {
				if (i + k == len) {
					o.status = UTF8_PARTIAL;
					o.pending = k;
					return o;
				}
				if ((p[i + k] & 0xC0) != 0x80) {
					o.status = UTF8_INVALID;
					o.bad = i + k;
					return o;
				}
				cp = (cp << 6) | (p[i + k] & 0x3F);
			}
			if (!oracle_reachable(cp << rest,
					      (cp << rest) |
						      ((UINT32_C(1) << rest) - 1),
					      n)) {
				o.status = UTF8_INVALID;
				o.bad = i + k;
				return o;
			}
		}
		i += n;
	}
	return o;
}

/* Abort unless the validator's state after a feed is self-consistent. */
static void check_state(const struct utf8_validator *v, enum utf8_status st)
{
	size_t pending = utf8_pending(v);

	if (pending > 3 || utf8_is_complete(v) != (st == UTF8_COMPLETE) ||
	    (st == UTF8_PARTIAL) != (pending > 0))
		abort();
}

/*
 * Feed P in pieces of the sizes the generator gives (STEP and SEED), and
 * compare with the oracle on the final result and, with PREFIX, after every
 * piece.  STEP 0 means one piece.
 */
static void feed_and_compare(const uint8_t *p, size_t len, size_t step,
			     uint32_t seed, bool prefix, struct outcome want)
{
	struct utf8_validator v;
	size_t pos = 0;

	utf8_init(&v);
	for (;;) {
		size_t n = len - pos, bad = (size_t)-1;
		enum utf8_status st;

		if (step > 0) {
			seed = seed * 1103515245u + 12345u;
			n = step == 1 ? 1 : (seed >> 16) % step;
			if (n > len - pos)
				n = len - pos;
		}
		st = utf8_feed(&v, p + pos, n, &bad);
		if (st == UTF8_INVALID) {
			if (bad >= n || want.status != UTF8_INVALID ||
			    want.bad != pos + bad || utf8_pending(&v) != 0 ||
			    utf8_is_complete(&v))
				abort();
			/* Sticky, and reported at offset 0 from now on. */
			if (utf8_feed(&v, p, len, &bad) != UTF8_INVALID ||
			    bad != 0)
				abort();
			return;
		}
		check_state(&v, st);
		pos += n;
		if (prefix) {
			struct outcome o = oracle(p, pos);

			if (o.status != st || o.pending != utf8_pending(&v))
				abort();
		}
		if (pos == len)
			break;
	}
	if (want.status == UTF8_INVALID ||
	    (utf8_is_complete(&v) ? UTF8_COMPLETE : UTF8_PARTIAL) !=
		    want.status ||
	    utf8_pending(&v) != want.pending)
		abort();
}

/* Validate DATA every way and compare with the oracle. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome want = oracle(data, size);
	struct utf8_validator v;
	uint32_t seed = 2166136261u;
	size_t i, bad = (size_t)-1, cut;
	enum utf8_status st;

	/* Split points derived from the input (FNV-1a of its bytes). */
	for (i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;

	/* Whole. */
	utf8_init(&v);
	st = utf8_feed(&v, data, size, &bad);
	if (st != want.status ||
	    (st == UTF8_INVALID ? bad != want.bad
				: utf8_pending(&v) != want.pending))
		abort();
	if (utf8_valid(data, size) != (want.status == UTF8_COMPLETE))
		abort();

	/* Two pieces, cut where the input says. */
	cut = size ? seed % (size + 1) : 0;
	utf8_init(&v);
	st = utf8_feed(&v, data, cut, &bad);
	if (st == UTF8_INVALID) {
		if (want.status != UTF8_INVALID || bad != want.bad)
			abort();
	} else {
		st = utf8_feed(&v, data + cut, size - cut, &bad);
		if (st != want.status ||
		    (st == UTF8_INVALID ? cut + bad != want.bad
					: utf8_pending(&v) != want.pending))
			abort();
	}

	/*
	 * Random-sized pieces, and byte by byte; the per-piece prefix check
	 * is quadratic, so only on short inputs.
	 */
	feed_and_compare(data, size, 2 + seed % 17, seed, size <= 128, want);
	feed_and_compare(data, size, 2 + (seed >> 8) % 5, seed >> 3,
			 size <= 128, want);
	feed_and_compare(data, size, 1, 0, size <= 128, want);
	return 0;
}
