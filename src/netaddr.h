/*
 * netaddr.h - IP addresses, networks (CIDR) and network:port rules (PURE:
 * no sockets opened, no globals).
 *
 * Every address that goes through here is first "unmapped": an IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d) becomes plain IPv4, so an IPv4 network or
 * rule cannot be dodged by writing the address the other way.
 */
#ifndef WSGATE_NETADDR_H
#define WSGATE_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IP network: FAMILY is AF_INET or AF_INET6, ADDR in network order. */
struct netaddr_net {
	int family;
	uint8_t addr[16];
	unsigned prefix; /* bits: 0-32 or 0-128 */
};

/* A network and a port range (target_allow). */
struct netaddr_rule {
	struct netaddr_net net;
	uint16_t port_lo, port_hi;
};

/* Room for "[v6]:port" and a NUL. */
#define NETADDR_STRLEN 56

/* ::ffff:a.b.c.d in SS becomes a.b.c.d (port kept); anything else stays. */
void netaddr_unmap(struct sockaddr_storage *ss);

/*
 * An IP literal (LEN bytes at S: IPv4 dotted quad or IPv6 without
 * brackets) into OUT with port 0, unmapped.  0 or -1.
 */
int netaddr_parse_ip(const char *s, size_t len, struct sockaddr_storage *out);

/*
 * An address as proxies write it in X-Forwarded-For and Forwarded:
 * "1.2.3.4", "1.2.3.4:80", "::1", "[::1]", "[::1]:80".  0 or -1.
 */
int netaddr_parse_hostport(const char *s, size_t len,
			   struct sockaddr_storage *out);

/*
 * "10.0.0.0/8", "::1/128", "192.0.2.7" (a host: /32 or /128).  Bits set
 * past the prefix are refused (a typo more often than not).  0 or -1.
 */
int netaddr_parse_net(const char *s, struct netaddr_net *out);

/* True if the IP address SA (AF_INET or AF_INET6) lies in NET. */
bool netaddr_net_contains(const struct netaddr_net *net,
			  const struct sockaddr *sa);

/* True if SA lies in any of the N networks at V. */
bool netaddr_nets_contain(const struct netaddr_net *v, size_t n,
			  const struct sockaddr *sa);

/*
 * "127.0.0.0/8:5900-5999", "10.1.0.0/16:22", "[fd00::]/8:1-65535",
 * "192.0.2.1:*" (any port).  0 or -1.
 */
int netaddr_parse_rule(const char *s, struct netaddr_rule *out);

/* True if SA's address and port match one of the N rules at V. */
bool netaddr_rules_allow(const struct netaddr_rule *v, size_t n,
			 const struct sockaddr *sa);

/*
 * "1.2.3.4:5678" or "[::1]:5678" (just the address when the port is 0),
 * "unix" for AF_UNIX, "?" otherwise, into BUF (at least NETADDR_STRLEN).
 */
void netaddr_format(const struct sockaddr *sa, char *buf, size_t len);

/* The port of an AF_INET/AF_INET6 address (host order), 0 otherwise. */
uint16_t netaddr_port(const struct sockaddr *sa);

#endif
