/*
 * hv_template.h - templates and instant clones.
 *
 * A template is a desktop booted once from a golden image and saved at the
 * moment its agent said `ready`: its RAM in a file, its device state in a
 * small migration stream, its disk frozen. A clone is a new VM (hv_vm.h,
 * the usual vms/ID/ layout) started by restoring that state instead of
 * booting: QEMU maps the template's RAM file privately (copy-on-write, so
 * every clone shares the pages it has not written), loads the device state
 * with x-ignore-shared (RAM is not in the stream) and resumes. Its disk is
 * an overlay on the template's frozen disk, which is an overlay on the
 * golden image:
 *
 *   golden.qcow2 <- templates/TID/disk.qcow2 (read-only) <- vms/ID/disk.qcow2
 *
 * Under the state folder:
 *
 *   templates/TID.lock          flock: creation and deletion exclusive,
 *                               cloning shared
 *   templates/TID/tmpl.json     the shape and the identity of every file it
 *                               came from; written last: a template exists
 *                               (is complete) iff this file does
 *   templates/TID/ram           guest RAM (memory-backend-file)
 *   templates/TID/state         device state (QEMU migration stream)
 *   templates/TID/disk.qcow2    the template's disk (mode 0444)
 *   templates/TID/blank.qcow2   an overlay on it that nothing opens (0400):
 *                               each clone's disk starts as a copy of it
 *   templates/TID/serial.log    the template boot's console, qemu.log
 *
 * While a template is being made, its QEMU runs with templates/TID/ as its
 * run folder (qmp.sock, agent.sock, ...; the paths fit in a sockaddr_un
 * because the state folder is at most HV_STATE_DIR_MAX characters).
 *
 * Shape and identity: a template is made for a VM shape - golden image,
 * kernel, initrd, command line, vCPUs, memory, display size, network mode,
 * accelerator - and for the exact files it booted: the identity (size,
 * mtime, inode, device) of the golden image, kernel and initrd, and of the
 * QEMU binary (a QEMU upgrade replaces it; device state does not cross
 * versions). TID is a hash of all of that, so the same shape finds the same
 * template and a changed golden image gives a new one. A template whose
 * files changed since is stale: never cloned again, deleted by
 * hv_template_gc() once no VM uses it. Changing a golden image therefore
 * means writing a new file (or renaming one over it): the inode changes.
 *
 * Clones differ from their template (and from each other) by: their VM id,
 * disk overlay, QEMU process, a new vmgenid generation id (the guest kernel
 * reseeds its random generator from it on resume) and, through the agent,
 * hostname, machine-id, clock and fresh entropy for the guest kernel's
 * random pool (hv_template_personalise()). Until then a
 * clone is a twin of the template. Network: clones would share the
 * template's MAC address (it is device state), so tap and bridge networks
 * are refused for now; user networking is private to each QEMU.
 *
 * A clone that is powered off and started again with hv_vm_start() boots
 * cold from its disk, as any VM does (its RAM is ordinary memory then);
 * hv_vm_refresh() gives it a fresh overlay on the template's disk. For an
 * instant desktop again, delete it and clone anew.
 *
 * Errors: 0 or a negative errno with a message in err. -ENOENT: no such
 * template (or incomplete); -ESTALE: the template's files changed;
 * -EBUSY: the template is in use (VMs cloned from it, or another process
 * holds its lock); -ENOTSUP: a shape templates cannot have. A failed
 * create or clone leaves nothing behind.
 */
#ifndef HV_TEMPLATE_H
#define HV_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "hv_spec.h"
#include "hv_vm.h"

#define HV_TEMPLATE_ID_LEN 16 /* hex digits of the shape's hash */

/* How long template creation waits for the guest agent's `ready`. */
#define HV_TEMPLATE_READY_TIMEOUT_MS 120000
/* How long a clone waits for its agent's hello before giving up on
 * personalising it. */
#define HV_TEMPLATE_PERSONALISE_TIMEOUT_MS 5000

/* What is known about one template. */
struct hv_template_info {
    char id[HV_ID_MAX + 1];
    /* The shape (id = template id, accel kvm or tcg). Zeroed when the
     * template is incomplete. */
    struct hv_spec shape;
    char qemu_version[32]; /* QEMU's, from its QMP greeting */
    int64_t created;       /* Unix seconds */
    int complete;          /* tmpl.json exists */
    int stale;             /* a file it came from changed since */
    char why[256];         /* why it is stale or incomplete; "" if valid */
    int users;             /* VMs cloned from it */
    uint64_t ram_bytes;    /* disk space of the RAM file (it is sparse) */
    uint64_t state_bytes;  /* size of the device state */
};

/*
 * The template id for shape now (hashing the current identity of its
 * files), in id (HV_ID_MAX + 1 bytes). The shape's id and name are not
 * part of it. Resolves accel auto (hv_host_accel()). Returns 0, -ENOENT
 * when a file is missing, -ENOTSUP for a tap or bridge network, -EINVAL
 * for a bad shape.
 */
int hv_template_id(struct hv_host *h, const struct hv_spec *shape, char *id,
                   char *err, size_t err_size);

/*
 * Makes the template for shape unless a valid one exists: boots it (the
 * golden image must have the agent), waits up to ready_timeout_ms (0:
 * HV_TEMPLATE_READY_TIMEOUT_MS) for the agent's `ready`, stops it and
 * saves RAM, device state and disk. Concurrent calls for the same shape
 * wait for each other. Returns 0 with the template id in id (HV_ID_MAX + 1
 * bytes) and *created (may be NULL) 1 if it was made now, 0 if it existed.
 */
int hv_template_create(struct hv_host *h, const struct hv_spec *shape,
                       int ready_timeout_ms, char *id, int *created, char *err,
                       size_t err_size);

/*
 * Checks template id: 0 when complete and current, -ENOENT when missing or
 * incomplete, -ESTALE when a file it came from changed (err says which).
 */
int hv_template_check(struct hv_host *h, const char *id, char *err,
                      size_t err_size);

/* Fills *info about template id. -ENOENT if there is no such folder. */
int hv_template_get(struct hv_host *h, const char *id,
                    struct hv_template_info *info, char *err, size_t err_size);

/* All templates (complete or not), sorted by id; free(*out). */
int hv_template_list(struct hv_host *h, struct hv_template_info **out,
                     size_t *count);

/* Deletes template id. -EBUSY while VMs use it or it is being made or
 * cloned. */
int hv_template_delete(struct hv_host *h, const char *id, char *err,
                       size_t err_size);

/* Called by hv_template_gc() for each template it deleted. */
typedef void (*hv_template_gc_fn)(void *arg, const char *id, const char *why);

/*
 * Deletes incomplete templates (an interrupted create; its QEMU, if still
 * running, is killed) and stale ones no VM uses; with all_unused, also
 * valid ones no VM uses. Templates locked by another process are left
 * alone. fn may be NULL. Returns how many were deleted, or a negative
 * errno.
 */
int hv_template_gc(struct hv_host *h, int all_unused, hv_template_gc_fn fn,
                   void *arg);

/* --- clones --------------------------------------------------------------- */

struct hv_clone_options {
    const char *name;     /* the VM's name; NULL: its id */
    const char *hostname; /* NULL: derived from the id ('_' becomes '-') */
    /* How long to wait for the agent to personalise the clone: 0 means
     * HV_TEMPLATE_PERSONALISE_TIMEOUT_MS, < 0 not to try (the caller
     * calls hv_template_personalise() itself, e.g. from its event loop). */
    int personalise_timeout_ms;
    /* For hv_template_clone_spec() when it has to make the template: 0
     * means HV_TEMPLATE_READY_TIMEOUT_MS. */
    int ready_timeout_ms;
};

struct hv_clone_result {
    char template_id[HV_ID_MAX + 1];
    int template_created;      /* hv_template_clone_spec() made it now */
    double exec_to_running_ms; /* QEMU started -> guest running */
    double total_ms;           /* the call, from overlay to running */
    /* 1 when the agent took hostname, machine-id and clock; 0 when it did
     * not answer in time (the clone runs anyway, as a twin of the
     * template: see personalise_error) or was not asked. */
    int personalised;
    char hostname[64];
    char personalise_error[256];
};

/*
 * Makes VM id (which must not exist) as a clone of template id and starts
 * it: overlay on the template's disk, vm.json with "template", QEMU with
 * the template's RAM file mapped privately and -incoming defer, the
 * device state loaded (QEMU reads the state file, handed to it as fd 3),
 * cont. Then personalises it through the agent as o says (o may be NULL:
 * defaults). Returns 0 once the clone runs, whether personalised or not
 * (r says; r may be NULL). Synchronous: a few hundred milliseconds, plus
 * up to personalise_timeout_ms. The agent's socket takes one client at a
 * time: a manager that keeps its own hv_agent connection to the clone
 * should pass personalise_timeout_ms < 0 and send `personalise` itself,
 * or connect after this returns.
 */
int hv_template_clone(struct hv_host *h, const char *template_id,
                      const char *id, const struct hv_clone_options *o,
                      struct hv_clone_result *r, char *err, size_t err_size);

/*
 * The same for a VM spec: finds the template of its shape, making it first
 * when there is none or it is stale (r->template_created), then clones VM
 * spec->id from it. The spec's name is kept.
 */
int hv_template_clone_spec(struct hv_host *h, const struct hv_spec *spec,
                           const struct hv_clone_options *o,
                           struct hv_clone_result *r, char *err,
                           size_t err_size);

/*
 * Gives running VM id its own identity through its agent: hostname,
 * a fresh random machine-id, the host's clock and a fresh random seed
 * (agent/PROTOCOL.md `personalise`; the args of
 * hv_template_personalise_args()). Waits up to timeout_ms for the agent's
 * hello. Returns 0, -ETIMEDOUT when the agent did not answer, or the
 * agent's error.
 */
int hv_template_personalise(struct hv_host *h, const char *id,
                            const char *hostname, int timeout_ms, char *err,
                            size_t err_size);

/*
 * The args of an agent `personalise` request for hostname: a random
 * machine-id, the host's clock and 32 random bytes for the guest kernel's
 * pool, all from dp_token_random_text() (OpenSSL's generator). For
 * callers with an agent connection of their own (the broker's event
 * loop). NULL if no random bytes or no memory.
 */
json_t *hv_template_personalise_args(const char *hostname);

#endif
