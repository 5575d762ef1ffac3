/*
 * access_check.c - Origin, token and target decisions for one request, and
 * the real client address behind trusted proxies (see access_check.h).
 *
 * Order of the checks: Origin first (a page from another site learns
 * nothing more), then the route's token, then the token-file target.  Every
 * refusal happens before the upgrade and before any upstream connection,
 * except with auth_failure = close, where the upgrade is followed by
 * Close 1008 so that a web page (which is shown no HTTP status) can tell
 * its user why.
 */
#include "access_check.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "access.h"
#include "config.h"
#include "http_upgrade.h"
#include "log.h"
#include "netaddr.h"
#include "token_file.h"

/* Header fields of one name looked at, at most. */
#define ACCESS_CHECK_FIELDS 32

/* Collect the values of every field named NAME into V (at most MAX). */
static size_t
access_check_fields(const struct http_upgrade *req, const char *name,
		    struct access_str *v, size_t max)
{
	size_t n = 0, count = http_upgrade_field_count(req);
	size_t nl = strlen(name);

	for (size_t i = 0; i < count && n < max; i++) {
		const struct http_field *f = http_upgrade_field(req, i);
		if (f->name.len == nl && strncasecmp(f->name.p, name, nl) == 0) {
			v[n].p = f->value.p;
			v[n].len = f->value.len;
			n++;
		}
	}
	return n;
}

/* The client behind trusted proxies; see access_check.h. */
bool
access_check_client(const struct config *cfg, const struct http_upgrade *req,
		    struct sockaddr_storage *client)
{
	struct access_str v[ACCESS_CHECK_FIELDS];
	struct sockaddr_storage out;
	size_t n;
	bool fwd = cfg->real_ip_header == REAL_IP_FORWARDED;

	if (cfg->n_trusted_proxies == 0 ||
	    !netaddr_nets_contain(cfg->trusted_proxies, cfg->n_trusted_proxies,
				  (struct sockaddr *)client))
		return false;
	n = access_check_fields(req, fwd ? "Forwarded" : "X-Forwarded-For", v,
				ACCESS_CHECK_FIELDS);
	if (n == 0)
		return false;
	access_forwarded_client(fwd ? ACCESS_FWD_FORWARDED : ACCESS_FWD_XFF, v,
				n, cfg->trusted_proxies,
				cfg->n_trusted_proxies, client, &out);
	if (memcmp(&out, client, sizeof(out)) == 0)
		return false;
	*client = out;
	return true;
}

/* Refuse V with STATUS and REASON. */
static void
access_check_refuse(struct access_verdict *v, int status, const char *reason)
{
	v->status = status;
	v->reason = reason;
}

/* RFC 6455 10.2 / RFC 6454: the route's Origin rule. */
static bool
access_check_origin(const struct config *cfg, const struct config_route *r,
		    const struct http_upgrade *req, struct access_verdict *v)
{
	const struct config_origins *o = config_route_origins(cfg, r);
	struct access_str vals[2];
	char norm[ACCESS_ORIGIN_MAX];
	size_t n = access_check_fields(req, "Origin", vals, 2);

	if (n == 0) {
		if (config_route_origin_missing_deny(cfg, r)) {
			access_check_refuse(v, 403, "Origin header required");
			return false;
		}
		return true;
	}
	if (n > 1) {
		access_check_refuse(v, 403, "more than one Origin header");
		return false;
	}
	if (o->any || o->n == 0)
		return true; /* "*", or no list set */
	if (access_origin_normalize(vals[0].p, vals[0].len, norm,
				    sizeof(norm)) == 0) {
		for (size_t i = 0; i < o->n; i++)
			if (strcmp(o->v[i], norm) == 0)
				return true;
	}
	access_check_refuse(v, 403, "origin not allowed");
	return false;
}

/* Outcome of looking for a token. */
enum access_token_state {
	TOKEN_NONE,  /* no carrier held one */
	TOKEN_BAD,   /* one or more were presented, none valid */
	TOKEN_GOOD,
};

/* Note one carrier's result RC (access.c returns) with token TOK. */
static enum access_token_state
access_check_try(enum access_token_state st, int rc, const char *tok,
		 const struct token_file *tf)
{
	if (st == TOKEN_GOOD || rc == -1)
		return st;
	if (rc >= 0 && token_file_check(tf, tok, (size_t)rc))
		return TOKEN_GOOD;
	return TOKEN_BAD;
}

/* The route's token, from every carrier it accepts. */
static enum access_token_state
access_check_token(const struct config_route *r,
		   const struct http_upgrade *req, const struct token_file *tf)
{
	enum access_token_state st = TOKEN_NONE;
	char tok[ACCESS_TOKEN_MAX + 1];
	struct access_str vals[ACCESS_CHECK_FIELDS];
	struct http_str h;
	size_t n;

	if (r->auth_from & AUTH_FROM_BEARER) {
		n = access_check_fields(req, "Authorization", vals,
					ACCESS_CHECK_FIELDS);
		for (size_t i = 0; i < n; i++)
			st = access_check_try(
				st,
				access_bearer(vals[i].p, vals[i].len, tok,
					      sizeof(tok)),
				tok, tf);
	}
	if (r->auth_from & AUTH_FROM_COOKIE) {
		n = access_check_fields(req, "Cookie", vals,
					ACCESS_CHECK_FIELDS);
		for (size_t i = 0; i < n; i++)
			st = access_check_try(
				st,
				access_cookie(vals[i].p, vals[i].len,
					      r->auth_cookie, tok, sizeof(tok)),
				tok, tf);
	}
	if (r->auth_from & AUTH_FROM_PROTOCOL) {
		size_t cursor = 0, pl = strlen(r->auth_protocol_prefix);
		while (http_upgrade_next_token(req, "Sec-WebSocket-Protocol",
					       &cursor, &h)) {
			int rc = -2;
			if (h.len <= pl ||
			    memcmp(h.p, r->auth_protocol_prefix, pl) != 0)
				continue;
			if (h.len - pl <= ACCESS_TOKEN_MAX) {
				memcpy(tok, h.p + pl, h.len - pl);
				tok[h.len - pl] = '\0';
				rc = (int)(h.len - pl);
			}
			st = access_check_try(st, rc, tok, tf);
		}
	}
	if (r->auth_from & AUTH_FROM_QUERY) {
		h = http_upgrade_query(req);
		st = access_check_try(st,
				      access_query_param(h.p, h.len, "token",
							 tok, sizeof(tok)),
				      tok, tf);
	}
	memset(tok, 0, sizeof(tok));
	return st;
}

/* Refuse for a token problem: HTTP STATUS, or Close 1008 if the route
   says so. */
static void
access_check_token_refuse(const struct config_route *r,
			  struct access_verdict *v, int status,
			  const char *reason, const char *close_reason)
{
	if (r->auth_failure_close) {
		v->close_1008 = true;
		v->reason = close_reason;
	} else {
		access_check_refuse(v, status, reason);
	}
}

/* websockify: the token from ?token= or, on a prefix route, the last path
   segment.  Returns access.c's codes. */
static int
access_check_target_token(const struct config_route *r,
			  const struct http_upgrade *req, char *tok, size_t cap)
{
	struct http_str q = http_upgrade_query(req), p;
	int rc = access_query_param(q.p, q.len, "token", tok, cap);
	const char *seg;
	size_t sl;

	if (rc != -1 || !r->prefix)
		return rc;
	p = http_upgrade_path(req);
	if (p.len <= r->prefix_len)
		return -1;
	seg = p.p + r->prefix_len;
	sl = p.len - r->prefix_len;
	if (memchr(seg, '/', sl) != NULL || sl >= cap)
		return -2;
	for (size_t i = 0; i < sl; i++)
		if ((unsigned char)seg[i] < 0x21 || (unsigned char)seg[i] > 0x7e)
			return -2;
	memcpy(tok, seg, sl);
	tok[sl] = '\0';
	return (int)sl;
}

/* A token-file route: where the token leads, and whether it may. */
static void
access_check_target(const struct config_route *r,
		    const struct http_upgrade *req, struct token_file *tf,
		    struct access_verdict *v)
{
	char tok[ACCESS_TOKEN_MAX + 1];
	const char *host = NULL;
	uint16_t port = 0;
	struct sockaddr_storage ss;
	int rc;

	(void)token_file_refresh(tf);
	rc = access_check_target_token(r, req, tok, sizeof(tok));
	if (rc == -1) {
		access_check_token_refuse(r, v, 401, "missing token",
					  "policy violation: missing token");
		return;
	}
	if (rc < 0 || !token_file_lookup(tf, tok, (size_t)rc, &host, &port)) {
		memset(tok, 0, sizeof(tok));
		access_check_token_refuse(r, v, 403, "unknown token",
					  "policy violation: unknown token");
		return;
	}
	memset(tok, 0, sizeof(tok));
	snprintf(v->host, sizeof(v->host), "%s", host);
	v->port = port;
	v->has_target = true;
	/* A literal is checked now; a name once resolved (upstream.c). */
	if (netaddr_parse_ip(host, strlen(host), &ss) == 0) {
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons(port);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
		if (!netaddr_rules_allow(r->target_allow, r->n_target_allow,
					 (struct sockaddr *)&ss)) {
			char a[NETADDR_STRLEN];
			netaddr_format((struct sockaddr *)&ss, a, sizeof(a));
			log_warn("route %s: token target %s is outside "
				 "target_allow: refused",
				 r->path, a);
			v->has_target = false;
			access_check_refuse(v, 403, "target not allowed");
		}
	}
}

/* Decide on one request; see access_check.h. */
void
access_check_request(const struct config *cfg, const struct config_route *r,
		     struct token_file *auth, struct token_file *targets,
		     const struct http_upgrade *req, struct access_verdict *v)
{

	memset(v, 0, sizeof(*v));
	if (!access_check_origin(cfg, r, req, v))
		return;
	/* A token file that could not be loaded (at a reload) fails closed:
	   never skip the check it stands for. */
	if ((r->auth_tokens != NULL && auth == NULL) ||
	    (r->kind == UPSTREAM_TOKENFILE && targets == NULL)) {
		log_error("route %s: its token file is not loaded: refused",
			  r->path);
		access_check_refuse(v, 503, "token file unavailable");
		return;
	}
	if (auth != NULL) {
		(void)token_file_refresh(auth);
		switch (access_check_token(r, req, auth)) {
		case TOKEN_NONE:
			access_check_token_refuse(
				r, v, 401, "missing token",
				"policy violation: missing token");
			return;
		case TOKEN_BAD:
			access_check_token_refuse(
				r, v, 403, "bad token",
				"policy violation: bad token");
			return;
		case TOKEN_GOOD:
			break;
		}
	}
	if (targets != NULL)
		access_check_target(r, req, targets, v);
}

/* The request target for a log line; see access_check.h. */
void
access_check_log_target(const struct config_route *r,
			const struct http_upgrade *req, char *out, size_t cap)
{
	struct http_str t = http_upgrade_target(req);
	size_t keep = SIZE_MAX;

	if (r != NULL && r->prefix && r->kind == UPSTREAM_TOKENFILE)
		keep = r->prefix_len;
	access_redact_target(t.p, t.len, keep, out, cap);
}
