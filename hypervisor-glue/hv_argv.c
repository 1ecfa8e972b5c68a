/*
 * hv_argv.c - QEMU command lines (see hv_argv.h).
 */
#include "hv_argv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hv_argv_init(struct hv_argv *a)
{
    memset(a, 0, sizeof(*a));
}

void hv_argv_free(struct hv_argv *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    hv_argv_init(a);
}

void hv_argv_add(struct hv_argv *a, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    if (a->failed)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        char **v = realloc(a->v, cap * sizeof(*v));
        if (!v) {
            a->failed = 1;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s) {
        a->failed = 1;
        return;
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

void hv_qemu_mac(const char *id, char buf[18])
{
    /* FNV-1a: stable, spreads similar ids apart. */
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 16777619u;
    snprintf(buf, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff,
             (h >> 8) & 0xff, h & 0xff);
}

static void hv_qemu_chardev_socket(struct hv_argv *a, const char *id,
                                   const char *run_dir, const char *file)
{
    hv_argv_add(a, "-chardev");
    hv_argv_add(a, "socket,id=%s,path=%s/%s,server=on,wait=off", id, run_dir,
                file);
}

static void hv_qemu_net(struct hv_argv *a, const struct hv_spec *s)
{
    char mac[18];

    switch (s->net) {
    case HV_NET_NONE: return;
    case HV_NET_USER:
        hv_argv_add(a, "-netdev");
        hv_argv_add(a, "user,id=net0");
        break;
    case HV_NET_TAP:
        hv_argv_add(a, "-netdev");
        hv_argv_add(a, "tap,id=net0,ifname=%s,script=no,downscript=no",
                    s->ifname);
        break;
    case HV_NET_BRIDGE:
        hv_argv_add(a, "-netdev");
        hv_argv_add(a, "bridge,id=net0,br=%s", s->ifname);
        break;
    }
    hv_qemu_mac(s->id, mac);
    hv_argv_add(a, "-device");
    hv_argv_add(a, "virtio-net-pci,netdev=net0,mac=%s", mac);
}

static void hv_qemu_boot(struct hv_argv *a, const struct hv_spec *s)
{
    if (!s->kernel[0])
        return;
    hv_argv_add(a, "-kernel");
    hv_argv_add(a, "%s", s->kernel);
    if (s->initrd[0]) {
        hv_argv_add(a, "-initrd");
        hv_argv_add(a, "%s", s->initrd);
    }
    if (s->cmdline[0]) {
        hv_argv_add(a, "-append");
        hv_argv_add(a, "%s", s->cmdline);
    }
}

int hv_qemu_argv(struct hv_argv *a, const char *qemu, const struct hv_spec *s,
                 enum hv_accel accel, const struct hv_qemu_setup *p)
{
    return hv_qemu_argv_mem(a, qemu, s, accel, p, NULL);
}

int hv_qemu_argv_mem(struct hv_argv *a, const char *qemu,
                     const struct hv_spec *s, enum hv_accel accel,
                     const struct hv_qemu_setup *p, const struct hv_qemu_mem *m)
{
    int kvm = accel == HV_ACCEL_KVM;

    hv_argv_add(a, "%s", qemu);
    /* Identify the process as ours and name its threads after the VM. */
    hv_argv_add(a, "-name");
    hv_argv_add(a, "guest=%s,process=dp-%s", s->id, s->id);
    hv_argv_add(a, "-machine");
    if (m && m->mem_path) {
        hv_argv_add(a, "q35,memory-backend=ram0");
        hv_argv_add(a, "-object");
        hv_argv_add(a,
                    "memory-backend-file,id=ram0,size=%dM,mem-path=%s,share=%s",
                    s->memory_mb, m->mem_path, m->share ? "on" : "off");
    } else {
        hv_argv_add(a, "q35");
    }
    hv_argv_add(a, "-accel");
    hv_argv_add(a, "%s", kvm ? "kvm" : "tcg");
    if (kvm) {
        hv_argv_add(a, "-cpu");
        hv_argv_add(a, "host");
    }
    hv_argv_add(a, "-smp");
    hv_argv_add(a, "%d", s->vcpus);
    hv_argv_add(a, "-m");
    hv_argv_add(a, "%d", s->memory_mb);
    hv_argv_add(a, "-nodefaults");
    hv_argv_add(a, "-no-user-config");
    hv_argv_add(a, "-display");
    hv_argv_add(a, "none");
    /* std VGA: vesafb/VBE in guests, preferred size through its EDID. */
    hv_argv_add(a, "-device");
    hv_argv_add(a, "VGA,xres=%d,yres=%d", s->width, s->height);
    hv_argv_add(a, "-vnc");
    /* lock-key-sync=off: the display server sends scancodes (extended key
     * events) without keysyms; QEMU must not toggle Num Lock on its own
     * guess from keysyms. */
    hv_argv_add(a, "unix:%s/vnc.sock,lock-key-sync=off", p->run_dir);
    hv_qemu_chardev_socket(a, "qmp", p->run_dir, "qmp.sock");
    hv_argv_add(a, "-mon");
    hv_argv_add(a, "chardev=qmp,mode=control");
    hv_qemu_chardev_socket(a, "qmp-events", p->run_dir, "events.sock");
    hv_argv_add(a, "-mon");
    hv_argv_add(a, "chardev=qmp-events,mode=control");
    hv_argv_add(a, "-drive");
    hv_argv_add(a, "file=%s,if=none,id=disk0,format=qcow2,discard=unmap",
                p->disk);
    hv_argv_add(a, "-device");
    hv_argv_add(a, "virtio-blk-pci,drive=disk0");
    hv_argv_add(a, "-device");
    hv_argv_add(a, "virtio-tablet-pci");
    hv_argv_add(a, "-device");
    hv_argv_add(a, "virtio-serial-pci,id=vser0");
    hv_qemu_chardev_socket(a, "agent0", p->run_dir, "agent.sock");
    hv_argv_add(a, "-device");
    hv_argv_add(a, "virtserialport,bus=vser0.0,chardev=agent0,"
                   "name=org.deskpool.agent.0");
    hv_argv_add(a, "-serial");
    hv_argv_add(a, "file:%s/serial.log", p->run_dir);
    hv_qemu_net(a, s);
    hv_qemu_boot(a, s);
    if (m && m->mem_path) {
        /* A new generation id at every restore: the guest's kernel mixes
         * it into its random generator, so clones do not share a seed. */
        hv_argv_add(a, "-device");
        hv_argv_add(a, "vmgenid,guid=auto");
    }
    if (m && m->incoming_defer) {
        hv_argv_add(a, "-incoming");
        hv_argv_add(a, "defer");
    }
    /* No obsolete syscalls, no privilege changes; spawning stays allowed
     * because bridge networking runs qemu-bridge-helper (templates migrate
     * over a unix socket or an inherited fd, never an exec: helper). With
     * -runas QEMU drops to the user itself after start-up, which the
     * seccomp rule against set*uid would kill; once dropped it cannot
     * climb back. */
    hv_argv_add(a, "-sandbox");
    hv_argv_add(a, "on,obsolete=deny,resourcecontrol=deny%s",
                p->user ? "" : ",elevateprivileges=deny");
    if (p->user) {
        hv_argv_add(a, "-runas");
        hv_argv_add(a, "%s", p->user);
    }
    hv_argv_add(a, "-pidfile");
    hv_argv_add(a, "%s/qemu.pid", p->run_dir);
    return a->failed ? -ENOMEM : 0;
}
