/*
 * session_close.c - ending a session: one table from each way a session
 * ends (enum session_end_event) to who closed it, the Close code, the
 * reason, and what becomes of the upstream and of the client (session_end);
 * our Close frame, failing the connection (RFC 6455 7.1.7), closing the
 * upstream (flush, now or reset) and the client (lingering close, RFC 6455
 * 7.1.1).
 */
#include "session_int.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>

#include "config.h"
#include "frame_queue.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"
#include "worker_ctx.h"

/* What becomes of the upstream when a session ends. */
enum end_up {
	END_UP_KEEP,  /* as it is */
	END_UP_FLUSH, /* UP_CLOSE_FLUSH */
	END_UP_NOW,   /* UP_CLOSE_NOW */
	END_UP_RESET, /* UP_CLOSE_RESET */
};

/* What becomes of the client.  0 is no row: every event has one. */
enum end_client {
	END_CLIENT_KEEP = 1, /* as it is */
	END_CLIENT_CLOSE,    /* our Close, then the closing handshake */
	END_CLIENT_FAIL,     /* our Close, TCP closed once it is out
				(fail_fast, RFC 6455 7.1.7) */
	END_CLIENT_DROP,     /* TCP closed now */
	END_CLIENT_RST,      /* TCP reset now */
};

/* Row flags. */
#define END_FAILURE 0x01  /* an upstream failure: the reason is its text,
			     the code the route's for it */
#define END_INFO 0x02     /* logged at info: "closing with CODE: REASON" */
#define END_1006 0x04     /* code logged 1006: no Close either way */
#define END_1006_UNSENT 0x08 /* ...unless our Close is out */
#define END_DETAIL_REPLACES 0x10 /* the detailed reason replaces one set
				    before (closed_by stays) */

struct end_row {
	const char *who;    /* closed_by; NULL: as set by the end before */
	const char *reason; /* NULL: the failure's text, or the detail */
	unsigned code;      /* our Close; 0: the route's (END_FAILURE) or
			       the caller's (session_end_code) */
	enum upstream_failure failure; /* END_FAILURE */
	enum end_up up;
	enum end_client client;
	unsigned flags;
};

#define C_ "client"
#define G_ "gateway"
#define U_ "upstream"

/* The table.  A row's effects run in this order, the triples' order: the
   info line, the reason, the logged code, fail_fast, the upstream, the
   client (so the upstream is closed before our Close stops reading it, and
   the reason is set before the client goes). */
static const struct end_row end_rows[SESSION_END_N] = {
	/* event                      who  reason  code  failure
	                                   upstream  client  flags */
	[SESSION_END_CLIENT_EOF_EARLY] = {C_, "client closed before upgrade", 0,
		UPSTREAM_OK, END_UP_KEEP, END_CLIENT_DROP, 0},
	[SESSION_END_CLIENT_RESET_EARLY] = {C_, "client reset before upgrade", 0,
		UPSTREAM_OK, END_UP_KEEP, END_CLIENT_DROP, 0},
	[SESSION_END_CLIENT_TLS_FAILED] = {C_, "TLS handshake failed", 0,
		UPSTREAM_OK, END_UP_KEEP, END_CLIENT_DROP, 0},
	/* RFC 6455 7.1.5: gone without a Close is logged 1006; what it
	   sent before its FIN still goes on. */
	[SESSION_END_CLIENT_VANISHED] = {C_, "client vanished", 0,
		UPSTREAM_OK, END_UP_FLUSH, END_CLIENT_DROP, END_1006_UNSENT},
	/* RST at once; its strerror, when known, replaces even an earlier
	   end's reason (as session_replace_reason always did here). */
	[SESSION_END_CLIENT_RESET] = {C_, "client reset", 0,
		UPSTREAM_OK, END_UP_RESET, END_CLIENT_DROP,
		END_1006_UNSENT | END_DETAIL_REPLACES},
	[SESSION_END_CLIENT_VANISHED_UNREAD] = {C_, "client vanished", 0,
		UPSTREAM_OK, END_UP_KEEP, END_CLIENT_KEEP, END_1006_UNSENT},
	[SESSION_END_CLIENT_PROTOCOL] = {C_, NULL, 0,
		UPSTREAM_OK, END_UP_FLUSH, END_CLIENT_FAIL, END_INFO},
	[SESSION_END_CLIENT_GONE] = {NULL, NULL, 0,
		UPSTREAM_OK, END_UP_KEEP, END_CLIENT_DROP, 0},

	[SESSION_END_HANDSHAKE_TIMEOUT] = {G_, "handshake timeout", 0,
		UPSTREAM_OK, END_UP_KEEP, END_CLIENT_DROP, 0},
	[SESSION_END_TLS_HANDSHAKE_TIMEOUT] = {G_, "TLS handshake timeout", 0,
		UPSTREAM_OK, END_UP_KEEP, END_CLIENT_DROP, 0},
	[SESSION_END_BAD_PROXY_HEADER] = {G_, "bad PROXY header", 0,
		UPSTREAM_OK, END_UP_KEEP, END_CLIENT_DROP, 0},
	[SESSION_END_SHUTDOWN_EARLY] = {G_, "gateway shutting down", 0,
		UPSTREAM_OK, END_UP_KEEP, END_CLIENT_DROP, 0},
	[SESSION_END_SHUTDOWN] = {G_, "gateway shutting down",
		WS_CLOSE_GOING_AWAY,
		UPSTREAM_OK, END_UP_FLUSH, END_CLIENT_CLOSE, 0},
	[SESSION_END_DRAIN_TIMEOUT] = {G_, "drain timeout", 0,
		UPSTREAM_OK, END_UP_NOW, END_CLIENT_DROP, 0},
	/* auth_failure = close: the page sees why (RFC 6455 7.4.1) */
	[SESSION_END_POLICY] = {G_, NULL, WS_CLOSE_POLICY,
		UPSTREAM_OK, END_UP_FLUSH, END_CLIENT_FAIL, END_INFO},
	[SESSION_END_NO_MEMORY] = {G_, "out of memory", WS_CLOSE_INTERNAL_ERROR,
		UPSTREAM_OK, END_UP_FLUSH, END_CLIENT_FAIL, END_INFO},
	[SESSION_END_QUEUE_NO_MEMORY] = {G_, "out of memory", 0,
		UPSTREAM_OK, END_UP_KEEP, END_CLIENT_RST, 0},
	/* Sets no reason, unlike its twin above: kept as it was. */
	[SESSION_END_PACK_NO_MEMORY] = {NULL, NULL, 0,
		UPSTREAM_OK, END_UP_KEEP, END_CLIENT_RST, 0},
	[SESSION_END_IDLE_TIMEOUT] = {G_, "idle timeout", WS_CLOSE_NORMAL,
		UPSTREAM_OK, END_UP_FLUSH, END_CLIENT_CLOSE, 0},
	[SESSION_END_PONG_TIMEOUT] = {G_, "pong timeout", 0,
		UPSTREAM_OK, END_UP_NOW, END_CLIENT_DROP, END_1006},
	[SESSION_END_CLOSE_TIMEOUT] = {G_, "close timeout", 0,
		UPSTREAM_OK, END_UP_NOW, END_CLIENT_DROP, 0},
	[SESSION_END_LINGER_TIMEOUT] = {NULL, NULL, 0,
		UPSTREAM_OK, END_UP_NOW, END_CLIENT_DROP, 0},
	/* The Close goes behind what is already in its output, which it has
	   close_timeout to take. */
	[SESSION_END_CLIENT_STALLED] = {G_, "client stalled",
		WS_CLOSE_INTERNAL_ERROR,
		UPSTREAM_OK, END_UP_NOW, END_CLIENT_FAIL, 0},
	[SESSION_END_CLIENT_STALLED_LATE] = {G_, "client stalled", 0,
		UPSTREAM_OK, END_UP_NOW, END_CLIENT_DROP, 0},
	[SESSION_END_UPSTREAM_STALLED] = {G_, "upstream stalled",
		WS_CLOSE_INTERNAL_ERROR,
		UPSTREAM_OK, END_UP_RESET, END_CLIENT_CLOSE, 0},

	[SESSION_END_UPSTREAM_CLOSED] = {U_, "upstream closed", WS_CLOSE_NORMAL,
		UPSTREAM_OK, END_UP_NOW, END_CLIENT_CLOSE, 0},
	[SESSION_END_UPSTREAM_BAD_UTF8] = {U_, "upstream sent invalid UTF-8",
		WS_CLOSE_INTERNAL_ERROR,
		UPSTREAM_OK, END_UP_FLUSH, END_CLIENT_FAIL, END_INFO},
	[SESSION_END_UPSTREAM_ABORTED] = {U_, NULL, 0,
		UPSTREAM_RESET, END_UP_RESET, END_CLIENT_RST,
		END_FAILURE | END_1006},
	/* Every upstream failure (UPSTREAM_OK's row is never used): reset
	   the upstream, Close with the route's code for it. */
#define END_ROW_UPSTREAM_(name, text) \
	[SESSION_END_##name] = {U_, NULL, 0, \
		name, END_UP_RESET, END_CLIENT_CLOSE, END_FAILURE},
	UPSTREAM_FAILURES(END_ROW_UPSTREAM_)
#undef END_ROW_UPSTREAM_
};

#undef C_
#undef G_
#undef U_

/* The row for upstream failure F. */
enum session_end_event
session_end_upstream(enum upstream_failure f)
{
	assert((unsigned)f < UPSTREAM_N_FAILURES);
	return (enum session_end_event)(SESSION_END_UPSTREAM_OK + (int)f);
}

/* End S as EV's row says; CODE stands in for a row without one, DETAIL
   is added to its reason ("REASON: DETAIL") or is the reason. */
static void
session_end_as(struct session *s, enum session_end_event ev, unsigned code,
	       const char *detail)
{
	const struct end_row *row;
	const char *base, *reason;
	char buf[96];

	assert((unsigned)ev < SESSION_END_N);
	row = &end_rows[ev];
	assert(row->client != 0); /* every event has a row */
	base = (row->flags & END_FAILURE) ? upstream_failure_text(row->failure)
					  : row->reason;
	reason = base;
	if (base == NULL) {
		reason = detail;
		/* Only the rows that set no reason and send no Close go
		   without one. */
		assert(reason != NULL || (row->who == NULL &&
					  row->client != END_CLIENT_CLOSE &&
					  row->client != END_CLIENT_FAIL));
	} else if (detail != NULL) {
		snprintf(buf, sizeof(buf), "%s: %s", base, detail);
		reason = buf;
	}
	if (row->flags & END_FAILURE)
		code = upstream_failure_code(s->route, row->failure);
	else if (row->code != 0)
		code = row->code;

	if (row->flags & END_INFO)
		log_info("%s: closing with %u: %s", s->peer, code, reason);
	if (row->who != NULL) {
		if ((row->flags & END_DETAIL_REPLACES) && detail != NULL) {
			session_set_reason(s, row->who, base);
			session_replace_reason(s, reason);
		} else {
			session_set_reason(s, row->who, reason);
		}
	}
	if ((row->flags & END_1006) ||
	    ((row->flags & END_1006_UNSENT) && !s->close_sent))
		s->code_logged = WS_CLOSE_ABNORMAL;
	if (row->client == END_CLIENT_FAIL)
		s->fail_fast = 1;

	switch (row->up) {
	case END_UP_KEEP:
		break;
	case END_UP_FLUSH:
		session_up_close(s, UP_CLOSE_FLUSH);
		break;
	case END_UP_NOW:
		session_up_close(s, UP_CLOSE_NOW);
		break;
	case END_UP_RESET:
		session_up_close(s, UP_CLOSE_RESET);
		break;
	}
	switch (row->client) {
	case END_CLIENT_KEEP:
		break;
	case END_CLIENT_CLOSE:
	case END_CLIENT_FAIL:
		session_send_close(s, code, reason);
		break;
	case END_CLIENT_DROP:
		session_client_drop(s, false);
		break;
	case END_CLIENT_RST:
		session_client_drop(s, true);
		break;
	}
}

/* End S for EV, as its row says. */
void
session_end(struct session *s, enum session_end_event ev)
{
	session_end_as(s, ev, 0, NULL);
}

/* End S for EV with DETAIL added to the row's reason (or, for a row with
   none, as the reason); NULL: none. */
void
session_end_detail(struct session *s, enum session_end_event ev,
		   const char *detail)
{
	session_end_as(s, ev, 0, detail);
}

/* End S for EV, a row whose Close code the caller knows: CODE, and
   DETAIL as in session_end_detail. */
void
session_end_code(struct session *s, enum session_end_event ev, unsigned code,
		 const char *detail)
{
	session_end_as(s, ev, code, detail);
}

/* Close the client connection now (RST if RESET). */
void
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
	frame_queue_clear(s->to_client);
	session_maybe_done(s);
}

/* The client's side is finished: shut it for writing, discard input until
   its FIN or the close timeout (lingering close). */
void
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
void
session_arm_close(struct session *s)
{
	s->close_armed = 1;
	session_arm(s->timer, s->cfg->limits.close_timeout_ms);
}

/* Queue a Close frame with CODE and REASON behind the data already queued;
   stop reading the upstream and start the close timer. */
void
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
	metrics_close_code(&s->w->metrics, code, 1);
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

/* Close the upstream as MODE says. */
void
session_up_close(struct session *s, enum up_close_mode mode)
{
	if (s->conn != NULL) {
		upstream_conn_free(s->conn);
		s->conn = NULL;
	}
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
void
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
