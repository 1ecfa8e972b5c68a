/*
 * hv_spec.h - what a desktop VM is made of: the VM specification.
 *
 * A spec is plain data, kept as vm.json in the VM's state folder so that a
 * restarted manager knows what it runs. Parsing is strict and bounded:
 * unknown keys, wrong types and out-of-range values are refused with a
 * message naming the field.
 */
#ifndef HV_SPEC_H
#define HV_SPEC_H

#include <jansson.h>
#include <stddef.h>

#define HV_ID_MAX      48 /* [a-z0-9_-], starting with a letter or digit */
#define HV_NAME_MAX    128
#define HV_PATH_MAX    1024
#define HV_CMDLINE_MAX 1024
#define HV_IFNAME_MAX  15 /* IFNAMSIZ - 1 */

enum hv_net_mode {
    HV_NET_NONE,   /* no network device */
    HV_NET_USER,   /* QEMU user-mode networking (NAT, no setup) */
    HV_NET_TAP,    /* an existing tap device, ifname */
    HV_NET_BRIDGE, /* a tap on bridge ifname, through qemu-bridge-helper */
};

enum hv_accel {
    HV_ACCEL_AUTO, /* KVM if a timed boot probe succeeds, else TCG */
    HV_ACCEL_KVM,
    HV_ACCEL_TCG,
};

struct hv_spec {
    char id[HV_ID_MAX + 1];
    char name[HV_NAME_MAX + 1];
    int vcpus;     /* 1..64 */
    int memory_mb; /* 64..1048576 */
    /* The golden image (qcow2) the VM's disk is a linked clone of. It is
     * opened read-only as a backing file, never written. */
    char golden[HV_PATH_MAX];
    /* Optional direct kernel boot; empty when the disk boots itself. */
    char kernel[HV_PATH_MAX];
    char initrd[HV_PATH_MAX];
    char cmdline[HV_CMDLINE_MAX];
    int width, height; /* preferred display size, reported by std VGA */
    enum hv_net_mode net;
    char ifname[HV_IFNAME_MAX + 1]; /* tap device or bridge */
    enum hv_accel accel;
    /* The template (hv_template.h) this VM was cloned from, "" for a plain
     * linked clone of golden. Its disk is then an overlay on the
     * template's disk, and the template is kept while the VM exists.
     * vm.json has "template" only when it is set. */
    char template_id[HV_ID_MAX + 1];
};

/* Fills s with defaults: 1 vCPU, 1024 MB, 1024x768, no network, auto. */
void hv_spec_init(struct hv_spec *s);

/*
 * Parses a spec from JSON (the vm.json format, see README.md). Returns 0,
 * or -EINVAL with the reason in err (e.g. "memory_mb: must be 64..1048576").
 */
int hv_spec_from_json(struct hv_spec *s, const json_t *j, char *err,
                      size_t err_size);

/* The spec as a new JSON object (NULL on no memory). */
json_t *hv_spec_to_json(const struct hv_spec *s);

/*
 * Checks a spec for use: id and name well-formed, numbers in range, paths
 * absolute, network names set where needed. Does not touch the file
 * system. Returns 0 or -EINVAL with the reason in err.
 */
int hv_spec_validate(const struct hv_spec *s, char *err, size_t err_size);

/* True when id is a valid VM id (see HV_ID_MAX). */
int hv_id_valid(const char *id);

const char *hv_net_mode_name(enum hv_net_mode m);
const char *hv_accel_name(enum hv_accel a);
int hv_accel_parse(const char *name, enum hv_accel *a);

#endif
