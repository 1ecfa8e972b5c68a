/*
 * bench_display - deskpool-display beside a client connected straight to
 * QEMU's VNC server (issue 5's targets), in one run on one machine.
 *
 * Prints three Markdown tables (for BENCHMARKS.md):
 *  1. capture -> client-visible latency: a key typed through QMP into
 *     testdesk's text box, until each client's framebuffer shows it; one
 *     client through deskpool-display (VNC port, password) and one on the
 *     VM's vnc.sock, connected at the same time, same encoding;
 *  2. CPU of an idle session (only testdesk's clock ticks): the session
 *     process, the daemon, and QEMU for reference;
 *  3. bytes and updates received over a fixed window for testdesk's
 *     typing and scroll workloads, both paths at once, per encoding.
 *
 * Boots the test image ($DESKPOOL_GUEST_DIR) under a private test root in
 * /tmp (removed at exit, with every process left under it) and runs
 * $DESKPOOL_BIN_DIR/deskpool-display there.
 *
 *   bench_display [SAMPLES]    (latency samples per encoding, default 100)
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv_vm.h"
#include "td_layout.h"
#include "tsbench.h"
#include "tsguest.h"
#include "tsvnc.h"

#define BOOT_TIMEOUT_MS    180000
#define SAMPLE_TIMEOUT_MS  3000
#define LATENCY_BUDGET_MS  40000 /* per encoding: 2 encodings < 90 s */
#define IDLE_SETTLE_MS     2000
#define IDLE_WINDOW_MS     10000
#define BYTES_WINDOW_MS    10000
#define TARGET_EXTRA_P50MS 10.0
#define MAX_SAMPLES        1000

static char root[64], bin[512];
static pid_t daemon_pid;

/* ------------------------------------------------------------------------
 * The daemon and its control socket (JSON lines, display/README.md) */

struct ctl {
    int fd;
    json_int_t next_id;
    size_t len;
    char buf[65536];
};

static void print_log_tail(void)
{
    char path[128], buf[4096];
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "%s/display.log", root);
    if (!(f = fopen(path, "r")))
        return;
    if (fseek(f, -(long)sizeof(buf) + 1, SEEK_END) < 0)
        rewind(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "bench_display: end of %s:\n%s\n", path, buf);
}

/* Starts the daemon (no shell), its output in ROOT/display.log. */
static int daemon_start(const char *state_dir)
{
    char ctl[128], gw[128], log[128];
    char *argv[] = {bin,
                    "--state-dir",
                    (char *)state_dir,
                    "--control",
                    ctl,
                    "--gateway",
                    gw,
                    "--vnc-listen",
                    "127.0.0.1:0",
                    "--rdp-listen", /* off: not the real port 3389 */
                    "",
                    "--user",
                    "nobody",
                    NULL};
    pid_t pid;
    int fd;

    snprintf(ctl, sizeof(ctl), "%s/ctl.sock", root);
    snprintf(gw, sizeof(gw), "%s/gw.sock", root);
    snprintf(log, sizeof(log), "%s/display.log", root);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        close(fd);
        return -errno;
    }
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(bin, argv);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(fd);
    daemon_pid = pid;
    return 0;
}

static void daemon_stop(void)
{
    int status;

    if (daemon_pid <= 0)
        return;
    kill(daemon_pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
            daemon_pid = 0;
            return;
        }
        usleep(20000);
    }
    kill(daemon_pid, SIGKILL);
    waitpid(daemon_pid, &status, 0);
    daemon_pid = 0;
}

/* Reads one line (without the newline) into *line, NULL-terminated. */
static int ctl_read_line(struct ctl *c, char **line, int timeout_ms)
{
    double end = tsbench_now_ms() + timeout_ms;
    char *nl;
    ssize_t n;

    for (;;) {
        nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t k = (size_t)(nl - c->buf);
            *line = strndup(c->buf, k);
            memmove(c->buf, nl + 1, c->len - k - 1);
            c->len -= k + 1;
            return *line ? 0 : -ENOMEM;
        }
        if (c->len == sizeof(c->buf))
            return -EMSGSIZE;
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        int left = (int)(end - tsbench_now_ms());
        if (left <= 0 || poll(&pf, 1, left) <= 0)
            return -ETIMEDOUT;
        n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (n <= 0)
            return n == 0 ? -ECONNRESET : -errno;
        c->len += (size_t)n;
    }
}

static int ctl_open(struct ctl *c, int timeout_ms)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    double end = tsbench_now_ms() + timeout_ms;
    char *hello;
    int status;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s/ctl.sock", root);
    for (;;) {
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd >= 0 && connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            break;
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
            daemon_pid = 0;
            fprintf(stderr, "bench_display: deskpool-display exited\n");
            return -ESRCH;
        }
        if (tsbench_now_ms() > end) {
            fprintf(stderr, "bench_display: no control socket at %s\n",
                    a.sun_path);
            return -ETIMEDOUT;
        }
        usleep(20000);
    }
    if (ctl_read_line(c, &hello, 5000) < 0) {
        fprintf(stderr, "bench_display: no hello on the control socket\n");
        return -EPROTO;
    }
    free(hello);
    return 0;
}

/* Sends op with args (consumed, may be NULL); returns its result (the
 * caller decrefs) or NULL, saying why on stderr. Events are skipped. */
static json_t *ctl_call(struct ctl *c, const char *op, json_t *args)
{
    json_int_t id = ++c->next_id;
    json_t *req = json_pack("{s:I, s:s, s:o}", "id", id, "op", op, "args",
                            args ? args : json_object());
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_t *result = NULL;
    int ok = 0;

    json_decref(req);
    if (!text)
        return NULL;
    ok = dprintf(c->fd, "%s\n", text) > 0;
    free(text);
    while (ok) {
        char *line;
        json_t *m;

        if (ctl_read_line(c, &line, 10000) < 0) {
            fprintf(stderr, "bench_display: %s: no reply\n", op);
            return NULL;
        }
        m = json_loads(line, 0, NULL);
        free(line);
        if (!m || json_integer_value(json_object_get(m, "id")) != id ||
            !json_object_get(m, "ok")) {
            json_decref(m); /* an event, or not ours */
            continue;
        }
        if (json_is_true(json_object_get(m, "ok")))
            result = json_incref(json_object_get(m, "result"));
        else
            fprintf(stderr, "bench_display: %s: %s: %s\n", op,
                    json_string_value(json_object_get(m, "error")),
                    json_string_value(json_object_get(m, "message")));
        json_decref(m);
        break;
    }
    return result;
}

/* A one-time VNC password for desktop; *port is the daemon's VNC port. */
static int ctl_issue(struct ctl *c, const char *desktop, char *pw, size_t size,
                     int *port)
{
    json_t *r = ctl_call(c, "issue",
                         json_pack("{s:s, s:s, s:s}", "kind", "vnc", "desktop",
                                   desktop, "user", "bench"));
    const char *cred = json_string_value(json_object_get(r, "credential"));

    if (!cred) {
        json_decref(r);
        return -EPROTO;
    }
    snprintf(pw, size, "%s", cred);
    *port = (int)json_integer_value(json_object_get(r, "port"));
    json_decref(r);
    return *port > 0 ? 0 : -EPROTO;
}

/* The pid of the newest session of desktop, or -1. */
static pid_t ctl_session_pid(struct ctl *c, const char *desktop)
{
    json_t *r = ctl_call(c, "sessions", NULL);
    json_t *list = json_object_get(r, "sessions"), *s;
    json_int_t best = -1;
    pid_t pid = -1;
    size_t i;

    json_array_foreach(list, i, s)
    {
        json_int_t sid = json_integer_value(json_object_get(s, "session"));
        const char *d = json_string_value(json_object_get(s, "desktop"));
        if (d && !strcmp(d, desktop) && sid > best) {
            best = sid;
            pid = (pid_t)json_integer_value(json_object_get(s, "pid"));
        }
    }
    json_decref(r);
    return pid;
}

/* ------------------------------------------------------------------------
 * Clients: one through deskpool-display, one straight to QEMU */

enum { VIA_DISPLAY, VIA_DIRECT, NPATHS };
static const char *const path_name[NPATHS] = {"deskpool-display",
                                              "direct to QEMU"};

struct client {
    struct tsvnc *vnc;
    uint32_t *ref; /* what the screen looked like before the change */
    int w, h;
    int seen;
    double at_ms;
};

static void pair_close(struct client *c)
{
    for (int i = 0; i < NPATHS; i++) {
        if (c[i].vnc)
            tsvnc_close(c[i].vnc);
        free(c[i].ref);
        c[i].vnc = NULL;
        c[i].ref = NULL;
    }
}

/* Connects both paths to VM id with options o (same for both). */
static int pair_open(struct client *c, struct ctl *ctl, struct hv_host *h,
                     const char *id, const struct tsvnc_options *o)
{
    char pw[64], sock[128];
    int port, rc;

    memset(c, 0, NPATHS * sizeof(*c));
    if ((rc = ctl_issue(ctl, id, pw, sizeof(pw), &port)) < 0) {
        fprintf(stderr, "bench_display: issue for %s failed\n", id);
        return rc;
    }
    rc = tsvnc_connect_tcp(&c[VIA_DISPLAY].vnc, "127.0.0.1", port, pw, o);
    if (rc < 0) {
        fprintf(stderr, "bench_display: via deskpool-display (%s): %s\n",
                o->encodings, tsvnc_error(c[VIA_DISPLAY].vnc));
        print_log_tail();
        pair_close(c);
        return rc;
    }
    hv_vm_path(h, id, "vnc.sock", sock, sizeof(sock));
    rc = tsvnc_connect_unix(&c[VIA_DIRECT].vnc, sock, o);
    if (rc < 0) {
        fprintf(stderr, "bench_display: direct (%s): %s\n", o->encodings,
                tsvnc_error(c[VIA_DIRECT].vnc));
        pair_close(c);
        return rc;
    }
    return 0;
}

/* Handles what has arrived for client c: whole updates, without waiting
 * for more. Returns updates handled or a negative errno. */
static int client_drain(struct client *c, const char *name)
{
    int n = 0, r;

    while ((r = tsvnc_wait_update(c->vnc, 0)) > 0 && n < 64)
        n++;
    if (r < 0) {
        fprintf(stderr, "bench_display: %s: %s\n", name, tsvnc_error(c->vnc));
        return r;
    }
    return n;
}

/* Remembers what c shows now (under the top bar, where the clock is). */
static int client_keep(struct client *c)
{
    int w, h;
    const uint32_t *px = tsvnc_pixels(c->vnc, &w, &h);

    if (!px)
        return -EIO;
    if (w != c->w || h != c->h || !c->ref) {
        free(c->ref);
        c->ref = malloc((size_t)w * (size_t)h * sizeof(*px));
        if (!c->ref)
            return -ENOMEM;
        c->w = w;
        c->h = h;
    }
    memcpy(c->ref, px, (size_t)w * (size_t)h * sizeof(*px));
    return 0;
}

/* True when c shows something new below the top bar (the clock ticks in
 * the top bar; a typed key changes a text cell of the text box). */
static int client_changed(const struct client *c)
{
    int w, h;
    const uint32_t *px = tsvnc_pixels(c->vnc, &w, &h);

    if (!px || w != c->w || h != c->h)
        return 1;
    for (int y = TD_TOPBAR_H; y < h; y++)
        if (memcmp(px + (size_t)y * w, c->ref + (size_t)y * w,
                   (size_t)w * sizeof(*px)))
            return 1;
    return 0;
}

/*
 * Serves both clients until ms have passed (or, with watch, until both
 * show a change): poll() over both sockets, then each readable one is
 * drained, the first one alternating so neither is always served first.
 * Both are drained every few ms anyway: libvncclient may hold a whole
 * message in its buffer without the socket being readable.
 */
static int pair_serve(struct client *c, double t0, double ms, int watch)
{
    static unsigned turn;
    double end = t0 + ms, last_all = 0;

    while (tsbench_now_ms() < end) {
        struct pollfd pf[NPATHS];
        int all;

        if (watch && c[0].seen && c[1].seen)
            return 0;
        for (int i = 0; i < NPATHS; i++)
            pf[i] = (struct pollfd){.fd = tsvnc_fd(c[i].vnc), .events = POLLIN};
        if (poll(pf, NPATHS, 1) < 0 && errno != EINTR)
            return -errno;
        all = tsbench_now_ms() - last_all >= 4;
        if (all)
            last_all = tsbench_now_ms();
        turn++;
        for (int k = 0; k < NPATHS; k++) {
            int i = (int)((turn + k) % NPATHS), r;

            if (!all && !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            r = client_drain(&c[i], path_name[i]);
            if (r < 0)
                return r;
            if (watch && r > 0 && !c[i].seen && client_changed(&c[i])) {
                c[i].seen = 1;
                c[i].at_ms = tsbench_now_ms() - t0;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * 1. Latency */

struct latency {
    const char *encoding;
    int n[NPATHS], missed[NPATHS];
    double p50[NPATHS], p99[NPATHS], qmp_p50;
};

static double lat_ms[NPATHS][MAX_SAMPLES], qmp_ms[MAX_SAMPLES];

static int bench_latency(struct ctl *ctl, struct hv_host *h, const char *id,
                         const char *encoding, int samples, struct latency *out)
{
    static const char keys[] = "abcdefghijklmnopqrstuvwxyz";
    struct tsvnc_options o = {
        .encodings = encoding, .quality = -1, .compress = -1};
    struct client c[NPATHS];
    double start = tsbench_now_ms();
    int rc, i;

    memset(out, 0, sizeof(*out));
    out->encoding = encoding;
    if ((rc = pair_open(c, ctl, h, id, &o)) < 0)
        return rc;
    rc = pair_serve(c, tsbench_now_ms(), 500, 0);
    for (i = 0; rc == 0 && i < samples; i++) {
        char key[2] = {keys[i % 26], '\0'};
        double t0;

        if (tsbench_now_ms() - start > LATENCY_BUDGET_MS)
            break;
        for (int p = 0; p < NPATHS && rc == 0; p++) {
            c[p].seen = 0;
            rc = client_keep(&c[p]);
        }
        if (rc < 0)
            break;
        /* From before the QMP call: its connection set-up is in every
         * sample, the same for both paths (its median is reported). */
        t0 = tsbench_now_ms();
        if ((rc = tsguest_send_key(h, id, key, 0)) < 0)
            break;
        qmp_ms[i] = tsbench_now_ms() - t0;
        rc = pair_serve(c, t0, SAMPLE_TIMEOUT_MS, 1);
        for (int p = 0; p < NPATHS; p++) {
            if (c[p].seen)
                lat_ms[p][out->n[p]++] = c[p].at_ms;
            else
                out->missed[p]++;
        }
        /* Let the rest of the change arrive, and vary the phase of the
         * next key against QEMU's refresh timer (30 ms when busy). */
        if (rc == 0)
            rc = pair_serve(c, tsbench_now_ms(), 30 + rand() % 40, 0);
    }
    pair_close(c);
    if (rc < 0)
        return rc;
    for (int p = 0; p < NPATHS; p++) {
        out->p50[p] = tsbench_percentile(lat_ms[p], out->n[p], 0.50);
        out->p99[p] = tsbench_percentile(lat_ms[p], out->n[p], 0.99);
    }
    out->qmp_p50 = tsbench_percentile(qmp_ms, i, 0.50);
    fprintf(stderr, "bench_display: latency %s: %d samples\n", encoding, i);
    return 0;
}

/* ------------------------------------------------------------------------
 * 2. CPU of an idle session */

struct idle_cpu {
    double session, daemon, qemu; /* ms of CPU per second */
    double bytes_per_s, updates_per_s;
};

static int bench_idle_cpu(struct ctl *ctl, struct hv_host *h, const char *id,
                          struct idle_cpu *out)
{
    struct tsvnc_options o = {
        .encodings = "tight", .quality = 6, .compress = -1};
    struct client c[NPATHS];
    struct hv_vm_status st;
    char err[512];
    double t0, s0, d0, q0, dt;
    uint64_t b0, u0;
    pid_t spid;
    int rc;

    if ((rc = pair_open(c, ctl, h, id, &o)) < 0)
        return rc;
    /* Only the client through deskpool-display stays. */
    tsvnc_close(c[VIA_DIRECT].vnc);
    c[VIA_DIRECT].vnc = NULL;
    spid = ctl_session_pid(ctl, id);
    if (spid <= 0 || hv_vm_status(h, id, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_display: no session pid or VM status\n");
        pair_close(c);
        return -ESRCH;
    }
    rc = tsvnc_pump(c[VIA_DISPLAY].vnc, IDLE_SETTLE_MS);
    t0 = tsbench_now_ms();
    s0 = tsbench_cpu_ms(spid);
    d0 = tsbench_cpu_ms(daemon_pid);
    q0 = tsbench_cpu_ms(st.pid);
    b0 = tsvnc_bytes(c[VIA_DISPLAY].vnc);
    u0 = tsvnc_updates(c[VIA_DISPLAY].vnc);
    if (rc == 0)
        rc = tsvnc_pump(c[VIA_DISPLAY].vnc, IDLE_WINDOW_MS);
    dt = (tsbench_now_ms() - t0) / 1000.0;
    out->session = (tsbench_cpu_ms(spid) - s0) / dt;
    out->daemon = (tsbench_cpu_ms(daemon_pid) - d0) / dt;
    out->qemu = (tsbench_cpu_ms(st.pid) - q0) / dt;
    out->bytes_per_s = (double)(tsvnc_bytes(c[VIA_DISPLAY].vnc) - b0) / dt;
    out->updates_per_s = (double)(tsvnc_updates(c[VIA_DISPLAY].vnc) - u0) / dt;
    if (rc < 0)
        fprintf(stderr, "bench_display: idle client: %s\n",
                tsvnc_error(c[VIA_DISPLAY].vnc));
    pair_close(c);
    return rc;
}

/* ------------------------------------------------------------------------
 * 3. Bytes for the typing and scroll workloads */

struct traffic {
    const char *mode, *encoding;
    uint64_t bytes[NPATHS], updates[NPATHS];
    double session_cpu; /* ms per second */
};

static int bench_traffic(struct ctl *ctl, struct hv_host *h, const char *id,
                         const struct tsvnc_options *o, struct traffic *out)
{
    struct client c[NPATHS];
    uint64_t b0[NPATHS], u0[NPATHS];
    double t0, s0;
    pid_t spid;
    int rc;

    if ((rc = pair_open(c, ctl, h, id, o)) < 0)
        return rc;
    spid = ctl_session_pid(ctl, id);
    rc = pair_serve(c, tsbench_now_ms(), 1000, 0);
    for (int p = 0; p < NPATHS; p++) {
        b0[p] = tsvnc_bytes(c[p].vnc);
        u0[p] = tsvnc_updates(c[p].vnc);
    }
    t0 = tsbench_now_ms();
    s0 = tsbench_cpu_ms(spid);
    if (rc == 0)
        rc = pair_serve(c, t0, BYTES_WINDOW_MS, 0);
    out->session_cpu =
        (tsbench_cpu_ms(spid) - s0) / ((tsbench_now_ms() - t0) / 1000.0);
    for (int p = 0; p < NPATHS; p++) {
        out->bytes[p] = tsvnc_bytes(c[p].vnc) - b0[p];
        out->updates[p] = tsvnc_updates(c[p].vnc) - u0[p];
    }
    pair_close(c);
    return rc;
}

/* ------------------------------------------------------------------------
 * Guests */

static int guest_boot(struct hv_host *h, const char *id, const char *args)
{
    double t0 = tsbench_now_ms();
    int rc;

    fprintf(stderr, "bench_display: booting %s (%s)\n", id, args);
    if ((rc = tsguest_start(h, id, args)) < 0)
        return rc;
    rc = tsguest_wait_serial(h, id, TSGUEST_READY, 1, BOOT_TIMEOUT_MS);
    if (rc == 0)
        fprintf(stderr, "bench_display: %s drawn after %.0f ms\n", id,
                tsbench_now_ms() - t0);
    return rc;
}

static void guest_stop(struct hv_host *h, const char *id)
{
    char err[512];

    if (hv_vm_delete(h, id, err, sizeof(err)) < 0)
        fprintf(stderr, "bench_display: %s\n", err);
}

static void print_header(const char *title, const char *accel)
{
    char cpu[128];

    tsguest_cpu_model(cpu, sizeof(cpu));
    printf("\n### deskpool-display: %s\n\n%s, %ld cores, guests under %s, "
           "%dx%d test desktop\n\n",
           title, cpu, sysconf(_SC_NPROCESSORS_ONLN), accel, TSGUEST_WIDTH,
           TSGUEST_HEIGHT);
}

static void print_latency(const struct latency *l, int n, const char *accel)
{
    print_header("capture -> client-visible latency", accel);
    printf("A key typed through QMP into testdesk's text box until the "
           "client's framebuffer shows it; both clients connected at once, "
           "same encoding (tight: lossless). Times include the QMP call "
           "(median given).\n\n");
    printf("| encoding | path | n | missed | p50 (ms) | p99 (ms) | "
           "p50 - direct p50 (ms) |\n|---|---|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++)
        for (int p = 0; p < NPATHS; p++) {
            printf("| %s | %s | %d | %d | %.1f | %.1f | ", l[i].encoding,
                   path_name[p], l[i].n[p], l[i].missed[p], l[i].p50[p],
                   l[i].p99[p]);
            if (p == VIA_DISPLAY)
                printf("%+.1f (target <= %+.0f) |\n",
                       l[i].p50[p] - l[i].p50[VIA_DIRECT], TARGET_EXTRA_P50MS);
            else
                printf("QMP call p50 %.1f |\n", l[i].qmp_p50);
        }
    /* make bench's summary: the lossless tight row (what clients use) */
    tsbench_summary_fact("accel", accel);
    for (int i = 0; i < n; i++) {
        char v[96], pv[96], t[96];
        double extra = l[i].p50[VIA_DISPLAY] - l[i].p50[VIA_DIRECT];

        if (strcmp(l[i].encoding, "tight"))
            continue;
        snprintf(v, sizeof(v), "p50 %.1f ms, p99 %.1f ms (n %d)",
                 l[i].p50[VIA_DISPLAY], l[i].p99[VIA_DISPLAY],
                 l[i].n[VIA_DISPLAY]);
        snprintf(pv, sizeof(pv), "p50 %.1f ms, p99 %.1f ms",
                 l[i].p50[VIA_DIRECT], l[i].p99[VIA_DIRECT]);
        snprintf(t, sizeof(t), "p50 <= QEMU's %+.0f ms: %s (%+.1f ms)",
                 TARGET_EXTRA_P50MS, tsbench_met(extra <= TARGET_EXTRA_P50MS),
                 extra);
        tsbench_summary_row("display: VNC",
                            "key -> client-visible, idle desktop (tight, "
                            "lossless)",
                            v, "QEMU's own VNC (same client, same time)", pv,
                            t);
    }
}

static void print_idle(const struct idle_cpu *c, const char *accel)
{
    print_header("CPU of an idle session", accel);
    printf("One client (tight, quality 6) through deskpool-display, "
           "testdesk idle (only the clock ticks); %d s after %d s to "
           "settle. Client received %.0f bytes/s in %.1f updates/s.\n\n",
           IDLE_WINDOW_MS / 1000, IDLE_SETTLE_MS / 1000, c->bytes_per_s,
           c->updates_per_s);
    printf("| process | CPU (ms/s) | %% of a core |\n|---|---:|---:|\n");
    printf("| session process | %.2f | %.2f |\n", c->session,
           c->session / 10.0);
    printf("| daemon | %.2f | %.2f |\n", c->daemon, c->daemon / 10.0);
    printf("| QEMU (reference) | %.1f | %.1f |\n", c->qemu, c->qemu / 10.0);
    {
        char v[96], pv[96];

        snprintf(v, sizeof(v), "session %.2f %%, daemon %.2f %% of a core",
                 c->session / 10.0, c->daemon / 10.0);
        snprintf(pv, sizeof(pv), "%.1f %% of a core (guest included)",
                 c->qemu / 10.0);
        tsbench_summary_row("display: VNC", "CPU, idle session (tight q6)", v,
                            "QEMU's whole process (reference)", pv, NULL);
    }
}

static void print_traffic(const struct traffic *t, int n, const char *accel)
{
    print_header("bytes sent per workload", accel);
    printf("Bytes and framebuffer updates the client received in %d s, "
           "both paths connected at once with the same encoding; session "
           "CPU is the deskpool-display session process.\n\n",
           BYTES_WINDOW_MS / 1000);
    printf("| workload | encoding | bytes display | bytes direct | "
           "ratio | updates display | updates direct | session CPU (%% "
           "core) |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++)
        printf("| %s | %s | %llu | %llu | %.2f | %llu | %llu | %.1f |\n",
               t[i].mode, t[i].encoding,
               (unsigned long long)t[i].bytes[VIA_DISPLAY],
               (unsigned long long)t[i].bytes[VIA_DIRECT],
               t[i].bytes[VIA_DIRECT] ? (double)t[i].bytes[VIA_DISPLAY] /
                                            (double)t[i].bytes[VIA_DIRECT]
                                      : -1.0,
               (unsigned long long)t[i].updates[VIA_DISPLAY],
               (unsigned long long)t[i].updates[VIA_DIRECT],
               t[i].session_cpu / 10.0);
    for (int i = 0; i < n; i++) {
        double s = BYTES_WINDOW_MS / 1000.0;
        char m[96], v[128], pv[96];

        if (strcmp(t[i].encoding, "tight q6"))
            continue;
        snprintf(m, sizeof(m), "%s: bandwidth, updates/s, session CPU (%s)",
                 t[i].mode, t[i].encoding);
        snprintf(v, sizeof(v), "%.0f B/s, %.1f/s, %.1f %% of a core",
                 (double)t[i].bytes[VIA_DISPLAY] / s,
                 (double)t[i].updates[VIA_DISPLAY] / s,
                 t[i].session_cpu / 10.0);
        snprintf(pv, sizeof(pv), "%.0f B/s, %.1f/s",
                 (double)t[i].bytes[VIA_DIRECT] / s,
                 (double)t[i].updates[VIA_DIRECT] / s);
        tsbench_summary_row("display: VNC", m, v,
                            "QEMU's own VNC (same encoding, same time)", pv,
                            NULL);
    }
}

int main(int argc, char **argv)
{
    static const char *const encodings[] = {"raw", "tight"};
    static const struct {
        const char *label;
        struct tsvnc_options o;
    } traffic_enc[] = {
        {"tight q6", {.encodings = "tight", .quality = 6, .compress = -1}},
        {"zrle", {.encodings = "zrle", .quality = -1, .compress = -1}},
        {"raw", {.encodings = "raw", .quality = -1, .compress = -1}},
    };
    static const char *const modes[] = {"typing", "scroll"};
    struct latency lat[2];
    struct idle_cpu idle;
    struct traffic tr[6];
    struct hv_host *h = NULL;
    struct hv_vm_status st;
    struct ctl ctl = {.fd = -1};
    char err[512], accel[8] = "?";
    const char *bindir = getenv("DESKPOOL_BIN_DIR");
    int samples = argc > 1 ? atoi(argv[1]) : 100, ntr = 0, rc = 1;

    if (!bindir || !tsguest_guest_dir() || samples < 1 ||
        samples > MAX_SAMPLES) {
        fprintf(stderr, "usage: DESKPOOL_GUEST_DIR=... DESKPOOL_BIN_DIR=... "
                        "bench_display [SAMPLES (1-1000)]\n");
        return 2;
    }
    snprintf(bin, sizeof(bin), "%s/deskpool-display", bindir);
    if (access(bin, X_OK) < 0) {
        fprintf(stderr, "bench_display: %s: %s\n", bin, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    tsbench_exit_on_signals();
    srand(1);
    if (!tsguest_root())
        return 1;
    snprintf(root, sizeof(root), "%s", tsguest_root());
    if (tsguest_host_open(&h, NULL) < 0)
        goto out;
    if (daemon_start(hv_host_state_dir(h)) < 0 || ctl_open(&ctl, 5000) < 0) {
        print_log_tail();
        goto out;
    }

    if (guest_boot(h, "idle", "testdesk.mode=idle") < 0)
        goto out;
    if (hv_vm_status(h, "idle", &st, err, sizeof(err)) == 0)
        snprintf(accel, sizeof(accel), "%s", st.accel);
    for (int i = 0; i < 2; i++)
        if (bench_latency(&ctl, h, "idle", encodings[i], samples, &lat[i]) < 0)
            goto out;
    print_latency(lat, 2, accel);
    fflush(stdout);
    if (bench_idle_cpu(&ctl, h, "idle", &idle) < 0)
        goto out;
    print_idle(&idle, accel);
    fflush(stdout);
    guest_stop(h, "idle");

    for (int m = 0; m < 2; m++) {
        char args[64];

        snprintf(args, sizeof(args), "testdesk.mode=%s", modes[m]);
        if (guest_boot(h, modes[m], args) < 0)
            goto out;
        for (int e = 0; e < 3; e++, ntr++) {
            tr[ntr].mode = modes[m];
            tr[ntr].encoding = traffic_enc[e].label;
            if (bench_traffic(&ctl, h, modes[m], &traffic_enc[e].o, &tr[ntr]) <
                0)
                goto out;
        }
        guest_stop(h, modes[m]);
    }
    print_traffic(tr, ntr, accel);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "bench_display: failed (see above)\n");
    fflush(stdout);
    if (ctl.fd >= 0)
        close(ctl.fd);
    daemon_stop();
    tsguest_host_close(h);
    tsguest_cleanup();
    return rc;
}
