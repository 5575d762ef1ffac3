/*
 * bench_core.c - throughput of the protocol core next to memcpy, as ratios
 * measured in one run (absolute figures vary on shared machines; ratios
 * measured side by side do much less).
 *
 * Prints one line per workload: MB/s and the ratio to memcpy over the same
 * buffer size, then a summary line "bench_core: unmask=R ascii=R ..." that a
 * script can read.  Not a test: nothing here passes or fails.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "utf8.h"
#include "ws_frame.h"

#define BUF_SIZE (1u << 20)   /* 1 MiB working set: stays in L2/L3 */
#define MIN_SECONDS 0.3       /* run each workload at least this long */

static volatile uint8_t sink;

/* Monotonic seconds. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef void (*work_fn)(uint8_t *buf, size_t len, void *ctx);

/* Run FN over BUF until MIN_SECONDS pass; return bytes per second. */
static double
measure(work_fn fn, uint8_t *buf, size_t len, void *ctx)
{
	double t0, t1;
	uint64_t bytes = 0;

	fn(buf, len, ctx); /* warm up */
	t0 = now_s();
	do {
		for (int i = 0; i < 16; i++) {
			fn(buf, len, ctx);
			bytes += len;
		}
		t1 = now_s();
	} while (t1 - t0 < MIN_SECONDS);
	return (double)bytes / (t1 - t0);
}

static uint8_t *copy_dst;

/* memcpy to a second buffer: the reference rate. */
static void
work_memcpy(uint8_t *buf, size_t len, void *ctx)
{
	(void)ctx;
	memcpy(copy_dst, buf, len);
	sink ^= copy_dst[len / 2];
}

/* Unmask in place. */
static void
work_unmask(uint8_t *buf, size_t len, void *ctx)
{
	static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};

	(void)ctx;
	ws_unmask(buf, len, mask, 1);
	sink ^= buf[len / 2];
}

/* Validate as UTF-8 (the buffer holds valid text). */
static void
work_utf8(uint8_t *buf, size_t len, void *ctx)
{
	struct utf8_validator v;

	(void)ctx;
	utf8_init(&v);
	if (utf8_feed(&v, buf, len, NULL) == UTF8_INVALID)
		abort();
}

/* A buffer of masked 64 KiB binary frames, decoded and unmasked in place.
   The masking key is zero, so unmasking does its full work yet leaves the
   bytes as they were and every pass decodes the same frames.  Counted as
   payload bytes. */
struct frames_ctx {
	uint8_t *frames;
	size_t frames_len;
};

static void
work_decode(uint8_t *buf, size_t len, void *arg)
{
	struct frames_ctx *ctx = arg;
	struct ws_decoder_config cfg = {
		.require_mask = true,
		.validate_utf8 = true,
	};
	struct ws_decoder d;
	uint8_t *p = ctx->frames;
	size_t left = ctx->frames_len;

	(void)buf;
	(void)len;
	ws_decoder_init(&d, &cfg);
	while (left > 0) {
		struct ws_event ev;
		ssize_t r = ws_decoder_feed(&d, p, left, &ev);
		if (r <= 0)
			abort();
		if (ev.type == WS_EV_DATA)
			sink ^= ev.data[0];
		p += r;
		left -= (size_t)r;
	}
}

/* Fill BUF with text: pure ASCII, or a mix of 1-4 byte code points. */
static void
fill_text(uint8_t *buf, size_t len, int mixed)
{
	static const char *const pieces[] = {"a", "Z", " ", "\xc3\xa9", "\xe2\x82\xac",
					     "\xf0\x9f\x98\x80", "\xd0\x96", "x"};
	size_t i = 0;
	uint32_t seed = 12345;

	while (i < len) {
		seed = seed * 1103515245u + 12345u;
		const char *p = mixed ? pieces[(seed >> 16) % 8] : "abcdefgh";
		size_t n = mixed ? strlen(p) : 1 + (seed >> 16) % 8;
		if (i + n > len)
			break;
		memcpy(buf + i, p, n);
		i += n;
	}
	while (i < len)
		buf[i++] = 'a';
}

int
main(void)
{
	uint8_t *buf = malloc(BUF_SIZE);
	struct frames_ctx fctx;
	const size_t flen = 64 * 1024, nframes = BUF_SIZE / (64 * 1024);
	static const uint8_t mask[4] = {0, 0, 0, 0};
	double r_memcpy, r_unmask, r_ascii, r_mixed, r_decode;

	copy_dst = malloc(BUF_SIZE);
	fctx.frames_len = nframes * (WS_MAX_HEADER + flen);
	fctx.frames = malloc(fctx.frames_len);
	if (buf == NULL || copy_dst == NULL || fctx.frames == NULL)
		return 1;
	memset(buf, 0x5a, BUF_SIZE);
	memset(copy_dst, 0, BUF_SIZE);
	{
		uint8_t *p = fctx.frames;
		for (size_t i = 0; i < nframes; i++) {
			size_t h = ws_frame_header(p, true, WS_OP_BINARY, flen,
						   mask);
			memset(p + h, 0x42, flen);
			p += h + flen;
		}
		fctx.frames_len = (size_t)(p - fctx.frames);
	}

	r_memcpy = measure(work_memcpy, buf, BUF_SIZE, NULL);
	r_unmask = measure(work_unmask, buf, BUF_SIZE, NULL);
	fill_text(buf, BUF_SIZE, 0);
	r_ascii = measure(work_utf8, buf, BUF_SIZE, NULL);
	fill_text(buf, BUF_SIZE, 1);
	r_mixed = measure(work_utf8, buf, BUF_SIZE, NULL);
	r_decode = measure(work_decode, buf, nframes * flen, &fctx);

	printf("%-34s %10s %8s\n", "workload (1 MiB buffer)", "MB/s", "/memcpy");
	printf("%-34s %10.0f %8.2f\n", "memcpy", r_memcpy / 1e6, 1.0);
	printf("%-34s %10.0f %8.2f\n", "unmask (ws_unmask, in place)",
	       r_unmask / 1e6, r_unmask / r_memcpy);
	printf("%-34s %10.0f %8.2f\n", "decode 64 KiB masked frames",
	       r_decode / 1e6, r_decode / r_memcpy);
	printf("%-34s %10.0f %8.2f\n", "UTF-8 validate, ASCII", r_ascii / 1e6,
	       r_ascii / r_memcpy);
	printf("%-34s %10.0f %8.2f\n", "UTF-8 validate, mixed 1-4 byte",
	       r_mixed / 1e6, r_mixed / r_memcpy);
	printf("bench_core: unmask=%.2f decode64k=%.2f utf8_ascii=%.2f "
	       "utf8_mixed=%.2f (ratios to memcpy; goal unmask and ascii >= 0.5)\n",
	       r_unmask / r_memcpy, r_decode / r_memcpy, r_ascii / r_memcpy,
	       r_mixed / r_memcpy);
	free(buf);
	free(copy_dst);
	free(fctx.frames);
	return sink == 0xff ? 0 : 0;
}
