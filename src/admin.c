/*
 * admin.c - the admin endpoint: /healthz and /metrics over plain HTTP.
 *
 * One request per connection (Connection: close), parsed with the same
 * upgrade-request parser as the gateway (a plain GET is one of its results),
 * bounded in size and time like any client.  Idle connections must not lock
 * out the orchestrator's probes: a connection has ADMIN_REQUEST_TIMEOUT_S
 * from its accept to a whole request, however it trickles bytes (like
 * nginx's client_header_timeout, HAProxy's timeout http-request), and at
 * the ADMIN_MAX_CONNS cap a new connection closes the oldest one that has
 * not sent a whole request yet instead of being refused.
 */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "http_upgrade.h"
#include "log.h"

#define ADMIN_REQUEST_TIMEOUT_S 5 /* accept to a whole request */
#define ADMIN_WRITE_TIMEOUT_S 5   /* no progress sending the response */
#define ADMIN_MAX_CONNS 64

struct admin_conn {
	struct admin *admin;
	struct admin_conn *prev, *next;
	struct bufferevent *bev;
	struct http_upgrade *http;
	struct event *deadline; /* ADMIN_REQUEST_TIMEOUT_S after the accept */
	bool responded;
};

struct admin {
	struct evconnlistener *evl;
	admin_health_fn health;
	admin_metrics_fn metrics;
	void *arg;
	bool draining;
	struct admin_conn *conns; /* newest first */
	unsigned n_conns;
};

/* Free one connection. */
static void
admin_conn_free(struct admin_conn *c)
{
	struct admin *a = c->admin;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	a->n_conns--;
	if (c->deadline != NULL)
		event_free(c->deadline);
	bufferevent_free(c->bev);
	http_upgrade_free(c->http);
	free(c);
}

/* A response is queued: stop reading and the request deadline. */
static void
admin_conn_responded(struct admin_conn *c)
{
	c->responded = true;
	event_del(c->deadline);
	bufferevent_disable(c->bev, EV_READ);
}

/* The answer when even a response body cannot be allocated. */
static void
admin_respond_oom(struct admin_conn *c)
{
	static const char resp[] = "HTTP/1.1 500 Internal Server Error\r\n"
				   "Content-Length: 0\r\nConnection: close"
				   "\r\n\r\n";

	bufferevent_write(c->bev, resp, sizeof(resp) - 1);
	admin_conn_responded(c);
}

/* Queue a whole response: STATUS, CTYPE and BODY (moved from BODY). */
static void
admin_respond(struct admin_conn *c, int status, const char *ctype,
	      struct evbuffer *body)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
			    "Content-Length: %zu\r\nCache-Control: no-store\r\n"
			    "Connection: close\r\n\r\n",
			    status, http_status_reason(status), ctype,
			    evbuffer_get_length(body));
	evbuffer_add_buffer(out, body);
	admin_conn_responded(c);
}

/* Answer a complete request. */
static void
admin_handle(struct admin_conn *c)
{
	struct admin *a = c->admin;
	struct http_str path = http_upgrade_path(c->http);
	struct evbuffer *body = evbuffer_new();
	int status;
	const char *ctype = "text/plain; charset=utf-8";

	if (body == NULL) {
		admin_respond_oom(c);
		return;
	}
	if (http_upgrade_is_websocket(c->http)) {
		status = 400;
		evbuffer_add_printf(body, "the admin endpoint does not "
					  "upgrade\n");
	} else if (path.len == 8 && memcmp(path.p, "/healthz", 8) == 0) {
		bool ok = !a->draining && a->health(a->arg);
		status = ok ? 200 : 503;
		evbuffer_add_printf(body, ok ? "ok\n" : "draining\n");
	} else if (path.len == 8 && memcmp(path.p, "/metrics", 8) == 0) {
		if (a->metrics(body, a->arg) < 0) {
			evbuffer_drain(body, evbuffer_get_length(body));
			status = 500;
			evbuffer_add_printf(body, "out of memory\n");
		} else {
			status = 200;
			ctype = "text/plain; version=0.0.4; charset=utf-8";
		}
	} else {
		status = 404;
		evbuffer_add_printf(body, "not found: try /healthz or "
					  "/metrics\n");
	}
	admin_respond(c, status, ctype, body);
	evbuffer_free(body);
}

/* Request bytes. */
static void
admin_read_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!c->responded) {
		struct evbuffer_iovec v;
		size_t used = 0;
		enum http_upgrade_status st;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return;
		st = http_upgrade_feed(c->http, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		if (st == HTTP_UPGRADE_DONE) {
			admin_handle(c);
		} else if (st == HTTP_UPGRADE_ERROR) {
			enum http_upgrade_error e = http_upgrade_error(c->http);
			struct evbuffer *body = evbuffer_new();
			if (body == NULL) {
				admin_respond_oom(c);
				return;
			}
			evbuffer_add_printf(body, "%s\n",
					    http_upgrade_error_text(e));
			admin_respond(c, http_upgrade_error_status(e),
				      "text/plain; charset=utf-8", body);
			evbuffer_free(body);
		}
	}
	evbuffer_drain(in, evbuffer_get_length(in));
}

/* Output drained: done once the response is out. */
static void
admin_write_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn *c = arg;

	(void)bev;
	if (c->responded)
		admin_conn_free(c);
}

/* EOF, error or timeout. */
static void
admin_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	admin_conn_free(arg);
}

/* No whole request within ADMIN_REQUEST_TIMEOUT_S of the accept. */
static void
admin_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	admin_conn_free(arg);
}

/* At the cap: close the oldest connection still without a whole request;
   false if every one is already sending its response. */
static bool
admin_evict_oldest_idle(struct admin *a)
{
	struct admin_conn *c, *victim = NULL;

	for (c = a->conns; c != NULL; c = c->next)
		if (!c->responded)
			victim = c;
	if (victim == NULL)
		return false;
	log_debug("admin: %u connections, closing the oldest one that has "
		  "sent no whole request",
		  a->n_conns);
	admin_conn_free(victim);
	return true;
}

/* A new admin connection. */
static void
admin_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
		struct sockaddr *addr, int len, void *arg)
{
	struct admin *a = arg;
	struct http_limits lim = {.max_request_line = 1024,
				  .max_header_bytes = 8192,
				  .max_headers = 64};
	struct timeval req_tv = {ADMIN_REQUEST_TIMEOUT_S, 0};
	struct timeval write_tv = {ADMIN_WRITE_TIMEOUT_S, 0};
	struct event_base *base = evconnlistener_get_base(evl);
	struct admin_conn *c;

	(void)addr;
	(void)len;
	if (a->n_conns >= ADMIN_MAX_CONNS && !admin_evict_oldest_idle(a)) {
		evutil_closesocket(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->admin = a;
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->http = http_upgrade_new(&lim);
	c->deadline = evtimer_new(base, admin_deadline_cb, c);
	if (c->bev == NULL || c->http == NULL || c->deadline == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			evutil_closesocket(fd);
		http_upgrade_free(c->http);
		if (c->deadline != NULL)
			event_free(c->deadline);
		free(c);
		return;
	}
	c->next = a->conns;
	if (a->conns != NULL)
		a->conns->prev = c;
	a->conns = c;
	a->n_conns++;
	bufferevent_setcb(c->bev, admin_read_cb, admin_write_cb,
			  admin_event_cb, c);
	/* The deadline, not a read timeout: each read would restart that. */
	evtimer_add(c->deadline, &req_tv);
	bufferevent_set_timeouts(c->bev, NULL, &write_tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* Listen; see admin.h. */
struct admin *
admin_new(struct event_base *base, const struct config_listen *cl,
	  admin_health_fn health, admin_metrics_fn metrics, void *arg)
{
	struct admin *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->health = health;
	a->metrics = metrics;
	a->arg = arg;
	a->evl = evconnlistener_new_bind(
		base, admin_accept_cb, a,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
			LEV_OPT_REUSEABLE,
		64, (const struct sockaddr *)&cl->addr, (int)cl->addr_len);
	if (a->evl == NULL) {
		log_error("%s: cannot listen (admin): %s", cl->text,
			  strerror(EVUTIL_SOCKET_ERROR()));
		free(a);
		return NULL;
	}
	return a;
}

/* /healthz answers 503 from now on. */
void
admin_set_draining(struct admin *a)
{
	if (a != NULL)
		a->draining = true;
}

/* Close everything. */
void
admin_free(struct admin *a)
{
	if (a == NULL)
		return;
	while (a->conns != NULL)
		admin_conn_free(a->conns);
	evconnlistener_free(a->evl);
	free(a);
}
