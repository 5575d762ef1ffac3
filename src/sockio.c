/*
 * sockio.c - plain sockets read and written behind libevent 2.1's socket
 * bufferevent (see sockio.h for why).  The only file that touches
 * libevent's internals: the version guard below pins the libevent whose
 * bufferevent_sock.c this was written against.
 */
#include "sockio.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>

/* bufferevent_struct.h's ev_read, and how bufferevent_sock.c uses it
   (bufferevent_enable/disable add and delete it; its callback reads). */
#if LIBEVENT_VERSION_NUMBER < 0x02010000 || LIBEVENT_VERSION_NUMBER >= 0x02020000
#error "sockio.c reads behind libevent 2.1's socket bufferevent: check bufferevent_sock.c of this libevent before building with it"
#endif

/* True for a bufferevent straight on a socket (not TLS, not a filter):
   the only kind the data path may read or write behind libevent's back. */
bool
sockio_is_plain(struct bufferevent *bev)
{
	return bufferevent_getfd(bev) >= 0 &&
	       bufferevent_get_underlying(bev) == NULL &&
	       bufferevent_openssl_get_ssl(bev) == NULL;
}

/* Write the N pieces at IOV to BEV's socket at once.  send/sendmsg, not
   writev: the socket calls skip the VFS layer and its file-position lock
   (fdget_pos), a few per cent of a small echo's CPU in perf. */
ssize_t
sockio_sendv(struct bufferevent *bev, struct iovec *iov, int n)
{
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};

	if (n == 1)
		return send(bufferevent_getfd(bev), iov[0].iov_base,
			    iov[0].iov_len, MSG_NOSIGNAL);
	return sendmsg(bufferevent_getfd(bev), &mh, MSG_NOSIGNAL);
}

/*
 * Write HDR (HLEN bytes, may be 0) and the first N bytes of SRC straight to
 * BEV's socket when nothing is queued in BEV's output, in one send.
 * Queuing instead costs two epoll_ctl calls (EPOLLOUT on, then off) and a
 * loop pass per message, which is most of a small echo's cost.  Drains
 * what was written of SRC; returns the bytes written in all (0 on EAGAIN
 * or an error: libevent's own write reports errors).
 */
size_t
sockio_write_now(struct bufferevent *bev, const uint8_t *hdr, size_t hlen,
		  struct evbuffer *src, size_t n)
{
	struct evbuffer_iovec v[SOCKIO_IOV];
	struct iovec iov[SOCKIO_IOV + 1];
	int k = 0, nv = 0;
	size_t left = n;
	ssize_t w;

	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0 ||
	    !sockio_is_plain(bev))
		return 0;
	if (hlen > 0) {
		iov[k].iov_base = (void *)hdr;
		iov[k++].iov_len = hlen;
	}
	if (n > 0)
		nv = evbuffer_peek(src, (ev_ssize_t)n, NULL, v, SOCKIO_IOV);
	for (int i = 0; i < nv && i < SOCKIO_IOV && left > 0; i++) {
		size_t l = v[i].iov_len < left ? v[i].iov_len : left;
		iov[k].iov_base = v[i].iov_base;
		iov[k++].iov_len = l;
		left -= l;
	}
	if (k == 0)
		return 0;
	w = sockio_sendv(bev, iov, k);
	if (w <= 0)
		return 0;
	if ((size_t)w > hlen)
		evbuffer_drain(src, (size_t)w - hlen);
	return (size_t)w;
}

/* Read BEV's socket once; see sockio.h. */
enum sockio_read
sockio_read(struct bufferevent *bev, uint8_t *shift)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	ev_ssize_t max = bufferevent_get_max_single_read(bev);
	size_t want, asked = 0, left;
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	ssize_t r;
	int n, err;

	if (*shift < SOCKIO_SHIFT_MIN)
		*shift = SOCKIO_SHIFT_MIN;
	want = (size_t)1 << *shift;
	if (max > 0 && want > (size_t)max)
		want = (size_t)max;
	/* The socket bufferevent keeps its input's end frozen between its
	   own reads; thaw it for ours. */
	evbuffer_unfreeze(in, 0);
	n = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
	if (n <= 0) {
		evbuffer_freeze(in, 0);
		errno = ENOMEM;
		return SOCKIO_READ_ERROR;
	}
	for (int i = 0; i < n; i++) {
		/* The reservation may be larger than asked: read no more. */
		if (v[i].iov_len > want - asked)
			v[i].iov_len = want - asked;
		asked += v[i].iov_len;
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	if (n == 1) { /* recv, not readv: see sockio_write_now */
		r = recv(bufferevent_getfd(bev), iov[0].iov_base,
			 iov[0].iov_len, 0);
	} else {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		r = recvmsg(bufferevent_getfd(bev), &mh, 0);
	}
	err = errno;
	if (r > 0) {
		left = (size_t)r;
		for (int i = 0; i < n; i++) {
			if (left < v[i].iov_len)
				v[i].iov_len = left;
			left -= v[i].iov_len;
		}
		evbuffer_commit_space(in, v, n);
	}
	/* else nothing is committed: the reservation lapses */
	evbuffer_freeze(in, 0);
	if (r > 0) {
		if ((size_t)r == asked && max > 0 &&
		    ((size_t)1 << *shift) < (size_t)max)
			(*shift)++;
		else if ((size_t)r < asked / 4 && *shift > SOCKIO_SHIFT_MIN)
			(*shift)--;
		return SOCKIO_READ_DATA;
	}
	if (r == 0)
		return SOCKIO_READ_EOF;
	errno = err;
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR
		       ? SOCKIO_READ_AGAIN
		       : SOCKIO_READ_ERROR;
}

/* From now on S reads BEV, a connected plain socket bufferevent, itself
   (see above). */
void
sockio_take(struct bufferevent *bev, event_callback_fn cb)
{
	bool reading = (bufferevent_get_enabled(bev) & EV_READ) != 0;

	event_del(&bev->ev_read);
	event_assign(&bev->ev_read, bufferevent_get_base(bev),
		     bufferevent_getfd(bev), EV_READ | EV_PERSIST,
		     cb, bev);
	if (reading)
		event_add(&bev->ev_read, NULL);
}

/* Activate BEV's read event once; see sockio.h. */
void
sockio_wake_read(struct bufferevent *bev)
{
	event_active(&bev->ev_read, EV_READ, 1);
}
