/*
 * ag_ops.h - the agent's side of agent/PROTOCOL.md: turns lines from the
 * host into desktop actions and replies, and desktop happenings into
 * events. Transport-free: the caller feeds lines in and sends the lines
 * handed to its send function, so this is what unit tests and the fuzz
 * target drive.
 */
#ifndef AG_OPS_H
#define AG_OPS_H

#include <stddef.h>

#include "ag_desk.h"

/* Sends one protocol line (malloc'd, ending in "\n"; the callee owns it). */
typedef void (*ag_send_fn)(void *arg, char *line);

struct ag_ops;

/* The agent for desktop d (borrowed); lines go out through send. */
struct ag_ops *ag_ops_new(struct ag_desk *d, ag_send_fn send, void *arg);
void ag_ops_free(struct ag_ops *a);

/* Say hello (on start and when the host side comes back), and ready and a
 * heartbeat if the desktop can take a session. */
void ag_ops_hello(struct ag_ops *a);

/* Handles one line from the host (NULL: an over-long line was dropped). */
void ag_ops_line(struct ag_ops *a, const char *line, size_t len);

/* Sends a heartbeat with the desktop's session state. */
void ag_ops_heartbeat(struct ag_ops *a);

/* Turns a desktop event into protocol events (logout, resolution, ready). */
void ag_ops_desk_event(void *arg, const struct ag_desk_event *ev);

/*
 * Where personalise writes (etc_dir/hostname, etc_dir/machine-id; default
 * "/etc") and whether it also changes the running system (sethostname,
 * the clock, the kernel's random pool; default yes). Tests point it
 * elsewhere and turn live off; then the random seed is written to
 * etc_dir/random-seed instead of the kernel's pool.
 */
void ag_ops_set_system(struct ag_ops *a, const char *etc_dir, int live);

#endif
