/*
 * upstream.c - the upstream connect state machine: resolve, connect, TLS,
 * under one timeout, ending in one report (upstream.h).
 *
 * The socket is created and connect(2) called here, so an immediate error
 * (a refused unix socket, EMFILE) is classified from its own errno; an
 * in-progress connect is handed to the bufferevent, whose event callback
 * (ours until the end of the attempt) then sees the result with errno
 * from SO_ERROR.  Names are resolved with evdns_getaddrinfo: a NULL
 * evdns_base would block the whole worker.  For tls:// the connected
 * socket moves into an OpenSSL bufferevent that does the handshake.
 */
#include "upstream.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>

#include <openssl/ssl.h>

#include "config.h"
#include "log.h"
#include "netaddr.h"
#include "tls.h"

/*
 * Ownership: the caller owns a conn until upstream_conn_free.  A pending
 * name lookup is the exception: evdns runs a cancelled request's callback
 * later, from the loop (evdns_getaddrinfo_cancel only schedules it), and
 * always exactly once.  So upstream_conn_free with a lookup pending only
 * cancels it and marks the conn orphaned; the lookup's callback, which
 * still holds the conn, frees it whenever it runs, whatever its result.
 * Nothing the caller gave (BEV, FAILED, ARG, the target's strings) is
 * touched after upstream_conn_free returns.
 */
struct upstream_conn {
	struct event_base *base;
	struct bufferevent *bev;       /* not owned; NULL once orphaned */
	struct evdns_getaddrinfo_request *req; /* lookup not yet answered */
	struct event *fail_ev;         /* reports an early failure */
	struct event *timer;           /* the attempt's timeout */
	struct upstream_events ev;
	void *arg;
	enum upstream_failure failure;
	int err;
	const struct netaddr_rule *allow;
	size_t n_allow;
	struct tls_state *tls;
	const struct config_route *tls_route; /* NULL: no TLS */
	bool tls_started;              /* BEV is the TLS bufferevent */
	bool orphaned;                 /* freed by the lookup's callback */
};

static void upstream_event_cb(struct bufferevent *bev, short what, void *arg);

static const char *const upstream_texts[] = {
#define UPSTREAM_TEXT_(name, text) text,
	UPSTREAM_FAILURES(UPSTREAM_TEXT_)
#undef UPSTREAM_TEXT_
};

/* The close-frame reason for F. */
const char *
upstream_failure_text(enum upstream_failure f)
{
	return upstream_texts[f];
}

/* The route's close code for F. */
unsigned
upstream_failure_code(const struct config_route *route, enum upstream_failure f)
{
	switch (f) {
	case UPSTREAM_REFUSED:
		return route->code_refused;
	case UPSTREAM_UNREACHABLE:
		return route->code_unreachable;
	case UPSTREAM_TIMEOUT:
		return route->code_timeout;
	case UPSTREAM_DNS:
		return route->code_dns;
	case UPSTREAM_RESET:
		return route->code_reset;
	case UPSTREAM_TLS_VERIFY:
	case UPSTREAM_TLS_HANDSHAKE:
		return route->code_tls;
	case UPSTREAM_FORBIDDEN:
		return 1008; /* RFC 6455 7.4.1: policy violation */
	case UPSTREAM_OK:
	case UPSTREAM_N_FAILURES:
		break;
	}
	return 1011;
}

/* Map a connect errno onto a failure kind. */
enum upstream_failure
upstream_classify_errno(int err)
{
	switch (err) {
	case ECONNREFUSED:
	case ENOENT: /* unix socket path missing */
		return UPSTREAM_REFUSED;
	case ETIMEDOUT:
		return UPSTREAM_TIMEOUT;
	default:
		return UPSTREAM_UNREACHABLE;
	}
}

/* The attempt is over: BEV's callbacks are its owner's business again. */
static void
upstream_release_bev(struct upstream_conn *c)
{
	if (c->timer != NULL)
		evtimer_del(c->timer);
	if (c->bev != NULL)
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
}

/* The attempt is over: stop its timer, hand BEV back, report F. */
static void
upstream_report_failure(struct upstream_conn *c, enum upstream_failure f,
			int err, const char *detail)
{
	upstream_release_bev(c);
	/* the caller may free C from inside; nothing touches it after */
	c->ev.failed(c->arg, f, err, detail);
}

/* Deliver an early failure from a fresh loop pass. */
static void
upstream_fail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_conn *c = arg;

	(void)fd;
	(void)what;
	upstream_report_failure(c, c->failure, c->err, NULL);
}

/* The whole attempt took longer than its timeout. */
static void
upstream_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	upstream_report_failure(arg, UPSTREAM_TIMEOUT, 0, NULL);
}

/* The TCP connection to a tls:// upstream is up: move its socket into an
   OpenSSL bufferevent that starts the handshake (SNI and the name to
   verify are set by tls_upstream_ssl).  Data already queued moves along. */
static void
upstream_start_tls(struct upstream_conn *c)
{
	struct bufferevent *raw = c->bev, *bev;
	evutil_socket_t fd = bufferevent_getfd(raw);
	struct evbuffer *held = evbuffer_new();
	SSL *ssl = tls_upstream_ssl(c->tls, c->tls_route);

	if (held == NULL || ssl == NULL || fd < 0) {
		if (held != NULL)
			evbuffer_free(held);
		SSL_free(ssl);
		upstream_report_failure(c, UPSTREAM_TLS_HANDSHAKE, 0, NULL);
		return;
	}
	evbuffer_add_buffer(held, bufferevent_get_output(raw));
	/* RAW forgets the socket (so freeing it does not close it); we are
	   in its callback, libevent frees it once that returns. */
	bufferevent_setfd(raw, -1);
	bufferevent_free(raw);
	c->bev = NULL;
	bev = bufferevent_openssl_socket_new(c->base, fd, ssl,
					     BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		/* With BEV_OPT_CLOSE_ON_FREE libevent freed the SSL, and with
		   it the socket. */
		evbuffer_free(held);
		c->ev.bev_changed(c->arg, NULL);
		upstream_report_failure(c, UPSTREAM_TLS_HANDSHAKE, ENOMEM,
					NULL);
		return;
	}
	c->bev = bev;
	c->tls_started = true;
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_setcb(bev, NULL, NULL, upstream_event_cb, c);
	evbuffer_add_buffer(bufferevent_get_output(bev), held);
	evbuffer_free(held);
	bufferevent_enable(bev, EV_WRITE);
	bufferevent_disable(bev, EV_READ); /* until the handshake is done */
	c->ev.bev_changed(c->arg, bev);
}

/* The TLS handshake failed: say whether verification was the cause, with
   what OpenSSL said. */
static void
upstream_tls_failed(struct upstream_conn *c, int err)
{
	char errs[512], why[128], detail[sizeof(errs) + sizeof(why) + 4];
	bool verify = tls_verify_failed(bufferevent_openssl_get_ssl(c->bev),
					why, sizeof(why));

	tls_bev_errors(c->bev, errs, sizeof(errs));
	if (errs[0] == '\0')
		snprintf(errs, sizeof(errs), "%s",
			 err != 0 ? strerror(err) : "connection closed");
	if (verify)
		snprintf(detail, sizeof(detail), "%s (%s)", why, errs);
	else
		snprintf(detail, sizeof(detail), "%s", errs);
	upstream_report_failure(c,
				verify ? UPSTREAM_TLS_VERIFY
				       : UPSTREAM_TLS_HANDSHAKE,
				err, detail);
}

/* BEV connected or failed (TCP, then the TLS handshake). */
static void
upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upstream_conn *c = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	if ((what & BEV_EVENT_CONNECTED) && c->tls_route != NULL &&
	    !c->tls_started) {
		/* TCP is up: TLS next, still under the timeout. */
		upstream_start_tls(c);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		upstream_release_bev(c);
		c->ev.connected(c->arg, c->bev);
		return;
	}
	if (c->tls_started) {
		upstream_tls_failed(c, err);
		return;
	}
	upstream_report_failure(c, upstream_classify_errno(err), err, NULL);
}

/* Schedule an early failure report. */
static void
upstream_fail(struct upstream_conn *c, enum upstream_failure f, int err)
{
	c->failure = f;
	c->err = err;
	if (c->fail_ev == NULL)
		c->fail_ev = event_new(c->base, -1, 0, upstream_fail_cb, c);
	if (c->fail_ev != NULL)
		event_active(c->fail_ev, EV_TIMEOUT, 1);
}

/* Create a socket for SA and start connecting it; hand it to the bev. */
static void
upstream_start(struct upstream_conn *c, const struct sockaddr *sa,
	       socklen_t len)
{
	int fd, one = 1;

	if (c->n_allow > 0 && sa->sa_family != AF_UNIX &&
	    !netaddr_rules_allow(c->allow, c->n_allow, sa)) {
		char a[NETADDR_STRLEN];
		netaddr_format(sa, a, sizeof(a));
		log_warn("upstream address %s is outside target_allow: refused",
			 a);
		upstream_fail(c, UPSTREAM_FORBIDDEN, 0);
		return;
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		upstream_fail(c, UPSTREAM_UNREACHABLE, errno);
		return;
	}
	if (sa->sa_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				 sizeof(one));
	if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
		int err = errno;

		close(fd);
		upstream_fail(c, upstream_classify_errno(err), err);
		return;
	}
	/* Connected or in progress: the bufferevent waits for writability
	   and reports CONNECTED or ERROR (errno from SO_ERROR). */
	bufferevent_setfd(c->bev, fd);
	if (bufferevent_socket_connect(c->bev, NULL, 0) < 0)
		upstream_fail(c, UPSTREAM_UNREACHABLE, errno);
}

/* evdns answered (possibly from inside evdns_getaddrinfo). */
static void
upstream_resolved_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct upstream_conn *c = arg;

	c->req = NULL;
	if (c->orphaned) {
		/* upstream_conn_free ran while we were pending: whatever
		   the answer, nobody waits for it. */
		if (res != NULL)
			evutil_freeaddrinfo(res);
		free(c);
		return;
	}
	if (result != 0 || res == NULL) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		upstream_fail(c, UPSTREAM_DNS, 0);
		return;
	}
	upstream_start(c, res->ai_addr, (socklen_t)res->ai_addrlen);
	evutil_freeaddrinfo(res);
}

/* True for names that must never be looked up (RFC 6761 6.4: .invalid). */
static bool
upstream_name_is_invalid(const char *host)
{
	size_t n = strlen(host);

	if (n > 0 && host[n - 1] == '.')
		n--;
	if (n == 7 && strncasecmp(host, "invalid", 7) == 0)
		return true;
	return n > 8 && strncasecmp(host + n - 8, ".invalid", 8) == 0;
}

/* ROUTE's own target; see upstream.h. */
void
upstream_route_target(const struct config_route *route,
		      struct upstream_target *t)
{
	memset(t, 0, sizeof(*t));
	t->host = route->kind == UPSTREAM_TCP ? route->host : NULL;
	t->port = route->port;
	t->unix_path = route->unix_path;
	t->allow = route->target_allow;
	t->n_allow = route->n_target_allow;
}

/* Start an attempt; see upstream.h. */
struct upstream_conn *
upstream_connect(const struct upstream_request *rq, struct bufferevent *bev,
		 const struct upstream_events *ev, void *arg)
{
	const struct upstream_target *target = rq->target;
	struct evdns_base *dns = rq->dns;
	struct upstream_conn *c;
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct timeval tv;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->base = rq->base;
	c->bev = bev;
	c->ev = *ev;
	c->arg = arg;
	c->allow = target->allow;
	c->n_allow = target->n_allow;
	c->tls = rq->tls;
	c->tls_route = rq->tls_route;
	c->timer = evtimer_new(rq->base, upstream_timeout_cb, c);
	if (c->timer == NULL) {
		free(c);
		return NULL;
	}
	tv.tv_sec = (time_t)(rq->timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)((rq->timeout_ms % 1000) * 1000);
	evtimer_add(c->timer, &tv);
	/* BEV's callbacks are the attempt's until it ends. */
	bufferevent_setcb(bev, NULL, NULL, upstream_event_cb, c);
	memset(&ss, 0, sizeof(ss));

	if (target->host == NULL) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
		size_t n = strlen(target->unix_path);

		sun->sun_family = AF_UNIX;
		if (n >= sizeof(sun->sun_path)) { /* config_load refuses it */
			upstream_fail(c, UPSTREAM_UNREACHABLE, ENAMETOOLONG);
			return c;
		}
		memcpy(sun->sun_path, target->unix_path, n + 1);
		upstream_start(c, (struct sockaddr *)sun, sizeof(*sun));
	} else if (evutil_inet_pton(AF_INET, target->host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(target->port);
		upstream_start(c, (struct sockaddr *)sin, sizeof(*sin));
	} else if (evutil_inet_pton(AF_INET6, target->host, &sin6->sin6_addr) ==
		   1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(target->port);
		upstream_start(c, (struct sockaddr *)sin6, sizeof(*sin6));
	} else if (upstream_name_is_invalid(target->host) || dns == NULL) {
		upstream_fail(c, UPSTREAM_DNS, 0);
	} else {
		struct evutil_addrinfo hints;
		char port[8];

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_protocol = IPPROTO_TCP;
		hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
		snprintf(port, sizeof(port), "%u", (unsigned)target->port);
		/* The callback may run before this returns (hosts file,
		   immediate failure); it then returns NULL. */
		c->req = evdns_getaddrinfo(dns, target->host, port, &hints,
					   upstream_resolved_cb, c);
	}
	return c;
}

/* Cancel and free; see upstream.h. */
void
upstream_conn_free(struct upstream_conn *c)
{
	if (c == NULL)
		return;
	if (c->fail_ev != NULL)
		event_free(c->fail_ev);
	c->fail_ev = NULL;
	if (c->timer != NULL)
		event_free(c->timer);
	c->timer = NULL;
	if (c->req != NULL) {
		/* The callback still runs, later, from the loop (see struct
		   upstream_conn): it frees C then. */
		c->orphaned = true;
		c->bev = NULL;
		memset(&c->ev, 0, sizeof(c->ev));
		c->arg = NULL;
		c->allow = NULL;
		c->n_allow = 0;
		evdns_getaddrinfo_cancel(c->req);
		return;
	}
	free(c);
}
