/*
 * bench_hv - how fast libdeskpool-hv makes and boots desktops.
 *
 * Prints one Markdown table (for BENCHMARKS.md): clone creation and disk
 * use of a linked clone beside a full copy of the golden image (what a
 * provisioning without linked clones does), QEMU exec -> QMP ready, boot
 * -> desktop drawn, and host RSS of an idle desktop. Uses the test image
 * ($DESKPOOL_GUEST_DIR) and a private state folder under /tmp.
 *
 *   bench_hv [ROUNDS]     (default 3 boots; clones are timed 20 times)
 */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hv_image.h"
#include "hv_proc.h"
#include "hv_vm.h"
#include "tsbench.h"
#include "tsguest.h"

#define CLONE_ROUNDS    20
#define BOOT_TIMEOUT_MS 120000
#define IDLE_SETTLE_MS  5000

static char state[32];
static char guest[512];

static off_t file_bytes(const char *path)
{
    struct stat st;
    /* Allocated blocks, not the apparent size: what the disk really holds. */
    return stat(path, &st) == 0 ? st.st_blocks * 512 : -1;
}

static int rm_entry(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s, (void)f, (void)w;
    return remove(p), 0;
}

/* Times CLONE_ROUNDS linked clones and full copies of the golden image. */
static void bench_clones(double *linked_ms, double *copy_ms,
                         off_t *linked_bytes, off_t *copy_bytes)
{
    char golden[600], out[600], err[1024];
    double t[CLONE_ROUNDS], c[CLONE_ROUNDS];

    snprintf(golden, sizeof(golden), "%s/root.qcow2", guest);
    snprintf(out, sizeof(out), "%s/clone.qcow2", state);
    for (int i = 0; i < CLONE_ROUNDS; i++) {
        double t0 = tsbench_now_ms();
        if (hv_image_create_overlay(golden, out, err, sizeof(err)) < 0) {
            fprintf(stderr, "bench_hv: %s\n", err);
            exit(1);
        }
        t[i] = tsbench_now_ms() - t0;
    }
    *linked_bytes = file_bytes(out);
    for (int i = 0; i < CLONE_ROUNDS; i++) {
        char *const argv[] = {"qemu-img", "convert", "-O", "qcow2",
                              golden,     out,       NULL};
        double t0 = tsbench_now_ms();
        if (hv_proc_run(argv, 60000, err, sizeof(err)) < 0) {
            fprintf(stderr, "bench_hv: qemu-img convert: %s\n", err);
            exit(1);
        }
        c[i] = tsbench_now_ms() - t0;
    }
    *copy_bytes = file_bytes(out);
    unlink(out);
    *linked_ms = tsbench_median(t, CLONE_ROUNDS);
    *copy_ms = tsbench_median(c, CLONE_ROUNDS);
}

static int serial_has(struct hv_host *h, const char *id, const char *text)
{
    char path[600], buf[16384];
    FILE *f;
    size_t n;
    if (hv_vm_path(h, id, "serial.log", path, sizeof(path)) < 0 ||
        !(f = fopen(path, "r")))
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

struct boot_result {
    double qmp_ms, drawn_ms;
    double rss_mib;
    char accel[8];
};

/* One desktop: start (exec -> QMP ready), wait for the drawn desktop,
 * let it idle, read its RSS, force it off. */
static int bench_boot(struct hv_host *h, const char *id, struct boot_result *r)
{
    struct hv_vm_status st;
    char err[1024];
    double t0 = tsbench_now_ms();

    if (hv_vm_start(h, id, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_hv: %s\n", err);
        return -1;
    }
    r->qmp_ms = tsbench_now_ms() - t0;
    while (!serial_has(h, id, "testdesk: ready")) {
        if (tsbench_now_ms() - t0 > BOOT_TIMEOUT_MS) {
            fprintf(stderr, "bench_hv: %s: no desktop\n", id);
            hv_vm_poweroff(h, id, err, sizeof(err));
            return -1;
        }
        usleep(20000);
    }
    r->drawn_ms = tsbench_now_ms() - t0;
    usleep(IDLE_SETTLE_MS * 1000);
    hv_vm_status(h, id, &st, err, sizeof(err));
    r->rss_mib = (double)st.rss_bytes / (1024.0 * 1024.0);
    snprintf(r->accel, sizeof(r->accel), "%s", st.accel);
    hv_vm_poweroff(h, id, err, sizeof(err));
    return 0;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 3;
    struct hv_host_config cfg = {.quiet = 1};
    struct boot_result r[16];
    double qmp[16], drawn[16], rss[16], lms, cms;
    off_t lbytes, cbytes;
    struct hv_host *h;
    struct hv_spec s;
    char err[1024], cpu[128];
    const char *g = getenv("DESKPOOL_GUEST_DIR");

    if (!g || rounds < 1 || rounds > 16) {
        fprintf(stderr, "usage: DESKPOOL_GUEST_DIR=... bench_hv [1-16]\n");
        return 2;
    }
    snprintf(guest, sizeof(guest), "%s", g);
    snprintf(state, sizeof(state), "/tmp/dpb-XXXXXX");
    if (!mkdtemp(state))
        return 1;
    cfg.state_dir = state;
    if (hv_host_open(&h, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_hv: %s\n", err);
        return 1;
    }
    bench_clones(&lms, &cms, &lbytes, &cbytes);

    hv_spec_init(&s);
    snprintf(s.id, sizeof(s.id), "bench");
    snprintf(s.golden, sizeof(s.golden), "%s/root.qcow2", guest);
    snprintf(s.kernel, sizeof(s.kernel), "%s/vmlinuz", guest);
    snprintf(s.initrd, sizeof(s.initrd), "%s/initrd.img", guest);
    snprintf(s.cmdline, sizeof(s.cmdline),
             "console=ttyS0 vga=0x344 quiet vt.global_cursor_default=0");
    s.memory_mb = 256;
    for (int i = 0; i < rounds; i++) {
        /* A fresh clone each round: every boot is a first boot. */
        if (hv_vm_create(h, &s, err, sizeof(err)) < 0 ||
            bench_boot(h, "bench", &r[i]) < 0) {
            fprintf(stderr, "bench_hv: %s\n", err);
            return 1;
        }
        hv_vm_delete(h, "bench", err, sizeof(err));
        qmp[i] = r[i].qmp_ms;
        drawn[i] = r[i].drawn_ms;
        rss[i] = r[i].rss_mib;
    }
    hv_host_close(h);
    nftw(state, rm_entry, 8, FTW_DEPTH | FTW_PHYS);

    tsguest_cpu_model(cpu, sizeof(cpu));
    printf("\n### libdeskpool-hv: provisioning and boot\n\n"
           "%s, %ld cores, guests under %s; medians (clones: %d runs, "
           "boots: %d runs)\n\n",
           cpu, sysconf(_SC_NPROCESSORS_ONLN), r[0].accel, CLONE_ROUNDS,
           rounds);
    printf("| measure | deskpool | peer: full copy (qemu-img convert) |\n"
           "|---|---:|---:|\n");
    printf("| new desktop disk (ms) | %.1f | %.1f |\n", lms, cms);
    printf("| disk used per new desktop (KiB) | %lld | %lld |\n",
           (long long)lbytes / 1024, (long long)cbytes / 1024);
    printf("| QEMU exec -> QMP ready (ms) | %.0f | - |\n",
           tsbench_median(qmp, rounds));
    printf("| exec -> desktop drawn (ms) | %.0f | - |\n",
           tsbench_median(drawn, rounds));
    printf("| host RSS per idle desktop, 256 MiB guest (MiB) | %.1f | - |\n",
           tsbench_median(rss, rounds));
    return 0;
}
