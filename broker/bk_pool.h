/*
 * bk_pool.h - desktop pool settings: validation, defaults, entitlement and
 * the VM spec a pool's desktops are made from.
 *
 * A pool's settings are a JSON object (what the admin API takes and the
 * store keeps); bk_pool_validate() is the only way in, so every stored
 * pool is complete and within bounds:
 *
 *   type          "floating" (refreshed after logoff) | "dedicated" (kept)
 *   min, max      desktops kept at least / at most (0..1000, min <= max)
 *   spare         ready unassigned desktops kept (0..max)
 *   provisioning  "boot" (linked clone, full boot) | "instant" (a clone of
 *                 the pool's template, restored running; see bk_mgr.h)
 *   golden        qcow2 image desktops are linked clones of (absolute path)
 *   kernel, initrd, cmdline   optional direct kernel boot
 *   vcpus, memory_mb, width, height, accel ("auto" | "kvm" | "tcg")
 *   idle_timeout, disconnect_timeout   seconds, 0 = never
 *   maintenance   no launches, no provisioning
 *   users, groups entitled user and group names
 *   description   free text for admins
 */
#ifndef BK_POOL_H
#define BK_POOL_H

#include <jansson.h>
#include <stddef.h>

#include "hv_spec.h"

#define BK_POOL_NAME_MAX 32

/* Pool names: 1..32 of [a-z0-9-], starting with a letter or digit. */
int bk_pool_name_ok(const char *name);

/*
 * Checks an admin's pool object and returns the complete settings (new
 * reference): defaults filled in, unknown keys refused. base (may be NULL)
 * supplies values for keys `in` leaves out (a partial update). NULL with
 * the reason in err ("spare: must be 0..max (10)").
 */
json_t *bk_pool_validate(const json_t *in, const json_t *base, char *err,
                         size_t err_size);

/* The VM spec of desktop id of a pool with these settings. 0 or -EINVAL. */
int bk_pool_spec(const json_t *settings, const char *id, struct hv_spec *spec,
                 char *err, size_t err_size);

/* True when user, or one of groups (array of names), is entitled. */
int bk_pool_entitled(const json_t *settings, const char *user,
                     const json_t *groups);

/* Setting helpers for callers that read a validated pool. */
int bk_pool_int(const json_t *settings, const char *key);
const char *bk_pool_str(const json_t *settings, const char *key);
int bk_pool_dedicated(const json_t *settings);
/* provisioning is "instant": desktops are clones of the pool's template. */
int bk_pool_instant(const json_t *settings);

#endif
