/*
 * test_e2e.c - the whole system as `make run` starts it
 * (config/deskpool-demo), from an empty state folder to a user typing
 * into a pooled desktop over each protocol, and back:
 *
 *  1. the demo starts on a fresh state folder and free ports and says
 *     "deskpool-demo: ready"; its pool "demo" is an instant, floating pool;
 *  2. browser: alice logs in on the portal in Chromium, "Open in browser",
 *     types (tests/web/e2e.mjs); the guest's own screen (QMP screendump)
 *     shows the text while the viewer is connected;
 *  3. RDP: alice logs in with her password (tsrdp), types scancodes; the
 *     guest and the RDP client show the text;
 *  4. VNC: alice launches with protocol vnc through the API (a one-time
 *     password), tsvnc types; the guest and the VNC client show it;
 *     all three land on her one desktop (floating: hers until logoff);
 *  5. alice logs off: her desktop is refreshed (the broker's "refreshed"
 *     event, then READY for nobody with an empty text box, or deleted as
 *     a surplus spare), the pool has a READY desktop for nobody again,
 *     and bob's fresh launch gets a desktop that shows none of her text;
 *  6. the admin's audit log holds alice's logins, launches, connections
 *     per protocol and logoff;
 *  7. SIGINT: the demo exits 0 and leaves no process of its state folder.
 *
 * The demo's output, the browser's screenshots and log, and the guest
 * screens looked at go to $DESKPOOL_ARTIFACTS/e2e/. Waits are bounded
 * generously (a loaded machine); nothing asserts how long things take.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "td_layout.h"
#include "tsbroker.h"
#include "tsguest.h"
#include "tsppm.h"
#include "tsrdp.h"
#include "tsscreen.h"
#include "tsvnc.h"
#include "tsweb.h"

extern char **environ;

#define READY_MS  300000 /* the demo's first start: a template is made */
#define STOP_MS   120000 /* SIGINT until it exited */
#define STATE_MS  180000 /* a desktop's state, a refresh */
#define SCREEN_MS 60000  /* typed text on a screen */
#define WEB_MS    420000 /* the browser scenario */

#define POOL     "demo"
#define TEXT_WEB "hello web"
#define TEXT_RDP " via rdp"
#define TEXT_VNC " and vnc"

/* The demo under test. */
static struct {
    pid_t pid;
    int reaped, status;
    char state[64];          /* its --state-dir (fresh, under the test root) */
    char vm[PATH_MAX];       /* the VM folder it made in there */
    char out[PATH_MAX + 16]; /* its stdout and stderr */
    char art[PATH_MAX];      /* $DESKPOOL_ARTIFACTS/e2e */
    int https, rdp, vnc;
} demo;

/* The demo's broker for tsbroker's client functions, which use its url,
 * cert and log only. */
static struct tsbroker broker;
static struct tsbroker_session admin, alice, bob;
static int width = TSGUEST_WIDTH, height = TSGUEST_HEIGHT;

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

/* --- the demo process ----------------------------------------------------- */

/* Three distinct free loopback ports: bound at once, then released. */
static void free_ports(int *ports, int n)
{
    int fds[8];

    ck_assert_int_le(n, 8);
    for (int i = 0; i < n; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t len = sizeof(sa);

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(getsockname(fds[i], (struct sockaddr *)&sa, &len), 0);
        ports[i] = ntohs(sa.sin_port);
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* True once the demo has exited (and was reaped). */
static int demo_reap(void)
{
    if (demo.pid > 0 && !demo.reaped &&
        waitpid(demo.pid, &demo.status, WNOHANG) == demo.pid)
        demo.reaped = 1;
    return demo.reaped;
}

/* The demo's output so far (NUL-terminated; free it). */
static char *demo_output(void)
{
    FILE *f = fopen(demo.out, "r");
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);

    ck_assert_ptr_nonnull(buf);
    while (f) {
        size_t got = fread(buf + n, 1, cap - n, f);

        n += got;
        if (n < cap)
            break;
        cap *= 2;
        buf = realloc(buf, cap + 1);
        ck_assert_ptr_nonnull(buf);
    }
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Does the demo's output hold line (a whole line)? */
static int demo_said(const char *line)
{
    char *out = demo_output();
    size_t len = strlen(line);
    int found = 0;

    for (char *p = out; p && *p && !found;
         p = strchr(p, '\n'), p = p ? p + 1 : p)
        found = !strncmp(p, line, len) && (p[len] == '\n' || p[len] == '\0');
    free(out);
    return found;
}

static void demo_show_output(void)
{
    char *out = demo_output();
    size_t n = strlen(out);

    fprintf(stderr,
            "e2e: --- the demo's output (%s)%s ---\n%s\ne2e: --- end ---\n",
            demo.out, n > 16384 ? ", its end" : "",
            n > 16384 ? out + n - 16384 : out);
    free(out);
}

/* Sends SIGINT (as Ctrl-C) and waits up to timeout_ms; SIGKILL after
 * that. Returns 1 when it exited by itself. */
static int demo_interrupt(int timeout_ms)
{
    long long until = tsguest_now_ms() + timeout_ms;

    if (demo.pid <= 0 || demo_reap())
        return 1;
    kill(demo.pid, SIGINT);
    while (!demo_reap() && tsguest_now_ms() < until)
        tsguest_sleep_ms(100);
    if (demo_reap())
        return 1;
    kill(demo.pid, SIGKILL);
    waitpid(demo.pid, &demo.status, 0);
    demo.reaped = 1;
    return 0;
}

/* The script: $DESKPOOL_DEMO, else config/deskpool-demo of the source
 * tree (make runs tests from there). */
static void demo_script(char *buf)
{
    const char *s = getenv("DESKPOOL_DEMO");

    if (!s || !*s)
        s = "config/deskpool-demo";
    ck_assert_msg(realpath(s, buf) != NULL && access(buf, X_OK) == 0,
                  "%s: %s (run from the source tree, or set DESKPOOL_DEMO)", s,
                  strerror(errno));
}

/* Where this run's files go: $DESKPOOL_ARTIFACTS/e2e (the test root's
 * artifacts/ without it); the browser's screenshots and log land in its
 * web/ folder, as DESKPOOL_ARTIFACTS for tsweb and the script. Before the
 * suite: the forked test inherits it. */
static void demo_artifacts(void)
{
    const char *art = getenv("DESKPOOL_ARTIFACTS");
    const char *root = tsguest_root();

    if (!root)
        return;
    if (art && *art) {
        mkdir(art, 0755);
        snprintf(demo.art, sizeof(demo.art), "%s/e2e", art);
    } else {
        snprintf(demo.art, sizeof(demo.art), "%s/artifacts", root);
    }
    mkdir(demo.art, 0755);
    /* what a run leaves there for review is all its own */
    tsweb_empty_folder(demo.art);
    setenv("DESKPOOL_ARTIFACTS", demo.art, 1);
    snprintf(demo.out, sizeof(demo.out), "%s/demo.log", demo.art);
}

/* Starts config/deskpool-demo on a fresh state folder and free ports,
 * its output to demo.out, and waits for "deskpool-demo: ready". */
static void demo_start(void)
{
    char script[PATH_MAX], site[PATH_MAX], https[16], rdp[16], vnc[16];
    /* the demo's own wait for a READY desktop, as long as ours (a loaded
     * machine boots slowly) */
    char *argv[] = {script, "--state-dir", demo.state, "--https-port",
                    https,  "--rdp-port",  rdp,        "--vnc-port",
                    vnc,    "--timeout",   "300",      NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    long long until;
    int ports[3], rc;

    ck_assert_msg(demo.art[0], "no test root");
    /* short: the VMs' unix sockets live under it */
    ck_assert_int_lt(
        snprintf(demo.state, sizeof(demo.state), "%s/demo", tsguest_root()),
        40);
    demo_script(script);
    /* what it serves: a copy, so a `make web` meanwhile changes nothing */
    tsweb_site(site, sizeof(site));
    setenv("DESKPOOL_WEB_DIR", site, 1);
    free_ports(ports, 3);
    demo.https = ports[0];
    demo.rdp = ports[1];
    demo.vnc = ports[2];
    snprintf(https, sizeof(https), "%d", demo.https);
    snprintf(rdp, sizeof(rdp), "%d", demo.rdp);
    snprintf(vnc, sizeof(vnc), "%d", demo.vnc);

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, demo.out,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    /* its own process group: a signal meant for the test is not the
     * demo's, and it gets exactly the SIGINT the test sends */
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    rc = posix_spawn(&demo.pid, script, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    ck_assert_msg(rc == 0, "cannot start %s: %s", script, strerror(rc));
    fprintf(stderr,
            "e2e: %s --state-dir %s --https-port %d --rdp-port %d "
            "--vnc-port %d (pid %d), output in %s\n",
            script, demo.state, demo.https, demo.rdp, demo.vnc, (int)demo.pid,
            demo.out);

    until = tsguest_now_ms() + READY_MS;
    while (!demo_said("deskpool-demo: ready")) {
        if (demo_reap() || tsguest_now_ms() > until) {
            demo_show_output();
            ck_abort_msg("the demo %s before it said \"deskpool-demo: ready\"",
                         demo.reaped ? "ended" : "did not get ready in time");
        }
        tsguest_sleep_ms(250);
    }
    fprintf(stderr, "e2e: the demo is ready\n");

    snprintf(broker.url, sizeof(broker.url), "https://127.0.0.1:%d",
             demo.https);
    snprintf(broker.cert, sizeof(broker.cert), "%s/tls/broker.crt", demo.state);
    /* what tsbroker shows when the broker stops answering */
    snprintf(broker.log, sizeof(broker.log), "%s/log/broker.log", demo.state);
}

/* Processes (but this one) whose command line holds both a and b: up to
 * max pids into pids, the first one's command line into first (when not
 * NULL); how many there are. */
static int processes_naming(const char *a, const char *b, pid_t *pids, int max,
                            char *first, size_t size)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    if (first)
        first[0] = '\0';
    while (d && (e = readdir(d))) {
        char path[300], cmd[4096];
        pid_t pid = (pid_t)atoi(e->d_name);
        ssize_t len;
        int fd;

        if (pid <= 0 || pid == getpid())
            continue;
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        len = read(fd, cmd, sizeof(cmd) - 1);
        close(fd);
        if (len <= 0)
            continue;
        for (ssize_t i = 0; i < len; i++)
            if (!cmd[i])
                cmd[i] = ' ';
        cmd[len] = '\0';
        if (!strstr(cmd, a) || !strstr(cmd, b))
            continue;
        if (first && !n)
            snprintf(first, size, "%d: %.200s", (int)pid, cmd);
        if (n < max)
            pids[n] = pid;
        n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* No sanitizer report in the broker's and the display's logs (a
 * SANITIZE=1 build: their reports go to their stderr, those logs). */
static void logs_are_clean(void)
{
    static const char *const logs[] = {"broker.log", "display.log"};
    char path[PATH_MAX];

    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/log/%s", demo.state, logs[i]);
        ck_assert_msg(!tsbroker_file_contains(path, "Sanitizer") &&
                          !tsbroker_file_contains(path, "runtime error"),
                      "sanitizer report in %s (kept in %s/logs)", path,
                      demo.art);
    }
}

/* SIGINT, as Ctrl-C: it stops everything of its state folder, says so and
 * exits 0. */
static void demo_stop(void)
{
    long long until;
    char left[300];
    pid_t pids[8];
    int by_itself = demo_interrupt(STOP_MS), n;

    if (!by_itself || !WIFEXITED(demo.status) || WEXITSTATUS(demo.status))
        demo_show_output();
    ck_assert_msg(by_itself, "the demo did not end after SIGINT");
    ck_assert_msg(WIFEXITED(demo.status) && WEXITSTATUS(demo.status) == 0,
                  "the demo ended with status 0x%x after SIGINT", demo.status);
    ck_assert_msg(demo_said("deskpool-demo: stopped"),
                  "the demo did not say \"deskpool-demo: stopped\" (%s)",
                  demo.out);
    /* what it stopped may take a moment to be reaped by init */
    until = tsguest_now_ms() + 15000;
    while ((n = processes_naming(demo.state, "", pids, 8, left, sizeof(left))) >
               0 &&
           tsguest_now_ms() < until)
        tsguest_sleep_ms(250);
    ck_assert_msg(n == 0, "%d processes of %s left after the demo stopped: %s",
                  n, demo.state, left);
    logs_are_clean();
}

/* --- desktops ------------------------------------------------------------- */

/* The folder of the demo's VMs: the state folder or one under it that
 * holds vms/ID/vm.json. */
static void find_vm_dir(const char *id)
{
    char path[PATH_MAX * 2];
    struct dirent *e;
    DIR *d;

    snprintf(path, sizeof(path), "%s/vms/%s/vm.json", demo.state, id);
    if (access(path, F_OK) == 0) {
        snprintf(demo.vm, sizeof(demo.vm), "%s", demo.state);
        return;
    }
    d = opendir(demo.state);
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) && !demo.vm[0]) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s/vms/%s/vm.json", demo.state,
                 e->d_name, id);
        if (access(path, F_OK) == 0)
            snprintf(demo.vm, sizeof(demo.vm), "%s/%s", demo.state, e->d_name);
    }
    closedir(d);
    ck_assert_msg(demo.vm[0], "no VM folder under %s holds desktop %s",
                  demo.state, id);
}

/* A host on the demo's VM folder, for screendumps (close it with
 * hv_host_close(): its VMs are the broker's). */
static struct hv_host *open_vms(const char *id)
{
    struct hv_host *h = NULL;

    if (!demo.vm[0])
        find_vm_dir(id);
    ck_assert_int_eq(tsguest_host_open(&h, demo.vm), 0);
    return h;
}

/* Copies the VM's last screendump to the artifacts as NAME.ppm. */
static void keep_screen(struct hv_host *h, const char *id, const char *name)
{
    char from[PATH_MAX], to[PATH_MAX + 64], buf[65536];
    ssize_t n;
    int in, out;

    if (tsguest_screen_path(h, id, from, sizeof(from)) != 0)
        return;
    snprintf(to, sizeof(to), "%s/%s.ppm", demo.art, name);
    in = open(from, O_RDONLY | O_CLOEXEC);
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            break;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    fprintf(stderr, "e2e: the screen of %s kept as %s\n", id, to);
}

/* Writes a client's screen to the artifacts as NAME-client.ppm. */
static void keep_view(const struct tsscreen *s, const char *name)
{
    char path[PATH_MAX + 64];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s-client.ppm", demo.art, name);
    f = fopen(path, "wbe");
    if (!f)
        return;
    fprintf(f, "P6\n%d %d\n255\n", s->width, s->height);
    for (int y = 0; y < s->height; y++)
        for (int x = 0; x < s->width; x++) {
            uint32_t p = tsscreen_pixel(s, x, y);

            fputc((int)(p >> 16 & 0xff), f);
            fputc((int)(p >> 8 & 0xff), f);
            fputc((int)(p & 0xff), f);
        }
    fclose(f);
    fprintf(stderr, "e2e: the client's screen kept as %s\n", path);
}

/* A client whose screen should show the text too: pumped meanwhile. */
struct viewer {
    struct tsrdp *rdp;
    struct tsvnc *vnc;
};

static struct tsscreen viewer_screen(const struct viewer *v)
{
    int w = 0, h = 0, stride = 0;
    const uint32_t *px;

    if (v->rdp) {
        px = tsrdp_pixels(v->rdp, &w, &h, &stride);
        return tsscreen_view(px, w, h, stride);
    }
    px = tsvnc_pixels(v->vnc, &w, &h);
    return tsscreen_view(px, w, h, w * 4);
}

/*
 * Waits until the guest's text box (a QMP screendump) reads exactly text
 * (and its top bar's hostname reads hostname, when not NULL), and, with a
 * viewer, until its client shows the same text. name: the screen kept in
 * the artifacts.
 */
static void screens_show(struct hv_host *h, const char *id, const char *text,
                         const char *hostname, const struct viewer *v,
                         const char *name)
{
    long long until = tsguest_now_ms() + SCREEN_MS;
    struct tsppm *shot = NULL;
    char why[512] = "no screendump", cwhy[512] = "";
    int guest = 1, client = 0;

    for (;;) {
        if (v && v->rdp)
            ck_assert_int_ge(tsrdp_pump(v->rdp, 200), 0);
        else if (v && v->vnc)
            ck_assert_int_ge(tsvnc_pump(v->vnc, 200), 0);
        else
            tsguest_sleep_ms(200);
        if (tsguest_screen(h, id, &shot) == 0) {
            struct tsscreen s = tsscreen_from_ppm(shot);

            guest = tsscreen_textbox_why(&s, text, why, sizeof(why));
            /* testdesk reads its hostname every second */
            if (!guest && hostname)
                guest = tsscreen_hostname_why(&s, hostname, why, sizeof(why));
        }
        if (v && (v->rdp || v->vnc)) {
            struct tsscreen s = viewer_screen(v);

            client = s.pixels
                         ? tsscreen_textbox_why(&s, text, cwhy, sizeof(cwhy))
                         : 1;
        }
        if ((!guest && !client) || tsguest_now_ms() > until)
            break;
    }
    keep_screen(h, id, name);
    tsppm_free(shot);
    ck_assert_msg(!guest, "%s: the guest's screen: %s", id, why);
    if (client) {
        struct tsscreen s = viewer_screen(v);

        if (s.pixels)
            keep_view(&s, name);
    }
    ck_assert_msg(!client, "%s: the %s client's screen: %s", id,
                  v && v->rdp ? "RDP" : "VNC", cwhy);
}

static json_t *admin_get(const char *fmt, const char *arg)
{
    char path[300];
    json_t *r = NULL;
    int status;

    snprintf(path, sizeof(path), fmt, arg);
    status = tsbroker_call(&admin, "GET", path, NULL, &r);
    ck_assert_msg(status == 200, "GET %s: %d %s", path, status,
                  str(r, "message"));
    return r;
}

/* alice's only desktop in the pool (floating: she has exactly one). */
static void alices_desktop(char *id, size_t size)
{
    json_t *r =
        admin_get("/api/v1/admin/desktops?pool=" POOL "&user=%s", "alice");
    json_t *list = json_object_get(r, "desktops");

    ck_assert_msg(json_array_size(list) == 1, "alice holds %zu desktops",
                  json_array_size(list));
    snprintf(id, size, "%s", str(json_array_get(list, 0), "id"));
    json_decref(r);
}

static void same_desktop(const char *id, const char *how)
{
    char now[80];

    alices_desktop(now, sizeof(now));
    ck_assert_msg(!strcmp(now, id), "over %s alice got %s, not her %s", how,
                  now, id);
}

/* --- the steps ------------------------------------------------------------ */

/* The demo's pool as the contract says, and its screen size. */
static void pool_is_the_demos(void)
{
    json_t *p = admin_get("/api/v1/admin/pools/%s", POOL);
    json_t *users = json_object_get(p, "users");
    char *dump = json_dumps(users, JSON_COMPACT);

    ck_assert_str_eq(str(p, "type"), "floating");
    ck_assert_str_eq(str(p, "provisioning"), "instant");
    ck_assert_msg(dump && strstr(dump, "\"alice\"") && strstr(dump, "\"bob\""),
                  "the demo pool's users: %s", dump ? dump : "?");
    if (json_integer_value(json_object_get(p, "width")) > 0) {
        width = (int)json_integer_value(json_object_get(p, "width"));
        height = (int)json_integer_value(json_object_get(p, "height"));
    }
    free(dump);
    json_decref(p);
    ck_assert_int_ge(tsbroker_wait_ready(&admin, POOL, 1, STATE_MS), 1);
}

/* 2. the browser: returns alice's desktop id. */
static void browser_types(char *id, size_t size, struct hv_host **h)
{
    const char *env[16];
    struct td_layout l;
    struct tsweb *w;
    json_t *info, *r;
    int n = 0;

    ck_assert_int_eq(td_layout_compute(&l, width, height), 0);
    ck_assert_int_gt(l.text_cols, (int)strlen(TEXT_WEB TEXT_RDP TEXT_VNC) + 1);
    env[n++] = tsweb_kv("DESKPOOL_URL", "%s", broker.url);
    env[n++] = "DESKPOOL_USER=alice";
    env[n++] = "DESKPOOL_PASSWORD=wonderland";
    env[n++] = "DESKPOOL_POOL=" POOL;
    env[n++] = "DESKPOOL_TEXT=" TEXT_WEB;
    tsweb_desk_env(env, &n, &l);
    env[n++] = tsweb_kv("DESKPOOL_WEB_TIMEOUT_MS", "%d", WEB_MS);
    env[n] = NULL;

    w = tsweb_start("e2e", env);
    info = tsweb_step(w, "typed", WEB_MS);
    json_decref(info);
    /* the viewer is connected meanwhile: the desktop is alice's */
    alices_desktop(id, size);
    fprintf(stderr, "e2e: alice's desktop is %s\n", id);
    tsbroker_wait_state(&admin, id, "CONNECTED", "alice", STATE_MS);
    *h = open_vms(id);
    screens_show(*h, id, TEXT_WEB, NULL, NULL, "1-browser");
    tsweb_step_done(w, "typed", NULL);
    r = tsweb_finish(w, WEB_MS);
    ck_assert_str_eq(str(r, "state"), "connected");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "width")), width);
    json_decref(r);
    /* the tab closed: her session ended, the desktop stays hers */
    tsbroker_wait_state(&admin, id, "DISCONNECTED", "alice", STATE_MS);
}

/* Set-1 scancode of a lower-case letter or a space. */
static unsigned scancode(char c)
{
    static const unsigned letters[26] = {
        0x1e, 0x30, 0x2e, 0x20, 0x12, 0x21, 0x22, 0x23, 0x17,
        0x24, 0x25, 0x26, 0x32, 0x31, 0x18, 0x19, 0x10, 0x13,
        0x1f, 0x14, 0x16, 0x2f, 0x11, 0x2d, 0x15, 0x2c};

    if (c == ' ')
        return 0x39;
    ck_assert(c >= 'a' && c <= 'z');
    return letters[c - 'a'];
}

/* 3. RDP with her password, keys as scancodes. */
static void rdp_types(struct hv_host *h, const char *id)
{
    struct viewer v = {0};
    char why[256];

    ck_assert_msg(tsrdp_connect(&v.rdp, demo.rdp, "alice", "wonderland", why,
                                sizeof(why)) == 0,
                  "alice's RDP login: %s", why);
    tsbroker_wait_state(&admin, id, "CONNECTED", "alice", STATE_MS);
    same_desktop(id, "RDP");
    for (const char *p = TEXT_RDP; *p; p++) {
        ck_assert_int_eq(tsrdp_key(v.rdp, scancode(*p), 0, 1), 0);
        ck_assert_int_eq(tsrdp_key(v.rdp, scancode(*p), 0, 0), 0);
        /* a person's pace: the guest's keyboard queue is short */
        ck_assert_int_ge(tsrdp_pump(v.rdp, 80), 0);
    }
    screens_show(h, id, TEXT_WEB TEXT_RDP, NULL, &v, "2-rdp");
    tsrdp_close(v.rdp);
    tsbroker_wait_state(&admin, id, "DISCONNECTED", "alice", STATE_MS);
}

/* 4. a VNC launch through the API, its one-time password. Returns the
 * client, still connected. */
static struct tsvnc *vnc_types(struct hv_host *h, const char *id)
{
    /* lossless (no JPEG): the client's pixels are compared exactly */
    struct tsvnc_options o = {
        .quality = -1, .compress = -1, .timeout_ms = 30000};
    struct viewer v = {0};
    json_t *r = NULL;
    int status;

    ck_assert_int_eq(
        tsbroker_login(&broker, &alice, "alice", "wonderland", NULL, 0), 200);
    status = tsbroker_call(&alice, "POST", "/api/v1/pools/" POOL "/launch",
                           "{\"protocol\":\"vnc\"}", &r);
    ck_assert_msg(status == 200, "alice's VNC launch: %d %s", status,
                  str(r, "message"));
    ck_assert_str_eq(str(json_object_get(r, "desktop"), "id"), id);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "port")), demo.vnc);
    ck_assert_msg(tsvnc_connect_tcp(&v.vnc, "127.0.0.1", demo.vnc,
                                    str(r, "password"), &o) == 0,
                  "VNC with the launch's password: %s",
                  tsvnc_last_connect_error());
    json_decref(r);
    tsbroker_wait_state(&admin, id, "CONNECTED", "alice", STATE_MS);
    same_desktop(id, "VNC");
    ck_assert_int_eq(tsvnc_type(v.vnc, TEXT_VNC), 0);
    screens_show(h, id, TEXT_WEB TEXT_RDP TEXT_VNC, NULL, &v, "3-vnc");
    return v.vnc;
}

/* Has the pool's audit log a "refreshed" event of desktop id? */
static int refreshed(const char *id)
{
    json_t *r = admin_get("/api/v1/admin/events?pool=%s&limit=1000", POOL), *e;
    size_t i;
    int found = 0;

    json_array_foreach(json_object_get(r, "events"), i, e) found |=
        !strcmp(str(e, "kind"), "refreshed") && !strcmp(str(e, "desktop"), id);
    json_decref(r);
    return found;
}

/* 5. logoff: the desktop is refreshed and back in the pool (or, as a
 * surplus spare, deleted). */
static void logoff_refreshes(struct hv_host *h, const char *id,
                             struct tsvnc *vnc)
{
    long long until = tsguest_now_ms() + STATE_MS;
    char path[200];
    json_t *r = NULL;
    int status;

    snprintf(path, sizeof(path), "/api/v1/desktops/%s/logoff", id);
    status = tsbroker_call(&alice, "POST", path, NULL, &r);
    ck_assert_msg(status == 200, "alice's logoff: %d %s", status,
                  str(r, "message"));
    json_decref(r);
    tsvnc_close(vnc); /* its desktop went away under it */

    while (!refreshed(id)) {
        ck_assert_msg(tsguest_now_ms() < until, "%s was not refreshed", id);
        tsguest_sleep_ms(500);
    }
    /* READY for nobody again, or gone as a surplus spare */
    for (;;) {
        snprintf(path, sizeof(path), "/api/v1/admin/desktops/%s", id);
        r = NULL;
        status = tsbroker_call(&admin, "GET", path, NULL, &r);
        if (status == 404 ||
            (status == 200 && !strcmp(str(r, "state"), "READY"))) {
            break;
        }
        ck_assert_msg(status == 200 && tsguest_now_ms() < until,
                      "%s after the refresh: %d %s (user '%s')", id, status,
                      str(r, "state"), str(r, "user"));
        json_decref(r);
        tsguest_sleep_ms(500);
    }
    if (status == 200) {
        int instant = !strcmp(str(r, "provisioning"), "instant");

        fprintf(stderr, "e2e: %s is READY again (%s)\n", id,
                str(r, "provisioning"));
        ck_assert_str_eq(str(r, "user"), "");
        /* a fresh clone with a name of its own (its id), or, while the
         * pool's template is still being made, a fresh boot: nothing alice
         * typed either way */
        if (instant)
            ck_assert_msg(json_is_true(json_object_get(r, "personalised")),
                          "%s not personalised after its refresh", id);
        else
            ck_assert_str_eq(str(r, "provisioning"), "boot");
        screens_show(h, id, "", instant ? id : NULL, NULL, "4-refreshed");
    } else {
        fprintf(stderr, "e2e: %s was deleted as a surplus spare\n", id);
    }
    json_decref(r);
    ck_assert_int_ge(tsbroker_wait_ready(&admin, POOL, 1, STATE_MS), 1);
}

/* bob's launch gets a clean desktop: none of alice's text. */
static void fresh_launch_is_clean(struct hv_host *h, const char *alices)
{
    long long until = tsguest_now_ms() + STATE_MS;
    char id[80];
    json_t *r;

    ck_assert_int_eq(tsbroker_login(&broker, &bob, "bob", "builder", NULL, 0),
                     200);
    for (;;) {
        int status;

        r = NULL;
        status = tsbroker_call(&bob, "POST", "/api/v1/pools/" POOL "/launch",
                               "{\"protocol\":\"browser\"}", &r);
        if (status == 200)
            break;
        ck_assert_msg(status == 202 && tsguest_now_ms() < until,
                      "bob's launch: %d %s", status, str(r, "message"));
        json_decref(r);
        tsguest_sleep_ms(1000);
    }
    snprintf(id, sizeof(id), "%s", str(json_object_get(r, "desktop"), "id"));
    json_decref(r);
    fprintf(stderr, "e2e: bob got %s (alice had %s)\n", id, alices);
    tsbroker_wait_state(&admin, id, "ASSIGNED", "bob", STATE_MS);
    screens_show(h, id, "", NULL, NULL, "5-fresh");
}

/* Events of alice: how many of kind (on desktop id when not NULL) with
 * detail.protocol proto ("" : none; NULL: any). */
static int events_of(const json_t *events, const char *kind, const char *id,
                     const char *proto)
{
    const json_t *e;
    size_t i;
    int n = 0;

    json_array_foreach(events, i, e)
    {
        const json_t *detail = json_object_get(e, "detail");

        if (strcmp(str(e, "kind"), kind) ||
            (id && strcmp(str(e, "desktop"), id)))
            continue;
        if (proto && strcmp(str(detail, "protocol"), proto))
            continue;
        n++;
    }
    return n;
}

/* 6. what the admin sees of alice's day. */
static void admin_sees_it_all(const char *id)
{
    static const char *const protos[] = {"browser", "rdp", "vnc"};
    json_t *r = admin_get("/api/v1/admin/events?user=%s&limit=1000", "alice");
    const json_t *ev = json_object_get(r, "events");
    char *dump = json_dumps(ev, JSON_COMPACT);
    char path[PATH_MAX + 32];
    FILE *f;

    snprintf(path, sizeof(path), "%s/events-alice.json", demo.art);
    f = fopen(path, "w");
    if (f) {
        fputs(dump ? dump : "", f);
        fclose(f);
    }
    /* the portal's login (browser, then the API's), the RDP login */
    ck_assert_msg(events_of(ev, "login", NULL, "") >= 2,
                  "no portal logins of alice: %s", path);
    ck_assert_msg(events_of(ev, "login", NULL, "rdp") >= 1,
                  "no RDP login of alice: %s", path);
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(events_of(ev, "launch", id, protos[i]) >= 1,
                      "no %s launch of %s: %s", protos[i], id, path);
        ck_assert_msg(events_of(ev, "connected", id, protos[i]) >= 1,
                      "no %s connection to %s: %s", protos[i], id, path);
    }
    ck_assert_msg(events_of(ev, "disconnected", id, "browser") >= 1 &&
                      events_of(ev, "disconnected", id, "rdp") >= 1,
                  "no disconnections from %s: %s", id, path);
    ck_assert_msg(events_of(ev, "logoff", id, NULL) == 1,
                  "not one logoff of %s: %s", id, path);
    free(dump);
    json_decref(r);
}

START_TEST(a_user_types_over_each_protocol_and_logs_off)
{
    struct hv_host *h = NULL;
    struct tsvnc *vnc;
    char id[80];

    demo_start();
    tsbroker_connect(&broker, &admin);
    tsbroker_connect(&broker, &alice);
    tsbroker_connect(&broker, &bob);
    ck_assert_int_eq(
        tsbroker_login(&broker, &admin, "admin", "deskpool-admin", NULL, 1),
        200);
    pool_is_the_demos();

    browser_types(id, sizeof(id), &h);
    rdp_types(h, id);
    vnc = vnc_types(h, id);
    logoff_refreshes(h, id, vnc);
    fresh_launch_is_clean(h, id);
    admin_sees_it_all(id);

    hv_host_close(h);
    tsbroker_disconnect(&admin);
    tsbroker_disconnect(&alice);
    tsbroker_disconnect(&bob);
    demo_stop();
}
END_TEST

/*
 * After the suite, in this process: a failed test ends its forked process
 * at once (no teardown, no atexit), so a demo it left running is stopped
 * here the way a user would (SIGINT), before tsguest_cleanup() SIGKILLs
 * whatever is left of the test root. The demo's own logs (its state
 * folder goes with the root) are copied to the artifacts either way.
 */
static void demo_after_suite(void)
{
    char state[64], logs[PATH_MAX + 16];
    pid_t pids[8];
    long long until = tsguest_now_ms() + 90000;
    int n;

    if (!tsguest_root() || !demo.art[0])
        return;
    snprintf(state, sizeof(state), "%s/demo", tsguest_root());
    n = processes_naming("deskpool-demo", state, pids, 8, NULL, 0);
    if (n > 0) {
        fprintf(stderr, "e2e: stopping the demo left running (SIGINT)\n");
        for (int i = 0; i < n; i++)
            kill(pids[i], SIGINT);
        while (processes_naming("deskpool-demo", state, pids, 8, NULL, 0) > 0 &&
               tsguest_now_ms() < until)
            tsguest_sleep_ms(250);
    }
    snprintf(logs, sizeof(logs), "%s/logs", demo.art);
    snprintf(state, sizeof(state), "%s/demo/log/.", tsguest_root());
    if (access(state, F_OK) == 0) {
        char *rm[] = {"rm", "-rf", logs, NULL};
        char *cp[] = {"cp", "-r", state, logs, NULL};
        pid_t pid;
        int status;

        if (posix_spawnp(&pid, "rm", NULL, NULL, rm, environ) == 0)
            waitpid(pid, &status, 0);
        if (posix_spawnp(&pid, "cp", NULL, NULL, cp, environ) == 0)
            waitpid(pid, &status, 0);
        fprintf(stderr, "e2e: the demo's logs are in %s\n", logs);
    }
}

int main(void)
{
    Suite *s = suite_create("e2e");
    TCase *tc = tcase_create("demo");
    int rc;

    tcase_add_test(tc, a_user_types_over_each_protocol_and_logs_off);
    tcase_set_timeout(tc, 1800);
    suite_add_tcase(s, tc);
    /* the test root before Check forks the test: it names the demo's
     * state folder, and this process cleans up after it */
    if (!tsguest_root()) {
        srunner_free(srunner_create(s));
        return EXIT_FAILURE;
    }
    demo_artifacts();
    tsweb_clear_artifacts(); /* e2e/web: this run's own */
    rc = tsguest_run_checks(s);
    demo_after_suite();
    tsguest_cleanup();
    return rc;
}
