/*
 * tsbench.c - measuring helpers for benchmarks (see tsbench.h).
 */
#include "tsbench.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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
