/*
 * session_tx.c - upstream to client: each upstream read becomes one message,
 * cut into frames of at most max_frame; written straight to an idle plain
 * socket, packed into one SSL_write for TLS, spliced, or queued as whole
 * frames behind the client's output; reading the upstream paused while the
 * queue toward the client is full.
 */
#include "session_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "frame_queue.h"
#include "log.h"
#include "metrics.h"
#include "splice_pipe.h"
#include "tls_io.h"
#include "worker_ctx.h"

static size_t session_to_client_len(const struct session *s);
static void session_client_put(struct session *s, const uint8_t *hdr,
			       size_t hlen, struct evbuffer *src, size_t n);
static size_t session_client_frames_direct(struct session *s, struct ws_cut *c,
			     struct evbuffer *src);
static bool session_client_frames_packed(struct session *s, struct ws_cut *c,
			     struct evbuffer *src);
static void session_up_count(struct session *s, size_t n);
static void session_up_pause_if_full(struct session *s);

/* Bytes in to_client (made on first use: most sessions never queue). */
static size_t
session_to_client_len(const struct session *s)
{
	return frame_queue_len(s->to_client);
}

/* Bytes queued toward the client (its output plus to_client). */
size_t
session_client_queued(const struct session *s)
{
	if (s->client == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(s->client)) +
	       session_to_client_len(s);
}

/* Write BUF (LEN bytes) to the client at once, ahead of to_client.  While
   open, a Ping or Pong goes straight to an idle socket: queuing it would
   allocate a buffer chain and switch EPOLLOUT on and off for 14 bytes.  The
   HTTP responses and our Close go through the output, whose write
   callback moves the session on. */
void
session_client_write_now(struct session *s, const void *buf, size_t len)
{
	size_t done = 0;

	if (s->client == NULL)
		return;
	if (s->state == SESSION_OPEN && !s->close_sent)
		done = sockio_write_now(s->client, buf, len, NULL, 0);
	if (done < len)
		bufferevent_write(s->client, (const uint8_t *)buf + done,
				  len - done);
}

/*
 * Place one frame toward the client: its header HDR (HLEN bytes), then N
 * payload bytes moved from SRC.  A data frame goes straight to an idle
 * plain socket when nothing is queued; otherwise frames go into the output
 * while it holds less than CLIENT_OUT_CHUNK and nothing is queued, and at
 * the end of to_client after that.  A Close always goes through the
 * output, whose drain moves the session on.
 */
static void
session_client_put(struct session *s, const uint8_t *hdr, size_t hlen,
		   struct evbuffer *src, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(s->client);

	if (s->to_client == NULL && evbuffer_get_length(out) >= CLIENT_OUT_CHUNK)
		s->to_client = frame_queue_new(); /* NULL: queue in the output */
	if (session_to_client_len(s) == 0 &&
	    (evbuffer_get_length(out) < CLIENT_OUT_CHUNK ||
	     s->to_client == NULL)) {
		size_t done = 0;
		if (!(hdr[0] & 0x08) && !s->close_sent &&
		    s->state == SESSION_OPEN)
			done = sockio_write_now(s->client, hdr, hlen, src, n);
		if (done < hlen) {
			evbuffer_add(out, hdr + done, hlen - done);
			done = hlen;
		}
		if (n > done - hlen)
			evbuffer_remove_buffer(src, out, n - (done - hlen));
	} else {
		(void)frame_queue_add(s->to_client, hdr, hlen, src, n);
	}
}

/* The frames C still holds, their payload from the front of SRC, toward
   the client. */
void
session_client_frames(struct session *s, struct ws_cut *c,
		      struct evbuffer *src)
{
	uint8_t hdr[WS_MAX_HEADER];
	uint64_t len;
	size_t hlen;

	while ((hlen = ws_cut_next(c, hdr, &len)) > 0)
		session_client_put(s, hdr, hlen, src, (size_t)len);
}

/* One frame (header + N bytes from SRC, moved) toward the client. */
void
session_client_frame(struct session *s, bool fin, unsigned opcode,
		     struct evbuffer *src, size_t n)
{
	struct ws_cut c;

	ws_cut_init(&c, (uint8_t)opcode, n, n, fin);
	session_client_frames(s, &c, src);
}

/*
 * Plain clients: up to DIRECT_FRAMES of the frames C still holds, their
 * payload from the front of SRC, headers and payload in one sendmsg when
 * nothing is queued toward the client.  A
 * 256 KiB upstream read cut at the default 64 KiB max_frame cost four
 * sends, one per frame.
 * The payload is sent from where it sits in SRC (evbuffer_peek, no copy).
 * A frame the socket takes only part of has its rest moved to the output,
 * where libevent finishes it.  Returns the bytes of SRC dealt with (whole
 * frames, sent or queued; C moves past them): the caller frames the rest
 * as usual.
 */
#define DIRECT_FRAMES 8
static size_t
session_client_frames_direct(struct session *s, struct ws_cut *c,
			     struct evbuffer *src)
{
	struct evbuffer *out = bufferevent_get_output(s->client);
	uint8_t hdr[DIRECT_FRAMES][WS_MAX_HEADER];
	size_t hlen[DIRECT_FRAMES], plen[DIRECT_FRAMES];
	struct evbuffer_iovec v[SOCKIO_IOV];
	struct iovec iov[2 * DIRECT_FRAMES + SOCKIO_IOV];
	size_t voff = 0, sent, done = 0;
	int nf = 0, k = 0, vi = 0, nv;
	ssize_t w;
	struct ws_cut past[DIRECT_FRAMES + 1]; /* C before frame I */

	if (c->left == 0 || evbuffer_get_length(out) > 0 ||
	    session_to_client_len(s) > 0 || s->close_sent ||
	    s->state != SESSION_OPEN || !sockio_is_plain(s->client))
		return 0;
	past[0] = *c;
	nv = evbuffer_peek(src, (ev_ssize_t)c->left, NULL, v, SOCKIO_IOV);
	if (nv > SOCKIO_IOV)
		nv = SOCKIO_IOV;
	while (ws_cut_more(c) && nf < DIRECT_FRAMES) {
		uint64_t len;
		size_t need;
		int k0 = k;

		hlen[nf] = ws_cut_next(c, hdr[nf], &len);
		need = plen[nf] = (size_t)len;
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
			*c = past[nf];
			break;
		}
		past[++nf] = *c;
	}
	if (nf == 0)
		return 0;
	w = sockio_sendv(s->client, iov, k);
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
		/* The frames after it were not sent: the caller cuts them
		   again from C. */
		*c = past[i + 1];
		break;
	}
	return done;
}

/*
 * TLS clients: the frames C still holds, their payload from the front of
 * SRC, headers and payloads packed into the
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
session_client_frames_packed(struct session *s, struct ws_cut *c,
			     struct evbuffer *src)
{
	struct evbuffer *out = bufferevent_get_output(s->client);
	uint64_t frames = (c->left + c->max - 1) / c->max, len;
	size_t total, done = 0, hlen;
	struct evbuffer_iovec v;
	uint8_t *p;
	SSL *ssl;

	if (c->left == 0 || c->left + frames * WS_MAX_HEADER > SESSION_PACK_MAX ||
	    evbuffer_get_length(out) > 0 || session_to_client_len(s) > 0 ||
	    s->close_sent || !s->client_tls_ok || s->client_tls_dead ||
	    s->state != SESSION_OPEN ||
	    (ssl = bufferevent_openssl_get_ssl(s->client)) == NULL)
		return false;
	if (s->w->pack_buf == NULL &&
	    (s->w->pack_buf = malloc(SESSION_PACK_MAX)) == NULL)
		return false;
	p = s->w->pack_buf;
	while ((hlen = ws_cut_next(c, p, &len)) > 0) {
		p += hlen;
		evbuffer_remove(src, p, (size_t)len);
		p += len;
	}
	total = (size_t)(p - s->w->pack_buf);
	ERR_clear_error();
	while (done < total) {
		int r = SSL_write(ssl, s->w->pack_buf + done,
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
			session_end(s, SESSION_END_PACK_NO_MEMORY);
			return true;
		}
		memcpy(v.iov_base, s->w->pack_buf + done, total - done);
		v.iov_len = total - done;
		evbuffer_commit_space(out, &v, 1);
	}
	return true;
}

/* Move whole frames from to_client into the client's output while it holds
   less than CLIENT_OUT_CHUNK. */
void
session_client_flush(struct session *s)
{
	if (s->client != NULL)
		frame_queue_move(s->to_client, bufferevent_get_output(s->client),
				 CLIENT_OUT_CHUNK);
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
bool
session_up_splice(struct session *s)
{
	struct splice_pipe *p = &s->w->pipe;
	size_t max;
	struct evbuffer *out;
	struct ws_cut c;
	uint8_t hdr[WS_MAX_HEADER];
	uint64_t len;
	size_t hlen;
	ev_ssize_t msr;
	bool queue = false;
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
	    !sockio_is_plain(s->client) ||
	    !sockio_is_plain(s->up))
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
	session_up_count(s, (size_t)n);
	ws_cut_init(&c, WS_OP_BINARY, (uint64_t)n, s->cfg->limits.max_frame,
		    true);
	/* Each frame: header sent, payload spliced; from the first the socket
	   does not take whole (full, or failed: libevent's write reports
	   it), the rest of that frame and every later frame go to the
	   output. */
	while ((hlen = ws_cut_next(&c, hdr, &len)) > 0) {
		size_t hsent = 0, moved = 0;

		if (!queue) {
			ssize_t w = send(cfd, hdr, hlen, MSG_NOSIGNAL | MSG_MORE);

			hsent = w > 0 ? (size_t)w : 0;
			if (hsent == hlen) {
				ssize_t m = splice_pipe_send(p, cfd, len,
							     ws_cut_more(&c));
				moved = m > 0 ? (size_t)m : 0;
			}
			metrics_add(&s->w->metrics.spliced_bytes, moved);
		}
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
	session_end(s, SESSION_END_QUEUE_NO_MEMORY);
	return true;
}

/* Upstream readable: each read becomes one message to the client. */
void
session_up_read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t avail = evbuffer_get_length(in);
	size_t send = avail;
	bool text = s->route->frame_type == FRAME_TEXT;
	struct ws_cut c;

	if (s->close_sent || s->client == NULL) {
		evbuffer_drain(in, avail);
		return;
	}
	if (s->up_tls &&
	    session_client_queued(s) < s->w->cfg->limits.buffer_limit) {
		s->up_tls_more = tls_io_read_records(bev, s->up_tls_more);
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
					session_end(
						s, SESSION_END_UPSTREAM_BAD_UTF8);
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
	ws_cut_init(&c, text ? WS_OP_TEXT : WS_OP_BINARY, send,
		    s->cfg->limits.max_frame, true);
	if (s->client_tls)
		(void)session_client_frames_packed(s, &c, in);
	else
		while (ws_cut_more(&c) &&
		       session_client_frames_direct(s, &c, in) > 0)
			;
	session_client_frames(s, &c, in);
	session_client_flush(s);
	session_up_pause_if_full(s);
}
