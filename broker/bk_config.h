/*
 * bk_config.h - deskpool-broker's settings: the [broker] section of an INI
 * file (libinih), then command-line options over it.
 *
 * Every key, its default and its meaning are in config/deskpool.ini (the
 * documented example) and broker/README.md. Unknown sections or keys and
 * bad values are errors naming the file and line: a typo must never leave
 * a default silently in force.
 */
#ifndef BK_CONFIG_H
#define BK_CONFIG_H

#include <stddef.h>

#define BK_CONFIG_PATH_MAX 108 /* unix socket paths must fit sun_path */

struct bk_config {
    /* HTTPS */
    char listen[64];                   /* numeric address; 0.0.0.0 */
    int port;                          /* 8443 */
    char tls_cert[BK_CONFIG_PATH_MAX]; /* "": generated in state_dir/tls */
    char tls_key[BK_CONFIG_PATH_MAX];
    int plain_http;                    /* no TLS: only with a loopback listen */
    char web_root[BK_CONFIG_PATH_MAX]; /* static files of web/ */
    char public_host[128];             /* host name clients are told */
    int max_body;                      /* bytes of a request body; 65536 */
    /* State */
    char state_dir[BK_CONFIG_PATH_MAX]; /* SQLite store, TLS material */
    char vm_dir[48];    /* libdeskpool-hv state folder (HV_STATE_DIR_MAX) */
    char qemu_user[64]; /* "": QEMU runs as the broker */
    char local_socket[BK_CONFIG_PATH_MAX];    /* API for deskpool-display */
    char display_socket[BK_CONFIG_PATH_MAX];  /* deskpool-display control */
    char display_gateway[BK_CONFIG_PATH_MAX]; /* ... and its gateway */
    /* Login */
    char pam_service[64]; /* deskpool */
    char admin_group[64]; /* deskpool-admins */
    int session_idle;     /* seconds; 1800 */
    int session_max;      /* seconds; 43200 */
    int login_timeout;    /* seconds a PAM conversation may wait; 120 */
    int max_logins;       /* PAM conversations at once; 256 */
    int user_failures;    /* failed logins per user before lockout; 5 */
    int addr_failures;    /* ... per source address; 20 */
    int failure_window;   /* seconds failures are counted over; 900 */
    int lockout;          /* seconds a locked user/address waits; 900 */
    /* Desktops */
    int ticket_ttl;         /* seconds; 60 */
    int launch_wait;        /* seconds a launch waits for a desktop; 30 */
    int provision_limit;    /* desktops provisioned at once; 2 */
    int reconcile_interval; /* seconds between reconcile passes; 5 */
    int stats_interval;     /* seconds between dashboard samples; 10 */
};

void bk_config_defaults(struct bk_config *c);

/* Reads path's [broker] section over *c, then checks the whole (e.g.
 * plain_http needs a loopback listen address). Returns 0, -ENOENT (no
 * file) or -EINVAL, with "FILE:LINE: reason" in err. */
int bk_config_load(struct bk_config *c, const char *path, char *err,
                   size_t err_size);

/* Sets one key from text, as the file would. 0 or -EINVAL (reason in
 * err). */
int bk_config_set(struct bk_config *c, const char *key, const char *value,
                  char *err, size_t err_size);

/* A numeric address of this machine's loopback (127.x, ::1, or 127.x
 * mapped into IPv6 as libwebsockets shows IPv4 peers). */
int bk_config_loopback(const char *addr);

/* Checks settings that depend on each other. 0 or -EINVAL. */
int bk_config_check(const struct bk_config *c, char *err, size_t err_size);

#endif
