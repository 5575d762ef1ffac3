/*
 * fuzz_token_file.c - libFuzzer target for the token-file parser
 * (token_file_parse in src/token_file.c), both formats.
 *
 * Byte 0 picks the format (auth or websockify targets); the rest is the
 * file text.  The number of entries plus the number of skipped lines must
 * equal the number of lines that are neither blank nor comments, and the
 * whole text must give the entries its lines give one by one.  For auth
 * files an independent reader decides which lines are tokens, and every
 * plain token must then be accepted.  For target files each entry's host
 * and port, written back as "token: host:port", must parse to the same.
 * Only the first lines are checked one by one (cost).  No file is opened:
 * the parser takes a buffer.  abort() on any mismatch.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "token_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

/* Lines checked one by one. */
#define LINES_CHECKED 32

/* Skipped lines are logged as warnings: keep the fuzzer quiet. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(LOG_ERROR);
	return 0;
}

/* Reference: is the trimmed auth line S (LEN bytes) a token entry? */
static bool
ref_auth_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	if (len > 7 && memcmp(s, "sha256:", 7) == 0) {
		if (len != 7 + 64)
			return false;
		for (size_t i = 7; i < len; i++)
			if (strchr("0123456789abcdefABCDEF", s[i]) == NULL ||
			    s[i] == '\0')
				return false;
	}
	return true;
}

/* Parse LEN bytes at TEXT into a fresh token file of KIND. */
static struct token_file *
parse(enum token_file_kind kind, const char *text, size_t len,
      size_t *skipped)
{
	struct token_file *tf = token_file_new("fuzz", kind);

	CHECK(tf != NULL);
	*skipped = token_file_parse(tf, text, len, "fuzz");
	return tf;
}

/* One target entry TOKEN (LEN bytes) of TF, written back, parses alike. */
static void
check_target(const struct token_file *tf, const char *tok, size_t len)
{
	const char *host;
	uint16_t port, port2;
	const char *host2;
	char *line;
	size_t cap = len + 300, skipped;
	int n;

	CHECK(token_file_lookup(tf, tok, len, &host, &port));
	CHECK(port >= 1 && host[0] != '\0' && strlen(host) <= 253);
	line = malloc(cap);
	CHECK(line != NULL);
	n = snprintf(line, cap, "%.*s:%s%s%s:%u", (int)len, tok,
		     strchr(host, ':') ? "[" : "", host,
		     strchr(host, ':') ? "]" : "", (unsigned)port);
	CHECK(n > 0 && (size_t)n < cap);
	struct token_file *again =
		parse(TOKEN_FILE_TARGETS, line, (size_t)n, &skipped);
	CHECK(skipped == 0 && token_file_count(again) == 1);
	CHECK(token_file_lookup(again, tok, len, &host2, &port2));
	CHECK(port2 == port && strcmp(host, host2) == 0);
	token_file_free(again);
	free(line);
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum token_file_kind kind;
	struct token_file *tf;
	const char *text, *p, *end;
	size_t len, skipped, lines = 0, ones = 0, want_auth = 0;

	if (size < 1)
		return 0;
	kind = data[0] & 1 ? TOKEN_FILE_TARGETS : TOKEN_FILE_AUTH;
	text = (const char *)data + 1;
	len = size - 1;
	tf = parse(kind, text, len, &skipped);

	/* Line by line, with the reader's own trimming rules. */
	p = text;
	end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end, *s = p, *raw = p;
		size_t raw_len = (size_t)(e - p) + (nl != NULL);

		p = nl ? nl + 1 : end;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		if (s == e || *s == '#')
			continue;
		lines++;
		if (kind == TOKEN_FILE_AUTH && ref_auth_ok(s, (size_t)(e - s)))
			want_auth++;
		if (lines > LINES_CHECKED)
			continue;

		size_t sk;
		struct token_file *one = parse(kind, raw, raw_len, &sk);
		size_t got = token_file_count(one);
		CHECK(got + sk == 1);
		ones += got;
		if (got == 1 && kind == TOKEN_FILE_AUTH) {
			bool plain = !((size_t)(e - s) > 7 &&
				       memcmp(s, "sha256:", 7) == 0);
			CHECK(!plain || token_file_check(one, s, (size_t)(e - s)));
			CHECK(!plain || token_file_check(tf, s, (size_t)(e - s)));
		}
		if (got == 1 && kind == TOKEN_FILE_TARGETS) {
			const char *colon = memchr(s, ':', (size_t)(e - s));
			size_t tl = (size_t)(colon - s);
			while (tl > 0 && (s[tl - 1] == ' ' || s[tl - 1] == '\t'))
				tl--;
			check_target(one, s, tl);
		}
		token_file_free(one);
	}
	CHECK(token_file_count(tf) + skipped == lines);
	if (lines <= LINES_CHECKED)
		CHECK(token_file_count(tf) == ones);
	if (kind == TOKEN_FILE_AUTH)
		CHECK(token_file_count(tf) == want_auth);

	/* Parsing again replaces the entries. */
	CHECK(token_file_parse(tf, text, len, "fuzz") == skipped);
	token_file_free(tf);
	return 0;
}
