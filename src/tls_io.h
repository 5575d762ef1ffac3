/*
 * tls_io.h - reading TLS records behind an OpenSSL bufferevent's own
 * one-record-per-wakeup read (libevent 2.1 bufferevent_openssl.c), on the
 * public API: the bufferevent's input, its SSL and SSL_read.
 */
#ifndef WSGATE_TLS_IO_H
#define WSGATE_TLS_IO_H

#include <stdbool.h>

#include <event2/bufferevent.h>

/*
 * Go on reading records of BEV (an OpenSSL bufferevent over a socket) into
 * its input while OpenSSL has them, up to BEV's max_single_read in all.
 * Returns true when it stopped at that limit: records may be waiting (pass
 * it as MORE to the next call for the same bufferevent).
 */
bool tls_io_read_records(struct bufferevent *bev, bool more);

#endif
