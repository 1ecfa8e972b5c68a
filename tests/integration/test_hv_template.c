/*
 * Integration tests of templates and instant clones (hv_template.h) with
 * real QEMU guests booted from the test image: a template is booted once
 * and saved; clones start from it, show the desktop, take input, get their
 * own hostname from the agent, stay independent of each other (screen,
 * disk) and boot cold from their own disk when started again; a changed
 * golden image makes the template stale and the next clone makes a new
 * one; failures leave no VM behind, and a clone whose agent does not
 * answer runs unpersonalised. The time from QEMU's exec to a running clone is
 * printed, never asserted (speed is the benchmarks' business).
 *
 * One template, made once for the test case (an unchecked fixture, in the
 * parent process), serves the first tests; the golden-change test makes
 * its own. Every golden image here is a copy of the test image in the
 * state folder, so that rebuilding the test image meanwhile cannot make
 * templates stale under a test. Each test deletes its clones and the
 * templates it made; the fixture deletes what a failed test left.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv_agent.h"
#include "hv_template.h"
#include "hv_vm.h"
#include "td_layout.h"
#include "tsguest.h"
#include "tsppm.h"
#include "tsscreen.h"

#define BOOT_TIMEOUT_MS   120000 /* TCG on a loaded 2-core machine */
#define SCREEN_TIMEOUT_MS 30000
#define AGENT_TIMEOUT_MS  30000

static struct hv_host *host;    /* the test case's, made by the fixture */
static char golden[512];        /* its copy of the test image */
static char tid[HV_ID_MAX + 1]; /* its template */
static char err[2048];

/* --- helpers -------------------------------------------------------------- */

/* Copies src to dst (a new file, so a new inode). */
static void copy_file(const char *src, const char *dst, int extra_byte)
{
    char buf[65536];
    ssize_t n;
    int in = open(src, O_RDONLY), out;

    ck_assert_msg(in >= 0, "%s: %s", src, strerror(errno));
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_msg(out >= 0, "%s: %s", dst, strerror(errno));
    while ((n = read(in, buf, sizeof(buf))) > 0)
        ck_assert_int_eq(write(out, buf, (size_t)n), n);
    if (extra_byte)
        ck_assert_int_eq(write(out, "\n", 1), 1);
    close(in);
    ck_assert_int_eq(close(out), 0);
}

/* The test image's disk, copied to NAME in the host's state folder. */
static void make_golden(struct hv_host *h, const char *name, char *path,
                        size_t size)
{
    char src[600];
    const char *g = tsguest_guest_dir();

    ck_assert_msg(g, "no test image (see above)");
    snprintf(src, sizeof(src), "%s/root.qcow2", g);
    snprintf(path, size, "%s/%s", hv_host_state_dir(h), name);
    copy_file(src, path, 0);
}

/* The test guest's shape on golden g. */
static void make_shape(struct hv_spec *s, const char *id, const char *g)
{
    ck_assert_int_eq(tsguest_spec(s, id, NULL), 0);
    snprintf(s->golden, sizeof(s->golden), "%s", g);
}

static void print_clone(const char *id, const struct hv_clone_result *r)
{
    fprintf(stderr,
            "test_hv_template: clone %s of %s: exec -> running %.1f ms "
            "(%.1f ms with its overlay); %s%s\n",
            id, r->template_id, r->exec_to_running_ms, r->total_ms,
            r->personalised ? "personalised as " : "not personalised: ",
            r->personalised ? r->hostname : r->personalise_error);
}

/* Clones id from template t with hostname hn; it must be personalised. */
static void clone_vm(const char *t, const char *id, const char *hn)
{
    struct hv_clone_options o = {.hostname = hn,
                                 .personalise_timeout_ms = AGENT_TIMEOUT_MS};
    struct hv_clone_result r;

    ck_assert_msg(hv_template_clone(host, t, id, &o, &r, err, sizeof(err)) == 0,
                  "clone %s: %s", id, err);
    print_clone(id, &r);
    ck_assert_msg(r.personalised, "%s not personalised: %s", id,
                  r.personalise_error);
    ck_assert_str_eq(r.hostname, hn);
}

static void delete_vm(const char *id)
{
    ck_assert_msg(hv_vm_delete(host, id, err, sizeof(err)) == 0, "%s", err);
}

static int template_exists(const char *t)
{
    struct hv_template_info info;
    return hv_template_get(host, t, &info, NULL, 0) == 0;
}

/* A screen check: 1 when img shows what arg wants, else 0 with why. */
typedef int (*screen_check_fn)(const struct tsscreen *s, const void *arg,
                               char *why, size_t why_size);

/* Takes screendumps until check passes or the time is up. */
static void poll_screen(const char *id, screen_check_fn check, const void *arg,
                        const char *name)
{
    long long deadline = tsguest_now_ms() + SCREEN_TIMEOUT_MS;
    struct tsppm *img = NULL;
    char why[512] = "no screendump";

    for (;;) {
        if (tsguest_screen(host, id, &img) == 0) {
            struct tsscreen s = tsscreen_from_ppm(img);
            if (check(&s, arg, why, sizeof(why)))
                break;
        }
        if (tsguest_now_ms() >= deadline) {
            tsguest_keep_screen(host, id, "test_hv_template", name);
            tsppm_free(img);
            ck_abort_msg("%s: %s", id, why);
        }
        tsguest_sleep_ms(250);
    }
    tsppm_free(img);
}

/* testdesk's desktop: top bar, window, text box, wallpaper. */
static int shows_desktop(const struct tsscreen *s, const void *arg, char *why,
                         size_t why_size)
{
    struct td_layout l;
    struct tsscreen_diff d;

    (void)arg;
    td_layout_compute(&l, TSGUEST_WIDTH, TSGUEST_HEIGHT);
    tsscreen_diff_init(&d, s);
    tsscreen_diff_pixel(&d, s, l.user.x + l.user.w - 2, 1, TD_COLOR_TOPBAR);
    tsscreen_diff_pixel(&d, s, l.logoff.x + 1, l.logoff.y + 1, TD_COLOR_LOGOFF);
    tsscreen_diff_pixel(&d, s, l.window.x + 1, l.window.y + 1, TD_COLOR_WINDOW);
    tsscreen_diff_pixel(&d, s, l.textbox.x + 2, l.textbox.y + 2,
                        TD_COLOR_TEXTBOX);
    tsscreen_diff_pixel(&d, s, 3, l.height - 3,
                        td_layout_wallpaper(&l, 3, l.height - 3));
    return tsscreen_diff_why(&d, "testdesk's desktop", why, why_size) == 0;
}

static int shows_textbox(const struct tsscreen *s, const void *arg, char *why,
                         size_t why_size)
{
    return tsscreen_textbox_why(s, arg, why, why_size) == 0;
}

/* The top bar's hostname reads exactly arg. */
static int shows_hostname(const struct tsscreen *s, const void *arg, char *why,
                          size_t why_size)
{
    return tsscreen_hostname_why(s, arg, why, why_size) == 0;
}

/* The hostname the guest's agent introduces itself with (a new
 * connection: its hello). */
static void assert_agent_hostname(const char *id, const char *want)
{
    char sock[512];
    struct hv_agent *a;
    struct hv_agent_state st;

    ck_assert_int_eq(hv_vm_path(host, id, "agent.sock", sock, sizeof(sock)), 0);
    ck_assert_int_eq(hv_agent_open(&a, sock, NULL, NULL, 0), 0);
    ck_assert_msg(hv_agent_wait_event(a, "hello", BOOT_TIMEOUT_MS, NULL) == 0,
                  "%s: no hello from the agent", id);
    hv_agent_state(a, &st);
    hv_agent_close(a);
    ck_assert_str_eq(st.hostname, want);
}

/* Does the file at path hold the bytes of text anywhere? */
static int file_contains(const char *path, const char *text)
{
    size_t n = strlen(text), len = 0;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    int found = 0;

    ck_assert_msg(f, "%s: %s", path, strerror(errno));
    for (;;) {
        char *grown = realloc(buf, len + 65536);
        size_t got;
        ck_assert_ptr_nonnull(grown);
        buf = grown;
        got = fread(buf + len, 1, 65536, f);
        if (!got)
            break;
        len += got;
    }
    fclose(f);
    for (size_t i = 0; !found && i + n <= len; i++)
        found = memcmp(buf + i, text, n) == 0;
    free(buf);
    return found;
}

static void vm_disk(const char *id, char *path, size_t size)
{
    snprintf(path, size, "%s/vms/%s/disk.qcow2", hv_host_state_dir(host), id);
}

/* --- fixture ----------------------------------------------------------------
 */

/* Once for the test case, in the parent process: a host and a template,
 * which the tests (forked) share. */
static void case_setup(void)
{
    struct hv_spec shape;
    int created = 0;

    ck_assert_int_eq(tsguest_host_open(&host, NULL), 0);
    make_golden(host, "golden.qcow2", golden, sizeof(golden));
    make_shape(&shape, "shape", golden);
    ck_assert_msg(hv_template_create(host, &shape, BOOT_TIMEOUT_MS, tid,
                                     &created, err, sizeof(err)) == 0,
                  "template: %s", err);
    ck_assert_int_eq(created, 1);
    ck_assert_int_eq(hv_template_check(host, tid, err, sizeof(err)), 0);
}

/* Deletes every VM (tsguest_host_close) after every template. */
static void case_teardown(void)
{
    char **ids;
    size_t n;

    if (!host)
        return;
    if (hv_vm_list(host, &ids, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            hv_vm_delete(host, ids[i], err, sizeof(err));
        hv_vm_list_free(ids, n);
    }
    hv_template_gc(host, 1, NULL, NULL);
    tsguest_host_close(host);
    host = NULL;
}

/* --- tests ------------------------------------------------------------------
 */

START_TEST(template_is_saved_and_listed)
{
    struct hv_template_info *v;
    char again[HV_ID_MAX + 1];
    struct hv_spec shape;
    size_t n;
    int created = 1;

    /* The same shape finds the same template instead of booting again. */
    make_shape(&shape, "other-name", golden);
    ck_assert_msg(hv_template_create(host, &shape, BOOT_TIMEOUT_MS, again,
                                     &created, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_str_eq(again, tid);
    ck_assert_int_eq(created, 0);
    ck_assert_int_eq(hv_template_list(host, &v, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0].id, tid);
    ck_assert(v[0].complete && !v[0].stale);
    ck_assert_int_eq(v[0].shape.memory_mb, TSGUEST_MEMORY_MB);
    ck_assert_str_eq(v[0].shape.golden, golden);
    ck_assert(v[0].shape.accel == HV_ACCEL_TCG ||
              v[0].shape.accel == HV_ACCEL_KVM);
    ck_assert_uint_gt(v[0].state_bytes, 0);
    ck_assert_uint_gt(v[0].ram_bytes, 16u << 20); /* the guest's memory */
    free(v);
    /* Nothing uses it, but a plain gc keeps valid templates. */
    ck_assert_int_eq(hv_template_gc(host, 0, NULL, NULL), 0);
    ck_assert(template_exists(tid));
}
END_TEST

START_TEST(clone_shows_desktop_takes_input_and_own_hostname)
{
    struct hv_vm_status st;
    struct hv_vm_memory m;
    struct hv_spec s;

    clone_vm(tid, "clone-a", "clone-alpha");
    ck_assert_msg(hv_vm_status(host, "clone-a", &st, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_str_eq(st.state, "running");
    ck_assert_int_eq(hv_vm_get_spec(host, "clone-a", &s, err, sizeof(err)), 0);
    ck_assert_str_eq(s.template_id, tid);
    ck_assert_int_eq(hv_template_delete(host, tid, err, sizeof(err)), -EBUSY);

    /* The desktop is there at once (restored, not booted), with its own
     * name, and takes keys. */
    poll_screen("clone-a", shows_desktop, NULL, "desktop");
    poll_screen("clone-a", shows_hostname, "clone-alpha", "hostname");
    assert_agent_hostname("clone-a", "clone-alpha");
    ck_assert_int_eq(tsguest_type_text(host, "clone-a", "Hello clone"), 0);
    poll_screen("clone-a", shows_textbox, "Hello clone", "typed");

    ck_assert_int_eq(hv_vm_read_memory(host, "clone-a", &m), 0);
    ck_assert_uint_gt(m.rss_bytes, 0);
    ck_assert_uint_eq(m.shared_bytes + m.private_bytes, m.rss_bytes);
    fprintf(stderr,
            "test_hv_template: clone-a alone: rss %.1f MiB, anonymous %.1f "
            "MiB, pss %.1f MiB\n",
            (double)m.rss_bytes / 1048576.0,
            (double)m.anonymous_bytes / 1048576.0,
            (double)m.pss_bytes / 1048576.0);
    delete_vm("clone-a");
}
END_TEST

START_TEST(two_clones_are_independent)
{
    char disk_x[600], disk_y[600], line[64], blank[600], aside[620],
        frozen[600];
    struct hv_vm_memory mx, my;
    struct stat blank_before, blank_after;

    /* clone-x's disk is a copy of the template's blank overlay; clone-y's
     * comes from qemu-img, as for templates made before blank overlays. */
    snprintf(blank, sizeof(blank), "%s/templates/%s/blank.qcow2",
             hv_host_state_dir(host), tid);
    snprintf(aside, sizeof(aside), "%s.aside", blank);
    ck_assert_msg(stat(blank, &blank_before) == 0, "%s: %s", blank,
                  strerror(errno));
    clone_vm(tid, "clone-x", "iso-x-5150");
    ck_assert_int_eq(rename(blank, aside), 0);
    clone_vm(tid, "clone-y", "iso-y-6502");
    ck_assert_int_eq(rename(aside, blank), 0);
    poll_screen("clone-x", shows_hostname, "iso-x-5150", "hostname-x");
    poll_screen("clone-y", shows_hostname, "iso-y-6502", "hostname-y");

    /* Keys typed into one reach its text box only. */
    ck_assert_int_eq(tsguest_type_text(host, "clone-x", "only in x"), 0);
    poll_screen("clone-x", shows_textbox, "only in x", "typed-x");
    poll_screen("clone-y", shows_textbox, "", "untouched-y");

    /* Both map the template's RAM: the pages neither has written are
     * resident once, shared. */
    ck_assert_int_eq(hv_vm_read_memory(host, "clone-x", &mx), 0);
    ck_assert_int_eq(hv_vm_read_memory(host, "clone-y", &my), 0);
    fprintf(stderr,
            "test_hv_template: two clones: x rss %.1f MiB (shared %.1f, "
            "private %.1f, pss %.1f), y rss %.1f MiB (shared %.1f, private "
            "%.1f, pss %.1f)\n",
            mx.rss_bytes / 1048576.0, mx.shared_bytes / 1048576.0,
            mx.private_bytes / 1048576.0, mx.pss_bytes / 1048576.0,
            my.rss_bytes / 1048576.0, my.shared_bytes / 1048576.0,
            my.private_bytes / 1048576.0, my.pss_bytes / 1048576.0);
    ck_assert_uint_gt(mx.shared_bytes, 8u << 20);
    ck_assert_uint_gt(my.shared_bytes, 8u << 20);
    ck_assert_uint_lt(mx.pss_bytes, mx.rss_bytes);

    /* Disk writes: personalise wrote each hostname to /etc/hostname on
     * that clone's disk; shutting down syncs it into the clone's own
     * overlay, and nowhere else. */
    ck_assert_msg(hv_vm_shutdown(host, "clone-x", 60000, err, sizeof(err)) == 0,
                  "shutdown x: %s", err);
    ck_assert_msg(hv_vm_shutdown(host, "clone-y", 60000, err, sizeof(err)) == 0,
                  "shutdown y: %s", err);
    vm_disk("clone-x", disk_x, sizeof(disk_x));
    vm_disk("clone-y", disk_y, sizeof(disk_y));
    ck_assert(file_contains(disk_x, "iso-x-5150\n"));
    ck_assert(!file_contains(disk_x, "iso-y-6502\n"));
    ck_assert(file_contains(disk_y, "iso-y-6502\n"));
    ck_assert(!file_contains(disk_y, "iso-x-5150\n"));
    /* Both overlays name the template's frozen disk as their backing
     * file, and the blank one took none of the clones' writes. */
    snprintf(frozen, sizeof(frozen), "%s/templates/%s/disk.qcow2",
             hv_host_state_dir(host), tid);
    ck_assert(file_contains(disk_x, frozen));
    ck_assert(file_contains(disk_y, frozen));
    ck_assert_int_eq(stat(blank, &blank_after), 0);
    ck_assert_int_eq(blank_after.st_size, blank_before.st_size);
    ck_assert_int_eq(blank_after.st_mtime, blank_before.st_mtime);
    ck_assert(!file_contains(blank, "iso-x-5150\n"));

    /* Started again, a clone boots cold from its own disk: the template's
     * boot was the first on that disk chain, this is the second, and the
     * hostname is the one it was given. */
    ck_assert_msg(hv_vm_start(host, "clone-x", err, sizeof(err)) == 0, "%s",
                  err);
    snprintf(line, sizeof(line), "deskpool-guest: boot 2\r\n");
    ck_assert_msg(
        tsguest_wait_serial(host, "clone-x", line, 1, BOOT_TIMEOUT_MS) == 0,
        "clone-x did not boot from its disk");
    ck_assert_int_eq(
        tsguest_wait_serial(host, "clone-x", TSGUEST_READY, 1, BOOT_TIMEOUT_MS),
        0);
    assert_agent_hostname("clone-x", "iso-x-5150");
    poll_screen("clone-x", shows_textbox, "", "cold-x"); /* a new desktop */
    delete_vm("clone-x");
    delete_vm("clone-y");
}
END_TEST

START_TEST(golden_change_makes_template_stale)
{
    char gold[512], tmp[600], t1[HV_ID_MAX + 1], t2[HV_ID_MAX + 1];
    struct hv_clone_options o = {.personalise_timeout_ms = AGENT_TIMEOUT_MS};
    struct hv_clone_result r;
    struct hv_spec spec;

    make_golden(host, "changing.qcow2", gold, sizeof(gold));

    /* The first clone of a shape makes its template; the next reuses it. */
    make_shape(&spec, "stale-1", gold);
    ck_assert_msg(
        hv_template_clone_spec(host, &spec, &o, &r, err, sizeof(err)) == 0,
        "%s", err);
    print_clone("stale-1", &r);
    ck_assert_int_eq(r.template_created, 1);
    snprintf(t1, sizeof(t1), "%s", r.template_id);
    ck_assert_str_ne(t1, tid);
    make_shape(&spec, "stale-2", gold);
    ck_assert_msg(
        hv_template_clone_spec(host, &spec, &o, &r, err, sizeof(err)) == 0,
        "%s", err);
    print_clone("stale-2", &r);
    ck_assert_int_eq(r.template_created, 0);
    ck_assert_str_eq(r.template_id, t1);

    /* A new golden image at the same path (as an image build writes one:
     * a new file renamed over the old). */
    snprintf(tmp, sizeof(tmp), "%s.new", gold);
    copy_file(gold, tmp, 1);
    ck_assert_int_eq(rename(tmp, gold), 0);
    ck_assert_int_eq(hv_template_check(host, t1, err, sizeof(err)), -ESTALE);
    ck_assert_msg(strstr(err, "golden"), "%s", err);
    ck_assert_int_eq(
        hv_template_clone(host, t1, "never", NULL, NULL, err, sizeof(err)),
        -ESTALE);

    /* The next clone of the shape gets a new template and runs. */
    make_shape(&spec, "stale-3", gold);
    ck_assert_msg(
        hv_template_clone_spec(host, &spec, &o, &r, err, sizeof(err)) == 0,
        "%s", err);
    print_clone("stale-3", &r);
    ck_assert_int_eq(r.template_created, 1);
    snprintf(t2, sizeof(t2), "%s", r.template_id);
    ck_assert_str_ne(t2, t1);
    poll_screen("stale-3", shows_desktop, NULL, "stale-3");

    /* The stale template stays while clones use it (their disks are
     * overlays on its disk), and goes with the last of them. */
    ck_assert_int_eq(hv_template_gc(host, 0, NULL, NULL), 0);
    ck_assert(template_exists(t1));
    poll_screen("stale-1", shows_desktop, NULL, "stale-1");
    delete_vm("stale-1");
    delete_vm("stale-2");
    ck_assert_int_eq(hv_template_gc(host, 0, NULL, NULL), 1);
    ck_assert(!template_exists(t1));
    ck_assert(template_exists(t2));
    delete_vm("stale-3");
    ck_assert_int_eq(hv_template_delete(host, t2, err, sizeof(err)), 0);
    ck_assert(!template_exists(t2));
    ck_assert(template_exists(tid));
}
END_TEST

START_TEST(failures_leave_nothing_behind)
{
    static const char *const linked[] = {"tmpl.json", "ram", "disk.qcow2"};
    struct hv_clone_options quick = {.personalise_timeout_ms = 1};
    char src[600], dst[600], bad[] = "0123456789abcdef";
    struct hv_clone_result r;
    struct hv_vm_status st;
    struct hv_spec s;
    struct stat sb;

    /* No such template. */
    ck_assert_int_eq(hv_template_clone(host, "feedfacefeedface", "nothing",
                                       NULL, NULL, err, sizeof(err)),
                     -ENOENT);
    ck_assert_int_eq(hv_vm_get_spec(host, "nothing", &s, NULL, 0), -ENOENT);

    /* A template whose device state is cut short: QEMU gives up loading
     * it, and the clone is gone again, with QEMU's reason. */
    snprintf(dst, sizeof(dst), "%s/templates/%s", hv_host_state_dir(host), bad);
    ck_assert_int_eq(mkdir(dst, 0700), 0);
    for (size_t i = 0; i < sizeof(linked) / sizeof(*linked); i++) {
        snprintf(src, sizeof(src), "%s/templates/%s/%s",
                 hv_host_state_dir(host), tid, linked[i]);
        snprintf(dst, sizeof(dst), "%s/templates/%s/%s",
                 hv_host_state_dir(host), bad, linked[i]);
        ck_assert_msg(link(src, dst) == 0, "%s: %s", dst, strerror(errno));
    }
    snprintf(src, sizeof(src), "%s/templates/%s/state", hv_host_state_dir(host),
             tid);
    snprintf(dst, sizeof(dst), "%s/templates/%s/state", hv_host_state_dir(host),
             bad);
    copy_file(src, dst, 0);
    ck_assert_int_eq(stat(dst, &sb), 0);
    ck_assert_int_eq(truncate(dst, sb.st_size / 2), 0);
    ck_assert_int_eq(hv_template_check(host, bad, err, sizeof(err)), 0);
    ck_assert_int_eq(
        hv_template_clone(host, bad, "broken", NULL, NULL, err, sizeof(err)),
        -EIO);
    ck_assert_msg(strstr(err, "QEMU exited"), "%s", err);
    ck_assert_int_eq(hv_vm_get_spec(host, "broken", &s, NULL, 0), -ENOENT);
    snprintf(dst, sizeof(dst), "%s/run/broken", hv_host_state_dir(host));
    ck_assert_int_eq(access(dst, F_OK), -1);
    ck_assert_int_eq(hv_template_delete(host, bad, err, sizeof(err)), 0);

    /* An agent that does not answer in time: the clone runs anyway, and
     * the caller learns it was not personalised. */
    ck_assert_msg(
        hv_template_clone(host, tid, "twin", &quick, &r, err, sizeof(err)) == 0,
        "%s", err);
    print_clone("twin", &r);
    ck_assert_int_eq(r.personalised, 0);
    ck_assert_str_ne(r.personalise_error, "");
    ck_assert_int_eq(hv_vm_status(host, "twin", &st, err, sizeof(err)), 0);
    ck_assert_str_eq(st.state, "running");
    poll_screen("twin", shows_desktop, NULL, "twin");
    delete_vm("twin");
}
END_TEST

START_TEST(clone_runs_as_unprivileged_qemu)
{
    struct hv_host_config cfg = {.state_dir = hv_host_state_dir(host),
                                 .quiet = 1,
                                 .qemu_user = "nobody"};
    struct hv_clone_options o = {.personalise_timeout_ms = AGENT_TIMEOUT_MS};
    struct passwd *pw = getpwnam("nobody");
    struct hv_clone_result r;
    struct hv_vm_status st;
    char png[HV_STATE_DIR_MAX + 16];
    unsigned char magic[8] = {0};
    struct hv_host *h;
    FILE *f;

    if (getuid() != 0 || !pw)
        return; /* nothing to drop: the manager is not root */
    /* QEMU's user must reach its run folder (see test_hv_vm). */
    ck_assert_int_eq(chmod(tsguest_root(), 0711), 0);
    ck_assert_msg(hv_host_open(&h, &cfg, err, sizeof(err)) == 0, "%s", err);
    /* Resuming reopens the disk after QEMU dropped root. */
    ck_assert_msg(
        hv_template_clone(h, tid, "unpriv", &o, &r, err, sizeof(err)) == 0,
        "%s", err);
    print_clone("unpriv", &r);
    ck_assert(r.personalised);
    ck_assert_int_eq(hv_vm_status(h, "unpriv", &st, err, sizeof(err)), 0);
    ck_assert_str_eq(st.state, "running");
    ck_assert_int_eq(tsguest_proc_uid(st.pid), (int)pw->pw_uid);
    /* The restored guest lives: its agent answers with the new name, and
     * QEMU (unprivileged) still saves its screen. */
    assert_agent_hostname("unpriv", "unpriv");
    snprintf(png, sizeof(png), "%s/u.png", hv_host_state_dir(host));
    ck_assert_msg(hv_vm_screenshot(h, "unpriv", png, err, sizeof(err)) == 0,
                  "%s", err);
    f = fopen(png, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fread(magic, 1, 8, f), 8);
    fclose(f);
    ck_assert_mem_eq(magic, "\x89PNG\r\n\x1a\n", 8);
    ck_assert_int_eq(hv_vm_delete(h, "unpriv", err, sizeof(err)), 0);
    hv_host_close(h);
}
END_TEST

static Suite *hv_template_suite(void)
{
    Suite *s = suite_create("hv-template");
    TCase *tc = tcase_create("templates");

    tcase_set_timeout(tc, 900);
    tcase_add_unchecked_fixture(tc, case_setup, case_teardown);
    tcase_add_test(tc, template_is_saved_and_listed);
    tcase_add_test(tc, clone_shows_desktop_takes_input_and_own_hostname);
    tcase_add_test(tc, two_clones_are_independent);
    tcase_add_test(tc, golden_change_makes_template_stale);
    tcase_add_test(tc, failures_leave_nothing_behind);
    tcase_add_test(tc, clone_runs_as_unprivileged_qemu);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tsguest_run_suite(hv_template_suite());
}
