/*
 * main.c - wsgate: command line, then the gateway (wiring only).
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "gateway.h"
#include "healthcheck.h"
#include "log.h"
#include "tls.h"
#include "token_file.h"

#define DEFAULT_CONFIG "/etc/wsgate/wsgate.ini"
#define HEALTHCHECK_TIMEOUT_MS 3000

/* Print usage to F. */
static void
usage(FILE *f)
{
	fprintf(f,
		"usage: wsgate [-t] [-c FILE]\n"
		"       wsgate --healthcheck URL\n"
		"       wsgate -V | -h\n"
		"\n"
		"WebSocket-to-TCP gateway: bridges RFC 6455 clients to TCP or\n"
		"unix-socket services listed in an INI file.\n"
		"\n"
		"  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
		"  -t, --test          check the configuration and load every file it\n"
		"                      names, as a start would, and exit (0 when valid)\n"
		"      --healthcheck URL\n"
		"                      GET URL (http://HOST:PORT/PATH, e.g. the admin\n"
		"                      endpoint's /healthz) and exit 0 on a 200 answer,\n"
		"                      1 otherwise: a container health check\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"Runs in the foreground and logs to stderr.  SIGTERM or SIGINT: stop\n"
		"accepting, send Close 1001 to every client, exit within\n"
		"drain_timeout.  SIGHUP: reload the configuration (and the TLS\n"
		"certificates and keys) for new connections.\n");
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

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"test", no_argument, NULL, 't'},
		{"healthcheck", required_argument, NULL, 'H'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *file = DEFAULT_CONFIG;
	const char *health_url = NULL;
	bool check_only = false;
	char err[1024];
	struct config *cfg;
	struct gateway *gw;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			file = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'H':
			health_url = optarg;
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
	if (health_url != NULL)
		return healthcheck_run(health_url, HEALTHCHECK_TIMEOUT_MS);

	cfg = config_load(file, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "wsgate: %s\n", err);
		return 1;
	}
	if (check_only) {
		struct token_file **auth, **targets;
		int bad;

		if (tls_check(cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "wsgate: %s\n", err);
			config_unref(cfg);
			return 1;
		}
		/* Load the token files as a start does (server_new), with the
		   same code, so that -t and a start accept the same files;
		   its warnings (lines skipped) show, its info lines do not. */
		log_init(cfg->log_level > LOG_WARN ? LOG_WARN : cfg->log_level);
		bad = token_file_load_routes(cfg, &auth, &targets, err,
					     sizeof(err));
		token_file_free_routes(auth, cfg->n_routes);
		token_file_free_routes(targets, cfg->n_routes);
		if (bad < 0) {
			fprintf(stderr, "wsgate: %s\n", err);
			config_unref(cfg);
			return 1;
		}
		printf("wsgate: %s: configuration ok (%zu listen address(es), "
		       "%zu route(s))\n",
		       file, cfg->n_listens, cfg->n_routes);
		config_unref(cfg);
		return 0;
	}

	log_init(cfg->log_level);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(cfg->max_connections);
	/* Before any event_base: workers wake each other's loops. */
	if (evthread_use_pthreads() < 0) {
		log_error("libevent has no pthreads support");
		config_unref(cfg);
		return 1;
	}
	gw = gateway_new(cfg, file);
	if (gw == NULL) {
		config_unref(cfg);
		return 1;
	}
	for (size_t i = 0; i < cfg->n_routes; i++)
		log_info("route %s -> %s", cfg->routes[i].path,
			 cfg->routes[i].upstream);
	config_unref(cfg); /* the gateway holds its own reference */
	log_info("wsgate %s ready (%s)", PACKAGE_VERSION, file);

	rc = gateway_run(gw);
	log_info("exiting");
	gateway_free(gw);
	libevent_global_shutdown();
	return rc == 0 ? 0 : 1;
}
