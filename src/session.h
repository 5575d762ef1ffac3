/*
 * session.h - one client connection: its HTTP upgrade, and then the bridge
 * between the WebSocket client and its upstream (or the built-in echo).
 *
 * A session owns both bufferevents, its timers and every buffer it uses.  It
 * is never freed on a path that touches it afterwards: session_close() marks
 * it and a fresh loop pass frees it.
 */
#ifndef WSGATE_SESSION_H
#define WSGATE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <event2/util.h>

struct config_listen;
struct session;
struct worker_ctx;

/*
 * Take over the socket FD accepted on listen address CL from ADDR, on
 * worker W: NULL if it cannot be served at all (the socket is closed and
 * nothing is counted).  Otherwise the caller links it into its list and
 * calls session_begin.
 */
struct session *session_new(struct worker_ctx *w, const struct config_listen *cl,
			    evutil_socket_t fd, const struct sockaddr *addr,
			    socklen_t addr_len);

/*
 * Serve S: its PROXY header (if its listener asks for one), its TLS
 * handshake (if the listener says tls), its upgrade request (answered 503
 * when OVER_LIMIT: max_connections is reached), then the bridge.  When it
 * is freed, W->session_gone tells the server.
 */
void session_begin(struct session *s, bool over_limit);

/* A server's sessions: the server owns the list, each session its links. */
struct session_list {
	struct session *head;
	unsigned n;
};

void session_list_add(struct session_list *l, struct session *s);
void session_list_remove(struct session_list *l, struct session *s);

/* The subject (RFC 2253) of the client certificate verified in the TLS
   handshake, or NULL. */
const char *session_tls_subject(const struct session *s);

/* Graceful shutdown: send Close 1001 (or drop a session still in its
   handshake); the session goes away by itself. */
void session_shutdown(struct session *s);

/* Drop S now (drain timeout expired); it is freed on the next loop pass. */
void session_abort(struct session *s);

/* Bytes S has queued toward its client and its upstream. */
size_t session_buffered(const struct session *s);

/* The session after S in its list, or NULL. */
struct session *session_next(struct session *s);

/* Free S at once (and tell the server, if begun): only for server_free,
   when the loop no longer runs. */
void session_free(struct session *s);

#endif
