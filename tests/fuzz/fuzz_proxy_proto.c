/*
 * fuzz_proxy_proto.c - libFuzzer target for the PROXY protocol parser and
 * builders (src/proxy_proto.c).
 *
 * The input is fed whole, byte by byte (short inputs) and at split points
 * derived from the input; every way must agree on the status, the bytes
 * consumed, the error and the result; abort() on any mismatch.  The
 * parser must never consume more than it is given, nor anything after DONE.
 * A parsed address is rebuilt with both builders and parsed again: the
 * round trip must give the same addresses.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What feeding produced. */
struct outcome {
	enum proxy_proto_status status;
	size_t consumed;
	enum proxy_proto_error error;
	struct proxy_proto_result result;
};

/* Feed DATA in pieces of STEP bytes (0: whole), or at split points from
   SEED when STEP is (size_t)-1. */
static struct outcome
feed(const uint8_t *data, size_t size, size_t step, uint64_t seed)
{
	struct proxy_proto p;
	struct outcome o;
	size_t off = 0;

	memset(&o, 0, sizeof(o));
	proxy_proto_init(&p);
	o.status = PROXY_PROTO_INCOMPLETE;
	while (o.status == PROXY_PROTO_INCOMPLETE) {
		size_t n = size - off, used = 0;
		if (step == (size_t)-1) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			n = n ? 1 + (size_t)(seed % n) : 0;
		} else if (step != 0 && n > step) {
			n = step;
		}
		o.status = proxy_proto_feed(&p, data + off, n, &used);
		if (used > n)
			abort();
		if (o.status == PROXY_PROTO_INCOMPLETE && used != n)
			abort();
		off += used;
		if (off >= size)
			break;
	}
	o.consumed = off;
	if (o.status == PROXY_PROTO_ERROR)
		o.error = proxy_proto_error(&p);
	if (o.status == PROXY_PROTO_DONE) {
		size_t used = 1;
		o.result = *proxy_proto_result(&p);
		if (proxy_proto_feed(&p, data, size, &used) != PROXY_PROTO_DONE ||
		    used != 0)
			abort();
	}
	if (proxy_proto_error_text(o.error) == NULL)
		abort();
	return o;
}

/* Abort unless A and B agree. */
static void
same(const struct outcome *a, const struct outcome *b)
{
	if (a->status != b->status || a->consumed != b->consumed ||
	    a->error != b->error ||
	    memcmp(&a->result, &b->result, sizeof(a->result)) != 0)
		abort();
}

/* Rebuild a parsed address with both builders and parse it again. */
static void
round_trip(const struct proxy_proto_result *r)
{
	uint8_t buf[PROXY_PROTO_BUILD_MAX];
	const struct sockaddr *s = (const struct sockaddr *)&r->src;
	const struct sockaddr *d = (const struct sockaddr *)&r->dst;
	int n;

	if (!r->has_addr || s->sa_family != d->sa_family)
		return;
	n = proxy_proto_build_v2(buf, sizeof(buf), s, d);
	if (n <= 0)
		abort();
	struct outcome o = feed(buf, (size_t)n, 0, 0);
	if (o.status != PROXY_PROTO_DONE || o.consumed != (size_t)n ||
	    memcmp(&o.result.src, &r->src, sizeof(r->src)) != 0 ||
	    memcmp(&o.result.dst, &r->dst, sizeof(r->dst)) != 0)
		abort();
	n = proxy_proto_build_v1((char *)buf, sizeof(buf), s, d);
	if (n <= 0)
		abort();
	o = feed(buf, (size_t)n, 0, 0);
	if (o.status != PROXY_PROTO_DONE || o.consumed != (size_t)n ||
	    memcmp(&o.result.src, &r->src, sizeof(r->src)) != 0 ||
	    memcmp(&o.result.dst, &r->dst, sizeof(r->dst)) != 0)
		abort();
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole = feed(data, size, 0, 0), o;
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < size && i < 8; i++)
		seed = seed * 131 + data[i];
	if (size <= 4096) {
		o = feed(data, size, 1, 0);
		same(&whole, &o);
	}
	o = feed(data, size, 7, 0);
	same(&whole, &o);
	o = feed(data, size, (size_t)-1, seed | 1);
	same(&whole, &o);
	if (whole.status == PROXY_PROTO_DONE)
		round_trip(&whole.result);
	return 0;
}
