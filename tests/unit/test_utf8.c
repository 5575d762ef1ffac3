/*
 * test_utf8.c - Check suite for the streaming UTF-8 validator (src/utf8.c).
 *
 * Every vector is fed whole, split in two at every position, byte by byte,
 * in three pieces (short vectors) and at seeded random split points; all
 * ways must agree on status, offset of the offending byte and pending count,
 * and after every piece the state must match a slow reference decoder run
 * on the prefix fed so far.  The reference works on code points (what range
 * of values a prefix can still encode), not on the byte ranges the validator
 * uses, so the two are independent.  One test per rejection rule.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* What feeding a byte string produced. */
struct result {
	enum utf8_status status;
	size_t bad;     /* absolute offset of the offending byte (INVALID) */
	size_t pending; /* utf8_pending() afterwards */
};

/* A test vector: bytes and the expected outcome. */
struct vec {
	const char *bytes;
	size_t len;
	enum utf8_status status;
	size_t bad;
	size_t pending;
};

#define VEC(s, st, b, pend) {(s), sizeof(s) - 1, (st), (b), (pend)}
#define OK(s) VEC(s, UTF8_COMPLETE, 0, 0)
#define BAD(s, at) VEC(s, UTF8_INVALID, (at), 0)
#define PART(s, pend) VEC(s, UTF8_PARTIAL, 0, (pend))

/*
 * Check's ck_assert reports every passing check to the parent process;
 * the hot loops below use this instead, which only reports failures.
 */
#define REQUIRE(cond, ...)                                                     \
	do {                                                                   \
		if (!(cond))                                                   \
			ck_abort_msg(__VA_ARGS__);                             \
	} while (0)

/* xorshift64 step: deterministic, per-test state. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* Uniform-ish value in 0..n-1 (n > 0). */
static size_t rng_below(uint64_t *s, size_t n)
{
	return (size_t)(rng_next(s) % n);
}

/* ---- slow reference decoder ---------------------------------------- */

/*
 * True if some code point in LO..HI is valid when encoded in N bytes:
 * shortest form, not a surrogate, at most U+10FFFF (RFC 3629 3).
 */
static bool ref_range_has_valid(uint32_t lo, uint32_t hi, unsigned n)
{
	static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
	static const uint32_t max_cp[5] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};

	if (lo < min_cp[n])
		lo = min_cp[n];
	if (hi > max_cp[n])
		hi = max_cp[n];
	if (lo > hi)
		return false;
	return !(lo >= 0xD800 && hi <= 0xDFFF);
}

/* Build a result. */
static struct result mk(enum utf8_status st, size_t bad, size_t pending)
{
	struct result r = {st, bad, pending};

	return r;
}

/*
 * Decode P code point by code point.  After each byte of a sequence, the
 * bits seen so far bound the value being encoded; once no value in that
 * range is valid, that byte is the offending one.
 */
static struct result ref_check(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t b = p[i];
		uint32_t cp;
		unsigned n, k;

		if (b < 0x80) {
			n = 1;
			cp = b;
		} else if ((b & 0xE0) == 0xC0) {
			n = 2;
			cp = b & 0x1F;
		} else if ((b & 0xF0) == 0xE0) {
			n = 3;
			cp = b & 0x0F;
		} else if ((b & 0xF8) == 0xF0) {
			n = 4;
			cp = b & 0x07;
		} else {
			return mk(UTF8_INVALID, i, 0);
		}
		for (k = 0; k < n; k++) {
			unsigned rest = 6 * (n - 1 - k);
			uint32_t lo, hi;

			if (k > 0) {
				if (i + k == len)
					return mk(UTF8_PARTIAL, 0, k);
				if ((p[i + k] & 0xC0) != 0x80)
					return mk(UTF8_INVALID, i + k, 0);
				cp = (cp << 6) | (p[i + k] & 0x3F);
			}
			lo = cp << rest;
			hi = lo | ((UINT32_C(1) << rest) - 1);
			if (!ref_range_has_valid(lo, hi, n))
				return mk(UTF8_INVALID, i + k, 0);
		}
		i += n;
	}
	return mk(UTF8_COMPLETE, 0, 0);
}

/* Encode CP in N bytes (1..6) whether or not that is valid; returns N. */
static size_t enc(uint32_t cp, unsigned n, uint8_t *out)
{
	static const uint8_t lead[7] = {0, 0, 0xC0, 0xE0, 0xF0, 0xF8, 0xFC};
	unsigned k;

	if (n == 1) {
		out[0] = (uint8_t)cp;
		return 1;
	}
	out[0] = (uint8_t)(lead[n] | (cp >> (6 * (n - 1))));
	for (k = 1; k < n; k++)
		out[k] = (uint8_t)(0x80 | ((cp >> (6 * (n - 1 - k))) & 0x3F));
	return n;
}

/* Shortest-form length of CP. */
static unsigned enc_len(uint32_t cp)
{
	return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* A random valid scalar value, each encoded length equally likely. */
static uint32_t random_scalar(uint64_t *s)
{
	static const uint32_t lo[4] = {0, 0x80, 0x800, 0x10000};
	static const uint32_t hi[4] = {0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
	size_t c = rng_below(s, 4);
	uint32_t cp;

	do
		cp = lo[c] + (uint32_t)rng_below(s, hi[c] - lo[c] + 1);
	while (cp >= 0xD800 && cp <= 0xDFFF);
	return cp;
}

/* ---- feeding the validator ----------------------------------------- */

/*
 * Feed P in pieces ending at CUTS[0..NCUTS) (ascending, may repeat) and
 * then LEN.  With CHECK_PREFIX, after every piece compare the state with
 * the reference run on the prefix fed so far.  After a failure, one more
 * feed must stay INVALID with offset 0.
 */
static struct result feed_cuts(const uint8_t *p, size_t len,
			       const size_t *cuts, size_t ncuts,
			       bool check_prefix, const char *how)
{
	struct utf8_validator v;
	size_t pos = 0, k;

	utf8_init(&v);
	for (k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		size_t bad = (size_t)-1;
		enum utf8_status st;
		uint8_t *piece;

		/* Exactly sized heap copy: ASan sees any read outside it. */
		piece = malloc(end > pos ? end - pos : 1);
		REQUIRE(piece != NULL, "out of memory");
		memcpy(piece, p + pos, end - pos);
		st = utf8_feed(&v, piece, end - pos, &bad);
		free(piece);
		if (st == UTF8_INVALID) {
			REQUIRE(bad < end - pos,
				      "%s: bad offset %zu outside piece of %zu",
				      how, bad, end - pos);
			REQUIRE(!utf8_is_complete(&v) && utf8_pending(&v) == 0,
				"%s: failed state not cleared", how);
			bad += pos;
			if (check_prefix) {
				struct result r = ref_check(p, end);

				REQUIRE(r.status == UTF8_INVALID &&
						      r.bad == bad,
					      "%s: failed at %zu, reference %d/%zu",
					      how, bad, r.status, r.bad);
			}
			/* Sticky: nothing fed later can repair it. */
			st = utf8_feed(&v, (const uint8_t *)"a", 1, &pos);
			REQUIRE(st == UTF8_INVALID && pos == 0,
				"%s: failure not sticky", how);
			return mk(UTF8_INVALID, bad, 0);
		}
		REQUIRE(utf8_pending(&v) <= 3 &&
				utf8_is_complete(&v) == (st == UTF8_COMPLETE) &&
				(st == UTF8_PARTIAL) == (utf8_pending(&v) > 0),
			"%s: inconsistent state after %zu bytes", how, end);
		if (check_prefix) {
			struct result r = ref_check(p, end);

			REQUIRE(r.status == st &&
					      r.pending == utf8_pending(&v),
				      "%s: prefix %zu gave %d/%zu, reference "
				      "%d/%zu/%zu",
				      how, end, st, utf8_pending(&v), r.status,
				      r.bad, r.pending);
		}
		pos = end;
	}
	return mk(utf8_is_complete(&v) ? UTF8_COMPLETE : UTF8_PARTIAL, 0,
		  utf8_pending(&v));
}

/* Assert that GOT equals WANT, naming the way the input was fed. */
static void expect_same(struct result got, struct result want,
			const char *how, size_t at)
{
	REQUIRE(got.status == want.status && got.bad == want.bad &&
			      got.pending == want.pending,
		      "%s (%zu): got status %d bad %zu pending %zu, want %d "
		      "%zu %zu",
		      how, at, got.status, got.bad, got.pending, want.status,
		      want.bad, want.pending);
}

/* Feed P whole and byte by byte only (for large exhaustive loops). */
static void check_quick(const uint8_t *p, size_t len, struct result want)
{
	size_t cuts[16], k;

	REQUIRE(len <= 16, "vector too long");
	for (k = 0; k < len; k++)
		cuts[k] = k;
	expect_same(feed_cuts(p, len, NULL, 0, false, "whole"), want,
		    "whole", 0);
	expect_same(feed_cuts(p, len, cuts, len, false, "bytes"), want,
		    "bytes", 0);
	REQUIRE(utf8_valid(p, len) == (want.status == UTF8_COMPLETE),
		"utf8_valid disagrees");
}

/*
 * Feed P every way (whole, two pieces at every position, byte by byte,
 * three pieces when short, seeded random splits) and expect WANT each time.
 * Without EVERY_SPLIT, two pieces only at a few random positions.
 */
static void check_ways(const uint8_t *p, size_t len, struct result want,
		       uint64_t seed, bool every_split)
{
	size_t *cuts = malloc((len + 2) * sizeof(*cuts));
	size_t a, b, k;
	uint64_t s = seed | 1;

	ck_assert_ptr_nonnull(cuts);
	expect_same(feed_cuts(p, len, NULL, 0, true, "whole"), want, "whole",
		    0);
	for (a = 0; a <= len; a++) {
		cuts[0] = every_split ? a : rng_below(&s, len + 1);
		expect_same(feed_cuts(p, len, cuts, 1, true, "split2"), want,
			    "split2", cuts[0]);
		if (!every_split && a == 3)
			break;
	}
	for (k = 0; k < len; k++)
		cuts[k] = k;
	expect_same(feed_cuts(p, len, cuts, len, true, "bytes"), want,
		    "bytes", 0);
	if (every_split && len <= 12) {
		for (a = 0; a <= len; a++) {
			for (b = a; b <= len; b++) {
				cuts[0] = a;
				cuts[1] = b;
				expect_same(feed_cuts(p, len, cuts, 2, true,
						      "split3"),
					    want, "split3", a * 100 + b);
			}
		}
	}
	for (k = 0; k < (every_split ? 8u : 3u); k++) {
		size_t n = rng_below(&s, len + 1), j;

		/* n random cut points, sorted (insertion sort). */
		for (j = 0; j < n; j++) {
			size_t c = rng_below(&s, len + 1), m = j;

			while (m > 0 && cuts[m - 1] > c) {
				cuts[m] = cuts[m - 1];
				m--;
			}
			cuts[m] = c;
		}
		expect_same(feed_cuts(p, len, cuts, n, true, "random"), want,
			    "random", k);
	}
	REQUIRE(utf8_valid(p, len) == (want.status == UTF8_COMPLETE),
		"utf8_valid disagrees");
	free(cuts);
}

/* Feed P every way, all split positions included. */
static void check_all_ways(const uint8_t *p, size_t len, struct result want,
			   uint64_t seed)
{
	check_ways(p, len, want, seed, true);
}

/* Check a table of vectors every way; the reference must agree too. */
static void check_vecs(const struct vec *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const uint8_t *p = (const uint8_t *)v[i].bytes;
		struct result want = mk(v[i].status, v[i].bad, v[i].pending);

		expect_same(ref_check(p, v[i].len), want, "reference", i);
		check_all_ways(p, v[i].len, want, 0x9E3779B97F4A7C15u + i);
	}
}

#define CHECK_VECS(t) check_vecs((t), sizeof(t) / sizeof((t)[0]))

/* ---- tests ----------------------------------------------------------- */

/* Kuhn 2.1-2.3: first/last code points of each length, and neighbours. */
START_TEST(test_boundaries_valid)
{
	static const uint32_t cps[] = {
		0x0000,  0x007F,  0x0080, 0x07FF, 0x0800, 0x0FFF,
		0x1000,  0xCFFF,  0xD000, 0xD7FF, 0xE000, 0xFFFD,
		0xFFFE,  0xFFFF,  0x10000, 0x3FFFF, 0x40000, 0xFFFFF,
		0x100000, 0x10FFFF,
	};
	uint8_t all[sizeof(cps) / sizeof(cps[0]) * 4];
	size_t i, k, n = 0;

	for (i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
		uint8_t buf[4];
		size_t len = enc(cps[i], enc_len(cps[i]), buf);

		check_all_ways(buf, len, mk(UTF8_COMPLETE, 0, 0), i);
		/* Every proper prefix: valid so far, waiting for more. */
		for (k = 1; k < len; k++)
			check_all_ways(buf, k, mk(UTF8_PARTIAL, 0, k), i);
		memcpy(all + n, buf, len);
		n += len;
	}
	check_all_ways(all, n, mk(UTF8_COMPLETE, 0, 0), 1);
}
END_TEST

/* Kuhn 1: a sample of real text (Greek "kosme", and more scripts). */
START_TEST(test_real_text)
{
	static const struct vec v[] = {
		OK("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"),
		OK("Hello, world"),
		OK("Gr\xC3\xBC\xC3\x9F" "e \xE2\x82\xAC \xE6\x97\xA5\xE6\x9C"
		   "\xAC \xF0\x9F\x98\x80!"),
		OK(""),
	};

	CHECK_VECS(v);
	/* NUL is a valid character in the middle of text. */
	check_all_ways((const uint8_t *)"a\0b", 3, mk(UTF8_COMPLETE, 0, 0), 7);
}
END_TEST

/* RFC 3629 4: F4 90..BF would be above U+10FFFF; F5..F7 leads too. */
START_TEST(test_reject_above_max)
{
	static const struct vec v[] = {
		BAD("\xF4\x90\x80\x80", 1), /* U+110000 */
		BAD("\xF4\xBF\xBF\xBF", 1), /* U+13FFFF */
		BAD("\xF4\x90", 1),         /* fails before the end */
		BAD("\xF5\x80\x80\x80", 0), /* U+140000 */
		BAD("\xF7\xBF\xBF\xBF", 0), /* U+1FFFFF */
		BAD("\xF8\x88\x80\x80\x80", 0),     /* 5 bytes */
		BAD("\xFC\x84\x80\x80\x80\x80", 0), /* 6 bytes */
		BAD("ab\xF4\x90\x80\x80", 3),
		OK("\xF4\x8F\xBF\xBF"), /* U+10FFFF itself */
	};
	uint8_t buf[4];
	uint32_t cp;

	CHECK_VECS(v);
	for (cp = 0x110000; cp <= 0x1FFFFF; cp += 0x3F) {
		enc(cp, 4, buf);
		check_quick(buf, 4, mk(UTF8_INVALID, buf[0] == 0xF4 ? 1 : 0, 0));
	}
}
END_TEST

/* RFC 3629 4: C0 and C1 could only start an overlong 2-byte form. */
START_TEST(test_reject_overlong_2)
{
	static const struct vec v[] = {
		BAD("\xC0\xAF", 0), /* '/' */
		BAD("\xC0\x80", 0), /* NUL */
		BAD("\xC1\xBF", 0), /* U+007F, the largest overlong */
		BAD("\xC0", 0),     /* fails on the lead byte itself */
		BAD("\xC1", 0),
		BAD("x\xC0\xAF", 1),
		OK("\xC2\x80"),
	};
	uint8_t buf[2];
	uint32_t cp;

	CHECK_VECS(v);
	for (cp = 0; cp < 0x80; cp++) {
		enc(cp, 2, buf);
		check_quick(buf, 2, mk(UTF8_INVALID, 0, 0));
	}
}
END_TEST

/* RFC 3629 4: after E0 the next byte is A0..BF (E0 80..9F is overlong). */
START_TEST(test_reject_overlong_3)
{
	static const struct vec v[] = {
		BAD("\xE0\x80\xAF", 1), /* '/' */
		BAD("\xE0\x80\x80", 1), /* NUL */
		BAD("\xE0\x9F\xBF", 1), /* U+07FF, the largest overlong */
		BAD("\xE0\x80", 1),     /* fails before the end */
		OK("\xE0\xA0\x80"),     /* U+0800 */
	};
	uint8_t buf[3];
	uint32_t cp;

	CHECK_VECS(v);
	for (cp = 0; cp < 0x800; cp++) {
		enc(cp, 3, buf);
		check_quick(buf, 3, mk(UTF8_INVALID, 1, 0));
	}
}
END_TEST

/* RFC 3629 4: after F0 the next byte is 90..BF (F0 80..8F is overlong). */
START_TEST(test_reject_overlong_4)
{
	static const struct vec v[] = {
		BAD("\xF0\x80\x80\xAF", 1), /* '/' */
		BAD("\xF0\x80\x80\x80", 1), /* NUL */
		BAD("\xF0\x8F\xBF\xBF", 1), /* U+FFFF, the largest overlong */
		BAD("\xF0\x8F", 1),
		OK("\xF0\x90\x80\x80"), /* U+10000 */
	};
	uint8_t buf[4];
	uint32_t cp;

	CHECK_VECS(v);
	for (cp = 0; cp < 0x10000; cp += 7) {
		enc(cp, 4, buf);
		check_quick(buf, 4, mk(UTF8_INVALID, 1, 0));
	}
}
END_TEST

/* RFC 3629 dropped 5- and 6-byte forms: F8..FF never start a sequence. */
START_TEST(test_reject_f5_ff)
{
	static const struct vec v[] = {
		BAD("\xF8\x80\x80\x80\xAF", 0),     /* '/' in 5 bytes */
		BAD("\xFC\x80\x80\x80\x80\xAF", 0), /* '/' in 6 bytes */
		BAD("\xF8\x87\xBF\xBF\xBF", 0),     /* max overlong, 5 */
		BAD("\xFC\x83\xBF\xBF\xBF\xBF", 0), /* max overlong, 6 */
		BAD("\xFE", 0),
		BAD("\xFF", 0),
		BAD("\xFE\xFE\xFF\xFF", 0),
		BAD("ok\xFF", 2),
	};
	uint8_t buf[2];
	unsigned b;

	CHECK_VECS(v);
	for (b = 0xF5; b <= 0xFF; b++) {
		buf[0] = (uint8_t)b;
		buf[1] = 0x80;
		check_all_ways(buf, 1, mk(UTF8_INVALID, 0, 0), b);
		check_all_ways(buf, 2, mk(UTF8_INVALID, 0, 0), b);
	}
}
END_TEST

/* RFC 3629 3: U+D800..U+DFFF are not characters; ED A0..BF is rejected. */
START_TEST(test_reject_surrogates)
{
	static const struct vec v[] = {
		BAD("\xED\xA0\x80", 1), /* U+D800 */
		BAD("\xED\xAD\xBF", 1), /* U+DB7F */
		BAD("\xED\xAE\x80", 1), /* U+DB80 */
		BAD("\xED\xAF\xBF", 1), /* U+DBFF */
		BAD("\xED\xB0\x80", 1), /* U+DC00 */
		BAD("\xED\xBE\x80", 1), /* U+DF80 */
		BAD("\xED\xBF\xBF", 1), /* U+DFFF */
		BAD("\xED\xA0\x80\xED\xB0\x80", 1), /* a "pair" */
		BAD("\xED\xAF\xBF\xED\xBF\xBF", 1),
		BAD("\xED\xA0", 1), /* fails before the end */
		BAD("abc\xED\xA0", 4),
		OK("\xED\x9F\xBF"), /* U+D7FF */
		OK("\xEE\x80\x80"), /* U+E000 */
		PART("\xED", 1),
		PART("\xED\x9F", 2),
	};
	uint8_t buf[3];
	uint32_t cp;

	CHECK_VECS(v);
	for (cp = 0xD800; cp <= 0xDFFF; cp++) {
		enc(cp, 3, buf);
		check_quick(buf, 3, mk(UTF8_INVALID, 1, 0));
	}
}
END_TEST

/* RFC 3629 3: a continuation byte 80..BF never starts a sequence. */
START_TEST(test_reject_lone_continuation)
{
	static const struct vec v[] = {
		BAD("\x80", 0),
		BAD("\xBF", 0),
		BAD("\x80\xBF", 0),
		BAD("a\x80", 1),
		BAD("\xC3\xA9\xA9", 2),         /* one too many after 2 */
		BAD("\xE2\x82\xAC\xAC", 3),     /* after 3 */
		BAD("\xF0\x9F\x98\x80\x80", 4), /* after 4 */
	};
	uint8_t all[64], buf[3];
	unsigned b;

	CHECK_VECS(v);
	for (b = 0x80; b <= 0xBF; b++) {
		buf[0] = (uint8_t)b;
		check_all_ways(buf, 1, mk(UTF8_INVALID, 0, 0), b);
		buf[0] = 'z';
		buf[1] = (uint8_t)b;
		check_all_ways(buf, 2, mk(UTF8_INVALID, 1, 0), b);
		all[b - 0x80] = (uint8_t)b;
	}
	/* Kuhn 3.1.9: all 64 continuation bytes in a row. */
	check_all_ways(all, sizeof(all), mk(UTF8_INVALID, 0, 0), 64);
}
END_TEST

/* RFC 3629 4: a sequence cut short by a non-continuation byte fails there. */
START_TEST(test_reject_interrupted)
{
	static const struct vec v[] = {
		BAD("\xC2\x41", 1),
		BAD("\xE2\x82\x41", 2),
		BAD("\xF0\x9F\x98\x41", 3),
		BAD("\xE2\xC3\xA9", 1),         /* new lead inside */
		BAD("\xF0\x9F\xE2\x82\xAC", 2),
		BAD("\xC2\x00", 1),
		BAD("\xDF\xC0", 1),
		BAD("\xE1\x80\xFF", 2),
		/* Kuhn 3.4: concatenated incomplete sequences. */
		BAD("\xC2\xE0\xA0\xF0\x90\x80", 1),
		BAD("\xDF\xEF\xBF\xF4\x8F\xBF", 1),
	};

	CHECK_VECS(v);
}
END_TEST

/* Truncated at the end: PARTIAL with the right pending count, not INVALID. */
START_TEST(test_truncated_partial)
{
	static const struct vec v[] = {
		PART("\xC2", 1),
		PART("\xDF", 1),
		PART("\xE0\xA0", 2),
		PART("\xE1", 1),
		PART("\xEF\xBF", 2),
		PART("\xF0\x90\x80", 3),
		PART("\xF0\x90", 2),
		PART("\xF4\x8F\xBF", 3),
		PART("\xF1", 1),
		PART("abc\xE2\x82", 2),
		PART("\xC3\xA9\xF0\x9F\x98", 3),
	};
	struct utf8_validator val;

	CHECK_VECS(v);
	/* More input completes it. */
	utf8_init(&val);
	ck_assert_int_eq(utf8_feed(&val, (const uint8_t *)"\xF0\x9F", 2, NULL),
			 UTF8_PARTIAL);
	ck_assert_uint_eq(utf8_pending(&val), 2);
	ck_assert(!utf8_is_complete(&val));
	ck_assert_int_eq(utf8_feed(&val, (const uint8_t *)"\x98", 1, NULL),
			 UTF8_PARTIAL);
	ck_assert_uint_eq(utf8_pending(&val), 3);
	ck_assert_int_eq(utf8_feed(&val, (const uint8_t *)"\x80z", 2, NULL),
			 UTF8_COMPLETE);
	ck_assert_uint_eq(utf8_pending(&val), 0);
	ck_assert(utf8_is_complete(&val));
	ck_assert(!utf8_valid((const uint8_t *)"\xE2\x82", 2));
}
END_TEST

/* RFC 6455 8.1 fail fast: the offset is that of the first hopeless byte. */
START_TEST(test_fail_fast_offsets)
{
	static const struct vec v[] = {
		BAD("\xED\xA0", 1), BAD("\xF4\x90", 1), BAD("\xC0", 0),
		BAD("\xF5", 0),     BAD("\xE0\x80", 1), BAD("\xF0\x80", 1),
		BAD("\xFF", 0),     BAD("\x80", 0),
		BAD("hello \xED\xA0\x80 world", 7),
		BAD("\xE2\x82\xAC\xC1\xBF", 3),
	};
	struct utf8_validator val;
	size_t bad = 99;

	CHECK_VECS(v);
	/* The offset is relative to the chunk that contained the byte. */
	utf8_init(&val);
	ck_assert_int_eq(utf8_feed(&val, (const uint8_t *)"abc\xF4", 4, &bad),
			 UTF8_PARTIAL);
	ck_assert_int_eq(utf8_feed(&val, (const uint8_t *)"\x90", 1, &bad),
			 UTF8_INVALID);
	ck_assert_uint_eq(bad, 0);
	/* A NULL offset pointer is allowed. */
	utf8_init(&val);
	ck_assert_int_eq(utf8_feed(&val, (const uint8_t *)"\xC0", 1, NULL),
			 UTF8_INVALID);
}
END_TEST

/* Once invalid, always invalid, whatever follows (utf8.h contract). */
START_TEST(test_sticky_failure)
{
	struct utf8_validator val;
	size_t bad = 99;

	utf8_init(&val);
	ck_assert_int_eq(utf8_feed(&val, (const uint8_t *)"\xE2\x82", 2, &bad),
			 UTF8_PARTIAL);
	ck_assert_int_eq(utf8_feed(&val, (const uint8_t *)"x", 1, &bad),
			 UTF8_INVALID);
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(utf8_pending(&val), 0);
	bad = 99;
	ck_assert_int_eq(utf8_feed(&val, (const uint8_t *)"\xAC", 1, &bad),
			 UTF8_INVALID);
	ck_assert_uint_eq(bad, 0);
	ck_assert_int_eq(utf8_feed(&val, NULL, 0, &bad), UTF8_INVALID);
	ck_assert(!utf8_is_complete(&val));
	/* utf8_init starts over. */
	utf8_init(&val);
	ck_assert(utf8_is_complete(&val));
	ck_assert_int_eq(utf8_feed(&val, (const uint8_t *)"ok", 2, &bad),
			 UTF8_COMPLETE);
}
END_TEST

/* Empty feeds change nothing; a zeroed struct is a fresh validator. */
START_TEST(test_empty_feed)
{
	struct utf8_validator val;

	memset(&val, 0, sizeof(val));
	ck_assert(utf8_is_complete(&val));
	ck_assert_int_eq(utf8_feed(&val, NULL, 0, NULL), UTF8_COMPLETE);
	ck_assert_int_eq(utf8_feed(&val, (const uint8_t *)"\xE6", 1, NULL),
			 UTF8_PARTIAL);
	ck_assert_int_eq(utf8_feed(&val, NULL, 0, NULL), UTF8_PARTIAL);
	ck_assert_uint_eq(utf8_pending(&val), 1);
	ck_assert_int_eq(utf8_feed(&val, (const uint8_t *)"\x97\xA5", 2, NULL),
			 UTF8_COMPLETE);
	ck_assert(utf8_valid(NULL, 0));
}
END_TEST

/* A sender holding back utf8_pending() bytes only ever emits whole text. */
START_TEST(test_pending_hold_back)
{
	uint64_t s = 0x2545F4914F6CDD1Du;
	uint8_t text[400], out[400];
	size_t round;

	for (round = 0; round < 200; round++) {
		struct utf8_validator val;
		size_t len = 0, pos = 0, sent = 0;

		while (len + 4 <= sizeof(text)) {
			uint32_t cp = random_scalar(&s);

			len += enc(cp, enc_len(cp), text + len);
		}
		utf8_init(&val);
		while (pos < len) {
			size_t n = 1 + rng_below(&s, 9), held, upto;

			if (n > len - pos)
				n = len - pos;
			REQUIRE(utf8_feed(&val, text + pos, n, NULL) !=
					UTF8_INVALID,
				"round %zu: valid text rejected", round);
			pos += n;
			held = utf8_pending(&val);
			REQUIRE(held <= pos - sent, "holds back too much");
			upto = pos - held;
			/* What is released now must be whole code points. */
			REQUIRE(utf8_valid(text + sent, upto - sent),
				"round %zu: released a partial code point at %zu",
				round, upto);
			memcpy(out + sent, text + sent, upto - sent);
			sent = upto;
		}
		ck_assert_uint_eq(sent, len);
		ck_assert(memcmp(out, text, len) == 0);
	}
}
END_TEST

/* The word-at-a-time path: every alignment, every position, every length. */
START_TEST(test_ascii_fast_path)
{
	uint8_t buf[200];
	size_t align, len, pos;

	for (align = 0; align < 16; align++) {
		for (len = 0; len <= 200; len++) {
			/* P ends exactly where its heap block ends. */
			uint8_t *base = malloc(align + len > 0 ? align + len : 1);
			uint8_t *p = base + align;
			size_t k;

			REQUIRE(base != NULL, "out of memory");

			for (k = 0; k < len; k++)
				p[k] = (uint8_t)(k * 7 % 128);
			REQUIRE(utf8_valid(p, len), "ASCII rejected, len %zu",
				len);
			for (pos = 0; pos < len; pos += 1 + pos / 16) {
				struct utf8_validator v;
				enum utf8_status st;
				size_t bad = 999;

				/* A bad byte at POS: reported exactly. */
				p[pos] = 0x80 | (uint8_t)(pos & 0x3F);
				utf8_init(&v);
				st = utf8_feed(&v, p, len, &bad);
				REQUIRE(st == UTF8_INVALID && bad == pos,
					"align %zu len %zu: tail at %zu gave "
					"%d at %zu",
					align, len, pos, st, bad);
				/* A lead byte at POS: partial at the end. */
				p[pos] = 0xC3;
				utf8_init(&v);
				st = utf8_feed(&v, p, len, &bad);
				if (pos + 1 == len)
					REQUIRE(st == UTF8_PARTIAL &&
							utf8_pending(&v) == 1,
						"len %zu: lead at end gave %d",
						len, st);
				else
					REQUIRE(st == UTF8_INVALID &&
							bad == pos + 1,
						"len %zu: lead at %zu gave %d "
						"at %zu",
						len, pos, st, bad);
				/* A valid pair at POS. */
				if (pos + 1 < len) {
					p[pos + 1] = 0xA9;
					REQUIRE(utf8_valid(p, len),
						"len %zu: pair at %zu rejected",
						len, pos);
					p[pos + 1] = (uint8_t)((pos + 1) * 7 %
							       128);
				}
				p[pos] = (uint8_t)(pos * 7 % 128);
			}
			free(base);
		}
	}
	/* All 128 ASCII values in one long run, and a high bit in byte 7. */
	for (pos = 0; pos < 200; pos++)
		buf[pos] = (uint8_t)(pos % 128);
	ck_assert(utf8_valid(buf, 200));
	memcpy(buf, "abcdefg\xFF", 8);
	ck_assert(!utf8_valid(buf, 8));
}
END_TEST

/* Several thousand seeded random strings against the reference decoder. */
START_TEST(test_random_vs_reference)
{
	uint64_t s = 0xD1B54A32D192ED03u;
	uint8_t buf[80];
	size_t round, counts[3] = {0, 0, 0};

	for (round = 0; round < 4000; round++) {
		size_t len = 0, max = 1 + rng_below(&s, sizeof(buf) - 4);
		size_t mode = round % 4;
		struct result want;

		if (mode == 0) {
			/* Random bytes, three quarters of them high. */
			for (len = 0; len < max; len++) {
				uint64_t r = rng_next(&s);

				buf[len] = (uint8_t)(r >> 8);
				if ((r & 3) != 0)
					buf[len] |= 0x80;
			}
		} else {
			/* Valid text, then maybe a damaged byte or a cut. */
			while (len + 4 <= max) {
				uint32_t cp = random_scalar(&s);

				len += enc(cp, enc_len(cp), buf + len);
			}
			if (mode == 2 && len > 0)
				buf[rng_below(&s, len)] =
					(uint8_t)(0x80 + rng_below(&s, 0x80));
			if (mode == 3 && len > 0)
				len -= rng_below(&s, len < 4 ? len : 4);
		}
		want = ref_check(buf, len);
		counts[want.status + 1]++;
		check_ways(buf, len, want, rng_next(&s), round % 8 == 0);
	}
	/* The generator reaches every outcome often. */
	ck_assert_uint_gt(counts[0], 1000); /* INVALID */
	ck_assert_uint_gt(counts[1], 500);  /* COMPLETE */
	ck_assert_uint_gt(counts[2], 300);  /* PARTIAL */
}
END_TEST

/* Every 1- and 2-byte string, and all 3-byte strings after key leads. */
START_TEST(test_exhaustive_short)
{
	static const uint8_t leads[] = {0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED,
					0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4};
	uint8_t buf[3];
	unsigned a, b, c, l;

	for (a = 0; a < 256; a++) {
		buf[0] = (uint8_t)a;
		check_quick(buf, 1, ref_check(buf, 1));
		for (b = 0; b < 256; b++) {
			buf[1] = (uint8_t)b;
			check_quick(buf, 2, ref_check(buf, 2));
		}
	}
	for (l = 0; l < sizeof(leads); l++) {
		buf[0] = leads[l];
		for (b = 0x70; b < 0xD0; b++) {
			buf[1] = (uint8_t)b;
			for (c = 0x70; c < 0xD0; c += 3) {
				buf[2] = (uint8_t)c;
				check_quick(buf, 3, ref_check(buf, 3));
			}
		}
	}
}
END_TEST

/* Build the suite. */
static Suite *utf8_suite(void)
{
	Suite *s = suite_create("utf8");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_boundaries_valid);
	tcase_add_test(tc, test_real_text);
	tcase_add_test(tc, test_reject_above_max);
	tcase_add_test(tc, test_reject_overlong_2);
	tcase_add_test(tc, test_reject_overlong_3);
	tcase_add_test(tc, test_reject_overlong_4);
	tcase_add_test(tc, test_reject_f5_ff);
	tcase_add_test(tc, test_reject_surrogates);
	tcase_add_test(tc, test_reject_lone_continuation);
	tcase_add_test(tc, test_reject_interrupted);
	tcase_add_test(tc, test_truncated_partial);
	tcase_add_test(tc, test_fail_fast_offsets);
	tcase_add_test(tc, test_sticky_failure);
	tcase_add_test(tc, test_empty_feed);
	tcase_add_test(tc, test_pending_hold_back);
	tcase_add_test(tc, test_ascii_fast_path);
	tcase_add_test(tc, test_random_vs_reference);
	tcase_add_test(tc, test_exhaustive_short);
	suite_add_tcase(s, tc);
	return s;
}

/* Run the suite; non-zero exit status on any failure. */
int main(void)
{
	SRunner *sr = srunner_create(utf8_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
