/*
 * upstream.h - the upstream connect state machine: a name resolved with
 * evdns (never blocking the loop), TCP to the address or a unix socket,
 * TLS on top for tls:// upstreams, all under the route's connect timeout;
 * and the classification of how an attempt failed.
 *
 *   resolving -> connecting -> [TLS handshake] -> connected
 *        \____________\_______________\______-> failed (one report)
 */
#ifndef WSGATE_UPSTREAM_H
#define WSGATE_UPSTREAM_H

#include <event2/bufferevent.h>

#include <stddef.h>
#include <stdint.h>

struct config_route;
struct evdns_base;
struct netaddr_rule;
struct tls_state;
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
 * What a connection attempt reports, each through ARG.  Exactly one of
 * CONNECTED or FAILED is called, at most once, never from inside
 * upstream_connect; afterwards the caller frees the handle.
 */
struct upstream_events {
	/* The bufferevent to write to is now BEV: a tls:// upstream's TCP
	   connection moved into a TLS bufferevent, and what was queued in
	   the old one's output moved with it.  The old one is gone.  May be
	   NULL for callers that make no TLS connections. */
	void (*bev_changed)(void *arg, struct bufferevent *bev);
	/* Connected (for tls://, the handshake done and the peer verified):
	   BEV has no callbacks; the caller sets its own. */
	void (*connected)(void *arg, struct bufferevent *bev);
	/* Could not connect: F, the errno value ERR (0: none), and for TLS
	   failures DETAIL, what OpenSSL said (NULL otherwise). */
	void (*failed)(void *arg, enum upstream_failure f, int err,
		       const char *detail);
};

/* One connection attempt. */
struct upstream_request {
	struct event_base *base;
	struct evdns_base *dns;               /* NULL: names fail as DNS */
	const struct upstream_target *target; /* outlives the attempt */
	struct tls_state *tls;                /* with tls_route */
	const struct config_route *tls_route; /* NULL: no TLS; else TLS as
						 this route says */
	uint64_t timeout_ms;                  /* the whole attempt */
};

/* The target of ROUTE's own upstream (TCP or unix; not echo). */
void upstream_route_target(const struct config_route *route,
			   struct upstream_target *t);

/*
 * Connect BEV (a socket bufferevent made with fd -1) as RQ says.  Data
 * already in BEV's output, and written to it meanwhile, is sent once
 * connected.  Until the attempt ends BEV's callbacks are the attempt's,
 * and it reports through EV (copied); when it ends, BEV has none.  Returns
 * the handle (it does not own BEV), or NULL on allocation failure.
 */
struct upstream_conn *upstream_connect(const struct upstream_request *rq,
				       struct bufferevent *bev,
				       const struct upstream_events *ev,
				       void *arg);

/* Cancel whatever is pending (a lookup, the timer, a report) and free C;
   BEV and its callbacks are left as they are.  NULL is fine. */
void upstream_conn_free(struct upstream_conn *c);

#endif
