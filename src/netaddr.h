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
 * An IP literal of FAMILY (AF_INET or AF_INET6; LEN bytes at S, no
 * brackets) into OUT with port 0, as written: ::ffff:a.b.c.d stays IPv6.
 * 0 or -1.
 */
int netaddr_parse_ip_family(int family, const char *s, size_t len,
			    struct sockaddr_storage *out);

/* netaddr_parse_port flags. */
#define NETADDR_PORT_NONZERO 0x1   /* refuse port 0 */
#define NETADDR_PORT_CANONICAL 0x2 /* no leading zero ("0" itself is fine) */

/*
 * A decimal port (LEN bytes at S: 1-5 digits, nothing else) up to 65535,
 * narrowed by FLAGS, into *OUT (host order).  0 or -1.
 */
int netaddr_parse_port(const char *s, size_t len, unsigned flags,
		       uint16_t *out);

/* Store PORT (host order) into SS if it is AF_INET or AF_INET6. */
void netaddr_set_port(struct sockaddr_storage *ss, uint16_t port);

/* The pieces of "host:port" (see netaddr_split_hostport); not copied. */
struct netaddr_split {
	const char *host;   /* without the brackets */
	size_t host_len;
	const char *port;   /* after the colon; only if has_port */
	size_t port_len;
	bool bracketed;     /* "[host]" */
	bool has_port;      /* a colon followed the host */
};

/*
 * Split LEN bytes at S into host and port, checking nothing else:
 * "[host]" and "[host]:port" (-1 if anything but ":port" follows the
 * ']', or there is no ']'), otherwise "host:port" at the LAST colon, or
 * just "host".  The spans may be empty.  0 or -1.
 */
int netaddr_split_hostport(const char *s, size_t len,
			   struct netaddr_split *out);

/*
 * A listen address (NUL-terminated): "127.0.0.1:8080", "[::1]:8080",
 * ":8080" or "*:8080" (all IPv4); numeric only, port 1-65535, nothing
 * unmapped.  SS and *LEN for bind(2).  0 or -1.
 */
int netaddr_parse_listen(const char *s, struct sockaddr_storage *ss,
			 socklen_t *len);

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
