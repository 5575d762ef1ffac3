/*
 * admin.h - the admin endpoint: plain HTTP on its own listener (meant for
 * 127.0.0.1), serving GET /healthz (200 while accepting, 503 while
 * draining) and GET /metrics (Prometheus text format).  It runs in the
 * control loop, never in a worker.
 */
#ifndef WSGATE_ADMIN_H
#define WSGATE_ADMIN_H

#include <stdbool.h>

#include <event2/event.h>

struct evbuffer;
struct config_listen;
struct admin;

/* True while healthy (accepting). */
typedef bool (*admin_health_fn)(void *arg);
/* Append the metrics exposition to OUT; 0 or -1. */
typedef int (*admin_metrics_fn)(struct evbuffer *out, void *arg);

/* Listen on CL in BASE; NULL on failure (logged). */
struct admin *admin_new(struct event_base *base, const struct config_listen *cl,
			admin_health_fn health, admin_metrics_fn metrics,
			void *arg);

/* From now on /healthz answers 503 (the listener stays open so that the
   orchestrator can see it). */
void admin_set_draining(struct admin *a);

/* Close the listener and every admin connection; NULL is fine. */
void admin_free(struct admin *a);

#endif
