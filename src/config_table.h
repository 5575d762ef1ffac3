/*
 * config_table.h - the config keys, one row each and nothing about a key
 * anywhere else: its section, name, value type, the field it is stored in,
 * bounds, keyword values, default, flags and a one-line description.
 * Private to config*.c; config_key_info() shows it to tests and tools
 * (the value types and struct config_word are in config.h for that).
 *
 * The default is written as in the file and applied through the key's own
 * parser when a config (or a route) starts, so it cannot differ from what
 * the documents say: tests/unit/test_config.c checks etc/wsgate.ini and
 * docs/wsgate.ini.5 against this table.
 */
#ifndef WSGATE_CONFIG_TABLE_H
#define WSGATE_CONFIG_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"

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

/* Key flags (struct config_key.flags). */
enum config_key_flag {
	KF_RESTART = 1 << 0,  /* reload cannot apply it (config_restart.c) */
	KF_TLS_ONLY = 1 << 1, /* route key for tls:// upstreams only */
	KF_NOCASE = 1 << 2,   /* keywords compared ignoring ASCII case */
};

#define W(...) ((const struct config_word[]){__VA_ARGS__, {NULL, 0}})
#define NOW NULL /* no keywords */
#define CONFIG_LOG_WORD_(level, text) {text, level},

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
#define RS KF_RESTART
#define TO KF_TLS_ONLY

/*
 * id, section, name, type, field (offset, width), min, max, keywords,
 * default (as written in the file; NULL: unset, the doc says what that
 * means), flags, one-line description.
 */
#define CONFIG_KEYS(X)                                                         \
	X(K_LISTEN, SEC_GATEWAY, "listen", KT_LISTEN, NOF, 0, 0, NOW, NULL,    \
	  RS, "addresses to accept WebSocket clients on (required)")          \
	X(K_MAX_CONNECTIONS, SEC_GATEWAY, "max_connections", KT_COUNT,         \
	  CF(max_connections), 1, 1000000, NOW, "10000", 0,                    \
	  "most client connections open at once")                             \
	X(K_LOG_LEVEL, SEC_GATEWAY, "log_level", KT_KEYWORD, CF(log_level), 0, \
	  0, W(LOG_LEVELS(CONFIG_LOG_WORD_){NULL, 0}), "info", 0,              \
	  "least severe message printed")                                      \
	X(K_ACCESS_LOG, SEC_GATEWAY, "access_log", KT_BOOL, CF(access_log),    \
	  0, 1, NOW, "on", 0, "one line per finished connection")             \
	X(K_WORKERS, SEC_GATEWAY, "workers", KT_WORKERS, CF(workers), 1, 256, \
	  NOW, "auto", RS, "worker threads (auto: one per usable CPU)")        \
	X(K_CPU_AFFINITY, SEC_GATEWAY, "cpu_affinity", KT_KEYWORD,             \
	  CF(pin_workers), 0, 0, W({"auto", 1}, {"off", 0}), "off", RS,       \
	  "pin each worker to its own CPU")                                    \
	X(K_SPLICE, SEC_GATEWAY, "splice", KT_BOOL, CF(splice), 0, 1, NOW,     \
	  "off", 0, "zero-copy downloads to ws:// clients with splice(2)")     \
	X(K_RESOLV_CONF, SEC_GATEWAY, "resolv_conf", KT_FILE,                  \
	  CF(resolv_conf), 0, 0, NOW, NULL, RS,                                \
	  "resolver configuration (unset: /etc/resolv.conf)")                  \
	X(K_ADMIN_LISTEN, SEC_ADMIN, "listen", KT_ADMIN_LISTEN, NOF, 0, 0,     \
	  NOW, NULL, RS, "address of /healthz and /metrics (unset: off)")     \
	X(K_TRUSTED_PROXIES, SEC_GATEWAY, "trusted_proxies", KT_CIDR_LIST,     \
	  NOF, 0, 0, NOW, NULL, 0,                                             \
	  "networks whose client address headers are believed (unset: none)") \
	X(K_REAL_IP_HEADER, SEC_GATEWAY, "real_ip_header", KT_KEYWORD,         \
	  CF(real_ip_header), 0, 0,                                            \
	  W({"x-forwarded-for", REAL_IP_XFF}, {"forwarded", REAL_IP_FORWARDED}), \
	  "x-forwarded-for", KF_NOCASE,                                        \
	  "header naming the client behind trusted_proxies")                   \
	X(K_GW_ORIGINS, SEC_GATEWAY, "origins", KT_ORIGINS, NOF, 0, 0, NOW,    \
	  NULL, 0, "default Origin allow-list of routes (unset: any Origin)")  \
	X(K_GW_ORIGIN_MISSING, SEC_GATEWAY, "origin_missing", KT_KEYWORD,      \
	  CF(origin_missing_deny), 0, 0, W({"allow", 0}, {"deny", 1}),         \
	  "allow", 0, "default for requests without an Origin header")         \
	X(K_HANDSHAKE_TIMEOUT, SEC_LIMITS, "handshake_timeout", KT_DURATION,   \
	  CF(limits.handshake_timeout_ms), 1, DMAX, NOW, "10s", 0,             \
	  "time to send the whole upgrade request")                            \
	X(K_MAX_REQUEST_LINE, SEC_LIMITS, "max_request_line", KT_SIZE,         \
	  CF(limits.max_request_line), 64, MIB, NOW, "4k", 0,                  \
	  "longest request line")                                              \
	X(K_MAX_HEADER_BYTES, SEC_LIMITS, "max_header_bytes", KT_SIZE,         \
	  CF(limits.max_header_bytes), 256, MIB, NOW, "8k", 0,                 \
	  "most bytes of the upgrade request")                                 \
	X(K_MAX_HEADERS, SEC_LIMITS, "max_headers", KT_COUNT,                  \
	  CF(limits.max_headers), 1, 10000, NOW, "64", 0,                      \
	  "most header fields in the upgrade request")                         \
	X(K_BUFFER_LIMIT, SEC_LIMITS, "buffer_limit", KT_SIZE,                 \
	  CF(limits.buffer_limit), KIB, GIB, NOW, "256k", 0,                   \
	  "bytes queued per direction before reading stops")                   \
	X(K_MAX_MESSAGE, SEC_LIMITS, "max_message", KT_SIZE,                   \
	  CF(limits.max_message), 1, UINT64_MAX, NOW, "1m", 0,                 \
	  "largest message on an echo route")                                  \
	X(K_MAX_FRAME, SEC_LIMITS, "max_frame", KT_SIZE, CF(limits.max_frame), \
	  KIB, 16 * MIB, NOW, "64k", 0, "largest frame sent to the browser")   \
	X(K_IDLE_TIMEOUT, SEC_LIMITS, "idle_timeout", KT_DURATION,             \
	  CF(limits.idle_timeout_ms), 0, DMAX, NOW, "0", 0,                    \
	  "close after this long without a data message (0: off)")            \
	X(K_PING_INTERVAL, SEC_LIMITS, "ping_interval", KT_DURATION,           \
	  CF(limits.ping_interval_ms), 0, DMAX, NOW, "30s", 0,                 \
	  "ping the browser after this long without traffic (0: off)")        \
	X(K_PONG_TIMEOUT, SEC_LIMITS, "pong_timeout", KT_DURATION,             \
	  CF(limits.pong_timeout_ms), 1, DMAX, NOW, "20s", 0,                  \
	  "drop the connection if nothing follows a ping for this long")      \
	X(K_CLOSE_TIMEOUT, SEC_LIMITS, "close_timeout", KT_DURATION,           \
	  CF(limits.close_timeout_ms), 1, DMAX, NOW, "5s", 0,                  \
	  "wait for the client's close reply")                                 \
	X(K_STALL_TIMEOUT, SEC_LIMITS, "stall_timeout", KT_DURATION,           \
	  CF(limits.stall_timeout_ms), 0, DMAX, NOW, "60s", 0,                 \
	  "end a session whose peer takes no queued bytes (0: off)")          \
	X(K_DRAIN_TIMEOUT, SEC_LIMITS, "drain_timeout", KT_DURATION,           \
	  CF(limits.drain_timeout_ms), 0, DMAX, NOW, "10s", 0,                 \
	  "on SIGTERM, wait this long for connections to finish")             \
	X(K_MAX_CONN_PER_IP, SEC_LIMITS, "max_connections_per_ip", KT_COUNT,   \
	  CF(limits.max_connections_per_ip), 0, 1000000, NOW, "0", RS,         \
	  "most connections from one client address (0: off)")                \
	X(K_NEW_CONN_PER_IP, SEC_LIMITS, "new_connections_per_ip", KT_RATE,    \
	  NOF, 0, 1000000, NOW, "0", RS,                                       \
	  "new connections per client address, N/s, N/m or N/h (0: off)")     \
	X(K_NEW_CONN_BURST, SEC_LIMITS, "new_connections_burst", KT_COUNT,     \
	  CF(limits.new_connections_burst), 1, 1000000, NOW, NULL, RS,         \
	  "token bucket size of new_connections_per_ip (unset: the rate's N)") \
	X(K_UPSTREAM, SEC_ROUTE, "upstream", KT_UPSTREAM, NOF, 0, 0, NOW,      \
	  NULL, 0, "where the route leads (required)")                         \
	X(K_SUBPROTOCOLS, SEC_ROUTE, "subprotocols", KT_SUBPROTOCOLS, NOF, 0,  \
	  0, NOW, NULL, 0, "subprotocols a client may ask for (unset: none)")  \
	X(K_FRAME_TYPE, SEC_ROUTE, "frame_type", KT_KEYWORD, RF(frame_type),   \
	  0, 0, W({"binary", FRAME_BINARY}, {"text", FRAME_TEXT}), "binary",   \
	  0, "type of the frames sent to the browser")                         \
	X(K_CONNECT_TIMEOUT, SEC_ROUTE, "connect_timeout", KT_DURATION,        \
	  RF(connect_timeout_ms), 1, DMAX, NOW, "10s", 0,                      \
	  "time allowed to connect to the upstream")                           \
	X(K_ON_RESET, SEC_ROUTE, "on_reset", KT_KEYWORD, RF(abort_on_reset),   \
	  0, 0, W({"close", 0}, {"abort", 1}), "close", 0,                     \
	  "upstream reset: close with code_reset, or abort the client too")   \
	X(K_CODE_REFUSED, SEC_ROUTE, "code_refused", KT_CLOSE_CODE,            \
	  RF(code_refused), 0, 0, NOW, "1011", 0,                              \
	  "close code when the upstream refuses the connection")               \
	X(K_CODE_UNREACHABLE, SEC_ROUTE, "code_unreachable", KT_CLOSE_CODE,    \
	  RF(code_unreachable), 0, 0, NOW, "1011", 0,                          \
	  "close code for other connect errors")                               \
	X(K_CODE_TIMEOUT, SEC_ROUTE, "code_timeout", KT_CLOSE_CODE,            \
	  RF(code_timeout), 0, 0, NOW, "1011", 0,                              \
	  "close code when connect_timeout expires")                           \
	X(K_CODE_DNS, SEC_ROUTE, "code_dns", KT_CLOSE_CODE, RF(code_dns), 0,   \
	  0, NOW, "1011", 0, "close code when the upstream's name fails")      \
	X(K_CODE_RESET, SEC_ROUTE, "code_reset", KT_CLOSE_CODE,                \
	  RF(code_reset), 0, 0, NOW, "1011", 0,                                \
	  "close code when the upstream resets mid-stream")                    \
	X(K_CODE_TLS, SEC_ROUTE, "code_tls", KT_CLOSE_CODE, RF(code_tls), 0,   \
	  0, NOW, "1011", TO, "close code when the upstream TLS handshake fails") \
	X(K_UPSTREAM_CA, SEC_ROUTE, "upstream_ca", KT_FILE, RF(upstream_ca),   \
	  0, 0, NOW, NULL, TO,                                                 \
	  "CA file to verify the upstream with (unset: system store)")         \
	X(K_UPSTREAM_VERIFY, SEC_ROUTE, "upstream_verify", KT_BOOL,            \
	  RF(upstream_verify), 0, 1, NOW, "on", TO,                            \
	  "verify the upstream's certificate and name")                        \
	X(K_CLIENT_SUBJECT, SEC_ROUTE, "client_subject", KT_STRING,            \
	  RF(client_subject), 0, 0, NOW, NULL, 0,                              \
	  "client certificate subject the route requires (RFC 2253)")          \
	X(K_CLIENT_FINGERPRINT, SEC_ROUTE, "client_fingerprint",               \
	  KT_FINGERPRINTS, NOF, 0, 0, NOW, NULL, 0,                            \
	  "SHA-256 fingerprints of accepted client certificates")              \
	X(K_UPSTREAM_SNI, SEC_ROUTE, "upstream_sni", KT_HOSTNAME,              \
	  RF(upstream_sni), 0, 0, NOW, NULL, TO,                               \
	  "name sent (SNI) and verified (unset: the upstream's host)")         \
	X(K_UPSTREAM_CERTIFICATE, SEC_ROUTE, "upstream_certificate", KT_FILE,  \
	  RF(upstream_certificate), 0, 0, NOW, NULL, TO,                       \
	  "client certificate presented to the upstream")                      \
	X(K_UPSTREAM_KEY, SEC_ROUTE, "upstream_key", KT_FILE,                  \
	  RF(upstream_key), 0, 0, NOW, NULL, TO,                               \
	  "key of upstream_certificate")                                       \
	X(K_TLS_CERTIFICATE, SEC_TLS, "certificate", KT_FILE,                  \
	  CF(tls.def.certificate), 0, 0, NOW, NULL, 0,                         \
	  "default certificate chain, PEM")                                    \
	X(K_TLS_KEY, SEC_TLS, "key", KT_FILE, CF(tls.def.key), 0, 0, NOW,      \
	  NULL, 0, "key of the default certificate, PEM")                      \
	X(K_TLS_MIN_VERSION, SEC_TLS, "min_version", KT_KEYWORD,               \
	  CF(tls.min_version), 0, 0,                                           \
	  W({"1.2", CONFIG_TLS_1_2}, {"1.3", CONFIG_TLS_1_3},                  \
	    {"(older versions are not offered)", CONFIG_WORD_NOTE}),           \
	  "1.2", 0, "oldest TLS version accepted")                             \
	X(K_TLS_CIPHERS, SEC_TLS, "ciphers", KT_STRING, CF(tls.ciphers), 0, 0, \
	  NOW, NULL, 0, "TLS 1.2 cipher list (unset: OpenSSL's)")              \
	X(K_TLS_CIPHERSUITES, SEC_TLS, "ciphersuites", KT_STRING,              \
	  CF(tls.ciphersuites), 0, 0, NOW, NULL, 0,                            \
	  "TLS 1.3 cipher suites (unset: OpenSSL's)")                          \
	X(K_TLS_CLIENT_CA, SEC_TLS, "client_ca", KT_FILE, CF(tls.client_ca),   \
	  0, 0, NOW, NULL, 0, "CA file that signs client certificates")        \
	X(K_TLS_CLIENT_VERIFY, SEC_TLS, "client_verify", KT_KEYWORD,           \
	  CF(tls.client_verify), 0, 0,                                         \
	  W({"off", CLIENT_VERIFY_OFF}, {"optional", CLIENT_VERIFY_OPTIONAL},  \
	    {"required", CLIENT_VERIFY_REQUIRED}),                             \
	  "off", 0, "ask clients for certificates")                            \
	X(K_TLS_SESSION_TICKETS, SEC_TLS, "session_tickets", KT_BOOL,          \
	  CF(tls.session_tickets), 0, 1, NOW, "on", 0,                         \
	  "session resumption with tickets")                                   \
	X(K_SNI_SERVER_NAMES, SEC_TLS_NAMED, "server_names", KT_SERVER_NAMES,  \
	  NOF, 0, 0, NOW, NULL, 0, "names this certificate is chosen for")    \
	X(K_SNI_CERTIFICATE, SEC_TLS_NAMED, "certificate", KT_FILE,            \
	  SF(certificate), 0, 0, NOW, NULL, 0, "certificate chain, PEM")       \
	X(K_SNI_KEY, SEC_TLS_NAMED, "key", KT_FILE, SF(key), 0, 0, NOW, NULL,  \
	  0, "its key, PEM")                                                   \
	X(K_ORIGINS, SEC_ROUTE, "origins", KT_ORIGINS, NOF, 0, 0, NOW, NULL,   \
	  0, "allowed Origins (unset: the gateway's)")                         \
	X(K_ORIGIN_MISSING, SEC_ROUTE, "origin_missing", KT_KEYWORD,           \
	  RF(origin_missing_deny), 0, 0, W({"allow", 0}, {"deny", 1}), NULL,   \
	  0, "requests without an Origin header (unset: the gateway's)")      \
	X(K_AUTH_TOKENS, SEC_ROUTE, "auth_tokens", KT_ABS_FILE, NOF, 0, 0,     \
	  NOW, NULL, 0, "file of accepted tokens (unset: no auth)")            \
	X(K_AUTH_FROM, SEC_ROUTE, "auth_from", KT_AUTH_FROM, NOF, 0, 0, NOW,   \
	  "query, cookie, bearer, protocol", 0, "where the token may come from") \
	X(K_AUTH_COOKIE, SEC_ROUTE, "auth_cookie", KT_TOKEN_NAME, NOF, 0, 0,   \
	  NOW, "wsgate_token", 0, "cookie that carries the token")            \
	X(K_AUTH_PROTOCOL_PREFIX, SEC_ROUTE, "auth_protocol_prefix",           \
	  KT_TOKEN_NAME, NOF, 0, 0, NOW, "token.", 0,                          \
	  "subprotocol offer prefix that carries the token")                   \
	X(K_AUTH_FAILURE, SEC_ROUTE, "auth_failure", KT_KEYWORD,               \
	  RF(auth_failure_close), 0, 0, W({"http", 0}, {"close", 1}), "http",  \
	  0, "refuse with 401/403, or upgrade and close with 1008")           \
	X(K_TARGET_ALLOW, SEC_ROUTE, "target_allow", KT_TARGET_ALLOW, NOF, 0,  \
	  0, NOW, NULL, 0, "networks and ports a tokenfile target may be in")  \
	X(K_SEND_PROXY, SEC_ROUTE, "send_proxy", KT_KEYWORD, RF(send_proxy),   \
	  0, 0,                                                                \
	  W({"off", SEND_PROXY_OFF}, {"v1", SEND_PROXY_V1},                    \
	    {"v2", SEND_PROXY_V2}),                                            \
	  "off", 0, "PROXY protocol header sent to the upstream first")

enum config_key_id {
#define CONFIG_KEY_ENUM_(id, sec, name, type, field, min, max, words, def,    \
			 flags, doc)                                           \
	id,
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
	const struct config_word *words; /* KT_KEYWORD */
	const char *def;                 /* NULL: unset */
	unsigned flags;                  /* enum config_key_flag */
	const char *doc;
};

extern const struct config_key config_keys[K_COUNT_];

#endif
