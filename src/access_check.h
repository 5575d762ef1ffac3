/*
 * access_check.h - the access decisions a session makes once its request
 * head is parsed: who the client really is (trusted proxies), whether its
 * Origin and token let it in, and where a token-file route sends it.
 *
 * Glue between the pure rules (access.c, netaddr.c), the request
 * (http_upgrade.c) and the worker's token files.  No token ever leaves
 * this module except as the yes/no of a check.
 */
#ifndef WSGATE_ACCESS_CHECK_H
#define WSGATE_ACCESS_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct config;
struct config_route;
struct http_upgrade;
struct token_file;

/* The outcome for one request. */
struct access_verdict {
	int status;          /* 0: allowed; else the HTTP status to refuse with */
	bool close_1008;     /* refuse by upgrading, then Close 1008 */
	const char *reason;  /* constant text: response body, Close reason,
				access-log reason; never holds a secret */
	bool has_target;     /* a token-file route: connect here */
	char host[256];
	uint16_t port;
};

/*
 * If *CLIENT (the TCP peer, or the PROXY header's source) is one of the
 * trusted proxies, replace it with the client that the configured header
 * (X-Forwarded-For or Forwarded) names; otherwise leave it.  True if it
 * changed.
 */
bool access_check_client(const struct config *cfg,
			 const struct http_upgrade *req,
			 struct sockaddr_storage *client);

/*
 * Decide on REQ for route R of CFG from CLIENT: Origin, then the route's
 * token (AUTH, its auth_tokens file, NULL when it has none), then a
 * token-file target (TARGETS, NULL unless it is a token-file route) and
 * target_allow for a literal address.  A file the route names but that is
 * NULL (not loaded at a reload) refuses.  Fills V.
 */
void access_check_request(const struct config *cfg,
			  const struct config_route *r, struct token_file *auth,
			  struct token_file *targets,
			  const struct http_upgrade *req,
			  struct access_verdict *v);

/*
 * REQ's target for a log line: secrets in the query redacted, and the
 * path past a token-file prefix route's prefix too.
 */
void access_check_log_target(const struct config_route *r,
			     const struct http_upgrade *req, char *out,
			     size_t cap);

#endif
