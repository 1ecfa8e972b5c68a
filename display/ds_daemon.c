/*
 * ds_daemon.c - deskpool-display's daemon (see ds_daemon.h).
 *
 * One poll loop over: a signalfd (SIGCHLD, SIGTERM, SIGINT), the VNC and
 * gateway listeners, the control socket and its connections, and one
 * channel per session process. Sessions live in a fixed table of
 * max_sessions slots; a slot is freed when its process has been reaped.
 */
#include "ds_daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "dp_rpc.h"
#include "dp_time.h"
#include "dp_tls.h"
#include "dp_unix.h"
#include "ds_async.h"
#include "ds_chan.h"
#include "ds_cred.h"
#include "ds_ctl.h"
#include "ds_session.h"
#include "hv_vm.h"

#define DS_DAEMON_VERSION   "deskpool-display 1"
#define DS_DAEMON_PEER_MAX  72
#define DS_DAEMON_EXPIRE_MS 10000 /* how often old credentials are dropped */
#define DS_DAEMON_BROKER_MS 3000  /* the broker's local API answers in this */
#define DS_DAEMON_LOGIN_MS  15000 /* PAM may take its time (failure delays) */
#define DS_DAEMON_PEM_MAX   24000 /* a certificate or key file, at most */
#define DS_DAEMON_AGENT_MS  9000  /* the broker waits 8 s for the agent */
#define DS_DAEMON_AGENT_MAX 4     /* agent requests in flight per session */

struct ds_daemon_session {
    pid_t pid; /* 0: slot free */
    long long id;
    int chan_fd; /* -1 once the session closed its end */
    enum ds_session_via via;
    char peer[DS_DAEMON_PEER_MAX];
    int authed;       /* a credential was accepted */
    int view_only;    /* a helpdesk view: the client's input is dropped */
    int refusal_told; /* a refused event went out already */
    char desktop[DS_CRED_NAME_MAX + 1];
    char user[DS_CRED_NAME_MAX + 1];
    long long since_ms; /* Unix ms */
    long long bytes_sent, frames;
    char end_reason[128]; /* from the session's "end" message */
    int end_refused;
    json_t *latency;  /* the session's last latency report, or NULL */
    int asking;       /* a broker request for its login is under way */
    int agent_asking; /* agent requests under way */
};

/* Whom a broker request's outcome is for: the session may be gone (and
 * its slot reused) by the time it comes, hence its id. */
struct ds_daemon_ask {
    struct ds_daemon *d;
    long long session_id;
    long long request_id; /* the session's own id of an agent request */
    char user[DS_CRED_NAME_MAX + 1]; /* a password login's user name */
};

struct ds_daemon {
    struct ds_config cfg;
    char self_exe[4096], rdp_exe[4096];
    uid_t uid; /* session processes' user, when started as root */
    gid_t gid;
    int drop; /* switch user in session processes */

    struct hv_host *host; /* for the VMs' run folders */
    struct ds_cred_store *creds;
    struct ds_ctl *ctl;
    struct ds_async *async; /* broker requests off this loop */
    int sig_fd, vnc_fd, gateway_fd, rdp_fd;
    int vnc_port, rdp_port;
    char *tls_cert_pem, *tls_key_pem; /* handed to RDP session processes */

    struct ds_daemon_session *sessions; /* cfg.max_sessions slots */
    long long next_id;
    long long next_expire_ms;
};

static void ds_daemon_log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void ds_daemon_log(const char *fmt, ...)
{
    char line[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "deskpool-display: %s\n", line);
}

static long long ds_daemon_unix_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------
 * Listeners */

/* Opens the TCP listener of a *_listen setting (what: "vnc", "rdp"); *fd
 * stays -1 when the setting is empty. */
static int ds_daemon_listen_tcp(const char *value, const char *what, int *fd,
                                int *port_out)
{
    char host[64], port_text[8];
    struct addrinfo hints = {.ai_flags =
                                 AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    struct sockaddr_storage bound;
    socklen_t len = sizeof(bound);
    int port, one = 1, r;

    *fd = -1;
    if (!value[0])
        return 0; /* the port is off */
    r = ds_config_listen_addr(value, host, sizeof(host), &port);
    if (r < 0) {
        ds_daemon_log("%s_listen %s: not ADDR:PORT", what, value);
        return r;
    }
    snprintf(port_text, sizeof(port_text), "%d", port);
    r = getaddrinfo(host, port_text, &hints, &ai);
    if (r) {
        ds_daemon_log("%s_listen %s: %s", what, value, gai_strerror(r));
        return -EINVAL;
    }
    *fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (*fd < 0 ||
        setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(*fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(*fd, 64) < 0 ||
        getsockname(*fd, (struct sockaddr *)&bound, &len) < 0) {
        r = -errno;
        freeaddrinfo(ai);
        ds_daemon_log("%s_listen %s: %s", what, value, strerror(-r));
        return r;
    }
    freeaddrinfo(ai);
    *port_out = ntohs(bound.ss_family == AF_INET6
                          ? ((struct sockaddr_in6 *)&bound)->sin6_port
                          : ((struct sockaddr_in *)&bound)->sin_port);
    ds_daemon_log("%s clients on %s port %d",
                  strcmp(what, "rdp") ? "VNC" : "RDP", host, *port_out);
    return 0;
}

/* Reads a whole PEM file (at most DS_DAEMON_PEM_MAX bytes) into *out. */
static int ds_daemon_read_pem(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;

    *out = NULL;
    if (!f) {
        int e = errno;

        ds_daemon_log("%s: %s", path, strerror(e));
        return -e;
    }
    buf = malloc(DS_DAEMON_PEM_MAX + 1);
    n = buf ? fread(buf, 1, DS_DAEMON_PEM_MAX + 1, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n > DS_DAEMON_PEM_MAX) {
        ds_daemon_log("%s: empty or larger than %d bytes", path,
                      DS_DAEMON_PEM_MAX);
        free(buf);
        return -EINVAL;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

/* The RDP port's certificate and key: the configured files, or a
 * self-signed pair made once in the state folder. Read here, as root:
 * session processes get them over their channel. */
static int ds_daemon_tls(struct ds_daemon *d)
{
    char cert[DS_CONFIG_PATH_MAX + 16], key[DS_CONFIG_PATH_MAX + 16], err[256],
        fp[96];
    int r;

    if (d->rdp_fd < 0)
        return 0;
    if (!d->cfg.tls_cert[0] != !d->cfg.tls_key[0]) {
        ds_daemon_log("tls_cert and tls_key: set both or neither");
        return -EINVAL;
    }
    if (d->cfg.tls_cert[0]) {
        snprintf(cert, sizeof(cert), "%s", d->cfg.tls_cert);
        snprintf(key, sizeof(key), "%s", d->cfg.tls_key);
    } else {
        snprintf(cert, sizeof(cert), "%s/rdp-tls.crt", d->cfg.state_dir);
        snprintf(key, sizeof(key), "%s/rdp-tls.key", d->cfg.state_dir);
        r = dp_tls_selfsigned(cert, key, "deskpool-display", err, sizeof(err));
        if (r < 0) {
            ds_daemon_log("RDP certificate: %s", err);
            return r;
        }
    }
    r = ds_daemon_read_pem(cert, &d->tls_cert_pem);
    if (!r)
        r = ds_daemon_read_pem(key, &d->tls_key_pem);
    if (!r && dp_tls_fingerprint(cert, fp) == 0)
        ds_daemon_log("RDP certificate %s, SHA-256 %s", cert, fp);
    return r;
}

/* ------------------------------------------------------------------------
 * Sessions */

static struct ds_daemon_session *ds_daemon_free_slot(struct ds_daemon *d)
{
    int i;

    for (i = 0; i < d->cfg.max_sessions; i++)
        if (!d->sessions[i].pid)
            return &d->sessions[i];
    return NULL;
}

static struct ds_daemon_session *ds_daemon_by_pid(struct ds_daemon *d,
                                                  pid_t pid)
{
    int i;

    for (i = 0; i < d->cfg.max_sessions; i++)
        if (d->sessions[i].pid == pid)
            return &d->sessions[i];
    return NULL;
}

static json_t *ds_daemon_session_json(const struct ds_daemon_session *s)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:b, s:O*}",
                     "session", (json_int_t)s->id, "desktop", s->desktop,
                     "user", s->user, "via", ds_session_via_name(s->via),
                     "peer", s->peer, "pid", (int)s->pid, "since",
                     (json_int_t)s->since_ms, "bytes_sent",
                     (json_int_t)s->bytes_sent, "frames", (json_int_t)s->frames,
                     "view_only", s->view_only, "latency", s->latency);
}

static void ds_daemon_refused(struct ds_daemon *d, struct ds_daemon_session *s,
                              const char *reason)
{
    ds_daemon_log("%s client %s refused: %s", ds_session_via_name(s->via),
                  s->peer, reason);
    ds_ctl_event(d->ctl, "refused",
                 json_pack("{s:s, s:s, s:s}", "via",
                           ds_session_via_name(s->via), "peer", s->peer,
                           "reason", reason));
    s->refusal_told = 1;
}

/* In the child between fork and exec: become the session process. Only
 * async-signal-safe calls; any failure ends the child. */
static void ds_daemon_exec_session(struct ds_daemon *d, int client_fd,
                                   int chan_fd,
                                   const struct ds_daemon_session *s)
{
    const int rdp = s->via == DS_SESSION_RDP;
    char interval[16];
    char *argv[] = {rdp ? "deskpool-display-rdp" : "deskpool-display",
                    "--session",
                    (char *)ds_session_via_name(s->via),
                    "--peer",
                    (char *)s->peer,
                    "--stats-interval",
                    interval,
                    NULL};
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct no_caps[_LINUX_CAPABILITY_U32S_3] = {0};
    sigset_t none;

    snprintf(interval, sizeof(interval), "%d", d->cfg.stats_interval);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* the daemon blocks some */
    if (dup2(client_fd, DS_DAEMON_CLIENT_FD) < 0 ||
        dup2(chan_fd, DS_DAEMON_CHAN_FD) < 0)
        _exit(111);
    /* Drop everything else the daemon holds (listeners, channels,
     * control connections): dup2 cleared close-on-exec on these two. */
    if (close_range(DS_DAEMON_CHAN_FD + 1, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        _exit(111);
    if (d->drop &&
        (setgroups(0, NULL) < 0 || setgid(d->gid) < 0 || setuid(d->uid) < 0))
        _exit(112);
    /* A dedicated daemon user keeps its capabilities across setuid (no uid
     * was 0), and ambient ones would survive the exec: the session gets
     * none (lowering permitted clears the ambient set too). */
    if (syscall(SYS_capset, &hdr, no_caps) < 0)
        _exit(112);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    execv(rdp ? d->rdp_exe : d->self_exe, argv);
    _exit(113);
}

/* Accepted a client: start its session process. */
static void ds_daemon_spawn(struct ds_daemon *d, int client_fd,
                            enum ds_session_via via, const char *peer)
{
    struct ds_daemon_session *s = ds_daemon_free_slot(d);
    int chan[2];
    pid_t pid;

    if (!s) {
        struct ds_daemon_session tmp = {.via = via};

        snprintf(tmp.peer, sizeof(tmp.peer), "%s", peer);
        ds_daemon_refused(d, &tmp, "too many sessions");
        close(client_fd);
        return;
    }
    if (ds_chan_pair(chan) < 0) {
        ds_daemon_log("socketpair: %s", strerror(errno));
        close(client_fd);
        return;
    }
    memset(s, 0, sizeof(*s));
    s->via = via;
    snprintf(s->peer, sizeof(s->peer), "%s", peer);
    s->id = ++d->next_id;
    pid = fork();
    if (pid == 0)
        ds_daemon_exec_session(d, client_fd, chan[1], s);
    close(client_fd);
    close(chan[1]);
    if (pid < 0) {
        ds_daemon_log("fork: %s", strerror(errno));
        close(chan[0]);
        return;
    }
    fcntl(chan[0], F_SETFL, O_NONBLOCK);
    if (via == DS_SESSION_RDP) /* the session needs them before TLS */
        ds_chan_send(chan[0],
                     json_pack("{s:s, s:s, s:s}", "op", "tls", "cert",
                               d->tls_cert_pem, "key", d->tls_key_pem),
                     -1);
    s->pid = pid;
    s->chan_fd = chan[0];
    s->since_ms = ds_daemon_unix_ms();
}

static void ds_daemon_peer_name(const struct sockaddr_storage *sa,
                                socklen_t len, char *out, size_t size)
{
    char host[48], serv[8];

    if (getnameinfo((const struct sockaddr *)sa, len, host, sizeof(host), serv,
                    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV)) {
        snprintf(out, size, "unknown");
        return;
    }
    if (sa->ss_family == AF_INET6)
        snprintf(out, size, "[%s]:%s", host, serv);
    else
        snprintf(out, size, "%s:%s", host, serv);
}

static void ds_daemon_accept(struct ds_daemon *d, int listen_fd,
                             enum ds_session_via via)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    char peer[DS_DAEMON_PEER_MAX] = "gateway";
    int fd = accept4(listen_fd, (struct sockaddr *)&sa, &len, SOCK_CLOEXEC);

    if (fd < 0)
        return;
    if (via != DS_SESSION_GATEWAY)
        ds_daemon_peer_name(&sa, len, peer, sizeof(peer));
    ds_daemon_spawn(d, fd, via, peer);
}

/* ------------------------------------------------------------------------
 * Session requests */

static int ds_daemon_unhex(const char *hex, unsigned char *out, size_t n)
{
    size_t i;

    if (!hex || strlen(hex) != 2 * n)
        return -1;
    for (i = 0; i < 2 * n; i++) {
        int v;
        char c = hex[i];

        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else
            return -1;
        if (i % 2 == 0)
            out[i / 2] = (unsigned char)(v << 4);
        else
            out[i / 2] |= (unsigned char)v;
    }
    return 0;
}

/* A descriptor connected to desktop's vnc.sock, or -1. */
static int ds_daemon_connect_desktop(struct ds_daemon *d, const char *desktop)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd;

    if (hv_vm_path(d->host, desktop, "vnc.sock", path, sizeof(path)) < 0)
        return -1;
    fd = dp_unix_connect(path);
    return fd < 0 ? -1 : fd;
}

static void ds_daemon_answer_refusal(struct ds_daemon *d,
                                     struct ds_daemon_session *s,
                                     const char *reason)
{
    ds_chan_send(s->chan_fd, json_pack("{s:b, s:s}", "ok", 0, "reason", reason),
                 -1);
    ds_daemon_refused(d, s, reason);
}

/* The session a broker answer is for, if it is still there. */
static struct ds_daemon_session *ds_daemon_by_id(struct ds_daemon *d,
                                                 long long id)
{
    int i;

    for (i = 0; i < d->cfg.max_sessions; i++)
        if (d->sessions[i].pid && d->sessions[i].id == id &&
            d->sessions[i].chan_fd >= 0)
            return &d->sessions[i];
    return NULL;
}

static struct ds_daemon_ask *
ds_daemon_ask_new(struct ds_daemon *d, const struct ds_daemon_session *s)
{
    struct ds_daemon_ask *k = calloc(1, sizeof(*k));

    if (k) {
        k->d = d;
        k->session_id = s->id;
    }
    return k;
}

/* Sends a request for session s to the broker without waiting; done gets
 * the ds_daemon_ask k. Returns 0, or -1 after refusing the session. */
static int ds_daemon_ask_broker(struct ds_daemon *d,
                                struct ds_daemon_session *s, const char *op,
                                json_t *args, int timeout_ms, ds_async_fn done,
                                struct ds_daemon_ask *k)
{
    int r = k ? ds_async_request(d->async, d->cfg.broker_socket, op, args,
                                 timeout_ms, done, k)
              : -ENOMEM;

    if (!k)
        json_decref(args);
    if (r < 0) {
        free(k);
        ds_daemon_log("broker request %s: %s", op, strerror(-r));
        ds_daemon_answer_refusal(d, s, "broker not available");
        return -1;
    }
    s->asking = 1;
    return 0;
}

static void ds_daemon_grant(struct ds_daemon *d, struct ds_daemon_session *s,
                            const struct ds_cred_grant *g);

/* The broker's answer to a ticket (gateway or RDP): grant or refuse. */
static void ds_daemon_redeemed(void *arg, int r, json_t *res, const char *code,
                               const char *message)
{
    struct ds_daemon_ask *k = arg;
    struct ds_daemon_session *s = ds_daemon_by_id(k->d, k->session_id);
    struct ds_cred_grant g = {0};
    enum ds_cred_refusal refusal = DS_CRED_UNKNOWN;

    if (!s) {
        free(k);
        return;
    }
    s->asking = 0;
    if (r == 0) {
        snprintf(g.desktop, sizeof(g.desktop), "%s",
                 json_string_value(json_object_get(res, "desktop")) ?: "");
        snprintf(g.user, sizeof(g.user), "%s",
                 json_string_value(json_object_get(res, "user")) ?: "");
        g.view_only = json_is_true(json_object_get(res, "view_only"));
        if (ds_cred_name_ok(g.desktop))
            ds_daemon_grant(k->d, s, &g);
        else
            ds_daemon_answer_refusal(k->d, s, "malformed answer from broker");
    } else if (r == -EREMOTEIO &&
               (!strcmp(code, "expired") || !strcmp(code, "used") ||
                !strcmp(code, "unknown"))) {
        refusal = !strcmp(code, "expired") ? DS_CRED_EXPIRED
                  : !strcmp(code, "used")  ? DS_CRED_USED
                                           : DS_CRED_UNKNOWN;
        ds_daemon_answer_refusal(k->d, s,
                                 ds_cred_reason(refusal, DS_CRED_GATEWAY));
    } else {
        ds_daemon_log("broker: %s", message);
        ds_daemon_answer_refusal(
            k->d, s, r == -EREMOTEIO ? message : "broker not available");
    }
    free(k);
}

/* Redeems a gateway or RDP ticket with the broker (its local API); the
 * session is answered when the broker is. */
static void ds_daemon_ask_redeem(struct ds_daemon *d,
                                 struct ds_daemon_session *s,
                                 const char *ticket, const char *protocol)
{
    ds_daemon_ask_broker(
        d, s, "redeem",
        json_pack("{s:s, s:s}", "ticket", ticket, "protocol", protocol),
        DS_DAEMON_BROKER_MS, ds_daemon_redeemed, ds_daemon_ask_new(d, s));
}

static void ds_daemon_session_told(void *arg, int r, json_t *res,
                                   const char *code, const char *message)
{
    (void)res;
    (void)code;
    if (r < 0)
        ds_daemon_log("broker: session %s: %s", (const char *)arg, message);
}

/* Tells the broker a session began or ended, when there is one: on the
 * ordered lane, so a session's end never overtakes its start and a slow
 * broker never stalls this loop. */
static void ds_daemon_broker_session(struct ds_daemon *d,
                                     const struct ds_daemon_session *s,
                                     const char *event)
{
    json_t *args;
    int r;

    if (!d->cfg.broker_socket[0])
        return;
    args = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "event", event,
                     "desktop", s->desktop, "user", s->user, "protocol",
                     s->via == DS_SESSION_GATEWAY ? "browser"
                     : s->via == DS_SESSION_RDP   ? "rdp"
                                                  : "vnc",
                     "client", s->peer, "bytes", (json_int_t)s->bytes_sent);
    if (s->view_only) /* not the user's session: a helpdesk watching */
        json_object_set_new(args, "view", json_true());
    /* event is one of two string literals: it outlives the request */
    r = ds_async_request_ordered(d->async, d->cfg.broker_socket, "session",
                                 args, DS_DAEMON_BROKER_MS,
                                 ds_daemon_session_told, (void *)event);
    if (r < 0)
        ds_daemon_log("broker: session %s: %s", event, strerror(-r));
}

/* "auth-vnc" or "auth-ticket": check the credential, hand over the
 * desktop. */
static void ds_daemon_auth(struct ds_daemon *d, struct ds_daemon_session *s,
                           const json_t *msg, int vnc)
{
    unsigned char chal[DS_CRED_CHALLENGE], resp[DS_CRED_CHALLENGE];
    struct ds_cred_grant grant = {0};
    enum ds_cred_refusal r;
    const char *via_peer = json_string_value(json_object_get(msg, "via_peer"));
    long long now = (long long)dp_time_now_ms();

    if (s->authed || s->refusal_told || s->asking)
        return ds_daemon_answer_refusal(d, s, "authenticated already");
    if (via_peer && strlen(via_peer) <= 64 && ds_cred_name_ok(via_peer))
        snprintf(s->peer, sizeof(s->peer), "%s", via_peer);
    if (vnc) {
        if (ds_daemon_unhex(
                json_string_value(json_object_get(msg, "challenge")), chal,
                sizeof(chal)) < 0 ||
            ds_daemon_unhex(json_string_value(json_object_get(msg, "response")),
                            resp, sizeof(resp)) < 0)
            return ds_daemon_answer_refusal(d, s, "malformed request");
        r = ds_cred_redeem_vnc(d->creds, chal, resp, now, &grant);
    } else if (d->cfg.broker_socket[0]) {
        const char *t = json_string_value(json_object_get(msg, "ticket"));

        return ds_daemon_ask_redeem(d, s, t ? t : "", "browser");
    } else {
        const char *t = json_string_value(json_object_get(msg, "ticket"));

        r = ds_cred_redeem_ticket(d->creds, t ? t : "", now, &grant);
    }
    if (r != DS_CRED_OK)
        return ds_daemon_answer_refusal(
            d, s, ds_cred_reason(r, vnc ? DS_CRED_VNC : DS_CRED_GATEWAY));
    ds_daemon_grant(d, s, &grant);
}

/* A credential was accepted: hand the session its desktop. */
static void ds_daemon_grant(struct ds_daemon *d, struct ds_daemon_session *s,
                            const struct ds_cred_grant *g)
{
    const struct ds_cred_grant grant = *g;
    int fd;

    snprintf(s->desktop, sizeof(s->desktop), "%s", grant.desktop);
    snprintf(s->user, sizeof(s->user), "%s", grant.user);
    s->view_only = grant.view_only;
    fd = ds_daemon_connect_desktop(d, grant.desktop);
    if (fd < 0)
        return ds_daemon_answer_refusal(d, s, "desktop not running");
    if (ds_chan_send(s->chan_fd,
                     json_pack("{s:b, s:I, s:s, s:s, s:b}", "ok", 1, "session",
                               (json_int_t)s->id, "desktop", s->desktop, "user",
                               s->user, "view_only", s->view_only),
                     fd) < 0) {
        close(fd);
        return;
    }
    close(fd);
    s->authed = 1;
    ds_daemon_log("session %lld: %s on %s via %s from %s (pid %d)%s", s->id,
                  s->user, s->desktop, ds_session_via_name(s->via), s->peer,
                  (int)s->pid, s->view_only ? ", view only" : "");
    ds_daemon_broker_session(d, s, "connected");
    ds_ctl_event(d->ctl, "connected",
                 json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:b}", "session",
                           (json_int_t)s->id, "desktop", s->desktop, "user",
                           s->user, "via", ds_session_via_name(s->via), "peer",
                           s->peer, "pid", (int)s->pid, "view_only",
                           s->view_only));
}

static void ds_daemon_stats(struct ds_daemon *d, struct ds_daemon_session *s,
                            const json_t *msg)
{
    json_int_t bytes = json_integer_value(json_object_get(msg, "bytes_sent"));
    json_int_t frames = json_integer_value(json_object_get(msg, "frames"));
    json_t *lat = json_object_get(msg, "latency");

    if (bytes < s->bytes_sent || frames < s->frames)
        return; /* counters only grow */
    s->bytes_sent = bytes;
    s->frames = frames;
    if (json_is_object(lat) && json_is_integer(json_object_get(lat, "n")) &&
        json_is_number(json_object_get(lat, "p50_ms")) &&
        json_is_number(json_object_get(lat, "p99_ms"))) {
        json_decref(s->latency);
        s->latency =
            json_pack("{s:O, s:O, s:O}", "n", json_object_get(lat, "n"),
                      "p50_ms", json_object_get(lat, "p50_ms"), "p99_ms",
                      json_object_get(lat, "p99_ms"));
    }
    if (!s->authed)
        return;
    ds_ctl_event(d->ctl, "stats",
                 json_pack("{s:I, s:s, s:I, s:I, s:O*}", "session",
                           (json_int_t)s->id, "desktop", s->desktop,
                           "bytes_sent", bytes, "frames", frames, "latency",
                           s->latency));
}

static void ds_daemon_end_msg(struct ds_daemon_session *s, const json_t *msg)
{
    const char *reason = json_string_value(json_object_get(msg, "reason"));

    if (json_integer_value(json_object_get(msg, "bytes_sent")) >= s->bytes_sent)
        s->bytes_sent = json_integer_value(json_object_get(msg, "bytes_sent"));
    if (json_integer_value(json_object_get(msg, "frames")) >= s->frames)
        s->frames = json_integer_value(json_object_get(msg, "frames"));
    snprintf(s->end_reason, sizeof(s->end_reason), "%s",
             reason ? reason : "ended");
    s->end_refused = json_is_true(json_object_get(msg, "refused"));
}

/* The host part of a peer ("127.0.0.1:4242" -> "127.0.0.1", "[::1]:1" ->
 * "::1"): the broker rate-limits failed logins per address. */
static void ds_daemon_peer_host(const char *peer, char *out, size_t size)
{
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);

    if (peer[0] == '[' && n >= 2) {
        peer++;
        n -= 2;
    }
    snprintf(out, size, "%.*s", (int)n, peer);
}

/* The broker's answer to an RDP password login. */
static void ds_daemon_logged_in(void *arg, int r, json_t *res, const char *code,
                                const char *message)
{
    struct ds_daemon_ask *k = arg;
    struct ds_daemon_session *s = ds_daemon_by_id(k->d, k->session_id);
    struct ds_cred_grant g = {0};
    char why[256];

    (void)code;
    if (!s) {
        free(k);
        return;
    }
    s->asking = 0;
    if (r < 0) {
        if (r != -EREMOTEIO)
            ds_daemon_log("broker: %s", message);
        snprintf(why, sizeof(why), "%.64s: %.180s", k->user,
                 r == -EREMOTEIO ? message : "broker not available");
        ds_daemon_answer_refusal(k->d, s, why);
        free(k);
        return;
    }
    snprintf(g.desktop, sizeof(g.desktop), "%s",
             json_string_value(json_object_get(res, "desktop")) ?: "");
    snprintf(g.user, sizeof(g.user), "%s",
             json_string_value(json_object_get(res, "user")) ?: "");
    if (!ds_cred_name_ok(g.desktop) || !ds_cred_name_ok(g.user))
        ds_daemon_answer_refusal(k->d, s, "malformed answer from broker");
    else
        ds_daemon_grant(k->d, s, &g);
    free(k);
}

/*
 * "auth-rdp": the user name and password from an RDP client's Client Info
 * PDU. A user name "ticket:<ticket>" (a portal .rdp file) is redeemed
 * with the broker; anything else is a password login through the broker
 * (PAM, its rate limits), which assigns the user's desktop. Only the
 * broker grants RDP sessions. Neither waits in this loop (PAM may take
 * seconds on a failure delay): the session is answered when the broker
 * answers.
 */
static void ds_daemon_auth_rdp(struct ds_daemon *d, struct ds_daemon_session *s,
                               const json_t *msg)
{
    const char *user = json_string_value(json_object_get(msg, "user"));
    const char *password = json_string_value(json_object_get(msg, "password"));
    struct ds_daemon_ask *k;
    char host[72];

    if (s->authed || s->refusal_told || s->asking)
        return ds_daemon_answer_refusal(d, s, "authenticated already");
    if (!d->cfg.broker_socket[0])
        return ds_daemon_answer_refusal(d, s, "RDP logins need the broker");
    if (!user || !user[0] || strlen(user) > 256)
        return ds_daemon_answer_refusal(d, s, "no user name");
    if (!strncmp(user, "ticket:", 7))
        return ds_daemon_ask_redeem(d, s, user + 7, "rdp");
    if (!ds_cred_name_ok(user))
        return ds_daemon_answer_refusal(d, s, "wrong user name or password");
    ds_daemon_peer_host(s->peer, host, sizeof(host));
    k = ds_daemon_ask_new(d, s);
    if (k)
        snprintf(k->user, sizeof(k->user), "%s", user);
    ds_daemon_ask_broker(d, s, "login",
                         json_pack("{s:s, s:s, s:s, s:s}", "user", user,
                                   "password", password ? password : "",
                                   "protocol", "rdp", "client", host),
                         DS_DAEMON_LOGIN_MS, ds_daemon_logged_in, k);
}

static void ds_daemon_agent_reply(struct ds_daemon_session *s, long long id,
                                  json_t *result, const char *error)
{
    json_t *m = json_pack("{s:s, s:I, s:b}", "op", "agent-reply", "id",
                          (json_int_t)id, "ok", error == NULL);

    if (error)
        json_object_set_new(m, "error", json_string(error));
    else
        json_object_set(m, "result", result ? result : json_object());
    ds_chan_send(s->chan_fd, m, -1);
}

static void ds_daemon_agent_done(void *arg, int r, json_t *res,
                                 const char *code, const char *message)
{
    struct ds_daemon_ask *k = arg;
    struct ds_daemon_session *s = ds_daemon_by_id(k->d, k->session_id);

    (void)code;
    if (s) {
        s->agent_asking--;
        ds_daemon_agent_reply(s, k->request_id, res,
                              r == 0 ? NULL
                              : r == -EREMOTEIO && message[0]
                                  ? message
                                  : "broker not available");
    }
    free(k);
}

/*
 * "agent": a session asks its desktop's agent through the broker
 * (clipboard text, the screen's resolution) - only for its own desktop
 * and user, never for a helpdesk's view, at most DS_DAEMON_AGENT_MAX at
 * once. The broker checks the op. Answered {"op":"agent-reply","id",
 * "ok","result"|"error"}.
 */
static void ds_daemon_agent(struct ds_daemon *d, struct ds_daemon_session *s,
                            const json_t *msg)
{
    json_int_t id = json_integer_value(json_object_get(msg, "id"));
    const char *op = json_string_value(json_object_get(msg, "request"));
    json_t *args = json_object_get(msg, "args");
    struct ds_daemon_ask *k;
    int r;

    if (!s->authed || s->view_only || !op || (args && !json_is_object(args)))
        return ds_daemon_agent_reply(s, id, NULL, "not allowed");
    if (!d->cfg.broker_socket[0])
        return ds_daemon_agent_reply(s, id, NULL, "no broker");
    if (s->agent_asking >= DS_DAEMON_AGENT_MAX)
        return ds_daemon_agent_reply(s, id, NULL, "busy");
    k = ds_daemon_ask_new(d, s);
    if (!k)
        return ds_daemon_agent_reply(s, id, NULL, "out of memory");
    k->request_id = id;
    r = ds_async_request(d->async, d->cfg.broker_socket, "agent",
                         json_pack("{s:s, s:s, s:s, s:O*}", "desktop",
                                   s->desktop, "user", s->user, "op", op,
                                   "args", args),
                         DS_DAEMON_AGENT_MS, ds_daemon_agent_done, k);
    if (r < 0) {
        free(k);
        return ds_daemon_agent_reply(s, id, NULL, "busy");
    }
    s->agent_asking++;
}

/* Messages from a session process. A session is untrusted: whatever it
 * sends can only refuse or end itself. */
static void ds_daemon_chan_input(struct ds_daemon *d,
                                 struct ds_daemon_session *s)
{
    int i;

    for (i = 0; i < 16 && s->chan_fd >= 0; i++) {
        json_t *msg;
        const char *op;
        int r = ds_chan_recv(s->chan_fd, &msg, NULL);

        if (r == -EAGAIN)
            return;
        if (r < 0 && r != -EPROTO) {
            close(s->chan_fd);
            s->chan_fd = -1;
            return;
        }
        if (r < 0)
            continue;
        op = json_string_value(json_object_get(msg, "op"));
        if (!op)
            ;
        else if (!strcmp(op, "auth-vnc") && s->via == DS_SESSION_VNC)
            ds_daemon_auth(d, s, msg, 1);
        else if (!strcmp(op, "auth-ticket") && s->via == DS_SESSION_GATEWAY)
            ds_daemon_auth(d, s, msg, 0);
        else if (!strcmp(op, "auth-rdp") && s->via == DS_SESSION_RDP)
            ds_daemon_auth_rdp(d, s, msg);
        else if (!strcmp(op, "stats"))
            ds_daemon_stats(d, s, msg);
        else if (!strcmp(op, "agent"))
            ds_daemon_agent(d, s, msg);
        else if (!strcmp(op, "end"))
            ds_daemon_end_msg(s, msg);
        json_decref(msg);
    }
}

/* A session process has exited: report and free its slot. */
static void ds_daemon_session_gone(struct ds_daemon *d,
                                   struct ds_daemon_session *s, int status)
{
    char why[160];

    if (s->chan_fd >= 0) {
        ds_daemon_chan_input(d, s); /* its last words */
        if (s->chan_fd >= 0)
            close(s->chan_fd);
    }
    if (WIFSIGNALED(status))
        snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(status));
    else if (s->end_reason[0])
        snprintf(why, sizeof(why), "%s", s->end_reason);
    else
        snprintf(why, sizeof(why), "exited with status %d",
                 WEXITSTATUS(status));
    if (s->authed) {
        ds_daemon_log("session %lld ended: %s", s->id, why);
        ds_daemon_broker_session(d, s, "disconnected");
        ds_ctl_event(d->ctl, "disconnected",
                     json_pack("{s:I, s:s, s:s, s:s, s:I, s:I}", "session",
                               (json_int_t)s->id, "desktop", s->desktop, "user",
                               s->user, "reason", why, "bytes_sent",
                               (json_int_t)s->bytes_sent, "frames",
                               (json_int_t)s->frames));
    } else if (!s->refusal_told) {
        ds_daemon_refused(d, s, why);
    }
    json_decref(s->latency);
    memset(s, 0, sizeof(*s));
    s->chan_fd = -1;
}

static void ds_daemon_reap(struct ds_daemon *d)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct ds_daemon_session *s = ds_daemon_by_pid(d, pid);

        if (s)
            ds_daemon_session_gone(d, s, status);
    }
}

/* ------------------------------------------------------------------------
 * Control requests */

static void ds_daemon_op_issue(struct ds_daemon *d, struct ds_ctl_conn *c,
                               const struct dp_msg *m)
{
    char detail[160], cred[DS_CRED_TICKET_LEN + 1];
    const char *kind, *desktop, *user;
    json_int_t ttl = d->cfg.credential_ttl;
    int64_t expires;
    enum ds_cred_kind k;
    long long now = (long long)dp_time_now_ms();
    json_t *res;
    int r;

    if (dp_msg_string(m->body, "kind", 1, 16, 1, &kind, detail,
                      sizeof(detail)) < 0 ||
        dp_msg_string(m->body, "desktop", 1, DS_CRED_NAME_MAX, 1, &desktop,
                      detail, sizeof(detail)) < 0 ||
        dp_msg_string(m->body, "user", 1, DS_CRED_NAME_MAX, 1, &user, detail,
                      sizeof(detail)) < 0 ||
        (json_object_get(m->body, "ttl") &&
         dp_msg_int(m->body, "ttl", 1, 3600, &ttl, detail, sizeof(detail)) < 0))
        return ds_ctl_reply_error(c, m->id, "bad-request", detail);
    if (!strcmp(kind, "vnc"))
        k = DS_CRED_VNC;
    else if (!strcmp(kind, "gateway"))
        k = DS_CRED_GATEWAY;
    else
        return ds_ctl_reply_error(c, m->id, "bad-request",
                                  "kind: must be \"vnc\" or \"gateway\"");
    if (!ds_cred_name_ok(desktop) || !ds_cred_name_ok(user))
        return ds_ctl_reply_error(c, m->id, "bad-request",
                                  "desktop and user: printable, no spaces");
    if (k == DS_CRED_VNC && d->vnc_fd < 0)
        return ds_ctl_reply_error(c, m->id, "failed",
                                  "the VNC port is off (vnc_listen)");
    r = ds_cred_issue(d->creds, k, desktop, user, (int)ttl, now, cred,
                      sizeof(cred), &expires);
    if (r < 0)
        return ds_ctl_reply_error(c, m->id, "failed", strerror(-r));
    res = json_pack("{s:s, s:s, s:I}", "credential", cred, "kind", kind,
                    "expires",
                    (json_int_t)(ds_daemon_unix_ms() + (expires - now)));
    if (k == DS_CRED_VNC)
        json_object_set_new(res, "port", json_integer(d->vnc_port));
    ds_daemon_log("issued a %s credential for %s on %s, valid %d s", kind, user,
                  desktop, (int)ttl);
    ds_ctl_reply_ok(c, m->id, res);
}

static void ds_daemon_op_revoke(struct ds_daemon *d, struct ds_ctl_conn *c,
                                const struct dp_msg *m)
{
    char detail[160];
    const char *desktop;

    if (dp_msg_string(m->body, "desktop", 1, DS_CRED_NAME_MAX, 1, &desktop,
                      detail, sizeof(detail)) < 0)
        return ds_ctl_reply_error(c, m->id, "bad-request", detail);
    ds_ctl_reply_ok(
        c, m->id,
        json_pack("{s:i}", "revoked", ds_cred_revoke(d->creds, desktop)));
}

static void ds_daemon_op_sessions(struct ds_daemon *d, struct ds_ctl_conn *c,
                                  const struct dp_msg *m)
{
    json_t *list = json_array();
    int i;

    for (i = 0; i < d->cfg.max_sessions; i++)
        if (d->sessions[i].pid && d->sessions[i].authed)
            json_array_append_new(list,
                                  ds_daemon_session_json(&d->sessions[i]));
    ds_ctl_reply_ok(c, m->id, json_pack("{s:o}", "sessions", list));
}

static void ds_daemon_op_disconnect(struct ds_daemon *d, struct ds_ctl_conn *c,
                                    const struct dp_msg *m)
{
    char detail[160];
    const char *desktop = NULL;
    json_int_t id = 0;
    int i, n = 0;

    if (json_object_get(m->body, "session")) {
        if (dp_msg_int(m->body, "session", 1, INT64_MAX >> 11, &id, detail,
                       sizeof(detail)) < 0)
            return ds_ctl_reply_error(c, m->id, "bad-request", detail);
    } else if (dp_msg_string(m->body, "desktop", 1, DS_CRED_NAME_MAX, 1,
                             &desktop, detail, sizeof(detail)) < 0) {
        return ds_ctl_reply_error(c, m->id, "bad-request",
                                  "session or desktop: required");
    }
    for (i = 0; i < d->cfg.max_sessions; i++) {
        struct ds_daemon_session *s = &d->sessions[i];

        if (!s->pid || !s->authed)
            continue;
        if (desktop ? strcmp(s->desktop, desktop) != 0 : s->id != id)
            continue;
        if (kill(s->pid, SIGTERM) == 0)
            n++;
    }
    ds_ctl_reply_ok(c, m->id, json_pack("{s:i}", "disconnected", n));
}

static void ds_daemon_request(void *arg, struct ds_ctl_conn *c,
                              const struct dp_msg *m)
{
    struct ds_daemon *d = arg;

    if (!strcmp(m->name, "issue"))
        ds_daemon_op_issue(d, c, m);
    else if (!strcmp(m->name, "revoke"))
        ds_daemon_op_revoke(d, c, m);
    else if (!strcmp(m->name, "sessions"))
        ds_daemon_op_sessions(d, c, m);
    else if (!strcmp(m->name, "disconnect"))
        ds_daemon_op_disconnect(d, c, m);
    else if (!strcmp(m->name, "subscribe")) {
        ds_ctl_subscribe(c);
        ds_ctl_reply_ok(c, m->id, NULL);
    } else
        ds_ctl_reply_error(c, m->id, "unknown-op", m->name);
}

/* ------------------------------------------------------------------------
 * Opening and the loop */

/* Whether this process may switch users although it is not root: the
 * systemd unit runs the daemon as a dedicated user with CAP_SETUID and
 * CAP_SETGID (config/deskpool-display.service). */
static int ds_daemon_can_switch(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
    const uint32_t need = (1u << CAP_SETUID) | (1u << CAP_SETGID);

    if (syscall(SYS_capget, &hdr, caps) < 0)
        return 0;
    return (caps[0].effective & need) == need;
}

static int ds_daemon_user(struct ds_daemon *d)
{
    struct passwd *pw;

    if (geteuid() != 0 && !ds_daemon_can_switch()) {
        ds_daemon_log("session processes run as this daemon's user (not "
                      "root, no CAP_SETUID and CAP_SETGID to become %s)",
                      d->cfg.user);
        return 0;
    }
    pw = getpwnam(d->cfg.user);
    if (!pw) {
        ds_daemon_log("user %s: no such user", d->cfg.user);
        return -EINVAL;
    }
    if (pw->pw_uid == 0) {
        ds_daemon_log("user %s: session processes must not run as root",
                      d->cfg.user);
        return -EINVAL;
    }
    if (pw->pw_uid == geteuid())
        ds_daemon_log("user %s is this daemon's own user: session processes "
                      "are not kept apart from it",
                      d->cfg.user);
    d->uid = pw->pw_uid;
    d->gid = pw->pw_gid;
    d->drop = 1;
    return 0;
}

static int ds_daemon_signals(struct ds_daemon *d)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    d->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return d->sig_fd < 0 ? -errno : 0;
}

int ds_daemon_open(struct ds_daemon **out, const struct ds_config *cfg,
                   const char *self_exe, const char *rdp_exe)
{
    struct hv_host_config hc = {.quiet = 1};
    struct ds_daemon *d;
    char err[256];
    int r;

    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->cfg = *cfg;
    d->sig_fd = d->vnc_fd = d->gateway_fd = d->rdp_fd = -1;
    snprintf(d->self_exe, sizeof(d->self_exe), "%s", self_exe);
    snprintf(d->rdp_exe, sizeof(d->rdp_exe), "%s", rdp_exe ? rdp_exe : "");
    d->sessions = calloc((size_t)cfg->max_sessions, sizeof(*d->sessions));
    d->creds = ds_cred_store_new();
    if (!d->sessions || !d->creds || ds_async_open(&d->async) < 0) {
        ds_daemon_close(d);
        return -ENOMEM;
    }
    hc.state_dir = cfg->state_dir;
    r = hv_host_open(&d->host, &hc, err, sizeof(err));
    if (r < 0)
        ds_daemon_log("state folder: %s", err);
    if (!r)
        r = ds_daemon_user(d);
    if (!r && d->cfg.rdp_listen[0] && access(d->rdp_exe, X_OK) < 0) {
        r = -errno;
        ds_daemon_log("rdp_listen: RDP sessions need %s: %s",
                      d->rdp_exe[0] ? d->rdp_exe : "deskpool-display-rdp",
                      strerror(-r));
    }
    if (!r)
        r = ds_daemon_signals(d);
    if (!r)
        r = ds_daemon_listen_tcp(d->cfg.vnc_listen, "vnc", &d->vnc_fd,
                                 &d->vnc_port);
    if (!r)
        r = ds_daemon_listen_tcp(d->cfg.rdp_listen, "rdp", &d->rdp_fd,
                                 &d->rdp_port);
    if (!r)
        r = ds_daemon_tls(d);
    if (!r) {
        d->gateway_fd = dp_unix_listen(cfg->gateway_socket, 64, SOCK_NONBLOCK);
        if (d->gateway_fd < 0) {
            r = d->gateway_fd;
            ds_daemon_log("gateway socket %s: %s", cfg->gateway_socket,
                          strerror(-r));
        }
    }
    if (!r)
        r = ds_ctl_open(&d->ctl, cfg->control_socket, ds_daemon_request, d,
                        "hello",
                        json_pack("{s:i, s:s}", "version", 1, "display",
                                  DS_DAEMON_VERSION));
    if (r < 0) {
        ds_daemon_close(d);
        return r;
    }
    *out = d;
    return 0;
}

void ds_daemon_close(struct ds_daemon *d)
{
    int i;

    if (!d)
        return;
    ds_async_close(d->async); /* its callbacks look at the sessions */
    ds_ctl_close(d->ctl);
    if (d->gateway_fd >= 0) {
        close(d->gateway_fd);
        unlink(d->cfg.gateway_socket);
    }
    if (d->vnc_fd >= 0)
        close(d->vnc_fd);
    if (d->rdp_fd >= 0)
        close(d->rdp_fd);
    free(d->tls_cert_pem);
    free(d->tls_key_pem);
    if (d->sig_fd >= 0)
        close(d->sig_fd);
    for (i = 0; d->sessions && i < d->cfg.max_sessions; i++) {
        if (d->sessions[i].pid && d->sessions[i].chan_fd >= 0)
            close(d->sessions[i].chan_fd);
        json_decref(d->sessions[i].latency);
    }
    free(d->sessions);
    ds_cred_store_free(d->creds);
    hv_host_close(d->host);
    free(d);
}

/* Returns 1 when the daemon was told to stop. */
static int ds_daemon_signal_input(struct ds_daemon *d)
{
    struct signalfd_siginfo si;
    int stop = 0;

    while (read(d->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
            stop = 1;
    }
    ds_daemon_reap(d); /* SIGCHLDs coalesce: reap whatever exited */
    return stop;
}

int ds_daemon_run(struct ds_daemon *d)
{
    int max = 5 + DS_CTL_MAX_CONNS + 1 + d->cfg.max_sessions;
    struct pollfd *p = calloc((size_t)max, sizeof(*p));

    if (!p)
        return -ENOMEM;
    ds_daemon_log("ready: control %s, gateway %s", d->cfg.control_socket,
                  d->cfg.gateway_socket);
    for (;;) {
        int n = 0, nctl, first_session, i;
        long long now;

        p[n++] = (struct pollfd){.fd = d->sig_fd, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = d->gateway_fd, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = d->vnc_fd, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = d->rdp_fd, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = ds_async_fd(d->async), .events = POLLIN};
        nctl = ds_ctl_fill(d->ctl, p + n, DS_CTL_MAX_CONNS + 1);
        n += nctl;
        first_session = n;
        for (i = 0; i < d->cfg.max_sessions; i++)
            p[n++] = (struct pollfd){
                .fd = d->sessions[i].pid ? d->sessions[i].chan_fd : -1,
                .events = POLLIN};
        if (poll(p, (nfds_t)n, 1000) < 0 && errno != EINTR) {
            free(p);
            return -errno;
        }
        if (p[0].revents && ds_daemon_signal_input(d))
            break;
        if (p[1].revents)
            ds_daemon_accept(d, d->gateway_fd, DS_SESSION_GATEWAY);
        if (p[2].revents)
            ds_daemon_accept(d, d->vnc_fd, DS_SESSION_VNC);
        if (p[3].revents)
            ds_daemon_accept(d, d->rdp_fd, DS_SESSION_RDP);
        if (p[4].revents)
            ds_async_dispatch(d->async);
        for (i = 0; i < d->cfg.max_sessions; i++)
            if (p[first_session + i].fd >= 0 && p[first_session + i].revents &&
                d->sessions[i].pid)
                ds_daemon_chan_input(d, &d->sessions[i]);
        ds_ctl_dispatch(d->ctl, p + 5, nctl);
        now = (long long)dp_time_now_ms();
        if (now >= d->next_expire_ms) {
            ds_cred_expire(d->creds, now);
            d->next_expire_ms = now + DS_DAEMON_EXPIRE_MS;
        }
    }
    free(p);
    ds_daemon_log("stopping; %s", "running sessions go on");
    return 0;
}
