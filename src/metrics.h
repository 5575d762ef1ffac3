/*
 * metrics.h - per-worker counters and their Prometheus text exposition.
 *
 * Each worker thread owns one struct metrics and is its only writer; the
 * admin thread reads every worker's counters and sums them on a scrape.
 * Counters are plain 64-bit words written with relaxed atomic stores (a
 * load, an add and a store: no lock prefix, no lock), so the data path pays
 * nothing for being observable and a scrape never sees a torn value.
 */
#ifndef WSGATE_METRICS_H
#define WSGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "upstream.h"

struct evbuffer;

/* Upper bounds (ms) of the upstream connect latency histogram buckets. */
#define METRICS_CONNECT_BUCKETS_MS                                             \
	{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
#define METRICS_N_BUCKETS 13

/* HTTP statuses counted as handshake failures (others land in "other"). */
#define METRICS_STATUSES {400, 401, 403, 404, 405, 408, 426, 429, 431, 500, 503, 505}
#define METRICS_N_STATUSES 12

/* Close codes counted one by one: 1000-1015 and 3000-4999. */
#define METRICS_N_CODES (16 + 2000)

#define UPSTREAM_FAILURE_COUNT UPSTREAM_N_FAILURES

/* Counters of one route in one worker.  Never freed before the worker. */
struct route_metrics {
	struct route_metrics *next; /* published with a release store */
	char *path;
	uint64_t open;              /* gauge: sessions upgraded and open */
	uint64_t total;             /* sessions upgraded */
	uint64_t bytes_in, bytes_out; /* payload client->upstream, back */
	uint64_t msgs_in, msgs_out;
	uint64_t connect_le[METRICS_N_BUCKETS + 1]; /* last one is +Inf */
	uint64_t connect_count;
	uint64_t connect_sum_us;
	uint64_t failures[UPSTREAM_FAILURE_COUNT];
	uint64_t stalls_client;     /* stall_timeout: the client took nothing */
	uint64_t stalls_upstream;   /* ... the upstream took nothing */
};

/* Counters of one worker. */
struct metrics {
	struct route_metrics *routes; /* list head, published with release */
	uint64_t accepted;            /* connections accepted */
	uint64_t open;                /* gauge: connections open, any state */
	uint64_t handshake_failures[METRICS_N_STATUSES + 1]; /* +1: other */
	uint64_t close_sent[METRICS_N_CODES];
	uint64_t close_rcvd[METRICS_N_CODES];
	uint64_t close_logged_1006;   /* sessions ended without a Close */
	uint64_t tls_handshake_failures;
	uint64_t spliced_bytes;       /* upstream bytes spliced to clients
					 (splice = on), no copy */
	uint64_t buffered_bytes;      /* gauge, refreshed every second */
};

/* Process-wide figures the exposition adds (written by the admin thread). */
struct metrics_global {
	unsigned workers;
	int draining;
	uint64_t reloads_ok, reloads_failed;
	int last_reload_ok;           /* 1 ok, 0 failed, -1 none yet */
	double last_reload_time;      /* seconds since the epoch, 0 if none */
};

/* Add N to the counter at C (only the owning worker writes it). */
static inline void
metrics_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

/* Subtract N from the gauge at C (owner only). */
static inline void
metrics_sub(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) - n,
			 __ATOMIC_RELAXED);
}

/* Set the gauge at C (owner only). */
static inline void
metrics_set(uint64_t *c, uint64_t v)
{
	__atomic_store_n(c, v, __ATOMIC_RELAXED);
}

/* Read a counter from any thread. */
static inline uint64_t
metrics_get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* The counters of PATH in M, added on first use (owner only); NULL only if
   out of memory. */
struct route_metrics *metrics_route(struct metrics *m, const char *path);

/* Count a refused handshake answered with STATUS. */
void metrics_handshake_failure(struct metrics *m, int status);

/* Count a close code sent (SENT true) or received. */
void metrics_close_code(struct metrics *m, unsigned code, int sent);

/* Record an upstream connect that took US microseconds. */
void metrics_connect_latency(struct route_metrics *rm, uint64_t us);

/* Free the route list of M (when its worker is gone). */
void metrics_free(struct metrics *m);

/*
 * Append the Prometheus text exposition (format 0.0.4) of the N workers'
 * counters, summed, and of G to OUT.  0, or -1 when out of memory.
 */
int metrics_render(struct evbuffer *out, struct metrics *const *workers,
		   size_t n, const struct metrics_global *g);

#endif
