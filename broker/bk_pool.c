/*
 * bk_pool.c - desktop pool settings (see bk_pool.h).
 *
 * One table lists every key with its kind, default and bounds; validation,
 * defaults and the list of accepted keys all read it.
 */
#include "bk_pool.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum bk_pool_kind { BK_P_INT, BK_P_BOOL, BK_P_STR, BK_P_PATH, BK_P_NAMES };

struct bk_pool_key {
    const char *key;
    enum bk_pool_kind kind;
    long lo, hi;      /* integers; strings: longest length (hi) */
    long def;         /* integer default */
    const char *sdef; /* string default; for enums "a|b|c" in choices */
    const char *choices;
};

static const struct bk_pool_key bk_pool_keys[] = {
    {"type", BK_P_STR, 0, 16, 0, "floating", "floating|dedicated"},
    {"min", BK_P_INT, 0, 1000, 0, NULL, NULL},
    {"max", BK_P_INT, 0, 1000, 10, NULL, NULL},
    {"spare", BK_P_INT, 0, 1000, 1, NULL, NULL},
    {"provisioning", BK_P_STR, 0, 16, 0, "boot", "boot|instant"},
    {"golden", BK_P_PATH, 1, HV_PATH_MAX - 1, 0, NULL, NULL},
    {"kernel", BK_P_PATH, 0, HV_PATH_MAX - 1, 0, "", NULL},
    {"initrd", BK_P_PATH, 0, HV_PATH_MAX - 1, 0, "", NULL},
    {"cmdline", BK_P_STR, 0, HV_CMDLINE_MAX - 1, 0, "", NULL},
    {"vcpus", BK_P_INT, 1, 64, 1, NULL, NULL},
    {"memory_mb", BK_P_INT, 64, 1048576, 1024, NULL, NULL},
    {"width", BK_P_INT, 320, 8192, 1024, NULL, NULL},
    {"height", BK_P_INT, 200, 8192, 768, NULL, NULL},
    {"accel", BK_P_STR, 0, 8, 0, "auto", "auto|kvm|tcg"},
    {"idle_timeout", BK_P_INT, 0, 30 * 86400, 0, NULL, NULL},
    {"disconnect_timeout", BK_P_INT, 0, 30 * 86400, 0, NULL, NULL},
    {"maintenance", BK_P_BOOL, 0, 1, 0, NULL, NULL},
    {"users", BK_P_NAMES, 0, 10000, 0, NULL, NULL},
    {"groups", BK_P_NAMES, 0, 10000, 0, NULL, NULL},
    {"description", BK_P_STR, 0, 500, 0, "", NULL},
};
#define BK_POOL_NKEYS (sizeof(bk_pool_keys) / sizeof(bk_pool_keys[0]))

int bk_pool_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    return n >= 1 && n <= BK_POOL_NAME_MAX && name[0] != '-' &&
           strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* User and group names as NSS has them: printable, no ':' or spaces. */
static int bk_pool_account_name_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 64)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || s[i] == ':' ||
            s[i] == ',')
            return 0;
    return 1;
}

static int bk_pool_choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    const char *p = choices;

    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);

        if (len == n && !strncmp(p, v, n))
            return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

/* Checks one value; returns a new reference or NULL with err set. */
static json_t *bk_pool_value(const struct bk_pool_key *k, const json_t *v,
                             char *err, size_t err_size)
{
    size_t i;
    json_t *e;

    switch (k->kind) {
    case BK_P_INT:
        if (!json_is_integer(v) || json_integer_value(v) < k->lo ||
            json_integer_value(v) > k->hi)
            break;
        return json_incref((json_t *)v);
    case BK_P_BOOL:
        if (!json_is_boolean(v))
            break;
        return json_incref((json_t *)v);
    case BK_P_STR:
    case BK_P_PATH: {
        const char *s = json_string_value(v);
        size_t n = s ? strlen(s) : 0;

        if (!s || n > (size_t)k->hi || (k->lo && n == 0) ||
            n != json_string_length(v))
            break;
        for (i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                goto bad;
        if (k->kind == BK_P_PATH && n && s[0] != '/')
            goto bad;
        if (k->choices && !bk_pool_choice_ok(k->choices, s))
            goto bad;
        return json_incref((json_t *)v);
    }
    case BK_P_NAMES:
        if (!json_is_array(v) || json_array_size(v) > (size_t)k->hi)
            break;
        json_array_foreach(v, i, e)
        {
            if (!json_is_string(e) ||
                !bk_pool_account_name_ok(json_string_value(e)))
                goto bad;
        }
        return json_incref((json_t *)v);
    }
bad:
    switch (k->kind) {
    case BK_P_INT:
        snprintf(err, err_size, "%s: must be a whole number from %ld to %ld",
                 k->key, k->lo, k->hi);
        break;
    case BK_P_BOOL:
        snprintf(err, err_size, "%s: must be true or false", k->key);
        break;
    case BK_P_NAMES:
        snprintf(err, err_size,
                 "%s: must be a list of names (no spaces, ':' or ',')", k->key);
        break;
    default:
        if (k->choices)
            snprintf(err, err_size, "%s: must be one of %s", k->key,
                     k->choices);
        else
            snprintf(err, err_size,
                     "%s: must be %s%s of at most %ld "
                     "characters without control characters",
                     k->key, k->lo ? "a non-empty " : "a ",
                     k->kind == BK_P_PATH ? "absolute path" : "text", k->hi);
    }
    return NULL;
}

static json_t *bk_pool_default(const struct bk_pool_key *k)
{
    switch (k->kind) {
    case BK_P_INT: return json_integer(k->def);
    case BK_P_BOOL: return json_boolean(k->def);
    case BK_P_NAMES: return json_array();
    default: return k->sdef ? json_string(k->sdef) : NULL;
    }
}

/* Rules between keys, once every key is valid on its own. */
static int bk_pool_relations(const json_t *p, char *err, size_t err_size)
{
    int min = bk_pool_int(p, "min"), max = bk_pool_int(p, "max");

    if (min > max) {
        snprintf(err, err_size, "min: must not exceed max (%d)", max);
        return -EINVAL;
    }
    if (bk_pool_int(p, "spare") > max) {
        snprintf(err, err_size, "spare: must be 0..max (%d)", max);
        return -EINVAL;
    }
    if (bk_pool_str(p, "initrd")[0] && !bk_pool_str(p, "kernel")[0]) {
        snprintf(err, err_size, "initrd: needs a kernel");
        return -EINVAL;
    }
    /* Whatever QEMU would refuse (commas in paths, a command line without
     * a kernel) is refused now, not at every provisioning attempt. */
    {
        struct hv_spec spec;

        return bk_pool_spec(p, "pool-check", &spec, err, err_size);
    }
}

json_t *bk_pool_validate(const json_t *in, const json_t *base, char *err,
                         size_t err_size)
{
    json_t *out, *v;
    const char *key;
    size_t i;

    if (!json_is_object(in)) {
        snprintf(err, err_size, "a pool must be a JSON object");
        return NULL;
    }
    json_object_foreach((json_t *)in, key, v)
    {
        for (i = 0; i < BK_POOL_NKEYS; i++)
            if (!strcmp(bk_pool_keys[i].key, key))
                break;
        if (i == BK_POOL_NKEYS && strcmp(key, "name") != 0) {
            snprintf(err, err_size, "%s: unknown setting", key);
            return NULL;
        }
    }
    out = json_object();
    for (i = 0; out && i < BK_POOL_NKEYS; i++) {
        const struct bk_pool_key *k = &bk_pool_keys[i];
        json_t *val = json_object_get(in, k->key);

        if (!val && base)
            val = json_object_get(base, k->key);
        val = val ? bk_pool_value(k, val, err, err_size) : bk_pool_default(k);
        if (!val) {
            if (!json_object_get(in, k->key) &&
                !(base && json_object_get(base, k->key)))
                snprintf(err, err_size, "%s: required", k->key);
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, k->key, val);
    }
    if (out && bk_pool_relations(out, err, err_size)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

int bk_pool_int(const json_t *settings, const char *key)
{
    json_t *v = json_object_get(settings, key);

    return json_is_integer(v) ? (int)json_integer_value(v) : json_is_true(v);
}

const char *bk_pool_str(const json_t *settings, const char *key)
{
    const char *s = json_string_value(json_object_get(settings, key));

    return s ? s : "";
}

int bk_pool_dedicated(const json_t *settings)
{
    return !strcmp(bk_pool_str(settings, "type"), "dedicated");
}

int bk_pool_instant(const json_t *settings)
{
    return !strcmp(bk_pool_str(settings, "provisioning"), "instant");
}

int bk_pool_spec(const json_t *settings, const char *id, struct hv_spec *spec,
                 char *err, size_t err_size)
{
    hv_spec_init(spec);
    if (!hv_id_valid(id)) {
        snprintf(err, err_size, "%s: not a valid desktop id", id);
        return -EINVAL;
    }
    snprintf(spec->id, sizeof(spec->id), "%s", id);
    snprintf(spec->name, sizeof(spec->name), "%s", id);
    spec->vcpus = bk_pool_int(settings, "vcpus");
    spec->memory_mb = bk_pool_int(settings, "memory_mb");
    spec->width = bk_pool_int(settings, "width");
    spec->height = bk_pool_int(settings, "height");
    snprintf(spec->golden, sizeof(spec->golden), "%s",
             bk_pool_str(settings, "golden"));
    snprintf(spec->kernel, sizeof(spec->kernel), "%s",
             bk_pool_str(settings, "kernel"));
    snprintf(spec->initrd, sizeof(spec->initrd), "%s",
             bk_pool_str(settings, "initrd"));
    snprintf(spec->cmdline, sizeof(spec->cmdline), "%s",
             bk_pool_str(settings, "cmdline"));
    if (hv_accel_parse(bk_pool_str(settings, "accel"), &spec->accel)) {
        snprintf(err, err_size, "accel: unknown");
        return -EINVAL;
    }
    return hv_spec_validate(spec, err, err_size);
}

static int bk_pool_listed(const json_t *names, const char *name)
{
    size_t i;
    json_t *e;

    json_array_foreach(names, i, e)
    {
        if (json_is_string(e) && !strcmp(json_string_value(e), name))
            return 1;
    }
    return 0;
}

int bk_pool_entitled(const json_t *settings, const char *user,
                     const json_t *groups)
{
    const json_t *pg = json_object_get(settings, "groups");
    size_t i;
    json_t *g;

    if (bk_pool_listed(json_object_get(settings, "users"), user))
        return 1;
    json_array_foreach(groups, i, g)
    {
        if (json_is_string(g) && bk_pool_listed(pg, json_string_value(g)))
            return 1;
    }
    return 0;
}
