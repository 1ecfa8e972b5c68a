/*
 * hv_internal.h - what the modules of libdeskpool-hv share among
 * themselves, not with users of the library.
 */
#ifndef HV_INTERNAL_H
#define HV_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "hv_vm.h"

struct hv_host {
    char state_dir[HV_STATE_DIR_MAX + 1];
    char qemu[HV_PATH_MAX];
    char probe_kernel[HV_PATH_MAX];
    char qemu_user[64]; /* "" : QEMU keeps our user */
    int probe_timeout_ms;
    int quiet;
    int accel_known; /* the auto decision, once made */
    enum hv_accel accel_auto;
};

/* printf into err; returns rc, so `return hv_err(err, n, -EIO, ...)`. */
int hv_err(char *err, size_t size, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A warning for the admin on stderr, unless the host is quiet. */
void hv_warn(const struct hv_host *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Removes a folder and the files in it (one level: run folders are
 * flat). A missing folder is not an error. */
int hv_remove_flat_dir(const char *dir);

#endif
