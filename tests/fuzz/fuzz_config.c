/*
 * fuzz_config.c - libFuzzer target for the configuration parser
 * (src/config.c), through the real load path, config_load_string: the
 * same line reader, inih callback, value parsers and config_check a start
 * runs.
 *
 * Byte 0 even: the rest is a whole INI file.  A load must succeed or
 * fail the same way twice (same error text, naming the file); a loaded
 * config must be within every documented limit (a listen address and a
 * route at least, limits within their key ranges, close codes that may
 * be sent, networks without host bits, origins already normalised).
 *
 * Byte 0 odd: byte 1 picks a key of the table (config_key_info(), so a
 * new key is fuzzed as soon as it is in config_table.h), the rest
 * (printable, no blanks or comment characters) is its value, written into
 * an otherwise minimal valid file (a tls:// upstream, so that the route's
 * TLS keys apply).  The load must succeed exactly when an independent
 * reading of the value says it is valid (sizes and durations through the
 * public config_parse_size / config_parse_duration, counts, close codes
 * and booleans by hand, keywords from the table's words, lists item by
 * item through the netaddr and access parsers), with the table's bounds,
 * and must store that value in the table's field.  A key of a type with
 * no such reading (file names, strings, ...) is only loaded and its
 * config checked.  An upstream that loads is written back in its
 * canonical form and loads to the same route.  abort() on any mismatch.
 * Only file names under a directory that does not exist are resolved;
 * nothing is written.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "access.h"
#include "config.h"
#include "log.h"
#include "netaddr.h"
#include "ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

#define NAME "/nonexistent-wsgate-fuzz/wsgate.ini"
#define UPSTREAM "tls://localhost:1" /* the route's, unless fuzzed */
#define VALUE_MAX 150 /* key, " = " and value stay under inih's line */

/* The keys of the table, read once. */
static struct config_key_info keys[256];
static size_t n_keys;

/* Quiet (nothing is logged at error level by the loader); read the keys. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config_key_info past;

	(void)argc;
	(void)argv;
	log_init(LOG_ERROR);
	while (n_keys < sizeof(keys) / sizeof(keys[0]) &&
	       config_key_info(n_keys, &keys[n_keys]) == 0)
		n_keys++;
	CHECK(n_keys > 0 && config_key_info(n_keys, &past) < 0); /* all fit */
	return 0;
}

/* Key SECTION / NAME of the table. */
static const struct config_key_info *
find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < n_keys; i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, name) == 0)
			return &keys[i];
	abort();
}

/* Read the unsigned field of WIDTH bytes at P. */
static uint64_t
field_value(const void *p, size_t width)
{
	uint64_t v64;
	uint32_t v32;
	uint16_t v16;
	bool b;

	switch (width) {
	case 8: memcpy(&v64, p, 8); return v64;
	case 4: memcpy(&v32, p, 4); return v32;
	case 2: memcpy(&v16, p, 2); return v16;
	default: memcpy(&b, p, 1); return b;
	}
}

/* Is N one of K's keyword values? */
static bool
is_word_value(const struct config_key_info *k, uint64_t n)
{
	for (const struct config_word *w = k->words; w->word != NULL; w++)
		if (w->value != CONFIG_WORD_NOTE && w->value == n)
			return true;
	return false;
}

/* The value of key K stored in BASE (a config, route or tls cert) is one
   the table allows: within its bounds, one of its keywords, a close code
   that may be sent; 0 for a key without a default (unset). */
static void
check_field(const struct config_key_info *k, const char *base)
{
	uint64_t n;

	switch (k->type) {
	case KT_COUNT:
	case KT_SIZE:
	case KT_DURATION:
	case KT_BOOL:
	case KT_WORKERS:
	case KT_KEYWORD:
	case KT_CLOSE_CODE:
		if (k->width != 0)
			break;
		return;
	default:
		return; /* no number in the field */
	}
	n = field_value(base + k->offset, k->width);
	if (k->def == NULL && n == 0)
		return;
	switch (k->type) {
	case KT_COUNT:
	case KT_SIZE:
	case KT_DURATION:
	case KT_BOOL:
		CHECK(n >= k->min && n <= k->max);
		break;
	case KT_WORKERS: /* 0: auto */
		CHECK(n == 0 || (n >= k->min && n <= k->max));
		break;
	case KT_KEYWORD:
		CHECK(is_word_value(k, n));
		break;
	case KT_CLOSE_CODE:
		CHECK(ws_close_code_is_valid((unsigned)n) && n != 1005 &&
		      n != 1006 && n != 1015);
		break;
	default:
		break;
	}
}

/* ---- whole files ---- */

/* A loaded config is within every documented limit. */
static void
check_config(const struct config *c)
{
	const struct config_limits *l = &c->limits;

	CHECK(c->n_listens >= 1 && c->n_routes >= 1);
	for (size_t i = 0; i < n_keys; i++) {
		const struct config_key_info *k = &keys[i];
		if (strcmp(k->section, "route PATH") == 0)
			for (size_t j = 0; j < c->n_routes; j++)
				check_field(k, (const char *)&c->routes[j]);
		else if (strcmp(k->section, "tls NAME") == 0)
			for (size_t j = 0; j < c->tls.n_sni; j++)
				check_field(k, (const char *)&c->tls.sni[j]);
		else
			check_field(k, (const char *)c);
		if (k->type == KT_RATE)
			CHECK(l->new_connections_rate <= k->max);
	}
	CHECK(l->max_request_line <= l->max_header_bytes);
	for (size_t i = 0; i < c->n_listens; i++) {
		const struct config_listen *a = &c->listens[i];
		CHECK(a->text != NULL);
		CHECK(a->addr.ss_family == AF_INET ||
		      a->addr.ss_family == AF_INET6);
		CHECK(netaddr_port((const struct sockaddr *)&a->addr) != 0);
		for (size_t j = 0; j < i; j++)
			CHECK(a->addr_len != c->listens[j].addr_len ||
			      memcmp(&a->addr, &c->listens[j].addr,
				     a->addr_len) != 0);
	}
	for (size_t i = 0; i < c->n_trusted_proxies; i++) {
		const struct netaddr_net *n = &c->trusted_proxies[i];
		CHECK(n->prefix <= (n->family == AF_INET ? 32u : 128u));
	}
	for (size_t i = 0; i < c->origins.n; i++) {
		char norm[ACCESS_ORIGIN_MAX];
		const char *o = c->origins.v[i];
		CHECK(access_origin_normalize(o, strlen(o), norm,
					      sizeof(norm)) == 0 &&
		      strcmp(norm, o) == 0);
	}
	for (size_t i = 0; i < c->n_routes; i++) {
		const struct config_route *r = &c->routes[i];
		CHECK(r->path != NULL && r->path[0] == '/');
		CHECK(r->upstream != NULL);
		/* a route's own path leads to it (no duplicates, '*' only
		   ends a prefix route) */
		CHECK(config_find_route(c, r->path, strlen(r->path)) == r);
		if (r->kind == UPSTREAM_TCP)
			CHECK(r->host != NULL && r->host[0] != '\0' &&
			      r->port >= 1);
		if (r->kind == UPSTREAM_UNIX)
			CHECK(r->unix_path != NULL && r->unix_path[0] == '/');
		if (r->kind == UPSTREAM_TOKENFILE)
			CHECK(r->n_target_allow >= 1);
		CHECK(r->auth_cookie != NULL &&
		      r->auth_protocol_prefix != NULL);
		for (size_t k = 0; k < r->n_target_allow; k++)
			CHECK(r->target_allow[k].port_lo >= 1 &&
			      r->target_allow[k].port_lo <=
				      r->target_allow[k].port_hi);
	}
}

/* Load TEXT twice: the same outcome, and a sane config or message. */
static void
fuzz_file(const char *text)
{
	char err[512], err2[512];
	struct config *c = config_load_string(text, NAME, err, sizeof(err));
	struct config *c2 = config_load_string(text, NAME, err2, sizeof(err2));

	CHECK((c == NULL) == (c2 == NULL));
	if (c == NULL) {
		CHECK(strncmp(err, NAME, strlen(NAME)) == 0 &&
		      strlen(err) > strlen(NAME));
		CHECK(strcmp(err, err2) == 0);
	} else {
		check_config(c);
		CHECK(c->n_listens == c2->n_listens &&
		      c->n_routes == c2->n_routes);
	}
	config_free(c);
	config_free(c2);
}

/* ---- one key ---- */

/*
 * What the table cannot say: a key whose range depends on another key's
 * value (LOW <= HIGH); fuzzing one, the file sets the other to its
 * widest bound so that only the table's bounds apply.
 */
static const struct {
	const char *section, *low, *high;
} pairs[] = {
	{"limits", "max_request_line", "max_header_bytes"},
};

/* Keys whose valid values still need another key in the file (client_verify
   other than off needs client_ca, which off refuses): a value that loads
   must be valid and stored, but a valid one may be refused. */
static const char *const one_way[][2] = {
	{"tls", "client_verify"},
};

/* True if K is in one_way[]. */
static bool
is_one_way(const struct config_key_info *k)
{
	for (size_t i = 0; i < sizeof(one_way) / sizeof(one_way[0]); i++)
		if (strcmp(k->section, one_way[i][0]) == 0 &&
		    strcmp(k->name, one_way[i][1]) == 0)
			return true;
	return false;
}

/* The line of K's section that keeps K's pair partner out of the way, into
   BUF; "" if K has none. */
static const char *
partner_line(const struct config_key_info *k, char *buf, size_t cap)
{
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		if (strcmp(k->section, pairs[i].section) != 0)
			continue;
		if (strcmp(k->name, pairs[i].low) == 0) {
			const struct config_key_info *h =
				find_key(pairs[i].section, pairs[i].high);
			snprintf(buf, cap, "%s = %llu\n", h->name,
				 (unsigned long long)h->max);
		} else if (strcmp(k->name, pairs[i].high) == 0) {
			const struct config_key_info *lo =
				find_key(pairs[i].section, pairs[i].low);
			snprintf(buf, cap, "%s = %llu\n", lo->name,
				 (unsigned long long)lo->min);
		}
	}
	return buf;
}

/* Plain decimal: 0, -1 syntax or overflow. */
static int
ref_decimal(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* The file with key K set to V (the default listen and upstream
   replaced when K is one of them). */
static void
build(const struct config_key_info *k, const char *v, char *buf, size_t cap)
{
	static const char *const sections[][2] = {
		{"gateway", "[gateway]"}, {"limits", "[limits]"},
		{"admin", "[admin]"},     {"tls", "[tls]"},
		{"tls NAME", "[tls fuzz]"}, {"route PATH", "[route /]"},
	};
	bool listen = strcmp(k->section, "gateway") == 0 &&
		      strcmp(k->name, "listen") == 0;
	bool upstream = strcmp(k->section, "route PATH") == 0 &&
			strcmp(k->name, "upstream") == 0;
	char partner[128];
	size_t o = 0;
	int n;

	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		bool here = strcmp(k->section, sections[i][0]) == 0;
		bool always = i == 0 || i + 1 == sizeof(sections) /
							 sizeof(sections[0]);
		if (!here && !always)
			continue;
		n = snprintf(buf + o, cap - o, "%s\n", sections[i][1]);
		CHECK(n > 0 && (size_t)n < cap - o);
		o += (size_t)n;
		if (i == 0)
			n = snprintf(buf + o, cap - o, "listen = %s\n",
				     listen ? v : "127.0.0.1:8080");
		else if (!always)
			n = 0;
		else
			n = snprintf(buf + o, cap - o, "upstream = %s\n",
				     upstream ? v : UPSTREAM);
		CHECK(n >= 0 && (size_t)n < cap - o);
		o += (size_t)n;
		if (!here || listen || upstream)
			continue;
		n = snprintf(buf + o, cap - o, "%s%s = %s\n",
			     partner_line(k, partner, sizeof(partner)), k->name,
			     v);
		CHECK(n > 0 && (size_t)n < cap - o);
		o += (size_t)n;
	}
}

/* Load the file with K = V; NULL if refused. */
static struct config *
load(const struct config_key_info *k, const char *v)
{
	char text[1024], err[512];
	struct config *c;

	build(k, v, text, sizeof(text));
	c = config_load_string(text, NAME, err, sizeof(err));
	if (c != NULL)
		check_config(c);
	else
		CHECK(err[0] != '\0');
	return c;
}

/* The ITEM-th comma-separated item of V into OUT; false past the end. */
static bool
item(const char *v, size_t idx, char *out, size_t cap)
{
	for (; idx > 0; idx--) {
		v = strchr(v, ',');
		if (v == NULL)
			return false;
		v++;
	}
	size_t n = strcspn(v, ",");
	CHECK(n < cap);
	memcpy(out, v, n);
	out[n] = '\0';
	return true;
}

/* Is each item of V (a list) valid, and is it what C holds? */
static bool
check_list(const struct config_key_info *k, const char *v,
	   const struct config *c)
{
	const struct config_route *r = c ? &c->routes[0] : NULL;
	char it[VALUE_MAX + 1];
	size_t i, stored = 0;
	bool ok = true, any = false;

	for (i = 0; item(v, i, it, sizeof(it)); i++) {
		struct netaddr_net net;
		struct netaddr_rule rule;
		struct sockaddr_storage ss;
		socklen_t len;
		char norm[ACCESS_ORIGIN_MAX];

		if (it[0] == '\0')
			return false; /* empty item */
		switch (k->type) {
		case KT_CIDR_LIST:
			if (netaddr_parse_net(it, &net) < 0)
				return false;
			if (c != NULL)
				CHECK(memcmp(&net, &c->trusted_proxies[stored],
					     sizeof(net)) == 0);
			stored++;
			break;
		case KT_TARGET_ALLOW:
			if (netaddr_parse_rule(it, &rule) < 0)
				return false;
			if (c != NULL)
				CHECK(memcmp(&rule, &r->target_allow[stored],
					     sizeof(rule)) == 0);
			stored++;
			break;
		case KT_ORIGINS:
			if (strcmp(it, "*") == 0) {
				any = true;
				break;
			}
			if (strcasecmp(it, "null") == 0 ||
			    access_origin_normalize(it, strlen(it), norm,
						    sizeof(norm)) < 0)
				return false;
			if (c != NULL) {
				const struct config_origins *o =
					strcmp(k->section, "route PATH") == 0
						? &r->origins
						: &c->origins;
				CHECK(strcmp(o->v[stored], norm) == 0);
			}
			stored++;
			break;
		default: /* KT_LISTEN */
			if (config_parse_listen(it, &ss, &len) < 0)
				return false;
			if (c != NULL)
				CHECK(c->listens[stored].addr_len == len &&
				      memcmp(&c->listens[stored].addr, &ss,
					     len) == 0);
			else
				for (size_t j = 0; j < i; j++) {
					char prev[VALUE_MAX + 1];
					struct sockaddr_storage ps;
					socklen_t pl;
					CHECK(item(v, j, prev, sizeof(prev)));
					if (config_parse_listen(prev, &ps,
								&pl) == 0 &&
					    pl == len &&
					    memcmp(&ps, &ss, len) == 0)
						ok = false; /* duplicate */
				}
			stored++;
			break;
		}
	}
	if (c != NULL) {
		switch (k->type) {
		case KT_CIDR_LIST:
			CHECK(c->n_trusted_proxies == stored);
			break;
		case KT_TARGET_ALLOW:
			CHECK(r->n_target_allow == stored);
			break;
		case KT_ORIGINS:
			CHECK((strcmp(k->section, "route PATH") == 0
				       ? r->origins.n == stored &&
						 r->origins.any == any
				       : c->origins.n == stored &&
						 c->origins.any == any));
			break;
		default:
			CHECK(c->n_listens == stored);
			break;
		}
	}
	return ok;
}

/* A loaded upstream, written back canonically, loads to the same. */
static void
check_upstream(const struct config_key_info *k, const char *v,
	       const struct config *c)
{
	const struct config_route *r = &c->routes[0];
	char canon[VALUE_MAX + 32];
	struct config *again;

	CHECK(strcmp(r->upstream, v) == 0);
	switch (r->kind) {
	case UPSTREAM_ECHO:
		CHECK(strcmp(v, "echo") == 0);
		return;
	case UPSTREAM_UNIX:
		CHECK(strncmp(v, "unix:", 5) == 0 &&
		      strcmp(r->unix_path, v + 5) == 0);
		return;
	case UPSTREAM_TOKENFILE:
		abort(); /* needs target_allow */
	case UPSTREAM_TCP:
		break;
	}
	CHECK(r->tls == (strncmp(v, "tls://", 6) == 0));
	snprintf(canon, sizeof(canon), "%s%s%s%s:%u", r->tls ? "tls://" : "",
		 strchr(r->host, ':') ? "[" : "", r->host,
		 strchr(r->host, ':') ? "]" : "", (unsigned)r->port);
	again = load(k, canon);
	CHECK(again != NULL);
	CHECK(again->routes[0].kind == UPSTREAM_TCP &&
	      again->routes[0].tls == r->tls &&
	      again->routes[0].port == r->port &&
	      strcmp(again->routes[0].host, r->host) == 0);
	config_free(again);
}

/* Key K set to V: loads exactly when V is valid, and stores V. */
static void
fuzz_key(const struct config_key_info *k, const char *v)
{
	struct config *c = load(k, v);
	const char *base = NULL;
	uint64_t n = 0;
	bool want = false;
	struct sockaddr_storage ss;
	socklen_t len;

	if (c != NULL)
		base = strcmp(k->section, "route PATH") == 0
			       ? (const char *)&c->routes[0]
		       : strcmp(k->section, "tls NAME") == 0
			       ? (c->tls.n_sni > 0 ? (const char *)c->tls.sni
						   : NULL)
			       : (const char *)c;
	switch (k->type) {
	case KT_COUNT:
		want = ref_decimal(v, &n) == 0 && n >= k->min && n <= k->max;
		break;
	case KT_SIZE:
		want = config_parse_size(v, &n) == 0 && n >= k->min &&
		       n <= k->max;
		break;
	case KT_DURATION:
		want = config_parse_duration(v, &n) == 0 && n >= k->min &&
		       n <= k->max;
		break;
	case KT_CLOSE_CODE:
		want = ref_decimal(v, &n) == 0 && n <= 65535 && n != 1005 &&
		       n != 1006 && n != 1015 &&
		       ws_close_code_is_valid((unsigned)n);
		break;
	case KT_BOOL:
		if (strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 ||
		    strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0) {
			want = true;
			n = 1;
		} else {
			want = strcasecmp(v, "off") == 0 ||
			       strcasecmp(v, "no") == 0 ||
			       strcasecmp(v, "false") == 0 ||
			       strcmp(v, "0") == 0;
		}
		break;
	case KT_ADMIN_LISTEN:
		want = config_parse_listen(v, &ss, &len) == 0;
		if (c != NULL)
			CHECK(c->has_admin && c->admin.addr_len == len &&
			      memcmp(&c->admin.addr, &ss, len) == 0);
		break;
	case KT_RATE: {
		const char *slash = strchr(v, '/');
		char num[VALUE_MAX + 1];
		size_t nl = slash ? (size_t)(slash - v) : strlen(v);
		memcpy(num, v, nl);
		num[nl] = '\0';
		want = nl < 24 && ref_decimal(num, &n) == 0 && n <= k->max &&
		       (slash == NULL || strcmp(slash, "/s") == 0 ||
			strcmp(slash, "/m") == 0 || strcmp(slash, "/h") == 0);
		if (c != NULL)
			CHECK(c->limits.new_connections_rate == n &&
			      c->limits.new_connections_per_ms ==
				      (slash == NULL || slash[1] == 's' ? 1000u
				       : slash[1] == 'm' ? 60000u
							 : 3600000u));
		break;
	}
	case KT_KEYWORD:
		for (const struct config_word *w = k->words; w->word != NULL;
		     w++) {
			if (w->value != CONFIG_WORD_NOTE &&
			    (k->nocase ? strcasecmp(v, w->word)
				       : strcmp(v, w->word)) == 0) {
				want = true;
				n = w->value;
				break;
			}
		}
		break;
	case KT_WORKERS: /* auto: 0 */
		want = strcmp(v, "auto") == 0 ||
		       (ref_decimal(v, &n) == 0 && n >= k->min && n <= k->max);
		break;
	case KT_UPSTREAM:
		if (c != NULL)
			check_upstream(k, v, c);
		config_free(c);
		return; /* no independent reader: implication only */
	case KT_LISTEN:
	case KT_CIDR_LIST:
	case KT_ORIGINS:
	case KT_TARGET_ALLOW:
		want = check_list(k, v, c);
		break;
	default: /* no independent reader: loads or not, a sane config */
		config_free(c);
		return;
	}
	if (is_one_way(k))
		CHECK(c == NULL || want);
	else
		CHECK((c != NULL) == want);
	if (c != NULL && k->width != 0) {
		CHECK(base != NULL);
		CHECK(field_value(base + k->offset, k->width) == n);
	}
	config_free(c);
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0) {
		text = malloc(size);
		CHECK(text != NULL);
		memcpy(text, data + 1, size - 1);
		text[size - 1] = '\0'; /* a NUL inside ends it early */
		fuzz_file(text);
		free(text);
		return 0;
	}
	if (size < 2)
		return 0;
	/* The value: printable, no blanks, no comment characters. */
	char v[VALUE_MAX + 1];
	size_t n = 0;
	for (size_t i = 2; i < size && n < VALUE_MAX; i++)
		if (data[i] > 0x20 && data[i] < 0x7f && data[i] != ';' &&
		    data[i] != '#')
			v[n++] = (char)data[i];
	v[n] = '\0';
	if (n == 0)
		return 0; /* "key =": inih's business, not a value */
	fuzz_key(&keys[data[1] % n_keys], v);
	return 0;
}
