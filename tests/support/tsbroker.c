/*
 * tsbroker.c - deskpool-broker for tests (see tsbroker.h).
 */
#include "tsbroker.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsguest.h"

#define TSBROKER_PAM_DIR "/usr/lib/x86_64-linux-gnu/pam_wrapper"

static void tsbroker_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* pam_matrix passdb lines are user:password:service; the account step
 * refuses a user whose line names another service. */
static void tsbroker_accounts(struct tsbroker *b)
{
    char path[320], text[2048], otp[320];

    snprintf(path, sizeof(path), "%s/passdb", b->dir);
    tsbroker_write(path, "alice:alice-pw:deskpool\n"
                         "bob:bob-pw:deskpool\n"
                         "carol:carol-pw:deskpool\n"
                         "admin:admin-pw:deskpool\n"
                         "locked:locked-pw:elsewhere\n");
    snprintf(otp, sizeof(otp), "%s/otpdb", b->dir);
    tsbroker_write(otp, "alice:otp-alice:deskpool\n"
                        "bob:otp-bob:deskpool\n"
                        "carol:otp-carol:deskpool\n"
                        "admin:otp-admin:deskpool\n"
                        "locked:otp-locked:elsewhere\n");
    snprintf(path, sizeof(path), "%s/passwd", b->dir);
    tsbroker_write(path, "root:x:0:0:root:/root:/bin/sh\n"
                         "alice:x:1001:1001:Alice:/home/alice:/bin/sh\n"
                         "bob:x:1002:1002:Bob:/home/bob:/bin/sh\n"
                         "carol:x:1003:1003:Carol:/home/carol:/bin/sh\n"
                         "admin:x:1004:1004:Admin:/home/admin:/bin/sh\n"
                         "locked:x:1005:1005:Locked:/home/locked:/bin/sh\n");
    snprintf(path, sizeof(path), "%s/group", b->dir);
    tsbroker_write(path, "root:x:0:\nalice:x:1001:\nbob:x:1002:\n"
                         "carol:x:1003:\nadmin:x:1004:\nlocked:x:1005:\n"
                         "staff:x:2001:alice,bob,admin\n"
                         "deskpool-admins:x:2000:admin\n");
    snprintf(path, sizeof(path), "%s/pam.d", b->dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/pam.d/deskpool", b->dir);
    text[0] = '\0';
    if (b->flags & TSBROKER_SLOW) /* a slow stack, like a fail delay */
        strcat(text,
               "auth optional /usr/lib/x86_64-linux-gnu/security/pam_exec.so "
               "quiet /bin/sleep 2\n");
    snprintf(text + strlen(text), sizeof(text) - strlen(text),
             "auth required " TSBROKER_PAM_DIR
             "/pam_matrix.so passdb=%s/passdb\n",
             b->dir);
    if (b->flags & TSBROKER_OTP) /* a second, echoed question */
        snprintf(text + strlen(text), sizeof(text) - strlen(text),
                 "auth required " TSBROKER_PAM_DIR
                 "/pam_matrix.so echo passdb=%s\n",
                 otp);
    snprintf(text + strlen(text), sizeof(text) - strlen(text),
             "account required " TSBROKER_PAM_DIR
             "/pam_matrix.so passdb=%s/passdb\n",
             b->dir);
    tsbroker_write(path, text);
}

void tsbroker_init(struct tsbroker *b, int flags)
{
    static int serial;

    memset(b, 0, sizeof(*b));
    b->flags = flags;
    snprintf(b->dir, sizeof(b->dir), "%s/b%d-%d", tsguest_root(), (int)getpid(),
             ++serial);
    ck_assert_int_eq(mkdir(b->dir, 0700), 0);
    snprintf(b->state, sizeof(b->state), "%s/state", b->dir);
    snprintf(b->vm, sizeof(b->vm), "%s/vm", b->dir);
    snprintf(b->log, sizeof(b->log), "%s/broker.log", b->dir);
    snprintf(b->cert, sizeof(b->cert), "%s/tls/broker.crt", b->state);
    snprintf(b->display, sizeof(b->display), "%s/display.sock", b->dir);
    tsbroker_accounts(b);
}

void tsbroker_set(struct tsbroker *b, const char *key, const char *value)
{
    ck_assert_int_lt(b->nextra, 16);
    snprintf(b->extra[b->nextra++], sizeof(b->extra[0]), "%s=%s", key, value);
}

void tsbroker_pam_env(const struct tsbroker *b)
{
    char v[320];
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[512];

    setenv("LD_PRELOAD", "libpam_wrapper.so libnss_wrapper.so", 1);
    setenv("PAM_WRAPPER", "1", 1);
    snprintf(v, sizeof(v), "%s/pam.d", b->dir);
    setenv("PAM_WRAPPER_SERVICE_DIR", v, 1);
    snprintf(v, sizeof(v), "%s/passwd", b->dir);
    setenv("NSS_WRAPPER_PASSWD", v, 1);
    snprintf(v, sizeof(v), "%s/group", b->dir);
    setenv("NSS_WRAPPER_GROUP", v, 1);
    /* Under ASan the wrappers are preloaded ahead of its runtime, and
     * their dlopen(RTLD_DEEPBIND) is refused by it: turn that off. */
    setenv("NSS_WRAPPER_DISABLE_DEEPBIND", "1", 1);
    setenv("PAM_WRAPPER_DISABLE_DEEPBIND", "1", 1);
    setenv("UID_WRAPPER_DISABLE_DEEPBIND", "1", 1);
    snprintf(opts, sizeof(opts), "%s%sverify_asan_link_order=0",
             asan ? asan : "", asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
}

/* The port from the log line "listening on https://127.0.0.1:PORT". */
static int tsbroker_port(const struct tsbroker *b)
{
    char line[512];
    FILE *f = fopen(b->log, "r");
    int port = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        char *p = strstr(line, "listening on ");

        if (p && (p = strrchr(p, ':')))
            port = atoi(p + 1);
    }
    fclose(f);
    return port;
}

void tsbroker_start(struct tsbroker *b)
{
    const char *bin = getenv("DESKPOOL_BIN_DIR");
    char exe[512], web[300], sets[8][400];
    char *argv[64];
    long long deadline;
    int i, n = 0;

    ck_assert_msg(bin != NULL, "DESKPOOL_BIN_DIR is not set");
    snprintf(exe, sizeof(exe), "%s/deskpool-broker", bin);
    /* the portal when it is built (make web), else an empty folder */
    if (getenv("DESKPOOL_WEB_DIR") && *getenv("DESKPOOL_WEB_DIR"))
        snprintf(web, sizeof(web), "%s", getenv("DESKPOOL_WEB_DIR"));
    else
        snprintf(web, sizeof(web), "%s/web", b->dir);
    mkdir(web, 0700);
    snprintf(sets[0], sizeof(sets[0]), "state_dir=%s", b->state);
    snprintf(sets[1], sizeof(sets[1]), "vm_dir=%s", b->vm);
    snprintf(sets[2], sizeof(sets[2]), "web_root=%s", web);
    snprintf(sets[3], sizeof(sets[3]), "display_socket=%s", b->display);
    snprintf(sets[4], sizeof(sets[4]), "local_socket=%s/broker.sock", b->dir);
    snprintf(sets[5], sizeof(sets[5]), "listen=127.0.0.1");
    snprintf(sets[6], sizeof(sets[6]), "port=%d", b->port);
    snprintf(sets[7], sizeof(sets[7]), "reconcile_interval=1");
    argv[n++] = exe;
    for (i = 0; i < 8; i++) {
        argv[n++] = "--set";
        argv[n++] = sets[i];
    }
    for (i = 0; i < b->nextra; i++) {
        argv[n++] = "--set";
        argv[n++] = b->extra[i];
    }
    argv[n] = NULL;
    unlink(b->log); /* a restart starts a new log */
    b->pid = fork();
    ck_assert_int_ge(b->pid, 0);
    if (b->pid == 0) {
        int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

        dup2(fd, 2);
        tsbroker_pam_env(b);
        execv(exe, argv);
        _exit(127);
    }
    deadline = tsguest_now_ms() + 15000;
    while (!(b->port = tsbroker_port(b)) && tsguest_now_ms() < deadline &&
           waitpid(b->pid, NULL, WNOHANG) == 0)
        tsguest_sleep_ms(20);
    ck_assert_msg(b->port > 0, "deskpool-broker did not start: see %s", b->log);
    snprintf(b->url, sizeof(b->url), "https://127.0.0.1:%d", b->port);
}

int tsbroker_file_contains(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int found = 0;

    if (!f)
        return 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

int tsbroker_log_contains(const struct tsbroker *b, const char *text)
{
    return tsbroker_file_contains(b->log, text);
}

void tsbroker_stop(struct tsbroker *b)
{
    if (b->pid > 0) {
        kill(b->pid, SIGTERM);
        waitpid(b->pid, NULL, 0);
        b->pid = 0;
    }
    ck_assert_msg(!tsbroker_log_contains(b, "Sanitizer") &&
                      !tsbroker_log_contains(b, "runtime error"),
                  "sanitizer report in %s", b->log);
}

void tsbroker_remove_vms(struct tsbroker *b)
{
    struct hv_host *h = NULL;

    if (tsguest_host_open(&h, b->vm) == 0)
        tsguest_host_close(h); /* deletes its VMs, kills what names it */
}

void tsbroker_kill9(struct tsbroker *b)
{
    if (b->pid > 0) {
        kill(b->pid, SIGKILL);
        waitpid(b->pid, NULL, 0);
        b->pid = 0;
    }
}

void tsbroker_connect(const struct tsbroker *b, struct tsbroker_session *s)
{
    char err[256];

    memset(s, 0, sizeof(*s));
    snprintf(s->log, sizeof(s->log), "%s", b->log);
    signal(SIGPIPE, SIG_IGN); /* a server closing on us is an answer */
    ck_assert_msg(
        bk_client_open(&s->c, b->url, b->cert, 0, 30000, err, sizeof(err)) == 0,
        "client: %s", err);
}

void tsbroker_disconnect(struct tsbroker_session *s)
{
    bk_client_close(s->c);
    s->c = NULL;
}

/* The end of the broker's log on stderr: why it stopped answering. */
static void tsbroker_print_log(const char *log)
{
    char line[1024];
    long n = 0, skip;
    FILE *f = fopen(log, "r");

    if (!f)
        return;
    while (fgets(line, sizeof(line), f))
        n++;
    rewind(f);
    skip = n > 40 ? n - 40 : 0;
    fprintf(stderr, "tsbroker: the end of %s:\n", log);
    while (fgets(line, sizeof(line), f))
        if (skip-- <= 0)
            fputs(line, stderr);
    fclose(f);
}

int tsbroker_raw(struct tsbroker_session *s, const char *method,
                 const char *path, const char *headers, const char *body,
                 size_t len, struct bk_response *resp)
{
    char hdr[1024], err[256];
    int r;

    hdr[0] = '\0';
    if (s->token[0])
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", s->token);
    else if (s->cookie[0])
        snprintf(hdr, sizeof(hdr), "Cookie: %s\r\nX-CSRF-Token: %s\r\n",
                 s->cookie, s->csrf);
    if (headers)
        snprintf(hdr + strlen(hdr), sizeof(hdr) - strlen(hdr), "%s", headers);
    r = bk_client_request(s->c, method, path, hdr, body, len, resp, err,
                          sizeof(err));
    if (r && s->log[0])
        tsbroker_print_log(s->log);
    ck_assert_msg(r == 0, "%s %s: %s", method, path, err);
    return resp->status;
}

int tsbroker_call(struct tsbroker_session *s, const char *method,
                  const char *path, const char *body, json_t **reply)
{
    struct bk_response resp;
    int status = tsbroker_raw(s, method, path, NULL, body,
                              body ? strlen(body) : 0, &resp);

    if (reply)
        *reply = json_loadb(resp.body, resp.len, 0, NULL);
    bk_response_free(&resp);
    return status;
}

/* Keeps the session cookie a login reply sets. */
static void tsbroker_take_cookie(struct tsbroker_session *s,
                                 const struct bk_response *resp)
{
    char v[256], *semi;

    if (bk_response_header(resp, "set-cookie", v, sizeof(v)) != 0)
        return;
    semi = strchr(v, ';');
    if (semi)
        *semi = '\0';
    snprintf(s->cookie, sizeof(s->cookie), "%s", v);
}

int tsbroker_login(const struct tsbroker *b, struct tsbroker_session *s,
                   const char *user, const char *password, const char *otp,
                   int bearer)
{
    struct bk_response resp;
    json_t *reply, *req;
    char *text;
    int status, steps;

    (void)b;
    s->token[0] = s->cookie[0] = s->csrf[0] = '\0';
    req = json_pack("{ss sb}", "username", user, "bearer", bearer);
    for (steps = 0; steps < 8; steps++) {
        json_t *answers, *p;
        size_t i;

        text = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        status = tsbroker_raw(s, "POST", "/api/v1/login", NULL, text,
                              strlen(text), &resp);
        free(text);
        reply = json_loadb(resp.body, resp.len, 0, NULL);
        if (status == 200 &&
            !strcmp(json_string_value(json_object_get(reply, "state")) ?: "",
                    "ok")) {
            tsbroker_take_cookie(s, &resp);
            snprintf(s->csrf, sizeof(s->csrf), "%s",
                     json_string_value(json_object_get(reply, "csrf")));
            if (bearer)
                snprintf(s->token, sizeof(s->token), "%s",
                         json_string_value(json_object_get(reply, "token")));
            s->admin = json_is_true(json_object_get(reply, "admin"));
        }
        bk_response_free(&resp);
        if (status != 200 ||
            strcmp(json_string_value(json_object_get(reply, "state")) ?: "",
                   "prompt") != 0) {
            json_decref(reply);
            return status;
        }
        answers = json_array();
        json_array_foreach(json_object_get(reply, "prompts"), i, p)
        {
            const char *style =
                json_string_value(json_object_get(p, "style")) ?: "";

            if (!strcmp(style, "password"))
                json_array_append_new(answers, json_string(password));
            else if (!strcmp(style, "text"))
                json_array_append_new(answers, json_string(otp ? otp : ""));
        }
        req = json_pack("{sO so sb}", "conversation",
                        json_object_get(reply, "conversation"), "answers",
                        answers, "bearer", bearer);
        json_decref(reply);
    }
    json_decref(req);
    return -1;
}

char *tsbroker_pool_json(const char *name, int min, int spare, int max,
                         const char *extra)
{
    const char *g = tsguest_guest_dir();
    enum hv_accel accel = HV_ACCEL_AUTO;
    char path[3][512];
    json_t *p, *x;
    char *text;

    ck_assert_msg(g != NULL, "no test image");
    tsguest_accel(&accel);
    snprintf(path[0], sizeof(path[0]), "%s/root.qcow2", g);
    snprintf(path[1], sizeof(path[1]), "%s/vmlinuz", g);
    snprintf(path[2], sizeof(path[2]), "%s/initrd.img", g);
    p = json_pack("{ss ss ss ss ss si si si si ss s[s]}", "name", name,
                  "golden", path[0], "kernel", path[1], "initrd", path[2],
                  "cmdline", TSGUEST_CMDLINE, "memory_mb", TSGUEST_MEMORY_MB,
                  "min", min, "spare", spare, "max", max, "accel",
                  hv_accel_name(accel), "groups", "staff");
    if (extra) {
        x = json_loads(extra, 0, NULL);
        ck_assert_msg(x != NULL, "bad extra pool JSON");
        json_object_update(p, x);
        json_decref(x);
    }
    text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    return text;
}

int tsbroker_wait_ready(struct tsbroker_session *admin, const char *pool,
                        int count, int timeout_ms)
{
    long long deadline = tsguest_now_ms() + timeout_ms;
    char path[256];
    int ready = 0;

    snprintf(path, sizeof(path), "/api/v1/admin/desktops?pool=%s", pool);
    for (;;) {
        json_t *reply = NULL, *d;
        size_t i;

        ready = 0;
        if (tsbroker_call(admin, "GET", path, NULL, &reply) == 200)
            json_array_foreach(json_object_get(reply, "desktops"), i, d)
            {
                if (!strcmp(json_string_value(json_object_get(d, "state")),
                            "READY"))
                    ready++;
            }
        json_decref(reply);
        if (ready >= count || tsguest_now_ms() > deadline)
            return ready;
        tsguest_sleep_ms(250);
    }
}

int tsbroker_json_has(const json_t *j, const char *text)
{
    char *dump = j ? json_dumps(j, JSON_COMPACT) : NULL;
    int found = dump && strstr(dump, text) != NULL;

    free(dump);
    return found;
}

/* The admin's view of desktop id; a gone one fails the test, showing the
 * last audit events (what happened to it). */
static json_t *tsbroker_desktop(struct tsbroker_session *admin, const char *id)
{
    char path[160], *text;
    json_t *d = NULL, *ev = NULL;

    snprintf(path, sizeof(path), "/api/v1/admin/desktops/%s", id);
    if (tsbroker_call(admin, "GET", path, NULL, &d) == 200)
        return d;
    json_decref(d);
    tsbroker_call(admin, "GET", "/api/v1/admin/events?limit=20", NULL, &ev);
    text = json_dumps(ev, JSON_INDENT(1));
    fprintf(stderr, "%s is gone; last events:\n%s\n", id, text);
    free(text);
    json_decref(ev);
    ck_abort_msg("%s: no such desktop", id);
    return NULL;
}

void tsbroker_wait_state(struct tsbroker_session *admin, const char *id,
                         const char *state, const char *user, int timeout_ms)
{
    long long deadline = tsguest_now_ms() + timeout_ms;

    for (;;) {
        json_t *d = tsbroker_desktop(admin, id);
        const char *st = json_string_value(json_object_get(d, "state"));
        const char *u = json_string_value(json_object_get(d, "user"));
        int ok = st && !strcmp(st, state) && (!user || (u && !strcmp(u, user)));

        if (ok || tsguest_now_ms() > deadline) {
            ck_assert_msg(ok, "%s is %s (user '%s'), not %s", id, st ? st : "?",
                          u ? u : "", state);
            json_decref(d);
            return;
        }
        json_decref(d);
        tsguest_sleep_ms(200);
    }
}

void tsbroker_wait_template(const struct tsbroker *b,
                            struct tsbroker_session *admin, const char *pool,
                            const char *state, int timeout_ms)
{
    char path[200], want[64];
    long long until = tsguest_now_ms() + timeout_ms;

    snprintf(path, sizeof(path), "/api/v1/admin/events?pool=%s&limit=200",
             pool);
    snprintf(want, sizeof(want), "\"%s\"", state);
    for (;;) {
        json_t *r = NULL;
        int there;

        ck_assert_int_eq(tsbroker_call(admin, "GET", path, NULL, &r), 200);
        there =
            tsbroker_json_has(r, want) && tsbroker_json_has(r, "\"template\"");
        ck_assert_msg(!tsbroker_json_has(r, "\"failed\""),
                      "the template failed: see %s", b->log);
        json_decref(r);
        if (there)
            return;
        ck_assert_msg(tsguest_now_ms() < until, "no template %s in time",
                      state);
        tsguest_sleep_ms(200);
    }
}
