/*
 * fuzz_netaddr.c - libFuzzer target for the address parsers
 * (src/netaddr.c): IP literals, ports, the host:port splitter, host:port
 * as proxies write it, listen addresses, CIDR networks and network:port
 * rules.
 *
 * Every parser runs on the input (as bytes where it takes a length, as a
 * string cut at the first NUL where it takes one).  What parses must
 * format and parse back to the same value: an address through
 * netaddr_format, a network as "addr/prefix", a rule as
 * "[addr]/prefix:lo-hi".  A parsed network has no host bits set, holds
 * its own address and the last address of its range, and not the address
 * just outside; a rule allows its two end ports and not the ones beside
 * them; an IPv4-mapped IPv6 address matches exactly like its IPv4 form.
 * The splitter's pieces lie inside the input; a port parsed with any
 * flags reads back the same from its canonical digits; a listen address
 * has a port.
 * abort() on any mismatch.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* True if A and B hold the same family, address and port. */
static bool
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

/* A parsed address: IPv4 or IPv6 that is not v4-mapped; formats and
   parses back to itself. */
static void
check_addr(const struct sockaddr_storage *ss)
{
	char buf[NETADDR_STRLEN];
	struct sockaddr_storage back;

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			abort();
	} else if (ss->ss_family != AF_INET) {
		abort();
	}
	netaddr_format((const struct sockaddr *)ss, buf, sizeof(buf));
	if (netaddr_parse_hostport(buf, strlen(buf), &back) != 0 ||
	    !same_addr(ss, &back))
		abort();
}

/* An address of NET's family: NET's address with bit BIT flipped (none
   if BIT is out of range), PORT. */
static void
net_addr(const struct netaddr_net *net, unsigned bit, uint16_t port,
	 struct sockaddr_storage *out)
{
	uint8_t a[16];

	memcpy(a, net->addr, 16);
	if (bit < (net->family == AF_INET ? 32u : 128u))
		a[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
	memset(out, 0, sizeof(*out));
	if (net->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, a, 16);
	}
}

/* True if SS is in NET, asked both directly and as ::ffff:a.b.c.d. */
static bool
contains(const struct netaddr_net *net, const struct sockaddr_storage *ss)
{
	bool in = netaddr_net_contains(net, (const struct sockaddr *)ss);

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		struct sockaddr_in6 m;
		memset(&m, 0, sizeof(m));
		m.sin6_family = AF_INET6;
		m.sin6_port = s4->sin_port;
		m.sin6_addr.s6_addr[10] = 0xff;
		m.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&m.sin6_addr.s6_addr[12], &s4->sin_addr, 4);
		if (netaddr_net_contains(net, (const struct sockaddr *)&m) != in)
			abort();
	}
	return in;
}

/* A parsed network: sane, holds what it should, round-trips. */
static void
check_net(const struct netaddr_net *net)
{
	unsigned max = net->family == AF_INET ? 32 : 128;
	struct sockaddr_storage ss;
	struct netaddr_net back;
	char host[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 8];

	if ((net->family != AF_INET && net->family != AF_INET6) ||
	    net->prefix > max)
		abort();
	for (unsigned i = net->prefix; i < 128; i++)
		if (net->addr[i / 8] & (0x80u >> (i % 8)))
			abort(); /* host bits, or bytes past an IPv4 address */
	net_addr(net, max, 80, &ss);
	if (!contains(net, &ss))
		abort();
	if (net->prefix < max) {
		net_addr(net, max - 1, 80, &ss);
		if (!contains(net, &ss))
			abort();
	}
	if (net->prefix > 0) {
		net_addr(net, net->prefix - 1, 80, &ss);
		if (contains(net, &ss))
			abort();
	}
	if (inet_ntop(net->family, net->addr, host, sizeof(host)) == NULL)
		abort();
	snprintf(text, sizeof(text), "%s/%u", host, net->prefix);
	if (netaddr_parse_net(text, &back) != 0 ||
	    memcmp(&back, net, sizeof(back)) != 0)
		abort();
}

/* A parsed rule: ports sane, its ends allowed, round-trips. */
static void
check_rule(const struct netaddr_rule *r)
{
	struct sockaddr_storage ss;
	struct netaddr_rule back;
	char host[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 24];

	check_net(&r->net);
	if (r->port_lo == 0 || r->port_lo > r->port_hi)
		abort();
	net_addr(&r->net, 128, r->port_lo, &ss);
	if (!netaddr_rules_allow(r, 1, (const struct sockaddr *)&ss))
		abort();
	net_addr(&r->net, 128, r->port_hi, &ss);
	if (!netaddr_rules_allow(r, 1, (const struct sockaddr *)&ss))
		abort();
	net_addr(&r->net, 128, (uint16_t)(r->port_lo - 1), &ss);
	if (netaddr_rules_allow(r, 1, (const struct sockaddr *)&ss))
		abort();
	if (r->port_hi < 65535) {
		net_addr(&r->net, 128, (uint16_t)(r->port_hi + 1), &ss);
		if (netaddr_rules_allow(r, 1, (const struct sockaddr *)&ss))
			abort();
	}
	if (inet_ntop(r->net.family, r->net.addr, host, sizeof(host)) == NULL)
		abort();
	snprintf(text, sizeof(text), "[%s]/%u:%u-%u", host, r->net.prefix,
		 r->port_lo, r->port_hi);
	if (netaddr_parse_rule(text, &back) != 0 ||
	    memcmp(&back, r, sizeof(back)) != 0)
		abort();
}

/* The host:port splitter, the port parser and the listen parser. */
static void
check_split_port_listen(const char *s, size_t size, const char *str)
{
	struct netaddr_split sp;
	struct sockaddr_storage ss;
	socklen_t len;
	char digits[8];
	uint16_t port, back;

	if (netaddr_split_hostport(s, size, &sp) == 0) {
		if (sp.host < s || sp.host + sp.host_len > s + size ||
		    (sp.bracketed && sp.host != s + 1))
			abort();
		if (sp.has_port && sp.port + sp.port_len != s + size)
			abort();
	}
	for (unsigned flags = 0; flags < 4; flags++) {
		if (netaddr_parse_port(s, size, flags, &port) != 0)
			continue;
		if ((flags & NETADDR_PORT_NONZERO) && port == 0)
			abort();
		snprintf(digits, sizeof(digits), "%u", (unsigned)port);
		if (netaddr_parse_port(digits, strlen(digits), flags, &back) !=
			    0 ||
		    back != port)
			abort();
	}
	if (netaddr_parse_listen(str, &ss, &len) == 0 &&
	    (netaddr_port((const struct sockaddr *)&ss) == 0 ||
	     len != (ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
					     : sizeof(struct sockaddr_in6))))
		abort();
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct sockaddr_storage ss;
	struct netaddr_net net;
	struct netaddr_rule rule;
	char *str;

	if (netaddr_parse_ip(s, size, &ss) == 0) {
		check_addr(&ss);
		if (netaddr_port((const struct sockaddr *)&ss) != 0)
			abort();
	}
	if (netaddr_parse_hostport(s, size, &ss) == 0)
		check_addr(&ss);

	str = malloc(size + 1);
	if (str == NULL)
		abort();
	memcpy(str, data, size);
	str[size] = '\0';
	check_split_port_listen(s, size, str);
	if (netaddr_parse_net(str, &net) == 0)
		check_net(&net);
	if (netaddr_parse_rule(str, &rule) == 0)
		check_rule(&rule);
	free(str);

	/* Raw address bytes: unmap and membership agree. */
	if (size >= 17) {
		struct sockaddr_in6 s6;
		struct netaddr_net nets[2];
		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		memcpy(&s6.sin6_addr, data + 1, 16);
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, &s6, sizeof(s6));
		memset(nets, 0, sizeof(nets));
		nets[0].family = data[0] & 1 ? AF_INET6 : AF_INET;
		nets[0].prefix = data[0] >> 1;
		if (nets[0].prefix > (nets[0].family == AF_INET ? 32u : 128u))
			nets[0].prefix = 0;
		bool in = netaddr_net_contains(&nets[0],
					       (const struct sockaddr *)&ss);
		netaddr_unmap(&ss);
		if (netaddr_net_contains(&nets[0],
					 (const struct sockaddr *)&ss) != in ||
		    netaddr_nets_contain(nets, 1,
					 (const struct sockaddr *)&ss) != in)
			abort();
		if (IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr) !=
		    (ss.ss_family == AF_INET))
			abort();
	}
	return 0;
}
