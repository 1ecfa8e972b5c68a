/*
 * Integration test of the deskpool-vm CLI as an admin uses it: the real
 * binary, run with argv arrays, against a real test guest. Asserts exit
 * codes, what it prints (--json parsed with jansson) and the files it
 * writes.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <stdarg.h>

#include "tsguest.h"

#define BOOT_TIMEOUT_S 90

static char state[64], cli[512], guest[512];
static char out[65536], errout[8192];

/* Reads fd to EOF into buf (truncating). */
static void slurp(int fd, char *buf, size_t size)
{
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, buf + n, size - 1 - n)) > 0 && n < size - 1)
        n += (size_t)r;
    buf[n] = '\0';
}

/* Runs deskpool-vm --state STATE ARGS...; stdout and stderr land in out
 * and errout. Returns the exit status. */
static int vm(const char *a0, ...)
{
    char *argv[32] = {cli, "--state", state};
    int n = 3, po[2], pe[2], status;
    va_list ap;
    pid_t pid;

    va_start(ap, a0);
    for (const char *a = a0; a && n < 31; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    ck_assert_int_eq(pipe(po), 0);
    ck_assert_int_eq(pipe(pe), 0);
    pid = fork();
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        execv(cli, argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    /* Outputs are small; stderr first is safe: stdout fits the pipe. */
    slurp(pe[0], errout, sizeof(errout));
    slurp(po[0], out, sizeof(out));
    close(po[0]);
    close(pe[0]);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static json_t *out_json(void)
{
    json_error_t jerr;
    json_t *j = json_loads(out, JSON_DISABLE_EOF_CHECK, &jerr);
    ck_assert_msg(j != NULL, "not JSON: '%s' (%s)", out, jerr.text);
    return j;
}

static int serial_has(const char *id, const char *text)
{
    char path[128], buf[16384];
    int fd;
    ssize_t n;
    snprintf(path, sizeof(path), "%s/run/%s/serial.log", state, id);
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return strstr(buf, text) != NULL;
}

static void setup(void)
{
    const char *bin = getenv("DESKPOOL_BIN_DIR"),
               *g = getenv("DESKPOOL_GUEST_DIR");
    ck_assert_msg(bin && g,
                  "DESKPOOL_BIN_DIR and DESKPOOL_GUEST_DIR must be set");
    snprintf(cli, sizeof(cli), "%s/deskpool-vm", bin);
    snprintf(guest, sizeof(guest), "%s", g);
    /* Under the test root: tsguest ends any QEMU left by a failed test. */
    snprintf(state, sizeof(state), "%s/cli", tsguest_root());
}

static void teardown(void)
{
    vm("delete", "cli1", NULL);
}

START_TEST(cli_refuses_bad_input)
{
    ck_assert_int_eq(vm("frobnicate", NULL), 2);
    ck_assert_ptr_nonnull(strstr(errout, "usage:"));
    ck_assert_int_eq(
        vm("create", "cli1", "--golden", "/nonexistent.qcow2", NULL), 1);
    ck_assert_ptr_nonnull(strstr(errout, "/nonexistent.qcow2"));
    ck_assert_int_eq(vm("create", "Bad/Id", "--golden", "/x", NULL), 1);
    ck_assert_ptr_nonnull(strstr(errout, "id:"));
    ck_assert_int_eq(vm("create", "cli1", "--memory", NULL), 1);
    ck_assert_int_eq(vm("start", "nosuch", NULL), 1);
    ck_assert_ptr_nonnull(strstr(errout, "no such VM"));
    ck_assert_int_eq(vm("qmp", "nosuch", "query-status", "{bad json", NULL), 1);
    ck_assert_int_eq(vm("--json", "list", NULL), 0);
    ck_assert_str_eq(out, "[]\n");
}
END_TEST

START_TEST(cli_runs_a_desktop)
{
    char golden[600], kernel[600], initrd[600], png[128];
    unsigned char magic[8];
    json_t *j;
    time_t t0;
    int fd;

    snprintf(golden, sizeof(golden), "%s/root.qcow2", guest);
    snprintf(kernel, sizeof(kernel), "%s/vmlinuz", guest);
    snprintf(initrd, sizeof(initrd), "%s/initrd.img", guest);
    ck_assert_msg(vm("create", "cli1", "--golden", golden, "--kernel", kernel,
                     "--initrd", initrd, "--memory", "256", "--cmdline",
                     "console=ttyS0 vga=0x344 quiet", NULL) == 0,
                  "%s", errout);
    ck_assert_int_eq(vm("--json", "list", NULL), 0);
    j = out_json();
    ck_assert_int_eq(json_array_size(j), 1);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(j, 0), "state")),
        "stopped");
    json_decref(j);

    ck_assert_msg(vm("--quiet", "start", "cli1", NULL) == 0, "%s", errout);
    ck_assert_int_eq(vm("--json", "status", "cli1", NULL), 0);
    j = out_json();
    ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "running");
    ck_assert_int_gt(json_integer_value(json_object_get(j, "pid")), 0);
    json_decref(j);

    for (t0 = time(NULL); !serial_has("cli1", "testdesk: ready");
         usleep(100000))
        ck_assert_msg(time(NULL) - t0 < BOOT_TIMEOUT_S, "no desktop");
    snprintf(png, sizeof(png), "%s/desk.png", state);
    ck_assert_msg(vm("screenshot", "cli1", png, NULL) == 0, "%s", errout);
    fd = open(png, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(read(fd, magic, 8), 8);
    close(fd);
    ck_assert_mem_eq(magic, "\x89PNG\r\n\x1a\n", 8);

    ck_assert_int_eq(vm("qmp", "cli1", "query-status", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"running\""));
    ck_assert_int_eq(vm("refresh", "cli1", NULL), 1); /* running */
    ck_assert_ptr_nonnull(strstr(errout, "running"));

    ck_assert_msg(vm("stop", "cli1", "--timeout", "60", NULL) == 0, "%s",
                  errout);
    ck_assert_str_eq(errout, ""); /* an ACPI shutdown, not forced */
    ck_assert_int_eq(vm("status", "cli1", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "stopped"));
    ck_assert_int_eq(vm("refresh", "cli1", NULL), 0);
    ck_assert_int_eq(vm("delete", "cli1", NULL), 0);
    ck_assert_int_eq(vm("--json", "list", NULL), 0);
    ck_assert_str_eq(out, "[]\n");
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("deskpool-vm");
    TCase *tc = tcase_create("cli");

    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, cli_refuses_bad_input);
    tcase_add_test(tc, cli_runs_a_desktop);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tsguest_run_suite(cli_suite());
}
