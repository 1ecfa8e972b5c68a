/*
 * bk_display.h - the broker as a client of deskpool-display's control
 * socket (display/README.md): one request, one reply, bounded in time.
 *
 * Used for what only the display server can do: one-time VNC passwords
 * (VNC authentication needs the password itself on the server that
 * checks it) and disconnecting sessions. Each call is a short connection
 * of its own: the control socket is local and cheap to connect to.
 */
#ifndef BK_DISPLAY_H
#define BK_DISPLAY_H

#include <jansson.h>
#include <stddef.h>

/*
 * Sends op with args (consumed) to the control socket at path and waits
 * up to timeout_ms for the reply. Returns 0 with the result (new
 * reference) in *result, -ECONNREFUSED/-ENOENT when the display server is
 * not running, -ETIMEDOUT, or -EREMOTEIO with its error message in err.
 */
int bk_display_request(const char *path, const char *op, json_t *args,
                       int timeout_ms, json_t **result, char *err,
                       size_t err_size);

#endif
