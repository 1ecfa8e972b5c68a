/*
 * td_ctl.h - testdesk's local control socket: a unix stream socket in the
 * guest through which the agent drives the desktop.
 *
 * Clients send command lines (see td_cmd.h) and get one reply line each, in
 * order; a command may also make an event line (such as "event logoff
 * alice"), which is sent to every connected client after the reply. Lines
 * are bounded (TD_CTL_LINE_MAX bytes with the newline): a longer one is
 * answered with an error and skipped, and touches no other client. At most
 * TD_CTL_CLIENTS clients.
 *
 * Nothing blocks: what a client's socket does not take at once waits in
 * that client's output buffer (TD_CTL_OUT_MAX bytes). While the buffer is
 * too full for another reply, the client's further commands wait unread; a
 * client that lets broadcast events overflow it is dropped.
 */
#ifndef TD_CTL_H
#define TD_CTL_H

#include <poll.h>
#include <stddef.h>

/* A clipboard of 32768 bytes, every byte escaped, and its command word. */
#define TD_CTL_LINE_MAX (65536 + 256)
/* Longest event line; longer ones are cut. */
#define TD_CTL_EVENT_MAX 256
/* Two full replies with their events, and room for 64 more events. */
#define TD_CTL_OUT_MAX                                                         \
    (2 * (TD_CTL_LINE_MAX + TD_CTL_EVENT_MAX) + 64 * TD_CTL_EVENT_MAX)
#define TD_CTL_CLIENTS 8
/* pollfds td_ctl_pollfds() may fill: the listener and the clients. */
#define TD_CTL_POLLFDS (1 + TD_CTL_CLIENTS)

struct td_ctl;

/* Runs one command line; writes the reply (no newline) into reply and the
 * event line to send to every client into event ("" for none). */
typedef void (*td_ctl_exec_fn)(void *arg, const char *line, char *reply,
                               size_t size, char *event, size_t event_size);

/* Listens on path (replacing a stale socket). Returns 0 or -errno. */
int td_ctl_open(struct td_ctl **out, const char *path);
void td_ctl_close(struct td_ctl *ctl);

/* Fills up to TD_CTL_POLLFDS entries of pfds; returns how many. */
int td_ctl_pollfds(const struct td_ctl *ctl, struct pollfd *pfds);

/* Handles whatever poll() reported on the entries td_ctl_pollfds() filled:
 * accepts clients, reads lines, runs them through exec, sends replies and
 * events, drops clients that hung up. */
void td_ctl_handle(struct td_ctl *ctl, const struct pollfd *pfds, int n,
                   td_ctl_exec_fn exec, void *arg);

/* Sends line (no newline; cut to TD_CTL_EVENT_MAX) to every client. */
void td_ctl_broadcast(struct td_ctl *ctl, const char *line);

#endif
