/*
 * server.h - one worker: an event_base, its listeners and its sessions.
 *
 * The server owns its listeners and its list of sessions; what a session
 * may use of it is the narrow context in worker_ctx.h.  The config is
 * read-only and reference-counted: a reload hands the server a new one,
 * and each session keeps the one it started with.
 */
#ifndef WSGATE_SERVER_H
#define WSGATE_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "config.h"
#include "metrics.h"

struct ip_limit;
struct tls_state;

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

/* What the process gives a worker: its index, the state every worker
   shares (owned by the process), and the hooks up to it. */
struct server_params {
	unsigned worker;          /* this worker's index */
	struct tls_state *tls;    /* TLS contexts; NULL: no TLS listener */
	struct ip_limit *ip_limit; /* per-IP limits; NULL: none */
	struct server_hooks hooks; /* any member may be NULL */
};

struct server;

/* A new server on BASE for CFG (a reference is taken), with P (copied;
   NULL: worker 0, nothing shared, no hooks); NULL on failure (logged). */
struct server *server_new(struct event_base *base, struct config *cfg,
			  const struct server_params *p);

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

/* Free SRV, its listeners and any sessions left; NULL is fine. */
void server_free(struct server *srv);

#endif
