/*
 * td_cmd.h - testdesk's control commands, one text line each.
 *
 * The local control socket (see td_ctl.h) passes each line here. Protocol,
 * also in README.md: a command word, a space, an argument running to the end
 * of the line. Every command gets exactly one reply line, "ok[ DETAILS]" or
 * "error REASON".
 *
 *   mode idle|typing|scroll|video   switch the workload
 *   user [NAME]                      show NAME in the top bar (none: clear)
 *   message [TEXT]                   show TEXT in a banner (none: hide)
 *   type TEXT                        type TEXT into the text box
 *   clear                            empty the text box
 *   status                           "ok mode=M user=U size=WxH"
 *   ping                             "ok pong"
 */
#ifndef TD_CMD_H
#define TD_CMD_H

#include <stddef.h>

#include "td_desk.h"

/* Runs one command line (without its newline) against d and writes the
 * reply (without newline, NUL-terminated, truncated to size) to reply.
 * Returns 0 when the command ran, -EINVAL when it was refused. */
int td_cmd_exec(struct td_desk *d, const char *line, char *reply,
                size_t size);

#endif
