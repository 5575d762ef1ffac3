/*
 * upstream.c - connecting to a route's upstream without blocking the loop.
 *
 * The socket is created and connect(2) called here, so an immediate error
 * (a refused unix socket, EMFILE) is classified from its own errno; an
 * in-progress connect is handed to the bufferevent, whose event callback
 * then sees the result with errno from SO_ERROR.  Names are resolved with
 * evdns_getaddrinfo: a NULL evdns_base would block the whole worker.
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

#include <event2/dns.h>
#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "netaddr.h"

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
	upstream_failed_cb failed;
	void *arg;
	enum upstream_failure failure;
	int err;
	const struct netaddr_rule *allow;
	size_t n_allow;
	bool orphaned;                 /* freed by the lookup's callback */
};

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

/* Deliver an early failure from a fresh loop pass. */
static void
upstream_fail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_conn *c = arg;

	(void)fd;
	(void)what;
	c->failed(c->failure, c->err, c->arg);
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

/* Start connecting to ROUTE's upstream; see upstream.h. */
struct upstream_conn *
upstream_connect(struct event_base *base, struct evdns_base *dns,
		 const struct config_route *route, struct bufferevent *bev,
		 upstream_failed_cb failed, void *arg)
{
	struct upstream_target t = {
		.host = route->kind == UPSTREAM_TCP ? route->host : NULL,
		.port = route->port,
		.unix_path = route->unix_path,
		.allow = route->target_allow,
		.n_allow = route->n_target_allow,
	};

	return upstream_connect_to(base, dns, &t, bev, failed, arg);
}

/* Start connecting to TARGET; see upstream.h. */
struct upstream_conn *
upstream_connect_to(struct event_base *base, struct evdns_base *dns,
		    const struct upstream_target *target,
		    struct bufferevent *bev, upstream_failed_cb failed,
		    void *arg)
{
	struct upstream_conn *c;
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->base = base;
	c->bev = bev;
	c->failed = failed;
	c->arg = arg;
	c->allow = target->allow;
	c->n_allow = target->n_allow;
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
	if (c->req != NULL) {
		/* The callback still runs, later, from the loop (see struct
		   upstream_conn): it frees C then. */
		c->orphaned = true;
		c->bev = NULL;
		c->failed = NULL;
		c->arg = NULL;
		c->allow = NULL;
		c->n_allow = 0;
		evdns_getaddrinfo_cancel(c->req);
		return;
	}
	free(c);
}
