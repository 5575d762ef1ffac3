/*
 * server.c - one worker: its event_base, DNS resolver, listeners and the
 * list of live sessions, and the graceful shutdown that walks them.
 */
#include "server.h"

#include <stdlib.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "listener.h"
#include "log.h"
#include "session.h"

/* A new server; see server.h. */
struct server *
server_new(struct event_base *base, const struct config *cfg)
{
	struct server *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		return NULL;
	srv->base = base;
	srv->cfg = cfg;
	/* Reads /etc/resolv.conf and /etc/hosts; without them names are
	   still tried against nothing and fail as DNS errors. */
	srv->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
						EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (srv->dns == NULL) {
		log_warn("no usable /etc/resolv.conf: upstream host names "
			 "cannot be resolved");
		srv->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (srv->dns != NULL)
			evdns_base_load_hosts(srv->dns, NULL);
	}
	return srv;
}

/* Bind every listen address. */
int
server_listen(struct server *srv)
{
	const struct config *cfg = srv->cfg;

	srv->listeners = calloc(cfg->n_listens, sizeof(*srv->listeners));
	if (srv->listeners == NULL)
		return -1;
	for (size_t i = 0; i < cfg->n_listens; i++) {
		srv->listeners[i] = listener_new(srv, &cfg->listens[i]);
		if (srv->listeners[i] == NULL)
			return -1;
		srv->n_listeners++;
		log_info("listening on %s", cfg->listens[i].text);
	}
	return 0;
}

/* Close every listener. */
static void
server_close_listeners(struct server *srv)
{
	for (size_t i = 0; i < srv->n_listeners; i++)
		listener_free(srv->listeners[i]);
	free(srv->listeners);
	srv->listeners = NULL;
	srv->n_listeners = 0;
}

/* The drain timeout passed: drop whoever is left and leave the loop. */
static void
server_drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	log_warn("drain timeout: dropping %u session(s)", srv->n_sessions);
	for (struct session *s = srv->sessions; s != NULL; s = session_next(s))
		session_abort(s);
	event_base_loopexit(srv->base, NULL);
}

/* Begin a graceful shutdown; see server.h. */
void
server_shutdown(struct server *srv)
{
	struct timeval tv;
	uint64_t ms = srv->cfg->limits.drain_timeout_ms;

	if (srv->draining)
		return;
	srv->draining = true;
	server_close_listeners(srv);
	log_info("shutting down: %u session(s) open", srv->n_sessions);
	for (struct session *s = srv->sessions; s != NULL; s = session_next(s))
		session_shutdown(s);
	if (srv->n_sessions == 0) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	srv->drain_timer = evtimer_new(srv->base, server_drain_timeout_cb, srv);
	if (srv->drain_timer == NULL) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(srv->drain_timer, &tv);
}

/* A session is gone. */
void
server_session_gone(struct server *srv)
{
	srv->n_sessions--;
	if (srv->draining && srv->n_sessions == 0)
		event_base_loopexit(srv->base, NULL);
}

/* Free the server and what is left in it. */
void
server_free(struct server *srv)
{
	if (srv == NULL)
		return;
	server_close_listeners(srv);
	while (srv->sessions != NULL)
		session_free(srv->sessions);
	if (srv->drain_timer != NULL)
		event_free(srv->drain_timer);
	if (srv->dns != NULL)
		evdns_base_free(srv->dns, 1);
	free(srv);
}
