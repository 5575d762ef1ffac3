/*
 * tls_name.h - PURE: server names for SNI certificate selection.
 *
 * A pattern is an exact DNS name ("gw.example.com") or a wildcard that
 * stands for exactly one leftmost label ("*.example.com" matches
 * "a.example.com", not "example.com" nor "a.b.example.com"), the rule
 * RFC 6125 6.4.3 gives for certificates.  Comparison ignores ASCII case
 * and one trailing dot of the name.  No I/O, no allocation, no globals.
 */
#ifndef WSGATE_TLS_NAME_H
#define WSGATE_TLS_NAME_H

#include <stdbool.h>
#include <stddef.h>

/* Longest name accepted (RFC 1035 2.3.4: 253 characters without the
   trailing dot). */
#define TLS_NAME_MAX 253

/*
 * NULL if PATTERN is a valid server_names entry, else why not (a
 * constant string).
 */
const char *tls_name_pattern_error(const char *pattern);

/*
 * True if NAME (LEN bytes, as the client sent it in SNI) matches PATTERN
 * (valid per tls_name_pattern_error).
 */
bool tls_name_match(const char *pattern, const char *name, size_t len);

/* True if PATTERN starts with "*.". */
bool tls_name_is_wildcard(const char *pattern);

#endif
