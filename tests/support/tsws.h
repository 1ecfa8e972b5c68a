/*
 * tsws.h - a websocket client for tests (RFC 6455 over TLS, binary
 * frames), what noVNC is to the broker's gateway.
 *
 * Check assertions inside only where noted; functions return negative
 * errnos otherwise so tests can assert refusals.
 */
#ifndef TSWS_H
#define TSWS_H

#include <stddef.h>

struct tsws;

/*
 * Connects to https://127.0.0.1:port and asks to upgrade path, with extra
 * header lines ("Cookie: ...\r\n") and a subprotocol (NULL: none).
 * Returns the HTTP status (101 when upgraded; *out is then the client) or
 * a negative errno. Certificates are not verified (loopback tests).
 */
int tsws_open(struct tsws **out, int port, const char *path,
              const char *headers, const char *subprotocol);
/* One masked binary frame. 0 or -EPIPE. */
int tsws_send(struct tsws *w, const void *data, size_t len);
/* Exactly len payload bytes (across frames) within timeout_ms: 0,
 * -ETIMEDOUT, or -ECONNRESET when the server closed first. */
int tsws_read(struct tsws *w, void *buf, size_t len, int timeout_ms);
/* Waits up to timeout_ms for the server to close (a close frame or
 * EOF), dropping data. 1 if it did, 0 if not. */
int tsws_wait_closed(struct tsws *w, int timeout_ms);
void tsws_close(struct tsws *w);

#endif
