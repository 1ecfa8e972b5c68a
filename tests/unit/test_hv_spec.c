/*
 * Unit tests of VM specs (hv_spec.h) and the QEMU command lines built from
 * them (hv_argv.h): what an admin's spec becomes, and what is refused.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv_argv.h"
#include "hv_spec.h"
#include "tsguest.h"

static json_t *spec_json(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    ck_assert_msg(j != NULL, "bad test JSON: %s", jerr.text);
    return j;
}

/* Parses text; returns the rc and leaves the message in err. */
static int parse(const char *text, struct hv_spec *s, char *err, size_t n)
{
    json_t *j = spec_json(text);
    int rc = hv_spec_from_json(s, j, err, n);
    json_decref(j);
    return rc;
}

START_TEST(spec_round_trips_through_json)
{
    struct hv_spec s, back;
    char err[256];
    json_t *j;

    ck_assert_int_eq(parse("{\"id\":\"desk-01\",\"name\":\"Desk 1\","
                           "\"vcpus\":2,\"memory_mb\":2048,"
                           "\"golden\":\"/srv/golden/win.qcow2\","
                           "\"net\":\"bridge\",\"ifname\":\"br0\","
                           "\"width\":1920,\"height\":1080,\"accel\":\"tcg\"}",
                           &s, err, sizeof(err)),
                     0);
    ck_assert_str_eq(s.id, "desk-01");
    ck_assert_int_eq(s.vcpus, 2);
    ck_assert_int_eq(s.net, HV_NET_BRIDGE);
    ck_assert_int_eq(s.accel, HV_ACCEL_TCG);
    j = hv_spec_to_json(&s);
    ck_assert_int_eq(hv_spec_from_json(&back, j, err, sizeof(err)), 0);
    json_decref(j);
    ck_assert_mem_eq(&s, &back, sizeof(s));
}
END_TEST

START_TEST(spec_defaults_fill_the_rest)
{
    struct hv_spec s;
    char err[256];
    ck_assert_int_eq(
        parse("{\"id\":\"a\",\"golden\":\"/g.qcow2\"}", &s, err, sizeof(err)),
        0);
    ck_assert_int_eq(s.vcpus, 1);
    ck_assert_int_eq(s.memory_mb, 1024);
    ck_assert_int_eq(s.width, 1024);
    ck_assert_int_eq(s.net, HV_NET_NONE);
    ck_assert_int_eq(s.accel, HV_ACCEL_AUTO);
}
END_TEST

START_TEST(spec_refuses_bad_input_with_reasons)
{
    static const struct {
        const char *json, *why;
    } bad[] = {
        {"[]", "must be a JSON object"},
        {"{\"id\":\"a\",\"golden\":\"/g\",\"colour\":1}",
         "colour: unknown key"},
        {"{\"id\":\"A b\",\"golden\":\"/g\"}", "id:"},
        {"{\"id\":\"-a\",\"golden\":\"/g\"}", "id:"},
        {"{\"id\":\"a\",\"golden\":\"relative.qcow2\"}", "golden:"},
        {"{\"id\":\"a\",\"golden\":\"/a,b.qcow2\"}", "golden:"},
        {"{\"id\":\"a\",\"golden\":\"/g\",\"vcpus\":0}", "vcpus: must be"},
        {"{\"id\":\"a\",\"golden\":\"/g\",\"vcpus\":\"2\"}", "vcpus: must be"},
        {"{\"id\":\"a\",\"golden\":\"/g\",\"memory_mb\":99999999}",
         "memory_mb"},
        {"{\"id\":\"a\",\"golden\":\"/g\",\"net\":\"wifi\"}", "net:"},
        {"{\"id\":\"a\",\"golden\":\"/g\",\"net\":\"tap\"}", "ifname:"},
        {"{\"id\":\"a\",\"golden\":\"/g\",\"net\":\"tap\",\"ifname\":\"t;x\"}",
         "ifname:"},
        {"{\"id\":\"a\",\"golden\":\"/g\",\"initrd\":\"/i\"}",
         "needs a kernel"},
        {"{\"id\":\"a\",\"golden\":\"/g\",\"accel\":\"xen\"}", "accel:"},
        {"{\"id\":\"a\",\"golden\":\"/g\",\"name\":7}",
         "name: must be a string"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct hv_spec s;
        char err[256] = "";
        ck_assert_int_eq(parse(bad[i].json, &s, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, bad[i].why), "%s: got '%s', want '%s'",
                      bad[i].json, err, bad[i].why);
    }
}
END_TEST

START_TEST(spec_bounds_long_strings)
{
    char *text = malloc(8192), err[256];
    struct hv_spec s;
    int n = snprintf(text, 8192, "{\"id\":\"a\",\"golden\":\"/");
    memset(text + n, 'x', 5000);
    strcpy(text + n + 5000, "\"}");
    ck_assert_int_eq(parse(text, &s, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "golden: longer than"));
    free(text);
}
END_TEST

/* Index of the argument equal to want, or -1. */
static int arg_index(const struct hv_argv *a, const char *want)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], want) == 0)
            return (int)i;
    return -1;
}

/* True when option opt is followed by value somewhere in argv. */
static int has_opt(const struct hv_argv *a, const char *opt, const char *value)
{
    for (size_t i = 0; i + 1 < a->n; i++)
        if (strcmp(a->v[i], opt) == 0 && strcmp(a->v[i + 1], value) == 0)
            return 1;
    return 0;
}

START_TEST(argv_has_what_a_desktop_needs)
{
    struct hv_spec s;
    struct hv_argv a;
    struct hv_qemu_setup p = {"/st/run/d1", "/st/vms/d1/disk.qcow2", NULL};

    hv_spec_init(&s);
    strcpy(s.id, "d1");
    strcpy(s.golden, "/g.qcow2");
    strcpy(s.kernel, "/k");
    strcpy(s.cmdline, "console=ttyS0 quiet");
    s.net = HV_NET_USER;
    hv_argv_init(&a);
    ck_assert_int_eq(
        hv_qemu_argv(&a, "qemu-system-x86_64", &s, HV_ACCEL_TCG, &p), 0);
    ck_assert_str_eq(a.v[0], "qemu-system-x86_64");
    ck_assert_ptr_null(a.v[a.n]);
    ck_assert(has_opt(&a, "-accel", "tcg"));
    ck_assert(has_opt(&a, "-machine", "q35"));
    ck_assert(
        has_opt(&a, "-vnc", "unix:/st/run/d1/vnc.sock,lock-key-sync=off"));
    ck_assert(has_opt(&a, "-pidfile", "/st/run/d1/qemu.pid"));
    ck_assert(has_opt(&a, "-append", "console=ttyS0 quiet"));
    ck_assert(has_opt(&a, "-device", "virtio-tablet-pci"));
    ck_assert(has_opt(&a, "-device",
                      "virtserialport,bus=vser0.0,"
                      "chardev=agent0,name=org.deskpool.agent.0"));
    ck_assert(has_opt(&a, "-chardev",
                      "socket,id=qmp,path=/st/run/d1/"
                      "qmp.sock,server=on,wait=off"));
    ck_assert(has_opt(&a, "-drive",
                      "file=/st/vms/d1/disk.qcow2,if=none,"
                      "id=disk0,format=qcow2,discard=unmap"));
    ck_assert_int_ge(arg_index(&a, "-nodefaults"), 0);
    ck_assert(has_opt(&a, "-sandbox",
                      "on,obsolete=deny,resourcecontrol=deny,"
                      "elevateprivileges=deny"));
    ck_assert_int_lt(arg_index(&a, "-runas"), 0);
    /* No TCP anywhere: VNC is a unix socket, no -initrd without one. */
    ck_assert_int_lt(arg_index(&a, "-initrd"), 0);
    for (size_t i = 0; i < a.n; i++)
        ck_assert_ptr_null(strstr(a.v[i], "tcp:"));
    hv_argv_free(&a);
}
END_TEST

START_TEST(argv_network_modes)
{
    struct hv_spec s;
    struct hv_argv a;
    struct hv_qemu_setup p = {"/r", "/d", "nobody"};
    char mac[18], mac2[18], dev[64];

    hv_spec_init(&s);
    strcpy(s.id, "d2");
    s.net = HV_NET_TAP;
    strcpy(s.ifname, "tap7");
    hv_argv_init(&a);
    hv_qemu_argv(&a, "q", &s, HV_ACCEL_KVM, &p);
    ck_assert(has_opt(&a, "-netdev",
                      "tap,id=net0,ifname=tap7,script=no,downscript=no"));
    ck_assert(has_opt(&a, "-accel", "kvm"));
    ck_assert(has_opt(&a, "-cpu", "host"));
    /* Dropping to a user: QEMU must be allowed its own setuid. */
    ck_assert(has_opt(&a, "-runas", "nobody"));
    ck_assert(has_opt(&a, "-sandbox", "on,obsolete=deny,resourcecontrol=deny"));
    hv_qemu_mac("d2", mac);
    snprintf(dev, sizeof(dev), "virtio-net-pci,netdev=net0,mac=%s", mac);
    ck_assert(has_opt(&a, "-device", dev));
    hv_argv_free(&a);

    /* MACs: stable per id, different between ids, locally administered. */
    hv_qemu_mac("d3", mac2);
    ck_assert_str_ne(mac, mac2);
    ck_assert_int_eq(strncmp(mac, "52:54:00:", 9), 0);

    s.net = HV_NET_NONE;
    hv_argv_init(&a);
    hv_qemu_argv(&a, "q", &s, HV_ACCEL_TCG, &p);
    ck_assert_int_lt(arg_index(&a, "-netdev"), 0);
    hv_argv_free(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hv-spec");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, spec_round_trips_through_json);
    tcase_add_test(tc, spec_defaults_fill_the_rest);
    tcase_add_test(tc, spec_refuses_bad_input_with_reasons);
    tcase_add_test(tc, spec_bounds_long_strings);
    tcase_add_test(tc, argv_has_what_a_desktop_needs);
    tcase_add_test(tc, argv_network_modes);
    suite_add_tcase(s, tc);
    return tsguest_run_checks(s);
}
