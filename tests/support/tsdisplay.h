/*
 * tsdisplay.h - deskpool-display for tests: start the real daemon binary
 * ($DESKPOOL_BIN_DIR/deskpool-display) on a state folder, talk to its
 * control socket (JSON lines), and connect raw clients to its gateway
 * socket, the way the broker's gateway and noVNC would.
 *
 * Check assertions inside: these are for test cases (and fixtures), and
 * fail the case with a message saying what did not happen.
 */
#ifndef TSDISPLAY_H
#define TSDISPLAY_H

#include <jansson.h>
#include <sys/types.h>

struct tsdisplay {
    pid_t pid;
    char dir[200]; /* under the test root */
    char ctl[256]; /* control socket */
    char gw[256];  /* gateway socket */
    char log[256]; /* the daemon's stderr */
};

/* Starts the daemon serving state_dir's desktops, with a VNC port on
 * 127.0.0.1 (any free port) and sessions as "nobody"; files in a new
 * folder under the test root. */
void tsdisplay_start(struct tsdisplay *d, const char *state_dir);

/* The same, redeeming gateway tickets with the broker whose local API
 * listens at broker_socket (and reporting sessions to it). */
void tsdisplay_start_broker(struct tsdisplay *d, const char *state_dir,
                            const char *broker_socket);

/* The same with an RDP port too (rdp_listen 127.0.0.1, any free port;
 * a self-signed certificate in state_dir). */
void tsdisplay_start_rdp(struct tsdisplay *d, const char *state_dir,
                         const char *broker_socket);

struct tsbroker;

/*
 * Starts d for broker b (initialised, not yet started): on b's VM folder,
 * with b's local API (b->dir/broker.sock), an RDP port too if rdp; and
 * points b at d (its control socket, where the broker gets VNC
 * passwords, and its gateway socket). Then tsbroker_start(b).
 */
void tsdisplay_start_for(struct tsdisplay *d, struct tsbroker *b, int rdp);

/* The RDP port, as the daemon's log tells it (waits up to 10 s). */
int tsdisplay_rdp_port(const struct tsdisplay *d);

/* SIGTERMs the daemon and waits for it (sessions go on until their
 * clients or desktops go away). Fails the test if its log holds a
 * sanitizer report (make SANITIZE=1). */
void tsdisplay_stop(struct tsdisplay *d);

/* Connects to the control socket (waiting up to 10 s for it) and checks
 * the hello event. Returns the descriptor. */
int tsdisplay_ctl_open(const struct tsdisplay *d);

/* Sends a request line (with "id") and returns the reply with that id,
 * skipping events. */
json_t *tsdisplay_request(int fd, const char *line);

/* Issues a credential of kind ("vnc" or "gateway") for desktop and user.
 * Returns it (malloc'd); *port gets the VNC port when not NULL. */
char *tsdisplay_issue(int fd, const char *kind, const char *desktop,
                      const char *user, int ttl, int *port);

/* Reads messages until an event called name; returns it. */
json_t *tsdisplay_wait_event(int fd, const char *name);

/* Reads one JSON line (10 s at most); NULL on timeout or EOF. */
json_t *tsdisplay_read_json(int fd);

/* Connects to a unix socket, retrying up to timeout_ms; -1 on failure. */
int tsdisplay_unix_connect(const char *path, int timeout_ms);

/* True when the daemon's log contains text. */
int tsdisplay_log_contains(const struct tsdisplay *d, const char *text);

/*
 * A gateway client up to the end of the RFB security handshake: sends
 * preamble, then the RFB 3.8 version. Returns the connected descriptor
 * when the server offers security type None (accepted: the caller goes
 * on with ClientInit), or -1 with the server's refusal reason in
 * *reason (malloc'd).
 */
int tsdisplay_gateway(const struct tsdisplay *d, const char *preamble,
                      char **reason);

#endif
