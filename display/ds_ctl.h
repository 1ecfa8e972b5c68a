/*
 * ds_ctl.h - deskpool-display's control socket: a unix stream socket on
 * which local clients (the broker; until it exists, an admin or a test)
 * send requests and receive events. Messages are JSON lines shaped as in
 * agent/PROTOCOL.md (common/dp_msg.h does the framing and parsing); the
 * ops and events are listed in display/README.md. This module owns the
 * socket and its connections; what a request means is up to the
 * request callback (the daemon).
 *
 * Limits: DS_CTL_MAX_CONNS connections at once (more are closed at once);
 * each queues at most DS_CTL_OUTQ_MAX bytes for its peer: a subscriber
 * that stops reading is disconnected rather than slowing the daemon.
 * A line that is not a message gets an error reply (bad-json,
 * bad-request, line-too-long) and the connection stays up.
 */
#ifndef DS_CTL_H
#define DS_CTL_H

#include <poll.h>

#include "dp_msg.h"

#define DS_CTL_MAX_CONNS 32
#define DS_CTL_OUTQ_MAX  (1024 * 1024)

struct ds_ctl;
struct ds_ctl_conn;

/* Called for each well-formed request; the callback must answer it with
 * ds_ctl_reply_ok() or ds_ctl_reply_error(). m is freed afterwards. */
typedef void (*ds_ctl_request_fn)(void *arg, struct ds_ctl_conn *c,
                                  const struct dp_msg *m);

/*
 * Listens on path (a stale socket there is replaced; mode 0600), and
 * greets each connection with hello_event/hello_data. Returns 0 or a
 * negative errno with the reason on stderr.
 */
int ds_ctl_open(struct ds_ctl **out, const char *path, ds_ctl_request_fn fn,
                void *arg, const char *hello_event, json_t *hello_data);

/* Closes every connection, removes the socket file. NULL is fine. */
void ds_ctl_close(struct ds_ctl *s);

/* Poll integration: at most DS_CTL_MAX_CONNS + 1 entries. ds_ctl_fill()
 * writes them into p and returns how many; after poll(), hand the same
 * entries to ds_ctl_dispatch(). */
int ds_ctl_fill(struct ds_ctl *s, struct pollfd *p, int max);
void ds_ctl_dispatch(struct ds_ctl *s, const struct pollfd *p, int n);

/* Replies to request id on c (result/json consumed). */
void ds_ctl_reply_ok(struct ds_ctl_conn *c, json_int_t id, json_t *result);
void ds_ctl_reply_error(struct ds_ctl_conn *c, json_int_t id, const char *code,
                        const char *message);

/* From now on c gets ds_ctl_event()s. */
void ds_ctl_subscribe(struct ds_ctl_conn *c);

/* Sends event name with data (consumed) to every subscriber. */
void ds_ctl_event(struct ds_ctl *s, const char *name, json_t *data);

#endif
