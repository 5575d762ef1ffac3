/*
 * test_splice_pipe.c - Check suite for the worker's splice pipe
 * (src/splice_pipe.c), on real TCP connections over 127.0.0.1: bytes moved
 * socket -> pipe -> socket arrive whole and in order, a full receiver
 * leaves the rest in the pipe for splice_pipe_drain, EOF and EAGAIN are
 * told apart, and a drain of more than the pipe holds fails.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "splice_pipe.h"

/* A connected TCP pair on 127.0.0.1 (fd[0] connected to fd[1]); the
   second end non-blocking, as the gateway's sockets are. */
static void
tcp_pair(int fd[2])
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(l, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
	fd[0] = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd[0], 0);
	ck_assert_int_eq(connect(fd[0], (struct sockaddr *)&a, sizeof(a)), 0);
	fd[1] = accept(l, NULL, NULL);
	ck_assert_int_ge(fd[1], 0);
	close(l);
	ck_assert_int_ge(fcntl(fd[1], F_SETFL, O_NONBLOCK), 0);
}

/* Byte I of the test pattern. */
static uint8_t
pat(size_t i)
{
	return (uint8_t)((i * 131u + (i >> 9)) & 0xff);
}

/* Read exactly N bytes from blocking FD and check them against the pattern
   from offset OFF. */
static void
get(int fd, size_t off, size_t n)
{
	uint8_t buf[4096];

	while (n > 0) {
		ssize_t r = read(fd, buf, n < sizeof(buf) ? n : sizeof(buf));

		ck_assert_int_gt(r, 0);
		for (ssize_t i = 0; i < r; i++)
			ck_assert_uint_eq(buf[i], pat(off + (size_t)i));
		off += (size_t)r;
		n -= (size_t)r;
	}
}

/* Send N pattern bytes from offset OFF into blocking W and move them from
   its peer R into P, 4 KiB at a time (socket buffers never fill). */
static void
put_fill(struct splice_pipe *p, int w, int r, size_t off, size_t n)
{
	uint8_t buf[4096];

	while (n > 0) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf), got = 0;

		for (size_t i = 0; i < k; i++)
			buf[i] = pat(off + i);
		ck_assert_int_eq(write(w, buf, k), (ssize_t)k);
		for (int tries = 0; got < k && tries < 100000; tries++) {
			ssize_t m = splice_pipe_fill(p, r, k - got);

			if (m < 0 && errno == EAGAIN) {
				usleep(100);
				continue;
			}
			ck_assert_int_gt(m, 0);
			got += (size_t)m;
		}
		ck_assert_uint_eq(got, k);
		off += k;
		n -= k;
	}
}

/* Close both TCP pairs and the pipe. */
static void
close_all(int in[2], int out[2], struct splice_pipe *p)
{
	close(in[0]);
	close(in[1]);
	close(out[0]);
	close(out[1]);
	splice_pipe_close(p);
}

START_TEST(test_open_close)
{
	struct splice_pipe p;

	splice_pipe_init(&p);
	ck_assert_int_eq(p.fd[0], -1);
	ck_assert_int_eq(splice_pipe_open(&p, 256 * 1024), 0);
	ck_assert_int_ge(p.fd[0], 0);
	ck_assert_uint_ge(p.size, 64 * 1024);
	int fd0 = p.fd[0];
	/* Open again: the same pipe. */
	ck_assert_int_eq(splice_pipe_open(&p, 256 * 1024), 0);
	ck_assert_int_eq(p.fd[0], fd0);
	ck_assert_int_ne(fcntl(p.fd[0], F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_ne(fcntl(p.fd[1], F_GETFD) & FD_CLOEXEC, 0);
	splice_pipe_close(&p);
	ck_assert_int_eq(p.fd[0], -1);
	ck_assert_int_eq(p.fd[1], -1);
	splice_pipe_close(&p); /* twice is harmless */
}
END_TEST

START_TEST(test_relay_in_order)
{
	struct splice_pipe p;
	int in[2], out[2];
	size_t off = 0;

	splice_pipe_init(&p);
	ck_assert_int_eq(splice_pipe_open(&p, 256 * 1024), 0);
	tcp_pair(in);
	tcp_pair(out);
	/* Nothing readable yet: EAGAIN, not EOF. */
	ck_assert_int_eq(splice_pipe_fill(&p, in[1], 4096), -1);
	ck_assert_int_eq(errno, EAGAIN);
	/* 40 pieces of varied sizes, each relayed in two sends. */
	for (int k = 0; k < 40; k++) {
		size_t n = 1 + (size_t)k * 1531 % 60000, a = n / 3;

		put_fill(&p, in[0], in[1], off, n);
		ck_assert_int_eq(splice_pipe_send(&p, out[1], a, true),
				 (ssize_t)a);
		ck_assert_int_eq(splice_pipe_send(&p, out[1], n - a, false),
				 (ssize_t)(n - a));
		get(out[0], off, n);
		off += n;
	}
	/* The pipe is empty again. */
	ck_assert_int_eq(splice_pipe_send(&p, out[1], 1, false), -1);
	ck_assert_int_eq(errno, EAGAIN);
	/* EOF reads as 0. */
	shutdown(in[0], SHUT_WR);
	ck_assert_int_eq(splice_pipe_fill(&p, in[1], 4096), 0);
	close_all(in, out, &p);
}
END_TEST

START_TEST(test_full_receiver_then_drain)
{
	struct splice_pipe p;
	struct evbuffer *rest = evbuffer_new();
	int in[2], out[2], small = 4096;
	size_t n, sent = 0, off = 0;
	uint8_t *q;

	splice_pipe_init(&p);
	ck_assert_int_eq(splice_pipe_open(&p, 256 * 1024), 0);
	tcp_pair(in);
	tcp_pair(out);
	/* A small send buffer on the sender and a receiver that does not
	   read: the socket fills. */
	setsockopt(out[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	n = 32 * 1024;
	/* Move 32 KiB pieces until a send stops short. */
	for (int k = 0; k < 256; k++) {
		ssize_t w;

		put_fill(&p, in[0], in[1], off, n);
		w = splice_pipe_send(&p, out[1], n, false);
		if (w < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			w = 0;
		}
		sent += (size_t)w;
		off += n;
		if ((size_t)w < n) {
			/* The rest comes out of the pipe, in order. */
			ck_assert_int_eq(splice_pipe_drain(&p, rest,
							   n - (size_t)w), 0);
			break;
		}
	}
	ck_assert_uint_lt(sent, off);
	ck_assert_uint_eq(evbuffer_get_length(rest), off - sent);
	q = evbuffer_pullup(rest, -1);
	for (size_t i = 0; i < off - sent; i++)
		ck_assert_uint_eq(q[i], pat(sent + i));
	/* What the socket took arrives whole. */
	get(out[0], 0, sent);
	/* The pipe is empty: draining one more byte fails. */
	ck_assert_int_eq(splice_pipe_drain(&p, rest, 1), -1);
	evbuffer_free(rest);
	close_all(in, out, &p);
}
END_TEST

static Suite *
splice_pipe_suite(void)
{
	Suite *s = suite_create("splice_pipe");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_open_close);
	tcase_add_test(tc, test_relay_in_order);
	tcase_add_test(tc, test_full_receiver_then_drain);
	suite_add_tcase(s, tc);
	return s;
}

/* Run the suite; non-zero exit status on any failure. */
int main(void)
{
	SRunner *sr = srunner_create(splice_pipe_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
