/*
 * server.h - one worker: an event_base, its listeners and its sessions.
 *
 * Everything a session touches on the data path hangs off its server, never
 * off a global, so several workers (each with its own event_base) can run
 * the same code side by side.  The config is shared and read-only.
 */
#ifndef WSGATE_SERVER_H
#define WSGATE_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "config.h"

struct evdns_base;
struct ip_limit;
struct listener;
struct session;
struct token_file;

struct server {
	struct event_base *base;
	struct evdns_base *dns;
	const struct config *cfg;
	struct listener **listeners;
	size_t n_listeners;
	struct session *sessions;  /* every live session (for shutdown) */
	unsigned n_sessions;
	bool draining;             /* shutting down: no new sessions */
	struct event *drain_timer; /* drain_timeout: give up and exit */
	uint64_t total_sessions;
	/* Access control.  ip_limit is meant to be shared by every worker
	   (it has its own mutex); the token files are per worker. */
	struct ip_limit *ip_limit;        /* NULL: no per-IP limit */
	struct token_file **auth_files;   /* per route index; NULL entries */
	struct token_file **target_files; /* per route index; NULL entries */
};

/* A new server on BASE for CFG (not owned); NULL on failure (logged). */
struct server *server_new(struct event_base *base, const struct config *cfg);

/* Bind every listen address of the config; 0, or -1 (logged). */
int server_listen(struct server *srv);

/*
 * Begin a graceful shutdown: close the listeners, send Close 1001 to every
 * WebSocket client, and leave the loop when the last session is gone or the
 * drain timeout passes.
 */
void server_shutdown(struct server *srv);

/* Called by a session when it is gone (after it unlinked itself). */
void server_session_gone(struct server *srv);

/* Free SRV, its listeners and any sessions left; NULL is fine. */
void server_free(struct server *srv);

#endif
