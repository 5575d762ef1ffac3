/*
 * config.c - load the INI configuration into struct config.
 *
 * inih does the key = value splitting; everything around it is ours.  The
 * input is read whole and handed to ini_parse_stream() one line at a time
 * by config_read_line_cb(), which counts lines (Debian's inih is built
 * without INI_HANDLER_LINENO), strips comments (';' or '#' at the start of
 * a line or after whitespace, whatever inih was built with), drops
 * indentation (so inih never sees a continuation line) and recognises the
 * [section] headers itself: section names are not truncated, and empty or
 * duplicate sections are caught at their header line.  inih's own section
 * argument is ignored.  The first error wins and stops the parse.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ini.h>

#include "tls_name.h"
#include "access.h"
#include "ws_frame.h"

#define CONFIG_MAX_FILE (1024 * 1024) /* bigger files are refused */
#define CONFIG_SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)
#define CONFIG_MAX_DURATION_MS ((uint64_t)365 * 24 * 3600 * 1000) /* a year */
#define KIB ((uint64_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

enum config_section {
	SEC_NONE,
	SEC_GATEWAY,
	SEC_LIMITS,
	SEC_ADMIN,
	SEC_ROUTE,
	SEC_TLS,         /* [tls] */
	SEC_TLS_NAMED,   /* [tls NAME]: one SNI certificate */
};

enum config_key_type {
	KT_LISTEN,       /* repeatable, comma-separated addresses */
	KT_COUNT,        /* plain decimal integer */
	KT_SIZE,         /* bytes with an optional k/m/g suffix */
	KT_DURATION,     /* ms/s/m/h, bare number = seconds */
	KT_BOOL,
	KT_LOG_LEVEL,
	KT_UPSTREAM,
	KT_SUBPROTOCOLS,
	KT_FRAME_TYPE,
	KT_ON_RESET,
	KT_CLOSE_CODE,
	KT_WORKERS,      /* "auto" or a count */
	KT_CPU_AFFINITY, /* auto or off */
	KT_ADMIN_LISTEN, /* one numeric address */
	KT_FILE,         /* a file name, kept with its line */
	KT_STRING,       /* text, copied with its line */
	KT_HOSTNAME,     /* a DNS name */
	KT_FINGERPRINTS, /* comma-separated SHA-256 hex, ':' allowed */
	KT_TLS_VERSION,  /* 1.2 or 1.3 */
	KT_CLIENT_VERIFY,
	KT_SERVER_NAMES, /* comma-separated names or *.wildcards */
	KT_CIDR_LIST,    /* trusted_proxies */
	KT_REAL_IP_HEADER,
	KT_ORIGINS,
	KT_ORIGIN_MISSING,
	KT_ABS_FILE,     /* absolute path of a readable file */
	KT_AUTH_FROM,
	KT_TOKEN_NAME,   /* a cookie name or protocol prefix (tchars) */
	KT_AUTH_FAILURE,
	KT_TARGET_ALLOW,
	KT_SEND_PROXY,
	KT_RATE,         /* "20/s", "100/m", "1000/h", bare = per second */
};

/* Offset and width of a field of struct config / struct config_route. */
#define CF(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define RF(f)                                                                  \
	offsetof(struct config_route, f),                                      \
		sizeof(((struct config_route *)0)->f)
#define SF(f)                                                                  \
	offsetof(struct config_tls_cert, f),                                   \
		sizeof(((struct config_tls_cert *)0)->f)
#define NOF 0, 0
#define DMAX CONFIG_MAX_DURATION_MS

/* id, section, name, type, field (offset, width), min, max */
#define CONFIG_KEYS(X)                                                         \
	X(K_LISTEN, SEC_GATEWAY, "listen", KT_LISTEN, NOF, 0, 0)               \
	X(K_MAX_CONNECTIONS, SEC_GATEWAY, "max_connections", KT_COUNT,         \
	  CF(max_connections), 1, 1000000)                                     \
	X(K_LOG_LEVEL, SEC_GATEWAY, "log_level", KT_LOG_LEVEL, NOF, 0, 0)      \
	X(K_ACCESS_LOG, SEC_GATEWAY, "access_log", KT_BOOL, CF(access_log),    \
	  0, 1)                                                                \
	X(K_WORKERS, SEC_GATEWAY, "workers", KT_WORKERS, NOF, 1, 256)          \
	X(K_CPU_AFFINITY, SEC_GATEWAY, "cpu_affinity", KT_CPU_AFFINITY, NOF,   \
	  0, 0)                                                                \
	X(K_SPLICE, SEC_GATEWAY, "splice", KT_BOOL, CF(splice), 0, 1)          \
	X(K_RESOLV_CONF, SEC_GATEWAY, "resolv_conf", KT_FILE,                  \
	  CF(resolv_conf), 0, 0)                                               \
	X(K_ADMIN_LISTEN, SEC_ADMIN, "listen", KT_ADMIN_LISTEN, NOF, 0, 0)     \
	X(K_TRUSTED_PROXIES, SEC_GATEWAY, "trusted_proxies", KT_CIDR_LIST,     \
	  NOF, 0, 0)                                                           \
	X(K_REAL_IP_HEADER, SEC_GATEWAY, "real_ip_header", KT_REAL_IP_HEADER,  \
	  NOF, 0, 0)                                                           \
	X(K_GW_ORIGINS, SEC_GATEWAY, "origins", KT_ORIGINS, NOF, 0, 0)         \
	X(K_GW_ORIGIN_MISSING, SEC_GATEWAY, "origin_missing",                  \
	  KT_ORIGIN_MISSING, NOF, 0, 0)                                        \
	X(K_HANDSHAKE_TIMEOUT, SEC_LIMITS, "handshake_timeout", KT_DURATION,   \
	  CF(limits.handshake_timeout_ms), 1, DMAX)                            \
	X(K_MAX_REQUEST_LINE, SEC_LIMITS, "max_request_line", KT_SIZE,         \
	  CF(limits.max_request_line), 64, MIB)                                \
	X(K_MAX_HEADER_BYTES, SEC_LIMITS, "max_header_bytes", KT_SIZE,         \
	  CF(limits.max_header_bytes), 256, MIB)                               \
	X(K_MAX_HEADERS, SEC_LIMITS, "max_headers", KT_COUNT,                  \
	  CF(limits.max_headers), 1, 10000)                                    \
	X(K_BUFFER_LIMIT, SEC_LIMITS, "buffer_limit", KT_SIZE,                 \
	  CF(limits.buffer_limit), KIB, GIB)                                   \
	X(K_MAX_MESSAGE, SEC_LIMITS, "max_message", KT_SIZE,                   \
	  CF(limits.max_message), 1, UINT64_MAX)                               \
	X(K_MAX_FRAME, SEC_LIMITS, "max_frame", KT_SIZE, CF(limits.max_frame), \
	  KIB, 16 * MIB)                                                       \
	X(K_IDLE_TIMEOUT, SEC_LIMITS, "idle_timeout", KT_DURATION,             \
	  CF(limits.idle_timeout_ms), 0, DMAX)                                 \
	X(K_PING_INTERVAL, SEC_LIMITS, "ping_interval", KT_DURATION,           \
	  CF(limits.ping_interval_ms), 0, DMAX)                                \
	X(K_PONG_TIMEOUT, SEC_LIMITS, "pong_timeout", KT_DURATION,             \
	  CF(limits.pong_timeout_ms), 1, DMAX)                                 \
	X(K_CLOSE_TIMEOUT, SEC_LIMITS, "close_timeout", KT_DURATION,           \
	  CF(limits.close_timeout_ms), 1, DMAX)                                \
	X(K_STALL_TIMEOUT, SEC_LIMITS, "stall_timeout", KT_DURATION,           \
	  CF(limits.stall_timeout_ms), 0, DMAX)                                \
	X(K_DRAIN_TIMEOUT, SEC_LIMITS, "drain_timeout", KT_DURATION,           \
	  CF(limits.drain_timeout_ms), 0, DMAX)                                \
	X(K_MAX_CONN_PER_IP, SEC_LIMITS, "max_connections_per_ip", KT_COUNT,   \
	  CF(limits.max_connections_per_ip), 0, 1000000)                       \
	X(K_NEW_CONN_PER_IP, SEC_LIMITS, "new_connections_per_ip", KT_RATE,    \
	  NOF, 0, 1000000)                                                     \
	X(K_NEW_CONN_BURST, SEC_LIMITS, "new_connections_burst", KT_COUNT,     \
	  CF(limits.new_connections_burst), 1, 1000000)                        \
	X(K_UPSTREAM, SEC_ROUTE, "upstream", KT_UPSTREAM, NOF, 0, 0)           \
	X(K_SUBPROTOCOLS, SEC_ROUTE, "subprotocols", KT_SUBPROTOCOLS, NOF, 0,  \
	  0)                                                                   \
	X(K_FRAME_TYPE, SEC_ROUTE, "frame_type", KT_FRAME_TYPE, NOF, 0, 0)     \
	X(K_CONNECT_TIMEOUT, SEC_ROUTE, "connect_timeout", KT_DURATION,        \
	  RF(connect_timeout_ms), 1, DMAX)                                     \
	X(K_ON_RESET, SEC_ROUTE, "on_reset", KT_ON_RESET, NOF, 0, 0)           \
	X(K_CODE_REFUSED, SEC_ROUTE, "code_refused", KT_CLOSE_CODE,            \
	  RF(code_refused), 0, 0)                                              \
	X(K_CODE_UNREACHABLE, SEC_ROUTE, "code_unreachable", KT_CLOSE_CODE,    \
	  RF(code_unreachable), 0, 0)                                          \
	X(K_CODE_TIMEOUT, SEC_ROUTE, "code_timeout", KT_CLOSE_CODE,            \
	  RF(code_timeout), 0, 0)                                              \
	X(K_CODE_DNS, SEC_ROUTE, "code_dns", KT_CLOSE_CODE, RF(code_dns), 0,   \
	  0)                                                                   \
	X(K_CODE_RESET, SEC_ROUTE, "code_reset", KT_CLOSE_CODE,                \
	  RF(code_reset), 0, 0)                                                \
	X(K_CODE_TLS, SEC_ROUTE, "code_tls", KT_CLOSE_CODE, RF(code_tls), 0,   \
	  0)                                                                   \
	X(K_UPSTREAM_CA, SEC_ROUTE, "upstream_ca", KT_FILE, RF(upstream_ca),   \
	  0, 0)                                                                \
	X(K_UPSTREAM_VERIFY, SEC_ROUTE, "upstream_verify", KT_BOOL,            \
	  RF(upstream_verify), 0, 1)                                           \
	X(K_CLIENT_SUBJECT, SEC_ROUTE, "client_subject", KT_STRING,            \
	  RF(client_subject), 0, 0)                                            \
	X(K_CLIENT_FINGERPRINT, SEC_ROUTE, "client_fingerprint",               \
	  KT_FINGERPRINTS, NOF, 0, 0)                                          \
	X(K_UPSTREAM_SNI, SEC_ROUTE, "upstream_sni", KT_HOSTNAME,              \
	  RF(upstream_sni), 0, 0)                                              \
	X(K_UPSTREAM_CERTIFICATE, SEC_ROUTE, "upstream_certificate", KT_FILE,  \
	  RF(upstream_certificate), 0, 0)                                      \
	X(K_UPSTREAM_KEY, SEC_ROUTE, "upstream_key", KT_FILE,                  \
	  RF(upstream_key), 0, 0)                                              \
	X(K_TLS_CERTIFICATE, SEC_TLS, "certificate", KT_FILE,                  \
	  CF(tls.def.certificate), 0, 0)                                       \
	X(K_TLS_KEY, SEC_TLS, "key", KT_FILE, CF(tls.def.key), 0, 0)           \
	X(K_TLS_MIN_VERSION, SEC_TLS, "min_version", KT_TLS_VERSION, NOF, 0,   \
	  0)                                                                   \
	X(K_TLS_CIPHERS, SEC_TLS, "ciphers", KT_STRING, CF(tls.ciphers), 0,    \
	  0)                                                                   \
	X(K_TLS_CIPHERSUITES, SEC_TLS, "ciphersuites", KT_STRING,              \
	  CF(tls.ciphersuites), 0, 0)                                          \
	X(K_TLS_CLIENT_CA, SEC_TLS, "client_ca", KT_FILE, CF(tls.client_ca),   \
	  0, 0)                                                                \
	X(K_TLS_CLIENT_VERIFY, SEC_TLS, "client_verify", KT_CLIENT_VERIFY,     \
	  NOF, 0, 0)                                                           \
	X(K_TLS_SESSION_TICKETS, SEC_TLS, "session_tickets", KT_BOOL,          \
	  CF(tls.session_tickets), 0, 1)                                       \
	X(K_SNI_SERVER_NAMES, SEC_TLS_NAMED, "server_names", KT_SERVER_NAMES,  \
	  NOF, 0, 0)                                                           \
	X(K_SNI_CERTIFICATE, SEC_TLS_NAMED, "certificate", KT_FILE,            \
	  SF(certificate), 0, 0)                                               \
	X(K_SNI_KEY, SEC_TLS_NAMED, "key", KT_FILE, SF(key), 0, 0)                                                                   \
	X(K_ORIGINS, SEC_ROUTE, "origins", KT_ORIGINS, NOF, 0, 0)              \
	X(K_ORIGIN_MISSING, SEC_ROUTE, "origin_missing", KT_ORIGIN_MISSING,    \
	  NOF, 0, 0)                                                           \
	X(K_AUTH_TOKENS, SEC_ROUTE, "auth_tokens", KT_ABS_FILE, NOF, 0, 0)         \
	X(K_AUTH_FROM, SEC_ROUTE, "auth_from", KT_AUTH_FROM, NOF, 0, 0)        \
	X(K_AUTH_COOKIE, SEC_ROUTE, "auth_cookie", KT_TOKEN_NAME, NOF, 0, 0)   \
	X(K_AUTH_PROTOCOL_PREFIX, SEC_ROUTE, "auth_protocol_prefix",           \
	  KT_TOKEN_NAME, NOF, 0, 0)                                            \
	X(K_AUTH_FAILURE, SEC_ROUTE, "auth_failure", KT_AUTH_FAILURE, NOF, 0,  \
	  0)                                                                   \
	X(K_TARGET_ALLOW, SEC_ROUTE, "target_allow", KT_TARGET_ALLOW, NOF, 0,  \
	  0)                                                                   \
	X(K_SEND_PROXY, SEC_ROUTE, "send_proxy", KT_SEND_PROXY, NOF, 0, 0)

enum config_key_id {
#define CONFIG_KEY_ENUM_(id, sec, name, type, field, min, max) id,
	CONFIG_KEYS(CONFIG_KEY_ENUM_)
#undef CONFIG_KEY_ENUM_
	K_COUNT_
};

struct config_key {
	enum config_section section;
	const char *name;
	enum config_key_type type;
	size_t offset; /* into struct config, config_route or config_tls_cert */
	size_t width;  /* 0: stored by the type's own code */
	uint64_t min, max;
};

static const struct config_key config_keys[K_COUNT_] = {
#define CONFIG_KEY_ROW_(id, sec, name, type, field, min, max)                  \
	[id] = {sec, name, type, field, min, max},
	CONFIG_KEYS(CONFIG_KEY_ROW_)
#undef CONFIG_KEY_ROW_
};

/* Parse state shared by the line reader and the key callback. */
struct config_loader {
	struct config *c;
	const char *name;          /* file name for messages */
	const char *p, *end;       /* input not yet read */
	int line;                  /* line last handed to inih */
	char *err;
	size_t errlen;
	bool failed;
	enum config_section section;
	size_t route;              /* index of the current route */
	size_t sni;                /* index of the current [tls NAME] */
	size_t dir_len;            /* relative file names: NAME's directory */
	int gateway_line, limits_line, admin_line;
	int seen[K_COUNT_];        /* line each key was set at, 0 = unset */
	size_t routes_cap, listens_cap, sni_cap;
	struct config_route route_defaults;
};

/* Set every default, of the whole file and of a new route, in one place. */
static void
config_defaults(struct config *c, struct config_route *r)
{
	c->max_connections = 10000;
	c->workers = 0; /* auto: one per core */
	c->pin_workers = false; /* cpu_affinity = off */
	c->has_admin = false; /* the admin listener is off */
	c->log_level = LOG_INFO;
	c->access_log = true;
	c->splice = false; /* measured: docs/PERFORMANCE.md */

	c->limits.handshake_timeout_ms = 10 * 1000;
	c->limits.max_request_line = 4 * KIB;
	c->limits.max_header_bytes = 8 * KIB;
	c->limits.max_headers = 64;
	c->limits.buffer_limit = 256 * KIB;
	c->limits.max_message = 1 * MIB;
	c->limits.max_frame = 64 * KIB;
	c->limits.idle_timeout_ms = 0; /* off */
	c->limits.ping_interval_ms = 30 * 1000;
	c->limits.pong_timeout_ms = 20 * 1000;
	c->limits.close_timeout_ms = 5 * 1000;
	/* nginx's proxy_send_timeout and send_timeout: a browser that reads
	   nothing for a minute, or an upstream that takes nothing, is gone */
	c->limits.stall_timeout_ms = 60 * 1000;
	c->limits.drain_timeout_ms = 10 * 1000;
	c->limits.max_connections_per_ip = 0; /* off */
	c->limits.new_connections_rate = 0;   /* off */
	c->limits.new_connections_per_ms = 1000;
	c->limits.new_connections_burst = 0;  /* the rate's count */

	c->trusted_proxies = NULL;            /* nobody */
	c->n_trusted_proxies = 0;
	c->real_ip_header = REAL_IP_XFF;
	c->origin_missing_deny = false;       /* non-browser clients */
	/* c->origins: empty, any = false: every Origin is allowed while no
	   list is set (a route with auth or a private upstream should set
	   one; see README) */

	c->tls.min_version = CONFIG_TLS_1_2;
	c->tls.client_verify = CLIENT_VERIFY_OFF;
	c->tls.session_tickets = true;

	memset(r, 0, sizeof(*r));
	r->kind = UPSTREAM_ECHO; /* overwritten: config_check requires upstream */
	r->frame_type = FRAME_BINARY;
	r->connect_timeout_ms = 10 * 1000;
	r->abort_on_reset = false;
	/* RFC 6455 7.4.1: 1011, the server hit an unexpected condition */
	r->code_refused = WS_CLOSE_INTERNAL_ERROR;
	r->code_unreachable = WS_CLOSE_INTERNAL_ERROR;
	r->code_timeout = WS_CLOSE_INTERNAL_ERROR;
	r->code_dns = WS_CLOSE_INTERNAL_ERROR;
	r->code_reset = WS_CLOSE_INTERNAL_ERROR;
	r->code_tls = WS_CLOSE_INTERNAL_ERROR;
	r->upstream_verify = true; /* turning it off must be explicit */
	r->auth_from = AUTH_FROM_QUERY | AUTH_FROM_COOKIE | AUTH_FROM_BEARER |
		       AUTH_FROM_PROTOCOL;
	r->auth_cookie = NULL;          /* "wsgate_token", set in config_check */
	r->auth_protocol_prefix = NULL; /* "token.", set in config_check */
	r->auth_failure_close = false;  /* 401/403 before the upgrade */
	r->send_proxy = SEND_PROXY_OFF;
}

#define CONFIG_DEFAULT_AUTH_COOKIE "wsgate_token"
#define CONFIG_DEFAULT_AUTH_PROTOCOL_PREFIX "token."

/* Copy S into OUT for a message: printable ASCII, at most ~60 bytes. */
static const char *
config_clean(const char *s, char *out, size_t outlen, bool quoted)
{
	size_t o = 0, i;

	if (quoted)
		out[o++] = '"';
	for (i = 0; s[i] != '\0' && o + 6 < outlen && i < 60; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	if (s[i] != '\0') {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	if (quoted)
		out[o++] = '"';
	out[o] = '\0';
	return out;
}

/* S quoted for a message. */
static const char *
config_quote(const char *s, char *out, size_t outlen)
{
	return config_clean(s, out, outlen, true);
}

/* Record the first error as "NAME:LINE: KEY: message" (0/NULL: omitted). */
static void __attribute__((format(printf, 4, 5)))
config_error(struct config_loader *ld, int line, const char *key,
	     const char *fmt, ...)
{
	char msg[512], q[80];
	va_list ap;
	int n;

	if (ld->failed)
		return;
	ld->failed = true;
	if (ld->err == NULL || ld->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = snprintf(ld->err, ld->errlen, "%s", ld->name);
	if (n >= 0 && line > 0 && (size_t)n < ld->errlen)
		n += snprintf(ld->err + n, ld->errlen - (size_t)n, ":%d", line);
	if (n >= 0 && key != NULL && (size_t)n < ld->errlen)
		n += snprintf(ld->err + n, ld->errlen - (size_t)n, ": %s",
			      config_clean(key, q, sizeof(q), false));
	if (n >= 0 && (size_t)n < ld->errlen)
		snprintf(ld->err + n, ld->errlen - (size_t)n, ": %s", msg);
}

/* Digits, then an optional unit from UNITS: 0, -1 syntax, -2 overflow. */
static int
config_parse_scaled(const char *s, const char *const *units,
		    const uint64_t *scale, uint64_t bare, uint64_t *out)
{
	uint64_t v = 0, mult = bare;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	if (*p != '\0') {
		size_t i;
		for (i = 0; units[i] != NULL; i++)
			if (strcasecmp(p, units[i]) == 0)
				break;
		if (units[i] == NULL)
			return -1;
		mult = scale[i];
	}
	if (mult != 0 && v > UINT64_MAX / mult)
		return -2;
	*out = v * mult;
	return 0;
}

/* Size with a 1024-based unit: 0, -1 syntax, -2 overflow. */
static int
config_size(const char *s, uint64_t *out)
{
	static const char *const units[] = {"k", "m", "g", NULL};
	static const uint64_t scale[] = {KIB, MIB, GIB};

	return config_parse_scaled(s, units, scale, 1, out);
}

/* Duration in milliseconds: 0, -1 syntax, -2 overflow. */
static int
config_duration(const char *s, uint64_t *out_ms)
{
	static const char *const units[] = {"ms", "s", "m", "h", NULL};
	static const uint64_t scale[] = {1, 1000, 60 * 1000, 3600 * 1000};

	return config_parse_scaled(s, units, scale, 1000, out_ms);
}

/* "64k", "1m", "1g", "123" -> bytes. */
int
config_parse_size(const char *s, uint64_t *out)
{
	return config_size(s, out) == 0 ? 0 : -1;
}

/* "500ms", "30s", "5m", "1h", "0", bare seconds -> milliseconds. */
int
config_parse_duration(const char *s, uint64_t *out_ms)
{
	return config_duration(s, out_ms) == 0 ? 0 : -1;
}

/* Port 1..65535, decimal digits only; 0 or -1. */
static int
config_parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* "on", "yes", "true", "1" / "off", "no", "false", "0"; 0 or -1. */
static int
config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"on", "yes", "true", "1"};
	static const char *const no[] = {"off", "no", "false", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* Numeric listen address -> sockaddr; 0 or -1. */
int
config_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *port_s;
	uint16_t port;
	size_t hlen;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		hlen = (size_t)(rb - s - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		port_s = rb + 2;
		if (config_parse_port(port_s, &port) < 0)
			return -1;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		memset(ss, 0, sizeof(*ss));
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return 0;
	}
	colon = strrchr(s, ':');
	if (colon == NULL)
		return -1;
	hlen = (size_t)(colon - s);
	if (hlen >= sizeof(host))
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (config_parse_port(colon + 1, &port) < 0)
		return -1;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof(*ss));
	if (hlen == 0 || strcmp(host, "*") == 0)
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	*len = sizeof(*sin);
	return 0;
}

/* Human form of a size for messages ("64k", "1000"). */
static const char *
config_fmt_size(uint64_t v, char *buf, size_t len)
{
	if (v != 0 && v % GIB == 0)
		snprintf(buf, len, "%" PRIu64 "g", v / GIB);
	else if (v != 0 && v % MIB == 0)
		snprintf(buf, len, "%" PRIu64 "m", v / MIB);
	else if (v != 0 && v % KIB == 0)
		snprintf(buf, len, "%" PRIu64 "k", v / KIB);
	else
		snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

/* Human form of a duration for messages ("30s", "500ms"). */
static const char *
config_fmt_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms == 0)
		snprintf(buf, len, "0");
	else if (ms % 3600000 == 0)
		snprintf(buf, len, "%" PRIu64 "h", ms / 3600000);
	else if (ms % 60000 == 0)
		snprintf(buf, len, "%" PRIu64 "m", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
	else
		snprintf(buf, len, "%" PRIu64 "ms", ms);
	return buf;
}

/* Store V into the WIDTH-byte unsigned field at P. */
static void
config_store(void *p, size_t width, uint64_t v)
{
	if (width == sizeof(uint64_t)) {
		uint64_t x = v;
		memcpy(p, &x, sizeof(x));
	} else if (width == sizeof(uint32_t)) {
		uint32_t x = (uint32_t)v;
		memcpy(p, &x, sizeof(x));
	} else if (width == sizeof(uint16_t)) {
		uint16_t x = (uint16_t)v;
		memcpy(p, &x, sizeof(x));
	} else if (width == sizeof(bool)) {
		bool x = v != 0;
		memcpy(p, &x, sizeof(x));
	}
}

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
static int
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
static int
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

/* ASCII letter or digit, whatever the locale. */
static bool
config_is_alnum(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= 'A' && ch <= 'Z');
}

/* RFC 9110 5.6.2: tchar. */
static bool
config_is_tchar(unsigned char ch)
{
	return config_is_alnum(ch) ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Append one SHA-256 client-certificate fingerprint to the current route. */
static int
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
static int
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
static int
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
static int
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
static int
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
static int
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

/* "20/s", "100/m", "1000/h", "20" (per second), "0" (off). */
static int
config_set_rate(struct config_loader *ld, const struct config_key *k,
		const char *v)
{
	struct config_limits *lim = &ld->c->limits;
	char num[24], q[80];
	const char *slash = strchr(v, '/');
	size_t nl = slash ? (size_t)(slash - v) : strlen(v);
	uint64_t n = 0, per = 1000;

	if (nl >= sizeof(num))
		goto bad;
	memcpy(num, v, nl);
	num[nl] = '\0';
	if (config_parse_scaled(num, (const char *const[]){NULL}, NULL, 1,
				&n) < 0)
		goto bad;
	if (slash != NULL) {
		if (strcmp(slash + 1, "s") == 0)
			per = 1000;
		else if (strcmp(slash + 1, "m") == 0)
			per = 60 * 1000;
		else if (strcmp(slash + 1, "h") == 0)
			per = 3600 * 1000;
		else
			goto bad;
	}
	if (n > k->max) {
		config_error(ld, ld->line, k->name,
			     "must be at most %" PRIu64 " per period, got %s",
			     k->max, config_quote(v, q, sizeof(q)));
		return -1;
	}
	lim->new_connections_rate = (unsigned)n;
	lim->new_connections_per_ms = per;
	return 0;
bad:
	config_error(ld, ld->line, k->name,
		     "expected a rate like 20/s, 100/m or 1000/h (0 = off), "
		     "got %s",
		     config_quote(v, q, sizeof(q)));
	return -1;
}

/* An absolute path to a file readable now, copied into *OUT. */
static int
config_set_abs_file(struct config_loader *ld, const char *key, const char *v,
		char **out)
{
	char q[80];

	if (v[0] != '/') {
		config_error(ld, ld->line, key, "path must be absolute, got %s",
			     config_quote(v, q, sizeof(q)));
		return -1;
	}
	if (access(v, R_OK) < 0) {
		config_error(ld, ld->line, key, "cannot read %s: %s",
			     config_quote(v, q, sizeof(q)), strerror(errno));
		return -1;
	}
	free(*out);
	*out = strdup(v);
	if (*out == NULL) {
		config_error(ld, ld->line, key, "out of memory");
		return -1;
	}
	return 0;
}

/* A DNS name: dot-separated labels of [A-Za-z0-9-], no '-' at either end. */
static bool
config_is_hostname(const char *h)
{
	size_t n = strlen(h), label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		unsigned char ch = (unsigned char)h[i];
		if (ch == '.' || ch == '\0') {
			if (label == 0 || label > 63 || h[i - 1] == '-')
				return false;
			label = 0;
		} else if (config_is_alnum(ch) || ch == '-' || ch == '_') {
			/* '_' is not in RFC 1123 host names, but container
			   service names (Docker, Compose) often carry it. */
			if (label == 0 && ch == '-')
				return false;
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* True if H looks like an IPv4 literal (digits and dots only). */
static bool
config_looks_ipv4(const char *h)
{
	return h[0] != '\0' && strspn(h, "0123456789.") == strlen(h);
}

/* Parse the route's upstream: echo, unix:/path, host:port, [v6]:port,
   tls://host:port, tls://[v6]:port. */
static int
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

/* Parse an unsigned number of TYPE for key K and check its range. */
static int
config_number(struct config_loader *ld, const struct config_key *k,
	      const char *v, uint64_t *out)
{
	char q[80], lim[32];
	int rc;

	switch (k->type) {
	case KT_SIZE:
		rc = config_size(v, out);
		if (rc == -1)
			config_error(ld, ld->line, k->name,
				     "expected a size like 64k or 1m, got %s",
				     config_quote(v, q, sizeof(q)));
		break;
	case KT_DURATION:
		rc = config_duration(v, out);
		if (rc == -1)
			config_error(ld, ld->line, k->name,
				     "expected a duration like 500ms, 30s, 5m "
				     "or 1h, got %s",
				     config_quote(v, q, sizeof(q)));
		break;
	default: /* KT_COUNT, KT_CLOSE_CODE */
		rc = config_parse_scaled(v, (const char *const[]){NULL}, NULL,
					 1, out);
		if (rc == -1)
			config_error(ld, ld->line, k->name,
				     "expected a whole number, got %s",
				     config_quote(v, q, sizeof(q)));
		break;
	}
	if (rc == -2)
		config_error(ld, ld->line, k->name, "%s is out of range",
			     config_quote(v, q, sizeof(q)));
	if (rc < 0 || k->type == KT_CLOSE_CODE)
		return rc < 0 ? -1 : 0;
	if (*out < k->min) {
		if (k->type == KT_DURATION && k->min == 1)
			config_error(ld, ld->line, k->name,
				     "must be greater than 0");
		else if (k->type == KT_SIZE)
			config_error(ld, ld->line, k->name,
				     "must be at least %s, got %s",
				     config_fmt_size(k->min, lim, sizeof(lim)),
				     config_quote(v, q, sizeof(q)));
		else
			config_error(ld, ld->line, k->name,
				     "must be at least %" PRIu64 ", got %s",
				     k->min, config_quote(v, q, sizeof(q)));
		return -1;
	}
	if (*out > k->max) {
		if (k->type == KT_DURATION)
			config_fmt_duration(k->max, lim, sizeof(lim));
		else if (k->type == KT_SIZE)
			config_fmt_size(k->max, lim, sizeof(lim));
		else
			snprintf(lim, sizeof(lim), "%" PRIu64, k->max);
		config_error(ld, ld->line, k->name,
			     "must be at most %s, got %s", lim,
			     config_quote(v, q, sizeof(q)));
		return -1;
	}
	return 0;
}

/* Parse a close code for key K (RFC 6455 7.4). */
static int
config_close_code(struct config_loader *ld, const struct config_key *k,
		  const char *v, uint64_t *out)
{
	if (config_number(ld, k, v, out) < 0)
		return -1;
	if (*out == WS_CLOSE_NO_STATUS || *out == WS_CLOSE_ABNORMAL ||
	    *out == WS_CLOSE_TLS_HANDSHAKE) {
		/* RFC 6455 7.4.1: reserved, never sent in a close frame */
		config_error(ld, ld->line, k->name,
			     "%" PRIu64 " is reserved and never sent on the "
			     "wire (RFC 6455 7.4.1); use e.g. 1011, 1013 or "
			     "1014",
			     *out);
		return -1;
	}
	if (*out > 65535 || !ws_close_code_is_valid((unsigned)*out)) {
		config_error(ld, ld->line, k->name,
			     "%" PRIu64 " is not a close code that may be sent "
			     "(1000-1003, 1007-1014, 3000-4999)",
			     *out);
		return -1;
	}
	return 0;
}

/* Store file name V of key K into the struct config_value at DST; relative
   names are taken from the config file's directory. */
static int
config_set_file(struct config_loader *ld, const struct config_key *k,
		const char *v, struct config_value *dst)
{
	size_t n = strlen(v);

	if (n == 0) {
		config_error(ld, ld->line, k->name, "empty file name");
		return -1;
	}
	if (v[0] == '/' || ld->dir_len == 0) {
		dst->value = strdup(v);
	} else {
		dst->value = malloc(ld->dir_len + n + 1);
		if (dst->value != NULL) {
			memcpy(dst->value, ld->name, ld->dir_len);
			memcpy(dst->value + ld->dir_len, v, n + 1);
		}
	}
	if (dst->value == NULL) {
		config_error(ld, ld->line, k->name, "out of memory");
		return -1;
	}
	dst->line = ld->line;
	return 0;
}

/* Copy text V of key K into the string at DST. */
static int
config_set_string(struct config_loader *ld, const struct config_key *k,
		  const char *v, char **dst)
{
	if (v[0] == '\0') {
		config_error(ld, ld->line, k->name, "empty value");
		return -1;
	}
	*dst = strdup(v);
	if (*dst == NULL) {
		config_error(ld, ld->line, k->name, "out of memory");
		return -1;
	}
	return 0;
}

/* Append one server_names entry to the current [tls NAME]. */
static int
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

/* The struct a key of section SEC stores into. */
static void *
config_key_base(struct config_loader *ld, enum config_section sec)
{
	switch (sec) {
	case SEC_ROUTE:
		return &ld->c->routes[ld->route];
	case SEC_TLS_NAMED:
		return &ld->c->tls.sni[ld->sni];
	default:
		return ld->c;
	}
}

/* Apply one key = value of the current section. */
static int
config_set(struct config_loader *ld, enum config_key_id id, const char *v)
{
	const struct config_key *k = &config_keys[id];
	struct config_route *r =
		k->section == SEC_ROUTE ? &ld->c->routes[ld->route] : NULL;
	void *base = config_key_base(ld, k->section);
	void *field = (char *)base + k->offset;
	uint64_t n = 0;
	char q[80];
	bool b;

	switch (k->type) {
	case KT_FILE:
		return config_set_file(ld, k, v, field);
	case KT_STRING:
		if (config_set_string(ld, k, v,
				      &((struct config_value *)field)->value) < 0)
			return -1;
		((struct config_value *)field)->line = ld->line;
		return 0;
	case KT_FINGERPRINTS:
		return config_split_list(ld, k->name, v, config_add_fingerprint);
	case KT_HOSTNAME:
		if (!config_is_hostname(v)) {
			config_error(ld, ld->line, k->name,
				     "bad host name %s (letters, digits, '-', "
				     "'_' and '.' only)",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return config_set_string(ld, k, v, field);
	case KT_SERVER_NAMES:
		return config_split_list(ld, k->name, v,
					 config_add_server_name);
	case KT_TLS_VERSION:
		if (strcmp(v, "1.2") == 0)
			ld->c->tls.min_version = CONFIG_TLS_1_2;
		else if (strcmp(v, "1.3") == 0)
			ld->c->tls.min_version = CONFIG_TLS_1_3;
		else {
			config_error(ld, ld->line, k->name,
				     "expected 1.2 or 1.3 (older versions are "
				     "not offered), got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	case KT_CLIENT_VERIFY:
		if (strcmp(v, "off") == 0)
			ld->c->tls.client_verify = CLIENT_VERIFY_OFF;
		else if (strcmp(v, "optional") == 0)
			ld->c->tls.client_verify = CLIENT_VERIFY_OPTIONAL;
		else if (strcmp(v, "required") == 0)
			ld->c->tls.client_verify = CLIENT_VERIFY_REQUIRED;
		else {
			config_error(ld, ld->line, k->name,
				     "expected off, optional or required, got "
				     "%s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		ld->c->tls.client_verify_line = ld->line;
		return 0;
	case KT_LISTEN:
		return config_split_list(ld, k->name, v, config_add_listen);
	case KT_SUBPROTOCOLS:
		return config_split_list(ld, k->name, v,
					 config_add_subprotocol);
	case KT_UPSTREAM:
		return config_set_upstream(ld, v);
	case KT_WORKERS:
		if (strcmp(v, "auto") == 0) {
			ld->c->workers = 0;
			return 0;
		}
		if (config_number(ld, k, v, &n) < 0)
			return -1; /* "expected a whole number": or auto */
		ld->c->workers = (unsigned)n;
		return 0;
	case KT_CPU_AFFINITY:
		if (strcmp(v, "auto") == 0 || strcmp(v, "off") == 0) {
			ld->c->pin_workers = strcmp(v, "auto") == 0;
			return 0;
		}
		config_error(ld, ld->line, k->name,
			     "expected auto or off, got %s",
			     config_quote(v, q, sizeof(q)));
		return -1;
	case KT_ADMIN_LISTEN:
		if (config_parse_listen(v, &ld->c->admin.addr,
					&ld->c->admin.addr_len) < 0) {
			config_error(ld, ld->line, k->name,
				     "expected one numeric address like "
				     "127.0.0.1:9090 or [::1]:9090, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		ld->c->admin.text = strdup(v);
		if (ld->c->admin.text == NULL) {
			config_error(ld, ld->line, k->name, "out of memory");
			return -1;
		}
		ld->c->admin.line = ld->line;
		ld->c->has_admin = true;
		return 0;
	case KT_CIDR_LIST:
		return config_split_list(ld, k->name, v, config_add_trusted);
	case KT_ORIGINS:
		return config_split_list(ld, k->name, v, config_add_origin);
	case KT_AUTH_FROM:
		r->auth_from = 0;
		return config_split_list(ld, k->name, v, config_add_auth_from);
	case KT_TARGET_ALLOW:
		return config_split_list(ld, k->name, v,
					 config_add_target_rule);
	case KT_RATE:
		return config_set_rate(ld, k, v);
	case KT_ABS_FILE:
		return config_set_abs_file(ld, k->name, v, &r->auth_tokens);
	case KT_TOKEN_NAME:
		for (const char *p = v; *p != '\0'; p++) {
			if (!config_is_tchar((unsigned char)*p)) {
				config_error(ld, ld->line, k->name,
					     "%s is not a token (RFC 9110 "
					     "5.6.2)",
					     config_quote(v, q, sizeof(q)));
				return -1;
			}
		}
		{
			char **dst = id == K_AUTH_COOKIE
					     ? &r->auth_cookie
					     : &r->auth_protocol_prefix;
			free(*dst);
			if ((*dst = strdup(v)) == NULL) {
				config_error(ld, ld->line, k->name,
					     "out of memory");
				return -1;
			}
		}
		return 0;
	case KT_REAL_IP_HEADER:
		if (strcasecmp(v, "x-forwarded-for") == 0)
			ld->c->real_ip_header = REAL_IP_XFF;
		else if (strcasecmp(v, "forwarded") == 0)
			ld->c->real_ip_header = REAL_IP_FORWARDED;
		else {
			config_error(ld, ld->line, k->name,
				     "expected x-forwarded-for or forwarded, "
				     "got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	case KT_ORIGIN_MISSING:
		if (strcmp(v, "allow") != 0 && strcmp(v, "deny") != 0) {
			config_error(ld, ld->line, k->name,
				     "expected allow or deny, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		if (r != NULL) {
			r->origin_missing_deny = strcmp(v, "deny") == 0;
			r->origin_missing_set = true;
		} else {
			ld->c->origin_missing_deny = strcmp(v, "deny") == 0;
		}
		return 0;
	case KT_AUTH_FAILURE:
		if (strcmp(v, "http") == 0)
			r->auth_failure_close = false;
		else if (strcmp(v, "close") == 0)
			r->auth_failure_close = true;
		else {
			config_error(ld, ld->line, k->name,
				     "expected http or close, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	case KT_SEND_PROXY:
		if (strcmp(v, "off") == 0)
			r->send_proxy = SEND_PROXY_OFF;
		else if (strcmp(v, "v1") == 0)
			r->send_proxy = SEND_PROXY_V1;
		else if (strcmp(v, "v2") == 0)
			r->send_proxy = SEND_PROXY_V2;
		else {
			config_error(ld, ld->line, k->name,
				     "expected off, v1 or v2, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	case KT_COUNT:
	case KT_SIZE:
	case KT_DURATION:
		if (config_number(ld, k, v, &n) < 0)
			return -1;
		break;
	case KT_CLOSE_CODE:
		if (config_close_code(ld, k, v, &n) < 0)
			return -1;
		break;
	case KT_BOOL:
		if (config_parse_bool(v, &b) < 0) {
			config_error(ld, ld->line, k->name,
				     "expected on/off, yes/no, true/false or "
				     "1/0, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		n = b;
		break;
	case KT_LOG_LEVEL:
		if (log_level_parse(v, &ld->c->log_level) < 0) {
			config_error(ld, ld->line, k->name,
				     "expected error, warn, info or debug, "
				     "got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	case KT_FRAME_TYPE:
		if (strcmp(v, "binary") == 0)
			r->frame_type = FRAME_BINARY;
		else if (strcmp(v, "text") == 0)
			r->frame_type = FRAME_TEXT;
		else {
			config_error(ld, ld->line, k->name,
				     "expected binary or text, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	case KT_ON_RESET:
		if (strcmp(v, "close") == 0)
			r->abort_on_reset = false;
		else if (strcmp(v, "abort") == 0)
			r->abort_on_reset = true;
		else {
			config_error(ld, ld->line, k->name,
				     "expected close or abort, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	}
	if (k->width == sizeof(size_t) && n > SIZE_MAX) {
		config_error(ld, ld->line, k->name, "%s is out of range",
			     config_quote(v, q, sizeof(q)));
		return -1;
	}
	config_store(field, k->width, n);
	return 0;
}

/* The name of the current section, for messages. */
static const char *
config_section_name(struct config_loader *ld, char *buf, size_t len)
{
	char q[80];

	switch (ld->section) {
	case SEC_GATEWAY:
		return "[gateway]";
	case SEC_LIMITS:
		return "[limits]";
	case SEC_ADMIN:
		return "[admin]";
	case SEC_ROUTE:
		snprintf(buf, len, "[route %s]",
			 config_clean(ld->c->routes[ld->route].path, q,
				      sizeof(q), false));
		return buf;
	case SEC_TLS:
		return "[tls]";
	case SEC_TLS_NAMED:
		snprintf(buf, len, "[tls %s]",
			 config_clean(ld->c->tls.sni[ld->sni].name, q,
				      sizeof(q), false));
		return buf;
	case SEC_NONE:
		break;
	}
	return "no section";
}

/* True for route keys that only apply to tls:// upstreams. */
static bool
config_key_is_tls_only(size_t id)
{
	switch (id) {
	case K_CODE_TLS:
	case K_UPSTREAM_CA:
	case K_UPSTREAM_VERIFY:
	case K_UPSTREAM_SNI:
	case K_UPSTREAM_CERTIFICATE:
	case K_UPSTREAM_KEY:
		return true;
	default:
		return false;
	}
}

/* inih callback: one key = value (SECTION is ignored, see the top). */
static int
config_key_cb(void *user, const char *section, const char *name,
	      const char *value)
{
	struct config_loader *ld = user;
	char sec[128];
	size_t i;

	(void)section;
	if (ld->failed)
		return 0;
	if (name == NULL) /* a new section, if inih was built to say so */
		return 1;
	if (value == NULL) {
		config_error(ld, ld->line, name, "expected 'key = value'");
		return 0;
	}
	if (ld->section == SEC_NONE) {
		config_error(ld, ld->line, name,
			     "key outside of any section (put it under "
			     "[gateway], [limits], [admin], [tls], [tls NAME] "
			     "or [route PATH])");
		return 0;
	}
	for (i = 0; i < K_COUNT_; i++)
		if (config_keys[i].section == ld->section &&
		    strcmp(config_keys[i].name, name) == 0)
			break;
	if (i == K_COUNT_) {
		config_error(ld, ld->line, name, "unknown key in %s",
			     config_section_name(ld, sec, sizeof(sec)));
		return 0;
	}
	if (ld->seen[i] != 0 && config_keys[i].type != KT_LISTEN) {
		config_error(ld, ld->line, name,
			     "duplicate key (first set at line %d)",
			     ld->seen[i]);
		return 0;
	}
	ld->seen[i] = ld->line;
	if (ld->section == SEC_ROUTE && config_key_is_tls_only(i)) {
		struct config_route *r = &ld->c->routes[ld->route];
		if (r->tls_key == NULL) {
			r->tls_key = config_keys[i].name;
			r->tls_key_line = ld->line;
		}
	}
	if (i == K_AUTH_FROM || i == K_AUTH_COOKIE ||
	    i == K_AUTH_PROTOCOL_PREFIX) {
		ld->c->routes[ld->route].auth_key_line = ld->line;
		ld->c->routes[ld->route].auth_key_name = config_keys[i].name;
	}
	return config_set(ld, (enum config_key_id)i, value) == 0;
}

/* A route path: starts with '/', printable ASCII, no '?', '#' or blanks. */
static const char *
config_path_error(const char *p)
{
	if (p[0] != '/')
		return "path must start with '/'";
	for (; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch <= 0x20 || ch >= 0x7f)
			return "path must be printable ASCII without blanks "
			       "(percent-encode other bytes)";
		if (ch == '?' || ch == '#')
			return "path must not contain '?' or '#' (the query "
			       "is not part of the route)";
		if (ch == '*' && !(p[-1] == '/' && p[1] == '\0'))
			return "'*' may only end a prefix route, as in "
			       "[route /vnc/*]";
	}
	return NULL;
}

/* Open a new route section named PATH at the current line. */
static void
config_begin_route(struct config_loader *ld, const char *path)
{
	struct config *c = ld->c;
	struct config_route *r;
	const char *why;
	char q[80], sec[128];

	snprintf(sec, sizeof(sec), "[route %s]",
		 config_clean(path, q, sizeof(q), false));
	if (path[0] == '\0') {
		config_error(ld, ld->line, "[route]",
			     "a route needs a path, like [route /echo]");
		return;
	}
	if ((why = config_path_error(path)) != NULL) {
		config_error(ld, ld->line, sec, "%s", why);
		return;
	}
	for (size_t i = 0; i < c->n_routes; i++) {
		if (strcmp(c->routes[i].path, path) == 0) {
			config_error(ld, ld->line, sec,
				     "duplicate route (first at line %d)",
				     c->routes[i].line);
			return;
		}
	}
	if (c->n_routes == ld->routes_cap) {
		size_t cap = ld->routes_cap ? ld->routes_cap * 2 : 4;
		r = realloc(c->routes, cap * sizeof(*r));
		if (r == NULL) {
			config_error(ld, ld->line, sec, "out of memory");
			return;
		}
		c->routes = r;
		ld->routes_cap = cap;
	}
	r = &c->routes[c->n_routes];
	*r = ld->route_defaults;
	r->line = ld->line;
	r->path = strdup(path);
	if (r->path == NULL) {
		config_error(ld, ld->line, sec, "out of memory");
		return;
	}
	r->prefix_len = strlen(path);
	if (r->prefix_len >= 2 && path[r->prefix_len - 1] == '*') {
		r->prefix = true;
		r->prefix_len--;
	}
	ld->route = c->n_routes++;
	ld->section = SEC_ROUTE;
	for (size_t i = 0; i < K_COUNT_; i++)
		if (config_keys[i].section == SEC_ROUTE)
			ld->seen[i] = 0;
}

/* Open a [tls NAME] section (an SNI certificate) at the current line. */
static void
config_begin_tls_named(struct config_loader *ld, const char *name)
{
	struct config_tls *t = &ld->c->tls;
	struct config_tls_cert *cert;
	char q[80], sec[128];

	snprintf(sec, sizeof(sec), "[tls %s]",
		 config_clean(name, q, sizeof(q), false));
	for (const char *p = name; *p != '\0'; p++) {
		if (!config_is_alnum((unsigned char)*p) && *p != '-' &&
		    *p != '_' && *p != '.') {
			config_error(ld, ld->line, sec,
				     "a [tls NAME] name holds letters, digits, "
				     "'-', '_' and '.' only");
			return;
		}
	}
	for (size_t i = 0; i < t->n_sni; i++) {
		if (strcmp(t->sni[i].name, name) == 0) {
			config_error(ld, ld->line, sec,
				     "duplicate section (first at line %d)",
				     t->sni[i].line);
			return;
		}
	}
	if (t->n_sni == ld->sni_cap) {
		size_t cap = ld->sni_cap ? ld->sni_cap * 2 : 4;
		cert = realloc(t->sni, cap * sizeof(*cert));
		if (cert == NULL) {
			config_error(ld, ld->line, sec, "out of memory");
			return;
		}
		t->sni = cert;
		ld->sni_cap = cap;
	}
	cert = &t->sni[t->n_sni];
	memset(cert, 0, sizeof(*cert));
	cert->line = ld->line;
	cert->name = strdup(name);
	if (cert->name == NULL) {
		config_error(ld, ld->line, sec, "out of memory");
		return;
	}
	ld->sni = t->n_sni++;
	ld->section = SEC_TLS_NAMED;
	for (size_t i = 0; i < K_COUNT_; i++)
		if (config_keys[i].section == SEC_TLS_NAMED)
			ld->seen[i] = 0;
}

/* A "[...]" header line; S (LEN bytes) is the trimmed line. */
static void
config_begin_section(struct config_loader *ld, const char *s, size_t len)
{
	char name[256], q[80];
	const char *rb = memchr(s, ']', len);
	size_t a = 1, b;
	int *first;

	if (rb == NULL) {
		config_error(ld, ld->line, NULL,
			     "section header without closing ']'");
		return;
	}
	if ((size_t)(rb - s) + 1 != len) {
		config_error(ld, ld->line, NULL, "unexpected text after ']'");
		return;
	}
	b = (size_t)(rb - s);
	while (a < b && (s[a] == ' ' || s[a] == '\t'))
		a++;
	while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
		b--;
	memcpy(name, s + a, b - a); /* b - a < line length < sizeof(name) */
	name[b - a] = '\0';

	if (strcmp(name, "gateway") == 0) {
		ld->section = SEC_GATEWAY;
		first = &ld->gateway_line;
	} else if (strcmp(name, "limits") == 0) {
		ld->section = SEC_LIMITS;
		first = &ld->limits_line;
	} else if (strcmp(name, "admin") == 0) {
		ld->section = SEC_ADMIN;
		first = &ld->admin_line;
	} else if (strcmp(name, "tls") == 0) {
		ld->section = SEC_TLS;
		first = &ld->c->tls.line;
	} else if (strncmp(name, "tls", 3) == 0 &&
		   (name[3] == ' ' || name[3] == '\t')) {
		const char *tname = name + 3;
		while (*tname == ' ' || *tname == '\t')
			tname++;
		config_begin_tls_named(ld, tname);
		return;
	} else if (strcmp(name, "route") == 0 ||
		   (strncmp(name, "route", 5) == 0 &&
		    (name[5] == ' ' || name[5] == '\t'))) {
		const char *path = name + 5;
		while (*path == ' ' || *path == '\t')
			path++;
		config_begin_route(ld, path);
		return;
	} else {
		char sec[128];
		snprintf(sec, sizeof(sec), "[%s]",
			 config_clean(name, q, sizeof(q), false));
		config_error(ld, ld->line, sec,
			     "unknown section (expected [gateway], [limits], "
			     "[admin], [tls], [tls NAME] or [route PATH])");
		return;
	}
	if (*first != 0) {
		char sec[128];
		config_error(ld, ld->line,
			     config_section_name(ld, sec, sizeof(sec)),
			     "duplicate section (first at line %d)", *first);
		return;
	}
	*first = ld->line;
}

/* True for the blanks we trim around lines. */
static bool
config_is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/*
 * inih reader: hand over the next line, cleaned: no comment, no
 * indentation, no trailing blanks, ending in '\n'.  Section headers are
 * handled here.  NULL ends the parse (end of input or an error).
 */
static char *
config_read_line_cb(char *str, int num, void *stream)
{
	struct config_loader *ld = stream;
	const char *s, *e, *nl;
	size_t n;

	if (ld->failed || ld->p >= ld->end)
		return NULL;
	s = ld->p;
	nl = memchr(s, '\n', (size_t)(ld->end - s));
	e = nl ? nl : ld->end;
	ld->p = nl ? nl + 1 : ld->end;
	ld->line++;
	if (ld->line == 1 && e - s >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3; /* UTF-8 byte order mark */
	if (memchr(s, '\0', (size_t)(e - s)) != NULL) {
		config_error(ld, ld->line, NULL, "NUL byte in line");
		return NULL;
	}
	/* a comment starts at ';' or '#' first on the line or after a blank */
	for (const char *p = s; p < e; p++) {
		if ((*p == ';' || *p == '#') &&
		    (p == s || config_is_blank(p[-1]))) {
			e = p;
			break;
		}
	}
	while (s < e && config_is_blank(*s))
		s++;
	while (e > s && config_is_blank(e[-1]))
		e--;
	n = (size_t)(e - s);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			config_error(ld, ld->line, NULL,
				     "control character 0x%02x in line", ch);
			return NULL;
		}
	}
	/* room for '\n' and NUL; also keeps inih from growing its buffer */
	if (num < 3 || n > (size_t)num - 2 || n > 250) {
		config_error(ld, ld->line, NULL,
			     "line too long (at most %d characters besides "
			     "comments)",
			     num - 2 < 250 ? num - 2 : 250);
		return NULL;
	}
	if (n > 0 && s[0] == '[') {
		config_begin_section(ld, s, n);
		if (ld->failed)
			return NULL;
	} else if (n > 0) {
		const char *sep = s;
		while (sep < e && *sep != '=' && *sep != ':')
			sep++;
		if (sep == e) {
			config_error(ld, ld->line, NULL,
				     "expected 'key = value', '[section]' or "
				     "a comment");
			return NULL;
		}
		if (sep == s) {
			config_error(ld, ld->line, NULL,
				     "missing key name before '%c'", *sep);
			return NULL;
		}
	}
	memcpy(str, s, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}

/* A certificate and its key go together: both set or neither. */
static void
config_check_pair(struct config_loader *ld, const struct config_value *cert,
		  const char *cert_key, const struct config_value *key,
		  const char *key_key)
{
	if (cert->value != NULL && key->value == NULL)
		config_error(ld, cert->line, cert_key, "needs %s too", key_key);
	else if (key->value != NULL && cert->value == NULL)
		config_error(ld, key->line, key_key, "needs %s too", cert_key);
}

/* resolv_conf: a regular file we can read, as evdns will at the start. */
static void
config_check_resolv_conf(struct config_loader *ld)
{
	const struct config_value *v = &ld->c->resolv_conf;
	struct stat st;
	char q[80];
	FILE *f;

	if (v->value == NULL)
		return;
	f = fopen(v->value, "r");
	if (f == NULL) {
		config_error(ld, v->line, "resolv_conf", "cannot read %s: %s",
			     config_quote(v->value, q, sizeof(q)),
			     strerror(errno));
		return;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode))
		config_error(ld, v->line, "resolv_conf",
			     "%s is not a regular file",
			     config_quote(v->value, q, sizeof(q)));
	fclose(f);
}

/* [tls], [tls NAME] and tls listeners. */
static void
config_check_tls(struct config_loader *ld)
{
	struct config *c = ld->c;
	struct config_tls *t = &c->tls;
	char q[80], sec[128];

	config_check_pair(ld, &t->def.certificate, "certificate", &t->def.key,
			  "key");
	for (size_t i = 0; i < t->n_sni && !ld->failed; i++) {
		const struct config_tls_cert *cert = &t->sni[i];
		snprintf(sec, sizeof(sec), "[tls %s]",
			 config_clean(cert->name, q, sizeof(q), false));
		if (cert->n_server_names == 0)
			config_error(ld, cert->line, sec,
				     "no server_names (the names this "
				     "certificate is chosen for)");
		else if (cert->certificate.value == NULL ||
			 cert->key.value == NULL)
			config_error(ld, cert->line, sec,
				     "needs certificate and key");
		else if (t->def.certificate.value == NULL)
			config_error(ld, cert->line, sec,
				     "needs a default certificate: set "
				     "certificate and key in [tls]");
	}
	if (ld->failed)
		return;
	if (t->client_verify != CLIENT_VERIFY_OFF && t->client_ca.value == NULL)
		config_error(ld, t->client_verify_line, "client_verify",
			     "needs client_ca (the CA certificates that sign "
			     "client certificates)");
	else if (t->client_verify == CLIENT_VERIFY_OFF &&
		 t->client_ca.value != NULL)
		config_error(ld, t->client_ca.line, "client_ca",
			     "has no effect with client_verify = off (set "
			     "client_verify = optional or required)");
	for (size_t i = 0; i < c->n_listens && !ld->failed; i++) {
		if (c->listens[i].tls && t->def.certificate.value == NULL)
			config_error(ld, c->listens[i].line, "listen",
				     "a tls listener needs a certificate: add "
				     "a [tls] section with certificate and "
				     "key");
	}
}

/* The TLS keys of a route need a tls:// upstream. */
static void
config_check_route_tls(struct config_loader *ld, const struct config_route *r)
{
	if (r->tls_key != NULL && !r->tls) {
		config_error(ld, r->tls_key_line, r->tls_key,
			     "only applies to tls:// upstreams");
		return;
	}
	config_check_pair(ld, &r->upstream_certificate, "upstream_certificate",
			  &r->upstream_key, "upstream_key");
}

/* Access-control checks and string defaults of route R. */
static void
config_check_access(struct config_loader *ld, struct config_route *r,
		    const char *sec)
{
	bool dynamic = r->kind == UPSTREAM_TOKENFILE;

	if (dynamic && r->n_target_allow == 0) {
		config_error(ld, r->line, sec,
			     "a tokenfile: upstream needs target_allow (the "
			     "networks and ports tokens may lead to, like "
			     "127.0.0.0/8:5900-5999)");
		return;
	}
	if (r->kind == UPSTREAM_ECHO && r->send_proxy != SEND_PROXY_OFF) {
		config_error(ld, r->line, sec,
			     "send_proxy needs an upstream (not echo)");
		return;
	}
	if (r->auth_tokens == NULL && r->auth_key_line != 0) {
		config_error(ld, r->auth_key_line, r->auth_key_name,
			     "set, but the route has no auth_tokens");
		return;
	}
	if (r->auth_cookie == NULL &&
	    (r->auth_cookie = strdup(CONFIG_DEFAULT_AUTH_COOKIE)) == NULL)
		goto oom;
	if (r->auth_protocol_prefix == NULL &&
	    (r->auth_protocol_prefix =
		     strdup(CONFIG_DEFAULT_AUTH_PROTOCOL_PREFIX)) == NULL)
		goto oom;
	if (r->auth_tokens != NULL && (r->auth_from & AUTH_FROM_PROTOCOL)) {
		size_t pl = strlen(r->auth_protocol_prefix);
		for (size_t i = 0; i < r->n_subprotocols; i++) {
			if (strncmp(r->subprotocols[i], r->auth_protocol_prefix,
				    pl) == 0) {
				config_error(ld, r->line, sec,
					     "subprotocol \"%s\" starts with "
					     "auth_protocol_prefix \"%s\"",
					     r->subprotocols[i],
					     r->auth_protocol_prefix);
				return;
			}
		}
	}
	return;
oom:
	config_error(ld, r->line, sec, "out of memory");
}

/* Checks that need the whole file: required keys, cross-key limits. */
static void
config_check(struct config_loader *ld)
{
	struct config *c = ld->c;
	struct config_limits *lim = &c->limits;
	char q[80], sec[128];

	for (size_t i = 0; i < c->n_routes && !ld->failed; i++) {
		struct config_route *r = &c->routes[i];
		snprintf(sec, sizeof(sec), "[route %s]",
			 config_clean(r->path, q, sizeof(q), false));
		if (r->upstream == NULL) {
			config_error(ld, r->line, sec,
				     "no upstream (add upstream = host:port, "
				     "tls://host:port, unix:/path, echo or "
				     "tokenfile:/path)");
			break;
		}
		config_check_route_tls(ld, r);
		if (!ld->failed)
			config_check_access(ld, r, sec);
		if (!ld->failed &&
		    (r->client_subject.value != NULL ||
		     r->n_client_fingerprints > 0) &&
		    c->tls.client_verify == CLIENT_VERIFY_OFF)
			config_error(ld,
				     r->client_subject.value != NULL
					     ? r->client_subject.line
					     : r->client_fingerprint_line,
				     r->client_subject.value != NULL
					     ? "client_subject"
					     : "client_fingerprint",
				     "needs client certificates: set "
				     "client_verify = optional or required in "
				     "[tls]");
	}
	if (!ld->failed)
		config_check_tls(ld);
	if (!ld->failed)
		config_check_resolv_conf(ld);
	if (ld->failed)
		return;
	if (lim->max_request_line > lim->max_header_bytes) {
		if (ld->seen[K_MAX_REQUEST_LINE] != 0)
			config_error(ld, ld->seen[K_MAX_REQUEST_LINE],
				     "max_request_line",
				     "must not exceed max_header_bytes (%zu)",
				     lim->max_header_bytes);
		else
			config_error(ld, ld->seen[K_MAX_HEADER_BYTES],
				     "max_header_bytes",
				     "must be at least max_request_line (%zu)",
				     lim->max_request_line);
		return;
	}
	if (c->n_listens == 0) {
		config_error(ld, 0, NULL,
			     "no listen address (set listen in [gateway])");
		return;
	}
	if (c->n_routes == 0)
		config_error(ld, 0, NULL,
			     "no route (add a [route /path] section)");
}

/* Parse LEN bytes of TEXT named NAME. */
static struct config *
config_parse(const char *text, size_t len, const char *name, char *err,
	     size_t errlen)
{
	struct config_loader ld;
	struct config *c;
	int rc;

	memset(&ld, 0, sizeof(ld));
	ld.name = name;
	ld.err = err;
	ld.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->file = strdup(name)) == NULL) {
		free(c);
		config_error(&ld, 0, NULL, "out of memory");
		return NULL;
	}
	ld.c = c;
	c->refs = 1;
	/* Relative file names in the config are taken from its directory. */
	if (strrchr(name, '/') != NULL)
		ld.dir_len = (size_t)(strrchr(name, '/') - name) + 1;
	config_defaults(c, &ld.route_defaults);
	ld.p = text;
	ld.end = text + len;

	rc = ini_parse_stream(config_read_line_cb, &ld, config_key_cb, &ld);
	if (!ld.failed && rc == -2)
		config_error(&ld, 0, NULL, "out of memory");
	else if (!ld.failed && rc != 0)
		config_error(&ld, rc, NULL, "syntax error");
	if (!ld.failed)
		config_check(&ld);
	if (ld.failed) {
		config_free(c);
		return NULL;
	}
	return c;
}

/* Load the configuration file FILE. */
struct config *
config_load(const char *file, char *err, size_t errlen)
{
	struct config_loader ld = {.name = file ? file : "(null)", .err = err,
				   .errlen = errlen};
	struct config *c = NULL;
	char *buf;
	size_t n;
	FILE *f;

	if (file == NULL) {
		config_error(&ld, 0, NULL, "no file name");
		return NULL;
	}
	f = fopen(file, "r");
	if (f == NULL) {
		config_error(&ld, 0, NULL, "cannot open: %s", strerror(errno));
		return NULL;
	}
	buf = malloc(CONFIG_MAX_FILE + 1);
	if (buf == NULL) {
		fclose(f);
		config_error(&ld, 0, NULL, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, CONFIG_MAX_FILE + 1, f);
	if (ferror(f))
		config_error(&ld, 0, NULL, "cannot read: %s", strerror(errno));
	else if (n > CONFIG_MAX_FILE)
		config_error(&ld, 0, NULL, "file larger than %d bytes",
			     CONFIG_MAX_FILE);
	else
		c = config_parse(buf, n, file, err, errlen);
	fclose(f);
	free(buf);
	return c;
}

/* Load the configuration from TEXT, calling it NAME in messages. */
struct config *
config_load_string(const char *text, const char *name, char *err,
		   size_t errlen)
{
	if (name == NULL)
		name = "(string)";
	if (text == NULL) {
		struct config_loader ld = {.name = name, .err = err,
					   .errlen = errlen};
		config_error(&ld, 0, NULL, "no text");
		return NULL;
	}
	return config_parse(text, strlen(text), name, err, errlen);
}

/* Take a reference. */
struct config *
config_ref(struct config *c)
{
	if (c != NULL)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

/* Drop a reference; the last one frees. */
void
config_unref(struct config *c)
{
	if (c != NULL && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(c);
}

/* Free what CERT owns (not CERT itself). */
static void
config_free_tls_cert(struct config_tls_cert *cert)
{
	free(cert->name);
	for (size_t i = 0; i < cert->n_server_names; i++)
		free(cert->server_names[i]);
	free(cert->server_names);
	free(cert->certificate.value);
	free(cert->key.value);
}

/* True if some listen address has the tls flag. */
bool
config_has_tls_listener(const struct config *c)
{
	for (size_t i = 0; c != NULL && i < c->n_listens; i++)
		if (c->listens[i].tls)
			return true;
	return false;
}

/* Free the strings of O. */
static void
config_origins_free(struct config_origins *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->v[i]);
	free(o->v);
}

/* Free C and everything it owns. */
void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_listens; i++)
		free(c->listens[i].text);
	free(c->listens);
	free(c->admin.text);
	for (size_t i = 0; i < c->n_routes; i++) {
		struct config_route *r = &c->routes[i];
		free(r->path);
		free(r->upstream);
		free(r->host);
		free(r->unix_path);
		for (size_t j = 0; j < r->n_subprotocols; j++)
			free(r->subprotocols[j]);
		free(r->subprotocols);
		free(r->upstream_sni);
		free(r->client_subject.value);
		free(r->client_fingerprints);
		free(r->upstream_ca.value);
		free(r->upstream_certificate.value);
		free(r->upstream_key.value);
		config_origins_free(&r->origins);
		free(r->token_file);
		free(r->auth_tokens);
		free(r->auth_cookie);
		free(r->auth_protocol_prefix);
		free(r->target_allow);
	}
	free(c->routes);
	config_free_tls_cert(&c->tls.def);
	for (size_t i = 0; i < c->tls.n_sni; i++)
		config_free_tls_cert(&c->tls.sni[i]);
	free(c->tls.sni);
	free(c->tls.ciphers.value);
	free(c->tls.ciphersuites.value);
	free(c->tls.client_ca.value);
	free(c->resolv_conf.value);
	config_origins_free(&c->origins);
	free(c->trusted_proxies);
	free(c->file);
	free(c);
}

/* The route for PATH: exact match first, then the longest prefix route. */
const struct config_route *
config_find_route(const struct config *c, const char *path, size_t len)
{
	const struct config_route *best = NULL;

	if (c == NULL || path == NULL)
		return NULL;
	for (size_t i = 0; i < c->n_routes; i++) {
		const struct config_route *r = &c->routes[i];
		if (!r->prefix && strlen(r->path) == len &&
		    memcmp(r->path, path, len) == 0)
			return r;
	}
	for (size_t i = 0; i < c->n_routes; i++) {
		const struct config_route *r = &c->routes[i];
		if (r->prefix && len >= r->prefix_len &&
		    memcmp(r->path, path, r->prefix_len) == 0 &&
		    (best == NULL || r->prefix_len > best->prefix_len))
			best = r;
	}
	return best;
}

/* The origin list in force for R. */
const struct config_origins *
config_route_origins(const struct config *c, const struct config_route *r)
{
	return r->origins_set ? &r->origins : &c->origins;
}

/* True if R refuses requests without Origin. */
bool
config_route_origin_missing_deny(const struct config *c,
				 const struct config_route *r)
{
	return r->origin_missing_set ? r->origin_missing_deny
				     : c->origin_missing_deny;
}
