/*
 * session.c - one client connection: the HTTP upgrade, then the bridge
 * between the WebSocket client and its upstream (or the built-in echo).
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
#include "session.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "access_check.h"
#include "config.h"
#include "gateway.h"
#include "http_upgrade.h"
#include "ip_limit.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "proxy_proto.h"
#include "server.h"
#include "splice_pipe.h"
#include "tls.h"
#include "upstream.h"
#include "utf8.h"
#include "ws_frame.h"

/* Bytes kept in the client bufferevent's output; the rest waits in
   to_client as whole frames, so control frames can overtake it. */
#define CLIENT_OUT_CHUNK (64 * 1024)
/* Largest single read from a socket (or of TLS records).  256 KiB: a bulk
   transfer then costs a wakeup, a read and a write per 256 KiB; at 64 KiB
   the relay spent about twice the CPU per MB (docs/PERFORMANCE.md). */
#define MAX_SINGLE_READ (256 * 1024)
/* Largest single write to a socket (libevent's default is 16 KiB). */
#define MAX_SINGLE_WRITE (256 * 1024)
/* Buffer segments in one direct writev. */
#define DIRECT_IOV 16
/* Frames packed for one SSL_write toward a TLS client: one upstream read
   and its headers (session_client_frames_packed); also the TLS client's
   max_single_write, so that libevent's retry of a write OpenSSL could not
   finish peeks all of it. */
#define SESSION_PACK_MAX (MAX_SINGLE_READ + 16 * 1024)

#define SESSION_STATES(X)                                                      \
	X(SESSION_HANDSHAKE, "handshake")                                      \
	X(SESSION_REJECTING, "rejecting")                                      \
	X(SESSION_OPEN, "open")                                                \
	X(SESSION_LINGER, "linger")                                            \
	X(SESSION_DONE, "done")

enum session_state {
#define SESSION_ENUM_(name, text) name,
	SESSION_STATES(SESSION_ENUM_)
#undef SESSION_ENUM_
};

/* How to close the upstream connection. */
enum up_close_mode {
	UP_CLOSE_FLUSH, /* after its queued output is written, then FIN */
	UP_CLOSE_NOW,   /* at once: FIN, queued output dropped */
	UP_CLOSE_RESET, /* at once: RST */
};

enum upstream_state {
	UP_NONE,       /* echo route, or not started */
	UP_CONNECTING,
	UP_OPEN,
	UP_FLUSHING,   /* closing after its output drains */
	UP_GONE,
};

struct session {
	struct server *srv;
	struct config *cfg;           /* the config it started with (a ref) */
	struct route_metrics *rm;     /* its route's counters, once routed */
	struct session *prev, *next;
	enum session_state state;
	enum upstream_state up_state;

	struct bufferevent *client;
	struct bufferevent *up;
	struct upstream_conn *conn;
	struct http_upgrade *http;
	const struct config_route *route;
	struct ws_decoder dec;
	struct evbuffer *to_client;   /* whole frames behind the output */
	struct utf8_validator up_utf8; /* frame_type = text */
	size_t up_held;               /* validated bytes of a partial code
					 point held back in up's input */

	/* The one timer every session has: the handshake timeout, then
	   pings while open, then the close/linger timeout (close_armed),
	   then the deferred free.  One event instead of four: an idle
	   connection's memory is mostly its events and buffers. */
	struct event *timer;
	struct event *connect_timer;  /* only while connecting */
	struct event *idle_timer;     /* only with an idle_timeout */
	struct event *watch;          /* while the client is not read */

	/* microseconds since the epoch: started and connect_start from
	   gettimeofday, the rest from the loop's cached clock */
	uint64_t started, last_rx, last_data, ping_sent, connect_start;

	uint64_t bytes_in, bytes_out, msgs_in, msgs_out;
	int http_status;
	unsigned code_sent, code_rcvd, code_logged;
	const char *closed_by;        /* "client", "upstream", "gateway" */
	char *reason;                 /* for the access log; NULL: none */
	char peer[NETADDR_STRLEN];    /* the real client, for logs */
	char *tls_subject;            /* verified client certificate */
	const char *tls_version;      /* "TLSv1.3"; NULL: plain */

	struct proxy_proto *pp;       /* PROXY header still to read */
	struct session_addrs *addrs;  /* until the upgrade is done */
	union {                       /* the real client, while ip_counted */
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} ip;
	char *via;                    /* the TCP peer, when not the client */
	char *target;                 /* token-file route: "host:port" */

	unsigned over_limit : 1;
	unsigned counted : 1;         /* holds a gateway connection slot */
	unsigned close_sent : 1;
	unsigned close_rcvd : 1;
	unsigned fail_fast : 1;       /* don't wait for the client's Close */
	unsigned client_paused : 1;   /* reading the client stopped */
	unsigned pong_paused : 1;     /* ...until the queue toward it drains */
	unsigned client_fin : 1;      /* its FIN seen while it was not read */
	unsigned up_paused : 1;       /* reading the upstream stopped */
	unsigned ping_outstanding : 1;
	unsigned rx_since_ping : 1;   /* client bytes arrived since the ping */
	unsigned is_echo : 1;
	unsigned client_tls : 1;      /* TLS listener */
	unsigned client_tls_ok : 1;   /* its handshake finished */
	unsigned client_tls_dead : 1; /* fatal error or dirty EOF */
	unsigned up_tls : 1;          /* up is an OpenSSL bufferevent */
	unsigned up_tls_dead : 1;
	unsigned client_tls_more : 1; /* session_read_tls_records stopped at */
	unsigned up_tls_more : 1;     /* its limit: more records may follow */
	unsigned ip_counted : 1;      /* ip_limit_acquire admitted it */
	unsigned close_armed : 1;     /* timer: close/linger timeout */
	unsigned no_splice : 1;       /* splice refused this upstream */
	uint8_t client_rd_shift;      /* log2 of the next direct read */
	uint8_t up_rd_shift;
};

/* Addresses needed only until the upgrade (trusted-proxy checks, the
   PROXY header sent upstream). */
struct session_addrs {
	struct sockaddr_storage client; /* the real client */
	struct sockaddr_storage peer;  /* the TCP peer */
	struct sockaddr_storage local; /* what the client connected to */
};

static void session_client_read_cb(struct bufferevent *bev, void *arg);
static void session_client_write_cb(struct bufferevent *bev, void *arg);
static void session_client_event_cb(struct bufferevent *bev, short what,
				    void *arg);
static void session_up_read_cb(struct bufferevent *bev, void *arg);
static void session_up_write_cb(struct bufferevent *bev, void *arg);
static void session_up_event_cb(struct bufferevent *bev, short what,
				void *arg);
static void session_frames(struct session *s);
static void session_client_flush(struct session *s);
static void session_up_close(struct session *s, enum up_close_mode mode);
static void session_client_drop(struct session *s, bool reset);
static void session_up_free(struct session *s, bool notify);
static void session_ping(struct session *s);
static void session_client_tls_kick(struct session *s);
static bool session_up_splice(struct session *s);
static void session_arm_close(struct session *s);
static void session_up_failed(struct session *s, enum upstream_failure f,
			      int err);
static bool session_is_plain_socket(struct bufferevent *bev);
static ssize_t session_sendv(struct bufferevent *bev, struct iovec *iov,
			     int n);
static size_t session_write_now(struct bufferevent *bev, const uint8_t *hdr,
				size_t hlen, struct evbuffer *src, size_t n);

/* The next session in the server's list. */
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
static struct timeval
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
static uint64_t
session_now(const struct session *s)
{
	struct timeval tv;

	event_base_gettimeofday_cached(s->srv->base, &tv);
	return session_us(tv);
}

/* Now, in microseconds, from gettimeofday. */
static uint64_t
session_wall_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return session_us(tv);
}

/* Milliseconds from A to B, in microseconds (0 if B is earlier). */
static uint64_t
session_ms_between(uint64_t a, uint64_t b)
{
	return b > a ? (b - a) / 1000 : 0;
}

/* Stop EV if it exists (some timers are made only when needed). */
static void
session_timer_stop(struct event *ev)
{
	if (ev != NULL)
		evtimer_del(ev);
}

/* Arm EV to fire in MS milliseconds. */
static void
session_arm(struct event *ev, uint64_t ms)
{
	struct timeval tv = session_tv(ms);

	evtimer_add(ev, &tv);
}

/* Bytes in to_client (made on first use: most sessions never queue). */
static size_t
session_to_client_len(const struct session *s)
{
	return s->to_client != NULL ? evbuffer_get_length(s->to_client) : 0;
}

/* Bytes queued toward the client (its output plus to_client). */
static size_t
session_client_queued(const struct session *s)
{
	if (s->client == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(s->client)) +
	       session_to_client_len(s);
}

/* Replace the logged reason (held on the heap: most sessions are idle, and
   never need one until they end). */
static void
session_replace_reason(struct session *s, const char *reason)
{
	free(s->reason);
	s->reason = strdup(reason); /* NULL: logged as "" */
}

/* Remember the first reason the session is ending for. */
static void
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
static uint64_t
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
		ip_limit_release(s->srv->ip_limit,
				 &s->ip.sa,
				 session_monotonic_ms());
	free(s->pp);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else if (s->srv->sessions == s)
		s->srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	upstream_conn_free(s->conn);
	if (s->up != NULL)
		bufferevent_free(s->up);
	if (s->client != NULL)
		bufferevent_free(s->client);
	free(s->tls_subject);
	http_upgrade_free(s->http);
	if (s->to_client != NULL)
		evbuffer_free(s->to_client);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->connect_timer != NULL)
		event_free(s->connect_timer);
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
	metrics_sub(&s->srv->metrics.open, 1);
	if (s->counted)
		gateway_conn_done(s->srv->gw, s->srv->worker);
	config_unref(s->cfg);
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
	struct server *srv = s->srv;

	(void)fd;
	(void)what;
	session_log(s);
	if (s->code_logged == WS_CLOSE_ABNORMAL)
		metrics_add(&srv->metrics.close_logged_1006, 1);
	session_free(s);
	server_session_gone(srv);
}

/* End S once both sides are gone; the free happens on a fresh pass. */
static void
session_maybe_done(struct session *s)
{
	if (s->state == SESSION_DONE || s->client != NULL || s->up != NULL)
		return;
	s->state = SESSION_DONE;
	session_timer_stop(s->connect_timer);
	session_timer_stop(s->idle_timer);
	session_timer_stop(s->watch);
	/* The timer has nothing left to time: it becomes the free event. */
	evtimer_del(s->timer);
	event_assign(s->timer, s->srv->base, -1, 0, session_free_cb, s);
	event_active(s->timer, EV_TIMEOUT, 1);
}

/* Close the client connection now (RST if RESET). */
static void
session_client_drop(struct session *s, bool reset)
{
	if (s->client == NULL)
		return;
	if (reset) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		(void)setsockopt(bufferevent_getfd(s->client), SOL_SOCKET,
				 SO_LINGER, &lg, sizeof(lg));
	} else if (s->client_tls_ok && !s->client_tls_dead &&
		   evbuffer_get_length(bufferevent_get_output(s->client)) == 0) {
		tls_close_notify(bufferevent_openssl_get_ssl(s->client));
	}
	bufferevent_free(s->client);
	s->client = NULL;
	if (s->to_client != NULL)
		evbuffer_drain(s->to_client, evbuffer_get_length(s->to_client));
	session_maybe_done(s);
}

/* The client's side is finished: shut it for writing, discard input until
   its FIN or the close timeout (lingering close). */
static void
session_linger(struct session *s)
{
	if (s->client == NULL || s->state == SESSION_LINGER)
		return;
	s->state = SESSION_LINGER;
	if (!s->client_tls) {
		(void)shutdown(bufferevent_getfd(s->client), SHUT_WR);
	} else if (!s->client_tls_dead &&
		   tls_close_notify(bufferevent_openssl_get_ssl(s->client))) {
		/* close_notify is out: the TLS stream is complete, and a FIN
		   behind it tells peers that wait for TCP EOF. */
		(void)shutdown(bufferevent_getfd(s->client), SHUT_WR);
	}
	bufferevent_enable(s->client, EV_READ);
	s->client_paused = 0;
	session_client_tls_kick(s);
	session_arm_close(s);
	/* The upstream has nothing more to say to this client. */
	session_up_close(s, UP_CLOSE_FLUSH);
}

/* Close and linger timeouts from here on: pings stop. */
static void
session_arm_close(struct session *s)
{
	s->close_armed = 1;
	session_arm(s->timer, s->cfg->limits.close_timeout_ms);
}

/* The session's timer: handshake timeout, a ping (open and not closing),
   close timeout, linger timeout. */
static void
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
			metrics_add(&s->srv->metrics.tls_handshake_failures, 1);
			log_info("%s: TLS handshake failed: timeout", s->peer);
			session_set_reason(s, "gateway",
					   "TLS handshake timeout");
		} else {
			log_debug("%s: handshake timeout", s->peer);
			session_set_reason(s, "gateway", "handshake timeout");
		}
		session_client_drop(s, false);
		break;
	case SESSION_OPEN:
		if (s->client_fin && !s->close_rcvd) {
			/* It left while we could not read it (session_watch_cb)
			   and what it sent could not all go on in time. */
			log_debug("%s: client vanished while not read", s->peer);
			session_set_reason(s, "client", "client vanished");
			if (!s->close_sent)
				s->code_logged = WS_CLOSE_ABNORMAL;
		}
		/* Our Close went out (or is stuck) and no answer came. */
		log_debug("%s: close timeout", s->peer);
		session_set_reason(s, "gateway", "close timeout");
		session_up_close(s, UP_CLOSE_NOW);
		session_client_drop(s, false);
		break;
	default:
		session_up_close(s, UP_CLOSE_NOW);
		session_client_drop(s, false);
		break;
	}
}

/* Write BUF (LEN bytes) to the client at once, ahead of to_client.  While
   open, a Ping or Pong goes straight to an idle socket: queuing it would
   allocate a buffer chain and switch EPOLLOUT on and off for 14 bytes.  The
   HTTP responses and our Close go through the output, whose write
   callback moves the session on. */
static void
session_client_write_now(struct session *s, const void *buf, size_t len)
{
	size_t done = 0;

	if (s->client == NULL)
		return;
	if (s->state == SESSION_OPEN && !s->close_sent)
		done = session_write_now(s->client, buf, len, NULL, 0);
	if (done < len)
		bufferevent_write(s->client, (const uint8_t *)buf + done,
				  len - done);
}

/* Answer with an HTTP error and close after it is sent. */
static void
session_reject(struct session *s, int status, const char *body)
{
	char buf[512];
	int n;

	s->http_status = status;
	metrics_handshake_failure(&s->srv->metrics, status);
	session_set_reason(s, "gateway", body);
	n = http_response_error(buf, sizeof(buf), status, body);
	if (n < 0) {
		session_client_drop(s, false);
		return;
	}
	s->state = SESSION_REJECTING;
	session_client_write_now(s, buf, (size_t)n);
	log_debug("%s: HTTP %d %s", s->peer, status, body);
}

/* Queue a frame (header + N bytes from SRC, moved) toward the client. */
static void
session_client_frame(struct session *s, bool fin, unsigned opcode,
		     struct evbuffer *src, size_t n)
{
	uint8_t hdr[WS_MAX_HEADER];
	size_t hlen = ws_frame_header(hdr, fin, (uint8_t)opcode, n, NULL);
	struct evbuffer *out = bufferevent_get_output(s->client);

	if (s->to_client == NULL && evbuffer_get_length(out) >= CLIENT_OUT_CHUNK)
		s->to_client = evbuffer_new(); /* NULL: queue in the output */
	if (session_to_client_len(s) == 0 &&
	    (evbuffer_get_length(out) < CLIENT_OUT_CHUNK ||
	     s->to_client == NULL)) {
		size_t done = 0;
		/* Data frames straight out when nothing is queued; a Close
		   goes through the output, whose drain ends the session. */
		if (!(opcode & 0x08) && !s->close_sent &&
		    s->state == SESSION_OPEN)
			done = session_write_now(s->client, hdr, hlen, src, n);
		if (done < hlen) {
			evbuffer_add(out, hdr + done, hlen - done);
			done = hlen;
		}
		if (n > done - hlen)
			evbuffer_remove_buffer(src, out, n - (done - hlen));
	} else {
		evbuffer_add(s->to_client, hdr, hlen);
		if (n > 0)
			evbuffer_remove_buffer(src, s->to_client, n);
	}
}

/*
 * Plain clients: the first DIRECT_FRAMES frames carrying N bytes of SRC
 * (cut at MAX_FRAME; the first has OPCODE, the last FIN), headers and
 * payload in one sendmsg when nothing is queued toward the client.  A
 * 256 KiB upstream read cut at the default 64 KiB max_frame cost four
 * sends, one per frame.
 * The payload is sent from where it sits in SRC (evbuffer_peek, no copy).
 * A frame the socket takes only part of has its rest moved to the output,
 * where libevent finishes it.  Returns the bytes of SRC dealt with (whole
 * frames, sent or queued): the caller frames the rest as usual.
 */
#define DIRECT_FRAMES 8
static size_t
session_client_frames_direct(struct session *s, unsigned opcode,
			     struct evbuffer *src, size_t n, size_t max_frame)
{
	struct evbuffer *out = bufferevent_get_output(s->client);
	uint8_t hdr[DIRECT_FRAMES][WS_MAX_HEADER];
	size_t hlen[DIRECT_FRAMES], plen[DIRECT_FRAMES];
	struct evbuffer_iovec v[DIRECT_IOV];
	struct iovec iov[2 * DIRECT_FRAMES + DIRECT_IOV];
	size_t left = n, voff = 0, sent, done = 0;
	int nf = 0, k = 0, vi = 0, nv;
	ssize_t w;

	if (n == 0 || evbuffer_get_length(out) > 0 ||
	    session_to_client_len(s) > 0 || s->close_sent ||
	    s->state != SESSION_OPEN || !session_is_plain_socket(s->client))
		return 0;
	nv = evbuffer_peek(src, (ev_ssize_t)n, NULL, v, DIRECT_IOV);
	if (nv > DIRECT_IOV)
		nv = DIRECT_IOV;
	while (left > 0 && nf < DIRECT_FRAMES) {
		size_t len = left < max_frame ? left : max_frame, need = len;
		int k0 = k;

		hlen[nf] = ws_frame_header(hdr[nf], len == left,
					   (uint8_t)(nf == 0 ? opcode
							     : WS_OP_CONT),
					   len, NULL);
		plen[nf] = len;
		iov[k].iov_base = hdr[nf];
		iov[k++].iov_len = hlen[nf];
		while (need > 0 && vi < nv) {
			size_t take = v[vi].iov_len - voff;

			if (take > need)
				take = need;
			iov[k].iov_base = (uint8_t *)v[vi].iov_base + voff;
			iov[k++].iov_len = take;
			need -= take;
			voff += take;
			if (voff == v[vi].iov_len) {
				vi++;
				voff = 0;
			}
		}
		if (need > 0) { /* more pieces than peeked: not this frame */
			k = k0;
			break;
		}
		left -= len;
		nf++;
	}
	if (nf == 0)
		return 0;
	w = session_sendv(s->client, iov, k);
	sent = w > 0 ? (size_t)w : 0;
	for (int i = 0; i < nf; i++) {
		done += plen[i];
		if (sent >= hlen[i] + plen[i]) {
			sent -= hlen[i] + plen[i];
			evbuffer_drain(src, plen[i]);
			continue;
		}
		/* Cut short in frame I: its rest waits in the output. */
		if (sent < hlen[i]) {
			evbuffer_add(out, hdr[i] + sent, hlen[i] - sent);
			sent = 0;
		} else {
			sent -= hlen[i];
		}
		evbuffer_drain(src, sent);
		evbuffer_remove_buffer(src, out, plen[i] - sent);
		break;
	}
	return done;
}

/*
 * TLS clients: the frames carrying N bytes of SRC (cut at MAX_FRAME; the
 * first has OPCODE, the last FIN), headers and payloads packed into the
 * worker's pack_buf and handed to SSL_write here, when nothing is queued
 * toward the client.  Through libevent 2.1's OpenSSL bufferevent instead,
 * each piece added to the output turns on EPOLLOUT (epoll_ctl), waits a
 * loop pass, gets an SSL_write per chain (a frame added as header, then
 * payload, is a TLS record of a few bytes plus a short record at each
 * chain's end), and turns EPOLLOUT off again; the upstream read pauses
 * and resumes meanwhile (two more epoll_ctl).  Packed, one upstream read
 * goes out as full 16 KiB records at once, for one copy of the payload
 * (moving part of a chain copies anyway).
 *
 * What SSL_write does not take moves to the output, in one contiguous
 * run: OpenSSL keeps a record it could not finish and must be called
 * again with the same bytes (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, which
 * libevent sets, lets them move), which libevent's next SSL_write on the
 * output's first chain does; an error is met again there and reported
 * through the event callback, as for any write.  Returns false, having
 * done nothing, when the frames must queue behind others.
 */
static bool
session_client_frames_packed(struct session *s, unsigned opcode,
			     struct evbuffer *src, size_t n, size_t max_frame)
{
	struct evbuffer *out = bufferevent_get_output(s->client);
	size_t frames = (n + max_frame - 1) / max_frame;
	size_t total, done = 0;
	struct evbuffer_iovec v;
	uint8_t *p;
	SSL *ssl;

	if (n == 0 || n + frames * WS_MAX_HEADER > SESSION_PACK_MAX ||
	    evbuffer_get_length(out) > 0 || session_to_client_len(s) > 0 ||
	    s->close_sent || !s->client_tls_ok || s->client_tls_dead ||
	    s->state != SESSION_OPEN ||
	    (ssl = bufferevent_openssl_get_ssl(s->client)) == NULL)
		return false;
	if (s->srv->pack_buf == NULL &&
	    (s->srv->pack_buf = malloc(SESSION_PACK_MAX)) == NULL)
		return false;
	p = s->srv->pack_buf;
	for (bool first = true; n > 0; first = false) {
		size_t len = n < max_frame ? n : max_frame;

		n -= len;
		p += ws_frame_header(p, n == 0, (uint8_t)(first ? opcode
							       : WS_OP_CONT),
				     len, NULL);
		evbuffer_remove(src, p, len);
		p += len;
	}
	total = (size_t)(p - s->srv->pack_buf);
	ERR_clear_error();
	while (done < total) {
		int r = SSL_write(ssl, s->srv->pack_buf + done,
				  (int)(total - done));

		if (r <= 0)
			break;
		done += (size_t)r;
	}
	ERR_clear_error(); /* libevent's own SSL_write reports errors */
	if (done < total) {
		/* One contiguous run: the first chain libevent peeks must hold
		   every byte of the call OpenSSL wants repeated. */
		if (evbuffer_reserve_space(out, (ev_ssize_t)(total - done), &v,
					   1) != 1) {
			/* OpenSSL holds part of a record we cannot finish */
			log_warn("%s: out of memory queueing toward the client",
				 s->peer);
			session_client_drop(s, true);
			return true;
		}
		memcpy(v.iov_base, s->srv->pack_buf + done, total - done);
		v.iov_len = total - done;
		evbuffer_commit_space(out, &v, 1);
	}
	return true;
}

/* Move whole frames from to_client into the client's output while it holds
   less than CLIENT_OUT_CHUNK. */
static void
session_client_flush(struct session *s)
{
	struct evbuffer *out;

	if (s->client == NULL)
		return;
	out = bufferevent_get_output(s->client);
	while (evbuffer_get_length(out) < CLIENT_OUT_CHUNK &&
	       session_to_client_len(s) >= 2) {
		uint8_t h[10];
		size_t have = evbuffer_get_length(s->to_client);
		size_t hlen = 2;
		uint64_t len;

		evbuffer_copyout(s->to_client, h, have < 10 ? have : 10);
		len = h[1] & 0x7f;
		if (len == 126) {
			hlen = 4;
			len = ((uint64_t)h[2] << 8) | h[3];
		} else if (len == 127) {
			hlen = 10;
			len = 0;
			for (int i = 2; i < 10; i++)
				len = (len << 8) | h[i];
		}
		/* Only our own whole frames are ever queued here. */
		evbuffer_remove_buffer(s->to_client, out, hlen + (size_t)len);
	}
}

/* Queue a Close frame with CODE and REASON behind the data already queued;
   stop reading the upstream and start the close timer. */
static void
session_send_close(struct session *s, unsigned code, const char *reason)
{
	uint8_t payload[WS_MAX_CONTROL_PAYLOAD];
	ssize_t n;
	struct evbuffer *tmp;

	if (s->close_sent || s->client == NULL)
		return;
	n = ws_close_payload(payload, code, reason, strlen(reason));
	if (n < 0) /* config_load refuses such codes; be safe anyway */
		n = ws_close_payload(payload, WS_CLOSE_INTERNAL_ERROR, reason,
				     strlen(reason));
	s->close_sent = 1;
	s->code_sent = code;
	metrics_close_code(&s->srv->metrics, code, 1);
	if (s->code_logged == 0)
		s->code_logged = code;
	tmp = evbuffer_new();
	if (tmp != NULL) {
		evbuffer_add(tmp, payload, (size_t)n);
		session_client_frame(s, true, WS_OP_CLOSE, tmp, (size_t)n);
		evbuffer_free(tmp);
	}
	if (s->up != NULL && s->up_state == UP_OPEN)
		bufferevent_disable(s->up, EV_READ);
	session_timer_stop(s->idle_timer);
	session_arm_close(s);
	session_client_flush(s);
	/* Keep reading: the client's Close must still be seen. */
	if (s->client_paused && s->client != NULL) {
		s->client_paused = 0;
		bufferevent_enable(s->client, EV_READ);
		/* Input held while paused is seen on a fresh pass. */
		bufferevent_trigger(s->client, EV_READ,
				    BEV_TRIG_DEFER_CALLBACKS);
	}
}

/* Fail the WebSocket connection (RFC 6455 7.1.7): Close with CODE, stop
   processing client data, close TCP once the Close is out. */
static void
session_fail(struct session *s, const char *who, unsigned code,
	     const char *reason)
{
	log_info("%s: closing with %u: %s", s->peer, code, reason);
	session_set_reason(s, who, reason);
	s->fail_fast = 1;
	session_up_close(s, UP_CLOSE_FLUSH);
	session_send_close(s, code, reason);
}

/* Close the upstream as MODE says. */
static void
session_up_close(struct session *s, enum up_close_mode mode)
{
	if (s->conn != NULL) {
		upstream_conn_free(s->conn);
		s->conn = NULL;
	}
	session_timer_stop(s->connect_timer);
	if (s->up == NULL) {
		s->up_state = UP_GONE;
		session_maybe_done(s);
		return;
	}
	if (mode == UP_CLOSE_FLUSH && s->up_state == UP_FLUSHING)
		return;
	if (mode == UP_CLOSE_FLUSH && s->up_state == UP_OPEN &&
	    evbuffer_get_length(bufferevent_get_output(s->up)) > 0) {
		/* Data the client sent before closing still goes out, within
		   the close timeout. */
		s->up_state = UP_FLUSHING;
		bufferevent_disable(s->up, EV_READ);
		bufferevent_setwatermark(s->up, EV_WRITE, 0, 0);
		if (!s->close_armed)
			session_arm_close(s);
		return;
	}
	if (mode == UP_CLOSE_RESET && bufferevent_getfd(s->up) >= 0) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		(void)setsockopt(bufferevent_getfd(s->up), SOL_SOCKET,
				 SO_LINGER, &lg, sizeof(lg));
	}
	session_up_free(s, mode != UP_CLOSE_RESET);
}

/* Free the upstream bufferevent (after close_notify if NOTIFY and its TLS
   is healthy and idle). */
static void
session_up_free(struct session *s, bool notify)
{
	if (notify && s->up_tls && !s->up_tls_dead && s->up_state != UP_CONNECTING &&
	    evbuffer_get_length(bufferevent_get_output(s->up)) == 0)
		tls_close_notify(bufferevent_openssl_get_ssl(s->up));
	bufferevent_free(s->up);
	s->up = NULL;
	s->up_state = UP_GONE;
	session_maybe_done(s);
}

/* True for a bufferevent straight on a socket (not TLS, not a filter):
   the only kind the data path may read or write behind libevent's back. */
static bool
session_is_plain_socket(struct bufferevent *bev)
{
	return bufferevent_getfd(bev) >= 0 &&
	       bufferevent_get_underlying(bev) == NULL &&
	       bufferevent_openssl_get_ssl(bev) == NULL;
}

/* Write the N pieces at IOV to BEV's socket at once.  send/sendmsg, not
   writev: the socket calls skip the VFS layer and its file-position lock
   (fdget_pos), a few per cent of a small echo's CPU in perf. */
static ssize_t
session_sendv(struct bufferevent *bev, struct iovec *iov, int n)
{
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};

	if (n == 1)
		return send(bufferevent_getfd(bev), iov[0].iov_base,
			    iov[0].iov_len, MSG_NOSIGNAL);
	return sendmsg(bufferevent_getfd(bev), &mh, MSG_NOSIGNAL);
}

/*
 * Write HDR (HLEN bytes, may be 0) and the first N bytes of SRC straight to
 * BEV's socket when nothing is queued in BEV's output, in one send.
 * Queuing instead costs two epoll_ctl calls (EPOLLOUT on, then off) and a
 * loop pass per message, which is most of a small echo's cost.  Drains
 * what was written of SRC; returns the bytes written in all (0 on EAGAIN
 * or an error: libevent's own write reports errors).
 */
static size_t
session_write_now(struct bufferevent *bev, const uint8_t *hdr, size_t hlen,
		  struct evbuffer *src, size_t n)
{
	struct evbuffer_iovec v[DIRECT_IOV];
	struct iovec iov[DIRECT_IOV + 1];
	int k = 0, nv = 0;
	size_t left = n;
	ssize_t w;

	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0 ||
	    !session_is_plain_socket(bev))
		return 0;
	if (hlen > 0) {
		iov[k].iov_base = (void *)hdr;
		iov[k++].iov_len = hlen;
	}
	if (n > 0)
		nv = evbuffer_peek(src, (ev_ssize_t)n, NULL, v, DIRECT_IOV);
	for (int i = 0; i < nv && i < DIRECT_IOV && left > 0; i++) {
		size_t l = v[i].iov_len < left ? v[i].iov_len : left;
		iov[k].iov_base = v[i].iov_base;
		iov[k++].iov_len = l;
		left -= l;
	}
	if (k == 0)
		return 0;
	w = session_sendv(bev, iov, k);
	if (w <= 0)
		return 0;
	if ((size_t)w > hlen)
		evbuffer_drain(src, (size_t)w - hlen);
	return (size_t)w;
}

/*
 * OpenSSL bufferevents (libevent 2.1 bufferevent_openssl.c) hand over one
 * TLS record per readable event: a 16 KiB record costs a wakeup, a read
 * callback and a write toward the other side.  Go on reading records into
 * the input's free space (reserve and commit: no copy) while OpenSSL has
 * them, up to BEV's max_single_read in all.  What we leave unread stays in
 * the socket and wakes the loop again, or, on the client side, whose SSL
 * reads ahead, in OpenSSL, for which session_client_tls_kick wakes it.  A record
 * that ends the stream or fails stops the loop without being reported
 * here: the same SSL_read from libevent reports it again (the SSL object
 * keeps its shutdown or error state) when the socket is readable, and a
 * closed or failed TLS peer leaves the socket readable (EOF).  BEV is an
 * OpenSSL bufferevent over a socket (client_tls, up_tls).  Returns true
 * when it stopped at max_single_read: records may be waiting (MORE for
 * the next call on this side).
 */
static bool
session_read_tls_records(struct bufferevent *bev, bool more)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t have = evbuffer_get_length(in), want;
	ev_ssize_t max = bufferevent_get_max_single_read(bev);
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	struct evbuffer_iovec v;

	/* Less than a whole record came: the peer writes small messages, and
	   another read would most likely cost a failing read(2) -- unless
	   the last call stopped at max (MORE): then this is the short last
	   record of a big message (a 64 KiB message is four full records and
	   a few bytes), and the stream goes on behind it.  Stopping there
	   cost a loop pass for those few bytes after every full read.  Nor
	   when OpenSSL already holds more (read-ahead, client side). */
	if (ssl == NULL || max <= 0)
		return false;
	if (have >= (size_t)max)
		return true;
	if (have < SSL3_RT_MAX_PLAIN_LENGTH && !more && !SSL_has_pending(ssl))
		return false;
	want = (size_t)max - have;
	while (want > 0) {
		size_t got = 0;
		int r = 0;

		if (evbuffer_reserve_space(in, (ev_ssize_t)want, &v, 1) < 1)
			break;
		if (v.iov_len > want)
			v.iov_len = want;
		while (got < v.iov_len) {
			size_t ask = v.iov_len - got;
			ERR_clear_error();
			r = SSL_read(ssl, (char *)v.iov_base + got,
				     ask > INT_MAX ? INT_MAX : (int)ask);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got > 0) {
			v.iov_len = got;
			evbuffer_commit_space(in, &v, 1);
			want -= got;
		}
		if (r <= 0) {
			/* WANT_READ: the socket is drained.  Anything else is
			   left for libevent's own read to report. */
			ERR_clear_error();
			return false;
		}
	}
	return want == 0;
}

/*
 * Plain sockets are read here, not by libevent.  libevent 2.1's socket
 * bufferevent (bufferevent_sock.c, buffer.c evbuffer_read) asks the kernel
 * how much is readable (ioctl FIONREAD) before every read, and reads at
 * most 4096 bytes per wakeup (EVBUFFER_MAX_READ): a third of the syscalls
 * of a small echo, and a wakeup per 4 KiB of a bulk transfer.  The
 * bufferevent's read event (ev_read, public in event2/bufferevent_struct.h)
 * is re-assigned to call session_sock_read_cb; bufferevent_enable and
 * bufferevent_disable still add and delete that same event, so pausing
 * and resuming work as before, and the bufferevent still owns the socket.
 *
 * The read size adapts without asking the kernel: it starts at 4 KiB,
 * doubles while reads come back full, up to max_single_read, and halves
 * when a read fills less than a quarter.  Data goes into the input
 * buffer's own free space (reserve and commit: no copy).
 */
#if LIBEVENT_VERSION_NUMBER < 0x02010000 || LIBEVENT_VERSION_NUMBER >= 0x02020000
#error "session.c reads behind libevent 2.1's socket bufferevent: check bufferevent_sock.c of this libevent before building with it"
#endif
#define READ_SHIFT_MIN 12 /* 4 KiB */

enum sock_read { SOCK_READ_DATA, SOCK_READ_AGAIN, SOCK_READ_EOF, SOCK_READ_ERROR };

static enum sock_read
session_sock_read(struct bufferevent *bev, uint8_t *shift)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	ev_ssize_t max = bufferevent_get_max_single_read(bev);
	size_t want, asked = 0, left;
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	ssize_t r;
	int n, err;

	if (*shift < READ_SHIFT_MIN)
		*shift = READ_SHIFT_MIN;
	want = (size_t)1 << *shift;
	if (max > 0 && want > (size_t)max)
		want = (size_t)max;
	/* The socket bufferevent keeps its input's end frozen between its
	   own reads; thaw it for ours. */
	evbuffer_unfreeze(in, 0);
	n = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
	if (n <= 0) {
		evbuffer_freeze(in, 0);
		errno = ENOMEM;
		return SOCK_READ_ERROR;
	}
	for (int i = 0; i < n; i++) {
		/* The reservation may be larger than asked: read no more. */
		if (v[i].iov_len > want - asked)
			v[i].iov_len = want - asked;
		asked += v[i].iov_len;
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	if (n == 1) { /* recv, not readv: see session_write_now */
		r = recv(bufferevent_getfd(bev), iov[0].iov_base,
			 iov[0].iov_len, 0);
	} else {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		r = recvmsg(bufferevent_getfd(bev), &mh, 0);
	}
	err = errno;
	if (r > 0) {
		left = (size_t)r;
		for (int i = 0; i < n; i++) {
			if (left < v[i].iov_len)
				v[i].iov_len = left;
			left -= v[i].iov_len;
		}
		evbuffer_commit_space(in, v, n);
	}
	/* else nothing is committed: the reservation lapses */
	evbuffer_freeze(in, 0);
	if (r > 0) {
		if ((size_t)r == asked && max > 0 &&
		    ((size_t)1 << *shift) < (size_t)max)
			(*shift)++;
		else if ((size_t)r < asked / 4 && *shift > READ_SHIFT_MIN)
			(*shift)--;
		return SOCK_READ_DATA;
	}
	if (r == 0)
		return SOCK_READ_EOF;
	errno = err;
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR
		       ? SOCK_READ_AGAIN
		       : SOCK_READ_ERROR;
}

/* A read of BEV (S's client or upstream) met EOF (or an error, in errno):
   tell EVENT_CB as libevent's own read would (reading disabled, then the
   event with errno intact). */
static void
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
static void
session_sock_read_run(struct session *s, struct bufferevent *bev,
		      uint8_t *shift, bufferevent_data_cb read_cb,
		      bufferevent_event_cb event_cb)
{
	enum sock_read r;

	/* The callbacks may free BEV: keep it until they return. */
	bufferevent_incref(bev);
	r = session_sock_read(bev, shift);
	switch (r) {
	case SOCK_READ_DATA:
		read_cb(bev, s);
		break;
	case SOCK_READ_AGAIN:
		break;
	case SOCK_READ_EOF:
	case SOCK_READ_ERROR:
		session_sock_ended(s, bev, r == SOCK_READ_EOF, event_cb);
		break;
	}
	bufferevent_decref(bev);
}

/* BEV's read event (ARG is BEV: libevent's finalizer for the bufferevent
   takes its events' argument to be the bufferevent). */
static void
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

/* From now on S reads BEV, a connected plain socket bufferevent, itself
   (see above). */
static void
session_sock_take(struct bufferevent *bev)
{
	bool reading = (bufferevent_get_enabled(bev) & EV_READ) != 0;

	event_del(&bev->ev_read);
	event_assign(&bev->ev_read, bufferevent_get_base(bev),
		     bufferevent_getfd(bev), EV_READ | EV_PERSIST,
		     session_sock_cb, bev);
	if (reading)
		event_add(&bev->ev_read, NULL);
}

/*
 * The client's SSL reads ahead (tls.c): OpenSSL may hold records it took
 * from the socket and has not yet decrypted, and the socket, drained, will
 * not wake the loop for them.  Wherever the session stops consuming or
 * starts reading again while reading is on, libevent's read callback is
 * made to run once more if OpenSSL holds anything.  No loop: libevent
 * calls back only when a read brought data, and a partial record left
 * behind waits for its rest from the socket, which is readable then.
 */
static void
session_client_tls_kick(struct session *s)
{
	SSL *ssl;

	if (s->client == NULL || !s->client_tls || s->client_tls_dead ||
	    s->client_paused ||
	    !(bufferevent_get_enabled(s->client) & EV_READ))
		return;
	ssl = bufferevent_openssl_get_ssl(s->client);
	if (ssl != NULL && SSL_has_pending(ssl))
		event_active(&s->client->ev_read, EV_READ, 1);
}

/*
 * While the client is not read, its FIN or RST waits unseen behind the
 * bytes we do not read.  So the socket's TCP state is looked at every
 * SESSION_WATCH_MS: a reset ends the session as a reset seen by a read
 * would; a FIN gives what it sent close_timeout to go on to the upstream
 * (it may be a slow reader, not a dead one), then the session ends.
 * TCP_INFO rather than EV_CLOSED: libevent's epoll backend reports an RST
 * (EPOLLERR) as EV_READ|EV_WRITE only, which an EV_CLOSED event never
 * sees, and epoll would report it again on every pass.
 */
#define SESSION_WATCH_MS 1000

static void
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

/* Stop reading the client until the queue toward the upstream drains. */
static void
session_pause_client(struct session *s)
{
	if (!s->client_paused && s->client != NULL) {
		s->client_paused = 1;
		bufferevent_disable(s->client, EV_READ);
		if (s->watch == NULL)
			s->watch = evtimer_new(s->srv->base, session_watch_cb,
					       s);
		if (s->watch != NULL && !s->client_fin)
			session_arm(s->watch, SESSION_WATCH_MS);
	}
}

/* Resume reading the client and process what it already sent. */
static void
session_resume_client(struct session *s)
{
	if (s->client_paused && s->client != NULL &&
	    s->state == SESSION_OPEN) {
		s->client_paused = 0;
		session_timer_stop(s->watch);
		bufferevent_enable(s->client, EV_READ);
		session_frames(s);
		session_client_tls_kick(s);
	}
}

/* True if the queue toward the client's payload destination has room. */
static bool
session_can_forward(const struct session *s)
{
	size_t limit = s->cfg->limits.buffer_limit;

	if (s->close_sent)
		return true; /* payload is discarded (RFC 6455 1.4) */
	if (s->pong_paused)
		return false; /* our Pongs wait for the client to read */
	if (s->is_echo)
		return session_client_queued(s) < limit;
	if (s->up == NULL ||
	    (s->up_state != UP_CONNECTING && s->up_state != UP_OPEN))
		return true; /* payload is discarded */
	return evbuffer_get_length(bufferevent_get_output(s->up)) < limit;
}

/* Answer a Ping, note a Pong, handle a Close. */
static void
session_control(struct session *s, const struct ws_event *ev)
{
	uint8_t frame[WS_MAX_HEADER + WS_MAX_CONTROL_PAYLOAD];
	size_t hlen;

	switch (ev->opcode) {
	case WS_OP_PING:
		if (s->close_sent)
			break;
		/* RFC 6455 5.5.3: same payload; ahead of queued data. */
		hlen = ws_frame_header(frame, true, WS_OP_PONG, ev->len, NULL);
		if (ev->len > 0)
			memcpy(frame + hlen, ev->data, ev->len);
		session_client_write_now(s, frame, hlen + ev->len);
		/* Pongs count toward the queue toward the client: a client
		   that pings and never reads stops being read once it is full,
		   until it drains below half (session_client_write_cb). */
		if (session_client_queued(s) >= s->cfg->limits.buffer_limit)
			s->pong_paused = 1;
		break;
	case WS_OP_PONG:
		break; /* any traffic counts: last_rx is already updated */
	case WS_OP_CLOSE:
		s->close_rcvd = 1;
		s->code_rcvd = ev->close_code;
		metrics_close_code(&s->srv->metrics, ev->close_code, 0);
		if (s->code_logged == 0)
			s->code_logged = ev->close_code;
		session_set_reason(s, "client", "client closed");
		/* RFC 6455 5.5.1: echo the status code; 1005 means none. */
		if (!s->close_sent) {
			unsigned code = ev->close_code;
			if (code == WS_CLOSE_NO_STATUS ||
			    !ws_close_code_is_valid(code))
				code = WS_CLOSE_NORMAL;
			session_send_close(s, code, "");
		}
		/* What the client sent before its Close is flushed first. */
		session_up_close(s, UP_CLOSE_FLUSH);
		/* Our Close may already be out: then close TCP now. */
		if (s->client != NULL && session_client_queued(s) == 0)
			session_linger(s);
		break;
	default:
		break;
	}
}

/* Count one chunk of message payload from the client. */
static void
session_data_count(struct session *s, const struct ws_event *ev)
{
	if (ev->len > 0) {
		s->bytes_in += ev->len;
		metrics_add(&s->rm->bytes_in, ev->len);
		s->last_data = s->last_rx;
	}
	if (ev->message_end) {
		s->msgs_in++;
		metrics_add(&s->rm->msgs_in, 1);
	}
}

/* Deliver one chunk of message payload that sits at the front of IN. */
static void
session_data(struct session *s, struct evbuffer *in, const struct ws_event *ev)
{
	session_data_count(s, ev);
	if (s->close_sent) {
		evbuffer_drain(in, ev->len); /* RFC 6455 1.4: no more data */
		return;
	}
	if (s->is_echo) {
		/* Echo: same opcode and message boundaries (frames may be
		   cut differently: one frame per chunk). */
		if (ev->len == 0 && !ev->message_start && !ev->message_end)
			return;
		if (ev->message_end) {
			s->msgs_out++;
			metrics_add(&s->rm->msgs_out, 1);
		}
		s->bytes_out += ev->len;
		metrics_add(&s->rm->bytes_out, ev->len);
		/* Cut at max_frame, as upstream data is (wsgate.ini(5)). */
		size_t left = ev->len, max = s->cfg->limits.max_frame;
		unsigned op = ev->message_start ? ev->opcode : WS_OP_CONT;
		do {
			size_t n = left < max ? left : max;
			left -= n;
			session_client_frame(s, ev->message_end && left == 0,
					     op, in, n);
			op = WS_OP_CONT;
		} while (left > 0);
		session_client_flush(s);
		return;
	}
	/* What could go straight to the upstream went in a batch
	   (session_frames): this waits behind queued output, or a connect,
	   or goes through TLS. */
	if (s->up != NULL && (s->up_state == UP_CONNECTING ||
			      s->up_state == UP_OPEN))
		evbuffer_remove_buffer(in, bufferevent_get_output(s->up),
				       ev->len);
	else
		evbuffer_drain(in, ev->len);
}

/*
 * Payload bound for a plain upstream socket is gathered over all the frames
 * of one read and sent in one sendmsg, skipping the frame headers between
 * the chunks, where it sits in the client's input (unmasked in place).  One
 * send per frame chunk cost, for 64 KiB messages read 256 KiB at a time,
 * about two sends per read and a wakeup of the upstream for each.  Nothing
 * is drained from the input until the batch goes out: the chunks' memory
 * stays put, and the decoder goes on at batch.span.
 */
struct up_batch {
	struct iovec iov[DIRECT_IOV];
	size_t at[DIRECT_IOV]; /* where iov[i] starts in the input */
	int n;
	size_t span;           /* input bytes decoded in all */
};

/* True if the chunk EV may go to S's upstream in a batch. */
static bool
session_batchable(const struct session *s, const struct ws_event *ev)
{
	return ev->len > 0 && !s->close_sent &&
	       !s->is_echo && s->up != NULL && s->up_state == UP_OPEN &&
	       session_is_plain_socket(s->up) &&
	       evbuffer_get_length(bufferevent_get_output(s->up)) == 0;
}

/* Send batch B to S's upstream, drain what it covers from IN, and move the
   payload the socket did not take to the upstream's output (libevent
   writes it, and reports a failed send, when the socket is writable). */
static void
session_batch_flush(struct session *s, struct evbuffer *in,
		    struct up_batch *b)
{
	size_t sent = 0, done = 0;

	if (b->n > 0) {
		ssize_t w = session_sendv(s->up, b->iov, b->n);
		sent = w > 0 ? (size_t)w : 0;
	}
	for (int i = 0; i < b->n; i++) {
		size_t len = b->iov[i].iov_len;
		size_t now = sent < len ? sent : len;

		evbuffer_drain(in, b->at[i] - done); /* headers */
		evbuffer_drain(in, now);
		sent -= now;
		if (len > now)
			evbuffer_remove_buffer(in, bufferevent_get_output(s->up),
					       len - now);
		done = b->at[i] + len;
	}
	evbuffer_drain(in, b->span - done);
	b->n = 0;
	b->span = 0;
}

/* Decode the frames in the client's input, in place, and act on them. */
static void
session_frames(struct session *s)
{
	struct up_batch b = {.n = 0};
	struct evbuffer *in;

	while (s->client != NULL && s->state == SESSION_OPEN &&
	       !s->fail_fast) {
		struct evbuffer_iovec v;
		struct evbuffer_ptr at;
		struct ws_event ev;
		ssize_t r;
		size_t pre;

		in = bufferevent_get_input(s->client);
		if (s->close_rcvd) {
			/* RFC 6455 5.5.1: nothing follows a Close. */
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		}
		if (!session_can_forward(s)) {
			session_batch_flush(s, in, &b);
			session_pause_client(s);
			return;
		}
		if (b.span == 0) {
			if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
				break;
		} else if (b.span >= evbuffer_get_length(in) ||
			   evbuffer_ptr_set(in, &at, b.span,
					    EVBUFFER_PTR_SET) < 0 ||
			   evbuffer_peek(in, -1, &at, &v, 1) < 1) {
			break;
		}
		if (v.iov_len == 0)
			break;
		r = ws_decoder_feed(&s->dec, v.iov_base, v.iov_len, &ev);
		if (r == 0 && ev.type == WS_EV_NONE)
			break; /* cannot happen with input; never spin */
		if (r >= 0 && ev.type == WS_EV_DATA && b.n == DIRECT_IOV)
			session_batch_flush(s, in, &b); /* full: out it goes */
		if (r >= 0 && ev.type == WS_EV_DATA &&
		    session_batchable(s, &ev)) {
			pre = (size_t)(ev.data - (const uint8_t *)v.iov_base);
			session_data_count(s, &ev);
			b.iov[b.n].iov_base = (void *)ev.data;
			b.iov[b.n].iov_len = ev.len;
			b.at[b.n++] = b.span + pre;
			b.span += (size_t)r;
			continue;
		}
		if (r >= 0 && ev.type == WS_EV_NONE && b.n > 0) {
			b.span += (size_t)r; /* part of a header: skipped */
			continue;
		}
		/* Anything else acts in order, from the front of IN: what is
		   batched goes first. */
		session_batch_flush(s, in, &b);
		if (r < 0) {
			session_fail(s, "client", ev.error_code, ev.error);
			return;
		}
		switch (ev.type) {
		case WS_EV_DATA:
			pre = (size_t)(ev.data - (const uint8_t *)v.iov_base);
			evbuffer_drain(in, pre);
			session_data(s, in, &ev);
			evbuffer_drain(in, (size_t)r - pre - ev.len);
			break;
		case WS_EV_CONTROL:
			evbuffer_drain(in, (size_t)r);
			session_control(s, &ev);
			break;
		default:
			evbuffer_drain(in, (size_t)r);
			break;
		}
	}
	if (b.span > 0)
		session_batch_flush(s, bufferevent_get_input(s->client), &b);
}

/* Pick the first subprotocol the client offers that the route accepts. */
static const char *
session_pick_protocol(const struct session *s)
{
	size_t cursor = 0;
	struct http_str tok;

	while (http_upgrade_next_token(s->http, "Sec-WebSocket-Protocol",
				       &cursor, &tok)) {
		for (size_t i = 0; i < s->route->n_subprotocols; i++) {
			const char *p = s->route->subprotocols[i];
			if (strlen(p) == tok.len &&
			    memcmp(p, tok.p, tok.len) == 0)
				return p;
		}
	}
	return NULL;
}

/* stall_timeout on BEV: libevent's write timeout fires when data waits in
   its output and the socket takes none of it for that long (each write
   that moves a byte starts it again). */
static void
session_set_stall_timeout(struct session *s, struct bufferevent *bev)
{
	struct timeval tv = session_tv(s->cfg->limits.stall_timeout_ms);

	if (s->cfg->limits.stall_timeout_ms > 0)
		bufferevent_set_timeouts(bev, NULL, &tv);
}

/* The client took no byte of what is queued toward it for stall_timeout:
   drop the queue, Close 1011 behind what is already in its output (it has
   close_timeout to take it), close the upstream. */
static void
session_client_stalled(struct session *s)
{
	log_info("%s: client stalled: %zu bytes queued toward it, none taken "
		 "for %" PRIu64 " ms", s->peer, session_client_queued(s),
		 s->cfg->limits.stall_timeout_ms);
	session_set_reason(s, "gateway", "client stalled");
	if (s->state != SESSION_OPEN || s->close_sent) {
		/* Not even our Close (or HTTP answer) went: give up now. */
		session_up_close(s, UP_CLOSE_NOW);
		session_client_drop(s, false);
		return;
	}
	metrics_add(&s->rm->stalls_client, 1);
	if (s->to_client != NULL) /* whole frames only: nothing is cut */
		evbuffer_drain(s->to_client, evbuffer_get_length(s->to_client));
	s->fail_fast = 1;
	session_up_close(s, UP_CLOSE_NOW);
	session_send_close(s, WS_CLOSE_INTERNAL_ERROR, "client stalled");
	/* The timeout switched writing off; the Close may still go. */
	if (s->client != NULL)
		bufferevent_enable(s->client, EV_WRITE);
}

/* The upstream took no byte of what is queued toward it for
   stall_timeout: reset it, Close 1011 to the client. */
static void
session_up_stalled(struct session *s)
{
	log_info("%s: upstream %s stalled: %zu bytes queued toward it, none "
		 "taken for %" PRIu64 " ms", s->peer,
		 s->target != NULL ? s->target : s->route->upstream,
		 evbuffer_get_length(bufferevent_get_output(s->up)),
		 s->cfg->limits.stall_timeout_ms);
	metrics_add(&s->rm->stalls_upstream, 1);
	session_set_reason(s, "gateway", "upstream stalled");
	session_up_close(s, UP_CLOSE_RESET);
	session_send_close(s, WS_CLOSE_INTERNAL_ERROR, "upstream stalled");
}

/* The upstream could not be reached: Close with the route's code. */
static void
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
static void
session_up_failed_cb(enum upstream_failure f, int err, void *arg)
{
	session_up_failed(arg, f, err);
}

/* Connect timeout. */
static void
session_connect_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_up_failed(arg, UPSTREAM_TIMEOUT, 0);
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
			session_set_reason(s, "gateway", "pong timeout");
			s->code_logged = WS_CLOSE_ABNORMAL;
			session_up_close(s, UP_CLOSE_NOW);
			session_client_drop(s, false);
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
static void
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
	session_set_reason(s, "gateway", "idle timeout");
	session_up_close(s, UP_CLOSE_FLUSH);
	session_send_close(s, WS_CLOSE_NORMAL, "idle timeout");
}

/* Format the real client (and the peer, if another) for the logs. */
static void
session_set_client(struct session *s)
{
	netaddr_format((struct sockaddr *)&s->addrs->client, s->peer,
		       sizeof(s->peer));
	free(s->via);
	s->via = NULL;
	if (memcmp(&s->addrs->client, &s->addrs->peer,
		   sizeof(s->addrs->peer)) != 0) {
		char via[NETADDR_STRLEN];
		netaddr_format((struct sockaddr *)&s->addrs->peer, via,
			       sizeof(via));
		s->via = strdup(via); /* NULL: the log leaves it out */
	}
}

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

/* The route's client-certificate requirement (client_subject,
   client_fingerprint): NULL if met or absent, else why not. */
static const char *
session_client_cert_refusal(const struct session *s)
{
	const struct config_route *r = s->route;
	unsigned char fp[32];
	SSL *ssl;

	if (r->client_subject.value == NULL && r->n_client_fingerprints == 0)
		return NULL;
	ssl = s->client_tls ? bufferevent_openssl_get_ssl(s->client) : NULL;
	if (ssl == NULL || s->tls_subject == NULL)
		return "client certificate required";
	if (r->client_subject.value != NULL &&
	    strcmp(r->client_subject.value, s->tls_subject) == 0)
		return NULL;
	if (r->n_client_fingerprints > 0 && tls_peer_fingerprint(ssl, fp))
		for (size_t i = 0; i < r->n_client_fingerprints; i++)
			if (CRYPTO_memcmp(fp, r->client_fingerprints[i],
					  sizeof(fp)) == 0)
				return NULL;
	return "client certificate not allowed on this route";
}

/* Per-IP limits, then Origin, token and target (access_check.c); false
   if the request was refused. */
static bool
session_admit(struct session *s, struct access_verdict *v)
{
	const char *why;

	if (log_enabled(LOG_DEBUG)) {
		char t[256];
		access_check_log_target(s->route, s->http, t, sizeof(t));
		log_debug("%s: GET %s", s->peer, t);
	}
	why = session_client_cert_refusal(s);
	if (why != NULL) {
		log_info("%s: %s: refused: %s", s->peer, s->route->path, why);
		session_reject(s, 403, why);
		return false;
	}
	if (s->srv->ip_limit != NULL) {
		enum ip_limit_verdict iv = ip_limit_acquire(
			s->srv->ip_limit, (struct sockaddr *)&s->addrs->client,
			session_monotonic_ms());
		if (iv != IP_LIMIT_OK) {
			log_info("%s: %s", s->peer, ip_limit_verdict_text(iv));
			/* RFC 6585 4: a rate is 429; a count is 503 like
			   max_connections */
			session_reject(s, iv == IP_LIMIT_RATE ? 429 : 503,
				       ip_limit_verdict_text(iv));
			return false;
		}
		s->ip_counted = 1;
		/* ip_limit_release needs it after the upgrade (IP only: a
		   limit never counts another family) */
		memcpy(&s->ip, &s->addrs->client, sizeof(s->ip));
	}
	access_check_request(s->srv, s->route, s->http, v);
	if (v->status != 0) {
		log_info("%s: %s: refused: %s", s->peer, s->route->path,
			 v->reason);
		session_reject(s, v->status, v->reason);
		return false;
	}
	if (v->has_target) {
		char t[sizeof(v->host) + 10];
		snprintf(t, sizeof(t), strchr(v->host, ':') ? "[%s]:%u" : "%s:%u",
			 v->host, (unsigned)v->port);
		s->target = strdup(t);
		if (s->target == NULL) {
			session_reject(s, 500, "out of memory");
			return false;
		}
	}
	return true;
}

/* The request head is complete: route it and upgrade, or answer it. */
static void
session_handshake_done(struct session *s)
{
	struct access_verdict verdict; /* this request's; its target is
					  copied where it must last */
	const struct config *cfg;
	struct http_str path = http_upgrade_path(s->http);
	struct http_str key = http_upgrade_key(s->http);
	char accept[HTTP_ACCEPT_KEY_LEN + 1];
	char buf[512];
	const char *proto;
	int n;

	if (s->srv->draining) {
		session_reject(s, 503, "gateway is shutting down");
		return;
	}
	if (s->over_limit) {
		session_reject(s, 503, "too many connections");
		return;
	}
	/* Not upgraded yet, so still a new connection: a config reloaded
	   since the accept applies (and the route's token files, indexed by
	   the worker's current config, line up with it). */
	if (s->cfg != s->srv->cfg) {
		struct config *old = s->cfg;
		s->cfg = config_ref(s->srv->cfg);
		config_unref(old);
	}
	cfg = s->cfg;
	if (access_check_client(cfg, s->http, &s->addrs->client))
		session_set_client(s);
	s->route = config_find_route(cfg, path.p, path.len);
	if (s->route == NULL) {
		session_reject(s, 404, "no route for this path");
		return;
	}
	s->rm = metrics_route(&s->srv->metrics, s->route->path);
	if (s->rm == NULL) {
		session_reject(s, 500, "out of memory");
		return;
	}
	if (!http_upgrade_is_websocket(s->http)) {
		session_reject(s, 426, "this path is a WebSocket endpoint");
		return;
	}
	if (!session_admit(s, &verdict))
		return;
	proto = session_pick_protocol(s);
	if (http_accept_key(key.p, key.len, accept) < 0 ||
	    (n = http_response_upgrade(buf, sizeof(buf), accept, proto)) < 0) {
		session_reject(s, 500, "internal error");
		return;
	}
	session_client_write_now(s, buf, (size_t)n);
	http_upgrade_free(s->http);
	s->http = NULL;
	s->http_status = 101;
	s->state = SESSION_OPEN;
	session_set_stall_timeout(s, s->client);
	metrics_add(&s->rm->total, 1);
	metrics_add(&s->rm->open, 1); /* session_free takes it back */
	evtimer_del(s->timer);

	struct ws_decoder_config dc = {
		.max_message = 0,
		.require_mask = true,
		.allow_rsv1 = false,
		.validate_utf8 = true,
	};
	s->is_echo = s->route->kind == UPSTREAM_ECHO;
	if (s->is_echo) {
		dc.max_message = cfg->limits.max_message;
	}
	ws_decoder_init(&s->dec, &dc);
	s->last_rx = s->last_data = session_now(s);
	if (cfg->limits.ping_interval_ms > 0)
		session_arm(s->timer, cfg->limits.ping_interval_ms);
	if (cfg->limits.idle_timeout_ms > 0) {
		s->idle_timer = evtimer_new(s->srv->base, session_idle_cb, s);
		if (s->idle_timer == NULL) {
			session_fail(s, "gateway", WS_CLOSE_INTERNAL_ERROR,
				     "out of memory");
			return;
		}
		session_arm(s->idle_timer, cfg->limits.idle_timeout_ms);
	}

	if (verdict.close_1008) {
		/* auth_failure = close: the page sees why (RFC 6455 7.4.1) */
		log_info("%s: %s: refused after the upgrade: %s", s->peer,
			 s->route->path, verdict.reason);
		session_fail(s, "gateway", WS_CLOSE_POLICY, verdict.reason);
		return;
	}
	if (!s->is_echo) {
		s->up = bufferevent_socket_new(s->srv->base, -1,
					       BEV_OPT_CLOSE_ON_FREE);
		if (s->up == NULL) {
			session_up_failed(s, UPSTREAM_UNREACHABLE, ENOMEM);
			return;
		}
		bufferevent_setcb(s->up, session_up_read_cb, session_up_write_cb,
				  session_up_event_cb, s);
		bufferevent_set_max_single_read(s->up, MAX_SINGLE_READ);
		if (s->route->send_proxy != SEND_PROXY_OFF)
			session_send_proxy_header(s);
		bufferevent_set_max_single_write(s->up, MAX_SINGLE_WRITE);
		s->up_state = UP_CONNECTING;
		s->connect_start = session_wall_us();
		s->connect_timer = evtimer_new(s->srv->base,
					       session_connect_timer_cb, s);
		if (s->connect_timer == NULL) {
			session_up_failed(s, UPSTREAM_UNREACHABLE, ENOMEM);
			return;
		}
		session_arm(s->connect_timer, s->route->connect_timeout_ms);
		if (verdict.has_target) {
			struct upstream_target t = {
				.host = verdict.host,
				.port = verdict.port,
				.allow = s->route->target_allow,
				.n_allow = s->route->n_target_allow,
			};
			s->conn = upstream_connect_to(s->srv->base,
						      s->srv->dns, &t, s->up,
						      session_up_failed_cb, s);
		} else {
			s->conn = upstream_connect(s->srv->base, s->srv->dns,
						   s->route, s->up,
						   session_up_failed_cb, s);
		}
		if (s->conn == NULL) {
			session_up_failed(s, UPSTREAM_UNREACHABLE, ENOMEM);
			return;
		}
	}
	free(s->addrs); /* the PROXY header, if any, is queued */
	s->addrs = NULL;
	/* Frames the client sent right behind its request. */
	session_frames(s);
}

/* Read the PROXY header (spec 2): 1 done, 0 need more, -1 dropped. */
static int
session_proxy_header(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->client);

	for (;;) {
		struct evbuffer_iovec v;
		enum proxy_proto_status st;
		size_t used = 0;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return 0;
		st = proxy_proto_feed(s->pp, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		if (st == PROXY_PROTO_ERROR) {
			log_warn("%s: %s: closed", s->peer,
				 proxy_proto_error_text(proxy_proto_error(s->pp)));
			session_set_reason(s, "gateway", "bad PROXY header");
			session_client_drop(s, false);
			return -1;
		}
		if (st == PROXY_PROTO_DONE) {
			const struct proxy_proto_result *r =
				proxy_proto_result(s->pp);
			if (r->has_addr && !r->local) {
				s->addrs->client = r->src;
				s->addrs->local = r->dst;
				netaddr_unmap(&s->addrs->client);
				netaddr_unmap(&s->addrs->local);
				session_set_client(s);
			}
			log_debug("%s: PROXY v%d header%s", s->peer, r->version,
				  r->local ? " (LOCAL)" : "");
			free(s->pp);
			s->pp = NULL;
			return 1;
		}
	}
}

/* Feed the request head to the parser. */
static void
session_handshake(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->client);

	if (s->pp != NULL && session_proxy_header(s) <= 0)
		return;
	for (;;) {
		struct evbuffer_iovec v;
		enum http_upgrade_status st;
		size_t used = 0;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return;
		st = http_upgrade_feed(s->http, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		if (st == HTTP_UPGRADE_DONE) {
			session_handshake_done(s);
			return;
		}
		if (st == HTTP_UPGRADE_ERROR) {
			enum http_upgrade_error e = http_upgrade_error(s->http);
			session_reject(s, http_upgrade_error_status(e),
				       http_upgrade_error_text(e));
			return;
		}
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
				session_read_tls_records(bev, s->client_tls_more);
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
static void
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

/* The client's TLS handshake finished: note the version and the verified
   client certificate, if any. */
static void
session_client_tls_done(struct session *s, struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	char subject[256];

	s->client_tls_ok = 1;
	s->tls_version = SSL_get_version(ssl);
	if (tls_peer_subject(ssl, subject, sizeof(subject)) != NULL) {
		free(s->tls_subject);
		s->tls_subject = strdup(subject);
	}
	log_debug("%s: %s %s%s%s", s->peer, s->tls_version,
		  SSL_get_cipher_name(ssl),
		  s->tls_subject ? " client " : "",
		  s->tls_subject ? s->tls_subject : "");
	/* A request sent right behind the handshake may be in OpenSSL's
	   read-ahead already. */
	session_client_tls_kick(s);
}

/* The client's TLS handshake failed (or it left during it): close that
   connection; counted, and logged at info with the first reason (debug
   for the rest, and for a client that closed without a word). */
static void
session_client_tls_failed(struct session *s, struct bufferevent *bev,
			  short what, int err)
{
	char errs[512], reason[96];
	size_t first;

	tls_bev_errors(bev, errs, sizeof(errs));
	metrics_add(&s->srv->metrics.tls_handshake_failures, 1);
	if (errs[0] == '\0') {
		if ((what & BEV_EVENT_ERROR) && err != 0)
			snprintf(errs, sizeof(errs), "%s", strerror(err));
		else
			snprintf(errs, sizeof(errs), "connection closed");
		log_debug("%s: TLS handshake failed: %s", s->peer, errs);
	} else {
		first = strcspn(errs, ";");
		log_info("%s: TLS handshake failed: %.*s", s->peer, (int)first,
			 errs);
		log_debug("%s: TLS handshake errors: %s", s->peer, errs);
	}
	snprintf(reason, sizeof(reason), "TLS handshake failed: %.*s",
		 (int)strcspn(errs, ";"), errs);
	session_set_reason(s, "client", reason);
	session_client_drop(s, false);
}

/* Client EOF, error or reset. */
static void
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
	if (s->state == SESSION_HANDSHAKE)
		session_set_reason(s, "client", reset ? "client reset before upgrade"
						      : "client closed before upgrade");
	if (s->state == SESSION_OPEN && !s->close_rcvd) {
		/* Vanished without a Close: RFC 6455 7.1.5 code 1006. */
		log_debug("%s: client %s without Close", s->peer,
			  reset ? "error" : "EOF");
		if (!s->close_sent)
			s->code_logged = WS_CLOSE_ABNORMAL;
		session_set_reason(s, "client",
				   reset ? "client reset" : "client vanished");
		if (reset && err != 0) {
			char why[96];
			snprintf(why, sizeof(why), "client reset: %s",
				 strerror(err));
			session_replace_reason(s, why);
		}
		/* RST at once if the client reset; otherwise what the client
		   sent before its FIN still goes out, then FIN. */
		session_up_close(s, reset ? UP_CLOSE_RESET : UP_CLOSE_FLUSH);
	}
	session_client_drop(s, false);
}

/* N bytes from the upstream, one message, go toward the client. */
static void
session_up_count(struct session *s, size_t n)
{
	s->bytes_out += n;
	s->msgs_out++;
	metrics_add(&s->rm->bytes_out, n);
	metrics_add(&s->rm->msgs_out, 1);
	s->last_data = session_now(s);
}

/* Stop reading the upstream while the queue toward the client is full. */
static void
session_up_pause_if_full(struct session *s)
{
	if (s->up != NULL && !s->up_paused &&
	    session_client_queued(s) >= s->cfg->limits.buffer_limit) {
		s->up_paused = 1;
		bufferevent_disable(s->up, EV_READ);
	}
}

/*
 * Binary routes between plain sockets: move what the upstream sent to the
 * client with splice(2) (splice_pipe.h) instead of reading it into the
 * input and writing it out again, the frame headers sent in between
 * (send with MSG_MORE, so each header leaves with its payload).  perf put
 * the two copies at most of the relay's CPU in a bulk download.
 *
 * Only when nothing is queued either way, so order is kept; what the
 * client's socket does not take is moved from the pipe to the client's
 * output as the frames' rest (a copy, as before), where libevent finishes
 * it and backpressure works as for any read.  EOF and errors go to
 * session_up_event_cb, as from session_sock_read_run.  Returns false when
 * S's upstream must be read the ordinary way: text routes (UTF-8 is
 * validated), TLS on either side, data already queued.
 */
static bool
session_up_splice(struct session *s)
{
	struct splice_pipe *p = &s->srv->pipe;
	size_t max_frame = s->cfg->limits.max_frame, left, max;
	struct evbuffer *out;
	ev_ssize_t msr;
	bool first = true, queue = false;
	int cfd, ufd;
	ssize_t n;

	if (s->no_splice || !s->cfg->splice || s->close_sent ||
	    s->client == NULL || s->state != SESSION_OPEN ||
	    s->up_state != UP_OPEN || s->up_tls || s->client_tls ||
	    s->route->frame_type != FRAME_BINARY)
		return false;
	out = bufferevent_get_output(s->client);
	if (evbuffer_get_length(out) > 0 || session_to_client_len(s) > 0 ||
	    evbuffer_get_length(bufferevent_get_input(s->up)) > 0 ||
	    !session_is_plain_socket(s->client) ||
	    !session_is_plain_socket(s->up))
		return false;
	if (splice_pipe_open(p, MAX_SINGLE_READ) < 0) {
		s->no_splice = 1;
		return false;
	}
	ufd = bufferevent_getfd(s->up);
	cfd = bufferevent_getfd(s->client);
	msr = bufferevent_get_max_single_read(s->up);
	max = msr > 0 ? (size_t)msr : MAX_SINGLE_READ;
	n = splice_pipe_fill(p, ufd, max);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		      errno == EINTR))
		return true;
	if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
		s->no_splice = 1; /* not a spliceable socket */
		return false;
	}
	if (n <= 0) {
		/* Reported here: a reset is reported once, and the ordinary
		   read would then see EOF. */
		session_sock_ended(s, s->up, n == 0, session_up_event_cb);
		return true;
	}
	left = (size_t)n;
	session_up_count(s, left);
	/* Each frame: header sent, payload spliced; from the first the socket
	   does not take whole (full, or failed: libevent's write reports
	   it), the rest of that frame and every later frame go to the
	   output. */
	while (left > 0) {
		size_t len = left < max_frame ? left : max_frame;
		size_t hsent = 0, moved = 0;
		uint8_t hdr[WS_MAX_HEADER];
		size_t hlen = ws_frame_header(hdr, len == left,
					      first ? WS_OP_BINARY : WS_OP_CONT,
					      len, NULL);

		if (!queue) {
			ssize_t w = send(cfd, hdr, hlen, MSG_NOSIGNAL | MSG_MORE);

			hsent = w > 0 ? (size_t)w : 0;
			if (hsent == hlen) {
				ssize_t m = splice_pipe_send(p, cfd, len,
							     len < left);
				moved = m > 0 ? (size_t)m : 0;
			}
			metrics_add(&s->srv->metrics.spliced_bytes, moved);
		}
		left -= len;
		first = false;
		if (moved == len)
			continue;
		queue = true;
		if (evbuffer_add(out, hdr + hsent, hlen - hsent) < 0 ||
		    splice_pipe_drain(p, out, len - moved) < 0)
			goto broken;
	}
	session_up_pause_if_full(s);
	return true;
broken:
	/* Bytes of this frame are lost: the stream toward the client cannot
	   go on.  A fresh pipe for the next session. */
	log_warn("%s: out of memory queueing toward the client", s->peer);
	splice_pipe_close(p);
	session_set_reason(s, "gateway", "out of memory");
	session_client_drop(s, true);
	return true;
}

/* Upstream readable: each read becomes one message to the client. */
static void
session_up_read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t avail = evbuffer_get_length(in);
	size_t send = avail, max_frame = s->cfg->limits.max_frame;
	bool text = s->route->frame_type == FRAME_TEXT;
	bool first = true;

	if (s->close_sent || s->client == NULL) {
		evbuffer_drain(in, avail);
		return;
	}
	if (s->up_tls &&
	    session_client_queued(s) < s->srv->cfg->limits.buffer_limit) {
		s->up_tls_more = session_read_tls_records(bev, s->up_tls_more);
		avail = send = evbuffer_get_length(in);
	}
	if (text) {
		/* Validate what is new; hold back a partial code point. */
		struct evbuffer_ptr pos;
		struct evbuffer_iovec vec[8];
		size_t done = s->up_held;

		while (done < avail) {
			evbuffer_ptr_set(in, &pos, done, EVBUFFER_PTR_SET);
			int nv = evbuffer_peek(in, (ev_ssize_t)(avail - done),
					       &pos, vec, 8);
			for (int i = 0; i < nv && i < 8; i++) {
				size_t l = vec[i].iov_len;
				if (l > avail - done)
					l = avail - done;
				if (utf8_feed(&s->up_utf8, vec[i].iov_base, l,
					      NULL) == UTF8_INVALID) {
					log_warn("%s: upstream %s sent invalid "
						 "UTF-8 on a text route",
						 s->peer, s->route->upstream);
					evbuffer_drain(in, avail);
					session_fail(s, "upstream",
						     WS_CLOSE_INTERNAL_ERROR,
						     "upstream sent invalid UTF-8");
					return;
				}
				done += l;
			}
		}
		s->up_held = utf8_pending(&s->up_utf8);
		send = avail - s->up_held;
	}
	if (send == 0)
		return;
	session_up_count(s, send);
	if (s->client_tls &&
	    session_client_frames_packed(s, text ? WS_OP_TEXT : WS_OP_BINARY,
					 in, send, max_frame))
		send = 0;
	while (!s->client_tls && send > 0) {
		unsigned op = !first ? WS_OP_CONT
				     : text ? WS_OP_TEXT : WS_OP_BINARY;
		size_t done = session_client_frames_direct(s, op, in, send,
							   max_frame);

		if (done == 0)
			break;
		send -= done;
		first = false;
	}
	while (send > 0) {
		size_t n = send < max_frame ? send : max_frame;
		send -= n;
		session_client_frame(s, send == 0,
				     first ? (text ? WS_OP_TEXT : WS_OP_BINARY)
					   : WS_OP_CONT,
				     in, n);
		first = false;
	}
	session_client_flush(s);
	session_up_pause_if_full(s);
}

/* Upstream output drained to its low watermark. */
static void
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
	SSL *ssl = tls_upstream_ssl(s->srv->tls, s->route);

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
	bev = bufferevent_openssl_socket_new(s->srv->base, fd, ssl,
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
static void
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
			session_sock_take(bev);
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
			session_fail(s, "upstream", WS_CLOSE_INTERNAL_ERROR,
				     "upstream sent invalid UTF-8");
			return;
		}
		log_debug("%s: upstream closed", s->peer);
		session_set_reason(s, "upstream", "upstream closed");
		session_up_close(s, UP_CLOSE_NOW);
		session_send_close(s, WS_CLOSE_NORMAL, "upstream closed");
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
	session_set_reason(s, "upstream", upstream_failure_text(UPSTREAM_RESET));
	metrics_add(&s->rm->failures[UPSTREAM_RESET], 1);
	session_up_close(s, UP_CLOSE_RESET);
	if (s->route->abort_on_reset) {
		s->code_logged = WS_CLOSE_ABNORMAL;
		session_client_drop(s, true);
		return;
	}
	session_send_close(s, upstream_failure_code(s->route, UPSTREAM_RESET),
			   upstream_failure_text(UPSTREAM_RESET));
}

/* Take over an accepted socket. */
void
session_start(struct server *srv, const struct config_listen *cl,
	      evutil_socket_t fd, const struct sockaddr *addr,
	      socklen_t addr_len)
{
	const struct config *cfg = srv->cfg; /* s->cfg holds a reference */
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
		return;
	}
	s->srv = srv;
	s->addrs = calloc(1, sizeof(*s->addrs));
	if (s->addrs == NULL) {
		evutil_closesocket(fd);
		free(s);
		return;
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
			return;
		}
		s->pp = malloc(sizeof(*s->pp));
		if (s->pp != NULL)
			proxy_proto_init(s->pp);
	}
	s->cfg = config_ref(srv->cfg);
	metrics_add(&srv->metrics.accepted, 1);
	metrics_add(&srv->metrics.open, 1); /* session_free takes it back */
	s->started = session_wall_us();
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if (cl->tls) {
		SSL *ssl = tls_server_ssl(srv->tls);
		s->client_tls = 1;
		/* With BEV_OPT_CLOSE_ON_FREE the bufferevent owns SSL and
		   socket, even when it fails to be created. */
		if (ssl != NULL)
			s->client = bufferevent_openssl_socket_new(
				srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
				BEV_OPT_CLOSE_ON_FREE);
		else
			evutil_closesocket(fd);
		fd = -1;
		if (s->client != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(s->client,
								     1);
	} else {
		s->client = bufferevent_socket_new(srv->base, fd,
						   BEV_OPT_CLOSE_ON_FREE);
	}
	s->http = http_upgrade_new(&hl);
	s->timer = evtimer_new(srv->base, session_timer_cb, s);
	if (s->client == NULL || s->http == NULL ||
	    s->timer == NULL ||
	    (cl != NULL && cl->proxy_protocol && s->pp == NULL)) {
		log_error("%s: out of memory", s->peer);
		if (s->client == NULL && fd >= 0)
			evutil_closesocket(fd);
		session_free(s);
		return;
	}
	/* Link first: from here on the server counts and can stop it. */
	s->next = srv->sessions;
	if (srv->sessions != NULL)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->n_sessions++;
	srv->total_sessions++;
	/* max_connections counts every worker's connections. */
	if (srv->gw != NULL) {
		s->counted = 1;
		if (!gateway_conn_begin(srv->gw, srv->worker,
					 cfg->max_connections))
			s->over_limit = 1;
	} else if (srv->n_sessions > cfg->max_connections) {
		s->over_limit = 1;
	}

	bufferevent_setcb(s->client, session_client_read_cb,
			  session_client_write_cb, session_client_event_cb, s);
	bufferevent_set_max_single_read(s->client, MAX_SINGLE_READ);
	/* TLS: libevent's retry of a packed write must see all of it */
	bufferevent_set_max_single_write(s->client, s->client_tls
							    ? SESSION_PACK_MAX
							    : MAX_SINGLE_WRITE);
	bufferevent_enable(s->client, EV_READ | EV_WRITE);
	if (!s->client_tls)
		session_sock_take(s->client);
	session_arm(s->timer, cfg->limits.handshake_timeout_ms);
	log_debug("%s: connected", s->peer);
}

/* Graceful shutdown of one session. */
void
session_shutdown(struct session *s)
{
	switch (s->state) {
	case SESSION_HANDSHAKE:
		session_set_reason(s, "gateway", "gateway shutting down");
		session_client_drop(s, false);
		break;
	case SESSION_OPEN:
		if (s->close_sent)
			break;
		session_set_reason(s, "gateway", "gateway shutting down");
		session_up_close(s, UP_CLOSE_FLUSH);
		session_send_close(s, WS_CLOSE_GOING_AWAY,
				   "gateway shutting down");
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
	session_set_reason(s, "gateway", "drain timeout");
	session_up_close(s, UP_CLOSE_NOW);
	session_client_drop(s, false);
}
