/*
 * bk_config.c - deskpool-broker's settings (see bk_config.h).
 *
 * One table lists every key with its type, place and bounds, so a new
 * setting is one line here plus its documentation.
 */
#include "bk_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum bk_config_type { BK_STR, BK_PATH, BK_ADDR, BK_INT, BK_BOOL };

struct bk_config_key {
    const char *name;
    enum bk_config_type type;
    size_t offset, size; /* strings: buffer size */
    int lo, hi;          /* integers; strings: lo = may be empty */
};

#define BK_S(f, type, empty)                                                   \
    {                                                                          \
#f, type, offsetof(struct bk_config, f),                               \
            sizeof(((struct bk_config *)0)->f), empty, 0                       \
    }
#define BK_I(f, lo, hi)                                                        \
    {                                                                          \
#f, BK_INT, offsetof(struct bk_config, f), 0, lo, hi                   \
    }
#define BK_B(f)                                                                \
    {                                                                          \
#f, BK_BOOL, offsetof(struct bk_config, f), 0, 0, 1                    \
    }

static const struct bk_config_key bk_config_keys[] = {
    BK_S(listen, BK_ADDR, 0),
    BK_I(port, 0, 65535), /* 0: any free port (tests) */
    BK_S(tls_cert, BK_PATH, 1),
    BK_S(tls_key, BK_PATH, 1),
    BK_B(plain_http),
    BK_S(web_root, BK_PATH, 0),
    BK_S(public_host, BK_STR, 0),
    BK_I(max_body, 1024, 16 << 20),
    BK_S(state_dir, BK_PATH, 0),
    BK_S(vm_dir, BK_PATH, 0),
    BK_S(qemu_user, BK_STR, 1),
    BK_S(local_socket, BK_PATH, 0),
    BK_S(display_socket, BK_PATH, 0),
    BK_S(display_gateway, BK_PATH, 0),
    BK_S(pam_service, BK_STR, 0),
    BK_S(admin_group, BK_STR, 0),
    BK_I(session_idle, 60, 7 * 86400),
    BK_I(session_max, 60, 30 * 86400),
    BK_I(login_timeout, 5, 3600),
    BK_I(max_logins, 1, 100000),
    BK_I(user_failures, 1, 1000),
    BK_I(addr_failures, 1, 100000),
    BK_I(failure_window, 1, 86400),
    BK_I(lockout, 1, 86400),
    BK_I(ticket_ttl, 5, 3600),
    BK_I(launch_wait, 0, 600),
    BK_I(provision_limit, 1, 64),
    BK_I(reconcile_interval, 1, 3600),
    BK_I(stats_interval, 1, 3600),
};

void bk_config_defaults(struct bk_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen, sizeof(c->listen), "0.0.0.0");
    c->port = 8443;
    snprintf(c->web_root, sizeof(c->web_root), "/usr/share/deskpool/web");
    snprintf(c->public_host, sizeof(c->public_host), "localhost");
    c->max_body = 65536;
    snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/deskpool");
    snprintf(c->vm_dir, sizeof(c->vm_dir), "/var/lib/deskpool");
    snprintf(c->local_socket, sizeof(c->local_socket),
             "/run/deskpool/broker.sock");
    snprintf(c->display_socket, sizeof(c->display_socket),
             "/run/deskpool/display.sock");
    snprintf(c->display_gateway, sizeof(c->display_gateway),
             "/run/deskpool/display-gateway.sock");
    snprintf(c->pam_service, sizeof(c->pam_service), "deskpool");
    snprintf(c->admin_group, sizeof(c->admin_group), "deskpool-admins");
    c->session_idle = 1800;
    c->session_max = 43200;
    c->login_timeout = 120;
    c->max_logins = 256;
    c->user_failures = 5;
    c->addr_failures = 20;
    c->failure_window = 900;
    c->lockout = 900;
    c->ticket_ttl = 60;
    c->launch_wait = 30;
    c->provision_limit = 2;
    c->reconcile_interval = 5;
    c->stats_interval = 10;
}

static int bk_config_string(const struct bk_config_key *k, char *dst,
                            const char *v, char *err, size_t err_size)
{
    unsigned char addr[16];
    size_t i;

    if (strlen(v) >= k->size || (!v[0] && !k->lo)) {
        snprintf(err, err_size, "%s: must be %s1 to %zu characters", k->name,
                 k->lo ? "empty or " : "", k->size - 1);
        return -EINVAL;
    }
    for (i = 0; v[i]; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
            snprintf(err, err_size, "%s: control characters", k->name);
            return -EINVAL;
        }
    if (k->type == BK_PATH && v[0] && v[0] != '/') {
        snprintf(err, err_size, "%s: must be an absolute path", k->name);
        return -EINVAL;
    }
    if (k->type == BK_ADDR && inet_pton(AF_INET, v, addr) != 1 &&
        inet_pton(AF_INET6, v, addr) != 1) {
        snprintf(err, err_size, "%s: must be a numeric IPv4 or IPv6 address",
                 k->name);
        return -EINVAL;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int bk_config_number(const struct bk_config_key *k, int *dst,
                            const char *v, char *err, size_t err_size)
{
    char *end;
    long n;

    if (k->type == BK_BOOL) {
        if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
            n = 1;
        else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
            n = 0;
        else {
            snprintf(err, err_size, "%s: must be yes or no", k->name);
            return -EINVAL;
        }
        *dst = (int)n;
        return 0;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < k->lo || n > k->hi) {
        snprintf(err, err_size, "%s: must be a number from %d to %d", k->name,
                 k->lo, k->hi);
        return -EINVAL;
    }
    *dst = (int)n;
    return 0;
}

int bk_config_set(struct bk_config *c, const char *key, const char *value,
                  char *err, size_t err_size)
{
    size_t i;

    for (i = 0; i < sizeof(bk_config_keys) / sizeof(bk_config_keys[0]); i++) {
        const struct bk_config_key *k = &bk_config_keys[i];
        char *field = (char *)c + k->offset;

        if (strcmp(k->name, key) != 0)
            continue;
        if (k->type == BK_INT || k->type == BK_BOOL)
            return bk_config_number(k, (int *)field, value, err, err_size);
        return bk_config_string(k, field, value, err, err_size);
    }
    snprintf(err, err_size, "unknown key '%s'", key);
    return -EINVAL;
}

int bk_config_loopback(const char *addr)
{
    return !strncmp(addr, "127.", 4) || !strcmp(addr, "::1") ||
           !strncmp(addr, "::ffff:127.", 11);
}

int bk_config_check(const struct bk_config *c, char *err, size_t err_size)
{
    if (c->plain_http && !bk_config_loopback(c->listen)) {
        snprintf(err, err_size,
                 "plain_http: only allowed with a loopback listen address "
                 "(127.0.0.1 or ::1), not %s",
                 c->listen);
        return -EINVAL;
    }
    if (!c->tls_cert[0] != !c->tls_key[0]) {
        snprintf(err, err_size,
                 "tls_cert and tls_key: set both, or neither (a self-signed "
                 "pair is made in state_dir/tls)");
        return -EINVAL;
    }
    if (c->session_idle > c->session_max) {
        snprintf(err, err_size, "session_idle: longer than session_max");
        return -EINVAL;
    }
    return 0;
}

struct bk_config_load {
    struct bk_config *c;
    char why[256];
    unsigned char seen[64]; /* keys set by this file, by table index */
};

/* libinih handler: nonzero means "fine", 0 stops with the line number. */
static int bk_config_entry(void *arg, const char *section, const char *key,
                           const char *value)
{
    struct bk_config_load *l = arg;
    char why[256];
    size_t i;

    if (l->why[0]) /* libinih goes on after an error: keep the first */
        return 0;
    if (strcmp(section, "broker") != 0) {
        snprintf(l->why, sizeof(l->why), "unknown section [%s]", section);
        return 0;
    }
    for (i = 0; i < sizeof(bk_config_keys) / sizeof(bk_config_keys[0]); i++)
        if (!strcmp(bk_config_keys[i].name, key) && l->seen[i]++) {
            /* an indented line continues the key before it in libinih */
            snprintf(l->why, sizeof(l->why),
                     "%s: set twice (an indented line continues the line "
                     "before it)",
                     key);
            return 0;
        }
    if (bk_config_set(l->c, key, value, why, sizeof(why)) != 0) {
        snprintf(l->why, sizeof(l->why), "%s", why);
        return 0;
    }
    return 1;
}

int bk_config_load(struct bk_config *c, const char *path, char *err,
                   size_t err_size)
{
    struct bk_config_load l = {.c = c};
    char why[256];
    FILE *f = fopen(path, "r");
    struct stat st;
    int line;

    if (!f) {
        int e = errno;

        snprintf(err, err_size, "%s: %s", path, strerror(e));
        return -e;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        snprintf(err, err_size, "%s: not a file", path);
        return -EINVAL;
    }
    line = ini_parse_file(f, bk_config_entry, &l);
    fclose(f);
    if (line != 0) {
        snprintf(err, err_size, "%s:%d: %s", path, line,
                 l.why[0] ? l.why : "syntax error");
        return -EINVAL;
    }
    if (bk_config_check(c, why, sizeof(why))) {
        snprintf(err, err_size, "%s: %s", path, why);
        return -EINVAL;
    }
    return 0;
}
