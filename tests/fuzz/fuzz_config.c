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
 * Byte 0 odd: byte 1 picks a key, the rest (printable, no blanks or
 * comment characters) is its value, written into an otherwise minimal
 * valid file.  The load must succeed exactly when an independent reading
 * of the value says it is valid (sizes and durations through the public
 * config_parse_size / config_parse_duration, counts, close codes and
 * booleans by hand, lists item by item through the netaddr and access
 * parsers), and must store that value.  An upstream that loads is
 * written back in its canonical form and loads to the same route.
 * abort() on any mismatch.  Only file names under a directory that does
 * not exist are resolved; nothing is written.
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
#define KIB ((uint64_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)
#define DMAX ((uint64_t)365 * 24 * 3600 * 1000)
#define VALUE_MAX 150 /* key, " = " and value stay under inih's line */

/* Quiet: nothing is logged at error level by the loader. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(LOG_ERROR);
	return 0;
}

/* ---- whole files ---- */

/* A loaded config is within every documented limit. */
static void
check_config(const struct config *c)
{
	const struct config_limits *l = &c->limits;

	CHECK(c->n_listens >= 1 && c->n_routes >= 1);
	CHECK(c->max_connections >= 1 && c->max_connections <= 1000000);
	CHECK(c->workers <= 256);
	CHECK(l->handshake_timeout_ms >= 1 && l->handshake_timeout_ms <= DMAX);
	CHECK(l->max_request_line >= 64 && l->max_request_line <= MIB);
	CHECK(l->max_header_bytes >= 256 && l->max_header_bytes <= MIB);
	CHECK(l->max_request_line <= l->max_header_bytes);
	CHECK(l->max_headers >= 1 && l->max_headers <= 10000);
	CHECK(l->buffer_limit >= KIB && l->buffer_limit <= GIB);
	CHECK(l->max_message >= 1);
	CHECK(l->max_frame >= KIB && l->max_frame <= 16 * MIB);
	CHECK(l->idle_timeout_ms <= DMAX && l->ping_interval_ms <= DMAX);
	CHECK(l->pong_timeout_ms >= 1 && l->pong_timeout_ms <= DMAX);
	CHECK(l->close_timeout_ms >= 1 && l->close_timeout_ms <= DMAX);
	CHECK(l->drain_timeout_ms <= DMAX);
	CHECK(l->new_connections_rate <= 1000000);
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
		const uint16_t codes[] = {r->code_refused, r->code_unreachable,
					  r->code_timeout, r->code_dns,
					  r->code_reset, r->code_tls};
		CHECK(r->path != NULL && r->path[0] == '/');
		CHECK(r->upstream != NULL);
		/* a route's own path leads to it (no duplicates, '*' only
		   ends a prefix route) */
		CHECK(config_find_route(c, r->path, strlen(r->path)) == r);
		for (size_t k = 0; k < 6; k++)
			CHECK(ws_close_code_is_valid(codes[k]) &&
			      codes[k] != 1005 && codes[k] != 1006 &&
			      codes[k] != 1015);
		CHECK(r->connect_timeout_ms >= 1 &&
		      r->connect_timeout_ms <= DMAX);
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

enum vkind {
	V_COUNT,
	V_SIZE,
	V_DURATION,
	V_BOOL,
	V_CLOSE_CODE,
	V_CIDR_LIST,
	V_ORIGINS,
	V_TARGET_ALLOW,
	V_LISTEN,
	V_ADMIN_LISTEN,
	V_UPSTREAM,
	V_LOG_LEVEL,
	V_RATE,
	V_KEYWORD, /* one of WORDS; the field holds its index */
	V_WORKERS,
};

/* A key, where it goes, how to read its value. */
struct fkey {
	const char *section; /* "gateway", "limits", "admin", "route" */
	const char *name;
	enum vkind kind;
	uint64_t min, max;
	size_t offset, width; /* of the field in struct config or route */
	bool route;
	const char *words; /* V_KEYWORD: blank-separated, in field order */
	bool nocase;
};

#define FIELD_(base, f) offsetof(base, f), sizeof(((base *)0)->f)
#define CF(f) FIELD_(struct config, f), false, NULL, false
#define RF(f) FIELD_(struct config_route, f), true, NULL, false
#define CFK(f, words, nocase) FIELD_(struct config, f), false, words, nocase
#define RFK(f, words, nocase) FIELD_(struct config_route, f), true, words, nocase
#define NOF 0, 0, false, NULL, false

static const struct fkey keys[] = {
	{"gateway", "max_connections", V_COUNT, 1, 1000000, CF(max_connections)},
	{"gateway", "access_log", V_BOOL, 0, 1, CF(access_log)},
	{"gateway", "splice", V_BOOL, 0, 1, CF(splice)},
	{"gateway", "trusted_proxies", V_CIDR_LIST, 0, 0, NOF},
	{"gateway", "origins", V_ORIGINS, 0, 0, NOF},
	{"gateway", "listen", V_LISTEN, 0, 0, NOF},
	{"gateway", "log_level", V_LOG_LEVEL, 0, 0, NOF},
	{"admin", "listen", V_ADMIN_LISTEN, 0, 0, NOF},
	{"limits", "handshake_timeout", V_DURATION, 1, DMAX,
	 CF(limits.handshake_timeout_ms)},
	{"limits", "idle_timeout", V_DURATION, 0, DMAX,
	 CF(limits.idle_timeout_ms)},
	{"limits", "max_request_line", V_SIZE, 64, 8 * KIB, /* <= headers */
	 CF(limits.max_request_line)},
	{"limits", "max_header_bytes", V_SIZE, 4 * KIB, MIB, /* >= line */
	 CF(limits.max_header_bytes)},
	{"limits", "max_headers", V_COUNT, 1, 10000, CF(limits.max_headers)},
	{"limits", "buffer_limit", V_SIZE, KIB, GIB, CF(limits.buffer_limit)},
	{"limits", "max_message", V_SIZE, 1, UINT64_MAX,
	 CF(limits.max_message)},
	{"limits", "max_frame", V_SIZE, KIB, 16 * MIB, CF(limits.max_frame)},
	{"limits", "new_connections_per_ip", V_RATE, 0, 1000000, NOF},
	{"route", "upstream", V_UPSTREAM, 0, 0, NOF},
	{"route", "connect_timeout", V_DURATION, 1, DMAX,
	 RF(connect_timeout_ms)},
	{"route", "code_refused", V_CLOSE_CODE, 0, 0, RF(code_refused)},
	{"route", "code_reset", V_CLOSE_CODE, 0, 0, RF(code_reset)},
	{"route", "origins", V_ORIGINS, 0, 0, NOF},
	{"route", "target_allow", V_TARGET_ALLOW, 0, 0, NOF},
	{"gateway", "workers", V_WORKERS, 1, 256, CF(workers)},
	{"gateway", "cpu_affinity", V_KEYWORD, 0, 0,
	 CFK(pin_workers, "off auto", false)},
	{"gateway", "real_ip_header", V_KEYWORD, 0, 0,
	 CFK(real_ip_header, "x-forwarded-for forwarded", true)},
	{"gateway", "origin_missing", V_KEYWORD, 0, 0,
	 CFK(origin_missing_deny, "allow deny", false)},
	{"route", "frame_type", V_KEYWORD, 0, 0,
	 RFK(frame_type, "binary text", false)},
	{"route", "on_reset", V_KEYWORD, 0, 0,
	 RFK(abort_on_reset, "close abort", false)},
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

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

/* The file with key K set to V (the default listen and upstream
   replaced when K is one of them). */
static void
build(const struct fkey *k, const char *v, char *buf, size_t cap)
{
	bool listen = strcmp(k->section, "gateway") == 0 &&
		      strcmp(k->name, "listen") == 0;
	bool upstream = strcmp(k->name, "upstream") == 0;
	int n = snprintf(
		buf, cap,
		"[gateway]\nlisten = %s\n%s%s%s%s"
		"[limits]\n%s%s%s%s"
		"[admin]\n%s%s%s%s"
		"[route /]\nupstream = %s\n%s%s%s%s",
		listen ? v : "127.0.0.1:8080",
#define AT(sec) (strcmp(k->section, sec) == 0 && !listen && !upstream)
		AT("gateway") ? k->name : "", AT("gateway") ? " = " : "",
		AT("gateway") ? v : "", AT("gateway") ? "\n" : "",
		AT("limits") ? k->name : "", AT("limits") ? " = " : "",
		AT("limits") ? v : "", AT("limits") ? "\n" : "",
		AT("admin") ? k->name : "", AT("admin") ? " = " : "",
		AT("admin") ? v : "", AT("admin") ? "\n" : "",
		upstream ? v : "echo",
		AT("route") ? k->name : "", AT("route") ? " = " : "",
		AT("route") ? v : "", AT("route") ? "\n" : "");
#undef AT
	CHECK(n > 0 && (size_t)n < cap);
}

/* Load the file with K = V; NULL if refused. */
static struct config *
load(const struct fkey *k, const char *v)
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
check_list(const struct fkey *k, const char *v, const struct config *c)
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
		switch (k->kind) {
		case V_CIDR_LIST:
			if (netaddr_parse_net(it, &net) < 0)
				return false;
			if (c != NULL)
				CHECK(memcmp(&net, &c->trusted_proxies[stored],
					     sizeof(net)) == 0);
			stored++;
			break;
		case V_TARGET_ALLOW:
			if (netaddr_parse_rule(it, &rule) < 0)
				return false;
			if (c != NULL)
				CHECK(memcmp(&rule, &r->target_allow[stored],
					     sizeof(rule)) == 0);
			stored++;
			break;
		case V_ORIGINS:
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
					strcmp(k->section, "route") == 0
						? &r->origins
						: &c->origins;
				CHECK(strcmp(o->v[stored], norm) == 0);
			}
			stored++;
			break;
		default: /* V_LISTEN */
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
		switch (k->kind) {
		case V_CIDR_LIST:
			CHECK(c->n_trusted_proxies == stored);
			break;
		case V_TARGET_ALLOW:
			CHECK(r->n_target_allow == stored);
			break;
		case V_ORIGINS:
			CHECK((strcmp(k->section, "route") == 0
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
check_upstream(const struct fkey *k, const char *v, const struct config *c)
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
fuzz_key(const struct fkey *k, const char *v)
{
	struct config *c = load(k, v);
	const char *base = c == NULL ? NULL
			   : k->route ? (const char *)&c->routes[0]
				      : (const char *)c;
	uint64_t n = 0;
	bool want = false;
	enum log_level lv;
	struct sockaddr_storage ss;
	socklen_t len;

	switch (k->kind) {
	case V_COUNT:
		want = ref_decimal(v, &n) == 0 && n >= k->min && n <= k->max;
		break;
	case V_SIZE:
		want = config_parse_size(v, &n) == 0 && n >= k->min &&
		       n <= k->max;
		break;
	case V_DURATION:
		want = config_parse_duration(v, &n) == 0 && n >= k->min &&
		       n <= k->max;
		break;
	case V_CLOSE_CODE:
		want = ref_decimal(v, &n) == 0 && n <= 65535 && n != 1005 &&
		       n != 1006 && n != 1015 &&
		       ws_close_code_is_valid((unsigned)n);
		break;
	case V_BOOL:
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
	case V_LOG_LEVEL:
		want = log_level_parse(v, &lv) == 0;
		if (c != NULL)
			CHECK(c->log_level == lv);
		break;
	case V_ADMIN_LISTEN:
		want = config_parse_listen(v, &ss, &len) == 0;
		if (c != NULL)
			CHECK(c->has_admin && c->admin.addr_len == len &&
			      memcmp(&c->admin.addr, &ss, len) == 0);
		break;
	case V_RATE: {
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
	case V_KEYWORD: {
		const char *w = k->words;
		for (n = 0; *w != '\0'; n++) {
			size_t wl = strcspn(w, " ");
			if (strlen(v) == wl &&
			    (k->nocase ? strncasecmp(v, w, wl)
				       : strncmp(v, w, wl)) == 0) {
				want = true;
				break;
			}
			w += wl + (w[wl] == ' ');
		}
		break;
	}
	case V_WORKERS:
		want = strcmp(v, "auto") == 0 ||
		       (ref_decimal(v, &n) == 0 && n >= k->min && n <= k->max);
		break;
	case V_UPSTREAM:
		if (c != NULL)
			check_upstream(k, v, c);
		config_free(c);
		return; /* no independent reader: implication only */
	default: /* lists */
		want = check_list(k, v, c);
		break;
	}
	CHECK((c != NULL) == want);
	if (c != NULL && k->width != 0)
		CHECK(field_value(base + k->offset, k->width) == n);
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
	fuzz_key(&keys[data[1] % N_KEYS], v);
	return 0;
}
