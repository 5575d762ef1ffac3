/*
 * frame_queue.h - whole WebSocket frames waiting behind a client's output.
 *
 * Frames are queued whole, and where each one ends is written down as it
 * is queued, so they move on into the output a frame at a time without
 * their headers being parsed again; a Pong or a Close can then be written
 * between them.  Small frames queued one after another are kept as one run
 * (up to FRAME_QUEUE_RUN bytes), so the record of boundaries stays a few
 * entries long whatever the frames' sizes.
 */
#ifndef WSGATE_FRAME_QUEUE_H
#define WSGATE_FRAME_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

/* Frames queued back to back are moved together up to this many bytes. */
#define FRAME_QUEUE_RUN (16 * 1024)

struct frame_queue;

/* An empty queue, or NULL when out of memory. */
struct frame_queue *frame_queue_new(void);

/* Free Q and what it holds; NULL is fine. */
void frame_queue_free(struct frame_queue *q);

/* Bytes queued (0 for NULL). */
size_t frame_queue_len(const struct frame_queue *q);

/* Queue one frame: its header HDR (HLEN bytes), then N payload bytes moved
   from the front of SRC.  0, or -1 when out of memory (nothing queued). */
int frame_queue_add(struct frame_queue *q, const uint8_t *hdr, size_t hlen,
		    struct evbuffer *src, size_t n);

/* Move whole frames (runs) into OUT while it holds less than LIMIT bytes. */
void frame_queue_move(struct frame_queue *q, struct evbuffer *out,
		      size_t limit);

/* Drop everything queued (the client is gone or will get nothing more). */
void frame_queue_clear(struct frame_queue *q);

#endif
