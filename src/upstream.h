/*
 * upstream.h - connecting to a route's upstream without blocking the loop:
 * TCP to an IP literal or a name (resolved with evdns), or a unix socket;
 * and classifying how a connection attempt failed.
 */
#ifndef WSGATE_UPSTREAM_H
#define WSGATE_UPSTREAM_H

#include <event2/bufferevent.h>

#include <stddef.h>
#include <stdint.h>

struct evdns_base;
struct config_route;
struct netaddr_rule;
struct upstream_conn;

/* Where to connect: a route's own upstream, or a token file's target. */
struct upstream_target {
	const char *host;                  /* TCP: name or literal; NULL: unix */
	uint16_t port;
	const char *unix_path;             /* unix socket */
	const struct netaddr_rule *allow;  /* target_allow; n_allow 0: any */
	size_t n_allow;
};

/* X(name, reason text sent in the close frame) */
#define UPSTREAM_FAILURES(X)                                                   \
	X(UPSTREAM_OK, "")                                                     \
	X(UPSTREAM_REFUSED, "upstream refused the connection")                 \
	X(UPSTREAM_UNREACHABLE, "upstream unreachable")                        \
	X(UPSTREAM_TIMEOUT, "upstream connect timeout")                        \
	X(UPSTREAM_DNS, "upstream name resolution failed")                     \
	X(UPSTREAM_RESET, "upstream reset")                                    \
	X(UPSTREAM_TLS_VERIFY, "upstream TLS verification failed")             \
	X(UPSTREAM_TLS_HANDSHAKE, "upstream TLS handshake failed")             \
	X(UPSTREAM_FORBIDDEN, "upstream target not allowed")

enum upstream_failure {
#define UPSTREAM_ENUM_(name, text) name,
	UPSTREAM_FAILURES(UPSTREAM_ENUM_)
#undef UPSTREAM_ENUM_
	UPSTREAM_N_FAILURES
};

/* The close-frame reason for F. */
const char *upstream_failure_text(enum upstream_failure f);

/* The close code ROUTE sends for F. */
unsigned upstream_failure_code(const struct config_route *route,
			       enum upstream_failure f);

/* Classify a connect error (errno value) into a failure kind. */
enum upstream_failure upstream_classify_errno(int err);

/*
 * Called once, from its own loop pass, when connecting failed before the
 * bufferevent had a socket (DNS failure, socket or connect error).  ERR is
 * the errno value (0 for DNS failures).
 */
typedef void (*upstream_failed_cb)(enum upstream_failure f, int err, void *arg);

/*
 * Connect BEV (a socket bufferevent made with fd -1, callbacks set) to
 * ROUTE's upstream (TCP or unix; not echo).  Data already in BEV's output is
 * sent once connected.  Success and errors after the socket exists arrive as
 * BEV_EVENT_CONNECTED / BEV_EVENT_ERROR (errno set) in BEV's event callback;
 * earlier failures arrive in FAILED.  Returns a handle to cancel with
 * upstream_conn_free (it does not own BEV), or NULL on allocation failure.
 */
struct upstream_conn *upstream_connect(struct event_base *base,
				       struct evdns_base *dns,
				       const struct config_route *route,
				       struct bufferevent *bev,
				       upstream_failed_cb failed, void *arg);

/*
 * Same for TARGET (its strings and rules must outlive the connection
 * attempt).  An address outside TARGET's allow-list, literal or resolved,
 * fails with UPSTREAM_FORBIDDEN before any connect(2).
 */
struct upstream_conn *upstream_connect_to(struct event_base *base,
					  struct evdns_base *dns,
					  const struct upstream_target *target,
					  struct bufferevent *bev,
					  upstream_failed_cb failed, void *arg);

/* Cancel any pending resolution or callback and free C; NULL is fine. */
void upstream_conn_free(struct upstream_conn *c);

#endif
