/*
 * hv_argv.h - the QEMU command line of a desktop VM, as an argv array.
 *
 * Built from a validated spec (hv_spec.h), never through a shell. Values
 * that come from the spec and reach QEMU's option parser are checked there
 * for commas (QEMU's separator); this module only assembles.
 */
#ifndef HV_ARGV_H
#define HV_ARGV_H

#include <stddef.h>

#include "hv_spec.h"

/* A growing NULL-terminated array of owned strings. */
struct hv_argv {
    char **v;
    size_t n, cap;
    int failed; /* an allocation failed: the array is unusable */
};

void hv_argv_init(struct hv_argv *a);
void hv_argv_free(struct hv_argv *a);
/* Appends a printf-formatted argument. Errors are remembered in failed. */
void hv_argv_add(struct hv_argv *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Where the VM's files are, and who QEMU runs as. */
struct hv_qemu_setup {
    const char *run_dir; /* holds the sockets, pidfile, serial log */
    const char *disk;    /* the VM's overlay */
    const char *user;    /* drop to this user after start-up; NULL: stay */
};

/*
 * Fills a with the full QEMU command line for spec s with accel (KVM or
 * TCG; not auto) on binary qemu, writing a pidfile. Returns 0 or
 * -ENOMEM.
 */
int hv_qemu_argv(struct hv_argv *a, const char *qemu, const struct hv_spec *s,
                 enum hv_accel accel, const struct hv_qemu_setup *p);

/* The MAC address a VM's NIC gets: locally administered, derived from its
 * id so it stays the same across restarts. buf holds 18 bytes. */
void hv_qemu_mac(const char *id, char buf[18]);

#endif
