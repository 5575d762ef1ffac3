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
struct server;
struct session;

/*
 * Take over the socket FD accepted on listen address CL from ADDR: its
 * PROXY header (if CL asks for one), its TLS handshake (if CL says tls),
 * its upgrade request, then serve it.  On failure the socket is closed.
 */
void session_start(struct server *srv, const struct config_listen *cl,
		   evutil_socket_t fd, const struct sockaddr *addr,
		   socklen_t addr_len);

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

/* The next session in the server's list. */
struct session *session_next(struct session *s);

/* Free S at once: only for server_free, when the loop no longer runs. */
void session_free(struct session *s);

#endif
