/*
 * td_cmd.h - testdesk's control commands, one text line each.
 *
 * The local control socket (see td_ctl.h) passes each line here. Protocol,
 * also in README.md: a command word, a space, an argument running to the end
 * of the line. Every command gets exactly one reply line, "ok[ DETAILS]" or
 * "error REASON"; some also make an event line that the socket sends to
 * every client after the reply.
 *
 *   mode idle|typing|scroll|video   switch the workload
 *   user [NAME]                      show NAME in the top bar, login time
 *                                    now (none: no session)
 *   session NAME|DISPLAY NAME        start a session: NAME and the display
 *                                    name in the top bar; unlocks
 *   logoff                           end the session, clear the text box and
 *                                    the lock; event "event logoff[ USER]"
 *   lock / unlock                    show / take away the lock screen
 *   resolution W H                   lay the desk out at W x H (limited to
 *                                    the screen): "ok WxH" and event
 *                                    "event resolution WxH"
 *   message [TEXT]                   show TEXT in a banner (none: hide)
 *   type TEXT                        type TEXT into the text box
 *   clear                            empty the text box
 *   clipboard-set [TEXT]             store TEXT (escaped, see below)
 *   clipboard-get                    "ok TEXT" (escaped)
 *   status                           "ok mode=M user=U size=WxH since=UNIX
 *                                    idle=SECONDS locked=0|1 screen=WxH"
 *   ping                             "ok pong"
 *
 * User names are 1-64 printable ASCII bytes without spaces or '|'; display
 * names 0-128 bytes of printable ASCII or UTF-8; messages and typed text
 * printable ASCII. Clipboard text is up to TD_DESK_CLIPBOARD_MAX bytes
 * (UTF-8) written on the line with backslash escapes: "\\" for a
 * backslash, "\n", "\r" and "\t"; other bytes below 0x20 cannot be stored.
 */
#ifndef TD_CMD_H
#define TD_CMD_H

#include <stddef.h>

#include "td_desk.h"

/* Longest command or reply line (without newline) td_cmd deals in: a
 * clipboard of TD_DESK_CLIPBOARD_MAX bytes, every one escaped. A reply
 * buffer of TD_CMD_LINE_MAX + 1 bytes fits every reply. */
#define TD_CMD_LINE_MAX (2 * TD_DESK_CLIPBOARD_MAX + 64)
/* An event buffer of this size fits every event line. */
#define TD_CMD_EVENT_MAX TD_DESK_EVENT_MAX

/*
 * Runs one command line (without its newline) against d and writes the
 * reply (without newline, NUL-terminated) to reply; a reply that does not
 * fit in size is truncated, except clipboard-get's, which then answers
 * "error reply too long". When the command makes an event, writes its line
 * to event (if not NULL; truncated to event_size), else "". Returns 0 when
 * the command ran, a negative errno when it was refused (-EINVAL for bad
 * input) or failed.
 */
int td_cmd_exec(struct td_desk *d, const char *line, char *reply, size_t size,
                char *event, size_t event_size);

#endif
