/*
 * ds_session.h - one client connection of deskpool-display: the session
 * process.
 *
 * The daemon forks for each accepted connection; the child drops its
 * privileges and re-executes deskpool-display in session mode, which
 * calls ds_session_run() with the client's socket and its end of the
 * channel to the daemon (ds_chan.h). The session:
 *
 *   1. authenticates the client. VNC port: VNC authentication; the DES
 *      challenge and response go to the daemon ("auth-vnc"). Gateway
 *      socket: the ticket preamble line "TICKET <ticket>[ <peer>]\n"
 *      (display/README.md) goes to the daemon ("auth-ticket"). The
 *      daemon answers {"ok":true,"session","desktop","user","view_only"}
 *      with a descriptor connected to the desktop's vnc.sock, or
 *      {"ok":false,"reason"}; a refused client is told the reason (RFB
 *      authentication failure, or an RFB 3.8 handshake with no security
 *      types and the reason for the gateway) and the session ends;
 *   2. reads the desktop through a ds_source on that descriptor and serves
 *      it with libvncserver (one screen, one client), forwarding keys
 *      (keysyms and QEMU extended key events) and the pointer to QEMU,
 *      unless the grant was view_only (a helpdesk's view: the client's
 *      input is dropped);
 *   3. sends {"op":"stats","bytes_sent","frames"} every stats interval
 *      while they grow, and {"op":"end","reason",...} when it ends.
 *
 * Flow control: an update goes out only when the client asked for one and
 * fewer than DS_SESSION_OUTQ_HOLD bytes sit unsent in its socket; damage
 * meanwhile accumulates in libvncserver's region (bounded), the source
 * keeps being read. JPEG quality (tight) drops while the client lags.
 *
 * Everything runs in this one process and thread; whatever the client
 * sends can end only this session.
 */
#ifndef DS_SESSION_H
#define DS_SESSION_H

#include <jansson.h>
#include <stdint.h>

/* Bytes unsent in the client's socket above which updates wait. */
#define DS_SESSION_OUTQ_HOLD (256 * 1024)

/* How the client came in. */
enum ds_session_via { DS_SESSION_VNC, DS_SESSION_GATEWAY, DS_SESSION_RDP };

struct ds_session_args {
    int client_fd; /* the accepted connection (owned by the session) */
    int chan_fd;   /* channel to the daemon (owned by the session) */
    enum ds_session_via via;
    const char *peer;   /* client address for logs, e.g. "127.0.0.1:4242" */
    int stats_interval; /* seconds between stats messages (>= 1) */
};

/*
 * The start of every session process (deskpool-display for VNC and the
 * gateway, deskpool-display-rdp): makes the process non-dumpable - all
 * session processes run as one unprivileged user, so one that a client
 * took over must not ptrace or read another client's session (exec made
 * it dumpable again) - and reads the arguments the daemon passes
 * (--session vnc|gateway|rdp --peer PEER --stats-interval N) into *a, with
 * the client on DS_DAEMON_CLIENT_FD and the channel on DS_DAEMON_CHAN_FD.
 * Unknown options are ignored.
 */
void ds_session_init(int argc, char **argv, struct ds_session_args *a);

/*
 * Serves one client to the end. Returns the process exit status: 0 when
 * the session ran and ended normally (client closed, disconnected,
 * desktop gone), 1 when the client was refused or the session failed.
 * Installs handlers for SIGTERM/SIGINT (end the session) and ignores
 * SIGPIPE.
 */
int ds_session_run(const struct ds_session_args *args);

/*
 * One line on stderr (the daemon's log) from a session process, VNC or
 * RDP: "deskpool-display[PID]: ...".
 */
void ds_session_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Capture -> on the wire latency, in DS_SESSION_LAT_STEP_US steps up to
 * DS_SESSION_LAT_BUCKETS of them (the last bucket: that long or longer). */
#define DS_SESSION_LAT_STEP_US 100
#define DS_SESSION_LAT_BUCKETS 1000

/* What a session process sent, for the daemon's stats and end events.
 * latency: per frame, from the moment the session read the damage from
 * the desktop to the moment the frame's last byte went to the client's
 * socket (RDP sessions). */
struct ds_session_count {
    uint64_t bytes_sent, frames;
    uint64_t reported_bytes, reported_frames; /* in the last stats event */
    long long next_stats_ms;
    uint32_t latency[DS_SESSION_LAT_BUCKETS];
    uint64_t latency_n;
};

/* Counts one frame's capture -> wire latency. */
void ds_session_count_latency(struct ds_session_count *c, long long us);

/* Sends msg (consumed) to the daemon over the session's channel; a
 * daemon that went away is not worth a log line. */
void ds_session_tell(const struct ds_session_args *args, json_t *msg);

/* A "stats" event when its interval is up and something was sent since
 * the last one: {"op":"stats","bytes_sent","frames"[,"latency":{"n",
 * "p50_ms","p99_ms"}]} (latency over the whole session so far). */
void ds_session_report_stats(const struct ds_session_args *args,
                             struct ds_session_count *c, long long now);

/* "vnc", "gateway" or "rdp". */
const char *ds_session_via_name(enum ds_session_via via);

#endif
