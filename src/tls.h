/*
 * tls.h - OpenSSL contexts built from the config: the server side (the
 * default certificate of [tls], SNI certificates of [tls NAME], client
 * certificate verification) and one client context per tls:// route;
 * their reload, and the helpers sessions use around bufferevent_openssl.
 *
 * The state is owned by main and reached through struct server; nothing
 * here is a global except OpenSSL's ex_data index, allocated once.  Every
 * SSL holds a reference on its SSL_CTX, so a reload swaps the contexts for
 * new connections while live ones keep theirs.  The contexts are shared
 * read-only, which OpenSSL allows across threads; the swap itself is
 * guarded by a mutex.
 */
#ifndef WSGATE_TLS_H
#define WSGATE_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct bufferevent;
struct config;
struct config_route;
struct tls_state;

/*
 * Build the contexts CFG asks for (a reference on CFG is held until the
 * next reload or tls_free).  An expired certificate is logged as a
 * warning.  NULL on failure, with "FILE:LINE: key: message" in ERR.
 */
struct tls_state *tls_new(const struct config *cfg, char *err, size_t errlen);

/*
 * Rebuild every context from CFG (the certificate and key files are read
 * again) and swap them in for new connections; on failure keep the current
 * ones and log why.  Log the reload only when CFG has something TLS
 * ([tls] or a tls:// route).  0 or -1.
 */
int tls_reload(struct tls_state *t, const struct config *cfg);

/*
 * For wsgate -t: every file readable, every certificate matching its key,
 * none expired.  0, or -1 with "FILE:LINE: key: message" in ERR.
 */
int tls_check(const struct config *cfg, char *err, size_t errlen);

/* Free T; live SSL objects keep their contexts.  NULL is fine. */
void tls_free(struct tls_state *t);

/* A new server-side SSL from the current contexts, or NULL (logged). */
SSL *tls_server_ssl(struct tls_state *t);

/*
 * A new client SSL toward ROUTE's tls:// upstream, with SNI and the name
 * to verify set, or NULL (logged).
 */
SSL *tls_upstream_ssl(struct tls_state *t, const struct config_route *route);

/*
 * Send close_notify if the handshake finished and none was sent yet; never
 * blocks.  Only for connections without a fatal error.  True if it was
 * written out (not left pending in OpenSSL).
 */
bool tls_close_notify(SSL *ssl);

/*
 * Pop the OpenSSL errors of BEV (and the thread's queue) into BUF as
 * "reason; reason", earliest first; "" if there were none.  Returns BUF.
 */
const char *tls_bev_errors(struct bufferevent *bev, char *buf, size_t len);

/*
 * If certificate verification of the peer of SSL failed, describe why in
 * BUF and return true.
 */
bool tls_verify_failed(const SSL *ssl, char *buf, size_t len);

/* The verified peer certificate's subject (RFC 2253) in BUF, or NULL when
   the peer sent none or it was not verified. */
const char *tls_peer_subject(const SSL *ssl, char *buf, size_t len);

/* The SHA-256 fingerprint of the verified peer certificate of SSL into
   OUT; false when there is none (or it was not verified). */
bool tls_peer_fingerprint(const SSL *ssl, unsigned char out[32]);

#endif
