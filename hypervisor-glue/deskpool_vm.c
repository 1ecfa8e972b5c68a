/*
 * deskpool-vm - run desktop VMs by hand: an admin and debugging CLI over
 * libdeskpool-hv (hv_vm.h). See README.md in this folder.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "hv_agent.h"
#include "hv_template.h"
#include "hv_vm.h"

#define DP_DEFAULT_STATE "/var/lib/deskpool"

struct dp_opts {
    const char *state;
    const char *qemu, *qemu_user;
    int json, quiet;
};

static void dp_usage(FILE *f)
{
    fputs(
        "usage: deskpool-vm [--state DIR] [--qemu BIN] [--qemu-user USER]\n"
        "                   [--json] [--quiet] COMMAND ...\n"
        "\n"
        "  create ID --golden QCOW2 [--name TEXT] [--vcpus N] [--memory MB]\n"
        "            [--kernel FILE [--initrd FILE] [--cmdline TEXT]]\n"
        "            [--size WxH] [--net none|user|tap:IF|bridge:BR]\n"
        "            [--accel auto|kvm|tcg]\n"
        "  create ID --spec FILE.json\n"
        "  start ID               boot it (QEMU outlives this command)\n"
        "  stop ID [--force] [--timeout SECONDS]\n"
        "                         ACPI shutdown, forced off after the "
        "timeout (60)\n"
        "  reset|pause|resume ID\n"
        "  refresh ID             a fresh linked clone: guest writes are "
        "gone\n"
        "  delete ID              force off and remove everything\n"
        "  list                   all VMs with their state\n"
        "  status ID              state, pid, CPU time, RSS, accelerator\n"
        "  screenshot ID FILE.png\n"
        "  adopt                  re-attach running VMs, clean leftovers\n"
        "  events ID              print QMP events until the VM stops\n"
        "  qmp ID COMMAND [JSON]  run one QMP command (debugging)\n"
        "  agent ID OP [JSON]     one request to the in-guest agent, e.g.\n"
        "                         agent desk1 message '{\"text\":\"Hi\"}'\n"
        "  agent ID watch         print the agent's events\n"
        "  agent ID status        the agent's state after its next heartbeat\n"
        "  memory ID              resident memory: private vs shared (clones)\n"
        "\n"
        "  template create --golden QCOW2 [shape options of create]\n"
        "                  [--ready-timeout SECONDS]\n"
        "                         boot the golden image once and save it\n"
        "  template list | delete TID | gc [--all]\n"
        "  clone TEMPLATE [--id ID] [--name TEXT] [--hostname NAME]\n"
        "                 [--no-personalise] [--personalise-timeout MS]\n"
        "                         start a desktop from a template (TEMPLATE:\n"
        "                         a template id); prints exec -> running\n"
        "\n"
        "State folder: --state, else $DESKPOOL_STATE, else " DP_DEFAULT_STATE
        ".\n"
        "--qemu-user: the unprivileged user QEMU drops to when run as root.\n",
        f);
}

static int dp_fail(const char *msg)
{
    fprintf(stderr, "deskpool-vm: %s\n", msg);
    return 1;
}

/* Prints a JSON value on one line. */
static void dp_print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s)
        puts(s);
    free(s);
}

/* --- create ------------------------------------------------------------- */

static int dp_copy_opt(char *dst, size_t size, const char *src,
                       const char *what)
{
    if (strlen(src) >= size) {
        fprintf(stderr, "deskpool-vm: %s too long\n", what);
        return -1;
    }
    strcpy(dst, src);
    return 0;
}

static int dp_parse_net(struct hv_spec *s, const char *v)
{
    if (strcmp(v, "none") == 0)
        s->net = HV_NET_NONE;
    else if (strcmp(v, "user") == 0)
        s->net = HV_NET_USER;
    else if (strncmp(v, "tap:", 4) == 0)
        s->net = HV_NET_TAP;
    else if (strncmp(v, "bridge:", 7) == 0)
        s->net = HV_NET_BRIDGE;
    else
        return -1;
    if (s->net == HV_NET_TAP || s->net == HV_NET_BRIDGE)
        return dp_copy_opt(s->ifname, sizeof(s->ifname), strchr(v, ':') + 1,
                           "interface name");
    return 0;
}

static int dp_load_spec_file(struct hv_spec *s, const char *path)
{
    char err[512];
    json_error_t jerr;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    int rc;

    if (!j) {
        fprintf(stderr, "deskpool-vm: %s: %s\n", path, jerr.text);
        return -1;
    }
    rc = hv_spec_from_json(s, j, err, sizeof(err));
    json_decref(j);
    if (rc < 0)
        fprintf(stderr, "deskpool-vm: %s: %s\n", path, err);
    return rc < 0 ? -1 : 0;
}

/* Parses create's options into s (after the id). */
static int dp_create_spec(struct hv_spec *s, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"golden", 1, 0, 'g'},  {"name", 1, 0, 'n'},   {"vcpus", 1, 0, 'c'},
        {"memory", 1, 0, 'm'},  {"kernel", 1, 0, 'k'}, {"initrd", 1, 0, 'i'},
        {"cmdline", 1, 0, 'a'}, {"size", 1, 0, 's'},   {"net", 1, 0, 'N'},
        {"accel", 1, 0, 'A'},   {"spec", 1, 0, 'S'},   {0, 0, 0, 0}};
    int c, rc = 0;

    optind = 0; /* 0: glibc re-initializes getopt for a new argv */
    while (rc == 0 && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'g':
            rc = dp_copy_opt(s->golden, sizeof(s->golden), optarg, "path");
            break;
        case 'n':
            rc = dp_copy_opt(s->name, sizeof(s->name), optarg, "name");
            break;
        case 'k':
            rc = dp_copy_opt(s->kernel, sizeof(s->kernel), optarg, "path");
            break;
        case 'i':
            rc = dp_copy_opt(s->initrd, sizeof(s->initrd), optarg, "path");
            break;
        case 'a':
            rc = dp_copy_opt(s->cmdline, sizeof(s->cmdline), optarg, "cmdline");
            break;
        case 'c': s->vcpus = atoi(optarg); break;
        case 'm': s->memory_mb = atoi(optarg); break;
        case 's':
            rc = sscanf(optarg, "%dx%d", &s->width, &s->height) == 2 ? 0 : -1;
            break;
        case 'N': rc = dp_parse_net(s, optarg); break;
        case 'A': rc = hv_accel_parse(optarg, &s->accel); break;
        case 'S': rc = dp_load_spec_file(s, optarg); break;
        default: rc = -1; break;
        }
    }
    if (rc == 0 && optind != argc)
        rc = -1;
    return rc;
}

static int dp_cmd_create(struct hv_host *h, int argc, char **argv)
{
    struct hv_spec s;
    char err[1024];

    if (argc < 2)
        return dp_fail("create: which id?");
    hv_spec_init(&s);
    if (dp_create_spec(&s, argc - 1, argv + 1) < 0)
        return dp_fail("create: bad options (see --help)");
    /* The id on the command line wins over one in a spec file. */
    if (dp_copy_opt(s.id, sizeof(s.id), argv[1], "id") < 0)
        return 1;
    if (!s.name[0])
        snprintf(s.name, sizeof(s.name), "%s", s.id);
    if (hv_vm_create(h, &s, err, sizeof(err)) < 0)
        return dp_fail(err);
    return 0;
}

/* --- templates and clones ------------------------------------------------- */

static json_t *dp_template_json(const struct hv_template_info *t)
{
    return json_pack(
        "{s:s, s:b, s:b, s:s, s:i, s:s, s:s, s:i, s:i, s:s, s:I, s:I, s:I}",
        "id", t->id, "complete", t->complete, "stale", t->stale, "why", t->why,
        "users", t->users, "golden", t->shape.golden, "accel",
        t->complete ? hv_accel_name(t->shape.accel) : "", "memory_mb",
        t->shape.memory_mb, "vcpus", t->shape.vcpus, "qemu_version",
        t->qemu_version, "created", (json_int_t)t->created, "ram_bytes",
        (json_int_t)t->ram_bytes, "state_bytes", (json_int_t)t->state_bytes);
}

static int dp_template_list(struct hv_host *h, const struct dp_opts *o)
{
    struct hv_template_info *v;
    json_t *all = o->json ? json_array() : NULL;
    size_t n;
    int rc = hv_template_list(h, &v, &n);

    if (rc < 0) {
        json_decref(all);
        return dp_fail(strerror(-rc));
    }
    for (size_t i = 0; i < n; i++) {
        const struct hv_template_info *t = &v[i];
        const char *state = !t->complete ? "incomplete"
                            : t->stale   ? "stale"
                                         : "valid";
        if (all)
            json_array_append_new(all, dp_template_json(t));
        else
            printf("%-16s %-10s users %-3d %5d MB %s ram %.1f MiB state "
                   "%.1f MiB%s%s\n",
                   t->id, state, t->users, t->shape.memory_mb,
                   t->complete ? hv_accel_name(t->shape.accel) : "-",
                   (double)t->ram_bytes / 1048576.0,
                   (double)t->state_bytes / 1048576.0, t->why[0] ? "  " : "",
                   t->why);
    }
    if (all) {
        dp_print_json(all);
        json_decref(all);
    }
    free(v);
    return 0;
}

static void dp_on_gc(void *arg, const char *id, const char *why)
{
    const struct dp_opts *o = arg;
    if (!o->quiet)
        printf("%-16s deleted (%s)\n", id, why);
}

static int dp_cmd_template(struct hv_host *h, struct dp_opts *o, int argc,
                           char **argv)
{
    char err[1024], tid[HV_ID_MAX + 1];
    struct hv_spec s;
    int created = 0, ready_s = 0;

    if (argc >= 2 && strcmp(argv[1], "list") == 0 && argc == 2)
        return dp_template_list(h, o);
    if (argc == 3 && strcmp(argv[1], "delete") == 0) {
        if (hv_template_delete(h, argv[2], err, sizeof(err)) < 0)
            return dp_fail(err);
        return 0;
    }
    if (argc >= 2 && argc <= 3 && strcmp(argv[1], "gc") == 0) {
        int all = argc == 3 && strcmp(argv[2], "--all") == 0, n;
        if (argc == 3 && !all)
            return dp_fail("template gc [--all]");
        n = hv_template_gc(h, all, dp_on_gc, o);
        if (n < 0)
            return dp_fail(strerror(-n));
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "create") == 0) {
        /* --ready-timeout is ours; the rest are create's shape options. */
        char **rest = calloc((size_t)argc + 1, sizeof(*rest));
        int n = 0, rc;
        if (!rest)
            return dp_fail("out of memory");
        rest[n++] = argv[1];
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--ready-timeout") == 0 && i + 1 < argc)
                ready_s = atoi(argv[++i]);
            else
                rest[n++] = argv[i];
        }
        hv_spec_init(&s);
        snprintf(s.id, sizeof(s.id), "template");
        rc = dp_create_spec(&s, n, rest);
        free(rest);
        if (rc < 0)
            return dp_fail("template create: bad options (see --help)");
        if (hv_template_create(h, &s, ready_s * 1000, tid, &created, err,
                               sizeof(err)) < 0)
            return dp_fail(err);
        if (o->json) {
            json_t *j =
                json_pack("{s:s, s:b}", "template", tid, "created", created);
            dp_print_json(j);
            json_decref(j);
        } else {
            puts(tid); /* alone on stdout, for scripts */
            if (!created && !o->quiet)
                fprintf(stderr, "deskpool-vm: template %s existed\n", tid);
        }
        return 0;
    }
    return dp_fail("template create|list|delete TID|gc [--all]");
}

static int dp_cmd_clone(struct hv_host *h, const struct dp_opts *o, int argc,
                        char **argv)
{
    static const struct option longopts[] = {{"id", 1, 0, 'i'},
                                             {"name", 1, 0, 'n'},
                                             {"hostname", 1, 0, 'H'},
                                             {"no-personalise", 0, 0, 'P'},
                                             {"personalise-timeout", 1, 0, 't'},
                                             {0, 0, 0, 0}};
    struct hv_clone_options co = {0};
    struct hv_clone_result r;
    char id[HV_ID_MAX + 1] = "", err[1024];
    int c;

    optind = 0; /* 0: glibc re-initializes getopt for a new argv */
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (dp_copy_opt(id, sizeof(id), optarg, "id") < 0)
                return 1;
            break;
        case 'n': co.name = optarg; break;
        case 'H': co.hostname = optarg; break;
        case 'P': co.personalise_timeout_ms = -1; break;
        case 't': co.personalise_timeout_ms = atoi(optarg); break;
        default: return dp_fail("clone: TEMPLATE [--id ID] (see --help)");
        }
    }
    if (optind != argc - 1)
        return dp_fail("clone: TEMPLATE [--id ID] (see --help)");
    if (!id[0]) {
        unsigned char rnd[4] = {0};
        if (getrandom(rnd, sizeof(rnd), 0) < 0)
            memset(rnd, (int)time(NULL), sizeof(rnd));
        snprintf(id, sizeof(id), "clone-%02x%02x%02x%02x", rnd[0], rnd[1],
                 rnd[2], rnd[3]);
    }
    if (hv_template_clone(h, argv[optind], id, &co, &r, err, sizeof(err)) < 0)
        return dp_fail(err);
    if (o->json) {
        json_t *j = json_pack(
            "{s:s, s:s, s:f, s:f, s:b, s:s, s:s}", "id", id, "template",
            r.template_id, "exec_to_running_ms", r.exec_to_running_ms,
            "total_ms", r.total_ms, "personalised", r.personalised, "hostname",
            r.hostname, "personalise_error", r.personalise_error);
        dp_print_json(j);
        json_decref(j);
    } else {
        printf("%s: running %.1f ms after exec (%.1f ms in all); %s%s\n", id,
               r.exec_to_running_ms, r.total_ms,
               r.personalised ? "personalised as " : "not personalised: ",
               r.personalised ? r.hostname : r.personalise_error);
    }
    return 0;
}

static int dp_cmd_memory(struct hv_host *h, const struct dp_opts *o,
                         const char *id)
{
    struct hv_vm_memory m;
    int rc = hv_vm_read_memory(h, id, &m);

    if (rc < 0)
        return dp_fail(rc == -ESRCH ? "not running" : strerror(-rc));
    if (o->json) {
        json_t *j = json_pack(
            "{s:s, s:i, s:I, s:I, s:I, s:I, s:I}", "id", id, "pid", (int)m.pid,
            "rss_bytes", (json_int_t)m.rss_bytes, "pss_bytes",
            (json_int_t)m.pss_bytes, "shared_bytes", (json_int_t)m.shared_bytes,
            "private_bytes", (json_int_t)m.private_bytes, "anonymous_bytes",
            (json_int_t)m.anonymous_bytes);
        dp_print_json(j);
        json_decref(j);
    } else {
        printf("%s: rss %.1f MiB (shared %.1f, private %.1f, anonymous %.1f), "
               "pss %.1f MiB\n",
               id, (double)m.rss_bytes / 1048576.0,
               (double)m.shared_bytes / 1048576.0,
               (double)m.private_bytes / 1048576.0,
               (double)m.anonymous_bytes / 1048576.0,
               (double)m.pss_bytes / 1048576.0);
    }
    return 0;
}

/* --- status and list ----------------------------------------------------- */

static json_t *dp_status_json(const struct hv_vm_status *st)
{
    return json_pack("{s:s, s:s, s:i, s:I, s:I, s:s}", "id", st->id, "state",
                     st->state, "pid", (int)st->pid, "cpu_ms",
                     (json_int_t)st->cpu_ms, "rss_bytes",
                     (json_int_t)st->rss_bytes, "accel", st->accel);
}

static void dp_status_print(const struct dp_opts *o,
                            const struct hv_vm_status *st)
{
    if (o->json) {
        json_t *j = dp_status_json(st);
        dp_print_json(j);
        json_decref(j);
    } else if (st->pid) {
        printf("%-20s %-12s pid %-7d %-3s cpu %6.1fs rss %6.1f MiB\n", st->id,
               st->state, (int)st->pid, st->accel, (double)st->cpu_ms / 1000.0,
               (double)st->rss_bytes / (1024.0 * 1024.0));
    } else {
        printf("%-20s %s\n", st->id, st->state);
    }
}

static int dp_cmd_status(struct hv_host *h, const struct dp_opts *o,
                         const char *id)
{
    struct hv_vm_status st;
    char err[512];
    if (hv_vm_status(h, id, &st, err, sizeof(err)) < 0)
        return dp_fail(err);
    dp_status_print(o, &st);
    return 0;
}

static int dp_cmd_list(struct hv_host *h, const struct dp_opts *o)
{
    char **ids, err[512];
    size_t n;
    json_t *all = o->json ? json_array() : NULL;
    int rc = hv_vm_list(h, &ids, &n);

    if (rc < 0) {
        json_decref(all);
        return dp_fail(strerror(-rc));
    }
    for (size_t i = 0; i < n; i++) {
        struct hv_vm_status st;
        if (hv_vm_status(h, ids[i], &st, err, sizeof(err)) < 0)
            continue; /* deleted meanwhile */
        if (all)
            json_array_append_new(all, dp_status_json(&st));
        else
            dp_status_print(o, &st);
    }
    if (all) {
        dp_print_json(all);
        json_decref(all);
    }
    hv_vm_list_free(ids, n);
    return 0;
}

/* --- adopt, events, qmp --------------------------------------------------- */

static void dp_on_adopt(void *arg, enum hv_adopt_kind kind, const char *id,
                        const char *detail)
{
    static const char *const names[] = {"running", "stale-run", "orphan-vm",
                                        "orphan-disk"};
    const struct dp_opts *o = arg;
    if (o->json) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "id", id, "found", names[kind],
                              "detail", detail);
        dp_print_json(j);
        json_decref(j);
    } else {
        printf("%-20s %-12s %s\n", id, names[kind], detail);
    }
}

static int dp_cmd_adopt(struct hv_host *h, struct dp_opts *o)
{
    int rc = hv_host_adopt(h, dp_on_adopt, o);
    if (rc < 0)
        return dp_fail(strerror(-rc));
    if (!o->json)
        printf("%d running VM(s) adopted\n", rc);
    return 0;
}

static void dp_on_event(void *arg, const char *name, json_t *data)
{
    json_t *j = json_pack("{s:s, s:O?}", "event", name, "data", data);
    (void)arg;
    dp_print_json(j);
    fflush(stdout);
    json_decref(j);
}

static void dp_on_closed(void *arg, int reason, const char *why)
{
    (void)arg;
    (void)reason;
    fprintf(stderr, "deskpool-vm: events ended: %s\n", why);
}

static int dp_cmd_events(struct hv_host *h, const char *id)
{
    static const struct hv_qmp_callbacks cb = {dp_on_event, dp_on_closed};
    struct hv_qmp *q;
    char err[512];

    if (hv_vm_watch(h, id, &cb, NULL, &q, err, sizeof(err)) < 0)
        return dp_fail(err);
    for (;;) {
        struct pollfd p = {hv_qmp_fd(q), hv_qmp_poll_events(q), 0};
        if (poll(&p, 1, hv_qmp_timeout_ms(q)) < 0 && errno != EINTR)
            break;
        if (hv_qmp_process(q, p.revents) < 0)
            break;
    }
    hv_qmp_close(q);
    return 0;
}

static int dp_cmd_qmp(struct hv_host *h, int argc, char **argv)
{
    json_t *args = NULL, *result = NULL;
    json_error_t jerr;
    char err[1024];

    if (argc < 3 || argc > 4)
        return dp_fail("qmp: ID COMMAND [JSON-ARGUMENTS]");
    if (argc == 4 && !(args = json_loads(argv[3], 0, &jerr)))
        return dp_fail(jerr.text);
    if (hv_vm_qmp(h, argv[1], argv[2], args, 0, &result, err, sizeof(err)) < 0)
        return dp_fail(err);
    dp_print_json(result);
    json_decref(result);
    return 0;
}

/* --- agent ------------------------------------------------------------------
 */

#define DP_AGENT_WAIT_MS 15000 /* the guest answers hello within this */

static void dp_on_agent_event(void *arg, const char *name, json_t *data)
{
    if (!arg) /* only `watch` prints events */
        return;
    json_t *j = json_pack("{s:s, s:O?}", "event", name, "data", data);
    dp_print_json(j);
    fflush(stdout);
    json_decref(j);
}

static int dp_agent_watch(struct hv_agent *a)
{
    for (;;) {
        struct pollfd p = {hv_agent_fd(a), hv_agent_poll_events(a), 0};
        if (poll(&p, 1, hv_agent_timeout_ms(a)) < 0 && errno != EINTR)
            return 1;
        hv_agent_process(a, p.revents);
    }
}

static int dp_agent_status(struct hv_agent *a)
{
    struct hv_agent_state st;
    json_t *j;

    if (hv_agent_wait_event(a, "heartbeat", DP_AGENT_WAIT_MS, NULL) < 0)
        return dp_fail("agent: no heartbeat");
    hv_agent_state(a, &st);
    j = json_pack("{s:b, s:b, s:s, s:s, s:s, s:I, s:I, s:b}", "healthy",
                  st.healthy, "ready", st.ready, "os", st.os, "hostname",
                  st.hostname, "user", st.user, "since", (json_int_t)st.since,
                  "idle_seconds", (json_int_t)st.idle_seconds, "locked",
                  st.locked);
    dp_print_json(j);
    json_decref(j);
    return 0;
}

static int dp_cmd_agent(struct hv_host *h, int argc, char **argv)
{
    static const struct hv_agent_callbacks cb = {dp_on_agent_event, NULL};
    char path[256], err[1024];
    json_t *args = NULL, *result = NULL;
    json_error_t jerr;
    struct hv_agent *a;
    int watch, rc;

    if (argc < 3 || argc > 4)
        return dp_fail("agent: ID OP [JSON-ARGUMENTS] | ID watch | ID status");
    if (hv_vm_path(h, argv[1], "agent.sock", path, sizeof(path)) < 0)
        return dp_fail("agent: bad VM id");
    if (argc == 4 && !(args = json_loads(argv[3], 0, &jerr)))
        return dp_fail(jerr.text);
    watch = strcmp(argv[2], "watch") == 0;
    if (hv_agent_open(&a, path, &cb, watch ? (void *)1 : NULL, 0) < 0 ||
        hv_agent_fd(a) < 0) {
        json_decref(args);
        hv_agent_close(a);
        return dp_fail("agent: VM not running (no agent.sock)");
    }
    if (watch)
        rc = dp_agent_watch(a);
    else if (strcmp(argv[2], "status") == 0)
        rc = dp_agent_status(a);
    else if (hv_agent_wait_event(a, "hello", DP_AGENT_WAIT_MS, NULL) < 0)
        rc = dp_fail("agent: no hello from the guest (agent not running?)");
    else if (hv_agent_request_sync(a, argv[2], json_incref(args), 0, &result,
                                   err, sizeof(err)) < 0)
        rc = dp_fail(err);
    else
        rc = (dp_print_json(result), 0);
    json_decref(args);
    json_decref(result);
    hv_agent_close(a);
    return rc;
}

/* --- power -----------------------------------------------------------------
 */

static int dp_cmd_stop(struct hv_host *h, const struct dp_opts *o, int argc,
                       char **argv)
{
    static const struct option longopts[] = {
        {"force", 0, 0, 'f'}, {"timeout", 1, 0, 't'}, {0, 0, 0, 0}};
    int force = 0, timeout_s = 60, c, rc;
    char err[512];

    optind = 0; /* 0: glibc re-initializes getopt for a new argv */
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'f')
            force = 1;
        else if (c == 't')
            timeout_s = atoi(optarg);
        else
            return dp_fail("stop: ID [--force] [--timeout SECONDS]");
    }
    if (optind != argc - 1)
        return dp_fail("stop: ID [--force] [--timeout SECONDS]");
    rc = force ? hv_vm_poweroff(h, argv[optind], err, sizeof(err))
               : hv_vm_shutdown(h, argv[optind], timeout_s * 1000, err,
                                sizeof(err));
    if (rc < 0)
        return dp_fail(err);
    if (!o->quiet && rc == 1)
        fprintf(stderr,
                "deskpool-vm: %s did not shut down within %d s; "
                "forced off\n",
                argv[optind], timeout_s);
    return 0;
}

/* Commands of the form `VERB ID`. */
static int dp_cmd_simple(struct hv_host *h, const char *verb, const char *id)
{
    static const struct {
        const char *verb;
        int (*fn)(struct hv_host *, const char *, char *, size_t);
    } verbs[] = {{"start", hv_vm_start},     {"reset", hv_vm_reset},
                 {"pause", hv_vm_pause},     {"resume", hv_vm_resume},
                 {"refresh", hv_vm_refresh}, {"delete", hv_vm_delete}};
    char err[1024];

    for (size_t i = 0; i < sizeof(verbs) / sizeof(*verbs); i++) {
        if (strcmp(verb, verbs[i].verb) == 0) {
            if (verbs[i].fn(h, id, err, sizeof(err)) < 0)
                return dp_fail(err);
            return 0;
        }
    }
    return -1;
}

static int dp_dispatch(struct hv_host *h, struct dp_opts *o, int argc,
                       char **argv)
{
    const char *cmd = argv[0];
    char err[512];
    int rc;

    if (strcmp(cmd, "create") == 0)
        return dp_cmd_create(h, argc, argv);
    if (strcmp(cmd, "stop") == 0)
        return dp_cmd_stop(h, o, argc, argv);
    if (strcmp(cmd, "list") == 0 && argc == 1)
        return dp_cmd_list(h, o);
    if (strcmp(cmd, "adopt") == 0 && argc == 1)
        return dp_cmd_adopt(h, o);
    if (strcmp(cmd, "qmp") == 0)
        return dp_cmd_qmp(h, argc, argv);
    if (strcmp(cmd, "agent") == 0)
        return dp_cmd_agent(h, argc, argv);
    if (strcmp(cmd, "template") == 0)
        return dp_cmd_template(h, o, argc, argv);
    if (strcmp(cmd, "clone") == 0)
        return dp_cmd_clone(h, o, argc, argv);
    if (strcmp(cmd, "memory") == 0 && argc == 2)
        return dp_cmd_memory(h, o, argv[1]);
    if (strcmp(cmd, "screenshot") == 0 && argc == 3) {
        if (hv_vm_screenshot(h, argv[1], argv[2], err, sizeof(err)) < 0)
            return dp_fail(err);
        return 0;
    }
    if (argc == 2 && strcmp(cmd, "status") == 0)
        return dp_cmd_status(h, o, argv[1]);
    if (argc == 2 && strcmp(cmd, "events") == 0)
        return dp_cmd_events(h, argv[1]);
    if (argc == 2 && (rc = dp_cmd_simple(h, cmd, argv[1])) >= 0)
        return rc;
    dp_usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"state", 1, 0, 's'}, {"qemu", 1, 0, 'q'},  {"qemu-user", 1, 0, 'u'},
        {"json", 0, 0, 'j'},  {"quiet", 0, 0, 'Q'}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    struct dp_opts o = {.state = getenv("DESKPOOL_STATE")};
    struct hv_host_config cfg = {0};
    struct hv_host *h;
    char err[512];
    int c, rc;

    /* Options before the command only; the command parses its own. */
    while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
        switch (c) {
        case 's': o.state = optarg; break;
        case 'q': o.qemu = optarg; break;
        case 'u': o.qemu_user = optarg; break;
        case 'j': o.json = 1; break;
        case 'Q': o.quiet = 1; break;
        case 'h': dp_usage(stdout); return 0;
        default: dp_usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        dp_usage(stderr);
        return 2;
    }
    cfg.state_dir = o.state ? o.state : DP_DEFAULT_STATE;
    cfg.qemu = o.qemu;
    cfg.qemu_user = o.qemu_user;
    cfg.quiet = o.quiet;
    if (hv_host_open(&h, &cfg, err, sizeof(err)) < 0)
        return dp_fail(err);
    rc = dp_dispatch(h, &o, argc - optind, argv + optind);
    hv_host_close(h);
    return rc;
}
