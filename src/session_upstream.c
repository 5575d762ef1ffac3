/*
 * session_upstream.c - the session's upstream side: starting the attempt
 * (its bufferevent and the PROXY header; upstream.c resolves, connects,
 * does TLS and times it), what the attempt reports (connected, failed),
 * the connected upstream's events (EOF, resets, stalls), and the write
 * callback that resumes the client.
 */
#include "session_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>

#include <openssl/ssl.h>

#include "access_check.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "proxy_proto.h"
#include "tls.h"
#include "worker_ctx.h"


/* Queue the PROXY header for the upstream ahead of any client data. */
static void
session_send_proxy_header(struct session *s)
{
	uint8_t buf[PROXY_PROTO_BUILD_MAX];
	const struct sockaddr *src = (const struct sockaddr *)&s->addrs->client;
	const struct sockaddr *dst = (const struct sockaddr *)&s->addrs->local;
	int n;

	if (s->route->send_proxy == SEND_PROXY_V1)
		n = proxy_proto_build_v1((char *)buf, sizeof(buf), src, dst);
	else
		n = proxy_proto_build_v2(buf, sizeof(buf), src, dst);
	if (n > 0)
		bufferevent_write(s->up, buf, (size_t)n);
}

static void session_up_bev_changed(void *arg, struct bufferevent *bev);
static void session_up_connected(void *arg, struct bufferevent *bev);
static void session_up_failed_cb(void *arg, enum upstream_failure f, int err,
				 const char *detail);

/* What upstream.c's attempt tells a session. */
static const struct upstream_events session_up_events = {
	.bev_changed = session_up_bev_changed,
	.connected = session_up_connected,
	.failed = session_up_failed_cb,
};

/* Start connecting S's upstream (the route's, or the token file's target
   in V): its bufferevent and the PROXY header here, the rest (resolving,
   connecting, TLS, the connect timeout) in upstream.c.  False when that
   failed (the session is closing). */
bool
session_up_start(struct session *s, const struct access_verdict *v)
{
	struct upstream_target t;
	struct upstream_request rq = {
		.base = s->w->base,
		.dns = s->w->dns,
		.target = &t,
		.tls = s->w->tls,
		.tls_route = s->route->tls ? s->route : NULL,
		.timeout_ms = s->route->connect_timeout_ms,
	};

	s->up = bufferevent_socket_new(s->w->base, -1,
				       BEV_OPT_CLOSE_ON_FREE);
	if (s->up == NULL) {
		session_up_failed(s, UPSTREAM_UNREACHABLE, ENOMEM);
		return false;
	}
	if (s->route->send_proxy != SEND_PROXY_OFF)
		session_send_proxy_header(s);
	bufferevent_set_max_single_write(s->up, MAX_SINGLE_WRITE);
	s->up_state = UP_CONNECTING;
	s->connect_start = session_wall_us();
	if (v->has_target) {
		t = (struct upstream_target){
			.host = v->host,
			.port = v->port,
			.allow = s->route->target_allow,
			.n_allow = s->route->n_target_allow,
		};
	} else {
		upstream_route_target(s->route, &t);
	}
	s->conn = upstream_connect(&rq, s->up, &session_up_events, s);
	if (s->conn == NULL) {
		session_up_failed(s, UPSTREAM_UNREACHABLE, ENOMEM);
		return false;
	}
	return true;
}

/* The upstream could not be reached: Close with the route's code. */
void
session_up_failed(struct session *s, enum upstream_failure f, int err)
{
	char reason[96];

	if (err != 0)
		snprintf(reason, sizeof(reason), "%s: %s",
			 upstream_failure_text(f), strerror(err));
	else
		snprintf(reason, sizeof(reason), "%s", upstream_failure_text(f));
	log_info("%s: %s %s: %s", s->peer, s->route->path,
		 s->target != NULL ? s->target : s->route->upstream, reason);
	metrics_add(&s->rm->failures[f], 1);
	session_end_detail(s, session_end_upstream(f),
			   err != 0 ? strerror(err) : NULL);
}

/* The TLS handshake with the upstream failed: Close with code_tls, saying
   whether verification was the cause; what OpenSSL said goes to the log. */
static void
session_up_tls_failed(struct session *s, enum upstream_failure f,
		      const char *detail)
{
	log_info("%s: %s %s: %s: %s", s->peer, s->route->path,
		 s->route->upstream, upstream_failure_text(f), detail);
	session_end(s, session_end_upstream(f));
}

/* upstream.c could not connect. */
static void
session_up_failed_cb(void *arg, enum upstream_failure f, int err,
		     const char *detail)
{
	struct session *s = arg;

	if (detail != NULL)
		session_up_tls_failed(s, f, detail);
	else
		session_up_failed(s, f, err);
}

/* A tls:// upstream's socket moved into its TLS bufferevent (NULL: that
   failed, and the socket is gone). */
static void
session_up_bev_changed(void *arg, struct bufferevent *bev)
{
	struct session *s = arg;

	s->up = bev;
	s->up_tls = bev != NULL;
}

/* The upstream is connected (for tls://, verified): start the bridge. */
static void
session_up_connected(void *arg, struct bufferevent *bev)
{
	struct session *s = arg;
	const struct config_limits *lim = &s->cfg->limits;
	uint64_t now = session_wall_us();
	int one = 1;

	upstream_conn_free(s->conn);
	s->conn = NULL;
	s->up_state = UP_OPEN;
	bufferevent_setcb(bev, session_up_read_cb, session_up_write_cb,
			  session_up_event_cb, s);
	bufferevent_set_max_single_read(bev, MAX_SINGLE_READ);
	metrics_connect_latency(s->rm, now > s->connect_start
					       ? now - s->connect_start
					       : 0);
	(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY,
			 &one, sizeof(one));
	bufferevent_setwatermark(bev, EV_WRITE, lim->buffer_limit / 2, 0);
	session_set_stall_timeout(s, bev);
	if (!s->up_tls)
		sockio_take(bev, session_sock_cb);
	if (!s->close_sent)
		bufferevent_enable(bev, EV_READ);
	if (s->up_tls)
		log_debug("%s: connected to %s with %s", s->peer,
			  s->route->upstream,
			  SSL_get_version(bufferevent_openssl_get_ssl(bev)));
	else
		log_debug("%s: connected to %s", s->peer, s->route->upstream);
}

/* Upstream output drained to its low watermark. */
void
session_up_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->up_state == UP_FLUSHING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			session_up_free(s, true);
		return;
	}
	session_resume_client(s);
}

/* The connected upstream closed, reset or failed (upstream.c has the
   events of the attempt before). */
void
session_up_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (s->up_tls && (what & BEV_EVENT_ERROR))
		s->up_tls_dead = 1;
	if (s->up_tls && (what & BEV_EVENT_EOF) &&
	    !(SSL_get_shutdown(bufferevent_openssl_get_ssl(bev)) &
	      SSL_RECEIVED_SHUTDOWN))
		s->up_tls_dead = 1; /* dirty EOF: no close_notify */
	if (s->up_state == UP_FLUSHING) {
		session_up_close(s, UP_CLOSE_RESET);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		session_up_stalled(s);
		return;
	}
	/* Everything already read goes to the client first. */
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0 &&
	    !s->close_sent) {
		s->up_paused = 0;
		session_up_read_cb(bev, s);
	}
	if (what & BEV_EVENT_EOF) {
		if (s->up_held > 0 && !s->close_sent) {
			session_end(s, SESSION_END_UPSTREAM_BAD_UTF8);
			return;
		}
		log_debug("%s: upstream closed", s->peer);
		session_end(s, SESSION_END_UPSTREAM_CLOSED);
		return;
	}
	/* Reset or another error mid-stream (a TLS error says which). */
	{
		char errs[256] = "";
		if (s->up_tls)
			tls_bev_errors(bev, errs, sizeof(errs));
		log_info("%s: upstream %s: %s", s->peer, s->route->upstream,
			 errs[0] != '\0' ? errs : strerror(err));
	}
	metrics_add(&s->rm->failures[UPSTREAM_RESET], 1);
	session_end(s, s->route->abort_on_reset ? SESSION_END_UPSTREAM_ABORTED
						: SESSION_END_UPSTREAM_RESET);
}
