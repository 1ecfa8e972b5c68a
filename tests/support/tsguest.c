/*
 * tsguest.c - test guests on libdeskpool-hv (see tsguest.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tsguest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hv_proc.h"
#include "tsscreen.h"

#define TSGUEST_ERR_MAX 2048

/* How often the serial log is read again while waiting on it. */
#define TSGUEST_POLL_MS 100

/* Most of the serial log searched, and how much of its end is printed. */
#define TSGUEST_LOG_MAX    (8 * 1024 * 1024)
#define TSGUEST_TAIL_BYTES 3000

/* Pause between two typed keys: about 25 keys a second, a fast typist. */
#define TSGUEST_KEY_GAP_MS 40

/* How long killed processes get to disappear before their files go. */
#define TSGUEST_KILL_WAIT_MS 5000

/* The process's test root, and who made it (the only one cleaning it up).
 * Process-wide on purpose: the at-exit handler has no other way to it. */
static char tsguest_root_dir[32];
static pid_t tsguest_root_owner;

long long tsguest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tsguest_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* snprintf() that reports truncation. */
static int tsguest_fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int tsguest_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* ------------------------------------------------------------------------
 * Test root and cleanup */

/* Number of live processes (but this one) whose command line has needle;
 * with kill_them, each gets SIGKILL. */
static int tsguest_scan_procs(const char *needle, int kill_them)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    if (!d)
        return 0;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);

        if (*end || pid <= 0 || pid == getpid() ||
            !hv_proc_cmdline_has((pid_t)pid, needle))
            continue;
        n++;
        if (kill_them)
            kill((pid_t)pid, SIGKILL);
    }
    closedir(d);
    return n;
}

/* Ends every process naming dir (QEMU has its folders in its arguments)
 * and waits until they are gone; returns how many there were. */
static int tsguest_kill_under(const char *dir)
{
    char needle[PATH_MAX];
    long long deadline = tsguest_now_ms() + TSGUEST_KILL_WAIT_MS;
    int n;

    /* The trailing slash keeps /tmp/dpt-abc123 from matching a longer
     * name that starts the same way. */
    if (tsguest_fmt(needle, sizeof(needle), "%s/", dir))
        return 0;
    n = tsguest_scan_procs(needle, 1);
    /* A killed QEMU is reaped by init; as a zombie its command line is
     * empty and no longer matches. */
    while (n && tsguest_scan_procs(needle, 0) && tsguest_now_ms() < deadline)
        tsguest_sleep_ms(20);
    return n;
}

static int tsguest_remove_entry(const char *path, const struct stat *st,
                                int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    if (remove(path) < 0 && errno != ENOENT)
        fprintf(stderr, "tsguest: cannot remove %s: %s\n", path,
                strerror(errno));
    return 0;
}

/* Depth first and without following links: only our own files go. */
static void tsguest_remove_tree(const char *dir)
{
    nftw(dir, tsguest_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void tsguest_cleanup(void)
{
    int killed;

    if (!tsguest_root_dir[0] || getpid() != tsguest_root_owner)
        return;
    killed = tsguest_kill_under(tsguest_root_dir);
    if (killed)
        fprintf(stderr, "tsguest: killed %d process(es) left under %s\n",
                killed, tsguest_root_dir);
    tsguest_remove_tree(tsguest_root_dir);
    tsguest_root_dir[0] = '\0';
}

const char *tsguest_root(void)
{
    static int registered;

    if (tsguest_root_dir[0])
        return tsguest_root_dir;
    /* Short on purpose: state folders under it must stay within
     * HV_STATE_DIR_MAX, for the unix socket paths inside them. */
    snprintf(tsguest_root_dir, sizeof(tsguest_root_dir), "/tmp/dpt-XXXXXX");
    if (!mkdtemp(tsguest_root_dir)) {
        fprintf(stderr, "tsguest: mkdtemp %s: %s\n", tsguest_root_dir,
                strerror(errno));
        tsguest_root_dir[0] = '\0';
        return NULL;
    }
    tsguest_root_owner = getpid();
    if (!registered && atexit(tsguest_cleanup) == 0)
        registered = 1;
    return tsguest_root_dir;
}

int tsguest_run_checks(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

int tsguest_run_suite(Suite *s)
{
    int rc;

    /* Made here, before Check forks the tests: they share it, and this
     * process cleans up after all of them, failed ones included. */
    if (!tsguest_root()) {
        srunner_free(srunner_create(s)); /* frees the suite */
        return EXIT_FAILURE;
    }
    rc = tsguest_run_checks(s);
    tsguest_cleanup();
    return rc;
}

/* ------------------------------------------------------------------------
 * Hosts */

int tsguest_host_open(struct hv_host **out, const char *state_dir)
{
    static unsigned next;
    struct hv_host_config cfg = {.quiet = 1};
    char dir[HV_STATE_DIR_MAX + 1], err[TSGUEST_ERR_MAX];
    const char *root;
    int rc;

    *out = NULL;
    if (!state_dir) {
        root = tsguest_root();
        if (!root)
            return -EIO;
        if (tsguest_fmt(dir, sizeof(dir), "%s/%d-%u", root, (int)getpid(),
                        ++next)) {
            fprintf(stderr, "tsguest: state folder name too long\n");
            return -ENAMETOOLONG;
        }
        if (mkdir(dir, 0700) < 0) {
            rc = -errno;
            fprintf(stderr, "tsguest: mkdir %s: %s\n", dir, strerror(errno));
            return rc;
        }
        state_dir = dir;
    }
    cfg.state_dir = state_dir;
    rc = hv_host_open(out, &cfg, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "tsguest: %s\n", err);
    return rc;
}

/* True when path is inside the test root (never remove anything else). */
static int tsguest_under_root(const char *path)
{
    size_t n = strlen(tsguest_root_dir);

    return n && strncmp(path, tsguest_root_dir, n) == 0 && path[n] == '/' &&
           !strstr(path, "/..");
}

void tsguest_host_close(struct hv_host *h)
{
    char dir[HV_STATE_DIR_MAX + 1], err[TSGUEST_ERR_MAX];
    char **ids;
    size_t n;

    if (!h)
        return;
    snprintf(dir, sizeof(dir), "%s", hv_host_state_dir(h));
    if (hv_vm_list(h, &ids, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            if (hv_vm_delete(h, ids[i], err, sizeof(err)) < 0)
                fprintf(stderr, "tsguest: %s\n", err);
        hv_vm_list_free(ids, n);
    }
    hv_host_close(h);
    /* What deleting missed (a QEMU whose VM is gone) must not outlive the
     * folder it writes into. */
    tsguest_kill_under(dir);
    if (tsguest_under_root(dir))
        tsguest_remove_tree(dir);
}

/* ------------------------------------------------------------------------
 * VMs */

static int tsguest_has_file(const char *dir, const char *name)
{
    char path[PATH_MAX];

    return tsguest_fmt(path, sizeof(path), "%s/%s", dir, name) == 0 &&
           access(path, R_OK) == 0;
}

const char *tsguest_guest_dir(void)
{
    static const char *const files[] = {"vmlinuz", "initrd.img", "root.qcow2"};
    const char *dir = getenv("DESKPOOL_GUEST_DIR");

    if (!dir || dir[0] != '/') {
        fprintf(stderr, "tsguest: DESKPOOL_GUEST_DIR must be the absolute "
                        "path of build/guest (make check sets it)\n");
        return NULL;
    }
    for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
        if (!tsguest_has_file(dir, files[i])) {
            fprintf(stderr,
                    "tsguest: %s/%s is missing or unreadable; build the "
                    "image with make guest-image\n",
                    dir, files[i]);
            return NULL;
        }
    }
    return dir;
}

/* The auto decision, through the library's probe. Its answer is kept in a
 * state folder of its own under the root, so forked tests reuse it. */
static int tsguest_accel_auto(enum hv_accel *out)
{
    char dir[HV_STATE_DIR_MAX + 1], cache[PATH_MAX], kernel[PATH_MAX];
    char why[512];
    const char *root = tsguest_root(), *guest = tsguest_guest_dir();
    struct hv_host *h;
    int known, rc;

    if (!root || !guest)
        return -ENOENT;
    if (tsguest_fmt(dir, sizeof(dir), "%s/accel", root) ||
        tsguest_fmt(cache, sizeof(cache), "%s/accel", dir) ||
        tsguest_fmt(kernel, sizeof(kernel), "%s/vmlinuz", guest))
        return -ENAMETOOLONG;
    rc = tsguest_host_open(&h, dir);
    if (rc < 0)
        return rc;
    known = access(cache, F_OK) == 0;
    rc = hv_host_accel(h, HV_ACCEL_AUTO, kernel, why, sizeof(why));
    hv_host_close(h);
    if (rc < 0) {
        fprintf(stderr, "tsguest: %s\n", why);
        return rc;
    }
    if (!known)
        fprintf(stderr, "tsguest: test guests run with %s\n", why);
    *out = (enum hv_accel)rc;
    return 0;
}

int tsguest_accel(enum hv_accel *out)
{
    const char *env = getenv("DESKPOOL_ACCEL");
    enum hv_accel a = HV_ACCEL_AUTO;

    if (env && *env && hv_accel_parse(env, &a) < 0) {
        fprintf(stderr, "tsguest: DESKPOOL_ACCEL=%s: not tcg, kvm or auto\n",
                env);
        return -EINVAL;
    }
    if (a == HV_ACCEL_AUTO)
        return tsguest_accel_auto(out);
    *out = a;
    return 0;
}

int tsguest_spec(struct hv_spec *s, const char *id, const char *extra_args)
{
    const char *g = tsguest_guest_dir();
    int has_extra = extra_args && *extra_args;

    hv_spec_init(s);
    if (!g)
        return -ENOENT;
    if (tsguest_fmt(s->id, sizeof(s->id), "%s", id) ||
        tsguest_fmt(s->name, sizeof(s->name), "test desktop %s", id) ||
        tsguest_fmt(s->golden, sizeof(s->golden), "%s/root.qcow2", g) ||
        tsguest_fmt(s->kernel, sizeof(s->kernel), "%s/vmlinuz", g) ||
        tsguest_fmt(s->initrd, sizeof(s->initrd), "%s/initrd.img", g) ||
        tsguest_fmt(s->cmdline, sizeof(s->cmdline), "%s%s%s", TSGUEST_CMDLINE,
                    has_extra ? " " : "", has_extra ? extra_args : "")) {
        fprintf(stderr, "tsguest: %s: spec field too long\n", id);
        return -ENAMETOOLONG;
    }
    s->memory_mb = TSGUEST_MEMORY_MB;
    return tsguest_accel(&s->accel);
}

int tsguest_create(struct hv_host *h, const char *id, const char *extra_args)
{
    char err[TSGUEST_ERR_MAX];
    struct hv_spec s;
    int rc = tsguest_spec(&s, id, extra_args);

    if (rc < 0)
        return rc;
    rc = hv_vm_create(h, &s, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "tsguest: %s\n", err);
    return rc;
}

int tsguest_start(struct hv_host *h, const char *id, const char *extra_args)
{
    char err[TSGUEST_ERR_MAX];
    int rc = tsguest_create(h, id, extra_args);

    if (rc < 0)
        return rc;
    rc = hv_vm_start(h, id, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "tsguest: %s\n", err);
        hv_vm_delete(h, id, err, sizeof(err));
    }
    return rc;
}

int tsguest_host_start(struct hv_host **out, const char *id,
                       const char *extra_args)
{
    int rc = tsguest_host_open(out, NULL);

    if (rc == 0)
        rc = tsguest_start(*out, id, extra_args);
    if (rc == 0)
        fprintf(stderr, "tsguest: guest %s started in %s\n", id,
                hv_host_state_dir(*out));
    return rc;
}

/* ------------------------------------------------------------------------
 * Serial console */

/* Reads (the last TSGUEST_LOG_MAX bytes of) one of the VM's run-folder
 * files. Returns the bytes (NUL-terminated, free them) or NULL with *err. */
static char *tsguest_read_run_file(struct hv_host *h, const char *id,
                                   const char *file, size_t *len, int *err)
{
    char path[PATH_MAX], *buf;
    struct stat st;
    off_t start;
    ssize_t n;
    int fd;

    *len = 0;
    *err = hv_vm_path(h, id, file, path, sizeof(path));
    if (*err < 0)
        return NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        *err = -errno;
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    start = st.st_size > TSGUEST_LOG_MAX ? st.st_size - TSGUEST_LOG_MAX : 0;
    buf = malloc((size_t)(st.st_size - start) + 1);
    n = buf ? pread(fd, buf, (size_t)(st.st_size - start), start) : -1;
    if (n < 0) {
        *err = buf ? -errno : -ENOMEM;
        close(fd);
        free(buf);
        return NULL;
    }
    close(fd);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

int tsguest_serial_count(struct hv_host *h, const char *id, const char *text)
{
    size_t len, tlen = text ? strlen(text) : 0;
    int err, count = 0;
    char *log;

    if (!tlen)
        return -EINVAL;
    log = tsguest_read_run_file(h, id, "serial.log", &len, &err);
    if (!log)
        return err;
    for (char *p = log, *end = log + len;
         (p = memmem(p, (size_t)(end - p), text, tlen)); p += tlen)
        count++;
    free(log);
    return count;
}

/* Prints the end of a run-folder file, readable whatever the guest wrote:
 * the console's "\r\n" becomes "\n", other control bytes '?'. */
static void tsguest_print_tail(struct hv_host *h, const char *id,
                               const char *file)
{
    size_t len, start, out = 0;
    int err;
    char *log = tsguest_read_run_file(h, id, file, &len, &err);

    if (!log) {
        fprintf(stderr, "tsguest: %s: no %s (%s)\n", id, file, strerror(-err));
        return;
    }
    start = len > TSGUEST_TAIL_BYTES ? len - TSGUEST_TAIL_BYTES : 0;
    for (size_t i = start; i < len; i++) {
        unsigned char c = (unsigned char)log[i];

        if (c == '\r')
            continue;
        log[start + out++] =
            (c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f ? '?' : (char)c;
    }
    fprintf(stderr, "---- %s: tail of %s ----\n%.*s\n---- end ----\n", id, file,
            (int)out, log + start);
    free(log);
}

void tsguest_print_serial(struct hv_host *h, const char *id)
{
    tsguest_print_tail(h, id, "serial.log");
}

/* True while the VM's QEMU runs: its pidfile names a live process started
 * with the VM's run folder in its arguments. */
static int tsguest_qemu_alive(struct hv_host *h, const char *id)
{
    char pidfile[PATH_MAX], run[PATH_MAX];
    pid_t pid;

    if (hv_vm_path(h, id, "qemu.pid", pidfile, sizeof(pidfile)) < 0 ||
        hv_vm_path(h, id, "qmp.sock", run, sizeof(run)) < 0)
        return 0;
    pid = hv_proc_read_pidfile(pidfile);
    return pid > 0 && hv_proc_alive(pid) && hv_proc_cmdline_has(pid, run);
}

int tsguest_wait_serial(struct hv_host *h, const char *id, const char *text,
                        int times, int timeout_ms)
{
    long long deadline = tsguest_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

    if (!text || !*text || times < 1)
        return -EINVAL;
    for (;;) {
        if (tsguest_serial_count(h, id, text) >= times)
            return 0;
        if (!tsguest_qemu_alive(h, id)) {
            /* One last look: the line may have come just before exit. */
            if (tsguest_serial_count(h, id, text) >= times)
                return 0;
            fprintf(stderr,
                    "tsguest: %s: QEMU is not running; the serial log "
                    "shows \"%s\" fewer than %d times\n",
                    id, text, times);
            tsguest_print_serial(h, id);
            tsguest_print_tail(h, id, "qemu.log");
            return -ESRCH;
        }
        if (tsguest_now_ms() >= deadline)
            break;
        tsguest_sleep_ms(TSGUEST_POLL_MS);
    }
    fprintf(stderr,
            "tsguest: %s: the serial log did not show \"%s\" %d times "
            "within %d ms\n",
            id, text, times, timeout_ms);
    tsguest_print_serial(h, id);
    return -ETIMEDOUT;
}

/* ------------------------------------------------------------------------
 * QMP: screen and input */

/* hv_vm_qmp() (args consumed) with the reason printed. */
static int tsguest_qmp(struct hv_host *h, const char *id, const char *command,
                       json_t *args)
{
    char err[TSGUEST_ERR_MAX];
    int rc = hv_vm_qmp(h, id, command, args, TSGUEST_QMP_TIMEOUT_MS, NULL, err,
                       sizeof(err));

    if (rc < 0)
        fprintf(stderr, "tsguest: %s\n", err);
    return rc;
}

int tsguest_screen_path(struct hv_host *h, const char *id, char *buf,
                        size_t size)
{
    if (!hv_id_valid(id))
        return -EINVAL;
    return tsguest_fmt(buf, size, "%s/screen-%s.ppm", hv_host_state_dir(h), id);
}

int tsguest_screendump(struct hv_host *h, const char *id, struct tsppm **out)
{
    char path[PATH_MAX];
    json_t *args;
    int rc;

    *out = NULL;
    rc = tsguest_screen_path(h, id, path, sizeof(path));
    if (rc < 0)
        return rc;
    /* QEMU writes the file itself (binary PPM, its default format). */
    args = json_pack("{s:s}", "filename", path);
    if (!args)
        return -ENOMEM;
    rc = tsguest_qmp(h, id, "screendump", args);
    if (rc < 0)
        return rc;
    return tsppm_load(path, out);
}

int tsguest_screen(struct hv_host *h, const char *id, struct tsppm **shot)
{
    int rc;

    tsppm_free(*shot);
    rc = tsguest_screendump(h, id, shot);
    if (rc < 0)
        return rc;
    if (tsppm_width(*shot) != TSGUEST_WIDTH ||
        tsppm_height(*shot) != TSGUEST_HEIGHT) {
        fprintf(stderr, "tsguest: screen is %dx%d, not %dx%d\n",
                tsppm_width(*shot), tsppm_height(*shot), TSGUEST_WIDTH,
                TSGUEST_HEIGHT);
        return -ERANGE;
    }
    return 0;
}

int tsguest_keep_screen(struct hv_host *h, const char *id, const char *test,
                        const char *name)
{
    char src[PATH_MAX];
    int rc;

    if (!h)
        return -EINVAL;
    rc = tsguest_screen_path(h, id, src, sizeof(src));
    return rc < 0 ? rc : tsscreen_keep_file(src, test, name);
}

/* input-send-event with events (consumed). */
static int tsguest_send_events(struct hv_host *h, const char *id,
                               json_t *events)
{
    json_t *args;

    if (!events)
        return -ENOMEM;
    args = json_pack("{s:o}", "events", events);
    if (!args)
        return -ENOMEM;
    return tsguest_qmp(h, id, "input-send-event", args);
}

static json_t *tsguest_key_event(const char *qcode, int down)
{
    return json_pack("{s:s, s:{s:b, s:{s:s, s:s}}}", "type", "key", "data",
                     "down", down, "key", "type", "qcode", "data", qcode);
}

int tsguest_send_key(struct hv_host *h, const char *id, const char *qcode,
                     int shift)
{
    json_t *events;
    int bad = 0;

    if (!qcode || !*qcode)
        return -EINVAL;
    events = json_array();
    if (!events)
        return -ENOMEM;
    if (shift)
        bad |= json_array_append_new(events, tsguest_key_event("shift", 1));
    bad |= json_array_append_new(events, tsguest_key_event(qcode, 1));
    bad |= json_array_append_new(events, tsguest_key_event(qcode, 0));
    if (shift)
        bad |= json_array_append_new(events, tsguest_key_event("shift", 0));
    if (bad) {
        json_decref(events);
        return -ENOMEM;
    }
    return tsguest_send_events(h, id, events);
}

/* US layout: the qcode of each key and the characters it types. */
struct tsguest_key {
    const char *qcode;
    char plain, shifted;
};

static const struct tsguest_key tsguest_us_keys[] = {
    {"1", '1', '!'},
    {"2", '2', '@'},
    {"3", '3', '#'},
    {"4", '4', '$'},
    {"5", '5', '%'},
    {"6", '6', '^'},
    {"7", '7', '&'},
    {"8", '8', '*'},
    {"9", '9', '('},
    {"0", '0', ')'},
    {"minus", '-', '_'},
    {"equal", '=', '+'},
    {"bracket_left", '[', '{'},
    {"bracket_right", ']', '}'},
    {"semicolon", ';', ':'},
    {"apostrophe", '\'', '"'},
    {"grave_accent", '`', '~'},
    {"backslash", '\\', '|'},
    {"comma", ',', '<'},
    {"dot", '.', '>'},
    {"slash", '/', '?'},
    {"spc", ' ', 0},
    {"ret", '\n', 0},
};

/* Finds the key that types c; letters are their own qcodes. */
static int tsguest_key_for(char c, char letter[2], const char **qcode,
                           int *shift)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        letter[0] = (char)(c | 0x20);
        letter[1] = '\0';
        *qcode = letter;
        *shift = c <= 'Z';
        return 0;
    }
    for (size_t i = 0; i < sizeof(tsguest_us_keys) / sizeof(*tsguest_us_keys);
         i++) {
        const struct tsguest_key *k = &tsguest_us_keys[i];

        if (c == k->plain || (k->shifted && c == k->shifted)) {
            *qcode = k->qcode;
            *shift = c != k->plain;
            return 0;
        }
    }
    return -EINVAL;
}

int tsguest_type_text(struct hv_host *h, const char *id, const char *text)
{
    char letter[2];
    const char *qcode;
    int shift, err = 0;

    if (!text)
        return -EINVAL;
    for (const char *p = text; *p; p++) {
        if (tsguest_key_for(*p, letter, &qcode, &shift) < 0) {
            fprintf(stderr, "tsguest: no US key types 0x%02x\n",
                    (unsigned char)*p);
            return -EINVAL;
        }
    }
    for (const char *p = text; *p && !err; p++) {
        tsguest_key_for(*p, letter, &qcode, &shift);
        if (p != text)
            tsguest_sleep_ms(TSGUEST_KEY_GAP_MS);
        err = tsguest_send_key(h, id, qcode, shift);
    }
    return err;
}

int tsguest_abs_to_px(int v, int size)
{
    return (int)((long long)v * (size - 1) / TSGUEST_ABS_MAX);
}

int tsguest_px_to_abs(int px, int size)
{
    return (int)(((long long)px * TSGUEST_ABS_MAX + size - 2) / (size - 1));
}

int tsguest_move_abs(struct hv_host *h, const char *id, int x, int y)
{
    if (x < 0 || y < 0 || x > TSGUEST_ABS_MAX || y > TSGUEST_ABS_MAX)
        return -EINVAL;
    return tsguest_send_events(
        h, id,
        json_pack("[{s:s, s:{s:s, s:i}}, {s:s, s:{s:s, s:i}}]", "type", "abs",
                  "data", "axis", "x", "value", x, "type", "abs", "data",
                  "axis", "y", "value", y));
}

static int tsguest_button(struct hv_host *h, const char *id, const char *button,
                          int down)
{
    return tsguest_send_events(h, id,
                               json_pack("[{s:s, s:{s:b, s:s}}]", "type", "btn",
                                         "data", "down", down, "button",
                                         button));
}

int tsguest_click(struct hv_host *h, const char *id, const char *button)
{
    int rc;

    if (!button || (strcmp(button, "left") && strcmp(button, "middle") &&
                    strcmp(button, "right")))
        return -EINVAL;
    /* Two events, as from a real mouse: the guest acts on the press. */
    rc = tsguest_button(h, id, button, 1);
    if (rc == 0)
        rc = tsguest_button(h, id, button, 0);
    return rc;
}

int tsguest_proc_uid(pid_t pid)
{
    char path[64], line[256];
    unsigned r, e, sv, fs;
    FILE *f;
    int uid = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Uid: %u %u %u %u", &r, &e, &sv, &fs) == 4)
            uid = r == e && e == sv && sv == fs ? (int)r : -2;
    if (f)
        fclose(f);
    return uid;
}

void tsguest_cpu_model(char *buf, size_t size)
{
    char line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");

    snprintf(buf, size, "unknown CPU");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
            snprintf(buf, size, "%s", strchr(line, ':') + 2);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    if (f)
        fclose(f);
}
