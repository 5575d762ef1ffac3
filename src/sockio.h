/*
 * sockio.h - reading and writing a plain socket bufferevent's socket
 * directly, behind libevent 2.1's back: the one module that touches
 * libevent's internals (struct bufferevent's ev_read, from
 * event2/bufferevent_struct.h).  Everything else stays on the public API.
 *
 * Why: libevent 2.1's socket bufferevent asks the kernel how much is
 * readable (FIONREAD) before every read and reads at most 4 KiB per wakeup,
 * and queuing a small write costs two epoll_ctl calls and a loop pass.
 * A bufferevent whose read event sockio_take re-assigned still owns its
 * socket, and bufferevent_enable / bufferevent_disable still add and delete
 * that same event, so pausing and resuming work as before.
 */
#ifndef WSGATE_SOCKIO_H
#define WSGATE_SOCKIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

/* Buffer segments in one direct send. */
#define SOCKIO_IOV 16
/* The smallest adaptive read: 1 << SOCKIO_SHIFT_MIN bytes (4 KiB). */
#define SOCKIO_SHIFT_MIN 12

enum sockio_read {
	SOCKIO_READ_DATA,  /* bytes were added to the input */
	SOCKIO_READ_AGAIN, /* nothing to read now */
	SOCKIO_READ_EOF,
	SOCKIO_READ_ERROR, /* errno says which */
};

/* True for a bufferevent straight on a socket (not TLS, not a filter):
   the only kind that may be read or written behind libevent's back. */
bool sockio_is_plain(struct bufferevent *bev);

/* Send the N pieces at IOV on BEV's socket at once (MSG_NOSIGNAL); the
   result of send/sendmsg. */
ssize_t sockio_sendv(struct bufferevent *bev, struct iovec *iov, int n);

/*
 * Write HDR (HLEN bytes, may be 0) and the first N bytes of SRC straight
 * to BEV's socket when BEV is plain and nothing is queued in its output,
 * in one send.  Drains what was written of SRC; returns the bytes written
 * in all (0 on EAGAIN, an error, or when it may not write directly:
 * libevent's own write then does the work and reports errors).
 */
size_t sockio_write_now(struct bufferevent *bev, const uint8_t *hdr,
			size_t hlen, struct evbuffer *src, size_t n);

/*
 * Read BEV's socket once into its input's free space (reserve and commit:
 * no copy).  *SHIFT is the log2 of the read size: it starts at
 * SOCKIO_SHIFT_MIN, doubles while reads come back full (up to BEV's
 * max_single_read) and halves when a read fills less than a quarter.
 */
enum sockio_read sockio_read(struct bufferevent *bev, uint8_t *shift);

/* From now on BEV's read event (EV_READ|EV_PERSIST on its socket) calls
   CB with BEV as its argument instead of libevent's own read; reading
   stays on or off as it was.  BEV: a connected plain socket bufferevent. */
void sockio_take(struct bufferevent *bev, event_callback_fn cb);

/* Run BEV's read callback on the next loop pass, as if its socket were
   readable (for data a layer below the socket, OpenSSL, still holds). */
void sockio_wake_read(struct bufferevent *bev);

#endif
