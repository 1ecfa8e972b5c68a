/*
 * ds_chan.h - the channel between deskpool-display's daemon and one
 * session process.
 *
 * A SOCK_SEQPACKET socketpair: every message is one JSON object (at most
 * DS_CHAN_MSG_MAX bytes), delivered whole or not at all, and may carry one
 * descriptor (SCM_RIGHTS) - the daemon hands a session process its
 * connection to the desktop's vnc.sock that way. The messages themselves
 * are listed in display/README.md ("Process model") and ds_session.c /
 * ds_daemon.c; this module only moves them.
 *
 * Errors: 0 or a negative errno; nothing here aborts on what the other
 * end sends (a malformed message is -EPROTO, a descriptor that came with
 * it is closed).
 */
#ifndef DS_CHAN_H
#define DS_CHAN_H

#include <jansson.h>

#define DS_CHAN_MSG_MAX 65536

/* Creates the pair (close-on-exec set on both ends). */
int ds_chan_pair(int fds[2]);

/* Sends msg (consumed, even on error) and, if pass_fd >= 0, a copy of
 * that descriptor (the caller keeps and closes its own). Never blocks and
 * never raises SIGPIPE: -EAGAIN when the other end is not reading,
 * -EPIPE/-ECONNRESET when it is gone, -EMSGSIZE, -ENOMEM. */
int ds_chan_send(int fd, json_t *msg, int pass_fd);

/*
 * Receives one message into *msg (caller json_decref()s) and, if one came
 * along, a descriptor into *passed_fd (else -1; passed_fd may be NULL:
 * then any descriptor is closed). Does not block when fd is non-blocking.
 * Returns 0, -EAGAIN (nothing yet), -ECONNRESET (the other end closed),
 * -EPROTO (not a JSON object, or truncated), or another negative errno.
 */
int ds_chan_recv(int fd, json_t **msg, int *passed_fd);

/* Waits up to timeout_ms for a message, then receives it as above;
 * -ETIMEDOUT when none came. */
int ds_chan_recv_wait(int fd, json_t **msg, int *passed_fd, int timeout_ms);

#endif
