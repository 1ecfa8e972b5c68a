/*
 * test_broker_instant.c - deskpool-broker's instant pools with real
 * test-image desktops: the pool's template is made in the background
 * while launches still get desktops (booted), then a launch with no spare
 * gets an instant clone within launch_wait, personalised by the broker
 * (its own hostname on the desktop's top bar), and a logoff gives a
 * floating desktop a fresh clone. A broker stopped while it makes a
 * template does not wait for it, and the next start makes it again.
 *
 * The test looks at the broker's vm_dir with an hv_host of its own for
 * screendumps and keys, as an admin on the host would.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv_template.h"
#include "td_layout.h"
#include "tsbroker.h"
#include "tsguest.h"
#include "tsppm.h"
#include "tsscreen.h"

#define BOOT_MS   120000 /* TCG boots, and a template beside them */
#define SCREEN_MS 30000

static struct tsbroker broker;
static struct tsbroker_session admin, alice, bob;

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

static json_t *launch(struct tsbroker_session *s, const char *pool, int *status)
{
    char path[160];
    json_t *r = NULL;

    snprintf(path, sizeof(path), "/api/v1/pools/%s/launch", pool);
    *status = tsbroker_call(s, "POST", path, "{\"protocol\":\"browser\"}", &r);
    return r;
}

/* Launches until a desktop comes (202 "provisioning" while it is made). */
static void launch_until(struct tsbroker_session *s, const char *pool, char *id,
                         size_t size)
{
    long long until = tsguest_now_ms() + BOOT_MS;

    for (;;) {
        int status;
        json_t *r = launch(s, pool, &status);

        if (status == 200) {
            snprintf(id, size, "%s", str(json_object_get(r, "desktop"), "id"));
            ck_assert_uint_eq(strlen(str(r, "ticket")), 43);
            json_decref(r);
            return;
        }
        ck_assert_msg(status == 202 && tsguest_now_ms() < until,
                      "launch %s: %d %s", pool, status, str(r, "message"));
        json_decref(r);
        tsguest_sleep_ms(1000);
    }
}

static json_t *desktop(const char *id)
{
    char path[200];
    json_t *r = NULL;

    snprintf(path, sizeof(path), "/api/v1/admin/desktops/%s", id);
    ck_assert_int_eq(tsbroker_call(&admin, "GET", path, NULL, &r), 200);
    return r;
}

/* The desktop's screen shows hostname (NULL: any) in its top bar and text
 * in its text box (polled: testdesk re-reads the hostname every second). */
static void poll_screen(struct hv_host *h, const char *id, const char *hostname,
                        const char *text)
{
    long long until = tsguest_now_ms() + SCREEN_MS;
    char why[512] = "no screendump";

    for (;;) {
        struct tsppm *img = NULL;
        int ok = 0;

        if (tsguest_screen(h, id, &img) == 0) {
            struct tsscreen s = tsscreen_from_ppm(img);

            ok = (!hostname ||
                  !tsscreen_hostname_why(&s, hostname, why, sizeof(why))) &&
                 tsscreen_textbox_why(&s, text, why, sizeof(why)) == 0;
        }
        tsppm_free(img);
        if (ok)
            return;
        if (tsguest_now_ms() > until) {
            tsguest_keep_screen(h, id, "test_broker_instant", id);
            ck_abort_msg("%s: %s", id, why);
        }
        tsguest_sleep_ms(250);
    }
}

/* An instant clone the broker personalised, in state (and user). */
static void assert_instant(const char *id, const char *state, const char *user)
{
    json_t *d;

    tsbroker_wait_state(&admin, id, state, user, BOOT_MS);
    d = desktop(id);
    ck_assert_str_eq(str(d, "provisioning"), "instant");
    ck_assert_msg(json_is_true(json_object_get(d, "personalised")),
                  "%s not personalised", id);
    json_decref(d);
}

/* With two clones of the template running, the admin API splits clone
 * id's resident memory: much of it is shared (the template's RAM in the
 * page cache that both read), and the two parts add up to its RSS. The
 * broker samples every stats_interval (10 s). */
static void assert_shared_memory(const char *id)
{
    long long until = tsguest_now_ms() + SCREEN_MS;

    for (;;) {
        json_t *d = desktop(id);
        json_int_t rss = json_integer_value(json_object_get(d, "rss_mb")),
                   own = json_integer_value(json_object_get(d, "private_mb")),
                   shared = json_integer_value(json_object_get(d, "shared_mb"));
        int sampled = json_object_get(d, "shared_mb") != NULL;

        json_decref(d);
        if (sampled && shared >= 16) {
            ck_assert_msg(own > 0 && own + shared <= rss + 1 &&
                              own + shared >= rss - 1,
                          "%s: private %lld + shared %lld MiB vs RSS %lld", id,
                          (long long)own, (long long)shared, (long long)rss);
            return;
        }
        ck_assert_msg(tsguest_now_ms() < until, "%s: %s (shared %lld MiB)", id,
                      sampled ? "too little shared" : "no memory split",
                      (long long)shared);
        tsguest_sleep_ms(1000);
    }
}

static void setup(void)
{
    tsbroker_init(&broker, 0);
    tsbroker_start(&broker);
    tsbroker_connect(&broker, &admin);
    tsbroker_connect(&broker, &alice);
    tsbroker_connect(&broker, &bob);
    ck_assert_int_eq(
        tsbroker_login(&broker, &admin, "admin", "admin-pw", NULL, 1), 200);
    ck_assert_int_eq(
        tsbroker_login(&broker, &alice, "alice", "alice-pw", NULL, 0), 200);
    ck_assert_int_eq(tsbroker_login(&broker, &bob, "bob", "bob-pw", NULL, 0),
                     200);
}

static void teardown(void)
{
    tsbroker_disconnect(&admin);
    tsbroker_disconnect(&alice);
    tsbroker_disconnect(&bob);
    tsbroker_stop(&broker);
    tsbroker_remove_vms(&broker); /* and the templates in its folder */
}

START_TEST(launch_with_no_spare_gets_an_instant_clone)
{
    char *body =
        tsbroker_pool_json("inst", 0, 0, 2, "{\"provisioning\":\"instant\"}");
    char first[80], b[80], again[80], path[200];
    struct hv_host *h = NULL;
    json_t *r = NULL;
    int status;

    ck_assert_int_eq(
        tsbroker_call(&admin, "POST", "/api/v1/admin/pools", body, &r), 201);
    ck_assert_str_eq(str(r, "provisioning"), "instant");
    json_decref(r);
    free(body);
    ck_assert_int_eq(tsguest_host_open(&h, broker.vm), 0);

    /* While the template is first made, a launch still gets a desktop
     * (booted, so neither instant nor personalised). */
    launch_until(&alice, "inst", first, sizeof(first));
    r = desktop(first);
    ck_assert_str_eq(str(r, "user"), "alice");
    ck_assert_str_eq(str(r, "provisioning"), "boot");
    ck_assert(json_is_false(json_object_get(r, "personalised")));
    json_decref(r);
    tsbroker_wait_template(&broker, &admin, "inst", "ready", BOOT_MS);

    /* Zero spares, template ready: bob's first launch waits for a clone
     * and gets it within launch_wait. */
    r = launch(&bob, "inst", &status);
    ck_assert_msg(status == 200, "bob's launch: %d %s", status,
                  str(r, "message"));
    snprintf(b, sizeof(b), "%s", str(json_object_get(r, "desktop"), "id"));
    ck_assert_str_eq(str(json_object_get(r, "desktop"), "provisioning"),
                     "instant");
    json_decref(r);
    assert_instant(b, "ASSIGNED", "bob");
    /* a working desktop with a hostname of its own: its id */
    poll_screen(h, b, b, "");

    /* alice logs off her booted desktop: a floating desktop of an instant
     * pool comes back as a fresh clone. She types first, so the fresh one
     * is told apart by its empty text box. */
    ck_assert_int_eq(tsguest_type_text(h, first, "dirty"), 0);
    poll_screen(h, first, NULL, "dirty");
    snprintf(path, sizeof(path), "/api/v1/desktops/%s/logoff", first);
    ck_assert_int_eq(tsbroker_call(&alice, "POST", path, NULL, NULL), 200);
    /* it is READY (a surplus spare may be deleted at once) or gone; her
     * next launch gets a clone either way */
    launch_until(&alice, "inst", again, sizeof(again));
    assert_instant(again, "ASSIGNED", "alice");
    ck_assert_str_ne(again, b);
    poll_screen(h, again, again, "");
    assert_shared_memory(b);
    hv_host_close(h);
}
END_TEST

/* Templates of the broker's folder: complete and incomplete ones. */
static void count_templates(struct hv_host *h, int *complete, int *incomplete)
{
    struct hv_template_info *v = NULL;
    size_t n = 0;

    *complete = *incomplete = 0;
    ck_assert_int_eq(hv_template_list(h, &v, &n), 0);
    for (size_t i = 0; i < n; i++)
        (*(v[i].complete ? complete : incomplete))++;
    free(v);
}

/* A broker stopping while a template is being made does not wait for it
 * (and leaks nothing under the sanitizers); the next start collects the
 * half-made template and makes it again. */
START_TEST(a_template_interrupted_by_a_stop_is_made_again)
{
    char *body =
        tsbroker_pool_json("again", 0, 0, 1, "{\"provisioning\":\"instant\"}");
    struct hv_host *h = NULL;
    long long t0;
    int complete, incomplete;

    ck_assert_int_eq(
        tsbroker_call(&admin, "POST", "/api/v1/admin/pools", body, NULL), 201);
    free(body);
    tsbroker_wait_template(&broker, &admin, "again", "building", BOOT_MS);
    tsguest_sleep_ms(2000); /* its guest is booting */
    t0 = tsguest_now_ms();
    tsbroker_stop(&broker);
    ck_assert_int_lt(tsguest_now_ms() - t0, 10000);
    ck_assert_int_eq(tsguest_host_open(&h, broker.vm), 0);
    count_templates(h, &complete, &incomplete);
    ck_assert_int_eq(complete, 0);
    ck_assert_int_eq(incomplete, 1);

    broker.port = 0;
    tsbroker_start(&broker);
    tsbroker_disconnect(&admin);
    tsbroker_connect(&broker, &admin);
    ck_assert_int_eq(
        tsbroker_login(&broker, &admin, "admin", "admin-pw", NULL, 1), 200);
    tsbroker_wait_template(&broker, &admin, "again", "ready", BOOT_MS);
    ck_assert(tsbroker_log_contains(&broker, "deleted: incomplete"));
    count_templates(h, &complete, &incomplete);
    ck_assert_int_eq(complete, 1);
    ck_assert_int_eq(incomplete, 0);

    /* a deleted pool's template goes with it */
    ck_assert_int_eq(tsbroker_call(&admin, "DELETE",
                                   "/api/v1/admin/pools/again", NULL, NULL),
                     202);
    t0 = tsguest_now_ms();
    do {
        tsguest_sleep_ms(250);
        count_templates(h, &complete, &incomplete);
    } while (complete && tsguest_now_ms() - t0 < 30000);
    ck_assert_int_eq(complete, 0);
    hv_host_close(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("broker_instant");
    TCase *tc = tcase_create("instant");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 400);
    tcase_add_test(tc, launch_with_no_spare_gets_an_instant_clone);
    tcase_add_test(tc, a_template_interrupted_by_a_stop_is_made_again);
    suite_add_tcase(s, tc);
    return tsguest_run_suite(s);
}
