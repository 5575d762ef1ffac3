/*
 * wsload.c - command line of wsload, the WebSocket load generator: options,
 * the target URL and its address check, the summary.
 *
 *   wsload [options] ws://127.0.0.1:8080/path | wss://... | tcp://HOST:PORT
 *                    | tls://HOST:PORT
 *   wsload --serve echo|sink|source PORT
 *
 * It connects only to loopback addresses (127.0.0.0/8, ::1) unless given
 * --allow-remote: a load generator pointed at the wrong host by a typo is a
 * denial-of-service attack on someone else's service, so reaching beyond
 * this machine has to be asked for in so many words.
 *
 * Exit status: 0 when every connection completed its workload cleanly and
 * all received content matched; 1 when any connection failed or any byte
 * differed; 2 on a usage error.
 */
#include "wsload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

uint8_t wsload_pattern[PATTERN_MAX_RUN + PATTERN_PERIOD];

/* Fill the pattern table: byte I is a function of I mod the period. */
void
wsload_pattern_init(void)
{
	for (size_t i = 0; i < sizeof(wsload_pattern); i++)
		wsload_pattern[i] = (uint8_t)((i % PATTERN_PERIOD) * 7u + 13u);
}

/* Monotonic nanoseconds. */
uint64_t
wsload_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Raise the soft descriptor limit to the hard one. */
unsigned long
wsload_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (unsigned long)rl.rlim_cur;
}

/* Print the usage to F. */
static void
usage(FILE *f)
{
	fputs("usage: wsload [options] ws://HOST:PORT/PATH | wss://HOST:PORT/PATH\n"
	      "                        | tcp://HOST:PORT | tls://HOST:PORT\n"
	      "       wsload --serve echo|sink|source PORT [--duration SECS]\n"
	      "\n"
	      "  -m, --mode MODE        echo (default), upload, download, hold or\n"
	      "                         handshake (connect, TLS, upgrade, one echo,\n"
	      "                         close; again until --duration/--count)\n"
	      "  -c, --conns N          connections (default 1)\n"
	      "  -s, --size BYTES       message size (default 64; up to 262144)\n"
	      "  -p, --pipeline K       echo: messages in flight per connection (default 1)\n"
	      "  -d, --duration SECS    measure for this long (default 5, or 60 as a\n"
	      "                         bound when --count is given)\n"
	      "  -n, --count N          stop after N messages in all (echo, upload) or\n"
	      "                         N * size bytes (download)\n"
	      "  -i, --ping-interval S  hold: seconds between pings per connection (default 1)\n"
	      "  -t, --timeout SECS     limit for setup, each pong and the close (default 10)\n"
	      "  -w, --connect-window N connections being set up at once (default 64)\n"
	      "      --subprotocol P    offer Sec-WebSocket-Protocol P\n"
	      "      --ca FILE          wss, tls: trust the CA certificates in FILE\n"
	      "      --insecure         wss, tls: do not verify the server certificate\n"
	      "      --allow-remote     allow a target outside 127.0.0.0/8 and ::1\n"
	      "  -q, --quiet            only the machine-readable line\n"
	      "      --serve MODE PORT  be an upstream: echo, sink or source on\n"
	      "                         127.0.0.1:PORT (0: any free port, printed)\n"
	      "\n"
	      "The last line of output reads\n"
	      "  wsload: mode=echo conns=N ok=N msgs=N rate=R p50_us=N p99_us=N p999_us=N\n"
	      "          bytes=N bps=N secs=S held=N errors=N  (one line)\n"
	      "Exit status 1 if any connection failed or any content differed.\n",
	      f);
}

/* Parse a positive number from S into *OUT (within LO..HI); -1 if bad. */
static int
parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* True for 127.0.0.0/8 and ::1 (and ::ffff:127.0.0.0/104). */
static bool
addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) &&
		       a->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

/* Split URL into scheme, host, port and path, and resolve the host; -1
   with a message on stderr. */
static int
parse_target(const char *url, struct wsload_opts *o)
{
	const char *p, *host, *host_end, *port, *path;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	int err;

	if (strncmp(url, "ws://", 5) == 0) {
		o->scheme = SCHEME_WS;
		p = url + 5;
	} else if (strncmp(url, "wss://", 6) == 0) {
		o->scheme = SCHEME_WSS;
		p = url + 6;
	} else if (strncmp(url, "tcp://", 6) == 0) {
		o->scheme = SCHEME_TCP;
		p = url + 6;
	} else if (strncmp(url, "tls://", 6) == 0) {
		o->scheme = SCHEME_TLS;
		p = url + 6;
	} else {
		fprintf(stderr, "wsload: %s: the target must start with ws://, "
				"wss://, tcp:// or tls://\n", url);
		return -1;
	}
	if (*p == '[') {
		host = p + 1;
		host_end = strchr(host, ']');
		if (host_end == NULL) {
			fprintf(stderr, "wsload: %s: unclosed [\n", url);
			return -1;
		}
		port = host_end + 1;
	} else {
		host = p;
		host_end = p + strcspn(p, ":/");
		port = host_end;
	}
	path = strchr(port, '/');
	if (path == NULL)
		path = port + strlen(port);
	if ((size_t)(host_end - host) >= sizeof(o->host) || host_end == host) {
		fprintf(stderr, "wsload: %s: bad host\n", url);
		return -1;
	}
	memcpy(o->host, host, (size_t)(host_end - host));
	o->host[host_end - host] = '\0';
	if (*port == ':' && path - port > 1 &&
	    (size_t)(path - port - 1) < sizeof(o->port)) {
		memcpy(o->port, port + 1, (size_t)(path - port - 1));
		o->port[path - port - 1] = '\0';
	} else if (port == path && !wsload_scheme_raw(o->scheme)) {
		snprintf(o->port, sizeof(o->port), "%s",
			 o->scheme == SCHEME_WSS ? "443" : "80");
	} else {
		fprintf(stderr, "wsload: %s: bad or missing port\n", url);
		return -1;
	}
	if (wsload_scheme_raw(o->scheme) && *path != '\0') {
		fprintf(stderr, "wsload: %s: a tcp:// or tls:// target has no "
				"path\n", url);
		return -1;
	}
	snprintf(o->path, sizeof(o->path), "%s", *path ? path : "/");
	err = getaddrinfo(o->host, o->port, &hints, &res);
	if (err != 0) {
		fprintf(stderr, "wsload: %s: %s\n", o->host, gai_strerror(err));
		return -1;
	}
	memcpy(&o->addr, res->ai_addr, res->ai_addrlen);
	o->addr_len = res->ai_addrlen;
	freeaddrinfo(res);
	if (!o->allow_remote && !addr_is_loopback((struct sockaddr *)&o->addr)) {
		fprintf(stderr, "wsload: %s is not a loopback address; refusing "
				"to load another machine without --allow-remote\n",
			o->host);
		return -1;
	}
	return 0;
}

/* Print the human summary (unless quiet) and the machine-readable line. */
static void
report(const struct wsload_opts *o, const struct wsload_totals *t)
{
	static const char *const names[] = {
#define WSLOAD_MODE_NAME_(name, text) text,
		WSLOAD_MODES(WSLOAD_MODE_NAME_)
#undef WSLOAD_MODE_NAME_
	};
	double secs = t->seconds > 0 ? t->seconds : 1e-9;
	double rate = (double)t->msgs / secs, bps = (double)t->bytes / secs;
	uint64_t p50 = wsload_hist_quantile(&t->hist, 0.50) / 1000;
	uint64_t p99 = wsload_hist_quantile(&t->hist, 0.99) / 1000;
	uint64_t p999 = wsload_hist_quantile(&t->hist, 0.999) / 1000;
	/* A mismatch fails its connection: failed counts every error. */
	uint64_t errors = t->failed;

	if (!o->quiet) {
		printf("wsload: %s, %u connections, %zu-byte messages, %.2f s\n",
		       names[o->mode], o->conns, o->size, t->seconds);
		printf("  established %u, failed %u, content mismatches %llu\n",
		       t->established, t->failed,
		       (unsigned long long)t->mismatches);
		if (o->mode == MODE_ECHO)
			printf("  %llu round trips, %.1f/s; latency p50 %llu us, "
			       "p99 %llu us, p99.9 %llu us, max %llu us\n",
			       (unsigned long long)t->msgs, rate,
			       (unsigned long long)p50, (unsigned long long)p99,
			       (unsigned long long)p999,
			       (unsigned long long)(t->hist.max / 1000));
		else if (o->mode == MODE_HANDSHAKE)
			printf("  %llu connections set up, echoed and closed, "
			       "%.1f/s; setup to echo p50 %llu us, p99 %llu us\n",
			       (unsigned long long)t->msgs, rate,
			       (unsigned long long)p50, (unsigned long long)p99);
		else if (o->mode == MODE_HOLD)
			printf("  %u connections held to the end; %llu pings, "
			       "%llu answered\n",
			       t->held, (unsigned long long)t->pings,
			       (unsigned long long)t->pongs);
		else
			printf("  %llu bytes, %.1f MB/s\n",
			       (unsigned long long)t->bytes, bps / 1e6);
		if (t->first_error[0] != '\0')
			printf("  first error: %s\n", t->first_error);
	}
	printf("wsload: mode=%s conns=%u ok=%u msgs=%llu rate=%.1f p50_us=%llu "
	       "p99_us=%llu p999_us=%llu bytes=%llu bps=%.0f secs=%.3f held=%u "
	       "mismatches=%llu errors=%llu\n",
	       names[o->mode], o->conns, t->established,
	       (unsigned long long)t->msgs, rate, (unsigned long long)p50,
	       (unsigned long long)p99, (unsigned long long)p999,
	       (unsigned long long)t->bytes, bps, t->seconds, t->held,
	       (unsigned long long)t->mismatches, (unsigned long long)errors);
	fflush(stdout);
}

/* Parse the command line, run, report. */
int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"mode", required_argument, NULL, 'm'},
		{"conns", required_argument, NULL, 'c'},
		{"size", required_argument, NULL, 's'},
		{"pipeline", required_argument, NULL, 'p'},
		{"duration", required_argument, NULL, 'd'},
		{"count", required_argument, NULL, 'n'},
		{"ping-interval", required_argument, NULL, 'i'},
		{"timeout", required_argument, NULL, 't'},
		{"connect-window", required_argument, NULL, 'w'},
		{"subprotocol", required_argument, NULL, 'P'},
		{"ca", required_argument, NULL, 'C'},
		{"insecure", no_argument, NULL, 'k'},
		{"allow-remote", no_argument, NULL, 'R'},
		{"quiet", no_argument, NULL, 'q'},
		{"serve", required_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct wsload_opts o = {
		.mode = MODE_ECHO,
		.conns = 1,
		.size = 64,
		.pipeline = 1,
		.ping_interval = 1,
		.timeout = 10,
		.connect_window = 64,
	};
	struct wsload_totals *t;
	const char *serve = NULL;
	bool have_duration = false;
	double v;
	int ch;

	while ((ch = getopt_long(argc, argv, "m:c:s:p:d:n:i:t:w:qh", longopts,
				 NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (strcmp(optarg, "echo") == 0)
				o.mode = MODE_ECHO;
			else if (strcmp(optarg, "upload") == 0)
				o.mode = MODE_UPLOAD;
			else if (strcmp(optarg, "download") == 0)
				o.mode = MODE_DOWNLOAD;
			else if (strcmp(optarg, "hold") == 0)
				o.mode = MODE_HOLD;
			else if (strcmp(optarg, "handshake") == 0)
				o.mode = MODE_HANDSHAKE;
			else
				goto bad;
			break;
		case 'c':
			if (parse_num(optarg, 1, 1000000, &v) < 0)
				goto bad;
			o.conns = (unsigned)v;
			break;
		case 's':
			if (parse_num(optarg, 1, PATTERN_MAX_RUN, &v) < 0)
				goto bad;
			o.size = (size_t)v;
			break;
		case 'p':
			if (parse_num(optarg, 1, 4096, &v) < 0)
				goto bad;
			o.pipeline = (unsigned)v;
			break;
		case 'd':
			if (parse_num(optarg, 0.01, 86400, &v) < 0)
				goto bad;
			o.duration = v;
			have_duration = true;
			break;
		case 'n':
			if (parse_num(optarg, 1, 1e15, &v) < 0)
				goto bad;
			o.count = (uint64_t)v;
			break;
		case 'i':
			if (parse_num(optarg, 0.01, 3600, &v) < 0)
				goto bad;
			o.ping_interval = v;
			break;
		case 't':
			if (parse_num(optarg, 0.01, 3600, &v) < 0)
				goto bad;
			o.timeout = v;
			break;
		case 'w':
			if (parse_num(optarg, 1, 100000, &v) < 0)
				goto bad;
			o.connect_window = (unsigned)v;
			break;
		case 'P':
			o.subprotocol = optarg;
			break;
		case 'C':
			o.ca_file = optarg;
			break;
		case 'k':
			o.insecure = true;
			break;
		case 'R':
			o.allow_remote = true;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'S':
			serve = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	wsload_pattern_init();
	wsload_raise_nofile();
	if (serve != NULL) {
		if (optind + 1 != argc || parse_num(argv[optind], 0, 65535, &v) < 0) {
			fprintf(stderr, "wsload: --serve MODE needs a PORT (0-65535)\n");
			return 2;
		}
		return wsload_serve(serve, (unsigned)v, o.duration);
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return 2;
	}
	if (o.mode == MODE_HOLD && o.count) {
		fprintf(stderr, "wsload: hold runs for --duration; --count does not apply\n");
		return 2;
	}
	if (!have_duration)
		o.duration = o.count ? 60 : 5;
	if (parse_target(argv[optind], &o) < 0)
		return 2;
	unsigned long nofile = wsload_raise_nofile();
	if (nofile && o.conns + 16 > nofile) {
		fprintf(stderr, "wsload: %u connections need more than the %lu "
				"file descriptors allowed (RLIMIT_NOFILE)\n",
			o.conns, nofile);
		return 2;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL || wsload_client_run(&o, t) < 0) {
		free(t);
		return 1;
	}
	report(&o, t);
	int rc = t->failed || t->mismatches ||
		 t->established < o.conns ? 1 : 0;
	free(t);
	return rc;
bad:
	fprintf(stderr, "wsload: bad value for -%c: %s\n", ch,
		optarg ? optarg : "");
	usage(stderr);
	return 2;
}
