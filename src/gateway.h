/*
 * gateway.h - the whole process: the current configuration, the worker
 * threads (each an event_base with its own listeners and sessions), and the
 * control loop in the main thread that takes signals, serves the admin
 * endpoint and hands a reloaded configuration to every worker.
 */
#ifndef WSGATE_GATEWAY_H
#define WSGATE_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/util.h>

#include "config.h"

struct gateway;
struct metrics;

/*
 * A gateway for CFG (one reference is taken), loaded from FILE (for
 * reloads): creates the control loop and the workers and binds every
 * listener.  NULL on failure (logged).
 */
struct gateway *gateway_new(struct config *cfg, const char *file);

/* Start the workers and run the control loop until every worker has
   stopped.  0 on a clean shutdown. */
int gateway_run(struct gateway *gw);

/* Free GW; NULL is fine.  Only after gateway_run returned. */
void gateway_free(struct gateway *gw);

/* Count a connection of worker WORKER against max_connections; false if
   over it (the count is taken anyway, and released by gateway_conn_done). */
bool gateway_conn_begin(struct gateway *gw, unsigned worker, unsigned max);

/* Release a connection counted by gateway_conn_begin. */
void gateway_conn_done(struct gateway *gw, unsigned worker);

/*
 * Worker FROM accepted FD on its listen address number LISTEN: if another
 * worker holds fewer connections, queue FD for the one holding the fewest
 * (it starts the session from its own loop) and return true; FD is no
 * longer the caller's.  False: start the session here.
 */
bool gateway_balance(struct gateway *gw, unsigned from, size_t listen,
		     evutil_socket_t fd, const struct sockaddr *addr,
		     socklen_t addr_len);

/* True while shutting down. */
bool gateway_is_draining(const struct gateway *gw);

#endif
