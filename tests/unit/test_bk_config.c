/*
 * Unit tests of deskpool-broker's settings (broker/bk_config.h): the
 * defaults, a file's values, errors that name the file and line, values
 * that are refused, and the checks between settings (plain HTTP only on
 * loopback, TLS certificate and key together).
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bk_config.h"
#include "tsguest.h"

/* Files go in a folder the parent process makes and removes (unchecked
 * fixture), so a failed test leaves nothing behind. */
static char root[64];
static char path[128];

static int rm_entry(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

static void root_make(void)
{
    snprintf(root, sizeof(root), "/tmp/bk_config_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void root_remove(void)
{
    if (root[0])
        nftw(root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    root[0] = '\0';
}

static void write_file(const char *text)
{
    static int n;
    FILE *f;

    snprintf(path, sizeof(path), "%s/broker-%d-%d.ini", root, (int)getpid(),
             n++);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* Loads text over the defaults; err gets the message. */
static int load(struct bk_config *c, const char *text, char *err,
                size_t err_size)
{
    write_file(text);
    bk_config_defaults(c);
    err[0] = '\0';
    return bk_config_load(c, path, err, err_size);
}

/* text is refused, and the message starts with "FILE:LINE:". */
static void refused_at(const char *text, int line)
{
    struct bk_config c;
    char err[512], where[192];

    ck_assert_msg(load(&c, text, err, sizeof(err)) == -EINVAL, "accepted: %s",
                  text);
    snprintf(where, sizeof(where), "%s:%d: ", path, line);
    ck_assert_msg(!strncmp(err, where, strlen(where)),
                  "\"%s\" does not start with \"%s\" for: %s", err, where,
                  text);
}

START_TEST(defaults)
{
    struct bk_config c;
    char err[256];

    memset(&c, 0x5a, sizeof(c));
    bk_config_defaults(&c);
    ck_assert_str_eq(c.listen, "0.0.0.0");
    ck_assert_int_eq(c.port, 8443);
    ck_assert_str_eq(c.tls_cert, "");
    ck_assert_str_eq(c.tls_key, "");
    ck_assert_int_eq(c.plain_http, 0);
    ck_assert_int_eq(c.max_body, 65536);
    ck_assert_str_eq(c.qemu_user, "");
    ck_assert_str_eq(c.pam_service, "deskpool");
    ck_assert_str_eq(c.admin_group, "deskpool-admins");
    ck_assert_int_eq(c.session_idle, 1800);
    ck_assert_int_eq(c.session_max, 43200);
    ck_assert_int_eq(c.login_timeout, 120);
    ck_assert_int_eq(c.max_logins, 256);
    ck_assert_int_eq(c.user_failures, 5);
    ck_assert_int_eq(c.addr_failures, 20);
    ck_assert_int_eq(c.failure_window, 900);
    ck_assert_int_eq(c.lockout, 900);
    ck_assert_int_eq(c.ticket_ttl, 60);
    ck_assert_int_eq(c.launch_wait, 30);
    ck_assert_int_eq(c.provision_limit, 2);
    ck_assert_int_eq(c.reconcile_interval, 5);
    ck_assert_int_eq(c.stats_interval, 10);
    /* Paths the broker uses are absolute. */
    ck_assert_int_eq(c.state_dir[0], '/');
    ck_assert_int_eq(c.vm_dir[0], '/');
    ck_assert_int_eq(c.web_root[0], '/');
    ck_assert_int_eq(c.local_socket[0], '/');
    ck_assert_int_eq(c.display_socket[0], '/');
    ck_assert(c.public_host[0]);
    /* The defaults pass their own checks. */
    ck_assert_msg(bk_config_check(&c, err, sizeof(err)) == 0, "%s", err);
}
END_TEST

/* The documented example shows every key with its default: loading it
 * changes nothing, so it cannot drift from the code. */
START_TEST(example_file_shows_the_defaults)
{
    struct bk_config def, ex;
    char err[512];

    bk_config_defaults(&def);
    bk_config_defaults(&ex);
    ck_assert_msg(
        bk_config_load(&ex, "config/deskpool.ini", err, sizeof(err)) == 0, "%s",
        err);
    ck_assert_msg(memcmp(&def, &ex, sizeof(def)) == 0,
                  "config/deskpool.ini differs from the defaults");
}
END_TEST

START_TEST(file_values_apply)
{
    struct bk_config c, d;
    char err[512];

    ck_assert_msg(load(&c,
                       "; deskpool-broker\n"
                       "[broker]\n"
                       "listen = 127.0.0.1\n"
                       "port = 9443\n"
                       "\n"
                       "# login\n"
                       "plain_http = yes\n"
                       "state_dir = /srv/deskpool\n"
                       "vm_dir = /srv/deskpool/vm\n"
                       "public_host = desk.example.com\n"
                       "admin_group = vdi-admins\n"
                       "session_idle = 600\n"
                       "user_failures = 3\n"
                       "qemu_user = deskpool-qemu\n"
                       "launch_wait = 0\n",
                       err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_str_eq(c.listen, "127.0.0.1");
    ck_assert_int_eq(c.port, 9443);
    ck_assert_int_eq(c.plain_http, 1);
    ck_assert_str_eq(c.state_dir, "/srv/deskpool");
    ck_assert_str_eq(c.vm_dir, "/srv/deskpool/vm");
    ck_assert_str_eq(c.public_host, "desk.example.com");
    ck_assert_str_eq(c.admin_group, "vdi-admins");
    ck_assert_int_eq(c.session_idle, 600);
    ck_assert_int_eq(c.user_failures, 3);
    ck_assert_str_eq(c.qemu_user, "deskpool-qemu");
    ck_assert_int_eq(c.launch_wait, 0);
    /* What the file does not name keeps its default. */
    bk_config_defaults(&d);
    ck_assert_int_eq(c.session_max, d.session_max);
    ck_assert_str_eq(c.pam_service, d.pam_service);
    ck_assert_str_eq(c.web_root, d.web_root);

    /* IPv6 and an empty file are fine too. */
    ck_assert_msg(load(&c, "[broker]\nlisten = ::\n", err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_str_eq(c.listen, "::");
    ck_assert_msg(load(&c, "", err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(memcmp(&c, &d, sizeof(c)), 0);
}
END_TEST

START_TEST(errors_name_the_file_and_line)
{
    static const struct {
        const char *text;
        int line;
    } cases[] = {
        {"[broker]\n\nfrobnicate = 1\n", 3},
        {"[broker]\nport = 8443\n[brokr]\nport = 8443\n", 4},
        {"port = 8443\n", 1}, /* outside [broker] */
        {"[broker]\nport = 65536\n", 2},
        {"[broker]\nport = -1\n", 2},
        {"[broker]\nport = 84x3\n", 2},
        {"[broker]\nport = 0x20\n", 2},
        {"[broker]\nport =\n", 2},
        {"[broker]\nport = 99999999999999999999\n", 2},
        {"[broker]\nmax_body = 1023\n", 2},
        {"[broker]\nsession_idle = 30m\n", 2},
        {"[broker]\nprovision_limit = 0\n", 2},
        {"[broker]\nplain_http = maybe\n", 2},
        {"[broker]\nstate_dir = var/lib/deskpool\n", 2},
        {"[broker]\nweb_root = ~/web\n", 2},
        {"[broker]\ntls_cert = cert.pem\n", 2},
        {"[broker]\nstate_dir =\n", 2},
        {"[broker]\nlisten = localhost\n", 2},
        {"[broker]\nlisten = 0.0.0.0:8443\n", 2},
        {"[broker]\nlisten = [::1]\n", 2},
        {"[broker]\npublic_host = a\tb\n", 2},
        {"[broker]\nthis line has no equals sign\n", 2},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        refused_at(cases[i].text, cases[i].line);
}
END_TEST

START_TEST(messages_say_what_is_wrong)
{
    struct bk_config c;
    char err[512];

    load(&c, "[broker]\n\nfrobnicate = 1\n", err, sizeof(err));
    ck_assert_msg(strstr(err, "frobnicate"), "%s", err);
    load(&c, "[broker]\nport = 8443\n[brokr]\nport = 8443\n", err, sizeof(err));
    ck_assert_msg(strstr(err, "brokr"), "%s", err);
    load(&c, "[broker]\nmax_body = 1\n", err, sizeof(err));
    ck_assert_msg(strstr(err, "max_body"), "%s", err);
    load(&c, "[broker]\nstate_dir = rel\n", err, sizeof(err));
    ck_assert_msg(strstr(err, "state_dir") && strstr(err, "absolute"), "%s",
                  err);
    load(&c, "[broker]\nlisten = localhost\n", err, sizeof(err));
    ck_assert_msg(strstr(err, "listen") && strstr(err, "numeric"), "%s", err);
}
END_TEST

/* With several mistakes the message must name the first one and its
 * line, not the line of one mistake with the reason of another. */
START_TEST(first_error_is_reported_as_it_is)
{
    struct bk_config c;
    char err[512], where[192];

    ck_assert_int_eq(
        load(&c, "[broker]\nfrobnicate = 1\nport = 99999\n", err, sizeof(err)),
        -EINVAL);
    snprintf(where, sizeof(where), "%s:2: ", path);
    ck_assert_msg(!strncmp(err, where, strlen(where)) &&
                      strstr(err, "frobnicate"),
                  "line 2 is \"frobnicate = 1\", but the message is: %s", err);
}
END_TEST

START_TEST(missing_file)
{
    struct bk_config c;
    char err[256] = "";

    bk_config_defaults(&c);
    ck_assert_int_eq(
        bk_config_load(&c, "/nonexistent/deskpool.ini", err, sizeof(err)),
        -ENOENT);
    ck_assert_msg(strstr(err, "/nonexistent/deskpool.ini"), "%s", err);
}
END_TEST

/* A folder given as the settings file must not load as "no settings". */
START_TEST(folder_is_not_a_file)
{
    struct bk_config c;
    char err[256] = "";

    bk_config_defaults(&c);
    ck_assert_msg(bk_config_load(&c, root, err, sizeof(err)) < 0,
                  "the folder %s loaded as an empty settings file", root);
}
END_TEST

/* An indented line after a key is a libinih continuation line: its text
 * is appended to the previous key instead of setting its own. Either the
 * line sets its key, or it is an error; never a silent default. */
START_TEST(indented_keys_are_not_silently_lost)
{
    struct bk_config c;
    char err[512];
    int r = load(&c,
                 "[broker]\n"
                 "    public_host = desk.example.com\n"
                 "    port = 9443\n",
                 err, sizeof(err));

    if (r == 0) {
        ck_assert_msg(c.port == 9443,
                      "port = 9443 ignored (port %d, public_host \"%s\")",
                      c.port, c.public_host);
        ck_assert_str_eq(c.public_host, "desk.example.com");
    } else {
        ck_assert_int_eq(r, -EINVAL);
    }
}
END_TEST

START_TEST(set_one_key)
{
    static const char *const yes[] = {"yes", "true", "1"};
    static const char *const no[] = {"no", "false", "0"};
    struct bk_config c;
    char err[256], longp[200];
    size_t i;

    bk_config_defaults(&c);
    ck_assert_int_eq(bk_config_set(&c, "port", "443", err, sizeof(err)), 0);
    ck_assert_int_eq(c.port, 443);
    /* A refused value leaves the old one. */
    ck_assert_int_eq(bk_config_set(&c, "port", "http", err, sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(c.port, 443);
    ck_assert_msg(strstr(err, "port"), "%s", err);
    ck_assert_int_eq(
        bk_config_set(&c, "state_dir", "relative", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(c.state_dir, "/var/lib/deskpool");

    ck_assert_int_eq(bk_config_set(&c, "colour", "red", err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "colour"), "%s", err);

    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(
            bk_config_set(&c, "plain_http", yes[i], err, sizeof(err)), 0);
        ck_assert_int_eq(c.plain_http, 1);
        ck_assert_int_eq(
            bk_config_set(&c, "plain_http", no[i], err, sizeof(err)), 0);
        ck_assert_int_eq(c.plain_http, 0);
    }
    ck_assert_int_eq(bk_config_set(&c, "plain_http", "2", err, sizeof(err)),
                     -EINVAL);

    /* Optional settings may be emptied, required ones not. */
    ck_assert_int_eq(bk_config_set(&c, "qemu_user", "", err, sizeof(err)), 0);
    ck_assert_int_eq(bk_config_set(&c, "tls_cert", "", err, sizeof(err)), 0);
    ck_assert_int_eq(bk_config_set(&c, "pam_service", "", err, sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(bk_config_set(&c, "listen", "", err, sizeof(err)),
                     -EINVAL);

    /* Too long for the field (unix socket paths must fit sun_path). */
    memset(longp, 'a', sizeof(longp));
    longp[0] = '/';
    longp[BK_CONFIG_PATH_MAX] = '\0';
    ck_assert_int_eq(bk_config_set(&c, "local_socket", longp, err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(c.local_socket, "/run/deskpool/broker.sock");
    longp[BK_CONFIG_PATH_MAX - 1] = '\0';
    ck_assert_int_eq(bk_config_set(&c, "local_socket", longp, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(strlen(c.local_socket), BK_CONFIG_PATH_MAX - 1);
    longp[sizeof(c.vm_dir)] = '\0';
    ck_assert_int_eq(bk_config_set(&c, "vm_dir", longp, err, sizeof(err)),
                     -EINVAL);
    longp[sizeof(c.vm_dir) - 1] = '\0';
    ck_assert_int_eq(bk_config_set(&c, "vm_dir", longp, err, sizeof(err)), 0);
}
END_TEST

START_TEST(plain_http_only_on_loopback)
{
    static const char *const loopback[] = {"127.0.0.1", "127.0.0.53", "::1"};
    static const char *const other[] = {"0.0.0.0", "::", "192.0.2.10",
                                        "2001:db8::1"};
    struct bk_config c;
    char err[512];
    size_t i;

    for (i = 0; i < sizeof(loopback) / sizeof(*loopback); i++) {
        bk_config_defaults(&c);
        ck_assert_int_eq(
            bk_config_set(&c, "listen", loopback[i], err, sizeof(err)), 0);
        c.plain_http = 1;
        ck_assert_msg(bk_config_check(&c, err, sizeof(err)) == 0, "%s: %s",
                      loopback[i], err);
    }
    for (i = 0; i < sizeof(other) / sizeof(*other); i++) {
        bk_config_defaults(&c);
        ck_assert_int_eq(
            bk_config_set(&c, "listen", other[i], err, sizeof(err)), 0);
        ck_assert_int_eq(bk_config_check(&c, err, sizeof(err)), 0);
        c.plain_http = 1;
        ck_assert_msg(bk_config_check(&c, err, sizeof(err)) == -EINVAL,
                      "plain HTTP on %s accepted", other[i]);
        ck_assert_msg(strstr(err, "plain_http"), "%s", err);
    }

    /* The file is checked as a whole once read. */
    ck_assert_int_eq(load(&c, "[broker]\nplain_http = yes\n", err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, path) && strstr(err, "plain_http"), "%s", err);
    ck_assert_msg(load(&c, "[broker]\nplain_http = yes\nlisten = ::1\n", err,
                       sizeof(err)) == 0,
                  "%s", err);
}
END_TEST

START_TEST(tls_cert_and_key_together)
{
    struct bk_config c;
    char err[512];

    ck_assert_int_eq(load(&c, "[broker]\ntls_cert = /etc/deskpool/cert.pem\n",
                          err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "tls_cert") && strstr(err, "tls_key"), "%s", err);
    ck_assert_int_eq(load(&c, "[broker]\ntls_key = /etc/deskpool/key.pem\n",
                          err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(load(&c,
                       "[broker]\ntls_cert = /etc/deskpool/cert.pem\n"
                       "tls_key = /etc/deskpool/key.pem\n",
                       err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_str_eq(c.tls_cert, "/etc/deskpool/cert.pem");
    ck_assert_str_eq(c.tls_key, "/etc/deskpool/key.pem");

    bk_config_defaults(&c);
    ck_assert_int_eq(bk_config_set(&c, "tls_cert", "/etc/deskpool/cert.pem",
                                   err, sizeof(err)),
                     0);
    ck_assert_int_eq(bk_config_check(&c, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(session_idle_within_max)
{
    struct bk_config c;
    char err[512];

    ck_assert_int_eq(load(&c,
                          "[broker]\nsession_idle = 7200\nsession_max = 3600\n",
                          err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "session_idle"), "%s", err);
    ck_assert_msg(load(&c,
                       "[broker]\nsession_idle = 3600\nsession_max = 3600\n",
                       err, sizeof(err)) == 0,
                  "%s", err);
}
END_TEST

static Suite *bk_config_suite(void)
{
    Suite *s = suite_create("bk-config");
    TCase *tc = tcase_create("core");

    tcase_add_unchecked_fixture(tc, root_make, root_remove);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, example_file_shows_the_defaults);
    tcase_add_test(tc, file_values_apply);
    tcase_add_test(tc, errors_name_the_file_and_line);
    tcase_add_test(tc, messages_say_what_is_wrong);
    tcase_add_test(tc, first_error_is_reported_as_it_is);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, folder_is_not_a_file);
    tcase_add_test(tc, indented_keys_are_not_silently_lost);
    tcase_add_test(tc, set_one_key);
    tcase_add_test(tc, plain_http_only_on_loopback);
    tcase_add_test(tc, tls_cert_and_key_together);
    tcase_add_test(tc, session_idle_within_max);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tsguest_run_checks(bk_config_suite());
}
