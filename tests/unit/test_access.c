/*
 * test_access.c - Check suite for the access-control building blocks:
 * netaddr.c (networks, rules, IPv4-mapped addresses), access.c (Origin
 * normalisation and look-alikes, X-Forwarded-For / Forwarded walking, token
 * carriers, log redaction), token_file.c (both formats, digests) and
 * ip_limit.c (counts, token buckets, the bound on the table).
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "ip_limit.h"
#include "netaddr.h"
#include "token_file.h"

/* An address from text (hostport form). */
static struct sockaddr_storage
addr(const char *s)
{
	struct sockaddr_storage ss;

	ck_assert_msg(netaddr_parse_hostport(s, strlen(s), &ss) == 0,
		      "cannot parse %s", s);
	return ss;
}

/* SS formatted. */
static const char *
fmt(const struct sockaddr_storage *ss)
{
	static char buf[NETADDR_STRLEN];

	netaddr_format((const struct sockaddr *)ss, buf, sizeof(buf));
	return buf;
}

/* ---- netaddr ------------------------------------------------------------ */

START_TEST(test_net_parse_and_contain)
{
	struct netaddr_net n;
	struct sockaddr_storage a;

	ck_assert_int_eq(netaddr_parse_net("10.0.0.0/8", &n), 0);
	a = addr("10.255.1.2");
	ck_assert(netaddr_net_contains(&n, (struct sockaddr *)&a));
	a = addr("11.0.0.0");
	ck_assert(!netaddr_net_contains(&n, (struct sockaddr *)&a));
	ck_assert_int_eq(netaddr_parse_net("192.0.2.7", &n), 0);
	ck_assert_uint_eq(n.prefix, 32);
	ck_assert_int_eq(netaddr_parse_net("::1/128", &n), 0);
	a = addr("[::1]:5");
	ck_assert(netaddr_net_contains(&n, (struct sockaddr *)&a));
	a = addr("127.0.0.1");
	ck_assert(!netaddr_net_contains(&n, (struct sockaddr *)&a));
	ck_assert_int_eq(netaddr_parse_net("0.0.0.0/0", &n), 0);
	a = addr("203.0.113.1");
	ck_assert(netaddr_net_contains(&n, (struct sockaddr *)&a));
	ck_assert_int_eq(netaddr_parse_net("172.16.0.0/12", &n), 0);
	a = addr("172.31.255.255");
	ck_assert(netaddr_net_contains(&n, (struct sockaddr *)&a));
	a = addr("172.32.0.0");
	ck_assert(!netaddr_net_contains(&n, (struct sockaddr *)&a));
	/* rejections: host bits, bad prefix, junk */
	ck_assert_int_eq(netaddr_parse_net("10.0.0.1/8", &n), -1);
	ck_assert_int_eq(netaddr_parse_net("10.0.0.0/33", &n), -1);
	ck_assert_int_eq(netaddr_parse_net("10.0.0.0/", &n), -1);
	ck_assert_int_eq(netaddr_parse_net("10.0.0/8", &n), -1);
	ck_assert_int_eq(netaddr_parse_net("::/129", &n), -1);
	ck_assert_int_eq(netaddr_parse_net("example.com/8", &n), -1);
}
END_TEST

START_TEST(test_v4_mapped_is_v4)
{
	struct netaddr_net n;
	struct netaddr_rule r;
	struct sockaddr_storage a;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a;

	/* ::ffff:169.254.169.254 as a raw AF_INET6 sockaddr */
	memset(&a, 0, sizeof(a));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(80);
	inet_pton(AF_INET6, "::ffff:169.254.169.254", &s6->sin6_addr);
	ck_assert_int_eq(netaddr_parse_net("169.254.0.0/16", &n), 0);
	ck_assert(netaddr_net_contains(&n, (struct sockaddr *)&a));
	ck_assert_int_eq(netaddr_parse_rule("127.0.0.0/8:1-65535", &r), 0);
	ck_assert(!netaddr_rules_allow(&r, 1, (struct sockaddr *)&a));
	netaddr_unmap(&a);
	ck_assert_int_eq(a.ss_family, AF_INET);
	ck_assert_str_eq(fmt(&a), "169.254.169.254:80");
	/* written the IPv6 way in the config, it is still IPv4 */
	ck_assert_int_eq(netaddr_parse_net("::ffff:10.0.0.0/104", &n), 0);
	ck_assert_int_eq(n.family, AF_INET);
	ck_assert_uint_eq(n.prefix, 8);
}
END_TEST

START_TEST(test_rules)
{
	struct netaddr_rule v[3];
	struct sockaddr_storage a;

	ck_assert_int_eq(netaddr_parse_rule("127.0.0.0/8:5900-5999", &v[0]), 0);
	ck_assert_int_eq(netaddr_parse_rule("10.1.0.0/16:22", &v[1]), 0);
	ck_assert_int_eq(netaddr_parse_rule("[fd00::]/8:*", &v[2]), 0);
	a = addr("127.0.0.1:5901");
	ck_assert(netaddr_rules_allow(v, 3, (struct sockaddr *)&a));
	a = addr("127.0.0.1:6000");
	ck_assert(!netaddr_rules_allow(v, 3, (struct sockaddr *)&a));
	a = addr("10.1.9.9:22");
	ck_assert(netaddr_rules_allow(v, 3, (struct sockaddr *)&a));
	a = addr("10.2.0.1:22");
	ck_assert(!netaddr_rules_allow(v, 3, (struct sockaddr *)&a));
	a = addr("[fd12::1]:443");
	ck_assert(netaddr_rules_allow(v, 3, (struct sockaddr *)&a));
	a = addr("169.254.169.254:80");
	ck_assert(!netaddr_rules_allow(v, 3, (struct sockaddr *)&a));
	ck_assert_int_eq(netaddr_parse_rule("127.0.0.0/8", &v[0]), -1);
	ck_assert_int_eq(netaddr_parse_rule("127.0.0.0/8:0", &v[0]), -1);
	ck_assert_int_eq(netaddr_parse_rule("127.0.0.0/8:9-1", &v[0]), -1);
	ck_assert_int_eq(netaddr_parse_rule("fd00::/8:22", &v[0]), -1);
	ck_assert_int_eq(netaddr_parse_rule("127.0.0.0/8:70000", &v[0]), -1);
}
END_TEST

START_TEST(test_hostport)
{
	struct sockaddr_storage a;

	ck_assert_str_eq(fmt(&(struct sockaddr_storage){0}), "?");
	a = addr("1.2.3.4");
	ck_assert_str_eq(fmt(&a), "1.2.3.4");
	a = addr("1.2.3.4:80");
	ck_assert_str_eq(fmt(&a), "1.2.3.4:80");
	a = addr("2001:db8::1");
	ck_assert_str_eq(fmt(&a), "[2001:db8::1]");
	a = addr("[2001:db8::1]:443");
	ck_assert_str_eq(fmt(&a), "[2001:db8::1]:443");
	ck_assert_int_eq(netaddr_parse_hostport("[1.2.3.4]", 9, &a), -1);
	ck_assert_int_eq(netaddr_parse_hostport("1.2.3.4:x", 9, &a), -1);
	ck_assert_int_eq(netaddr_parse_hostport("unknown", 7, &a), -1);
	ck_assert_int_eq(netaddr_parse_hostport("", 0, &a), -1);
}
END_TEST

/* S (whole string) splits into HOST and PORT (NULL: no port). */
static void
split_is(const char *s, bool bracketed, const char *host, const char *port)
{
	struct netaddr_split sp;

	ck_assert_msg(netaddr_split_hostport(s, strlen(s), &sp) == 0, "%s", s);
	ck_assert_msg(sp.bracketed == bracketed, "%s", s);
	ck_assert_msg(sp.host_len == strlen(host) &&
			      memcmp(sp.host, host, sp.host_len) == 0,
		      "%s: host %.*s", s, (int)sp.host_len, sp.host);
	ck_assert_msg(sp.has_port == (port != NULL), "%s", s);
	if (port != NULL)
		ck_assert_msg(sp.port_len == strlen(port) &&
				      memcmp(sp.port, port, sp.port_len) == 0,
			      "%s: port %.*s", s, (int)sp.port_len, sp.port);
}

START_TEST(test_split_hostport)
{
	struct netaddr_split sp;

	split_is("1.2.3.4:80", false, "1.2.3.4", "80");
	split_is("host.example:8080", false, "host.example", "8080");
	split_is("a:b:c", false, "a:b", "c"); /* at the last colon */
	split_is("host", false, "host", NULL);
	split_is(":80", false, "", "80");
	split_is("host:", false, "host", "");
	split_is("[::1]:443", true, "::1", "443");
	split_is("[::1]", true, "::1", NULL);
	split_is("[]:80", true, "", "80");
	split_is("[::1]:", true, "::1", "");
	ck_assert_int_eq(netaddr_split_hostport("[::1", 4, &sp), -1);
	ck_assert_int_eq(netaddr_split_hostport("[::1]80", 7, &sp), -1);
	ck_assert_int_eq(netaddr_split_hostport("[::1]x:80", 9, &sp), -1);
	/* LEN bounds the search: the ']' past it is not seen */
	ck_assert_int_eq(netaddr_split_hostport("[::1]:80", 4, &sp), -1);
}
END_TEST

START_TEST(test_parse_port)
{
	uint16_t p = 7;

	ck_assert_int_eq(netaddr_parse_port("0", 1, 0, &p), 0);
	ck_assert_int_eq(p, 0);
	ck_assert_int_eq(netaddr_parse_port("65535", 5, 0, &p), 0);
	ck_assert_int_eq(p, 65535);
	ck_assert_int_eq(netaddr_parse_port("00080", 5, 0, &p), 0);
	ck_assert_int_eq(p, 80);
	ck_assert_int_eq(netaddr_parse_port("8080x", 4, 0, &p), 0); /* LEN */
	ck_assert_int_eq(p, 8080);
	ck_assert_int_eq(netaddr_parse_port("65536", 5, 0, &p), -1);
	ck_assert_int_eq(netaddr_parse_port("000080", 6, 0, &p), -1);
	ck_assert_int_eq(netaddr_parse_port("", 0, 0, &p), -1);
	ck_assert_int_eq(netaddr_parse_port("+80", 3, 0, &p), -1);
	ck_assert_int_eq(netaddr_parse_port("8 0", 3, 0, &p), -1);
	/* NONZERO: config ports */
	ck_assert_int_eq(netaddr_parse_port("0", 1, NETADDR_PORT_NONZERO, &p),
			 -1);
	ck_assert_int_eq(netaddr_parse_port("00", 2, NETADDR_PORT_NONZERO, &p),
			 -1);
	ck_assert_int_eq(netaddr_parse_port("1", 1, NETADDR_PORT_NONZERO, &p),
			 0);
	/* CANONICAL: PROXY v1 ports */
	ck_assert_int_eq(
		netaddr_parse_port("0", 1, NETADDR_PORT_CANONICAL, &p), 0);
	ck_assert_int_eq(
		netaddr_parse_port("080", 3, NETADDR_PORT_CANONICAL, &p), -1);
	ck_assert_int_eq(
		netaddr_parse_port("00", 2, NETADDR_PORT_CANONICAL, &p), -1);
}
END_TEST

START_TEST(test_parse_ip_family_and_listen)
{
	struct sockaddr_storage a;
	socklen_t len = 0;

	/* as written: a mapped address stays IPv6 (netaddr_parse_ip unmaps) */
	ck_assert_int_eq(netaddr_parse_ip_family(AF_INET6, "::ffff:1.2.3.4",
						 14, &a),
			 0);
	ck_assert_int_eq(a.ss_family, AF_INET6);
	ck_assert_int_eq(netaddr_parse_ip("::ffff:1.2.3.4", 14, &a), 0);
	ck_assert_int_eq(a.ss_family, AF_INET);
	ck_assert_int_eq(netaddr_parse_ip_family(AF_INET, "::1", 3, &a), -1);
	ck_assert_int_eq(netaddr_parse_ip_family(AF_INET6, "1.2.3.4", 7, &a),
			 -1);
	ck_assert_int_eq(netaddr_parse_ip_family(AF_INET, "", 0, &a), -1);

	ck_assert_int_eq(netaddr_parse_listen("127.0.0.1:8080", &a, &len), 0);
	ck_assert_str_eq(fmt(&a), "127.0.0.1:8080");
	ck_assert_int_eq(len, sizeof(struct sockaddr_in));
	ck_assert_int_eq(netaddr_parse_listen("*:1", &a, &len), 0);
	ck_assert_str_eq(fmt(&a), "0.0.0.0:1");
	ck_assert_int_eq(netaddr_parse_listen(":1", &a, &len), 0);
	ck_assert_str_eq(fmt(&a), "0.0.0.0:1");
	ck_assert_int_eq(netaddr_parse_listen("[::ffff:1.2.3.4]:9", &a, &len),
			 0);
	ck_assert_int_eq(a.ss_family, AF_INET6);
	ck_assert_int_eq(len, sizeof(struct sockaddr_in6));
	ck_assert_int_eq(netaddr_parse_listen("127.0.0.1:0", &a, &len), -1);
	ck_assert_int_eq(netaddr_parse_listen("127.0.0.1", &a, &len), -1);
	ck_assert_int_eq(netaddr_parse_listen("[::1]", &a, &len), -1);
	ck_assert_int_eq(netaddr_parse_listen("[1.2.3.4]:80", &a, &len), -1);
	ck_assert_int_eq(netaddr_parse_listen("::1:80", &a, &len), -1);
	ck_assert_int_eq(netaddr_parse_listen("localhost:80", &a, &len), -1);
	ck_assert_int_eq(netaddr_parse_listen("**:80", &a, &len), -1);
}
END_TEST

/* ---- Origin --------------------------------------------------------------- */

/* S normalises to WANT (NULL: refused). */
static void
origin_is(const char *s, const char *want)
{
	char out[ACCESS_ORIGIN_MAX];
	int rc = access_origin_normalize(s, strlen(s), out, sizeof(out));

	if (want == NULL) {
		ck_assert_msg(rc == -1, "%s accepted as %s", s, out);
		return;
	}
	ck_assert_msg(rc == 0, "%s refused", s);
	ck_assert_str_eq(out, want);
}

START_TEST(test_origin_normalize)
{
	origin_is("https://app.example.com", "https://app.example.com");
	origin_is("HTTPS://App.Example.COM:443", "https://app.example.com");
	origin_is("http://localhost:3000", "http://localhost:3000");
	origin_is("http://localhost:80", "http://localhost");
	origin_is("http://localhost:0080", "http://localhost");
	origin_is("https://x:80", "https://x:80");
	origin_is("http://[::1]:8080", "http://[::1]:8080");
	origin_is("http://[0:0::1]", "http://[::1]");
	origin_is("null", NULL);
	origin_is("https://app.example.com/", NULL);
	origin_is("https://app.example.com/path", NULL);
	origin_is("https://user@app.example.com", NULL);
	origin_is("https://", NULL);
	origin_is("https://a:", NULL);
	origin_is("https://a:0", NULL);
	origin_is("https://a:65536", NULL);
	origin_is("app.example.com", NULL);
	origin_is("https://a b", NULL);
	origin_is("https://[::g]", NULL);
}
END_TEST

START_TEST(test_origin_lookalikes_differ)
{
	static const char *const bad[] = {
		"https://app.example.com.evil.net", "https://evilapp.example.com",
		"http://app.example.com", "https://app.example.com:8443",
		"wss://app.example.com"};
	char want[ACCESS_ORIGIN_MAX], got[ACCESS_ORIGIN_MAX];

	ck_assert_int_eq(access_origin_normalize("https://app.example.com", 23,
						 want, sizeof(want)),
			 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(access_origin_normalize(bad[i], strlen(bad[i]),
							 got, sizeof(got)),
				 0);
		ck_assert_str_ne(got, want);
	}
}
END_TEST

/* ---- X-Forwarded-For / Forwarded ------------------------------------------- */

/* The client for header values V[0..N) of KIND from PEER. */
static const char *
walk(enum access_fwd_header kind, const char *const *v, size_t n,
     const char *peer)
{
	struct netaddr_net t[2];
	struct access_str vals[4];
	struct sockaddr_storage p = addr(peer), out;

	ck_assert_int_eq(netaddr_parse_net("127.0.0.0/8", &t[0]), 0);
	ck_assert_int_eq(netaddr_parse_net("10.0.0.0/8", &t[1]), 0);
	for (size_t i = 0; i < n; i++) {
		vals[i].p = v[i];
		vals[i].len = strlen(v[i]);
	}
	access_forwarded_client(kind, vals, n, t, 2, &p, &out);
	return fmt(&out);
}

#define XFF(peer, ...)                                                         \
	walk(ACCESS_FWD_XFF, (const char *const[]){__VA_ARGS__},              \
	     sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *), peer)
#define FWD(peer, ...)                                                         \
	walk(ACCESS_FWD_FORWARDED, (const char *const[]){__VA_ARGS__},        \
	     sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *), peer)

START_TEST(test_xff_walk)
{
	ck_assert_str_eq(XFF("127.0.0.1:9", "198.51.100.7"), "198.51.100.7");
	/* the right-most untrusted one; spoofed entries to its left lose */
	ck_assert_str_eq(XFF("127.0.0.1:9", "6.6.6.6, 198.51.100.7, 10.0.0.2"),
			 "198.51.100.7");
	/* across several fields, in order */
	ck_assert_str_eq(XFF("127.0.0.1:9", "6.6.6.6, 198.51.100.7",
			     "10.0.0.3"),
			 "198.51.100.7");
	/* all trusted: the left-most */
	ck_assert_str_eq(XFF("127.0.0.1:9", "10.0.0.5, 10.0.0.6"), "10.0.0.5");
	/* garbage: the hop that added it */
	ck_assert_str_eq(XFF("127.0.0.1:9", "198.51.100.7, junk, 10.0.0.4"),
			 "10.0.0.4");
	ck_assert_str_eq(XFF("127.0.0.1:9", "junk"), "127.0.0.1:9");
	ck_assert_str_eq(XFF("127.0.0.1:9", " , ,198.51.100.8:1234 ,"),
			 "198.51.100.8:1234");
	ck_assert_str_eq(XFF("127.0.0.1:9", "[2001:db8::9]:80"),
			 "[2001:db8::9]:80");
}
END_TEST

START_TEST(test_forwarded_walk)
{
	ck_assert_str_eq(FWD("127.0.0.1:9", "for=192.0.2.60;proto=http"),
			 "192.0.2.60");
	ck_assert_str_eq(FWD("127.0.0.1:9",
			     "for=\"[2001:db8:cafe::17]:4711\", for=10.0.0.1"),
			 "[2001:db8:cafe::17]:4711");
	ck_assert_str_eq(FWD("127.0.0.1:9", "For=\"192.0.2.43:47011\""),
			 "192.0.2.43:47011");
	/* a quoted comma does not split the element */
	ck_assert_str_eq(FWD("127.0.0.1:9",
			     "by=\"a,b\";for=192.0.2.1, for=10.0.0.1"),
			 "192.0.2.1");
	ck_assert_str_eq(FWD("127.0.0.1:9", "for=unknown, for=10.0.0.7"),
			 "10.0.0.7");
	ck_assert_str_eq(FWD("127.0.0.1:9", "for=_hidden"), "127.0.0.1:9");
	ck_assert_str_eq(FWD("127.0.0.1:9", "proto=https"), "127.0.0.1:9");
}
END_TEST

/* ---- token carriers, redaction ---------------------------------------------- */

START_TEST(test_query_param)
{
	char out[32];

	ck_assert_int_eq(access_query_param("token=abc", 9, "token", out,
					    sizeof(out)),
			 3);
	ck_assert_str_eq(out, "abc");
	ck_assert_int_eq(access_query_param("a=1&token=a%2Db&c", 17, "token",
					    out, sizeof(out)),
			 3);
	ck_assert_str_eq(out, "a-b");
	ck_assert_int_eq(access_query_param("xtoken=1", 8, "token", out,
					    sizeof(out)),
			 -1);
	ck_assert_int_eq(access_query_param("", 0, "token", out, sizeof(out)),
			 -1);
	ck_assert_int_eq(access_query_param("token=", 6, "token", out,
					    sizeof(out)),
			 -2);
	ck_assert_int_eq(access_query_param("token", 5, "token", out,
					    sizeof(out)),
			 -2);
	ck_assert_int_eq(access_query_param("token=%2", 8, "token", out,
					    sizeof(out)),
			 -2);
	ck_assert_int_eq(access_query_param("token=a%20b", 11, "token", out,
					    sizeof(out)),
			 -2);
	ck_assert_int_eq(access_query_param("token=0123456789", 16, "token",
					    out, 8),
			 -2);
}
END_TEST

START_TEST(test_cookie_and_bearer)
{
	char out[32];
	const char *c = "theme=dark; wsgate_token=\"t0k\";x=y";

	ck_assert_int_eq(access_cookie(c, strlen(c), "wsgate_token", out,
				       sizeof(out)),
			 3);
	ck_assert_str_eq(out, "t0k");
	ck_assert_int_eq(access_cookie(c, strlen(c), "token", out,
				       sizeof(out)),
			 -1);
	ck_assert_int_eq(access_bearer("Bearer abc.def", 14, out, sizeof(out)),
			 7);
	ck_assert_str_eq(out, "abc.def");
	ck_assert_int_eq(access_bearer("bearer   xyz  ", 14, out, sizeof(out)),
			 3);
	ck_assert_int_eq(access_bearer("Basic dXNlcg==", 14, out, sizeof(out)),
			 -1);
	ck_assert_int_eq(access_bearer("Bearer ", 7, out, sizeof(out)), -2);
	ck_assert_int_eq(access_bearer("Bearer a b", 10, out, sizeof(out)), -2);
}
END_TEST

START_TEST(test_redact)
{
	char out[128];
	const char *t = "/a?token=s3cr3t&x=1&api_key=k&Password=p&name=n";

	access_redact_target(t, strlen(t), SIZE_MAX, out, sizeof(out));
	ck_assert_str_eq(out, "/a?token=REDACTED&x=1&api_key=REDACTED&"
			      "Password=REDACTED&name=n");
	access_redact_target("/vnc/secret?y=2", 15, 5, out, sizeof(out));
	ck_assert_str_eq(out, "/vnc/REDACTED?y=2");
	access_redact_target("/plain", 6, SIZE_MAX, out, sizeof(out));
	ck_assert_str_eq(out, "/plain");
	access_redact_target("/a\x01?token=zz", 12, SIZE_MAX, out, sizeof(out));
	ck_assert_str_eq(out, "/a??token=REDACTED");
	access_redact_target("/0123456789abcdef", 17, SIZE_MAX, out, 10);
	ck_assert_str_eq(out, "/01234...");
}
END_TEST

/* ---- token files ---------------------------------------------------------- */

START_TEST(test_token_file_auth)
{
	struct token_file *tf = token_file_new("/nonexistent", TOKEN_FILE_AUTH);
	/* sha256("hashed") */
	const char *text =
		"# comment\n\n  plain-one  \r\n"
		"sha256:0e35f3f4b50c2b1ae9e3e3f4d3fe0c5e4a2a1bd4a9d2c1c0dbb2cc8e2a3fbd5c\n"
		"sha256:zz\n"
		"two words\n";

	ck_assert_ptr_nonnull(tf);
	ck_assert_uint_eq(token_file_parse(tf, text, strlen(text), "t"), 2);
	ck_assert_uint_eq(token_file_count(tf), 2);
	ck_assert(token_file_check(tf, "plain-one", 9));
	ck_assert(!token_file_check(tf, "plain-on", 8));
	ck_assert(!token_file_check(tf, "", 0));
	ck_assert(!token_file_check(tf, "sha256:zz", 9));
	/* a missing file leaves no entries (fails closed) */
	ck_assert_int_eq(token_file_refresh(tf), -1);
	ck_assert_uint_eq(token_file_count(tf), 0);
	ck_assert(!token_file_check(tf, "plain-one", 9));
	token_file_free(tf);
	token_file_free(NULL);
}
END_TEST

/* Only a regular file is a token file: a directory fails (it reads as
   empty where st_size is 0) and a FIFO fails at once (open would block). */
START_TEST(test_token_file_not_regular)
{
	char dir[] = "/tmp/wsgate-tf-XXXXXX", fifo[64];
	struct token_file *tf;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	tf = token_file_new(dir, TOKEN_FILE_AUTH);
	ck_assert_ptr_nonnull(tf);
	ck_assert_int_eq(token_file_refresh(tf), -1);
	ck_assert_uint_eq(token_file_count(tf), 0);
	token_file_free(tf);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	tf = token_file_new(fifo, TOKEN_FILE_TARGETS);
	ck_assert_ptr_nonnull(tf);
	ck_assert_int_eq(token_file_refresh(tf), -1);
	token_file_free(tf);
	unlink(fifo);
	rmdir(dir);
}
END_TEST

START_TEST(test_token_file_hash_entry)
{
	struct token_file *tf = token_file_new("/x", TOKEN_FILE_AUTH);
	/* sha256("abc") */
	const char *text = "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A3"
			   "96177A9CB410FF61F20015AD\n";

	token_file_parse(tf, text, strlen(text), "t");
	ck_assert_uint_eq(token_file_count(tf), 1);
	ck_assert(token_file_check(tf, "abc", 3));
	ck_assert(!token_file_check(tf, "abd", 3));
	token_file_free(tf);
}
END_TEST

START_TEST(test_token_file_targets)
{
	struct token_file *tf = token_file_new("/x", TOKEN_FILE_TARGETS);
	const char *text = "# websockify\n"
			   "tok1: 127.0.0.1:5900\n"
			   "tok2 :host-b.internal:5901\n"
			   "tok3: [::1]:22\n"
			   "bad1: ::1:22\n"
			   "bad2: 127.0.0.1\n"
			   "bad3: 127.0.0.1:0\n"
			   "bad4: a b:1\n";
	const char *host;
	uint16_t port;

	ck_assert_uint_eq(token_file_parse(tf, text, strlen(text), "t"), 4);
	ck_assert_uint_eq(token_file_count(tf), 3);
	ck_assert(token_file_lookup(tf, "tok1", 4, &host, &port));
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_uint_eq(port, 5900);
	ck_assert(token_file_lookup(tf, "tok2", 4, &host, &port));
	ck_assert_str_eq(host, "host-b.internal");
	ck_assert(token_file_lookup(tf, "tok3", 4, &host, &port));
	ck_assert_str_eq(host, "::1");
	ck_assert_uint_eq(port, 22);
	ck_assert(!token_file_lookup(tf, "tok", 3, &host, &port));
	token_file_free(tf);
}
END_TEST

/* ---- per-IP limits ------------------------------------------------------------ */

START_TEST(test_ip_limit_concurrent)
{
	struct ip_limit_config c = {.max_per_ip = 2, .max_entries = 16};
	struct ip_limit *l = ip_limit_new(&c, 1);
	struct sockaddr_storage a = addr("127.0.0.2:1"), b = addr("127.0.0.3:1");
	struct sockaddr_storage a2 = addr("127.0.0.2:2");

	ck_assert_int_eq(ip_limit_acquire(l, (struct sockaddr *)&a, 0),
			 IP_LIMIT_OK);
	ck_assert_int_eq(ip_limit_acquire(l, (struct sockaddr *)&a2, 0),
			 IP_LIMIT_OK);
	ck_assert_int_eq(ip_limit_acquire(l, (struct sockaddr *)&a, 0),
			 IP_LIMIT_CONCURRENT);
	ck_assert_int_eq(ip_limit_acquire(l, (struct sockaddr *)&b, 0),
			 IP_LIMIT_OK);
	ip_limit_release(l, (struct sockaddr *)&a, 0);
	ck_assert_int_eq(ip_limit_acquire(l, (struct sockaddr *)&a, 0),
			 IP_LIMIT_OK);
	ip_limit_release(l, (struct sockaddr *)&a, 0);
	ip_limit_release(l, (struct sockaddr *)&a, 0);
	ip_limit_release(l, (struct sockaddr *)&b, 0);
	/* no rate: nothing is kept for idle addresses */
	ck_assert_uint_eq(ip_limit_entries(l), 0);
	ip_limit_free(l);
}
END_TEST

START_TEST(test_ip_limit_rate)
{
	/* 2 per second, burst 3 */
	struct ip_limit_config c = {.rate_count = 2, .rate_per_ms = 1000,
				    .burst = 3, .max_entries = 16};
	struct ip_limit *l = ip_limit_new(&c, 2);
	struct sockaddr_storage a = addr("127.0.0.2"), b = addr("127.0.0.3");
	struct sockaddr *sa = (struct sockaddr *)&a;

	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(ip_limit_acquire(l, sa, 1000), IP_LIMIT_OK);
		ip_limit_release(l, sa, 1000);
	}
	ck_assert_int_eq(ip_limit_acquire(l, sa, 1000), IP_LIMIT_RATE);
	ck_assert_int_eq(ip_limit_acquire(l, (struct sockaddr *)&b, 1000),
			 IP_LIMIT_OK);
	/* one token comes back every 500 ms */
	ck_assert_int_eq(ip_limit_acquire(l, sa, 1499), IP_LIMIT_RATE);
	ck_assert_int_eq(ip_limit_acquire(l, sa, 1500), IP_LIMIT_OK);
	ck_assert_int_eq(ip_limit_acquire(l, sa, 1500), IP_LIMIT_RATE);
	ip_limit_free(l);
}
END_TEST

START_TEST(test_ip_limit_bounded)
{
	struct ip_limit_config c = {.rate_count = 1, .rate_per_ms = 60000,
				    .burst = 1, .max_entries = 8};
	struct ip_limit *l = ip_limit_new(&c, 3);
	struct sockaddr_in sin = {.sin_family = AF_INET};

	/* an address sprayer: memory stays within max_entries */
	for (uint32_t i = 0; i < 10000; i++) {
		sin.sin_addr.s_addr = htonl(0x0a000000u + i);
		ck_assert_int_eq(ip_limit_acquire(l, (struct sockaddr *)&sin,
						  5),
				 IP_LIMIT_OK);
		ip_limit_release(l, (struct sockaddr *)&sin, 5);
		ck_assert_uint_le(ip_limit_entries(l), 8);
	}
	/* held connections are never evicted: the table is then full */
	struct ip_limit_config c2 = {.max_per_ip = 5, .max_entries = 2};
	struct ip_limit *l2 = ip_limit_new(&c2, 4);
	struct sockaddr_storage x = addr("1.1.1.1"), y = addr("2.2.2.2"),
				z = addr("3.3.3.3");
	ck_assert_int_eq(ip_limit_acquire(l2, (struct sockaddr *)&x, 0),
			 IP_LIMIT_OK);
	ck_assert_int_eq(ip_limit_acquire(l2, (struct sockaddr *)&y, 0),
			 IP_LIMIT_OK);
	ck_assert_int_eq(ip_limit_acquire(l2, (struct sockaddr *)&z, 0),
			 IP_LIMIT_FULL);
	ip_limit_free(l);
	ip_limit_free(l2);
}
END_TEST

START_TEST(test_ip_limit_ipv6_per_64)
{
	struct ip_limit_config c = {.max_per_ip = 1, .max_entries = 8};
	struct ip_limit *l = ip_limit_new(&c, 5);
	struct sockaddr_storage a = addr("2001:db8:1:2::1"),
				b = addr("2001:db8:1:2:ffff::9"),
				d = addr("2001:db8:1:3::1");

	ck_assert_int_eq(ip_limit_acquire(l, (struct sockaddr *)&a, 0),
			 IP_LIMIT_OK);
	ck_assert_int_eq(ip_limit_acquire(l, (struct sockaddr *)&b, 0),
			 IP_LIMIT_CONCURRENT);
	ck_assert_int_eq(ip_limit_acquire(l, (struct sockaddr *)&d, 0),
			 IP_LIMIT_OK);
	ip_limit_free(l);
}
END_TEST

/* The suite. */
static Suite *
access_suite(void)
{
	Suite *s = suite_create("access");
	TCase *tc = tcase_create("access");

	tcase_add_test(tc, test_net_parse_and_contain);
	tcase_add_test(tc, test_v4_mapped_is_v4);
	tcase_add_test(tc, test_rules);
	tcase_add_test(tc, test_hostport);
	tcase_add_test(tc, test_split_hostport);
	tcase_add_test(tc, test_parse_port);
	tcase_add_test(tc, test_parse_ip_family_and_listen);
	tcase_add_test(tc, test_origin_normalize);
	tcase_add_test(tc, test_origin_lookalikes_differ);
	tcase_add_test(tc, test_xff_walk);
	tcase_add_test(tc, test_forwarded_walk);
	tcase_add_test(tc, test_query_param);
	tcase_add_test(tc, test_cookie_and_bearer);
	tcase_add_test(tc, test_redact);
	tcase_add_test(tc, test_token_file_auth);
	tcase_add_test(tc, test_token_file_not_regular);
	tcase_add_test(tc, test_token_file_hash_entry);
	tcase_add_test(tc, test_token_file_targets);
	tcase_add_test(tc, test_ip_limit_concurrent);
	tcase_add_test(tc, test_ip_limit_rate);
	tcase_add_test(tc, test_ip_limit_bounded);
	tcase_add_test(tc, test_ip_limit_ipv6_per_64);
	suite_add_tcase(s, tc);
	return s;
}

/* Run the suite (TAP via CK_TAP_LOG_FILE_NAME). */
int
main(void)
{
	SRunner *sr = srunner_create(access_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
