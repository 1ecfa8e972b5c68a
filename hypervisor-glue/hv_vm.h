/*
 * hv_vm.h - libdeskpool-hv: desktop VMs on the local KVM host.
 *
 * A host (struct hv_host) is a state folder and the settings for running
 * QEMU. Each VM has, under the state folder:
 *
 *   vms/ID/vm.json     its spec (hv_spec.h); the VM exists iff this exists
 *   vms/ID/disk.qcow2  its disk: a linked clone of the spec's golden image
 *   run/ID/            while QEMU runs (mode 0700):
 *       qmp.sock       QMP for commands (short connections, one at a time)
 *       events.sock    QMP kept open by whoever watches events
 *       vnc.sock       QEMU's VNC server (no TCP port)
 *       agent.sock     virtio-serial port org.deskpool.agent.0
 *       qemu.pid       QEMU's pid
 *       serial.log     the guest's serial console
 *       qemu.log       QEMU's own messages (why it failed to start)
 *   templates/TID/     templates instant clones start from (hv_template.h)
 *
 * QEMU is started detached (own session, reparented) with an argv array,
 * its output in run/ID/qemu.log, so VMs outlive the process that started
 * them; hv_host_adopt() finds them again after a restart. The
 * functions here are synchronous and bounded in time; for event-driven use,
 * hv_vm_watch() gives a QMP connection to poll (hv_qmp.h).
 *
 * Errors: functions return 0 or a negative errno and write a message for
 * people into err (e.g. "desk-1: QEMU exited: could not open disk...").
 * -ENOENT: no such VM; -EEXIST: VM exists; -EBUSY: VM is running and must
 * not be; -ENOTCONN: VM is not running. A failed start or create leaves
 * nothing behind: no process, no run folder, no overlay.
 */
#ifndef HV_VM_H
#define HV_VM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hv_qmp.h"
#include "hv_spec.h"

/* Longest state folder path: unix socket paths (108 bytes) must fit. */
#define HV_STATE_DIR_MAX 40

struct hv_host_config {
    const char *state_dir; /* required, absolute, created if missing */
    const char *qemu;      /* QEMU binary; NULL: qemu-system-x86_64 */
    /* Unprivileged user QEMU drops to after start-up (-runas), when the
     * manager runs as root; it owns the VM's run folder and disk. NULL:
     * QEMU runs as the caller. */
    const char *qemu_user;
    /* Kernel booted by the auto-accel KVM probe; NULL: the VM's own kernel,
     * else /boot/vmlinuz-$(uname -r). */
    const char *probe_kernel;
    int probe_timeout_ms; /* 0: 8000 */
    int quiet;            /* no warnings on stderr */
};

struct hv_host;

int hv_host_open(struct hv_host **out, const struct hv_host_config *cfg,
                 char *err, size_t err_size);
void hv_host_close(struct hv_host *h);
const char *hv_host_state_dir(const struct hv_host *h);

/* --- lifecycle ---------------------------------------------------------- */

/* Creates a VM (stopped) from spec: validates it, checks the golden
 * image, writes vm.json and the linked clone. */
int hv_vm_create(struct hv_host *h, const struct hv_spec *spec, char *err,
                 size_t err_size);

/* Starts QEMU and waits until QMP answers. -EALREADY if running. */
int hv_vm_start(struct hv_host *h, const char *id, char *err, size_t err_size);

/* ACPI power button; waits up to timeout_ms for the guest to power off,
 * then forces it off. Returns 0 once QEMU is gone (1 if it was forced). */
int hv_vm_shutdown(struct hv_host *h, const char *id, int timeout_ms, char *err,
                   size_t err_size);

/* Force off: QMP quit, SIGKILL if QEMU does not go. */
int hv_vm_poweroff(struct hv_host *h, const char *id, char *err,
                   size_t err_size);

int hv_vm_reset(struct hv_host *h, const char *id, char *err, size_t err_size);
int hv_vm_pause(struct hv_host *h, const char *id, char *err, size_t err_size);
int hv_vm_resume(struct hv_host *h, const char *id, char *err, size_t err_size);

/* Replaces the disk with a fresh linked clone: the guest's writes are
 * gone. The VM must be stopped (-EBUSY otherwise). */
int hv_vm_refresh(struct hv_host *h, const char *id, char *err,
                  size_t err_size);

/* Forces the VM off if it runs and removes everything it had. */
int hv_vm_delete(struct hv_host *h, const char *id, char *err, size_t err_size);

/* --- inspection --------------------------------------------------------- */

struct hv_vm_status {
    char id[HV_ID_MAX + 1];
    /* "stopped" (no QEMU), or QEMU's run state: "running", "paused",
     * "shutdown", "guest-panicked", "internal-error", ... */
    char state[24];
    pid_t pid; /* 0 when stopped */
    uint64_t cpu_ms, rss_bytes;
    char accel[8]; /* "kvm" or "tcg" while running */
};

int hv_vm_status(struct hv_host *h, const char *id, struct hv_vm_status *st,
                 char *err, size_t err_size);

/* What a VM's QEMU process uses, read from /proc alone: no QMP round trip,
 * so a periodic pass over every VM stays cheap. */
struct hv_vm_usage {
    pid_t pid;
    uint64_t cpu_ms;    /* user + system CPU time since QEMU started */
    uint64_t rss_bytes; /* resident memory */
};

/* Fills *u. Returns 0, -ESRCH when no QEMU runs for the VM, or -EINVAL
 * for a malformed id. */
int hv_vm_read_usage(struct hv_host *h, const char *id, struct hv_vm_usage *u);

/*
 * A VM's resident memory split by sharing, from /proc/PID/smaps_rollup:
 * what instant clones save. A clone maps its template's RAM file
 * privately (copy-on-write), so pages it only reads stay page cache shared
 * with every other clone of the template, and pages it writes become its
 * own anonymous memory. Counts follow the kernel's: a page mapped by one
 * process alone is "private" even when it is file cache, so with a single
 * clone running its template pages show as private; pss divides each
 * shared page among the processes mapping it. Costlier than
 * hv_vm_read_usage() (the kernel walks the page tables): for accounting,
 * not for every pass.
 */
struct hv_vm_memory {
    pid_t pid;
    uint64_t rss_bytes;       /* resident, shared or not */
    uint64_t pss_bytes;       /* proportional share */
    uint64_t shared_bytes;    /* resident pages other processes map too */
    uint64_t private_bytes;   /* resident pages this QEMU alone maps */
    uint64_t anonymous_bytes; /* not file-backed: QEMU's heap and the
                                 guest pages a clone has written */
};

/* Fills *m. Returns 0, -ESRCH when no QEMU runs for the VM, or -EINVAL
 * for a malformed id. */
int hv_vm_read_memory(struct hv_host *h, const char *id,
                      struct hv_vm_memory *m);

int hv_vm_get_spec(struct hv_host *h, const char *id, struct hv_spec *spec,
                   char *err, size_t err_size);

/* Ids of all VMs, sorted; free with hv_vm_list_free(). */
int hv_vm_list(struct hv_host *h, char ***ids, size_t *count);
void hv_vm_list_free(char **ids, size_t count);

/* Path of one of the VM's run-folder files ("vnc.sock", "serial.log"...). */
int hv_vm_path(const struct hv_host *h, const char *id, const char *file,
               char *buf, size_t size);

/* Saves the VM's screen as a PNG file at path (QMP screendump). */
int hv_vm_screenshot(struct hv_host *h, const char *id, const char *path,
                     char *err, size_t err_size);

/*
 * Runs any QMP command on the VM (short connection on qmp.sock); see
 * hv_qmp_execute_sync() for args, result and the return value.
 */
int hv_vm_qmp(struct hv_host *h, const char *id, const char *command,
              json_t *args, int timeout_ms, json_t **result, char *err,
              size_t err_size);

/* Opens the VM's event monitor (events.sock): events reach cb->event until
 * the VM goes away (cb->closed). Poll it as hv_qmp.h says. */
int hv_vm_watch(struct hv_host *h, const char *id,
                const struct hv_qmp_callbacks *cb, void *arg,
                struct hv_qmp **out, char *err, size_t err_size);

/* --- after a restart ----------------------------------------------------- */

/* What adoption found, one call per finding. */
enum hv_adopt_kind {
    HV_ADOPT_RUNNING,     /* our QEMU is alive and answers QMP */
    HV_ADOPT_STALE_RUN,   /* run folder without a live QEMU: removed */
    HV_ADOPT_ORPHAN_VM,   /* our QEMU running for a deleted VM: stopped */
    HV_ADOPT_ORPHAN_DISK, /* VM folder without vm.json: removed */
};

typedef void (*hv_adopt_fn)(void *arg, enum hv_adopt_kind kind, const char *id,
                            const char *detail);

/* Scans the state folder: re-attaches to running VMs (checking pid,
 * command line and QMP), cleans what crashes left. Returns the number of
 * running VMs found, or a negative errno. */
int hv_host_adopt(struct hv_host *h, hv_adopt_fn fn, void *arg);

/* --- acceleration -------------------------------------------------------- */

/*
 * Decides between KVM and TCG for a VM whose spec says `want`. For auto, a
 * KVM boot probe runs once per host boot (the answer is kept in the state
 * folder): /dev/kvm existing is not enough, nested setups open it and then
 * hang guests. Returns HV_ACCEL_KVM or HV_ACCEL_TCG, or -ENODEV when KVM is
 * forced but unusable. why (may be NULL) says what was decided and why.
 */
int hv_host_accel(struct hv_host *h, enum hv_accel want, const char *kernel,
                  char *why, size_t why_size);

#endif
