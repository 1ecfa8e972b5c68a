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
 * Templates and instant clones (hv_template.h). With mem_path, guest RAM
 * is that file (memory-backend-file): share set maps it shared (a template
 * writes its RAM into the file), clear maps it private (a clone's
 * copy-on-write view of the template's RAM). Such VMs also get a vmgenid
 * device, so that a restored clone's kernel reseeds its random generator.
 * incoming_defer adds `-incoming defer`: QEMU waits for migrate-incoming.
 */
struct hv_qemu_mem {
    const char *mem_path;
    int share;
    int incoming_defer;
};

/*
 * Fills a with the full QEMU command line for spec s with accel (KVM or
 * TCG; not auto) on binary qemu, writing a pidfile. Returns 0 or
 * -ENOMEM.
 */
int hv_qemu_argv(struct hv_argv *a, const char *qemu, const struct hv_spec *s,
                 enum hv_accel accel, const struct hv_qemu_setup *p);

/* The same with guest RAM from a file and/or an incoming migration; m may
 * be NULL (then it is hv_qemu_argv()). A clone's command line must equal
 * its template's but for paths and these settings: same devices, same
 * order. */
int hv_qemu_argv_mem(struct hv_argv *a, const char *qemu,
                     const struct hv_spec *s, enum hv_accel accel,
                     const struct hv_qemu_setup *p,
                     const struct hv_qemu_mem *m);

/* The MAC address a VM's NIC gets: locally administered, derived from its
 * id so it stays the same across restarts. buf holds 18 bytes. */
void hv_qemu_mac(const char *id, char buf[18]);

#endif
