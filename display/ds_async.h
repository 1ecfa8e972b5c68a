/*
 * ds_async.h - requests to the broker's local API that do not stall the
 * display daemon's loop.
 *
 * A PAM login may take seconds (failure delays), an agent request as long
 * as the guest takes; the daemon's one loop serves every session and the
 * control socket meanwhile. Each request runs dp_rpc_request() on a
 * thread of its own (at most DS_ASYNC_MAX at once; each is bounded by its
 * timeout), and its outcome is handed back on the loop's thread: the loop
 * polls ds_async_fd() and calls ds_async_dispatch(), which calls the
 * requests' done callbacks in the order they finished. Requests whose
 * order matters go through one ordered lane instead.
 *
 * The worker threads touch nothing of the daemon's: only the request's own
 * copy of its arguments and the result queue.
 */
#ifndef DS_ASYNC_H
#define DS_ASYNC_H

#include <jansson.h>
#include <stddef.h>

#define DS_ASYNC_MAX         32   /* requests in flight (not ordered) */
#define DS_ASYNC_ORDERED_MAX 1024 /* ordered requests waiting */

struct ds_async;

/*
 * A request's outcome, on the loop's thread: r is dp_rpc_request()'s (0
 * with result, a borrowed reference; -EREMOTEIO with the broker's error
 * code and message; another negative errno with a message), or -ECANCELED
 * when the queue closed first.
 */
typedef void (*ds_async_fn)(void *arg, int r, json_t *result, const char *code,
                            const char *message);

/* Creates the queue. 0, -ENOMEM, or the errno of eventfd(). */
int ds_async_open(struct ds_async **out);

/* Readable (POLLIN) when outcomes wait for ds_async_dispatch(). */
int ds_async_fd(const struct ds_async *a);

/*
 * Sends op with args (consumed) to the unix socket at path, waiting up to
 * timeout_ms, on a worker thread. 0: done will be called exactly once;
 * -EBUSY (DS_ASYNC_MAX in flight), -ENOMEM or a thread error: done is not
 * called.
 */
int ds_async_request(struct ds_async *a, const char *path, const char *op,
                     json_t *args, int timeout_ms, ds_async_fn done, void *arg);

/*
 * The same on the ordered lane: one worker thread sends these one after
 * the other, in the order asked (a session's "connected" before its
 * "disconnected"), at most DS_ASYNC_ORDERED_MAX waiting (-EBUSY beyond).
 * On ds_async_close() the one being sent finishes; those still waiting
 * are cancelled, not sent.
 */
int ds_async_request_ordered(struct ds_async *a, const char *path,
                             const char *op, json_t *args, int timeout_ms,
                             ds_async_fn done, void *arg);

/* Calls the done callbacks of the requests that finished. */
void ds_async_dispatch(struct ds_async *a);

/* Waits for the requests in flight (each ends within its timeout), calls
 * every remaining done with -ECANCELED, and frees; NULL is fine. */
void ds_async_close(struct ds_async *a);

#endif
