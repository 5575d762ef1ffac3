/*
 * worker_ctx.h - what a session may use of the worker it runs on, and nothing
 * more: the event base, the resolver, the TLS contexts, the config for new
 * sessions, the counters, the admission state, and scratch space shared by
 * the worker's sessions.
 *
 * The server (server.c) owns and fills it; a session reads it and tells
 * the server it is gone through the one hook in it.  Everything a session
 * touches on the data path hangs off its worker, never off a global, so
 * several workers (each with its own event_base, in its own thread) run the
 * same code side by side.
 */
#ifndef WSGATE_WORKER_CTX_H
#define WSGATE_WORKER_CTX_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "splice_pipe.h"

struct config;
struct event_base;
struct evdns_base;
struct ip_limit;
struct session;
struct tls_state;
struct token_file;

struct worker_ctx {
	struct event_base *base;
	struct evdns_base *dns;
	struct tls_state *tls;     /* TLS contexts (the process's); may be NULL */
	struct config *cfg;        /* config for new sessions (a reference;
				      a reload replaces it) */
	struct metrics metrics;    /* written by this worker only */
	bool draining;             /* shutting down: no new sessions */

	/* Admission.  ip_limit is shared by every worker (owned by the
	   process; it has its own mutex); the token files are this
	   worker's, indexed by the routes of cfg, NULL where a route has
	   none (or its file failed to load at a reload). */
	struct ip_limit *ip_limit;        /* NULL: no per-IP limit */
	struct token_file **auth_files;
	struct token_file **target_files;

	/* Scratch lent to one session at a time, within one callback:
	   room for packing frames toward a TLS client before one SSL_write
	   (SESSION_PACK_MAX bytes; made on first use), and the pipe for
	   splicing upstream bytes to plain clients (opened on first use;
	   empty between uses). */
	uint8_t *pack_buf;
	struct splice_pipe pipe;

	/* A session started by the server is freed: the server unlinks
	   it from its list and releases its connection count. */
	void (*session_gone)(void *arg, struct session *s);
	void *arg;
};

#endif
