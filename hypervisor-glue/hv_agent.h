/*
 * hv_agent.h - the host end of the channel to deskpool-agent in a guest.
 *
 * Connects to a VM's agent.sock (QEMU's end of the virtio-serial port
 * org.deskpool.agent.0) and speaks agent/PROTOCOL.md: hello on connect,
 * requests with ids, replies and timeouts, events to a callback. It
 * reconnects on its own when QEMU or the connection goes away, or when the
 * guest stays silent for HV_AGENT_SILENCE_MS, and keeps the guest's latest
 * state (hello, ready, heartbeat) for health checks.
 *
 * Like hv_qmp, it owns no event loop: poll hv_agent_fd() for
 * hv_agent_poll_events() (the fd is -1 while disconnected), wake up after
 * hv_agent_timeout_ms(), and call hv_agent_process(). The *_sync helpers run
 * that loop themselves. Callbacks must not close their own hv_agent.
 */
#ifndef HV_AGENT_H
#define HV_AGENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define HV_AGENT_TIMEOUT_MS           5000  /* default per request */
#define HV_AGENT_HEARTBEAT_TIMEOUT_MS 15000 /* default: then unhealthy */
#define HV_AGENT_RECONNECT_MS         1000
/* A connected channel on which the guest said nothing for this long is
 * dropped and reconnected. A guest that rebooted while we stayed
 * connected may never learn that the host side is open (virtio-serial
 * announces it when the host connects); reconnecting announces it again. */
#define HV_AGENT_SILENCE_MS 12000

struct hv_agent;

struct hv_agent_callbacks {
    /* An event from the guest: "hello", "ready", "heartbeat", "login",
     * "logout", "resolution", "error", ... data is borrowed. Optional. */
    void (*event)(void *arg, const char *name, json_t *data);
    /* The connection to agent.sock came up (1) or went down (0). */
    void (*link)(void *arg, int up);
};

/*
 * Result of a request: status 0 with result (borrowed, an object), or
 * -EREMOTEIO with the guest's error code and message, -ETIMEDOUT, or
 * -ECONNRESET when the connection ended first (code "" then).
 */
typedef void (*hv_agent_reply_fn)(void *arg, int status, json_t *result,
                                  const char *code, const char *message);

/* What the guest told us last. */
struct hv_agent_state {
    int connected; /* agent.sock is connected */
    int hello;     /* the guest's hello arrived on this connection */
    int ready;     /* ...and its ready */
    char os[64], hostname[64];
    char user[65]; /* from the last heartbeat; "" if nobody */
    int64_t since; /* login time, Unix seconds */
    int64_t idle_seconds;
    int locked;
    uint64_t heartbeats; /* received since open */
    int healthy;         /* hello seen and a heartbeat within the timeout */
};

/*
 * Creates the client for socket path and tries to connect at once (a
 * failure is not an error: it retries every HV_AGENT_RECONNECT_MS).
 * heartbeat_timeout_ms of 0 means HV_AGENT_HEARTBEAT_TIMEOUT_MS. cb may be
 * NULL. Returns 0 or -ENOMEM / -ENAMETOOLONG.
 */
int hv_agent_open(struct hv_agent **out, const char *path,
                  const struct hv_agent_callbacks *cb, void *arg,
                  int heartbeat_timeout_ms);
/* Closes; pending requests' callbacks run with -ECANCELED. */
void hv_agent_close(struct hv_agent *a);

int hv_agent_fd(const struct hv_agent *a);
short hv_agent_poll_events(const struct hv_agent *a);
int hv_agent_timeout_ms(const struct hv_agent *a);
void hv_agent_process(struct hv_agent *a, short revents);

void hv_agent_state(const struct hv_agent *a, struct hv_agent_state *st);

/*
 * Sends request op with args (consumed; NULL = {}). timeout_ms 0 means
 * HV_AGENT_TIMEOUT_MS. Returns 0 (fn reports the outcome), -ENOTCONN when
 * not connected, -ENOBUFS when the output queue is full, or -ENOMEM.
 */
int hv_agent_request(struct hv_agent *a, const char *op, json_t *args,
                     int timeout_ms, hv_agent_reply_fn fn, void *arg);

/*
 * Runs a request to completion. On success returns 0 and, if result is
 * not NULL, a new reference in *result. Otherwise the negative errno of
 * hv_agent_reply_fn with "code: message" in err.
 */
int hv_agent_request_sync(struct hv_agent *a, const char *op, json_t *args,
                          int timeout_ms, json_t **result, char *err,
                          size_t err_size);

/*
 * Runs the loop until the guest sends event `name` (returning a new
 * reference to its data in *data if not NULL) or timeout_ms passes
 * (-ETIMEDOUT). Events still reach the callback.
 */
int hv_agent_wait_event(struct hv_agent *a, const char *name, int timeout_ms,
                        json_t **data);

#endif
