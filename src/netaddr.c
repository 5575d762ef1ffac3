/*
 * netaddr.c - IP literals, ports, host:port and listen addresses, CIDR
 * networks and network:port rules (PURE): every address and port parser of
 * wsgate.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* ::ffff:a.b.c.d -> a.b.c.d. */
void
netaddr_unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in s4;

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	s4.sin_port = s6->sin6_port;
	memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &s4, sizeof(s4));
}

/* An IP literal of FAMILY, LEN bytes, as written (not unmapped). */
int
netaddr_parse_ip_family(int family, const char *s, size_t len,
			struct sockaddr_storage *out)
{
	char tmp[INET6_ADDRSTRLEN + 1];

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;
		sin->sin_family = AF_INET;
		return inet_pton(AF_INET, tmp, &sin->sin_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
	sin6->sin6_family = AF_INET6;
	return inet_pton(AF_INET6, tmp, &sin6->sin6_addr) == 1 ? 0 : -1;
}

/* An IPv4 or IPv6 literal of LEN bytes. */
int
netaddr_parse_ip(const char *s, size_t len, struct sockaddr_storage *out)
{
	if (len == 0 || memchr(s, ':', len) == NULL)
		return netaddr_parse_ip_family(AF_INET, s, len, out);
	if (netaddr_parse_ip_family(AF_INET6, s, len, out) < 0)
		return -1;
	netaddr_unmap(out);
	return 0;
}

/* Decimal port of LEN bytes, 0-65535 narrowed by FLAGS. */
int
netaddr_parse_port(const char *s, size_t len, unsigned flags, uint16_t *out)
{
	unsigned v = 0;

	if (len == 0 || len > 5)
		return -1;
	if ((flags & NETADDR_PORT_CANONICAL) && len > 1 && s[0] == '0')
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535 || ((flags & NETADDR_PORT_NONZERO) && v == 0))
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* Store PORT (host order) into SS. */
void
netaddr_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* "[host]", "[host]:port", "host:port" (at the last colon) or "host". */
int
netaddr_split_hostport(const char *s, size_t len, struct netaddr_split *out)
{
	memset(out, 0, sizeof(*out));
	if (len > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', len);
		size_t after;
		if (rb == NULL)
			return -1;
		after = len - (size_t)(rb - s) - 1;
		if (after > 0 && rb[1] != ':')
			return -1;
		out->bracketed = true;
		out->host = s + 1;
		out->host_len = (size_t)(rb - s) - 1;
		if (after > 0) {
			out->has_port = true;
			out->port = rb + 2;
			out->port_len = after - 1;
		}
		return 0;
	}
	out->host = s;
	out->host_len = len;
	for (size_t i = len; i > 0; i--) {
		if (s[i - 1] == ':') {
			out->host_len = i - 1;
			out->has_port = true;
			out->port = s + i;
			out->port_len = len - i;
			break;
		}
	}
	return 0;
}

/* "1.2.3.4", "1.2.3.4:80", "::1", "[::1]", "[::1]:80". */
int
netaddr_parse_hostport(const char *s, size_t len, struct sockaddr_storage *out)
{
	struct netaddr_split sp;
	uint16_t port = 0;

	if (netaddr_split_hostport(s, len, &sp) < 0)
		return -1;
	if (sp.bracketed) {
		if (netaddr_parse_ip(sp.host, sp.host_len, out) < 0 ||
		    out->ss_family != AF_INET6)
			return -1;
		if (sp.has_port &&
		    netaddr_parse_port(sp.port, sp.port_len, 0, &port) < 0)
			return -1;
		netaddr_set_port(out, port);
		return 0;
	}
	if (sp.has_port && memchr(sp.host, ':', sp.host_len) == NULL) {
		/* exactly one colon: IPv4 with a port */
		if (netaddr_parse_ip(sp.host, sp.host_len, out) < 0 ||
		    out->ss_family != AF_INET ||
		    netaddr_parse_port(sp.port, sp.port_len, 0, &port) < 0)
			return -1;
		netaddr_set_port(out, port);
		return 0;
	}
	return netaddr_parse_ip(s, len, out);
}

/* "127.0.0.1:8080", "[::1]:8080", ":8080" and "*:8080" (IPv4 any). */
int
netaddr_parse_listen(const char *s, struct sockaddr_storage *ss,
		     socklen_t *len)
{
	struct netaddr_split sp;
	uint16_t port;

	if (netaddr_split_hostport(s, strlen(s), &sp) < 0 || !sp.has_port ||
	    netaddr_parse_port(sp.port, sp.port_len, NETADDR_PORT_NONZERO,
			       &port) < 0)
		return -1;
	if (sp.bracketed) {
		if (netaddr_parse_ip_family(AF_INET6, sp.host, sp.host_len,
					    ss) < 0)
			return -1;
		*len = sizeof(struct sockaddr_in6);
	} else if (sp.host_len == 0 ||
		   (sp.host_len == 1 && sp.host[0] == '*')) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		memset(ss, 0, sizeof(*ss));
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		*len = sizeof(*sin);
	} else {
		if (netaddr_parse_ip_family(AF_INET, sp.host, sp.host_len,
					    ss) < 0)
			return -1;
		*len = sizeof(struct sockaddr_in);
	}
	netaddr_set_port(ss, port);
	return 0;
}

/* The address bytes and family of SA (unmapped); 0 or -1. */
static int
netaddr_bytes(const struct sockaddr *sa, int *family, uint8_t addr[16],
	      uint16_t *port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (sa->sa_family == AF_INET)
		memcpy(&ss, sa, sizeof(struct sockaddr_in));
	else if (sa->sa_family == AF_INET6)
		memcpy(&ss, sa, sizeof(struct sockaddr_in6));
	else
		return -1;
	netaddr_unmap(&ss);
	*family = ss.ss_family;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
		memcpy(addr, &s4->sin_addr, 4);
		*port = ntohs(s4->sin_port);
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
		memcpy(addr, &s6->sin6_addr, 16);
		*port = ntohs(s6->sin6_port);
	}
	return 0;
}

/* "10.0.0.0/8", "::1/128", "192.0.2.7". */
int
netaddr_parse_net(const char *s, struct netaddr_net *out)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	struct sockaddr_storage ss;
	unsigned bits, max;
	uint16_t port;

	if (alen > 2 && s[0] == '[' && s[alen - 1] == ']') {
		s++; /* [v6]/len is accepted too */
		alen -= 2;
	}
	if (netaddr_parse_ip(s, alen, &ss) < 0)
		return -1;
	memset(out, 0, sizeof(*out));
	(void)netaddr_bytes((struct sockaddr *)&ss, &out->family, out->addr,
			    &port);
	max = out->family == AF_INET ? 32 : 128;
	if (slash == NULL) {
		out->prefix = max;
		return 0;
	}
	const char *p = slash + 1;
	if (*p == '\0' || strlen(p) > 3)
		return -1;
	bits = 0;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		bits = bits * 10 + (unsigned)(*p - '0');
	}
	/* an IPv4-mapped network keeps its meaning as IPv4 */
	if (memchr(s, ':', alen) != NULL && out->family == AF_INET) {
		if (bits < 96)
			return -1;
		bits -= 96;
	}
	if (bits > max)
		return -1;
	out->prefix = bits;
	for (unsigned i = bits; i < max; i++)
		if (out->addr[i / 8] & (0x80u >> (i % 8)))
			return -1; /* host bits set */
	return 0;
}

/* True if SA is in NET. */
bool
netaddr_net_contains(const struct netaddr_net *net, const struct sockaddr *sa)
{
	uint8_t a[16];
	int family;
	uint16_t port;
	unsigned full, rest;

	if (netaddr_bytes(sa, &family, a, &port) < 0 || family != net->family)
		return false;
	full = net->prefix / 8;
	rest = net->prefix % 8;
	if (memcmp(a, net->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xffu << (8 - rest));
	return (a[full] & mask) == (net->addr[full] & mask);
}

/* True if SA is in any of V. */
bool
netaddr_nets_contain(const struct netaddr_net *v, size_t n,
		     const struct sockaddr *sa)
{
	for (size_t i = 0; i < n; i++)
		if (netaddr_net_contains(&v[i], sa))
			return true;
	return false;
}

/* "NET:PORTS" with PORTS "N", "N-M" or "*". */
int
netaddr_parse_rule(const char *s, struct netaddr_rule *out)
{
	char net[INET6_ADDRSTRLEN + 8];
	const char *colon = strrchr(s, ':');
	const char *ports, *dash;
	size_t nlen;

	if (colon == NULL)
		return -1;
	nlen = (size_t)(colon - s);
	/* an IPv6 network must be bracketed: [fd00::]/8:22 */
	if (memchr(s, ':', nlen) != NULL && s[0] != '[')
		return -1;
	if (nlen == 0 || nlen >= sizeof(net))
		return -1;
	memcpy(net, s, nlen);
	net[nlen] = '\0';
	if (net[0] == '[') {
		char *rb = strchr(net, ']');
		if (rb == NULL || (rb[1] != '\0' && rb[1] != '/'))
			return -1;
		memmove(rb, rb + 1, strlen(rb + 1) + 1);
		memmove(net, net + 1, strlen(net));
	}
	if (netaddr_parse_net(net, &out->net) < 0)
		return -1;
	ports = colon + 1;
	if (strcmp(ports, "*") == 0) {
		out->port_lo = 1;
		out->port_hi = 65535;
		return 0;
	}
	dash = strchr(ports, '-');
	if (dash == NULL) {
		if (netaddr_parse_port(ports, strlen(ports), 0, &out->port_lo) < 0)
			return -1;
		out->port_hi = out->port_lo;
	} else if (netaddr_parse_port(ports, (size_t)(dash - ports), 0,
				      &out->port_lo) < 0 ||
		   netaddr_parse_port(dash + 1, strlen(dash + 1), 0,
				      &out->port_hi) < 0) {
		return -1;
	}
	if (out->port_lo == 0 || out->port_lo > out->port_hi)
		return -1;
	return 0;
}

/* True if SA (address and port) matches a rule. */
bool
netaddr_rules_allow(const struct netaddr_rule *v, size_t n,
		    const struct sockaddr *sa)
{
	uint16_t port = netaddr_port(sa);

	for (size_t i = 0; i < n; i++)
		if (port >= v[i].port_lo && port <= v[i].port_hi &&
		    netaddr_net_contains(&v[i].net, sa))
			return true;
	return false;
}

/* The port of SA. */
uint16_t
netaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/* "a.b.c.d:port", "[v6]:port", without ":port" when it is 0. */
void
netaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	uint16_t port = netaddr_port(sa);

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  host, sizeof(host));
		if (port)
			snprintf(buf, len, "%s:%u", host, (unsigned)port);
		else
			snprintf(buf, len, "%s", host);
	} else if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)sa)->sin6_addr, host,
			  sizeof(host));
		if (port)
			snprintf(buf, len, "[%s]:%u", host, (unsigned)port);
		else
			snprintf(buf, len, "[%s]", host);
	} else if (sa->sa_family == AF_UNIX) {
		snprintf(buf, len, "unix");
	} else {
		snprintf(buf, len, "?");
	}
}
