/*
 * dp_rpc.h - one request over a local JSON-lines socket (agent/PROTOCOL.md
 * framing), one reply, bounded in time: how Deskpool's daemons ask each
 * other things (the broker asks deskpool-display for VNC passwords; the
 * display asks the broker to redeem tickets).
 *
 * Each call is a short connection of its own: local sockets are cheap to
 * connect to, and nothing stays open between unrelated requests. Events
 * the server sends meanwhile (its hello) are skipped.
 */
#ifndef DP_RPC_H
#define DP_RPC_H

#include <jansson.h>
#include <stddef.h>

/*
 * Sends op with args (consumed) to the unix socket at path and waits up to
 * timeout_ms for the reply. Returns 0 with the result (new reference) in
 * *result, -ECONNREFUSED/-ENOENT when nobody listens, -ETIMEDOUT, or
 * -EREMOTEIO when the server said no: then its error code goes to code
 * (may be NULL) and its message to err.
 */
int dp_rpc_request(const char *path, const char *op, json_t *args,
                   int timeout_ms, json_t **result, char *code,
                   size_t code_size, char *err, size_t err_size);

#endif
