/*
 * hv_template.c - templates and instant clones (see hv_template.h).
 *
 * QMP sequences:
 *   template:  (boot, agent `ready`) stop; migrate-set-capabilities
 *              x-ignore-shared; migrate unix:TDIR/mig.sock (we listen and
 *              copy the stream into TDIR/state); query-migrate until
 *              completed; quit.
 *   clone:     (QEMU with -incoming defer and TDIR/state open as its fd 3)
 *              migrate-set-capabilities x-ignore-shared; migrate-incoming
 *              fd:3 (QEMU reads the file itself); query-status until the
 *              load is done ("paused": the template was stopped); cont.
 * No exec: migration URIs: they would run a shell.
 */
#include "hv_template.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dp_time.h"
#include "dp_token.h"
#include "hv_agent.h"
#include "hv_argv.h"
#include "hv_image.h"
#include "hv_internal.h"
#include "hv_proc.h"

#define HV_TMPL_FORMAT        1
#define HV_TMPL_JSON_MAX      (256 * 1024)
#define HV_TMPL_QMP_WAIT_MS   30000  /* exec until QMP answers */
#define HV_TMPL_MIGRATE_MS    120000 /* saving or loading the state */
#define HV_TMPL_LOCK_WAIT_MS  300000 /* another process making the template */
#define HV_TMPL_QUIT_GRACE_MS 3000

/* --- paths ------------------------------------------------------------- */

int hv_tmpl_path(const struct hv_host *h, const char *id, const char *file,
                 char *buf, size_t size)
{
    int n;
    if (!id)
        n = snprintf(buf, size, "%s/templates", h->state_dir);
    else if (!file)
        n = snprintf(buf, size, "%s/templates/%s", h->state_dir, id);
    else
        n = snprintf(buf, size, "%s/templates/%s/%s", h->state_dir, id, file);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static double hv_now_ms(void)
{
    return (double)dp_time_now_us() / 1000.0;
}

/* --- file identity ------------------------------------------------------ */

/* What tells one version of a file from the next: a new file renamed over
 * the old one has a new inode; an edit in place a new mtime and size. */
struct hv_ident {
    char path[HV_PATH_MAX];
    uint64_t size, ino, dev;
    int64_t mtime_ns;
};

static int hv_ident_of(const char *path, struct hv_ident *id)
{
    struct stat st;

    memset(id, 0, sizeof(*id));
    if (!path[0])
        return 0; /* an optional file that is not there */
    snprintf(id->path, sizeof(id->path), "%s", path);
    if (stat(path, &st) < 0)
        return -errno;
    id->size = (uint64_t)st.st_size;
    id->ino = (uint64_t)st.st_ino;
    id->dev = (uint64_t)st.st_dev;
    id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return 0;
}

static int hv_ident_eq(const struct hv_ident *a, const struct hv_ident *b)
{
    return strcmp(a->path, b->path) == 0 && a->size == b->size &&
           a->ino == b->ino && a->dev == b->dev && a->mtime_ns == b->mtime_ns;
}

static json_t *hv_ident_json(const struct hv_ident *id)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:I}", "path", id->path, "size",
                     (json_int_t)id->size, "ino", (json_int_t)id->ino, "dev",
                     (json_int_t)id->dev, "mtime_ns", (json_int_t)id->mtime_ns);
}

static int hv_ident_from_json(const json_t *j, struct hv_ident *id)
{
    const char *path = json_string_value(json_object_get(j, "path"));
    json_t *v[4] = {json_object_get(j, "size"), json_object_get(j, "ino"),
                    json_object_get(j, "dev"), json_object_get(j, "mtime_ns")};

    memset(id, 0, sizeof(*id));
    if (!path || strlen(path) >= sizeof(id->path))
        return -EINVAL;
    for (int i = 0; i < 4; i++)
        if (!json_is_integer(v[i]))
            return -EINVAL;
    snprintf(id->path, sizeof(id->path), "%s", path);
    id->size = (uint64_t)json_integer_value(v[0]);
    id->ino = (uint64_t)json_integer_value(v[1]);
    id->dev = (uint64_t)json_integer_value(v[2]);
    id->mtime_ns = (int64_t)json_integer_value(v[3]);
    return 0;
}

/* The QEMU binary's path: as configured if it has a slash, else PATH's. */
static int hv_qemu_binary(const struct hv_host *h, char *buf, size_t size)
{
    const char *path = getenv("PATH");

    if (strchr(h->qemu, '/')) {
        snprintf(buf, size, "%s", h->qemu);
        return access(buf, X_OK) == 0 ? 0 : -ENOENT;
    }
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        size_t n = strcspn(p, ":");
        if (n &&
            (size_t)snprintf(buf, size, "%.*s/%s", (int)n, p, h->qemu) < size &&
            access(buf, X_OK) == 0)
            return 0;
        p += n + (p[n] == ':');
    }
    return -ENOENT;
}

/* The files a template depends on, in a fixed order. */
enum { HV_F_GOLDEN, HV_F_KERNEL, HV_F_INITRD, HV_F_QEMU, HV_F_COUNT };
static const char *const hv_file_names[HV_F_COUNT] = {"golden", "kernel",
                                                      "initrd", "qemu"};

static int hv_idents_now(const struct hv_host *h, const struct hv_spec *s,
                         struct hv_ident f[HV_F_COUNT], char *err,
                         size_t err_size)
{
    char qemu[HV_PATH_MAX];
    const char *paths[HV_F_COUNT] = {s->golden, s->kernel, s->initrd, qemu};
    int rc = hv_qemu_binary(h, qemu, sizeof(qemu));

    if (rc < 0)
        return hv_err(err, err_size, rc, "QEMU binary %s not found", h->qemu);
    for (int i = 0; i < HV_F_COUNT; i++) {
        rc = hv_ident_of(paths[i], &f[i]);
        if (rc < 0)
            return hv_err(err, err_size, rc, "%s %s: %s", hv_file_names[i],
                          paths[i], strerror(-rc));
    }
    return 0;
}

/* --- shape and id -------------------------------------------------------- */

/* FNV-1a, 64 bits: enough to name templates (tmpl.json holds the full
 * shape, compared on use, so a collision cannot mix two shapes up). */
static void hv_fnv(uint64_t *hash, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        *hash = (*hash ^ p[i]) * 1099511628211ull;
}

static void hv_fnv_str(uint64_t *hash, const char *s)
{
    hv_fnv(hash, s, strlen(s) + 1); /* with the NUL: "ab","c" != "a","bc" */
}

/* Checks a shape and resolves its accelerator; fills *s, a copy. */
static int hv_shape_prepare(struct hv_host *h, const struct hv_spec *in,
                            struct hv_spec *s, char *err, size_t err_size)
{
    char why[512];
    int accel, rc;

    *s = *in;
    if (!hv_id_valid(s->id))
        snprintf(s->id, sizeof(s->id), "template");
    s->template_id[0] = '\0';
    rc = hv_spec_validate(s, why, sizeof(why));
    if (rc < 0)
        return hv_err(err, err_size, rc, "bad shape: %s", why);
    if (s->net == HV_NET_TAP || s->net == HV_NET_BRIDGE)
        return hv_err(err, err_size, -ENOTSUP,
                      "templates cannot have a %s network yet: clones would "
                      "share the template's MAC address",
                      hv_net_mode_name(s->net));
    accel = hv_host_accel(h, s->accel, s->kernel, why, sizeof(why));
    if (accel < 0)
        return hv_err(err, err_size, accel, "%s", why);
    s->accel = (enum hv_accel)accel;
    s->name[0] = '\0';
    s->ifname[0] = '\0';
    return 0;
}

static void hv_shape_id(const struct hv_spec *s,
                        const struct hv_ident f[HV_F_COUNT], char *id)
{
    uint64_t hash = 14695981039346656037ull;
    int nums[] = {HV_TMPL_FORMAT, s->vcpus,    s->memory_mb, s->width,
                  s->height,      (int)s->net, (int)s->accel};

    hv_fnv(&hash, nums, sizeof(nums));
    hv_fnv_str(&hash, s->cmdline);
    for (int i = 0; i < HV_F_COUNT; i++) {
        uint64_t v[3] = {f[i].size, f[i].ino, f[i].dev};
        hv_fnv_str(&hash, f[i].path);
        hv_fnv(&hash, v, sizeof(v));
        hv_fnv(&hash, &f[i].mtime_ns, sizeof(f[i].mtime_ns));
    }
    snprintf(id, HV_ID_MAX + 1, "%016" PRIx64, hash);
}

int hv_template_id(struct hv_host *h, const struct hv_spec *shape, char *id,
                   char *err, size_t err_size)
{
    struct hv_ident f[HV_F_COUNT];
    struct hv_spec s;
    int rc = hv_shape_prepare(h, shape, &s, err, err_size);

    if (rc == 0)
        rc = hv_idents_now(h, &s, f, err, err_size);
    if (rc < 0)
        return rc;
    hv_shape_id(&s, f, id);
    return 0;
}

/* --- locks --------------------------------------------------------------- */

/*
 * Takes templates/ID.lock (LOCK_EX or LOCK_SH), waiting up to wait_ms (0:
 * try once). Returns the fd holding it, -EBUSY when it stayed taken, or
 * another negative errno. A lock file may be unlinked by whoever deletes
 * the template while holding it; the inode check makes sure we hold the
 * lock of the file that is there now.
 */
static int hv_tmpl_lock(const struct hv_host *h, const char *id, int op,
                        int wait_ms)
{
    uint64_t deadline = dp_time_now_ms() + (uint64_t)wait_ms;
    char name[HV_ID_MAX + 8], path[PATH_MAX];
    struct stat a, b;

    snprintf(name, sizeof(name), "%s.lock", id);
    if (hv_tmpl_path(h, name, NULL, path, sizeof(path)) < 0)
        return -ENAMETOOLONG;
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            return -errno;
        while (flock(fd, op | LOCK_NB) < 0) {
            if (errno != EWOULDBLOCK || dp_time_now_ms() >= deadline) {
                int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
                close(fd);
                return rc;
            }
            usleep(20000);
        }
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev)
            return fd;
        close(fd); /* deleted meanwhile: take the new one */
    }
}

/* Removes template id's folder and lock file; the caller holds the lock
 * exclusively (fd), which this closes. */
static void hv_tmpl_remove(const struct hv_host *h, const char *id, int fd)
{
    char path[PATH_MAX], name[HV_ID_MAX + 8];

    if (hv_tmpl_path(h, id, NULL, path, sizeof(path)) == 0)
        hv_remove_flat_dir(path);
    snprintf(name, sizeof(name), "%s.lock", id);
    if (hv_tmpl_path(h, name, NULL, path, sizeof(path)) == 0)
        unlink(path);
    close(fd);
}

/* --- tmpl.json ----------------------------------------------------------- */

struct hv_tmpl {
    struct hv_spec shape;
    struct hv_ident files[HV_F_COUNT];
    char qemu_version[32];
    int64_t created;
};

static int hv_tmpl_load(const struct hv_host *h, const char *id,
                        struct hv_tmpl *t, char *err, size_t err_size)
{
    char path[PATH_MAX], why[512];
    json_error_t jerr;
    json_t *j, *files;
    struct stat st;
    int rc;

    memset(t, 0, sizeof(*t));
    if (!hv_id_valid(id))
        return hv_err(err, err_size, -EINVAL, "%.64s: not a template id", id);
    hv_tmpl_path(h, id, "tmpl.json", path, sizeof(path));
    if (stat(path, &st) < 0)
        return hv_err(err, err_size, -ENOENT, "template %s: %s", id,
                      errno == ENOENT ? "no such template (or incomplete)"
                                      : strerror(errno));
    if (st.st_size > HV_TMPL_JSON_MAX)
        return hv_err(err, err_size, -EINVAL,
                      "template %s: tmpl.json too large", id);
    j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return hv_err(err, err_size, -EINVAL, "template %s: tmpl.json: %s", id,
                      jerr.text);
    rc = json_integer_value(json_object_get(j, "format")) == HV_TMPL_FORMAT
             ? 0
             : -EINVAL;
    snprintf(why, sizeof(why), "unknown format");
    if (rc == 0)
        rc = hv_spec_from_json(&t->shape, json_object_get(j, "shape"), why,
                               sizeof(why));
    files = json_object_get(j, "files");
    for (int i = 0; rc == 0 && i < HV_F_COUNT; i++) {
        rc = hv_ident_from_json(json_object_get(files, hv_file_names[i]),
                                &t->files[i]);
        if (rc < 0)
            snprintf(why, sizeof(why), "files.%s: malformed", hv_file_names[i]);
    }
    if (rc == 0) {
        snprintf(t->qemu_version, sizeof(t->qemu_version), "%s",
                 json_string_value(json_object_get(j, "qemu_version")) ?: "");
        t->created = json_integer_value(json_object_get(j, "created"));
    }
    json_decref(j);
    if (rc < 0)
        return hv_err(err, err_size, rc, "template %s: tmpl.json: %s", id, why);
    return 0;
}

/* Writes tmpl.json atomically and durably: it is what makes the template
 * exist, so everything else must be on disk before it. */
static int hv_tmpl_save(const struct hv_host *h, const char *id,
                        const struct hv_tmpl *t)
{
    char path[PATH_MAX], dir[PATH_MAX];
    json_t *files = json_object(), *j;
    int fd, rc;

    for (int i = 0; files && i < HV_F_COUNT; i++)
        json_object_set_new(files, hv_file_names[i],
                            hv_ident_json(&t->files[i]));
    j = json_pack("{s:i, s:s, s:o, s:o, s:s, s:I}", "format", HV_TMPL_FORMAT,
                  "id", id, "shape", hv_spec_to_json(&t->shape), "files", files,
                  "qemu_version", t->qemu_version, "created",
                  (json_int_t)t->created);
    hv_tmpl_path(h, id, "tmpl.json", path, sizeof(path));
    rc = hv_json_save(path, j);
    if (rc < 0)
        return rc;
    hv_tmpl_path(h, id, NULL, dir, sizeof(dir));
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
}

/* Is loaded template t still what its files are? 0, or -ESTALE with the
 * file that changed in err. */
static int hv_tmpl_current(const struct hv_host *h, const char *id,
                           const struct hv_tmpl *t, char *err, size_t err_size)
{
    struct hv_ident now[HV_F_COUNT];
    char why[512];
    int rc = hv_idents_now(h, &t->shape, now, why, sizeof(why));

    if (rc < 0)
        return hv_err(err, err_size, -ESTALE, "template %s is stale: %s", id,
                      why);
    for (int i = 0; i < HV_F_COUNT; i++)
        if (!hv_ident_eq(&now[i], &t->files[i]))
            return hv_err(err, err_size, -ESTALE,
                          "template %s is stale: %s %s changed since it was "
                          "made",
                          id, hv_file_names[i],
                          t->files[i].path[0] ? t->files[i].path : now[i].path);
    return 0;
}

int hv_template_check(struct hv_host *h, const char *id, char *err,
                      size_t err_size)
{
    static const char *const needed[] = {"ram", "state", "disk.qcow2"};
    char path[PATH_MAX];
    struct hv_tmpl t;
    int rc = hv_tmpl_load(h, id, &t, err, err_size);

    if (rc < 0)
        return rc == -EINVAL ? -ENOENT : rc;
    for (size_t i = 0; i < sizeof(needed) / sizeof(*needed); i++) {
        hv_tmpl_path(h, id, needed[i], path, sizeof(path));
        if (access(path, R_OK) < 0)
            return hv_err(err, err_size, -ENOENT, "template %s: %s missing", id,
                          needed[i]);
    }
    return hv_tmpl_current(h, id, &t, err, err_size);
}

/* --- users --------------------------------------------------------------- */

/* How many VMs were cloned from template id; the first one's id in
 * example (may be NULL). */
static int hv_tmpl_users(struct hv_host *h, const char *id, char *example,
                         size_t example_size)
{
    char **ids, why[256];
    size_t n;
    int users = 0;

    if (example && example_size)
        example[0] = '\0';
    if (hv_vm_list(h, &ids, &n) < 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        struct hv_spec s;
        if (hv_vm_get_spec(h, ids[i], &s, why, sizeof(why)) < 0 ||
            strcmp(s.template_id, id) != 0)
            continue;
        if (!users++ && example)
            snprintf(example, example_size, "%s", ids[i]);
    }
    hv_vm_list_free(ids, n);
    return users;
}

/* --- talking to QEMU ----------------------------------------------------- */

/* Connects to QMP at sock once QEMU listens there; fails early when pid
 * dies. Returns 0 with a ready client, -ESRCH if QEMU exited, or another
 * negative errno. */
static int hv_tmpl_qmp_wait(const char *sock, pid_t pid, int timeout_ms,
                            struct hv_qmp **out)
{
    uint64_t deadline = dp_time_now_ms() + (uint64_t)timeout_ms;
    int rc;

    for (;;) {
        if (!hv_proc_alive(pid))
            return -ESRCH;
        if (dp_time_now_ms() >= deadline)
            return -ETIMEDOUT;
        rc = hv_qmp_connect(out, sock, NULL, NULL);
        if (rc == -ENOENT || rc == -ECONNREFUSED) {
            usleep(1000); /* not listening yet */
            continue;
        }
        if (rc < 0)
            return rc;
        rc = hv_qmp_wait_ready(*out, timeout_ms);
        if (rc == 0)
            return 0;
        hv_qmp_close(*out);
        *out = NULL;
        return hv_proc_alive(pid) ? rc : -ESRCH;
    }
}

static int hv_tmpl_qmp(struct hv_qmp *q, const char *cmd, json_t *args,
                       int timeout_ms, json_t **result, char *err,
                       size_t err_size)
{
    char why[512];
    int rc =
        hv_qmp_execute_sync(q, cmd, args, timeout_ms, result, why, sizeof(why));
    if (rc < 0)
        return hv_err(err, err_size, rc, "QMP %s: %s", cmd, why);
    return 0;
}

static int hv_tmpl_ignore_shared(struct hv_qmp *q, char *err, size_t err_size)
{
    return hv_tmpl_qmp(q, "migrate-set-capabilities",
                       json_pack("{s:[{s:s, s:b}]}", "capabilities",
                                 "capability", "x-ignore-shared", "state", 1),
                       0, NULL, err, err_size);
}

/* A unix socket address for path. */
static int hv_sun(struct sockaddr_un *a, const char *path)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(a->sun_path))
        return -ENAMETOOLONG;
    strcpy(a->sun_path, path);
    return 0;
}

/* Waits until fd is ready for events, at most until deadline_ms. */
static int hv_wait_fd(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = dp_time_now_ms();
        struct pollfd p = {.fd = fd, .events = events};
        int n;
        if (now >= deadline_ms)
            return -ETIMEDOUT;
        n = poll(&p, 1, (int)(deadline_ms - now));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* --- creating a template ------------------------------------------------- */

struct hv_tmpl_build {
    struct hv_host *h;
    const char *id;
    char dir[PATH_MAX];
    pid_t pid;
    struct hv_qmp *q;
    char *err;
    size_t err_size;
};

/* QEMU's own words as the error once it died. */
static int hv_tmpl_qemu_died(struct hv_tmpl_build *b, const char *when)
{
    char log[PATH_MAX], tail[1024];
    hv_tmpl_path(b->h, b->id, "qemu.log", log, sizeof(log));
    hv_proc_log_tail(log, tail, sizeof(tail));
    return hv_err(b->err, b->err_size, -EIO, "template %s: QEMU exited %s: %s",
                  b->id, when, tail[0] ? tail : "(no message)");
}

static int hv_tmpl_boot(struct hv_tmpl_build *b, const struct hv_spec *s)
{
    char disk[PATH_MAX], ram[PATH_MAX], log[PATH_MAX], sock[PATH_MAX];
    char why[1024];
    struct hv_qemu_setup paths = {b->dir, disk,
                                  b->h->qemu_user[0] ? b->h->qemu_user : NULL};
    struct hv_qemu_mem mem = {ram, 1, 0};
    struct hv_argv a;
    int rc;

    hv_tmpl_path(b->h, b->id, "disk.qcow2", disk, sizeof(disk));
    hv_tmpl_path(b->h, b->id, "ram", ram, sizeof(ram));
    hv_tmpl_path(b->h, b->id, "qemu.log", log, sizeof(log));
    hv_tmpl_path(b->h, b->id, "qmp.sock", sock, sizeof(sock));
    rc = hv_image_create_overlay(s->golden, disk, why, sizeof(why));
    if (rc < 0)
        return hv_err(b->err, b->err_size, rc, "template %s: %s", b->id, why);
    rc = hv_give_to_qemu_user(b->h, disk);
    if (rc < 0)
        return hv_err(b->err, b->err_size, rc, "%s: %s", disk, strerror(-rc));
    hv_argv_init(&a);
    rc = hv_qemu_argv_mem(&a, b->h->qemu, s, s->accel, &paths, &mem);
    if (rc == 0)
        rc = hv_proc_spawn_detached(a.v, log, &b->pid);
    hv_argv_free(&a);
    if (rc < 0)
        return hv_err(b->err, b->err_size, rc,
                      "template %s: cannot start %s: %s", b->id, b->h->qemu,
                      strerror(-rc));
    rc = hv_tmpl_qmp_wait(sock, b->pid, HV_TMPL_QMP_WAIT_MS, &b->q);
    if (rc == -ESRCH)
        return hv_tmpl_qemu_died(b, "at start");
    if (rc < 0)
        return hv_err(b->err, b->err_size, rc, "template %s: QMP: %s", b->id,
                      strerror(-rc));
    return 0;
}

/* Waits for the guest agent's `ready`: the desktop is up and idle. */
static int hv_tmpl_wait_ready(struct hv_tmpl_build *b, int timeout_ms)
{
    uint64_t deadline = dp_time_now_ms() + (uint64_t)timeout_ms;
    char sock[PATH_MAX];
    struct hv_agent *a;
    struct hv_agent_state st;
    int rc;

    hv_tmpl_path(b->h, b->id, "agent.sock", sock, sizeof(sock));
    rc = hv_agent_open(&a, sock, NULL, NULL, 0);
    if (rc < 0)
        return hv_err(b->err, b->err_size, rc, "template %s: agent: %s", b->id,
                      strerror(-rc));
    for (;;) {
        hv_agent_state(a, &st);
        if (st.ready)
            break;
        if (!hv_proc_alive(b->pid)) {
            hv_agent_close(a);
            return hv_tmpl_qemu_died(b, "while booting");
        }
        if (dp_time_now_ms() >= deadline) {
            hv_agent_close(a);
            return hv_err(b->err, b->err_size, -ETIMEDOUT,
                          "template %s: the guest agent did not say ready "
                          "within %d s (templates need the agent in the "
                          "golden image); its console is in %s/serial.log "
                          "until the folder is removed",
                          b->id, timeout_ms / 1000, b->dir);
        }
        hv_agent_wait_event(a, "ready", 500, NULL);
    }
    /* Disconnect before saving: a clone's agent then sees the host side
     * open when its own manager connects, and says hello to it. */
    hv_agent_close(a);
    return 0;
}

/* Listens on TDIR/mig.sock, where QEMU will send its state. */
static int hv_tmpl_listen(struct hv_tmpl_build *b, char *path, size_t size)
{
    struct sockaddr_un addr;
    int fd, rc;

    hv_tmpl_path(b->h, b->id, "mig.sock", path, size);
    if (hv_sun(&addr, path) < 0)
        return -ENAMETOOLONG;
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(fd, 1) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    /* QEMU may have dropped to its own user by now. */
    rc = hv_give_to_qemu_user(b->h, path);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* Copies what arrives on the listening socket into TDIR/state (durably).
 * QEMU closes the connection when it has sent everything. */
static int hv_tmpl_receive(struct hv_tmpl_build *b, int lfd, uint64_t deadline)
{
    enum { CHUNK = 1 << 16 };
    char path[PATH_MAX], tmp[PATH_MAX + 8], *buf;
    int conn, out, rc;
    ssize_t n;

    rc = hv_wait_fd(lfd, POLLIN, deadline);
    if (rc < 0)
        return rc;
    conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0)
        return -errno;
    buf = malloc(CHUNK);
    if (!buf) {
        close(conn);
        return -ENOMEM;
    }
    hv_tmpl_path(b->h, b->id, "state", path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        rc = -errno;
        close(conn);
        free(buf);
        return rc;
    }
    for (;;) {
        rc = hv_wait_fd(conn, POLLIN, deadline);
        if (rc < 0)
            break;
        n = read(conn, buf, CHUNK);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (write(out, buf, (size_t)n) != n) {
            rc = -EIO;
            break;
        }
    }
    close(conn);
    free(buf);
    if (rc == 0 && fsync(out) < 0)
        rc = -errno;
    if (close(out) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* Polls query-migrate until the migration ended; 0 when it completed. */
static int hv_tmpl_migrate_done(struct hv_tmpl_build *b, uint64_t deadline)
{
    for (;;) {
        json_t *r = NULL;
        const char *status;
        int rc = hv_tmpl_qmp(b->q, "query-migrate", NULL, 0, &r, b->err,
                             b->err_size);
        if (rc < 0)
            return rc;
        status = json_string_value(json_object_get(r, "status")) ?: "";
        if (strcmp(status, "completed") == 0) {
            json_decref(r);
            return 0;
        }
        if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
            rc = hv_err(b->err, b->err_size, -EIO,
                        "template %s: saving the state %s: %s", b->id, status,
                        json_string_value(json_object_get(r, "error-desc"))
                            ?: "(no reason)");
            json_decref(r);
            return rc;
        }
        json_decref(r);
        if (dp_time_now_ms() >= deadline)
            return hv_err(b->err, b->err_size, -ETIMEDOUT,
                          "template %s: saving the state did not end", b->id);
        usleep(2000);
    }
}

/* Stops the guest and saves its device state into TDIR/state; RAM is
 * already in TDIR/ram (shared mapping), so x-ignore-shared leaves it out
 * of the stream. */
static int hv_tmpl_save_state(struct hv_tmpl_build *b)
{
    uint64_t deadline = dp_time_now_ms() + HV_TMPL_MIGRATE_MS;
    char sock[PATH_MAX], uri[PATH_MAX + 8];
    int lfd, rc;

    rc = hv_tmpl_qmp(b->q, "stop", NULL, 0, NULL, b->err, b->err_size);
    if (rc == 0)
        rc = hv_tmpl_ignore_shared(b->q, b->err, b->err_size);
    if (rc < 0)
        return rc;
    lfd = hv_tmpl_listen(b, sock, sizeof(sock));
    if (lfd < 0)
        return hv_err(b->err, b->err_size, lfd, "%s: %s", sock, strerror(-lfd));
    snprintf(uri, sizeof(uri), "unix:%s", sock);
    rc = hv_tmpl_qmp(b->q, "migrate", json_pack("{s:s}", "uri", uri), 0, NULL,
                     b->err, b->err_size);
    if (rc == 0) {
        rc = hv_tmpl_receive(b, lfd, deadline);
        if (rc < 0)
            hv_err(b->err, b->err_size, rc,
                   "template %s: receiving the state: %s", b->id,
                   strerror(-rc));
    }
    close(lfd);
    unlink(sock);
    if (rc == 0)
        rc = hv_tmpl_migrate_done(b, deadline);
    return rc;
}

/* Ends the template's QEMU: quit (it flushes the disk), SIGKILL if it
 * lingers. */
static void hv_tmpl_quit(struct hv_tmpl_build *b)
{
    if (b->q) {
        hv_qmp_execute_sync(b->q, "quit", NULL, 1000, NULL, NULL, 0);
        hv_qmp_close(b->q);
        b->q = NULL;
    }
    if (b->pid > 0 && !hv_wait_gone(b->pid, HV_TMPL_QUIT_GRACE_MS)) {
        kill(b->pid, SIGKILL);
        hv_wait_gone(b->pid, HV_TMPL_QUIT_GRACE_MS);
    }
    b->pid = 0;
}

static int hv_fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* The overlay every clone's disk is copied from (HV_TEMPLATE_BLANK), on
 * the frozen disk at disk: hv_tmpl_path()'s, the very path hv_vm_create()
 * gives clones as their backing file. */
static int hv_tmpl_make_blank(struct hv_tmpl_build *b, const char *disk)
{
    char blank[PATH_MAX], why[1024];
    int rc = hv_tmpl_path(b->h, b->id, HV_TEMPLATE_BLANK, blank, sizeof(blank));

    if (rc == 0)
        rc = hv_image_create_overlay(disk, blank, why, sizeof(why));
    else
        snprintf(why, sizeof(why), "%s", strerror(-rc));
    if (rc == 0 && chmod(blank, 0400) < 0) {
        rc = -errno;
        snprintf(why, sizeof(why), "%.900s: %s", blank, strerror(errno));
    }
    if (rc < 0)
        return hv_err(b->err, b->err_size, rc, "template %s: %s", b->id, why);
    return 0;
}

/* Makes what outlives creation durable, freezes the disk and removes the
 * run files. */
static int hv_tmpl_finish(struct hv_tmpl_build *b)
{
    static const char *const run_files[] = {
        "qmp.sock", "events.sock", "vnc.sock",      "agent.sock",
        "qemu.pid", "mig.sock",    "screendump.png"};
    char path[PATH_MAX];
    int rc;

    for (size_t i = 0; i < sizeof(run_files) / sizeof(*run_files); i++)
        if (hv_tmpl_path(b->h, b->id, run_files[i], path, sizeof(path)) == 0)
            unlink(path);
    hv_tmpl_path(b->h, b->id, "ram", path, sizeof(path));
    rc = hv_fsync_path(path);
    /* QEMU made it before dropping privileges, with its umask: the guest's
     * memory is nobody else's business. */
    if (rc == 0 && chmod(path, 0600) < 0)
        rc = -errno;
    hv_tmpl_path(b->h, b->id, "disk.qcow2", path, sizeof(path));
    if (rc == 0)
        rc = hv_fsync_path(path);
    /* Clones open it read-only as their backing file; nothing else may
     * write it. */
    if (rc == 0 && chmod(path, 0444) < 0)
        rc = -errno;
    if (rc < 0)
        return hv_err(b->err, b->err_size, rc, "template %s: %s: %s", b->id,
                      path, strerror(-rc));
    return hv_tmpl_make_blank(b, path);
}

/* Builds template id for shape s in its (new, empty) folder. */
static int hv_tmpl_build(struct hv_host *h, const char *id,
                         const struct hv_spec *s,
                         const struct hv_ident f[HV_F_COUNT],
                         int ready_timeout_ms, char *err, size_t err_size)
{
    struct hv_tmpl_build b = {
        .h = h, .id = id, .err = err, .err_size = err_size};
    struct hv_tmpl t = {.shape = *s};
    int rc;

    hv_tmpl_path(h, id, NULL, b.dir, sizeof(b.dir));
    hv_remove_flat_dir(b.dir); /* an interrupted earlier attempt */
    if (mkdir(b.dir, 0700) < 0)
        return hv_err(err, err_size, -errno, "%s: %s", b.dir, strerror(errno));
    rc = hv_give_to_qemu_user(h, b.dir);
    if (rc < 0)
        hv_err(err, err_size, rc, "%s: %s", b.dir, strerror(-rc));
    if (rc == 0)
        rc = hv_tmpl_boot(&b, s);
    if (rc == 0) {
        snprintf(t.qemu_version, sizeof(t.qemu_version), "%s",
                 hv_qmp_version(b.q));
        rc = hv_tmpl_wait_ready(&b, ready_timeout_ms);
    }
    if (rc == 0)
        rc = hv_tmpl_save_state(&b);
    hv_tmpl_quit(&b);
    if (rc == 0)
        rc = hv_tmpl_finish(&b);
    if (rc == 0) {
        memcpy(t.files, f, sizeof(t.files));
        snprintf(t.shape.id, sizeof(t.shape.id), "%s", id);
        snprintf(t.shape.name, sizeof(t.shape.name), "template %s", id);
        t.created = (int64_t)time(NULL);
        rc = hv_tmpl_save(h, id, &t);
        if (rc < 0)
            hv_err(err, err_size, rc, "template %s: tmpl.json: %s", id,
                   strerror(-rc));
    }
    if (rc < 0)
        hv_remove_flat_dir(b.dir);
    return rc;
}

int hv_template_create(struct hv_host *h, const struct hv_spec *shape,
                       int ready_timeout_ms, char *id, int *created, char *err,
                       size_t err_size)
{
    struct hv_ident f[HV_F_COUNT];
    char dir[PATH_MAX];
    struct hv_spec s;
    int rc, fd;

    if (created)
        *created = 0;
    rc = hv_shape_prepare(h, shape, &s, err, err_size);
    if (rc == 0)
        rc = hv_idents_now(h, &s, f, err, err_size);
    if (rc < 0)
        return rc;
    hv_shape_id(&s, f, id);
    hv_tmpl_path(h, NULL, NULL, dir, sizeof(dir));
    if (mkdir(dir, 0711) < 0 && errno != EEXIST)
        return hv_err(err, err_size, -errno, "%s: %s", dir, strerror(errno));
    /* Whoever makes the same template meanwhile finishes first. */
    fd = hv_tmpl_lock(h, id, LOCK_EX, HV_TMPL_LOCK_WAIT_MS);
    if (fd < 0)
        return hv_err(err, err_size, fd, "template %s: lock: %s", id,
                      strerror(-fd));
    if (hv_template_check(h, id, NULL, 0) == 0) {
        close(fd);
        return 0;
    }
    rc = hv_tmpl_build(h, id, &s, f,
                       ready_timeout_ms > 0 ? ready_timeout_ms
                                            : HV_TEMPLATE_READY_TIMEOUT_MS,
                       err, err_size);
    if (rc < 0)
        hv_tmpl_remove(h, id, fd);
    else
        close(fd);
    if (rc == 0 && created)
        *created = 1;
    return rc;
}

/* --- inspection and removal ---------------------------------------------- */

static uint64_t hv_file_blocks(const char *path, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (size)
            *size = 0;
        return 0;
    }
    if (size)
        *size = (uint64_t)st.st_size;
    return (uint64_t)st.st_blocks * 512u;
}

int hv_template_get(struct hv_host *h, const char *id,
                    struct hv_template_info *info, char *err, size_t err_size)
{
    char path[PATH_MAX];
    struct hv_tmpl t;
    int rc;

    memset(info, 0, sizeof(*info));
    if (!hv_id_valid(id))
        return hv_err(err, err_size, -EINVAL, "%.64s: not a template id", id);
    hv_tmpl_path(h, id, NULL, path, sizeof(path));
    if (access(path, F_OK) < 0)
        return hv_err(err, err_size, -ENOENT, "template %s: no such template",
                      id);
    snprintf(info->id, sizeof(info->id), "%s", id);
    info->users = hv_tmpl_users(h, id, NULL, 0);
    rc = hv_tmpl_load(h, id, &t, info->why, sizeof(info->why));
    if (rc < 0)
        return 0; /* incomplete: why says so */
    info->complete = 1;
    info->shape = t.shape;
    snprintf(info->qemu_version, sizeof(info->qemu_version), "%s",
             t.qemu_version);
    info->created = t.created;
    hv_tmpl_path(h, id, "ram", path, sizeof(path));
    info->ram_bytes = hv_file_blocks(path, NULL);
    hv_tmpl_path(h, id, "state", path, sizeof(path));
    hv_file_blocks(path, &info->state_bytes);
    rc = hv_template_check(h, id, info->why, sizeof(info->why));
    info->stale = rc == -ESTALE;
    if (rc == -ENOENT)
        info->complete = 0;
    if (rc == 0)
        info->why[0] = '\0';
    return 0;
}

static int hv_info_cmp(const void *a, const void *b)
{
    return strcmp(((const struct hv_template_info *)a)->id,
                  ((const struct hv_template_info *)b)->id);
}

int hv_template_list(struct hv_host *h, struct hv_template_info **out,
                     size_t *count)
{
    struct hv_template_info *v = NULL;
    char dir[PATH_MAX];
    struct dirent *e;
    size_t n = 0;
    DIR *d;

    *out = NULL;
    *count = 0;
    hv_tmpl_path(h, NULL, NULL, dir, sizeof(dir));
    d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while ((e = readdir(d))) {
        struct hv_template_info *grown;
        if (!hv_id_valid(e->d_name) || e->d_type == DT_REG)
            continue;
        grown = realloc(v, (n + 1) * sizeof(*v));
        if (!grown) {
            closedir(d);
            free(v);
            return -ENOMEM;
        }
        v = grown;
        if (hv_template_get(h, e->d_name, &v[n], NULL, 0) == 0)
            n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof(*v), hv_info_cmp);
    *out = v;
    *count = n;
    return 0;
}

int hv_template_delete(struct hv_host *h, const char *id, char *err,
                       size_t err_size)
{
    char path[PATH_MAX], user[HV_ID_MAX + 1];
    int fd, users;

    if (!hv_id_valid(id))
        return hv_err(err, err_size, -EINVAL, "%.64s: not a template id", id);
    hv_tmpl_path(h, id, NULL, path, sizeof(path));
    if (access(path, F_OK) < 0)
        return hv_err(err, err_size, -ENOENT, "template %s: no such template",
                      id);
    fd = hv_tmpl_lock(h, id, LOCK_EX, 0);
    if (fd < 0)
        return hv_err(err, err_size, fd == -EBUSY ? -EBUSY : fd,
                      "template %s: being made or cloned right now", id);
    users = hv_tmpl_users(h, id, user, sizeof(user));
    if (users) {
        close(fd);
        return hv_err(err, err_size, -EBUSY,
                      "template %s: %d VM(s) cloned from it (e.g. %s); delete "
                      "them first",
                      id, users, user);
    }
    hv_tmpl_remove(h, id, fd);
    return 0;
}

/* Kills a template's QEMU left running by an interrupted create. */
static void hv_tmpl_kill_leftover(const struct hv_host *h, const char *id)
{
    char pidfile[PATH_MAX], sock[PATH_MAX];
    pid_t pid;

    hv_tmpl_path(h, id, "qemu.pid", pidfile, sizeof(pidfile));
    hv_tmpl_path(h, id, "qmp.sock", sock, sizeof(sock));
    pid = hv_proc_read_pidfile(pidfile);
    if (pid > 0 && hv_proc_alive(pid) && hv_proc_cmdline_has(pid, sock)) {
        kill(pid, SIGKILL);
        hv_wait_gone(pid, HV_TMPL_QUIT_GRACE_MS);
    }
}

int hv_template_gc(struct hv_host *h, int all_unused, hv_template_gc_fn fn,
                   void *arg)
{
    char dir[PATH_MAX], why[512], id[HV_ID_MAX + 1];
    struct dirent *e;
    int removed = 0;
    DIR *d;

    hv_tmpl_path(h, NULL, NULL, dir, sizeof(dir));
    d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        const char *reason = NULL;
        char path[PATH_MAX];
        int fd, rc;

        /* Templates, and lock files whose template is gone. */
        if (len > 5 && strcmp(e->d_name + len - 5, ".lock") == 0 &&
            len - 5 <= HV_ID_MAX) {
            snprintf(id, sizeof(id), "%.*s", (int)(len - 5), e->d_name);
            hv_tmpl_path(h, id, NULL, path, sizeof(path));
            if (!hv_id_valid(id) || access(path, F_OK) == 0)
                continue;
        } else if (hv_id_valid(e->d_name)) {
            snprintf(id, sizeof(id), "%s", e->d_name);
        } else {
            continue;
        }
        fd = hv_tmpl_lock(h, id, LOCK_EX, 0);
        if (fd < 0)
            continue; /* being made or cloned */
        hv_tmpl_path(h, id, NULL, path, sizeof(path));
        rc = hv_template_check(h, id, why, sizeof(why));
        if (access(path, F_OK) < 0) {
            hv_tmpl_remove(h, id, fd); /* a lone lock file */
            continue;
        }
        if (rc == -ENOENT)
            reason = "incomplete";
        else if (hv_tmpl_users(h, id, NULL, 0) > 0)
            reason = NULL;
        else if (rc < 0)
            reason = "stale and unused";
        else if (all_unused)
            reason = "unused";
        if (!reason) {
            close(fd);
            continue;
        }
        if (rc == -ENOENT)
            hv_tmpl_kill_leftover(h, id);
        hv_tmpl_remove(h, id, fd);
        removed++;
        if (fn)
            fn(arg, id, reason);
    }
    closedir(d);
    return removed;
}

/* --- clones ------------------------------------------------------------------
 */

/* Polls query-status until the incoming migration ended, then resumes
 * the guest. */
static int hv_clone_resume(struct hv_qmp *q, pid_t pid, uint64_t deadline,
                           char *err, size_t err_size)
{
    for (;;) {
        json_t *r = NULL;
        char status[32];
        int rc = hv_tmpl_qmp(q, "query-status", NULL, 0, &r, err, err_size);

        if (rc < 0)
            return hv_proc_alive(pid) ? rc : -ESRCH;
        snprintf(status, sizeof(status), "%s",
                 json_string_value(json_object_get(r, "status")) ?: "");
        json_decref(r);
        if (strcmp(status, "running") == 0)
            return 0;
        if (strcmp(status, "paused") == 0 ||
            strcmp(status, "postmigrate") == 0 ||
            strcmp(status, "prelaunch") == 0)
            return hv_tmpl_qmp(q, "cont", NULL, 0, NULL, err, err_size);
        if (strcmp(status, "inmigrate") != 0)
            return hv_err(err, err_size, -EIO, "unexpected state %s", status);
        if (dp_time_now_ms() >= deadline)
            return hv_err(err, err_size, -ETIMEDOUT,
                          "the state did not load in time");
        usleep(500);
    }
}

/* Restores the template's state into the clone's QEMU, started with
 * -incoming defer and the state file as its fd 3: QEMU reads the file
 * itself (no socket, no copy through us), then we resume it. */
static int hv_clone_restore(struct hv_host *h, const char *tid, const char *id,
                            pid_t pid, char *err, size_t err_size)
{
    uint64_t deadline = dp_time_now_ms() + HV_TMPL_MIGRATE_MS;
    char qsock[PATH_MAX], why[512];
    struct hv_qmp *q = NULL;
    int rc;

    hv_vm_path(h, id, "qmp.sock", qsock, sizeof(qsock));
    rc = hv_tmpl_qmp_wait(qsock, pid, HV_TMPL_QMP_WAIT_MS, &q);
    if (rc < 0)
        return rc == -ESRCH ? rc
                            : hv_err(err, err_size, rc, "%s: QMP: %s", id,
                                     strerror(-rc));
    rc = hv_tmpl_ignore_shared(q, why, sizeof(why));
    if (rc == 0)
        rc = hv_tmpl_qmp(q, "migrate-incoming",
                         json_pack("{s:s}", "uri", "fd:3"), 0, NULL, why,
                         sizeof(why));
    if (rc == 0)
        rc = hv_clone_resume(q, pid, deadline, why, sizeof(why));
    hv_qmp_close(q);
    if (rc < 0 && (rc == -ESRCH || !hv_proc_alive(pid)))
        return -ESRCH;
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: restoring template %s: %s", id,
                      tid, why);
    (void)tid;
    return 0;
}

/* A hostname (RFC 1123 label) from a VM id. */
static void hv_clone_hostname(const char *id, char *buf, size_t size)
{
    size_t n = 0;
    for (const char *p = id; *p && n + 1 < size && n < 63; p++) {
        char c = *p == '_' ? '-' : *p;
        if (c == '-' && n == 0)
            continue;
        buf[n++] = c;
    }
    while (n > 0 && buf[n - 1] == '-')
        n--;
    buf[n] = '\0';
    if (!n)
        snprintf(buf, size, "desktop");
}

json_t *hv_template_personalise_args(const char *hostname)
{
    static const char hex[] = "0123456789abcdef";
    char mid[33], seed[65]; /* 128 and 256 random bits */
    json_t *args = NULL;

    if (dp_token_random_text(mid, 32, hex) == 0 &&
        dp_token_random_text(seed, 64, hex) == 0)
        args = json_pack("{s:s, s:s, s:I, s:s}", "hostname", hostname,
                         "machine_id", mid, "time", (json_int_t)time(NULL),
                         "random_seed", seed);
    explicit_bzero(seed, sizeof(seed));
    return args;
}

int hv_template_personalise(struct hv_host *h, const char *id,
                            const char *hostname, int timeout_ms, char *err,
                            size_t err_size)
{
    char sock[PATH_MAX], why[512];
    struct hv_agent *a;
    json_t *args;
    int rc;

    if (hv_vm_path(h, id, "agent.sock", sock, sizeof(sock)) < 0)
        return hv_err(err, err_size, -EINVAL, "%.64s: not a valid VM id", id);
    rc = hv_agent_open(&a, sock, NULL, NULL, 0);
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: agent: %s", id, strerror(-rc));
    rc = hv_agent_wait_event(a, "hello", timeout_ms, NULL);
    if (rc < 0) {
        hv_agent_close(a);
        return hv_err(err, err_size, rc,
                      "%s: the agent did not say hello within %d ms", id,
                      timeout_ms);
    }
    args = hv_template_personalise_args(hostname);
    if (!args) {
        hv_agent_close(a);
        return hv_err(err, err_size, -EIO, "%s: no random bytes", id);
    }
    rc = hv_agent_request_sync(a, "personalise", args, timeout_ms, NULL, why,
                               sizeof(why));
    hv_agent_close(a);
    if (rc < 0)
        return hv_err(err, err_size, rc, "%s: personalise: %s", id, why);
    return 0;
}

int hv_template_clone(struct hv_host *h, const char *template_id,
                      const char *id, const struct hv_clone_options *o,
                      struct hv_clone_result *r, char *err, size_t err_size)
{
    static const struct hv_clone_options defaults;
    struct hv_clone_result local;
    char ram[PATH_MAX], state[PATH_MAX], why[1024];
    struct hv_qemu_mem mem = {ram, 0, 1};
    double t_call = hv_now_ms(), t_exec;
    struct hv_spec spec;
    struct hv_tmpl t;
    pid_t pid = 0;
    int rc, fd, sfd, wait;

    if (!o)
        o = &defaults;
    if (!r)
        r = &local;
    memset(r, 0, sizeof(*r));
    if (!hv_id_valid(template_id))
        return hv_err(err, err_size, -EINVAL, "%.64s: not a template id",
                      template_id);
    if (!hv_id_valid(id))
        return hv_err(err, err_size, -EINVAL, "%.64s: not a valid VM id", id);
    snprintf(r->template_id, sizeof(r->template_id), "%s", template_id);
    hv_tmpl_path(h, template_id, NULL, ram, sizeof(ram));
    if (access(ram, F_OK) < 0)
        return hv_err(err, err_size, -ENOENT, "template %s: no such template",
                      template_id);
    /* Shared: other clones may go on; creation and deletion wait. */
    fd = hv_tmpl_lock(h, template_id, LOCK_SH, HV_TMPL_LOCK_WAIT_MS);
    if (fd < 0)
        return hv_err(err, err_size, fd, "template %s: lock: %s", template_id,
                      strerror(-fd));
    rc = hv_template_check(h, template_id, err, err_size);
    if (rc == 0)
        rc = hv_tmpl_load(h, template_id, &t, err, err_size);
    if (rc == 0) {
        spec = t.shape;
        snprintf(spec.id, sizeof(spec.id), "%s", id);
        snprintf(spec.name, sizeof(spec.name), "%s", o->name ? o->name : id);
        snprintf(spec.template_id, sizeof(spec.template_id), "%s", template_id);
        /* From now on vm.json names the template: it is in use. */
        rc = hv_vm_create(h, &spec, err, err_size);
    }
    close(fd);
    if (rc < 0)
        return rc;

    hv_tmpl_path(h, template_id, "state", state, sizeof(state));
    sfd = open(state, O_RDONLY | O_CLOEXEC);
    if (sfd < 0) {
        rc = hv_err(err, err_size, -errno, "%s: %s", state, strerror(errno));
        hv_vm_delete(h, id, why, sizeof(why));
        return rc;
    }
    hv_tmpl_path(h, template_id, "ram", ram, sizeof(ram));
    t_exec = hv_now_ms();
    rc = hv_vm_spawn(h, &spec, spec.accel, &mem, sfd, &pid, err, err_size);
    close(sfd);
    if (rc == 0) {
        rc = hv_clone_restore(h, template_id, id, pid, err, err_size);
        if (rc == -ESRCH)
            rc = hv_vm_exited(h, id, err, err_size);
    }
    if (rc < 0) {
        hv_vm_abort(h, id, pid);
        hv_vm_delete(h, id, why, sizeof(why));
        return rc;
    }
    r->exec_to_running_ms = hv_now_ms() - t_exec;
    r->total_ms = hv_now_ms() - t_call;

    if (o->hostname)
        snprintf(r->hostname, sizeof(r->hostname), "%s", o->hostname);
    else
        hv_clone_hostname(id, r->hostname, sizeof(r->hostname));
    wait = o->personalise_timeout_ms ? o->personalise_timeout_ms
                                     : HV_TEMPLATE_PERSONALISE_TIMEOUT_MS;
    if (wait < 0) {
        snprintf(r->personalise_error, sizeof(r->personalise_error),
                 "not asked");
        return 0;
    }
    rc = hv_template_personalise(h, id, r->hostname, wait, r->personalise_error,
                                 sizeof(r->personalise_error));
    r->personalised = rc == 0;
    if (rc < 0)
        hv_warn(h, "%s runs as a twin of template %s: %s", id, template_id,
                r->personalise_error);
    return 0;
}

int hv_template_clone_spec(struct hv_host *h, const struct hv_spec *spec,
                           const struct hv_clone_options *o,
                           struct hv_clone_result *r, char *err,
                           size_t err_size)
{
    struct hv_clone_options opts = o ? *o : (struct hv_clone_options){0};
    struct hv_clone_result local;
    char tid[HV_ID_MAX + 1];
    int rc = -ENOENT, created = 0;

    if (!r)
        r = &local;
    if (!opts.name && spec->name[0])
        opts.name = spec->name;
    /* A gc of unused templates may strike between making and cloning:
     * then make it again, once. */
    for (int attempt = 0; attempt < 2 && rc == -ENOENT; attempt++) {
        int made = 0;
        rc = hv_template_create(h, spec, opts.ready_timeout_ms, tid, &made, err,
                                err_size);
        created |= made;
        if (rc == 0)
            rc = hv_template_clone(h, tid, spec->id, &opts, r, err, err_size);
    }
    r->template_created = created;
    return rc;
}
