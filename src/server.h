/*
 * server.h - one worker: an event_base, its listeners and its sessions.
 *
 * Everything a session touches on the data path hangs off its server, never
 * off a global, so several workers (each with its own event_base, in its
 * own thread) run the same code side by side.  The config is read-only and
 * reference-counted: a reload hands the server a new one, and each session
 * keeps the one it started with.
 */
#ifndef WSGATE_SERVER_H
#define WSGATE_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "config.h"
#include "metrics.h"
#include "splice_pipe.h"

struct evdns_base;
struct ip_limit;
struct listener;
struct session;
struct tls_state;
struct token_file;

/*
 * What a server tells the process above it (the gateway), through
 * callbacks the process gives it: a server never calls up by name.  Any
 * of them may be NULL (unit tests; then max_connections counts this
 * server's sessions alone).
 */
struct server_hooks {
	/* A connection starts on WORKER: count it against MAX; false when it
	   is over (it is counted anyway, and released by conn_done). */
	bool (*conn_begin)(void *arg, unsigned worker, unsigned max);
	/* A connection counted by conn_begin is gone. */
	void (*conn_done)(void *arg, unsigned worker);
	/* WORKER accepted FD on listen address LISTEN: true when another
	   worker takes it (FD is no longer ours). */
	bool (*hand_off)(void *arg, unsigned worker, size_t listen,
			 evutil_socket_t fd, const struct sockaddr *addr,
			 socklen_t addr_len);
	void *arg;
};

struct server {
	struct event_base *base;
	struct evdns_base *dns;
	struct server_hooks hooks; /* the process above; may be empty */
	unsigned worker;           /* this worker's index */
	struct config *cfg;        /* config for new sessions (a reference) */
	struct listener **listeners;
	size_t n_listeners;
	struct session *sessions;  /* every live session (for shutdown) */
	unsigned n_sessions;
	bool draining;             /* shutting down: no new sessions */
	struct event *drain_timer; /* drain_timeout: give up and exit */
	struct event *sample_timer; /* refreshes the buffered-bytes gauge */
	uint64_t total_sessions;
	struct metrics metrics;    /* written by this worker only */
	struct tls_state *tls;     /* TLS contexts (owned by the gateway); may be NULL */
	/* Access control.  ip_limit is shared by every worker (owned by
	   the gateway; it has its own mutex); the token files are per
	   worker, indexed by the routes of cfg. */
	struct ip_limit *ip_limit;        /* NULL: no per-IP limit; not owned */
	struct token_file **auth_files;   /* per route index; NULL entries */
	struct token_file **target_files; /* per route index; NULL entries */
	/* session.c's room for packing frames toward a TLS client before
	   its own SSL_write (SESSION_PACK_MAX bytes; made on first use). */
	uint8_t *pack_buf;
	/* session.c's pipe for splicing upstream bytes to plain clients
	   (opened on first use; empty between uses). */
	struct splice_pipe pipe;
};

/* A new server on BASE for CFG (a reference is taken), telling the
   process above through HOOKS (copied; NULL: none); NULL on failure
   (logged). */
struct server *server_new(struct event_base *base, struct config *cfg,
			  const struct server_hooks *hooks);

/* Bind every listen address of the config (SO_REUSEPORT when REUSEPORT,
   so that several workers share each address); log each when LOG.  0, or
   -1 (logged). */
int server_listen(struct server *srv, bool reuseport, bool log);

/* Start a session for FD, accepted by another worker on listen address
   number LISTEN; the socket is closed instead when this worker no longer
   listens (shutting down). */
void server_adopt(struct server *srv, size_t listen, evutil_socket_t fd,
		  const struct sockaddr *addr, socklen_t addr_len);

/* Use CFG (a reference is taken) for new sessions from now on. */
void server_set_config(struct server *srv, struct config *cfg);

/* This worker's counters. */
struct metrics *server_metrics(struct server *srv);

/*
 * Begin a graceful shutdown: close the listeners, send Close 1001 to every
 * WebSocket client, and leave the loop when the last session is gone or the
 * drain timeout passes.
 */
void server_shutdown(struct server *srv);

/* Called by a session when it is gone (after it unlinked itself). */
void server_session_gone(struct server *srv);

/* A session starts: count it against max_connections (every worker's,
   through the hooks); false when it is over the limit. */
bool server_conn_begin(struct server *srv);

/* A session counted by server_conn_begin is gone. */
void server_conn_done(struct server *srv);

/* Free SRV, its listeners and any sessions left; NULL is fine. */
void server_free(struct server *srv);

#endif
