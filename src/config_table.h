/*
 * config_table.h - the config keys, one row each: section, name, value
 * type, the field it is stored in and its bounds.  Private to config*.c.
 */
#ifndef WSGATE_CONFIG_TABLE_H
#define WSGATE_CONFIG_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

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

extern const struct config_key config_keys[K_COUNT_];

#endif
