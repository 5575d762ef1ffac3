/*
 * test_sockio.c - Check suite for src/sockio.c, the reads and writes done
 * behind libevent's socket bufferevent, over a socketpair: a direct write
 * sends header and payload at once and drains what went, and stands aside
 * while the output holds data; adaptive reads land in the input, grow while
 * they come back full and tell EAGAIN from EOF; a taken read event calls
 * our callback, and bufferevent_disable / enable still pause and resume it.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "sockio.h"

struct pair {
	struct event_base *base;
	struct bufferevent *bev; /* on fd[1], non-blocking */
	int fd[2];               /* fd[0]: the test's blocking end */
};

/* A socketpair with a socket bufferevent on its second end. */
static void
pair_open(struct pair *p)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
	ck_assert_int_ge(fcntl(p->fd[1], F_SETFL, O_NONBLOCK), 0);
	p->base = event_base_new();
	ck_assert_ptr_nonnull(p->base);
	p->bev = bufferevent_socket_new(p->base, p->fd[1],
					BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(p->bev);
}

static void
pair_close(struct pair *p)
{
	bufferevent_free(p->bev);
	if (p->fd[0] >= 0)
		close(p->fd[0]);
	event_base_free(p->base);
}

/* Read exactly N bytes from blocking FD into BUF. */
static void
get(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		ck_assert_int_gt(r, 0);
		got += (size_t)r;
	}
}

START_TEST(test_plain_socket_only)
{
	struct pair p;
	struct bufferevent *pairbev[2];

	pair_open(&p);
	ck_assert(sockio_is_plain(p.bev));
	ck_assert_int_eq(bufferevent_pair_new(p.base, 0, pairbev), 0);
	ck_assert(!sockio_is_plain(pairbev[0])); /* no socket */
	bufferevent_free(pairbev[0]);
	bufferevent_free(pairbev[1]);
	pair_close(&p);
}
END_TEST

START_TEST(test_write_now_header_and_payload)
{
	struct pair p;
	struct evbuffer *src = evbuffer_new();
	const uint8_t hdr[2] = {0x82, 5};
	uint8_t got[7];
	size_t w;

	pair_open(&p);
	evbuffer_add(src, "hello, world", 12);
	w = sockio_write_now(p.bev, hdr, sizeof(hdr), src, 5);
	ck_assert_uint_eq(w, 7);
	/* only what was written is drained */
	ck_assert_uint_eq(evbuffer_get_length(src), 7);
	get(p.fd[0], got, sizeof(got));
	ck_assert_int_eq(memcmp(got, "\x82\x05hello", 7), 0);
	evbuffer_free(src);
	pair_close(&p);
}
END_TEST

START_TEST(test_write_now_waits_behind_output)
{
	struct pair p;
	struct evbuffer *src = evbuffer_new();

	pair_open(&p);
	/* Data queued in the output must go first: no direct write. */
	bufferevent_disable(p.bev, EV_WRITE);
	bufferevent_write(p.bev, "queued", 6);
	evbuffer_add(src, "later", 5);
	ck_assert_uint_eq(sockio_write_now(p.bev, NULL, 0, src, 5), 0);
	ck_assert_uint_eq(evbuffer_get_length(src), 5);
	evbuffer_free(src);
	pair_close(&p);
}
END_TEST

START_TEST(test_write_now_full_socket)
{
	struct pair p;
	struct evbuffer *src = evbuffer_new();
	static uint8_t block[65536];
	size_t total = 0, w;

	pair_open(&p);
	memset(block, 'z', sizeof(block));
	/* Fill the socket: the direct write then takes nothing (EAGAIN). */
	for (int i = 0; i < 1000; i++) {
		evbuffer_add(src, block, sizeof(block));
		w = sockio_write_now(p.bev, NULL, 0, src, sizeof(block));
		total += w;
		if (w == 0)
			break;
		evbuffer_drain(src, evbuffer_get_length(src));
	}
	ck_assert_uint_gt(total, 0);
	ck_assert_uint_eq(evbuffer_get_length(src), sizeof(block));
	evbuffer_free(src);
	pair_close(&p);
}
END_TEST

START_TEST(test_read_adapts_and_ends)
{
	struct pair p;
	struct evbuffer *in;
	static uint8_t block[1 << 16];
	uint8_t shift = 0;

	pair_open(&p);
	in = bufferevent_get_input(p.bev);
	bufferevent_set_max_single_read(p.bev, 1 << 16);
	ck_assert_int_eq(sockio_read(p.bev, &shift), SOCKIO_READ_AGAIN);
	ck_assert_uint_eq(shift, SOCKIO_SHIFT_MIN);
	memset(block, 'a', sizeof(block));
	ck_assert_int_eq(write(p.fd[0], block, sizeof(block)),
			 (ssize_t)sizeof(block));
	/* 4 KiB, then full reads double it: 4+8+16+32 KiB = 60 KiB */
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(sockio_read(p.bev, &shift), SOCKIO_READ_DATA);
	ck_assert_uint_eq(evbuffer_get_length(in), 60 * 1024);
	ck_assert_uint_eq(shift, SOCKIO_SHIFT_MIN + 4);
	/* what is left (4 KiB) fills less than a quarter: the size halves */
	ck_assert_int_eq(sockio_read(p.bev, &shift), SOCKIO_READ_DATA);
	ck_assert_uint_eq(evbuffer_get_length(in), sizeof(block));
	ck_assert_uint_eq(shift, SOCKIO_SHIFT_MIN + 3);
	ck_assert_int_eq(sockio_read(p.bev, &shift), SOCKIO_READ_AGAIN);
	close(p.fd[0]);
	p.fd[0] = -1;
	ck_assert_int_eq(sockio_read(p.bev, &shift), SOCKIO_READ_EOF);
	pair_close(&p);
}
END_TEST

static int reads_seen;

static void
count_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bufferevent *bev = arg;
	uint8_t shift = SOCKIO_SHIFT_MIN;

	(void)fd;
	(void)what;
	if (sockio_read(bev, &shift) == SOCKIO_READ_DATA)
		reads_seen++;
	event_base_loopbreak(bufferevent_get_base(bev));
}

START_TEST(test_take_pause_resume)
{
	struct pair p;
	struct timeval tv = {0, 200 * 1000};

	pair_open(&p);
	bufferevent_enable(p.bev, EV_READ);
	sockio_take(p.bev, count_cb);
	reads_seen = 0;
	ck_assert_int_eq(write(p.fd[0], "x", 1), 1);
	event_base_loopexit(p.base, &tv);
	event_base_dispatch(p.base);
	ck_assert_int_eq(reads_seen, 1);
	ck_assert_uint_eq(evbuffer_get_length(bufferevent_get_input(p.bev)), 1);
	/* paused: readable, yet not called */
	bufferevent_disable(p.bev, EV_READ);
	ck_assert_int_eq(write(p.fd[0], "y", 1), 1);
	event_base_loopexit(p.base, &tv);
	event_base_dispatch(p.base);
	ck_assert_int_eq(reads_seen, 1);
	/* resumed: called again */
	bufferevent_enable(p.bev, EV_READ);
	event_base_loopexit(p.base, &tv);
	event_base_dispatch(p.base);
	ck_assert_int_eq(reads_seen, 2);
	/* woken without data on the socket: called, nothing read */
	sockio_wake_read(p.bev);
	event_base_loopexit(p.base, &tv);
	event_base_dispatch(p.base);
	ck_assert_int_eq(reads_seen, 2);
	ck_assert_uint_eq(evbuffer_get_length(bufferevent_get_input(p.bev)), 2);
	pair_close(&p);
}
END_TEST

static Suite *
sockio_suite(void)
{
	Suite *s = suite_create("sockio");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_plain_socket_only);
	tcase_add_test(tc, test_write_now_header_and_payload);
	tcase_add_test(tc, test_write_now_waits_behind_output);
	tcase_add_test(tc, test_write_now_full_socket);
	tcase_add_test(tc, test_read_adapts_and_ends);
	tcase_add_test(tc, test_take_pause_resume);
	suite_add_tcase(s, tc);
	return s;
}

/* Run the suite; non-zero exit status on any failure. */
int main(void)
{
	SRunner *sr = srunner_create(sockio_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
