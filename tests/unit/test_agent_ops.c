/*
 * Unit tests of deskpool-agent's protocol handling (agent/ag_ops.h) with
 * its testdesk backend (ag_testdesk.c) talking to a real testdesk control
 * server (td_desk + td_ctl + td_cmd, no framebuffer) in a child process.
 * Lines go in as the host would send them; the replies and events that
 * come out are what the host would see.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ag_desk.h"
#include "ag_ops.h"
#include "dp_msg.h"
#include "td_cmd.h"
#include "td_ctl.h"
#include "td_desk.h"
#include "tsguest.h"

static char dir[] = "/tmp/dp-agent-test-XXXXXX";
static char sock[64];
static pid_t server;
static struct ag_desk *desk;
static struct ag_ops *ops;

/* What the agent sent, parsed. */
static struct dp_msg out[32];
static int nout;

static void on_send(void *arg, char *line)
{
    const char *code;
    char detail[256];
    (void)arg;
    ck_assert_int_eq(line[strlen(line) - 1], '\n');
    ck_assert_msg(nout < 32, "too many lines");
    /* Everything the agent says must be a well-formed message. */
    ck_assert_msg(dp_msg_parse(line, strlen(line) - 1, &out[nout], &code,
                               detail, sizeof(detail)) == 0,
                  "agent sent '%s': %s", line, detail);
    nout++;
    free(line);
}

static void forget(void)
{
    for (int i = 0; i < nout; i++)
        dp_msg_free(&out[i]);
    nout = 0;
}

/* --- the testdesk server ---------------------------------------------------
 */

static void serve_exec(void *arg, const char *line, char *reply, size_t size,
                       char *event, size_t event_size)
{
    td_cmd_exec(arg, line, reply, size, event, event_size);
}

static void serve(void)
{
    struct td_desk *d = td_desk_new(1024, 768, "deskpool-test");
    struct td_ctl *ctl;
    struct pollfd p[TD_CTL_POLLFDS];

    if (!d || td_ctl_open(&ctl, sock) < 0)
        _exit(1);
    for (;;) {
        int n = td_ctl_pollfds(ctl, p);
        if (poll(p, (nfds_t)n, 1000) > 0)
            td_ctl_handle(ctl, p, n, serve_exec, d);
    }
}

/* Does something accept connections on the unix socket at path? */
static int listening(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/td.sock", dir);
    server = fork();
    if (server == 0)
        serve();
    /* Until testdesk listens, not just until its socket file exists: it
     * binds before it listens, and a loaded machine may run the test in
     * between (the first request then found "testdesk is not running"). */
    for (int i = 0; i < 1000 && !listening(sock); i++)
        usleep(10000);
    desk = ag_testdesk_open(sock);
    ck_assert_ptr_nonnull(desk);
    ops = ag_ops_new(desk, on_send, NULL);
    ag_ops_set_system(ops, dir, 0); /* personalise writes here only */
}

static int rm_entry(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s, (void)f, (void)w;
    return remove(p), 0;
}

static void teardown(void)
{
    forget();
    ag_ops_free(ops);
    desk->ops->close(desk);
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    nftw(dir, rm_entry, 4, FTW_DEPTH | FTW_PHYS);
    strcpy(dir, "/tmp/dp-agent-test-XXXXXX");
}

/* --- helpers
 * ------------------------------------------------------------------ */

static void host_says(const char *line)
{
    ag_ops_line(ops, line, strlen(line));
}

/* The reply to request id among what the agent sent. */
static struct dp_msg *reply_to(json_int_t id)
{
    for (int i = 0; i < nout; i++)
        if (out[i].kind == DP_MSG_REPLY && out[i].id == id)
            return &out[i];
    ck_abort_msg("no reply to request %lld", (long long)id);
    return NULL;
}

static struct dp_msg *event(const char *name)
{
    for (int i = 0; i < nout; i++)
        if (out[i].kind == DP_MSG_EVENT && strcmp(out[i].name, name) == 0)
            return &out[i];
    return NULL;
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Lets the backend read testdesk's broadcast events and relay them, until
 * the agent has sent event `name` (bounded: a loaded machine is slow). */
static void pump_desk_events(const char *name)
{
    for (int i = 0; i < 250 && !event(name); i++) {
        struct pollfd p = {desk->ops->fd(desk), POLLIN, 0};
        poll(&p, 1, 20);
        desk->ops->process(desk, p.revents, ag_ops_desk_event, ops);
    }
}

/* --- tests
 * --------------------------------------------------------------------- */

START_TEST(hello_ready_heartbeat)
{
    struct dp_msg *hb;

    host_says("{\"event\":\"hello\",\"data\":{\"version\":1,\"host\":\"x\"}}");
    ck_assert_ptr_nonnull(event("hello"));
    ck_assert_int_eq(
        json_integer_value(json_object_get(event("hello")->body, "version")),
        1);
    ck_assert_ptr_nonnull(event("ready"));
    hb = event("heartbeat");
    ck_assert_ptr_nonnull(hb);
    ck_assert_str_eq(str(hb->body, "user"), "");
    ck_assert(json_is_false(json_object_get(hb->body, "locked")));
    forget();
    /* A host of another version is told so, not greeted. */
    host_says("{\"event\":\"hello\",\"data\":{\"version\":2}}");
    ck_assert_ptr_nonnull(event("error"));
    ck_assert_str_eq(str(event("error")->body, "error"), "version");
    ck_assert_ptr_null(event("hello"));
}
END_TEST

START_TEST(session_shows_in_heartbeat_and_logoff_reports_logout)
{
    struct dp_msg *r;

    host_says("{\"id\":1,\"op\":\"prepare-session\",\"args\":{\"user\":"
              "\"alice\",\"display_name\":\"Alice Liddell\"}}");
    r = reply_to(1);
    ck_assert_msg(r->ok, "%s: %s", r->error, r->message);
    ck_assert_str_eq(str(event("login")->body, "user"), "alice");
    ag_ops_heartbeat(ops);
    ck_assert_str_eq(str(event("heartbeat")->body, "user"), "alice");
    ck_assert_int_gt(
        json_integer_value(json_object_get(event("heartbeat")->body, "since")),
        0);
    forget();
    host_says("{\"id\":2,\"op\":\"logoff\"}");
    ck_assert(reply_to(2)->ok);
    pump_desk_events("logout");
    ck_assert_ptr_nonnull(event("logout"));
    ck_assert_str_eq(str(event("logout")->body, "user"), "alice");
}
END_TEST

START_TEST(lock_resolution_message_clipboard)
{
    const char *text = "tab\there \"quoted\" back\\slash\nh\xc3\xa9llo";
    json_t *req;
    char *line;

    host_says("{\"id\":1,\"op\":\"lock\"}");
    ck_assert(reply_to(1)->ok);
    ag_ops_heartbeat(ops);
    ck_assert(
        json_is_true(json_object_get(event("heartbeat")->body, "locked")));
    host_says("{\"id\":2,\"op\":\"set-resolution\",\"args\":{\"width\":800,"
              "\"height\":600}}");
    ck_assert_int_eq(
        json_integer_value(json_object_get(reply_to(2)->body, "width")), 800);
    pump_desk_events("resolution");
    ck_assert_ptr_nonnull(event("resolution"));
    ck_assert_int_eq(json_integer_value(
                         json_object_get(event("resolution")->body, "height")),
                     600);
    host_says("{\"id\":3,\"op\":\"message\",\"args\":{\"text\":\"Hi\"}}");
    ck_assert(reply_to(3)->ok);
    /* an empty text takes the message away */
    host_says("{\"id\":6,\"op\":\"message\",\"args\":{\"text\":\"\"}}");
    ck_assert_msg(reply_to(6)->ok, "%s", reply_to(6)->message);

    req = json_pack("{s:i, s:s, s:{s:s}}", "id", 4, "op", "clipboard-set",
                    "args", "text", text);
    line = json_dumps(req, JSON_COMPACT);
    host_says(line);
    free(line);
    json_decref(req);
    ck_assert_msg(reply_to(4)->ok, "%s", reply_to(4)->message);
    host_says("{\"id\":5,\"op\":\"clipboard-get\"}");
    ck_assert_str_eq(str(reply_to(5)->body, "text"), text);
}
END_TEST

START_TEST(bad_requests_get_error_replies)
{
    static const struct {
        const char *line, *code;
    } bad[] = {
        {"{\"id\":1,\"op\":\"teleport\"}", "unknown-op"},
        {"{\"id\":2,\"op\":\"prepare-session\"}", "bad-request"},
        {"{\"id\":3,\"op\":\"prepare-session\",\"args\":{\"user\":\"a b\"}}",
         "bad-request"},
        {"{\"id\":4,\"op\":\"prepare-session\",\"args\":{\"user\":7}}",
         "bad-request"},
        {"{\"id\":5,\"op\":\"set-resolution\",\"args\":{\"width\":10,"
         "\"height\":600}}",
         "bad-request"},
        {"{\"id\":6,\"op\":\"set-resolution\",\"args\":{\"width\":\"800\","
         "\"height\":600}}",
         "bad-request"},
        {"{\"id\":7,\"op\":\"message\",\"args\":{\"text\":\"a\\u0007\"}}",
         "bad-request"},
        {"{\"id\":8,\"op\":\"clipboard-set\",\"args\":{\"text\":\"a\\u0001\"}}",
         "bad-request"},
        {"{\"id\":9,\"op\":\"personalise\",\"args\":{\"hostname\":\"bad_name"
         "!\",\"machine_id\":\"0123456789abcdef0123456789abcdef\"}}",
         "bad-request"},
        {"{\"id\":10,\"op\":\"personalise\",\"args\":{\"hostname\":\"ok\","
         "\"machine_id\":\"XYZ\"}}",
         "bad-request"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct dp_msg *r;
        host_says(bad[i].line);
        r = reply_to((json_int_t)i + 1);
        ck_assert_msg(!r->ok && strcmp(r->error, bad[i].code) == 0,
                      "%s: got %s (%s)", bad[i].line, r->error, r->message);
        ck_assert_str_ne(r->message, "");
    }
    /* Lines that are no request at all get error events. */
    forget();
    host_says("{not json");
    ck_assert_str_eq(str(event("error")->body, "error"), "bad-json");
    forget();
    ag_ops_line(ops, NULL, 0); /* what framing reports for an over-long line */
    ck_assert_str_eq(str(event("error")->body, "error"), "line-too-long");
    /* And the agent still works. */
    forget();
    host_says("{\"id\":99,\"op\":\"ping\"}");
    ck_assert(reply_to(99)->ok);
}
END_TEST

/* 32 bytes: 00 01 02 ... 0f ff ... a5 */
#define SEED_HEX                                                               \
    "000102030405060708090a0b0c0d0e0f"                                         \
    "ff0000000000000000000000000000a5"

START_TEST(personalise_writes_identity)
{
    char path[128], buf[64] = "";
    FILE *f;

    host_says("{\"id\":1,\"op\":\"personalise\",\"args\":{\"hostname\":"
              "\"desk-42\",\"machine_id\":\"0123456789abcdef0123456789abcdef\","
              "\"time\":1700000000,\"random_seed\":\"" SEED_HEX "\"}}");
    ck_assert_msg(reply_to(1)->ok, "%s", reply_to(1)->message);
    snprintf(path, sizeof(path), "%s/hostname", dir);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
    fclose(f);
    ck_assert_str_eq(buf, "desk-42\n");
    snprintf(path, sizeof(path), "%s/machine-id", dir);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
    fclose(f);
    ck_assert_str_eq(buf, "0123456789abcdef0123456789abcdef\n");
    /* the seed's bytes, where the kernel's pool would have had them */
    snprintf(path, sizeof(path), "%s/random-seed", dir);
    f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(buf, 1, sizeof(buf), f), 32);
    fclose(f);
    ck_assert(buf[0] == '\x00' && buf[1] == '\x01' && buf[16] == '\xff' &&
              buf[31] == '\xa5');
}
END_TEST

/* A seed of the wrong length or not hex is refused, and nothing of the
 * request is applied. */
START_TEST(personalise_refuses_a_bad_seed)
{
    char path[128];
    const char *bad[] = {"00", SEED_HEX "00",
                         "zz0102030405060708090a0b0c0d0e0f"
                         "ff0000000000000000000000000000a5"};

    for (int i = 0; i < 3; i++) {
        char line[400];
        struct dp_msg *r;

        snprintf(line, sizeof(line),
                 "{\"id\":%d,\"op\":\"personalise\",\"args\":{"
                 "\"hostname\":\"desk-1\",\"machine_id\":"
                 "\"0123456789abcdef0123456789abcdef\",\"random_seed\":"
                 "\"%s\"}}",
                 i + 1, bad[i]);
        host_says(line);
        r = reply_to(i + 1);
        ck_assert_msg(!r->ok && !strcmp(r->error, "bad-request"), "%s", bad[i]);
        ck_assert_ptr_nonnull(strstr(r->message, "random_seed"));
    }
    snprintf(path, sizeof(path), "%s/hostname", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

START_TEST(desktop_gone_is_not_ready)
{
    struct dp_msg *r;

    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    host_says("{\"id\":1,\"op\":\"lock\"}");
    r = reply_to(1);
    ck_assert(!r->ok);
    ck_assert_msg(strcmp(r->error, "not-ready") == 0 ||
                      strcmp(r->error, "failed") == 0,
                  "%s", r->error);
    /* No heartbeat without a desktop: the host notices the silence. */
    forget();
    ag_ops_heartbeat(ops);
    ck_assert_ptr_null(event("heartbeat"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("agent-ops");
    TCase *tc = tcase_create("testdesk");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, hello_ready_heartbeat);
    tcase_add_test(tc, session_shows_in_heartbeat_and_logoff_reports_logout);
    tcase_add_test(tc, lock_resolution_message_clipboard);
    tcase_add_test(tc, bad_requests_get_error_replies);
    tcase_add_test(tc, personalise_writes_identity);
    tcase_add_test(tc, personalise_refuses_a_bad_seed);
    tcase_add_test(tc, desktop_gone_is_not_ready);
    suite_add_tcase(s, tc);
    return tsguest_run_checks(s);
}
