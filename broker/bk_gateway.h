/*
 * bk_gateway.h - the websocket gateway: wss://HOST:PORT/ws?ticket=T pipes
 * a browser's noVNC to deskpool-display's gateway socket.
 *
 * At the upgrade the broker checks that the caller has a session (the
 * cookie) and that the ticket is a live browser ticket of that session's
 * user, or a helpdesk "view" ticket of that user while an admin (the
 * display then serves the desktop view-only); anything else is refused
 * before the 101. Then it connects to the
 * display's gateway socket, sends the preamble "TICKET <t> <client>\n"
 * (the display redeems the ticket, once, through the local API) and moves
 * bytes both ways as binary websocket frames.
 *
 * Backpressure both ways: the display socket is read only when the
 * previous chunk went out to the browser, and the browser's frames stop
 * being read while more than BK_GATEWAY_UP_MAX bytes wait for the
 * display. When either side goes, the other is closed. Every gateway is
 * two descriptors in the HTTP thread's loop; no thread per connection.
 *
 * Subprotocol: "binary" (what websockify speaks; the portal opens noVNC
 * with it). Upgrades that name no protocol are refused.
 */
#ifndef BK_GATEWAY_H
#define BK_GATEWAY_H

#include <libwebsockets.h>

#include "bk_config.h"
#include "bk_store.h"

#define BK_GATEWAY_CHUNK  65536       /* display -> browser, per frame */
#define BK_GATEWAY_UP_MAX (256 << 10) /* browser -> display, waiting */

struct bk_gateway {
    const struct bk_config *cfg;
    struct bk_store *store; /* the HTTP thread's connection */
    unsigned long opened, refused, active;
};

/* lws protocol entries (3: "binary", "deskpool-gateway", and the raw
 * display side) to put in the vhost's list; user is the bk_gateway. */
void bk_gateway_protocols(struct bk_gateway *g, struct lws_protocols *out);

#define BK_GATEWAY_PROTOCOL   "deskpool-gateway"
#define BK_GATEWAY_NPROTOCOLS 3

#endif
