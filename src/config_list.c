/*
 * config_list.c - comma-separated values: the splitter and one adder per
 * list key (listen addresses and their flags, fingerprints, subprotocols,
 * trusted proxies, origins, auth_from, target_allow, server_names).
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

#include "access.h"
#include "tls_name.h"

/* Flags that may follow a listen address: X(name, bool field of struct
   config_listen).  A new flag is one more line here. */
#define CONFIG_LISTEN_FLAGS(X)                                                 \
	X("tls", tls)                                                          \
	X("proxy_protocol", proxy_protocol)

static const struct config_listen_flag {
	const char *name;
	size_t offset;
} config_listen_flags[] = {
#define CONFIG_LISTEN_FLAG_ROW_(name, field)                                   \
	{name, offsetof(struct config_listen, field)},
	CONFIG_LISTEN_FLAGS(CONFIG_LISTEN_FLAG_ROW_)
#undef CONFIG_LISTEN_FLAG_ROW_
};

/* The names of every listen flag, for messages: "tls, ...". */
static const char *
config_listen_flag_names(char *buf, size_t len)
{
	size_t n = sizeof(config_listen_flags) / sizeof(config_listen_flags[0]);
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && o < len; i++) {
		int w = snprintf(buf + o, len - o, "%s%s", i ? ", " : "",
				 config_listen_flags[i].name);
		if (w < 0)
			break;
		o += (size_t)w;
	}
	return buf;
}

/* Set the blank-separated flags in FLAGS on L; 0 or -1. */
static int
config_listen_set_flags(struct config_loader *ld, struct config_listen *l,
			const char *flags, int line)
{
	size_t nflags =
		sizeof(config_listen_flags) / sizeof(config_listen_flags[0]);
	const char *p = flags;
	char word[64], q[80], names[128];

	for (;;) {
		size_t n, i;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return 0;
		n = strcspn(p, " \t");
		if (n >= sizeof(word))
			n = sizeof(word) - 1;
		memcpy(word, p, n);
		word[n] = '\0';
		p += strcspn(p, " \t");
		for (i = 0; i < nflags; i++)
			if (strcmp(word, config_listen_flags[i].name) == 0)
				break;
		if (i == nflags) {
			config_error(ld, line, "listen",
				     "unknown flag %s after the address "
				     "(known flags: %s)",
				     config_quote(word, q, sizeof(q)),
				     config_listen_flag_names(names,
							      sizeof(names)));
			return -1;
		}
		bool *flag = (bool *)((char *)l + config_listen_flags[i].offset);
		if (*flag) {
			config_error(ld, line, "listen", "flag %s given twice",
				     config_quote(word, q, sizeof(q)));
			return -1;
		}
		*flag = true;
	}
}

/* Append one listen address (already trimmed), maybe with flags, from
   LINE: "127.0.0.1:8443 tls". */
int
config_add_listen(struct config_loader *ld, const char *text, int line)
{
	struct config *c = ld->c;
	struct config_listen *l;
	char q[80], addr[128];
	size_t alen = strcspn(text, " \t");

	if (c->n_listens == ld->listens_cap) {
		size_t cap = ld->listens_cap ? ld->listens_cap * 2 : 4;
		l = realloc(c->listens, cap * sizeof(*l));
		if (l == NULL) {
			config_error(ld, line, "listen", "out of memory");
			return -1;
		}
		c->listens = l;
		ld->listens_cap = cap;
	}
	l = &c->listens[c->n_listens];
	memset(l, 0, sizeof(*l));
	if (alen >= sizeof(addr))
		alen = sizeof(addr) - 1;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (config_parse_listen(addr, &l->addr, &l->addr_len) < 0) {
		config_error(ld, line, "listen",
			     "expected a numeric address like 127.0.0.1:8080, "
			     "[::1]:8080 or *:8080 (port 1-65535), got %s",
			     config_quote(addr, q, sizeof(q)));
		return -1;
	}
	if (config_listen_set_flags(ld, l, text + strcspn(text, " \t"),
				    line) < 0)
		return -1;
	for (size_t i = 0; i < c->n_listens; i++) {
		if (c->listens[i].addr_len == l->addr_len &&
		    memcmp(&c->listens[i].addr, &l->addr, l->addr_len) == 0) {
			config_error(ld, line, "listen",
				     "duplicate address %s (first at line %d)",
				     config_quote(text, q, sizeof(q)),
				     c->listens[i].line);
			return -1;
		}
	}
	l->text = strdup(text);
	if (l->text == NULL) {
		config_error(ld, line, "listen", "out of memory");
		return -1;
	}
	l->line = line;
	c->n_listens++;
	return 0;
}

/* Split V at commas, trimming blanks around each item, and call FN on each. */
int
config_split_list(struct config_loader *ld, const char *key, const char *v,
		  int (*fn)(struct config_loader *, const char *, int))
{
	char item[256];
	const char *p = v;

	for (;;) {
		const char *comma = strchr(p, ',');
		const char *e = comma ? comma : p + strlen(p);
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e == p) {
			config_error(ld, ld->line, key, "empty item in list");
			return -1;
		}
		if ((size_t)(e - p) >= sizeof(item)) {
			config_error(ld, ld->line, key, "item too long");
			return -1;
		}
		memcpy(item, p, (size_t)(e - p));
		item[e - p] = '\0';
		if (fn(ld, item, ld->line) < 0)
			return -1;
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

/* Append one SHA-256 client-certificate fingerprint to the current route. */
int
config_add_fingerprint(struct config_loader *ld, const char *tok, int line)
{
	struct config_route *r = &ld->c->routes[ld->route];
	uint8_t fp[32], (*v)[32];
	size_t n = 0;
	char q[80];

	for (const char *p = tok; *p != '\0'; p++) {
		int hi, lo;
		if (*p == ':')
			continue;
		hi = access_hex(p[0]);
		lo = p[1] != '\0' ? access_hex(p[1]) : -1;
		if (hi < 0 || lo < 0 || n == sizeof(fp))
			goto bad;
		fp[n++] = (uint8_t)(hi << 4 | lo);
		p++;
	}
	if (n != sizeof(fp))
		goto bad;
	v = realloc(r->client_fingerprints,
		    (r->n_client_fingerprints + 1) * sizeof(*v));
	if (v == NULL) {
		config_error(ld, line, "client_fingerprint", "out of memory");
		return -1;
	}
	r->client_fingerprints = v;
	memcpy(v[r->n_client_fingerprints++], fp, sizeof(fp));
	r->client_fingerprint_line = line;
	return 0;
bad:
	config_error(ld, line, "client_fingerprint",
		     "expected a SHA-256 fingerprint (64 hex digits, ':' "
		     "allowed), got %s",
		     config_quote(tok, q, sizeof(q)));
	return -1;
}

/* Append one accepted subprotocol token to the current route. */
int
config_add_subprotocol(struct config_loader *ld, const char *tok, int line)
{
	struct config_route *r = &ld->c->routes[ld->route];
	char q[80];
	char **v;

	for (const char *p = tok; *p != '\0'; p++) {
		if (!config_is_tchar((unsigned char)*p)) {
			config_error(ld, line, "subprotocols",
				     "%s is not a token (RFC 9110 5.6.2)",
				     config_quote(tok, q, sizeof(q)));
			return -1;
		}
	}
	for (size_t i = 0; i < r->n_subprotocols; i++) {
		if (strcmp(r->subprotocols[i], tok) == 0) {
			config_error(ld, line, "subprotocols",
				     "%s is listed twice",
				     config_quote(tok, q, sizeof(q)));
			return -1;
		}
	}
	v = realloc(r->subprotocols, (r->n_subprotocols + 1) * sizeof(*v));
	if (v == NULL) {
		config_error(ld, line, "subprotocols", "out of memory");
		return -1;
	}
	r->subprotocols = v;
	v[r->n_subprotocols] = strdup(tok);
	if (v[r->n_subprotocols] == NULL) {
		config_error(ld, line, "subprotocols", "out of memory");
		return -1;
	}
	r->n_subprotocols++;
	return 0;
}

/* Append one trusted proxy network. */
int
config_add_trusted(struct config_loader *ld, const char *item, int line)
{
	struct config *c = ld->c;
	struct netaddr_net *v;
	char q[80];

	v = realloc(c->trusted_proxies,
		    (c->n_trusted_proxies + 1) * sizeof(*v));
	if (v == NULL) {
		config_error(ld, line, "trusted_proxies", "out of memory");
		return -1;
	}
	c->trusted_proxies = v;
	if (netaddr_parse_net(item, &v[c->n_trusted_proxies]) < 0) {
		config_error(ld, line, "trusted_proxies",
			     "expected a network like 10.0.0.0/8 or ::1/128 "
			     "(no bits set past the prefix), got %s",
			     config_quote(item, q, sizeof(q)));
		return -1;
	}
	c->n_trusted_proxies++;
	return 0;
}

/* The origin list of the current section. */
static struct config_origins *
config_cur_origins(struct config_loader *ld)
{
	if (ld->section == SEC_ROUTE) {
		ld->c->routes[ld->route].origins_set = true;
		return &ld->c->routes[ld->route].origins;
	}
	return &ld->c->origins;
}

/* Append one allowed origin ("*" allows any). */
int
config_add_origin(struct config_loader *ld, const char *item, int line)
{
	struct config_origins *o = config_cur_origins(ld);
	char norm[ACCESS_ORIGIN_MAX], q[80];
	char **v;

	if (strcmp(item, "*") == 0) {
		o->any = true;
		return 0;
	}
	if (strcasecmp(item, "null") == 0) {
		config_error(ld, line, "origins",
			     "\"null\" is sent by sandboxed and file: pages of "
			     "any site; it cannot be allowed");
		return -1;
	}
	if (access_origin_normalize(item, strlen(item), norm, sizeof(norm)) <
	    0) {
		config_error(ld, line, "origins",
			     "expected an origin like https://app.example.com "
			     "or http://localhost:3000 (no path), got %s",
			     config_quote(item, q, sizeof(q)));
		return -1;
	}
	v = realloc(o->v, (o->n + 1) * sizeof(*v));
	if (v == NULL || (v[o->n] = strdup(norm)) == NULL) {
		if (v != NULL)
			o->v = v;
		config_error(ld, line, "origins", "out of memory");
		return -1;
	}
	o->v = v;
	o->n++;
	return 0;
}

/* Add one carrier to the current route's auth_from. */
int
config_add_auth_from(struct config_loader *ld, const char *item, int line)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{"query", AUTH_FROM_QUERY},
		{"cookie", AUTH_FROM_COOKIE},
		{"bearer", AUTH_FROM_BEARER},
		{"protocol", AUTH_FROM_PROTOCOL},
	};
	struct config_route *r = &ld->c->routes[ld->route];
	char q[80];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(item, names[i].name) == 0) {
			r->auth_from |= names[i].bit;
			return 0;
		}
	}
	config_error(ld, line, "auth_from",
		     "expected query, cookie, bearer or protocol, got %s",
		     config_quote(item, q, sizeof(q)));
	return -1;
}

/* Append one target_allow rule to the current route. */
int
config_add_target_rule(struct config_loader *ld, const char *item, int line)
{
	struct config_route *r = &ld->c->routes[ld->route];
	struct netaddr_rule *v;
	char q[80];

	v = realloc(r->target_allow, (r->n_target_allow + 1) * sizeof(*v));
	if (v == NULL) {
		config_error(ld, line, "target_allow", "out of memory");
		return -1;
	}
	r->target_allow = v;
	if (netaddr_parse_rule(item, &v[r->n_target_allow]) < 0) {
		config_error(ld, line, "target_allow",
			     "expected NETWORK:PORTS like 127.0.0.0/8:5900-5999, "
			     "10.1.0.0/16:22 or [fd00::]/8:*, got %s",
			     config_quote(item, q, sizeof(q)));
		return -1;
	}
	r->n_target_allow++;
	return 0;
}

/* Append one server_names entry to the current [tls NAME]. */
int
config_add_server_name(struct config_loader *ld, const char *name, int line)
{
	struct config_tls *t = &ld->c->tls;
	struct config_tls_cert *cert = &t->sni[ld->sni];
	const char *why = tls_name_pattern_error(name);
	char q[80];
	char **v;

	if (why != NULL) {
		config_error(ld, line, "server_names", "%s: %s",
			     config_quote(name, q, sizeof(q)), why);
		return -1;
	}
	for (size_t i = 0; i <= ld->sni; i++) {
		for (size_t j = 0; j < t->sni[i].n_server_names; j++) {
			if (strcasecmp(t->sni[i].server_names[j], name) != 0)
				continue;
			config_error(ld, line, "server_names",
				     "%s is already listed in [tls %s] (line "
				     "%d)",
				     config_quote(name, q, sizeof(q)),
				     t->sni[i].name, t->sni[i].line);
			return -1;
		}
	}
	v = realloc(cert->server_names,
		    (cert->n_server_names + 1) * sizeof(*v));
	if (v == NULL) {
		config_error(ld, line, "server_names", "out of memory");
		return -1;
	}
	cert->server_names = v;
	v[cert->n_server_names] = strdup(name);
	if (v[cert->n_server_names] == NULL) {
		config_error(ld, line, "server_names", "out of memory");
		return -1;
	}
	cert->n_server_names++;
	return 0;
}
