/*
 * hv_qmp.h - a non-blocking client for QEMU's machine protocol (QMP).
 *
 * One hv_qmp is one connection to one VM's QMP unix socket. It does its own
 * reading, writing and JSON framing (jansson), but owns no event loop: the
 * caller polls hv_qmp_fd() for hv_qmp_poll_events(), calls hv_qmp_process()
 * when poll says so (or the hv_qmp_timeout_ms() deadline passes), and gets
 * results through callbacks. hv_qmp_execute_sync() runs that loop itself for
 * callers that just want an answer (the CLI, tests).
 *
 * Protocol (QEMU docs/interop/qmp-spec.txt): the server greets, the client
 * sends qmp_capabilities, then each {"execute","arguments","id"} gets one
 * {"return"|"error","id"}; {"event",...} messages arrive in between.
 * Commands may be queued before the handshake ends; they go out after it.
 *
 * Callbacks run from hv_qmp_process() (or the sync helpers) and must not
 * call hv_qmp_close() on their own client; close it after process returns.
 *
 * Failure: every command's callback runs exactly once - with the result,
 * with QEMU's error, with -ETIMEDOUT when its own timeout passes, or with
 * -ECONNRESET / -EPROTO / -ECANCELED when the connection ends. Input is
 * bounded (HV_QMP_LINE_MAX); malformed or oversized input ends the
 * connection with a reason, never the process.
 */
#ifndef HV_QMP_H
#define HV_QMP_H

#include <jansson.h>
#include <stddef.h>

/* Longest QMP message accepted, in bytes. QEMU's biggest replies
 * (query-qmp-schema) stay well below it. */
#define HV_QMP_LINE_MAX (1u << 20)

/* Default per-command timeout when a caller passes 0. */
#define HV_QMP_TIMEOUT_MS 5000

struct hv_qmp;

/*
 * Result of one command. status is 0 with result = the "return" value
 * (borrowed: valid during the callback only), -EIO with error = QEMU's
 * error description ("class: desc"), or another negative errno with error
 * saying why (timeout, connection lost...).
 */
typedef void (*hv_qmp_reply_fn)(void *arg, int status, json_t *result,
                                const char *error);

struct hv_qmp_callbacks {
    /* An event, e.g. "SHUTDOWN" with data {"guest":true,...} (borrowed;
     * data may be NULL). Optional. */
    void (*event)(void *arg, const char *name, json_t *data);
    /* The connection ended: reason is a negative errno, why a message.
     * After this, hv_qmp_process() does nothing; close the client. */
    void (*closed)(void *arg, int reason, const char *why);
};

/*
 * Starts connecting to the QMP socket at path. Returns 0 and the client in
 * *out, or a negative errno if the socket cannot be reached at all (e.g.
 * -ENOENT, -ECONNREFUSED). The handshake completes in hv_qmp_process().
 * cb may be NULL; cb and arg must outlive the client.
 */
int hv_qmp_connect(struct hv_qmp **out, const char *path,
                   const struct hv_qmp_callbacks *cb, void *arg);

/* Closes the connection; pending commands' callbacks run with
 * -ECANCELED. NULL is ignored. */
void hv_qmp_close(struct hv_qmp *q);

/* The socket to poll, and the poll events it currently wants. */
int hv_qmp_fd(const struct hv_qmp *q);
short hv_qmp_poll_events(const struct hv_qmp *q);

/* Milliseconds until the next command timeout, or -1 if none pends. */
int hv_qmp_timeout_ms(const struct hv_qmp *q);

/*
 * Does the I/O that revents (from poll) allows and expires overdue
 * commands; callbacks run from here. Returns 0 while the connection lives,
 * a negative errno once it has ended.
 */
int hv_qmp_process(struct hv_qmp *q, short revents);

/* True once the greeting and capabilities negotiation have completed. */
int hv_qmp_ready(const struct hv_qmp *q);

/* QEMU's version from the greeting ("7.2.0"), or "" before it. */
const char *hv_qmp_version(const struct hv_qmp *q);

/*
 * Queues a command. args (may be NULL) is consumed (its reference is
 * stolen, even on error). timeout_ms of 0 means HV_QMP_TIMEOUT_MS. fn may
 * be NULL to ignore the result. Returns 0 when fn will report the outcome,
 * or -ENOTCONN after the connection ended, or -ENOMEM (fn is then never
 * called).
 */
int hv_qmp_execute(struct hv_qmp *q, const char *command, json_t *args,
                   int timeout_ms, hv_qmp_reply_fn fn, void *arg);

/*
 * Runs a command to completion, polling this connection only (events
 * still reach the event callback). On success returns 0 and, if result is
 * not NULL, a new reference to the "return" value in *result. On failure
 * returns the negative errno of hv_qmp_reply_fn and writes the reason into
 * error (if not NULL).
 */
int hv_qmp_execute_sync(struct hv_qmp *q, const char *command, json_t *args,
                        int timeout_ms, json_t **result, char *error,
                        size_t error_size);

/* Waits (polling this connection only) until the handshake is done.
 * Returns 0, -ETIMEDOUT or the reason the connection ended. */
int hv_qmp_wait_ready(struct hv_qmp *q, int timeout_ms);

#endif
