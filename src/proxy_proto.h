/*
 * proxy_proto.h - the PROXY protocol, versions 1 (text) and 2 (binary), as
 * HAProxy's "proxy-protocol.txt" specifies it (PURE: no sockets, no
 * libevent, no globals).
 *
 * The parser reads the header a load balancer puts in front of the client's
 * bytes.  It keeps its state in a caller-owned struct (no allocation),
 * accepts bytes one at a time or all at once, and never consumes a byte past
 * the end of the header, so what the client sent next stays with the caller.
 * Version 2 TLVs are skipped; a LOCAL command (health checks) and the
 * UNSPEC / unix families carry no client address.
 *
 * The builders write the header the gateway sends to an upstream.
 */
#ifndef WSGATE_PROXY_PROTO_H
#define WSGATE_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* spec 2.1: "PROXY UNKNOWN" plus the longest TCP6 line is 107 bytes */
#define PROXY_PROTO_V1_MAX 107
/* spec 2.2: 16-byte header; the unix address block is the longest, 216 */
#define PROXY_PROTO_V2_HEADER 16
#define PROXY_PROTO_V2_ADDR_MAX 216
/* Room for any header proxy_proto_build_v1/_v2 write (v1 line + NUL). */
#define PROXY_PROTO_BUILD_MAX (PROXY_PROTO_V1_MAX + 1)

/* X(name, text) */
#define PROXY_PROTO_ERRORS(X)                                                  \
	X(PROXY_ERR_NONE, "ok")                                                \
	X(PROXY_ERR_SIGNATURE, "not a PROXY protocol header")                  \
	X(PROXY_ERR_V1_TOO_LONG, "PROXY v1 line longer than 107 bytes")        \
	X(PROXY_ERR_V1_SYNTAX, "malformed PROXY v1 line")                      \
	X(PROXY_ERR_V1_ADDRESS, "bad address in PROXY v1 line")                \
	X(PROXY_ERR_V1_PORT, "bad port in PROXY v1 line")                      \
	X(PROXY_ERR_V2_VERSION, "unsupported PROXY v2 version or command")     \
	X(PROXY_ERR_V2_FAMILY, "unsupported PROXY v2 address family")         \
	X(PROXY_ERR_V2_LENGTH, "PROXY v2 length too short for its family")

enum proxy_proto_error {
#define PROXY_PROTO_ENUM_(name, text) name,
	PROXY_PROTO_ERRORS(PROXY_PROTO_ENUM_)
#undef PROXY_PROTO_ENUM_
};

enum proxy_proto_status {
	PROXY_PROTO_ERROR = -1,
	PROXY_PROTO_INCOMPLETE = 0,
	PROXY_PROTO_DONE = 1,
};

/* What a complete header said. */
struct proxy_proto_result {
	int version;   /* 1 or 2 */
	bool local;    /* v2 LOCAL command: the connection is the proxy's own */
	bool has_addr; /* src and dst are set (TCP over IPv4 or IPv6) */
	struct sockaddr_storage src, dst;
};

/* Parser state; initialise with proxy_proto_init.  Fields are private. */
struct proxy_proto {
	int state;
	enum proxy_proto_error error;
	size_t have;       /* bytes kept in buf */
	uint32_t skip;     /* v2: payload bytes still to skip (TLVs) */
	uint32_t v2_len;   /* v2: payload length from the header */
	uint8_t buf[PROXY_PROTO_V2_HEADER + PROXY_PROTO_V2_ADDR_MAX];
	struct proxy_proto_result result;
};

/* Reset P to expect a new header. */
void proxy_proto_init(struct proxy_proto *p);

/*
 * Feed LEN bytes at DATA.  *CONSUMED receives how many were taken: all of
 * them while INCOMPLETE; on DONE, exactly up to the end of the header; on
 * ERROR, up to and including the offending byte.  After DONE or ERROR
 * further calls return the same status and consume nothing.
 */
enum proxy_proto_status proxy_proto_feed(struct proxy_proto *p,
					 const uint8_t *data, size_t len,
					 size_t *consumed);

/* After DONE: the result (valid while P lives). */
const struct proxy_proto_result *proxy_proto_result(const struct proxy_proto *p);

/* After ERROR: which error, and its text. */
enum proxy_proto_error proxy_proto_error(const struct proxy_proto *p);
const char *proxy_proto_error_text(enum proxy_proto_error e);

/*
 * Build a v1 line "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" into BUF for
 * the connection from SRC to DST (AF_INET or AF_INET6; a mix is written as
 * TCP6 with IPv4-mapped addresses); "PROXY UNKNOWN\r\n" when either is
 * NULL or of another family.  Returns the length, or -1 if CAP is too small.
 */
int proxy_proto_build_v1(char *buf, size_t cap, const struct sockaddr *src,
			 const struct sockaddr *dst);

/*
 * Build a v2 header (command PROXY, TCP over IPv4 or IPv6, no TLV) into
 * BUF; UNSPEC with no address block when either address is NULL or of
 * another family.  Returns the length, or -1 if CAP is too small.
 */
int proxy_proto_build_v2(uint8_t *buf, size_t cap, const struct sockaddr *src,
			 const struct sockaddr *dst);

#endif
