/*
 * ds_rdp.h - one RDP client of deskpool-display: the RDP session process.
 *
 * The daemon accepts a connection on rdp_listen, forks, drops privileges
 * and re-executes deskpool-display as "--session rdp" (as for VNC, see
 * ds_session.h), which calls ds_rdp_run(). The session:
 *
 *   1. gets the TLS certificate and key from the daemon (the first channel
 *      message, {"op":"tls","cert","key"}: PEM text; the unprivileged
 *      process cannot read the key file), and serves RDP with FreeRDP 2's
 *      peer API on the client's socket: TLS security only (no RDP
 *      Standard Security, no NLA yet);
 *   2. takes the user name and password the client sent in its Client Info
 *      PDU (inside TLS) and asks the daemon ({"op":"auth-rdp","user",
 *      "password"}), which has the broker check them: a password login
 *      (PAM, rate limited) or, for the user name "ticket:<ticket>" of a
 *      portal .rdp file, a one-time ticket. The answer is the same as for
 *      VNC sessions (a descriptor connected to the desktop's vnc.sock). A
 *      refused client is disconnected before its session is activated;
 *      the daemon logs why;
 *   3. sizes the session to the desktop's framebuffer and sends what
 *      changes through the graphics pipeline when the client has one
 *      (RDPGFX with H.264 or planar, see ds_rdpgfx.h), else as bitmap
 *      updates (planar codec, 64x64 tiles); either way only while
 *      fewer than DS_RDP_OUTQ_HOLD bytes sit unsent in the client's socket:
 *      meanwhile damage accumulates as a set of dirty tiles (bounded), so a
 *      slow client gets coalesced updates and memory stays flat;
 *   4. forwards input: RDP scancodes as QEMU extended key events (qnum =
 *      code | 0x80 for E0-extended keys), Unicode key events as keysyms,
 *      the absolute mouse with three buttons and both wheels;
 *   5. reports stats and its end to the daemon as VNC sessions do.
 *
 * Everything runs in this one process and thread (but FreeRDP's reader
 * thread of the RDPGFX channel, see ds_rdpgfx.h); whatever the client
 * sends (garbage after TLS, truncated PDUs) ends only this session.
 */
#ifndef DS_RDP_H
#define DS_RDP_H

#include "ds_session.h"

/* Bytes unsent in the client's socket above which updates wait. */
#define DS_RDP_OUTQ_HOLD (256 * 1024)

/*
 * Serves one RDP client to the end (args->via is DS_SESSION_RDP). Returns
 * the process exit status: 0 when the session ran and ended, 1 when the
 * client was refused or the session failed. Installs handlers for
 * SIGTERM/SIGINT and ignores SIGPIPE.
 */
int ds_rdp_run(const struct ds_session_args *args);

#endif
