/*
 * config.c - the life of a struct config: load (a file or a string),
 * defaults, error messages, reference counting, free, and the lookups
 * other modules make in a loaded config.
 *
 * inih does the key = value splitting; the line reader (config_read.c),
 * the key table (config_keys.c), the value parsers (config_value.c,
 * config_list.c, config_upstream.c) and the whole-file checks
 * (config_check.c) do the rest.  config_int.h is their shared header.
 */
#include "config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "ws_frame.h"

/*
 * Set every default in one place: the table's (config_table.h), applied
 * through each key's own parser, to the whole file (ROUTE false) or to the
 * route just opened (ROUTE true).  A default that does not parse is our
 * bug; it fails the load like a bad value would.
 */
void
config_defaults(struct config_loader *ld, bool route)
{
	for (size_t i = 0; i < K_COUNT_ && !ld->failed; i++) {
		const struct config_key *k = &config_keys[i];
		if (k->def != NULL && (k->section == SEC_ROUTE) == route)
			config_set(ld, (enum config_key_id)i, k->def);
	}
}

/* Copy S into OUT for a message: printable ASCII, at most ~60 bytes. */
const char *
config_clean(const char *s, char *out, size_t outlen, bool quoted)
{
	size_t o = 0, i;

	if (quoted)
		out[o++] = '"';
	for (i = 0; s[i] != '\0' && o + 6 < outlen && i < 60; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	if (s[i] != '\0') {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	if (quoted)
		out[o++] = '"';
	out[o] = '\0';
	return out;
}

/* S quoted for a message. */
const char *
config_quote(const char *s, char *out, size_t outlen)
{
	return config_clean(s, out, outlen, true);
}

/* Record the first error as "NAME:LINE: KEY: message" (0/NULL: omitted). */
void
config_error(struct config_loader *ld, int line, const char *key,
	     const char *fmt, ...)
{
	char msg[512], q[80];
	va_list ap;
	int n;

	if (ld->failed)
		return;
	ld->failed = true;
	if (ld->err == NULL || ld->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = snprintf(ld->err, ld->errlen, "%s", ld->name);
	if (n >= 0 && line > 0 && (size_t)n < ld->errlen)
		n += snprintf(ld->err + n, ld->errlen - (size_t)n, ":%d", line);
	if (n >= 0 && key != NULL && (size_t)n < ld->errlen)
		n += snprintf(ld->err + n, ld->errlen - (size_t)n, ": %s",
			      config_clean(key, q, sizeof(q), false));
	if (n >= 0 && (size_t)n < ld->errlen)
		snprintf(ld->err + n, ld->errlen - (size_t)n, ": %s", msg);
}

/* Parse LEN bytes of TEXT named NAME. */
static struct config *
config_parse(const char *text, size_t len, const char *name, char *err,
	     size_t errlen)
{
	struct config_loader ld;
	struct config *c;
	int rc;

	memset(&ld, 0, sizeof(ld));
	ld.name = name;
	ld.err = err;
	ld.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->file = strdup(name)) == NULL) {
		free(c);
		config_error(&ld, 0, NULL, "out of memory");
		return NULL;
	}
	ld.c = c;
	c->refs = 1;
	/* Relative file names in the config are taken from its directory. */
	if (strrchr(name, '/') != NULL)
		ld.dir_len = (size_t)(strrchr(name, '/') - name) + 1;
	config_defaults(&ld, false);
	ld.p = text;
	ld.end = text + len;

	rc = ini_parse_stream(config_read_line_cb, &ld, config_key_cb, &ld);
	if (!ld.failed && rc == -2)
		config_error(&ld, 0, NULL, "out of memory");
	else if (!ld.failed && rc != 0)
		config_error(&ld, rc, NULL, "syntax error");
	if (!ld.failed)
		config_check(&ld);
	if (ld.failed) {
		config_free(c);
		return NULL;
	}
	return c;
}

/* Load the configuration file FILE. */
struct config *
config_load(const char *file, char *err, size_t errlen)
{
	struct config_loader ld = {.name = file ? file : "(null)", .err = err,
				   .errlen = errlen};
	struct config *c = NULL;
	char *buf;
	size_t n;
	FILE *f;

	if (file == NULL) {
		config_error(&ld, 0, NULL, "no file name");
		return NULL;
	}
	f = fopen(file, "r");
	if (f == NULL) {
		config_error(&ld, 0, NULL, "cannot open: %s", strerror(errno));
		return NULL;
	}
	buf = malloc(CONFIG_MAX_FILE + 1);
	if (buf == NULL) {
		fclose(f);
		config_error(&ld, 0, NULL, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, CONFIG_MAX_FILE + 1, f);
	if (ferror(f))
		config_error(&ld, 0, NULL, "cannot read: %s", strerror(errno));
	else if (n > CONFIG_MAX_FILE)
		config_error(&ld, 0, NULL, "file larger than %d bytes",
			     CONFIG_MAX_FILE);
	else
		c = config_parse(buf, n, file, err, errlen);
	fclose(f);
	free(buf);
	return c;
}

/* Load the configuration from TEXT, calling it NAME in messages. */
struct config *
config_load_string(const char *text, const char *name, char *err,
		   size_t errlen)
{
	if (name == NULL)
		name = "(string)";
	if (text == NULL) {
		struct config_loader ld = {.name = name, .err = err,
					   .errlen = errlen};
		config_error(&ld, 0, NULL, "no text");
		return NULL;
	}
	return config_parse(text, strlen(text), name, err, errlen);
}

/* Take a reference. */
struct config *
config_ref(struct config *c)
{
	if (c != NULL)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

/* Drop a reference; the last one frees. */
void
config_unref(struct config *c)
{
	if (c != NULL && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(c);
}

/* Free what CERT owns (not CERT itself). */
static void
config_free_tls_cert(struct config_tls_cert *cert)
{
	free(cert->name);
	for (size_t i = 0; i < cert->n_server_names; i++)
		free(cert->server_names[i]);
	free(cert->server_names);
	free(cert->certificate.value);
	free(cert->key.value);
}

/* True if some listen address has the tls flag. */
bool
config_has_tls_listener(const struct config *c)
{
	for (size_t i = 0; c != NULL && i < c->n_listens; i++)
		if (c->listens[i].tls)
			return true;
	return false;
}

/* Free the strings of O. */
static void
config_origins_free(struct config_origins *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->v[i]);
	free(o->v);
}

/* Free C and everything it owns. */
void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_listens; i++)
		free(c->listens[i].text);
	free(c->listens);
	free(c->admin.text);
	for (size_t i = 0; i < c->n_routes; i++) {
		struct config_route *r = &c->routes[i];
		free(r->path);
		free(r->upstream);
		free(r->host);
		free(r->unix_path);
		for (size_t j = 0; j < r->n_subprotocols; j++)
			free(r->subprotocols[j]);
		free(r->subprotocols);
		free(r->upstream_sni);
		free(r->client_subject.value);
		free(r->client_fingerprints);
		free(r->upstream_ca.value);
		free(r->upstream_certificate.value);
		free(r->upstream_key.value);
		config_origins_free(&r->origins);
		free(r->token_file);
		free(r->auth_tokens);
		free(r->auth_cookie);
		free(r->auth_protocol_prefix);
		free(r->target_allow);
	}
	free(c->routes);
	config_free_tls_cert(&c->tls.def);
	for (size_t i = 0; i < c->tls.n_sni; i++)
		config_free_tls_cert(&c->tls.sni[i]);
	free(c->tls.sni);
	free(c->tls.ciphers.value);
	free(c->tls.ciphersuites.value);
	free(c->tls.client_ca.value);
	free(c->resolv_conf.value);
	config_origins_free(&c->origins);
	free(c->trusted_proxies);
	free(c->file);
	free(c);
}

/* The route for PATH: exact match first, then the longest prefix route. */
const struct config_route *
config_find_route(const struct config *c, const char *path, size_t len)
{
	const struct config_route *best = NULL;

	if (c == NULL || path == NULL)
		return NULL;
	for (size_t i = 0; i < c->n_routes; i++) {
		const struct config_route *r = &c->routes[i];
		if (!r->prefix && strlen(r->path) == len &&
		    memcmp(r->path, path, len) == 0)
			return r;
	}
	for (size_t i = 0; i < c->n_routes; i++) {
		const struct config_route *r = &c->routes[i];
		if (r->prefix && len >= r->prefix_len &&
		    memcmp(r->path, path, r->prefix_len) == 0 &&
		    (best == NULL || r->prefix_len > best->prefix_len))
			best = r;
	}
	return best;
}

/* The origin list in force for R. */
const struct config_origins *
config_route_origins(const struct config *c, const struct config_route *r)
{
	return r->origins_set ? &r->origins : &c->origins;
}

/* True if R refuses requests without Origin. */
bool
config_route_origin_missing_deny(const struct config *c,
				 const struct config_route *r)
{
	return r->origin_missing_set ? r->origin_missing_deny
				     : c->origin_missing_deny;
}
