/*
 * tsrdpenv.c - the broker, display and pool RDP client tests log into
 * (see tsrdpenv.h).
 */
#include "tsrdpenv.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#define TSRDPENV_BOOT_MS 120000

void tsrdpenv_start(struct tsrdpenv *e)
{
    struct tsbroker *b = e->broker;
    char *pool;

    tsbroker_init(b, 0);
    tsbroker_set(b, "ticket_ttl", "30");
    snprintf(e->broker_socket, sizeof(e->broker_socket), "%s/broker.sock",
             b->dir);
    tsdisplay_start_for(e->display, b, 1);
    tsbroker_start(b);
    tsbroker_connect(b, e->admin);
    tsbroker_connect(b, e->alice);
    ck_assert_int_eq(tsbroker_login(b, e->admin, "admin", "admin-pw", NULL, 1),
                     200);
    ck_assert_int_eq(tsbroker_login(b, e->alice, "alice", "alice-pw", NULL, 0),
                     200);
    pool = tsbroker_pool_json(TSRDPENV_POOL, 1, 1, 2, NULL);
    ck_assert_int_eq(
        tsbroker_call(e->admin, "POST", "/api/v1/admin/pools", pool, NULL),
        201);
    free(pool);
    ck_assert_int_ge(
        tsbroker_wait_ready(e->admin, TSRDPENV_POOL, 1, TSRDPENV_BOOT_MS), 1);
    e->rdp_port = tsdisplay_rdp_port(e->display);
}

void tsrdpenv_stop(struct tsrdpenv *e)
{
    tsbroker_disconnect(e->admin);
    tsbroker_disconnect(e->alice);
    tsdisplay_stop(e->display);
    tsbroker_stop(e->broker);
    tsbroker_remove_vms(e->broker);
}

void tsrdpenv_alice_desktop(struct tsrdpenv *e, char *id, size_t size)
{
    json_t *r = NULL, *d;
    size_t i;

    id[0] = '\0';
    ck_assert_int_eq(
        tsbroker_call(e->alice, "GET", "/api/v1/desktops", NULL, &r), 200);
    json_array_foreach(json_object_get(r, "desktops"), i, d)
    {
        snprintf(id, size, "%s",
                 json_string_value(json_object_get(d, "id")) ?: "");
    }
    json_decref(r);
    ck_assert_msg(id[0], "alice has no desktop");
}
