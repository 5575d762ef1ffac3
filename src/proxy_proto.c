/*
 * proxy_proto.c - PROXY protocol v1/v2 parser and builders (PURE).
 *
 * States: START looks at the first byte ('P' for v1, CR for the v2
 * signature); V1 collects the line up to its CRLF, checking "PROXY " byte by
 * byte so garbage fails at once; V2_HEAD collects the 16-byte header,
 * checking the 12-byte signature as it arrives; V2_ADDR collects the address
 * block (at most 216 bytes), V2_SKIP counts off the TLVs that follow it.
 * Nothing is consumed past the header's last byte.
 */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "netaddr.h"

enum {
	PP_START,
	PP_V1,
	PP_V2_HEAD,
	PP_V2_ADDR,
	PP_V2_SKIP,
	PP_DONE,
	PP_ERROR,
};

/* spec 2.2: the v2 signature */
static const uint8_t pp_v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const char pp_v1_prefix[] = "PROXY ";

static const char *const pp_error_texts[] = {
#define PROXY_PROTO_TEXT_(name, text) text,
	PROXY_PROTO_ERRORS(PROXY_PROTO_TEXT_)
#undef PROXY_PROTO_TEXT_
};

/* Reset P. */
void
proxy_proto_init(struct proxy_proto *p)
{
	memset(p, 0, sizeof(*p));
	p->state = PP_START;
}

/* The text of E. */
const char *
proxy_proto_error_text(enum proxy_proto_error e)
{
	if ((size_t)e >= sizeof(pp_error_texts) / sizeof(pp_error_texts[0]))
		return "?";
	return pp_error_texts[e];
}

/* After ERROR: which one. */
enum proxy_proto_error
proxy_proto_error(const struct proxy_proto *p)
{
	return p->error;
}

/* After DONE: the result. */
const struct proxy_proto_result *
proxy_proto_result(const struct proxy_proto *p)
{
	return &p->result;
}

/* Enter the error state with E. */
static enum proxy_proto_status
pp_fail(struct proxy_proto *p, enum proxy_proto_error e)
{
	p->state = PP_ERROR;
	p->error = e;
	return PROXY_PROTO_ERROR;
}

/* spec 2.1: parse the whole v1 line in buf (CRLF included). */
static enum proxy_proto_status
pp_v1_parse(struct proxy_proto *p)
{
	const char *line = (const char *)p->buf + 6; /* after "PROXY " */
	size_t n = p->have - 6 - 2;                  /* without CRLF */
	const char *f[5];
	size_t flen[5], nf = 0, start = 0;
	int family;
	uint16_t sport, dport;

	if (p->buf[p->have - 2] != '\r')
		return pp_fail(p, PROXY_ERR_V1_SYNTAX);
	/* "UNKNOWN" may be followed by anything; the receiver ignores it. */
	if (n >= 7 && memcmp(line, "UNKNOWN", 7) == 0 &&
	    (n == 7 || line[7] == ' ')) {
		p->result.version = 1;
		p->state = PP_DONE;
		return PROXY_PROTO_DONE;
	}
	for (size_t i = 0; i <= n; i++) {
		if (i == n || line[i] == ' ') {
			if (nf == 5 || i == start)
				return pp_fail(p, PROXY_ERR_V1_SYNTAX);
			f[nf] = line + start;
			flen[nf++] = i - start;
			start = i + 1;
		} else if ((unsigned char)line[i] < 0x21 ||
			   (unsigned char)line[i] > 0x7e) {
			return pp_fail(p, PROXY_ERR_V1_SYNTAX);
		}
	}
	if (nf != 5 || flen[0] != 4)
		return pp_fail(p, PROXY_ERR_V1_SYNTAX);
	if (memcmp(f[0], "TCP4", 4) == 0)
		family = AF_INET;
	else if (memcmp(f[0], "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return pp_fail(p, PROXY_ERR_V1_SYNTAX);
	if (netaddr_parse_ip_family(family, f[1], flen[1], &p->result.src) <
		    0 ||
	    netaddr_parse_ip_family(family, f[2], flen[2], &p->result.dst) < 0)
		return pp_fail(p, PROXY_ERR_V1_ADDRESS);
	/* spec 2.1: ports are 0-65535 without leading zeros */
	if (netaddr_parse_port(f[3], flen[3], NETADDR_PORT_CANONICAL, &sport) <
		    0 ||
	    netaddr_parse_port(f[4], flen[4], NETADDR_PORT_CANONICAL, &dport) <
		    0)
		return pp_fail(p, PROXY_ERR_V1_PORT);
	netaddr_set_port(&p->result.src, sport);
	netaddr_set_port(&p->result.dst, dport);
	p->result.version = 1;
	p->result.has_addr = true;
	p->state = PP_DONE;
	return PROXY_PROTO_DONE;
}

/* Address bytes family byte FAM needs, or -1 if unsupported. */
static int
pp_v2_need(uint8_t fam)
{
	switch (fam) {
	case 0x00: /* UNSPEC */
		return 0;
	case 0x11: /* TCP over IPv4 */
		return 12;
	case 0x21: /* TCP over IPv6 */
		return 36;
	case 0x31: /* unix stream */
		return 216;
	default: /* UDP and the rest: not for a TCP gateway */
		return -1;
	}
}

/* spec 2.2: check v2 header byte number HAVE (1-based) as it arrives;
   at the 16th, plan the rest. */
static enum proxy_proto_status
pp_v2_head(struct proxy_proto *p)
{
	uint8_t ver_cmd = p->buf[12];
	uint32_t len;

	if (p->have == 13) {
		if ((ver_cmd >> 4) != 2 || (ver_cmd & 0x0f) > 1)
			return pp_fail(p, PROXY_ERR_V2_VERSION);
		p->result.version = 2;
		p->result.local = (ver_cmd & 0x0f) == 0;
		return PROXY_PROTO_INCOMPLETE;
	}
	/* LOCAL: the receiver ignores the family and the addresses */
	if (p->have == 14 && !p->result.local && pp_v2_need(p->buf[13]) < 0)
		return pp_fail(p, PROXY_ERR_V2_FAMILY);
	if (p->have < PROXY_PROTO_V2_HEADER)
		return PROXY_PROTO_INCOMPLETE;
	len = ((uint32_t)p->buf[14] << 8) | p->buf[15];
	if (!p->result.local && len < (uint32_t)pp_v2_need(p->buf[13]))
		return pp_fail(p, PROXY_ERR_V2_LENGTH);
	p->v2_len = len;
	p->state = PP_V2_ADDR;
	return PROXY_PROTO_INCOMPLETE;
}

/* The v2 address block is in buf: fill in the result. */
static void
pp_v2_addresses(struct proxy_proto *p)
{
	const uint8_t *a = p->buf + PROXY_PROTO_V2_HEADER;
	uint8_t fam = p->buf[13];

	if (p->result.local)
		return;
	if (fam == 0x11) {
		struct sockaddr_in *s = (struct sockaddr_in *)&p->result.src;
		struct sockaddr_in *d = (struct sockaddr_in *)&p->result.dst;
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, 4);
		memcpy(&d->sin_addr, a + 4, 4);
		memcpy(&s->sin_port, a + 8, 2);
		memcpy(&d->sin_port, a + 10, 2);
		p->result.has_addr = true;
	} else if (fam == 0x21) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&p->result.src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&p->result.dst;
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, 16);
		memcpy(&d->sin6_addr, a + 16, 16);
		memcpy(&s->sin6_port, a + 32, 2);
		memcpy(&d->sin6_port, a + 34, 2);
		p->result.has_addr = true;
	}
}

/* Feed bytes; see proxy_proto.h. */
enum proxy_proto_status
proxy_proto_feed(struct proxy_proto *p, const uint8_t *data, size_t len,
		 size_t *consumed)
{
	size_t i = 0;
	enum proxy_proto_status st = PROXY_PROTO_INCOMPLETE;

	*consumed = 0;
	if (p->state == PP_DONE)
		return PROXY_PROTO_DONE;
	if (p->state == PP_ERROR)
		return PROXY_PROTO_ERROR;
	while (i < len && st == PROXY_PROTO_INCOMPLETE) {
		uint8_t b = data[i];

		switch (p->state) {
		case PP_START:
			if (b == 'P')
				p->state = PP_V1;
			else if (b == pp_v2_sig[0])
				p->state = PP_V2_HEAD;
			else
				st = pp_fail(p, PROXY_ERR_SIGNATURE);
			break;
		case PP_V1:
			if (p->have < 6 && b != (uint8_t)pp_v1_prefix[p->have])
				st = pp_fail(p, PROXY_ERR_SIGNATURE);
			else if (p->have >= PROXY_PROTO_V1_MAX)
				st = pp_fail(p, PROXY_ERR_V1_TOO_LONG);
			break;
		case PP_V2_HEAD:
			if (p->have < 12 && b != pp_v2_sig[p->have])
				st = pp_fail(p, PROXY_ERR_SIGNATURE);
			break;
		case PP_V2_SKIP: {
			/* TLVs: counted off, not kept */
			size_t n = len - i < p->skip ? len - i : p->skip;
			i += n;
			p->skip -= (uint32_t)n;
			if (p->skip == 0) {
				p->state = PP_DONE;
				st = PROXY_PROTO_DONE;
			}
			continue;
		}
		default:
			break;
		}
		if (st != PROXY_PROTO_INCOMPLETE) {
			i++; /* the offending byte */
			break;
		}
		if (p->state == PP_V1) {
			p->buf[p->have++] = b;
			i++;
			if (b == '\n')
				st = p->have < 8 ? pp_fail(p, PROXY_ERR_V1_SYNTAX)
						 : pp_v1_parse(p);
			continue;
		}
		/* V2_HEAD or V2_ADDR: keep the byte. */
		p->buf[p->have++] = b;
		i++;
		if (p->state == PP_V2_HEAD && p->have > 12)
			st = pp_v2_head(p);
		if (p->state != PP_V2_ADDR)
			continue;
		{
			uint32_t keep = p->v2_len < PROXY_PROTO_V2_ADDR_MAX
						? p->v2_len
						: PROXY_PROTO_V2_ADDR_MAX;
			if (p->have < PROXY_PROTO_V2_HEADER + (size_t)keep)
				continue;
			pp_v2_addresses(p);
			p->skip = p->v2_len - keep;
			if (p->skip > 0) {
				p->state = PP_V2_SKIP;
			} else {
				p->state = PP_DONE;
				st = PROXY_PROTO_DONE;
			}
		}
	}
	*consumed = i;
	return st;
}

/* Copy SA into a v6 address: IPv4 becomes ::ffff:a.b.c.d. */
static void
pp_as_v6(const struct sockaddr *sa, struct in6_addr *a, uint16_t *port)
{
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		*a = s->sin6_addr;
		*port = s->sin6_port;
		return;
	}
	const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
	memset(a, 0, sizeof(*a));
	a->s6_addr[10] = 0xff;
	a->s6_addr[11] = 0xff;
	memcpy(&a->s6_addr[12], &s->sin_addr, 4);
	*port = s->sin_port;
}

/* True if SA is an IPv4 or IPv6 address. */
static bool
pp_is_inet(const struct sockaddr *sa)
{
	return sa != NULL &&
	       (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
}

/* Build a v1 line; see proxy_proto.h. */
int
proxy_proto_build_v1(char *buf, size_t cap, const struct sockaddr *src,
		     const struct sockaddr *dst)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	unsigned sp, dp;
	int n;

	if (!pp_is_inet(src) || !pp_is_inet(dst)) {
		n = snprintf(buf, cap, "PROXY UNKNOWN\r\n");
	} else if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)src;
		const struct sockaddr_in *b = (const struct sockaddr_in *)dst;
		inet_ntop(AF_INET, &a->sin_addr, s, sizeof(s));
		inet_ntop(AF_INET, &b->sin_addr, d, sizeof(d));
		n = snprintf(buf, cap, "PROXY TCP4 %s %s %u %u\r\n", s, d,
			     (unsigned)ntohs(a->sin_port),
			     (unsigned)ntohs(b->sin_port));
	} else {
		struct in6_addr a, b;
		uint16_t ap, bp;
		pp_as_v6(src, &a, &ap);
		pp_as_v6(dst, &b, &bp);
		inet_ntop(AF_INET6, &a, s, sizeof(s));
		inet_ntop(AF_INET6, &b, d, sizeof(d));
		sp = ntohs(ap);
		dp = ntohs(bp);
		n = snprintf(buf, cap, "PROXY TCP6 %s %s %u %u\r\n", s, d, sp,
			     dp);
	}
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return n;
}

/* Build a v2 header; see proxy_proto.h. */
int
proxy_proto_build_v2(uint8_t *buf, size_t cap, const struct sockaddr *src,
		     const struct sockaddr *dst)
{
	size_t len;

	if (cap < PROXY_PROTO_V2_HEADER)
		return -1;
	memcpy(buf, pp_v2_sig, sizeof(pp_v2_sig));
	buf[12] = 0x21; /* version 2, PROXY */
	if (!pp_is_inet(src) || !pp_is_inet(dst)) {
		buf[13] = 0x00;
		buf[14] = buf[15] = 0;
		return PROXY_PROTO_V2_HEADER;
	}
	if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)src;
		const struct sockaddr_in *b = (const struct sockaddr_in *)dst;
		len = 12;
		if (cap < PROXY_PROTO_V2_HEADER + len)
			return -1;
		buf[13] = 0x11;
		memcpy(buf + 16, &a->sin_addr, 4);
		memcpy(buf + 20, &b->sin_addr, 4);
		memcpy(buf + 24, &a->sin_port, 2);
		memcpy(buf + 26, &b->sin_port, 2);
	} else {
		struct in6_addr a, b;
		uint16_t ap, bp;
		len = 36;
		if (cap < PROXY_PROTO_V2_HEADER + len)
			return -1;
		pp_as_v6(src, &a, &ap);
		pp_as_v6(dst, &b, &bp);
		buf[13] = 0x21;
		memcpy(buf + 16, &a, 16);
		memcpy(buf + 32, &b, 16);
		memcpy(buf + 48, &ap, 2);
		memcpy(buf + 50, &bp, 2);
	}
	buf[14] = (uint8_t)(len >> 8);
	buf[15] = (uint8_t)len;
	return (int)(PROXY_PROTO_V2_HEADER + len);
}
