/*
 * session_timers.c - the session's timers: the one timer (handshake timeout,
 * then pings, then the close and linger timeouts), the idle timeout, the
 * watch over a client that is not read, and stall_timeout.
 */
#include "session_int.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "frame_queue.h"
#include "log.h"
#include "metrics.h"
#include "worker_ctx.h"

static void session_ping(struct session *s);

/* The session's timer: handshake timeout, a ping (open and not closing),
   close timeout, linger timeout. */
void
session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	if (s->state == SESSION_OPEN && !s->close_armed) {
		session_ping(s);
		return;
	}
	switch (s->state) {
	case SESSION_HANDSHAKE:
		if (s->client_tls && !s->client_tls_ok) {
			metrics_add(&s->w->metrics.tls_handshake_failures, 1);
			log_info("%s: TLS handshake failed: timeout", s->peer);
			session_end(s, SESSION_END_TLS_HANDSHAKE_TIMEOUT);
		} else {
			log_debug("%s: handshake timeout", s->peer);
			session_end(s, SESSION_END_HANDSHAKE_TIMEOUT);
		}
		break;
	case SESSION_OPEN:
		if (s->client_fin && !s->close_rcvd) {
			/* It left while we could not read it (session_watch_cb)
			   and what it sent could not all go on in time. */
			log_debug("%s: client vanished while not read", s->peer);
			session_end(s, SESSION_END_CLIENT_VANISHED_UNREAD);
		}
		/* Our Close went out (or is stuck) and no answer came. */
		log_debug("%s: close timeout", s->peer);
		session_end(s, SESSION_END_CLOSE_TIMEOUT);
		break;
	default:
		session_end(s, SESSION_END_LINGER_TIMEOUT);
		break;
	}
}

/*
 * While the client is not read, its FIN or RST waits unseen behind the
 * bytes we do not read.  So the socket's TCP state is looked at every
 * SESSION_WATCH_MS (session_int.h): a reset ends the session as a reset seen by a read
 * would; a FIN gives what it sent close_timeout to go on to the upstream
 * (it may be a slow reader, not a dead one), then the session ends.
 * TCP_INFO rather than EV_CLOSED: libevent's epoll backend reports an RST
 * (EPOLLERR) as EV_READ|EV_WRITE only, which an EV_CLOSED event never
 * sees, and epoll would report it again on every pass.
 */
void
session_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	(void)fd;
	(void)what;
	if (s->client == NULL || !s->client_paused || s->state != SESSION_OPEN)
		return;
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(bufferevent_getfd(s->client), IPPROTO_TCP, TCP_INFO, &ti,
		       &len) < 0)
		ti.tcpi_state = TCP_ESTABLISHED;
	if (ti.tcpi_state == TCP_CLOSE) {
		/* Reset: whatever it sent is lost to it anyway. */
		EVUTIL_SET_SOCKET_ERROR(ECONNRESET);
		session_client_event_cb(s->client,
					BEV_EVENT_READING | BEV_EVENT_ERROR, s);
		return;
	}
	if (ti.tcpi_state == TCP_CLOSE_WAIT && !s->client_fin) {
		s->client_fin = 1;
		log_debug("%s: client sent FIN while not read", s->peer);
		if (!s->close_armed)
			session_arm_close(s);
		return; /* the close timer ends it now */
	}
	if (!s->client_fin)
		session_arm(s->watch, SESSION_WATCH_MS);
}

/* stall_timeout on BEV: libevent's write timeout fires when data waits in
   its output and the socket takes none of it for that long (each write
   that moves a byte starts it again). */
void
session_set_stall_timeout(struct session *s, struct bufferevent *bev)
{
	struct timeval tv = session_tv(s->cfg->limits.stall_timeout_ms);

	if (s->cfg->limits.stall_timeout_ms > 0)
		bufferevent_set_timeouts(bev, NULL, &tv);
}

/* The client took no byte of what is queued toward it for stall_timeout:
   drop the queue, Close 1011 behind what is already in its output (it has
   close_timeout to take it), close the upstream. */
void
session_client_stalled(struct session *s)
{
	log_info("%s: client stalled: %zu bytes queued toward it, none taken "
		 "for %" PRIu64 " ms", s->peer, session_client_queued(s),
		 s->cfg->limits.stall_timeout_ms);
	if (s->state != SESSION_OPEN || s->close_sent) {
		/* Not even our Close (or HTTP answer) went: give up now. */
		session_end(s, SESSION_END_CLIENT_STALLED_LATE);
		return;
	}
	metrics_add(&s->rm->stalls_client, 1);
	frame_queue_clear(s->to_client); /* whole frames: nothing is cut */
	session_end(s, SESSION_END_CLIENT_STALLED);
	/* The timeout switched writing off; the Close may still go. */
	if (s->client != NULL)
		bufferevent_enable(s->client, EV_WRITE);
}

/* The upstream took no byte of what is queued toward it for
   stall_timeout: reset it, Close 1011 to the client. */
void
session_up_stalled(struct session *s)
{
	log_info("%s: upstream %s stalled: %zu bytes queued toward it, none "
		 "taken for %" PRIu64 " ms", s->peer,
		 s->target != NULL ? s->target : s->route->upstream,
		 evbuffer_get_length(bufferevent_get_output(s->up)),
		 s->cfg->limits.stall_timeout_ms);
	metrics_add(&s->rm->stalls_upstream, 1);
	session_end(s, SESSION_END_UPSTREAM_STALLED);
}

/* Ping after ping_interval without traffic from the client; no traffic
   within pong_timeout of a ping drops the connection (logged as 1006,
   nothing is sent). */
static void
session_ping(struct session *s)
{
	const struct config_limits *lim = &s->cfg->limits;
	uint64_t now = session_now(s);

	if (s->close_sent || s->client == NULL)
		return;
	if (s->ping_outstanding) {
		/* A flag, not a timestamp: libevent's cached clock is coarse
		   (CLOCK_MONOTONIC_COARSE), and a prompt pong can carry the
		   very timestamp of the ping. */
		if (!s->rx_since_ping && !s->client_paused) {
			log_info("%s: no pong within %" PRIu64 " ms", s->peer,
				 lim->pong_timeout_ms);
			session_end(s, SESSION_END_PONG_TIMEOUT);
			return;
		}
		s->ping_outstanding = 0;
		uint64_t waited = session_ms_between(s->ping_sent, now);
		session_arm(s->timer, waited < lim->ping_interval_ms
						   ? lim->ping_interval_ms - waited
						   : 0);
		return;
	}
	/* Ping only after ping_interval without traffic from the client. */
	uint64_t quiet = session_ms_between(s->last_rx, now);
	if (quiet < lim->ping_interval_ms && !s->client_paused) {
		session_arm(s->timer, lim->ping_interval_ms - quiet);
		return;
	}
	uint8_t frame[WS_MAX_HEADER + 8];
	uint64_t stamp = now;
	size_t hlen = ws_frame_header(frame, true, WS_OP_PING, 8, NULL);
	memcpy(frame + hlen, &stamp, 8);
	session_client_write_now(s, frame, hlen + 8);
	s->ping_outstanding = 1;
	s->rx_since_ping = 0;
	s->ping_sent = now;
	session_arm(s->timer, lim->pong_timeout_ms);
}

/* No data message either way for idle_timeout: Close 1000. */
void
session_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	uint64_t idle = s->cfg->limits.idle_timeout_ms;
	uint64_t quiet = session_ms_between(s->last_data, session_now(s));

	(void)fd;
	(void)what;
	if (quiet < idle) {
		session_arm(s->idle_timer, idle - quiet);
		return;
	}
	log_info("%s: idle for %" PRIu64 " ms", s->peer, quiet);
	session_end(s, SESSION_END_IDLE_TIMEOUT);
}
