/*
 * tls_peer.c - one TLS connection seen from outside OpenSSL: sending
 * close_notify, what went wrong (the error queue, a failed verification),
 * and the peer's certificate (subject, fingerprint).  tls.c builds the
 * contexts; both are declared in tls.h.
 */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <event2/bufferevent_ssl.h>

/* close_notify, best effort; see tls.h. */
bool
tls_close_notify(SSL *ssl)
{
	bool sent = false;

	if (ssl != NULL && SSL_is_init_finished(ssl) &&
	    !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
		sent = SSL_shutdown(ssl) >= 0;
	ERR_clear_error();
	return sent;
}

/* Append the reason of error CODE to BUF (at offset *O). */
static void
tls_append_reason(char *buf, size_t len, size_t *o, unsigned long code)
{
	const char *r = ERR_reason_error_string(code);
	char tmp[256];
	int n;

	if (r == NULL) {
		ERR_error_string_n(code, tmp, sizeof(tmp));
		r = tmp;
	}
	if (*o >= len)
		return;
	n = snprintf(buf + *o, len - *o, "%s%s", *o ? "; " : "", r);
	if (n > 0)
		*o += (size_t)n;
}

/* The errors of BEV, earliest first; see tls.h. */
const char *
tls_bev_errors(struct bufferevent *bev, char *buf, size_t len)
{
	unsigned long codes[8], code;
	size_t n = 0, o = 0;

	buf[0] = '\0';
	/* bufferevent_get_openssl_error pops the latest first; libevent also
	   stores the SSL_get_error() value, which names no library: skip it. */
	while (bev != NULL && (code = bufferevent_get_openssl_error(bev)) != 0)
		if (ERR_GET_LIB(code) != 0 &&
		    n < sizeof(codes) / sizeof(codes[0]))
			codes[n++] = code;
	while (n > 0)
		tls_append_reason(buf, len, &o, codes[--n]);
	while ((code = ERR_get_error()) != 0)
		tls_append_reason(buf, len, &o, code);
	return buf;
}

/* Why verification of the peer failed, if it did. */
bool
tls_verify_failed(const SSL *ssl, char *buf, size_t len)
{
	long v = SSL_get_verify_result(ssl);

	if (v == X509_V_OK)
		return false;
	snprintf(buf, len, "%s", X509_verify_cert_error_string(v));
	return true;
}

/* The verified peer's subject; see tls.h. */
const char *
tls_peer_subject(const SSL *ssl, char *buf, size_t len)
{
	X509 *x = SSL_get0_peer_certificate(ssl);
	BIO *b;
	int n = 0;

	if (x == NULL || SSL_get_verify_result(ssl) != X509_V_OK || len < 2)
		return NULL;
	b = BIO_new(BIO_s_mem());
	if (b != NULL &&
	    X509_NAME_print_ex(b, X509_get_subject_name(x), 0,
			       XN_FLAG_RFC2253) >= 0)
		n = BIO_read(b, buf, (int)len - 1);
	BIO_free(b);
	ERR_clear_error();
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	/* Keep the access log line one line of printable ASCII; quotes are
	   escaped by RFC 2253 ("\""). */
	for (int i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] >= 0x7f)
			buf[i] = '?';
	return buf;
}

/* SHA-256 of the verified peer certificate (DER). */
bool
tls_peer_fingerprint(const SSL *ssl, unsigned char out[32])
{
	X509 *x = SSL_get0_peer_certificate(ssl);
	unsigned int n = 0;

	if (x == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	if (X509_digest(x, EVP_sha256(), out, &n) != 1 || n != 32) {
		ERR_clear_error();
		return false;
	}
	return true;
}
