/*
 * server.c - one worker: its event_base, DNS resolver, listeners and the
 * list of live sessions, and the graceful shutdown that walks them.  It
 * fills the worker context (worker_ctx.h) its sessions use.
 */
#include "server.h"

#include <stdlib.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "listener.h"
#include "log.h"
#include "session.h"
#include "splice_pipe.h"
#include "token_file.h"
#include "worker_ctx.h"

struct server {
	struct worker_ctx w;           /* what its sessions see */
	unsigned worker;           /* this worker's index */
	struct server_hooks hooks; /* the process above; may be empty */
	struct listener **listeners;
	size_t n_listeners;
	struct session_list sessions; /* every live, begun session */
	bool freeing;              /* server_free: the loop is over */
	struct event *drain_timer; /* drain_timeout: give up and exit */
	struct event *sample_timer; /* refreshes the buffered-bytes gauge */
};

/* Open and read the token files of every route; 0 or -1 (logged). */
static int
server_load_token_files(struct server *srv)
{
	char err[1024];

	/* the same loading as wsgate -t, so both accept the same files */
	if (token_file_load_routes(srv->w.cfg, &srv->w.auth_files,
				   &srv->w.target_files, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

/* Close the token files of the routes of srv->w.cfg. */
static void
server_free_token_files(struct server *srv)
{
	for (size_t i = 0; srv->w.auth_files != NULL && i < srv->w.cfg->n_routes;
	     i++)
		token_file_free(srv->w.auth_files[i]);
	for (size_t i = 0;
	     srv->w.target_files != NULL && i < srv->w.cfg->n_routes; i++)
		token_file_free(srv->w.target_files[i]);
	free(srv->w.auth_files);
	free(srv->w.target_files);
	srv->w.auth_files = NULL;
	srv->w.target_files = NULL;
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
	for (struct session *s = srv->sessions.head; s != NULL; s = session_next(s))
		sum += session_buffered(s);
	metrics_set(&srv->w.metrics.buffered_bytes, sum);
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
	const char *file = srv->w.cfg->resolv_conf.value;
	int r;

	srv->w.dns = evdns_base_new(srv->w.base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (srv->w.dns == NULL) {
		log_error("cannot create the DNS resolver");
		return -1;
	}
	r = evdns_base_resolv_conf_parse(srv->w.dns, DNS_OPTIONS_ALL,
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
	evdns_base_load_hosts(srv->w.dns, NULL);
	return 0;
}

/* A begun session is freed: it leaves the list and the count. */
static void
server_session_gone(void *arg, struct session *s)
{
	struct server *srv = arg;

	session_list_remove(&srv->sessions, s);
	if (srv->hooks.conn_done != NULL)
		srv->hooks.conn_done(srv->hooks.arg, srv->worker);
	if (srv->w.draining && srv->sessions.n == 0 && !srv->freeing)
		event_base_loopexit(srv->w.base, NULL);
}

struct server *
server_new(struct event_base *base, struct config *cfg,
	   const struct server_params *p)
{
	struct server *srv = calloc(1, sizeof(*srv));
	struct timeval tv = {SERVER_SAMPLE_MS / 1000, 0};

	if (srv == NULL)
		return NULL;
	splice_pipe_init(&srv->w.pipe);
	srv->w.base = base;
	srv->w.session_gone = server_session_gone;
	srv->w.arg = srv;
	if (p != NULL) {
		srv->worker = p->worker;
		srv->w.tls = p->tls;
		srv->w.ip_limit = p->ip_limit;
		srv->hooks = p->hooks;
	}
	srv->w.cfg = config_ref(cfg);
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

/*
 * Start a session for FD: link it, count it against max_connections
 * (every worker's, through the hooks; over the limit it is still served
 * a 503), then let it run.
 */
static void
server_start_session(struct server *srv, const struct config_listen *cl,
		     evutil_socket_t fd, const struct sockaddr *addr,
		     socklen_t addr_len)
{
	struct session *s = session_new(&srv->w, cl, fd, addr, addr_len);
	bool over;

	if (s == NULL)
		return;
	session_list_add(&srv->sessions, s);
	if (srv->hooks.conn_begin != NULL)
		over = !srv->hooks.conn_begin(srv->hooks.arg, srv->worker,
					      srv->w.cfg->max_connections);
	else
		over = srv->sessions.n > srv->w.cfg->max_connections;
	session_begin(s, over);
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
	server_start_session(srv, cl, fd, addr, addr_len);
}

/* Bind every listen address. */
int
server_listen(struct server *srv, bool reuseport, bool log)
{
	const struct config *cfg = srv->w.cfg;

	srv->listeners = calloc(cfg->n_listens, sizeof(*srv->listeners));
	if (srv->listeners == NULL)
		return -1;
	for (size_t i = 0; i < cfg->n_listens; i++) {
		srv->listeners[i] =
			listener_new(srv->w.base, i, &cfg->listens[i], reuseport,
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
	if (srv->w.draining || listen >= srv->n_listeners) {
		evutil_closesocket(fd);
		return;
	}
	server_start_session(srv, listener_config(srv->listeners[listen]), fd,
			     addr, addr_len);
}

/* Use a reloaded config for new sessions. */
void
server_set_config(struct server *srv, struct config *cfg)
{
	struct config *old = srv->w.cfg;

	/* Token files are indexed by route: open the new config's.  A file
	   that fails to load leaves its slot empty, and access_check refuses
	   that route's requests rather than skip the check. */
	server_free_token_files(srv);
	srv->w.cfg = config_ref(cfg);
	config_unref(old);
	if (server_load_token_files(srv) < 0)
		log_error("reload: a token file could not be loaded; its route "
			  "refuses requests until the next reload");
}

/* This worker's counters. */
struct metrics *
server_metrics(struct server *srv)
{
	return &srv->w.metrics;
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
	log_warn("drain timeout: dropping %u session(s)", srv->sessions.n);
	for (struct session *s = srv->sessions.head; s != NULL; s = session_next(s))
		session_abort(s);
	event_base_loopexit(srv->w.base, NULL);
}

/* Begin a graceful shutdown; see server.h. */
void
server_shutdown(struct server *srv)
{
	struct timeval tv;
	uint64_t ms = srv->w.cfg->limits.drain_timeout_ms;

	if (srv->w.draining)
		return;
	srv->w.draining = true;
	server_close_listeners(srv);
	if (srv->sample_timer != NULL)
		evtimer_del(srv->sample_timer);
	log_info("shutting down: %u session(s) open", srv->sessions.n);
	for (struct session *s = srv->sessions.head; s != NULL; s = session_next(s))
		session_shutdown(s);
	if (srv->sessions.n == 0) {
		event_base_loopexit(srv->w.base, NULL);
		return;
	}
	srv->drain_timer = evtimer_new(srv->w.base, server_drain_timeout_cb, srv);
	if (srv->drain_timer == NULL) {
		event_base_loopexit(srv->w.base, NULL);
		return;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(srv->drain_timer, &tv);
}

/* Free the server and what is left in it. */
void
server_free(struct server *srv)
{
	if (srv == NULL)
		return;
	server_close_listeners(srv);
	srv->freeing = true;
	while (srv->sessions.head != NULL)
		session_free(srv->sessions.head);
	if (srv->drain_timer != NULL)
		event_free(srv->drain_timer);
	if (srv->sample_timer != NULL)
		event_free(srv->sample_timer);
	metrics_free(&srv->w.metrics);
	if (srv->w.dns != NULL) {
		evdns_base_free(srv->w.dns, 1);
		/* evdns reports cancelled and failed lookups from the loop
		   (upstream.c): one more pass, so their callbacks run and
		   free what they own before the base goes. */
		event_base_loop(srv->w.base, EVLOOP_NONBLOCK);
	}
	if (srv->w.cfg != NULL)
		server_free_token_files(srv);
	config_unref(srv->w.cfg); /* the per-IP table belongs to the gateway */
	free(srv->w.pack_buf);
	splice_pipe_close(&srv->w.pipe);
	free(srv);
}
