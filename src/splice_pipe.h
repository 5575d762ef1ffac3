/*
 * splice_pipe.h - a worker's pipe for moving upstream bytes to a client
 * socket without copying them through user space (splice(2)).
 *
 * Bytes go socket -> pipe -> socket as page references: the relay's two
 * copies of every byte (recv into a buffer, send out of it) become none.
 * The pipe is empty between calls: whatever a send leaves in it is moved
 * to an evbuffer (a copy) before the caller returns, so one pipe serves
 * every session of a worker and an idle session holds none.
 */
#ifndef WSGATE_SPLICE_PIPE_H
#define WSGATE_SPLICE_PIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct evbuffer;

struct splice_pipe {
	int fd[2];       /* read end, write end; -1: not open */
	size_t size;     /* its capacity in bytes */
};

/* Set P to closed (call before anything else). */
void splice_pipe_init(struct splice_pipe *p);

/* Open P (non-blocking, close-on-exec) with room for about SIZE bytes;
   0 at once if already open, or -1 (errno set). */
int splice_pipe_open(struct splice_pipe *p, size_t size);

/* Close P (if open). */
void splice_pipe_close(struct splice_pipe *p);

/* Move up to MAX bytes readable on socket FD into empty P: >0 bytes moved,
   0 at EOF, -1 with errno (EAGAIN: nothing readable). */
ssize_t splice_pipe_fill(struct splice_pipe *p, int fd, size_t max);

/* Move up to LEN bytes from P to socket FD (MORE: more bytes follow at
   once, as MSG_MORE): bytes moved, or -1 with errno (EAGAIN: the socket
   is full). */
ssize_t splice_pipe_send(struct splice_pipe *p, int fd, size_t len, bool more);

/* Copy LEN bytes out of P to the end of DST (bytes a send left behind).
   0, or -1 if P held fewer or DST could not grow (P is then in an unknown
   state: close it). */
int splice_pipe_drain(struct splice_pipe *p, struct evbuffer *dst, size_t len);

#endif
