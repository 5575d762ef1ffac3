/*
 * server.c - one worker: its event_base, DNS resolver, listeners and the
 * list of live sessions, and the graceful shutdown that walks them.
 */
#include "server.h"

#include <stdlib.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "ip_limit.h"
#include "listener.h"
#include "log.h"
#include "session.h"
#include "token_file.h"

/* Open and read the token files of every route; 0 or -1 (logged). */
static int
server_load_token_files(struct server *srv)
{
	const struct config *cfg = srv->cfg;

	srv->auth_files = calloc(cfg->n_routes + 1, sizeof(*srv->auth_files));
	srv->target_files = calloc(cfg->n_routes + 1,
				   sizeof(*srv->target_files));
	if (srv->auth_files == NULL || srv->target_files == NULL)
		return -1;
	for (size_t i = 0; i < cfg->n_routes; i++) {
		const struct config_route *r = &cfg->routes[i];
		if (r->auth_tokens != NULL) {
			srv->auth_files[i] =
				token_file_new(r->auth_tokens, TOKEN_FILE_AUTH);
			if (srv->auth_files[i] == NULL ||
			    token_file_refresh(srv->auth_files[i]) < 0) {
				log_error("route %s: cannot load auth_tokens %s",
					  r->path, r->auth_tokens);
				return -1;
			}
		}
		if (r->kind == UPSTREAM_TOKENFILE) {
			srv->target_files[i] = token_file_new(
				r->token_file, TOKEN_FILE_TARGETS);
			if (srv->target_files[i] == NULL ||
			    token_file_refresh(srv->target_files[i]) < 0) {
				log_error("route %s: cannot load %s", r->path,
					  r->upstream);
				return -1;
			}
		}
	}
	return 0;
}

/* The per-IP table, if a per-IP limit is set; 0 or -1. */
static int
server_make_ip_limit(struct server *srv)
{
	const struct config_limits *lim = &srv->cfg->limits;
	struct timespec ts;
	struct ip_limit_config ic = {
		.max_per_ip = lim->max_connections_per_ip,
		.rate_count = lim->new_connections_rate,
		.rate_per_ms = lim->new_connections_per_ms,
		.burst = lim->new_connections_burst
				 ? lim->new_connections_burst
				 : lim->new_connections_rate,
		/* every open connection holds at most one entry; the rest
		   is room for idle buckets */
		.max_entries = (size_t)srv->cfg->max_connections + 4096,
	};

	if (ic.max_per_ip == 0 && ic.rate_count == 0)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	srv->ip_limit = ip_limit_new(&ic, (uint64_t)ts.tv_nsec * 2654435761u ^
						  (uint64_t)ts.tv_sec);
	return srv->ip_limit != NULL ? 0 : -1;
}

/* A new server; see server.h. */
struct server *
server_new(struct event_base *base, const struct config *cfg)
{
	struct server *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		return NULL;
	srv->base = base;
	srv->cfg = cfg;
	if (server_load_token_files(srv) < 0 || server_make_ip_limit(srv) < 0) {
		server_free(srv);
		return NULL;
	}
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
	for (size_t i = 0; srv->auth_files != NULL && i < srv->cfg->n_routes;
	     i++)
		token_file_free(srv->auth_files[i]);
	for (size_t i = 0;
	     srv->target_files != NULL && i < srv->cfg->n_routes; i++)
		token_file_free(srv->target_files[i]);
	free(srv->auth_files);
	free(srv->target_files);
	ip_limit_free(srv->ip_limit);
	free(srv);
}
