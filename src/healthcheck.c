/*
 * healthcheck.c - a minimal HTTP/1.1 GET for container health checks.
 *
 * Blocking sockets with poll(2) bound every step by the overall deadline;
 * only the status line of the answer is read.
 */
#include "healthcheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Milliseconds on the monotonic clock. */
static long long
healthcheck_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for EVENTS on FD until DEADLINE; 0, or -1 on timeout or error. */
static int
healthcheck_wait(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		long long left = deadline - healthcheck_now_ms();
		int r;

		if (left <= 0)
			return -1;
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r == 0 || errno != EINTR)
			return -1;
	}
}

/* Split URL into an address and a path (PATH points into URL). */
static int
healthcheck_parse(const char *url, struct sockaddr_storage *ss,
		  socklen_t *len, const char **path)
{
	char host[64];
	const char *h, *hend, *colon;
	unsigned long port;
	char *end;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (strncmp(url, "http://", 7) != 0)
		return -1;
	h = url + 7;
	hend = strchr(h, '/');
	*path = hend != NULL ? hend : "/";
	if (hend == NULL)
		hend = h + strlen(h);
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(hend - h));
		if (rb == NULL || rb[1] != ':')
			return -1;
		if ((size_t)(rb - h - 1) >= sizeof(host))
			return -1;
		memcpy(host, h + 1, (size_t)(rb - h - 1));
		host[rb - h - 1] = '\0';
		colon = rb + 1;
	} else {
		colon = memchr(h, ':', (size_t)(hend - h));
		if (colon == NULL || (size_t)(colon - h) >= sizeof(host))
			return -1;
		memcpy(host, h, (size_t)(colon - h));
		host[colon - h] = '\0';
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || end != hend || port == 0 || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/* GET URL; see healthcheck.h. */
int
healthcheck_run(const char *url, int timeout_ms)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *path;
	long long deadline = healthcheck_now_ms() + timeout_ms;
	char req[512], resp[256];
	size_t have = 0, sent = 0, reqlen;
	int fd, n, status;

	if (healthcheck_parse(url, &ss, &len, &path) < 0 ||
	    strpbrk(path, " \r\n") != NULL) {
		fprintf(stderr, "wsgate: --healthcheck: expected "
				"http://HOST:PORT/PATH with a numeric host or "
				"localhost, got %s\n",
			url);
		return 2;
	}
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: healthcheck\r\n"
		     "User-Agent: wsgate-healthcheck\r\nConnection: close\r\n\r\n",
		     path);
	if (n < 0 || (size_t)n >= sizeof(req)) {
		fprintf(stderr, "wsgate: --healthcheck: path too long\n");
		return 2;
	}
	reqlen = (size_t)n;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "wsgate: --healthcheck: socket: %s\n",
			strerror(errno));
		return 1;
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 &&
	    errno != EINPROGRESS)
		goto neterr;
	if (healthcheck_wait(fd, POLLOUT, deadline) < 0)
		goto timeout;
	{
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 ||
		    err != 0) {
			errno = err;
			goto neterr;
		}
	}
	while (sent < reqlen) {
		ssize_t w = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);
		if (w < 0 && errno == EAGAIN) {
			if (healthcheck_wait(fd, POLLOUT, deadline) < 0)
				goto timeout;
			continue;
		}
		if (w < 0)
			goto neterr;
		sent += (size_t)w;
	}
	while (have < sizeof(resp) - 1 && memchr(resp, '\n', have) == NULL) {
		ssize_t r;
		if (healthcheck_wait(fd, POLLIN, deadline) < 0)
			goto timeout;
		r = recv(fd, resp + have, sizeof(resp) - 1 - have, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r < 0)
			goto neterr;
		if (r == 0)
			break;
		have += (size_t)r;
	}
	close(fd);
	resp[have] = '\0';
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) {
		fprintf(stderr, "wsgate: --healthcheck: %s: no HTTP answer\n",
			url);
		return 1;
	}
	if (status != 200) {
		fprintf(stderr, "wsgate: --healthcheck: %s: HTTP %d\n", url,
			status);
		return 1;
	}
	return 0;
timeout:
	close(fd);
	fprintf(stderr, "wsgate: --healthcheck: %s: timed out after %d ms\n",
		url, timeout_ms);
	return 1;
neterr:
	fprintf(stderr, "wsgate: --healthcheck: %s: %s\n", url,
		strerror(errno));
	close(fd);
	return 1;
}
