/*
 * hv_internal.h - what the modules of libdeskpool-hv share among
 * themselves, not with users of the library.
 */
#ifndef HV_INTERNAL_H
#define HV_INTERNAL_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#include "hv_argv.h"
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

/* In a template's folder: an overlay on its frozen disk that nothing
 * opens; each clone's disk starts as a copy of it (hv_image_copy_overlay). */
#define HV_TEMPLATE_BLANK "blank.qcow2"

/* STATE/templates[/ID[/file]] into buf; ID may be a lock name ("ID.lock").
 * 0 or -ENAMETOOLONG. The one place template paths are made: a clone's
 * overlay names its template's disk by it, and so does the blank overlay
 * clones are copied from. */
int hv_tmpl_path(const struct hv_host *h, const char *id, const char *file,
                 char *buf, size_t size);

/* printf into err; returns rc, so `return hv_err(err, n, -EIO, ...)`. */
int hv_err(char *err, size_t size, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A warning for the admin on stderr, unless the host is quiet. */
void hv_warn(const struct hv_host *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Removes a folder and the files in it (one level: run folders are
 * flat). A missing folder is not an error. */
int hv_remove_flat_dir(const char *dir);

/* Writes j (consumed; NULL: -ENOMEM) to path atomically: a temporary
 * file, fsync, rename. 0 or a negative errno. */
int hv_json_save(const char *path, json_t *j);

/* Waits for pid to exit; returns 1 if it did within timeout_ms. */
int hv_wait_gone(pid_t pid, int timeout_ms);

/* Hands path to the unprivileged QEMU user, if there is one. */
int hv_give_to_qemu_user(const struct hv_host *h, const char *path);

/*
 * Starts QEMU for VM s->id (which must exist) with x (NULL: as
 * hv_vm_start() does) in a fresh run folder, without waiting for QMP.
 * keep_fd >= 0 is handed to QEMU as its fd 3 (hv_proc_spawn_detached_fd()).
 * Returns 0 with the pid, or a negative errno with err set (nothing left
 * behind). Undo a started one with hv_vm_abort().
 */
int hv_vm_spawn(struct hv_host *h, const struct hv_spec *s, enum hv_accel accel,
                const struct hv_qemu_mem *x, int keep_fd, pid_t *pid, char *err,
                size_t err_size);

/* SIGKILLs pid (if > 0) and removes the VM's run folder. */
void hv_vm_abort(struct hv_host *h, const char *id, pid_t pid);

/* QEMU's last words (the end of run/ID/qemu.log) as err; returns -EIO. */
int hv_vm_exited(struct hv_host *h, const char *id, char *err, size_t err_size);

#endif
