/*
 * ds_daemon.h - deskpool-display's daemon: the listeners (VNC TCP port,
 * gateway socket), the control socket, the credentials, and one session
 * process per client connection (display/README.md, "Process model").
 *
 * The daemon never reads a byte a client sends: it accepts, forks, and the
 * child drops privileges and re-executes the program (self_exe) in session
 * mode with the client on descriptor DS_DAEMON_CLIENT_FD and its channel
 * to the daemon on DS_DAEMON_CHAN_FD. It answers the sessions'
 * authentication requests, hands them their desktop's vnc.sock, reaps
 * them, and reports sessions to control subscribers.
 */
#ifndef DS_DAEMON_H
#define DS_DAEMON_H

#include "ds_config.h"

/* Descriptors a session process starts with. */
#define DS_DAEMON_CLIENT_FD 3
#define DS_DAEMON_CHAN_FD   4

struct ds_daemon;

/*
 * Opens the listeners and the control socket as cfg says. self_exe is the
 * program run for each VNC and gateway session ("/proc/self/exe" works),
 * rdp_exe the one for RDP sessions (deskpool-display-rdp; needed only
 * with an RDP listener). Returns 0 or a negative errno with the reason on
 * stderr.
 */
int ds_daemon_open(struct ds_daemon **out, const struct ds_config *cfg,
                   const char *self_exe, const char *rdp_exe);

/* Serves until SIGTERM or SIGINT (blocked and taken through a signalfd).
 * Sessions keep running after the daemon stops. Returns 0 or a negative
 * errno if the loop itself failed. */
int ds_daemon_run(struct ds_daemon *d);

/* Closes listeners and sockets (removing the socket files). */
void ds_daemon_close(struct ds_daemon *d);

#endif
