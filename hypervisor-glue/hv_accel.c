/*
 * hv_accel.c - choosing KVM or TCG (see hv_host_accel() in hv_vm.h).
 *
 * On nested setups /dev/kvm opens and creates VMs, yet guests hang when
 * they switch to long mode, and QEMU's "-accel kvm -accel tcg" does not
 * fall back then. So "auto" boots a kernel under KVM for a few seconds and
 * takes KVM only if the kernel got far enough to print its banner on the
 * serial console. The answer is kept per host boot in STATE/accel.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dp_time.h"
#include "hv_internal.h"

#define HV_PROBE_BANNER "Linux version"

static void hv_boot_id(char *buf, size_t size)
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    buf[0] = '\0';
    if (f) {
        if (!fgets(buf, (int)size, f))
            buf[0] = '\0';
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
}

/* Reads the cached decision for this boot; 0 and *a, or -ENOENT. */
static int hv_accel_cached(struct hv_host *h, enum hv_accel *a)
{
    char path[PATH_MAX], line[128], boot[64], name[8];
    FILE *f;
    int ok = 0;

    snprintf(path, sizeof(path), "%s/accel", h->state_dir);
    hv_boot_id(boot, sizeof(boot));
    f = fopen(path, "r");
    if (!f)
        return -ENOENT;
    if (fgets(line, sizeof(line), f) && sscanf(line, "%7s", name) == 1 &&
        strstr(line, boot) && boot[0] && hv_accel_parse(name, a) == 0 &&
        *a != HV_ACCEL_AUTO)
        ok = 1;
    fclose(f);
    return ok ? 0 : -ENOENT;
}

static void hv_accel_store(struct hv_host *h, enum hv_accel a)
{
    char path[PATH_MAX], boot[64];
    FILE *f;

    snprintf(path, sizeof(path), "%s/accel", h->state_dir);
    hv_boot_id(boot, sizeof(boot));
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "%s %s\n", hv_accel_name(a), boot);
        fclose(f);
    }
}

static int hv_file_has(const char *path, const char *needle)
{
    char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n;
    if (!f)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* Boots kernel under KVM, watching its serial log for the banner. */
static int hv_accel_probe(struct hv_host *h, const char *kernel)
{
    char dir[] = "/tmp/deskpool-probe-XXXXXX", log[64], serial[80];
    uint64_t deadline;
    int ok = 0, status;
    pid_t pid;

    if (!mkdtemp(dir))
        return 0;
    snprintf(log, sizeof(log), "%s/serial.log", dir);
    snprintf(serial, sizeof(serial), "file:%s", log);
    char *const argv[] = {h->qemu,
                          "-accel",
                          "kvm",
                          "-machine",
                          "q35",
                          "-m",
                          "256",
                          "-nodefaults",
                          "-no-user-config",
                          "-display",
                          "none",
                          "-serial",
                          serial,
                          "-kernel",
                          (char *)kernel,
                          "-append",
                          "console=ttyS0 panic=-1",
                          "-no-reboot",
                          NULL};
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    deadline = dp_time_now_ms() + (uint64_t)h->probe_timeout_ms;
    while (pid > 0 && !ok && dp_time_now_ms() < deadline &&
           waitpid(pid, &status, WNOHANG) == 0) {
        usleep(50000);
        ok = hv_file_has(log, HV_PROBE_BANNER);
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    unlink(log);
    rmdir(dir);
    return ok;
}

/* The kernel for the probe: configured, the VM's own, or the host's. */
static const char *hv_accel_probe_kernel(struct hv_host *h,
                                         const char *vm_kernel, char *buf,
                                         size_t size)
{
    struct utsname u;
    if (h->probe_kernel[0])
        return h->probe_kernel;
    if (vm_kernel && vm_kernel[0])
        return vm_kernel;
    if (uname(&u) == 0) {
        snprintf(buf, size, "/boot/vmlinuz-%s", u.release);
        if (access(buf, R_OK) == 0)
            return buf;
    }
    return NULL;
}

static int hv_accel_decide(struct hv_host *h, const char *vm_kernel, char *why,
                           size_t why_size)
{
    char kbuf[PATH_MAX];
    const char *kernel;
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        hv_err(why, why_size, 0, "TCG: /dev/kvm unusable (%s)",
               strerror(errno));
        return HV_ACCEL_TCG;
    }
    close(fd);
    kernel = hv_accel_probe_kernel(h, vm_kernel, kbuf, sizeof(kbuf));
    if (!kernel) {
        hv_err(why, why_size, 0, "TCG: no kernel to probe KVM with");
        return HV_ACCEL_TCG;
    }
    if (!hv_accel_probe(h, kernel)) {
        hv_err(why, why_size, 0,
               "TCG: a KVM guest did not boot within %d ms (nested KVM?)",
               h->probe_timeout_ms);
        return HV_ACCEL_TCG;
    }
    hv_err(why, why_size, 0, "KVM: boot probe succeeded");
    return HV_ACCEL_KVM;
}

int hv_host_accel(struct hv_host *h, enum hv_accel want, const char *kernel,
                  char *why, size_t why_size)
{
    char reason[256];
    enum hv_accel a;

    if (want == HV_ACCEL_TCG) {
        hv_err(why, why_size, 0, "TCG: requested");
        return HV_ACCEL_TCG;
    }
    if (want == HV_ACCEL_KVM) {
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return hv_err(why, why_size, -ENODEV, "KVM requested: /dev/kvm: %s",
                          strerror(errno));
        close(fd);
        hv_err(why, why_size, 0, "KVM: requested");
        return HV_ACCEL_KVM;
    }
    if (!h->accel_known && hv_accel_cached(h, &a) == 0) {
        h->accel_known = 1;
        h->accel_auto = a;
    }
    if (h->accel_known) {
        hv_err(why, why_size, 0, "%s: probed earlier this boot",
               h->accel_auto == HV_ACCEL_KVM ? "KVM" : "TCG");
        return h->accel_auto;
    }
    a = (enum hv_accel)hv_accel_decide(h, kernel, reason, sizeof(reason));
    if (a == HV_ACCEL_TCG)
        hv_warn(h, "using TCG (software emulation): %s", reason);
    h->accel_known = 1;
    h->accel_auto = a;
    hv_accel_store(h, a);
    hv_err(why, why_size, 0, "%s", reason);
    return a;
}
