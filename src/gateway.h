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

/* True while shutting down. */
bool gateway_is_draining(const struct gateway *gw);

#endif
