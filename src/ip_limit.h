/*
 * ip_limit.h - per-client-address limits: concurrent connections and a
 * new-connection rate (token bucket), in one table that several worker
 * threads may share.
 *
 * The table is guarded by a mutex taken only when a connection starts
 * (ip_limit_acquire) and ends (ip_limit_release), never on the data path.
 * Its size is bounded: an address with no open connection is "idle", and
 * idle entries are dropped as soon as their bucket has refilled (they then
 * hold nothing a fresh entry would not) or, oldest first, when the table is
 * full; an address-spraying client therefore cannot grow memory past
 * max_entries.  IPv6 clients are counted per /64, the block one host
 * usually holds.
 */
#ifndef WSGATE_IP_LIMIT_H
#define WSGATE_IP_LIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ip_limit_config {
	unsigned max_per_ip;   /* concurrent connections; 0 = off */
	unsigned rate_count;   /* new connections ... 0 = off */
	uint64_t rate_per_ms;  /* ... per this many milliseconds */
	unsigned burst;        /* bucket size (>= 1 when the rate is on) */
	size_t max_entries;    /* addresses tracked at most */
};

/* X(name, text) */
#define IP_LIMIT_VERDICTS(X)                                                   \
	X(IP_LIMIT_OK, "ok")                                                   \
	X(IP_LIMIT_CONCURRENT, "too many connections from this address")      \
	X(IP_LIMIT_RATE, "too many new connections from this address")        \
	X(IP_LIMIT_FULL, "too many client addresses")

enum ip_limit_verdict {
#define IP_LIMIT_ENUM_(name, text) name,
	IP_LIMIT_VERDICTS(IP_LIMIT_ENUM_)
#undef IP_LIMIT_ENUM_
};

/* The text of V. */
const char *ip_limit_verdict_text(enum ip_limit_verdict v);

struct ip_limit;

/* A table for CFG (copied); SEED keys its hash.  NULL on failure. */
struct ip_limit *ip_limit_new(const struct ip_limit_config *cfg,
			      uint64_t seed);

/* Free L; NULL is fine. */
void ip_limit_free(struct ip_limit *l);

/*
 * A connection from SA (AF_INET or AF_INET6; anything else is not
 * limited) starts at NOW_MS (a monotonic clock).  On IP_LIMIT_OK it is
 * counted, and ip_limit_release must follow when it ends.
 */
enum ip_limit_verdict ip_limit_acquire(struct ip_limit *l,
				       const struct sockaddr *sa,
				       uint64_t now_ms);

/* The connection from SA that ip_limit_acquire admitted has ended. */
void ip_limit_release(struct ip_limit *l, const struct sockaddr *sa,
		      uint64_t now_ms);

/* Addresses tracked now. */
size_t ip_limit_entries(struct ip_limit *l);

#endif
