/*
 * td_ctl.h - testdesk's local control socket: a unix stream socket in the
 * guest through which the agent drives the desktop.
 *
 * Clients send command lines (see td_cmd.h) and get one reply line each;
 * events such as "event logoff" are sent to every connected client. Lines
 * are bounded (TD_CTL_LINE_MAX): a longer one is answered with an error and
 * skipped, and touches no other client. At most TD_CTL_CLIENTS clients.
 */
#ifndef TD_CTL_H
#define TD_CTL_H

#include <poll.h>
#include <stddef.h>

#define TD_CTL_LINE_MAX 1024
#define TD_CTL_CLIENTS 8
/* pollfds td_ctl_pollfds() may fill: the listener and the clients. */
#define TD_CTL_POLLFDS (1 + TD_CTL_CLIENTS)

struct td_ctl;

/* Runs one command line; writes the reply (no newline) into reply. */
typedef void (*td_ctl_exec_fn)(void *arg, const char *line, char *reply,
                               size_t size);

/* Listens on path (replacing a stale socket). Returns 0 or -errno. */
int td_ctl_open(struct td_ctl **out, const char *path);
void td_ctl_close(struct td_ctl *ctl);

/* Fills up to TD_CTL_POLLFDS entries of pfds; returns how many. */
int td_ctl_pollfds(const struct td_ctl *ctl, struct pollfd *pfds);

/* Handles whatever poll() reported on the entries td_ctl_pollfds() filled:
 * accepts clients, reads lines, runs them through exec, writes replies,
 * drops clients that hung up. */
void td_ctl_handle(struct td_ctl *ctl, const struct pollfd *pfds, int n,
                   td_ctl_exec_fn exec, void *arg);

/* Sends line (no newline) to every client. */
void td_ctl_broadcast(struct td_ctl *ctl, const char *line);

#endif
