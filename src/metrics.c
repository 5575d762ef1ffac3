/*
 * metrics.c - per-worker counters and the Prometheus text exposition.
 *
 * Metric names follow Prometheus conventions: a wsgate_ prefix, _total on
 * counters, base units (seconds, bytes), labels for route, status, code,
 * reason and direction.  A scrape sums the workers' counters; routes are
 * matched by path, so a route that a reload removed still reports what it
 * carried.
 */
#include "metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

static const int metrics_statuses[METRICS_N_STATUSES] = METRICS_STATUSES;
static const uint64_t metrics_buckets_ms[METRICS_N_BUCKETS] =
	METRICS_CONNECT_BUCKETS_MS;

/* Labels of the upstream failure kinds (UPSTREAM_OK is never counted). */
static const char *const metrics_failure_names[UPSTREAM_FAILURE_COUNT] = {
	[UPSTREAM_OK] = "ok",
	[UPSTREAM_REFUSED] = "refused",
	[UPSTREAM_UNREACHABLE] = "unreachable",
	[UPSTREAM_TIMEOUT] = "timeout",
	[UPSTREAM_DNS] = "dns",
	[UPSTREAM_RESET] = "reset",
	[UPSTREAM_TLS_VERIFY] = "tls_verify",
	[UPSTREAM_TLS_HANDSHAKE] = "tls_handshake",
	[UPSTREAM_FORBIDDEN] = "forbidden",
};

/* The counters of PATH, added on first use. */
struct route_metrics *
metrics_route(struct metrics *m, const char *path)
{
	struct route_metrics *rm;

	for (rm = m->routes; rm != NULL; rm = rm->next)
		if (strcmp(rm->path, path) == 0)
			return rm;
	rm = calloc(1, sizeof(*rm));
	if (rm == NULL)
		return NULL;
	rm->path = strdup(path);
	if (rm->path == NULL) {
		free(rm);
		return NULL;
	}
	rm->next = m->routes;
	/* Release: a scraping thread that sees the new head sees it whole. */
	__atomic_store_n(&m->routes, rm, __ATOMIC_RELEASE);
	return rm;
}

/* Count a refused handshake. */
void
metrics_handshake_failure(struct metrics *m, int status)
{
	size_t i;

	for (i = 0; i < METRICS_N_STATUSES; i++)
		if (metrics_statuses[i] == status)
			break;
	metrics_add(&m->handshake_failures[i], 1);
}

/* The slot of CODE in the close-code arrays, or -1. */
static int
metrics_code_slot(unsigned code)
{
	if (code >= 1000 && code < 1016)
		return (int)(code - 1000);
	if (code >= 3000 && code < 5000)
		return (int)(16 + code - 3000);
	return -1;
}

/* The code in slot I. */
static unsigned
metrics_slot_code(int i)
{
	return i < 16 ? 1000u + (unsigned)i : 3000u + (unsigned)(i - 16);
}

/* Count a close code sent or received. */
void
metrics_close_code(struct metrics *m, unsigned code, int sent)
{
	int i = metrics_code_slot(code);

	if (i < 0)
		return;
	metrics_add(sent ? &m->close_sent[i] : &m->close_rcvd[i], 1);
}

/* Record a connect latency. */
void
metrics_connect_latency(struct route_metrics *rm, uint64_t us)
{
	size_t i;

	for (i = 0; i < METRICS_N_BUCKETS; i++)
		if (us <= metrics_buckets_ms[i] * 1000)
			break;
	metrics_add(&rm->connect_le[i], 1);
	metrics_add(&rm->connect_count, 1);
	metrics_add(&rm->connect_sum_us, us);
}

/* Free the route list. */
void
metrics_free(struct metrics *m)
{
	struct route_metrics *rm = m->routes, *next;

	for (; rm != NULL; rm = next) {
		next = rm->next;
		free(rm->path);
		free(rm);
	}
	m->routes = NULL;
}

/* Sum of one field over the workers. */
static uint64_t
metrics_sum(struct metrics *const *w, size_t n, size_t offset)
{
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += metrics_get((const uint64_t *)((const char *)w[i] + offset));
	return s;
}

#define SUM(field) metrics_sum(workers, n, offsetof(struct metrics, field))

/* Every distinct route path across the workers, in first-seen order. */
static size_t
metrics_paths(struct metrics *const *workers, size_t n, const char ***out)
{
	const char **paths = NULL;
	size_t count = 0, cap = 0;

	for (size_t w = 0; w < n; w++) {
		struct route_metrics *rm =
			__atomic_load_n(&workers[w]->routes, __ATOMIC_ACQUIRE);
		for (; rm != NULL; rm = rm->next) {
			size_t i;
			for (i = 0; i < count; i++)
				if (strcmp(paths[i], rm->path) == 0)
					break;
			if (i < count)
				continue;
			if (count == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				const char **np =
					realloc(paths, ncap * sizeof(*np));
				if (np == NULL)
					break;
				paths = np;
				cap = ncap;
			}
			paths[count++] = rm->path;
		}
	}
	*out = paths;
	return count;
}

/* Sum the route counters of PATH over the workers into *OUT. */
static void
metrics_route_sum(struct metrics *const *workers, size_t n, const char *path,
		  struct route_metrics *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t w = 0; w < n; w++) {
		struct route_metrics *rm =
			__atomic_load_n(&workers[w]->routes, __ATOMIC_ACQUIRE);
		for (; rm != NULL; rm = rm->next) {
			if (strcmp(rm->path, path) != 0)
				continue;
			out->open += metrics_get(&rm->open);
			out->total += metrics_get(&rm->total);
			out->bytes_in += metrics_get(&rm->bytes_in);
			out->bytes_out += metrics_get(&rm->bytes_out);
			out->msgs_in += metrics_get(&rm->msgs_in);
			out->msgs_out += metrics_get(&rm->msgs_out);
			for (size_t i = 0; i <= METRICS_N_BUCKETS; i++)
				out->connect_le[i] +=
					metrics_get(&rm->connect_le[i]);
			out->connect_count += metrics_get(&rm->connect_count);
			out->connect_sum_us += metrics_get(&rm->connect_sum_us);
			for (size_t i = 0; i < UPSTREAM_FAILURE_COUNT; i++)
				out->failures[i] += metrics_get(&rm->failures[i]);
			out->stalls_client += metrics_get(&rm->stalls_client);
			out->stalls_upstream +=
				metrics_get(&rm->stalls_upstream);
		}
	}
}

/* Write the label value V escaped as the exposition format requires. */
static void
metrics_label(struct evbuffer *out, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(out, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, v, 1);
	}
}

/* "# HELP" and "# TYPE" lines. */
static void
metrics_head(struct evbuffer *out, const char *name, const char *type,
	     const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
			    name, type);
}

/* A metric with one unlabelled sample: HELP, TYPE, then NAME VALUE. */
static void
metrics_scalar(struct evbuffer *out, const char *name, const char *type,
	       const char *help, uint64_t v)
{
	metrics_head(out, name, type, help);
	evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

/* One sample NAME{route="PATH"EXTRA} VALUE. */
static void
metrics_route_sample(struct evbuffer *out, const char *name, const char *path,
		     const char *extra, uint64_t v)
{
	evbuffer_add_printf(out, "%s{route=\"", name);
	metrics_label(out, path);
	evbuffer_add_printf(out, "\"%s} %llu\n", extra ? extra : "",
			    (unsigned long long)v);
}

/* Render the exposition; see metrics.h. */
int
metrics_render(struct evbuffer *out, struct metrics *const *workers, size_t n,
	       const struct metrics_global *g)
{
	const char **paths = NULL;
	size_t np = metrics_paths(workers, n, &paths);
	struct route_metrics *sums = calloc(np ? np : 1, sizeof(*sums));
	char extra[64];

	if (sums == NULL) {
		free(paths);
		return -1;
	}
	for (size_t i = 0; i < np; i++)
		metrics_route_sum(workers, n, paths[i], &sums[i]);

	metrics_head(out, "wsgate_workers", "gauge", "Worker threads.");
	evbuffer_add_printf(out, "wsgate_workers %u\n", g->workers);
	metrics_head(out, "wsgate_draining", "gauge",
		     "1 while shutting down, else 0.");
	evbuffer_add_printf(out, "wsgate_draining %d\n", g->draining ? 1 : 0);
	metrics_scalar(out, "wsgate_accepted_connections_total", "counter",
		     "TCP connections accepted.", SUM(accepted));
	metrics_scalar(out, "wsgate_open_connections", "gauge",
		     "TCP connections open, in any state.", SUM(open));
	metrics_head(out, "wsgate_worker_connections", "gauge",
		     "TCP connections open, by worker thread.");
	for (size_t w = 0; w < n; w++)
		evbuffer_add_printf(out,
				    "wsgate_worker_connections{worker=\"%zu\"} "
				    "%llu\n",
				    w, (unsigned long long)metrics_get(
						   &workers[w]->open));

	metrics_head(out, "wsgate_sessions_open", "gauge",
		     "Upgraded WebSocket sessions open, by route.");
	for (size_t i = 0; i < np; i++)
		metrics_route_sample(out, "wsgate_sessions_open", paths[i],
				     NULL, sums[i].open);
	metrics_head(out, "wsgate_sessions_total", "counter",
		     "Upgraded WebSocket sessions, by route.");
	for (size_t i = 0; i < np; i++)
		metrics_route_sample(out, "wsgate_sessions_total", paths[i],
				     NULL, sums[i].total);
	metrics_head(out, "wsgate_payload_bytes_total", "counter",
		     "Message payload bytes, by route and direction.");
	for (size_t i = 0; i < np; i++) {
		metrics_route_sample(out, "wsgate_payload_bytes_total",
				     paths[i], ",direction=\"client_to_upstream\"",
				     sums[i].bytes_in);
		metrics_route_sample(out, "wsgate_payload_bytes_total",
				     paths[i], ",direction=\"upstream_to_client\"",
				     sums[i].bytes_out);
	}
	metrics_head(out, "wsgate_messages_total", "counter",
		     "WebSocket data messages, by route and direction.");
	for (size_t i = 0; i < np; i++) {
		metrics_route_sample(out, "wsgate_messages_total", paths[i],
				     ",direction=\"client_to_upstream\"",
				     sums[i].msgs_in);
		metrics_route_sample(out, "wsgate_messages_total", paths[i],
				     ",direction=\"upstream_to_client\"",
				     sums[i].msgs_out);
	}
	metrics_head(out, "wsgate_upstream_failures_total", "counter",
		     "Upstream connect failures and resets, by route and "
		     "reason.");
	for (size_t i = 0; i < np; i++)
		for (size_t f = UPSTREAM_REFUSED; f < UPSTREAM_FAILURE_COUNT;
		     f++) {
			snprintf(extra, sizeof(extra), ",reason=\"%s\"",
				 metrics_failure_names[f] ? metrics_failure_names[f]
							     : "other");
			metrics_route_sample(out,
					     "wsgate_upstream_failures_total",
					     paths[i], extra,
					     sums[i].failures[f]);
		}
	metrics_head(out, "wsgate_stalls_total", "counter",
		     "Sessions ended by stall_timeout, by route and the side "
		     "that took no bytes.");
	for (size_t i = 0; i < np; i++) {
		metrics_route_sample(out, "wsgate_stalls_total", paths[i],
				     ",side=\"client\"", sums[i].stalls_client);
		metrics_route_sample(out, "wsgate_stalls_total", paths[i],
				     ",side=\"upstream\"",
				     sums[i].stalls_upstream);
	}
	metrics_head(out, "wsgate_upstream_connect_seconds", "histogram",
		     "Time to connect to the upstream, by route.");
	for (size_t i = 0; i < np; i++) {
		uint64_t cum = 0;
		for (size_t b = 0; b <= METRICS_N_BUCKETS; b++) {
			cum += sums[i].connect_le[b];
			if (b < METRICS_N_BUCKETS)
				snprintf(extra, sizeof(extra), ",le=\"%g\"",
					 (double)metrics_buckets_ms[b] / 1000.0);
			else
				snprintf(extra, sizeof(extra), ",le=\"+Inf\"");
			metrics_route_sample(out,
					     "wsgate_upstream_connect_seconds_bucket",
					     paths[i], extra, cum);
		}
		evbuffer_add_printf(out,
				    "wsgate_upstream_connect_seconds_sum{route=\"");
		metrics_label(out, paths[i]);
		evbuffer_add_printf(out, "\"} %.6f\n",
				    (double)sums[i].connect_sum_us / 1e6);
		metrics_route_sample(out, "wsgate_upstream_connect_seconds_count",
				     paths[i], NULL, sums[i].connect_count);
	}

	metrics_head(out, "wsgate_handshake_failures_total", "counter",
		     "Upgrade requests answered with an HTTP error, by status.");
	for (size_t i = 0; i <= METRICS_N_STATUSES; i++) {
		uint64_t v = metrics_sum(
			workers, n,
			offsetof(struct metrics, handshake_failures) +
				i * sizeof(uint64_t));
		if (i < METRICS_N_STATUSES)
			evbuffer_add_printf(out,
					    "wsgate_handshake_failures_total"
					    "{status=\"%d\"} %llu\n",
					    metrics_statuses[i],
					    (unsigned long long)v);
		else
			evbuffer_add_printf(out,
					    "wsgate_handshake_failures_total"
					    "{status=\"other\"} %llu\n",
					    (unsigned long long)v);
	}
	metrics_head(out, "wsgate_close_codes_total", "counter",
		     "Close codes sent to and received from clients.");
	for (int i = 0; i < METRICS_N_CODES; i++) {
		uint64_t s = metrics_sum(workers, n,
					 offsetof(struct metrics, close_sent) +
						 (size_t)i * sizeof(uint64_t));
		uint64_t r = metrics_sum(workers, n,
					 offsetof(struct metrics, close_rcvd) +
						 (size_t)i * sizeof(uint64_t));
		/* Always list the registry's codes; others once seen. */
		if (i < 16 || s != 0)
			evbuffer_add_printf(out,
					    "wsgate_close_codes_total{code=\"%u\","
					    "direction=\"sent\"} %llu\n",
					    metrics_slot_code(i),
					    (unsigned long long)s);
		if (i < 16 || r != 0)
			evbuffer_add_printf(out,
					    "wsgate_close_codes_total{code=\"%u\","
					    "direction=\"received\"} %llu\n",
					    metrics_slot_code(i),
					    (unsigned long long)r);
	}
	metrics_scalar(out, "wsgate_abnormal_closures_total", "counter",
		     "Sessions that ended without a close handshake (logged "
		     "as 1006).", SUM(close_logged_1006));
	metrics_scalar(out, "wsgate_tls_handshake_failures_total", "counter",
		     "Failed TLS handshakes with clients.",
		     SUM(tls_handshake_failures));
	metrics_scalar(out, "wsgate_spliced_bytes_total", "counter",
		     "Upstream bytes moved to clients by splice(2), without a "
		     "copy through the gateway.", SUM(spliced_bytes));
	metrics_scalar(out, "wsgate_buffered_bytes", "gauge",
		     "Bytes queued toward clients and upstreams (sampled "
		     "every second).", SUM(buffered_bytes));
	metrics_head(out, "wsgate_config_reloads_total", "counter",
		     "Configuration reloads (SIGHUP), by result.");
	evbuffer_add_printf(out,
			    "wsgate_config_reloads_total{result=\"success\"} "
			    "%llu\n"
			    "wsgate_config_reloads_total{result=\"failure\"} "
			    "%llu\n",
			    (unsigned long long)g->reloads_ok,
			    (unsigned long long)g->reloads_failed);
	metrics_head(out, "wsgate_config_last_reload_successful", "gauge",
		     "1 if the last reload succeeded, 0 if it failed (1 before "
		     "any reload).");
	evbuffer_add_printf(out, "wsgate_config_last_reload_successful %d\n",
			    g->last_reload_ok == 0 ? 0 : 1);
	metrics_head(out, "wsgate_config_last_reload_timestamp_seconds",
		     "gauge", "When the last reload was tried (0: never).");
	evbuffer_add_printf(out,
			    "wsgate_config_last_reload_timestamp_seconds %.3f\n",
			    g->last_reload_time);
	free(sums);
	free(paths);
	return 0;
}
