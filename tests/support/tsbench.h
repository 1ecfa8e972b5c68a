/*
 * tsbench.h - what benchmarks (bench/) measure with: a fine clock,
 * percentiles and medians of samples, a process's memory and CPU time.
 */
#ifndef TSBENCH_H
#define TSBENCH_H

#include <check.h>
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

/* CPU time pid has used (utime + stime, all its threads) in ms, or -1
 * when it cannot be read (gone, or pid <= 0). Clock-tick resolution. */
double tsbench_cpu_ms(pid_t pid);

/* SIGINT and SIGTERM end the process with exit(130) rather than the
 * default _exit, so that the test root's cleanup (tsguest_cleanup(),
 * registered with atexit) still ends its processes and removes it. */
void tsbench_exit_on_signals(void);

/*
 * Runs test (START_TEST ... END_TEST) as one Check test in this process
 * (no fork: benchmarks keep their servers and print their tables from
 * it), with timeout_s seconds, after making the test root
 * (tsguest_root()). The tests' helpers assert: a failed set-up fails it,
 * and Check's report goes to stdout then. Returns 0 when it passed, 1
 * otherwise, for main() to return.
 */
int tsbench_run_test(const TTest *test, int timeout_s);

/*
 * One row of `make bench`'s single summary table (issue 10): appended as a
 * line of tab-separated fields to the file $DESKPOOL_BENCH_SUMMARY names,
 * when it is set (nothing otherwise), with the program's name first;
 * bench/bench-summary prints them. section groups rows ("time to
 * desktop", "display", "broker", ...), metric says what was measured,
 * value is Deskpool's figure as text with its unit, peer names what it is
 * compared with and peer_value gives the peer's figure, target the
 * issue's target and whether it was met. Any of them may be NULL or ""
 * (printed as "-"); tabs and newlines in them become spaces. Returns 0,
 * or -errno when the file could not be written (also said on stderr).
 */
int tsbench_summary_row(const char *section, const char *metric,
                        const char *value, const char *peer,
                        const char *peer_value, const char *target);

/* "met" or "not met": a target's verdict, as the tables print it. */
const char *tsbench_met(int ok);

/* A fact about the machine the summary table describes, e.g. ("accel",
 * "tcg"): the QEMU accelerator the program's guests ran with. Written to
 * the same file as the rows (when set); the summary lists every value a
 * key was given. Returns as tsbench_summary_row(). */
int tsbench_summary_fact(const char *key, const char *value);

#endif
