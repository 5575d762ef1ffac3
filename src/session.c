/*
 * session.c - one client connection's life: made when a socket is accepted,
 * linked in the server's list, freed on a fresh loop pass once both sides are
 * gone (session_maybe_done); its access-log line; and the dispatch of the
 * client bufferevent's callbacks and of the reads sockio does for both sides.
 *
 * The module as a whole (session*.c, session_int.h): one client
 * connection, the HTTP upgrade, then the bridge between the WebSocket
 * client and its upstream (or the built-in echo).
 *
 * Data path, client -> upstream: the decoder unmasks frames in place in the
 * client bufferevent's input (evbuffer_peek), and each payload chunk is
 * moved, not copied, into the upstream's output.  Upstream -> client: each
 * read becomes one message (fragments of at most max_frame bytes) queued as
 * whole frames in to_client; frames move from there into the client's
 * output while it holds less than CLIENT_OUT_CHUNK, so a Pong or a Close
 * can be written between queued frames, ahead of most queued data.  With
 * splice = on, a binary route between plain sockets skips the copy while
 * nothing is queued: session_up_splice moves the read to the client through
 * the worker's pipe (splice_pipe.h), headers sent in between.
 *
 * Backpressure (libevent sample/le-proxy.c): when the queue toward one side
 * reaches buffer_limit, reading from the other side stops; it resumes from
 * the congested side's write callback once the queue is under half.
 *
 * Closing (RFC 6455 7): a session ends when both its client side and its
 * upstream side are gone.  Our Close frame is queued behind the data already
 * queued; once it is flushed and the client's Close is seen (or the
 * connection failed), the TCP connection is shut for writing and input is
 * discarded until the client's FIN or the close timeout (a lingering close:
 * closing with unread input would send RST and could destroy our Close).
 *
 * TLS (tls listeners, tls:// upstreams): the client bufferevent is an
 * OpenSSL one from the start, and its handshake runs under the handshake
 * timer.  A tls:// upstream is connected as plain TCP first (so connect
 * errors keep their own close codes), then its socket moves into an
 * OpenSSL bufferevent, whose handshake runs under the connect timer.  The
 * lingering close sends close_notify, never a bare shutdown(2): under TLS
 * that would truncate the record stream (and a pending alert could be
 * lost).  close_notify also goes out before a healthy TLS connection is
 * freed; never after a fatal error or a dirty EOF (OpenSSL forbids it).
 * Access control (access_check.c): on a proxy_protocol listener the PROXY
 * header is read before the request; the real client address (PROXY
 * header, then X-Forwarded-For / Forwarded from trusted proxies) is what
 * the logs, the per-IP limits and the PROXY header sent upstream use.
 */
#include "session_int.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/time.h>

#include <event2/bufferevent_ssl.h>

#include <openssl/ssl.h>

#include "config.h"
#include "frame_queue.h"
#include "http_upgrade.h"
#include "ip_limit.h"
#include "log.h"
#include "metrics.h"
#include "proxy_proto.h"
#include "tls.h"
#include "tls_io.h"
#include "worker_ctx.h"

static uint64_t session_us(struct timeval tv);
static void session_log(struct session *s);
static void session_free_cb(evutil_socket_t fd, short what, void *arg);
static void session_client_read_cb(struct bufferevent *bev, void *arg);

/* Put S at the head of L. */
void
session_list_add(struct session_list *l, struct session *s)
{
	s->prev = NULL;
	s->next = l->head;
	if (l->head != NULL)
		l->head->prev = s;
	l->head = s;
	l->n++;
}

/* Take S out of L. */
void
session_list_remove(struct session_list *l, struct session *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else if (l->head == s)
		l->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	l->n--;
}

/* The next session in its list. */
struct session *
session_next(struct session *s)
{
	return s->next;
}

/* The verified client certificate's subject, or NULL. */
const char *
session_tls_subject(const struct session *s)
{
	return s->tls_subject;
}

/* Milliseconds to a timeval. */
struct timeval
session_tv(uint64_t ms)
{
	struct timeval tv = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)((ms % 1000) * 1000),
	};
	return tv;
}

static uint64_t
session_us(struct timeval tv)
{
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* Now, in microseconds, from the loop's cached clock. */
uint64_t
session_now(const struct session *s)
{
	struct timeval tv;

	event_base_gettimeofday_cached(s->w->base, &tv);
	return session_us(tv);
}

/* Now, in microseconds, from gettimeofday. */
uint64_t
session_wall_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return session_us(tv);
}

/* Milliseconds from A to B, in microseconds (0 if B is earlier). */
uint64_t
session_ms_between(uint64_t a, uint64_t b)
{
	return b > a ? (b - a) / 1000 : 0;
}

/* Stop EV if it exists (some timers are made only when needed). */
void
session_timer_stop(struct event *ev)
{
	if (ev != NULL)
		evtimer_del(ev);
}

/* Arm EV to fire in MS milliseconds. */
void
session_arm(struct event *ev, uint64_t ms)
{
	struct timeval tv = session_tv(ms);

	evtimer_add(ev, &tv);
}

/* Replace the logged reason (held on the heap: most sessions are idle, and
   never need one until they end). */
void
session_replace_reason(struct session *s, const char *reason)
{
	free(s->reason);
	s->reason = strdup(reason); /* NULL: logged as "" */
}

/* Remember the first reason the session is ending for. */
void
session_set_reason(struct session *s, const char *who, const char *reason)
{
	if (s->closed_by != NULL)
		return;
	s->closed_by = who;
	session_replace_reason(s, reason);
}

/* Write the access-log line for S. */
static void
session_log(struct session *s)
{
	uint64_t ms;
	char sent[12] = "-", rcvd[12] = "-", tls[320] = "";

	if (!s->cfg->access_log)
		return;
	ms = session_ms_between(s->started, session_wall_us());
	if (s->code_sent)
		snprintf(sent, sizeof(sent), "%u", s->code_sent);
	if (s->code_rcvd)
		snprintf(rcvd, sizeof(rcvd), "%u", s->code_rcvd);
	if (s->client_tls)
		snprintf(tls, sizeof(tls), " tls=%s%s%s%s",
			 s->tls_version ? s->tls_version : "-",
			 s->tls_subject ? " tls_subject=\"" : "",
			 s->tls_subject ? s->tls_subject : "",
			 s->tls_subject ? "\"" : "");
	log_access("client=%s%s%s route=%s upstream=%s status=%d duration=%" PRIu64
		   ".%03" PRIu64 "s in_bytes=%" PRIu64 " in_msgs=%" PRIu64
		   " out_bytes=%" PRIu64 " out_msgs=%" PRIu64
		   " close_sent=%s close_rcvd=%s code=%u closed_by=%s reason=\"%s\"%s",
		   s->peer, s->via ? " via=" : "", s->via ? s->via : "",
		   s->route ? s->route->path : "-",
		   s->target != NULL ? s->target
				: s->route ? s->route->upstream : "-",
		   s->http_status,
		   ms / 1000, ms % 1000, s->bytes_in, s->msgs_in, s->bytes_out,
		   s->msgs_out, sent, rcvd, s->code_logged,
		   s->closed_by ? s->closed_by : "-",
		   s->reason ? s->reason : "", tls);
}

/* Milliseconds of a monotonic clock (per-IP buckets). */
uint64_t
session_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Free S and everything it owns. */
void
session_free(struct session *s)
{
	if (s == NULL)
		return;
	if (s->ip_counted)
		ip_limit_release(s->w->ip_limit,
				 &s->ip.sa,
				 session_monotonic_ms());
	free(s->pp);
	upstream_conn_free(s->conn);
	if (s->up != NULL)
		bufferevent_free(s->up);
	if (s->client != NULL)
		bufferevent_free(s->client);
	free(s->tls_subject);
	http_upgrade_free(s->http);
	frame_queue_free(s->to_client);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->idle_timer != NULL)
		event_free(s->idle_timer);
	if (s->watch != NULL)
		event_free(s->watch);
	free(s->target);
	free(s->addrs);
	free(s->reason);
	free(s->via);
	if (s->rm != NULL && s->http_status == 101)
		metrics_sub(&s->rm->open, 1);
	metrics_sub(&s->w->metrics.open, 1);
	config_unref(s->cfg);
	/* Begun: the server holds it in its list and counts it. */
	if (s->counted)
		s->w->session_gone(s->w->arg, s);
	free(s);
}

/* Bytes queued in S toward both sides (for the buffered-bytes gauge). */
size_t
session_buffered(const struct session *s)
{
	size_t n = session_client_queued(s);

	if (s->up != NULL)
		n += evbuffer_get_length(bufferevent_get_output(s->up));
	return n;
}

/* A fresh loop pass after the session ended: log it and free it. */
static void
session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	session_log(s);
	if (s->code_logged == WS_CLOSE_ABNORMAL)
		metrics_add(&s->w->metrics.close_logged_1006, 1);
	session_free(s);
}

/* End S once both sides are gone; the free happens on a fresh pass. */
void
session_maybe_done(struct session *s)
{
	if (s->state == SESSION_DONE || s->client != NULL || s->up != NULL)
		return;
	s->state = SESSION_DONE;
	session_timer_stop(s->idle_timer);
	session_timer_stop(s->watch);
	/* The timer has nothing left to time: it becomes the free event. */
	evtimer_del(s->timer);
	event_assign(s->timer, s->w->base, -1, 0, session_free_cb, s);
	event_active(s->timer, EV_TIMEOUT, 1);
}

/* A read of BEV (S's client or upstream) met EOF (or an error, in errno):
   tell EVENT_CB as libevent's own read would (reading disabled, then the
   event with errno intact). */
void
session_sock_ended(struct session *s, struct bufferevent *bev, bool eof,
		   bufferevent_event_cb event_cb)
{
	int err = errno;

	bufferevent_disable(bev, EV_READ);
	EVUTIL_SET_SOCKET_ERROR(err);
	event_cb(bev, BEV_EVENT_READING |
		 (eof ? BEV_EVENT_EOF : BEV_EVENT_ERROR), s);
}

/* Read BEV (S's client or upstream); hand what came to READ_CB, or an EOF
   or error to EVENT_CB (session_sock_ended). */
void
session_sock_read_run(struct session *s, struct bufferevent *bev,
		      uint8_t *shift, bufferevent_data_cb read_cb,
		      bufferevent_event_cb event_cb)
{
	enum sockio_read r;

	/* The callbacks may free BEV: keep it until they return. */
	bufferevent_incref(bev);
	r = sockio_read(bev, shift);
	switch (r) {
	case SOCKIO_READ_DATA:
		read_cb(bev, s);
		break;
	case SOCKIO_READ_AGAIN:
		break;
	case SOCKIO_READ_EOF:
	case SOCKIO_READ_ERROR:
		session_sock_ended(s, bev, r == SOCKIO_READ_EOF, event_cb);
		break;
	}
	bufferevent_decref(bev);
}

/* BEV's read event (ARG is BEV: libevent's finalizer for the bufferevent
   takes its events' argument to be the bufferevent). */
void
session_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bufferevent *bev = arg;
	void *cbarg = NULL;
	struct session *s;

	(void)fd;
	(void)what;
	bufferevent_getcb(bev, NULL, NULL, NULL, &cbarg);
	s = cbarg;
	if (s == NULL)
		return;
	if (bev == s->client)
		session_sock_read_run(s, bev, &s->client_rd_shift,
				      session_client_read_cb,
				      session_client_event_cb);
	else if (bev == s->up) {
		/* The callbacks may free BEV: keep it until they return. */
		bufferevent_incref(bev);
		if (!session_up_splice(s))
			session_sock_read_run(s, bev, &s->up_rd_shift,
					      session_up_read_cb,
					      session_up_event_cb);
		bufferevent_decref(bev);
	}
}

/* Client readable. */
static void
session_client_read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	switch (s->state) {
	case SESSION_HANDSHAKE:
		session_handshake(s);
		break;
	case SESSION_OPEN:
		s->last_rx = session_now(s);
		s->rx_since_ping = 1;
		if (s->fail_fast) {
			evbuffer_drain(in, evbuffer_get_length(in));
			break;
		}
		if (s->client_tls && !s->close_rcvd && session_can_forward(s))
			s->client_tls_more =
				tls_io_read_records(bev, s->client_tls_more);
		session_frames(s);
		break;
	default:
		/* Rejecting or lingering: discard. */
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	}
	session_client_tls_kick(s);
}

/* Client's output drained to its low watermark. */
void
session_client_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	size_t limit = s->cfg->limits.buffer_limit;

	session_client_flush(s);
	if (s->pong_paused && session_client_queued(s) < limit / 2) {
		s->pong_paused = 0;
		session_resume_client(s); /* may close: S stays, its client may go */
		if (s->client == NULL)
			return;
	}
	if (session_client_queued(s) > 0) {
		if (s->up_paused && session_client_queued(s) < limit / 2 &&
		    s->up != NULL && s->up_state == UP_OPEN &&
		    !s->close_sent) {
			s->up_paused = 0;
			bufferevent_enable(s->up, EV_READ);
		}
		return;
	}
	/* Everything queued toward the client is out. */
	if (s->state == SESSION_REJECTING) {
		session_linger(s);
		return;
	}
	if (s->close_sent && (s->close_rcvd || s->fail_fast)) {
		session_linger(s);
		return;
	}
	if (s->up_paused && s->up != NULL && s->up_state == UP_OPEN &&
	    !s->close_sent) {
		s->up_paused = 0;
		bufferevent_enable(s->up, EV_READ);
	}
	if (s->is_echo)
		session_resume_client(s);
	(void)bev;
}

/* Client EOF, error or reset. */
void
session_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	int err = EVUTIL_SOCKET_ERROR();
	bool reset = (what & BEV_EVENT_ERROR) != 0;

	if (what & BEV_EVENT_CONNECTED) {
		session_client_tls_done(s, bev);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		session_client_stalled(s);
		return;
	}
	if (s->client_tls) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		if (reset || !(SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN))
			s->client_tls_dead = 1; /* no close_notify back */
		if (!s->client_tls_ok) {
			session_client_tls_failed(s, bev, what, err);
			return;
		}
		if (reset) {
			/* A TLS error is not a TCP reset: log what it was. */
			char errs[256];
			tls_bev_errors(bev, errs, sizeof(errs));
			if (errs[0] != '\0') {
				log_debug("%s: TLS error: %s", s->peer, errs);
				err = 0;
			}
		}
	}
	if (s->state == SESSION_HANDSHAKE) {
		session_end(s, reset ? SESSION_END_CLIENT_RESET_EARLY
				     : SESSION_END_CLIENT_EOF_EARLY);
		return;
	}
	if (s->state == SESSION_OPEN && !s->close_rcvd) {
		/* Vanished without a Close: RFC 6455 7.1.5 code 1006. */
		log_debug("%s: client %s without Close", s->peer,
			  reset ? "error" : "EOF");
		if (reset)
			session_end_detail(s, SESSION_END_CLIENT_RESET,
					   err != 0 ? strerror(err) : NULL);
		else
			session_end(s, SESSION_END_CLIENT_VANISHED);
		return;
	}
	/* The end had begun (a Close either way, an HTTP answer): its
	   reason stands. */
	session_end(s, SESSION_END_CLIENT_GONE);
}

/* Take over an accepted socket; see session.h. */
struct session *
session_new(struct worker_ctx *w, const struct config_listen *cl,
	    evutil_socket_t fd, const struct sockaddr *addr,
	    socklen_t addr_len)
{
	const struct config *cfg = w->cfg; /* s->cfg holds a reference */
	struct http_limits hl = {
		.max_request_line = cfg->limits.max_request_line,
		.max_header_bytes = cfg->limits.max_header_bytes,
		.max_headers = cfg->limits.max_headers,
	};
	struct session *s;
	int one = 1;
	socklen_t llen = sizeof(struct sockaddr_storage);

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		evutil_closesocket(fd);
		return NULL;
	}
	s->w = w;
	s->addrs = calloc(1, sizeof(*s->addrs));
	if (s->addrs == NULL) {
		evutil_closesocket(fd);
		free(s);
		return NULL;
	}
	if (addr_len > sizeof(s->addrs->peer))
		addr_len = sizeof(s->addrs->peer);
	memcpy(&s->addrs->peer, addr, addr_len);
	netaddr_unmap(&s->addrs->peer);
	s->addrs->client = s->addrs->peer;
	if (getsockname(fd, (struct sockaddr *)&s->addrs->local, &llen) < 0)
		memset(&s->addrs->local, 0, sizeof(s->addrs->local));
	netaddr_unmap(&s->addrs->local);
	session_set_client(s);
	if (cl != NULL && cl->proxy_protocol) {
		/* spec 2: only from proxies we trust */
		if (!netaddr_nets_contain(cfg->trusted_proxies,
					  cfg->n_trusted_proxies,
					  (struct sockaddr *)&s->addrs->peer)) {
			log_warn("%s: %s: peer is not in trusted_proxies and "
				 "this listener expects a PROXY header: closed",
				 cl->text, s->peer);
			evutil_closesocket(fd);
			free(s->addrs);
			free(s);
			return NULL;
		}
		s->pp = malloc(sizeof(*s->pp));
		if (s->pp != NULL)
			proxy_proto_init(s->pp);
	}
	s->cfg = config_ref(w->cfg);
	metrics_add(&w->metrics.accepted, 1);
	metrics_add(&w->metrics.open, 1); /* session_free takes it back */
	s->started = session_wall_us();
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if (cl->tls) {
		SSL *ssl = tls_server_ssl(w->tls);
		s->client_tls = 1;
		/* With BEV_OPT_CLOSE_ON_FREE the bufferevent owns SSL and
		   socket, even when it fails to be created. */
		if (ssl != NULL)
			s->client = bufferevent_openssl_socket_new(
				w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
				BEV_OPT_CLOSE_ON_FREE);
		else
			evutil_closesocket(fd);
		fd = -1;
		if (s->client != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(s->client,
								     1);
	} else {
		s->client = bufferevent_socket_new(w->base, fd,
						   BEV_OPT_CLOSE_ON_FREE);
	}
	s->http = http_upgrade_new(&hl);
	s->timer = evtimer_new(w->base, session_timer_cb, s);
	if (s->client == NULL || s->http == NULL ||
	    s->timer == NULL ||
	    (cl != NULL && cl->proxy_protocol && s->pp == NULL)) {
		log_error("%s: out of memory", s->peer);
		if (s->client == NULL && fd >= 0)
			evutil_closesocket(fd);
		session_free(s);
		return NULL;
	}
	return s;
}

/* Serve S, now in its server's list; see session.h. */
void
session_begin(struct session *s, bool over_limit)
{
	s->counted = 1;
	s->over_limit = over_limit ? 1 : 0;
	bufferevent_setcb(s->client, session_client_read_cb,
			  session_client_write_cb, session_client_event_cb, s);
	bufferevent_set_max_single_read(s->client, MAX_SINGLE_READ);
	/* TLS: libevent's retry of a packed write must see all of it */
	bufferevent_set_max_single_write(s->client, s->client_tls
							    ? SESSION_PACK_MAX
							    : MAX_SINGLE_WRITE);
	bufferevent_enable(s->client, EV_READ | EV_WRITE);
	if (!s->client_tls)
		sockio_take(s->client, session_sock_cb);
	session_arm(s->timer, s->cfg->limits.handshake_timeout_ms);
	log_debug("%s: connected", s->peer);
}

/* Graceful shutdown of one session. */
void
session_shutdown(struct session *s)
{
	switch (s->state) {
	case SESSION_HANDSHAKE:
		session_end(s, SESSION_END_SHUTDOWN_EARLY);
		break;
	case SESSION_OPEN:
		if (s->close_sent)
			break;
		session_end(s, SESSION_END_SHUTDOWN);
		break;
	default:
		break;
	}
}

/* Drop S at once (the drain timeout passed). */
void
session_abort(struct session *s)
{
	if (s->state == SESSION_DONE)
		return;
	session_end(s, SESSION_END_DRAIN_TIMEOUT);
}
