/*
 * session_rx.c - client to upstream: frames decoded in place in the client's
 * input, payload moved (or sent in one batch) toward the upstream, control
 * frames answered; reading the client paused while the queue toward its
 * payload's destination (or toward the client, for our Pongs) is full.
 */
#include "session_int.h"

#include <string.h>

#include <event2/bufferevent_ssl.h>

#include <openssl/ssl.h>

#include "config.h"
#include "metrics.h"
#include "worker_ctx.h"

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
	struct iovec iov[SOCKIO_IOV];
	size_t at[SOCKIO_IOV]; /* where iov[i] starts in the input */
	int n;
	size_t span;           /* input bytes decoded in all */
};

static void session_pause_client(struct session *s);
static void session_control(struct session *s, const struct ws_event *ev);
static void session_data_count(struct session *s, const struct ws_event *ev);
static void session_data(struct session *s, struct evbuffer *in, const struct ws_event *ev);
static bool session_batchable(const struct session *s, const struct ws_event *ev);
static void session_batch_flush(struct session *s, struct evbuffer *in,
		    struct up_batch *b);

/*
 * The client's SSL reads ahead (tls.c): OpenSSL may hold records it took
 * from the socket and has not yet decrypted, and the socket, drained, will
 * not wake the loop for them.  Wherever the session stops consuming or
 * starts reading again while reading is on, libevent's read callback is
 * made to run once more if OpenSSL holds anything.  No loop: libevent
 * calls back only when a read brought data, and a partial record left
 * behind waits for its rest from the socket, which is readable then.
 */
void
session_client_tls_kick(struct session *s)
{
	SSL *ssl;

	if (s->client == NULL || !s->client_tls || s->client_tls_dead ||
	    s->client_paused ||
	    !(bufferevent_get_enabled(s->client) & EV_READ))
		return;
	ssl = bufferevent_openssl_get_ssl(s->client);
	if (ssl != NULL && SSL_has_pending(ssl))
		sockio_wake_read(s->client);
}

/* Stop reading the client until the queue toward the upstream drains. */
static void
session_pause_client(struct session *s)
{
	if (!s->client_paused && s->client != NULL) {
		s->client_paused = 1;
		bufferevent_disable(s->client, EV_READ);
		if (s->watch == NULL)
			s->watch = evtimer_new(s->w->base, session_watch_cb,
					       s);
		if (s->watch != NULL && !s->client_fin)
			session_arm(s->watch, SESSION_WATCH_MS);
	}
}

/* Resume reading the client and process what it already sent. */
void
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
bool
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
		metrics_close_code(&s->w->metrics, ev->close_code, 0);
		if (s->code_logged == 0)
			s->code_logged = ev->close_code;
		/* Not a session_end row: our Close echoes the client's code
		   with no reason text, and goes before the upstream is
		   flushed. */
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
		struct ws_cut c;
		ws_cut_init(&c, ev->message_start ? ev->opcode : WS_OP_CONT,
			    ev->len, s->cfg->limits.max_frame, ev->message_end);
		session_client_frames(s, &c, in);
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

/* True if the chunk EV may go to S's upstream in a batch. */
static bool
session_batchable(const struct session *s, const struct ws_event *ev)
{
	return ev->len > 0 && !s->close_sent &&
	       !s->is_echo && s->up != NULL && s->up_state == UP_OPEN &&
	       sockio_is_plain(s->up) &&
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
		ssize_t w = sockio_sendv(s->up, b->iov, b->n);
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
void
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
		if (r >= 0 && ev.type == WS_EV_DATA && b.n == SOCKIO_IOV)
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
			session_end_code(s, SESSION_END_CLIENT_PROTOCOL,
					 ev.error_code, ev.error);
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
