/*
 * tsvm.h - start and stop a test guest (build/guest) under QEMU.
 *
 * Integration tests run the real thing: QEMU booting Deskpool's test image,
 * whose desktop (testdesk) they look at through QMP screendumps and drive
 * through QMP input events. Each VM gets a private run directory (mkdtemp,
 * mode 0700) holding a qcow2 overlay on the image's root.qcow2, the QMP and
 * VNC unix sockets and the serial console log, so tests never share state
 * and never touch the golden image.
 *
 * Processes are started with fork + execvp and argv arrays, never a shell.
 * QEMU gets PR_SET_PDEATHSIG = SIGKILL, so it dies with the process that
 * started it even when that process crashes or is killed; tsvm_stop() is
 * the orderly way out (QMP quit, then SIGKILL after a grace period).
 *
 * All functions that return int return 0 or a negative errno and print the
 * reason to stderr. On timeouts the tail of the serial log is printed too,
 * since that is what tells a CI failure apart: a kernel panic, a guest
 * "deskpool-guest: ERROR" line, or a desktop that never started.
 *
 * Forking: a struct tsvm may be used by a process forked after tsvm_start()
 * (Check's fork mode): it can wait on the serial log and talk QMP. Only the
 * process that started the VM stops it.
 */
#ifndef TSVM_H
#define TSVM_H

#include <stddef.h>

#include "tsqmp.h"

/* How long the KVM boot probe waits for the guest's root to be mounted. */
#define TSVM_KVM_PROBE_MS 10000

/* Serial line the guest's init prints once its root disk is mounted. */
#define TSVM_ROOT_MOUNTED "deskpool-guest: root mounted"

/* A running (or stopped) test VM; opaque. */
struct tsvm;

struct tsvm_config {
    /* Absolute path of the guest image folder (vmlinuz, initrd.img,
     * root.qcow2); NULL means tsvm_guest_dir(). */
    const char *guest_dir;
    /* Appended to the kernel command line, e.g. "testdesk.mode=idle";
     * NULL or "" for nothing. */
    const char *extra_args;
    /* QEMU accelerator, "tcg" or "kvm"; NULL means tsvm_pick_accel(). */
    const char *accel;
};

/*
 * The guest image folder from $DESKPOOL_GUEST_DIR, after checking that it is
 * an absolute path holding vmlinuz, initrd.img and root.qcow2. Returns NULL
 * and says what is wrong (and how to fix it) when it is not.
 */
const char *tsvm_guest_dir(void);

/*
 * The accelerator test VMs should use: "kvm" only when /dev/kvm opens
 * read-write and a probe VM booted with KVM mounts its root disk within
 * TSVM_KVM_PROBE_MS (nested KVM can open fine and then hang the guest),
 * "tcg" otherwise. $DESKPOOL_ACCEL=tcg|kvm forces the answer. The result is
 * computed once per process and the choice is printed to stderr.
 */
const char *tsvm_pick_accel(const char *guest_dir);

/*
 * Creates the run directory and overlay and starts QEMU (see tsvm.c for the
 * command line). Returns once QEMU is started, not booted: use
 * tsvm_wait_serial() for that. On success *out must be freed with
 * tsvm_free(); on failure it is NULL and nothing is left behind.
 */
int tsvm_start(const struct tsvm_config *cfg, struct tsvm **out);

/*
 * Waits until the serial console log contains text, for at most timeout_ms
 * (0: look once). Returns 0, -ETIMEDOUT, or -ESRCH when QEMU exited first;
 * on failure the log's tail goes to stderr.
 */
int tsvm_wait_serial(struct tsvm *vm, const char *text, int timeout_ms);

/* True when the serial console log contains text (looked at once). */
int tsvm_serial_contains(const struct tsvm *vm, const char *text);

/* Prints the last part of the serial console log to stderr. */
void tsvm_print_serial_tail(const struct tsvm *vm);

/*
 * The VM's QMP connection, connected on first use. QEMU serves one QMP
 * client at a time, so a process forked while the parent holds a connection
 * uses the inherited one (the parent must not use it meanwhile); one forked
 * before gets its own. Owned by vm; NULL if QEMU does not answer.
 */
struct tsqmp *tsvm_qmp(struct tsvm *vm);

/*
 * Closes this process's QMP connection (its copy, if inherited), so that
 * another process can connect once every copy is closed.
 */
void tsvm_qmp_release(struct tsvm *vm);

/* The run directory (absolute path); files tests write belong there. */
const char *tsvm_run_dir(const struct tsvm *vm);

/*
 * Writes "RUN_DIR/name" into buf. Returns 0, or -ENAMETOOLONG when it does
 * not fit in size bytes.
 */
int tsvm_path(const struct tsvm *vm, const char *name, char *buf, size_t size);

/* The accelerator this VM runs with ("tcg" or "kvm"). */
const char *tsvm_accel(const struct tsvm *vm);

/*
 * Stops QEMU (QMP quit, SIGKILL if it has not exited after a short grace
 * period), reaps it and removes the run directory. Safe on a VM that failed
 * to boot or already exited, and idempotent; NULL is fine. In a process
 * other than the one that started the VM it only releases that process's
 * QMP connection.
 */
void tsvm_stop(struct tsvm *vm);

/* tsvm_stop(), then frees vm; NULL is fine. */
void tsvm_free(struct tsvm *vm);

#endif
