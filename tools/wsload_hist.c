/*
 * wsload_hist.c - the latency histogram: log-linear buckets, so a quantile
 * costs one pass over 1024 counters and its error is bounded (6.25%)
 * whatever the range (HdrHistogram's idea, much reduced).
 */
#include "wsload.h"

/* Bucket of V: V itself below 32; above, 16 buckets per power of two. */
static unsigned
hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < 32)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - 4;
	/* v >> shift is in [16, 31]: the top five bits of V */
	return shift * 16u + (unsigned)(v >> shift);
}

/* Largest value that falls in bucket I. */
static uint64_t
hist_upper(unsigned i)
{
	unsigned shift, top;

	if (i < 32)
		return i;
	shift = i / 16u - 1;
	top = i % 16u + 16u;
	return (((uint64_t)top + 1) << shift) - 1;
}

/* Count one value V (ns). */
void
wsload_hist_add(struct wsload_hist *h, uint64_t v)
{
	h->count[hist_index(v)]++;
	h->total++;
	if (v > h->max)
		h->max = v;
}

/* The value at quantile Q: the upper bound of the bucket holding it. */
uint64_t
wsload_hist_quantile(const struct wsload_hist *h, double q)
{
	uint64_t want, seen = 0;

	if (h->total == 0)
		return 0;
	want = (uint64_t)(q * (double)h->total + 0.5);
	if (want < 1)
		want = 1;
	if (want > h->total)
		want = h->total;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= want) {
			uint64_t up = hist_upper(i);
			return up < h->max ? up : h->max;
		}
	}
	return h->max;
}
