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
	const char *hp = v;
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
		struct netaddr_split sp;
		struct sockaddr_storage ss;
		if (netaddr_split_hostport(hp, strlen(hp), &sp) < 0 ||
		    !sp.has_port || sp.host_len == 0 ||
		    sp.host_len >= sizeof(host))
			goto bad;
		memcpy(host, sp.host, sp.host_len);
		host[sp.host_len] = '\0';
		if (sp.bracketed) {
			if (netaddr_parse_ip_family(AF_INET6, sp.host,
						    sp.host_len, &ss) < 0) {
				config_error(ld, ld->line, "upstream",
					     "bad IPv6 address %s",
					     config_quote(host, q, sizeof(q)));
				return -1;
			}
		} else if (strchr(host, ':') != NULL) {
			config_error(ld, ld->line, "upstream",
				     "put an IPv6 address in brackets, "
				     "like [::1]:5900");
			return -1;
		} else if (config_looks_ipv4(host)) {
			if (netaddr_parse_ip_family(AF_INET, sp.host,
						    sp.host_len, &ss) < 0) {
				config_error(ld, ld->line, "upstream",
					     "bad IPv4 address %s",
					     config_quote(host, q, sizeof(q)));
				return -1;
			}
		} else if (!config_is_hostname(host)) {
			config_error(ld, ld->line, "upstream",
				     "bad host name %s (letters, "
				     "digits, '-', '_' and '.' only)",
				     config_quote(host, q, sizeof(q)));
			return -1;
		}
		if (netaddr_parse_port(sp.port, sp.port_len,
				       NETADDR_PORT_NONZERO, &r->port) < 0) {
			config_error(ld, ld->line, "upstream",
				     "port must be 1-65535, got %s",
				     config_quote(sp.port, q, sizeof(q)));
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
