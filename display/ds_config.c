/*
 * ds_config.c - deskpool-display's settings (see ds_config.h).
 */
#include "ds_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ds_config_defaults(struct ds_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/deskpool");
    snprintf(c->control_socket, sizeof(c->control_socket),
             "/run/deskpool/display.sock");
    snprintf(c->gateway_socket, sizeof(c->gateway_socket),
             "/run/deskpool/display-gateway.sock");
    snprintf(c->rdp_listen, sizeof(c->rdp_listen), "0.0.0.0:3389");
    snprintf(c->user, sizeof(c->user), "nobody");
    c->credential_ttl = 60;
    c->max_sessions = 256;
    c->stats_interval = 5;
}

static int ds_config_path(char *dst, size_t size, const char *key,
                          const char *v, char *err, size_t err_size)
{
    if (v[0] != '/' || strlen(v) >= size) {
        snprintf(err, err_size,
                 "%s: must be an absolute path shorter than "
                 "%zu characters",
                 key, size);
        return -EINVAL;
    }
    snprintf(dst, size, "%s", v);
    return 0;
}

static int ds_config_int(int *dst, const char *key, const char *v, int lo,
                         int hi, char *err, size_t err_size)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi) {
        snprintf(err, err_size, "%s: must be a number from %d to %d", key, lo,
                 hi);
        return -EINVAL;
    }
    *dst = (int)n;
    return 0;
}

int ds_config_set(struct ds_config *c, const char *key, const char *value,
                  char *err, size_t err_size)
{
    if (!strcmp(key, "state_dir"))
        return ds_config_path(c->state_dir, sizeof(c->state_dir), key, value,
                              err, err_size);
    if (!strcmp(key, "control_socket"))
        return ds_config_path(c->control_socket, sizeof(c->control_socket), key,
                              value, err, err_size);
    if (!strcmp(key, "gateway_socket"))
        return ds_config_path(c->gateway_socket, sizeof(c->gateway_socket), key,
                              value, err, err_size);
    if (!strcmp(key, "broker_socket")) {
        if (!value[0]) {
            c->broker_socket[0] = '\0';
            return 0;
        }
        return ds_config_path(c->broker_socket, sizeof(c->broker_socket), key,
                              value, err, err_size);
    }
    if (!strcmp(key, "vnc_listen") || !strcmp(key, "rdp_listen")) {
        char *dst = key[0] == 'v' ? c->vnc_listen : c->rdp_listen;
        char host[64];
        int port;

        if (strlen(value) >= sizeof(c->vnc_listen) ||
            (value[0] &&
             ds_config_listen_addr(value, host, sizeof(host), &port))) {
            snprintf(err, err_size,
                     "%s: must be empty, ADDR:PORT or [V6ADDR]:PORT with "
                     "a numeric address",
                     key);
            return -EINVAL;
        }
        snprintf(dst, sizeof(c->vnc_listen), "%s", value);
        return 0;
    }
    if (!strcmp(key, "tls_cert") || !strcmp(key, "tls_key")) {
        char *dst = key[4] == 'c' ? c->tls_cert : c->tls_key;

        if (!value[0]) {
            dst[0] = '\0';
            return 0;
        }
        return ds_config_path(dst, sizeof(c->tls_cert), key, value, err,
                              err_size);
    }
    if (!strcmp(key, "user")) {
        if (!value[0] || strlen(value) >= sizeof(c->user)) {
            snprintf(err, err_size, "user: must be a user name");
            return -EINVAL;
        }
        snprintf(c->user, sizeof(c->user), "%s", value);
        return 0;
    }
    if (!strcmp(key, "credential_ttl"))
        return ds_config_int(&c->credential_ttl, key, value, 1, 3600, err,
                             err_size);
    if (!strcmp(key, "max_sessions"))
        return ds_config_int(&c->max_sessions, key, value, 1, 10000, err,
                             err_size);
    if (!strcmp(key, "stats_interval"))
        return ds_config_int(&c->stats_interval, key, value, 1, 3600, err,
                             err_size);
    snprintf(err, err_size, "unknown key '%s'", key);
    return -EINVAL;
}

struct ds_config_load {
    struct ds_config *c;
    char why[256];
};

/* libinih handler: nonzero means "fine", 0 stops with the line number. */
static int ds_config_entry(void *arg, const char *section, const char *key,
                           const char *value)
{
    struct ds_config_load *l = arg;

    if (strcmp(section, "display") != 0) {
        snprintf(l->why, sizeof(l->why), "unknown section [%s]", section);
        return 0;
    }
    return ds_config_set(l->c, key, value, l->why, sizeof(l->why)) == 0;
}

int ds_config_load(struct ds_config *c, const char *path, char *err,
                   size_t err_size)
{
    struct ds_config_load l = {.c = c};
    FILE *f = fopen(path, "r");
    int line;

    if (!f) {
        int e = errno;

        snprintf(err, err_size, "%s: %s", path, strerror(e));
        return e == ENOENT ? -ENOENT : -e;
    }
    line = ini_parse_file(f, ds_config_entry, &l);
    fclose(f);
    if (line != 0) {
        snprintf(err, err_size, "%s:%d: %s", path, line,
                 l.why[0] ? l.why : "syntax error");
        return -EINVAL;
    }
    return 0;
}

int ds_config_vnc_addr(const struct ds_config *c, char *host, size_t host_size,
                       int *port)
{
    return ds_config_listen_addr(c->vnc_listen, host, host_size, port);
}

int ds_config_listen_addr(const char *value, char *host, size_t host_size,
                          int *port)
{
    const char *v = value, *colon, *h = v;
    size_t hlen;
    unsigned char buf[16];
    char tmp[64], *end;
    long p;

    if (!v[0])
        return -ENOENT;
    colon = strrchr(v, ':');
    if (!colon || colon == v)
        return -EINVAL;
    hlen = (size_t)(colon - v);
    if (v[0] == '[') {
        if (hlen < 3 || v[hlen - 1] != ']')
            return -EINVAL;
        h = v + 1;
        hlen -= 2;
    }
    if (hlen >= sizeof(tmp) || hlen >= host_size)
        return -EINVAL;
    memcpy(tmp, h, hlen);
    tmp[hlen] = '\0';
    if (inet_pton(v[0] == '[' ? AF_INET6 : AF_INET, tmp, buf) != 1)
        return -EINVAL;
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        return -EINVAL;
    snprintf(host, host_size, "%s", tmp);
    *port = (int)p;
    return 0;
}
