/*
 * gateway.c - the process: control loop, worker threads, reload, shutdown.
 *
 * Each worker is a thread with its own event_base, its own listeners (one
 * SO_REUSEPORT socket per address per worker, so the kernel spreads the
 * accepts) and its own sessions; a session never leaves its worker and the
 * data path takes no lock.  The kernel spreads connections by a hash of
 * their addresses, which leaves one worker with 55 of 100 or more about a
 * third of the time by the binomial odds (here, 8 of 16 runs, up to 60 of
 * 100); so a worker that accepts a connection while another holds fewer
 * hands it over before the session starts (the least-connections choice
 * HAProxy makes for its threads).
 * The main thread runs a small control loop: signals, the admin endpoint,
 * and reloads.  It talks to a worker only by leaving a command (a config,
 * a handed-over connection, shutdown) under the worker's mutex and
 * activating the worker's command event (libevent wakes the other loop;
 * evthread_use_pthreads() must run before any event_base is made); a
 * worker handing over a connection does the same.
 */
#include "gateway.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "admin.h"
#include "ip_limit.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "tls.h"

#define GATEWAY_MAX_WORKERS 64

/* A connection accepted by one worker for another to start. */
struct handoff {
	struct handoff *next;
	evutil_socket_t fd;
	size_t listen;             /* index of the listen address */
	socklen_t addr_len;
	struct sockaddr_storage addr;
};

struct worker {
	struct gateway *gw;
	unsigned id;
	pthread_t thread;
	bool started;
	int cpu;                   /* the CPU it is pinned to, or -1 */
	struct event_base *base;
	struct server *srv;
	struct event *cmd_ev;
	pthread_mutex_t lock;      /* guards the three commands below */
	struct config *pending;    /* a reloaded config to switch to */
	struct handoff *handoffs, **handoffs_tail; /* to start, in order */
	bool pending_shutdown;
	unsigned load;             /* atomic: connections held or handed here */
};

struct gateway {
	struct event_base *base;   /* the control loop (main thread) */
	struct config *cfg;        /* the current config (a reference) */
	char *file;
	struct worker *workers;
	unsigned n_workers;
	struct event *sig_term, *sig_int, *sig_hup, *done_ev;
	struct admin *admin;
	struct tls_state *tls;     /* shared by the workers' sessions */
	struct ip_limit *ip_limit; /* per-IP limits, shared; NULL if off */
	struct metrics_global stats; /* control thread only */
	unsigned conns;            /* atomic: connections, all workers */
	int draining;              /* atomic */
	unsigned done;             /* atomic: workers whose loop ended */
};

/* server_hooks.conn_begin: count a connection of WORKER against MAX,
   over every worker. */
static bool
gateway_conn_begin(void *arg, unsigned worker, unsigned max)
{
	struct gateway *gw = arg;
	unsigned n = __atomic_add_fetch(&gw->conns, 1, __ATOMIC_RELAXED);

	__atomic_add_fetch(&gw->workers[worker].load, 1, __ATOMIC_RELAXED);
	return n <= max;
}

/* server_hooks.conn_done: release a connection. */
static void
gateway_conn_done(void *arg, unsigned worker)
{
	struct gateway *gw = arg;

	__atomic_sub_fetch(&gw->conns, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&gw->workers[worker].load, 1, __ATOMIC_RELAXED);
}

/*
 * server_hooks.hand_off: worker FROM accepted FD on its listen address
 * number LISTEN; if another worker holds fewer connections, queue FD for
 * the one holding the fewest (it starts the session from its own loop) and
 * return true.  False: start the session here.
 */
static bool
gateway_balance(void *arg, unsigned from, size_t listen, evutil_socket_t fd,
		const struct sockaddr *addr, socklen_t addr_len)
{
	struct gateway *gw = arg;
	struct worker *to = NULL;
	struct handoff *h;
	unsigned least;

	if (gw->n_workers < 2 || gateway_is_draining(gw))
		return false;
	/* Only strictly fewer: on a tie the accepting worker keeps it and
	   nobody is woken. */
	least = __atomic_load_n(&gw->workers[from].load, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < gw->n_workers; i++) {
		unsigned l = __atomic_load_n(&gw->workers[i].load,
					     __ATOMIC_RELAXED);
		if (l < least) {
			least = l;
			to = &gw->workers[i];
		}
	}
	if (to == NULL || (h = calloc(1, sizeof(*h))) == NULL)
		return false;
	h->fd = fd;
	h->listen = listen;
	if (addr_len > sizeof(h->addr))
		addr_len = sizeof(h->addr);
	memcpy(&h->addr, addr, addr_len);
	h->addr_len = addr_len;
	/* Counted now, so that a burst of accepts sees it at once. */
	__atomic_add_fetch(&to->load, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&to->lock);
	*to->handoffs_tail = h;
	to->handoffs_tail = &h->next;
	pthread_mutex_unlock(&to->lock);
	event_active(to->cmd_ev, EV_TIMEOUT, 1);
	return true;
}

/* Free a list of hand-offs nobody started, closing their sockets. */
static void
gateway_handoffs_drop(struct handoff *h)
{
	while (h != NULL) {
		struct handoff *next = h->next;

		evutil_closesocket(h->fd);
		free(h);
		h = next;
	}
}

/* True while shutting down. */
bool
gateway_is_draining(const struct gateway *gw)
{
	return __atomic_load_n(&gw->draining, __ATOMIC_RELAXED) != 0;
}

/* The CPUs this process may run on (taskset, a container's cpuset), in
   *SET; their number, or 0 when the mask cannot be read. */
static long
gateway_cpus(cpu_set_t *set)
{
	CPU_ZERO(set);
	if (sched_getaffinity(0, sizeof(*set), set) < 0)
		return 0;
	return CPU_COUNT(set);
}

/* The number of workers CFG asks for. */
static unsigned
gateway_worker_count(const struct config *cfg)
{
	cpu_set_t set;
	long n;

	if (cfg->workers > 0)
		return cfg->workers;
	/* auto: the CPUs this process may run on, not every CPU online: two
	   workers pinned to one CPU only take turns (measured: half the echo
	   rate of one worker). */
	n = gateway_cpus(&set);
	if (n == 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > GATEWAY_MAX_WORKERS)
		n = GATEWAY_MAX_WORKERS;
	return (unsigned)n;
}

/* A worker's command event: apply a new config, start the connections
   other workers handed over, or shut down. */
static void
gateway_worker_cmd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct config *cfg;
	struct handoff *h;
	bool shutdown;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->lock);
	cfg = w->pending;
	w->pending = NULL;
	h = w->handoffs;
	w->handoffs = NULL;
	w->handoffs_tail = &w->handoffs;
	shutdown = w->pending_shutdown;
	w->pending_shutdown = false;
	pthread_mutex_unlock(&w->lock);
	if (cfg != NULL) {
		server_set_config(w->srv, cfg);
		config_unref(cfg);
	}
	while (h != NULL) {
		struct handoff *next = h->next;

		/* the session counts itself again as it starts */
		__atomic_sub_fetch(&w->load, 1, __ATOMIC_RELAXED);
		server_adopt(w->srv, h->listen, h->fd,
			     (const struct sockaddr *)&h->addr, h->addr_len);
		free(h);
		h = next;
	}
	if (shutdown)
		server_shutdown(w->srv);
}

/*
 * cpu_affinity = auto: when there are two or more workers and exactly as
 * many CPUs in the process's mask, give worker i the i-th of them.  Left
 * to itself the scheduler often puts both workers of a 2-CPU machine on
 * one CPU for hundreds of milliseconds (woken where their client's sender
 * runs), and then each gets the CPU once per 4 ms tick: measured, echo at
 * 100 connections had a p99 of 2.4-4.7 ms against 1.7-2.5 ms pinned, at
 * the same median.  But pinned workers cannot get out of the way of other
 * busy processes on their CPU: with the load generator and the upstream
 * on the same two CPUs, bulk upload at 8 connections fell from 1.3-1.5 to
 * 1.1-1.3 GB/s.  So it is off unless asked for.  With fewer workers than
 * CPUs nothing is pinned, so the scheduler can still move a worker off a
 * busy CPU.
 */
static void
gateway_plan_cpus(struct gateway *gw, const struct config *cfg)
{
	cpu_set_t set;
	long n = gateway_cpus(&set);
	unsigned next = 0;

	for (unsigned i = 0; i < gw->n_workers; i++)
		gw->workers[i].cpu = -1;
	if (!cfg->pin_workers || gw->n_workers < 2 || n != gw->n_workers)
		return;
	for (int cpu = 0; cpu < CPU_SETSIZE && next < gw->n_workers; cpu++)
		if (CPU_ISSET(cpu, &set))
			gw->workers[next++].cpu = cpu;
	log_info("workers pinned one per CPU (cpu_affinity = auto)");
}

/* The worker thread: run its loop, then tell the control loop. */
static void *
gateway_worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];

	/* top -H, ps -L and perf show which worker is which */
	snprintf(name, sizeof(name), "wsgate-w%u", w->id);
	pthread_setname_np(pthread_self(), name);
	if (w->cpu >= 0) {
		cpu_set_t set;
		int err;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
		if (err != 0)
			log_warn("worker %u: cannot pin to CPU %d: %s", w->id,
				 w->cpu, strerror(err));
	}
	event_base_dispatch(w->base);
	__atomic_add_fetch(&w->gw->done, 1, __ATOMIC_ACQ_REL);
	event_active(w->gw->done_ev, EV_TIMEOUT, 1);
	return NULL;
}

/* A worker finished: leave the control loop when all have. */
static void
gateway_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gateway *gw = arg;

	(void)fd;
	(void)what;
	if (__atomic_load_n(&gw->done, __ATOMIC_ACQUIRE) >= gw->n_workers)
		event_base_loopexit(gw->base, NULL);
}

/* Post a command to every worker. */
static void
gateway_post(struct gateway *gw, struct config *cfg, bool shutdown)
{
	for (unsigned i = 0; i < gw->n_workers; i++) {
		struct worker *w = &gw->workers[i];

		pthread_mutex_lock(&w->lock);
		if (cfg != NULL) {
			config_unref(w->pending);
			w->pending = config_ref(cfg);
		}
		if (shutdown)
			w->pending_shutdown = true;
		pthread_mutex_unlock(&w->lock);
		event_active(w->cmd_ev, EV_TIMEOUT, 1);
	}
}

/* The per-IP table CFG asks for, shared by every worker (it has its own
   mutex, taken at connection start and end only); 0, or -1 when out of
   memory.  NULL (no table) when no per-IP limit is set. */
static int
gateway_make_ip_limit(struct gateway *gw, const struct config *cfg)
{
	const struct config_limits *lim = &cfg->limits;
	struct timespec ts;
	struct ip_limit_config ic = {
		.max_per_ip = lim->max_connections_per_ip,
		.rate_count = lim->new_connections_rate,
		.rate_per_ms = lim->new_connections_per_ms,
		.burst = lim->new_connections_burst
				 ? lim->new_connections_burst
				 : lim->new_connections_rate,
		/* every open connection holds at most one entry; the rest
		   is room for idle buckets */
		.max_entries = (size_t)cfg->max_connections + 4096,
	};

	if (ic.max_per_ip == 0 && ic.rate_count == 0)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	gw->ip_limit = ip_limit_new(&ic, (uint64_t)ts.tv_nsec * 2654435761u ^
						 (uint64_t)ts.tv_sec);
	return gw->ip_limit != NULL ? 0 : -1;
}

/* What a reload says about each group of settings it cannot apply, in
   the order it says it. */
static const struct {
	unsigned group; /* enum config_restart */
	const char *text;
} gateway_restart_warnings[] = {
	{CONFIG_RESTART_LISTEN, "reload: listen addresses changed; they take "
				"effect only after a restart"},
	{CONFIG_RESTART_IP_LIMITS,
	 "reload: per-IP limits (and max_connections' share of them) changed; "
	 "they take effect only after a restart"},
	{CONFIG_RESTART_WORKERS, "reload: workers or cpu_affinity changed; "
				 "they take effect only after a restart"},
	{CONFIG_RESTART_ADMIN, "reload: [admin] listen changed; it takes "
			       "effect only after a restart"},
	{CONFIG_RESTART_RESOLV, "reload: resolv_conf changed; it takes effect "
				"only after a restart"},
};

/* SIGHUP: re-read the file; apply it to new connections, or keep the old
   one and say why. */
static void
gateway_reload(struct gateway *gw)
{
	char err[1024];
	struct config *cfg;
	struct timeval now;
	unsigned changed;

	gettimeofday(&now, NULL);
	gw->stats.last_reload_time =
		(double)now.tv_sec + (double)now.tv_usec / 1e6;
	cfg = config_load(gw->file, err, sizeof(err));
	if (cfg == NULL) {
		gw->stats.reloads_failed++;
		gw->stats.last_reload_ok = 0;
		log_error("reload refused, keeping the running configuration: "
			  "%s",
			  err);
		return;
	}
	changed = config_restart_changes(gw->cfg, cfg, gw->n_workers,
					 gateway_worker_count(cfg));
	for (size_t i = 0; i < sizeof(gateway_restart_warnings) /
				    sizeof(gateway_restart_warnings[0]);
	     i++)
		if (changed & gateway_restart_warnings[i].group)
			log_warn("%s", gateway_restart_warnings[i].text);
	/* Certificates and keys are read again; a bad file refuses the whole
	   reload, so config and contexts never disagree. */
	if (tls_reload(gw->tls, cfg) < 0) {
		gw->stats.reloads_failed++;
		gw->stats.last_reload_ok = 0;
		log_error("reload refused, keeping the running configuration: "
			  "TLS contexts could not be built (see above)");
		config_unref(cfg);
		return;
	}
	log_init(cfg->log_level);
	gateway_post(gw, cfg, false);
	config_unref(gw->cfg);
	gw->cfg = cfg;
	gw->stats.reloads_ok++;
	gw->stats.last_reload_ok = 1;
	log_info("reloaded %s: %zu route(s); new connections use it, open "
		 "ones keep theirs",
		 gw->file, cfg->n_routes);
}

/* Signals, in the control loop. */
static void
gateway_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct gateway *gw = arg;

	(void)what;
	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading %s", gw->file);
		gateway_reload(gw);
		return;
	}
	if (gateway_is_draining(gw)) {
		log_warn("signal %d again: exiting now", (int)sig);
		for (unsigned i = 0; i < gw->n_workers; i++)
			event_base_loopbreak(gw->workers[i].base);
		return;
	}
	log_info("signal %d: draining", (int)sig);
	__atomic_store_n(&gw->draining, 1, __ATOMIC_RELAXED);
	admin_set_draining(gw->admin);
	gateway_post(gw, NULL, true);
}

/* /healthz: healthy while accepting. */
static bool
gateway_health_cb(void *arg)
{
	return !gateway_is_draining(arg);
}

/* /metrics: every worker's counters, summed. */
static int
gateway_metrics_cb(struct evbuffer *out, void *arg)
{
	struct gateway *gw = arg;
	struct metrics *m[GATEWAY_MAX_WORKERS];

	for (unsigned i = 0; i < gw->n_workers; i++)
		m[i] = server_metrics(gw->workers[i].srv);
	gw->stats.workers = gw->n_workers;
	gw->stats.draining = gateway_is_draining(gw);
	return metrics_render(out, m, gw->n_workers, &gw->stats);
}

/* Make the control loop, the workers and their listeners. */
struct gateway *
gateway_new(struct config *cfg, const char *file)
{
	struct gateway *gw = calloc(1, sizeof(*gw));
	struct server_params params = {
		.hooks = {
			.conn_begin = gateway_conn_begin,
			.conn_done = gateway_conn_done,
			.hand_off = gateway_balance,
		},
	};

	if (gw == NULL)
		return NULL;
	gw->cfg = config_ref(cfg);
	gw->file = strdup(file);
	gw->stats.last_reload_ok = -1;
	gw->base = event_base_new();
	gw->n_workers = gateway_worker_count(cfg);
	if (gateway_make_ip_limit(gw, cfg) < 0)
		goto fail;
	{
		char err[1024];
		gw->tls = tls_new(cfg, err, sizeof(err));
		if (gw->tls == NULL) {
			log_error("%s", err);
			goto fail;
		}
	}
	gw->workers = calloc(gw->n_workers, sizeof(*gw->workers));
	if (gw->file == NULL || gw->base == NULL || gw->workers == NULL)
		goto fail;
	params.hooks.arg = gw;
	params.tls = gw->tls;
	params.ip_limit = gw->ip_limit;
	gateway_plan_cpus(gw, cfg);
	gw->sig_term = evsignal_new(gw->base, SIGTERM, gateway_signal_cb, gw);
	gw->sig_int = evsignal_new(gw->base, SIGINT, gateway_signal_cb, gw);
	gw->sig_hup = evsignal_new(gw->base, SIGHUP, gateway_signal_cb, gw);
	gw->done_ev = event_new(gw->base, -1, 0, gateway_done_cb, gw);
	if (gw->sig_term == NULL || gw->sig_int == NULL || gw->sig_hup == NULL ||
	    gw->done_ev == NULL || evsignal_add(gw->sig_term, NULL) < 0 ||
	    evsignal_add(gw->sig_int, NULL) < 0 ||
	    evsignal_add(gw->sig_hup, NULL) < 0)
		goto fail;
	for (unsigned i = 0; i < gw->n_workers; i++) {
		struct worker *w = &gw->workers[i];

		w->gw = gw;
		w->id = i;
		w->handoffs_tail = &w->handoffs;
		pthread_mutex_init(&w->lock, NULL);
		w->base = event_base_new();
		if (w->base == NULL)
			goto fail;
		params.worker = i;
		w->srv = server_new(w->base, cfg, &params);
		w->cmd_ev = event_new(w->base, -1, 0, gateway_worker_cmd_cb, w);
		if (w->srv == NULL || w->cmd_ev == NULL ||
		    server_listen(w->srv, gw->n_workers > 1, i == 0) < 0)
			goto fail;
	}
	if (cfg->has_admin) {
		gw->admin = admin_new(gw->base, &cfg->admin, gateway_health_cb,
				      gateway_metrics_cb, gw);
		if (gw->admin == NULL)
			goto fail;
		log_info("admin endpoint on %s (/healthz, /metrics)",
			 cfg->admin.text);
	}
	log_info("%u worker(s)", gw->n_workers);
	return gw;
fail:
	gateway_free(gw);
	return NULL;
}

/* Start the workers and run the control loop. */
int
gateway_run(struct gateway *gw)
{
	int rc = 0;

	for (unsigned i = 0; i < gw->n_workers; i++) {
		struct worker *w = &gw->workers[i];

		if (pthread_create(&w->thread, NULL, gateway_worker_main, w) !=
		    0) {
			log_error("cannot start worker %u: %s", i,
				  strerror(errno));
			__atomic_store_n(&gw->draining, 1, __ATOMIC_RELAXED);
			gateway_post(gw, NULL, true);
			rc = -1;
			break;
		}
		w->started = true;
	}
	/* A worker that already stopped (none started) leaves the count
	   short: account for the ones that never ran. */
	for (unsigned i = 0; i < gw->n_workers; i++)
		if (!gw->workers[i].started)
			__atomic_add_fetch(&gw->done, 1, __ATOMIC_ACQ_REL);
	if (__atomic_load_n(&gw->done, __ATOMIC_ACQUIRE) < gw->n_workers)
		event_base_dispatch(gw->base);
	for (unsigned i = 0; i < gw->n_workers; i++)
		if (gw->workers[i].started)
			pthread_join(gw->workers[i].thread, NULL);
	return rc;
}

/* Free everything. */
void
gateway_free(struct gateway *gw)
{
	if (gw == NULL)
		return;
	admin_free(gw->admin);
	for (unsigned i = 0; gw->workers != NULL && i < gw->n_workers; i++) {
		struct worker *w = &gw->workers[i];

		if (w->cmd_ev != NULL)
			event_free(w->cmd_ev);
		server_free(w->srv);
		gateway_handoffs_drop(w->handoffs); /* a worker that ended first */
		config_unref(w->pending);
		if (w->base != NULL)
			event_base_free(w->base);
		pthread_mutex_destroy(&w->lock);
	}
	free(gw->workers);
	tls_free(gw->tls); /* after the sessions: they hold SSL objects */
	ip_limit_free(gw->ip_limit); /* after the sessions: they release */
	if (gw->sig_term != NULL)
		event_free(gw->sig_term);
	if (gw->sig_int != NULL)
		event_free(gw->sig_int);
	if (gw->sig_hup != NULL)
		event_free(gw->sig_hup);
	if (gw->done_ev != NULL)
		event_free(gw->done_ev);
	if (gw->base != NULL)
		event_base_free(gw->base);
	config_unref(gw->cfg);
	free(gw->file);
	free(gw);
}
