/*
 * splice_pipe.c - see splice_pipe.h.  Linux only: splice(2) and
 * F_SETPIPE_SZ (fcntl(2)).
 */
#include "splice_pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <event2/buffer.h>

void
splice_pipe_init(struct splice_pipe *p)
{
	p->fd[0] = p->fd[1] = -1;
	p->size = 0;
}

int
splice_pipe_open(struct splice_pipe *p, size_t size)
{
	int r;

	if (p->fd[0] >= 0)
		return 0;
	if (pipe2(p->fd, O_NONBLOCK | O_CLOEXEC) < 0) {
		p->fd[0] = p->fd[1] = -1;
		return -1;
	}
	/* The default 64 KiB (16 pages) would cut a 256 KiB read in four;
	   a larger size may be refused (pipe-max-size, pipe-user-pages-soft):
	   keep what we got. */
	r = fcntl(p->fd[1], F_SETPIPE_SZ, (int)size);
	if (r < 0)
		r = fcntl(p->fd[1], F_GETPIPE_SZ);
	p->size = r > 0 ? (size_t)r : 65536;
	return 0;
}

void
splice_pipe_close(struct splice_pipe *p)
{
	for (int i = 0; i < 2; i++) {
		if (p->fd[i] >= 0)
			close(p->fd[i]);
		p->fd[i] = -1;
	}
	p->size = 0;
}

ssize_t
splice_pipe_fill(struct splice_pipe *p, int fd, size_t max)
{
	if (max > p->size)
		max = p->size;
	return splice(fd, NULL, p->fd[1], NULL, max,
		      SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

ssize_t
splice_pipe_send(struct splice_pipe *p, int fd, size_t len, bool more)
{
	return splice(p->fd[0], NULL, fd, NULL, len,
		      SPLICE_F_MOVE | SPLICE_F_NONBLOCK |
			      (more ? SPLICE_F_MORE : 0));
}

int
splice_pipe_drain(struct splice_pipe *p, struct evbuffer *dst, size_t len)
{
	while (len > 0) {
		struct evbuffer_iovec v;
		ssize_t r;

		if (evbuffer_reserve_space(dst, (ev_ssize_t)len, &v, 1) != 1)
			return -1;
		if (v.iov_len > len)
			v.iov_len = len;
		r = read(p->fd[0], v.iov_base, v.iov_len);
		if (r <= 0) /* the pipe holds fewer bytes than said */
			return -1;
		v.iov_len = (size_t)r;
		evbuffer_commit_space(dst, &v, 1);
		len -= (size_t)r;
	}
	return 0;
}
