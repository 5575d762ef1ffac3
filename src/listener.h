/*
 * listener.h - an accepting socket (evconnlistener) that hands new
 * connections to the server, and pauses on EMFILE/ENFILE instead of spinning.
 */
#ifndef WSGATE_LISTENER_H
#define WSGATE_LISTENER_H

#include <sys/socket.h>

struct server;
struct config_listen;
struct listener;

/* Bind and listen on CL for SRV; NULL on failure (logged). */
struct listener *listener_new(struct server *srv, const struct config_listen *cl);

/* Close the socket and free L; NULL is fine. */
void listener_free(struct listener *l);

#endif
