/*
 * session_close.c - ending a session: our Close frame, failing the
 * connection (RFC 6455 7.1.7), closing the upstream (flush, now or reset)
 * and the client (lingering close, RFC 6455 7.1.1).
 */
#include "session_int.h"

#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>

#include "config.h"
#include "frame_queue.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"
#include "worker_ctx.h"

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

/* Fail the WebSocket connection (RFC 6455 7.1.7): Close with CODE, stop
   processing client data, close TCP once the Close is out. */
void
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
