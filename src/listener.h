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

struct server;
struct config_listen;
struct listener;

/* Bind and listen on CL, listen address number INDEX of SRV's config
   (with SO_REUSEPORT when REUSEPORT); NULL on failure (logged).  A
   connection it accepts may be handed to a less busy worker
   (gateway_balance). */
struct listener *listener_new(struct server *srv, size_t index,
			      const struct config_listen *cl, bool reuseport);

/* Start a session on L's server for FD, accepted on L's address (here or
   by another worker's twin of L). */
void listener_start(struct listener *l, evutil_socket_t fd,
		    const struct sockaddr *addr, socklen_t addr_len);

/* Close the socket and free L; NULL is fine. */
void listener_free(struct listener *l);

#endif
