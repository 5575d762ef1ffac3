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
 * can be written between queued frames, ahead of most queued data.
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
 */
#include "session.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "config.h"
#include "http_upgrade.h"
#include "log.h"
#include "server.h"
#include "upstream.h"
#include "utf8.h"
#include "ws_frame.h"

/* Bytes kept in the client bufferevent's output; the rest waits in
   to_client as whole frames, so control frames can overtake it. */
#define CLIENT_OUT_CHUNK (64 * 1024)
/* Largest single read from a socket. */
#define MAX_SINGLE_READ (64 * 1024)
/* Largest single write to a socket (libevent's default is 16 KiB). */
#define MAX_SINGLE_WRITE (256 * 1024)
/* Buffer segments in one direct writev. */
#define DIRECT_IOV 16

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

	struct event *timer;          /* handshake, then close/linger */
	struct event *connect_timer;
	struct event *ping_timer;
	struct event *idle_timer;
	struct event *free_ev;

	struct timeval started, last_rx, last_data, ping_sent;

	uint64_t bytes_in, bytes_out, msgs_in, msgs_out;
	int http_status;
	unsigned code_sent, code_rcvd, code_logged;
	const char *closed_by;        /* "client", "upstream", "gateway" */
	char reason[96];
	char peer[64];
	char upstream_name[16];

	unsigned over_limit : 1;
	unsigned close_sent : 1;
	unsigned close_rcvd : 1;
	unsigned fail_fast : 1;       /* don't wait for the client's Close */
	unsigned client_paused : 1;   /* reading the client stopped */
	unsigned up_paused : 1;       /* reading the upstream stopped */
	unsigned ping_outstanding : 1;
	unsigned rx_since_ping : 1;   /* client bytes arrived since the ping */
	unsigned is_echo : 1;
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
static size_t session_write_now(struct bufferevent *bev, const uint8_t *hdr,
				size_t hlen, struct evbuffer *src, size_t n);

/* The next session in the server's list. */
struct session *
session_next(struct session *s)
{
	return s->next;
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

/* Now, from the loop's cached clock. */
static struct timeval
session_now(const struct session *s)
{
	struct timeval tv;

	event_base_gettimeofday_cached(s->srv->base, &tv);
	return tv;
}

/* Milliseconds from A to B (0 if B is earlier). */
static uint64_t
session_ms_between(struct timeval a, struct timeval b)
{
	int64_t ms = (int64_t)(b.tv_sec - a.tv_sec) * 1000 +
		     (b.tv_usec - a.tv_usec) / 1000;
	return ms > 0 ? (uint64_t)ms : 0;
}

/* Arm EV to fire in MS milliseconds. */
static void
session_arm(struct event *ev, uint64_t ms)
{
	struct timeval tv = session_tv(ms);

	evtimer_add(ev, &tv);
}

/* Bytes queued toward the client (its output plus to_client). */
static size_t
session_client_queued(const struct session *s)
{
	if (s->client == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(s->client)) +
	       evbuffer_get_length(s->to_client);
}

/* Remember the first reason the session is ending for. */
static void
session_set_reason(struct session *s, const char *who, const char *reason)
{
	if (s->closed_by != NULL)
		return;
	s->closed_by = who;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
}

/* Write the access-log line for S. */
static void
session_log(struct session *s)
{
	struct timeval now;
	uint64_t ms;
	char sent[12] = "-", rcvd[12] = "-";

	if (!s->srv->cfg->access_log)
		return;
	gettimeofday(&now, NULL);
	ms = session_ms_between(s->started, now);
	if (s->code_sent)
		snprintf(sent, sizeof(sent), "%u", s->code_sent);
	if (s->code_rcvd)
		snprintf(rcvd, sizeof(rcvd), "%u", s->code_rcvd);
	log_access("client=%s route=%s upstream=%s status=%d duration=%" PRIu64
		   ".%03" PRIu64 "s in_bytes=%" PRIu64 " in_msgs=%" PRIu64
		   " out_bytes=%" PRIu64 " out_msgs=%" PRIu64
		   " close_sent=%s close_rcvd=%s code=%u closed_by=%s reason=\"%s\"",
		   s->peer, s->route ? s->route->path : "-",
		   s->route ? s->route->upstream : "-", s->http_status,
		   ms / 1000, ms % 1000, s->bytes_in, s->msgs_in, s->bytes_out,
		   s->msgs_out, sent, rcvd, s->code_logged,
		   s->closed_by ? s->closed_by : "-", s->reason);
}

/* Free S and everything it owns. */
void
session_free(struct session *s)
{
	if (s == NULL)
		return;
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
	http_upgrade_free(s->http);
	if (s->to_client != NULL)
		evbuffer_free(s->to_client);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->connect_timer != NULL)
		event_free(s->connect_timer);
	if (s->ping_timer != NULL)
		event_free(s->ping_timer);
	if (s->idle_timer != NULL)
		event_free(s->idle_timer);
	if (s->free_ev != NULL)
		event_free(s->free_ev);
	free(s);
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
	evtimer_del(s->timer);
	evtimer_del(s->connect_timer);
	evtimer_del(s->ping_timer);
	evtimer_del(s->idle_timer);
	event_active(s->free_ev, EV_TIMEOUT, 1);
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
	}
	bufferevent_free(s->client);
	s->client = NULL;
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
	(void)shutdown(bufferevent_getfd(s->client), SHUT_WR);
	bufferevent_enable(s->client, EV_READ);
	s->client_paused = 0;
	session_arm(s->timer, s->srv->cfg->limits.close_timeout_ms);
	/* The upstream has nothing more to say to this client. */
	session_up_close(s, UP_CLOSE_FLUSH);
}

/* Close timer, handshake timer and linger timer. */
static void
session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	switch (s->state) {
	case SESSION_HANDSHAKE:
		log_debug("%s: handshake timeout", s->peer);
		session_set_reason(s, "gateway", "handshake timeout");
		session_client_drop(s, false);
		break;
	case SESSION_OPEN:
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

/* Write BUF (LEN bytes) to the client at once, ahead of to_client. */
static void
session_client_write_now(struct session *s, const void *buf, size_t len)
{
	if (s->client != NULL)
		bufferevent_write(s->client, buf, len);
}

/* Answer with an HTTP error and close after it is sent. */
static void
session_reject(struct session *s, int status, const char *body)
{
	char buf[512];
	int n;

	s->http_status = status;
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

	if (evbuffer_get_length(s->to_client) == 0 &&
	    evbuffer_get_length(out) < CLIENT_OUT_CHUNK) {
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
	       evbuffer_get_length(s->to_client) >= 2) {
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
	evtimer_del(s->ping_timer);
	evtimer_del(s->idle_timer);
	session_arm(s->timer, s->srv->cfg->limits.close_timeout_ms);
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
	evtimer_del(s->connect_timer);
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
		if (!evtimer_pending(s->timer, NULL))
			session_arm(s->timer,
				    s->srv->cfg->limits.close_timeout_ms);
		return;
	}
	if (mode == UP_CLOSE_RESET && bufferevent_getfd(s->up) >= 0) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		(void)setsockopt(bufferevent_getfd(s->up), SOL_SOCKET,
				 SO_LINGER, &lg, sizeof(lg));
	}
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

/*
 * Write HDR (HLEN bytes, may be 0) and the first N bytes of SRC straight to
 * BEV's socket when nothing is queued in BEV's output, in one writev.
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
	w = writev(bufferevent_getfd(bev), iov, k);
	if (w <= 0)
		return 0;
	if ((size_t)w > hlen)
		evbuffer_drain(src, (size_t)w - hlen);
	return (size_t)w;
}

/*
 * libevent 2.1 reads at most 4096 bytes per readable event (buffer.c
 * EVBUFFER_MAX_READ), whatever max_single_read says: a bulk transfer then
 * costs a wakeup, an ioctl, a readv and a frame header per 4 KiB.  On a
 * plain socket, read on into the input buffer's own free space (reserve and
 * commit: no copy) up to BEV's max_single_read in all, in one readv, when
 * libevent's read came back full.  EOF and errors are left for libevent's
 * next read to report.
 */
static void
session_read_more(struct bufferevent *bev)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t have = evbuffer_get_length(in);
	ev_ssize_t max = bufferevent_get_max_single_read(bev);
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	evutil_socket_t fd = bufferevent_getfd(bev);
	size_t want;
	ssize_t r;
	int n;

	/* Less than libevent's 4096 read: it took all there was. */
	if (max <= 0 || have < 4096 || have >= (size_t)max ||
	    !session_is_plain_socket(bev))
		return;
	/* The socket bufferevent freezes its input's end between its own
	   reads; thaw it for ours. */
	evbuffer_unfreeze(in, 0);
	want = (size_t)max - have;
	n = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
	if (n > 0) {
		/* The reservation may be larger than asked: read no more. */
		for (int i = 0; i < n; i++) {
			if (v[i].iov_len > want)
				v[i].iov_len = want;
			want -= v[i].iov_len;
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
		}
		r = readv(fd, iov, n);
		if (r > 0) {
			for (int i = 0; i < n; i++) {
				if ((size_t)r < v[i].iov_len)
					v[i].iov_len = (size_t)r;
				r -= (ssize_t)v[i].iov_len;
			}
			evbuffer_commit_space(in, v, n);
		}
		/* else nothing is committed: the reservation lapses */
	}
	evbuffer_freeze(in, 0);
}

/* Stop reading the client until the queue toward the upstream drains. */
static void
session_pause_client(struct session *s)
{
	if (!s->client_paused && s->client != NULL) {
		s->client_paused = 1;
		bufferevent_disable(s->client, EV_READ);
	}
}

/* Resume reading the client and process what it already sent. */
static void
session_resume_client(struct session *s)
{
	if (s->client_paused && s->client != NULL &&
	    s->state == SESSION_OPEN) {
		s->client_paused = 0;
		bufferevent_enable(s->client, EV_READ);
		session_frames(s);
	}
}

/* True if the queue toward the client's payload destination has room. */
static bool
session_can_forward(const struct session *s)
{
	size_t limit = s->srv->cfg->limits.buffer_limit;

	if (s->close_sent)
		return true; /* payload is discarded (RFC 6455 1.4) */
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
	uint8_t hdr[WS_MAX_HEADER];
	size_t hlen;

	switch (ev->opcode) {
	case WS_OP_PING:
		if (s->close_sent)
			break;
		/* RFC 6455 5.5.3: same payload; ahead of queued data. */
		hlen = ws_frame_header(hdr, true, WS_OP_PONG, ev->len, NULL);
		session_client_write_now(s, hdr, hlen);
		session_client_write_now(s, ev->data, ev->len);
		break;
	case WS_OP_PONG:
		break; /* any traffic counts: last_rx is already updated */
	case WS_OP_CLOSE:
		s->close_rcvd = 1;
		s->code_rcvd = ev->close_code;
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

/* Deliver one chunk of message payload that sits at the front of IN. */
static void
session_data(struct session *s, struct evbuffer *in, const struct ws_event *ev)
{
	if (ev->len > 0) {
		s->bytes_in += ev->len;
		s->last_data = s->last_rx;
	}
	if (ev->message_end)
		s->msgs_in++;
	if (s->close_sent) {
		evbuffer_drain(in, ev->len); /* RFC 6455 1.4: no more data */
		return;
	}
	if (s->is_echo) {
		/* Echo: same opcode and message boundaries (frames may be
		   cut differently: one frame per chunk). */
		if (ev->len == 0 && !ev->message_start && !ev->message_end)
			return;
		if (ev->message_end)
			s->msgs_out++;
		s->bytes_out += ev->len;
		session_client_frame(s, ev->message_end,
				     ev->message_start ? ev->opcode : WS_OP_CONT,
				     in, ev->len);
		session_client_flush(s);
		return;
	}
	if (s->up != NULL && (s->up_state == UP_CONNECTING ||
			      s->up_state == UP_OPEN)) {
		size_t done = 0;
		if (s->up_state == UP_OPEN && ev->len > 0)
			done = session_write_now(s->up, NULL, 0, in, ev->len);
		if (ev->len > done)
			evbuffer_remove_buffer(in, bufferevent_get_output(s->up),
					       ev->len - done);
	} else
		evbuffer_drain(in, ev->len);
}

/* Decode the frames in the client's input, in place, and act on them. */
static void
session_frames(struct session *s)
{
	struct evbuffer *in;

	while (s->client != NULL && s->state == SESSION_OPEN &&
	       !s->fail_fast) {
		struct evbuffer_iovec v;
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
			session_pause_client(s);
			return;
		}
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return;
		r = ws_decoder_feed(&s->dec, v.iov_base, v.iov_len, &ev);
		if (r == 0 && ev.type == WS_EV_NONE)
			return; /* cannot happen with input; never spin */
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
	log_info("%s: %s %s: %s", s->peer, s->route->path, s->route->upstream,
		 reason);
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
session_ping_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	const struct config_limits *lim = &s->srv->cfg->limits;
	struct timeval now = session_now(s);

	(void)fd;
	(void)what;
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
		session_arm(s->ping_timer, waited < lim->ping_interval_ms
						   ? lim->ping_interval_ms - waited
						   : 0);
		return;
	}
	/* Ping only after ping_interval without traffic from the client. */
	uint64_t quiet = session_ms_between(s->last_rx, now);
	if (quiet < lim->ping_interval_ms && !s->client_paused) {
		session_arm(s->ping_timer, lim->ping_interval_ms - quiet);
		return;
	}
	uint8_t frame[WS_MAX_HEADER + 8];
	uint64_t stamp = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_usec;
	size_t hlen = ws_frame_header(frame, true, WS_OP_PING, 8, NULL);
	memcpy(frame + hlen, &stamp, 8);
	session_client_write_now(s, frame, hlen + 8);
	s->ping_outstanding = 1;
	s->rx_since_ping = 0;
	s->ping_sent = now;
	session_arm(s->ping_timer, lim->pong_timeout_ms);
}

/* No data message either way for idle_timeout: Close 1000. */
static void
session_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	uint64_t idle = s->srv->cfg->limits.idle_timeout_ms;
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

/* The request head is complete: route it and upgrade, or answer it. */
static void
session_handshake_done(struct session *s)
{
	const struct config *cfg = s->srv->cfg;
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
	s->route = config_find_route(cfg, path.p, path.len);
	if (s->route == NULL) {
		session_reject(s, 404, "no route for this path");
		return;
	}
	if (!http_upgrade_is_websocket(s->http)) {
		session_reject(s, 426, "this path is a WebSocket endpoint");
		return;
	}
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
		snprintf(s->upstream_name, sizeof(s->upstream_name), "echo");
	}
	ws_decoder_init(&s->dec, &dc);
	s->last_rx = s->last_data = session_now(s);
	if (cfg->limits.ping_interval_ms > 0)
		session_arm(s->ping_timer, cfg->limits.ping_interval_ms);
	if (cfg->limits.idle_timeout_ms > 0)
		session_arm(s->idle_timer, cfg->limits.idle_timeout_ms);

	if (!s->is_echo) {
		s->up = bufferevent_socket_new(s->srv->base, -1,
					       BEV_OPT_CLOSE_ON_FREE);
		if (s->up == NULL) {
			session_up_failed(s, UPSTREAM_UNREACHABLE, ENOMEM);
			return;
		}
		bufferevent_setcb(s->up, session_up_read_cb, session_up_write_cb,
				  session_up_event_cb, s);
		bufferevent_set_max_single_read(s->up, cfg->limits.max_frame);
		bufferevent_set_max_single_write(s->up, MAX_SINGLE_WRITE);
		s->up_state = UP_CONNECTING;
		session_arm(s->connect_timer, s->route->connect_timeout_ms);
		s->conn = upstream_connect(s->srv->base, s->srv->dns, s->route,
					   s->up, session_up_failed_cb, s);
		if (s->conn == NULL) {
			session_up_failed(s, UPSTREAM_UNREACHABLE, ENOMEM);
			return;
		}
	}
	/* Frames the client sent right behind its request. */
	session_frames(s);
}

/* Feed the request head to the parser. */
static void
session_handshake(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->client);

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
		if (!s->close_rcvd && session_can_forward(s))
			session_read_more(bev);
		session_frames(s);
		break;
	default:
		/* Rejecting or lingering: discard. */
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	}
}

/* Client's output drained to its low watermark. */
static void
session_client_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	size_t limit = s->srv->cfg->limits.buffer_limit;

	session_client_flush(s);
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
static void
session_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	int err = EVUTIL_SOCKET_ERROR();
	bool reset = (what & BEV_EVENT_ERROR) != 0;

	(void)bev;
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
		if (reset && err != 0)
			snprintf(s->reason, sizeof(s->reason),
				 "client reset: %s", strerror(err));
		/* RST at once if the client reset; otherwise what the client
		   sent before its FIN still goes out, then FIN. */
		session_up_close(s, reset ? UP_CLOSE_RESET : UP_CLOSE_FLUSH);
	}
	session_client_drop(s, false);
}

/* Upstream readable: each read becomes one message to the client. */
static void
session_up_read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t avail = evbuffer_get_length(in);
	size_t send = avail, max_frame = s->srv->cfg->limits.max_frame;
	bool text = s->route->frame_type == FRAME_TEXT;
	bool first = true;

	if (s->close_sent || s->client == NULL) {
		evbuffer_drain(in, avail);
		return;
	}
	if (session_client_queued(s) < s->srv->cfg->limits.buffer_limit) {
		session_read_more(bev);
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
	s->bytes_out += send;
	s->msgs_out++;
	s->last_data = session_now(s);
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
	if (session_client_queued(s) >= s->srv->cfg->limits.buffer_limit &&
	    !s->up_paused) {
		s->up_paused = 1;
		bufferevent_disable(bev, EV_READ);
	}
}

/* Upstream output drained to its low watermark. */
static void
session_up_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->up_state == UP_FLUSHING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
			bufferevent_free(s->up);
			s->up = NULL;
			s->up_state = UP_GONE;
			session_maybe_done(s);
		}
		return;
	}
	session_resume_client(s);
}

/* Upstream connected, closed, reset or failed. */
static void
session_up_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	int err = EVUTIL_SOCKET_ERROR();
	const struct config_limits *lim = &s->srv->cfg->limits;

	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;
		evtimer_del(s->connect_timer);
		upstream_conn_free(s->conn);
		s->conn = NULL;
		s->up_state = UP_OPEN;
		(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP,
				 TCP_NODELAY, &one, sizeof(one));
		bufferevent_setwatermark(bev, EV_WRITE, lim->buffer_limit / 2,
					 0);
		if (!s->close_sent)
			bufferevent_enable(bev, EV_READ);
		log_debug("%s: connected to %s", s->peer, s->route->upstream);
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
	/* Reset or another error mid-stream. */
	log_info("%s: upstream %s: %s", s->peer, s->route->upstream,
		 strerror(err));
	session_set_reason(s, "upstream", upstream_failure_text(UPSTREAM_RESET));
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
session_start(struct server *srv, evutil_socket_t fd,
	      const struct sockaddr *addr, socklen_t addr_len)
{
	const struct config *cfg = srv->cfg;
	struct http_limits hl = {
		.max_request_line = cfg->limits.max_request_line,
		.max_header_bytes = cfg->limits.max_header_bytes,
		.max_headers = cfg->limits.max_headers,
	};
	struct session *s;
	int one = 1;
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	(void)addr_len;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		evutil_closesocket(fd);
		return;
	}
	s->srv = srv;
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
		evutil_inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(s->peer, sizeof(s->peer), "%s:%u", host, port);
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
		evutil_inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(s->peer, sizeof(s->peer), "[%s]:%u", host, port);
	} else {
		snprintf(s->peer, sizeof(s->peer), "unix");
	}
	gettimeofday(&s->started, NULL);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	s->client = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->to_client = evbuffer_new();
	s->http = http_upgrade_new(&hl);
	s->timer = evtimer_new(srv->base, session_timer_cb, s);
	s->connect_timer = evtimer_new(srv->base, session_connect_timer_cb, s);
	s->ping_timer = evtimer_new(srv->base, session_ping_cb, s);
	s->idle_timer = evtimer_new(srv->base, session_idle_cb, s);
	s->free_ev = event_new(srv->base, -1, 0, session_free_cb, s);
	if (s->client == NULL || s->to_client == NULL || s->http == NULL ||
	    s->timer == NULL || s->connect_timer == NULL ||
	    s->ping_timer == NULL || s->idle_timer == NULL ||
	    s->free_ev == NULL) {
		log_error("%s: out of memory", s->peer);
		if (s->client == NULL)
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
	if (srv->n_sessions > cfg->max_connections)
		s->over_limit = 1;

	bufferevent_setcb(s->client, session_client_read_cb,
			  session_client_write_cb, session_client_event_cb, s);
	bufferevent_set_max_single_read(s->client, MAX_SINGLE_READ);
	bufferevent_set_max_single_write(s->client, MAX_SINGLE_WRITE);
	bufferevent_enable(s->client, EV_READ | EV_WRITE);
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
