/*
 * token_file.h - token files, re-read when they change.
 *
 * Two formats, both one entry per line with '#' comments and blank lines
 * ignored:
 *
 *   auth (auth_tokens):  a token, or "sha256:HEX" (the SHA-256 of the token
 *                        in 64 hex digits, so the file holds no secret)
 *   targets (upstream = tokenfile:): websockify's "token: host:port"
 *                        (host a name, an IPv4 literal or [IPv6])
 *
 * Only SHA-256 digests of tokens are kept in memory, and every lookup
 * compares the digest of the presented token with every entry in constant
 * time.  Lines that cannot be read are skipped with a warning naming the
 * file and line number, never the line's text.  A file that vanishes or
 * cannot be read leaves no entries: access fails closed.
 */
#ifndef WSGATE_TOKEN_FILE_H
#define WSGATE_TOKEN_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum token_file_kind {
	TOKEN_FILE_AUTH,
	TOKEN_FILE_TARGETS,
};

struct config;
struct token_file;

/* A token file at PATH (copied) of KIND, not read yet; NULL on ENOMEM. */
struct token_file *token_file_new(const char *path, enum token_file_kind kind);

/* Free TF; NULL is fine. */
void token_file_free(struct token_file *tf);

/*
 * stat(2) the file and re-read it if its identity, size or mtime changed.
 * Returns 0 when entries are usable, -1 when the file cannot be read (then
 * it has no entries; logged once per change).
 */
int token_file_refresh(struct token_file *tf);

/*
 * Open and read every token file CFG's routes name (auth_tokens, upstream =
 * tokenfile:), as a start does and wsgate -t with the same code.  *AUTH and
 * *TARGETS get n_routes entries each (free each with token_file_free_routes,
 * also after a failure), NULL where a route names none or its file failed.
 * 0, or -1 with the first failure as "FILE:LINE: [route PATH] KEY: cannot
 * load NAME: reason" in ERR.  Lines that cannot be read are skipped with a
 * warning, as in a refresh.
 */
int token_file_load_routes(const struct config *cfg, struct token_file ***auth,
			   struct token_file ***targets, char *err,
			   size_t errlen);

/* Free the N token files in FILES and the array; NULL is fine. */
void token_file_free_routes(struct token_file **files, size_t n);

/*
 * Replace TF's entries with those parsed from TEXT (LEN bytes); NAME is
 * used in warnings.  Returns the number of lines skipped as unreadable.
 */
size_t token_file_parse(struct token_file *tf, const char *text, size_t len,
			const char *name);

/* Number of entries. */
size_t token_file_count(const struct token_file *tf);

/* Auth: true if TOKEN (LEN bytes) is one of the entries. */
bool token_file_check(const struct token_file *tf, const char *token,
		      size_t len);

/*
 * Targets: the host (valid until the next refresh) and port TOKEN maps to;
 * false if it maps to nothing.
 */
bool token_file_lookup(const struct token_file *tf, const char *token,
		       size_t len, const char **host, uint16_t *port);

#endif
