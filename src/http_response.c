/*
 * http_response.c - PURE: what the gateway answers an upgrade request
 * with: the Sec-WebSocket-Accept key (RFC 6455 4.2.2), the 101, and the
 * short HTTP error responses, with their reason phrases.  The parser of
 * the request is http_upgrade.c; both are declared in http_upgrade.h.
 */
#include "http_upgrade.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

/* RFC 6455 1.3: the GUID appended to the client's key. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* RFC 9110 15: reason phrases for the statuses this gateway sends. */
const char *http_status_reason(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* RFC 6455 4.2.2 item 5.4: base64(SHA-1(key + GUID)). */
int http_accept_key(const char *key, size_t key_len,
		    char out[HTTP_ACCEPT_KEY_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	int ok;

	if (out == NULL || (key == NULL && key_len > 0))
		return -1;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, key, key_len) == 1 &&
	     EVP_DigestUpdate(ctx, WS_GUID, sizeof(WS_GUID) - 1) == 1 &&
	     EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 20;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	/* 20 bytes encode to 28 characters; EVP_EncodeBlock adds the NUL. */
	if (EVP_EncodeBlock((unsigned char *)out, md, 20) != HTTP_ACCEPT_KEY_LEN)
		return -1;
	return 0;
}

/* True if S holds a control character (would break the header block). */
static bool http_has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* The snprintf result N as a length, or -1 if it did not fit in CAP. */
static int http_fit(int n, size_t cap)
{
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return n;
}

/* RFC 6455 4.2.2 item 5: the 101 response.  Header injection via ACCEPT or
 * PROTOCOL (a control character in either) is refused with -1 too. */
int http_response_upgrade(char *buf, size_t cap, const char *accept,
			  const char *protocol)
{
	int n;

	if (buf == NULL || accept == NULL || http_has_ctl(accept) ||
	    (protocol != NULL && http_has_ctl(protocol)))
		return -1;
	if (protocol != NULL)
		n = snprintf(buf, cap,
			     "HTTP/1.1 101 Switching Protocols\r\n"
			     "Upgrade: websocket\r\n"
			     "Connection: Upgrade\r\n"
			     "Sec-WebSocket-Accept: %s\r\n"
			     "Sec-WebSocket-Protocol: %s\r\n"
			     "\r\n",
			     accept, protocol);
	else
		n = snprintf(buf, cap,
			     "HTTP/1.1 101 Switching Protocols\r\n"
			     "Upgrade: websocket\r\n"
			     "Connection: Upgrade\r\n"
			     "Sec-WebSocket-Accept: %s\r\n"
			     "\r\n",
			     accept);
	return http_fit(n, cap);
}

/* An error response with a text body; RFC 6455 4.4 adds the supported
 * version to a 426, RFC 9110 15.5.6 requires Allow on a 405. */
int http_response_error(char *buf, size_t cap, int status, const char *body)
{
	const char *extra = "";
	int n;

	if (buf == NULL || status < 100 || status > 999)
		return -1;
	if (body == NULL)
		body = http_status_reason(status);
	if (status == 426)
		extra = "Sec-WebSocket-Version: 13\r\n";
	else if (status == 405)
		extra = "Allow: GET\r\n";
	else if (status == 401) /* RFC 9110 15.5.2: a challenge is required */
		extra = "WWW-Authenticate: Bearer realm=\"wsgate\"\r\n";
	n = snprintf(buf, cap,
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: text/plain\r\n"
		     "Content-Length: %zu\r\n"
		     "Connection: close\r\n"
		     "%s"
		     "\r\n"
		     "%s\n",
		     status, http_status_reason(status), strlen(body) + 1,
		     extra, body);
	return http_fit(n, cap);
}
