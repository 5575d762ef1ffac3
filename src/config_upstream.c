/*
 * config_upstream.c - a route's upstream: echo, unix:/path,
 * tokenfile:/path, host:port, [v6]:port and tls://host:port.
 */
#include "config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

/* True if H looks like an IPv4 literal (digits and dots only). */
static bool
config_looks_ipv4(const char *h)
{
	return h[0] != '\0' && strspn(h, "0123456789.") == strlen(h);
}

/* Parse the route's upstream: echo, unix:/path, host:port, [v6]:port,
   tls://host:port, tls://[v6]:port. */
int
config_set_upstream(struct config_loader *ld, const char *v)
{
	struct config_route *r = &ld->c->routes[ld->route];
	char q[80], host[256];
	const char *port_s, *hp = v;
	size_t hlen;
	bool tls = strncmp(v, "tls://", 6) == 0;

	if (tls) {
		hp = v + 6;
	} else if (strstr(v, "://") != NULL) {
		config_error(ld, ld->line, "upstream",
			     "unknown scheme in %s (tls:// is the only one)",
			     config_quote(v, q, sizeof(q)));
		return -1;
	}
	if (!tls && strcmp(v, "echo") == 0) {
		r->kind = UPSTREAM_ECHO;
	} else if (!tls && strncmp(v, "tokenfile:", 10) == 0) {
		if (config_set_abs_file(ld, "upstream", v + 10, &r->token_file) < 0)
			return -1;
		r->kind = UPSTREAM_TOKENFILE;
	} else if (!tls && strncmp(v, "unix:", 5) == 0) {
		const char *path = v + 5;
		if (path[0] != '/') {
			config_error(ld, ld->line, "upstream",
				     "unix socket path must be absolute, "
				     "got %s",
				     config_quote(path, q, sizeof(q)));
			return -1;
		}
		if (strlen(path) >= CONFIG_SUN_PATH_MAX) {
			config_error(ld, ld->line, "upstream",
				     "unix socket path longer than %zu bytes",
				     CONFIG_SUN_PATH_MAX - 1);
			return -1;
		}
		r->kind = UPSTREAM_UNIX;
		r->unix_path = strdup(path);
		if (r->unix_path == NULL)
			goto oom;
	} else {
		if (hp[0] == '[') {
			struct in6_addr a6;
			const char *rb = strchr(hp, ']');
			if (rb == NULL || rb[1] != ':')
				goto bad;
			hlen = (size_t)(rb - hp - 1);
			if (hlen == 0 || hlen >= sizeof(host))
				goto bad;
			memcpy(host, hp + 1, hlen);
			host[hlen] = '\0';
			if (inet_pton(AF_INET6, host, &a6) != 1) {
				config_error(ld, ld->line, "upstream",
					     "bad IPv6 address %s",
					     config_quote(host, q, sizeof(q)));
				return -1;
			}
			port_s = rb + 2;
		} else {
			const char *colon = strrchr(hp, ':');
			if (colon == NULL)
				goto bad;
			hlen = (size_t)(colon - hp);
			if (hlen == 0 || hlen >= sizeof(host))
				goto bad;
			memcpy(host, hp, hlen);
			host[hlen] = '\0';
			if (strchr(host, ':') != NULL) {
				config_error(ld, ld->line, "upstream",
					     "put an IPv6 address in brackets, "
					     "like [::1]:5900");
				return -1;
			}
			if (config_looks_ipv4(host)) {
				struct in_addr a4;
				if (inet_pton(AF_INET, host, &a4) != 1) {
					config_error(ld, ld->line, "upstream",
						     "bad IPv4 address %s",
						     config_quote(host, q,
								  sizeof(q)));
					return -1;
				}
			} else if (!config_is_hostname(host)) {
				config_error(ld, ld->line, "upstream",
					     "bad host name %s (letters, "
					     "digits, '-', '_' and '.' only)",
					     config_quote(host, q, sizeof(q)));
				return -1;
			}
			port_s = colon + 1;
		}
		if (config_parse_port(port_s, &r->port) < 0) {
			config_error(ld, ld->line, "upstream",
				     "port must be 1-65535, got %s",
				     config_quote(port_s, q, sizeof(q)));
			return -1;
		}
		r->kind = UPSTREAM_TCP;
		r->tls = tls;
		r->host = strdup(host);
		if (r->host == NULL)
			goto oom;
	}
	r->upstream = strdup(v);
	if (r->upstream == NULL)
		goto oom;
	return 0;
bad:
	config_error(ld, ld->line, "upstream",
		     "expected host:port, [IPv6]:port, tls://host:port, "
		     "unix:/path, echo or tokenfile:/path, got %s",
		     config_quote(v, q, sizeof(q)));
	return -1;
oom:
	config_error(ld, ld->line, "upstream", "out of memory");
	return -1;
}
