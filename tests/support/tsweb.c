/*
 * tsweb.c - browser tests: scenario scripts and lossy screens (see
 * tsweb.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tsweb.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsguest.h"

extern char **environ;

/* How often a running script is looked at, and how long it gets to close
 * its browser after SIGTERM. */
#define TSWEB_POLL_MS       50
#define TSWEB_KILL_GRACE_MS 5000

/* Most of a script's output read back, and shown on failure. */
#define TSWEB_OUT_MAX  (4 * 1024 * 1024)
#define TSWEB_SHOW_MAX (48 * 1024)

struct tsweb {
    pid_t pid;
    int exited, status;
    char name[64];
    char out[PATH_MAX];   /* its stdout: the RESULT line */
    char err[PATH_MAX];   /* its stderr: what it did */
    char steps[PATH_MAX]; /* its step files (DESKPOOL_STEPS) */
};

/* This process's folder under the test root (a forked test case has its
 * own). */
static void tsweb_dir(char *buf, size_t size)
{
    const char *root = tsguest_root();
    int n;

    ck_assert_msg(root != NULL, "tsweb: no test root");
    n = snprintf(buf, size, "%s/web-%d", root, (int)getpid());
    ck_assert_msg(n > 0 && (size_t)n < size, "tsweb: path too long");
    ck_assert_msg(mkdir(buf, 0700) == 0 || errno == EEXIST,
                  "tsweb: cannot make %s: %s", buf, strerror(errno));
}

void tsweb_path(char *buf, size_t size, const char *name)
{
    char dir[PATH_MAX];
    int n;

    tsweb_dir(dir, sizeof(dir));
    n = snprintf(buf, size, "%s/%s", dir, name);
    ck_assert_msg(n > 0 && (size_t)n < size, "tsweb: path too long");
}

void tsweb_empty_folder(const char *dir)
{
    char path[PATH_MAX + 256];
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)))
        if (e->d_type == DT_REG) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
}

void tsweb_clear_artifacts(void)
{
    const char *dir = getenv("DESKPOOL_ARTIFACTS");
    char web[PATH_MAX];

    if (!dir || !*dir ||
        snprintf(web, sizeof(web), "%s/web", dir) >= (int)sizeof(web))
        return;
    tsweb_empty_folder(web);
}

/* Runs argv (no shell) and waits for it: its exit status, or -1. */
static int tsweb_exec(char *const argv[])
{
    pid_t pid;
    int status;

    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* True when site holds a whole build: make writes .stamp last. */
static int tsweb_site_whole(const char *site)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/.stamp", site);
    if (access(path, F_OK) != 0)
        return 0;
    snprintf(path, sizeof(path), "%s/index.html", site);
    return access(path, F_OK) == 0;
}

void tsweb_site(char *buf, size_t size)
{
    const char *src = getenv("DESKPOOL_WEB_DIR");
    char from[PATH_MAX + 2];
    int tries;

    ck_assert_msg(src && *src, "DESKPOOL_WEB_DIR is not set (make web)");
    snprintf(from, sizeof(from), "%s/.", src);
    tsweb_path(buf, size, "www");
    /* a rebuild replaces the folder: copy again until a whole one came */
    for (tries = 0; tries < 5; tries++) {
        char *rm[] = {"rm", "-rf", buf, NULL};
        char *cp[] = {"cp", "-a", from, buf, NULL};

        if (tsweb_exec(rm) == 0 && mkdir(buf, 0700) == 0 &&
            tsweb_exec(cp) == 0 && tsweb_site_whole(buf))
            return;
        tsguest_sleep_ms(1000);
    }
    ck_abort_msg("no whole site to copy from %s (make web)", src);
}

static void tsweb_script(char *buf, const char *name)
{
    const char *dir = getenv("DESKPOOL_WEB_TESTS");
    char rel[PATH_MAX];

    snprintf(rel, sizeof(rel), "%s/%s.mjs", dir && *dir ? dir : "tests/web",
             name);
    ck_assert_msg(realpath(rel, buf) != NULL,
                  "tsweb: %s: %s (run from the source tree, or set "
                  "DESKPOOL_WEB_TESTS)",
                  rel, strerror(errno));
}

/* True when the environment entry e sets key (the text before '='). */
static int tsweb_same_key(const char *e, const char *key)
{
    size_t n = strcspn(key, "=");

    return !strncmp(e, key, n) && e[n] == '=';
}

/* environ, then env, then own (tsweb's: TMPDIR, DESKPOOL_STEPS); later
 * entries replace earlier ones. */
static char **tsweb_env(const char *const *env, const char *const own[2])
{
    size_t n = 0, extra = 0, i, j, k = 0;
    char **out;

    while (environ[n])
        n++;
    while (env && env[extra])
        extra++;
    out = calloc(n + extra + 3, sizeof(*out));
    ck_assert_ptr_nonnull(out);
    for (i = 0; i < n; i++) {
        int replaced = tsweb_same_key(environ[i], own[0]) ||
                       tsweb_same_key(environ[i], own[1]);

        for (j = 0; j < extra && !replaced; j++)
            replaced = tsweb_same_key(environ[i], env[j]);
        if (!replaced)
            out[k++] = environ[i];
    }
    for (j = 0; j < extra; j++)
        out[k++] = (char *)env[j];
    out[k++] = (char *)own[0];
    out[k++] = (char *)own[1];
    out[k] = NULL;
    return out;
}

struct tsweb *tsweb_start(const char *name, const char *const *env)
{
    static int serial;
    struct tsweb *w = calloc(1, sizeof(*w));
    char script[PATH_MAX], dir[PATH_MAX], tmpdir[PATH_MAX + 8],
        steps[PATH_MAX + 16], marker[PATH_MAX + 32];
    const char *own[2] = {tmpdir, steps};
    char *argv[4], **envp;
    posix_spawn_file_actions_t fa;
    int rc;

    ck_assert_ptr_nonnull(w);
    snprintf(w->name, sizeof(w->name), "%s", name);
    tsweb_script(script, name);
    tsweb_dir(dir, sizeof(dir));
    serial++;
    ck_assert(snprintf(w->out, sizeof(w->out), "%s/%s-%d.stdout", dir, name,
                       serial) < (int)sizeof(w->out));
    ck_assert(snprintf(w->err, sizeof(w->err), "%s/%s-%d.stderr", dir, name,
                       serial) < (int)sizeof(w->err));
    ck_assert(snprintf(w->steps, sizeof(w->steps), "%s/%s-%d.steps", dir, name,
                       serial) < (int)sizeof(w->steps));
    ck_assert_msg(mkdir(w->steps, 0700) == 0, "tsweb: cannot make %s: %s",
                  w->steps, strerror(errno));
    ck_assert(snprintf(tmpdir, sizeof(tmpdir), "TMPDIR=%s", dir) <
              (int)sizeof(tmpdir));
    ck_assert(snprintf(steps, sizeof(steps), "DESKPOOL_STEPS=%s", w->steps) <
              (int)sizeof(steps));
    /* names the test root on node's command line: tsguest_cleanup() ends
     * a script that outlived a killed test */
    ck_assert(snprintf(marker, sizeof(marker), "--deskpool-test-root=%s",
                       tsguest_root()) < (int)sizeof(marker));
    argv[0] = "node";
    argv[1] = script;
    argv[2] = marker;
    argv[3] = NULL;
    envp = tsweb_env(env, own);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, w->out,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, w->err,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    rc = posix_spawnp(&w->pid, "node", &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    ck_assert_msg(rc == 0, "tsweb: cannot start node %s: %s", script,
                  strerror(rc));
    fprintf(stderr, "tsweb: %s started (pid %d), output in %s\n", name,
            (int)w->pid, w->err);
    return w;
}

/* True once the script has ended (and was reaped). */
static int tsweb_reap(struct tsweb *w)
{
    if (!w->exited && waitpid(w->pid, &w->status, WNOHANG) == w->pid)
        w->exited = 1;
    return w->exited;
}

int tsweb_wait_file(struct tsweb *w, const char *path, int timeout_ms)
{
    long long deadline = tsguest_now_ms() + timeout_ms;

    for (;;) {
        if (access(path, F_OK) == 0)
            return 0;
        if (tsweb_reap(w))
            return access(path, F_OK) == 0 ? 0 : -ECHILD;
        if (tsguest_now_ms() >= deadline)
            return -ETIMEDOUT;
        tsguest_sleep_ms(TSWEB_POLL_MS);
    }
}

/* The file at path (at most TSWEB_OUT_MAX bytes), NUL-terminated; "" when
 * it cannot be read. */
static char *tsweb_read(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = malloc(TSWEB_OUT_MAX + 1);
    size_t n = 0;

    ck_assert_ptr_nonnull(buf);
    if (f) {
        n = fread(buf, 1, TSWEB_OUT_MAX, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

static void tsweb_show(const char *what, const char *path)
{
    char *text = tsweb_read(path);
    size_t n = strlen(text);
    const char *from = n > TSWEB_SHOW_MAX ? text + n - TSWEB_SHOW_MAX : text;

    fprintf(stderr, "tsweb: --- %s (%s)%s ---\n%s\ntsweb: --- end ---\n", what,
            path, from == text ? "" : ", its end", from);
    free(text);
}

/* The RESULT object of the script's stdout, or NULL with why set. */
static json_t *tsweb_result(const struct tsweb *w, char *why, size_t size)
{
    char *text = tsweb_read(w->out), *line, *save = NULL;
    json_t *result = NULL;
    json_error_t jerr;

    for (line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "FAIL ", 5)) {
            snprintf(why, size, "%s", line + 5);
        } else if (!strncmp(line, "RESULT ", 7)) {
            json_decref(result);
            result = json_loads(line + 7, 0, &jerr);
            if (!result)
                snprintf(why, size, "bad RESULT line: %s", jerr.text);
        }
    }
    free(text);
    if (result && !json_is_object(result)) {
        json_decref(result);
        result = NULL;
        snprintf(why, size, "RESULT is not a JSON object");
    }
    if (!result && !why[0])
        snprintf(why, size, "no RESULT line");
    return result;
}

/* The script's log beside its screenshots: $DESKPOOL_ARTIFACTS/web/
 * NAME.log (best effort). */
static void tsweb_keep_log(const struct tsweb *w)
{
    const char *dir = getenv("DESKPOOL_ARTIFACTS");
    char path[PATH_MAX], *text;
    FILE *f = NULL;

    if (!dir || !*dir ||
        snprintf(path, sizeof(path), "%s/web", dir) >= (int)sizeof(path))
        return;
    mkdir(dir, 0755);
    mkdir(path, 0755);
    /* NAME.log, NAME-2.log... when the scenario ran before in this run */
    for (int i = 1; !f; i++) {
        int fd, n = i == 1 ? snprintf(path, sizeof(path), "%s/web/%s.log", dir,
                                      w->name)
                           : snprintf(path, sizeof(path), "%s/web/%s-%d.log",
                                      dir, w->name, i);

        if (i > 100 || n >= (int)sizeof(path))
            return;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return;
        f = fdopen(fd, "w");
        if (!f) {
            close(fd);
            return;
        }
    }
    text = tsweb_read(w->err);
    fputs(text, f);
    fclose(f);
    free(text);
}

/* Ends a script that still runs: SIGTERM, which lets Playwright close the
 * browser, and SIGKILL after a grace. */
static void tsweb_kill(struct tsweb *w)
{
    long long deadline = tsguest_now_ms() + TSWEB_KILL_GRACE_MS;

    if (tsweb_reap(w))
        return;
    kill(w->pid, SIGTERM);
    while (!tsweb_reap(w) && tsguest_now_ms() < deadline)
        tsguest_sleep_ms(TSWEB_POLL_MS);
    if (!w->exited) {
        kill(w->pid, SIGKILL);
        waitpid(w->pid, &w->status, 0);
        w->exited = 1;
    }
}

/*
 * What an ended script said: keeps its log, frees w, and returns its
 * RESULT; fails the test (after its output) when why is set already or
 * the script failed.
 */
static json_t *tsweb_conclude(struct tsweb *w, char *why, size_t size)
{
    char name[64];
    json_t *result;
    int ok;

    tsweb_keep_log(w);
    result = why[0] ? NULL : tsweb_result(w, why, size);
    ok = result && WIFEXITED(w->status) && WEXITSTATUS(w->status) == 0;
    if (!ok && !why[0]) {
        if (WIFSIGNALED(w->status))
            snprintf(why, size, "killed by signal %d", WTERMSIG(w->status));
        else
            snprintf(why, size, "exit status %d", WEXITSTATUS(w->status));
    }
    if (!ok) {
        tsweb_show("stdout", w->out);
        tsweb_show("stderr", w->err);
        json_decref(result);
    }
    snprintf(name, sizeof(name), "%s", w->name);
    free(w);
    ck_assert_msg(ok, "browser scenario %s: %s", name, why);
    return result;
}

json_t *tsweb_finish(struct tsweb *w, int timeout_ms)
{
    long long deadline = tsguest_now_ms() + timeout_ms;
    char why[1024] = "";

    while (!tsweb_reap(w) && tsguest_now_ms() < deadline)
        tsguest_sleep_ms(TSWEB_POLL_MS);
    if (!w->exited) {
        snprintf(why, sizeof(why), "still running after %d s: killed",
                 timeout_ms / 1000);
        tsweb_kill(w);
    }
    return tsweb_conclude(w, why, sizeof(why));
}

json_t *tsweb_run(const char *name, const char *const *env, int timeout_ms)
{
    return tsweb_finish(tsweb_start(name, env), timeout_ms);
}

/* A step's file: STEPS/NAME.json (what the script sent) or
 * STEPS/NAME.done.json (the test's answer). */
static void tsweb_step_file(const struct tsweb *w, const char *name,
                            const char *suffix, char *buf, size_t size)
{
    ck_assert_msg(strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") ==
                          strlen(name) &&
                      name[0],
                  "tsweb: bad step name \"%s\"", name);
    ck_assert(snprintf(buf, size, "%s/%s%s", w->steps, name, suffix) <
              (int)size);
}

json_t *tsweb_step(struct tsweb *w, const char *name, int timeout_ms)
{
    char path[PATH_MAX + 80], why[1024] = "", script[64];
    json_error_t jerr;
    json_t *info;
    int rc;

    snprintf(script, sizeof(script), "%s", w->name);
    tsweb_step_file(w, name, ".json", path, sizeof(path));
    rc = tsweb_wait_file(w, path, timeout_ms);
    if (rc == 0) {
        info = json_load_file(path, 0, &jerr);
        ck_assert_msg(json_is_object(info), "tsweb: step %s: %s", name,
                      info ? "not an object" : jerr.text);
        fprintf(stderr, "tsweb: %s reached step %s\n", w->name, name);
        return info;
    }
    if (rc == -ETIMEDOUT) {
        snprintf(why, sizeof(why), "did not reach step %s within %d s: killed",
                 name, timeout_ms / 1000);
        tsweb_kill(w);
    }
    /* a script that ended first says why (a FAIL line) */
    json_decref(tsweb_conclude(w, why, sizeof(why)));
    ck_abort_msg("browser scenario %s: ended before step %s", script, name);
    return NULL;
}

void tsweb_step_done(struct tsweb *w, const char *name, const json_t *answer)
{
    char path[PATH_MAX + 80], tmp[PATH_MAX + 96];
    json_t *empty = answer ? NULL : json_object();

    tsweb_step_file(w, name, ".done.json", path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    /* whole, then renamed: the script never reads half an answer */
    ck_assert_msg(json_dump_file(answer ? answer : empty, tmp, JSON_COMPACT) ==
                          0 &&
                      rename(tmp, path) == 0,
                  "tsweb: cannot write %s: %s", path, strerror(errno));
    json_decref(empty);
}

const char *tsweb_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

/* ------------------------------------------------------------------------
 * Pixels */

int tsweb_channel_diff(uint32_t a, uint32_t b)
{
    int max = 0;

    for (int shift = 0; shift <= 16; shift += 8) {
        int d = (int)((a >> shift) & 0xff) - (int)((b >> shift) & 0xff);

        if (d < 0)
            d = -d;
        if (d > max)
            max = d;
    }
    return max;
}

static int tsweb_masked(const struct td_rect *mask, int nmask, int x, int y)
{
    for (int i = 0; i < nmask; i++)
        if (td_rect_contains(&mask[i], x, y))
            return 1;
    return 0;
}

void tsweb_compare(const struct tsscreen *a, const struct tsscreen *b, int tol,
                   const struct td_rect *mask, int nmask, struct tsweb_cmp *c)
{
    memset(c, 0, sizeof(*c));
    c->width = a->width;
    c->height = a->height;
    for (int y = 0; y < a->height; y++) {
        for (int x = 0; x < a->width; x++) {
            uint32_t pa, pb;
            int d;

            if (tsweb_masked(mask, nmask, x, y))
                continue;
            pa = tsscreen_pixel(a, x, y);
            pb = tsscreen_pixel(b, x, y);
            d = pb == TSSCREEN_NO_PIXEL ? 256 : tsweb_channel_diff(pa, pb);
            c->compared++;
            if (d > c->max)
                c->max = d;
            if (d > tol && c->beyond++ == 0) {
                c->x = x;
                c->y = y;
                c->a = pa;
                c->b = pb;
            }
        }
    }
}

int tsweb_find_pointer(const struct tsscreen *s, int tol, int *x, int *y)
{
    for (int py = 0; py < s->height; py++)
        for (int px = 0; px < s->width; px++)
            if (tsweb_channel_diff(tsscreen_pixel(s, px, py),
                                   TD_COLOR_POINTER) <= tol) {
                *x = px;
                *y = py;
                return 0;
            }
    return -ENOENT;
}

int tsweb_text_errors(const struct tsscreen *s, int x, int y, const char *text,
                      uint32_t fg, uint32_t bg)
{
    int w = (int)strlen(text) * TD_FONT_W, errors = 0;

    for (int py = y; py < y + TD_FONT_H; py++) {
        for (int px = x; px < x + w; px++) {
            uint32_t got = tsscreen_pixel(s, px, py);
            uint32_t want = tsscreen_text_pixel(px, py, x, y, text, fg, bg);
            uint32_t seen =
                tsweb_channel_diff(got, fg) < tsweb_channel_diff(got, bg) ? fg
                                                                          : bg;

            if (got == TSSCREEN_NO_PIXEL || seen != want)
                errors++;
        }
    }
    return errors;
}

const char *tsweb_kv(const char *key, const char *fmt, ...)
{
    static char ring[32][1024];
    static int next;
    char *e = ring[next++ % 32];
    int n = snprintf(e, sizeof(ring[0]), "%s=", key);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(e + n, sizeof(ring[0]) - (size_t)n, fmt, ap);
    va_end(ap);
    return e;
}

void tsweb_desk_env(const char **env, int *n, const struct td_layout *l)
{
    int x, y;

    td_layout_text_cell(l, 0, 0, &x, &y);
    env[(*n)++] = tsweb_kv("DESKPOOL_PROBE", "1,1,%06x", TD_COLOR_TOPBAR);
    env[(*n)++] =
        tsweb_kv("DESKPOOL_CLICK", "%d,%d", l->textbox.x + l->textbox.w - 40,
                 l->textbox.y + l->textbox.h / 3);
    env[(*n)++] = tsweb_kv("DESKPOOL_TEXT_CELL", "%d,%d", x, y);
    env[(*n)++] = tsweb_kv("DESKPOOL_CELL", "%d,%d", TD_FONT_W, TD_FONT_H);
}
