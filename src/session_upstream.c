/*
 * session_upstream.c - the upstream side: starting the connection (its
 * bufferevent, the PROXY header, the connect timer; upstream.c resolves
 * and connects), its events (connected, TLS on top, failures before and
 * after connecting, EOF and resets), and the write callback that resumes
 * the client.
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

static void session_up_start_tls(struct session *s);
static void session_up_tls_failed(struct session *s, struct bufferevent *bev, int err);

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

/* Start connecting S's upstream (the route's, or the token file's target
   in V): its bufferevent, the PROXY header, the connect timer.  False when
   that failed (the session is closing). */
bool
session_up_start(struct session *s, const struct access_verdict *v)
{
	s->up = bufferevent_socket_new(s->w->base, -1,
				       BEV_OPT_CLOSE_ON_FREE);
	if (s->up == NULL) {
		session_up_failed(s, UPSTREAM_UNREACHABLE, ENOMEM);
		return false;
	}
	bufferevent_setcb(s->up, session_up_read_cb, session_up_write_cb,
			  session_up_event_cb, s);
	bufferevent_set_max_single_read(s->up, MAX_SINGLE_READ);
	if (s->route->send_proxy != SEND_PROXY_OFF)
		session_send_proxy_header(s);
	bufferevent_set_max_single_write(s->up, MAX_SINGLE_WRITE);
	s->up_state = UP_CONNECTING;
	s->connect_start = session_wall_us();
	s->connect_timer = evtimer_new(s->w->base,
				       session_connect_timer_cb, s);
	if (s->connect_timer == NULL) {
		session_up_failed(s, UPSTREAM_UNREACHABLE, ENOMEM);
		return false;
	}
	session_arm(s->connect_timer, s->route->connect_timeout_ms);
	if (v->has_target) {
		struct upstream_target t = {
			.host = v->host,
			.port = v->port,
			.allow = s->route->target_allow,
			.n_allow = s->route->n_target_allow,
		};
		s->conn = upstream_connect_to(s->w->base,
					      s->w->dns, &t, s->up,
					      session_up_failed_cb, s);
	} else {
		s->conn = upstream_connect(s->w->base, s->w->dns,
					   s->route, s->up,
					   session_up_failed_cb, s);
	}
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
	session_set_reason(s, "upstream", reason);
	session_up_close(s, UP_CLOSE_RESET);
	session_send_close(s, upstream_failure_code(s->route, f), reason);
}

/* upstream.c reports a failure before the socket existed. */
void
session_up_failed_cb(enum upstream_failure f, int err, void *arg)
{
	session_up_failed(arg, f, err);
}

/* Connect timeout. */
void
session_connect_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_up_failed(arg, UPSTREAM_TIMEOUT, 0);
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

/* The TCP connection to a tls:// upstream is up: move its socket into an
   OpenSSL bufferevent that starts the handshake (SNI and the name to verify
   are set by tls_upstream_ssl).  Client data already queued moves along. */
static void
session_up_start_tls(struct session *s)
{
	struct bufferevent *raw = s->up, *bev;
	evutil_socket_t fd = bufferevent_getfd(raw);
	struct evbuffer *held = evbuffer_new();
	SSL *ssl = tls_upstream_ssl(s->w->tls, s->route);

	if (held == NULL || ssl == NULL || fd < 0) {
		if (held != NULL)
			evbuffer_free(held);
		SSL_free(ssl);
		session_up_failed(s, UPSTREAM_TLS_HANDSHAKE, 0);
		return;
	}
	evbuffer_add_buffer(held, bufferevent_get_output(raw));
	/* RAW forgets the socket (so freeing it does not close it); we are in
	   its callback, libevent frees it once that returns. */
	bufferevent_setfd(raw, -1);
	bufferevent_free(raw);
	s->up = NULL;
	bev = bufferevent_openssl_socket_new(s->w->base, fd, ssl,
					     BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		/* With BEV_OPT_CLOSE_ON_FREE libevent freed the SSL, and with
		   it the socket. */
		evbuffer_free(held);
		session_up_failed(s, UPSTREAM_TLS_HANDSHAKE, ENOMEM);
		return;
	}
	s->up = bev;
	s->up_tls = 1;
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_setcb(bev, session_up_read_cb, session_up_write_cb,
			  session_up_event_cb, s);
	bufferevent_set_max_single_read(bev, MAX_SINGLE_READ);
	evbuffer_add_buffer(bufferevent_get_output(bev), held);
	evbuffer_free(held);
	bufferevent_enable(bev, EV_WRITE);
	bufferevent_disable(bev, EV_READ); /* until the handshake is done */
}

/* The TLS handshake with the upstream failed: Close with code_tls, saying
   whether verification was the cause; the details go to the log. */
static void
session_up_tls_failed(struct session *s, struct bufferevent *bev, int err)
{
	char errs[512], why[128];
	bool verify = tls_verify_failed(bufferevent_openssl_get_ssl(bev), why,
					sizeof(why));
	enum upstream_failure f =
		verify ? UPSTREAM_TLS_VERIFY : UPSTREAM_TLS_HANDSHAKE;

	tls_bev_errors(bev, errs, sizeof(errs));
	if (errs[0] == '\0')
		snprintf(errs, sizeof(errs), "%s",
			 err != 0 ? strerror(err) : "connection closed");
	if (verify)
		log_info("%s: %s %s: %s: %s (%s)", s->peer, s->route->path,
			 s->route->upstream, upstream_failure_text(f), why,
			 errs);
	else
		log_info("%s: %s %s: %s: %s", s->peer, s->route->path,
			 s->route->upstream, upstream_failure_text(f), errs);
	session_set_reason(s, "upstream", upstream_failure_text(f));
	session_up_close(s, UP_CLOSE_RESET);
	session_send_close(s, upstream_failure_code(s->route, f),
			   upstream_failure_text(f));
}

/* Upstream connected, closed, reset or failed. */
void
session_up_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	int err = EVUTIL_SOCKET_ERROR();
	const struct config_limits *lim = &s->cfg->limits;

	if ((what & BEV_EVENT_CONNECTED) && s->route->tls && !s->up_tls) {
		/* TCP is up: TLS next, still under the connect timer. */
		upstream_conn_free(s->conn);
		s->conn = NULL;
		session_up_start_tls(s);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;
		/* Idle sessions keep no timer they no longer need. */
		if (s->connect_timer != NULL) {
			event_free(s->connect_timer);
			s->connect_timer = NULL;
		}
		upstream_conn_free(s->conn);
		s->conn = NULL;
		s->up_state = UP_OPEN;
		{
			uint64_t now = session_wall_us();
			metrics_connect_latency(s->rm,
						now > s->connect_start
							? now - s->connect_start
							: 0);
		}
		(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP,
				 TCP_NODELAY, &one, sizeof(one));
		bufferevent_setwatermark(bev, EV_WRITE, lim->buffer_limit / 2,
					 0);
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
			log_debug("%s: connected to %s", s->peer,
				  s->route->upstream);
		return;
	}
	if (s->up_tls && (what & BEV_EVENT_ERROR))
		s->up_tls_dead = 1;
	if (s->up_tls && (what & BEV_EVENT_EOF) &&
	    !(SSL_get_shutdown(bufferevent_openssl_get_ssl(bev)) &
	      SSL_RECEIVED_SHUTDOWN))
		s->up_tls_dead = 1; /* dirty EOF: no close_notify */
	if (s->up_state == UP_CONNECTING && s->up_tls) {
		session_up_tls_failed(s, bev, err);
		return;
	}
	if (s->up_state == UP_CONNECTING) {
		session_up_failed(s, upstream_classify_errno(err), err);
		return;
	}
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
