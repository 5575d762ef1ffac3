/*
 * frame_queue.c - whole frames behind a client's output, with their
 * boundaries recorded (see frame_queue.h): the bytes in one evbuffer, the
 * length of each run of whole frames in a ring that grows as needed.
 */
#include "frame_queue.h"

#include <stdbool.h>
#include <stdlib.h>

struct frame_queue {
	struct evbuffer *buf;
	uint32_t *runs; /* ring of run lengths: runs[head], ... n of them */
	size_t head, n, cap;
};

/* A new empty queue. */
struct frame_queue *
frame_queue_new(void)
{
	struct frame_queue *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->buf = evbuffer_new();
	if (q->buf == NULL) {
		free(q);
		return NULL;
	}
	return q;
}

/* Free Q. */
void
frame_queue_free(struct frame_queue *q)
{
	if (q == NULL)
		return;
	evbuffer_free(q->buf);
	free(q->runs);
	free(q);
}

/* Bytes queued. */
size_t
frame_queue_len(const struct frame_queue *q)
{
	return q != NULL ? evbuffer_get_length(q->buf) : 0;
}

/* Index of the last run (n > 0). */
static size_t
frame_queue_last(const struct frame_queue *q)
{
	return (q->head + q->n - 1) % q->cap;
}

/* Room for one more run: grow the ring, keeping its order. */
static int
frame_queue_grow(struct frame_queue *q)
{
	size_t cap = q->cap ? 2 * q->cap : 4;
	uint32_t *runs = malloc(cap * sizeof(*runs));

	if (runs == NULL)
		return -1;
	for (size_t i = 0; i < q->n; i++)
		runs[i] = q->runs[(q->head + i) % q->cap];
	free(q->runs);
	q->runs = runs;
	q->head = 0;
	q->cap = cap;
	return 0;
}

/* Queue one frame; see frame_queue.h. */
int
frame_queue_add(struct frame_queue *q, const uint8_t *hdr, size_t hlen,
		struct evbuffer *src, size_t n)
{
	size_t was = evbuffer_get_length(q->buf), add;
	bool merge;

	if (hlen + n > UINT32_MAX)
		return -1;
	merge = q->n > 0 &&
		q->runs[frame_queue_last(q)] + hlen + n <= FRAME_QUEUE_RUN;
	if (!merge && q->n == q->cap && frame_queue_grow(q) < 0)
		return -1;
	if (evbuffer_add(q->buf, hdr, hlen) == 0 && n > 0)
		evbuffer_remove_buffer(src, q->buf, n);
	/* Whatever went in is accounted for, so boundaries stay true; a
	   short frame (out of memory) is reported to the caller. */
	add = evbuffer_get_length(q->buf) - was;
	if (add == 0)
		return -1;
	if (merge)
		q->runs[frame_queue_last(q)] += (uint32_t)add;
	else
		q->runs[(q->head + q->n++) % q->cap] = (uint32_t)add;
	return add == hlen + n ? 0 : -1;
}

/* Move whole runs into OUT while it holds less than LIMIT. */
void
frame_queue_move(struct frame_queue *q, struct evbuffer *out, size_t limit)
{
	if (q == NULL)
		return;
	while (q->n > 0 && evbuffer_get_length(out) < limit) {
		evbuffer_remove_buffer(q->buf, out, q->runs[q->head]);
		q->head = (q->head + 1) % q->cap;
		q->n--;
	}
}

/* Drop everything queued. */
void
frame_queue_clear(struct frame_queue *q)
{
	if (q == NULL)
		return;
	evbuffer_drain(q->buf, evbuffer_get_length(q->buf));
	q->head = 0;
	q->n = 0;
}
