/*
 * healthcheck.h - `wsgate --healthcheck URL`: one plain-HTTP GET, for
 * container health checks without curl in the image.
 */
#ifndef WSGATE_HEALTHCHECK_H
#define WSGATE_HEALTHCHECK_H

/*
 * GET URL ("http://HOST:PORT/PATH"; HOST an IPv4 literal, [IPv6] or
 * localhost) with a TIMEOUT_MS budget for the whole exchange.  Returns 0
 * when the answer is 200, 1 for any other answer or a network failure, 2
 * for a URL it cannot use; a line saying why goes to stderr.
 */
int healthcheck_run(const char *url, int timeout_ms);

#endif
