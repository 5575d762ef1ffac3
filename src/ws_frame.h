/*
 * ws_frame.h - RFC 6455 frame codec (PURE: no I/O, no globals).
 *
 * The decoder is resumable at any byte boundary and streams payload out: it
 * never holds a data frame, let alone a message, in memory.  It unmasks in
 * place, in the caller's buffer, so the caller can hand it memory that is
 * already where the bytes will be forwarded from.  Control frames (at most
 * 125 bytes, RFC 6455 5.5) are collected inside the decoder and delivered
 * whole.  Every protocol violation yields the close code to send.
 */
#ifndef WSGATE_WS_FRAME_H
#define WSGATE_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "utf8.h"

/* RFC 6455 5.2 opcodes. */
enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* RFC 6455 7.4.1 and the IANA registry. */
enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL_ERROR = 1002,
	WS_CLOSE_UNSUPPORTED = 1003,
	WS_CLOSE_NO_STATUS = 1005,     /* never on the wire */
	WS_CLOSE_ABNORMAL = 1006,      /* never on the wire */
	WS_CLOSE_INVALID_DATA = 1007,
	WS_CLOSE_POLICY = 1008,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_MANDATORY_EXT = 1010,
	WS_CLOSE_INTERNAL_ERROR = 1011,
	WS_CLOSE_SERVICE_RESTART = 1012,
	WS_CLOSE_TRY_AGAIN_LATER = 1013,
	WS_CLOSE_BAD_GATEWAY = 1014,
	WS_CLOSE_TLS_HANDSHAKE = 1015, /* never on the wire */
};

#define WS_MAX_CONTROL_PAYLOAD 125 /* RFC 6455 5.5 */
#define WS_MAX_HEADER 14           /* 2 + 8 (64-bit length) + 4 (mask) */

struct ws_decoder_config {
	uint64_t max_message;  /* 0 = unlimited; above it: close 1009 */
	bool require_mask;     /* server side: client frames must be masked */
	bool allow_rsv1;       /* an extension (RFC 7692) negotiated RSV1 */
	bool validate_utf8;    /* validate text messages and close reasons */
};

enum ws_event_type {
	WS_EV_NONE = 0, /* all input consumed, nothing to report: feed more */
	WS_EV_DATA,     /* a chunk of a text/binary message (may be empty) */
	WS_EV_CONTROL,  /* a whole control frame (close, ping, pong) */
	WS_EV_ERROR,    /* protocol violation: send close_code, then stop */
};

struct ws_event {
	enum ws_event_type type;
	uint8_t opcode;        /* DATA: the message's opcode (TEXT/BINARY);
				  CONTROL: CLOSE/PING/PONG */
	bool message_start;    /* DATA: first chunk of a new message */
	bool message_end;      /* DATA: last chunk of the message (FIN frame,
				  its payload complete) */
	bool frame_start;      /* DATA: first chunk of a frame */
	bool frame_end;        /* DATA: last chunk of a frame */
	bool rsv1;             /* DATA: RSV1 of the message's first frame */
	const uint8_t *data;   /* DATA: unmasked bytes inside the caller's
				  buffer; CONTROL: payload held by the decoder,
				  valid until the next ws_decoder_feed() */
	size_t len;
	/* CONTROL close: the received code (1005 if the payload was empty)
	   and its UTF-8 reason (not NUL-terminated). */
	uint16_t close_code;
	const uint8_t *reason;
	size_t reason_len;
	/* ERROR: the close code to send and a short static reason. */
	uint16_t error_code;
	const char *error;
};

/* Decoder state; zero-fill then ws_decoder_init(). Fields are private. */
struct ws_decoder {
	struct ws_decoder_config cfg;
	int state;                 /* decoder-private state machine */
	uint8_t hdr[WS_MAX_HEADER];
	uint8_t hdr_have, hdr_need;
	uint8_t opcode;            /* current frame's opcode */
	bool fin, rsv1, masked;
	uint8_t mask[4];
	uint8_t mask_pos;          /* next byte's index into mask, 0..3 */
	uint64_t frame_len;
	uint64_t frame_left;       /* payload bytes still to come */
	bool frame_started;        /* DATA event with frame_start already sent */
	bool in_message;           /* a fragmented data message is open */
	uint8_t msg_opcode;        /* TEXT/BINARY of the open message */
	bool msg_rsv1;
	bool msg_started;          /* DATA event with message_start sent */
	uint64_t msg_len;          /* bytes of the open message so far */
	struct utf8_validator utf8;
	uint8_t ctl[WS_MAX_CONTROL_PAYLOAD];
	uint8_t ctl_len;
	bool failed;               /* sticky after WS_EV_ERROR */
	uint16_t error_code;       /* the error (pending or delivered) */
	const char *error;
};

/* Initialise D with configuration CFG (copied). */
void ws_decoder_init(struct ws_decoder *d, const struct ws_decoder_config *cfg);

/*
 * Decode from BUF (LEN bytes, unmasked in place).  Returns the number of
 * bytes consumed (0..LEN) and fills *EV with at most one event.  Call again
 * with the unconsumed rest until it returns WS_EV_NONE with everything
 * consumed.  On WS_EV_ERROR it returns -1; the decoder stays failed.
 * An empty data frame yields a DATA event with len 0, so message boundaries
 * are never lost.
 */
ssize_t ws_decoder_feed(struct ws_decoder *d, uint8_t *buf, size_t len,
			struct ws_event *ev);

/* True when no frame is partially decoded and no message is open. */
bool ws_decoder_is_idle(const struct ws_decoder *d);

/*
 * XOR N bytes at P with MASK, starting at MASK[POS % 4]; returns the mask
 * position after the last byte.  Word-at-a-time; masking twice restores.
 */
unsigned ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], unsigned pos);

/* The same, writing the masked bytes of SRC to DST in one pass (a client
   masking a message into its output buffer); DST may equal SRC. */
unsigned ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t n,
		      const uint8_t mask[4], unsigned pos);

/*
 * Write a frame header into OUT (WS_MAX_HEADER bytes) for a payload of LEN
 * bytes: 7-, 16- or 64-bit length as RFC 6455 5.2 requires (the minimal
 * one).  MASK NULL: a server frame (unmasked); else the client's masking key
 * is written after the length (the payload must then be masked by the
 * caller with ws_unmask).  Returns the header length (2..14).
 */
size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], bool fin, uint8_t opcode,
		       uint64_t len, const uint8_t *mask);

/*
 * Cutting N payload bytes of a message into frames of at most MAX bytes
 * (RFC 6455 5.4): the first frame has OPCODE (the message's, or
 * WS_OP_CONT when the bytes continue a message), the others are
 * continuations, and the last has FIN when the bytes end the message.
 * No bytes make one empty frame.
 * Every path that writes a message toward a browser cuts it with this, so
 * they cannot disagree.  Usage:
 *
 *     struct ws_cut c;
 *     uint8_t hdr[WS_MAX_HEADER];
 *     size_t len, hlen;
 *     ws_cut_init(&c, WS_OP_BINARY, n, max_frame, true);
 *     while ((hlen = ws_cut_next(&c, hdr, &len)) > 0)
 *             ... header HDR (HLEN bytes), then the next LEN payload bytes
 */
struct ws_cut {
	uint64_t left;   /* payload bytes not yet in a frame */
	uint64_t max;    /* largest frame payload (at least 1) */
	uint8_t opcode;  /* of the next frame */
	bool fin;        /* the last frame ends the message */
	bool done;       /* the last frame was handed out */
};

/* Start cutting N bytes with OPCODE into frames of at most MAX (0 is taken
   as 1) payload bytes; FIN: they end the message. */
void ws_cut_init(struct ws_cut *c, uint8_t opcode, uint64_t n, uint64_t max,
		 bool fin);

/* Write the next frame's header into HDR and its payload length into *LEN;
   returns the header length, or 0 when every frame was handed out. */
size_t ws_cut_next(struct ws_cut *c, uint8_t hdr[WS_MAX_HEADER],
		   uint64_t *len);

/* True while frames remain (ws_cut_next would return a header). */
bool ws_cut_more(const struct ws_cut *c);

/* True for codes a peer may send: 1000-1003, 1007-1014, 3000-4999. */
bool ws_close_code_is_valid(unsigned code);

/*
 * Build a close payload (code + reason) into OUT, at most 125 bytes: the
 * reason is cut at a UTF-8 code point boundary to fit.  Returns the payload
 * length, or -1 if CODE may not be sent (not valid above; 1005, 1006 and
 * 1015 in particular never can be).
 */
ssize_t ws_close_payload(uint8_t out[WS_MAX_CONTROL_PAYLOAD], unsigned code,
			 const char *reason, size_t reason_len);

/*
 * Check a received close payload (RFC 6455 5.5.1, 7.4).  Returns 0 and fills
 * *CODE (1005 when empty), *REASON and *REASON_LEN; or returns the close code
 * to fail the connection with: 1002 for a 1-byte payload or an invalid code,
 * 1007 for a reason that is not valid UTF-8.
 */
int ws_close_parse(const uint8_t *p, size_t len, uint16_t *code,
		   const uint8_t **reason, size_t *reason_len);

#endif
