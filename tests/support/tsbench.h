/*
 * tsbench.h - what benchmarks (bench/) measure with: a fine clock,
 * percentiles and medians of samples, a process's memory.
 */
#ifndef TSBENCH_H
#define TSBENCH_H

#include <sys/types.h>

/* CLOCK_MONOTONIC in fractional milliseconds (tsguest_now_ms() is whole
 * milliseconds: too coarse for latency tables). */
double tsbench_now_ms(void);

/* Nearest-rank percentile p (0..1) of v[0..n): the sample at rank
 * ceil(p * n). Sorts v. -1 when n is 0. */
double tsbench_percentile(double *v, int n, double p);

/* Median of v[0..n) (the mean of the middle two for even n). Sorts v. */
double tsbench_median(double *v, int n);

/* Resident memory (VmRSS) of pid in KiB, or -1. */
long tsbench_rss_kib(pid_t pid);

#endif
