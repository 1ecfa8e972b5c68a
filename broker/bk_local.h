/*
 * bk_local.h - the broker's local API for deskpool-display: a unix socket
 * (mode 0600, peers checked with SO_PEERCRED: root or the broker's own
 * user) speaking JSON lines as agent/PROTOCOL.md frames them.
 *
 * Requests (args -> result):
 *   redeem  {ticket, protocol}   -> {user, desktop, pool[, view_only]}
 *           a one-time ticket from a launch: single use, bound to the
 *           protocol; errors "unknown", "expired", "used", "protocol".
 *           A helpdesk's "view" ticket is redeemed as "browser" and
 *           answers view_only: true (user: the admin; any desktop).
 *   login   {user, password, protocol[, pool][, client]}
 *           -> {user, desktop, pool}: PAM (password only), then the
 *           user's desktop as a launch would give it (waiting up to
 *           launch_wait for one); errors "denied" (with PAM's reason),
 *           "locked" (rate limit), "no-pool", "unavailable".
 *   session {event: "connected"|"disconnected", desktop, user, protocol
 *           [, client][, bytes][, view]} -> {}: the desktop's state and
 *           client address follow (CONNECTED / DISCONNECTED) and the
 *           audit log records it. With view: true, a helpdesk view (user:
 *           the viewer) began or ended: the state stays, the event is
 *           "helpdesk_view" and the desktop's user sees a banner
 *           (bk_mgr_view()).
 *   agent   {desktop, user, op, args} -> the agent's result: a display
 *           session's request to its desktop's agent (bk_mgr_agent():
 *           "clipboard-get" -> {text}, "clipboard-set" {text},
 *           "set-resolution" {width, height} -> {width, height}); the
 *           desktop must be the user's; the connection's thread waits up
 *           to 8 s. Errors "unknown", "no-agent", "agent" (the agent's
 *           own error), "timeout", "bad-request".
 *
 * One thread per connection (display daemons hold a few, briefly), at
 * most BK_LOCAL_MAX_CONNS; each has its own store connection. A line over
 * 64 KiB or malformed JSON gets an error reply; the connection stays.
 */
#ifndef BK_LOCAL_H
#define BK_LOCAL_H

#include <stddef.h>

#include "bk_auth.h"
#include "bk_config.h"
#include "bk_limit.h"
#include "bk_mgr.h"

#define BK_LOCAL_MAX_CONNS 64

struct bk_local;

struct bk_local_parts {
    const struct bk_config *cfg;
    const char *db_path;
    struct bk_auth_config auth;
    struct bk_limit *user_fails, *addr_fails; /* shared with the web API */
    struct bk_mgr *mgr;
};

/* Listens on cfg->local_socket and serves in threads. */
int bk_local_start(struct bk_local **out, const struct bk_local_parts *p,
                   char *err, size_t err_size);
/* Stops listening, ends connections, joins threads. */
void bk_local_stop(struct bk_local *l);

#endif
