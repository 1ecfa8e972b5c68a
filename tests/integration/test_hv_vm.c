/*
 * Integration tests of libdeskpool-hv with real QEMU guests booted from the
 * test image (TCG unless a KVM probe succeeds): linked clones, power,
 * refresh, adoption after kill -9 of the manager, several desktops at once,
 * and failures that must leave nothing behind.
 *
 * Each test gets a state folder of its own under the test root (tsguest.h).
 * A failing Check test does not run its teardown: what it leaves (QEMUs,
 * folders) is ended and removed after the suite by tsguest_run_suite().
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv_proc.h"
#include "hv_vm.h"
#include "td_layout.h"
#include "tsguest.h"
#include "tsppm.h"

#define BOOT_TIMEOUT_MS 90000 /* TCG on a loaded 2-core CI machine */

static char state_dir[HV_STATE_DIR_MAX + 1];
static char guest_dir[512];
static struct hv_host *host;
static char err[2048];

/* --- fixture ------------------------------------------------------------ */

/* Another host on this test's state folder (a second manager). */
static struct hv_host *open_host(void)
{
    struct hv_host *h;
    ck_assert_int_eq(tsguest_host_open(&h, state_dir), 0);
    return h;
}

static void setup(void)
{
    const char *g = tsguest_guest_dir();
    ck_assert_msg(g, "no test image (see above)");
    snprintf(guest_dir, sizeof(guest_dir), "%s", g);
    ck_assert_int_eq(tsguest_host_open(&host, NULL), 0);
    snprintf(state_dir, sizeof(state_dir), "%s", hv_host_state_dir(host));
}

/* Stops every VM and removes the state folder. */
static void teardown(void)
{
    tsguest_host_close(host);
    host = NULL;
}

/* --- helpers -------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void make_spec(struct hv_spec *s, const char *id)
{
    ck_assert_int_eq(tsguest_spec(s, id, NULL), 0);
}

static void create_vm(const char *id)
{
    ck_assert_int_eq(tsguest_create(host, id, NULL), 0);
}

static void start_vm(const char *id)
{
    ck_assert_msg(hv_vm_start(host, id, err, sizeof(err)) == 0, "%s", err);
}

/* Occurrences of text in the VM's serial log. */
static int serial_count(const char *id, const char *text)
{
    int n = tsguest_serial_count(host, id, text);
    ck_assert_msg(n >= 0, "%s: no serial log: %s", id, strerror(-n));
    return n;
}

/* Waits until text has appeared `times` times in the serial log. */
static void wait_serial(const char *id, const char *text, int times)
{
    ck_assert_msg(tsguest_wait_serial(host, id, text, times, BOOT_TIMEOUT_MS) ==
                      0,
                  "%s: '%s' x%d not on the serial console", id, text, times);
}

/* The desktop as the user sees it: testdesk's top bar, window and text
 * box, at the places td_layout.h gives. */
static void assert_desktop_drawn(const char *id)
{
    struct tsppm *img;
    struct td_layout l;

    ck_assert_int_eq(tsguest_screendump(host, id, &img), 0);
    ck_assert_int_eq(tsppm_width(img), 1024);
    ck_assert_int_eq(tsppm_height(img), 768);
    td_layout_compute(&l, 1024, 768);
    ck_assert_uint_eq(tsppm_pixel(img, l.user.x + l.user.w - 2, 1),
                      TD_COLOR_TOPBAR);
    ck_assert_uint_eq(tsppm_pixel(img, l.logoff.x + 1, l.logoff.y + 1),
                      TD_COLOR_LOGOFF);
    ck_assert_uint_eq(tsppm_pixel(img, l.window.x + 1, l.window.y + 1),
                      TD_COLOR_WINDOW);
    ck_assert_uint_eq(tsppm_pixel(img, l.textbox.x + 2, l.textbox.y + 2),
                      TD_COLOR_TEXTBOX);
    ck_assert_uint_eq(tsppm_pixel(img, 3, l.height - 3),
                      td_layout_wallpaper(&l, 3, l.height - 3));
    tsppm_free(img);
}

static void boot_to_desktop(const char *id)
{
    wait_serial(id, "testdesk: ready", 1);
    assert_desktop_drawn(id);
}

static void assert_state(const char *id, const char *want)
{
    struct hv_vm_status st;
    ck_assert_msg(hv_vm_status(host, id, &st, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_str_eq(st.state, want);
}

static int run_dir_exists(const char *id)
{
    char path[512];
    hv_vm_path(host, id, NULL, path, sizeof(path));
    return access(path, F_OK) == 0;
}

/* --- events --------------------------------------------------------------- */

struct events {
    char names[16][32];
    int n, closed;
};

static void on_event(void *arg, const char *name, json_t *data)
{
    struct events *e = arg;
    (void)data;
    if (e->n < 16)
        snprintf(e->names[e->n++], sizeof(e->names[0]), "%s", name);
}

static void on_closed(void *arg, int reason, const char *why)
{
    struct events *e = arg;
    (void)reason, (void)why;
    e->closed = 1;
}

static const struct hv_qmp_callbacks event_cb = {on_event, on_closed};

static int has_event(const struct events *e, const char *name)
{
    for (int i = 0; i < e->n; i++)
        if (strcmp(e->names[i], name) == 0)
            return 1;
    return 0;
}

/* Polls the watch until the event arrives (or the time is up). */
static void wait_event(struct hv_qmp *q, struct events *e, const char *name)
{
    uint64_t deadline = now_ms() + 30000;
    while (!has_event(e, name) && !e->closed && now_ms() < deadline) {
        struct pollfd p = {hv_qmp_fd(q), hv_qmp_poll_events(q), 0};
        poll(&p, 1, 200);
        hv_qmp_process(q, p.revents);
    }
    ck_assert_msg(has_event(e, name), "no %s event", name);
}

/* --- tests ---------------------------------------------------------------- */

START_TEST(clone_boot_reset_shutdown_poweroff)
{
    struct hv_vm_status st;
    struct events ev = {0};
    struct hv_qmp *watch;

    create_vm("life");
    assert_state("life", "stopped");
    start_vm("life");
    ck_assert_int_eq(hv_vm_start(host, "life", err, sizeof(err)), -EALREADY);
    boot_to_desktop("life");
    ck_assert_int_eq(hv_vm_status(host, "life", &st, err, sizeof(err)), 0);
    ck_assert_str_eq(st.state, "running");
    ck_assert_int_gt(st.pid, 0);
    ck_assert_uint_gt(st.rss_bytes, 16u << 20);
    ck_assert(strcmp(st.accel, "tcg") == 0 || strcmp(st.accel, "kvm") == 0);

    /* Reset: the event arrives and the desktop comes up again. */
    ck_assert_int_eq(
        hv_vm_watch(host, "life", &event_cb, &ev, &watch, err, sizeof(err)), 0);
    ck_assert_msg(hv_vm_reset(host, "life", err, sizeof(err)) == 0, "%s", err);
    wait_event(watch, &ev, "RESET");
    wait_serial("life", "testdesk: ready", 2);
    assert_desktop_drawn("life");

    /* Pause and resume. */
    ck_assert_int_eq(hv_vm_pause(host, "life", err, sizeof(err)), 0);
    assert_state("life", "paused");
    ck_assert_int_eq(hv_vm_resume(host, "life", err, sizeof(err)), 0);
    assert_state("life", "running");

    /* ACPI shutdown: the guest powers itself off, nothing is forced. */
    ck_assert_msg(hv_vm_shutdown(host, "life", 60000, err, sizeof(err)) == 0,
                  "shutdown: %s", err);
    wait_event(watch, &ev, "SHUTDOWN");
    hv_qmp_close(watch);
    assert_state("life", "stopped");
    ck_assert(!run_dir_exists("life"));
    ck_assert(!hv_proc_alive(st.pid));

    /* Force off. */
    start_vm("life");
    ck_assert_int_eq(hv_vm_status(host, "life", &st, err, sizeof(err)), 0);
    ck_assert_int_eq(hv_vm_poweroff(host, "life", err, sizeof(err)), 0);
    assert_state("life", "stopped");
    ck_assert(!hv_proc_alive(st.pid));
    ck_assert_int_eq(hv_vm_poweroff(host, "life", err, sizeof(err)), -ENOTCONN);
}
END_TEST

/* A simple checksum of a whole file, to prove it was not written. */
static uint64_t file_hash(const char *path)
{
    uint64_t h = 1469598103934665603ull;
    unsigned char buf[65536];
    FILE *f = fopen(path, "rb");
    size_t n;
    ck_assert_ptr_nonnull(f);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        for (size_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211ull;
    fclose(f);
    return h;
}

START_TEST(refresh_discards_guest_writes)
{
    char golden[600];
    uint64_t before;

    snprintf(golden, sizeof(golden), "%s/root.qcow2", guest_dir);
    before = file_hash(golden);
    create_vm("fresh");
    /* The guest counts its boots in a file on its disk. */
    start_vm("fresh");
    wait_serial("fresh", "deskpool-guest: boot 1\r\n", 1);
    ck_assert_int_eq(hv_vm_poweroff(host, "fresh", err, sizeof(err)), 0);
    start_vm("fresh");
    wait_serial("fresh", "deskpool-guest: boot 2\r\n", 1); /* kept */
    ck_assert_int_eq(hv_vm_refresh(host, "fresh", err, sizeof(err)), -EBUSY);
    ck_assert_int_eq(hv_vm_poweroff(host, "fresh", err, sizeof(err)), 0);
    ck_assert_msg(hv_vm_refresh(host, "fresh", err, sizeof(err)) == 0, "%s",
                  err);
    start_vm("fresh");
    wait_serial("fresh", "deskpool-guest: boot 1\r\n", 1); /* gone */
    ck_assert_int_eq(serial_count("fresh", "deskpool-guest: boot 2\r\n"), 0);
    boot_to_desktop("fresh");
    ck_assert_int_eq(hv_vm_poweroff(host, "fresh", err, sizeof(err)), 0);
    ck_assert(file_hash(golden) == before);
}
END_TEST

/* The manager: starts a VM, holds its event monitor, waits to be killed. */
static void manager(int ready_fd)
{
    struct hv_qmp *watch;
    struct events ev = {0};

    host = open_host();
    create_vm("adopt");
    start_vm("adopt");
    if (hv_vm_watch(host, "adopt", &event_cb, &ev, &watch, err, sizeof(err)) <
        0)
        _exit(1);
    (void)!write(ready_fd, "r", 1);
    for (;;)
        pause();
}

static void on_adopt(void *arg, enum hv_adopt_kind kind, const char *id,
                     const char *detail)
{
    int *found = arg;
    (void)detail;
    if (kind == HV_ADOPT_RUNNING && strcmp(id, "adopt") == 0)
        found[0]++;
    if (kind == HV_ADOPT_STALE_RUN && strcmp(id, "ghost") == 0)
        found[1]++;
    if (kind == HV_ADOPT_ORPHAN_DISK && strcmp(id, "half") == 0)
        found[2]++;
}

START_TEST(adopt_after_manager_killed)
{
    int pfd[2], status, found[3] = {0};
    char c, path[600];
    struct events ev = {0};
    struct hv_qmp *watch;
    pid_t pid;

    ck_assert_int_eq(pipe(pfd), 0);
    hv_host_close(host); /* the manager opens its own */
    host = NULL;
    pid = fork();
    if (pid == 0)
        manager(pfd[1]);
    ck_assert_int_eq(read(pfd[0], &c, 1), 1);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);

    /* Leftovers of other crashes: a run folder with a dead pid, and a VM
     * folder whose vm.json was never written. */
    host = open_host();
    snprintf(path, sizeof(path), "%s/run/ghost", state_dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/run/ghost/qemu.pid", state_dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "%d\n", (int)pid); /* the dead manager's pid */
    fclose(f);
    snprintf(path, sizeof(path), "%s/vms/half", state_dir);
    mkdir(path, 0700);

    ck_assert_int_eq(hv_host_adopt(host, on_adopt, found), 1);
    ck_assert_int_eq(found[0], 1);
    ck_assert_int_eq(found[1], 1);
    ck_assert_int_eq(found[2], 1);
    snprintf(path, sizeof(path), "%s/run/ghost", state_dir);
    ck_assert_int_eq(access(path, F_OK), -1);
    snprintf(path, sizeof(path), "%s/vms/half", state_dir);
    ck_assert_int_eq(access(path, F_OK), -1);

    /* The new manager controls the VM: events, screen, power. */
    ck_assert_msg(hv_vm_watch(host, "adopt", &event_cb, &ev, &watch, err,
                              sizeof(err)) == 0,
                  "%s", err);
    boot_to_desktop("adopt");
    ck_assert_int_eq(hv_vm_reset(host, "adopt", err, sizeof(err)), 0);
    wait_event(watch, &ev, "RESET");
    hv_qmp_close(watch);
    ck_assert_int_eq(hv_vm_poweroff(host, "adopt", err, sizeof(err)), 0);
    assert_state("adopt", "stopped");
}
END_TEST

START_TEST(four_desktops_at_once)
{
    static const char *const ids[] = {"multi-1", "multi-2", "multi-3",
                                      "multi-4"};
    for (int i = 0; i < 4; i++)
        create_vm(ids[i]);
    for (int i = 0; i < 4; i++)
        start_vm(ids[i]);
    for (int i = 0; i < 4; i++)
        boot_to_desktop(ids[i]);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(hv_vm_poweroff(host, ids[i], err, sizeof(err)), 0);
}
END_TEST

START_TEST(qemu_drops_root)
{
    struct hv_host_config cfg = {
        .state_dir = state_dir, .quiet = 1, .qemu_user = "nobody"};
    struct hv_host *h;
    struct hv_vm_status st;
    struct passwd *pw = getpwnam("nobody");
    char png[HV_STATE_DIR_MAX + 16];
    unsigned char magic[8] = {0};
    FILE *f;

    if (getuid() != 0 || !pw)
        return; /* nothing to drop: the manager is not root */
    /* The test root is private (0700): QEMU's user could not reach its
     * run folder, and the host says so up front. */
    ck_assert_int_eq(hv_host_open(&h, &cfg, err, sizeof(err)), -EACCES);
    ck_assert_msg(strstr(err, tsguest_root()) && strstr(err, "chmod o+x"), "%s",
                  err);
    ck_assert_int_eq(chmod(tsguest_root(), 0711), 0);
    ck_assert_msg(hv_host_open(&h, &cfg, err, sizeof(err)) == 0, "%s", err);
    create_vm("unpriv");
    ck_assert_msg(hv_vm_start(h, "unpriv", err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(hv_vm_status(h, "unpriv", &st, err, sizeof(err)), 0);
    ck_assert_int_eq(tsguest_proc_uid(st.pid), (int)pw->pw_uid);
    wait_serial("unpriv", TSGUEST_READY, 1);
    /* QEMU, now unprivileged, still writes its screendump (into its own
     * run folder) and the manager copies it out. */
    snprintf(png, sizeof(png), "%s/u.png", state_dir);
    ck_assert_msg(hv_vm_screenshot(h, "unpriv", png, err, sizeof(err)) == 0,
                  "%s", err);
    f = fopen(png, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fread(magic, 1, 8, f), 8);
    fclose(f);
    ck_assert_mem_eq(magic, "\x89PNG\r\n\x1a\n", 8);
    ck_assert_int_eq(hv_vm_poweroff(h, "unpriv", err, sizeof(err)), 0);
    hv_host_close(h);
}
END_TEST

/* Count of entries in a folder (0 if missing). */
static int entries(const char *sub)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "%s/%s", state_dir, sub);
    int n = 0;
    DIR *d = opendir(cmd);
    struct dirent *e;
    if (!d)
        return 0;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

START_TEST(failures_leave_nothing_behind)
{
    struct hv_spec s;

    /* Missing golden image. */
    make_spec(&s, "nogold");
    snprintf(s.golden, sizeof(s.golden), "%s/missing.qcow2", state_dir);
    ck_assert_int_eq(hv_vm_create(host, &s, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "missing.qcow2"));
    ck_assert_int_eq(entries("vms"), 0);

    /* A golden image that is not qcow2. */
    snprintf(s.golden, sizeof(s.golden), "%s/vmlinuz", guest_dir);
    ck_assert_int_eq(hv_vm_create(host, &s, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a qcow2"));

    /* Bad spec. */
    make_spec(&s, "Bad Id");
    ck_assert_int_eq(hv_vm_create(host, &s, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(entries("vms"), 0);

    /* Unknown VM. */
    ck_assert_int_eq(hv_vm_start(host, "nosuch", err, sizeof(err)), -ENOENT);
    ck_assert_int_eq(hv_vm_delete(host, "nosuch", err, sizeof(err)), -ENOENT);

    /* Duplicate. */
    create_vm("dup");
    make_spec(&s, "dup");
    ck_assert_int_eq(hv_vm_create(host, &s, err, sizeof(err)), -EEXIST);

    /* QEMU exits early: its own message comes back, nothing keeps running
     * and no run folder stays. The kernel file is not a kernel. */
    make_spec(&s, "badkernel");
    snprintf(s.kernel, sizeof(s.kernel), "%s/root.qcow2", guest_dir);
    ck_assert_int_eq(hv_vm_create(host, &s, err, sizeof(err)), 0);
    ck_assert_int_lt(hv_vm_start(host, "badkernel", err, sizeof(err)), 0);
    ck_assert_msg(strstr(err, "QEMU exited") && strlen(err) > 40,
                  "unhelpful error: %s", err);
    ck_assert_int_eq(entries("run"), 0);
    assert_state("badkernel", "stopped");

    /* Commands to a stopped VM. */
    ck_assert_int_eq(hv_vm_reset(host, "dup", err, sizeof(err)), -ENOTCONN);
    ck_assert_int_eq(
        hv_vm_screenshot(host, "dup", "/tmp/x.png", err, sizeof(err)),
        -ENOTCONN);

    /* Delete removes everything. */
    ck_assert_int_eq(hv_vm_delete(host, "dup", err, sizeof(err)), 0);
    ck_assert_int_eq(hv_vm_delete(host, "badkernel", err, sizeof(err)), 0);
    ck_assert_int_eq(entries("vms"), 0);
}
END_TEST

static Suite *hv_vm_suite(void)
{
    Suite *s = suite_create("hv-vm");
    TCase *tc = tcase_create("qemu");

    tcase_set_timeout(tc, 400);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, failures_leave_nothing_behind);
    tcase_add_test(tc, clone_boot_reset_shutdown_poweroff);
    tcase_add_test(tc, refresh_discards_guest_writes);
    tcase_add_test(tc, adopt_after_manager_killed);
    tcase_add_test(tc, four_desktops_at_once);
    tcase_add_test(tc, qemu_drops_root);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tsguest_run_suite(hv_vm_suite());
}
