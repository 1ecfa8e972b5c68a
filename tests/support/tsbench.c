/*
 * tsbench.c - measuring helpers for benchmarks (see tsbench.h).
 */
#include "tsbench.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tsguest.h"

double tsbench_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int tsbench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

double tsbench_percentile(double *v, int n, double p)
{
    int k = (int)(p * n);

    if (n <= 0)
        return -1;
    if (k < p * n)
        k++; /* rank ceil(p * n), counted from 1 */
    k--;
    qsort(v, (size_t)n, sizeof(*v), tsbench_cmp);
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

double tsbench_median(double *v, int n)
{
    if (n <= 0)
        return -1;
    qsort(v, (size_t)n, sizeof(*v), tsbench_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

long tsbench_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

double tsbench_cpu_ms(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (pid <= 0 || !(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: skip to the last
     * ')', then fields 3 (state) .. 13, then utime and stime. */
    p = strrchr(buf, ')');
    if (!p ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static void tsbench_on_signal(int sig)
{
    (void)sig;
    exit(130); /* not _exit(): the test root's atexit cleanup must run */
}

void tsbench_exit_on_signals(void)
{
    signal(SIGINT, tsbench_on_signal);
    signal(SIGTERM, tsbench_on_signal);
}

int tsbench_run_test(const TTest *test, int timeout_s)
{
    Suite *s = suite_create(test->name);
    TCase *tc = tcase_create(test->name);
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, timeout_s);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    if (!tsguest_root()) {
        srunner_free(sr);
        return 1;
    }
    srunner_run_all(sr, CK_SILENT);
    failed = srunner_ntests_failed(sr);
    if (failed)
        srunner_print(sr, CK_NORMAL);
    srunner_free(sr);
    return failed ? 1 : 0;
}

/* Writes one field: "-" for none, tabs and newlines as spaces. */
static void tsbench_summary_field(FILE *f, const char *text, int last)
{
    if (!text || !*text)
        fputc('-', f);
    for (; text && *text; text++)
        fputc(*text == '\t' || *text == '\n' || *text == '\r' ? ' ' : *text, f);
    fputc(last ? '\n' : '\t', f);
}

/* Appends one line of fields; the first is the line's kind, the second
 * this program's name. Appending with one write per line keeps lines
 * whole. */
static int tsbench_summary_line(const char *kind, const char *const *v, int n)
{
    const char *path = getenv("DESKPOOL_BENCH_SUMMARY");
    char *buf = NULL;
    size_t len = 0;
    FILE *mem, *f;
    int rc = 0;

    if (!path || !*path)
        return 0;
    mem = open_memstream(&buf, &len);
    if (!mem)
        return -errno;
    tsbench_summary_field(mem, kind, 0);
    tsbench_summary_field(mem, program_invocation_short_name, 0);
    for (int i = 0; i < n; i++)
        tsbench_summary_field(mem, v[i], i == n - 1);
    fclose(mem);
    f = fopen(path, "a");
    if (!f || fwrite(buf, 1, len, f) != len)
        rc = -errno;
    if (f && fclose(f) && !rc)
        rc = -errno;
    if (rc)
        fprintf(stderr, "tsbench: %s: %s\n", path, strerror(-rc));
    free(buf);
    return rc;
}

int tsbench_summary_row(const char *section, const char *metric,
                        const char *value, const char *peer,
                        const char *peer_value, const char *target)
{
    const char *v[] = {section, metric, value, peer, peer_value, target};

    return tsbench_summary_line("row", v, 6);
}

int tsbench_summary_fact(const char *key, const char *value)
{
    const char *v[] = {key, value};

    return tsbench_summary_line("fact", v, 2);
}

const char *tsbench_met(int ok)
{
    return ok ? "met" : "not met";
}
