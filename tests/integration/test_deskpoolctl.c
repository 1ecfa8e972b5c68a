/*
 * test_deskpoolctl.c - deskpoolctl, the admin CLI, against the real broker
 * (tsbroker: PAM through pam_wrapper, its own state folder). No guest:
 * the pools have min 0 and spare 0, so nothing is provisioned.
 *
 * deskpoolctl runs as a child process (fork + execv, no shell) with its
 * answers piped to stdin and its session file in the broker's folder;
 * the tests look at what it prints and how it exits, as an administrator
 * would, and at the session file it leaves.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsbroker.h"
#include "tsguest.h"

#define CTL_RUN_TIMEOUT_MS 60000
#define CTL_ARGS_MAX       48

static struct tsbroker server;
static char session[256]; /* in a folder deskpoolctl has to make */

/* What one run of deskpoolctl did. */
struct run {
    int status; /* exit status; -1 when it died of a signal */
    char *out, *err;
};

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

static void child(const char *exe, char **argv, int in, int out, int err)
{
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    setenv("DESKPOOL_SESSION", session, 1);
    execv(exe, argv);
    _exit(127);
}

/* Appends what fd has to *buf; 0 at its end. */
static int drain(int fd, char **buf, size_t *len)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));

    if (n <= 0)
        return n < 0 && errno == EINTR ? 1 : 0;
    *buf = realloc(*buf, *len + (size_t)n + 1);
    ck_assert_ptr_nonnull(*buf);
    memcpy(*buf + *len, chunk, (size_t)n);
    *len += (size_t)n;
    (*buf)[*len] = '\0';
    return 1;
}

/* Reads stdout and stderr together (either may fill its pipe first). */
static void collect(pid_t pid, int out, int err, struct run *r)
{
    struct pollfd p[2] = {{.fd = out, .events = POLLIN},
                          {.fd = err, .events = POLLIN}};
    size_t len[2] = {0, 0};
    long long deadline = tsguest_now_ms() + CTL_RUN_TIMEOUT_MS;
    int open = 2, i;

    while (open && tsguest_now_ms() < deadline) {
        if (poll(p, 2, 1000) <= 0)
            continue;
        for (i = 0; i < 2; i++)
            if (p[i].fd >= 0 && p[i].revents &&
                !drain(p[i].fd, i ? &r->err : &r->out, &len[i])) {
                p[i].fd = -1;
                open--;
            }
    }
    if (open)
        kill(pid, SIGKILL);
    ck_assert_msg(!open, "deskpoolctl hung; stderr so far: %s",
                  r->err ? r->err : "");
}

/* Runs deskpoolctl with args (NULL-terminated), input on its stdin. */
static void run_argv(struct run *r, const struct tsbroker *b, const char *input,
                     const char *const *args)
{
    const char *bin = getenv("DESKPOOL_BIN_DIR");
    char exe[512], *argv[CTL_ARGS_MAX + 6];
    int in[2], out[2], err[2], n = 0, st;
    pid_t pid;

    ck_assert_msg(bin != NULL, "DESKPOOL_BIN_DIR is not set");
    snprintf(exe, sizeof(exe), "%s/deskpoolctl", bin);
    argv[n++] = exe;
    if (b) {
        argv[n++] = "--url";
        argv[n++] = (char *)b->url;
        argv[n++] = "--cacert";
        argv[n++] = (char *)b->cert;
    }
    for (; *args; args++) {
        ck_assert_int_lt(n, CTL_ARGS_MAX + 5);
        argv[n++] = (char *)*args;
    }
    argv[n] = NULL;
    ck_assert(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0 &&
              pipe2(err, O_CLOEXEC) == 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        child(exe, argv, in[0], out[1], err[1]);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    signal(SIGPIPE, SIG_IGN); /* it may exit before reading every answer */
    if (input && write(in[1], input, strlen(input)) < 0)
        ck_assert_int_eq(errno, EPIPE);
    close(in[1]);
    memset(r, 0, sizeof(*r));
    r->out = strdup("");
    r->err = strdup("");
    collect(pid, out[0], err[0], r);
    close(out[0]);
    close(err[0]);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Collects the variadic arguments (up to NULL) into an array. */
#define ARGS_FROM(first, out)                                                  \
    do {                                                                       \
        va_list ap;                                                            \
        int n_ = 0;                                                            \
        const char *a_ = (first);                                              \
                                                                               \
        va_start(ap, first);                                                   \
        while (a_ && n_ < CTL_ARGS_MAX) {                                      \
            (out)[n_++] = a_;                                                  \
            a_ = va_arg(ap, const char *);                                     \
        }                                                                      \
        va_end(ap);                                                            \
        (out)[n_] = NULL;                                                      \
    } while (0)

/* deskpoolctl --url URL --cacert CERT ARGS... on the fixture's broker. */
static void ctl(struct run *r, const char *input, const char *first, ...)
{
    const char *args[CTL_ARGS_MAX + 1];

    ARGS_FROM(first, args);
    run_argv(r, &server, input, args);
}

/* Without --url and --cacert: what the session file says is used. */
static void ctl_bare(struct run *r, const char *input, const char *first, ...)
{
    const char *args[CTL_ARGS_MAX + 1];

    ARGS_FROM(first, args);
    run_argv(r, NULL, input, args);
}

/* Runs and checks the exit status; the output is for the caller. */
#define ctl_ok(r, ...)                                                         \
    do {                                                                       \
        ctl((r), NULL, __VA_ARGS__, NULL);                                     \
        ck_assert_msg((r)->status == 0, "exit %d, stderr: %s", (r)->status,    \
                      (r)->err);                                               \
    } while (0)

static void login_as(const char *user, const char *answers)
{
    struct run r;

    ctl(&r, answers, "login", user, NULL);
    ck_assert_msg(r.status == 0, "login %s: exit %d: %s", user, r.status,
                  r.err);
    run_free(&r);
}

/* --- reading tables ------------------------------------------------------- */

/* Where column col (a header word) starts and the next one starts (or
 * SIZE_MAX for the last) in a table's header line. */
static void column(const char *table, const char *col, size_t *start,
                   size_t *end)
{
    size_t hlen = strcspn(table, "\n"), n = strlen(col), i;

    for (i = 0; i + n <= hlen; i++)
        if (!strncmp(table + i, col, n) && (i == 0 || table[i - 1] == ' ') &&
            (table[i + n] == ' ' || table[i + n] == '\n'))
            break;
    ck_assert_msg(i + n <= hlen, "no column %s in: %.*s", col, (int)hlen,
                  table);
    *start = i;
    for (i += n; i < hlen && table[i] == ' '; i++)
        ;
    *end = i < hlen ? i : (size_t)-1;
}

/* The text of column col in the line starting at line (malloc'd),
 * checking that it starts right under its header. */
static char *cell(const char *table, const char *line, const char *col)
{
    size_t start, end, len = strcspn(line, "\n");
    char *text;

    column(table, col, &start, &end);
    if (start >= len)
        return strdup("");
    ck_assert_msg(start == 0 || line[start - 1] == ' ',
                  "column %s is not aligned in: %.*s", col, (int)len, line);
    if (end > len)
        end = len;
    while (end > start && line[end - 1] == ' ')
        end--;
    text = strndup(line + start, end - start);
    ck_assert_ptr_nonnull(text);
    return text;
}

static int cell_is(const char *table, const char *line, const char *col,
                   const char *want)
{
    char *c = cell(table, line, col);
    int same = !strcmp(c, want);

    free(c);
    return same;
}

/* The first row (after the header) whose column col is value, or NULL. */
static const char *row_where(const char *table, const char *col,
                             const char *value)
{
    const char *line = strchr(table, '\n');

    for (; line && line[1]; line = strchr(line + 1, '\n'))
        if (cell_is(table, line + 1, col, value))
            return line + 1;
    return NULL;
}

static void assert_cell(const char *table, const char *line, const char *col,
                        const char *want)
{
    char *c = cell(table, line, col);

    ck_assert_msg(!strcmp(c, want), "%s is \"%s\", not \"%s\" in:\n%s", col, c,
                  want, table);
    free(c);
}

/* --- pools ---------------------------------------------------------------- */

/* "pools create NAME KEY=VALUE..." with the test image's settings, the
 * way an administrator would type them. */
static void create_pool(const char *name, int min, int spare, int max)
{
    char *text = tsbroker_pool_json(name, min, spare, max, NULL);
    json_t *p = json_loads(text, 0, NULL), *v;
    const char *args[CTL_ARGS_MAX + 1], *key;
    char kv[24][600];
    struct run r;
    int n = 0, k = 0;

    ck_assert_ptr_nonnull(p);
    args[n++] = "pools";
    args[n++] = "create";
    args[n++] = name;
    json_object_foreach(p, key, v)
    {
        if (!strcmp(key, "name"))
            continue;
        ck_assert_int_lt(k, 24);
        if (json_is_integer(v))
            snprintf(kv[k], sizeof(kv[k]), "%s=%lld", key,
                     (long long)json_integer_value(v));
        else if (json_is_array(v)) /* groups: one name here */
            snprintf(kv[k], sizeof(kv[k]), "%s=%s", key,
                     json_string_value(json_array_get(v, 0)));
        else
            snprintf(kv[k], sizeof(kv[k]), "%s=%s", key, json_string_value(v));
        args[n++] = kv[k++];
    }
    args[n] = NULL;
    run_argv(&r, &server, NULL, args);
    ck_assert_msg(r.status == 0, "create %s: exit %d: %s", name, r.status,
                  r.err);
    ck_assert_msg(strstr(r.out, "created pool ") && strstr(r.out, name), "%s",
                  r.out);
    run_free(&r);
    json_decref(p);
    free(text);
}

static json_t *json_out(const struct run *r)
{
    json_error_t e;
    json_t *j = json_loads(r->out, 0, &e);

    ck_assert_msg(j != NULL, "not JSON (%s): %s", e.text, r->out);
    return j;
}

/* --- tests ---------------------------------------------------------------- */

START_TEST(login_keeps_a_private_session)
{
    struct run r;
    struct stat st;
    char *saved;
    FILE *f;
    long n;

    ctl(&r, "admin-pw\n", "login", "admin", NULL);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_msg(strstr(r.out, "logged in as admin (admin)\n"), "%s", r.out);
    ck_assert_msg(strstr(r.err, "Password:"), "no prompt: %s", r.err);
    run_free(&r);

    ck_assert_int_eq(stat(session, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    f = fopen(session, "r");
    ck_assert_ptr_nonnull(f);
    saved = calloc(1, 65536);
    n = (long)fread(saved, 1, 65535, f);
    fclose(f);
    ck_assert_int_gt(n, 0);
    ck_assert_msg(!strstr(saved, "admin-pw"), "the password was saved");
    ck_assert_ptr_nonnull(strstr(saved, server.url));
    free(saved);

    /* Later runs find the server, its CA and the token in the file. */
    ctl_bare(&r, NULL, "whoami", NULL);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_msg(strstr(r.out, "admin (admin)") &&
                      strstr(r.out, "deskpool-admins") &&
                      strstr(r.out, server.url),
                  "%s", r.out);
    run_free(&r);

    /* ...and the token never goes to another server. */
    run_argv(&r, NULL, NULL,
             (const char *[]){"--url", "https://localhost:1", "whoami", NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(
        strstr(r.err, "deskpoolctl: not logged in (run deskpoolctl login)"));
    run_free(&r);

    /* Without a user name on the command line, it is asked for. */
    ctl(&r, "alice\nalice-pw\n", "login", NULL);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_msg(strstr(r.out, "logged in as alice\n"), "%s", r.out);
    ck_assert_ptr_nonnull(strstr(r.err, "User:"));
    run_free(&r);
}
END_TEST

START_TEST(wrong_password_is_refused)
{
    struct run r;

    ctl(&r, "not-the-password\n", "login", "admin", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "deskpoolctl: wrong user name or password"),
                  "%s", r.err);
    ck_assert_ptr_null(strstr(r.out, "logged in"));
    ck_assert_int_eq(access(session, F_OK), -1);
    run_free(&r);

    /* No answer at all (end of input) fails too, without hanging. */
    ctl(&r, "", "login", "admin", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "deskpoolctl: no answer"), "%s", r.err);
    ck_assert_int_eq(access(session, F_OK), -1);
    run_free(&r);

    ctl(&r, NULL, "whoami", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "not logged in"));
    run_free(&r);
}
END_TEST

START_TEST(pools_create_list_set_delete)
{
    struct run r;
    const char *row;
    long long deadline;
    int gone = 0;

    login_as("admin", "admin-pw\n");
    create_pool("web", 0, 0, 2);

    ctl_ok(&r, "pools", "list");
    ck_assert_msg(!strncmp(r.out, "NAME ", 5), "no header: %s", r.out);
    row = row_where(r.out, "NAME", "web");
    ck_assert_msg(row != NULL, "no row for web in:\n%s", r.out);
    assert_cell(r.out, row, "TYPE", "floating");
    assert_cell(r.out, row, "MIN", "0");
    assert_cell(r.out, row, "SPARE", "0");
    assert_cell(r.out, row, "MAX", "2");
    assert_cell(r.out, row, "DESKTOPS", "0");
    assert_cell(r.out, row, "STATE", "ok");
    run_free(&r);

    /* The server's validation message, as it wrote it. */
    ctl(&r, NULL, "pools", "set", "web", "spare=5", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "deskpoolctl: spare: must be 0..max (2)"), "%s",
                  r.err);
    run_free(&r);
    ctl(&r, NULL, "pools", "set", "web", "frobs=1", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "frobs: unknown setting"), "%s", r.err);
    run_free(&r);

    ctl_ok(&r, "pools", "set", "web", "max=4", "description=test pool",
           "users=alice,bob", "maintenance=true");
    ck_assert_ptr_nonnull(strstr(r.out, "updated pool web"));
    run_free(&r);
    ctl_ok(&r, "pools");
    row = row_where(r.out, "NAME", "web");
    ck_assert_ptr_nonnull(row);
    assert_cell(r.out, row, "MAX", "4");
    assert_cell(r.out, row, "STATE", "maintenance");
    assert_cell(r.out, row, "DESCRIPTION", "test pool");
    run_free(&r);
    ctl_ok(&r, "pools", "show", "web");
    ck_assert_msg(strstr(r.out, "\nusers ") && strstr(r.out, "alice,bob\n") &&
                      strstr(r.out, "\ngroups ") && strstr(r.out, "staff\n"),
                  "%s", r.out);
    run_free(&r);

    ctl_ok(&r, "pools", "delete", "web");
    ck_assert_ptr_nonnull(strstr(r.out, "deleting pool web"));
    run_free(&r);
    /* The manager removes a pool without desktops on its next round. */
    deadline = tsguest_now_ms() + 30000;
    while (!gone && tsguest_now_ms() < deadline) {
        ctl_ok(&r, "pools", "list");
        row = row_where(r.out, "NAME", "web");
        gone = row == NULL;
        if (row)
            ck_assert(cell_is(r.out, row, "STATE", "deleting"));
        run_free(&r);
        if (!gone)
            tsguest_sleep_ms(250);
    }
    ck_assert_msg(gone, "the pool stayed");
    ctl(&r, NULL, "pools", "show", "web", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "deskpoolctl: no such pool"));
    run_free(&r);
}
END_TEST

START_TEST(json_output_parses)
{
    struct run r;
    json_t *j, *p;

    login_as("admin", "admin-pw\n");
    create_pool("j1", 0, 0, 2);

    ctl_ok(&r, "pools", "list", "--json");
    j = json_out(&r);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "pools")), 1);
    p = json_array_get(json_object_get(j, "pools"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(p, "name")), "j1");
    ck_assert_int_eq(json_integer_value(json_object_get(p, "max")), 2);
    json_decref(j);
    run_free(&r);

    ctl_ok(&r, "--json", "pools", "show", "j1");
    j = json_out(&r);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "spare")), 0);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "floating");
    json_decref(j);
    run_free(&r);

    ctl_ok(&r, "--json", "whoami");
    j = json_out(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "user")), "admin");
    ck_assert(json_is_true(json_object_get(j, "admin")));
    json_decref(j);
    run_free(&r);

    ctl_ok(&r, "--json", "desktops", "--pool", "j1");
    j = json_out(&r);
    ck_assert(json_is_array(json_object_get(j, "desktops")));
    json_decref(j);
    run_free(&r);

    ctl_ok(&r, "--json", "events", "--limit", "2");
    j = json_out(&r);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "events")), 2);
    json_decref(j);
    run_free(&r);

    ctl_ok(&r, "--json", "sessions");
    j = json_out(&r);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "sessions")), 0);
    json_decref(j);
    run_free(&r);
}
END_TEST

START_TEST(non_admin_is_told_administrators_only)
{
    struct run r;

    ctl(&r, "alice-pw\n", "login", "alice", NULL);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_msg(strstr(r.out, "logged in as alice\n"), "%s", r.out);
    run_free(&r);

    ctl(&r, NULL, "pools", "list", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "deskpoolctl: administrators only"), "%s",
                  r.err);
    ck_assert_str_eq(r.out, "");
    run_free(&r);
    ctl(&r, NULL, "events", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "administrators only"));
    run_free(&r);

    /* What a user may do works, and says what is wrong. */
    ctl_ok(&r, "whoami");
    ck_assert_ptr_nonnull(strstr(r.out, "alice"));
    ck_assert_ptr_null(strstr(r.out, "(admin)"));
    run_free(&r);
    ctl(&r, NULL, "launch", "nosuchpool", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "deskpoolctl: no such pool"), "%s", r.err);
    run_free(&r);
}
END_TEST

START_TEST(events_show_the_login_and_pool_create)
{
    struct run r;
    const char *login, *create;

    login_as("admin", "admin-pw\n");
    create_pool("ev1", 0, 0, 2);

    ctl_ok(&r, "events");
    ck_assert_msg(!strncmp(r.out, "TIME ", 5), "no header: %s", r.out);
    login = row_where(r.out, "KIND", "login");
    create = row_where(r.out, "KIND", "pool-create");
    ck_assert_msg(login && create, "missing events in:\n%s", r.out);
    assert_cell(r.out, login, "USER", "admin");
    assert_cell(r.out, create, "USER", "admin");
    assert_cell(r.out, create, "POOL", "ev1");
    ck_assert_msg(login < create, "not oldest first:\n%s", r.out);
    run_free(&r);

    /* Filters go to the server. */
    ctl_ok(&r, "events", "--pool", "ev1");
    ck_assert_ptr_nonnull(row_where(r.out, "KIND", "pool-create"));
    ck_assert_ptr_null(row_where(r.out, "KIND", "login"));
    run_free(&r);
    ctl_ok(&r, "events", "--user", "nobody");
    ck_assert_msg(!strncmp(r.out, "TIME ", 5) && !strchr(r.out, '\n')[1],
                  "not just the header: %s", r.out);
    run_free(&r);
}
END_TEST

START_TEST(logout_then_whoami_says_not_logged_in)
{
    struct tsbroker_session s;
    struct run r;
    json_t *saved;
    char token[64];

    login_as("admin", "admin-pw\n");
    saved = json_load_file(session, 0, NULL);
    ck_assert_ptr_nonnull(saved);
    snprintf(token, sizeof(token), "%s",
             json_string_value(json_object_get(saved, "token")));
    json_decref(saved);

    ctl_ok(&r, "logout");
    ck_assert_ptr_nonnull(strstr(r.out, "logged out"));
    run_free(&r);
    ck_assert_int_eq(access(session, F_OK), -1);

    ctl(&r, NULL, "whoami", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(
        strstr(r.err, "deskpoolctl: not logged in (run deskpoolctl login)"),
        "%s", r.err);
    run_free(&r);

    /* The server ended the session too. */
    tsbroker_connect(&server, &s);
    snprintf(s.token, sizeof(s.token), "%s", token);
    ck_assert_int_eq(tsbroker_call(&s, "GET", "/api/v1/me", NULL, NULL), 401);
    tsbroker_disconnect(&s);
}
END_TEST

START_TEST(usage_errors_exit_2)
{
    static const char *const cases[][5] = {
        {"frobnicate", NULL},
        {"pools", "frobnicate", NULL},
        {"pools", "set", "web", NULL},
        {"pools", "create", "web", "novalue", NULL},
        {"pools", "show", NULL},
        {"desktops", "power-on", NULL},
        {"events", "--limit", "0", NULL},
        {"events", "--since", "yesterday", NULL},
        {"launch", "p", "--protocol", "telnet", NULL},
        {"--url", NULL},
        {NULL},
    };
    struct run r;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_argv(&r, &server, NULL, cases[i]);
        ck_assert_msg(r.status == 2, "%s: exit %d", cases[i][0] ?: "(none)",
                      r.status);
        ck_assert_msg(strstr(r.err, "usage: deskpoolctl"), "%s", r.err);
        run_free(&r);
    }
    ctl_ok(&r, "--help");
    ck_assert_ptr_nonnull(strstr(r.out, "usage: deskpoolctl"));
    run_free(&r);
}
END_TEST

/* A second, echoed question (like an OTP) is asked and answered. */
START_TEST(otp_prompt_is_answered)
{
    struct tsbroker otp;
    struct run r;

    tsbroker_init(&otp, TSBROKER_OTP);
    tsbroker_start(&otp);
    run_argv(&r, &otp, "admin-pw\notp-admin\n",
             (const char *[]){"login", "admin", NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "logged in as admin (admin)"));
    run_free(&r);
    run_argv(&r, &otp, "admin-pw\nwrong\n",
             (const char *[]){"login", "admin", NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "wrong user name or password"));
    run_free(&r);
    tsbroker_stop(&otp);
}
END_TEST

static void setup(void)
{
    tsbroker_init(&server, 0);
    tsbroker_start(&server);
    snprintf(session, sizeof(session), "%s/cli/session", server.dir);
}

static void teardown(void)
{
    tsbroker_stop(&server);
}

static Suite *ctl_suite(void)
{
    Suite *s = suite_create("deskpoolctl");
    TCase *tc = tcase_create("cli");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, login_keeps_a_private_session);
    tcase_add_test(tc, wrong_password_is_refused);
    tcase_add_test(tc, pools_create_list_set_delete);
    tcase_add_test(tc, json_output_parses);
    tcase_add_test(tc, non_admin_is_told_administrators_only);
    tcase_add_test(tc, events_show_the_login_and_pool_create);
    tcase_add_test(tc, logout_then_whoami_says_not_logged_in);
    tcase_add_test(tc, usage_errors_exit_2);
    tcase_add_test(tc, otp_prompt_is_answered);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tsguest_run_suite(ctl_suite());
}
