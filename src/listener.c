/*
 * listener.c - an accepting socket that hands connections to the callback
 * it was given (the server's); it knows nothing of sessions or workers.
 *
 * When accept(2) fails for lack of descriptors or memory, the listener's
 * error callback would fire on every loop pass (the pending connection keeps
 * the socket readable) and spin the CPU; instead accepting pauses and a
 * timer resumes it (memcached accept_new_conns(false)).
 */
#include "listener.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "log.h"

/* How long accepting pauses after EMFILE/ENFILE/ENOBUFS/ENOMEM. */
#define LISTENER_PAUSE_MS 250

struct listener {
	listener_accept_fn accept;
	void *arg;
	struct config_listen cl;   /* a copy; cl.text is owned */
	size_t index;              /* in the config's listens */
	struct evconnlistener *evl;
	struct event *resume_ev;
	const char *name;          /* cl.text */
	unsigned long paused_count;
};

/* The listen address; see listener.h. */
const struct config_listen *
listener_config(const struct listener *l)
{
	return &l->cl;
}

/* A new connection: to the callback. */
static void
listener_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
		   struct sockaddr *addr, int len, void *arg)
{
	struct listener *l = arg;

	(void)evl;
	l->accept(l->arg, l->index, &l->cl, fd, addr, (socklen_t)len);
}

/* Resume accepting after a pause. */
static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(l->evl);
}

/* accept(2) failed. */
static void
listener_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {0, LISTENER_PAUSE_MS * 1000};

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* Log the first pause and then every 100th. */
		if (l->paused_count++ % 100 == 0)
			log_warn("%s: accept: %s: pausing for %d ms (paused "
				 "%lu times)",
				 l->name, strerror(err), LISTENER_PAUSE_MS,
				 l->paused_count);
		evconnlistener_disable(evl);
		evtimer_add(l->resume_ev, &tv);
		return;
	}
	log_warn("%s: accept: %s", l->name, strerror(err));
}

/* Bind and listen; see listener.h. */
struct listener *
listener_new(struct event_base *base, size_t index,
	     const struct config_listen *cl, bool reuseport,
	     listener_accept_fn accept, void *arg)
{
	struct listener *l = calloc(1, sizeof(*l));
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
			 LEV_OPT_REUSEABLE;

	if (l == NULL)
		return NULL;
	l->accept = accept;
	l->arg = arg;
	l->index = index;
	l->cl = *cl; /* a copy: configs come and go with reloads */
	l->cl.text = strdup(cl->text);
	l->name = l->cl.text;
	if (l->name == NULL) {
		free(l);
		return NULL;
	}
	if (cl->addr.ss_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	if (reuseport)
		flags |= LEV_OPT_REUSEABLE_PORT;
	l->evl = evconnlistener_new_bind(base, listener_accept_cb, l,
					 flags, 1024,
					 (const struct sockaddr *)&cl->addr,
					 (int)cl->addr_len);
	if (l->evl == NULL) {
		log_error("%s: cannot listen: %s", cl->text,
			  strerror(EVUTIL_SOCKET_ERROR()));
		free(l->cl.text);
		free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->evl, listener_error_cb);
	l->resume_ev = evtimer_new(base, listener_resume_cb, l);
	if (l->resume_ev == NULL) {
		listener_free(l);
		return NULL;
	}
	return l;
}

/* Close and free. */
void
listener_free(struct listener *l)
{
	if (l == NULL)
		return;
	if (l->evl != NULL)
		evconnlistener_free(l->evl);
	if (l->resume_ev != NULL)
		event_free(l->resume_ev);
	free(l->cl.text);
	free(l);
}
