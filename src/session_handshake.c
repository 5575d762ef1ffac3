/*
 * session_handshake.c - from the accepted socket to an open WebSocket: the
 * PROXY header, the HTTP upgrade request, the TLS client certificate,
 * admission (routes, origins, tokens, per-IP limits), the 101 or an HTTP
 * error; then session_up_start (session_upstream.c) connects the upstream.
 */
#include "session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>

#include <openssl/ssl.h>

#include "access_check.h"
#include "config.h"
#include "http_upgrade.h"
#include "ip_limit.h"
#include "log.h"
#include "metrics.h"
#include "proxy_proto.h"
#include "tls.h"
#include "worker_ctx.h"

static void session_reject(struct session *s, int status, const char *body);
static const char * session_pick_protocol(const struct session *s);
static const char * session_client_cert_refusal(const struct session *s);
static bool session_admit(struct session *s, struct access_verdict *v);
static void session_handshake_done(struct session *s);
static int session_proxy_header(struct session *s);

/* Answer with an HTTP error and close after it is sent. */
static void
session_reject(struct session *s, int status, const char *body)
{
	char buf[512];
	int n;

	/* Not a session_end row: the reason is the HTTP body, and the client
	   is closed only once the answer is out (session_client_write_cb). */
	s->http_status = status;
	metrics_handshake_failure(&s->w->metrics, status);
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

/* Format the real client (and the peer, if another) for the logs. */
void
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
	size_t idx;

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
	if (s->w->ip_limit != NULL) {
		enum ip_limit_verdict iv = ip_limit_acquire(
			s->w->ip_limit, (struct sockaddr *)&s->addrs->client,
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
	idx = (size_t)(s->route - s->cfg->routes);
	access_check_request(s->cfg, s->route, s->w->auth_files[idx],
			     s->w->target_files[idx], s->http, v);
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

	if (s->w->draining) {
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
	if (s->cfg != s->w->cfg) {
		struct config *old = s->cfg;
		s->cfg = config_ref(s->w->cfg);
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
	s->rm = metrics_route(&s->w->metrics, s->route->path);
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
		s->idle_timer = evtimer_new(s->w->base, session_idle_cb, s);
		if (s->idle_timer == NULL) {
			session_end(s, SESSION_END_NO_MEMORY);
			return;
		}
		session_arm(s->idle_timer, cfg->limits.idle_timeout_ms);
	}

	if (verdict.close_1008) {
		/* auth_failure = close: the page sees why (RFC 6455 7.4.1) */
		log_info("%s: %s: refused after the upgrade: %s", s->peer,
			 s->route->path, verdict.reason);
		session_end_detail(s, SESSION_END_POLICY, verdict.reason);
		return;
	}
	if (!s->is_echo && !session_up_start(s, &verdict))
		return;
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
			session_end(s, SESSION_END_BAD_PROXY_HEADER);
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
void
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

/* The client's TLS handshake finished: note the version and the verified
   client certificate, if any. */
void
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
void
session_client_tls_failed(struct session *s, struct bufferevent *bev,
			  short what, int err)
{
	char errs[512];
	size_t first;

	tls_bev_errors(bev, errs, sizeof(errs));
	metrics_add(&s->w->metrics.tls_handshake_failures, 1);
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
	errs[strcspn(errs, ";")] = '\0'; /* the first error is the reason */
	session_end_detail(s, SESSION_END_CLIENT_TLS_FAILED, errs);
}
