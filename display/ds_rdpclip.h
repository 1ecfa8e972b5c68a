/*
 * ds_rdpclip.h - the clipboard of one RDP session: cliprdr (MS-RDPECLIP)
 * text both ways, the guest's side through its agent.
 *
 * The session starts it after activation when the client joined the
 * "cliprdr" static channel. Everything runs on the session's thread: the
 * channel is read here (ds_rdpclip_fd() / ds_rdpclip_check()), not by a
 * thread of FreeRDP's.
 *
 *   - The client copies: its Format List is answered and, when it has
 *     text (CF_UNICODETEXT, else CF_TEXT), the text is fetched at once
 *     and set in the guest (agent "clipboard-set", CRLF -> LF, at most
 *     DS_RDPCLIP_MAX bytes of UTF-8).
 *   - The guest copies: the agent has no change notification, so the
 *     guest's clipboard is read (agent "clipboard-get") every
 *     DS_RDPCLIP_POLL_MS while the session runs; when it differs from what
 *     was seen or set last, the client is offered CF_UNICODETEXT. When the
 *     client pastes, it asks for the data: the guest's clipboard is read
 *     then (fresh) and sent (LF -> CRLF, UTF-16).
 *
 * The agent requests go out through the session's hook (ask), which
 * sends them to the daemon; their answers come back through
 * ds_rdpclip_answer(). A desktop without an agent answers with an error:
 * polling then pauses for DS_RDPCLIP_NO_AGENT_MS.
 */
#ifndef DS_RDPCLIP_H
#define DS_RDPCLIP_H

#include <freerdp/peer.h>

#define DS_RDPCLIP_MAX         32000 /* bytes of UTF-8 text, at most */
#define DS_RDPCLIP_POLL_MS     1500
#define DS_RDPCLIP_NO_AGENT_MS 30000

enum ds_rdpclip_req { DS_RDPCLIP_GET, DS_RDPCLIP_SET };

struct ds_rdpclip_hooks {
    void *arg;
    /* Sends an agent request: GET, or SET with text (UTF-8). 0 when
     * sent: its answer comes to ds_rdpclip_answer(); else an error. */
    int (*ask)(void *arg, enum ds_rdpclip_req req, const char *text);
};

struct ds_rdpclip;

/* For peer's channel manager vcm. 0, -ENOMEM. */
int ds_rdpclip_new(struct ds_rdpclip **out, HANDLE vcm, freerdp_peer *peer,
                   const struct ds_rdpclip_hooks *hooks);

/* Closes the channel; NULL is fine. */
void ds_rdpclip_free(struct ds_rdpclip *c);

/* Starts the channel when the client has it (call once the session is
 * active). 1 started, 0 the client has no clipboard channel, -EIO. */
int ds_rdpclip_start(struct ds_rdpclip *c);

/* Readable (POLLIN) when the client sent something; -1 before start. */
int ds_rdpclip_fd(const struct ds_rdpclip *c);

/* Handles what the client sent and polls the guest when due. 0 or -EIO
 * (the channel failed: only the clipboard stops). */
int ds_rdpclip_check(struct ds_rdpclip *c, long long now_ms);

/* Milliseconds until ds_rdpclip_check() has something to do (a poll),
 * at most max_ms. */
int ds_rdpclip_timeout(const struct ds_rdpclip *c, long long now_ms,
                       int max_ms);

/* The answer to an agent request sent through the hook: text for a GET
 * (NULL on error), error NULL on success. */
void ds_rdpclip_answer(struct ds_rdpclip *c, enum ds_rdpclip_req req,
                       const char *text, const char *error, long long now_ms);

#endif
