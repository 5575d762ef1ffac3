/*
 * listener.h - an accepting socket (evconnlistener) that hands new
 * connections to the server, and pauses on EMFILE/ENFILE instead of spinning.
 */
#ifndef WSGATE_LISTENER_H
#define WSGATE_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <event2/util.h>

struct config_listen;
struct event_base;
struct listener;

/* A connection accepted on listen address number INDEX (whose flags CL
   gives); FD is now the callee's. */
typedef void (*listener_accept_fn)(void *arg, size_t index,
				   const struct config_listen *cl,
				   evutil_socket_t fd,
				   const struct sockaddr *addr,
				   socklen_t addr_len);

/* Bind and listen on CL, listen address number INDEX, on BASE (with
   SO_REUSEPORT when REUSEPORT); every accepted connection goes to ACCEPT
   with ARG.  NULL on failure (logged). */
struct listener *listener_new(struct event_base *base, size_t index,
			      const struct config_listen *cl, bool reuseport,
			      listener_accept_fn accept, void *arg);

/* The listen address L was made for (a copy of the config's). */
const struct config_listen *listener_config(const struct listener *l);

/* Close the socket and free L; NULL is fine. */
void listener_free(struct listener *l);

#endif
