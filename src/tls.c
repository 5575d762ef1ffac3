/*
 * tls.c - build, check and reload the OpenSSL contexts; error draining.
 *
 * Server contexts: TLS 1.2 or 1.3 minimum, OpenSSL's default ciphers unless
 * overridden, server cipher preference, no compression, no renegotiation,
 * session tickets on (configurable), ALPN "http/1.1", SSL_MODE_RELEASE_BUFFERS
 * so an idle connection holds no record buffers.  The default context owns
 * the SNI table (OpenSSL ex_data with a free callback), so a context swapped
 * out by a reload lives on, with its table, as long as a connection made
 * from it.  Every SNI context gets the same settings as the default one:
 * after SSL_set_SSL_CTX, OpenSSL takes ALPN, the client CA list and the
 * verify store from the new context.
 *
 * Client contexts (tls:// routes): TLS 1.2 minimum, peer verification
 * against the system store or upstream_ca unless upstream_verify = off, an
 * optional client certificate.  SNI and the name to verify are set per SSL
 * (tls_upstream_ssl): OpenSSL checks neither by itself.
 */
#include "tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <event2/bufferevent_ssl.h>

#include "config.h"
#include "log.h"
#include "tls_name.h"

/* "http/1.1" as an ALPN protocol list (RFC 7301 3.1). */
static const unsigned char tls_alpn_http11[] = "\x08http/1.1";
/* Session id context: sessions resume only with this gateway. */
static const unsigned char tls_sid_ctx[] = "wsgate";

/* One [tls NAME] server name and the context it selects. */
struct tls_sni_entry {
	char *pattern;
	SSL_CTX *ctx;
};

/* The SNI table of a default server context (owned by it). */
struct tls_sni {
	size_t n;
	struct tls_sni_entry *e;
};

/* Every context built from one config; replaced whole on reload. */
struct tls_ctxs {
	SSL_CTX *server;   /* default server context; NULL: no [tls] */
	SSL_CTX **routes;  /* by route index; NULL for other routes */
	size_t n_routes;
};

struct tls_state {
	pthread_mutex_t lock; /* guards cur and cfg against a reload */
	struct tls_ctxs cur;
	struct config *cfg;   /* a reference */
};

/* Where build errors go: "FILE:LINE: key: message", first one wins. */
struct tls_err {
	const char *file;
	char *buf;
	size_t len;
	bool failed;
	bool expired_is_error; /* wsgate -t; otherwise a warning */
};

static pthread_once_t tls_index_once = PTHREAD_ONCE_INIT;
static int tls_sni_index = -1; /* ex_data slot of the SNI table */

/* Record the first error. */
static void __attribute__((format(printf, 4, 5)))
tls_fail(struct tls_err *e, int line, const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (e->failed)
		return;
	e->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (e->buf != NULL && e->len > 0)
		snprintf(e->buf, e->len, "%s:%d: %s: %s", e->file, line, key,
			 msg);
}

/* The first OpenSSL error reason of this thread, for a message; clears
   the queue. */
static const char *
tls_reason(char *buf, size_t len)
{
	unsigned long code = ERR_peek_error();
	const char *r;

	if (code == 0) {
		snprintf(buf, len, "unknown error");
	} else if ((r = ERR_reason_error_string(code)) != NULL) {
		snprintf(buf, len, "%s", r);
	} else {
		ERR_error_string_n(code, buf, len);
	}
	ERR_clear_error();
	return buf;
}

/* Never ask for a pass phrase (the terminal may be a daemon's). */
static int
tls_no_password_cb(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return 0;
}

/* Free an SNI table: the ex_data free callback of a default context. */
static void
tls_sni_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
		long argl, void *argp)
{
	struct tls_sni *sni = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (sni == NULL)
		return;
	for (size_t i = 0; i < sni->n; i++) {
		free(sni->e[i].pattern);
		SSL_CTX_free(sni->e[i].ctx);
	}
	free(sni->e);
	free(sni);
}

/* Allocate the ex_data slot, once per process. */
static void
tls_index_init(void)
{
	tls_sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
						 tls_sni_free_cb);
}

/* True if F names a file we can open for reading (else an error). */
static bool
tls_readable(struct tls_err *e, const struct config_value *f,
	     const char *key)
{
	FILE *fp = fopen(f->value, "r");

	if (fp == NULL) {
		tls_fail(e, f->line, key, "cannot read %s: %s", f->value,
			 strerror(errno));
		return false;
	}
	fclose(fp);
	return true;
}

/* An ASN1_TIME as text ("Jan  1 00:00:00 2020 GMT"). */
static const char *
tls_time_text(const ASN1_TIME *t, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n = 0;

	buf[0] = '\0';
	if (b != NULL && ASN1_TIME_print(b, t) == 1)
		n = BIO_read(b, buf, (int)len - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
	ERR_clear_error();
	return buf;
}

/* An expired certificate: an error for -t, a warning otherwise. */
static void
tls_check_expiry(struct tls_err *e, X509 *x, const struct config_value *f,
		 const char *key)
{
	const ASN1_TIME *na = X509_get0_notAfter(x);
	char when[64];

	if (na == NULL || X509_cmp_current_time(na) >= 0)
		return;
	tls_time_text(na, when, sizeof(when));
	if (e->expired_is_error)
		tls_fail(e, f->line, key, "the certificate in %s expired on %s",
			 f->value, when);
	else
		log_warn("%s:%d: %s: the certificate in %s expired on %s",
			 e->file, f->line, key, f->value, when);
}

/* Load a private key from F without ever prompting; NULL on failure. */
static EVP_PKEY *
tls_read_key(struct tls_err *e, const struct config_value *f,
	     const char *key)
{
	EVP_PKEY *pk = NULL;
	BIO *b = BIO_new_file(f->value, "r");
	char why[256];

	if (b != NULL)
		pk = PEM_read_bio_PrivateKey(b, NULL, tls_no_password_cb, NULL);
	BIO_free(b);
	if (pk == NULL)
		tls_fail(e, f->line, key,
			 "no usable private key in %s (PEM, not encrypted): %s",
			 f->value, tls_reason(why, sizeof(why)));
	return pk;
}

/* Install certificate chain CERT and key KEY (config keys CK and KK). */
static int
tls_use_pair(struct tls_err *e, SSL_CTX *ctx, const struct config_value *cert,
	     const char *ck, const struct config_value *key, const char *kk)
{
	char why[256];
	EVP_PKEY *pk;
	X509 *x;

	if (!tls_readable(e, cert, ck) || !tls_readable(e, key, kk))
		return -1;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert->value) != 1) {
		tls_fail(e, cert->line, ck,
			 "cannot load a PEM certificate chain from %s: %s",
			 cert->value, tls_reason(why, sizeof(why)));
		return -1;
	}
	x = SSL_CTX_get0_certificate(ctx);
	if ((pk = tls_read_key(e, key, kk)) == NULL)
		return -1;
	if (x == NULL || X509_check_private_key(x, pk) != 1) {
		ERR_clear_error();
		EVP_PKEY_free(pk);
		tls_fail(e, key->line, kk,
			 "the key in %s does not match the certificate in %s "
			 "(line %d)",
			 key->value, cert->value, cert->line);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey(ctx, pk) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		EVP_PKEY_free(pk);
		tls_fail(e, key->line, kk, "cannot use the key in %s: %s",
			 key->value, tls_reason(why, sizeof(why)));
		return -1;
	}
	EVP_PKEY_free(pk);
	tls_check_expiry(e, x, cert, ck);
	return e->failed ? -1 : 0;
}

/* ALPN (RFC 7301): pick http/1.1 if offered; otherwise go on without. */
static int
tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
	    const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char *sel = NULL;
	unsigned char sel_len = 0;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, &sel_len, tls_alpn_http11,
				  sizeof(tls_alpn_http11) - 1, in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	*outlen = sel_len;
	return SSL_TLSEXT_ERR_OK;
}

/* SNI (RFC 6066 3): switch to the context whose server_names match;
   exact names first, then wildcards; else keep the default. */
static int
tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
	const struct tls_sni *sni = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	size_t len;

	(void)alert;
	if (name == NULL || sni == NULL)
		return SSL_TLSEXT_ERR_OK;
	len = strlen(name);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < sni->n; i++) {
			const char *p = sni->e[i].pattern;
			if (tls_name_is_wildcard(p) != (pass == 1))
				continue;
			if (tls_name_match(p, name, len)) {
				SSL_set_SSL_CTX(ssl, sni->e[i].ctx);
				return SSL_TLSEXT_ERR_OK;
			}
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

/* OpenSSL's read buffer for client connections (read-ahead). */
#define TLS_READ_BUFFER (64 * 1024)

/* A server context with every setting of [tls] but no certificate. */
static SSL_CTX *
tls_server_ctx_new(struct tls_err *e, const struct config_tls *t)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char why[256];
	uint64_t opts = SSL_OP_CIPHER_SERVER_PREFERENCE |
			SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
	int verify = SSL_VERIFY_NONE;

	if (ctx == NULL) {
		tls_fail(e, t->line, "[tls]", "cannot create a TLS context: %s",
			 tls_reason(why, sizeof(why)));
		return NULL;
	}
	if (!t->session_tickets)
		opts |= SSL_OP_NO_TICKET;
	SSL_CTX_set_options(ctx, opts);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Read-ahead into a 64 KiB buffer: one read(2) brings in about four
	   full records instead of two read(2)s per record (header, then
	   body) -- 10-20% of the relay's CPU per MB of wss upload.  Records
	   OpenSSL holds this way do not make the socket readable:
	   session.c wakes its own read for them (session_client_tls_kick).
	   The buffer is still given back when empty (RELEASE_BUFFERS). */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, TLS_READ_BUFFER);
	SSL_CTX_set_min_proto_version(ctx, t->min_version == CONFIG_TLS_1_3
						   ? TLS1_3_VERSION
						   : TLS1_2_VERSION);
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_password_cb);
	SSL_CTX_set_session_id_context(ctx, tls_sid_ctx,
				       sizeof(tls_sid_ctx) - 1);
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, NULL);
	if (t->ciphers.value != NULL &&
	    SSL_CTX_set_cipher_list(ctx, t->ciphers.value) != 1) {
		tls_fail(e, t->ciphers.line, "ciphers",
			 "no usable cipher in \"%s\": %s", t->ciphers.value,
			 tls_reason(why, sizeof(why)));
		goto fail;
	}
	if (t->ciphersuites.value != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, t->ciphersuites.value) != 1) {
		tls_fail(e, t->ciphersuites.line, "ciphersuites",
			 "no usable TLS 1.3 cipher suite in \"%s\": %s",
			 t->ciphersuites.value, tls_reason(why, sizeof(why)));
		goto fail;
	}
	if (t->client_verify != CLIENT_VERIFY_OFF) {
		STACK_OF(X509_NAME) *names;

		if (!tls_readable(e, &t->client_ca, "client_ca"))
			goto fail;
		if (SSL_CTX_load_verify_locations(ctx, t->client_ca.value,
						  NULL) != 1 ||
		    (names = SSL_load_client_CA_file(t->client_ca.value)) ==
			    NULL) {
			tls_fail(e, t->client_ca.line, "client_ca",
				 "no PEM CA certificate in %s: %s",
				 t->client_ca.value,
				 tls_reason(why, sizeof(why)));
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		verify = SSL_VERIFY_PEER;
		if (t->client_verify == CLIENT_VERIFY_REQUIRED)
			verify |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	}
	SSL_CTX_set_verify(ctx, verify, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* The default server context with its SNI table, or NULL (E says why). */
static SSL_CTX *
tls_build_server(struct tls_err *e, const struct config_tls *t)
{
	struct tls_sni *sni;
	SSL_CTX *def = tls_server_ctx_new(e, t);

	if (def == NULL)
		return NULL;
	if (tls_use_pair(e, def, &t->def.certificate, "certificate",
			 &t->def.key, "key") < 0)
		goto fail;
	sni = calloc(1, sizeof(*sni));
	if (sni == NULL || SSL_CTX_set_ex_data(def, tls_sni_index, sni) != 1) {
		free(sni);
		tls_fail(e, t->line, "[tls]", "out of memory");
		goto fail;
	}
	/* From here on the table is freed with DEF. */
	for (size_t i = 0; i < t->n_sni; i++) {
		const struct config_tls_cert *c = &t->sni[i];
		SSL_CTX *ctx = tls_server_ctx_new(e, t);
		struct tls_sni_entry *ne;

		if (ctx == NULL)
			goto fail;
		if (tls_use_pair(e, ctx, &c->certificate, "certificate",
				 &c->key, "key") < 0) {
			SSL_CTX_free(ctx);
			goto fail;
		}
		ne = realloc(sni->e,
			     (sni->n + c->n_server_names) * sizeof(*ne));
		if (ne == NULL) {
			SSL_CTX_free(ctx);
			tls_fail(e, c->line, "[tls]", "out of memory");
			goto fail;
		}
		sni->e = ne;
		for (size_t j = 0; j < c->n_server_names; j++) {
			struct tls_sni_entry *en = &sni->e[sni->n];
			en->pattern = strdup(c->server_names[j]);
			if (en->pattern == NULL) {
				SSL_CTX_free(ctx);
				tls_fail(e, c->line, "[tls]", "out of memory");
				goto fail;
			}
			SSL_CTX_up_ref(ctx);
			en->ctx = ctx;
			sni->n++;
		}
		SSL_CTX_free(ctx); /* the table holds a reference per name */
	}
	SSL_CTX_set_tlsext_servername_callback(def, tls_sni_cb);
	SSL_CTX_set_tlsext_servername_arg(def, sni);
	return def;
fail:
	SSL_CTX_free(def);
	return NULL;
}

/* The client context of tls:// route R, or NULL (E says why). */
static SSL_CTX *
tls_build_upstream(struct tls_err *e, const struct config_route *r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char why[256];

	if (ctx == NULL) {
		tls_fail(e, r->line, "upstream",
			 "cannot create a TLS context: %s",
			 tls_reason(why, sizeof(why)));
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_password_cb);
	if (r->upstream_verify) {
		if (r->upstream_ca.value != NULL) {
			if (!tls_readable(e, &r->upstream_ca, "upstream_ca"))
				goto fail;
			if (SSL_CTX_load_verify_locations(
				    ctx, r->upstream_ca.value, NULL) != 1) {
				tls_fail(e, r->upstream_ca.line, "upstream_ca",
					 "no PEM CA certificate in %s: %s",
					 r->upstream_ca.value,
					 tls_reason(why, sizeof(why)));
				goto fail;
			}
		} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			tls_fail(e, r->line, "upstream",
				 "cannot load the system CA store: %s",
				 tls_reason(why, sizeof(why)));
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (r->upstream_certificate.value != NULL &&
	    tls_use_pair(e, ctx, &r->upstream_certificate,
			 "upstream_certificate", &r->upstream_key,
			 "upstream_key") < 0)
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Release the contexts of C (live SSLs keep theirs). */
static void
tls_ctxs_clear(struct tls_ctxs *c)
{
	SSL_CTX_free(c->server);
	for (size_t i = 0; i < c->n_routes; i++)
		SSL_CTX_free(c->routes[i]);
	free(c->routes);
	memset(c, 0, sizeof(*c));
}

/* Number of contexts in C: the server's and one per tls:// route. */
static size_t
tls_ctxs_count(const struct tls_ctxs *c)
{
	size_t n = c->server != NULL;

	for (size_t i = 0; i < c->n_routes; i++)
		n += c->routes[i] != NULL;
	return n;
}

/* Build every context CFG names into OUT; 0 or -1 (E says why). */
static int
tls_build(struct tls_err *e, const struct config *cfg, struct tls_ctxs *out)
{
	memset(out, 0, sizeof(*out));
	pthread_once(&tls_index_once, tls_index_init);
	if (tls_sni_index < 0) {
		tls_fail(e, cfg->tls.line, "[tls]", "cannot set up OpenSSL");
		return -1;
	}
	ERR_clear_error();
	if (cfg->tls.def.certificate.value != NULL) {
		out->server = tls_build_server(e, &cfg->tls);
		if (out->server == NULL)
			return -1;
	}
	out->routes = calloc(cfg->n_routes ? cfg->n_routes : 1,
			     sizeof(*out->routes));
	if (out->routes == NULL) {
		tls_fail(e, 0, "[tls]", "out of memory");
		tls_ctxs_clear(out);
		return -1;
	}
	out->n_routes = cfg->n_routes;
	for (size_t i = 0; i < cfg->n_routes; i++) {
		if (!cfg->routes[i].tls)
			continue;
		out->routes[i] = tls_build_upstream(e, &cfg->routes[i]);
		if (out->routes[i] == NULL) {
			tls_ctxs_clear(out);
			return -1;
		}
	}
	return 0;
}

/* Build the state; see tls.h. */
struct tls_state *
tls_new(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_err e = {.file = cfg->file, .buf = err, .len = errlen};
	struct tls_state *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		snprintf(err, errlen, "%s: out of memory", cfg->file);
		return NULL;
	}
	if (pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t);
		snprintf(err, errlen, "%s: cannot create a mutex", cfg->file);
		return NULL;
	}
	if (tls_build(&e, cfg, &t->cur) < 0) {
		pthread_mutex_destroy(&t->lock);
		free(t);
		return NULL;
	}
	t->cfg = config_ref((struct config *)cfg); /* the refcount is not
						      part of its value */
	return t;
}

/* Rebuild and swap; see tls.h. */
int
tls_reload(struct tls_state *t, const struct config *cfg)
{
	char err[1024];
	struct tls_err e = {.file = cfg->file, .buf = err, .len = sizeof(err)};
	struct tls_ctxs fresh, old;
	struct config *old_cfg;
	size_t built;

	if (tls_build(&e, cfg, &fresh) < 0) {
		log_error("TLS reload failed, keeping the current certificates "
			  "and keys: %s",
			  err);
		return -1;
	}
	built = tls_ctxs_count(&fresh);
	pthread_mutex_lock(&t->lock);
	old = t->cur;
	old_cfg = t->cfg;
	t->cur = fresh;
	t->cfg = config_ref((struct config *)cfg);
	pthread_mutex_unlock(&t->lock);
	tls_ctxs_clear(&old);
	config_unref(old_cfg);
	/* Without [tls] and tls:// routes nothing was read: say nothing. */
	if (built > 0)
		log_info("TLS certificates and keys reloaded (%zu context%s)",
			 built, built == 1 ? "" : "s");
	return 0;
}

/* wsgate -t; see tls.h. */
int
tls_check(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_err e = {.file = cfg->file, .buf = err, .len = errlen,
			    .expired_is_error = true};
	struct tls_ctxs c;

	if (tls_build(&e, cfg, &c) < 0)
		return -1;
	tls_ctxs_clear(&c);
	return 0;
}

/* Free the state. */
void
tls_free(struct tls_state *t)
{
	if (t == NULL)
		return;
	tls_ctxs_clear(&t->cur);
	config_unref(t->cfg);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* A new SSL from CTX, dropping the reference taken under the lock. */
static SSL *
tls_ssl_from(SSL_CTX *ctx)
{
	SSL *ssl;

	if (ctx == NULL)
		return NULL;
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the reference taken under the lock */
	if (ssl == NULL) {
		char why[256];
		log_error("cannot create a TLS connection: %s",
			  tls_reason(why, sizeof(why)));
	}
	return ssl;
}

/* A server-side SSL; see tls.h. */
SSL *
tls_server_ssl(struct tls_state *t)
{
	SSL_CTX *ctx;

	if (t == NULL)
		return NULL;
	pthread_mutex_lock(&t->lock);
	ctx = t->cur.server;
	if (ctx != NULL)
		SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&t->lock);
	if (ctx == NULL)
		log_error("a tls listener has no certificate");
	return tls_ssl_from(ctx);
}

/* True if S is an IPv4 or IPv6 literal. */
static bool
tls_is_ip_literal(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* A client SSL toward ROUTE; see tls.h. */
SSL *
tls_upstream_ssl(struct tls_state *t, const struct config_route *route)
{
	SSL_CTX *ctx = NULL;
	const char *sni;
	SSL *ssl;

	if (t == NULL)
		return NULL;
	pthread_mutex_lock(&t->lock);
	if (t->cfg != NULL) {
		/* By index into the config the contexts were built from; a
		   route of another config is found by its path. */
		for (size_t i = 0; i < t->cur.n_routes; i++) {
			const struct config_route *r = &t->cfg->routes[i];
			if (r == route ||
			    (strcmp(r->path, route->path) == 0 && r->tls)) {
				ctx = t->cur.routes[i];
				break;
			}
		}
	}
	if (ctx != NULL)
		SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&t->lock);
	if (ctx == NULL) {
		log_error("route %s has no TLS context", route->path);
		return NULL;
	}
	ssl = tls_ssl_from(ctx);
	if (ssl == NULL)
		return NULL;
	/* RFC 6066 3: no SNI for IP literals. */
	sni = route->upstream_sni;
	if (sni == NULL && !tls_is_ip_literal(route->host))
		sni = route->host;
	if (sni != NULL && SSL_set_tlsext_host_name(ssl, sni) != 1)
		goto fail;
	if (route->upstream_verify) {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (sni != NULL) {
			if (SSL_set1_host(ssl, sni) != 1)
				goto fail;
		} else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
							 route->host) != 1) {
			goto fail;
		}
	}
	return ssl;
fail:
	{
		char why[256];
		log_error("route %s: cannot set the TLS server name: %s",
			  route->path, tls_reason(why, sizeof(why)));
	}
	SSL_free(ssl);
	return NULL;
}
