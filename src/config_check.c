/*
 * config_check.c - checks that need the whole file: required keys, keys
 * that go together, cross-key limits, files that must be readable now.
 */
#include "config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* A certificate and its key go together: both set or neither. */
static void
config_check_pair(struct config_loader *ld, const struct config_value *cert,
		  const char *cert_key, const struct config_value *key,
		  const char *key_key)
{
	if (cert->value != NULL && key->value == NULL)
		config_error(ld, cert->line, cert_key, "needs %s too", key_key);
	else if (key->value != NULL && cert->value == NULL)
		config_error(ld, key->line, key_key, "needs %s too", cert_key);
}

/* resolv_conf: a regular file we can read, as evdns will at the start. */
static void
config_check_resolv_conf(struct config_loader *ld)
{
	const struct config_value *v = &ld->c->resolv_conf;
	struct stat st;
	char q[80];
	FILE *f;

	if (v->value == NULL)
		return;
	f = fopen(v->value, "r");
	if (f == NULL) {
		config_error(ld, v->line, "resolv_conf", "cannot read %s: %s",
			     config_quote(v->value, q, sizeof(q)),
			     strerror(errno));
		return;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode))
		config_error(ld, v->line, "resolv_conf",
			     "%s is not a regular file",
			     config_quote(v->value, q, sizeof(q)));
	fclose(f);
}

/* [tls], [tls NAME] and tls listeners. */
static void
config_check_tls(struct config_loader *ld)
{
	struct config *c = ld->c;
	struct config_tls *t = &c->tls;
	char q[80], sec[128];

	config_check_pair(ld, &t->def.certificate, "certificate", &t->def.key,
			  "key");
	for (size_t i = 0; i < t->n_sni && !ld->failed; i++) {
		const struct config_tls_cert *cert = &t->sni[i];
		snprintf(sec, sizeof(sec), "[tls %s]",
			 config_clean(cert->name, q, sizeof(q), false));
		if (cert->n_server_names == 0)
			config_error(ld, cert->line, sec,
				     "no server_names (the names this "
				     "certificate is chosen for)");
		else if (cert->certificate.value == NULL ||
			 cert->key.value == NULL)
			config_error(ld, cert->line, sec,
				     "needs certificate and key");
		else if (t->def.certificate.value == NULL)
			config_error(ld, cert->line, sec,
				     "needs a default certificate: set "
				     "certificate and key in [tls]");
	}
	if (ld->failed)
		return;
	if (t->client_verify != CLIENT_VERIFY_OFF && t->client_ca.value == NULL)
		config_error(ld, t->client_verify_line, "client_verify",
			     "needs client_ca (the CA certificates that sign "
			     "client certificates)");
	else if (t->client_verify == CLIENT_VERIFY_OFF &&
		 t->client_ca.value != NULL)
		config_error(ld, t->client_ca.line, "client_ca",
			     "has no effect with client_verify = off (set "
			     "client_verify = optional or required)");
	for (size_t i = 0; i < c->n_listens && !ld->failed; i++) {
		if (c->listens[i].tls && t->def.certificate.value == NULL)
			config_error(ld, c->listens[i].line, "listen",
				     "a tls listener needs a certificate: add "
				     "a [tls] section with certificate and "
				     "key");
	}
}

/* The TLS keys of a route need a tls:// upstream. */
static void
config_check_route_tls(struct config_loader *ld, const struct config_route *r)
{
	if (r->tls_key != NULL && !r->tls) {
		config_error(ld, r->tls_key_line, r->tls_key,
			     "only applies to tls:// upstreams");
		return;
	}
	config_check_pair(ld, &r->upstream_certificate, "upstream_certificate",
			  &r->upstream_key, "upstream_key");
}

/* Access-control checks of route R. */
static void
config_check_access(struct config_loader *ld, struct config_route *r,
		    const char *sec)
{
	bool dynamic = r->kind == UPSTREAM_TOKENFILE;

	if (dynamic && r->n_target_allow == 0) {
		config_error(ld, r->line, sec,
			     "a tokenfile: upstream needs target_allow (the "
			     "networks and ports tokens may lead to, like "
			     "127.0.0.0/8:5900-5999)");
		return;
	}
	if (r->kind == UPSTREAM_ECHO && r->send_proxy != SEND_PROXY_OFF) {
		config_error(ld, r->line, sec,
			     "send_proxy needs an upstream (not echo)");
		return;
	}
	if (r->auth_tokens == NULL && r->auth_key_line != 0) {
		config_error(ld, r->auth_key_line, r->auth_key_name,
			     "set, but the route has no auth_tokens");
		return;
	}
	if (r->auth_tokens != NULL && (r->auth_from & AUTH_FROM_PROTOCOL)) {
		size_t pl = strlen(r->auth_protocol_prefix);
		for (size_t i = 0; i < r->n_subprotocols; i++) {
			if (strncmp(r->subprotocols[i], r->auth_protocol_prefix,
				    pl) == 0) {
				config_error(ld, r->line, sec,
					     "subprotocol \"%s\" starts with "
					     "auth_protocol_prefix \"%s\"",
					     r->subprotocols[i],
					     r->auth_protocol_prefix);
				return;
			}
		}
	}
}

/* Checks that need the whole file: required keys, cross-key limits. */
void
config_check(struct config_loader *ld)
{
	struct config *c = ld->c;
	struct config_limits *lim = &c->limits;
	char q[80], sec[128];

	for (size_t i = 0; i < c->n_routes && !ld->failed; i++) {
		struct config_route *r = &c->routes[i];
		snprintf(sec, sizeof(sec), "[route %s]",
			 config_clean(r->path, q, sizeof(q), false));
		if (r->upstream == NULL) {
			config_error(ld, r->line, sec,
				     "no upstream (add upstream = host:port, "
				     "tls://host:port, unix:/path, echo or "
				     "tokenfile:/path)");
			break;
		}
		config_check_route_tls(ld, r);
		if (!ld->failed)
			config_check_access(ld, r, sec);
		if (!ld->failed &&
		    (r->client_subject.value != NULL ||
		     r->n_client_fingerprints > 0) &&
		    c->tls.client_verify == CLIENT_VERIFY_OFF)
			config_error(ld,
				     r->client_subject.value != NULL
					     ? r->client_subject.line
					     : r->client_fingerprint_line,
				     r->client_subject.value != NULL
					     ? "client_subject"
					     : "client_fingerprint",
				     "needs client certificates: set "
				     "client_verify = optional or required in "
				     "[tls]");
	}
	if (!ld->failed)
		config_check_tls(ld);
	if (!ld->failed)
		config_check_resolv_conf(ld);
	if (ld->failed)
		return;
	if (lim->max_request_line > lim->max_header_bytes) {
		if (ld->seen[K_MAX_REQUEST_LINE] != 0)
			config_error(ld, ld->seen[K_MAX_REQUEST_LINE],
				     "max_request_line",
				     "must not exceed max_header_bytes (%zu)",
				     lim->max_header_bytes);
		else
			config_error(ld, ld->seen[K_MAX_HEADER_BYTES],
				     "max_header_bytes",
				     "must be at least max_request_line (%zu)",
				     lim->max_request_line);
		return;
	}
	if (c->n_listens == 0) {
		config_error(ld, 0, NULL,
			     "no listen address (set listen in [gateway])");
		return;
	}
	if (c->n_routes == 0)
		config_error(ld, 0, NULL,
			     "no route (add a [route /path] section)");
}
