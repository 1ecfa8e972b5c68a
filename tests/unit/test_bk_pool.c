/*
 * Unit tests of pool settings (broker/bk_pool.h): what an admin's pool
 * object becomes (defaults, partial updates), what is refused and with
 * which message, pool names, entitlement, and the VM spec a pool's
 * desktops are made from (hypervisor-glue/hv_spec.h).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk_pool.h"
#include "hv_spec.h"
#include "tsguest.h"

#define GOLDEN "\"golden\":\"/srv/golden/desk.qcow2\""

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &jerr);

    ck_assert_msg(j != NULL, "bad test JSON: %s: %s", text, jerr.text);
    return j;
}

/* bk_pool_validate on JSON text; the message, if any, in err. */
static json_t *validate(const char *text, const json_t *base, char *err,
                        size_t err_size)
{
    json_t *in = load(text), *out;

    err[0] = '\0';
    out = bk_pool_validate(in, base, err, err_size);
    json_decref(in);
    return out;
}

static json_t *valid(const char *text)
{
    char err[256];
    json_t *p = validate(text, NULL, err, sizeof(err));

    ck_assert_msg(p != NULL, "%s refused: %s", text, err);
    return p;
}

/* text is refused with a message that starts with prefix. */
static void refused(const char *text, const char *prefix)
{
    char err[256];
    json_t *p = validate(text, NULL, err, sizeof(err));

    ck_assert_msg(p == NULL, "%s accepted", text);
    ck_assert_msg(!strncmp(err, prefix, strlen(prefix)),
                  "%s: message \"%s\" does not start with \"%s\"", text, err,
                  prefix);
}

START_TEST(defaults_are_filled_in)
{
    json_t *p = valid("{" GOLDEN "}");

    ck_assert_str_eq(bk_pool_str(p, "type"), "floating");
    ck_assert(!bk_pool_dedicated(p));
    ck_assert_int_eq(bk_pool_int(p, "min"), 0);
    ck_assert_int_eq(bk_pool_int(p, "max"), 10);
    ck_assert_int_eq(bk_pool_int(p, "spare"), 1);
    ck_assert_str_eq(bk_pool_str(p, "provisioning"), "boot");
    ck_assert_str_eq(bk_pool_str(p, "golden"), "/srv/golden/desk.qcow2");
    ck_assert_str_eq(bk_pool_str(p, "kernel"), "");
    ck_assert_str_eq(bk_pool_str(p, "initrd"), "");
    ck_assert_str_eq(bk_pool_str(p, "cmdline"), "");
    ck_assert_int_eq(bk_pool_int(p, "vcpus"), 1);
    ck_assert_int_eq(bk_pool_int(p, "memory_mb"), 1024);
    ck_assert_int_eq(bk_pool_int(p, "width"), 1024);
    ck_assert_int_eq(bk_pool_int(p, "height"), 768);
    ck_assert_str_eq(bk_pool_str(p, "accel"), "auto");
    ck_assert_int_eq(bk_pool_int(p, "idle_timeout"), 0);
    ck_assert_int_eq(bk_pool_int(p, "disconnect_timeout"), 0);
    ck_assert(json_is_false(json_object_get(p, "maintenance")));
    ck_assert(json_is_array(json_object_get(p, "users")));
    ck_assert_uint_eq(json_array_size(json_object_get(p, "users")), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(p, "groups")), 0);
    ck_assert_str_eq(bk_pool_str(p, "description"), "");
    /* Complete: every documented setting, nothing else. */
    ck_assert_uint_eq(json_object_size(p), 20);
    json_decref(p);
}
END_TEST

START_TEST(given_values_are_kept)
{
    json_t *p = valid("{" GOLDEN ",\"type\":\"dedicated\",\"min\":2,\"max\":6,"
                      "\"spare\":3,\"vcpus\":4,\"memory_mb\":4096,"
                      "\"width\":1920,\"height\":1080,\"accel\":\"tcg\","
                      "\"kernel\":\"/boot/vmlinuz\",\"initrd\":\"/boot/ird\","
                      "\"cmdline\":\"console=ttyS0 quiet\","
                      "\"idle_timeout\":600,\"disconnect_timeout\":3600,"
                      "\"maintenance\":true,\"users\":[\"alice\"],"
                      "\"groups\":[\"staff\",\"dev.ops\"],"
                      "\"description\":\"Finance desktops\"}");

    ck_assert(bk_pool_dedicated(p));
    ck_assert_int_eq(bk_pool_int(p, "min"), 2);
    ck_assert_int_eq(bk_pool_int(p, "max"), 6);
    ck_assert_int_eq(bk_pool_int(p, "spare"), 3);
    ck_assert_int_eq(bk_pool_int(p, "vcpus"), 4);
    ck_assert_int_eq(bk_pool_int(p, "memory_mb"), 4096);
    ck_assert_int_eq(bk_pool_int(p, "width"), 1920);
    ck_assert_int_eq(bk_pool_int(p, "height"), 1080);
    ck_assert_str_eq(bk_pool_str(p, "accel"), "tcg");
    ck_assert_str_eq(bk_pool_str(p, "cmdline"), "console=ttyS0 quiet");
    ck_assert_int_eq(bk_pool_int(p, "idle_timeout"), 600);
    ck_assert_int_eq(bk_pool_int(p, "maintenance"), 1);
    ck_assert_str_eq(
        json_string_value(json_array_get(json_object_get(p, "groups"), 1)),
        "dev.ops");
    ck_assert_str_eq(bk_pool_str(p, "description"), "Finance desktops");
    json_decref(p);

    /* The create request carries the pool's name; it is not a setting. */
    p = valid("{\"name\":\"finance\"," GOLDEN "}");
    ck_assert_ptr_null(json_object_get(p, "name"));
    json_decref(p);
}
END_TEST

START_TEST(unknown_and_missing_keys)
{
    char err[256];

    refused("{" GOLDEN ",\"colour\":\"red\"}", "colour: unknown setting");
    /* A typo of a real key is not silently ignored. */
    refused("{" GOLDEN ",\"memory\":2048}", "memory: unknown setting");
    refused("{}", "golden: required");
    refused("{\"max\":3}", "golden: required");
    refused("{\"golden\":\"\"}", "golden:");
    refused("{\"golden\":null}", "golden:");
    refused("[]", "a pool must be a JSON object");
    ck_assert_ptr_null(bk_pool_validate(NULL, NULL, err, sizeof(err)));
}
END_TEST

START_TEST(relative_paths_refused)
{
    refused("{\"golden\":\"golden/desk.qcow2\"}", "golden:");
    refused("{\"golden\":\"./desk.qcow2\"}", "golden:");
    refused("{" GOLDEN ",\"kernel\":\"vmlinuz\"}", "kernel:");
    refused("{" GOLDEN ",\"kernel\":\"/boot/vmlinuz\",\"initrd\":\"ird\"}",
            "initrd:");
}
END_TEST

START_TEST(out_of_range_and_wrong_types)
{
    static const struct {
        const char *json, *key;
    } cases[] = {
        {"\"min\":-1", "min:"},
        {"\"max\":1001", "max:"},
        {"\"spare\":-1", "spare:"},
        {"\"vcpus\":0", "vcpus:"},
        {"\"vcpus\":65", "vcpus:"},
        {"\"memory_mb\":63", "memory_mb:"},
        {"\"memory_mb\":1048577", "memory_mb:"},
        {"\"width\":319", "width:"},
        {"\"width\":8193", "width:"},
        {"\"height\":199", "height:"},
        {"\"idle_timeout\":-5", "idle_timeout:"},
        {"\"disconnect_timeout\":2592001", "disconnect_timeout:"},
        {"\"max\":\"5\"", "max:"},
        {"\"vcpus\":1.5", "vcpus:"},
        {"\"vcpus\":true", "vcpus:"},
        {"\"maintenance\":\"yes\"", "maintenance:"},
        {"\"maintenance\":1", "maintenance:"},
        {"\"type\":\"shared\"", "type:"},
        {"\"accel\":\"xen\"", "accel:"},
        {"\"provisioning\":\"clone\"", "provisioning:"},
        {"\"users\":\"alice\"", "users:"},
        {"\"groups\":{}", "groups:"},
        {"\"description\":5", "description:"},
    };
    char text[256];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "{" GOLDEN ",%s}", cases[i].json);
        refused(text, cases[i].key);
    }
    /* The bounds themselves are fine. */
    json_decref(valid("{" GOLDEN ",\"min\":1000,\"max\":1000,\"vcpus\":64,"
                      "\"memory_mb\":64,\"width\":320,\"height\":8192,"
                      "\"idle_timeout\":2592000}"));
}
END_TEST

START_TEST(settings_that_contradict)
{
    char err[256];

    refused("{" GOLDEN ",\"min\":5,\"max\":3}", "min:");
    refused("{" GOLDEN ",\"max\":2,\"spare\":3}", "spare:");
    /* The message of the header's example, with the default max. */
    ck_assert_ptr_null(
        validate("{" GOLDEN ",\"spare\":11}", NULL, err, sizeof(err)));
    ck_assert_str_eq(err, "spare: must be 0..max (10)");
    refused("{" GOLDEN ",\"initrd\":\"/boot/ird\"}", "initrd:");
    json_decref(valid("{" GOLDEN ",\"min\":3,\"max\":3,\"spare\":3}"));
}
END_TEST

START_TEST(provisioning_boot_or_instant)
{
    char err[256];
    json_t *p = valid("{" GOLDEN ",\"provisioning\":\"instant\"}");

    ck_assert_str_eq(bk_pool_str(p, "provisioning"), "instant");
    json_decref(p);
    json_decref(valid("{" GOLDEN ",\"provisioning\":\"boot\"}"));
    ck_assert_ptr_null(validate("{" GOLDEN ",\"provisioning\":\"restore\"}",
                                NULL, err, sizeof(err)));
    ck_assert_str_eq(err, "provisioning: must be one of boot|instant");
}
END_TEST

START_TEST(account_names)
{
    static const char *const bad[] = {
        "[\"bad name\"]",   "[\"a:b\"]",        "[\"a,b\"]", "[\"\"]",
        "[\"tab\\there\"]", "[\"del\\u007f\"]", "[5]",       "[null]",
    };
    char text[256], long_name[70];
    json_t *p;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "{" GOLDEN ",\"users\":%s}", bad[i]);
        refused(text, "users:");
        snprintf(text, sizeof(text), "{" GOLDEN ",\"groups\":%s}", bad[i]);
        refused(text, "groups:");
    }
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    snprintf(text, sizeof(text), "{" GOLDEN ",\"users\":[\"%s\"]}", long_name);
    refused(text, "users:");
    long_name[64] = '\0';
    snprintf(text, sizeof(text), "{" GOLDEN ",\"users\":[\"%s\"]}", long_name);
    json_decref(valid(text));

    p = valid("{" GOLDEN ",\"users\":[\"alice\",\"john.doe\",\"svc_1\","
              "\"user@EXAMPLE.COM\"],\"groups\":[\"domain-users@ad\"]}");
    json_decref(p);
}
END_TEST

START_TEST(control_characters_refused)
{
    static const char *const bad[] = {
        "\"description\":\"two\\nlines\"",
        "\"description\":\"a\\tb\"",
        "\"description\":\"bell\\u0007\"",
        "\"description\":\"del\\u007f\"",
        "\"cmdline\":\"console=ttyS0\\nrm -rf /\"",
        "\"golden\":\"/srv/golden/a\\u0001.qcow2\"",
        "\"golden\":\"/srv/golden/a\\u0000.qcow2\"", /* embedded NUL */
    };
    char text[256];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text),
                 "{" GOLDEN ",\"kernel\":\"/boot/vmlinuz\",%s}", bad[i]);
        ck_assert_msg(validate(text, NULL, (char[256]){0}, 256) == NULL,
                      "%s accepted", bad[i]);
    }
    json_decref(
        valid("{" GOLDEN ",\"description\":\"Caf\\u00e9 d\\u00e9sks\"}"));
}
END_TEST

START_TEST(string_lengths)
{
    char text[700], desc[520];

    memset(desc, 'x', 501);
    desc[501] = '\0';
    snprintf(text, sizeof(text), "{" GOLDEN ",\"description\":\"%s\"}", desc);
    refused(text, "description:");
    desc[500] = '\0';
    snprintf(text, sizeof(text), "{" GOLDEN ",\"description\":\"%s\"}", desc);
    json_decref(valid(text));
}
END_TEST

START_TEST(partial_update_keeps_base)
{
    json_t *base, *p;
    char err[256];

    base = valid("{" GOLDEN ",\"max\":4,\"vcpus\":2,\"users\":[\"alice\"],"
                 "\"maintenance\":true,\"description\":\"old\"}");
    /* The base as the store shows it carries more than settings. */
    json_object_set_new(base, "name", json_string("p1"));
    json_object_set_new(base, "image_gen", json_integer(3));
    json_object_set_new(base, "restrained", json_true());

    p = validate("{\"memory_mb\":2048,\"maintenance\":false}", base, err,
                 sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_int_eq(bk_pool_int(p, "memory_mb"), 2048);
    ck_assert_int_eq(bk_pool_int(p, "maintenance"), 0);
    ck_assert_str_eq(bk_pool_str(p, "golden"), "/srv/golden/desk.qcow2");
    ck_assert_int_eq(bk_pool_int(p, "max"), 4);
    ck_assert_int_eq(bk_pool_int(p, "vcpus"), 2);
    ck_assert_str_eq(bk_pool_str(p, "description"), "old");
    ck_assert_str_eq(
        json_string_value(json_array_get(json_object_get(p, "users"), 0)),
        "alice");
    /* Only settings come out. */
    ck_assert_ptr_null(json_object_get(p, "image_gen"));
    ck_assert_ptr_null(json_object_get(p, "restrained"));
    ck_assert_uint_eq(json_object_size(p), 20);
    json_decref(p);

    /* The update is checked with the base's other values. */
    ck_assert_ptr_null(validate("{\"min\":5}", base, err, sizeof(err)));
    ck_assert_msg(!strncmp(err, "min:", 4), "%s", err);
    ck_assert_ptr_null(validate("{\"vcpus\":0}", base, err, sizeof(err)));
    ck_assert_msg(!strncmp(err, "vcpus:", 6), "%s", err);
    ck_assert_ptr_null(validate("{\"frob\":1}", base, err, sizeof(err)));
    ck_assert_msg(!strncmp(err, "frob:", 5), "%s", err);

    p = validate("{\"golden\":\"/srv/golden/new.qcow2\"}", base, err,
                 sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_str_eq(bk_pool_str(p, "golden"), "/srv/golden/new.qcow2");
    ck_assert_int_eq(bk_pool_int(p, "max"), 4);
    json_decref(p);
    json_decref(base);
}
END_TEST

START_TEST(pool_names)
{
    static const char *const good[] = {"a", "pool-1", "9lives", "a-",
                                       "abcdefghijklmnopqrstuvwxyz012345"};
    static const char *const bad[] = {
        "",    "-a",  "Pool", "a_b", "a b",
        "a.b", "a/b", "é",    "a\n", "abcdefghijklmnopqrstuvwxyz0123456"};
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(bk_pool_name_ok(good[i]), "\"%s\" refused", good[i]);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!bk_pool_name_ok(bad[i]), "\"%s\" accepted", bad[i]);
    ck_assert(!bk_pool_name_ok(NULL));
}
END_TEST

START_TEST(entitlement)
{
    json_t *p = valid("{" GOLDEN ",\"users\":[\"alice\"],"
                      "\"groups\":[\"staff\",\"finance\"]}");
    json_t *none = json_array(), *other = json_pack("[s]", "dev"),
           *staff = json_pack("[ss]", "dev", "finance");
    json_t *nobody = valid("{" GOLDEN "}");

    ck_assert(bk_pool_entitled(p, "alice", none));
    ck_assert(bk_pool_entitled(p, "alice", NULL));
    ck_assert(bk_pool_entitled(p, "bob", staff));
    ck_assert(!bk_pool_entitled(p, "bob", other));
    ck_assert(!bk_pool_entitled(p, "bob", none));
    ck_assert(!bk_pool_entitled(p, "bob", NULL));
    /* Names are exact. */
    ck_assert(!bk_pool_entitled(p, "Alice", none));
    ck_assert(!bk_pool_entitled(p, "alic", none));
    /* A user named like an entitled group is not entitled by that. */
    ck_assert(!bk_pool_entitled(p, "staff", none));
    /* A group named like an entitled user is not either. */
    json_decref(other);
    other = json_pack("[s]", "alice");
    ck_assert(!bk_pool_entitled(p, "bob", other));
    /* An empty pool is nobody's. */
    ck_assert(!bk_pool_entitled(nobody, "alice", staff));

    json_decref(p);
    json_decref(nobody);
    json_decref(none);
    json_decref(other);
    json_decref(staff);
}
END_TEST

START_TEST(spec_from_pool)
{
    struct hv_spec s;
    char err[256] = "";
    json_t *p = valid("{" GOLDEN ",\"vcpus\":2,\"memory_mb\":2048,"
                      "\"width\":1280,\"height\":800,\"accel\":\"tcg\","
                      "\"kernel\":\"/boot/vmlinuz\",\"initrd\":\"/boot/ird\","
                      "\"cmdline\":\"console=ttyS0\"}");

    ck_assert_msg(bk_pool_spec(p, "finance-7", &s, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_str_eq(s.id, "finance-7");
    ck_assert_str_eq(s.name, "finance-7");
    ck_assert_int_eq(s.vcpus, 2);
    ck_assert_int_eq(s.memory_mb, 2048);
    ck_assert_int_eq(s.width, 1280);
    ck_assert_int_eq(s.height, 800);
    ck_assert_int_eq(s.accel, HV_ACCEL_TCG);
    ck_assert_str_eq(s.golden, "/srv/golden/desk.qcow2");
    ck_assert_str_eq(s.kernel, "/boot/vmlinuz");
    ck_assert_str_eq(s.initrd, "/boot/ird");
    ck_assert_str_eq(s.cmdline, "console=ttyS0");
    ck_assert_int_eq(s.net, HV_NET_NONE);
    ck_assert_int_eq(hv_spec_validate(&s, err, sizeof(err)), 0);
    json_decref(p);

    p = valid("{" GOLDEN "}");
    ck_assert_msg(bk_pool_spec(p, "p-1", &s, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(s.vcpus, 1);
    ck_assert_int_eq(s.memory_mb, 1024);
    ck_assert_int_eq(s.width, 1024);
    ck_assert_int_eq(s.height, 768);
    ck_assert_int_eq(s.accel, HV_ACCEL_AUTO);
    ck_assert_str_eq(s.kernel, "");

    ck_assert_int_eq(bk_pool_spec(p, "Bad Id", &s, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(bk_pool_spec(p, "", &s, err, sizeof(err)), -EINVAL);
    json_decref(p);
}
END_TEST

/* bk_pool.h: validation is "the only way in, so every stored pool is
 * complete and within bounds". A pool it accepts must give its desktops a
 * spec, or the pool is stored and then fails every provisioning (and is
 * restrained). */
static void accepted_means_usable(const char *text)
{
    struct hv_spec s;
    char err[256] = "";
    json_t *p = validate(text, NULL, err, sizeof(err));
    int r;

    if (!p)
        return; /* refused up front: fine */
    r = bk_pool_spec(p, "p-1", &s, err, sizeof(err));
    json_decref(p);
    ck_assert_msg(r == 0,
                  "%s is accepted as a pool but its desktops get no "
                  "spec: %s",
                  text, err);
}

START_TEST(accepted_golden_with_comma_is_usable)
{
    /* QEMU reads a comma as an option separator, so hv_spec refuses it. */
    accepted_means_usable("{\"golden\":\"/srv/golden/win,10.qcow2\"}");
}
END_TEST

START_TEST(accepted_cmdline_without_kernel_is_usable)
{
    accepted_means_usable("{" GOLDEN ",\"cmdline\":\"console=ttyS0\"}");
}
END_TEST

static Suite *bk_pool_suite(void)
{
    Suite *s = suite_create("bk-pool");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, defaults_are_filled_in);
    tcase_add_test(tc, given_values_are_kept);
    tcase_add_test(tc, unknown_and_missing_keys);
    tcase_add_test(tc, relative_paths_refused);
    tcase_add_test(tc, out_of_range_and_wrong_types);
    tcase_add_test(tc, settings_that_contradict);
    tcase_add_test(tc, provisioning_boot_or_instant);
    tcase_add_test(tc, account_names);
    tcase_add_test(tc, control_characters_refused);
    tcase_add_test(tc, string_lengths);
    tcase_add_test(tc, partial_update_keeps_base);
    tcase_add_test(tc, pool_names);
    tcase_add_test(tc, entitlement);
    tcase_add_test(tc, spec_from_pool);
    tcase_add_test(tc, accepted_golden_with_comma_is_usable);
    tcase_add_test(tc, accepted_cmdline_without_kernel_is_usable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tsguest_run_checks(bk_pool_suite());
}
