/*
 * bk_ctl.c - deskpoolctl, the administrator's command line over the
 * broker's REST API.
 *
 * Each run makes a few blocking requests on one bk_client connection.
 * `login` walks the PAM conversation on the terminal and keeps the bearer
 * token with the URL and CA file it belongs to in a session file (mode
 * 0600) that later runs read; every other command is one or two requests
 * whose JSON reply is shown as an aligned table, as key/value lines, or
 * (--json) as the server sent it.
 *
 * Exit status: 0 done, 1 refused or failed (the reason on stderr), 2 usage
 * error. Nothing is ever handed to a shell, and control characters in the
 * server's text are replaced before they reach the terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bk_client.h"

#define CTL_DEFAULT_URL "https://localhost:8443"
/* Desktop operations are parked up to 120 s by the server. */
#define CTL_TIMEOUT_MS    150000
#define CTL_ANSWER_MAX    1024 /* the server's bound on one answer */
#define CTL_USER_MAX      64   /* the server's bound on user names */
#define CTL_LOGIN_ROUNDS  16   /* prompt rounds before giving up */
#define CTL_LAUNCH_WAIT_S 300  /* how long launch waits for a desktop */
#define CTL_SESSION_MAX   65536
#define CTL_ARG_MAX       200 /* names and ids going into a path */
#define CTL_DETAIL_MAX    100 /* event details in a table */
#define CTL_COLS_MAX      10
#define CTL_RDP_PORT      3389 /* what the broker's .rdp files name */

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

static const char ctl_usage_text[] =
    "usage: deskpoolctl [--url URL] [--cacert FILE | --insecure] [--json] "
    "COMMAND ...\n"
    "\n"
    "  login [USER]                      log in and keep the session\n"
    "  logout                            end the session\n"
    "  whoami                            who the session belongs to\n"
    "  pools [list]                      pools, their sizes and state\n"
    "  pools show NAME                   a pool's settings\n"
    "  pools create NAME KEY=VALUE ...   a new pool (golden=IMAGE needed)\n"
    "  pools set NAME KEY=VALUE ...      change some of a pool's settings\n"
    "  pools delete NAME                 delete a pool and its desktops\n"
    "  pools resume NAME                 provision again after errors\n"
    "  desktops [list] [--pool P] [--user U]\n"
    "  desktops show ID\n"
    "  desktops power-on|power-off|reset|refresh|delete|logoff ID\n"
    "  desktops screenshot ID FILE.png   (FILE - for stdout)\n"
    "  sessions                          desktops in use\n"
    "  events [--user U] [--pool P] [--since UNIX_MS] [--until UNIX_MS]\n"
    "         [--limit N]\n"
    "  launch POOL [--protocol browser|rdp|vnc]\n"
    "\n"
    "KEY=VALUE: whole numbers and true/false are sent as such, users=a,b\n"
    "and groups=a,b as lists, anything else as text.\n"
    "--url defaults to the URL of the last login, else " CTL_DEFAULT_URL ".\n"
    "The session file is $DESKPOOL_SESSION, else\n"
    "$XDG_CONFIG_HOME/deskpool/session or ~/.config/deskpool/session.\n";

struct ctl {
    char url[512];
    char cacert[PATH_MAX];
    int insecure, json;
    int url_given, ca_given; /* on the command line: they beat the session */
    char session[PATH_MAX];  /* the session file */
    char token[128];
    struct bk_client *c;
};

/* --- small helpers -------------------------------------------------------- */

static void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void ctl_err(const char *fmt, ...)
{
    va_list ap;

    fputs("deskpoolctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* A short-lived command has nothing sensible to go on with without
 * memory, so allocation failures end it. */
static void *ctl_oom(void *p)
{
    if (!p) {
        ctl_err("out of memory");
        exit(CTL_FAIL);
    }
    return p;
}

/* Login answers are passwords: whatever jansson held is wiped on free. */
static void ctl_json_free(void *p)
{
    if (p)
        explicit_bzero(p, malloc_usable_size(p));
    free(p);
}

/*
 * A copy safe for the terminal: control characters (C0, DEL and, as
 * UTF-8, C1) could move the cursor or rewrite the window title, so they
 * become '?' (tabs and line ends a space).
 */
static char *ctl_clean(const char *s)
{
    char *out = ctl_oom(strdup(s)), *p;

    for (p = out; *p; p++) {
        unsigned char c = (unsigned char)*p, next = (unsigned char)p[1];

        if (c == '\t' || c == '\n' || c == '\r')
            *p = ' ';
        else if (c < 0x20 || c == 0x7f)
            *p = '?';
        else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {
            p[0] = p[1] = '?';
            p++;
        }
    }
    return out;
}

static void ctl_say(FILE *f, const char *prefix, const char *text)
{
    char *clean = ctl_clean(text);

    fprintf(f, "%s%s\n", prefix, clean);
    free(clean);
}

/* Columns a UTF-8 string takes, counting each character as one. */
static size_t ctl_width(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static const char *ctl_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

static json_int_t ctl_int(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* A whole decimal number, nothing else. 0 or -EINVAL. */
static int ctl_number(const char *s, long long *out)
{
    char *end;

    if (!s[0] || s[0] == '+' || s[0] == ' ')
        return -EINVAL;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return *end || errno ? -EINVAL : 0;
}

/* Unix time in seconds as local time; 0 means never. */
static void ctl_time_text(long long t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t <= 0 || !localtime_r(&tt, &tm) ||
        !strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, size, "-");
}

/* A JSON value as text (malloc'd): strings as they are, lists of strings
 * joined with commas, anything else as compact JSON. */
static char *ctl_value_text(const json_t *v)
{
    char *text = NULL;
    size_t len = 0, i;
    FILE *f;
    json_t *e;

    if (!v || json_is_null(v))
        return ctl_oom(strdup(""));
    if (json_is_string(v))
        return ctl_oom(strdup(json_string_value(v)));
    if (!json_is_array(v))
        return ctl_oom(json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY));
    f = ctl_oom(open_memstream(&text, &len));
    json_array_foreach(v, i, e)
    {
        char *one = ctl_value_text(e);

        fprintf(f, "%s%s", i ? "," : "", one);
        free(one);
    }
    fclose(f);
    return ctl_oom(text);
}

/* --- tables --------------------------------------------------------------- */

/* Rows of cells, printed with each column as wide as its widest cell. */
struct ctl_table {
    size_t ncol, nrow, cap;
    char **cell; /* row-major, cleaned, owned */
};

static void ctl_table_add(struct ctl_table *t, const char *const *row)
{
    size_t i;

    if (t->nrow == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->cell =
            ctl_oom(reallocarray(t->cell, t->cap * t->ncol, sizeof(*t->cell)));
    }
    for (i = 0; i < t->ncol; i++)
        t->cell[t->nrow * t->ncol + i] = ctl_clean(row[i] ? row[i] : "");
    t->nrow++;
}

/* Two spaces between columns; nothing after a row's last filled cell. */
static void ctl_table_print(const struct ctl_table *t)
{
    size_t w[CTL_COLS_MAX] = {0}, r, i, last;

    for (r = 0; r < t->nrow; r++)
        for (i = 0; i < t->ncol; i++) {
            size_t n = ctl_width(t->cell[r * t->ncol + i]);

            if (n > w[i])
                w[i] = n;
        }
    for (r = 0; r < t->nrow; r++) {
        char **row = t->cell + r * t->ncol;

        for (last = t->ncol; last > 1 && !row[last - 1][0]; last--)
            ;
        for (i = 0; i < last; i++)
            printf("%s%*s", row[i],
                   i + 1 < last ? (int)(w[i] - ctl_width(row[i]) + 2) : 0, "");
        putchar('\n');
    }
}

static void ctl_table_free(struct ctl_table *t)
{
    size_t i;

    for (i = 0; i < t->nrow * t->ncol; i++)
        free(t->cell[i]);
    free(t->cell);
}

static void ctl_table_done(struct ctl_table *t)
{
    ctl_table_print(t);
    ctl_table_free(t);
}

/* An object as "key  value" lines, keys aligned. */
static void ctl_print_object(const json_t *o)
{
    struct ctl_table t = {.ncol = 2};
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)o, key, v)
    {
        char *text = ctl_value_text(v);
        const char *row[] = {key, text};

        ctl_table_add(&t, row);
        free(text);
    }
    ctl_table_done(&t);
}

/* --json: the server's reply, indented. Consumes j. */
static int ctl_print_json(json_t *j)
{
    int r = json_dumpf(j, stdout, JSON_INDENT(2));

    putchar('\n');
    json_decref(j);
    return r ? CTL_FAIL : CTL_OK;
}

/* --- arguments ------------------------------------------------------------ */

static int ctl_usage(void)
{
    fputs(ctl_usage_text, stderr);
    return CTL_USAGE;
}

static int ctl_usage_error(const char *what)
{
    ctl_err("%s", what);
    return ctl_usage();
}

/* Whether argv[*i] is option name ("--name V" or "--name=V"): 1 with
 * *value set (and *i past it), 0 if not, -1 if the value is missing. */
static int ctl_match(int argc, char **argv, int *i, const char *name,
                     const char **value)
{
    size_t n = strlen(name);

    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n])
        return 0;
    if (*i + 1 >= argc) {
        ctl_err("%s needs a value", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

struct ctl_opt {
    const char *name;   /* "--pool" */
    const char **value; /* where its value goes */
};

/* Moves the positional arguments to the front of argv and stores the
 * options' values: how many positionals, or -1 after saying what is
 * wrong. */
static int ctl_parse(int argc, char **argv, const struct ctl_opt *opts)
{
    int i, k, m, n = 0;

    for (i = 0; i < argc; i++) {
        for (k = 0, m = 0; opts && opts[k].name && !m; k++)
            m = ctl_match(argc, argv, &i, opts[k].name, opts[k].value);
        if (m < 0)
            return -1;
        if (m)
            continue;
        if (argv[i][0] == '-' && argv[i][1]) {
            ctl_err("unknown option %s", argv[i]);
            return -1;
        }
        argv[n++] = argv[i];
    }
    return n;
}

/* Takes the global options out of argv wherever they are (so that
 * `deskpoolctl pools --json` works too): the new argc, -1 on error, -2
 * for --help. */
static int ctl_global_opts(struct ctl *ctl, int argc, char **argv)
{
    int i, n = 0;

    for (i = 0; i < argc; i++) {
        const char *v = NULL;
        int m;

        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return -2;
        if (!strcmp(argv[i], "--json")) {
            ctl->json = 1;
        } else if (!strcmp(argv[i], "--insecure")) {
            ctl->insecure = ctl->ca_given = 1;
            ctl->cacert[0] = '\0';
        } else if ((m = ctl_match(argc, argv, &i, "--url", &v)) != 0) {
            if (m < 0)
                return -1;
            if (snprintf(ctl->url, sizeof(ctl->url), "%s", v) >=
                (int)sizeof(ctl->url)) {
                ctl_err("--url: too long");
                return -1;
            }
            ctl->url_given = 1;
        } else if ((m = ctl_match(argc, argv, &i, "--cacert", &v)) != 0) {
            if (m < 0)
                return -1;
            if (!v[0] || snprintf(ctl->cacert, sizeof(ctl->cacert), "%s", v) >=
                             (int)sizeof(ctl->cacert)) {
                ctl_err("--cacert: needs a file name");
                return -1;
            }
            ctl->ca_given = 1;
            ctl->insecure = 0;
        } else {
            argv[n++] = argv[i];
        }
    }
    /* "https://host:8443/" and "https://host:8443" are one server. */
    while (ctl->url[0] && ctl->url[strlen(ctl->url) - 1] == '/')
        ctl->url[strlen(ctl->url) - 1] = '\0';
    return n;
}

/* Appends s to buf percent-encoded (RFC 3986 unreserved kept), so that a
 * name cannot reach another route or smuggle in a query. */
static int ctl_escape(char *buf, size_t size, const char *s)
{
    size_t n = strlen(buf);

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (n + 4 > size)
            return -ENAMETOOLONG;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~')
            buf[n++] = (char)c;
        else
            n += (size_t)snprintf(buf + n, size - n, "%%%02X", c);
    }
    buf[n] = '\0';
    return 0;
}

/* prefix + escaped name + suffix into buf; -1 after a usage message. */
static int ctl_path(char *buf, size_t size, const char *prefix,
                    const char *name, const char *suffix)
{
    if (!name[0] || strlen(name) > CTL_ARG_MAX) {
        ctl_err("names and ids are 1 to %d bytes", CTL_ARG_MAX);
        return -1;
    }
    snprintf(buf, size, "%s", prefix);
    if (ctl_escape(buf, size, name) || strlen(buf) + strlen(suffix) >= size)
        return -1;
    strcat(buf, suffix);
    return 0;
}

/* Adds "?key=value" or "&key=value" (when value is set). */
static int ctl_query(char *buf, size_t size, const char *key, const char *value)
{
    size_t n = strlen(buf);

    if (!value)
        return 0;
    if (n + strlen(key) + 2 >= size)
        return -ENAMETOOLONG;
    snprintf(buf + n, size - n, "%c%s=", strchr(buf, '?') ? '&' : '?', key);
    return ctl_escape(buf, size, value);
}

/* --- the session file ----------------------------------------------------- */

static int ctl_session_path(struct ctl *ctl)
{
    const char *env = getenv("DESKPOOL_SESSION");
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    int n;

    if (env && env[0]) {
        n = snprintf(ctl->session, sizeof(ctl->session), "%s", env);
    } else if (xdg && xdg[0] == '/') { /* XDG says: ignore relative ones */
        n = snprintf(ctl->session, sizeof(ctl->session), "%s/deskpool/session",
                     xdg);
    } else {
        if (!home || !home[0]) {
            struct passwd *pw = getpwuid(getuid());

            home = pw ? pw->pw_dir : NULL;
        }
        if (!home) {
            ctl_err("no home folder to keep the session in: set "
                    "DESKPOOL_SESSION");
            return -1;
        }
        n = snprintf(ctl->session, sizeof(ctl->session),
                     "%s/.config/deskpool/session", home);
    }
    if (n >= (int)sizeof(ctl->session)) {
        ctl_err("the session file's path is too long");
        return -1;
    }
    return 0;
}

/*
 * Takes URL, token and CA from a saved session. A token only ever goes
 * back to the server that issued it: with another --url it is ignored.
 * --cacert or --insecure on the command line beat the saved CA.
 */
static void ctl_session_adopt(struct ctl *ctl, const json_t *s)
{
    const char *url = ctl_str(s, "url"), *token = ctl_str(s, "token");

    if (!url[0] || strlen(url) >= sizeof(ctl->url) ||
        (ctl->url_given && strcmp(url, ctl->url) != 0))
        return;
    snprintf(ctl->url, sizeof(ctl->url), "%s", url);
    if (strlen(token) < sizeof(ctl->token))
        snprintf(ctl->token, sizeof(ctl->token), "%s", token);
    if (!ctl->ca_given) {
        snprintf(ctl->cacert, sizeof(ctl->cacert), "%s", ctl_str(s, "cacert"));
        ctl->insecure = json_is_true(json_object_get(s, "insecure"));
    }
}

/* Reads the session file if there is one; a bad one is reported and
 * ignored (the commands then say "not logged in"). */
static void ctl_session_load(struct ctl *ctl)
{
    json_error_t e;
    struct stat st;
    json_t *s;
    int fd = open(ctl->session, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        if (errno != ENOENT)
            ctl_err("%s: %s", ctl->session, strerror(errno));
        return;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > CTL_SESSION_MAX) {
        ctl_err("%s: not a session file; run deskpoolctl login", ctl->session);
        close(fd);
        return;
    }
    if (st.st_mode & 077)
        ctl_err("warning: others may read %s (chmod 600 it)", ctl->session);
    s = json_loadfd(fd, 0, &e);
    close(fd);
    if (!json_is_object(s))
        ctl_err("%s: not a session file (%s); run deskpoolctl login",
                ctl->session, s ? "not an object" : e.text);
    else
        ctl_session_adopt(ctl, s);
    json_decref(s);
}

/* Makes the folders above path, private (mode 0700). */
static int ctl_mkdirs(const char *path)
{
    char dir[PATH_MAX], *p;

    snprintf(dir, sizeof(dir), "%s", path);
    for (p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

/* Writes the whole of s to a new file beside the session and renames it
 * over: a reader never sees half a file, and mkstemp makes it 0600
 * whatever the old file's mode was. */
static int ctl_session_write(const struct ctl *ctl, const json_t *s)
{
    char tmp[PATH_MAX + 16];
    int fd, r;

    r = ctl_mkdirs(ctl->session);
    if (r)
        return r;
    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", ctl->session);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    r = json_dumpfd(s, fd, JSON_INDENT(2)) || write(fd, "\n", 1) != 1 ||
                fsync(fd) != 0
            ? -EIO
            : 0;
    if (close(fd) != 0 && !r)
        r = -EIO;
    if (!r && rename(tmp, ctl->session) != 0)
        r = -errno;
    if (r)
        unlink(tmp);
    return r;
}

static int ctl_session_save(const struct ctl *ctl, const char *user)
{
    char ca[PATH_MAX] = "";
    json_t *s;
    int r;

    /* Later runs may start in another folder. */
    if (ctl->cacert[0] && !realpath(ctl->cacert, ca))
        snprintf(ca, sizeof(ca), "%s", ctl->cacert);
    s = ctl_oom(json_pack("{ss ss ss sb ss}", "url", ctl->url, "token",
                          ctl->token, "cacert", ca, "insecure", ctl->insecure,
                          "user", user));
    r = ctl_session_write(ctl, s);
    json_decref(s);
    if (r)
        ctl_err("cannot save the session in %s: %s", ctl->session,
                strerror(-r));
    return r;
}

/* --- requests ------------------------------------------------------------- */

static int ctl_open(struct ctl *ctl)
{
    char err[512];

    if (ctl->c)
        return 0;
    if (bk_client_open(&ctl->c, ctl->url, ctl->cacert[0] ? ctl->cacert : NULL,
                       ctl->insecure, CTL_TIMEOUT_MS, err, sizeof(err))) {
        ctl_err("%s", err);
        return -1;
    }
    return 0;
}

/* One request with the session's token (if any); body may be NULL.
 * 0 with *resp for any HTTP status, -1 after saying why not. */
static int ctl_send(struct ctl *ctl, const char *method, const char *path,
                    const json_t *body, struct bk_response *resp)
{
    char hdr[256] = "", err[512];
    char *text = NULL;
    int r;

    if (ctl_open(ctl))
        return -1;
    if (ctl->token[0])
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", ctl->token);
    if (body)
        text = ctl_oom(json_dumps(body, JSON_COMPACT));
    r = bk_client_request(ctl->c, method, path, hdr, text,
                          text ? strlen(text) : 0, resp, err, sizeof(err));
    if (text) /* may hold a password */
        explicit_bzero(text, strlen(text));
    free(text);
    explicit_bzero(hdr, sizeof(hdr));
    if (r) {
        /* A self-signed broker is the usual first hurdle. */
        ctl_err("%s%s", err,
                strstr(err, "TLS") && !ctl->cacert[0]
                    ? " (give the broker's certificate with --cacert FILE)"
                    : "");
        return -1;
    }
    return 0;
}

/* The reply's "message", or its HTTP status. */
static void ctl_say_message(const struct bk_response *resp)
{
    json_t *j = json_loadb(resp->body, resp->len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "message"));

    if (msg && msg[0])
        ctl_say(stderr, "deskpoolctl: ", msg);
    else
        ctl_err("the server answered HTTP %d", resp->status);
    json_decref(j);
}

static void ctl_say_refusal(const struct bk_response *resp)
{
    if (resp->status == 401)
        ctl_err("not logged in (run deskpoolctl login)");
    else
        ctl_say_message(resp);
}

static int ctl_need_login(const struct ctl *ctl)
{
    if (ctl->token[0])
        return 0;
    ctl_err("not logged in (run deskpoolctl login)");
    return -1;
}

/* A request that needs the session: 0 with the JSON reply for a 2xx
 * status, -1 after saying why not. */
static int ctl_call(struct ctl *ctl, const char *method, const char *path,
                    const json_t *body, json_t **reply)
{
    struct bk_response resp;
    int ok;

    *reply = NULL;
    if (ctl_need_login(ctl) || ctl_send(ctl, method, path, body, &resp))
        return -1;
    ok = resp.status >= 200 && resp.status < 300;
    if (ok) {
        *reply = json_loadb(resp.body, resp.len, 0, NULL);
        if (!*reply)
            ctl_err("%s %s: the reply is not JSON", method, path);
    } else {
        ctl_say_refusal(&resp);
    }
    bk_response_free(&resp);
    return *reply ? 0 : -1;
}

/* A request whose reply is either printed (--json) or summed up in one
 * line ("what NAME"). */
static int ctl_act(struct ctl *ctl, const char *method, const char *path,
                   const json_t *body, const char *what, const char *name)
{
    json_t *reply;

    if (ctl_call(ctl, method, path, body, &reply))
        return CTL_FAIL;
    if (ctl->json)
        return ctl_print_json(reply);
    ctl_say(stdout, what, name);
    json_decref(reply);
    return CTL_OK;
}

/* --- the terminal (login) ------------------------------------------------- */

/* Where answers come from and prompts go. */
struct ctl_tty {
    int in, out;
    int tty;   /* in is a terminal: echo can be switched off */
    int owned; /* in is our /dev/tty */
};

/* The controlling terminal when stdin is one (so that a redirected stdout
 * does not swallow the prompts); else one line per prompt from stdin. */
static void ctl_tty_open(struct ctl_tty *io)
{
    int fd = isatty(0) ? open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY) : -1;

    io->owned = fd >= 0;
    io->in = fd >= 0 ? fd : 0;
    io->out = fd >= 0 ? fd : 2;
    io->tty = isatty(io->in);
}

static void ctl_tty_close(struct ctl_tty *io)
{
    if (io->owned)
        close(io->in);
}

/* One line from fd, read byte by byte so that nothing after it is used up
 * (the next answer may follow in a pipe): its length, -ENODATA at the end
 * of input, -EMSGSIZE when too long, or another negative errno. */
static ssize_t ctl_read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    char c;

    for (;;) {
        ssize_t r = read(fd, &c, 1);

        if (r < 0)
            return -errno;
        if (r == 0 && n == 0)
            return -ENODATA;
        if (r == 0 || c == '\n')
            break;
        if (n + 1 >= size)
            return -EMSGSIZE;
        buf[n++] = c;
    }
    if (n && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return (ssize_t)n;
}

/* The signal that interrupted a read with echo off (ctl_read_secret);
 * a signal handler can only reach a static. */
static volatile sig_atomic_t ctl_signal;

static void ctl_on_signal(int sig)
{
    ctl_signal = sig;
}

/*
 * A line with echo off. ^C would otherwise leave the terminal silent:
 * signals interrupt the read instead, the terminal is put back, and then
 * the signal is raised again under its old disposition.
 */
static ssize_t ctl_read_secret(const struct ctl_tty *io, char *buf, size_t size)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction sa = {.sa_handler = ctl_on_signal}, old[4];
    struct termios saved, quiet;
    ssize_t n;
    size_t i;

    if (!io->tty || tcgetattr(io->in, &saved) != 0)
        return ctl_read_line(io->in, buf, size);
    sigemptyset(&sa.sa_mask); /* and no SA_RESTART: read() gets EINTR */
    ctl_signal = 0;
    for (i = 0; i < 4; i++)
        sigaction(sigs[i], &sa, &old[i]);
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL; /* Enter still moves to the next line */
    tcsetattr(io->in, TCSAFLUSH, &quiet);
    n = ctl_signal ? -EINTR : ctl_read_line(io->in, buf, size);
    tcsetattr(io->in, TCSAFLUSH, &saved);
    for (i = 0; i < 4; i++)
        sigaction(sigs[i], &old[i], NULL);
    if (ctl_signal)
        raise(ctl_signal);
    return n;
}

static void ctl_prompt(const struct ctl_tty *io, const char *text)
{
    char *clean = ctl_clean(text);
    size_t n = strlen(clean);

    dprintf(io->out, "%s%s", clean, n && clean[n - 1] == ' ' ? "" : " ");
    free(clean);
}

/* Asks one question: appends the answer to answers, or says why not. */
static int ctl_ask(const struct ctl_tty *io, const char *prompt, int echo,
                   json_t *answers)
{
    char buf[CTL_ANSWER_MAX + 2];
    ssize_t n;
    json_t *a = NULL;

    ctl_prompt(io, prompt);
    n = echo ? ctl_read_line(io->in, buf, sizeof(buf))
             : ctl_read_secret(io, buf, sizeof(buf));
    if (!io->tty) /* nothing echoed the answer's line end */
        dprintf(io->out, "\n");
    if (n >= 0 && !(a = json_stringn(buf, (size_t)n)))
        ctl_err("the answer is not valid UTF-8");
    explicit_bzero(buf, sizeof(buf));
    if (n == -ENODATA)
        ctl_err("no answer (end of input)");
    else if (n == -EMSGSIZE)
        ctl_err("the answer is too long (at most %d bytes)", CTL_ANSWER_MAX);
    else if (n < 0)
        ctl_err("cannot read the answer: %s", strerror((int)-n));
    if (!a)
        return -1;
    json_array_append_new(answers, a);
    return 0;
}

/* PAM's info and error texts. */
static void ctl_show_message(const json_t *m)
{
    const char *style = ctl_str(m, "style"), *text = ctl_str(m, "text");

    if (!strcmp(style, "error"))
        ctl_say(stderr, "deskpoolctl: ", text);
    else if (!strcmp(style, "info"))
        ctl_say(stdout, "", text);
}

static void ctl_show_messages(const json_t *list)
{
    json_t *m;
    size_t i;

    json_array_foreach(list, i, m)
    {
        ctl_show_message(m);
    }
}

/* One round of the conversation: shows the messages and answers the
 * password (no echo) and text prompts. NULL after saying why not. */
static json_t *ctl_converse(const struct ctl_tty *io, const json_t *prompts)
{
    json_t *answers = ctl_oom(json_array()), *p;
    size_t i;

    json_array_foreach(prompts, i, p)
    {
        const char *style = ctl_str(p, "style");
        int echo = !strcmp(style, "text");

        if (!echo && strcmp(style, "password") != 0) {
            ctl_show_message(p);
        } else if (ctl_ask(io, ctl_str(p, "text"), echo, answers)) {
            json_decref(answers);
            return NULL;
        }
    }
    return answers;
}

/* The next login request after a "prompt" reply, or NULL. */
static json_t *ctl_login_next(const struct ctl_tty *io, const json_t *reply)
{
    const char *conv = ctl_str(reply, "conversation");
    json_t *answers;

    if (!conv[0] || !json_is_array(json_object_get(reply, "prompts"))) {
        ctl_err("the server's login reply makes no sense");
        return NULL;
    }
    answers = ctl_converse(io, json_object_get(reply, "prompts"));
    if (!answers)
        return NULL;
    return ctl_oom(json_pack("{ss so sb}", "conversation", conv, "answers",
                             answers, "bearer", 1));
}

/* Walks the PAM conversation from req (consumed): the final "ok" reply,
 * or NULL after saying why not. */
static json_t *ctl_login_walk(struct ctl *ctl, const struct ctl_tty *io,
                              json_t *req)
{
    int round;

    for (round = 0; round < CTL_LOGIN_ROUNDS && req; round++) {
        struct bk_response resp;
        json_t *reply;
        const char *state;
        int r = ctl_send(ctl, "POST", "/api/v1/login", req, &resp);

        json_decref(req);
        req = NULL;
        if (r)
            return NULL;
        reply = json_loadb(resp.body, resp.len, 0, NULL);
        state = ctl_str(reply, "state");
        if (resp.status == 200 && !strcmp(state, "ok")) {
            bk_response_free(&resp);
            return reply;
        }
        if (resp.status == 200 && !strcmp(state, "prompt")) {
            req = ctl_login_next(io, reply);
        } else {
            ctl_show_messages(json_object_get(reply, "messages"));
            ctl_say_message(&resp);
        }
        bk_response_free(&resp);
        json_decref(reply);
    }
    if (req) {
        ctl_err("the login asked too many questions");
        json_decref(req);
    }
    return NULL;
}

/* The user name: the argument, else asked for. */
static int ctl_login_user(const struct ctl_tty *io, int argc, char **argv,
                          char *user, size_t size)
{
    json_t *a;

    if (argc == 1) {
        if (!argv[0][0] || strlen(argv[0]) >= size) {
            ctl_err("user name: 1 to %d bytes", CTL_USER_MAX);
            return -1;
        }
        snprintf(user, size, "%s", argv[0]);
        return 0;
    }
    a = ctl_oom(json_array());
    if (ctl_ask(io, "User:", 1, a) ||
        !json_string_length(json_array_get(a, 0)) ||
        json_string_length(json_array_get(a, 0)) >= size) {
        json_decref(a);
        ctl_err("no user name");
        return -1;
    }
    snprintf(user, size, "%s", json_string_value(json_array_get(a, 0)));
    json_decref(a);
    return 0;
}

/* Keeps the new session and says who logged in. */
static int ctl_login_done(struct ctl *ctl, json_t *reply)
{
    const char *user = ctl_str(reply, "user");
    const char *token = ctl_str(reply, "token");
    int admin = json_is_true(json_object_get(reply, "admin"));
    char *clean;

    if (!token[0] || strlen(token) >= sizeof(ctl->token)) {
        ctl_err("the server sent no usable token");
        return CTL_FAIL;
    }
    snprintf(ctl->token, sizeof(ctl->token), "%s", token);
    ctl_show_messages(json_object_get(reply, "messages"));
    if (ctl_session_save(ctl, user))
        return CTL_FAIL;
    if (ctl->json) { /* the token stays in the session file */
        json_object_del(reply, "token");
        json_object_del(reply, "csrf");
        return ctl_print_json(json_incref(reply));
    }
    clean = ctl_clean(user);
    printf("logged in as %s%s\n", clean, admin ? " (admin)" : "");
    free(clean);
    return CTL_OK;
}

static int ctl_cmd_login(struct ctl *ctl, const char *name, int argc,
                         char **argv)
{
    struct ctl_tty io;
    char user[CTL_USER_MAX + 1];
    json_t *reply = NULL;
    int rc = CTL_FAIL;

    (void)name;
    if (ctl_parse(argc, argv, NULL) != argc || argc > 1)
        return ctl_usage();
    ctl->token[0] = '\0'; /* a new session, whatever the file held */
    ctl_tty_open(&io);
    if (ctl_login_user(&io, argc, argv, user, sizeof(user)) == 0)
        reply = ctl_login_walk(
            ctl, &io,
            ctl_oom(json_pack("{ss sb}", "username", user, "bearer", 1)));
    ctl_tty_close(&io);
    if (reply)
        rc = ctl_login_done(ctl, reply);
    json_decref(reply);
    return rc;
}

/* --- session commands ----------------------------------------------------- */

static int ctl_cmd_logout(struct ctl *ctl, const char *name, int argc,
                          char **argv)
{
    struct bk_response resp;

    (void)name;
    (void)argv;
    if (argc)
        return ctl_usage();
    if (ctl_need_login(ctl))
        return CTL_FAIL;
    if (ctl_send(ctl, "POST", "/api/v1/logout", NULL, &resp)) {
        ctl_err("the session is kept; remove %s to forget it anyway",
                ctl->session);
        return CTL_FAIL;
    }
    /* 401: the server had already ended it; forget it here too. */
    if (resp.status != 200 && resp.status != 401) {
        ctl_say_message(&resp);
        bk_response_free(&resp);
        return CTL_FAIL;
    }
    bk_response_free(&resp);
    if (unlink(ctl->session) != 0 && errno != ENOENT) {
        ctl_err("%s: %s", ctl->session, strerror(errno));
        return CTL_FAIL;
    }
    if (ctl->json)
        return ctl_print_json(
            ctl_oom(json_pack("{ss}", "state", "logged-out")));
    puts("logged out");
    return CTL_OK;
}

static int ctl_cmd_whoami(struct ctl *ctl, const char *name, int argc,
                          char **argv)
{
    struct ctl_table t = {.ncol = 2};
    json_t *me;
    char *groups, user[CTL_USER_MAX + 16];

    (void)name;
    (void)argv;
    if (argc)
        return ctl_usage();
    if (ctl_call(ctl, "GET", "/api/v1/me", NULL, &me))
        return CTL_FAIL;
    if (ctl->json)
        return ctl_print_json(me);
    snprintf(user, sizeof(user), "%s%s", ctl_str(me, "user"),
             json_is_true(json_object_get(me, "admin")) ? " (admin)" : "");
    groups = ctl_value_text(json_object_get(me, "groups"));
    ctl_table_add(&t, (const char *[]){"user", user});
    ctl_table_add(&t, (const char *[]){"groups", groups});
    ctl_table_add(&t, (const char *[]){"server", ctl->url});
    ctl_table_done(&t);
    free(groups);
    json_decref(me);
    return CTL_OK;
}

/* --- pools ---------------------------------------------------------------- */

/* A KEY=VALUE value: lists for users and groups, numbers and booleans as
 * such, the rest as text (the server checks types and ranges). */
static json_t *ctl_setting(const char *key, const char *v)
{
    long long n;

    if (!strcmp(key, "users") || !strcmp(key, "groups")) {
        json_t *a = ctl_oom(json_array());
        const char *p = v;

        while (*p) {
            size_t len = strcspn(p, ",");

            if (len)
                json_array_append_new(a, json_stringn(p, len));
            p += len + (p[len] == ',');
        }
        return a;
    }
    if (!strcmp(v, "true") || !strcmp(v, "false"))
        return json_boolean(v[0] == 't');
    if (ctl_number(v, &n) == 0)
        return json_integer(n);
    return json_string(v);
}

/* KEY=VALUE arguments into o; -1 after a usage message. */
static int ctl_settings(json_t *o, int argc, char **argv)
{
    int i;

    for (i = 0; i < argc; i++) {
        char key[64];
        const char *eq = strchr(argv[i], '=');
        json_t *v;

        if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof(key)) {
            ctl_err("%s: expected KEY=VALUE", argv[i]);
            return -1;
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i]), argv[i]);
        if (!strcmp(key, "name")) {
            ctl_err("name: give it as the NAME argument");
            return -1;
        }
        if (json_object_get(o, key)) {
            ctl_err("%s: given twice", key);
            return -1;
        }
        v = ctl_setting(key, eq + 1);
        if (!v) {
            ctl_err("%s: the value is not valid UTF-8", key);
            return -1;
        }
        json_object_set_new(o, key, v);
    }
    return 0;
}

static const char *ctl_pool_state(const json_t *p)
{
    if (json_is_true(json_object_get(p, "deleting")))
        return "deleting";
    if (json_is_true(json_object_get(p, "maintenance")))
        return "maintenance";
    if (json_is_true(json_object_get(p, "restrained")))
        return "restrained";
    return "ok";
}

/* How many desktops a pool has, and how many of them are ready. */
static void ctl_pool_counts(const json_t *desktops, const char *pool, int *all,
                            int *ready)
{
    json_t *d;
    size_t i;

    *all = *ready = 0;
    json_array_foreach(desktops, i, d)
    {
        if (strcmp(ctl_str(d, "pool"), pool) != 0)
            continue;
        (*all)++;
        *ready += !strcmp(ctl_str(d, "state"), "READY");
    }
}

static void ctl_pools_table(const json_t *pools, const json_t *desktops)
{
    struct ctl_table t = {.ncol = 9};
    json_t *p;
    size_t i;

    ctl_table_add(&t, (const char *[]){"NAME", "TYPE", "MIN", "SPARE", "MAX",
                                       "DESKTOPS", "READY", "STATE",
                                       "DESCRIPTION"});
    json_array_foreach(pools, i, p)
    {
        char num[5][24];
        int all, ready;

        ctl_pool_counts(desktops, ctl_str(p, "name"), &all, &ready);
        snprintf(num[0], sizeof(num[0]), "%lld", (long long)ctl_int(p, "min"));
        snprintf(num[1], sizeof(num[1]), "%lld",
                 (long long)ctl_int(p, "spare"));
        snprintf(num[2], sizeof(num[2]), "%lld", (long long)ctl_int(p, "max"));
        snprintf(num[3], sizeof(num[3]), "%d", all);
        snprintf(num[4], sizeof(num[4]), "%d", ready);
        ctl_table_add(
            &t, (const char *[]){ctl_str(p, "name"), ctl_str(p, "type"), num[0],
                                 num[1], num[2], num[3], num[4],
                                 ctl_pool_state(p), ctl_str(p, "description")});
    }
    ctl_table_done(&t);
}

static int ctl_pools_list(struct ctl *ctl, const char *name, int argc,
                          char **argv)
{
    json_t *pools, *desktops;

    (void)name;
    (void)argv;
    if (ctl_parse(argc, argv, NULL) != 0)
        return ctl_usage();
    if (ctl_call(ctl, "GET", "/api/v1/admin/pools", NULL, &pools))
        return CTL_FAIL;
    if (ctl->json)
        return ctl_print_json(pools);
    if (ctl_call(ctl, "GET", "/api/v1/admin/desktops", NULL, &desktops)) {
        json_decref(pools);
        return CTL_FAIL;
    }
    ctl_pools_table(json_object_get(pools, "pools"),
                    json_object_get(desktops, "desktops"));
    json_decref(pools);
    json_decref(desktops);
    return CTL_OK;
}

/* "show NAME": GET prefix/NAME as key/value lines. */
static int ctl_show(struct ctl *ctl, const char *prefix, int argc, char **argv)
{
    char path[1024];
    json_t *o;

    if (ctl_parse(argc, argv, NULL) != 1 ||
        ctl_path(path, sizeof(path), prefix, argv[0], ""))
        return ctl_usage();
    if (ctl_call(ctl, "GET", path, NULL, &o))
        return CTL_FAIL;
    if (ctl->json)
        return ctl_print_json(o);
    ctl_print_object(o);
    json_decref(o);
    return CTL_OK;
}

static int ctl_pools_show(struct ctl *ctl, const char *name, int argc,
                          char **argv)
{
    (void)name;
    return ctl_show(ctl, "/api/v1/admin/pools/", argc, argv);
}

/* create NAME KEY=VALUE... (POST) and set NAME KEY=VALUE... (PATCH). */
static int ctl_pools_put(struct ctl *ctl, const char *name, int argc,
                         char **argv)
{
    int create = !strcmp(name, "create"), n = ctl_parse(argc, argv, NULL);
    json_t *body = ctl_oom(json_object());
    char path[1024];
    int rc = CTL_USAGE;

    if (n < (create ? 1 : 2) ||
        ctl_path(path, sizeof(path), "/api/v1/admin/pools/", argv[0], "") ||
        ctl_settings(body, n - 1, argv + 1))
        goto out;
    if (create) {
        json_object_set_new(body, "name", json_string(argv[0]));
        rc = ctl_act(ctl, "POST", "/api/v1/admin/pools", body, "created pool ",
                     argv[0]);
    } else {
        rc = ctl_act(ctl, "PATCH", path, body, "updated pool ", argv[0]);
    }
out:
    json_decref(body);
    return rc == CTL_USAGE ? ctl_usage() : rc;
}

/* delete NAME and resume NAME. */
static int ctl_pools_do(struct ctl *ctl, const char *name, int argc,
                        char **argv)
{
    int del = !strcmp(name, "delete");
    char path[1024];

    if (ctl_parse(argc, argv, NULL) != 1 ||
        ctl_path(path, sizeof(path), "/api/v1/admin/pools/", argv[0],
                 del ? "" : "/resume"))
        return ctl_usage();
    return ctl_act(ctl, del ? "DELETE" : "POST", path, NULL,
                   del ? "deleting pool " : "resumed pool ", argv[0]);
}

/* --- desktops, sessions, events ------------------------------------------ */

/* How a desktop's VM was made: "boot", "instant", or "instant, twin" for
 * a clone its agent did not personalise (same hostname and machine-id as
 * its template). */
static const char *ctl_desktop_made(const json_t *d)
{
    if (strcmp(ctl_str(d, "provisioning"), "instant"))
        return ctl_str(d, "provisioning");
    return json_is_true(json_object_get(d, "personalised")) ? "instant"
                                                            : "instant, twin";
}

static void ctl_desktops_table(const json_t *desktops)
{
    struct ctl_table t = {.ncol = 8};
    json_t *d;
    size_t i;

    ctl_table_add(&t, (const char *[]){"ID", "POOL", "STATE", "USER",
                                       "PROTOCOL", "MADE", "SINCE", "ERROR"});
    json_array_foreach(desktops, i, d)
    {
        char since[32];

        ctl_time_text(ctl_int(d, "state_since"), since, sizeof(since));
        ctl_table_add(
            &t, (const char *[]){ctl_str(d, "id"), ctl_str(d, "pool"),
                                 ctl_str(d, "state"), ctl_str(d, "user"),
                                 ctl_str(d, "protocol"), ctl_desktop_made(d),
                                 since, ctl_str(d, "error")});
    }
    ctl_table_done(&t);
}

static int ctl_desktops_list(struct ctl *ctl, const char *name, int argc,
                             char **argv)
{
    const char *pool = NULL, *user = NULL;
    const struct ctl_opt opts[] = {
        {"--pool", &pool}, {"--user", &user}, {NULL, NULL}};
    char path[1024] = "/api/v1/admin/desktops";
    json_t *reply;

    (void)name;
    if (ctl_parse(argc, argv, opts) != 0 ||
        ctl_query(path, sizeof(path), "pool", pool) ||
        ctl_query(path, sizeof(path), "user", user))
        return ctl_usage();
    if (ctl_call(ctl, "GET", path, NULL, &reply))
        return CTL_FAIL;
    if (ctl->json)
        return ctl_print_json(reply);
    ctl_desktops_table(json_object_get(reply, "desktops"));
    json_decref(reply);
    return CTL_OK;
}

static int ctl_desktops_show(struct ctl *ctl, const char *name, int argc,
                             char **argv)
{
    (void)name;
    return ctl_show(ctl, "/api/v1/admin/desktops/", argc, argv);
}

/* power-on, power-off, reset, refresh, delete, logoff: the server waits
 * for the pool manager, so the reply means done. */
static int ctl_desktops_op(struct ctl *ctl, const char *name, int argc,
                           char **argv)
{
    char path[1024], suffix[32], what[64];

    snprintf(suffix, sizeof(suffix), "/%s", name);
    if (ctl_parse(argc, argv, NULL) != 1 ||
        ctl_path(path, sizeof(path), "/api/v1/admin/desktops/", argv[0],
                 suffix))
        return ctl_usage();
    snprintf(what, sizeof(what), "%s done: ", name);
    return ctl_act(ctl, "POST", path, NULL, what, argv[0]);
}

/* Writes the whole buffer to path ("-": stdout). */
static int ctl_write_file(const char *path, const char *data, size_t len)
{
    int fd = strcmp(path, "-")
                 ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
                 : 1;
    int r = 0;

    if (fd < 0)
        return -errno;
    while (len && !r) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno != EINTR)
            r = -errno;
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
    }
    if (fd != 1 && close(fd) != 0 && !r)
        r = -errno;
    return r;
}

static int ctl_desktops_screenshot(struct ctl *ctl, const char *name, int argc,
                                   char **argv)
{
    struct bk_response resp;
    char path[1024], type[64] = "";
    int r;

    (void)name;
    if (ctl_parse(argc, argv, NULL) != 2 ||
        ctl_path(path, sizeof(path), "/api/v1/admin/desktops/", argv[0],
                 "/screenshot"))
        return ctl_usage();
    if (ctl_need_login(ctl) || ctl_send(ctl, "GET", path, NULL, &resp))
        return CTL_FAIL;
    bk_response_header(&resp, "content-type", type, sizeof(type));
    if (resp.status != 200 || strncmp(type, "image/png", 9) != 0) {
        ctl_say_refusal(&resp);
        bk_response_free(&resp);
        return CTL_FAIL;
    }
    r = ctl_write_file(argv[1], resp.body, resp.len);
    if (r)
        ctl_err("%s: %s", argv[1], strerror(-r));
    else if (strcmp(argv[1], "-") != 0)
        printf("wrote %s (%zu bytes)\n", argv[1], resp.len);
    bk_response_free(&resp);
    return r ? CTL_FAIL : CTL_OK;
}

static int ctl_cmd_sessions(struct ctl *ctl, const char *name, int argc,
                            char **argv)
{
    struct ctl_table t = {.ncol = 6};
    json_t *reply, *s;
    size_t i;

    (void)name;
    if (ctl_parse(argc, argv, NULL) != 0)
        return ctl_usage();
    if (ctl_call(ctl, "GET", "/api/v1/admin/sessions", NULL, &reply))
        return CTL_FAIL;
    if (ctl->json)
        return ctl_print_json(reply);
    ctl_table_add(&t, (const char *[]){"DESKTOP", "POOL", "USER", "STATE",
                                       "PROTOCOL", "SINCE"});
    json_array_foreach(json_object_get(reply, "sessions"), i, s)
    {
        char since[32];

        ctl_time_text(ctl_int(s, "since"), since, sizeof(since));
        ctl_table_add(
            &t, (const char *[]){ctl_str(s, "desktop"), ctl_str(s, "pool"),
                                 ctl_str(s, "user"), ctl_str(s, "state"),
                                 ctl_str(s, "protocol"), since});
    }
    ctl_table_done(&t);
    json_decref(reply);
    return CTL_OK;
}

/* An event's detail for a table: compact JSON, cut short. */
static char *ctl_event_detail(const json_t *e)
{
    const json_t *d = json_object_get(e, "detail");
    char *text;

    if (!d || (json_is_object(d) && !json_object_size(d)))
        return ctl_oom(strdup(""));
    text = ctl_oom(json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY));
    if (strlen(text) > CTL_DETAIL_MAX) {
        size_t cut = CTL_DETAIL_MAX - 3;

        while (cut && ((unsigned char)text[cut] & 0xc0) == 0x80)
            cut--; /* not inside a character */
        strcpy(text + cut, "...");
    }
    return text;
}

/* Oldest first, as a log reads (the server sends the newest first). */
static void ctl_events_table(const json_t *events)
{
    struct ctl_table t = {.ncol = 6};
    size_t i = json_array_size(events);

    ctl_table_add(&t, (const char *[]){"TIME", "KIND", "USER", "POOL",
                                       "DESKTOP", "DETAIL"});
    while (i--) {
        const json_t *e = json_array_get(events, i);
        long long ms = ctl_int(e, "time");
        char when[48];
        char *detail = ctl_event_detail(e);

        ctl_time_text(ms / 1000, when, sizeof(when));
        snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03lld",
                 ms % 1000);
        ctl_table_add(&t,
                      (const char *[]){when, ctl_str(e, "kind"),
                                       ctl_str(e, "user"), ctl_str(e, "pool"),
                                       ctl_str(e, "desktop"), detail});
        free(detail);
    }
    ctl_table_done(&t);
}

/* A number option: NULL (not given) or a whole number in [min, max]. */
static int ctl_number_opt(const char *name, const char *v, long long min,
                          long long max)
{
    long long n;

    if (!v || (ctl_number(v, &n) == 0 && n >= min && n <= max))
        return 0;
    ctl_err("%s: must be a whole number from %lld to %lld", name, min, max);
    return -1;
}

static int ctl_cmd_events(struct ctl *ctl, const char *name, int argc,
                          char **argv)
{
    const char *user = NULL, *pool = NULL, *since = NULL, *until = NULL;
    const char *limit = NULL;
    const struct ctl_opt opts[] = {{"--user", &user},   {"--pool", &pool},
                                   {"--since", &since}, {"--until", &until},
                                   {"--limit", &limit}, {NULL, NULL}};
    char path[1024] = "/api/v1/admin/events";
    json_t *reply;

    (void)name;
    if (ctl_parse(argc, argv, opts) != 0 ||
        ctl_number_opt("--since", since, 0, LLONG_MAX) ||
        ctl_number_opt("--until", until, 0, LLONG_MAX) ||
        ctl_number_opt("--limit", limit, 1, 10000) ||
        ctl_query(path, sizeof(path), "user", user) ||
        ctl_query(path, sizeof(path), "pool", pool) ||
        ctl_query(path, sizeof(path), "since", since) ||
        ctl_query(path, sizeof(path), "until", until) ||
        ctl_query(path, sizeof(path), "limit", limit))
        return ctl_usage();
    if (ctl_call(ctl, "GET", path, NULL, &reply))
        return CTL_FAIL;
    if (ctl->json)
        return ctl_print_json(reply);
    ctl_events_table(json_object_get(reply, "events"));
    json_decref(reply);
    return CTL_OK;
}

/* --- launch --------------------------------------------------------------- */

/* What to connect to, from a launch reply. */
static void ctl_launch_show(const struct ctl *ctl, const json_t *r)
{
    struct ctl_table t = {.ncol = 2};
    const json_t *d = json_object_get(r, "desktop");
    const char *proto = ctl_str(r, "protocol");
    char desk[256], where[768], expires[32];

    snprintf(desk, sizeof(desk), "%s (pool %s)", ctl_str(d, "id"),
             ctl_str(d, "pool"));
    ctl_time_text(ctl_int(r, "expires"), expires, sizeof(expires));
    ctl_table_add(&t, (const char *[]){"desktop", desk});
    if (!strcmp(proto, "browser")) {
        snprintf(where, sizeof(where), "%s%s", ctl->url, ctl_str(r, "url"));
        ctl_table_add(&t, (const char *[]){"open", where});
    } else if (!strcmp(proto, "rdp")) {
        snprintf(where, sizeof(where), "%s:%d", ctl_str(r, "host"),
                 CTL_RDP_PORT);
        ctl_table_add(&t, (const char *[]){"rdp", where});
        snprintf(where, sizeof(where), "ticket:%s", ctl_str(r, "ticket"));
        ctl_table_add(&t, (const char *[]){"user name", where});
    } else {
        snprintf(where, sizeof(where), "%s:%lld", ctl_str(r, "host"),
                 (long long)ctl_int(r, "port"));
        ctl_table_add(&t, (const char *[]){"vnc", where});
        ctl_table_add(&t, (const char *[]){"password", ctl_str(r, "password")});
    }
    ctl_table_add(&t, (const char *[]){"valid until", expires});
    ctl_table_done(&t);
}

static time_t ctl_uptime(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* Asks until a desktop is ready (the server answers 202 "provisioning"
 * after waiting a while itself), for at most CTL_LAUNCH_WAIT_S. The final
 * reply, or NULL after saying why not. */
static json_t *ctl_launch_wait(struct ctl *ctl, const char *path,
                               const json_t *body)
{
    time_t deadline = ctl_uptime() + CTL_LAUNCH_WAIT_S;
    int told = 0;

    for (;;) {
        json_t *r;
        json_int_t wait;

        if (ctl_call(ctl, "POST", path, body, &r))
            return NULL;
        if (strcmp(ctl_str(r, "state"), "provisioning") != 0)
            return r;
        if (!told++)
            ctl_say(stderr, "deskpoolctl: ", ctl_str(r, "message"));
        wait = ctl_int(r, "retry_after");
        json_decref(r);
        wait = wait < 1 ? 1 : wait > 60 ? 60 : wait;
        if (ctl_uptime() + wait >= deadline)
            break;
        sleep((unsigned)wait);
    }
    ctl_err("no desktop was ready within %d s; try again later",
            CTL_LAUNCH_WAIT_S);
    return NULL;
}

static int ctl_cmd_launch(struct ctl *ctl, const char *name, int argc,
                          char **argv)
{
    const char *proto = "browser";
    const struct ctl_opt opts[] = {{"--protocol", &proto}, {NULL, NULL}};
    char path[1024];
    json_t *body, *r;

    (void)name;
    if (ctl_parse(argc, argv, opts) != 1 ||
        ctl_path(path, sizeof(path), "/api/v1/pools/", argv[0], "/launch"))
        return ctl_usage();
    if (strcmp(proto, "browser") && strcmp(proto, "rdp") &&
        strcmp(proto, "vnc"))
        return ctl_usage_error("--protocol: browser, rdp or vnc");
    body = ctl_oom(json_pack("{ss}", "protocol", proto));
    r = ctl_launch_wait(ctl, path, body);
    json_decref(body);
    if (!r)
        return CTL_FAIL;
    if (ctl->json)
        return ctl_print_json(r);
    ctl_launch_show(ctl, r);
    json_decref(r);
    return CTL_OK;
}

/* --- commands ------------------------------------------------------------- */

struct ctl_cmd {
    const char *name;
    int (*run)(struct ctl *ctl, const char *name, int argc, char **argv);
};

/* Runs the (sub)command argv[0] of table, or def (may be NULL) when
 * there is none or an option comes first ("desktops --pool P"). */
static int ctl_dispatch(struct ctl *ctl, const struct ctl_cmd *table,
                        const char *def, int argc, char **argv)
{
    const struct ctl_cmd *c;
    int named = argc && argv[0][0] != '-';
    const char *want = named ? argv[0] : def;

    if (!want) {
        if (argc)
            ctl_err("unknown option %s", argv[0]);
        return ctl_usage();
    }
    for (c = table; c->name; c++)
        if (!strcmp(c->name, want))
            return named ? c->run(ctl, c->name, argc - 1, argv + 1)
                         : c->run(ctl, c->name, argc, argv);
    ctl_err("unknown command %s", want);
    return ctl_usage();
}

static int ctl_cmd_pools(struct ctl *ctl, const char *name, int argc,
                         char **argv)
{
    static const struct ctl_cmd subs[] = {{"list", ctl_pools_list},
                                          {"show", ctl_pools_show},
                                          {"create", ctl_pools_put},
                                          {"set", ctl_pools_put},
                                          {"delete", ctl_pools_do},
                                          {"resume", ctl_pools_do},
                                          {NULL, NULL}};

    (void)name;
    return ctl_dispatch(ctl, subs, "list", argc, argv);
}

static int ctl_cmd_desktops(struct ctl *ctl, const char *name, int argc,
                            char **argv)
{
    static const struct ctl_cmd subs[] = {
        {"list", ctl_desktops_list},
        {"show", ctl_desktops_show},
        {"power-on", ctl_desktops_op},
        {"power-off", ctl_desktops_op},
        {"reset", ctl_desktops_op},
        {"refresh", ctl_desktops_op},
        {"delete", ctl_desktops_op},
        {"logoff", ctl_desktops_op},
        {"screenshot", ctl_desktops_screenshot},
        {NULL, NULL}};

    (void)name;
    return ctl_dispatch(ctl, subs, "list", argc, argv);
}

static int ctl_cmd_help(struct ctl *ctl, const char *name, int argc,
                        char **argv)
{
    (void)ctl;
    (void)name;
    (void)argc;
    (void)argv;
    fputs(ctl_usage_text, stdout);
    return CTL_OK;
}

static const struct ctl_cmd ctl_commands[] = {
    {"login", ctl_cmd_login},       {"logout", ctl_cmd_logout},
    {"whoami", ctl_cmd_whoami},     {"pools", ctl_cmd_pools},
    {"desktops", ctl_cmd_desktops}, {"sessions", ctl_cmd_sessions},
    {"events", ctl_cmd_events},     {"launch", ctl_cmd_launch},
    {"help", ctl_cmd_help},         {NULL, NULL}};

int main(int argc, char **argv)
{
    struct ctl ctl;
    int n, rc;

    memset(&ctl, 0, sizeof(ctl));
    json_set_alloc_funcs(malloc, ctl_json_free);
    signal(SIGPIPE, SIG_IGN); /* a closed pipe is an error, not a death */
    n = ctl_global_opts(&ctl, argc - 1, argv + 1);
    if (n == -2)
        return ctl_cmd_help(&ctl, "help", 0, NULL);
    if (n <= 0)
        return ctl_usage();
    if (ctl_session_path(&ctl))
        return CTL_FAIL;
    ctl_session_load(&ctl);
    if (!ctl.url[0])
        snprintf(ctl.url, sizeof(ctl.url), "%s", CTL_DEFAULT_URL);
    rc = ctl_dispatch(&ctl, ctl_commands, NULL, n, argv + 1);
    bk_client_close(ctl.c);
    explicit_bzero(ctl.token, sizeof(ctl.token));
    if (fflush(stdout) != 0 && rc == CTL_OK) {
        ctl_err("cannot write the output: %s", strerror(errno));
        rc = CTL_FAIL;
    }
    return rc;
}
