/*
 * listener.h - an accepting socket (evconnlistener) that hands new
 * connections to the server, and pauses on EMFILE/ENFILE instead of spinning.
 */
#ifndef WSGATE_LISTENER_H
#define WSGATE_LISTENER_H

#include <stdbool.h>
#include <sys/socket.h>

struct server;
struct config_listen;
struct listener;

/* Bind and listen on CL for SRV (with SO_REUSEPORT when REUSEPORT); NULL
   on failure (logged). */
struct listener *listener_new(struct server *srv, const struct config_listen *cl,
			      bool reuseport);

/* Close the socket and free L; NULL is fine. */
void listener_free(struct listener *l);

#endif
