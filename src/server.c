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
	char err[1024];

	/* the same loading as wsgate -t, so both accept the same files */
	if (token_file_load_routes(srv->cfg, &srv->auth_files,
				   &srv->target_files, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

/* Close the token files of the routes of srv->cfg. */
static void
server_free_token_files(struct server *srv)
{
	for (size_t i = 0; srv->auth_files != NULL && i < srv->cfg->n_routes;
	     i++)
		token_file_free(srv->auth_files[i]);
	for (size_t i = 0;
	     srv->target_files != NULL && i < srv->cfg->n_routes; i++)
		token_file_free(srv->target_files[i]);
	free(srv->auth_files);
	free(srv->target_files);
	srv->auth_files = NULL;
	srv->target_files = NULL;
}

/* How often the buffered-bytes gauge is refreshed. */
#define SERVER_SAMPLE_MS 1000

/* Refresh the buffered-bytes gauge from every session. */
static void
server_sample_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	uint64_t sum = 0;

	(void)fd;
	(void)what;
	for (struct session *s = srv->sessions; s != NULL; s = session_next(s))
		sum += session_buffered(s);
	metrics_set(&srv->metrics.buffered_bytes, sum);
}

/* A new server; see server.h. */
/*
 * The worker's resolver: resolv_conf (default /etc/resolv.conf) and
 * /etc/hosts.  Without the default file names are still tried against
 * nothing and fail as DNS errors; a resolv_conf the operator named must
 * be read (config_check made sure it can be).
 */
static int
server_dns_new(struct server *srv)
{
	const char *file = srv->cfg->resolv_conf.value;
	int r;

	srv->dns = evdns_base_new(srv->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (srv->dns == NULL) {
		log_error("cannot create the DNS resolver");
		return -1;
	}
	r = evdns_base_resolv_conf_parse(srv->dns, DNS_OPTIONS_ALL,
					 file != NULL ? file
						      : "/etc/resolv.conf");
	/* 6: no nameserver line; evdns then asks 127.0.0.1 (as libc does) */
	if (r == 0 || r == 6)
		return 0;
	if (file != NULL) {
		log_error("resolv_conf %s: cannot be read (evdns error %d)",
			  file, r);
		return -1;
	}
	log_warn("no usable /etc/resolv.conf: upstream host names cannot be "
		 "resolved");
	evdns_base_load_hosts(srv->dns, NULL);
	return 0;
}

struct server *
server_new(struct event_base *base, struct config *cfg,
	   const struct server_hooks *hooks)
{
	struct server *srv = calloc(1, sizeof(*srv));
	struct timeval tv = {SERVER_SAMPLE_MS / 1000, 0};

	if (srv == NULL)
		return NULL;
	splice_pipe_init(&srv->pipe);
	srv->base = base;
	if (hooks != NULL)
		srv->hooks = *hooks;
	srv->cfg = config_ref(cfg);
	srv->sample_timer = event_new(base, -1, EV_PERSIST, server_sample_cb,
				      srv);
	if (srv->sample_timer == NULL) {
		server_free(srv);
		return NULL;
	}
	evtimer_add(srv->sample_timer, &tv);
	if (server_load_token_files(srv) < 0) {
		server_free(srv);
		return NULL;
	}
	if (server_dns_new(srv) < 0) {
		server_free(srv);
		return NULL;
	}
	return srv;
}

/* A listener accepted FD: here, or at a worker holding fewer. */
static void
server_accept_cb(void *arg, size_t index, const struct config_listen *cl,
		 evutil_socket_t fd, const struct sockaddr *addr,
		 socklen_t addr_len)
{
	struct server *srv = arg;

	if (srv->hooks.hand_off != NULL &&
	    srv->hooks.hand_off(srv->hooks.arg, srv->worker, index, fd, addr,
				addr_len))
		return;
	session_start(srv, cl, fd, addr, addr_len);
}

/* Count a starting session; see server.h. */
bool
server_conn_begin(struct server *srv)
{
	if (srv->hooks.conn_begin != NULL)
		return srv->hooks.conn_begin(srv->hooks.arg, srv->worker,
					     srv->cfg->max_connections);
	return srv->n_sessions <= srv->cfg->max_connections;
}

/* Release a counted session; see server.h. */
void
server_conn_done(struct server *srv)
{
	if (srv->hooks.conn_done != NULL)
		srv->hooks.conn_done(srv->hooks.arg, srv->worker);
}

/* Bind every listen address. */
int
server_listen(struct server *srv, bool reuseport, bool log)
{
	const struct config *cfg = srv->cfg;

	srv->listeners = calloc(cfg->n_listens, sizeof(*srv->listeners));
	if (srv->listeners == NULL)
		return -1;
	for (size_t i = 0; i < cfg->n_listens; i++) {
		srv->listeners[i] =
			listener_new(srv->base, i, &cfg->listens[i], reuseport,
				     server_accept_cb, srv);
		if (srv->listeners[i] == NULL)
			return -1;
		srv->n_listeners++;
		if (log)
			log_info("listening on %s", cfg->listens[i].text);
	}
	return 0;
}

/* Start a session handed over by another worker. */
void
server_adopt(struct server *srv, size_t listen, evutil_socket_t fd,
	     const struct sockaddr *addr, socklen_t addr_len)
{
	if (srv->draining || listen >= srv->n_listeners) {
		evutil_closesocket(fd);
		return;
	}
	session_start(srv, listener_config(srv->listeners[listen]), fd, addr,
		      addr_len);
}

/* Use a reloaded config for new sessions. */
void
server_set_config(struct server *srv, struct config *cfg)
{
	struct config *old = srv->cfg;

	/* Token files are indexed by route: open the new config's.  A file
	   that fails to load leaves its slot empty, and access_check refuses
	   that route's requests rather than skip the check. */
	server_free_token_files(srv);
	srv->cfg = config_ref(cfg);
	config_unref(old);
	if (server_load_token_files(srv) < 0)
		log_error("reload: a token file could not be loaded; its route "
			  "refuses requests until the next reload");
}

/* This worker's counters. */
struct metrics *
server_metrics(struct server *srv)
{
	return &srv->metrics;
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
	if (srv->sample_timer != NULL)
		evtimer_del(srv->sample_timer);
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
	if (srv->sample_timer != NULL)
		event_free(srv->sample_timer);
	metrics_free(&srv->metrics);
	if (srv->dns != NULL) {
		evdns_base_free(srv->dns, 1);
		/* evdns reports cancelled and failed lookups from the loop
		   (upstream.c): one more pass, so their callbacks run and
		   free what they own before the base goes. */
		event_base_loop(srv->base, EVLOOP_NONBLOCK);
	}
	if (srv->cfg != NULL)
		server_free_token_files(srv);
	config_unref(srv->cfg); /* the per-IP table belongs to the gateway */
	free(srv->pack_buf);
	splice_pipe_close(&srv->pipe);
	free(srv);
}
