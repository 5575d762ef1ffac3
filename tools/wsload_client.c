/*
 * wsload_client.c - the client side of wsload: N connections on one epoll
 * set, each taken through connect, TLS (wss://), the WebSocket handshake
 * (verified: status 101, Upgrade, Sec-WebSocket-Accept per RFC 6455 4.1),
 * then the workload, then a close handshake.
 *
 * Frames to the server are masked with a fresh random key each (RFC 6455
 * 5.3) using the project's ws_frame_header and ws_unmask; frames from the
 * server go through the project's streaming decoder, with no buffer per
 * connection: one shared read buffer, the decoder keeps the state.  Every
 * payload byte received is compared with the test pattern at its stream
 * offset, so data that is lost, duplicated, reordered or altered on the way
 * (re-framing is fine) is caught.
 *
 * The workload starts on every connection at once, when the last one is
 * set up; it is measured from then until --duration or --count ends it.
 * Handshake mode measures the setup itself: each connection slot connects,
 * completes TLS and the upgrade, does one echo round trip and closes, over
 * and over from the start; no session is resumed, so every TLS handshake is
 * a full one.  tls:// is tcp:// inside TLS, the baseline for wss://.
 */
#include "wsload.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "http_upgrade.h"
#include "ws_frame.h"

#define READ_BUF (256 * 1024)     /* shared by all connections */
#define HEAD_MAX 4096             /* the server's 101 response head */
#define READS_PER_EVENT 4         /* fairness between connections */
#define WRITES_PER_EVENT 16
#define TICK_MS 20                /* timer resolution */
#define PING_PAYLOAD 8

enum conn_state {
	C_NEW,
	C_CONNECTING,
	C_TLS,
	C_HANDSHAKE,
	C_RUN,
	C_CLOSING,
	C_DONE,
};

struct conn {
	int fd;
	unsigned id;
	enum conn_state st;
	uint32_t events;          /* registered epoll events */
	SSL *ssl;
	bool tls_wants_write;
	char *head;               /* handshake response so far */
	size_t head_len;
	char accept[HTTP_ACCEPT_KEY_LEN + 1];
	struct ws_decoder dec;
	uint8_t *obuf;            /* bytes waiting for the socket */
	size_t ocap, olen, ooff;
	uint64_t sent_off;        /* payload stream offset sent */
	uint64_t recv_off;        /* payload stream offset received */
	uint64_t msgs_sent, msgs_done;
	uint64_t *sent_at;        /* echo: send times, a ring of pipeline */
	uint64_t deadline;        /* setup, pong or close limit (ns) */
	uint64_t started;         /* handshake: when the connect began (ns) */
	uint64_t next_ping;
	uint64_t ping_seq;
	bool ping_out;
	bool close_sent;
	bool close_rcvd;
	bool eof_sent;
};

struct client {
	const struct wsload_opts *o;
	struct wsload_totals *t;
	int ep;
	SSL_CTX *ssl_ctx;
	struct conn *conns;
	unsigned next_start;      /* connections started so far */
	unsigned in_setup;        /* started, not yet running or done */
	unsigned settled;         /* running, failed or done before go */
	unsigned done;            /* C_DONE */
	bool go;                  /* the workload is on */
	bool stopping;            /* the workload is over: closing */
	uint64_t t_go, t_stop, t_end;
	uint64_t sent_total;      /* messages started, all connections */
	uint64_t rng;
	uint8_t *rbuf;
};

static volatile sig_atomic_t client_interrupted;

/* SIGINT/SIGTERM: end the workload early, close cleanly. */
static void
client_signal(int sig)
{
	(void)sig;
	client_interrupted = 1;
}

/* xorshift64*: masking keys need to be unpredictable to intermediaries,
   not cryptographic; seeded from getrandom. */
static uint32_t
client_random(struct client *cl)
{
	cl->rng ^= cl->rng >> 12;
	cl->rng ^= cl->rng << 25;
	cl->rng ^= cl->rng >> 27;
	return (uint32_t)((cl->rng * 2685821657736338717ull) >> 32);
}

/* True while results are counted. */
static bool
client_counting(const struct client *cl)
{
	return cl->go && !cl->stopping;
}

/* Register C's epoll interest: always input, output when it has any. */
static void
conn_update_events(struct client *cl, struct conn *c)
{
	uint32_t ev = EPOLLIN;
	struct epoll_event e;

	if (c->fd < 0)
		return;
	if (c->st == C_CONNECTING || c->olen > c->ooff || c->tls_wants_write ||
	    (c->st == C_RUN && cl->o->mode == MODE_UPLOAD && cl->go &&
	     !cl->stopping))
		ev |= EPOLLOUT;
	if (ev == c->events)
		return;
	e.events = ev;
	e.data.ptr = c;
	if (epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
}

/* Release C's socket and buffers; mark it done. */
static void
conn_close(struct client *cl, struct conn *c)
{
	if (c->st == C_DONE)
		return;
	if (c->st >= C_CONNECTING && c->st < C_RUN && cl->in_setup > 0)
		cl->in_setup--;
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	free(c->head);
	c->head = NULL;
	free(c->obuf);
	c->obuf = NULL;
	c->ocap = c->olen = c->ooff = 0;
	free(c->sent_at);
	c->sent_at = NULL;
	c->st = C_DONE;
	cl->done++;
}

static void conn_start(struct client *cl, struct conn *c);

/* Handshake mode: C completed its round trip.  Close it (close_notify, no
   WebSocket closing handshake: the setup is what is measured) and, while
   the workload lasts, start it again from a fresh socket. */
static void
conn_recycle(struct client *cl, struct conn *c)
{
	unsigned id = c->id;

	if (c->ssl != NULL) {
		(void)SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	conn_close(cl, c);
	if (!client_counting(cl) ||
	    (cl->o->count && cl->t->msgs >= cl->o->count))
		return;
	cl->done--;
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->id = id;
	conn_start(cl, c);
}

/* C failed: count it, remember the first reason, close it. */
static void conn_fail(struct client *cl, struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void
conn_fail(struct client *cl, struct conn *c, const char *fmt, ...)
{
	va_list ap;
	char msg[128];

	if (c->st == C_DONE)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cl->t->first_error[0] == '\0')
		snprintf(cl->t->first_error, sizeof(cl->t->first_error),
			 "connection %u: %s", c->id, msg);
	if (!cl->o->quiet && cl->t->failed < 5)
		fprintf(stderr, "wsload: connection %u: %s\n", c->id, msg);
	cl->t->failed++;
	if (!cl->go && c->st < C_RUN)
		cl->settled++;
	conn_close(cl, c);
}

/* Make room for N more bytes in C's output buffer; false on ENOMEM. */
static bool
conn_reserve(struct conn *c, size_t n)
{
	if (c->ooff > 0 && c->ooff == c->olen)
		c->ooff = c->olen = 0;
	if (c->olen + n <= c->ocap)
		return true;
	if (c->ooff > 0) {
		memmove(c->obuf, c->obuf + c->ooff, c->olen - c->ooff);
		c->olen -= c->ooff;
		c->ooff = 0;
		if (c->olen + n <= c->ocap)
			return true;
	}
	size_t cap = c->ocap ? c->ocap : 256;
	while (cap < c->olen + n)
		cap *= 2;
	uint8_t *p = realloc(c->obuf, cap);
	if (p == NULL)
		return false;
	c->obuf = p;
	c->ocap = cap;
	return true;
}

/* Append a frame to C's output: header with a random mask, then LEN bytes
   of PAYLOAD masked (WebSocket); or the bytes as they are (tcp://). */
static bool
conn_queue(struct client *cl, struct conn *c, uint8_t opcode,
	   const uint8_t *payload, size_t len)
{
	if (wsload_scheme_raw(cl->o->scheme)) {
		if (!conn_reserve(c, len))
			return false;
		memcpy(c->obuf + c->olen, payload, len);
		c->olen += len;
		return true;
	}
	uint32_t r = client_random(cl);
	uint8_t mask[4];
	memcpy(mask, &r, 4);
	if (!conn_reserve(c, WS_MAX_HEADER + len))
		return false;
	c->olen += ws_frame_header(c->obuf + c->olen, true, opcode, len, mask);
	/* one pass: the copy into the output is the masking */
	ws_mask_copy(c->obuf + c->olen, payload, len, mask, 0);
	c->olen += len;
	return true;
}

/* Write to C's socket or TLS: >0 written, 0 would block, -1 error. */
static ssize_t
conn_write(struct conn *c, const void *p, size_t n)
{
	if (c->ssl != NULL) {
		int r = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
		if (r > 0) {
			c->tls_wants_write = false;
			return r;
		}
		switch (SSL_get_error(c->ssl, r)) {
		case SSL_ERROR_WANT_WRITE:
			c->tls_wants_write = true;
			return 0;
		case SSL_ERROR_WANT_READ:
			return 0;
		default:
			ERR_clear_error();
			errno = errno ? errno : EPROTO;
			return -1;
		}
	}
	ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	return w;
}

/* Read from C: >0 bytes, 0 EOF, -1 would block (errno EAGAIN) or error. */
static ssize_t
conn_read(struct conn *c, void *p, size_t n)
{
	if (c->ssl != NULL) {
		int r = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
		if (r > 0)
			return r;
		switch (SSL_get_error(c->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			errno = EAGAIN;
			return -1;
		case SSL_ERROR_WANT_WRITE:
			c->tls_wants_write = true;
			errno = EAGAIN;
			return -1;
		case SSL_ERROR_ZERO_RETURN:
			return 0;
		case SSL_ERROR_SYSCALL:
			ERR_clear_error();
			if (errno == 0)
				return 0; /* EOF without close_notify */
			return -1;
		default:
			ERR_clear_error();
			errno = EPROTO;
			return -1;
		}
	}
	ssize_t r = recv(c->fd, p, n, 0);
	if (r < 0 && errno == EINTR)
		errno = EAGAIN;
	return r;
}

/* Write out what C has queued; false if C failed. */
static bool
conn_flush(struct client *cl, struct conn *c)
{
	while (c->ooff < c->olen) {
		ssize_t w = conn_write(c, c->obuf + c->ooff, c->olen - c->ooff);
		if (w == 0)
			break;
		if (w < 0) {
			conn_fail(cl, c, "write: %s", strerror(errno));
			return false;
		}
		c->ooff += (size_t)w;
	}
	if (c->ooff == c->olen)
		c->ooff = c->olen = 0;
	return true;
}

/* Echo: start one more round trip on C if the workload allows. */
static bool
conn_echo_send(struct client *cl, struct conn *c)
{
	const struct wsload_opts *o = cl->o;

	if (!client_counting(cl) || (o->count && cl->sent_total >= o->count))
		return false;
	if (!conn_queue(cl, c, WS_OP_BINARY, wsload_pattern_at(c->sent_off),
			o->size))
		return false;
	c->sent_at[c->msgs_sent % o->pipeline] = wsload_now_ns();
	c->sent_off += o->size;
	c->msgs_sent++;
	cl->sent_total++;
	return true;
}

/* Upload: the message just counted may be the last of --count. */
static void
client_upload_counted(struct client *cl)
{
	if (cl->o->count && cl->sent_total >= cl->o->count && !cl->stopping) {
		cl->t_stop = wsload_now_ns();
		cl->stopping = true;
	}
}

/* Upload: keep the socket full of messages, WRITES_PER_EVENT at most. */
static void
conn_upload(struct client *cl, struct conn *c)
{
	const struct wsload_opts *o = cl->o;

	for (int i = 0; i < WRITES_PER_EVENT; i++) {
		if (!conn_flush(cl, c) || c->olen > 0)
			return;
		if (!client_counting(cl) ||
		    (o->count && cl->sent_total >= o->count))
			return;
		if (wsload_scheme_raw(o->scheme)) {
			/* Straight from the pattern: no copy. */
			size_t want = o->size - (size_t)(c->sent_off % o->size);
			ssize_t w = conn_write(c, wsload_pattern_at(c->sent_off),
					       want);
			if (w < 0) {
				conn_fail(cl, c, "write: %s", strerror(errno));
				return;
			}
			if (w == 0)
				return;
			c->sent_off += (uint64_t)w;
			cl->t->bytes += (uint64_t)w;
			if ((size_t)w == want) {
				c->msgs_sent++;
				cl->sent_total++;
				cl->t->msgs++;
				client_upload_counted(cl);
			}
			continue;
		}
		if (!conn_queue(cl, c, WS_OP_BINARY,
				wsload_pattern_at(c->sent_off), o->size)) {
			conn_fail(cl, c, "out of memory");
			return;
		}
		c->sent_off += o->size;
		c->msgs_sent++;
		cl->sent_total++;
		cl->t->msgs++;
		cl->t->bytes += o->size;
		client_upload_counted(cl);
	}
}

/* Raw streams: end C's sending side (TLS close_notify, then FIN). */
static void
conn_send_eof(struct conn *c)
{
	if (c->ssl != NULL) {
		(void)SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	shutdown(c->fd, SHUT_WR);
	c->eof_sent = true;
}

/* The workload is over for C: start closing (WebSocket Close, or FIN). */
static void
conn_begin_close(struct client *cl, struct conn *c)
{
	if (c->st != C_RUN)
		return;
	c->st = C_CLOSING;
	c->deadline = wsload_now_ns() + (uint64_t)(cl->o->timeout * 1e9);
	if (wsload_scheme_raw(cl->o->scheme)) {
		if (!conn_flush(cl, c))
			return;
		if (c->olen == 0)
			conn_send_eof(c);
	} else {
		uint8_t payload[2] = {WS_CLOSE_NORMAL >> 8, WS_CLOSE_NORMAL & 0xff};
		if (!conn_queue(cl, c, WS_OP_CLOSE, payload, 2)) {
			conn_fail(cl, c, "out of memory");
			return;
		}
		c->close_sent = true;
		if (!conn_flush(cl, c))
			return;
	}
	conn_update_events(cl, c);
}

/* True if C has no round trip in flight (echo), or anything else to wait
   for before closing. */
static bool
conn_is_quiet(const struct client *cl, const struct conn *c)
{
	if (cl->o->mode == MODE_ECHO || cl->o->mode == MODE_HANDSHAKE)
		return c->msgs_done == c->msgs_sent;
	if (cl->o->mode == MODE_HOLD)
		return !c->ping_out;
	return true;
}

/* A pong (or a tcp:// ping's echo) arrived. */
static void
conn_pong(struct client *cl, struct conn *c)
{
	if (!c->ping_out)
		return;
	c->ping_out = false;
	cl->t->pongs++;
	c->next_ping = wsload_now_ns() + (uint64_t)(cl->o->ping_interval * 1e9);
}

/* Payload bytes P (N) at stream offset recv_off arrived on C. */
static bool
conn_payload(struct client *cl, struct conn *c, const uint8_t *p, size_t n)
{
	const struct wsload_opts *o = cl->o;

	if (o->mode == MODE_UPLOAD)
		return true; /* a sink answers nothing; ignore what comes */
	if (n > 0 && memcmp(p, wsload_pattern_at(c->recv_off), n) != 0) {
		size_t i = 0;
		while (i < n && p[i] == wsload_pattern_at(c->recv_off)[i])
			i++;
		cl->t->mismatches++;
		conn_fail(cl, c, "content mismatch at stream offset %llu",
			  (unsigned long long)(c->recv_off + i));
		return false;
	}
	c->recv_off += n;
	if (o->mode == MODE_DOWNLOAD) {
		if (client_counting(cl)) {
			cl->t->bytes += n;
			if (o->count && cl->t->bytes >= o->count * o->size) {
				cl->t_stop = wsload_now_ns();
				cl->stopping = true;
			}
		}
		return true;
	}
	if (o->mode == MODE_HOLD) {
		if (c->recv_off > c->sent_off) {
			conn_fail(cl, c, "unexpected data");
			return false;
		}
		if (c->recv_off == c->sent_off)
			conn_pong(cl, c);
		return true;
	}
	/* echo */
	if (c->recv_off > c->sent_off) {
		conn_fail(cl, c, "more data than was sent");
		return false;
	}
	if (o->mode == MODE_HANDSHAKE) {
		if (c->recv_off < o->size)
			return true;
		c->msgs_done++;
		if (client_counting(cl)) {
			uint64_t now = wsload_now_ns();
			wsload_hist_add(&cl->t->hist, now - c->started);
			cl->t->msgs++;
			cl->t->bytes += o->size;
			if (o->count && cl->t->msgs >= o->count) {
				cl->t_stop = now;
				cl->stopping = true;
			}
		}
		conn_recycle(cl, c);
		return false;
	}
	uint64_t now = 0;
	while (c->recv_off >= (c->msgs_done + 1) * o->size) {
		if (now == 0)
			now = wsload_now_ns();
		if (client_counting(cl)) {
			uint64_t at = c->sent_at[c->msgs_done % o->pipeline];
			wsload_hist_add(&cl->t->hist, now - at);
			cl->t->msgs++;
			cl->t->bytes += o->size;
			if (o->count && cl->t->msgs >= o->count) {
				cl->t_stop = now;
				cl->stopping = true;
			}
		}
		c->msgs_done++;
		conn_echo_send(cl, c);
	}
	return conn_flush(cl, c);
}

/* A control frame from the server. */
static bool
conn_control(struct client *cl, struct conn *c, const struct ws_event *ev)
{
	switch (ev->opcode) {
	case WS_OP_PING:
		/* RFC 6455 5.5.3: answer with the same payload. */
		if (!c->close_sent &&
		    !conn_queue(cl, c, WS_OP_PONG, ev->data, ev->len)) {
			conn_fail(cl, c, "out of memory");
			return false;
		}
		return conn_flush(cl, c);
	case WS_OP_PONG:
		if (c->ping_out && ev->len == PING_PAYLOAD &&
		    memcmp(ev->data, &c->ping_seq, PING_PAYLOAD) == 0)
			conn_pong(cl, c);
		return true;
	case WS_OP_CLOSE:
		c->close_rcvd = true;
		if (c->st != C_CLOSING || !c->close_sent) {
			conn_fail(cl, c, "server closed with %u \"%.*s\"",
				  ev->close_code, (int)ev->reason_len,
				  (const char *)ev->reason);
			return false;
		}
		/* Both Close frames seen: the server closes TCP; so may we. */
		conn_close(cl, c);
		return false;
	default:
		return true;
	}
}

/* Feed received bytes to the frame decoder (WebSocket) or straight to the
   payload check (tcp://).  False if C is gone. */
static bool
conn_input(struct client *cl, struct conn *c, uint8_t *p, size_t n)
{
	if (wsload_scheme_raw(cl->o->scheme))
		return conn_payload(cl, c, p, n);
	while (n > 0) {
		struct ws_event ev;
		ssize_t r = ws_decoder_feed(&c->dec, p, n, &ev);
		if (r < 0) {
			conn_fail(cl, c, "protocol error from server: %s",
				  ev.error);
			return false;
		}
		if (ev.type == WS_EV_DATA) {
			if (!conn_payload(cl, c, ev.data, ev.len))
				return false;
		} else if (ev.type == WS_EV_CONTROL) {
			if (!conn_control(cl, c, &ev))
				return false;
		}
		p += r;
		n -= (size_t)r;
		if (r == 0 && ev.type == WS_EV_NONE)
			break;
	}
	return true;
}

/* C is running: start its part of the workload. */
static void
conn_start_work(struct client *cl, struct conn *c)
{
	const struct wsload_opts *o = cl->o;
	uint64_t now = wsload_now_ns();

	if (c->st != C_RUN)
		return;
	switch (o->mode) {
	case MODE_ECHO:
		for (unsigned i = 0; i < o->pipeline; i++)
			if (!conn_echo_send(cl, c))
				break;
		conn_flush(cl, c);
		break;
	case MODE_UPLOAD:
		conn_upload(cl, c);
		break;
	case MODE_HANDSHAKE:
		/* One round trip, then conn_payload recycles C; past the end
		   of the workload, close instead. */
		if (!conn_echo_send(cl, c)) {
			conn_begin_close(cl, c);
			break;
		}
		conn_flush(cl, c);
		break;
	case MODE_HOLD:
		/* Spread the pings over one interval. */
		c->next_ping = now + (uint64_t)(o->ping_interval * 1e9 *
						(client_random(cl) % 1000) / 1000.0);
		break;
	default:
		break;
	}
	if (c->st != C_DONE)
		conn_update_events(cl, c);
}

/* C finished its setup. */
static void
conn_running(struct client *cl, struct conn *c)
{
	c->st = C_RUN;
	cl->in_setup--;
	cl->t->established++;
	free(c->head);
	c->head = NULL;
	if (cl->o->mode == MODE_ECHO || cl->o->mode == MODE_HANDSHAKE) {
		c->sent_at = calloc(cl->o->pipeline, sizeof(*c->sent_at));
		if (c->sent_at == NULL) {
			conn_fail(cl, c, "out of memory");
			return;
		}
	}
	if (!cl->go)
		cl->settled++;
	else
		conn_start_work(cl, c);
}

/* Parse the server's response head (HEAD, LEN bytes, up to the blank
   line): 101, Upgrade: websocket, Connection: upgrade, our accept key. */
static const char *
conn_check_head(const struct conn *c, const struct wsload_opts *o,
		char *head, size_t len)
{
	bool upgrade = false, connection = false, accept = false;
	char *line, *save = NULL;

	head[len] = '\0';
	line = strtok_r(head, "\r\n", &save);
	if (line == NULL || strncmp(line, "HTTP/1.1 101", 12) != 0)
		return line ? line : "empty response";
	while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
		char *colon = strchr(line, ':');
		struct http_str v;
		if (colon == NULL)
			return "malformed response header";
		*colon = '\0';
		v.p = colon + 1;
		while (*v.p == ' ' || *v.p == '\t')
			v.p++;
		v.len = strlen(v.p);
		while (v.len > 0 && (v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
			v.len--;
		if (strcasecmp(line, "Upgrade") == 0)
			upgrade = v.len == 9 && strncasecmp(v.p, "websocket", 9) == 0;
		else if (strcasecmp(line, "Connection") == 0)
			connection = http_list_has_token(v, "upgrade");
		else if (strcasecmp(line, "Sec-WebSocket-Accept") == 0)
			accept = v.len == HTTP_ACCEPT_KEY_LEN &&
				 memcmp(v.p, c->accept, v.len) == 0;
		else if (strcasecmp(line, "Sec-WebSocket-Protocol") == 0 &&
			 (o->subprotocol == NULL ||
			  strlen(o->subprotocol) != v.len ||
			  memcmp(o->subprotocol, v.p, v.len) != 0))
			return "server chose a subprotocol we did not offer";
	}
	if (!upgrade)
		return "no Upgrade: websocket in the response";
	if (!connection)
		return "no Connection: upgrade in the response";
	if (!accept)
		return "wrong or missing Sec-WebSocket-Accept";
	return NULL;
}

/* Send the upgrade request (RFC 6455 4.1) with a fresh key. */
static bool
conn_send_request(struct client *cl, struct conn *c)
{
	const struct wsload_opts *o = cl->o;
	uint8_t raw[16];
	char key[32], req[1600];
	int n;

	for (int i = 0; i < 16; i += 4) {
		uint32_t r = client_random(cl);
		memcpy(raw + i, &r, 4);
	}
	EVP_EncodeBlock((unsigned char *)key, raw, 16);
	if (http_accept_key(key, strlen(key), c->accept) < 0) {
		conn_fail(cl, c, "cannot compute the accept key");
		return false;
	}
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
		     o->path, o->host, o->port, key,
		     o->subprotocol ? "Sec-WebSocket-Protocol: " : "",
		     o->subprotocol ? o->subprotocol : "",
		     o->subprotocol ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(req) || !conn_reserve(c, (size_t)n)) {
		conn_fail(cl, c, "request too long");
		return false;
	}
	memcpy(c->obuf + c->olen, req, (size_t)n);
	c->olen += (size_t)n;
	c->head = malloc(HEAD_MAX + 1);
	if (c->head == NULL) {
		conn_fail(cl, c, "out of memory");
		return false;
	}
	c->head_len = 0;
	c->st = C_HANDSHAKE;
	return conn_flush(cl, c);
}

/* Handshake bytes P (N) arrived: on the blank line check the head, then
   hand what follows it to the decoder. */
static bool
conn_handshake_input(struct client *cl, struct conn *c, uint8_t *p, size_t n)
{
	size_t take = n < HEAD_MAX - c->head_len ? n : HEAD_MAX - c->head_len;
	size_t start = c->head_len >= 3 ? c->head_len - 3 : 0;
	char *end;
	const char *err;

	memcpy(c->head + c->head_len, p, take);
	c->head_len += take;
	c->head[c->head_len] = '\0';
	end = memmem(c->head + start, c->head_len - start, "\r\n\r\n", 4);
	if (end == NULL) {
		if (c->head_len >= HEAD_MAX) {
			conn_fail(cl, c, "response head too long");
			return false;
		}
		return true;
	}
	size_t head_len = (size_t)(end - c->head) + 4;
	size_t rest = c->head_len - head_len + (n - take);
	err = conn_check_head(c, cl->o, c->head, head_len - 2);
	if (err != NULL) {
		conn_fail(cl, c, "handshake refused: %.100s", err);
		return false;
	}
	conn_running(cl, c);
	if (c->st == C_DONE)
		return false;
	return rest == 0 || conn_input(cl, c, p + (n - rest), rest);
}

/* Drive the TLS handshake; then send the upgrade request. */
static bool
conn_tls(struct client *cl, struct conn *c)
{
	int r = SSL_connect(c->ssl);

	if (r == 1) {
		c->tls_wants_write = false;
		if (cl->o->scheme == SCHEME_TLS) {
			conn_running(cl, c);
			return c->st != C_DONE;
		}
		return conn_send_request(cl, c);
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		c->tls_wants_write = false;
		return true;
	case SSL_ERROR_WANT_WRITE:
		c->tls_wants_write = true;
		return true;
	default: {
		unsigned long e = ERR_get_error();
		char buf[120];
		long vr = SSL_get_verify_result(c->ssl);
		ERR_error_string_n(e, buf, sizeof(buf));
		ERR_clear_error();
		if (vr != X509_V_OK)
			conn_fail(cl, c, "TLS: %s",
				  X509_verify_cert_error_string(vr));
		else
			conn_fail(cl, c, "TLS: %s", e ? buf : "handshake failed");
		return false;
	}
	}
}

/* The non-blocking connect finished. */
static bool
conn_connected(struct client *cl, struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		conn_fail(cl, c, "connect: %s", strerror(err));
		return false;
	}
	switch (cl->o->scheme) {
	case SCHEME_TCP:
		conn_running(cl, c);
		return c->st != C_DONE;
	case SCHEME_WSS:
	case SCHEME_TLS:
		c->ssl = SSL_new(cl->ssl_ctx);
		if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
			conn_fail(cl, c, "TLS: cannot create a session");
			return false;
		}
		SSL_set_tlsext_host_name(c->ssl, cl->o->host);
		if (!cl->o->insecure)
			SSL_set1_host(c->ssl, cl->o->host);
		c->st = C_TLS;
		return conn_tls(cl, c);
	default:
		return conn_send_request(cl, c);
	}
}

/* Open connection C: a non-blocking connect to the target. */
static void
conn_start(struct client *cl, struct conn *c)
{
	const struct wsload_opts *o = cl->o;
	struct epoll_event e;
	int one = 1;
	struct ws_decoder_config dc = {
		.max_message = 0,
		.require_mask = false,
		.allow_rsv1 = false,
		.validate_utf8 = false,
	};

	ws_decoder_init(&c->dec, &dc);
	c->st = C_CONNECTING;
	cl->in_setup++;
	c->started = wsload_now_ns();
	c->deadline = c->started + (uint64_t)(o->timeout * 1e9);
	c->fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
						  SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(cl, c, "socket: %s", strerror(errno));
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)&o->addr, o->addr_len) < 0 &&
	    errno != EINPROGRESS) {
		conn_fail(cl, c, "connect: %s", strerror(errno));
		return;
	}
	e.events = EPOLLIN | EPOLLOUT;
	e.data.ptr = c;
	if (epoll_ctl(cl->ep, EPOLL_CTL_ADD, c->fd, &e) < 0) {
		conn_fail(cl, c, "epoll: %s", strerror(errno));
		return;
	}
	c->events = e.events;
}

/* C is readable. */
static void
conn_on_read(struct client *cl, struct conn *c)
{
	for (int i = 0; i < READS_PER_EVENT && c->st != C_DONE; i++) {
		ssize_t r = conn_read(c, cl->rbuf, READ_BUF);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (c->st == C_CLOSING && c->close_rcvd)
				conn_close(cl, c);
			else
				conn_fail(cl, c, "read: %s", strerror(errno));
			return;
		}
		if (r == 0) {
			/* tcp://: EOF after our FIN is the clean end. */
			if (c->st == C_CLOSING && (c->eof_sent || c->close_rcvd) &&
			    conn_is_quiet(cl, c))
				conn_close(cl, c);
			else
				conn_fail(cl, c, "connection closed by the server");
			return;
		}
		bool ok = c->st == C_HANDSHAKE
				  ? conn_handshake_input(cl, c, cl->rbuf, (size_t)r)
				  : conn_input(cl, c, cl->rbuf, (size_t)r);
		if (!ok)
			return;
		if ((size_t)r < READ_BUF)
			return;
	}
}

/* C is writable (or its TLS wants to proceed). */
static void
conn_on_write(struct client *cl, struct conn *c)
{
	if (c->st == C_CONNECTING) {
		conn_connected(cl, c);
		return;
	}
	if (c->st == C_TLS) {
		conn_tls(cl, c);
		return;
	}
	if (c->st == C_RUN && cl->o->mode == MODE_UPLOAD) {
		conn_upload(cl, c);
		return;
	}
	if (!conn_flush(cl, c))
		return;
	if (c->st == C_CLOSING && wsload_scheme_raw(cl->o->scheme) &&
	    !c->eof_sent && c->olen == 0)
		conn_send_eof(c);
}

/* Dispatch one epoll event for C. */
static void
conn_on_event(struct client *cl, struct conn *c, uint32_t ev)
{
	if (c->st == C_CONNECTING) {
		if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			conn_connected(cl, c);
	} else if (c->st == C_TLS) {
		conn_tls(cl, c);
	} else {
		if ((ev & EPOLLOUT) && c->st != C_DONE)
			conn_on_write(cl, c);
		/* TLS: a read that wanted to write resumes on EPOLLOUT. */
		if ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP) ||
		     (c->ssl != NULL && (ev & EPOLLOUT))) && c->st != C_DONE)
			conn_on_read(cl, c);
	}
	if (c->st != C_DONE)
		conn_update_events(cl, c);
}

/* Hold: ping C if it is time; fail it if its last ping went unanswered. */
static void
conn_hold_tick(struct client *cl, struct conn *c, uint64_t now)
{
	if (c->ping_out) {
		if (now > c->deadline)
			conn_fail(cl, c, "no pong within %.1f s", cl->o->timeout);
		return;
	}
	if (now < c->next_ping)
		return;
	c->ping_seq++;
	if (wsload_scheme_raw(cl->o->scheme)) {
		/* tcp:// against an echo: 8 bytes out, the same back. */
		if (!conn_queue(cl, c, 0, wsload_pattern_at(c->sent_off),
				PING_PAYLOAD))
			return;
		c->sent_off += PING_PAYLOAD;
	} else if (!conn_queue(cl, c, WS_OP_PING, (const uint8_t *)&c->ping_seq,
			       PING_PAYLOAD)) {
		return;
	}
	c->ping_out = true;
	c->deadline = now + (uint64_t)(cl->o->timeout * 1e9);
	cl->t->pings++;
	if (conn_flush(cl, c))
		conn_update_events(cl, c);
}

/* Timers, every TICK_MS: setup, pong and close limits; hold pings; the
   end of the workload. */
static void
client_tick(struct client *cl)
{
	const struct wsload_opts *o = cl->o;
	uint64_t now = wsload_now_ns();

	if (!cl->go && (cl->settled == o->conns ||
			(cl->done == o->conns))) {
		cl->go = true;
		cl->t_go = now;
		for (unsigned i = 0; i < o->conns; i++)
			conn_start_work(cl, &cl->conns[i]);
		if (!o->quiet)
			fprintf(stderr, "wsload: %u of %u connections up\n",
				cl->t->established, o->conns);
	}
	if (cl->go && !cl->stopping &&
	    ((o->duration > 0 && now - cl->t_go >= (uint64_t)(o->duration * 1e9)) ||
	     client_interrupted)) {
		cl->stopping = true;
		cl->t_stop = now;
	}
	if (cl->stopping && o->mode == MODE_HOLD && cl->t->held == 0) {
		for (unsigned i = 0; i < o->conns; i++)
			if (cl->conns[i].st == C_RUN)
				cl->t->held++;
	}
	for (unsigned i = 0; i < o->conns; i++) {
		struct conn *c = &cl->conns[i];
		switch (c->st) {
		case C_CONNECTING:
		case C_TLS:
		case C_HANDSHAKE:
			if (now > c->deadline)
				conn_fail(cl, c, "setup took longer than %.1f s",
					  o->timeout);
			break;
		case C_RUN:
			if (cl->stopping) {
				if (conn_is_quiet(cl, c))
					conn_begin_close(cl, c);
				else if (now - cl->t_stop >
					 (uint64_t)(o->timeout * 1e9))
					conn_fail(cl, c, "no answer within "
						  "%.1f s", o->timeout);
			} else if (o->mode == MODE_HOLD && cl->go) {
				conn_hold_tick(cl, c, now);
			}
			break;
		case C_CLOSING:
			if (now > c->deadline)
				conn_fail(cl, c, "close took longer than %.1f s",
					  o->timeout);
			break;
		default:
			break;
		}
	}
}

/* Build the TLS context for wss://. */
static SSL_CTX *
client_tls_ctx(const struct wsload_opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Every handshake a full one: no tickets, no session cache.  A peer
	   that closes without close_notify reads as EOF, as with OpenSSL 1.1:
	   whether EOF was expected is decided by the workload's state. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (o->insecure) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((o->ca_file != NULL &&
	     SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1) ||
	    (o->ca_file == NULL && SSL_CTX_set_default_verify_paths(ctx) != 1)) {
		fprintf(stderr, "wsload: cannot load CA certificates%s%s\n",
			o->ca_file ? " from " : "", o->ca_file ? o->ca_file : "");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Run the workload. */
int
wsload_client_run(const struct wsload_opts *o, struct wsload_totals *t)
{
	struct client cl = {.o = o, .t = t, .ep = -1};
	struct epoll_event evs[256];
	struct sigaction sa;
	int rc = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = client_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (getrandom(&cl.rng, sizeof(cl.rng), 0) != sizeof(cl.rng) ||
	    cl.rng == 0)
		cl.rng = wsload_now_ns() | 1;
	cl.rbuf = malloc(READ_BUF);
	cl.conns = calloc(o->conns, sizeof(*cl.conns));
	cl.ep = epoll_create1(EPOLL_CLOEXEC);
	if (cl.rbuf == NULL || cl.conns == NULL || cl.ep < 0) {
		fprintf(stderr, "wsload: out of memory\n");
		goto out;
	}
	if (wsload_scheme_tls(o->scheme) &&
	    (cl.ssl_ctx = client_tls_ctx(o)) == NULL)
		goto out;
	if (o->mode == MODE_HANDSHAKE) {
		/* Setting up is the workload: it is measured from the start. */
		cl.go = true;
		cl.t_go = wsload_now_ns();
	}
	for (unsigned i = 0; i < o->conns; i++) {
		cl.conns[i].fd = -1;
		cl.conns[i].id = i;
	}

	uint64_t next_tick = wsload_now_ns();
	while (cl.done < o->conns) {
		while (cl.next_start < o->conns && cl.in_setup < o->connect_window)
			conn_start(&cl, &cl.conns[cl.next_start++]);
		int n = epoll_wait(cl.ep, evs, 256, TICK_MS);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "wsload: epoll_wait: %s\n", strerror(errno));
			goto out;
		}
		for (int i = 0; i < n; i++)
			conn_on_event(&cl, evs[i].data.ptr, evs[i].events);
		uint64_t now = wsload_now_ns();
		if (now >= next_tick || client_interrupted) {
			client_tick(&cl);
			next_tick = now + TICK_MS * 1000000ull;
		}
	}
	if (!cl.go)
		cl.t_go = cl.t_stop = wsload_now_ns();
	if (!cl.stopping)
		cl.t_stop = wsload_now_ns();
	t->seconds = (double)(cl.t_stop - cl.t_go) / 1e9;
	rc = 0;
out:
	if (cl.conns != NULL)
		for (unsigned i = 0; i < o->conns; i++)
			conn_close(&cl, &cl.conns[i]);
	free(cl.conns);
	free(cl.rbuf);
	if (cl.ep >= 0)
		close(cl.ep);
	SSL_CTX_free(cl.ssl_ctx);
	return rc;
}
