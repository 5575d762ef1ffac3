/*
 * wsload.h - what the parts of wsload, the load generator, share: the run's
 * options, its totals, the test pattern, the latency histogram, the clock.
 *
 * wsload opens N WebSocket (ws://, wss://) or raw TCP (tcp://) connections
 * (or raw TLS, tls://, as a baseline for wss://) connections and runs one
 * workload on them: echo round trips, bulk upload, bulk download, idle hold,
 * or handshake (connect, TLS, upgrade, one echo, close, again).  `wsload --serve` is the matching upstream: a TCP
 * echo, sink or source, so a benchmark needs no Python on its hot path.
 * Everything runs in one thread on one epoll set.
 */
#ifndef WSLOAD_H
#define WSLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* X(name, text): the workloads. */
#define WSLOAD_MODES(X)                                                        \
	X(MODE_ECHO, "echo")                                                   \
	X(MODE_UPLOAD, "upload")                                               \
	X(MODE_DOWNLOAD, "download")                                           \
	X(MODE_HOLD, "hold")                                                   \
	X(MODE_HANDSHAKE, "handshake")

enum wsload_mode {
#define WSLOAD_MODE_ENUM_(name, text) name,
	WSLOAD_MODES(WSLOAD_MODE_ENUM_)
#undef WSLOAD_MODE_ENUM_
};

/* The transport spoken to the target. */
enum wsload_scheme {
	SCHEME_WS,
	SCHEME_WSS,
	SCHEME_TCP,
	SCHEME_TLS, /* a raw TLS stream: tcp:// inside TLS, no WebSocket */
};

/* True for the schemes that carry the bytes as they are (tcp://, tls://). */
static inline bool
wsload_scheme_raw(enum wsload_scheme s)
{
	return s == SCHEME_TCP || s == SCHEME_TLS;
}

/* True for the schemes that speak TLS (wss://, tls://). */
static inline bool
wsload_scheme_tls(enum wsload_scheme s)
{
	return s == SCHEME_WSS || s == SCHEME_TLS;
}

/*
 * The test pattern: the byte at stream offset O of every connection's data
 * is wsload_pattern[O % PATTERN_PERIOD].  The period is prime, so a stream
 * shifted by any amount that is not a multiple of it fails the comparison;
 * the table is long enough to hand out PATTERN_MAX_RUN bytes from any offset.
 */
#define PATTERN_PERIOD 251u
#define PATTERN_MAX_RUN (256u * 1024u)
extern uint8_t wsload_pattern[PATTERN_MAX_RUN + PATTERN_PERIOD];

/* Fill wsload_pattern. */
void wsload_pattern_init(void);

/* The pattern bytes from stream offset OFF onward (PATTERN_MAX_RUN valid). */
static inline const uint8_t *
wsload_pattern_at(uint64_t off)
{
	return wsload_pattern + off % PATTERN_PERIOD;
}

/*
 * Log-linear latency histogram in nanoseconds: exact below 32, then 16
 * buckets per power of two (at most 6.25% wide).  Plain counters: merge by
 * adding.
 */
#define HIST_BUCKETS 1024
struct wsload_hist {
	uint64_t count[HIST_BUCKETS];
	uint64_t total, max;
};

/* Count one value V (ns). */
void wsload_hist_add(struct wsload_hist *h, uint64_t v);
/* The value at quantile Q (0..1): the upper bound of its bucket; 0 if empty. */
uint64_t wsload_hist_quantile(const struct wsload_hist *h, double q);

/* Monotonic nanoseconds. */
uint64_t wsload_now_ns(void);

struct wsload_opts {
	enum wsload_mode mode;
	enum wsload_scheme scheme;
	char host[256];
	char port[16];
	char path[1024];
	struct sockaddr_storage addr; /* the target, resolved and checked */
	socklen_t addr_len;
	unsigned conns;            /* connections */
	size_t size;               /* message size, bytes */
	unsigned pipeline;         /* echo: messages in flight per connection */
	double duration;           /* seconds; 0 = no time bound */
	uint64_t count;            /* messages in all; 0 = no count bound */
	double ping_interval;      /* hold: seconds between client pings */
	double timeout;            /* connect+handshake, pong and close limit */
	unsigned connect_window;   /* connections being set up at once */
	const char *subprotocol;   /* offered, or NULL */
	const char *ca_file;       /* wss, tls: trust these roots */
	bool insecure;             /* wss, tls: no certificate verification */
	bool allow_remote;
	bool quiet;
};

/* What a run did, summed over its connections. */
struct wsload_totals {
	unsigned established;  /* connections that completed their handshake */
	unsigned failed;       /* connections that ended in an error */
	unsigned held;         /* hold: connections still up at the end */
	uint64_t msgs;         /* echo: round trips; upload: messages sent;
				  download: bytes / size; handshake:
				  connections completed */
	uint64_t bytes;        /* payload bytes: echoed, sent or received */
	uint64_t mismatches;   /* content verification failures */
	uint64_t pings, pongs; /* hold: client pings sent and answered */
	double seconds;        /* measured interval */
	struct wsload_hist hist;
	char first_error[160];
};

/* Run the client side with O; fill T.  Returns 0, or -1 on a setup error
   (reported on stderr). */
int wsload_client_run(const struct wsload_opts *o, struct wsload_totals *t);

/* Serve MODE ("echo", "sink" or "source") on 127.0.0.1:PORT (0: any free
   port, printed on stdout) until SIGINT/SIGTERM or DURATION seconds (0 =
   no limit).  Returns the exit status. */
int wsload_serve(const char *mode, unsigned port, double duration);

/* Raise the soft RLIMIT_NOFILE to the hard limit; returns the new limit. */
unsigned long wsload_raise_nofile(void);

#endif
