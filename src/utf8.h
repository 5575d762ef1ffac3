/*
 * utf8.h - streaming UTF-8 validator (PURE: no I/O, no globals).
 *
 * Validates UTF-8 as defined by RFC 3629 section 4 (the grammar RFC 6455 8.1
 * requires for text messages): overlong forms, UTF-16 surrogates
 * (U+D800..U+DFFF) and code points above U+10FFFF are invalid.  Input may be
 * split at any byte; the validator fails on the first byte after which the
 * input can no longer be a prefix of valid UTF-8 (fail fast, RFC 6455 8.1).
 */
#ifndef WSGATE_UTF8_H
#define WSGATE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Validator state.  Treat as opaque; zero-initialised means "at a boundary". */
struct utf8_validator {
	uint8_t need;    /* continuation bytes still expected (0..3) */
	uint8_t seen;    /* bytes of the current sequence consumed so far (0..3) */
	uint8_t lo, hi;  /* allowed range of the next continuation byte */
	bool failed;     /* sticky: once invalid, always invalid */
};

enum utf8_status {
	UTF8_INVALID = -1, /* input can no longer be valid UTF-8 */
	UTF8_COMPLETE = 0, /* valid, and ends on a code point boundary */
	UTF8_PARTIAL = 1,  /* valid so far, ends inside a multi-byte sequence */
};

/* Reset V to the initial state (a code point boundary). */
void utf8_init(struct utf8_validator *v);

/*
 * Feed LEN bytes at P.  Returns the status after those bytes.  On
 * UTF8_INVALID, *BAD_OFFSET (if not NULL) receives the offset in P of the
 * first byte that made the input invalid; the state stays failed.
 * ASCII runs are checked a word at a time.
 */
enum utf8_status utf8_feed(struct utf8_validator *v, const uint8_t *p,
			   size_t len, size_t *bad_offset);

/* True when V is at a code point boundary and has not failed. */
bool utf8_is_complete(const struct utf8_validator *v);

/*
 * Number of bytes at the end of everything fed so far that belong to an
 * unfinished multi-byte sequence (0..3).  A sender that may only emit whole
 * code points holds exactly these bytes back.
 */
size_t utf8_pending(const struct utf8_validator *v);

/* One-shot check of a whole buffer: true if it is complete, valid UTF-8. */
bool utf8_valid(const uint8_t *p, size_t len);

#endif
