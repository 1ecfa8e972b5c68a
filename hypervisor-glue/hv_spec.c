/*
 * hv_spec.c - VM specifications: defaults, JSON and validation (see
 * hv_spec.h).
 */
#include "hv_spec.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char *const hv_net_names[] = {"none", "user", "tap", "bridge"};
static const char *const hv_accel_names[] = {"auto", "kvm", "tcg"};

#define HV_COUNT(a) (sizeof(a) / sizeof(*(a)))

static int hv_fail(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

void hv_spec_init(struct hv_spec *s)
{
    memset(s, 0, sizeof(*s));
    s->vcpus = 1;
    s->memory_mb = 1024;
    s->width = 1024;
    s->height = 768;
    s->net = HV_NET_NONE;
    s->accel = HV_ACCEL_AUTO;
}

const char *hv_net_mode_name(enum hv_net_mode m)
{
    return hv_net_names[m];
}

const char *hv_accel_name(enum hv_accel a)
{
    return hv_accel_names[a];
}

static int hv_lookup(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

int hv_accel_parse(const char *name, enum hv_accel *a)
{
    int i = hv_lookup(hv_accel_names, HV_COUNT(hv_accel_names), name);
    if (i < 0)
        return -EINVAL;
    *a = (enum hv_accel)i;
    return 0;
}

int hv_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > HV_ID_MAX || id[0] == '-' || id[0] == '_')
        return 0;
    return strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

/* --- JSON ---------------------------------------------------------------
 * Each field is a row of this table: its key, type and place in the struct.
 * Keeping the mapping in one table keeps parse, dump and the list of
 * accepted keys from drifting apart. */

enum hv_field_type { HV_STR, HV_INT, HV_NET, HV_ACCEL };

struct hv_field {
    const char *key;
    enum hv_field_type type;
    size_t offset, size; /* size: buffer size for strings */
    int min, max;        /* for integers */
};

#define HV_S(k, m)                                                             \
    {                                                                          \
        k, HV_STR, offsetof(struct hv_spec, m),                                \
            sizeof(((struct hv_spec *)0)->m), 0, 0                             \
    }
#define HV_I(k, m, lo, hi)                                                     \
    {                                                                          \
        k, HV_INT, offsetof(struct hv_spec, m), 0, lo, hi                      \
    }

static const struct hv_field hv_fields[] = {
    HV_S("id", id),
    HV_S("name", name),
    HV_I("vcpus", vcpus, 1, 64),
    HV_I("memory_mb", memory_mb, 64, 1048576),
    HV_S("golden", golden),
    HV_S("kernel", kernel),
    HV_S("initrd", initrd),
    HV_S("cmdline", cmdline),
    HV_I("width", width, 320, 8192),
    HV_I("height", height, 200, 8192),
    {"net", HV_NET, offsetof(struct hv_spec, net), 0, 0, 0},
    HV_S("ifname", ifname),
    {"accel", HV_ACCEL, offsetof(struct hv_spec, accel), 0, 0, 0},
    HV_S("template", template_id),
};

static int hv_field_parse(struct hv_spec *s, const struct hv_field *f,
                          const json_t *v, char *err, size_t err_size)
{
    char *base = (char *)s + f->offset;
    const char *str = json_string_value(v);
    int i;

    switch (f->type) {
    case HV_STR:
        if (!str)
            return hv_fail(err, err_size, "%s: must be a string", f->key);
        if (strlen(str) >= f->size)
            return hv_fail(err, err_size, "%s: longer than %zu bytes", f->key,
                           f->size - 1);
        memcpy(base, str, strlen(str) + 1);
        return 0;
    case HV_INT:
        if (!json_is_integer(v) || json_integer_value(v) < f->min ||
            json_integer_value(v) > f->max)
            return hv_fail(err, err_size, "%s: must be an integer %d..%d",
                           f->key, f->min, f->max);
        *(int *)base = (int)json_integer_value(v);
        return 0;
    case HV_NET:
        i = str ? hv_lookup(hv_net_names, HV_COUNT(hv_net_names), str) : -1;
        if (i < 0)
            return hv_fail(err, err_size,
                           "net: must be none, user, tap or bridge");
        *(enum hv_net_mode *)base = (enum hv_net_mode)i;
        return 0;
    case HV_ACCEL:
        if (!str || hv_accel_parse(str, (enum hv_accel *)base) < 0)
            return hv_fail(err, err_size, "accel: must be auto, kvm or tcg");
        return 0;
    }
    return -EINVAL;
}

static const struct hv_field *hv_field_find(const char *key)
{
    for (size_t i = 0; i < HV_COUNT(hv_fields); i++)
        if (strcmp(hv_fields[i].key, key) == 0)
            return &hv_fields[i];
    return NULL;
}

int hv_spec_from_json(struct hv_spec *s, const json_t *j, char *err,
                      size_t err_size)
{
    const char *key;
    json_t *v;
    int rc;

    hv_spec_init(s);
    if (!json_is_object(j))
        return hv_fail(err, err_size, "spec: must be a JSON object");
    json_object_foreach((json_t *)j, key, v)
    {
        const struct hv_field *f = hv_field_find(key);
        if (!f)
            return hv_fail(err, err_size, "%.64s: unknown key", key);
        rc = hv_field_parse(s, f, v, err, err_size);
        if (rc < 0)
            return rc;
    }
    return hv_spec_validate(s, err, err_size);
}

json_t *hv_spec_to_json(const struct hv_spec *s)
{
    json_t *j = json_object();
    for (size_t i = 0; j && i < HV_COUNT(hv_fields); i++) {
        const struct hv_field *f = &hv_fields[i];
        const char *base = (const char *)s + f->offset;
        json_t *v = NULL;
        if (f->offset == offsetof(struct hv_spec, template_id) && !base[0])
            continue; /* plain VMs keep the vm.json they always had */
        switch (f->type) {
        case HV_STR: v = json_string(base); break;
        case HV_INT: v = json_integer(*(const int *)base); break;
        case HV_NET: v = json_string(hv_net_mode_name(s->net)); break;
        case HV_ACCEL: v = json_string(hv_accel_name(s->accel)); break;
        }
        if (json_object_set_new(j, f->key, v) < 0) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

/* Paths go to QEMU as option values: they must be absolute, and a comma
 * would be read as an option separator. */
static int hv_path_ok(const char *p, int optional)
{
    if (!p[0])
        return optional;
    return p[0] == '/' && !strchr(p, ',') && !strchr(p, '\n');
}

int hv_spec_validate(const struct hv_spec *s, char *err, size_t err_size)
{
    if (!hv_id_valid(s->id))
        return hv_fail(err, err_size,
                       "id: 1-%d characters of a-z, 0-9, '-', '_', not "
                       "starting with '-' or '_'",
                       HV_ID_MAX);
    if (s->vcpus < 1 || s->vcpus > 64 || s->memory_mb < 64 ||
        s->memory_mb > 1048576)
        return hv_fail(err, err_size, "vcpus or memory_mb out of range");
    if (!hv_path_ok(s->golden, 0))
        return hv_fail(err, err_size,
                       "golden: must be an absolute path without commas");
    if (!hv_path_ok(s->kernel, 1) || !hv_path_ok(s->initrd, 1))
        return hv_fail(err, err_size,
                       "kernel/initrd: must be absolute paths without commas");
    if (s->initrd[0] && !s->kernel[0])
        return hv_fail(err, err_size, "initrd: needs a kernel");
    if (s->cmdline[0] && !s->kernel[0])
        return hv_fail(err, err_size, "cmdline: needs a kernel");
    if (s->template_id[0] && !hv_id_valid(s->template_id))
        return hv_fail(err, err_size, "template: not a valid template id");
    if (strchr(s->cmdline, '\n') || strchr(s->name, '\n'))
        return hv_fail(err, err_size, "cmdline/name: no newlines");
    if (s->width < 320 || s->height < 200 || s->width > 8192 ||
        s->height > 8192)
        return hv_fail(err, err_size, "width/height out of range");
    if ((s->net == HV_NET_TAP || s->net == HV_NET_BRIDGE) &&
        (!s->ifname[0] ||
         strspn(s->ifname, "abcdefghijklmnopqrstuvwxyz"
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
             strlen(s->ifname)))
        return hv_fail(err, err_size,
                       "ifname: tap and bridge need an interface name");
    return 0;
}
