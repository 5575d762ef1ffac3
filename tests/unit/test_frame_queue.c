/*
 * test_frame_queue.c - Check suite for src/frame_queue.c: frames come out
 * whole and in order, runs of small frames move together up to
 * FRAME_QUEUE_RUN, a big frame moves alone, the move stops at the limit
 * only between frames, the ring grows past its first size, and clear
 * empties it for reuse.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "frame_queue.h"
#include "ws_frame.h"

/* Queue a binary frame of N bytes, each byte TAG. */
static void
add(struct frame_queue *q, size_t n, uint8_t tag)
{
	struct evbuffer *src = evbuffer_new();
	uint8_t hdr[WS_MAX_HEADER], *p = malloc(n + 1);
	size_t hlen = ws_frame_header(hdr, true, WS_OP_BINARY, n, NULL);

	memset(p, tag, n);
	evbuffer_add(src, p, n);
	evbuffer_add(src, "!", 1); /* only N bytes are taken */
	ck_assert_int_eq(frame_queue_add(q, hdr, hlen, src, n), 0);
	ck_assert_uint_eq(evbuffer_get_length(src), 1);
	evbuffer_free(src);
	free(p);
}

/* Take one whole frame from OUT and check its payload is N bytes of TAG. */
static void
take(struct evbuffer *out, size_t n, uint8_t tag)
{
	uint8_t hdr[WS_MAX_HEADER], *p = malloc(n + 1);
	size_t hlen = ws_frame_header(hdr, true, WS_OP_BINARY, n, NULL);
	uint8_t got[WS_MAX_HEADER];

	ck_assert_uint_ge(evbuffer_get_length(out), hlen + n);
	evbuffer_remove(out, got, hlen);
	ck_assert_int_eq(memcmp(got, hdr, hlen), 0);
	evbuffer_remove(out, p, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(p[i], tag);
	free(p);
}

START_TEST(test_whole_frames_in_order)
{
	struct frame_queue *q = frame_queue_new();
	struct evbuffer *out = evbuffer_new();

	ck_assert_uint_eq(frame_queue_len(q), 0);
	add(q, 10, 'a');
	add(q, 300, 'b');
	add(q, 70000, 'c');
	ck_assert_uint_eq(frame_queue_len(q), 12 + 304 + 70010);
	frame_queue_move(q, out, SIZE_MAX);
	ck_assert_uint_eq(frame_queue_len(q), 0);
	take(out, 10, 'a');
	take(out, 300, 'b');
	take(out, 70000, 'c');
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	evbuffer_free(out);
	frame_queue_free(q);
}
END_TEST

START_TEST(test_move_stops_between_frames)
{
	struct frame_queue *q = frame_queue_new();
	struct evbuffer *out = evbuffer_new();

	add(q, 40000, 'a'); /* over FRAME_QUEUE_RUN: a run of its own */
	add(q, 40000, 'b');
	add(q, 40000, 'c');
	/* OUT under the limit: one whole frame moves, however big */
	frame_queue_move(q, out, 1);
	ck_assert_uint_eq(evbuffer_get_length(out), 40004);
	/* at the limit: nothing moves */
	frame_queue_move(q, out, 40004);
	ck_assert_uint_eq(evbuffer_get_length(out), 40004);
	frame_queue_move(q, out, 40005);
	ck_assert_uint_eq(evbuffer_get_length(out), 80008);
	take(out, 40000, 'a');
	take(out, 40000, 'b');
	frame_queue_move(q, out, 1);
	take(out, 40000, 'c');
	ck_assert_uint_eq(frame_queue_len(q), 0);
	evbuffer_free(out);
	frame_queue_free(q);
}
END_TEST

START_TEST(test_small_frames_move_as_runs)
{
	struct frame_queue *q = frame_queue_new();
	struct evbuffer *out = evbuffer_new();
	size_t per = 2 + 100, n = 1000, moved;

	for (size_t i = 0; i < n; i++)
		add(q, 100, (uint8_t)i);
	/* one move takes a whole run: FRAME_QUEUE_RUN / per frames at most,
	   and never half a frame */
	frame_queue_move(q, out, 1);
	moved = evbuffer_get_length(out);
	ck_assert_uint_le(moved, FRAME_QUEUE_RUN);
	ck_assert_uint_gt(moved, FRAME_QUEUE_RUN - per);
	ck_assert_uint_eq(moved % per, 0);
	frame_queue_move(q, out, SIZE_MAX);
	ck_assert_uint_eq(evbuffer_get_length(out), n * per);
	for (size_t i = 0; i < n; i++)
		take(out, 100, (uint8_t)i);
	evbuffer_free(out);
	frame_queue_free(q);
}
END_TEST

START_TEST(test_ring_grows_and_wraps)
{
	struct frame_queue *q = frame_queue_new();
	struct evbuffer *out = evbuffer_new();

	/* big frames: one run each; move some out between adds so the ring
	   wraps before it grows */
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 7; i++)
			add(q, 20000, (uint8_t)(round * 10 + i));
		for (int i = 0; i < 3; i++) {
			frame_queue_move(q, out, 1);
			evbuffer_drain(out, evbuffer_get_length(out));
		}
	}
	frame_queue_move(q, out, SIZE_MAX);
	/* 35 added, 15 taken: the last 20 in order */
	for (int round = 0; round < 5; round++)
		for (int i = 0; i < 7; i++) {
			int k = round * 7 + i;
			if (k >= 15)
				take(out, 20000, (uint8_t)(round * 10 + i));
		}
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	evbuffer_free(out);
	frame_queue_free(q);
}
END_TEST

START_TEST(test_clear_and_reuse)
{
	struct frame_queue *q = frame_queue_new();
	struct evbuffer *out = evbuffer_new();

	add(q, 500, 'x');
	add(q, 50000, 'y');
	frame_queue_clear(q);
	ck_assert_uint_eq(frame_queue_len(q), 0);
	frame_queue_move(q, out, SIZE_MAX);
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	add(q, 7, 'z');
	frame_queue_move(q, out, SIZE_MAX);
	take(out, 7, 'z');
	/* NULL queues: empty, and moving or clearing them does nothing */
	ck_assert_uint_eq(frame_queue_len(NULL), 0);
	frame_queue_move(NULL, out, SIZE_MAX);
	frame_queue_clear(NULL);
	frame_queue_free(NULL);
	evbuffer_free(out);
	frame_queue_free(q);
}
END_TEST

static Suite *
frame_queue_suite(void)
{
	Suite *s = suite_create("frame_queue");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_whole_frames_in_order);
	tcase_add_test(tc, test_move_stops_between_frames);
	tcase_add_test(tc, test_small_frames_move_as_runs);
	tcase_add_test(tc, test_ring_grows_and_wraps);
	tcase_add_test(tc, test_clear_and_reuse);
	suite_add_tcase(s, tc);
	return s;
}

/* Run the suite; non-zero exit status on any failure. */
int main(void)
{
	SRunner *sr = srunner_create(frame_queue_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
