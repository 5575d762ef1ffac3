/*
 * test_config.c - Check suite for the INI configuration loader (config.c).
 *
 * Every rejection rule has its own test that names the exact line and key
 * expected in the message; the shipped etc/wsgate.ini must load (its path
 * comes from $WSGATE_SRCDIR, default ".").
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* Two lines of [gateway], two of [route /echo]: snippets start at line 5. */
#define BASE                                                                   \
	"[gateway]\n"                                                          \
	"listen = 127.0.0.1:8080\n"                                            \
	"[route /echo]\n"                                                      \
	"upstream = echo\n"

static char err[512];

/* Load TEXT as "t.ini"; the error (if any) is in err. */
static struct config *
load(const char *text)
{
	err[0] = '\0';
	return config_load_string(text, "t.ini", err, sizeof(err));
}

/* Load BASE followed by SNIPPET. */
static struct config *
load_base(const char *snippet)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s%s", BASE, snippet);
	return load(buf);
}

/* TEXT must fail with exactly the message WANT. */
static void
expect_error(const char *text, const char *want)
{
	struct config *c = load(text);

	ck_assert_msg(c == NULL, "loaded, expected error: %s", want);
	ck_assert_str_eq(err, want);
}

/* BASE + SNIPPET must fail with a message that starts with WANT. */
static void
expect_base_error_prefix(const char *snippet, const char *want)
{
	struct config *c = load_base(snippet);

	ck_assert_msg(c == NULL, "loaded, expected error: %s", want);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
		      "got \"%s\", want prefix \"%s\"", err, want);
}

/* A [limits] line KV (at line 6) must fail with a message starting WANT. */
static void
expect_limit_error(const char *kv, const char *want)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "[limits]\n%s\n", kv);
	expect_base_error_prefix(buf, want);
}

/* A [limits] line KV must load; the config is returned. */
static struct config *
load_limit(const char *kv)
{
	char buf[512];
	struct config *c;

	snprintf(buf, sizeof(buf), "[limits]\n%s\n", kv);
	c = load_base(buf);
	ck_assert_msg(c != NULL, "%s: %s", kv, err);
	return c;
}

/* A route line KV (route /r at line 5, KV at line 6) must fail with WANT. */
static void
expect_route_error(const char *kv, const char *want)
{
	char buf[512];

	if (strncmp(kv, "upstream", 8) == 0)
		snprintf(buf, sizeof(buf), "[route /r]\n%s\n", kv);
	else
		snprintf(buf, sizeof(buf), "[route /r]\n%s\nupstream = echo\n",
			 kv);
	expect_base_error_prefix(buf, want);
}

/* Load BASE + [route /r] with the line KV and return route /r. */
static struct config *
load_route(const char *kv, const struct config_route **r)
{
	char buf[512];
	struct config *c;

	if (strncmp(kv, "upstream", 8) == 0)
		snprintf(buf, sizeof(buf), "[route /r]\n%s\n", kv);
	else
		snprintf(buf, sizeof(buf), "[route /r]\n%s\nupstream = echo\n",
			 kv);
	c = load_base(buf);
	ck_assert_msg(c != NULL, "%s: %s", kv, err);
	*r = config_find_route(c, "/r", 2);
	ck_assert_ptr_nonnull(*r);
	return c;
}

/* Path of the shipped example config. */
static void
shipped_path(char *buf, size_t len)
{
	const char *dir = getenv("WSGATE_SRCDIR");

	snprintf(buf, len, "%s/etc/wsgate.ini", dir ? dir : ".");
}

/* The whole file REL under $WSGATE_SRCDIR, NUL-terminated; free it. */
static char *
read_src_file(const char *rel)
{
	const char *dir = getenv("WSGATE_SRCDIR");
	char path[1024];
	char *buf;
	long n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", rel);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	/* roff's "\-" is a plain '-' for this comparison */
	for (char *r = buf, *w = buf;; r++) {
		if (r[0] == '\\' && r[1] == '-')
			r++;
		*w++ = *r;
		if (*r == '\0')
			break;
	}
	return buf;
}

/* True if TEXT has a line "[#;]* *NAME = DEF" (DEF NULL: any value), DEF
   followed by the end of the line or a blank. */
static bool
ini_names(const char *text, const char *name, const char *def)
{
	size_t nl = strlen(name), dl = def ? strlen(def) : 0;

	for (const char *l = text; l != NULL && *l != '\0';
	     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *p = l + strspn(l, "#; \t");
		if (strncmp(p, name, nl) != 0 || strncmp(p + nl, " = ", 3) != 0)
			continue;
		p += nl + 3;
		if (def == NULL ||
		    (strncmp(p, def, dl) == 0 && strchr(" \t\n", p[dl]) != NULL &&
		     p[dl] != '\0'))
			return true;
	}
	return false;
}

/* True if the man page TEXT has an entry ".BI NAME ..." and, if DEF is
   set, one such entry says "Default" then ".BR DEF ." (DEF maybe quoted). */
static bool
man_names(const char *text, const char *name, const char *def)
{
	char head[128], want[160], wantq[160];

	snprintf(head, sizeof(head), "\n.BI %s \"", name);
	snprintf(want, sizeof(want), "Default\n.BR %s .\n", def ? def : "");
	snprintf(wantq, sizeof(wantq), "Default\n.BR \"%s\" .\n",
		 def ? def : "");
	for (const char *e = strstr(text, head); e != NULL;
	     e = strstr(e + 1, head)) {
		const char *end = e + strlen(head), *x;
		/* the entry ends at the next paragraph or section */
		for (x = end; *x != '\0'; x++)
			if (x[0] == '\n' && x[1] == '.' &&
			    (strncmp(x + 1, ".TP", 3) == 0 ||
			     strncmp(x + 1, ".SH", 3) == 0 ||
			     strncmp(x + 1, ".SS", 3) == 0))
				break;
		if (def == NULL)
			return true;
		for (const char *d = end; d < x; d++)
			if (strncmp(d, want, strlen(want)) == 0 ||
			    strncmp(d, wantq, strlen(wantq)) == 0)
				return true;
	}
	return false;
}

/* etc/wsgate.ini and docs/wsgate.ini.5 name every key of the table with
   the default the code applies: the documents cannot drift from it. */
START_TEST(test_documents_name_every_key)
{
	char *ini = read_src_file("etc/wsgate.ini");
	char *man = read_src_file("docs/wsgate.ini.5");
	struct config_key_info k;
	char bad[4096];
	size_t o = 0, n;

	bad[0] = '\0';
	for (n = 0; config_key_info(n, &k) == 0; n++) {
		ck_assert_ptr_nonnull(k.name);
		ck_assert_ptr_nonnull(k.doc);
		ck_assert_ptr_nonnull(k.section);
		if (!ini_names(ini, k.name, k.def) && o < sizeof(bad))
			o += (size_t)snprintf(bad + o, sizeof(bad) - o,
					      "\n  etc/wsgate.ini: [%s] %s = %s",
					      k.section, k.name,
					      k.def ? k.def : "...");
		if (!man_names(man, k.name, k.def) && o < sizeof(bad))
			o += (size_t)snprintf(bad + o, sizeof(bad) - o,
					      "\n  wsgate.ini.5: [%s] %s, "
					      "Default %s",
					      k.section, k.name,
					      k.def ? k.def : "(none)");
	}
	ck_assert_int_gt(n, 60);
	ck_assert_msg(bad[0] == '\0', "documents disagree with the table:%s",
		      bad);
	free(ini);
	free(man);
}
END_TEST

/* The table's defaults are what a minimal file loads with. */
START_TEST(test_table_defaults_apply)
{
	struct config_key_info k;
	struct config *c;

	ck_assert_int_eq(config_key_info(0, &k), 0);
	ck_assert_str_eq(k.name, "listen");
	ck_assert(k.restart);
	ck_assert_ptr_null(k.def);
	c = load(BASE);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->routes[0].auth_cookie, "wsgate_token");
	ck_assert_str_eq(c->routes[0].auth_protocol_prefix, "token.");
	ck_assert_uint_eq(c->routes[0].auth_from,
			  AUTH_FROM_QUERY | AUTH_FROM_COOKIE |
				  AUTH_FROM_BEARER | AUTH_FROM_PROTOCOL);
	ck_assert_uint_eq(c->limits.new_connections_per_ms, 1000);
	ck_assert_uint_eq(c->limits.stall_timeout_ms, 60000);
	config_free(c);
	for (size_t i = 0; config_key_info(i, &k) == 0; i++)
		if (strcmp(k.name, "code_tls") == 0)
			ck_assert(k.tls_only && !k.restart);
}
END_TEST

/* Write LEN bytes of TEXT to a new temporary file; its name into PATH. */
static void
write_temp(char *path, size_t pathlen, const char *text, size_t len)
{
	int fd;

	snprintf(path, pathlen, "/tmp/test_config_XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* --- the shipped file ------------------------------------------------ */

START_TEST(test_shipped_file_loads)
{
	char path[4096];
	struct config *c;
	const struct config_route *r;

	shipped_path(path, sizeof(path));
	c = config_load(path, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->n_listens, 1);
	ck_assert_str_eq(c->listens[0].text, "127.0.0.1:8080");
	ck_assert_uint_eq(c->n_routes, 1);
	r = config_find_route(c, "/echo", 5);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->kind, UPSTREAM_ECHO);
	ck_assert_str_eq(c->file, path);
	config_free(c);
}
END_TEST

/* Uncommenting the example route of the shipped file gives a valid route. */
START_TEST(test_shipped_example_route_is_valid)
{
	char path[4096], line[512];
	char *text = calloc(1, 65536);
	size_t n = 0;
	bool in_example = false;
	struct config *c;
	const struct config_route *r;
	FILE *f;

	ck_assert_ptr_nonnull(text);
	shipped_path(path, sizeof(path));
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *out = line;
		if (strncmp(line, "#[route /vnc]", 13) == 0)
			in_example = true;
		if (in_example && line[0] == '#')
			out = line + 1;
		else if (line[0] != '#')
			in_example = false;
		ck_assert_uint_lt(n + strlen(out), 65536);
		memcpy(text + n, out, strlen(out));
		n += strlen(out);
	}
	fclose(f);
	c = load(text);
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->n_routes, 2);
	r = config_find_route(c, "/vnc", 4);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->kind, UPSTREAM_TCP);
	ck_assert_str_eq(r->host, "127.0.0.1");
	ck_assert_uint_eq(r->port, 5900);
	ck_assert_uint_eq(r->n_subprotocols, 1);
	ck_assert_str_eq(r->subprotocols[0], "binary");
	config_free(c);
	free(text);
}
END_TEST

/* --- defaults and every key ------------------------------------------ */

START_TEST(test_defaults)
{
	struct config *c = load(BASE);
	const struct config_route *r;

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->max_connections, 10000);
	ck_assert_int_eq(c->log_level, LOG_INFO);
	ck_assert(c->access_log);
	ck_assert_uint_eq(c->limits.handshake_timeout_ms, 10000);
	ck_assert_uint_eq(c->limits.max_request_line, 4096);
	ck_assert_uint_eq(c->limits.max_header_bytes, 8192);
	ck_assert_uint_eq(c->limits.max_headers, 64);
	ck_assert_uint_eq(c->limits.buffer_limit, 256 * 1024);
	ck_assert_uint_eq(c->limits.max_message, 1024 * 1024);
	ck_assert_uint_eq(c->limits.max_frame, 64 * 1024);
	ck_assert_uint_eq(c->limits.idle_timeout_ms, 0);
	ck_assert_uint_eq(c->limits.ping_interval_ms, 30000);
	ck_assert_uint_eq(c->limits.pong_timeout_ms, 20000);
	ck_assert_uint_eq(c->limits.close_timeout_ms, 5000);
	ck_assert_uint_eq(c->limits.stall_timeout_ms, 60000);
	ck_assert_uint_eq(c->limits.drain_timeout_ms, 10000);
	ck_assert_ptr_null(c->resolv_conf.value);
	r = config_find_route(c, "/echo", 5);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->path, "/echo");
	ck_assert_int_eq(r->kind, UPSTREAM_ECHO);
	ck_assert_str_eq(r->upstream, "echo");
	ck_assert_uint_eq(r->n_subprotocols, 0);
	ck_assert_int_eq(r->frame_type, FRAME_BINARY);
	ck_assert_uint_eq(r->connect_timeout_ms, 10000);
	ck_assert(!r->abort_on_reset);
	ck_assert_uint_eq(r->code_refused, 1011);
	ck_assert_uint_eq(r->code_unreachable, 1011);
	ck_assert_uint_eq(r->code_timeout, 1011);
	ck_assert_uint_eq(r->code_dns, 1011);
	ck_assert_uint_eq(r->code_reset, 1011);
	ck_assert_int_eq(r->line, 3);
	ck_assert_int_eq(c->listens[0].line, 2);
	config_free(c);
}
END_TEST

START_TEST(test_every_key_set)
{
	struct config *c = load("[gateway]\n"
				"listen = [::1]:9000\n"
				"max_connections = 7\n"
				"log_level = debug\n"
				"access_log = off\n"
				"[limits]\n"
				"handshake_timeout = 3s\n"
				"max_request_line = 1k\n"
				"max_header_bytes = 2k\n"
				"max_headers = 12\n"
				"buffer_limit = 1m\n"
				"max_message = 2g\n"
				"max_frame = 16m\n"
				"idle_timeout = 5m\n"
				"ping_interval = 0\n"
				"pong_timeout = 250ms\n"
				"close_timeout = 1h\n"
				"drain_timeout = 0\n"
				"stall_timeout = 90s\n"
				"[route /x]\n"
				"upstream = my_svc.example.com:443\n"
				"subprotocols = binary, base64\n"
				"frame_type = text\n"
				"connect_timeout = 1500ms\n"
				"on_reset = abort\n"
				"code_refused = 1013\n"
				"code_unreachable = 1014\n"
				"code_timeout = 4000\n"
				"code_dns = 3000\n"
				"code_reset = 1000\n");
	const struct config_route *r;

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->max_connections, 7);
	ck_assert_int_eq(c->log_level, LOG_DEBUG);
	ck_assert(!c->access_log);
	ck_assert_uint_eq(c->limits.handshake_timeout_ms, 3000);
	ck_assert_uint_eq(c->limits.max_request_line, 1024);
	ck_assert_uint_eq(c->limits.max_header_bytes, 2048);
	ck_assert_uint_eq(c->limits.max_headers, 12);
	ck_assert_uint_eq(c->limits.buffer_limit, 1024 * 1024);
	ck_assert_uint_eq(c->limits.max_message, 2ULL << 30);
	ck_assert_uint_eq(c->limits.max_frame, 16 * 1024 * 1024);
	ck_assert_uint_eq(c->limits.idle_timeout_ms, 300000);
	ck_assert_uint_eq(c->limits.ping_interval_ms, 0);
	ck_assert_uint_eq(c->limits.pong_timeout_ms, 250);
	ck_assert_uint_eq(c->limits.close_timeout_ms, 3600000);
	ck_assert_uint_eq(c->limits.drain_timeout_ms, 0);
	ck_assert_uint_eq(c->limits.stall_timeout_ms, 90000);
	r = config_find_route(c, "/x", 2);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->kind, UPSTREAM_TCP);
	ck_assert_str_eq(r->host, "my_svc.example.com");
	ck_assert_uint_eq(r->port, 443);
	ck_assert_str_eq(r->upstream, "my_svc.example.com:443");
	ck_assert_uint_eq(r->n_subprotocols, 2);
	ck_assert_str_eq(r->subprotocols[0], "binary");
	ck_assert_str_eq(r->subprotocols[1], "base64");
	ck_assert_int_eq(r->frame_type, FRAME_TEXT);
	ck_assert_uint_eq(r->connect_timeout_ms, 1500);
	ck_assert(r->abort_on_reset);
	ck_assert_uint_eq(r->code_refused, 1013);
	ck_assert_uint_eq(r->code_unreachable, 1014);
	ck_assert_uint_eq(r->code_timeout, 4000);
	ck_assert_uint_eq(r->code_dns, 3000);
	ck_assert_uint_eq(r->code_reset, 1000);
	ck_assert_int_eq(r->line, 20);
	config_free(c);
}
END_TEST

/* Each route starts from the defaults, not from the previous route. */
START_TEST(test_route_defaults_per_route)
{
	struct config *c = load_base("[route /a]\nupstream = echo\n"
				     "frame_type = text\ncode_reset = 1014\n"
				     "[route /b]\nupstream = echo\n");
	const struct config_route *a, *b;

	ck_assert_msg(c != NULL, "%s", err);
	a = config_find_route(c, "/a", 2);
	b = config_find_route(c, "/b", 2);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(a->frame_type, FRAME_TEXT);
	ck_assert_uint_eq(a->code_reset, 1014);
	ck_assert_int_eq(b->frame_type, FRAME_BINARY);
	ck_assert_uint_eq(b->code_reset, 1011);
	config_free(c);
}
END_TEST

/* --- value parsers ---------------------------------------------------- */

START_TEST(test_size_valid)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
		{"0", 0},
		{"1", 1},
		{"1024", 1024},
		{"007", 7},
		{"64k", 65536},
		{"64K", 65536},
		{"1m", 1048576},
		{"1M", 1048576},
		{"1g", 1073741824},
		{"3G", 3ULL << 30},
		{"18446744073709551615", UINT64_MAX},
		{"17179869183g", 17179869183ULL << 30},
		{"18014398509481983k", 18014398509481983ULL << 10},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t v = 12345;
		ck_assert_msg(config_parse_size(ok[i].s, &v) == 0, "%s",
			      ok[i].s);
		ck_assert_msg(v == ok[i].v, "%s -> %" PRIu64, ok[i].s, v);
	}
}
END_TEST

START_TEST(test_size_invalid)
{
	static const char *const bad[] = {
		"", "abc", "k", "-1", "+1", "1.5k", "1 k", " 1", "1k ", "1kb",
		"1t", "1b", "0x10", "1kk", "1e3",
		"18446744073709551616",   /* 2^64 */
		"99999999999999999999999",
		"17179869184g",           /* 2^64 */
		"18014398509481984k",     /* 2^64 */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 12345;
		ck_assert_msg(config_parse_size(bad[i], &v) == -1, "%s",
			      bad[i]);
		ck_assert_uint_eq(v, 12345);
	}
}
END_TEST

START_TEST(test_duration_valid)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} ok[] = {
		{"0", 0},
		{"0ms", 0},
		{"500ms", 500},
		{"30s", 30000},
		{"30", 30000},
		{"5m", 300000},
		{"1h", 3600000},
		{"2H", 7200000},
		{"10MS", 10},
		{"18446744073709551615ms", UINT64_MAX},
		{"18446744073709551s", 18446744073709551000ULL},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t v = 12345;
		ck_assert_msg(config_parse_duration(ok[i].s, &v) == 0, "%s",
			      ok[i].s);
		ck_assert_msg(v == ok[i].ms, "%s -> %" PRIu64, ok[i].s, v);
	}
}
END_TEST

START_TEST(test_duration_invalid)
{
	static const char *const bad[] = {
		"", "s", "ms", "-1s", "+1s", "1.5s", "1 s", "1d", "1sec", "1hr",
		"1mss", "abc", " 5s",
		"18446744073709552s",     /* * 1000 > 2^64 */
		"18446744073709551616ms", /* 2^64 */
		"5124095576030432h",      /* * 3600000 > 2^64 */
		"18446744073709551615",   /* bare seconds, * 1000 overflows */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 12345;
		ck_assert_msg(config_parse_duration(bad[i], &v) == -1, "%s",
			      bad[i]);
		ck_assert_uint_eq(v, 12345);
	}
}
END_TEST

START_TEST(test_bool_values)
{
	static const struct {
		const char *s;
		bool v;
	} ok[] = {
		{"on", true},    {"off", false}, {"yes", true}, {"no", false},
		{"true", true},  {"false", false}, {"1", true}, {"0", false},
		{"ON", true},    {"False", false},
	};
	char buf[128];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct config *c;
		snprintf(buf, sizeof(buf),
			 "[gateway]\nlisten = :1\naccess_log = %s\n"
			 "[route /]\nupstream = echo\n",
			 ok[i].s);
		c = load(buf);
		ck_assert_msg(c != NULL, "%s: %s", ok[i].s, err);
		ck_assert_msg(c->access_log == ok[i].v, "%s", ok[i].s);
		config_free(c);
	}
}
END_TEST

START_TEST(test_bool_invalid)
{
	static const char *const bad[] = {"2", "enable", "o", "y", "tru",
					  "onn", "-1"};
	char buf[128], want[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf),
			 "[gateway]\nlisten = :1\naccess_log = %s\n", bad[i]);
		snprintf(want, sizeof(want),
			 "t.ini:3: access_log: expected on/off, yes/no, "
			 "true/false or 1/0, got \"%s\"",
			 bad[i]);
		expect_error(buf, want);
	}
	expect_error("[gateway]\nlisten = :1\naccess_log =\n",
		     "t.ini:3: access_log: expected on/off, yes/no, "
		     "true/false or 1/0, got \"\"");
}
END_TEST

/* Parse S as a listen address; check family, port and address text. */
static void
check_listen(const char *s, int family, unsigned port, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	char text[INET6_ADDRSTRLEN];

	ck_assert_msg(config_parse_listen(s, &ss, &len) == 0, "%s", s);
	ck_assert_int_eq(ss.ss_family, family);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		ck_assert_uint_eq(len, sizeof(*sin));
		ck_assert_uint_eq(ntohs(sin->sin_port), port);
		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		ck_assert_uint_eq(len, sizeof(*sin6));
		ck_assert_uint_eq(ntohs(sin6->sin6_port), port);
		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
	}
	ck_assert_str_eq(text, addr);
}

START_TEST(test_listen_valid)
{
	check_listen("127.0.0.1:8080", AF_INET, 8080, "127.0.0.1");
	check_listen("10.1.2.3:1", AF_INET, 1, "10.1.2.3");
	check_listen("0.0.0.0:65535", AF_INET, 65535, "0.0.0.0");
	check_listen("*:8080", AF_INET, 8080, "0.0.0.0");
	check_listen(":8080", AF_INET, 8080, "0.0.0.0");
	check_listen("[::1]:8080", AF_INET6, 8080, "::1");
	check_listen("[::]:443", AF_INET6, 443, "::");
	check_listen("[2001:db8::7]:80", AF_INET6, 80, "2001:db8::7");
	check_listen("[::ffff:127.0.0.1]:80", AF_INET6, 80,
		     "::ffff:127.0.0.1");
}
END_TEST

START_TEST(test_listen_invalid)
{
	static const char *const bad[] = {
		"", ":", "*:", "8080", "127.0.0.1", "127.0.0.1:",
		"127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:99999999",
		"127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:80x",
		"127.0.0.1: 80", "localhost:80", "example.com:80",
		"1.2.3:80", "256.0.0.1:80", "::1:8080", "[::1]", "[::1]8080",
		"[::1]:", "[]:80", "[zz::1]:80", "[127.0.0.1]:80",
		"[fe80::1%eth0]:80", "[::1:80", "**:80", " 127.0.0.1:80",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sockaddr_storage ss;
		socklen_t len = 0;
		ck_assert_msg(config_parse_listen(bad[i], &ss, &len) == -1,
			      "%s", bad[i]);
	}
}
END_TEST

START_TEST(test_listen_repeated_and_comma_separated)
{
	struct config *c = load("[gateway]\n"
				"listen = 127.0.0.1:8080, [::1]:8080\n"
				"; a comment\n"
				"listen=*:9090\n"
				"[route /echo]\n"
				"upstream = echo\n");

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->n_listens, 3);
	ck_assert_str_eq(c->listens[0].text, "127.0.0.1:8080");
	ck_assert_str_eq(c->listens[1].text, "[::1]:8080");
	ck_assert_str_eq(c->listens[2].text, "*:9090");
	ck_assert_int_eq(c->listens[0].line, 2);
	ck_assert_int_eq(c->listens[1].line, 2);
	ck_assert_int_eq(c->listens[2].line, 4);
	ck_assert_int_eq(c->listens[1].addr.ss_family, AF_INET6);
	ck_assert_uint_eq(c->listens[1].addr_len,
			  sizeof(struct sockaddr_in6));
	config_free(c);
}
END_TEST

START_TEST(test_listen_bad_in_config)
{
	expect_error("[gateway]\nlisten = 127.0.0.1:8080, localhost:80\n",
		     "t.ini:2: listen: expected a numeric address like "
		     "127.0.0.1:8080, [::1]:8080 or *:8080 (port 1-65535), "
		     "got \"localhost:80\"");
}
END_TEST

START_TEST(test_listen_empty_item)
{
	expect_error("[gateway]\n\nlisten = 127.0.0.1:1,,127.0.0.1:2\n",
		     "t.ini:3: listen: empty item in list");
	expect_error("[gateway]\nlisten =\n", "t.ini:2: listen: empty item "
					      "in list");
}
END_TEST

START_TEST(test_listen_duplicate)
{
	expect_error("[gateway]\nlisten = 127.0.0.1:8080\n"
		     "listen = 127.0.0.1:8080\n",
		     "t.ini:3: listen: duplicate address \"127.0.0.1:8080\" "
		     "(first at line 2)");
	/* *:80 and 0.0.0.0:80 are the same address */
	expect_error("[gateway]\nlisten = *:80, 0.0.0.0:80\n",
		     "t.ini:2: listen: duplicate address \"0.0.0.0:80\" "
		     "(first at line 2)");
}
END_TEST

/* --- file structure errors --------------------------------------------- */

START_TEST(test_no_listen)
{
	expect_error("[gateway]\nmax_connections = 5\n[route /echo]\n"
		     "upstream = echo\n",
		     "t.ini: no listen address (set listen in [gateway])");
	expect_error("", "t.ini: no listen address (set listen in [gateway])");
}
END_TEST

START_TEST(test_no_route)
{
	expect_error("[gateway]\nlisten = :8080\n",
		     "t.ini: no route (add a [route /path] section)");
}
END_TEST

START_TEST(test_unknown_section)
{
	expect_error(BASE "\n[gatway]\nlisten = :1\n",
		     "t.ini:6: [gatway]: unknown section (expected [gateway], "
		     "[limits], [admin], [tls], [tls NAME] or [route PATH])");
	/* an empty unknown section is still an error */
	expect_error(BASE "[foo]\n", "t.ini:5: [foo]: unknown section "
				     "(expected [gateway], [limits], [admin], "
				     "[tls], [tls NAME] or [route PATH])");
	expect_error(BASE "[routes /x]\n", "t.ini:5: [routes /x]: unknown "
					   "section (expected [gateway], "
					   "[limits], [admin], [tls], [tls NAME] "
					   "or [route PATH])");
	expect_error(BASE "[tlsx]\n", "t.ini:5: [tlsx]: unknown section "
				      "(expected [gateway], [limits], [admin], "
				      "[tls], [tls NAME] or [route PATH])");
}
END_TEST

START_TEST(test_unknown_key)
{
	expect_error(BASE "[limits]\nmax_frames = 1k\n",
		     "t.ini:6: max_frames: unknown key in [limits]");
	expect_error("[gateway]\nlisten = :1\nlog = info\n",
		     "t.ini:3: log: unknown key in [gateway]");
	expect_error(BASE "upstreams = echo\n",
		     "t.ini:5: upstreams: unknown key in [route /echo]");
	/* a key of another section is unknown here */
	expect_error(BASE "max_frame = 1k\n",
		     "t.ini:5: max_frame: unknown key in [route /echo]");
	/* key names are case-sensitive */
	expect_error("[gateway]\nLISTEN = :1\n",
		     "t.ini:2: LISTEN: unknown key in [gateway]");
}
END_TEST

/* splice: a boolean, off by default. */
START_TEST(test_splice_key)
{
	struct config *c;

	c = config_load_string("[gateway]\nlisten = :1\n[route /e]\n"
			       "upstream = echo\n", "t.ini", err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert(!c->splice);
	config_free(c);
	c = config_load_string("[gateway]\nlisten = :1\nsplice = on\n"
			       "[route /e]\nupstream = echo\n",
			       "t.ini", err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert(c->splice);
	config_free(c);
	c = config_load_string("[gateway]\nlisten = :1\nsplice = no\n"
			       "[route /e]\nupstream = echo\n",
			       "t.ini", err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert(!c->splice);
	config_free(c);
	expect_error("[gateway]\nlisten = :1\nsplice = auto\n",
		     "t.ini:3: splice: expected on/off, yes/no, true/false "
		     "or 1/0, got \"auto\"");
	expect_error("[gateway]\nlisten = :1\n[limits]\nsplice = on\n",
		     "t.ini:4: splice: unknown key in [limits]");
}
END_TEST

/* workers: auto or 1-256; cpu_affinity: auto or off; [admin] listen: one
   numeric address. */
START_TEST(test_workers_and_admin)
{
	struct config *c;

	c = config_load_string("[gateway]\nlisten = :1\n[route /e]\n"
			       "upstream = echo\n", "t.ini", err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->workers, 0);
	ck_assert(!c->pin_workers); /* cpu_affinity = off by default */
	ck_assert(!c->has_admin);
	config_free(c);
	c = config_load_string("[gateway]\nlisten = :1\nworkers = 3\n"
			       "[admin]\nlisten = 127.0.0.1:9090\n"
			       "[route /e]\nupstream = echo\n",
			       "t.ini", err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->workers, 3);
	ck_assert(c->has_admin);
	ck_assert_str_eq(c->admin.text, "127.0.0.1:9090");
	ck_assert_int_eq(c->admin.line, 5);
	config_free(c);
	c = config_load_string("[gateway]\nlisten = :1\nworkers = auto\n"
			       "[route /e]\nupstream = echo\n",
			       "t.ini", err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->workers, 0);
	config_free(c);
	c = config_load_string("[gateway]\nlisten = :1\ncpu_affinity = auto\n"
			       "[route /e]\nupstream = echo\n",
			       "t.ini", err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert(c->pin_workers);
	config_free(c);
	c = config_load_string("[gateway]\nlisten = :1\ncpu_affinity = off\n"
			       "[route /e]\nupstream = echo\n",
			       "t.ini", err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert(!c->pin_workers);
	config_free(c);
	expect_error("[gateway]\nlisten = :1\ncpu_affinity = 0-3\n",
		     "t.ini:3: cpu_affinity: expected auto or off, got \"0-3\"");
	expect_error("[gateway]\nlisten = :1\ncpu_affinity = Auto\n",
		     "t.ini:3: cpu_affinity: expected auto or off, got "
		     "\"Auto\"");
	expect_error("[gateway]\nlisten = :1\nworkers = 0\n",
		     "t.ini:3: workers: must be at least 1, got \"0\"");
	expect_error("[gateway]\nlisten = :1\nworkers = 257\n",
		     "t.ini:3: workers: must be at most 256, got \"257\"");
	expect_error("[gateway]\nlisten = :1\nworkers = many\n",
		     "t.ini:3: workers: expected a whole number, got \"many\"");
	expect_error("[gateway]\nlisten = :1\n[admin]\nlisten = localhost:9\n",
		     "t.ini:4: listen: expected one numeric address like "
		     "127.0.0.1:9090 or [::1]:9090, got \"localhost:9\"");
	expect_error("[gateway]\nlisten = :1\n[admin]\n[admin]\n",
		     "t.ini:4: [admin]: duplicate section (first at line 3)");
}
END_TEST

/* A reference keeps the config alive; the last unref frees it (ASan and
   valgrind report a leak or a use after free otherwise). */
START_TEST(test_refcount)
{
	struct config *c = config_load_string(
		"[gateway]\nlisten = :1\n[route /e]\nupstream = echo\n",
		"t.ini", err, sizeof(err));

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_ptr_eq(config_ref(c), c);
	config_unref(c);
	ck_assert_str_eq(c->routes[0].path, "/e"); /* still alive */
	config_unref(c);
}
END_TEST

START_TEST(test_key_outside_section)
{
	expect_error("# leading comment\nlisten = :1\n[gateway]\n",
		     "t.ini:2: listen: key outside of any section (put it "
		     "under [gateway], [limits], [admin], [tls], [tls NAME] "
		     "or [route PATH])");
}
END_TEST

START_TEST(test_duplicate_key)
{
	expect_error("[gateway]\nlisten = :1\nlog_level = info\n\n"
		     "log_level = debug\n",
		     "t.ini:5: log_level: duplicate key (first set at line 3)");
	expect_error(BASE "[limits]\nmax_frame = 1k\nmax_frame = 2k\n",
		     "t.ini:7: max_frame: duplicate key (first set at line 6)");
	expect_error(BASE "frame_type = text\nupstream = echo\n",
		     "t.ini:6: upstream: duplicate key (first set at line 4)");
}
END_TEST

/* The same key in two routes is not a duplicate. */
START_TEST(test_same_key_in_two_routes)
{
	struct config *c = load_base("[route /b]\nupstream = echo\n"
				     "frame_type = text\n");

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->n_routes, 2);
	config_free(c);
}
END_TEST

START_TEST(test_duplicate_section)
{
	expect_error(BASE "[gateway]\n",
		     "t.ini:5: [gateway]: duplicate section (first at line 1)");
	expect_error(BASE "[limits]\n[limits]\n",
		     "t.ini:6: [limits]: duplicate section (first at line 5)");
}
END_TEST

START_TEST(test_duplicate_route)
{
	expect_error(BASE "\n# again\n[route /echo]\nupstream = echo\n",
		     "t.ini:7: [route /echo]: duplicate route (first at line "
		     "3)");
	/* also when the duplicate is empty */
	expect_error(BASE "[route  /echo ]\n",
		     "t.ini:5: [route /echo]: duplicate route (first at line "
		     "3)");
}
END_TEST

START_TEST(test_route_without_upstream)
{
	expect_error(BASE "\n[route /vnc]\nframe_type = text\n"
		     "[route /z]\nupstream = echo\n",
		     "t.ini:6: [route /vnc]: no upstream (add upstream = "
		     "host:port, tls://host:port, unix:/path, echo or "
		     "tokenfile:/path)");
	/* an empty route section */
	expect_error(BASE "[route /empty]\n; nothing here\n",
		     "t.ini:5: [route /empty]: no upstream (add upstream = "
		     "host:port, tls://host:port, unix:/path, echo or "
		     "tokenfile:/path)");
}
END_TEST

START_TEST(test_route_path_invalid)
{
	expect_error(BASE "[route echo]\nupstream = echo\n",
		     "t.ini:5: [route echo]: path must start with '/'");
	expect_error(BASE "[route]\n", "t.ini:5: [route]: a route needs a "
				       "path, like [route /echo]");
	expect_error(BASE "[route /a?b]\n",
		     "t.ini:5: [route /a?b]: path must not contain '?' or '#' "
		     "(the query is not part of the route)");
	expect_error(BASE "[route /a#b]\n",
		     "t.ini:5: [route /a#b]: path must not contain '?' or '#' "
		     "(the query is not part of the route)");
	expect_error(BASE "[route /a b]\n",
		     "t.ini:5: [route /a b]: path must be printable ASCII "
		     "without blanks (percent-encode other bytes)");
	expect_error(BASE "[route /a\tb]\n",
		     "t.ini:5: [route /a?b]: path must be printable ASCII "
		     "without blanks (percent-encode other bytes)");
	expect_error(BASE "[route /\xc3\xa9]\n",
		     "t.ini:5: [route /??]: path must be printable ASCII "
		     "without blanks (percent-encode other bytes)");
}
END_TEST

START_TEST(test_syntax_errors)
{
	expect_error(BASE "just words\n",
		     "t.ini:5: expected 'key = value', '[section]' or a "
		     "comment");
	expect_error(BASE "[limits\n",
		     "t.ini:5: section header without closing ']'");
	expect_error(BASE "[limits] x\n", "t.ini:5: unexpected text after ']'");
	expect_error(BASE "= 5\n", "t.ini:5: missing key name before '='");
	expect_error(BASE "upstream = echo\x01\n",
		     "t.ini:5: control character 0x01 in line");
}
END_TEST

START_TEST(test_line_too_long)
{
	char buf[4096], path[600];
	struct config *c;

	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	snprintf(buf, sizeof(buf), BASE "[route /%s]\n", path);
	c = load(buf);
	ck_assert_ptr_null(c);
	ck_assert_msg(strncmp(err, "t.ini:5: line too long", 22) == 0, "%s",
		      err);
	/* longer than inih's line buffer (200 in Debian's build) */
	path[200] = '\0';
	snprintf(buf, sizeof(buf), BASE "[limits]\nmax_frame = %s\n", path);
	c = load(buf);
	ck_assert_ptr_null(c);
	ck_assert_msg(strncmp(err, "t.ini:6: line too long", 22) == 0, "%s",
		      err);
	path[200] = 'a';
	/* a long comment is fine */
	snprintf(buf, sizeof(buf),
		 BASE "# %s\n; %s\n[route /l] ; %s\nupstream = echo # %s\n",
		 path, path, path, path);
	c = load(buf);
	ck_assert_msg(c != NULL, "%s", err);
	config_free(c);
}
END_TEST

/* Comments, blanks, indentation, CRLF, a BOM and ':' separators. */
START_TEST(test_lexical_forms)
{
	struct config *c =
		load("\xEF\xBB\xBF; comment\r\n"
		     "# comment\r\n"
		     "   [ gateway ]   ; trailing comment\r\n"
		     "\tlisten = 127.0.0.1:8080 # inline\r\n"
		     "\r\n"
		     "  log_level: warn ;inline\r\n"
		     "[route /a;b]\n"
		     "    upstream = echo\n"
		     "[route /x]\n"
		     "  upstream = echo\n"
		     "  frame_type = text\n");
	const struct config_route *r;

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->n_listens, 1);
	ck_assert_str_eq(c->listens[0].text, "127.0.0.1:8080");
	ck_assert_int_eq(c->log_level, LOG_WARN);
	ck_assert_ptr_nonnull(config_find_route(c, "/a;b", 4));
	ck_assert_ptr_null(config_find_route(c, "/a", 2));
	r = config_find_route(c, "/x", 2);
	ck_assert_ptr_nonnull(r);
	/* an indented key is a key, not a continuation of upstream */
	ck_assert_str_eq(r->upstream, "echo");
	ck_assert_int_eq(r->frame_type, FRAME_TEXT);
	ck_assert_int_eq(r->line, 9);
	config_free(c);
}
END_TEST

/* '#' and ';' only start a comment at the line start or after a blank. */
START_TEST(test_comment_needs_blank)
{
	expect_error(BASE "[limits]\nmax_frame = 2k#x\n",
		     "t.ini:6: max_frame: expected a size like 64k or 1m, got "
		     "\"2k#x\"");
	expect_error(BASE "[limits]\nmax_frame = 2k;x\n",
		     "t.ini:6: max_frame: expected a size like 64k or 1m, got "
		     "\"2k;x\"");
}
END_TEST

/* --- [gateway] and [limits] values -------------------------------------- */

START_TEST(test_log_level)
{
	expect_error("[gateway]\nlisten = :1\nlog_level = verbose\n",
		     "t.ini:3: log_level: expected error, warn, info or debug, "
		     "got \"verbose\"");
}
END_TEST

START_TEST(test_max_connections)
{
	expect_error("[gateway]\nlisten = :1\nmax_connections = 0\n",
		     "t.ini:3: max_connections: must be at least 1, got \"0\"");
	expect_error("[gateway]\nlisten = :1\nmax_connections = 10k\n",
		     "t.ini:3: max_connections: expected a whole number, got "
		     "\"10k\"");
	expect_error("[gateway]\nlisten = :1\nmax_connections = 1000001\n",
		     "t.ini:3: max_connections: must be at most 1000000, got "
		     "\"1000001\"");
	expect_error("[gateway]\nlisten = :1\n"
		     "max_connections = 99999999999999999999\n",
		     "t.ini:3: max_connections: \"99999999999999999999\" is "
		     "out of range");
}
END_TEST

START_TEST(test_size_errors_in_config)
{
	expect_limit_error("buffer_limit = abc",
			   "t.ini:6: buffer_limit: expected a size like 64k or "
			   "1m, got \"abc\"");
	expect_limit_error("buffer_limit = -1k",
			   "t.ini:6: buffer_limit: expected a size like 64k or "
			   "1m, got \"-1k\"");
	expect_limit_error("max_message = 20000000000g",
			   "t.ini:6: max_message: \"20000000000g\" is out of "
			   "range");
	expect_limit_error("buffer_limit =",
			   "t.ini:6: buffer_limit: expected a size like 64k or "
			   "1m, got \"\"");
}
END_TEST

START_TEST(test_size_minimums)
{
	struct config *c;

	expect_limit_error("buffer_limit = 1023",
			   "t.ini:6: buffer_limit: must be at least 1k, got "
			   "\"1023\"");
	c = load_limit("buffer_limit = 1k");
	ck_assert_uint_eq(c->limits.buffer_limit, 1024);
	config_free(c);
	expect_limit_error("max_frame = 1000",
			   "t.ini:6: max_frame: must be at least 1k, got "
			   "\"1000\"");
	expect_limit_error("max_frame = 16385k",
			   "t.ini:6: max_frame: must be at most 16m, got "
			   "\"16385k\"");
	c = load_limit("max_frame = 1k");
	ck_assert_uint_eq(c->limits.max_frame, 1024);
	config_free(c);
	expect_limit_error("max_header_bytes = 255",
			   "t.ini:6: max_header_bytes: must be at least 256, "
			   "got \"255\"");
	expect_limit_error("max_request_line = 63",
			   "t.ini:6: max_request_line: must be at least 64, "
			   "got \"63\"");
	expect_limit_error("max_message = 0",
			   "t.ini:6: max_message: must be at least 1, got "
			   "\"0\"");
	expect_limit_error("max_headers = 0",
			   "t.ini:6: max_headers: must be at least 1, got "
			   "\"0\"");
	expect_limit_error("buffer_limit = 2g",
			   "t.ini:6: buffer_limit: must be at most 1g, got "
			   "\"2g\"");
}
END_TEST

START_TEST(test_request_line_vs_header_bytes)
{
	struct config *c;

	expect_base_error_prefix("[limits]\nmax_request_line = 16k\n"
				 "max_header_bytes = 16k\n"
				 "max_request_line = 1k\n",
				 "t.ini:8: max_request_line: duplicate key");
	expect_error(BASE "[limits]\nmax_header_bytes = 1k\n",
		     "t.ini:6: max_header_bytes: must be at least "
		     "max_request_line (4096)");
	expect_error(BASE "[limits]\nmax_request_line = 9k\n",
		     "t.ini:6: max_request_line: must not exceed "
		     "max_header_bytes (8192)");
	c = load_limit("max_request_line = 8k");
	ck_assert_uint_eq(c->limits.max_request_line, 8192);
	config_free(c);
}
END_TEST

START_TEST(test_duration_errors_in_config)
{
	struct config *c;

	expect_limit_error("handshake_timeout = 10 s",
			   "t.ini:6: handshake_timeout: expected a duration "
			   "like 500ms, 30s, 5m or 1h, got \"10 s\"");
	expect_limit_error("handshake_timeout = 0",
			   "t.ini:6: handshake_timeout: must be greater "
			   "than 0");
	expect_limit_error("pong_timeout = 0ms",
			   "t.ini:6: pong_timeout: must be greater than 0");
	expect_limit_error("close_timeout = 0",
			   "t.ini:6: close_timeout: must be greater than 0");
	expect_limit_error("idle_timeout = 8761h",
			   "t.ini:6: idle_timeout: must be at most 8760h, got "
			   "\"8761h\"");
	expect_limit_error("idle_timeout = 99999999999999999999",
			   "t.ini:6: idle_timeout: \"99999999999999999999\" is "
			   "out of range");
	/* 0 means off where allowed */
	c = load_limit("idle_timeout = 0");
	ck_assert_uint_eq(c->limits.idle_timeout_ms, 0);
	config_free(c);
	c = load_limit("ping_interval = 0");
	ck_assert_uint_eq(c->limits.ping_interval_ms, 0);
	config_free(c);
	c = load_limit("drain_timeout = 0s");
	ck_assert_uint_eq(c->limits.drain_timeout_ms, 0);
	config_free(c);
}
END_TEST

/* --- routes ------------------------------------------------------------ */

START_TEST(test_upstream_valid)
{
	const struct config_route *r;
	struct config *c;
	char big[200];

	c = load_route("upstream = 127.0.0.1:5900", &r);
	ck_assert_int_eq(r->kind, UPSTREAM_TCP);
	ck_assert_str_eq(r->host, "127.0.0.1");
	ck_assert_uint_eq(r->port, 5900);
	config_free(c);
	c = load_route("upstream = [::1]:65535", &r);
	ck_assert_int_eq(r->kind, UPSTREAM_TCP);
	ck_assert_str_eq(r->host, "::1");
	ck_assert_uint_eq(r->port, 65535);
	ck_assert_str_eq(r->upstream, "[::1]:65535");
	config_free(c);
	c = load_route("upstream = vnc-server.internal:1", &r);
	ck_assert_str_eq(r->host, "vnc-server.internal");
	ck_assert_uint_eq(r->port, 1);
	config_free(c);
	c = load_route("upstream = unix:/run/app.sock", &r);
	ck_assert_int_eq(r->kind, UPSTREAM_UNIX);
	ck_assert_str_eq(r->unix_path, "/run/app.sock");
	ck_assert_ptr_null(r->host);
	config_free(c);
	/* sun_path holds 108 bytes: 107 characters and the NUL */
	memset(big, 'p', sizeof(big));
	memcpy(big, "upstream = unix:/", 17);
	big[16 + 107] = '\0';
	c = load_route(big, &r);
	ck_assert_uint_eq(strlen(r->unix_path), 107);
	config_free(c);
}
END_TEST

START_TEST(test_upstream_invalid)
{
	static const struct {
		const char *v, *msg;
	} bad[] = {
		{"", "expected host:port, [IPv6]:port, tls://host:port, "
		     "unix:/path, echo or tokenfile:/path, got \"\""},
		{"localhost", "expected host:port, [IPv6]:port, "
			      "tls://host:port, unix:/path, echo or "
			      "tokenfile:/path, got \"localhost\""},
		{"ECHO", "expected host:port"},
		{":80", "expected host:port"},
		{"[::1]", "expected host:port"},
		{"[::1]80", "expected host:port"},
		{"[]:80", "expected host:port"},
		{"host:0", "port must be 1-65535, got \"0\""},
		{"host:65536", "port must be 1-65535, got \"65536\""},
		{"host:", "port must be 1-65535, got \"\""},
		{"host:8o", "port must be 1-65535, got \"8o\""},
		{"host:-1", "port must be 1-65535, got \"-1\""},
		{"[::1]:0", "port must be 1-65535, got \"0\""},
		{"::1:80", "put an IPv6 address in brackets, like [::1]:5900"},
		{"[zz::1]:80", "bad IPv6 address \"zz::1\""},
		{"[127.0.0.1]:80", "bad IPv6 address \"127.0.0.1\""},
		{"300.1.1.1:80", "bad IPv4 address \"300.1.1.1\""},
		{"1.2.3:80", "bad IPv4 address \"1.2.3\""},
		{"bad!host:80", "bad host name \"bad!host\" (letters, digits, "
				"'-', '_' and '.' only)"},
		{"-a.com:80", "bad host name \"-a.com\""},
		{"a-.com:80", "bad host name \"a-.com\""},
		{"a..b:80", "bad host name \"a..b\""},
		{"a.b.:80", "bad host name \"a.b.\""},
		{"a b:80", "bad host name \"a b\""},
		{"unix:relative.sock", "unix socket path must be absolute, got "
				       "\"relative.sock\""},
		{"unix:", "unix socket path must be absolute, got \"\""},
	};
	char kv[256], want[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(kv, sizeof(kv), "upstream = %s", bad[i].v);
		snprintf(want, sizeof(want), "t.ini:6: upstream: %s",
			 bad[i].msg);
		expect_route_error(kv, want);
	}
}
END_TEST

START_TEST(test_upstream_long_names)
{
	char kv[300];

	/* a label of 64 characters */
	snprintf(kv, sizeof(kv), "upstream = %064d.com:80", 0);
	memset(kv + 11, 'a', 64);
	expect_route_error(kv, "t.ini:6: upstream: bad host name");
	/* 63 is fine */
	snprintf(kv, sizeof(kv), "upstream = %063d.com:80", 0);
	memset(kv + 11, 'a', 63);
	{
		const struct config_route *r;
		struct config *c = load_route(kv, &r);
		ck_assert_uint_eq(strlen(r->host), 67);
		config_free(c);
	}
	/* a unix path of 108 characters does not fit in sun_path */
	memset(kv, 'p', sizeof(kv));
	memcpy(kv, "upstream = unix:/", 17);
	kv[16 + 108] = '\0';
	expect_route_error(kv, "t.ini:6: upstream: unix socket path longer "
			       "than 107 bytes");
}
END_TEST

START_TEST(test_subprotocols)
{
	const struct config_route *r;
	struct config *c;

	c = load_route("subprotocols = binary ,base64,  v1.chat.example", &r);
	ck_assert_uint_eq(r->n_subprotocols, 3);
	ck_assert_str_eq(r->subprotocols[0], "binary");
	ck_assert_str_eq(r->subprotocols[1], "base64");
	ck_assert_str_eq(r->subprotocols[2], "v1.chat.example");
	config_free(c);
	c = load_route("subprotocols = !#$%&'*+-.^_`|~09azAZ", &r);
	ck_assert_uint_eq(r->n_subprotocols, 1);
	config_free(c);
	expect_route_error("subprotocols = a b",
			   "t.ini:6: subprotocols: \"a b\" is not a token "
			   "(RFC 9110 5.6.2)");
	expect_route_error("subprotocols = chat/1",
			   "t.ini:6: subprotocols: \"chat/1\" is not a token "
			   "(RFC 9110 5.6.2)");
	expect_route_error("subprotocols = a,,b",
			   "t.ini:6: subprotocols: empty item in list");
	expect_route_error("subprotocols =",
			   "t.ini:6: subprotocols: empty item in list");
	expect_route_error("subprotocols = a, b, a",
			   "t.ini:6: subprotocols: \"a\" is listed twice");
}
END_TEST

START_TEST(test_frame_type_and_on_reset)
{
	const struct config_route *r;
	struct config *c;

	c = load_route("frame_type = binary", &r);
	ck_assert_int_eq(r->frame_type, FRAME_BINARY);
	config_free(c);
	c = load_route("on_reset = close", &r);
	ck_assert(!r->abort_on_reset);
	config_free(c);
	expect_route_error("frame_type = Text",
			   "t.ini:6: frame_type: expected binary or text, got "
			   "\"Text\"");
	expect_route_error("on_reset = rst",
			   "t.ini:6: on_reset: expected close or abort, got "
			   "\"rst\"");
}
END_TEST

START_TEST(test_connect_timeout)
{
	const struct config_route *r;
	struct config *c;

	c = load_route("connect_timeout = 250ms", &r);
	ck_assert_uint_eq(r->connect_timeout_ms, 250);
	config_free(c);
	expect_route_error("connect_timeout = 0",
			   "t.ini:6: connect_timeout: must be greater than 0");
	expect_route_error("connect_timeout = soon",
			   "t.ini:6: connect_timeout: expected a duration like "
			   "500ms, 30s, 5m or 1h, got \"soon\"");
}
END_TEST

START_TEST(test_close_code_reserved)
{
	static const char *const keys[] = {"code_refused", "code_unreachable",
					   "code_timeout", "code_dns",
					   "code_reset"};
	static const unsigned reserved[] = {1005, 1006, 1015};
	char kv[128], want[256];

	for (size_t k = 0; k < 5; k++) {
		for (size_t i = 0; i < 3; i++) {
			snprintf(kv, sizeof(kv), "%s = %u", keys[k],
				 reserved[i]);
			snprintf(want, sizeof(want),
				 "t.ini:6: %s: %u is reserved and never sent "
				 "on the wire (RFC 6455 7.4.1); use e.g. 1011, "
				 "1013 or 1014",
				 keys[k], reserved[i]);
			expect_route_error(kv, want);
		}
	}
}
END_TEST

START_TEST(test_close_code_invalid)
{
	static const char *const bad[] = {"0", "999", "1004", "1016", "2000",
					  "2999", "5000", "65535", "65536",
					  "99999999"};
	char kv[128], want[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(kv, sizeof(kv), "code_refused = %s", bad[i]);
		snprintf(want, sizeof(want),
			 "t.ini:6: code_refused: %s is not a close code that "
			 "may be sent (1000-1003, 1007-1014, 3000-4999)",
			 bad[i]);
		expect_route_error(kv, want);
	}
	expect_route_error("code_refused = 1011x",
			   "t.ini:6: code_refused: expected a whole number, "
			   "got \"1011x\"");
	expect_route_error("code_refused = -1",
			   "t.ini:6: code_refused: expected a whole number, "
			   "got \"-1\"");
}
END_TEST

START_TEST(test_close_code_valid)
{
	static const unsigned ok[] = {1000, 1003, 1007, 1011, 1013, 1014,
				      3000, 4999};
	const struct config_route *r;
	char kv[64];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct config *c;
		snprintf(kv, sizeof(kv), "code_dns = %u", ok[i]);
		c = load_route(kv, &r);
		ck_assert_uint_eq(r->code_dns, ok[i]);
		config_free(c);
	}
}
END_TEST

START_TEST(test_find_route)
{
	struct config *c = load_base("[route /a/b]\nupstream = echo\n");

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_ptr_nonnull(config_find_route(c, "/echo", 5));
	ck_assert_str_eq(config_find_route(c, "/a/b", 4)->path, "/a/b");
	/* LEN bytes of a longer buffer */
	ck_assert_ptr_nonnull(config_find_route(c, "/echo?x=1", 5));
	ck_assert_ptr_null(config_find_route(c, "/echo/", 6));
	ck_assert_ptr_null(config_find_route(c, "/ech", 4));
	ck_assert_ptr_null(config_find_route(c, "/echoo", 6));
	ck_assert_ptr_null(config_find_route(c, "/a", 2));
	ck_assert_ptr_null(config_find_route(c, "/ECHO", 5));
	ck_assert_ptr_null(config_find_route(c, "/echo\0x", 7));
	ck_assert_ptr_null(config_find_route(c, "", 0));
	ck_assert_ptr_null(config_find_route(NULL, "/echo", 5));
	config_free(c);
	config_free(NULL);
}
END_TEST

/* --- files and the error buffer ------------------------------------------ */

START_TEST(test_load_file)
{
	char path[64], want[128];
	struct config *c;

	write_temp(path, sizeof(path), BASE "[limits]\nmax_frame = x\n",
		   strlen(BASE) + 23);
	c = config_load(path, err, sizeof(err));
	ck_assert_ptr_null(c);
	snprintf(want, sizeof(want),
		 "%s:6: max_frame: expected a size like 64k or 1m, got \"x\"",
		 path);
	ck_assert_str_eq(err, want);
	unlink(path);

	write_temp(path, sizeof(path), BASE, strlen(BASE));
	c = config_load(path, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_str_eq(c->file, path);
	config_free(c);
	unlink(path);
}
END_TEST

START_TEST(test_load_missing_file)
{
	struct config *c =
		config_load("/nonexistent/wsgate.ini", err, sizeof(err));

	ck_assert_ptr_null(c);
	ck_assert_str_eq(err, "/nonexistent/wsgate.ini: cannot open: No such "
			      "file or directory");
}
END_TEST

START_TEST(test_load_unreadable_file)
{
	char path[64], want[128];
	struct config *c;

	/* a directory opens but cannot be read, even as root */
	c = config_load("/tmp", err, sizeof(err));
	ck_assert_ptr_null(c);
	ck_assert_str_eq(err, "/tmp: cannot read: Is a directory");

	write_temp(path, sizeof(path), BASE, strlen(BASE));
	ck_assert_int_eq(chmod(path, 0), 0);
	c = config_load(path, err, sizeof(err));
	if (geteuid() != 0) {
		ck_assert_ptr_null(c);
		snprintf(want, sizeof(want),
			 "%s: cannot open: Permission denied", path);
		ck_assert_str_eq(err, want);
	}
	config_free(c);
	unlink(path);
}
END_TEST

START_TEST(test_load_file_with_nul)
{
	static const char text[] = "[gateway]\nlisten = :1\0x\n";
	char path[64], want[128];
	struct config *c;

	write_temp(path, sizeof(path), text, sizeof(text) - 1);
	c = config_load(path, err, sizeof(err));
	ck_assert_ptr_null(c);
	snprintf(want, sizeof(want), "%s:2: NUL byte in line", path);
	ck_assert_str_eq(err, want);
	unlink(path);
}
END_TEST

START_TEST(test_error_buffer_small_or_null)
{
	char small[12];

	ck_assert_ptr_null(config_load_string("[x]\n", "t.ini", NULL, 0));
	ck_assert_ptr_null(config_load_string("[x]\n", "t.ini", small, 0));
	memset(small, 'Z', sizeof(small));
	ck_assert_ptr_null(config_load_string("[x]\n", "t.ini", small,
					      sizeof(small)));
	ck_assert_str_eq(small, "t.ini:1: [x");
	ck_assert_ptr_null(config_load_string(NULL, NULL, err, sizeof(err)));
	ck_assert_str_eq(err, "(string): no text");
	/* an odd value is shown sanitised and cut */
	{
		char buf[512], big[200];
		memset(big, 'v', sizeof(big));
		big[150] = '\0';
		snprintf(buf, sizeof(buf), "[gateway]\nlisten = :1\n"
					   "log_level = \x80%s\n",
			 big);
		ck_assert_ptr_null(load(buf));
		ck_assert_msg(strstr(err, "got \"?vvvv") != NULL, "%s", err);
		ck_assert_msg(strstr(err, "v...\"") != NULL, "%s", err);
	}
}
END_TEST

/* xorshift64: a deterministic PRNG for the mutation test. */
static uint64_t
xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Random mutations of a valid file: load or fail cleanly, never crash. */
START_TEST(test_random_mutations)
{
	static const char seed_text[] =
		"[gateway]\nlisten = 127.0.0.1:8080, [::1]:8080\n"
		"max_connections = 100\n[limits]\nmax_frame = 64k\n"
		"idle_timeout = 5m\n[route /vnc]\nupstream = [::1]:5900\n"
		"subprotocols = binary, base64 ; c\ncode_dns = 1014\n"
		"[route /e]\nupstream = echo\n";
	static const char alphabet[] = "[]=:;#,/ \t\n\r0123456789kmgsh.-_xe*";
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	char buf[sizeof(seed_text) + 16];
	int loaded = 0;

	for (int iter = 0; iter < 3000; iter++) {
		struct config *c;
		int edits = 1 + (int)(xorshift64(&rng) % 4);
		memcpy(buf, seed_text, sizeof(seed_text));
		for (int e = 0; e < edits; e++) {
			size_t pos = xorshift64(&rng) % (sizeof(seed_text) - 1);
			uint64_t r = xorshift64(&rng);
			buf[pos] = (r & 1) ? (char)(1 + (r >> 8) % 255)
					   : alphabet[(r >> 8) %
						      (sizeof(alphabet) - 1)];
		}
		c = config_load_string(buf, "m.ini", err, sizeof(err));
		if (c != NULL) {
			loaded++;
			ck_assert_uint_ge(c->n_listens, 1);
			ck_assert_uint_ge(c->n_routes, 1);
			for (size_t i = 0; i < c->n_routes; i++)
				ck_assert_ptr_nonnull(c->routes[i].upstream);
			config_free(c);
		} else {
			ck_assert_msg(strncmp(err, "m.ini", 5) == 0, "%s", err);
		}
	}
	ck_assert_int_gt(loaded, 0);
}
END_TEST

/* --- TLS: listen flags, [tls], [tls NAME], tls:// upstreams ----------- */

/* A [tls] section with a certificate, for snippets that need one. */
#define TLS_SEC "[tls]\ncertificate = c.pem\nkey = k.pem\n"

START_TEST(test_listen_flags)
{
	struct config *c = load("[gateway]\n"
				"listen = 127.0.0.1:8443 tls, 127.0.0.1:8080\n"
				"listen = [::1]:8443 \t tls\n"
				"[route /echo]\nupstream = echo\n" TLS_SEC);

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->n_listens, 3);
	ck_assert(c->listens[0].tls);
	ck_assert(!c->listens[1].tls);
	ck_assert(c->listens[2].tls);
	ck_assert_str_eq(c->listens[0].text, "127.0.0.1:8443 tls");
	ck_assert_int_eq(c->listens[0].addr.ss_family, AF_INET);
	ck_assert_int_eq(c->listens[2].addr.ss_family, AF_INET6);
	ck_assert(config_has_tls_listener(c));
	config_free(c);
	c = load(BASE);
	ck_assert_ptr_nonnull(c);
	ck_assert(!config_has_tls_listener(c));
	config_free(c);
}
END_TEST

/* ---- access control (issue 7) ------------------------------------------- */

START_TEST(test_access_keys_set)
{
	struct config *c = load(
		"[gateway]\n"
		"listen = 127.0.0.1:8080 proxy_protocol, 127.0.0.1:8081\n"
		"trusted_proxies = 127.0.0.1/32, 10.0.0.0/8, ::1/128\n"
		"real_ip_header = Forwarded\n"
		"origins = HTTPS://App.Example.com:443, http://localhost:3000\n"
		"origin_missing = deny\n"
		"[limits]\n"
		"max_connections_per_ip = 4\n"
		"new_connections_per_ip = 30/m\n"
		"new_connections_burst = 9\n"
		"[route /a]\n"
		"upstream = 127.0.0.1:1\n"
		"auth_tokens = /etc/passwd\n"
		"auth_from = bearer, protocol\n"
		"auth_cookie = sess\n"
		"auth_protocol_prefix = auth.\n"
		"auth_failure = close\n"
		"send_proxy = v2\n"
		"origins = *\n"
		"origin_missing = allow\n"
		"[route /vnc/*]\n"
		"upstream = tokenfile:/etc/passwd\n"
		"target_allow = 127.0.0.0/8:5900-5999, [::1]/128:22\n"
		"[route /vnc/exact]\n"
		"upstream = echo\n");
	const struct config_route *a, *v;

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert(c->listens[0].proxy_protocol);
	ck_assert(!c->listens[1].proxy_protocol);
	ck_assert_uint_eq(c->n_trusted_proxies, 3);
	ck_assert_int_eq(c->real_ip_header, REAL_IP_FORWARDED);
	ck_assert_uint_eq(c->origins.n, 2);
	ck_assert_str_eq(c->origins.v[0], "https://app.example.com");
	ck_assert(c->origin_missing_deny);
	ck_assert_uint_eq(c->limits.max_connections_per_ip, 4);
	ck_assert_uint_eq(c->limits.new_connections_rate, 30);
	ck_assert_uint_eq(c->limits.new_connections_per_ms, 60000);
	ck_assert_uint_eq(c->limits.new_connections_burst, 9);
	a = config_find_route(c, "/a", 2);
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(a->auth_tokens, "/etc/passwd");
	ck_assert_uint_eq(a->auth_from, AUTH_FROM_BEARER | AUTH_FROM_PROTOCOL);
	ck_assert_str_eq(a->auth_cookie, "sess");
	ck_assert_str_eq(a->auth_protocol_prefix, "auth.");
	ck_assert(a->auth_failure_close);
	ck_assert_int_eq(a->send_proxy, SEND_PROXY_V2);
	ck_assert(config_route_origins(c, a)->any);
	ck_assert(!config_route_origin_missing_deny(c, a));
	/* prefix routes: longest prefix, exact routes first */
	v = config_find_route(c, "/vnc/abc", 8);
	ck_assert_ptr_nonnull(v);
	ck_assert(v->prefix);
	ck_assert_int_eq(v->kind, UPSTREAM_TOKENFILE);
	ck_assert_uint_eq(v->n_target_allow, 2);
	ck_assert_ptr_eq(config_route_origins(c, v), &c->origins);
	ck_assert(config_route_origin_missing_deny(c, v));
	ck_assert_int_eq(config_find_route(c, "/vnc/exact", 10)->kind,
			 UPSTREAM_ECHO);
	ck_assert_ptr_null(config_find_route(c, "/vnc", 4));
	ck_assert_ptr_null(config_find_route(c, "/a/b", 4));
	config_free(c);
}
END_TEST

START_TEST(test_listen_flag_errors)
{
	expect_error("[gateway]\nlisten = 127.0.0.1:8443 ssl\n",
		     "t.ini:2: listen: unknown flag \"ssl\" after the address "
		     "(known flags: tls, proxy_protocol)");
	expect_error("[gateway]\nlisten = 127.0.0.1:8443 tls tls\n",
		     "t.ini:2: listen: flag \"tls\" given twice");
	expect_error("[gateway]\nlisten = 127.0.0.1:8443 TLS\n",
		     "t.ini:2: listen: unknown flag \"TLS\" after the address "
		     "(known flags: tls, proxy_protocol)");
	/* the address is still checked */
	expect_error("[gateway]\nlisten = localhost:8443 tls\n",
		     "t.ini:2: listen: expected a numeric address like "
		     "127.0.0.1:8080, [::1]:8080 or *:8080 (port 1-65535), got "
		     "\"localhost:8443\"");
	/* a tls listener needs [tls] certificate */
	expect_error("[gateway]\nlisten = 127.0.0.1:8080\n"
		     "listen = 127.0.0.1:8443 tls\n"
		     "[route /echo]\nupstream = echo\n",
		     "t.ini:3: listen: a tls listener needs a certificate: add "
		     "a [tls] section with certificate and key");
}
END_TEST

START_TEST(test_tls_defaults)
{
	struct config *c = load(BASE);

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->tls.line, 0);
	ck_assert_int_eq(c->tls.min_version, CONFIG_TLS_1_2);
	ck_assert_int_eq(c->tls.client_verify, CLIENT_VERIFY_OFF);
	ck_assert(c->tls.session_tickets);
	ck_assert_ptr_null(c->tls.def.certificate.value);
	ck_assert_ptr_null(c->tls.ciphers.value);
	ck_assert_uint_eq(c->tls.n_sni, 0);
	config_free(c);
}
END_TEST

START_TEST(test_tls_every_key)
{
	struct config *c = config_load_string(
		BASE "[tls]\n"
		     "certificate = certs/gw.pem\n"
		     "key = /abs/gw.key\n"
		     "min_version = 1.3\n"
		     "ciphers = ECDHE+AESGCM:!aNULL\n"
		     "ciphersuites = TLS_AES_128_GCM_SHA256\n"
		     "client_ca = ca.pem\n"
		     "client_verify = optional\n"
		     "session_tickets = off\n"
		     "[tls other]\n"
		     "server_names = other.example.com, *.other.example.com\n"
		     "certificate = other.pem\n"
		     "key = other.key\n",
		"/etc/wsgate/t.ini", err, sizeof(err));
	const struct config_tls *t;

	ck_assert_msg(c != NULL, "%s", err);
	t = &c->tls;
	ck_assert_int_eq(t->line, 5);
	/* relative names are taken from the config file's directory */
	ck_assert_str_eq(t->def.certificate.value,
			 "/etc/wsgate/certs/gw.pem");
	ck_assert_int_eq(t->def.certificate.line, 6);
	ck_assert_str_eq(t->def.key.value, "/abs/gw.key");
	ck_assert_int_eq(t->def.key.line, 7);
	ck_assert_int_eq(t->min_version, CONFIG_TLS_1_3);
	ck_assert_str_eq(t->ciphers.value, "ECDHE+AESGCM:!aNULL");
	ck_assert_int_eq(t->ciphers.line, 9);
	ck_assert_str_eq(t->ciphersuites.value, "TLS_AES_128_GCM_SHA256");
	ck_assert_str_eq(t->client_ca.value, "/etc/wsgate/ca.pem");
	ck_assert_int_eq(t->client_verify, CLIENT_VERIFY_OPTIONAL);
	ck_assert(!t->session_tickets);
	ck_assert_uint_eq(t->n_sni, 1);
	ck_assert_str_eq(t->sni[0].name, "other");
	ck_assert_int_eq(t->sni[0].line, 14);
	ck_assert_uint_eq(t->sni[0].n_server_names, 2);
	ck_assert_str_eq(t->sni[0].server_names[1], "*.other.example.com");
	ck_assert_str_eq(t->sni[0].certificate.value, "/etc/wsgate/other.pem");
	config_free(c);
	/* loaded from a string without a directory: names stay as written */
	c = load(BASE TLS_SEC "client_verify = required\nclient_ca = ca.pem\n");
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_str_eq(c->tls.def.certificate.value, "c.pem");
	ck_assert_int_eq(c->tls.client_verify, CLIENT_VERIFY_REQUIRED);
	config_free(c);
}
END_TEST

START_TEST(test_tls_value_errors)
{
	expect_base_error_prefix("[tls]\nmin_version = 1.1\n",
				 "t.ini:6: min_version: expected 1.2 or 1.3 "
				 "(older versions are not offered), got "
				 "\"1.1\"");
	expect_base_error_prefix("[tls]\nclient_verify = yes\n",
				 "t.ini:6: client_verify: expected off, "
				 "optional or required, got \"yes\"");
	expect_base_error_prefix("[tls]\nsession_tickets = maybe\n",
				 "t.ini:6: session_tickets: expected on/off");
	expect_base_error_prefix("[tls]\ncertificate =\n",
				 "t.ini:6: certificate: empty file name");
	expect_base_error_prefix("[tls]\nciphers =\n",
				 "t.ini:6: ciphers: empty value");
	expect_base_error_prefix("[tls]\nlisten = :1\n",
				 "t.ini:6: listen: unknown key in [tls]");
	expect_base_error_prefix("[tls a]\nmin_version = 1.3\n",
				 "t.ini:6: min_version: unknown key in "
				 "[tls a]");
	expect_base_error_prefix("[tls]\nserver_names = a.com\n",
				 "t.ini:6: server_names: unknown key in "
				 "[tls]");
	expect_base_error_prefix(TLS_SEC "key = again.pem\n",
				 "t.ini:8: key: duplicate key (first set at "
				 "line 7)");
}
END_TEST

START_TEST(test_tls_cross_key_errors)
{
	expect_base_error_prefix("[tls]\ncertificate = c.pem\n",
				 "t.ini:6: certificate: needs key too");
	expect_base_error_prefix("[tls]\nkey = k.pem\n",
				 "t.ini:6: key: needs certificate too");
	expect_base_error_prefix(TLS_SEC "client_verify = required\n",
				 "t.ini:8: client_verify: needs client_ca");
	expect_base_error_prefix(TLS_SEC "client_ca = ca.pem\n",
				 "t.ini:8: client_ca: has no effect with "
				 "client_verify = off");
	expect_base_error_prefix(TLS_SEC "[tls]\n",
				 "t.ini:8: [tls]: duplicate section (first at "
				 "line 5)");
}
END_TEST

START_TEST(test_tls_named_errors)
{
	expect_base_error_prefix(TLS_SEC "[tls a]\ncertificate = a.pem\n"
					 "key = a.key\n",
				 "t.ini:8: [tls a]: no server_names");
	expect_base_error_prefix(TLS_SEC "[tls a]\nserver_names = a.com\n",
				 "t.ini:8: [tls a]: needs certificate and key");
	expect_base_error_prefix("[tls a]\nserver_names = a.com\n"
				 "certificate = a.pem\nkey = a.key\n",
				 "t.ini:5: [tls a]: needs a default "
				 "certificate: set certificate and key in "
				 "[tls]");
	expect_base_error_prefix(TLS_SEC "[tls a]\n[tls a]\n",
				 "t.ini:9: [tls a]: duplicate section (first "
				 "at line 8)");
	expect_base_error_prefix(TLS_SEC "[tls a/b]\n",
				 "t.ini:8: [tls a/b]: a [tls NAME] name holds "
				 "letters");
	expect_base_error_prefix(TLS_SEC "[tls a]\nserver_names = *.com\n",
				 "t.ini:9: server_names: \"*.com\": a wildcard "
				 "needs at least two labels");
	expect_base_error_prefix(TLS_SEC "[tls a]\nserver_names = a.com,,b\n",
				 "t.ini:9: server_names: empty item in list");
	expect_base_error_prefix(TLS_SEC "[tls a]\nserver_names = a..com\n",
				 "t.ini:9: server_names: \"a..com\": empty "
				 "label");
	expect_base_error_prefix(TLS_SEC "[tls a]\nserver_names = a.com\n"
					 "[tls b]\nserver_names = x.com, "
					 "A.COM\n",
				 "t.ini:11: server_names: \"A.COM\" is already "
				 "listed in [tls a] (line 8)");
	/* the same key in two [tls NAME] sections is fine */
	{
		struct config *c = load_base(
			TLS_SEC "[tls a]\nserver_names = a.com\ncertificate = "
				"a.pem\nkey = a.key\n[tls b]\nserver_names = "
				"b.com\ncertificate = b.pem\nkey = b.key\n");
		ck_assert_msg(c != NULL, "%s", err);
		ck_assert_uint_eq(c->tls.n_sni, 2);
		config_free(c);
	}
}
END_TEST

START_TEST(test_upstream_tls)
{
	const struct config_route *r;
	struct config *c;

	c = load_route("upstream = tls://backend.example.com:443", &r);
	ck_assert_int_eq(r->kind, UPSTREAM_TCP);
	ck_assert(r->tls);
	ck_assert_str_eq(r->host, "backend.example.com");
	ck_assert_uint_eq(r->port, 443);
	ck_assert_str_eq(r->upstream, "tls://backend.example.com:443");
	ck_assert(r->upstream_verify);
	ck_assert_ptr_null(r->upstream_sni);
	ck_assert_ptr_null(r->upstream_ca.value);
	ck_assert_uint_eq(r->code_tls, 1011);
	config_free(c);
	c = load_route("upstream = tls://[::1]:8443", &r);
	ck_assert(r->tls);
	ck_assert_str_eq(r->host, "::1");
	config_free(c);
	c = load_route("upstream = 127.0.0.1:80", &r);
	ck_assert(!r->tls);
	config_free(c);
	c = load_base("[route /t]\nupstream = tls://10.0.0.1:443\n"
		      "upstream_ca = ca.pem\nupstream_verify = off\n"
		      "upstream_sni = backend.internal\n"
		      "upstream_certificate = me.pem\nupstream_key = me.key\n"
		      "code_tls = 1014\n");
	ck_assert_msg(c != NULL, "%s", err);
	r = config_find_route(c, "/t", 2);
	ck_assert_str_eq(r->upstream_ca.value, "ca.pem");
	ck_assert_int_eq(r->upstream_ca.line, 7);
	ck_assert(!r->upstream_verify);
	ck_assert_str_eq(r->upstream_sni, "backend.internal");
	ck_assert_str_eq(r->upstream_certificate.value, "me.pem");
	ck_assert_str_eq(r->upstream_key.value, "me.key");
	ck_assert_uint_eq(r->code_tls, 1014);
	config_free(c);
}
END_TEST

START_TEST(test_access_defaults)
{
	struct config *c = load(BASE);
	const struct config_route *r;

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->n_trusted_proxies, 0);
	ck_assert_int_eq(c->real_ip_header, REAL_IP_XFF);
	ck_assert(!c->listens[0].proxy_protocol);
	ck_assert_uint_eq(c->limits.max_connections_per_ip, 0);
	ck_assert_uint_eq(c->limits.new_connections_rate, 0);
	r = &c->routes[0];
	ck_assert_ptr_null(r->auth_tokens);
	ck_assert_str_eq(r->auth_cookie, "wsgate_token");
	ck_assert_str_eq(r->auth_protocol_prefix, "token.");
	ck_assert_uint_eq(r->auth_from, AUTH_FROM_QUERY | AUTH_FROM_COOKIE |
						AUTH_FROM_BEARER |
						AUTH_FROM_PROTOCOL);
	ck_assert(!r->auth_failure_close);
	ck_assert_int_eq(r->send_proxy, SEND_PROXY_OFF);
	ck_assert(!config_route_origin_missing_deny(c, r));
	ck_assert_uint_eq(config_route_origins(c, r)->n, 0);
	config_free(c);
}
END_TEST

START_TEST(test_upstream_tls_errors)
{
	expect_route_error("upstream = tls://echo",
			   "t.ini:6: upstream: expected host:port");
	expect_route_error("upstream = tls://unix:/run/a.sock",
			   "t.ini:6: upstream: port must be 1-65535");
	expect_route_error("upstream = tls://host",
			   "t.ini:6: upstream: expected host:port");
	expect_route_error("upstream = tls://",
			   "t.ini:6: upstream: expected host:port");
	expect_route_error("upstream = TLS://host:1",
			   "t.ini:6: upstream: unknown scheme in "
			   "\"TLS://host:1\" (tls:// is the only one)");
	expect_route_error("upstream = ws://host:1",
			   "t.ini:6: upstream: unknown scheme");
	expect_route_error("upstream = tls://[::1:443",
			   "t.ini:6: upstream: expected host:port");
	/* TLS-only keys on a plain route name their own line */
	expect_base_error_prefix("[route /r]\nupstream = 127.0.0.1:1\n"
				 "upstream_sni = a.com\n",
				 "t.ini:7: upstream_sni: only applies to "
				 "tls:// upstreams");
	expect_base_error_prefix("[route /r]\ncode_tls = 1014\n"
				 "upstream = echo\n",
				 "t.ini:6: code_tls: only applies to tls:// "
				 "upstreams");
	expect_base_error_prefix("[route /r]\nupstream = unix:/a.sock\n"
				 "upstream_verify = off\n",
				 "t.ini:7: upstream_verify: only applies to "
				 "tls:// upstreams");
	expect_base_error_prefix("[route /r]\nupstream = tls://a.com:1\n"
				 "upstream_certificate = me.pem\n",
				 "t.ini:7: upstream_certificate: needs "
				 "upstream_key too");
	expect_base_error_prefix("[route /r]\nupstream = tls://a.com:1\n"
				 "upstream_sni = bad name\n",
				 "t.ini:7: upstream_sni: bad host name");
	expect_base_error_prefix("[route /r]\nupstream = tls://a.com:1\n"
				 "code_tls = 1015\n",
				 "t.ini:7: code_tls: 1015 is reserved");
	expect_base_error_prefix("[route /r]\nupstream = tls://a.com:1\n"
				 "upstream_verify = sometimes\n",
				 "t.ini:7: upstream_verify: expected on/off");
}
END_TEST

START_TEST(test_access_keys_invalid)
{
	static const struct {
		const char *snippet, *want;
	} bad[] = {
		{"[route /b]\nupstream = echo\norigins = null\n",
		 "t.ini:7: origins: \"null\" is sent"},
		{"[route /b]\nupstream = echo\norigins = https://a.example/x\n",
		 "t.ini:7: origins: expected an origin"},
		{"[route /b]\nupstream = echo\nauth_tokens = /etc/passwd\n"
		 "auth_from = header\n",
		 "t.ini:8: auth_from: expected query, cookie, bearer or protocol"},
		{"[route /b]\nupstream = echo\nauth_cookie = c\n",
		 "t.ini:7: auth_cookie: set, but the route has no auth_tokens"},
		{"[route /b]\nupstream = echo\nauth_tokens = rel/path\n",
		 "t.ini:7: auth_tokens: path must be absolute"},
		{"[route /b]\nupstream = echo\n"
		 "auth_tokens = /nonexistent/wsgate-tokens\n",
		 "t.ini:7: auth_tokens: cannot read"},
		{"[route /b]\nupstream = tokenfile:/etc/passwd\n",
		 "t.ini:5: [route /b]: a tokenfile: upstream needs target_allow"},
		{"[route /b]\nupstream = tokenfile:/etc/passwd\n"
		 "target_allow = 10.0.0.0/8\n",
		 "t.ini:7: target_allow: expected NETWORK:PORTS"},
		{"[route /b]\nupstream = 127.0.0.1:1\nsend_proxy = v3\n",
		 "t.ini:7: send_proxy: expected off, v1 or v2"},
		{"[route /b]\nupstream = echo\nsend_proxy = v1\n",
		 "t.ini:5: [route /b]: send_proxy needs an upstream"},
		{"[limits]\nnew_connections_per_ip = 5/d\n",
		 "t.ini:6: new_connections_per_ip: expected a rate"},
		{"[route /a*b]\nupstream = echo\n",
		 "t.ini:5: [route /a*b]: '*' may only end a prefix route"},
		{"[route /b]\nupstream = 127.0.0.1:1\nsubprotocols = token.x\n"
		 "auth_tokens = /etc/passwd\n",
		 "t.ini:5: [route /b]: subprotocol \"token.x\" starts with"},
		{"[route /b]\nupstream = echo\nauth_failure = maybe\n",
		 "t.ini:7: auth_failure: expected http or close"},
		{"[route /b]\nupstream = echo\norigin_missing = perhaps\n",
		 "t.ini:7: origin_missing: expected allow or deny"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_base_error_prefix(bad[i].snippet, bad[i].want);
	expect_error("[gateway]\nlisten = 127.0.0.1:9 tcp_fast\n"
		     "[route /e]\nupstream = echo\n",
		     "t.ini:2: listen: unknown flag \"tcp_fast\" after the "
		     "address (known flags: tls, proxy_protocol)");
	expect_error("[gateway]\nlisten = 127.0.0.1:9\n"
		     "trusted_proxies = 10.0.0.1/8\n"
		     "[route /e]\nupstream = echo\n",
		     "t.ini:3: trusted_proxies: expected a network like "
		     "10.0.0.0/8 or ::1/128 (no bits set past the prefix), got "
		     "\"10.0.0.1/8\"");
}
END_TEST

/* Per-route client certificate requirement (issue 7 over TLS). */
START_TEST(test_client_cert_route_keys)
{
	static const char fp_hex[] =
		"00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
		"00112233445566778899aabbccddeeff";
	char text[1024];
	struct config *c;
	const struct config_route *r;

	snprintf(text, sizeof(text),
		 "[gateway]\nlisten = 127.0.0.1:8443 tls\n" TLS_SEC
		 "client_ca = ca.pem\nclient_verify = optional\n"
		 "[route /m]\nupstream = echo\n"
		 "client_subject = CN=client one,O=wsgate tests\n"
		 "client_fingerprint = %s, %s\n",
		 fp_hex, fp_hex);
	c = load(text);
	ck_assert_msg(c != NULL, "%s", err);
	r = config_find_route(c, "/m", 2);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->client_subject.value, "CN=client one,O=wsgate tests");
	ck_assert_uint_eq(r->n_client_fingerprints, 2);
	ck_assert_uint_eq(r->client_fingerprints[0][0], 0x00);
	ck_assert_uint_eq(r->client_fingerprints[0][10], 0xAA);
	ck_assert_uint_eq(r->client_fingerprints[0][31], 0xFF);
	config_free(c);
	/* not a SHA-256 */
	expect_error("[gateway]\nlisten = 127.0.0.1:8443 tls\n" TLS_SEC
		     "client_ca = ca.pem\nclient_verify = optional\n"
		     "[route /m]\nupstream = echo\nclient_fingerprint = abcd\n",
		     "t.ini:10: client_fingerprint: expected a SHA-256 "
		     "fingerprint (64 hex digits, ':' allowed), got \"abcd\"");
	/* a requirement without client certificates in [tls] */
	expect_error("[gateway]\nlisten = 127.0.0.1:8443 tls\n" TLS_SEC
		     "[route /m]\nupstream = echo\n"
		     "client_subject = CN=x\n",
		     "t.ini:8: client_subject: needs client certificates: set "
		     "client_verify = optional or required in [tls]");
}
END_TEST

/* --- reload: the settings that take a restart ----------------------------- */

/* Two readable regular files (resolv_conf, auth_tokens), made per test. */
static char restart_file[2][64];

/*
 * Keys the reload test sets in both files: what the others need to load
 * (certificate pairs, client_verify for client_subject, a tls:// upstream
 * for its keys, auth_tokens for the auth_* keys) and a per-IP limit, so
 * that new_connections_burst counts.  Workers is a number, so the thread
 * counts compared are the file's.
 */
static const struct {
	const char *section, *name, *value;
} restart_ctx[] = {
	{"gateway", "listen", "127.0.0.1:8080"},
	{"gateway", "workers", "2"},
	{"limits", "new_connections_per_ip", "10/s"},
	{"tls", "certificate", "c.pem"},
	{"tls", "key", "c.key"},
	{"tls", "client_ca", "ca.pem"},
	{"tls", "client_verify", "optional"},
	{"tls NAME", "server_names", "a.example"},
	{"tls NAME", "certificate", "a.pem"},
	{"tls NAME", "key", "a.key"},
	{"route PATH", "upstream", "tls://localhost:1"},
	{"route PATH", "upstream_certificate", "u.pem"},
	{"route PATH", "upstream_key", "u.key"},
	{"route PATH", "auth_tokens", restart_file[0]},
};

/* Key K's value in the context; NULL: unset. */
static const char *
restart_ctx_value(const struct config_key_info *k)
{
	for (size_t i = 0; i < sizeof(restart_ctx) / sizeof(restart_ctx[0]);
	     i++)
		if (strcmp(restart_ctx[i].section, k->section) == 0 &&
		    strcmp(restart_ctx[i].name, k->name) == 0)
			return restart_ctx[i].value;
	return NULL;
}

/* A valid value of K other than the one the context file has, into BUF. */
static const char *
restart_other_value(const struct config_key_info *k, char *buf, size_t cap)
{
	const char *cur = restart_ctx_value(k);
	uint64_t n = 0;

	if (cur == NULL)
		cur = k->def;
	switch (k->type) {
	case KT_COUNT:
	case KT_SIZE:
	case KT_DURATION:
		if (cur != NULL && k->type == KT_SIZE)
			ck_assert_int_eq(config_parse_size(cur, &n), 0);
		else if (cur != NULL && k->type == KT_DURATION)
			ck_assert_int_eq(config_parse_duration(cur, &n), 0);
		else if (cur != NULL)
			ck_assert_int_eq(sscanf(cur, "%" SCNu64, &n), 1);
		n = n < k->max ? n + 1 : n - 1;
		if (n < k->min)
			n = k->min;
		snprintf(buf, cap, "%" PRIu64 "%s", n,
			 k->type == KT_DURATION ? "ms" : "");
		return buf;
	case KT_BOOL:
		return cur != NULL && strcmp(cur, "on") == 0 ? "off" : "on";
	case KT_KEYWORD: {
		const char *w = NULL;
		for (const struct config_word *x = k->words; x->word != NULL;
		     x++)
			if (x->value != CONFIG_WORD_NOTE &&
			    (cur == NULL || strcasecmp(x->word, cur) != 0))
				w = x->word; /* the last other word */
		ck_assert_ptr_nonnull(w);
		return w;
	}
	case KT_LISTEN: return "127.0.0.1:8081";
	case KT_ADMIN_LISTEN: return "127.0.0.1:9090";
	case KT_WORKERS: return "3";
	case KT_RATE: return "20/s";
	case KT_UPSTREAM: return "tls://localhost:2";
	case KT_SUBPROTOCOLS: return "chat";
	case KT_CLOSE_CODE: return "4000";
	case KT_FILE:
	case KT_ABS_FILE: return restart_file[1];
	case KT_STRING: return "CN=other";
	case KT_HOSTNAME: return "other.example";
	case KT_FINGERPRINTS:
		return "abababababababababababababababab"
		       "abababababababababababababababab";
	case KT_SERVER_NAMES: return "b.example";
	case KT_CIDR_LIST: return "10.0.0.0/8";
	case KT_ORIGINS: return "https://other.example";
	case KT_AUTH_FROM: return "query";
	case KT_TOKEN_NAME: return "other";
	case KT_TARGET_ALLOW: return "127.0.0.0/8:5900-5999";
	}
	ck_abort_msg("[%s] %s: no other value for its type (add one here)",
		     k->section, k->name);
	return NULL;
}

/* The context file, with key OTHER (if not SIZE_MAX) set to another value. */
static struct config *
restart_load(size_t other)
{
	static const char *const sections[][2] = {
		{"gateway", "[gateway]"}, {"limits", "[limits]"},
		{"admin", "[admin]"},     {"tls", "[tls]"},
		{"tls NAME", "[tls a]"},  {"route PATH", "[route /]"},
	};
	char text[4096], buf[128];
	size_t o = 0;
	struct config *c;

	for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
		struct config_key_info k;
		o += (size_t)snprintf(text + o, sizeof(text) - o, "%s\n",
				      sections[s][1]);
		for (size_t i = 0; config_key_info(i, &k) == 0; i++) {
			const char *v = i == other
						? restart_other_value(
							  &k, buf, sizeof(buf))
						: restart_ctx_value(&k);
			if (strcmp(k.section, sections[s][0]) != 0 || v == NULL)
				continue;
			o += (size_t)snprintf(text + o, sizeof(text) - o,
					      "%s = %s\n", k.name, v);
			ck_assert_uint_lt(o, sizeof(text));
		}
	}
	c = load(text);
	ck_assert_msg(c != NULL, "%s\n%s", err, text);
	return c;
}

/* A reload warns about a change of every key the table marks KF_RESTART
   and of no other (max_connections: only its share of the per-IP table,
   while a per-IP limit is on); each group it warns about is reached. */
START_TEST(test_restart_keys_are_compared)
{
	struct config_key_info k;
	struct config *base;
	unsigned seen = 0;
	char bad[4096];
	size_t o = 0;

	bad[0] = '\0';
	for (int f = 0; f < 2; f++)
		write_temp(restart_file[f], sizeof(restart_file[f]), "x\n", 2);
	base = restart_load(SIZE_MAX);
	ck_assert_uint_eq(config_restart_changes(base, base, base->workers,
						 base->workers),
			  0);
	for (size_t i = 0; config_key_info(i, &k) == 0; i++) {
		struct config *c = restart_load(i);
		unsigned got = config_restart_changes(base, c, base->workers,
						      c->workers);
		unsigned want = k.restart ? got
				: strcmp(k.name, "max_connections") == 0
					? CONFIG_RESTART_IP_LIMITS
					: 0;
		if ((k.restart && got == 0) || got != want)
			o += (size_t)snprintf(bad + o, sizeof(bad) - o,
					      "\n  [%s] %s: restart %d, groups "
					      "changed %#x",
					      k.section, k.name, k.restart,
					      got);
		ck_assert_uint_lt(o, sizeof(bad));
		if (k.restart)
			seen |= got;
		config_free(c);
	}
	ck_assert_msg(bad[0] == '\0',
		      "config_restart_changes disagrees with KF_RESTART:%s",
		      bad);
	ck_assert_uint_eq(seen, CONFIG_RESTART_LISTEN |
					CONFIG_RESTART_IP_LIMITS |
					CONFIG_RESTART_WORKERS |
					CONFIG_RESTART_ADMIN |
					CONFIG_RESTART_RESOLV);
	config_free(base);
	for (int f = 0; f < 2; f++)
		unlink(restart_file[f]);
}
END_TEST

/* Without a per-IP limit max_connections is all applied by a reload; the
   thread count compared is the running one, not the old file's. */
START_TEST(test_restart_changes_details)
{
#define GW_(kv)                                                                \
	"[gateway]\nlisten = 127.0.0.1:8080\n" kv "[route /]\nupstream = echo\n"
	struct config *a = load(GW_("max_connections = 5\n"));
	struct config *b = load(GW_("max_connections = 6\n"));
	struct config *w = load(GW_("workers = auto\n"));
#undef GW_

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(config_restart_changes(a, b, 1, 1), 0);
	ck_assert_uint_eq(config_restart_changes(a, w, 4, 4), 0);
	ck_assert_uint_eq(config_restart_changes(a, w, 4, 2),
			  CONFIG_RESTART_WORKERS);
	config_free(a);
	config_free(b);
	config_free(w);
}
END_TEST

/* The suite. */
static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, test_shipped_file_loads);
	tcase_add_test(tc, test_documents_name_every_key);
	tcase_add_test(tc, test_table_defaults_apply);
	tcase_add_test(tc, test_restart_keys_are_compared);
	tcase_add_test(tc, test_restart_changes_details);
	tcase_add_test(tc, test_shipped_example_route_is_valid);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_every_key_set);
	tcase_add_test(tc, test_route_defaults_per_route);
	tcase_add_test(tc, test_size_valid);
	tcase_add_test(tc, test_size_invalid);
	tcase_add_test(tc, test_duration_valid);
	tcase_add_test(tc, test_duration_invalid);
	tcase_add_test(tc, test_bool_values);
	tcase_add_test(tc, test_bool_invalid);
	tcase_add_test(tc, test_listen_valid);
	tcase_add_test(tc, test_listen_invalid);
	tcase_add_test(tc, test_listen_repeated_and_comma_separated);
	tcase_add_test(tc, test_listen_bad_in_config);
	tcase_add_test(tc, test_listen_empty_item);
	tcase_add_test(tc, test_listen_duplicate);
	tcase_add_test(tc, test_no_listen);
	tcase_add_test(tc, test_no_route);
	tcase_add_test(tc, test_unknown_section);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_key_outside_section);
	tcase_add_test(tc, test_workers_and_admin);
	tcase_add_test(tc, test_splice_key);
	tcase_add_test(tc, test_refcount);
	tcase_add_test(tc, test_duplicate_key);
	tcase_add_test(tc, test_same_key_in_two_routes);
	tcase_add_test(tc, test_duplicate_section);
	tcase_add_test(tc, test_duplicate_route);
	tcase_add_test(tc, test_route_without_upstream);
	tcase_add_test(tc, test_route_path_invalid);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_line_too_long);
	tcase_add_test(tc, test_lexical_forms);
	tcase_add_test(tc, test_comment_needs_blank);
	tcase_add_test(tc, test_log_level);
	tcase_add_test(tc, test_max_connections);
	tcase_add_test(tc, test_size_errors_in_config);
	tcase_add_test(tc, test_size_minimums);
	tcase_add_test(tc, test_request_line_vs_header_bytes);
	tcase_add_test(tc, test_duration_errors_in_config);
	tcase_add_test(tc, test_upstream_valid);
	tcase_add_test(tc, test_upstream_invalid);
	tcase_add_test(tc, test_upstream_long_names);
	tcase_add_test(tc, test_subprotocols);
	tcase_add_test(tc, test_frame_type_and_on_reset);
	tcase_add_test(tc, test_connect_timeout);
	tcase_add_test(tc, test_close_code_reserved);
	tcase_add_test(tc, test_close_code_invalid);
	tcase_add_test(tc, test_close_code_valid);
	tcase_add_test(tc, test_find_route);
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_load_missing_file);
	tcase_add_test(tc, test_load_unreadable_file);
	tcase_add_test(tc, test_load_file_with_nul);
	tcase_add_test(tc, test_error_buffer_small_or_null);
	tcase_add_test(tc, test_random_mutations);
	tcase_add_test(tc, test_listen_flags);
	tcase_add_test(tc, test_listen_flag_errors);
	tcase_add_test(tc, test_tls_defaults);
	tcase_add_test(tc, test_tls_every_key);
	tcase_add_test(tc, test_tls_value_errors);
	tcase_add_test(tc, test_tls_cross_key_errors);
	tcase_add_test(tc, test_tls_named_errors);
	tcase_add_test(tc, test_upstream_tls);
	tcase_add_test(tc, test_upstream_tls_errors);
	tcase_add_test(tc, test_client_cert_route_keys);
	tcase_add_test(tc, test_access_keys_set);
	tcase_add_test(tc, test_access_defaults);
	tcase_add_test(tc, test_access_keys_invalid);
	suite_add_tcase(s, tc);
	return s;
}

/* Run the suite; non-zero exit on failure. */
int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
