/*
 * bench_clone - instant clones (hv_template.h) against issue 9's targets,
 * beside the peer: the same desktop booted cold, as full clones are.
 *
 * With the test image ($DESKPOOL_GUEST_DIR, copied into a private state
 * folder under the tests' root in /tmp, so that a rebuilt image cannot make
 * the template stale meanwhile) and a 256 MiB guest:
 *
 *   1. makes the template (boot until the agent's `ready`, save), timed;
 *   2. clones it SEQUENTIAL times one after the other, each clone alone
 *      (deleted after its measurement): exec -> running
 *      (exec_to_running_ms), the whole call, QEMU's CPU time by then, and
 *      the personalisation that follows (hv_template_personalise(), timed
 *      here: the clone result does not report its time);
 *   3. boots the same desktop cold BOOTS times (hv_vm_create +
 *      hv_vm_start): exec -> QMP ready, exec -> desktop drawn (testdesk's
 *      serial line), and its memory idle SETTLE_MS after it was drawn;
 *   4. clones it CLONES times at once (one process each): wall time from
 *      the first exec to the last clone running, each clone's
 *      personalisation, then after SETTLE_MS idle the memory of every clone
 *      (hv_vm_read_memory()) against the booted desktop's.
 *
 * Prints Markdown tables and a line per target. Everything it started is
 * gone at exit, also on failure: VMs and the template are deleted, and the
 * tests' cleanup SIGKILLs whatever still names the state folder and removes
 * it. Exits non-zero only when the set-up (host, template) fails.
 *
 *   bench_clone [CLONES [SEQUENTIAL]]
 *       CLONES at once (default 20, at most 32), SEQUENTIAL one after the
 *       other (default 100, at most 200: a p99 needs 100 samples; of
 *       fewer it is just the maximum)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hv_proc.h"
#include "hv_template.h"
#include "hv_vm.h"
#include "tsbench.h"
#include "tsguest.h"

#define CLONES_MAX             32
#define SEQ_MAX                200
#define SEQ_DEFAULT            100
#define BOOTS                  3
#define BOOT_TIMEOUT_MS        120000
#define SETTLE_MS              5000
#define PERSONALISE_TIMEOUT_MS 30000
#define MIB                    (1024.0 * 1024.0)

static struct hv_host *host;
static char tid[HV_ID_MAX + 1];
static char err[2048];

/* One clone's figures; a child of the concurrent round writes it to a
 * pipe (smaller than PIPE_BUF: one atomic write). */
struct clone_sample {
    int index, ok, personalised;
    double exec_ms; /* exec -> running */
    double call_ms; /* hv_template_clone(): overlay -> running */
    double pers_ms; /* personalisation, after running */
    double cpu_ms;  /* QEMU's CPU time when it ran (clock ticks) */
    double t_exec;  /* CLOCK_MONOTONIC ms at QEMU's exec */
    double t_running;
};

struct boot_sample {
    int ok;
    double qmp_ms, drawn_ms;
    struct hv_vm_memory mem;
};

/* The test image's disk copied to the state folder, and the shape. */
static int make_shape(struct hv_spec *s)
{
    char src[600], out[512];
    const char *g = tsguest_guest_dir();

    if (!g || tsguest_spec(s, "tmpl", NULL) < 0)
        return -1;
    snprintf(src, sizeof(src), "%s/root.qcow2", g);
    snprintf(s->golden, sizeof(s->golden), "%s/golden.qcow2",
             hv_host_state_dir(host));
    {
        char *const argv[] = {"cp", src, s->golden, NULL};
        if (hv_proc_run(argv, 30000, out, sizeof(out)) < 0) {
            fprintf(stderr, "bench_clone: cp %s: %s\n", src, out);
            return -1;
        }
    }
    return 0;
}

/* Clones id (not personalised by the call), reads QEMU's CPU time so far,
 * then personalises it through the agent (hostname id), timed apart. */
static void clone_one(int i, const char *id, struct clone_sample *c)
{
    struct hv_clone_options o = {.personalise_timeout_ms = -1};
    struct hv_clone_result r;
    struct hv_vm_usage u;
    double t0 = tsbench_now_ms(), t1;

    memset(c, 0, sizeof(*c));
    c->index = i;
    if (hv_template_clone(host, tid, id, &o, &r, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_clone: clone %s: %s\n", id, err);
        return;
    }
    c->ok = 1;
    c->exec_ms = r.exec_to_running_ms;
    c->call_ms = r.total_ms;
    c->t_running = t0 + r.total_ms;
    c->t_exec = c->t_running - r.exec_to_running_ms;
    c->cpu_ms = hv_vm_read_usage(host, id, &u) == 0 ? (double)u.cpu_ms : -1;
    t1 = tsbench_now_ms();
    c->personalised =
        hv_template_personalise(host, id, id, PERSONALISE_TIMEOUT_MS, err,
                                sizeof(err)) == 0;
    c->pers_ms = tsbench_now_ms() - t1;
    if (!c->personalised)
        fprintf(stderr, "bench_clone: %s\n", err);
}

/* Step 2: n clones one after the other, each deleted after it ran. */
static void bench_sequential(int n, struct clone_sample *c)
{
    char id[32];

    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "seq%d", i);
        clone_one(i, id, &c[i]);
        if (!c[i].ok)
            continue;
        fprintf(stderr,
                "bench_clone: %s: exec -> running %.1f ms (QEMU CPU %.0f "
                "ms), call %.1f ms, personalise %.1f ms\n",
                id, c[i].exec_ms, c[i].cpu_ms, c[i].call_ms, c[i].pers_ms);
        hv_vm_delete(host, id, err, sizeof(err));
    }
}

/* Step 3: a cold boot of the same shape, measured and deleted. */
static void bench_boot(const struct hv_spec *shape, struct boot_sample *b)
{
    struct hv_spec s = *shape;
    double t0;

    memset(b, 0, sizeof(*b));
    snprintf(s.id, sizeof(s.id), "boot");
    if (hv_vm_create(host, &s, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_clone: %s\n", err);
        return;
    }
    t0 = tsbench_now_ms();
    if (hv_vm_start(host, s.id, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_clone: %s\n", err);
        goto out;
    }
    b->qmp_ms = tsbench_now_ms() - t0;
    while (tsguest_serial_count(host, s.id, TSGUEST_READY) < 1) {
        if (tsbench_now_ms() - t0 > BOOT_TIMEOUT_MS) {
            fprintf(stderr, "bench_clone: boot: no desktop\n");
            tsguest_print_serial(host, s.id);
            goto out;
        }
        usleep(10000);
    }
    b->drawn_ms = tsbench_now_ms() - t0;
    tsguest_sleep_ms(SETTLE_MS);
    b->ok = hv_vm_read_memory(host, s.id, &b->mem) == 0;
out:
    hv_vm_delete(host, s.id, err, sizeof(err));
}

/* The children of step 4 while they run, and the process that forked them. */
static pid_t pids[CLONES_MAX], parent;

/* At exit (also on SIGINT or SIGTERM), before the tests' cleanup kills the
 * QEMUs: no child may start another one. */
static void kill_children(void)
{
    for (int i = 0; getpid() == parent && i < CLONES_MAX; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
            pids[i] = 0;
        }
}

/* Step 4: n clones at once, one child process each (an hv_host is plain
 * data); each personalises its clone once it runs. */
static void bench_parallel(int n, struct clone_sample *c, double *t_start)
{
    int p[2], got = 0;
    struct clone_sample s;

    memset(c, 0, sizeof(*c) * (size_t)n);
    if (pipe(p) < 0)
        return;
    *t_start = tsbench_now_ms();
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            char id[32];

            close(p[0]);
            snprintf(id, sizeof(id), "par%d", i);
            clone_one(i, id, &s);
            if (write(p[1], &s, sizeof(s)) != (ssize_t)sizeof(s))
                _exit(1);
            _exit(0);
        }
    }
    close(p[1]);
    while (got < n && read(p[0], &s, sizeof(s)) == (ssize_t)sizeof(s)) {
        if (s.index >= 0 && s.index < n)
            c[s.index] = s;
        got++;
    }
    close(p[0]);
    for (int i = 0; i < n; i++)
        if (pids[i] > 0) {
            waitpid(pids[i], NULL, 0);
            pids[i] = 0;
        }
}

/* --- tables ------------------------------------------------------------ */

struct stats {
    int n;
    double p50, p99, min, max;
};

/* Nearest-rank p50 and p99, min and max of v[0..n) (sorted). */
static struct stats stats_of(double *v, int n)
{
    struct stats s = {.n = n};

    if (!n)
        return s;
    s.p50 = tsbench_percentile(v, n, 0.50);
    s.p99 = tsbench_percentile(v, n, 0.99);
    s.min = v[0];
    s.max = v[n - 1];
    return s;
}

enum clone_field { EXEC_MS, CALL_MS, PERS_MS, CPU_MS };

/* Over the clones that ran (for PERS_MS: that were personalised). */
static struct stats clone_stats(const struct clone_sample *c, int n,
                                enum clone_field f)
{
    double v[SEQ_MAX];
    int m = 0;

    for (int i = 0; i < n; i++) {
        if (!c[i].ok || (f == PERS_MS && !c[i].personalised) ||
            (f == CPU_MS && c[i].cpu_ms < 0))
            continue;
        v[m++] = f == EXEC_MS   ? c[i].exec_ms
                 : f == CALL_MS ? c[i].call_ms
                 : f == CPU_MS  ? c[i].cpu_ms
                                : c[i].pers_ms;
    }
    return stats_of(v, m);
}

static void print_row(const char *what, struct stats s)
{
    if (!s.n) {
        printf("| %s | 0 | - | - | - | - |\n", what);
        return;
    }
    printf("| %s | %d | %.1f | %.1f | %.1f | %.1f |\n", what, s.n, s.p50, s.p99,
           s.min, s.max);
}

static int count_personalised(const struct clone_sample *c, int n, int *ok)
{
    int k = 0;

    *ok = 0;
    for (int i = 0; i < n; i++) {
        *ok += c[i].ok;
        k += c[i].ok && c[i].personalised;
    }
    return k;
}

static void loadavg(char *buf, size_t size)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a = 0, b = 0, c = 0;

    if (!f || fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3)
        snprintf(buf, size, "?");
    else
        snprintf(buf, size, "%.2f %.2f %.2f", a, b, c);
    if (f)
        fclose(f);
}

int main(int argc, char **argv)
{
    static struct clone_sample seq[SEQ_MAX], par[CLONES_MAX];
    struct boot_sample boot[BOOTS];
    struct hv_vm_memory mem[CLONES_MAX];
    struct hv_spec shape;
    struct hv_template_info info;
    struct stats st_seq, st_call, st_pers, st_qmp, st_drawn, st_par, st_ppers;
    struct stats st_cpu;
    double tmpl_ms, t_start = 0, first = 0, last = 0, wall = -1;
    double rss = 0, shr = 0, prv = 0, anon = 0, pss = 0;
    double b_anon[BOOTS], b_qmp[BOOTS], b_drawn[BOOTS], b_rss[BOOTS],
        b_prv[BOOTS], b_shr[BOOTS], b_pss[BOOTS];
    char cpu[128], load0[64], load1[64], accel[8] = "?";
    int n = argc > 1 ? atoi(argv[1]) : 20, created = 0, nb = 0, nmem = 0;
    int ns = argc > 2 ? atoi(argv[2]) : SEQ_DEFAULT;
    int pers_seq, ok_seq, pers_par, ok_par;
    double t_bench = tsbench_now_ms();

    if (!tsguest_guest_dir() || n < 1 || n > CLONES_MAX || ns < 1 ||
        ns > SEQ_MAX) {
        fprintf(stderr,
                "usage: DESKPOOL_GUEST_DIR=... bench_clone [1-%d [1-%d]]\n",
                CLONES_MAX, SEQ_MAX);
        return 2;
    }
    tsbench_exit_on_signals();
    loadavg(load0, sizeof(load0));
    /* The host's state folder lives under the tests' root, whose cleanup
     * (at exit, also after a failure) kills every QEMU naming it. */
    if (!tsguest_root() || tsguest_host_open(&host, NULL) < 0 ||
        make_shape(&shape) < 0) {
        fprintf(stderr, "bench_clone: set-up failed (see above)\n");
        return 1;
    }
    parent = getpid();
    atexit(kill_children); /* runs before tsguest_cleanup(), made earlier */

    /* 1. the template */
    {
        double t0 = tsbench_now_ms();
        if (hv_template_create(host, &shape, 0, tid, &created, err,
                               sizeof(err)) < 0) {
            fprintf(stderr, "bench_clone: template: %s\n", err);
            tsguest_host_close(host);
            return 1;
        }
        tmpl_ms = tsbench_now_ms() - t0;
    }
    if (hv_template_get(host, tid, &info, err, sizeof(err)) == 0)
        snprintf(accel, sizeof(accel), "%s", hv_accel_name(info.shape.accel));

    /* 2. one after the other */
    bench_sequential(ns, seq);
    /* 3. the peer: cold boots */
    for (int i = 0; i < BOOTS; i++)
        bench_boot(&shape, &boot[i]);
    /* 4. all at once, then idle */
    bench_parallel(n, par, &t_start);
    for (int i = 0, k = 0; i < n; i++) {
        if (!par[i].ok)
            continue;
        if (!k++ || par[i].t_exec < first)
            first = par[i].t_exec;
        if (par[i].t_running > last)
            last = par[i].t_running;
    }
    count_personalised(par, n, &ok_par);
    if (ok_par == n)
        wall = last - first;
    tsguest_sleep_ms(SETTLE_MS);
    for (int i = 0; i < n; i++) {
        char id[32];

        snprintf(id, sizeof(id), "par%d", i);
        if (!par[i].ok || hv_vm_read_memory(host, id, &mem[nmem]) < 0)
            continue;
        rss += (double)mem[nmem].rss_bytes / MIB;
        shr += (double)mem[nmem].shared_bytes / MIB;
        prv += (double)mem[nmem].private_bytes / MIB;
        anon += (double)mem[nmem].anonymous_bytes / MIB;
        pss += (double)mem[nmem].pss_bytes / MIB;
        nmem++;
    }
    loadavg(load1, sizeof(load1));
    for (int i = 0; i < n; i++) {
        char id[32];

        snprintf(id, sizeof(id), "par%d", i);
        if (par[i].ok)
            hv_vm_delete(host, id, err, sizeof(err));
    }
    if (hv_template_delete(host, tid, err, sizeof(err)) < 0)
        fprintf(stderr, "bench_clone: %s\n", err);
    tsguest_host_close(host);
    tsguest_cleanup();

    for (int i = 0; i < BOOTS; i++) {
        if (!boot[i].ok)
            continue;
        b_qmp[nb] = boot[i].qmp_ms;
        b_drawn[nb] = boot[i].drawn_ms;
        b_rss[nb] = (double)boot[i].mem.rss_bytes / MIB;
        b_prv[nb] = (double)boot[i].mem.private_bytes / MIB;
        b_shr[nb] = (double)boot[i].mem.shared_bytes / MIB;
        b_anon[nb] = (double)boot[i].mem.anonymous_bytes / MIB;
        b_pss[nb++] = (double)boot[i].mem.pss_bytes / MIB;
    }
    st_seq = clone_stats(seq, ns, EXEC_MS);
    st_call = clone_stats(seq, ns, CALL_MS);
    st_pers = clone_stats(seq, ns, PERS_MS);
    st_par = clone_stats(par, n, EXEC_MS);
    st_ppers = clone_stats(par, n, PERS_MS);
    st_qmp = stats_of(b_qmp, nb);
    st_drawn = stats_of(b_drawn, nb);
    pers_seq = count_personalised(seq, ns, &ok_seq);
    pers_par = count_personalised(par, n, &ok_par);

    tsguest_cpu_model(cpu, sizeof(cpu));
    printf("\n### Instant clones: exec -> running desktop\n\n"
           "%s, %ld cores, guests under %s, %d MiB test desktop; load "
           "average %s at the start, %s after the last clones ran\n\n",
           cpu, sysconf(_SC_NPROCESSORS_ONLN), accel, shape.memory_mb, load0,
           load1);
    printf("Template made once in %.0f ms (%s; device state %.1f MiB). "
           "Clones one after the other, each alone (deleted after it was "
           "measured), then personalised through the agent "
           "(hv_template_personalise(), timed apart); the peer boots the "
           "same desktop cold (hv_vm_create + hv_vm_start), as a full clone "
           "would: median of %d, so its p99 is its max.\n\n",
           tmpl_ms, created ? "made now" : "reused",
           (double)info.state_bytes / MIB, BOOTS);
    printf("| measure | n | p50 (ms) | p99 (ms) | min (ms) | max (ms) |\n"
           "|---|---:|---:|---:|---:|---:|\n");
    print_row("clone: exec -> running (desktop already drawn)", st_seq);
    print_row("clone: hv_template_clone() to running (overlay, vm.json, "
              "exec, restore)",
              st_call);
    print_row("clone: personalise after running (hostname, machine-id, "
              "clock)",
              st_pers);
    print_row("clone: QEMU's CPU time, exec -> running (10 ms ticks)",
              clone_stats(seq, ns, CPU_MS));
    print_row("peer, cold boot: exec -> QMP ready", st_qmp);
    print_row("peer, cold boot: exec -> desktop drawn", st_drawn);
    printf("\nPersonalised: %d of %d clones.\n", pers_seq, ok_seq);

    printf("\n### Instant clones: %d of one template at once\n\n"
           "One process per clone, all forked at once; each personalises "
           "its clone once it runs. Memory %d s after the last one "
           "ran, all %d running and idle (mean per clone), against one "
           "booted desktop alone, idle %d s after its desktop was drawn "
           "(median of %d). Shared: pages another process maps too (the "
           "template's RAM file in the page cache, QEMU's libraries).\n\n",
           n, SETTLE_MS / 1000, nmem, SETTLE_MS / 1000, nb);
    printf("| measure | value |\n|---|---:|\n");
    if (wall >= 0)
        printf("| first exec -> all %d running (ms) | %.0f |\n", n, wall);
    else
        printf("| first exec -> all %d running (ms) | - (%d of %d ran) |\n", n,
               ok_par, n);
    if (ok_par)
        printf("| fork of the first -> all running (ms) | %.0f |\n",
               last - t_start);
    printf("| exec -> running per clone, p50 / p99 / max (ms) | %.0f / %.0f "
           "/ %.0f |\n",
           st_par.p50, st_par.p99, st_par.max);
    st_cpu = clone_stats(par, n, CPU_MS);
    printf("| QEMU's CPU time per clone, exec -> running, p50 / max (ms) | "
           "%.0f / %.0f |\n",
           st_cpu.p50, st_cpu.max);
    printf("| personalised | %d of %d |\n", pers_par, ok_par);
    printf("| personalise per clone, p50 / max (ms) | %.0f / %.0f |\n",
           st_ppers.p50, st_ppers.max);
    printf("\n| desktop | n | RSS (MiB) | shared (MiB) | private (MiB) | "
           "anonymous (MiB) | PSS (MiB) |\n|---|---:|---:|---:|---:|---:|"
           "---:|\n");
    if (nmem)
        printf("| idle clone (mean) | %d | %.1f | %.1f | %.1f | %.1f | %.1f "
               "|\n",
               nmem, rss / nmem, shr / nmem, prv / nmem, anon / nmem,
               pss / nmem);
    if (nb) {
        double a = tsbench_median(b_rss, nb), p = tsbench_median(b_prv, nb),
               s = tsbench_median(b_shr, nb), q = tsbench_median(b_pss, nb),
               an = tsbench_median(b_anon, nb);
        printf("| booted desktop, alone (median) | %d | %.1f | %.1f | %.1f "
               "| %.1f | %.1f |\n",
               nb, a, s, p, an, q);
        printf("\nPrivate RSS per idle clone: %.1f %% of the booted "
               "desktop's RSS.\n",
               nmem ? 100.0 * prv / nmem / a : -1);
    }

    printf("\nTarget clone exec -> running p50 <= 150 ms: %s (%.1f ms)\n",
           tsbench_met(st_seq.n == ns && st_seq.p50 <= 150), st_seq.p50);
    printf("Target clone exec -> running p99 <= 300 ms: %s (%.1f ms)\n",
           tsbench_met(st_seq.n == ns && st_seq.p99 <= 300), st_seq.p99);
    printf("Target %d clones of one template in <= 5 s: %s (%.0f ms)\n", n,
           tsbench_met(wall >= 0 && wall <= 5000), wall);
    if (nb && nmem)
        printf(
            "Target private RSS per idle clone <= 50 %% of a booted "
            "desktop's: %s (%.1f %%)\n",
            tsbench_met(100.0 * prv / nmem / tsbench_median(b_rss, nb) <= 50),
            100.0 * prv / nmem / tsbench_median(b_rss, nb));
    else
        printf("Target private RSS per idle clone <= 50 %% of a booted "
               "desktop's: not measured\n");
    {
        char v[128], pv[96], t[96];

        tsbench_summary_fact("accel", accel);
        snprintf(v, sizeof(v), "p50 %.0f ms, p99 %.0f ms (n %d)", st_seq.p50,
                 st_seq.p99, st_seq.n);
        snprintf(pv, sizeof(pv), "exec -> desktop drawn p50 %.0f ms (n %d)",
                 st_drawn.p50, st_drawn.n);
        snprintf(t, sizeof(t), "p50 <= 150 ms, p99 <= 300 ms: %s",
                 tsbench_met(st_seq.n == ns && st_seq.p50 <= 150 &&
                             st_seq.p99 <= 300));
        tsbench_summary_row("instant clones",
                            "clone exec -> running (one at a time)", v,
                            "cold boot of the same desktop", pv, t);
        if (wall >= 0)
            snprintf(v, sizeof(v), "%.0f ms", wall);
        else
            snprintf(v, sizeof(v), "%d of %d ran", ok_par, n);
        snprintf(t, sizeof(t), "<= 5 s: %s",
                 tsbench_met(wall >= 0 && wall <= 5000));
        snprintf(pv, sizeof(pv), "%d clones of one template at once", n);
        tsbench_summary_row("instant clones", pv, v, NULL, NULL, t);
        if (nb && nmem) {
            double pct = 100.0 * prv / nmem / tsbench_median(b_rss, nb);

            snprintf(v, sizeof(v), "%.1f MiB private (%.1f %%)", prv / nmem,
                     pct);
            snprintf(pv, sizeof(pv), "%.1f MiB RSS", tsbench_median(b_rss, nb));
            snprintf(t, sizeof(t), "<= 50 %%: %s", tsbench_met(pct <= 50));
            tsbench_summary_row("instant clones", "memory per idle clone", v,
                                "a booted desktop, idle", pv, t);
        }
    }
    printf("Launch with no spare -> first frame at the client (the third "
           "target): bench_launch.\n");
    fprintf(stderr, "bench_clone: %.0f s in all\n",
            (tsbench_now_ms() - t_bench) / 1000.0);
    return 0;
}
