/*
 * test_broker_pool.c - deskpool-broker's pools with real test-image
 * desktops: sizes converge, launches assign, users stay apart, logoff
 * refreshes a floating desktop and keeps a dedicated one, a spare a launch
 * took is replaced, and a kill -9 during provisioning converges after a
 * restart with nothing lost, duplicated or orphaned.
 *
 * The broker runs its own pool manager on its vm_dir; the test looks at
 * the same folder with an hv_host of its own, read-only (serial logs,
 * VM folders), as an admin on the host would.
 */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tsbroker.h"
#include "tsguest.h"

#define BOOT_MS 120000 /* TCG boots take 6-10 s each; two cores */

static struct tsbroker broker;
static struct tsbroker_session admin, alice, bob, carol;

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

static void create_pool(const char *name, int min, int spare, int max,
                        const char *extra)
{
    char *body = tsbroker_pool_json(name, min, spare, max, extra);
    json_t *r = NULL;

    ck_assert_msg(
        tsbroker_call(&admin, "POST", "/api/v1/admin/pools", body, &r) == 201,
        "pool %s: %s", name, str(r, "message"));
    json_decref(r);
    free(body);
}

static void wait_desktop(const char *id, const char *state, const char *user)
{
    tsbroker_wait_state(&admin, id, state, user, BOOT_MS);
}

/* Launches pool for a session; returns the reply (status in *status). */
static json_t *launch(struct tsbroker_session *s, const char *pool,
                      const char *protocol, int *status)
{
    char path[160], body[64];
    json_t *r = NULL;

    snprintf(path, sizeof(path), "/api/v1/pools/%s/launch", pool);
    snprintf(body, sizeof(body), "{\"protocol\":\"%s\"}", protocol);
    *status = tsbroker_call(s, "POST", path, body, &r);
    return r;
}

/* The id of the desktop a successful launch got (static buffer). */
static const char *launched(struct tsbroker_session *s, const char *pool)
{
    static char id[80];
    int status;
    json_t *r = launch(s, pool, "browser", &status);

    ck_assert_msg(status == 200, "launch %s: %d %s", pool, status,
                  str(r, "message"));
    ck_assert_uint_eq(strlen(str(r, "ticket")), 43);
    snprintf(id, sizeof(id), "%s", str(json_object_get(r, "desktop"), "id"));
    json_decref(r);
    return id;
}

static void post_ok(struct tsbroker_session *s, const char *fmt, const char *id)
{
    char path[200];
    json_t *r = NULL;

    snprintf(path, sizeof(path), fmt, id);
    ck_assert_msg(tsbroker_call(s, "POST", path, NULL, &r) == 200, "%s: %s",
                  path, str(r, "message"));
    json_decref(r);
}

static int count_desktops(const char *pool, const char *state)
{
    char path[160];
    json_t *r = NULL, *d;
    size_t i;
    int n = 0;

    snprintf(path, sizeof(path), "/api/v1/admin/desktops?pool=%s", pool);
    ck_assert_int_eq(tsbroker_call(&admin, "GET", path, NULL, &r), 200);
    json_array_foreach(json_object_get(r, "desktops"), i, d)
    {
        if (!state || !strcmp(str(d, "state"), state))
            n++;
    }
    json_decref(r);
    return n;
}

static void setup(void)
{
    tsbroker_init(&broker, 0);
    tsbroker_set(&broker, "stats_interval", "1"); /* the dashboard's */
    tsbroker_start(&broker);
    tsbroker_connect(&broker, &admin);
    tsbroker_connect(&broker, &alice);
    tsbroker_connect(&broker, &bob);
    tsbroker_connect(&broker, &carol);
    ck_assert_int_eq(
        tsbroker_login(&broker, &admin, "admin", "admin-pw", NULL, 1), 200);
    ck_assert_int_eq(
        tsbroker_login(&broker, &alice, "alice", "alice-pw", NULL, 0), 200);
    ck_assert_int_eq(tsbroker_login(&broker, &bob, "bob", "bob-pw", NULL, 0),
                     200);
    ck_assert_int_eq(
        tsbroker_login(&broker, &carol, "carol", "carol-pw", NULL, 0), 200);
}

static void teardown(void)
{
    tsbroker_disconnect(&admin);
    tsbroker_disconnect(&alice);
    tsbroker_disconnect(&bob);
    tsbroker_disconnect(&carol);
    tsbroker_stop(&broker);
    tsbroker_remove_vms(&broker);
}

START_TEST(pool_converges_and_users_stay_apart)
{
    char mine[80], path[200];
    json_t *r = NULL;
    int status;

    create_pool("conv", 2, 1, 3, NULL);
    ck_assert_int_ge(tsbroker_wait_ready(&admin, "conv", 2, BOOT_MS), 2);
    ck_assert_int_eq(count_desktops("conv", NULL), 2); /* min 2, no more */

    snprintf(mine, sizeof(mine), "%s", launched(&alice, "conv"));
    wait_desktop(mine, "ASSIGNED", "alice");
    /* launching again gives alice the same desktop */
    ck_assert_str_eq(launched(&alice, "conv"), mine);
    /* one spare left (spare 1): nothing new */
    ck_assert_int_eq(count_desktops("conv", "READY"), 1);
    ck_assert_int_eq(count_desktops("conv", NULL), 2);

    /* bob sees only his own desktops and cannot touch alice's */
    ck_assert_int_eq(tsbroker_call(&bob, "GET", "/api/v1/desktops", NULL, &r),
                     200);
    ck_assert_uint_eq(json_array_size(json_object_get(r, "desktops")), 0);
    json_decref(r);
    snprintf(path, sizeof(path), "/api/v1/desktops/%s", mine);
    ck_assert_int_eq(tsbroker_call(&bob, "GET", path, NULL, NULL), 404);
    snprintf(path, sizeof(path), "/api/v1/desktops/%s/logoff", mine);
    ck_assert_int_eq(tsbroker_call(&bob, "POST", path, NULL, NULL), 404);
    snprintf(path, sizeof(path), "/api/v1/desktops/%s/rdp", mine);
    ck_assert_int_eq(tsbroker_call(&bob, "GET", path, NULL, NULL), 404);
    ck_assert_int_eq(tsbroker_call(&alice, "GET", path, NULL, NULL), 200);
    ck_assert_str_ne(launched(&bob, "conv"), mine);
    /* bob took the spare: a new one is made, up to max (3) */
    ck_assert_int_ge(tsbroker_wait_ready(&admin, "conv", 1, BOOT_MS), 1);
    ck_assert_int_eq(count_desktops("conv", NULL), 3);

    /* carol is not entitled: the pool does not exist for her */
    ck_assert_int_eq(tsbroker_call(&carol, "GET", "/api/v1/pools", NULL, &r),
                     200);
    ck_assert_uint_eq(json_array_size(json_object_get(r, "pools")), 0);
    json_decref(r);
    r = launch(&carol, "conv", "browser", &status);
    ck_assert_int_eq(status, 404);
    json_decref(r);
}
END_TEST

/* The admin's view of a running desktop: the VM's shape from its pool,
 * its QEMU's memory and CPU from the manager's sampling passes (CPU use
 * needs two of them, one stats_interval apart). */
static void running_desktop_shows_its_use(const char *id)
{
    char path[200];
    long long until = tsguest_now_ms() + 20000;
    json_t *r = NULL, *d;

    snprintf(path, sizeof(path), "/api/v1/admin/desktops/%s", id);
    for (;;) {
        json_decref(r);
        r = NULL;
        ck_assert_int_eq(tsbroker_call(&admin, "GET", path, NULL, &r), 200);
        if (json_object_get(r, "cpu_percent") || tsguest_now_ms() > until)
            break;
        tsguest_sleep_ms(200);
    }
    ck_assert_msg(json_is_number(json_object_get(r, "cpu_percent")),
                  "no cpu_percent for a running desktop");
    ck_assert_double_ge(json_number_value(json_object_get(r, "cpu_percent")),
                        0);
    ck_assert_int_gt(json_integer_value(json_object_get(r, "rss_mb")), 0);
    /* a QEMU does not hold more than its guest's memory and a bit */
    ck_assert_int_lt(json_integer_value(json_object_get(r, "rss_mb")),
                     TSGUEST_MEMORY_MB + 1024);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "vcpus")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "memory_mb")),
                     TSGUEST_MEMORY_MB);
    ck_assert_str_eq(str(r, "client"), "");
    json_decref(r);
    /* the list says the same */
    ck_assert_int_eq(tsbroker_call(&admin, "GET",
                                   "/api/v1/admin/desktops?pool=obs", NULL, &r),
                     200);
    d = json_array_get(json_object_get(r, "desktops"), 0);
    ck_assert_str_eq(str(d, "id"), id);
    ck_assert_int_gt(json_integer_value(json_object_get(d, "rss_mb")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "memory_mb")),
                     TSGUEST_MEMORY_MB);
    json_decref(r);
}

/* The dashboard's history comes to show the pool's ready desktop (the
 * next sample after it became READY), and the pool now shows its size. */
static void dashboard_shows_the_ready_desktop(void)
{
    json_t *r = NULL, *s, *p;
    long long t, until = tsguest_now_ms() + 20000;
    size_t i;
    int seen = 0;

    while (!seen && tsguest_now_ms() < until) {
        json_decref(r);
        r = NULL;
        ck_assert_int_eq(
            tsbroker_call(&admin, "GET", "/api/v1/admin/stats", NULL, &r), 200);
        ck_assert_int_eq(json_integer_value(json_object_get(r, "interval")), 1);
        t = 0;
        json_array_foreach(json_object_get(r, "samples"), i, s)
        {
            ck_assert_int_gt(json_integer_value(json_object_get(s, "t")), t);
            t = json_integer_value(json_object_get(s, "t")); /* oldest 1st */
            seen |= json_integer_value(json_object_get(s, "ready")) == 1 &&
                    json_integer_value(json_object_get(s, "in_use")) == 0;
        }
        if (!seen)
            tsguest_sleep_ms(250);
    }
    if (!seen) {
        char *text = json_dumps(r, JSON_COMPACT);

        ck_abort_msg("no sample shows the ready desktop: %s", text);
    }
    /* the history started before the desktop was ready */
    s = json_array_get(json_object_get(r, "samples"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(s, "ready")), 0);
    p = json_array_get(json_object_get(r, "pools"), 0);
    ck_assert_str_eq(str(p, "name"), "obs");
    ck_assert_int_eq(json_integer_value(json_object_get(p, "max")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "desktops")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "ready")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "in_use")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "provisioning")), 0);
    json_decref(r);
}

START_TEST(admin_sees_screens_and_metrics)
{
    struct bk_response resp;
    struct tsbroker_session anon;
    json_t *r = NULL;
    char id[80], path[200];

    create_pool("obs", 1, 1, 1, NULL);
    ck_assert_int_ge(tsbroker_wait_ready(&admin, "obs", 1, BOOT_MS), 1);
    ck_assert_int_eq(tsbroker_call(&admin, "GET",
                                   "/api/v1/admin/desktops?pool=obs", NULL, &r),
                     200);
    snprintf(id, sizeof(id), "%s",
             str(json_array_get(json_object_get(r, "desktops"), 0), "id"));
    json_decref(r);
    /* a PNG of the desktop's screen */
    snprintf(path, sizeof(path), "/api/v1/admin/desktops/%s/screenshot", id);
    ck_assert_int_eq(tsbroker_raw(&admin, "GET", path, NULL, NULL, 0, &resp),
                     200);
    ck_assert_uint_gt(resp.len, 1000);
    ck_assert_int_eq(memcmp(resp.body, "\x89PNG\r\n\x1a\n", 8), 0);
    bk_response_free(&resp);
    running_desktop_shows_its_use(id);
    dashboard_shows_the_ready_desktop();
    /* Prometheus text: desktops by state, logins, launches */
    tsbroker_connect(&broker, &anon); /* loopback needs no session */
    ck_assert_int_eq(
        tsbroker_raw(&anon, "GET", "/metrics", NULL, NULL, 0, &resp), 200);
    ck_assert_ptr_nonnull(
        strstr(resp.body, "deskpool_desktops{pool=\"obs\",state=\"READY\"} 1"));
    ck_assert_ptr_nonnull(
        strstr(resp.body, "deskpool_logins_total{result=\"ok\"} 4"));
    ck_assert_ptr_nonnull(strstr(resp.body, "deskpool_launch_seconds_count"));
    ck_assert_ptr_nonnull(
        strstr(resp.body, "deskpool_sessions{state=\"CONNECTED\"} 0"));
    bk_response_free(&resp);
    tsbroker_disconnect(&anon);
}
END_TEST

START_TEST(maintenance_and_rolling_image_update)
{
    char old[80];
    json_t *r = NULL, *d;
    int status;
    long long deadline;

    create_pool("roll", 1, 1, 1, NULL);
    ck_assert_int_ge(tsbroker_wait_ready(&admin, "roll", 1, BOOT_MS), 1);
    ck_assert_int_eq(tsbroker_call(&admin, "GET",
                                   "/api/v1/admin/desktops?pool=roll", NULL,
                                   &r),
                     200);
    d = json_array_get(json_object_get(r, "desktops"), 0);
    snprintf(old, sizeof(old), "%s", str(d, "id"));
    ck_assert_int_eq(json_integer_value(json_object_get(d, "image_gen")), 1);
    json_decref(r);

    /* maintenance: no launches */
    ck_assert_int_eq(tsbroker_call(&admin, "PATCH", "/api/v1/admin/pools/roll",
                                   "{\"maintenance\":true}", NULL),
                     200);
    r = launch(&alice, "roll", "browser", &status);
    ck_assert_int_eq(status, 409);
    json_decref(r);
    ck_assert_int_eq(tsbroker_call(&admin, "PATCH", "/api/v1/admin/pools/roll",
                                   "{\"maintenance\":false}", NULL),
                     200);

    /* a new image (here: a new kernel command line) replaces the old
     * spare with one made from it */
    ck_assert_int_eq(tsbroker_call(&admin, "PATCH", "/api/v1/admin/pools/roll",
                                   "{\"cmdline\":\"" TSGUEST_CMDLINE
                                   " testdesk.mode=idle\"}",
                                   &r),
                     200);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "image_gen")), 2);
    json_decref(r);
    deadline = tsguest_now_ms() + BOOT_MS;
    for (;;) {
        int fresh = 0, stale = 0;
        size_t i;

        r = NULL;
        tsbroker_call(&admin, "GET", "/api/v1/admin/desktops?pool=roll", NULL,
                      &r);
        json_array_foreach(json_object_get(r, "desktops"), i, d)
        {
            if (json_integer_value(json_object_get(d, "image_gen")) == 2 &&
                !strcmp(str(d, "state"), "READY"))
                fresh++;
            if (!strcmp(str(d, "id"), old))
                stale++;
        }
        json_decref(r);
        if ((fresh == 1 && !stale) || tsguest_now_ms() > deadline) {
            ck_assert_msg(fresh == 1 && !stale,
                          "rolling update: %d new ready, old one %s", fresh,
                          stale ? "still there" : "gone");
            break;
        }
        tsguest_sleep_ms(250);
    }
    ck_assert_str_ne(launched(&alice, "roll"), old);
}
END_TEST

START_TEST(logoff_refreshes_a_floating_desktop)
{
    struct hv_host *h = NULL;
    char id[80];
    json_t *r = NULL;

    /* max 1: no second spare appears meanwhile, so the refreshed desktop
     * is not a surplus spare the pool deletes (half the time, that would
     * be this one) */
    create_pool("fl", 1, 1, 1, NULL);
    ck_assert_int_ge(tsbroker_wait_ready(&admin, "fl", 1, BOOT_MS), 1);
    snprintf(id, sizeof(id), "%s", launched(&alice, "fl"));
    ck_assert_int_eq(tsguest_host_open(&h, broker.vm), 0);
    ck_assert_int_eq(
        tsguest_wait_serial(h, id, "deskpool-guest: boot 1\r\n", 1, BOOT_MS),
        0);
    /* a reboot keeps the guest's writes: its boot counter says 2 */
    post_ok(&admin, "/api/v1/admin/desktops/%s/reset", id);
    ck_assert_int_eq(
        tsguest_wait_serial(h, id, "deskpool-guest: boot 2\r\n", 1, BOOT_MS),
        0);
    post_ok(&alice, "/api/v1/desktops/%s/logoff", id);
    wait_desktop(id, "READY", "");
    /* refreshed: a clean disk counts its first boot again */
    ck_assert_int_eq(
        tsguest_wait_serial(h, id, "deskpool-guest: boot 1\r\n", 1, BOOT_MS),
        0);
    ck_assert_int_eq(tsguest_serial_count(h, id, "deskpool-guest: boot 2\r\n"),
                     0);
    ck_assert_int_eq(tsbroker_call(&alice, "GET", "/api/v1/desktops", NULL, &r),
                     200);
    ck_assert_uint_eq(json_array_size(json_object_get(r, "desktops")), 0);
    json_decref(r);
    /* the admin sees it all in the audit log */
    ck_assert_int_eq(tsbroker_call(&admin, "GET",
                                   "/api/v1/admin/events?pool=fl&limit=100",
                                   NULL, &r),
                     200);
    ck_assert(tsbroker_json_has(r, "\"refreshed\""));
    ck_assert(tsbroker_json_has(r, "\"logoff\""));
    ck_assert(tsbroker_json_has(r, "\"launch\""));
    json_decref(r);
    hv_host_close(h);
}
END_TEST

START_TEST(logoff_keeps_a_dedicated_desktop)
{
    struct hv_host *h = NULL;
    char id[80];

    create_pool("dd", 1, 1, 2, "{\"type\":\"dedicated\"}");
    ck_assert_int_ge(tsbroker_wait_ready(&admin, "dd", 1, BOOT_MS), 1);
    snprintf(id, sizeof(id), "%s", launched(&alice, "dd"));
    ck_assert_int_eq(tsguest_host_open(&h, broker.vm), 0);
    post_ok(&admin, "/api/v1/admin/desktops/%s/reset", id);
    ck_assert_int_eq(
        tsguest_wait_serial(h, id, "deskpool-guest: boot 2\r\n", 1, BOOT_MS),
        0);
    post_ok(&alice, "/api/v1/desktops/%s/logoff", id);
    /* still alice's, not refreshed: the disk still says boot 2 */
    wait_desktop(id, "READY", "alice");
    ck_assert_int_eq(tsguest_serial_count(h, id, "deskpool-guest: boot 2\r\n"),
                     1);
    ck_assert_str_eq(launched(&alice, "dd"), id);
    /* bob gets another one */
    ck_assert_int_ge(tsbroker_wait_ready(&admin, "dd", 1, BOOT_MS), 1);
    ck_assert_str_ne(launched(&bob, "dd"), id);
    hv_host_close(h);
}
END_TEST

START_TEST(launch_waits_for_a_desktop_when_none_is_ready)
{
    int status;
    json_t *r;

    /* no spares: the launch itself asks for a desktop and waits for it */
    create_pool("od", 0, 0, 1, NULL);
    ck_assert_int_eq(count_desktops("od", NULL), 0);
    r = launch(&alice, "od", "browser", &status);
    ck_assert_msg(status == 200, "%d %s", status, str(r, "message"));
    ck_assert_str_eq(str(json_object_get(r, "desktop"), "user"), "alice");
    json_decref(r);
    /* max 1: bob waits, then hears it is being prepared (202) */
    r = launch(&bob, "od", "browser", &status);
    ck_assert_int_eq(status, 202);
    ck_assert_str_eq(str(r, "state"), "provisioning");
    json_decref(r);
}
END_TEST

START_TEST(a_taken_spare_is_replaced)
{
    char taken[80];

    /* The manager replaces a spare a launch took a little later (the
     * user's session starts first), waking by itself for it: with its
     * periodic pass an hour away, only that wake-up makes the new spare. */
    tsbroker_stop(&broker);
    tsbroker_set(&broker, "reconcile_interval", "3600");
    broker.port = 0;
    tsbroker_start(&broker);
    tsbroker_disconnect(&admin);
    tsbroker_connect(&broker, &admin);
    ck_assert_int_eq(
        tsbroker_login(&broker, &admin, "admin", "admin-pw", NULL, 1), 200);
    tsbroker_disconnect(&alice);
    tsbroker_connect(&broker, &alice);
    ck_assert_int_eq(
        tsbroker_login(&broker, &alice, "alice", "alice-pw", NULL, 0), 200);

    create_pool("sp", 0, 1, 2, NULL);
    ck_assert_int_ge(tsbroker_wait_ready(&admin, "sp", 1, BOOT_MS), 1);
    ck_assert_int_eq(count_desktops("sp", NULL), 1);
    snprintf(taken, sizeof(taken), "%s", launched(&alice, "sp"));
    wait_desktop(taken, "ASSIGNED", "alice");
    /* the pool has a spare again, a new desktop */
    ck_assert_int_ge(tsbroker_wait_ready(&admin, "sp", 1, BOOT_MS), 1);
    ck_assert_int_eq(count_desktops("sp", NULL), 2);
    wait_desktop(taken, "ASSIGNED", "alice");
}
END_TEST

/* Folders of VMs in vm_dir/vms, and QEMU processes naming vm_dir. */
static int count_vm_dirs(void)
{
    char path[200];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(path, sizeof(path), "%s/vms", broker.vm);
    d = opendir(path);
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static int count_qemus(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    while ((e = readdir(d))) {
        char path[300], cmd[4096] = "", state[512] = "";
        FILE *f;
        size_t len, i;

        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (!f)
            continue;
        len = fread(state, 1, sizeof(state) - 1, f);
        fclose(f);
        state[len] = '\0';
        if (strstr(state, ") Z")) /* zombies are gone, not running */
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        f = fopen(path, "r");
        if (!f)
            continue;
        len = fread(cmd, 1, sizeof(cmd) - 1, f);
        fclose(f);
        for (i = 0; i < len; i++)
            if (!cmd[i])
                cmd[i] = ' ';
        cmd[len] = '\0';
        if (strstr(cmd, "qemu-system") && strstr(cmd, broker.vm))
            n++;
    }
    closedir(d);
    return n;
}

START_TEST(kill9_during_provisioning_converges)
{
    int i;

    create_pool("kp", 2, 1, 3, NULL);
    /* the manager is at work on the new pool: crash it mid-way, twice */
    tsguest_sleep_ms(300);
    tsbroker_kill9(&broker);
    broker.port = 0;
    tsbroker_start(&broker);
    tsguest_sleep_ms(1500);
    tsbroker_kill9(&broker);
    broker.port = 0;
    tsbroker_start(&broker);
    tsbroker_disconnect(&admin);
    tsbroker_connect(&broker, &admin);
    ck_assert_int_eq(
        tsbroker_login(&broker, &admin, "admin", "admin-pw", NULL, 1), 200);
    ck_assert_int_ge(tsbroker_wait_ready(&admin, "kp", 2, BOOT_MS), 2);
    /* give a straggler time to show itself, then count everything */
    for (i = 0; i < 8; i++) {
        tsguest_sleep_ms(500);
        ck_assert_int_eq(count_desktops("kp", NULL), 2);
    }
    ck_assert_int_eq(count_vm_dirs(), 2); /* no orphan disks */
    ck_assert_int_eq(count_qemus(), 2);   /* no orphan or double VMs */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("broker_pool");
    TCase *tc = tcase_create("pools");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, pool_converges_and_users_stay_apart);
    tcase_add_test(tc, admin_sees_screens_and_metrics);
    tcase_add_test(tc, maintenance_and_rolling_image_update);
    tcase_add_test(tc, logoff_refreshes_a_floating_desktop);
    tcase_add_test(tc, logoff_keeps_a_dedicated_desktop);
    tcase_add_test(tc, launch_waits_for_a_desktop_when_none_is_ready);
    tcase_add_test(tc, a_taken_spare_is_replaced);
    tcase_add_test(tc, kill9_during_provisioning_converges);
    suite_add_tcase(s, tc);
    return tsguest_run_suite(s);
}
