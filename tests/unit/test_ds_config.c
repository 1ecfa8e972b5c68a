/*
 * Unit tests of deskpool-display's settings (display/ds_config.h): the
 * defaults, the example file in config/, errors that name the line, and
 * the VNC listen address.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ds_config.h"
#include "tsguest.h"

static char path[64];

static void write_file(const char *text)
{
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/ds_config_XXXXXX");
    ck_assert_int_ge(mkstemp(path), 0);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void teardown(void)
{
    if (path[0])
        unlink(path);
    path[0] = '\0';
}

START_TEST(example_file_is_the_defaults)
{
    struct ds_config d, c;
    char err[256];

    ds_config_defaults(&d);
    ds_config_defaults(&c);
    /* Tests run from the repository root (make check). */
    ck_assert_msg(ds_config_load(&c, "config/deskpool-display.ini", err,
                                 sizeof(err)) == 0,
                  "%s", err);
    ck_assert_int_eq(memcmp(&c, &d, sizeof(c)), 0);
    ck_assert_str_eq(c.user, "nobody");
    ck_assert_int_eq(c.credential_ttl, 60);
    ck_assert_str_eq(c.vnc_listen, "");
    ck_assert_str_eq(c.rdp_listen, "0.0.0.0:3389");
    ck_assert_str_eq(c.tls_cert, "");
}
END_TEST

START_TEST(file_values_apply)
{
    struct ds_config c;
    char err[256], host[64];
    int port;

    write_file("[display]\nstate_dir = /srv/dp\nvnc_listen = [::1]:5901\n"
               "max_sessions = 12\nrdp_listen = 0.0.0.0:3389\n"
               "tls_cert = /etc/dp/rdp.crt\ntls_key = /etc/dp/rdp.key\n");
    ds_config_defaults(&c);
    ck_assert_int_eq(ds_config_load(&c, path, err, sizeof(err)), 0);
    ck_assert_str_eq(c.state_dir, "/srv/dp");
    ck_assert_int_eq(c.max_sessions, 12);
    ck_assert_int_eq(ds_config_vnc_addr(&c, host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 5901);
    ck_assert_int_eq(
        ds_config_listen_addr(c.rdp_listen, host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "0.0.0.0");
    ck_assert_int_eq(port, 3389);
    ck_assert_str_eq(c.tls_cert, "/etc/dp/rdp.crt");
    ck_assert_str_eq(c.tls_key, "/etc/dp/rdp.key");
}
END_TEST

START_TEST(errors_name_the_line)
{
    static const char *bad[] = {"[display]\n\nfrobnicate = 1\n",
                                "[other]\nuser = x\n",
                                "[display]\nmax_sessions = 0\n",
                                "[display]\nstats_interval = 5s\n",
                                "[display]\nstate_dir = relative/path\n",
                                "[display]\nvnc_listen = localhost:5900\n",
                                "[display]\nrdp_listen = 3389\n",
                                "[display]\ntls_key = key.pem\n"};
    struct ds_config c;
    char err[256];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(bad[i]);
        ds_config_defaults(&c);
        ck_assert_int_eq(ds_config_load(&c, path, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, path) && strchr(err, ':'),
                      "no file:line in \"%s\"", err);
        teardown();
    }
    write_file("[display]\n\nfrobnicate = 1\n");
    ds_config_load(&c, path, err, sizeof(err));
    ck_assert_msg(strstr(err, ":3:") && strstr(err, "frobnicate"), "%s", err);
    ck_assert_int_eq(ds_config_load(&c, "/nonexistent/x.ini", err, sizeof(err)),
                     -ENOENT);
}
END_TEST

START_TEST(vnc_listen_forms)
{
    static const struct {
        const char *v;
        int ok;
        const char *host;
        int port;
    } cases[] = {
        {"127.0.0.1:5900", 1, "127.0.0.1", 5900},
        {"0.0.0.0:0", 1, "0.0.0.0", 0},
        {"[::]:5900", 1, "::", 5900},
        {"host:5900", 0, NULL, 0},
        {"1.2.3.4", 0, NULL, 0},
        {"1.2.3.4:99999", 0, NULL, 0},
        {":5900", 0, NULL, 0},
        {"::1:5900", 0, NULL, 0},
        {"1.2.3.4:59x", 0, NULL, 0},
    };
    struct ds_config c;
    char err[256], host[64];
    size_t i;
    int port;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ds_config_defaults(&c);
        ck_assert_msg((ds_config_set(&c, "vnc_listen", cases[i].v, err,
                                     sizeof(err)) == 0) == cases[i].ok,
                      "vnc_listen %s", cases[i].v);
        if (!cases[i].ok)
            continue;
        ck_assert_int_eq(ds_config_vnc_addr(&c, host, sizeof(host), &port), 0);
        ck_assert_str_eq(host, cases[i].host);
        ck_assert_int_eq(port, cases[i].port);
    }
    ds_config_defaults(&c);
    ck_assert_int_eq(ds_config_vnc_addr(&c, host, sizeof(host), &port),
                     -ENOENT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ds-config");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, example_file_is_the_defaults);
    tcase_add_test(tc, file_values_apply);
    tcase_add_test(tc, errors_name_the_line);
    tcase_add_test(tc, vnc_listen_forms);
    suite_add_tcase(s, tc);
    return tsguest_run_checks(s);
}
