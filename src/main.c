/*
 * main.c - wsgate: command line, signals and the event loop (wiring only).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "server.h"
#include "tls.h"

#define DEFAULT_CONFIG "/etc/wsgate/wsgate.ini"

/* Print usage to F. */
static void
usage(FILE *f)
{
	fprintf(f,
		"usage: wsgate [-t] [-c FILE]\n"
		"       wsgate -V | -h\n"
		"\n"
		"WebSocket-to-TCP gateway: bridges RFC 6455 clients to TCP or\n"
		"unix-socket services listed in an INI file.\n"
		"\n"
		"  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
		"  -t       check the configuration, certificates and keys and\n"
		"           exit (0 when valid)\n"
		"  -V       print the version and exit\n"
		"  -h       print this help and exit\n"
		"\n"
		"Runs in the foreground and logs to stderr. SIGTERM or SIGINT:\n"
		"stop accepting, send Close 1001 to every client, exit within\n"
		"drain_timeout. SIGHUP: reload TLS certificates and keys.\n");
}

/* Raise the soft descriptor limit to the hard one: each session needs two
   descriptors, and the default soft limit (1024) is far below what
   max_connections usually asks for (nginx: worker_rlimit_nofile). */
static void
raise_nofile(unsigned max_connections)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)max_connections * 2 + 32)
		log_warn("descriptor limit %llu is below what max_connections "
			 "= %u needs (%u); accepting pauses when it runs out",
			 (unsigned long long)rl.rlim_cur, max_connections,
			 max_connections * 2 + 32);
}

/* SIGHUP: read the certificate and key files again; new connections get
   the new ones, live ones keep theirs; a bad file keeps the old ones. */
static void
sighup_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)sig;
	(void)what;
	log_info("SIGHUP: reloading TLS certificates and keys");
	(void)tls_reload(srv->tls, srv->cfg);
}

/* SIGTERM / SIGINT: graceful shutdown; a second one exits at once. */
static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	if (srv->draining) {
		log_warn("signal %d again: exiting now", (int)sig);
		event_base_loopbreak(srv->base);
		return;
	}
	log_info("signal %d: draining", (int)sig);
	server_shutdown(srv);
}

int
main(int argc, char **argv)
{
	const char *file = DEFAULT_CONFIG;
	bool check_only = false;
	char err[1024];
	struct config *cfg;
	struct event_base *base;
	struct server *srv;
	struct tls_state *tls;
	struct event *sigterm, *sigint, *sighup;
	int opt;

	while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
		switch (opt) {
		case 'c':
			file = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'V':
			printf("wsgate %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	cfg = config_load(file, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "wsgate: %s\n", err);
		return 1;
	}
	if (check_only) {
		if (tls_check(cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "wsgate: %s\n", err);
			config_free(cfg);
			return 1;
		}
		printf("wsgate: %s: configuration ok (%zu listen address(es), "
		       "%zu route(s))\n",
		       file, cfg->n_listens, cfg->n_routes);
		config_free(cfg);
		return 0;
	}

	log_init(cfg->log_level);
	tls = tls_new(cfg, err, sizeof(err));
	if (tls == NULL) {
		log_error("%s", err);
		config_free(cfg);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(cfg->max_connections);
	base = event_base_new();
	if (base == NULL) {
		log_error("cannot create the event loop");
		tls_free(tls);
		config_free(cfg);
		return 1;
	}
	srv = server_new(base, cfg);
	if (srv != NULL)
		srv->tls = tls;
	if (srv == NULL || server_listen(srv) < 0) {
		server_free(srv);
		event_base_free(base);
		tls_free(tls);
		config_free(cfg);
		return 1;
	}
	sigterm = evsignal_new(base, SIGTERM, signal_cb, srv);
	sigint = evsignal_new(base, SIGINT, signal_cb, srv);
	sighup = evsignal_new(base, SIGHUP, sighup_cb, srv);
	if (sigterm == NULL || sigint == NULL || sighup == NULL ||
	    evsignal_add(sigterm, NULL) || evsignal_add(sigint, NULL) ||
	    evsignal_add(sighup, NULL)) {
		log_error("cannot install signal handlers");
		return 1;
	}
	for (size_t i = 0; i < cfg->n_routes; i++)
		log_info("route %s -> %s", cfg->routes[i].path,
			 cfg->routes[i].upstream);
	log_info("wsgate %s ready (%s)", PACKAGE_VERSION, file);

	event_base_dispatch(base);

	log_info("exiting: %" PRIu64 " session(s) served, %" PRIu64
		 " TLS handshake(s) failed",
		 srv->total_sessions, srv->tls_handshake_failures);
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	server_free(srv);
	event_base_free(base);
	tls_free(tls);
	config_free(cfg);
	libevent_global_shutdown();
	return 0;
}
