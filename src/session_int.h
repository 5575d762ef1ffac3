/*
 * session_int.h - what the files of the session module share, and only
 * they (session.h is the module's public face): the session struct and its
 * states, the limits of its data path, and the functions one file calls in
 * another.  Which file owns what: docs/ARCHITECTURE.md.
 */
#ifndef WSGATE_SESSION_INT_H
#define WSGATE_SESSION_INT_H

#include "session.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "netaddr.h"
#include "sockio.h"
#include "upstream.h"
#include "utf8.h"
#include "ws_frame.h"

struct access_verdict;
struct frame_queue;
struct config;
struct config_route;
struct route_metrics;
struct http_upgrade;
struct proxy_proto;


/* Bytes kept in the client bufferevent's output; the rest waits in
   to_client as whole frames, so control frames can overtake it. */
#define CLIENT_OUT_CHUNK (64 * 1024)
/* Largest single read from a socket (or of TLS records).  256 KiB: a bulk
   transfer then costs a wakeup, a read and a write per 256 KiB; at 64 KiB
   the relay spent about twice the CPU per MB (docs/PERFORMANCE.md). */
#define MAX_SINGLE_READ (256 * 1024)
/* Largest single write to a socket (libevent's default is 16 KiB). */
#define MAX_SINGLE_WRITE (256 * 1024)
/* Frames packed for one SSL_write toward a TLS client: one upstream read
   and its headers (session_client_frames_packed); also the TLS client's
   max_single_write, so that libevent's retry of a write OpenSSL could not
   finish peeks all of it. */
#define SESSION_PACK_MAX (MAX_SINGLE_READ + 16 * 1024)

/* How often the TCP state of a client that is not read is looked at
   (session_watch_cb). */
#define SESSION_WATCH_MS 1000

#define SESSION_STATES(X)                                                      \
	X(SESSION_HANDSHAKE, "handshake")                                      \
	X(SESSION_REJECTING, "rejecting")                                      \
	X(SESSION_OPEN, "open")                                                \
	X(SESSION_LINGER, "linger")                                            \
	X(SESSION_DONE, "done")

enum session_state {
#define SESSION_ENUM_(name, text) name,
	SESSION_STATES(SESSION_ENUM_)
#undef SESSION_ENUM_
};

/* How to close the upstream connection. */
enum up_close_mode {
	UP_CLOSE_FLUSH, /* after its queued output is written, then FIN */
	UP_CLOSE_NOW,   /* at once: FIN, queued output dropped */
	UP_CLOSE_RESET, /* at once: RST */
};

/* The ways a session ends.  Each has one row in session_close.c's table:
   who closed it, the Close code, the reason, what becomes of the upstream
   and of the client (session_end). */
enum session_end_event {
	/* the client */
	SESSION_END_CLIENT_EOF_EARLY,   /* EOF before the upgrade */
	SESSION_END_CLIENT_RESET_EARLY, /* reset before the upgrade */
	SESSION_END_CLIENT_TLS_FAILED,  /* its TLS handshake failed; detail:
					   the first error */
	SESSION_END_CLIENT_VANISHED,    /* EOF without a Close */
	SESSION_END_CLIENT_RESET,       /* reset without a Close; detail:
					   strerror */
	SESSION_END_CLIENT_VANISHED_UNREAD, /* FIN seen while not read: noted
					   only, the close timeout ends it */
	SESSION_END_CLIENT_PROTOCOL,    /* broke RFC 6455: session_end_code
					   with the decoder's code and text */
	SESSION_END_CLIENT_GONE,        /* left once the end had begun */
	/* the gateway */
	SESSION_END_HANDSHAKE_TIMEOUT,
	SESSION_END_TLS_HANDSHAKE_TIMEOUT,
	SESSION_END_BAD_PROXY_HEADER,
	SESSION_END_SHUTDOWN_EARLY,     /* shutting down, before the upgrade */
	SESSION_END_SHUTDOWN,
	SESSION_END_DRAIN_TIMEOUT,
	SESSION_END_POLICY,             /* refused after the upgrade; detail:
					   why */
	SESSION_END_NO_MEMORY,          /* nothing lost yet: Close 1011 */
	SESSION_END_QUEUE_NO_MEMORY,    /* bytes toward the client lost: RST */
	SESSION_END_PACK_NO_MEMORY,     /* the same, packing for TLS */
	SESSION_END_IDLE_TIMEOUT,
	SESSION_END_PONG_TIMEOUT,
	SESSION_END_CLOSE_TIMEOUT,
	SESSION_END_LINGER_TIMEOUT,     /* the timer once the end had begun */
	SESSION_END_CLIENT_STALLED,
	SESSION_END_CLIENT_STALLED_LATE, /* ...before the upgrade or after our
					    Close: nothing more is sent */
	SESSION_END_UPSTREAM_STALLED,
	/* the upstream */
	SESSION_END_UPSTREAM_CLOSED,
	SESSION_END_UPSTREAM_BAD_UTF8,
	SESSION_END_UPSTREAM_ABORTED,   /* reset, route abort_on_reset */
	/* one per enum upstream_failure, in its order (session_end_upstream):
	   SESSION_END_UPSTREAM_REFUSED and so on; detail: strerror */
#define SESSION_END_UPSTREAM_(name, text) SESSION_END_##name,
	UPSTREAM_FAILURES(SESSION_END_UPSTREAM_)
#undef SESSION_END_UPSTREAM_
	SESSION_END_N
};

enum upstream_state {
	UP_NONE,       /* echo route, or not started */
	UP_CONNECTING,
	UP_OPEN,
	UP_FLUSHING,   /* closing after its output drains */
	UP_GONE,
};

struct session {
	struct worker_ctx *w;             /* its worker (the server's context) */
	struct config *cfg;           /* the config it started with (a ref) */
	struct route_metrics *rm;     /* its route's counters, once routed */
	struct session *prev, *next;  /* its server's session_list */
	enum session_state state;
	enum upstream_state up_state;

	struct bufferevent *client;
	struct bufferevent *up;
	struct upstream_conn *conn;
	struct http_upgrade *http;
	const struct config_route *route;
	struct ws_decoder dec;
	struct frame_queue *to_client; /* whole frames behind the output */
	struct utf8_validator up_utf8; /* frame_type = text */
	size_t up_held;               /* validated bytes of a partial code
					 point held back in up's input */

	/* The one timer every session has: the handshake timeout, then
	   pings while open, then the close/linger timeout (close_armed),
	   then the deferred free.  One event instead of four: an idle
	   connection's memory is mostly its events and buffers. */
	struct event *timer;
	struct event *idle_timer;     /* only with an idle_timeout */
	struct event *watch;          /* while the client is not read */

	/* microseconds since the epoch: started and connect_start from
	   gettimeofday, the rest from the loop's cached clock */
	uint64_t started, last_rx, last_data, ping_sent, connect_start;

	uint64_t bytes_in, bytes_out, msgs_in, msgs_out;
	int http_status;
	unsigned code_sent, code_rcvd, code_logged;
	const char *closed_by;        /* "client", "upstream", "gateway" */
	char *reason;                 /* for the access log; NULL: none */
	char peer[NETADDR_STRLEN];    /* the real client, for logs */
	char *tls_subject;            /* verified client certificate */
	const char *tls_version;      /* "TLSv1.3"; NULL: plain */

	struct proxy_proto *pp;       /* PROXY header still to read */
	struct session_addrs *addrs;  /* until the upgrade is done */
	union {                       /* the real client, while ip_counted */
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} ip;
	char *via;                    /* the TCP peer, when not the client */
	char *target;                 /* token-file route: "host:port" */

	unsigned over_limit : 1;
	unsigned counted : 1;         /* begun: in the server's list, holding
					 a connection slot */
	unsigned close_sent : 1;
	unsigned close_rcvd : 1;
	unsigned fail_fast : 1;       /* don't wait for the client's Close */
	unsigned client_paused : 1;   /* reading the client stopped */
	unsigned pong_paused : 1;     /* ...until the queue toward it drains */
	unsigned client_fin : 1;      /* its FIN seen while it was not read */
	unsigned up_paused : 1;       /* reading the upstream stopped */
	unsigned ping_outstanding : 1;
	unsigned rx_since_ping : 1;   /* client bytes arrived since the ping */
	unsigned is_echo : 1;
	unsigned client_tls : 1;      /* TLS listener */
	unsigned client_tls_ok : 1;   /* its handshake finished */
	unsigned client_tls_dead : 1; /* fatal error or dirty EOF */
	unsigned up_tls : 1;          /* up is an OpenSSL bufferevent */
	unsigned up_tls_dead : 1;
	unsigned client_tls_more : 1; /* tls_io_read_records stopped at */
	unsigned up_tls_more : 1;     /* its limit: more records may follow */
	unsigned ip_counted : 1;      /* ip_limit_acquire admitted it */
	unsigned close_armed : 1;     /* timer: close/linger timeout */
	unsigned no_splice : 1;       /* splice refused this upstream */
	uint8_t client_rd_shift;      /* log2 of the next direct read */
	uint8_t up_rd_shift;
};

/* Addresses needed only until the upgrade (trusted-proxy checks, the
   PROXY header sent upstream). */
struct session_addrs {
	struct sockaddr_storage client; /* the real client */
	struct sockaddr_storage peer;  /* the TCP peer */
	struct sockaddr_storage local; /* what the client connected to */
};


/* session.c */
struct timeval session_tv(uint64_t ms);
uint64_t session_now(const struct session *s);
uint64_t session_wall_us(void);
uint64_t session_ms_between(uint64_t a, uint64_t b);
void session_timer_stop(struct event *ev);
void session_arm(struct event *ev, uint64_t ms);
void session_set_reason(struct session *s, const char *who, const char *reason);
void session_replace_reason(struct session *s, const char *reason);
uint64_t session_monotonic_ms(void);
void session_maybe_done(struct session *s);
void session_sock_ended(struct session *s, struct bufferevent *bev, bool eof,
		   bufferevent_event_cb event_cb);
void session_sock_read_run(struct session *s, struct bufferevent *bev,
		      uint8_t *shift, bufferevent_data_cb read_cb,
		      bufferevent_event_cb event_cb);
void session_sock_cb(evutil_socket_t fd, short what, void *arg);
void session_client_write_cb(struct bufferevent *bev, void *arg);
void session_client_event_cb(struct bufferevent *bev, short what, void *arg);

/* session_handshake.c */
void session_set_client(struct session *s);
void session_handshake(struct session *s);
void session_client_tls_done(struct session *s, struct bufferevent *bev);
void session_client_tls_failed(struct session *s, struct bufferevent *bev,
			  short what, int err);

/* session_rx.c */
void session_client_tls_kick(struct session *s);
void session_resume_client(struct session *s);
bool session_can_forward(const struct session *s);
void session_frames(struct session *s);

/* session_tx.c */
size_t session_client_queued(const struct session *s);
void session_client_write_now(struct session *s, const void *buf, size_t len);
void session_client_frames(struct session *s, struct ws_cut *c,
			   struct evbuffer *src);
void session_client_frame(struct session *s, bool fin, unsigned opcode,
		     struct evbuffer *src, size_t n);
void session_client_flush(struct session *s);
bool session_up_splice(struct session *s);
void session_up_read_cb(struct bufferevent *bev, void *arg);

/* session_close.c */
void session_end(struct session *s, enum session_end_event ev);
void session_end_detail(struct session *s, enum session_end_event ev,
			const char *detail);
void session_end_code(struct session *s, enum session_end_event ev,
		      unsigned code, const char *detail);
enum session_end_event session_end_upstream(enum upstream_failure f);
void session_client_drop(struct session *s, bool reset);
void session_linger(struct session *s);
void session_arm_close(struct session *s);
void session_send_close(struct session *s, unsigned code, const char *reason);
void session_up_close(struct session *s, enum up_close_mode mode);
void session_up_free(struct session *s, bool notify);

/* session_timers.c */
void session_timer_cb(evutil_socket_t fd, short what, void *arg);
void session_watch_cb(evutil_socket_t fd, short what, void *arg);
void session_set_stall_timeout(struct session *s, struct bufferevent *bev);
void session_client_stalled(struct session *s);
void session_up_stalled(struct session *s);
void session_idle_cb(evutil_socket_t fd, short what, void *arg);

/* session_upstream.c */
bool session_up_start(struct session *s, const struct access_verdict *v);
void session_up_failed(struct session *s, enum upstream_failure f, int err);
void session_up_write_cb(struct bufferevent *bev, void *arg);
void session_up_event_cb(struct bufferevent *bev, short what, void *arg);

#endif
