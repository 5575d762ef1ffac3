/*
 * wsload_serve.c - `wsload --serve`: the upstream end of a benchmark, a
 * plain TCP server on 127.0.0.1 that costs as little as possible, so that
 * what is measured is the relay in the middle:
 *
 *   echo    writes back every byte it reads (stops reading while the
 *           peer is not taking the echo: bounded memory)
 *   sink    reads and discards
 *   source  writes the test pattern from stream offset 0 as fast as the
 *           peer takes it (wsload's download mode verifies it), discards
 *           what it reads, and closes on the peer's EOF
 *
 * One thread, one epoll set, level-triggered.
 */
#include "wsload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define SERVE_BUF (256 * 1024)
#define SERVE_IO_PER_EVENT 4
#define SERVE_BACKLOG 4096

enum serve_mode {
	SERVE_ECHO,
	SERVE_SINK,
	SERVE_SOURCE,
};

struct sconn {
	int fd;
	uint32_t events;
	uint64_t off;      /* source: pattern offset sent */
	uint8_t *pend;     /* echo: bytes the peer has not taken yet */
	size_t plen, poff;
};

static volatile sig_atomic_t serve_stop;

/* SIGINT/SIGTERM: stop serving. */
static void
serve_signal(int sig)
{
	(void)sig;
	serve_stop = 1;
}

/* Close C. */
static void
serve_close(struct sconn *c)
{
	close(c->fd);
	free(c->pend);
	free(c);
}

/* Set C's epoll interest to EV. */
static void
serve_events(int ep, struct sconn *c, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = c};

	if (ev != c->events && epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
}

/* Echo: send what is pending; false if C is gone. */
static bool
serve_echo_flush(int ep, struct sconn *c)
{
	while (c->poff < c->plen) {
		ssize_t w = send(c->fd, c->pend + c->poff, c->plen - c->poff,
				 MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return false;
		}
		c->poff += (size_t)w;
	}
	if (c->poff < c->plen) {
		serve_events(ep, c, EPOLLOUT);
		return true;
	}
	free(c->pend);
	c->pend = NULL;
	c->plen = c->poff = 0;
	serve_events(ep, c, EPOLLIN);
	return true;
}

/* One readiness event on C; false if C is to be closed. */
static bool
serve_event(int ep, enum serve_mode mode, struct sconn *c, uint32_t ev,
	    uint8_t *buf)
{
	if (mode == SERVE_ECHO && c->pend != NULL)
		return serve_echo_flush(ep, c);
	if (mode == SERVE_SOURCE && (ev & EPOLLOUT)) {
		for (int i = 0; i < SERVE_IO_PER_EVENT; i++) {
			ssize_t w = send(c->fd, wsload_pattern_at(c->off),
					 PATTERN_MAX_RUN, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				return false;
			}
			c->off += (uint64_t)w;
		}
	}
	if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return true;
	for (int i = 0; i < SERVE_IO_PER_EVENT; i++) {
		ssize_t r = recv(c->fd, buf, SERVE_BUF, 0);
		if (r == 0)
			return false;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ||
			       errno == EINTR;
		if (mode != SERVE_ECHO)
			continue;
		ssize_t w = send(c->fd, buf, (size_t)r, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return false;
		if (w < 0)
			w = 0;
		if (w < r) {
			c->plen = (size_t)(r - w);
			c->poff = 0;
			c->pend = malloc(c->plen);
			if (c->pend == NULL)
				return false;
			memcpy(c->pend, buf + w, c->plen);
			serve_events(ep, c, EPOLLOUT);
			return true;
		}
		if (r < SERVE_BUF)
			break;
	}
	return true;
}

/* Accept what is pending on LFD; false when out of descriptors. */
static bool
serve_accept(int ep, int lfd, enum serve_mode mode)
{
	for (int i = 0; i < 64; i++) {
		int one = 1;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return !(errno == EMFILE || errno == ENFILE ||
				 errno == ENOBUFS || errno == ENOMEM);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct sconn *c = calloc(1, sizeof(*c));
		struct epoll_event e;
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->events = mode == SERVE_SOURCE ? EPOLLIN | EPOLLOUT : EPOLLIN;
		e.events = c->events;
		e.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
			serve_close(c);
	}
	return true;
}

/* Serve MODE on 127.0.0.1:PORT until a signal or DURATION seconds. */
int
wsload_serve(const char *mode_name, unsigned port, double duration)
{
	enum serve_mode mode;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	struct sigaction sa;
	struct epoll_event evs[256];
	int one = 1, lfd, ep;
	uint8_t *buf;
	uint64_t end, paused_until = 0;
	static int listener_tag;

	if (strcmp(mode_name, "echo") == 0)
		mode = SERVE_ECHO;
	else if (strcmp(mode_name, "sink") == 0)
		mode = SERVE_SINK;
	else if (strcmp(mode_name, "source") == 0)
		mode = SERVE_SOURCE;
	else {
		fprintf(stderr, "wsload: --serve takes echo, sink or source, "
				"not \"%s\"\n", mode_name);
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = serve_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(lfd, SERVE_BACKLOG) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) {
		fprintf(stderr, "wsload: cannot listen on 127.0.0.1:%u: %s\n",
			port, strerror(errno));
		return 1;
	}
	buf = malloc(SERVE_BUF);
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event le = {.events = EPOLLIN, .data.ptr = &listener_tag};
	if (buf == NULL || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le) < 0) {
		fprintf(stderr, "wsload: cannot set up: %s\n", strerror(errno));
		return 1;
	}
	printf("wsload: serving %s on 127.0.0.1:%u\n", mode_name,
	       (unsigned)ntohs(a.sin_port));
	fflush(stdout);

	end = duration > 0 ? wsload_now_ns() + (uint64_t)(duration * 1e9) : 0;
	while (!serve_stop && (end == 0 || wsload_now_ns() < end)) {
		int n = epoll_wait(ep, evs, 256, 100);
		if (paused_until && wsload_now_ns() >= paused_until) {
			epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le);
			paused_until = 0;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &listener_tag) {
				if (!serve_accept(ep, lfd, mode)) {
					/* Out of descriptors: stop accepting
					   for a moment instead of spinning. */
					epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
					paused_until = wsload_now_ns() + 100000000ull;
				}
				continue;
			}
			struct sconn *c = evs[i].data.ptr;
			if (!serve_event(ep, mode, c, evs[i].events, buf))
				serve_close(c);
		}
	}
	/* Connections still open are closed by exiting. */
	free(buf);
	close(ep);
	close(lfd);
	return 0;
}
