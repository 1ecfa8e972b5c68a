/*
 * tsvm.c - start and stop test guests under QEMU (see tsvm.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tsvm.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Room for any path built under the run directory. */
#define TSVM_PATH_MAX PATH_MAX

/* Longest caller-supplied kernel argument string accepted. */
#define TSVM_EXTRA_MAX 1024

/* How often the serial log is re-read while waiting on it. */
#define TSVM_POLL_MS 100

/* Stop: how long QMP quit may take, then how long QEMU gets to exit. */
#define TSVM_QUIT_TIMEOUT_MS 2000
#define TSVM_EXIT_GRACE_MS   3000

/* Most of the serial log searched, and how much of its end is printed. */
#define TSVM_LOG_MAX    (8 * 1024 * 1024)
#define TSVM_TAIL_BYTES 3000

struct tsvm {
    pid_t pid;       /* QEMU; 0 once reaped by the owner */
    pid_t owner;     /* the process that started QEMU */
    int exit_status; /* waitpid() status once reaped */
    int stopped;     /* tsvm_stop() has run in the owner */
    char accel[8];
    char run_dir[TSVM_PATH_MAX];
    struct tsqmp *qmp; /* this process's QMP connection, maybe inherited */
};

static long long tsvm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tsvm_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------------
 * Child processes */

/*
 * The child's side of tsvm_spawn(): only async-signal-safe calls between
 * fork and exec, since the parent may be threaded (sanitizer runtimes).
 */
static void tsvm_exec_child(char *const argv[], pid_t parent)
{
    static const char msg[] = "tsvm: cannot execute a helper program\n";
    int null_fd;

    /* Die with the test: a crashed or killed test must not leave a QEMU
     * spinning on the machine. The parent may have died before prctl. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(126);
    null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0 && null_fd != STDIN_FILENO) {
        dup2(null_fd, STDIN_FILENO);
        close(null_fd);
    }
    /* Whatever the test holds (QMP sockets, Check's pipes) stays there. */
    if (close_range(3, ~0u, 0) < 0)
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    execvp(argv[0], argv);
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
        _exit(127);
    _exit(127);
}

static int tsvm_spawn(char *const argv[], pid_t *pid)
{
    pid_t parent = getpid();
    pid_t child;

    child = fork();
    if (child < 0) {
        int err = -errno;
        fprintf(stderr, "tsvm: fork: %s\n", strerror(errno));
        return err;
    }
    if (child == 0)
        tsvm_exec_child(argv, parent);
    *pid = child;
    return 0;
}

static pid_t tsvm_waitpid(pid_t pid, int *status, int flags)
{
    pid_t r;
    while ((r = waitpid(pid, status, flags)) < 0 && errno == EINTR)
        ;
    return r;
}

/* Runs argv to completion; fails unless it exits with status 0. */
static int tsvm_run(char *const argv[])
{
    pid_t pid;
    int status, err = tsvm_spawn(argv, &pid);

    if (err)
        return err;
    if (tsvm_waitpid(pid, &status, 0) < 0)
        return -errno;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "tsvm: %s failed (wait status 0x%x)\n", argv[0],
                (unsigned)status);
        return -EIO;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Guest image and accelerator */

static int tsvm_has_file(const char *dir, const char *name)
{
    char path[TSVM_PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    return n > 0 && (size_t)n < sizeof(path) && access(path, R_OK) == 0;
}

/* NULL when dir holds the image, else the first file that is missing. */
static const char *tsvm_missing_file(const char *dir)
{
    static const char *const files[] = {"vmlinuz", "initrd.img", "root.qcow2"};
    for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++)
        if (!tsvm_has_file(dir, files[i]))
            return files[i];
    return NULL;
}

const char *tsvm_guest_dir(void)
{
    const char *dir = getenv("DESKPOOL_GUEST_DIR");
    const char *missing;

    if (!dir || !*dir) {
        fprintf(stderr, "tsvm: DESKPOOL_GUEST_DIR is not set; set it to the "
                        "absolute path of build/guest (make integration "
                        "does)\n");
        return NULL;
    }
    if (dir[0] != '/') {
        fprintf(stderr,
                "tsvm: DESKPOOL_GUEST_DIR=%s is not an absolute "
                "path\n",
                dir);
        return NULL;
    }
    missing = tsvm_missing_file(dir);
    if (missing) {
        fprintf(stderr,
                "tsvm: %s/%s is missing or unreadable; build the "
                "image with make guest-image\n",
                dir, missing);
        return NULL;
    }
    return dir;
}

static int tsvm_start_accel(const char *guest_dir, const char *extra,
                            const char *accel, struct tsvm **out);

/* Boots the image with KVM and reports whether its root got mounted. */
static int tsvm_kvm_probe(const char *guest_dir)
{
    struct tsvm *vm;
    int ok;

    if (tsvm_start_accel(guest_dir, NULL, "kvm", &vm) < 0)
        return 0;
    /* A hung KVM guest prints nothing more; its log tail shows how far it
     * got, which is worth having in a CI log. */
    ok = tsvm_wait_serial(vm, TSVM_ROOT_MOUNTED, TSVM_KVM_PROBE_MS) == 0;
    tsvm_free(vm);
    return ok;
}

static const char *tsvm_auto_accel(const char *guest_dir)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        fprintf(stderr, "tsvm: /dev/kvm: %s: test guests run with TCG\n",
                strerror(errno));
        return "tcg";
    }
    close(fd);
    if (!guest_dir) {
        fprintf(stderr, "tsvm: no guest image to probe KVM with: test "
                        "guests run with TCG\n");
        return "tcg";
    }
    if (!tsvm_kvm_probe(guest_dir)) {
        fprintf(stderr,
                "tsvm: KVM boot probe failed (the guest did not "
                "mount its root within %d ms): test guests run with "
                "TCG\n",
                TSVM_KVM_PROBE_MS);
        return "tcg";
    }
    fprintf(stderr, "tsvm: KVM boot probe passed: test guests run with "
                    "KVM\n");
    return "kvm";
}

const char *tsvm_pick_accel(const char *guest_dir)
{
    /* Probing boots a whole VM: do it once per process. */
    static const char *chosen;
    const char *env = getenv("DESKPOOL_ACCEL");

    if (chosen)
        return chosen;
    if (env && (!strcmp(env, "tcg") || !strcmp(env, "kvm"))) {
        fprintf(stderr,
                "tsvm: DESKPOOL_ACCEL=%s: test guests run with "
                "%s\n",
                env, env);
        chosen = !strcmp(env, "kvm") ? "kvm" : "tcg";
        return chosen;
    }
    if (env && *env)
        fprintf(stderr,
                "tsvm: ignoring DESKPOOL_ACCEL=%s (not tcg or "
                "kvm)\n",
                env);
    chosen = tsvm_auto_accel(guest_dir);
    return chosen;
}

/* ------------------------------------------------------------------------
 * Starting */

int tsvm_path(const struct tsvm *vm, const char *name, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", vm->run_dir, name);
    if (n < 0 || (size_t)n >= size)
        return -ENAMETOOLONG;
    return 0;
}

/*
 * Makes the private run directory. Its paths end up in QEMU options, where
 * a comma would split an option, and in unix socket addresses, which are
 * short; refuse what would not work rather than fail obscurely later.
 */
static int tsvm_make_run_dir(struct tsvm *vm)
{
    const char *tmp = getenv("TMPDIR");
    int n;

    if (!tmp || tmp[0] != '/')
        tmp = "/tmp";
    n = snprintf(vm->run_dir, sizeof(vm->run_dir), "%s/deskpool-vm-XXXXXX",
                 tmp);
    /* 108 bytes of sun_path minus "/qmp.sock" and its NUL. */
    if (n < 0 || n > 98 || strchr(vm->run_dir, ',')) {
        fprintf(stderr, "tsvm: TMPDIR=%s is too long or has a comma\n", tmp);
        vm->run_dir[0] = '\0';
        return -ENAMETOOLONG;
    }
    if (!mkdtemp(vm->run_dir)) {
        int err = -errno;
        fprintf(stderr, "tsvm: mkdtemp %s: %s\n", vm->run_dir, strerror(errno));
        vm->run_dir[0] = '\0';
        return err;
    }
    return 0;
}

/* qcow2 overlay on the image's root disk, so the golden image stays
 * untouched and each VM starts from the same state. */
static int tsvm_make_overlay(struct tsvm *vm, const char *guest_dir)
{
    char rel[TSVM_PATH_MAX], backing[TSVM_PATH_MAX], overlay[TSVM_PATH_MAX];
    int n = snprintf(rel, sizeof(rel), "%s/root.qcow2", guest_dir);

    if (n < 0 || (size_t)n >= sizeof(rel) ||
        tsvm_path(vm, "overlay.qcow2", overlay, sizeof(overlay)))
        return -ENAMETOOLONG;
    /* qemu-img stores the backing path as given; make it absolute. */
    if (!realpath(rel, backing)) {
        int err = -errno;
        fprintf(stderr, "tsvm: %s: %s\n", rel, strerror(errno));
        return err;
    }
    char *const argv[] = {"qemu-img", "create", "-q",    "-f",    "qcow2", "-F",
                          "qcow2",    "-b",     backing, overlay, NULL};
    return tsvm_run(argv);
}

/* Option strings of the QEMU command line, built in tsvm_launch(). */
struct tsvm_qemu_args {
    char vnc[TSVM_PATH_MAX + 16], qmp[TSVM_PATH_MAX + 32];
    char kernel[TSVM_PATH_MAX], initrd[TSVM_PATH_MAX];
    char append[TSVM_EXTRA_MAX + 128], drive[TSVM_PATH_MAX + 64];
    char serial[TSVM_PATH_MAX + 16];
};

/* snprintf() that reports truncation. */
static int tsvm_fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int tsvm_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int tsvm_qemu_args(const struct tsvm *vm, const char *g,
                          const char *extra, struct tsvm_qemu_args *a)
{
    const char *r = vm->run_dir;
    int err = 0;

    err |= tsvm_fmt(a->vnc, sizeof(a->vnc), "unix:%s/vnc.sock", r);
    err |= tsvm_fmt(a->qmp, sizeof(a->qmp),
                    "unix:%s/qmp.sock,server=on,wait=off", r);
    err |= tsvm_fmt(a->kernel, sizeof(a->kernel), "%s/vmlinuz", g);
    err |= tsvm_fmt(a->initrd, sizeof(a->initrd), "%s/initrd.img", g);
    err |= tsvm_fmt(a->append, sizeof(a->append),
                    "console=ttyS0 vga=0x344 quiet "
                    "vt.global_cursor_default=0%s%s",
                    extra && *extra ? " " : "", extra ? extra : "");
    err |= tsvm_fmt(a->drive, sizeof(a->drive),
                    "file=%s/overlay.qcow2,if=none,id=disk0,format=qcow2", r);
    err |= tsvm_fmt(a->serial, sizeof(a->serial), "file:%s/serial.log", r);
    return err ? -ENAMETOOLONG : 0;
}

static int tsvm_launch(struct tsvm *vm, const char *g, const char *extra)
{
    struct tsvm_qemu_args a;
    int err = tsvm_qemu_args(vm, g, extra, &a);

    if (err) {
        fprintf(stderr, "tsvm: QEMU arguments too long\n");
        return err;
    }
    /* notes/qemu.md §4 plus the image's devices: virtio root disk, tablet
     * for the pointer, virtio-serial for the agent. */
    // clang-format off
    char *const argv[] = {
        "qemu-system-x86_64", "-accel", vm->accel, "-M", "q35", "-m", "256",
        "-nodefaults", "-no-user-config", "-display", "none", "-vga", "std",
        "-vnc", a.vnc,
        "-qmp", a.qmp,
        "-kernel", a.kernel,
        "-initrd", a.initrd,
        "-append", a.append,
        "-drive", a.drive,
        "-device", "virtio-blk-pci,drive=disk0",
        "-device", "virtio-tablet-pci",
        "-device", "virtio-serial-pci",
        "-serial", a.serial,
        "-no-reboot",
        NULL};
    // clang-format on
    return tsvm_spawn(argv, &vm->pid);
}

/* Refuses image paths QEMU would misparse (commas split its options). */
static int tsvm_check_config(const char *guest_dir, const char *extra,
                             const char *accel)
{
    if (!guest_dir || guest_dir[0] != '/' || strchr(guest_dir, ',')) {
        fprintf(stderr, "tsvm: guest image folder must be an absolute path "
                        "without commas\n");
        return -EINVAL;
    }
    if (extra && strlen(extra) > TSVM_EXTRA_MAX) {
        fprintf(stderr, "tsvm: extra kernel arguments over %d bytes\n",
                TSVM_EXTRA_MAX);
        return -EINVAL;
    }
    if (strcmp(accel, "tcg") && strcmp(accel, "kvm")) {
        fprintf(stderr, "tsvm: unknown accelerator %s\n", accel);
        return -EINVAL;
    }
    if (tsvm_missing_file(guest_dir)) {
        fprintf(stderr, "tsvm: %s/%s is missing\n", guest_dir,
                tsvm_missing_file(guest_dir));
        return -ENOENT;
    }
    return 0;
}

static int tsvm_start_accel(const char *guest_dir, const char *extra,
                            const char *accel, struct tsvm **out)
{
    struct tsvm *vm;
    int err;

    *out = NULL;
    err = tsvm_check_config(guest_dir, extra, accel);
    if (err)
        return err;
    vm = calloc(1, sizeof(*vm));
    if (!vm)
        return -ENOMEM;
    vm->owner = getpid();
    snprintf(vm->accel, sizeof(vm->accel), "%s", accel);
    err = tsvm_make_run_dir(vm);
    if (!err)
        err = tsvm_make_overlay(vm, guest_dir);
    if (!err)
        err = tsvm_launch(vm, guest_dir, extra);
    if (err) {
        tsvm_free(vm);
        return err;
    }
    *out = vm;
    return 0;
}

int tsvm_start(const struct tsvm_config *cfg, struct tsvm **out)
{
    const char *guest_dir = cfg ? cfg->guest_dir : NULL;
    const char *accel = cfg ? cfg->accel : NULL;

    *out = NULL;
    if (!guest_dir)
        guest_dir = tsvm_guest_dir();
    if (!guest_dir)
        return -ENOENT;
    if (!accel)
        accel = tsvm_pick_accel(guest_dir);
    return tsvm_start_accel(guest_dir, cfg ? cfg->extra_args : NULL, accel,
                            out);
}

/* ------------------------------------------------------------------------
 * Serial log */

/* Reads (the last TSVM_LOG_MAX bytes of) the serial log; NULL if absent. */
static char *tsvm_read_log(const struct tsvm *vm, size_t *len)
{
    char path[TSVM_PATH_MAX];
    struct stat st;
    char *buf = NULL;
    ssize_t n = -1;
    int fd;

    *len = 0;
    if (tsvm_path(vm, "serial.log", path, sizeof(path)))
        return NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) == 0) {
        off_t start = st.st_size > TSVM_LOG_MAX ? st.st_size - TSVM_LOG_MAX : 0;
        size_t want = (size_t)(st.st_size - start);
        buf = malloc(want + 1);
        if (buf)
            n = pread(fd, buf, want, start);
    }
    close(fd);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    *len = (size_t)n;
    return buf;
}

static int tsvm_log_contains(const struct tsvm *vm, const char *text)
{
    size_t len;
    char *log = tsvm_read_log(vm, &len);
    int found = log && memmem(log, len, text, strlen(text)) != NULL;

    free(log);
    return found;
}

int tsvm_serial_contains(const struct tsvm *vm, const char *text)
{
    return vm && text && *text && tsvm_log_contains(vm, text);
}

void tsvm_print_serial_tail(const struct tsvm *vm)
{
    size_t len, start;
    char *log = vm ? tsvm_read_log(vm, &len) : NULL;

    if (!log) {
        fprintf(stderr, "tsvm: no serial log\n");
        return;
    }
    start = len > TSVM_TAIL_BYTES ? len - TSVM_TAIL_BYTES : 0;
    /* The guest may print anything; keep the test's output readable. */
    for (size_t i = start; i < len; i++) {
        unsigned char c = (unsigned char)log[i];
        if (c == '\r')
            log[i] = ' ';
        else if ((c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f)
            log[i] = '?';
    }
    fprintf(stderr, "---- tail of %s/serial.log ----\n%.*s\n---- end ----\n",
            vm->run_dir, (int)(len - start), log + start);
    free(log);
}

/* True while QEMU runs. The owner reaps it; other processes (forked test
 * children) cannot wait for it and look at /proc instead. */
static int tsvm_running(struct tsvm *vm)
{
    char path[64], line[256], *paren;
    ssize_t n;
    int fd;

    if (vm->pid <= 0)
        return 0;
    if (getpid() == vm->owner) {
        if (tsvm_waitpid(vm->pid, &vm->exit_status, WNOHANG) == 0)
            return 1;
        vm->pid = 0;
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)vm->pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, line, sizeof(line) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    line[n] = '\0';
    /* "pid (comm) S ...": a zombie has exited. */
    paren = strrchr(line, ')');
    return !(paren && paren[1] == ' ' && paren[2] == 'Z');
}

static void tsvm_report_exit(const struct tsvm *vm, const char *text)
{
    int st = vm->exit_status;

    /* Only the owner reaped QEMU and knows how it ended. */
    if (getpid() == vm->owner && WIFEXITED(st))
        fprintf(stderr,
                "tsvm: QEMU exited with status %d before the serial "
                "log showed \"%s\"\n",
                WEXITSTATUS(st), text);
    else if (getpid() == vm->owner && WIFSIGNALED(st))
        fprintf(stderr,
                "tsvm: QEMU was killed by signal %d before the "
                "serial log showed \"%s\"\n",
                WTERMSIG(st), text);
    else
        fprintf(stderr,
                "tsvm: QEMU exited before the serial log showed "
                "\"%s\"\n",
                text);
}

int tsvm_wait_serial(struct tsvm *vm, const char *text, int timeout_ms)
{
    long long deadline = tsvm_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

    if (!vm || !text || !*text)
        return -EINVAL;
    for (;;) {
        if (tsvm_log_contains(vm, text))
            return 0;
        if (!tsvm_running(vm)) {
            /* One last look: the line may have come just before exit. */
            if (tsvm_log_contains(vm, text))
                return 0;
            tsvm_report_exit(vm, text);
            tsvm_print_serial_tail(vm);
            return -ESRCH;
        }
        if (tsvm_now_ms() >= deadline)
            break;
        tsvm_sleep_ms(TSVM_POLL_MS);
    }
    fprintf(stderr, "tsvm: the serial log did not show \"%s\" within %d ms\n",
            text, timeout_ms);
    tsvm_print_serial_tail(vm);
    return -ETIMEDOUT;
}

/* ------------------------------------------------------------------------
 * QMP and accessors */

struct tsqmp *tsvm_qmp(struct tsvm *vm)
{
    char path[TSVM_PATH_MAX];

    if (!vm || vm->pid <= 0)
        return NULL;
    /* A connection inherited from the parent is used as is: QEMU would not
     * greet a second one while the parent's stays open. */
    if (vm->qmp)
        return vm->qmp;
    if (tsvm_path(vm, "qmp.sock", path, sizeof(path)) ||
        tsqmp_connect(path, TSQMP_DEFAULT_TIMEOUT_MS, &vm->qmp) < 0)
        return NULL;
    return vm->qmp;
}

void tsvm_qmp_release(struct tsvm *vm)
{
    /* Closing an inherited copy leaves the parent's connection open. */
    if (!vm || !vm->qmp)
        return;
    tsqmp_close(vm->qmp);
    vm->qmp = NULL;
}

const char *tsvm_run_dir(const struct tsvm *vm)
{
    return vm->run_dir;
}

const char *tsvm_accel(const struct tsvm *vm)
{
    return vm->accel;
}

/* ------------------------------------------------------------------------
 * Stopping */

/* Asks QEMU to quit over QMP; it may close the socket before replying. */
static void tsvm_quit(struct tsvm *vm)
{
    struct tsqmp *q;
    char path[TSVM_PATH_MAX];

    if (!vm->qmp && !tsvm_path(vm, "qmp.sock", path, sizeof(path)) &&
        access(path, F_OK) == 0)
        tsqmp_connect(path, TSVM_QUIT_TIMEOUT_MS, &vm->qmp);
    q = vm->qmp;
    if (!q)
        return;
    tsqmp_set_timeout(q, TSVM_QUIT_TIMEOUT_MS);
    tsqmp_execute(q, "quit", NULL, NULL);
}

static void tsvm_kill(struct tsvm *vm)
{
    long long deadline;

    if (!tsvm_running(vm))
        return;
    tsvm_quit(vm);
    deadline = tsvm_now_ms() + TSVM_EXIT_GRACE_MS;
    while (tsvm_running(vm) && tsvm_now_ms() < deadline)
        tsvm_sleep_ms(20);
    if (vm->pid > 0) {
        fprintf(stderr, "tsvm: QEMU did not quit; killing it\n");
        kill(vm->pid, SIGKILL);
        tsvm_waitpid(vm->pid, &vm->exit_status, 0);
        vm->pid = 0;
    }
}

static int tsvm_remove_entry(const char *path, const struct stat *st, int type,
                             struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    if (remove(path) < 0 && errno != ENOENT)
        fprintf(stderr, "tsvm: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

void tsvm_stop(struct tsvm *vm)
{
    if (!vm)
        return;
    if (getpid() != vm->owner) {
        tsvm_qmp_release(vm);
        return;
    }
    if (vm->stopped)
        return;
    vm->stopped = 1;
    tsvm_kill(vm);
    tsvm_qmp_release(vm);
    if (vm->run_dir[0]) {
        /* Depth first and without following links: only our own files. */
        nftw(vm->run_dir, tsvm_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
        vm->run_dir[0] = '\0';
    }
}

void tsvm_free(struct tsvm *vm)
{
    if (!vm)
        return;
    tsvm_stop(vm);
    free(vm);
}
