/*
 * test_proxy_proto.c - Check suite for the PROXY protocol parser and
 * builders (src/proxy_proto.c).
 *
 * Every vector is fed whole, byte by byte, split in two at every position
 * and at seeded random split points, always followed by bytes that belong
 * to the client (which must never be consumed); all ways must agree on the
 * status, the bytes consumed, the error and the addresses.  One test per
 * rejection rule; the builders are checked byte-exactly and round-tripped
 * through the parser.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_proto.h"

#define V2SIG "\r\n\r\n\0\r\nQUIT\n"
#define TAIL "GET / HTTP/1.1\r\n" /* what the client sends next */

/* What feeding a vector produced. */
struct outcome {
	enum proxy_proto_status status;
	size_t consumed;
	enum proxy_proto_error error;
	struct proxy_proto_result result;
};

/* Feed DATA (LEN bytes) in pieces whose ends are CUTS[0..NCUTS), then the
   rest; stop at DONE or ERROR. */
static struct outcome
feed_cuts(const uint8_t *data, size_t len, const size_t *cuts, size_t ncuts)
{
	struct proxy_proto p;
	struct outcome o;
	size_t off = 0;

	memset(&o, 0, sizeof(o));
	proxy_proto_init(&p);
	o.status = PROXY_PROTO_INCOMPLETE;
	for (size_t i = 0; i <= ncuts && o.status == PROXY_PROTO_INCOMPLETE;
	     i++) {
		size_t end = i < ncuts ? cuts[i] : len, used = 0;
		if (end < off)
			continue;
		o.status = proxy_proto_feed(&p, data + off, end - off, &used);
		ck_assert_msg(used <= end - off, "consumed more than given");
		if (o.status == PROXY_PROTO_INCOMPLETE)
			ck_assert_msg(used == end - off,
				      "INCOMPLETE but left bytes");
		off += used;
	}
	o.consumed = off;
	if (o.status == PROXY_PROTO_ERROR)
		o.error = proxy_proto_error(&p);
	if (o.status == PROXY_PROTO_DONE) {
		size_t used = 99;
		o.result = *proxy_proto_result(&p);
		/* after DONE nothing more is taken */
		ck_assert_int_eq(proxy_proto_feed(&p, data, len, &used),
				 PROXY_PROTO_DONE);
		ck_assert_uint_eq(used, 0);
	}
	return o;
}

/* Compare two outcomes field by field. */
static void
same_outcome(const struct outcome *a, const struct outcome *b,
	     const char *how)
{
	ck_assert_msg(a->status == b->status, "%s: status %d vs %d", how,
		      a->status, b->status);
	ck_assert_msg(a->consumed == b->consumed, "%s: consumed %zu vs %zu",
		      how, a->consumed, b->consumed);
	ck_assert_msg(a->error == b->error, "%s: error %d vs %d", how,
		      a->error, b->error);
	ck_assert_msg(memcmp(&a->result, &b->result, sizeof(a->result)) == 0,
		      "%s: results differ", how);
}

/* Feed every way; all must agree; return the whole-feed outcome. */
static struct outcome
feed_all_ways(const uint8_t *data, size_t len)
{
	struct outcome whole = feed_cuts(data, len, NULL, 0), o;
	size_t *cuts = malloc((len + 1) * sizeof(*cuts));
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ len;

	ck_assert_ptr_nonnull(cuts);
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	o = feed_cuts(data, len, cuts, len);
	same_outcome(&whole, &o, "byte by byte");
	for (size_t at = 0; at <= len; at++) {
		o = feed_cuts(data, len, &at, 1);
		same_outcome(&whole, &o, "split in two");
	}
	for (int round = 0; round < 50; round++) {
		size_t n = 0, pos = 0;
		while (pos < len && n < len) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			pos += 1 + (size_t)(seed % 9);
			cuts[n++] = pos < len ? pos : len;
		}
		o = feed_cuts(data, len, cuts, n);
		same_outcome(&whole, &o, "random splits");
	}
	free(cuts);
	return whole;
}

/* A string vector (may hold NULs: LEN given). */
static struct outcome
feed_vec(const char *s, size_t len)
{
	return feed_all_ways((const uint8_t *)s, len);
}

#define FEED(lit) feed_vec((lit), sizeof(lit) - 1)

/* Header H (LEN bytes) followed by TAIL, fed every way. */
static struct outcome
feed_tail(const char *h, size_t len)
{
	char buf[512];

	ck_assert_uint_le(len + sizeof(TAIL) - 1, sizeof(buf));
	memcpy(buf, h, len);
	memcpy(buf + len, TAIL, sizeof(TAIL) - 1);
	return feed_vec(buf, len + sizeof(TAIL) - 1);
}

#define FEEDT(h) feed_tail((h), sizeof(h) - 1)

/* IPv4 SS is A:PORT. */
static void
is_v4(const struct sockaddr_storage *ss, const char *a, unsigned port)
{
	const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
	char buf[INET_ADDRSTRLEN];

	ck_assert_int_eq(ss->ss_family, AF_INET);
	inet_ntop(AF_INET, &s->sin_addr, buf, sizeof(buf));
	ck_assert_str_eq(buf, a);
	ck_assert_uint_eq(ntohs(s->sin_port), port);
}

/* IPv6 SS is A:PORT. */
static void
is_v6(const struct sockaddr_storage *ss, const char *a, unsigned port)
{
	const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
	char buf[INET6_ADDRSTRLEN];

	ck_assert_int_eq(ss->ss_family, AF_INET6);
	inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof(buf));
	ck_assert_str_eq(buf, a);
	ck_assert_uint_eq(ntohs(s->sin6_port), port);
}

/* Expect an ERROR with E. */
static void
is_error(struct outcome o, enum proxy_proto_error e)
{
	ck_assert_int_eq(o.status, PROXY_PROTO_ERROR);
	ck_assert_msg(o.error == e, "error %d (%s), want %d (%s)", o.error,
		      proxy_proto_error_text(o.error), e,
		      proxy_proto_error_text(e));
}

/* ---- v1 ---------------------------------------------------------------- */

START_TEST(test_v1_tcp4)
{
	static const char h[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
	struct outcome o = FEEDT(h);

	ck_assert_int_eq(o.status, PROXY_PROTO_DONE);
	ck_assert_uint_eq(o.consumed, sizeof(h) - 1);
	ck_assert_int_eq(o.result.version, 1);
	ck_assert(o.result.has_addr && !o.result.local);
	is_v4(&o.result.src, "192.0.2.1", 56324);
	is_v4(&o.result.dst, "198.51.100.2", 443);
}
END_TEST

START_TEST(test_v1_tcp6)
{
	static const char h[] =
		"PROXY TCP6 2001:db8::1 2001:db8::2:1 65535 0\r\n";
	struct outcome o = FEEDT(h);

	ck_assert_int_eq(o.status, PROXY_PROTO_DONE);
	ck_assert_uint_eq(o.consumed, sizeof(h) - 1);
	is_v6(&o.result.src, "2001:db8::1", 65535);
	is_v6(&o.result.dst, "2001:db8::2:1", 0);
}
END_TEST

START_TEST(test_v1_unknown)
{
	static const char a[] = "PROXY UNKNOWN\r\n";
	static const char b[] =
		"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
	struct outcome o = FEEDT(a);

	ck_assert_int_eq(o.status, PROXY_PROTO_DONE);
	ck_assert_uint_eq(o.consumed, sizeof(a) - 1);
	ck_assert(!o.result.has_addr);
	o = FEEDT(b);
	ck_assert_int_eq(o.status, PROXY_PROTO_DONE);
	ck_assert_uint_eq(o.consumed, sizeof(b) - 1);
	ck_assert(!o.result.has_addr);
}
END_TEST

START_TEST(test_v1_longest_line)
{
	/* 107 bytes: the longest line the spec allows */
	static const char h[] =
		"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	struct outcome o;

	ck_assert_uint_eq(sizeof(h) - 1, 104);
	o = FEEDT(h);
	ck_assert_int_eq(o.status, PROXY_PROTO_DONE);
	ck_assert_uint_eq(o.consumed, sizeof(h) - 1);
}
END_TEST

START_TEST(test_v1_incomplete)
{
	struct outcome o = FEED("PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r");

	ck_assert_int_eq(o.status, PROXY_PROTO_INCOMPLETE);
	ck_assert_uint_eq(o.consumed, 38);
}
END_TEST

START_TEST(test_v1_too_long)
{
	char buf[200];

	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "PROXY UNKNOWN ", 14);
	is_error(feed_vec(buf, sizeof(buf)), PROXY_ERR_V1_TOO_LONG);
	ck_assert_uint_eq(feed_vec(buf, sizeof(buf)).consumed, 108);
}
END_TEST

START_TEST(test_v1_bad_signature)
{
	struct outcome o = FEED("PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n");

	is_error(o, PROXY_ERR_SIGNATURE);
	ck_assert_uint_eq(o.consumed, 5); /* fails at the offending byte */
	is_error(FEED("GET / HTTP/1.1\r\n"), PROXY_ERR_SIGNATURE);
	is_error(FEED("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
		 PROXY_ERR_SIGNATURE);
	is_error(FEED("PROXY\r\n"), PROXY_ERR_SIGNATURE);
}
END_TEST

START_TEST(test_v1_syntax)
{
	is_error(FEED("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), PROXY_ERR_V1_SYNTAX);
	is_error(FEED("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
		 PROXY_ERR_V1_SYNTAX);
	is_error(FEED("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"),
		 PROXY_ERR_V1_SYNTAX);
	is_error(FEED("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), PROXY_ERR_V1_SYNTAX);
	is_error(FEED("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"),
		 PROXY_ERR_V1_SYNTAX);
	is_error(FEED("PROXY \r\n"), PROXY_ERR_V1_SYNTAX);
	is_error(FEED("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n"),
		 PROXY_ERR_V1_SYNTAX);
	is_error(FEED("PROXY UNKNOWNX\r\n"), PROXY_ERR_V1_SYNTAX);
}
END_TEST

START_TEST(test_v1_addresses)
{
	is_error(FEED("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"),
		 PROXY_ERR_V1_ADDRESS);
	is_error(FEED("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"), PROXY_ERR_V1_ADDRESS);
	is_error(FEED("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"), PROXY_ERR_V1_ADDRESS);
	is_error(FEED("PROXY TCP6 ::1 ::g 1 2\r\n"), PROXY_ERR_V1_ADDRESS);
}
END_TEST

START_TEST(test_v1_ports)
{
	is_error(FEED("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"),
		 PROXY_ERR_V1_PORT);
	is_error(FEED("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), PROXY_ERR_V1_PORT);
	is_error(FEED("PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n"), PROXY_ERR_V1_PORT);
	is_error(FEED("PROXY TCP4 1.2.3.4 5.6.7.8 1 123456\r\n"),
		 PROXY_ERR_V1_PORT);
}
END_TEST

/* ---- v2 ---------------------------------------------------------------- */

START_TEST(test_v2_tcp4)
{
	static const char h[] = V2SIG "\x21\x11\x00\x0c"
				      "\xc0\x00\x02\x01" "\xc6\x33\x64\x02"
				      "\xdc\x04" "\x01\xbb";
	struct outcome o = FEEDT(h);

	ck_assert_int_eq(o.status, PROXY_PROTO_DONE);
	ck_assert_uint_eq(o.consumed, 28);
	ck_assert_int_eq(o.result.version, 2);
	ck_assert(o.result.has_addr && !o.result.local);
	is_v4(&o.result.src, "192.0.2.1", 56324);
	is_v4(&o.result.dst, "198.51.100.2", 443);
}
END_TEST

START_TEST(test_v2_tcp6_with_tlvs)
{
	static const char h[] =
		V2SIG "\x21\x21\x00\x32"
		"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
		"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
		"\x17\x70" "\x00\x50"
		"\x04\x00\x03" "abc"          /* PP2_TYPE_NOOP */
		"\x20\x00\x05" "\x01\x00\x00\x00\x00"; /* PP2_TYPE_SSL */
	struct outcome o = FEEDT(h);

	ck_assert_int_eq(o.status, PROXY_PROTO_DONE);
	ck_assert_uint_eq(o.consumed, 16 + 50);
	is_v6(&o.result.src, "2001:db8::1", 6000);
	is_v6(&o.result.dst, "2001:db8::2", 80);
}
END_TEST

START_TEST(test_v2_local_and_unspec)
{
	/* LOCAL: addresses (if any) ignored */
	static const char local[] = V2SIG "\x20\x00\x00\x00";
	static const char local_addr[] = V2SIG "\x20\x11\x00\x0c"
					       "\x01\x02\x03\x04\x05\x06\x07\x08"
					       "\x00\x01\x00\x02";
	static const char unspec[] = V2SIG "\x21\x00\x00\x04" "abcd";
	struct outcome o = FEEDT(local);

	ck_assert_int_eq(o.status, PROXY_PROTO_DONE);
	ck_assert_uint_eq(o.consumed, 16);
	ck_assert(o.result.local && !o.result.has_addr);
	o = FEEDT(local_addr);
	ck_assert_int_eq(o.status, PROXY_PROTO_DONE);
	ck_assert_uint_eq(o.consumed, 28);
	ck_assert(o.result.local && !o.result.has_addr);
	o = FEEDT(unspec);
	ck_assert_int_eq(o.status, PROXY_PROTO_DONE);
	ck_assert_uint_eq(o.consumed, 20);
	ck_assert(!o.result.local && !o.result.has_addr);
}
END_TEST

START_TEST(test_v2_unix)
{
	uint8_t h[16 + 216 + 16];

	memcpy(h, V2SIG, 12);
	h[12] = 0x21;
	h[13] = 0x31;
	h[14] = 0;
	h[15] = 216;
	memset(h + 16, 'u', 216);
	memcpy(h + 16 + 216, TAIL, 16);
	struct outcome o = feed_all_ways(h, sizeof(h));
	ck_assert_int_eq(o.status, PROXY_PROTO_DONE);
	ck_assert_uint_eq(o.consumed, 16 + 216);
	ck_assert(!o.result.has_addr);
}
END_TEST

START_TEST(test_v2_long_tlvs_skipped)
{
	size_t tlv = 60000, len = 12 + tlv;
	uint8_t *h = malloc(16 + len + 16);

	ck_assert_ptr_nonnull(h);
	memcpy(h, V2SIG, 12);
	h[12] = 0x21;
	h[13] = 0x11;
	h[14] = (uint8_t)(len >> 8);
	h[15] = (uint8_t)len;
	memcpy(h + 16, "\x0a\x00\x00\x01\x0a\x00\x00\x02\x00\x07\x00\x08", 12);
	memset(h + 28, 0x55, tlv);
	memcpy(h + 16 + len, TAIL, 16);
	/* whole and byte by byte only: 60 KB split everywhere is slow */
	struct outcome a = feed_cuts(h, 16 + len + 16, NULL, 0);
	size_t cut = 20;
	struct outcome b = feed_cuts(h, 16 + len + 16, &cut, 1);
	same_outcome(&a, &b, "split");
	ck_assert_int_eq(a.status, PROXY_PROTO_DONE);
	ck_assert_uint_eq(a.consumed, 16 + len);
	is_v4(&a.result.src, "10.0.0.1", 7);
	free(h);
}
END_TEST

START_TEST(test_v2_bad_signature)
{
	struct outcome o = FEED("\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x00");

	is_error(o, PROXY_ERR_SIGNATURE);
	ck_assert_uint_eq(o.consumed, 11);
	is_error(FEED("\x00PROXY"), PROXY_ERR_SIGNATURE);
}
END_TEST

START_TEST(test_v2_version_command)
{
	is_error(FEED(V2SIG "\x11\x11\x00\x0c"), PROXY_ERR_V2_VERSION);
	is_error(FEED(V2SIG "\x31\x11\x00\x0c"), PROXY_ERR_V2_VERSION);
	is_error(FEED(V2SIG "\x22\x11\x00\x0c"), PROXY_ERR_V2_VERSION);
	ck_assert_uint_eq(FEED(V2SIG "\x22\x11\x00\x0c").consumed, 13);
	ck_assert_uint_eq(FEED(V2SIG "\x21\x12\x00\x0c").consumed, 14);
	ck_assert_uint_eq(FEED(V2SIG "\x21\x11\x00\x0b").consumed, 16);
}
END_TEST

START_TEST(test_v2_family)
{
	is_error(FEED(V2SIG "\x21\x12\x00\x0c"), PROXY_ERR_V2_FAMILY); /* UDP */
	is_error(FEED(V2SIG "\x21\x22\x00\x24"), PROXY_ERR_V2_FAMILY);
	is_error(FEED(V2SIG "\x21\x10\x00\x0c"), PROXY_ERR_V2_FAMILY);
	is_error(FEED(V2SIG "\x21\x41\x00\x0c"), PROXY_ERR_V2_FAMILY);
}
END_TEST

START_TEST(test_v2_length)
{
	is_error(FEED(V2SIG "\x21\x11\x00\x0b"), PROXY_ERR_V2_LENGTH);
	is_error(FEED(V2SIG "\x21\x21\x00\x23"), PROXY_ERR_V2_LENGTH);
	is_error(FEED(V2SIG "\x21\x31\x00\xd7"), PROXY_ERR_V2_LENGTH);
}
END_TEST

START_TEST(test_v2_incomplete)
{
	struct outcome o = FEED(V2SIG "\x21\x11\x00\x0c\x01\x02");

	ck_assert_int_eq(o.status, PROXY_PROTO_INCOMPLETE);
	ck_assert_uint_eq(o.consumed, 18);
	o = FEED("\r\n\r\n");
	ck_assert_int_eq(o.status, PROXY_PROTO_INCOMPLETE);
}
END_TEST

START_TEST(test_empty_feed)
{
	struct proxy_proto p;
	size_t used = 7;

	proxy_proto_init(&p);
	ck_assert_int_eq(proxy_proto_feed(&p, (const uint8_t *)"", 0, &used),
			 PROXY_PROTO_INCOMPLETE);
	ck_assert_uint_eq(used, 0);
}
END_TEST

/* ---- builders ---------------------------------------------------------- */

/* Fill an IPv4 sockaddr. */
static struct sockaddr_storage
v4(const char *a, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin_family = AF_INET;
	s->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, a, &s->sin_addr);
	return ss;
}

/* Fill an IPv6 sockaddr. */
static struct sockaddr_storage
v6(const char *a, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons((uint16_t)port);
	inet_pton(AF_INET6, a, &s->sin6_addr);
	return ss;
}

START_TEST(test_build_v1)
{
	struct sockaddr_storage a = v4("127.0.0.2", 40000), b = v4("10.0.0.1", 80);
	struct sockaddr_storage c = v6("2001:db8::1", 1), d = v6("::1", 65535);
	char buf[PROXY_PROTO_BUILD_MAX];
	int n;

	n = proxy_proto_build_v1(buf, sizeof(buf), (struct sockaddr *)&a,
				 (struct sockaddr *)&b);
	ck_assert_int_eq(n, (int)strlen("PROXY TCP4 127.0.0.2 10.0.0.1 40000 80\r\n"));
	ck_assert_str_eq(buf, "PROXY TCP4 127.0.0.2 10.0.0.1 40000 80\r\n");
	proxy_proto_build_v1(buf, sizeof(buf), (struct sockaddr *)&c,
			     (struct sockaddr *)&d);
	ck_assert_str_eq(buf, "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n");
	proxy_proto_build_v1(buf, sizeof(buf), (struct sockaddr *)&a,
			     (struct sockaddr *)&d);
	ck_assert_str_eq(buf, "PROXY TCP6 ::ffff:127.0.0.2 ::1 40000 65535\r\n");
	proxy_proto_build_v1(buf, sizeof(buf), NULL, (struct sockaddr *)&d);
	ck_assert_str_eq(buf, "PROXY UNKNOWN\r\n");
	ck_assert_int_eq(proxy_proto_build_v1(buf, 10, (struct sockaddr *)&a,
					      (struct sockaddr *)&b),
			 -1);
}
END_TEST

START_TEST(test_build_v2)
{
	struct sockaddr_storage a = v4("192.0.2.1", 56324);
	struct sockaddr_storage b = v4("198.51.100.2", 443);
	static const uint8_t want[] = V2SIG "\x21\x11\x00\x0c"
					    "\xc0\x00\x02\x01" "\xc6\x33\x64\x02"
					    "\xdc\x04" "\x01\xbb";
	uint8_t buf[PROXY_PROTO_BUILD_MAX];
	int n = proxy_proto_build_v2(buf, sizeof(buf), (struct sockaddr *)&a,
				     (struct sockaddr *)&b);

	ck_assert_int_eq(n, 28);
	ck_assert(memcmp(buf, want, 28) == 0);
	n = proxy_proto_build_v2(buf, sizeof(buf), NULL, NULL);
	ck_assert_int_eq(n, 16);
	ck_assert_uint_eq(buf[13], 0);
	ck_assert_int_eq(proxy_proto_build_v2(buf, 20, (struct sockaddr *)&a,
					      (struct sockaddr *)&b),
			 -1);
}
END_TEST

START_TEST(test_build_round_trip)
{
	struct sockaddr_storage pairs[][2] = {
		{v4("127.0.0.2", 1), v4("127.0.0.1", 8080)},
		{v6("2001:db8::7", 4711), v6("fe80::1", 443)},
		{v4("203.0.113.9", 0), v6("::1", 9)},
	};

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		uint8_t buf[PROXY_PROTO_BUILD_MAX + 16];
		for (int v = 1; v <= 2; v++) {
			int n = v == 1 ? proxy_proto_build_v1(
						 (char *)buf, sizeof(buf),
						 (struct sockaddr *)&pairs[i][0],
						 (struct sockaddr *)&pairs[i][1])
				       : proxy_proto_build_v2(
						 buf, sizeof(buf),
						 (struct sockaddr *)&pairs[i][0],
						 (struct sockaddr *)&pairs[i][1]);
			ck_assert_int_gt(n, 0);
			memcpy(buf + n, TAIL, 16);
			struct outcome o = feed_all_ways(buf, (size_t)n + 16);
			ck_assert_int_eq(o.status, PROXY_PROTO_DONE);
			ck_assert_uint_eq(o.consumed, (size_t)n);
			ck_assert_int_eq(o.result.version, v);
			ck_assert(o.result.has_addr);
			if (i < 2) {
				ck_assert(memcmp(&o.result.src, &pairs[i][0],
						 sizeof(o.result.src)) == 0);
				ck_assert(memcmp(&o.result.dst, &pairs[i][1],
						 sizeof(o.result.dst)) == 0);
			} else {
				/* a mixed pair goes as IPv6 (v4-mapped) */
				is_v6(&o.result.src, "::ffff:203.0.113.9", 0);
				is_v6(&o.result.dst, "::1", 9);
			}
		}
	}
}
END_TEST

/* The suite. */
static Suite *
proxy_proto_suite(void)
{
	Suite *s = suite_create("proxy_proto");
	TCase *tc = tcase_create("proxy_proto");

	tcase_add_test(tc, test_v1_tcp4);
	tcase_add_test(tc, test_v1_tcp6);
	tcase_add_test(tc, test_v1_unknown);
	tcase_add_test(tc, test_v1_longest_line);
	tcase_add_test(tc, test_v1_incomplete);
	tcase_add_test(tc, test_v1_too_long);
	tcase_add_test(tc, test_v1_bad_signature);
	tcase_add_test(tc, test_v1_syntax);
	tcase_add_test(tc, test_v1_addresses);
	tcase_add_test(tc, test_v1_ports);
	tcase_add_test(tc, test_v2_tcp4);
	tcase_add_test(tc, test_v2_tcp6_with_tlvs);
	tcase_add_test(tc, test_v2_local_and_unspec);
	tcase_add_test(tc, test_v2_unix);
	tcase_add_test(tc, test_v2_long_tlvs_skipped);
	tcase_add_test(tc, test_v2_bad_signature);
	tcase_add_test(tc, test_v2_version_command);
	tcase_add_test(tc, test_v2_family);
	tcase_add_test(tc, test_v2_length);
	tcase_add_test(tc, test_v2_incomplete);
	tcase_add_test(tc, test_empty_feed);
	tcase_add_test(tc, test_build_v1);
	tcase_add_test(tc, test_build_v2);
	tcase_add_test(tc, test_build_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

/* Run the suite (TAP via CK_TAP_LOG_FILE_NAME). */
int
main(void)
{
	SRunner *sr = srunner_create(proxy_proto_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
