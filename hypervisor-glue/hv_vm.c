/*
 * hv_vm.c - desktop VM lifecycle on the local host (see hv_vm.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dp_time.h"
#include "hv_argv.h"
#include "hv_image.h"
#include "hv_internal.h"
#include "hv_proc.h"

#define HV_QEMU_START_TIMEOUT_MS  30000 /* exec until QMP answers */
#define HV_QMP_CONNECT_TIMEOUT_MS 5000
#define HV_QUIT_GRACE_MS          3000 /* quit -> process gone, before SIGKILL */
#define HV_SPEC_FILE_MAX          65536

/* --- small helpers ------------------------------------------------------ */

int hv_err(char *err, size_t size, int rc, const char *fmt, ...)
{
    va_list ap;
    if (err && size) {
        va_start(ap, fmt);
        vsnprintf(err, size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

void hv_warn(const struct hv_host *h, const char *fmt, ...)
{
    va_list ap;
    if (h->quiet)
        return;
    fputs("deskpool-hv: warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int hv_remove_flat_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    if (rmdir(dir) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

/* STATE/vms/ID or STATE/run/ID, optionally with a file name. */
static int hv_vm_file(const struct hv_host *h, const char *area, const char *id,
                      const char *file, char *buf, size_t size)
{
    int n =
        file ? snprintf(buf, size, "%s/%s/%s/%s", h->state_dir, area, id, file)
             : snprintf(buf, size, "%s/%s/%s", h->state_dir, area, id);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int hv_vm_path(const struct hv_host *h, const char *id, const char *file,
               char *buf, size_t size)
{
    if (!hv_id_valid(id))
        return -EINVAL;
    return hv_vm_file(h, "run", id, file, buf, size);
}

static int hv_mkdir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* --- host ---------------------------------------------------------------- */

/* Whether user (uid, gid) may pass through every folder above and at dir:
 * an unprivileged QEMU must reach its run folder. Returns 0 or -EACCES
 * with the folder that stops it in err. */
static int hv_reachable_by(const char *dir, uid_t uid, gid_t gid, char *err,
                           size_t err_size)
{
    char path[PATH_MAX];
    struct stat st;

    snprintf(path, sizeof(path), "%s", dir);
    for (char *slash = path + strlen(path); slash > path;) {
        if (stat(path, &st) == 0) {
            mode_t x = st.st_uid == uid   ? S_IXUSR
                       : st.st_gid == gid ? S_IXGRP
                                          : S_IXOTH;
            if (!(st.st_mode & x))
                return hv_err(err, err_size, -EACCES,
                              "%s (mode %03o) keeps the QEMU user out of the "
                              "state folder; allow it to pass (chmod o+x)",
                              path, (unsigned)(st.st_mode & 0777));
        }
        slash = strrchr(path, '/');
        if (slash)
            *slash = '\0';
    }
    return 0;
}

int hv_host_open(struct hv_host **out, const struct hv_host_config *cfg,
                 char *err, size_t err_size)
{
    struct hv_host *h;
    char path[PATH_MAX];
    const char *dir = cfg->state_dir;

    if (!dir || dir[0] != '/' || strchr(dir, ','))
        return hv_err(err, err_size, -EINVAL,
                      "state folder must be an absolute path without commas");
    if (strlen(dir) > HV_STATE_DIR_MAX)
        return hv_err(err, err_size, -ENAMETOOLONG,
                      "state folder %s: longer than %d characters (unix "
                      "socket paths must fit)",
                      dir, HV_STATE_DIR_MAX);
    h = calloc(1, sizeof(*h));
    if (!h)
        return hv_err(err, err_size, -ENOMEM, "out of memory");
    snprintf(h->state_dir, sizeof(h->state_dir), "%s", dir);
    snprintf(h->qemu, sizeof(h->qemu), "%s",
             cfg->qemu ? cfg->qemu : "qemu-system-x86_64");
    snprintf(h->probe_kernel, sizeof(h->probe_kernel), "%s",
             cfg->probe_kernel ? cfg->probe_kernel : "");
    h->probe_timeout_ms =
        cfg->probe_timeout_ms > 0 ? cfg->probe_timeout_ms : 8000;
    h->quiet = cfg->quiet;
    if (cfg->qemu_user) {
        if (strlen(cfg->qemu_user) >= sizeof(h->qemu_user) ||
            !getpwnam(cfg->qemu_user)) {
            free(h);
            return hv_err(err, err_size, -EINVAL, "QEMU user %s: no such user",
                          cfg->qemu_user);
        }
        /* QEMU's -runas needs root; the broker as a dedicated user runs
         * its QEMUs as itself. */
        if (geteuid() != 0) {
            free(h);
            return hv_err(err, err_size, -EPERM,
                          "QEMU user %s: switching users needs root (leave "
                          "the QEMU user empty: QEMU runs as this user)",
                          cfg->qemu_user);
        }
        snprintf(h->qemu_user, sizeof(h->qemu_user), "%s", cfg->qemu_user);
    }
    if (h->qemu_user[0]) {
        struct passwd *pw = getpwnam(h->qemu_user);
        char parent[PATH_MAX];
        int rc;
        /* The state folder itself is made traverse-only below. */
        snprintf(parent, sizeof(parent), "%s", h->state_dir);
        *strrchr(parent, '/') = '\0';
        rc = hv_reachable_by(parent[0] ? parent : "/", pw->pw_uid, pw->pw_gid,
                             err, err_size);
        if (rc < 0) {
            free(h);
            return rc;
        }
    }
    /* The state and run folders are traverse-only for others, so that an
     * unprivileged QEMU reaches its own run folder (0700, its own) and
     * nothing else; VM folders stay private. */
    for (int i = 0; i < 3; i++) {
        static const char *const sub[] = {"", "/vms", "/run"};
        static const mode_t modes[] = {0711, 0700, 0711};
        int rc;
        snprintf(path, sizeof(path), "%s%s", h->state_dir, sub[i]);
        rc = hv_mkdir(path, modes[i]);
        if (rc == 0 && chmod(path, modes[i]) < 0)
            rc = -errno;
        if (rc < 0) {
            free(h);
            return hv_err(err, err_size, rc, "%s: %s", path, strerror(-rc));
        }
    }
    *out = h;
    return 0;
}

void hv_host_close(struct hv_host *h)
{
    free(h);
}

const char *hv_host_state_dir(const struct hv_host *h)
{
    return h->state_dir;
}

/* --- specs on disk ------------------------------------------------------- */

static int hv_spec_load(struct hv_host *h, const char *id, struct hv_spec *s,
                        char *err, size_t err_size)
{
    char path[PATH_MAX], why[256];
    json_error_t jerr;
    struct stat st;
    json_t *j;
    int rc;

    if (!hv_id_valid(id))
        return hv_err(err, err_size, -EINVAL, "%.64s: not a valid VM id", id);
    hv_vm_file(h, "vms", id, "vm.json", path, sizeof(path));
    if (stat(path, &st) < 0)
        return hv_err(err, err_size, errno == ENOENT ? -ENOENT : -errno,
                      "%s: no such VM", id);
    if (st.st_size > HV_SPEC_FILE_MAX)
        return hv_err(err, err_size, -EINVAL, "%s: vm.json too large", id);
    j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return hv_err(err, err_size, -EINVAL, "%s: vm.json: %s", id, jerr.text);
    rc = hv_spec_from_json(s, j, why, sizeof(why));
    json_decref(j);
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: vm.json: %s", id, why);
    return 0;
}

int hv_json_save(const char *path, json_t *j)
{
    char tmp[PATH_MAX + 8], *text;
    int fd, rc = 0;
    size_t len;

    if (!j)
        return -ENOMEM;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    /* One write: json_dumpfd() writes token by token, hundreds of system
     * calls on an instant clone's path. */
    text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    if (!text)
        return -ENOMEM;
    len = strlen(text);
    errno = 0;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
        rc = errno ? -errno : -EIO;
    if (fd >= 0)
        close(fd);
    free(text);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* Writes vm.json atomically. */
static int hv_spec_save(struct hv_host *h, const struct hv_spec *s)
{
    char path[PATH_MAX];

    hv_vm_file(h, "vms", s->id, "vm.json", path, sizeof(path));
    return hv_json_save(path, hv_spec_to_json(s));
}

/* --- the running QEMU ---------------------------------------------------- */

/* QEMU's pid if it runs for this VM, 0 if not. "Ours" means alive and
 * started with this VM's run folder in its arguments, so a recycled pid in
 * a stale pidfile is never taken for the VM. */
static pid_t hv_vm_pid(const struct hv_host *h, const char *id)
{
    char path[PATH_MAX], run[PATH_MAX];
    pid_t pid;

    hv_vm_file(h, "run", id, "qemu.pid", path, sizeof(path));
    pid = hv_proc_read_pidfile(path);
    if (pid <= 0 || !hv_proc_alive(pid))
        return 0;
    hv_vm_file(h, "run", id, "qmp.sock", run, sizeof(run));
    return hv_proc_cmdline_has(pid, run) ? pid : 0;
}

static int hv_vm_qmp_open(struct hv_host *h, const char *id, const char *sock,
                          struct hv_qmp **q, char *err, size_t err_size)
{
    char path[PATH_MAX];
    int rc;

    hv_vm_file(h, "run", id, sock, path, sizeof(path));
    rc = hv_qmp_connect(q, path, NULL, NULL);
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: QMP %s: %s", id, sock,
                      strerror(-rc));
    rc = hv_qmp_wait_ready(*q, HV_QMP_CONNECT_TIMEOUT_MS);
    if (rc < 0) {
        hv_qmp_close(*q);
        *q = NULL;
        return hv_err(err, err_size, rc, "%s: QMP %s handshake: %s", id, sock,
                      strerror(-rc));
    }
    return 0;
}

int hv_vm_qmp(struct hv_host *h, const char *id, const char *command,
              json_t *args, int timeout_ms, json_t **result, char *err,
              size_t err_size)
{
    struct hv_qmp *q;
    char why[512];
    int rc;

    if (!hv_id_valid(id) || !hv_vm_pid(h, id)) {
        json_decref(args);
        return hv_err(err, err_size, -ENOTCONN, "%.64s: not running", id);
    }
    rc = hv_vm_qmp_open(h, id, "qmp.sock", &q, err, err_size);
    if (rc < 0) {
        json_decref(args);
        return rc;
    }
    rc = hv_qmp_execute_sync(q, command, args, timeout_ms, result, why,
                             sizeof(why));
    hv_qmp_close(q);
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: %s: %s", id, command, why);
    return 0;
}

int hv_wait_gone(pid_t pid, int timeout_ms)
{
    uint64_t deadline = dp_time_now_ms() + (uint64_t)timeout_ms;
    while (hv_proc_alive(pid)) {
        if (dp_time_now_ms() >= deadline)
            return 0;
        usleep(20000);
    }
    return 1;
}

/* Ends QEMU for sure: quit over QMP, then SIGKILL. Removes the run folder.
 * Returns 1 if SIGKILL was needed, 0 otherwise. */
static int hv_vm_kill(struct hv_host *h, const char *id, pid_t pid)
{
    char run[PATH_MAX];
    int forced = 0;

    if (pid > 0) {
        hv_vm_qmp(h, id, "quit", NULL, 1000, NULL, NULL, 0);
        if (!hv_wait_gone(pid, HV_QUIT_GRACE_MS)) {
            kill(pid, SIGKILL);
            hv_wait_gone(pid, HV_QUIT_GRACE_MS);
            forced = 1;
        }
    }
    hv_vm_file(h, "run", id, NULL, run, sizeof(run));
    hv_remove_flat_dir(run);
    return forced;
}

/* --- create, refresh, delete -------------------------------------------- */

/* What a VM's overlay is based on: the golden image, or for a clone the
 * template's frozen disk. */
static int hv_vm_backing(const struct hv_host *h, const struct hv_spec *s,
                         char *buf, size_t size)
{
    int n;

    if (s->template_id[0])
        return hv_tmpl_path(h, s->template_id, "disk.qcow2", buf, size);
    n = snprintf(buf, size, "%s", s->golden);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* A fresh overlay at disk: for a clone a copy of its template's blank
 * overlay (templates made before blank ones existed have none: qemu-img
 * then makes it), else a new one from qemu-img. */
static int hv_vm_new_overlay(const struct hv_host *h, const struct hv_spec *s,
                             const char *backing, const char *disk, char *why,
                             size_t why_size)
{
    char blank[PATH_MAX];

    if (s->template_id[0] &&
        hv_tmpl_path(h, s->template_id, HV_TEMPLATE_BLANK, blank,
                     sizeof(blank)) == 0 &&
        access(blank, R_OK) == 0)
        return hv_image_copy_overlay(blank, disk, why, why_size);
    return hv_image_create_overlay(backing, disk, why, why_size);
}

int hv_vm_create(struct hv_host *h, const struct hv_spec *spec, char *err,
                 size_t err_size)
{
    char dir[PATH_MAX], disk[PATH_MAX], backing[PATH_MAX], why[1024];
    int rc = hv_spec_validate(spec, why, sizeof(why));

    if (rc < 0)
        return hv_err(err, err_size, rc, "bad spec: %s", why);
    rc = hv_vm_backing(h, spec, backing, sizeof(backing));
    if (rc == 0)
        rc = hv_image_check_golden(backing, why, sizeof(why));
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: %s", spec->id, why);
    hv_vm_file(h, "vms", spec->id, NULL, dir, sizeof(dir));
    if (mkdir(dir, 0700) < 0)
        return hv_err(err, err_size, errno == EEXIST ? -EEXIST : -errno,
                      "%s: %s", spec->id,
                      errno == EEXIST ? "VM exists" : strerror(errno));
    /* The disk first, vm.json last: a crash in between leaves a folder
     * without vm.json, which adoption removes. */
    hv_vm_file(h, "vms", spec->id, "disk.qcow2", disk, sizeof(disk));
    why[0] = '\0';
    rc = hv_vm_new_overlay(h, spec, backing, disk, why, sizeof(why));
    if (rc == 0)
        rc = hv_spec_save(h, spec);
    if (rc < 0) {
        hv_remove_flat_dir(dir);
        return hv_err(err, err_size, rc, "%s: %s", spec->id,
                      why[0] ? why : strerror(-rc));
    }
    return 0;
}

int hv_vm_refresh(struct hv_host *h, const char *id, char *err, size_t err_size)
{
    char disk[PATH_MAX], backing[PATH_MAX], why[1024];
    struct hv_spec s;
    int rc = hv_spec_load(h, id, &s, err, err_size);

    if (rc < 0)
        return rc;
    if (hv_vm_pid(h, id))
        return hv_err(err, err_size, -EBUSY,
                      "%s: running; stop it before refreshing", id);
    hv_vm_file(h, "vms", id, "disk.qcow2", disk, sizeof(disk));
    rc = hv_vm_backing(h, &s, backing, sizeof(backing));
    if (rc == 0)
        rc = hv_vm_new_overlay(h, &s, backing, disk, why, sizeof(why));
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: %s", id, why);
    return 0;
}

int hv_vm_delete(struct hv_host *h, const char *id, char *err, size_t err_size)
{
    char dir[PATH_MAX], spec[PATH_MAX];
    struct hv_spec s;
    int rc = hv_spec_load(h, id, &s, err, err_size);

    if (rc < 0)
        return rc;
    hv_vm_kill(h, id, hv_vm_pid(h, id));
    /* vm.json first: from then on the VM does not exist, and a crash
     * leaves only an orphan disk that adoption removes. */
    hv_vm_file(h, "vms", id, "vm.json", spec, sizeof(spec));
    if (unlink(spec) < 0)
        return hv_err(err, err_size, -errno, "%s: %s", spec, strerror(errno));
    hv_vm_file(h, "vms", id, NULL, dir, sizeof(dir));
    rc = hv_remove_flat_dir(dir);
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: %s", dir, strerror(-rc));
    return 0;
}

/* --- start ---------------------------------------------------------------- */

int hv_give_to_qemu_user(const struct hv_host *h, const char *path)
{
    struct passwd *pw;
    if (!h->qemu_user[0])
        return 0;
    pw = getpwnam(h->qemu_user);
    if (!pw)
        return -EINVAL;
    return chown(path, pw->pw_uid, pw->pw_gid) < 0 ? -errno : 0;
}

/* Makes an empty run folder, removing what a dead QEMU left. It and the
 * disk belong to QEMU's user: it writes screendumps there after dropping
 * privileges. */
static int hv_run_dir_fresh(struct hv_host *h, const char *id, char *run,
                            size_t size)
{
    char disk[PATH_MAX];
    int rc;

    hv_vm_file(h, "run", id, NULL, run, size);
    hv_remove_flat_dir(run);
    if (mkdir(run, 0700) < 0)
        return -errno;
    hv_vm_file(h, "vms", id, "disk.qcow2", disk, sizeof(disk));
    rc = hv_give_to_qemu_user(h, run);
    if (rc == 0)
        rc = hv_give_to_qemu_user(h, disk);
    return rc;
}

/*
 * glibc's malloc on transparent huge pages (madvise) for QEMUs restoring a
 * template: most of a clone's start-up is QEMU's own, and much of that is
 * first-touch page faults on its heap, costly under nested virtualisation.
 * Measured under TCG on a 2-core nested host: QEMU's CPU time to a ready
 * QMP 155 -> 98 ms, RSS +2 MiB.
 */
#define HV_CLONE_GLIBC_TUNABLES "glibc.malloc.hugetlb=1"

/* Starts QEMU for spec s, detached; its output goes to RUN/qemu.log. */
static int hv_vm_launch(struct hv_host *h, const struct hv_spec *s,
                        enum hv_accel accel, const char *run,
                        const struct hv_qemu_mem *x, int keep_fd, pid_t *pid,
                        char *err, size_t err_size)
{
    char disk[PATH_MAX], log[PATH_MAX];
    struct hv_qemu_setup paths = {run, disk,
                                  h->qemu_user[0] ? h->qemu_user : NULL};
    struct hv_argv a;
    int rc;

    hv_vm_file(h, "vms", s->id, "disk.qcow2", disk, sizeof(disk));
    if (access(disk, R_OK | W_OK) < 0)
        return hv_err(err, err_size, -ENOENT,
                      "%s: disk %s missing; refresh the VM", s->id, disk);
    if (x && x->incoming_defer) {
        /* QEMU opens the disks of an incoming VM read-only and reopens
         * them by name when it resumes - after dropping to its own user,
         * which cannot pass the private vms/ folder. It gets the disk
         * through a hard link in its run folder instead. */
        char link_path[PATH_MAX];
        hv_vm_file(h, "run", s->id, "disk.qcow2", link_path, sizeof(link_path));
        if (link(disk, link_path) < 0)
            return hv_err(err, err_size, -errno, "%s: %s", link_path,
                          strerror(errno));
        snprintf(disk, sizeof(disk), "%s", link_path);
    }
    hv_vm_file(h, "run", s->id, "qemu.log", log, sizeof(log));
    hv_argv_init(&a);
    rc = hv_qemu_argv_mem(&a, h->qemu, s, accel, &paths, x);
    if (rc == 0)
        rc = hv_proc_spawn_detached_fd(
            a.v, log, keep_fd,
            x && x->incoming_defer ? HV_CLONE_GLIBC_TUNABLES : NULL, pid);
    hv_argv_free(&a);
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: cannot start %s: %s", s->id,
                      h->qemu, strerror(-rc));
    return 0;
}

/* QEMU's own last words (the end of qemu.log) as the error. */
int hv_vm_exited(struct hv_host *h, const char *id, char *err, size_t err_size)
{
    char log[PATH_MAX], tail[1024];
    hv_vm_file(h, "run", id, "qemu.log", log, sizeof(log));
    hv_proc_log_tail(log, tail, sizeof(tail));
    return hv_err(err, err_size, -EIO, "%s: QEMU exited: %s", id,
                  tail[0] ? tail : "(no message)");
}

/* Waits until QEMU answers on qmp.sock. If it exits first - even after
 * opening the socket, as with a kernel it cannot load - its own words are
 * the error. */
static int hv_vm_wait_qmp(struct hv_host *h, const char *id, pid_t pid,
                          char *err, size_t err_size)
{
    uint64_t deadline = dp_time_now_ms() + HV_QEMU_START_TIMEOUT_MS;
    char path[PATH_MAX];
    struct hv_qmp *q;
    int rc;

    hv_vm_file(h, "run", id, "qmp.sock", path, sizeof(path));
    for (;;) {
        if (!hv_proc_alive(pid))
            return hv_vm_exited(h, id, err, err_size);
        if (dp_time_now_ms() >= deadline)
            return hv_err(err, err_size, -ETIMEDOUT,
                          "%s: QEMU did not open QMP within %d s", id,
                          HV_QEMU_START_TIMEOUT_MS / 1000);
        rc = hv_qmp_connect(&q, path, NULL, NULL);
        if (rc == -ENOENT || rc == -ECONNREFUSED) {
            usleep(10000); /* not listening yet */
            continue;
        }
        if (rc == 0) {
            rc = hv_qmp_wait_ready(q, HV_QMP_CONNECT_TIMEOUT_MS);
            hv_qmp_close(q);
        }
        if (rc == 0)
            return 0;
        if (!hv_wait_gone(pid, 2000))
            return hv_err(err, err_size, rc, "%s: QMP: %s", id, strerror(-rc));
        return hv_vm_exited(h, id, err, err_size);
    }
}

int hv_vm_start(struct hv_host *h, const char *id, char *err, size_t err_size)
{
    char run[PATH_MAX], why[256];
    struct hv_spec s;
    pid_t pid = 0;
    int rc = hv_spec_load(h, id, &s, err, err_size), accel;

    if (rc < 0)
        return rc;
    if (hv_vm_pid(h, id))
        return hv_err(err, err_size, -EALREADY, "%s: already running", id);
    accel = hv_host_accel(h, s.accel, s.kernel, why, sizeof(why));
    if (accel < 0)
        return hv_err(err, err_size, accel, "%s: %s", id, why);
    rc = hv_run_dir_fresh(h, id, run, sizeof(run));
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: %s", run, strerror(-rc));
    rc = hv_vm_launch(h, &s, (enum hv_accel)accel, run, NULL, -1, &pid, err,
                      err_size);
    if (rc == 0)
        rc = hv_vm_wait_qmp(h, id, pid, err, err_size);
    if (rc < 0) {
        hv_vm_abort(h, id, pid);
        return rc;
    }
    return 0;
}

int hv_vm_spawn(struct hv_host *h, const struct hv_spec *s, enum hv_accel accel,
                const struct hv_qemu_mem *x, int keep_fd, pid_t *pid, char *err,
                size_t err_size)
{
    char run[PATH_MAX];
    int rc;

    *pid = 0;
    if (hv_vm_pid(h, s->id))
        return hv_err(err, err_size, -EALREADY, "%s: already running", s->id);
    rc = hv_run_dir_fresh(h, s->id, run, sizeof(run));
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: %s", run, strerror(-rc));
    rc = hv_vm_launch(h, s, accel, run, x, keep_fd, pid, err, err_size);
    if (rc < 0)
        hv_remove_flat_dir(run);
    return rc;
}

void hv_vm_abort(struct hv_host *h, const char *id, pid_t pid)
{
    char run[PATH_MAX];

    /* Leave nothing behind: no process, no run folder. */
    if (pid > 0) {
        kill(pid, SIGKILL);
        hv_wait_gone(pid, HV_QUIT_GRACE_MS);
    }
    hv_vm_file(h, "run", id, NULL, run, sizeof(run));
    hv_remove_flat_dir(run);
}

/* --- power ---------------------------------------------------------------- */

/* QEMU's pid for an existing, running VM; else a negative errno (-ENOENT:
 * no such VM, -ENOTCONN: not running) with err set. */
static pid_t hv_vm_running(struct hv_host *h, const char *id, char *err,
                           size_t err_size)
{
    struct hv_spec s;
    int rc = hv_spec_load(h, id, &s, err, err_size);
    pid_t pid;

    if (rc < 0)
        return rc;
    pid = hv_vm_pid(h, id);
    if (!pid)
        return hv_err(err, err_size, -ENOTCONN, "%s: not running", id);
    return pid;
}

int hv_vm_shutdown(struct hv_host *h, const char *id, int timeout_ms, char *err,
                   size_t err_size)
{
    pid_t pid = hv_vm_running(h, id, err, err_size);
    char run[PATH_MAX];

    if (pid < 0)
        return pid;
    if (hv_vm_qmp(h, id, "system_powerdown", NULL, 0, NULL, err, err_size) ==
            0 &&
        hv_wait_gone(pid, timeout_ms)) {
        hv_vm_file(h, "run", id, NULL, run, sizeof(run));
        hv_remove_flat_dir(run);
        return 0;
    }
    hv_vm_kill(h, id, pid);
    return 1;
}

int hv_vm_poweroff(struct hv_host *h, const char *id, char *err,
                   size_t err_size)
{
    pid_t pid = hv_vm_running(h, id, err, err_size);

    if (pid < 0)
        return pid;
    hv_vm_kill(h, id, pid);
    return 0;
}

static int hv_vm_simple(struct hv_host *h, const char *id, const char *cmd,
                        char *err, size_t err_size)
{
    struct hv_spec s;
    int rc = hv_spec_load(h, id, &s, err, err_size);
    return rc < 0 ? rc : hv_vm_qmp(h, id, cmd, NULL, 0, NULL, err, err_size);
}

int hv_vm_reset(struct hv_host *h, const char *id, char *err, size_t err_size)
{
    return hv_vm_simple(h, id, "system_reset", err, err_size);
}

int hv_vm_pause(struct hv_host *h, const char *id, char *err, size_t err_size)
{
    return hv_vm_simple(h, id, "stop", err, err_size);
}

int hv_vm_resume(struct hv_host *h, const char *id, char *err, size_t err_size)
{
    return hv_vm_simple(h, id, "cont", err, err_size);
}

/* --- inspection ----------------------------------------------------------- */

int hv_vm_get_spec(struct hv_host *h, const char *id, struct hv_spec *spec,
                   char *err, size_t err_size)
{
    return hv_spec_load(h, id, spec, err, err_size);
}

/* Which accelerator the running QEMU uses, from its command line. */
static const char *hv_vm_accel_of(pid_t pid)
{
    return hv_proc_cmdline_has(pid, "kvm") ? "kvm" : "tcg";
}

int hv_vm_status(struct hv_host *h, const char *id, struct hv_vm_status *st,
                 char *err, size_t err_size)
{
    struct hv_spec s;
    struct hv_proc_usage u;
    json_t *r = NULL;
    int rc = hv_spec_load(h, id, &s, err, err_size);

    if (rc < 0)
        return rc;
    memset(st, 0, sizeof(*st));
    snprintf(st->id, sizeof(st->id), "%s", id);
    snprintf(st->state, sizeof(st->state), "stopped");
    st->pid = hv_vm_pid(h, id);
    if (!st->pid)
        return 0;
    snprintf(st->accel, sizeof(st->accel), "%s", hv_vm_accel_of(st->pid));
    if (hv_proc_usage(st->pid, &u) == 0) {
        st->cpu_ms = u.cpu_ms;
        st->rss_bytes = u.rss_bytes;
    }
    rc = hv_vm_qmp(h, id, "query-status", NULL, 0, &r, err, err_size);
    if (rc < 0) {
        snprintf(st->state, sizeof(st->state), "unresponsive");
        return 0;
    }
    snprintf(st->state, sizeof(st->state), "%s",
             json_string_value(json_object_get(r, "status")) ?: "unknown");
    json_decref(r);
    return 0;
}

int hv_vm_read_usage(struct hv_host *h, const char *id, struct hv_vm_usage *u)
{
    struct hv_proc_usage pu;

    memset(u, 0, sizeof(*u));
    if (!hv_id_valid(id))
        return -EINVAL;
    u->pid = hv_vm_pid(h, id);
    if (!u->pid || hv_proc_usage(u->pid, &pu) < 0) {
        u->pid = 0;
        return -ESRCH;
    }
    u->cpu_ms = pu.cpu_ms;
    u->rss_bytes = pu.rss_bytes;
    return 0;
}

int hv_vm_read_memory(struct hv_host *h, const char *id, struct hv_vm_memory *m)
{
    struct hv_proc_memory pm;

    memset(m, 0, sizeof(*m));
    if (!hv_id_valid(id))
        return -EINVAL;
    m->pid = hv_vm_pid(h, id);
    if (!m->pid || hv_proc_memory(m->pid, &pm) < 0) {
        m->pid = 0;
        return -ESRCH;
    }
    m->rss_bytes = pm.rss;
    m->pss_bytes = pm.pss;
    m->shared_bytes = pm.shared;
    m->private_bytes = pm.private_;
    m->anonymous_bytes = pm.anonymous;
    return 0;
}

static int hv_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int hv_vm_list(struct hv_host *h, char ***ids, size_t *count)
{
    char path[PATH_MAX];
    struct dirent *e;
    char **v = NULL;
    size_t n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "%s/vms", h->state_dir);
    d = opendir(path);
    if (!d)
        return -errno;
    while ((e = readdir(d))) {
        char spec[PATH_MAX];
        char **grown;
        if (!hv_id_valid(e->d_name))
            continue;
        hv_vm_file(h, "vms", e->d_name, "vm.json", spec, sizeof(spec));
        if (access(spec, F_OK) < 0)
            continue;
        grown = realloc(v, (n + 1) * sizeof(*v));
        if (!grown || !(grown[n] = strdup(e->d_name))) {
            closedir(d);
            hv_vm_list_free(grown ? grown : v, n);
            return -ENOMEM;
        }
        v = grown;
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof(*v), hv_cmp_str);
    *ids = v;
    *count = n;
    return 0;
}

void hv_vm_list_free(char **ids, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(ids[i]);
    free(ids);
}

int hv_vm_screenshot(struct hv_host *h, const char *id, const char *path,
                     char *err, size_t err_size)
{
    char shot[PATH_MAX];
    int rc;

    if (!hv_id_valid(id))
        return hv_err(err, err_size, -EINVAL, "%.64s: not a valid VM id", id);
    /* QEMU writes the file itself: into the run folder it owns, then we
     * copy it where the caller wants it. */
    hv_vm_file(h, "run", id, "screendump.png", shot, sizeof(shot));
    rc = hv_vm_qmp(h, id, "screendump",
                   json_pack("{s:s, s:s}", "filename", shot, "format", "png"),
                   10000, NULL, err, err_size);
    if (rc < 0)
        return rc;
    rc = hv_image_copy_file(shot, path, 0644);
    unlink(shot);
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: %s", path, strerror(-rc));
    return 0;
}

int hv_vm_watch(struct hv_host *h, const char *id,
                const struct hv_qmp_callbacks *cb, void *arg,
                struct hv_qmp **out, char *err, size_t err_size)
{
    char path[PATH_MAX];
    int rc;

    if (!hv_id_valid(id) || !hv_vm_pid(h, id))
        return hv_err(err, err_size, -ENOTCONN, "%.64s: not running", id);
    hv_vm_file(h, "run", id, "events.sock", path, sizeof(path));
    rc = hv_qmp_connect(out, path, cb, arg);
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: events: %s", id, strerror(-rc));
    return 0;
}

/* --- adoption ---------------------------------------------------------------
 */

/* One run folder: our live QEMU (adopt it, or stop it if its VM is gone),
 * or leftovers of a dead one (remove them). Returns 1 if adopted. */
static int hv_adopt_run(struct hv_host *h, const char *id, hv_adopt_fn fn,
                        void *arg)
{
    char run[PATH_MAX], spec[PATH_MAX], why[512];
    pid_t pid = hv_vm_pid(h, id);
    json_t *r = NULL;

    hv_vm_file(h, "run", id, NULL, run, sizeof(run));
    hv_vm_file(h, "vms", id, "vm.json", spec, sizeof(spec));
    if (!pid) {
        hv_remove_flat_dir(run);
        fn(arg, HV_ADOPT_STALE_RUN, id, "no live QEMU; run folder removed");
        return 0;
    }
    if (access(spec, F_OK) < 0) {
        hv_vm_kill(h, id, pid);
        fn(arg, HV_ADOPT_ORPHAN_VM, id, "QEMU ran for a deleted VM; stopped");
        return 0;
    }
    if (hv_vm_qmp(h, id, "query-status", NULL, 0, &r, why, sizeof(why)) < 0) {
        fn(arg, HV_ADOPT_RUNNING, id, why);
        return 1;
    }
    snprintf(why, sizeof(why), "pid %d, %s", (int)pid,
             json_string_value(json_object_get(r, "status")) ?: "unknown");
    json_decref(r);
    fn(arg, HV_ADOPT_RUNNING, id, why);
    return 1;
}

/* One VM folder: an interrupted create or delete leaves no vm.json. */
static void hv_adopt_vm_dir(struct hv_host *h, const char *id, hv_adopt_fn fn,
                            void *arg)
{
    char dir[PATH_MAX], file[PATH_MAX];

    hv_vm_file(h, "vms", id, "disk.qcow2", file, sizeof(file));
    hv_image_clean_tmp(file);
    hv_vm_file(h, "vms", id, "vm.json", file, sizeof(file));
    if (access(file, F_OK) == 0)
        return;
    hv_vm_file(h, "vms", id, NULL, dir, sizeof(dir));
    hv_remove_flat_dir(dir);
    fn(arg, HV_ADOPT_ORPHAN_DISK, id, "VM folder without vm.json removed");
}

static void hv_adopt_nothing(void *arg, enum hv_adopt_kind kind, const char *id,
                             const char *detail)
{
    (void)arg, (void)kind, (void)id, (void)detail;
}

/* Calls each(h, name) for every valid VM id in STATE/area. */
static int hv_scan(struct hv_host *h, const char *area,
                   int (*each)(struct hv_host *, const char *, hv_adopt_fn,
                               void *),
                   hv_adopt_fn fn, void *arg)
{
    char path[PATH_MAX];
    struct dirent *e;
    int found = 0;
    DIR *d;

    snprintf(path, sizeof(path), "%s/%s", h->state_dir, area);
    d = opendir(path);
    if (!d)
        return -errno;
    while ((e = readdir(d)))
        if (hv_id_valid(e->d_name))
            found += each(h, e->d_name, fn, arg);
    closedir(d);
    return found;
}

static int hv_adopt_vm_dir_each(struct hv_host *h, const char *id,
                                hv_adopt_fn fn, void *arg)
{
    hv_adopt_vm_dir(h, id, fn, arg);
    return 0;
}

int hv_host_adopt(struct hv_host *h, hv_adopt_fn fn, void *arg)
{
    int running;

    if (!fn)
        fn = hv_adopt_nothing;
    /* VM folders first: a run folder whose vm.json is gone then counts as
     * an orphan VM. */
    if (hv_scan(h, "vms", hv_adopt_vm_dir_each, fn, arg) < 0)
        return -errno;
    running = hv_scan(h, "run", hv_adopt_run, fn, arg);
    return running;
}
