/*
 * ds_config.h - deskpool-display's settings: the [display] section of an
 * INI file (libinih), then command-line options over it.
 *
 * Every key, its default and meaning are in display/README.md ("Running
 * it") and config/deskpool-display.ini. Unknown keys or sections are
 * errors (a typo must not silently leave a default in force).
 */
#ifndef DS_CONFIG_H
#define DS_CONFIG_H

#include <stddef.h>

#define DS_CONFIG_PATH_MAX 108 /* unix socket paths must fit sun_path */

struct ds_config {
    char state_dir[DS_CONFIG_PATH_MAX];      /* /var/lib/deskpool */
    char control_socket[DS_CONFIG_PATH_MAX]; /* /run/deskpool/display.sock */
    char gateway_socket
        [DS_CONFIG_PATH_MAX]; /* /run/deskpool/display-gateway.sock
                               */
    /* deskpool-broker's local API: gateway tickets are redeemed there and
     * sessions reported to it. "" (tests, stand-alone use): tickets come
     * from this daemon's own control socket (issue). */
    char broker_socket[DS_CONFIG_PATH_MAX];
    char vnc_listen[80]; /* "" (off), "ADDR:PORT" or "[V6ADDR]:PORT" */
    char rdp_listen[80]; /* the same for RDP clients (0.0.0.0:3389) */
    /* The RDP port's TLS certificate and key (PEM files). Both empty: a
     * self-signed pair made once in state_dir (rdp-tls.crt, rdp-tls.key). */
    char tls_cert[DS_CONFIG_PATH_MAX];
    char tls_key[DS_CONFIG_PATH_MAX];
    char user[64];      /* nobody */
    int credential_ttl; /* seconds, 1..3600; 60 */
    int max_sessions;   /* 1..10000; 256 */
    int stats_interval; /* seconds, 1..3600; 5 */
};

/* The defaults. */
void ds_config_defaults(struct ds_config *c);

/* Reads path's [display] section over *c. Returns 0, or -ENOENT (no such
 * file), -EINVAL (syntax error, unknown key, bad value) with the reason
 * ("FILE:LINE: ...") in err. */
int ds_config_load(struct ds_config *c, const char *path, char *err,
                   size_t err_size);

/* Sets one key by name ("state_dir", "vnc_listen", ...) from text, as the
 * file would. Returns 0 or -EINVAL with the reason in err. */
int ds_config_set(struct ds_config *c, const char *key, const char *value,
                  char *err, size_t err_size);

/*
 * Splits vnc_listen into a numeric host and a port (0..65535; 0: any free
 * port). "[::1]:5900" gives host "::1". Returns 0, -EINVAL (malformed),
 * -ENOENT (vnc_listen is empty: the VNC port is off).
 */
int ds_config_vnc_addr(const struct ds_config *c, char *host, size_t host_size,
                       int *port);

/* The same for any listen setting's value (rdp_listen). */
int ds_config_listen_addr(const char *value, char *host, size_t host_size,
                          int *port);

#endif
