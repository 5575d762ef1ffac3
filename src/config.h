/*
 * config.h - the INI configuration: parsed with inih into struct config.
 *
 * Every value is copied (inih's strings live only during its callback).
 * Every key is one row of the table in config_table.h: its section, type,
 * bounds, keywords, default, flags and description; config_defaults()
 * applies the defaults from there.  Errors name the file, the line, the
 * key and the reason: "FILE:LINE: key: message".
 *
 * File layout (see etc/wsgate.ini for the commented example):
 *
 *   [gateway]   listen (repeatable, or comma-separated), max_connections,
 *               workers, cpu_affinity, splice, resolv_conf, log_level,
 *               access_log,
 *               trusted_proxies,
 *               real_ip_header, origins, origin_missing
 *   [admin]     listen (one address: /healthz and /metrics)
 *   [limits]    handshake_timeout, max_request_line, max_header_bytes,
 *               max_headers, buffer_limit, max_message, max_frame,
 *               idle_timeout, ping_interval, pong_timeout, close_timeout,
 *               stall_timeout,
 *               drain_timeout, max_connections_per_ip,
 *               new_connections_per_ip, new_connections_burst
 *   [tls]       certificate, key, min_version, ciphers, ciphersuites,
 *               client_ca, client_verify, session_tickets
 *   [tls NAME]  server_names, certificate, key (SNI certificates)
 *   [route PATH]  upstream (host:port, [v6]:port, tls://host:port,
 *               unix:/path, echo or tokenfile:/path), subprotocols,
 *               frame_type (binary|text), connect_timeout, on_reset
 *               (close|abort), the close-code overrides code_refused,
 *               code_unreachable, code_timeout, code_dns, code_reset,
 *               code_tls; for tls:// upstreams upstream_ca,
 *               upstream_verify, upstream_sni, upstream_certificate,
 *               upstream_key; and access control: origins, origin_missing,
 *               auth_tokens, auth_from, auth_cookie, auth_protocol_prefix,
 *               auth_failure, target_allow, send_proxy.  A PATH ending in
 *               a slash and a star (like /vnc/ followed by '*') is a
 *               prefix route.
 *
 * A listen address may be followed by blank-separated flags ("tls",
 * "proxy_protocol").  TLS file names may be relative to the config file's
 * directory.
 */
#ifndef WSGATE_CONFIG_H
#define WSGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "log.h"
#include "netaddr.h"

enum upstream_kind {
	UPSTREAM_TCP,  /* host:port or tls://host:port; IP literal or name */
	UPSTREAM_UNIX, /* unix:/path */
	UPSTREAM_ECHO, /* built-in echo */
	UPSTREAM_TOKENFILE, /* tokenfile:/path: host:port per token */
};

/* Which header names the client behind trusted_proxies. */
enum real_ip_header {
	REAL_IP_XFF,       /* X-Forwarded-For */
	REAL_IP_FORWARDED, /* RFC 7239 Forwarded: for= */
};

/* Where a route takes its token from (auth_from): a bitfield. */
enum auth_from {
	AUTH_FROM_QUERY = 1 << 0,    /* ?token= */
	AUTH_FROM_COOKIE = 1 << 1,   /* Cookie: auth_cookie=... */
	AUTH_FROM_BEARER = 1 << 2,   /* Authorization: Bearer ... */
	AUTH_FROM_PROTOCOL = 1 << 3, /* Sec-WebSocket-Protocol offer */
};

/* PROXY protocol header sent to a route's upstream. */
enum send_proxy {
	SEND_PROXY_OFF,
	SEND_PROXY_V1,
	SEND_PROXY_V2,
};

/* An Origin allow-list: normalised "scheme://host[:port]" strings. */
struct config_origins {
	char **v;
	size_t n;
	bool any; /* "*" was written */
};

enum frame_type {
	FRAME_BINARY,
	FRAME_TEXT,
};

struct config_listen {
	char *text;                   /* as written, for logs */
	struct sockaddr_storage addr; /* resolved numerically at load */
	socklen_t addr_len;
	bool proxy_protocol;          /* a PROXY v1/v2 header comes first */
	int line;
	bool tls;                     /* flag "tls": terminate TLS here */
};

/* A text value (a file name, a cipher list) and the line of its key, for
   messages about it after loading. */
struct config_value {
	char *value;                  /* NULL: not set */
	int line;
};

enum config_tls_version {
	CONFIG_TLS_1_2,
	CONFIG_TLS_1_3,
};

enum config_client_verify {
	CLIENT_VERIFY_OFF,
	CLIENT_VERIFY_OPTIONAL,       /* verify a certificate if one is sent */
	CLIENT_VERIFY_REQUIRED,
};

/* One certificate: the default of [tls], or one [tls NAME] for SNI. */
struct config_tls_cert {
	char *name;                   /* NAME of [tls NAME]; NULL for [tls] */
	char **server_names;          /* exact names or "*.example.com" */
	size_t n_server_names;
	struct config_value certificate; /* PEM, leaf first, then the chain */
	struct config_value key;
	int line;                     /* line of the section header */
};

struct config_tls {
	int line;                     /* line of [tls]; 0 = no such section */
	struct config_tls_cert def;   /* the default certificate */
	struct config_tls_cert *sni;  /* [tls NAME] sections */
	size_t n_sni;
	enum config_tls_version min_version;
	struct config_value ciphers;  /* TLS <= 1.2, OpenSSL syntax */
	struct config_value ciphersuites; /* TLS 1.3 */
	struct config_value client_ca;
	enum config_client_verify client_verify;
	int client_verify_line;
	bool session_tickets;
};

struct config_route {
	char *path;                  /* exact URL path, starts with '/' */
	enum upstream_kind kind;
	char *upstream;              /* as written, for logs */
	char *host;                  /* TCP: name or literal (no brackets) */
	uint16_t port;               /* TCP */
	char *unix_path;             /* UNIX */
	char **subprotocols;         /* accepted, in configured order */
	size_t n_subprotocols;
	enum frame_type frame_type;  /* of frames sent to the browser */
	uint64_t connect_timeout_ms;
	bool abort_on_reset;         /* upstream RST -> TCP RST to the client */
	/* Close codes sent to the browser (RFC 6455 7.4; 1005/1006/1015 are
	   refused at load). */
	uint16_t code_refused;       /* connection refused */
	uint16_t code_unreachable;   /* other connect errors */
	uint16_t code_timeout;       /* connect timeout */
	uint16_t code_dns;           /* name resolution failed */
	uint16_t code_reset;         /* upstream reset mid-stream */
	uint16_t code_tls;           /* upstream TLS handshake/verification */
	/* tls://host:port upstreams */
	bool tls;
	bool upstream_verify;        /* verify its certificate and name */
	char *upstream_sni;          /* NULL: host (none for IP literals) */
	/* Client certificate this route requires (mTLS, [tls] client_verify
	   optional or required): an exact RFC 2253 subject, and/or one of
	   these SHA-256 fingerprints.  Neither set: no requirement. */
	struct config_value client_subject;
	uint8_t (*client_fingerprints)[32];
	size_t n_client_fingerprints;
	int client_fingerprint_line;
	struct config_value upstream_ca; /* NULL: the system store */
	struct config_value upstream_certificate; /* our client certificate */
	struct config_value upstream_key;
	const char *tls_key;         /* first TLS-only key set, and its line: */
	int tls_key_line;            /* refused unless the upstream is tls:// */
	int line;                    /* line of the [route ...] header */

	/* Access control (see README "Exposing wsgate to the internet
	   safely").  A path ending in a slash and a star matches by prefix. */
	bool prefix;                 /* path ends with a slash and a star */
	size_t prefix_len;           /* bytes of path before the '*' */
	char *token_file;            /* TOKENFILE: websockify target file */
	struct config_origins origins; /* own list, if origins_set */
	bool origins_set;
	bool origin_missing_deny;    /* if origin_missing_set */
	bool origin_missing_set;
	char *auth_tokens;           /* token file; NULL: no auth */
	unsigned auth_from;          /* enum auth_from bits */
	char *auth_cookie;
	char *auth_protocol_prefix;
	bool auth_failure_close;     /* upgrade, then Close 1008 */
	struct netaddr_rule *target_allow;
	size_t n_target_allow;
	enum send_proxy send_proxy;
	int auth_key_line;           /* an auth_* key's line (checks) */
	const char *auth_key_name;
};

struct config_limits {
	uint64_t handshake_timeout_ms;
	size_t max_request_line;
	size_t max_header_bytes;
	size_t max_headers;
	size_t buffer_limit;         /* queued bytes per direction */
	uint64_t max_message;        /* echo route: bigger -> 1009 */
	size_t max_frame;            /* upstream -> browser frame split */
	uint64_t idle_timeout_ms;    /* 0 = off */
	uint64_t ping_interval_ms;   /* 0 = off */
	uint64_t pong_timeout_ms;
	uint64_t close_timeout_ms;
	uint64_t stall_timeout_ms;   /* queued data not taken: 0 = off */
	uint64_t drain_timeout_ms;
	unsigned max_connections_per_ip;   /* 0 = off */
	unsigned new_connections_rate;     /* per new_connections_per_ms; 0 = off */
	uint64_t new_connections_per_ms;
	unsigned new_connections_burst;    /* 0 = the rate's count */
};

struct config {
	char *file;
	struct config_listen *listens;
	size_t n_listens;
	struct config_route *routes;
	size_t n_routes;
	unsigned max_connections;
	unsigned workers;             /* 0 = auto: one per core */
	bool pin_workers;             /* cpu_affinity = auto (else off) */
	enum log_level log_level;
	bool access_log;
	bool splice;                  /* splice = on: zero-copy downloads */
	struct config_value resolv_conf; /* NULL: /etc/resolv.conf */
	bool has_admin;               /* [admin] listen is set */
	struct config_listen admin;   /* /healthz and /metrics, plain HTTP */
	struct config_limits limits;
	int refs;                     /* config_ref / config_unref */
	struct config_tls tls;
	struct netaddr_net *trusted_proxies;
	size_t n_trusted_proxies;
	enum real_ip_header real_ip_header;
	struct config_origins origins;     /* default for routes */
	bool origin_missing_deny;          /* default for routes */
};

/*
 * Load FILE.  Returns a new config (free with config_free) or NULL with a
 * message "FILE:LINE: key: reason" (or "FILE: reason") in ERR.
 */
struct config *config_load(const char *file, char *err, size_t errlen);

/* Same, from a string; NAME is used in messages in place of the file. */
struct config *config_load_string(const char *text, const char *name,
				  char *err, size_t errlen);

/* Free C and everything it owns; NULL is fine. */
void config_free(struct config *c);

/*
 * Reference counting, for configs shared by worker threads and live
 * sessions across a reload: a loaded config holds one reference;
 * config_unref frees it when the last one goes.  Thread-safe.
 */
struct config *config_ref(struct config *c);
void config_unref(struct config *c);

/* True if some listen address has the tls flag. */
bool config_has_tls_listener(const struct config *c);

/*
 * The route for PATH (LEN bytes): the one whose path equals it, else the
 * prefix route (a path ending in a slash and a star) with the longest
 * prefix it starts with; NULL.
 */
const struct config_route *config_find_route(const struct config *c,
					     const char *path, size_t len);

/* The Origin allow-list in force for R (its own or the gateway's). */
const struct config_origins *config_route_origins(const struct config *c,
						  const struct config_route *r);

/* True if R refuses requests without an Origin header. */
bool config_route_origin_missing_deny(const struct config *c,
				      const struct config_route *r);

/*
 * Settings a reload reads but does not apply until a restart (the
 * KF_RESTART keys of config_table.h), in the groups a reload warns about
 * once each.
 */
enum config_restart {
	CONFIG_RESTART_LISTEN = 1 << 0,    /* [gateway] listen addresses */
	CONFIG_RESTART_IP_LIMITS = 1 << 1, /* max_connections_per_ip,
					      new_connections_per_ip and
					      _burst; and, while one of them
					      is on, max_connections (it sizes
					      the per-IP table) */
	CONFIG_RESTART_WORKERS = 1 << 2,   /* workers, cpu_affinity */
	CONFIG_RESTART_ADMIN = 1 << 3,     /* [admin] listen */
	CONFIG_RESTART_RESOLV = 1 << 4,    /* resolv_conf */
};

/*
 * The groups whose settings differ between OLD, the config in force, and
 * NEW, a reloaded one: a bitmask of enum config_restart.  RUNNING_WORKERS
 * is the number of worker threads running, NEW_WORKERS the number NEW's
 * workers asks for (auto resolved by the caller).
 */
unsigned config_restart_changes(const struct config *old,
				const struct config *new,
				unsigned running_workers, unsigned new_workers);

/* The value type of a key (a column of config_table.h). */
enum config_key_type {
	KT_LISTEN,       /* repeatable, comma-separated addresses */
	KT_COUNT,        /* plain decimal integer */
	KT_SIZE,         /* bytes with an optional k/m/g suffix */
	KT_DURATION,     /* ms/s/m/h, bare number = seconds */
	KT_BOOL,
	KT_KEYWORD,      /* one of the row's words, stored as its value */
	KT_UPSTREAM,
	KT_SUBPROTOCOLS,
	KT_CLOSE_CODE,
	KT_WORKERS,      /* "auto" or a count */
	KT_ADMIN_LISTEN, /* one numeric address */
	KT_FILE,         /* a file name, kept with its line */
	KT_STRING,       /* text, copied with its line */
	KT_HOSTNAME,     /* a DNS name */
	KT_FINGERPRINTS, /* comma-separated SHA-256 hex, ':' allowed */
	KT_SERVER_NAMES, /* comma-separated names or *.wildcards */
	KT_CIDR_LIST,    /* trusted_proxies */
	KT_ORIGINS,
	KT_ABS_FILE,     /* absolute path of a readable file */
	KT_AUTH_FROM,
	KT_TOKEN_NAME,   /* a cookie name or protocol prefix (tchars) */
	KT_TARGET_ALLOW,
	KT_RATE,         /* "20/s", "100/m", "1000/h", bare = per second */
};

/*
 * A keyword and the value stored for it.  A list ends with {NULL}; an
 * entry with value CONFIG_WORD_NOTE is no keyword but a remark added to
 * the "expected ..." message after the words.
 */
struct config_word {
	const char *word;
	unsigned value;
};
#define CONFIG_WORD_NOTE UINT32_MAX

/* One key of the table (config_table.h), for documents, tests and tools. */
struct config_key_info {
	const char *section;  /* "gateway", "limits", "admin", "tls",
				 "tls NAME" or "route PATH" */
	const char *name;
	const char *def;      /* the default as written in the file; NULL:
				 unset (doc says what that means) */
	const char *doc;      /* one line */
	bool restart;         /* a reload does not apply it */
	bool tls_only;        /* a route key for tls:// upstreams only */
	enum config_key_type type;
	uint64_t min, max;    /* bounds of a number (KT_COUNT, KT_SIZE in
				 bytes, KT_DURATION in ms, KT_WORKERS, the
				 count of KT_RATE); KT_BOOL: 0, 1 */
	const struct config_word *words; /* KT_KEYWORD, else NULL */
	bool nocase;          /* keywords compared ignoring ASCII case */
	size_t offset;        /* of the value's field in struct config_route
				 ("route PATH"), struct config_tls_cert ("tls
				 NAME") or else struct config */
	size_t width;         /* its size; 0: no one field holds the value */
};

/* Key I of the table into *OUT: 0, or -1 past the last key. */
int config_key_info(size_t i, struct config_key_info *out);

/* "64k", "1m", "1g", "123" (bytes, 1024-based units) -> *OUT; 0 or -1. */
int config_parse_size(const char *s, uint64_t *out);

/* "500ms", "30s", "5m", "1h", "0" (bare number: seconds) -> *OUT ms; 0 or -1. */
int config_parse_duration(const char *s, uint64_t *out_ms);

/*
 * "127.0.0.1:8080", "[::1]:8080", ":8080" (all IPv4), "*:8080" -> sockaddr;
 * numeric only.  0 or -1.
 */
int config_parse_listen(const char *s, struct sockaddr_storage *ss,
			socklen_t *len);

#endif
