/*
 * tls_io.c - more TLS records per wakeup than libevent's OpenSSL
 * bufferevent reads (see tls_io.h).
 */
#include "tls_io.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/*
 * OpenSSL bufferevents (libevent 2.1 bufferevent_openssl.c) hand over one
 * TLS record per readable event: a 16 KiB record costs a wakeup, a read
 * callback and a write toward the other side.  Go on reading records into
 * the input's free space (reserve and commit: no copy) while OpenSSL has
 * them, up to BEV's max_single_read in all.  What we leave unread stays in
 * the socket and wakes the loop again, or, on the client side, whose SSL
 * reads ahead, in OpenSSL, for which the caller wakes it (sockio_wake_read).  A record
 * that ends the stream or fails stops the loop without being reported
 * here: the same SSL_read from libevent reports it again (the SSL object
 * keeps its shutdown or error state) when the socket is readable, and a
 * closed or failed TLS peer leaves the socket readable (EOF).  BEV is an
 * OpenSSL bufferevent over a socket (client_tls, up_tls).  Returns true
 * when it stopped at max_single_read: records may be waiting (MORE for
 * the next call on this side).
 */
bool
tls_io_read_records(struct bufferevent *bev, bool more)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t have = evbuffer_get_length(in), want;
	ev_ssize_t max = bufferevent_get_max_single_read(bev);
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	struct evbuffer_iovec v;

	/* Less than a whole record came: the peer writes small messages, and
	   another read would most likely cost a failing read(2) -- unless
	   the last call stopped at max (MORE): then this is the short last
	   record of a big message (a 64 KiB message is four full records and
	   a few bytes), and the stream goes on behind it.  Stopping there
	   cost a loop pass for those few bytes after every full read.  Nor
	   when OpenSSL already holds more (read-ahead, client side). */
	if (ssl == NULL || max <= 0)
		return false;
	if (have >= (size_t)max)
		return true;
	if (have < SSL3_RT_MAX_PLAIN_LENGTH && !more && !SSL_has_pending(ssl))
		return false;
	want = (size_t)max - have;
	while (want > 0) {
		size_t got = 0;
		int r = 0;

		if (evbuffer_reserve_space(in, (ev_ssize_t)want, &v, 1) < 1)
			break;
		if (v.iov_len > want)
			v.iov_len = want;
		while (got < v.iov_len) {
			size_t ask = v.iov_len - got;
			ERR_clear_error();
			r = SSL_read(ssl, (char *)v.iov_base + got,
				     ask > INT_MAX ? INT_MAX : (int)ask);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got > 0) {
			v.iov_len = got;
			evbuffer_commit_space(in, &v, 1);
			want -= got;
		}
		if (r <= 0) {
			/* WANT_READ: the socket is drained.  Anything else is
			   left for libevent's own read to report. */
			ERR_clear_error();
			return false;
		}
	}
	return want == 0;
}
