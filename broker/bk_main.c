/*
 * bk_main.c - deskpool-broker: the control plane's process.
 *
 *   deskpool-broker [--config FILE] [--set KEY=VALUE]...
 *
 * Threads: the HTTP loop (this one: REST API, static files), the pool
 * manager (VMs and agents), and one per PAM conversation in progress.
 * Each thread has its own connection to the SQLite store.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "bk_api.h"
#include "bk_auth.h"
#include "bk_config.h"
#include "bk_gateway.h"
#include "bk_http.h"
#include "bk_limit.h"
#include "bk_local.h"
#include "bk_mgr.h"
#include "bk_store.h"
#include "dp_tls.h"

#define BK_DEFAULT_CONFIG "/etc/deskpool/deskpool.ini"
#define BK_LIMIT_KEYS     100000 /* failure counters kept in memory */

/* The only global: the signal handler's way to the loop. */
static struct bk_http *bk_main_http;

static void bk_main_signal(int sig)
{
    (void)sig;
    if (bk_main_http)
        bk_http_stop(bk_main_http);
}

static void bk_main_wake(void *arg)
{
    struct bk_http **http = arg;

    if (*http)
        bk_http_wake(*http);
}

static void bk_main_usage(FILE *f)
{
    fprintf(f,
            "usage: deskpool-broker [--config FILE] [--set KEY=VALUE]...\n"
            "Settings: config/deskpool.ini; defaults from %s when it "
            "exists.\n",
            BK_DEFAULT_CONFIG);
}

/* Settings: defaults, the file, then --set options in order. */
static int bk_main_config(int argc, char **argv, struct bk_config *cfg)
{
    const char *file = NULL;
    char err[512];
    int i;

    bk_config_defaults(cfg);
    for (i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            file = argv[++i];
    if (!file && access(BK_DEFAULT_CONFIG, F_OK) == 0)
        file = BK_DEFAULT_CONFIG;
    if (file && bk_config_load(cfg, file, err, sizeof(err))) {
        fprintf(stderr, "deskpool-broker: %s\n", err);
        return -1;
    }
    for (i = 1; i < argc; i++) {
        char key[64], *eq;

        if (!strcmp(argv[i], "--config")) {
            i++;
            continue;
        }
        if (!strcmp(argv[i], "--help")) {
            bk_main_usage(stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--set") != 0 || i + 1 >= argc ||
            !(eq = strchr(argv[i + 1], '=')) ||
            (size_t)(eq - argv[i + 1]) >= sizeof(key)) {
            bk_main_usage(stderr);
            return -1;
        }
        i++;
        memcpy(key, argv[i], (size_t)(eq - argv[i]));
        key[eq - argv[i]] = '\0';
        if (bk_config_set(cfg, key, eq + 1, err, sizeof(err))) {
            fprintf(stderr, "deskpool-broker: --set %s\n", err);
            return -1;
        }
    }
    if (bk_config_check(cfg, err, sizeof(err))) {
        fprintf(stderr, "deskpool-broker: %s\n", err);
        return -1;
    }
    return 0;
}

/* The certificate to serve: configured, or made on first start. */
static int bk_main_tls(struct bk_config *cfg)
{
    char dir[BK_CONFIG_PATH_MAX + 8], err[512], fp[96];
    int r;

    if (cfg->plain_http)
        return 0;
    if (!cfg->tls_cert[0]) {
        snprintf(dir, sizeof(dir), "%s/tls", cfg->state_dir);
        if (mkdir(dir, 0700) && errno != EEXIST) {
            fprintf(stderr, "deskpool-broker: %s: %s\n", dir, strerror(errno));
            return -1;
        }
        if (snprintf(cfg->tls_cert, sizeof(cfg->tls_cert), "%s/broker.crt",
                     dir) >= (int)sizeof(cfg->tls_cert) ||
            snprintf(cfg->tls_key, sizeof(cfg->tls_key), "%s/broker.key",
                     dir) >= (int)sizeof(cfg->tls_key)) {
            fprintf(stderr, "deskpool-broker: state_dir: path too long\n");
            return -1;
        }
        r = dp_tls_selfsigned(cfg->tls_cert, cfg->tls_key, cfg->public_host,
                              err, sizeof(err));
        if (r < 0) {
            fprintf(stderr, "deskpool-broker: %s\n", err);
            return -1;
        }
        if (r == 0)
            fprintf(stderr,
                    "deskpool-broker: made a self-signed certificate for "
                    "%s: %s\n",
                    cfg->public_host, cfg->tls_cert);
    }
    if (dp_tls_fingerprint(cfg->tls_cert, fp) == 0)
        fprintf(stderr, "deskpool-broker: certificate SHA-256 %s\n", fp);
    return 0;
}

/* Idle HTTPS clients each hold a descriptor: allow as many as we may. */
static void bk_main_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int bk_main_dirs(const struct bk_config *cfg)
{
    char run[BK_CONFIG_PATH_MAX], *slash;

    /* the local socket's folder (/run/deskpool): made if missing */
    snprintf(run, sizeof(run), "%s", cfg->local_socket);
    slash = strrchr(run, '/');
    if (slash && slash != run) {
        *slash = '\0';
        if (mkdir(run, 0755) && errno != EEXIST) {
            fprintf(stderr, "deskpool-broker: cannot make %s: %s\n", run,
                    strerror(errno));
            return -1;
        }
    }
    if ((mkdir(cfg->state_dir, 0700) && errno != EEXIST) ||
        (mkdir(cfg->vm_dir, 0700) && errno != EEXIST)) {
        fprintf(stderr, "deskpool-broker: cannot make %s or %s: %s\n",
                cfg->state_dir, cfg->vm_dir, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct bk_config cfg;
    struct bk_store *store = NULL;
    struct bk_auth *auth = NULL;
    struct bk_mgr *mgr = NULL;
    struct bk_api *api = NULL;
    struct bk_http *http = NULL;
    struct bk_local *local = NULL;
    struct bk_gateway gw = {0};
    struct lws_protocols gw_protocols[BK_GATEWAY_NPROTOCOLS];
    struct bk_limit *user_fails = NULL, *addr_fails = NULL;
    struct bk_auth_config ac;
    struct bk_http_config hc;
    struct bk_http_handlers hh = {bk_api_request, bk_api_timeout, bk_api_wake,
                                  bk_api_tick};
    char db[BK_CONFIG_PATH_MAX + 16], err[512];
    int rc = 1;

    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR, NULL);
    if (bk_main_config(argc, argv, &cfg) || bk_main_dirs(&cfg) ||
        bk_main_tls(&cfg))
        return 1;
    bk_main_fd_limit();
    snprintf(db, sizeof(db), "%s/deskpool.db", cfg.state_dir);
    if (bk_store_open(&store, db, err, sizeof(err))) {
        fprintf(stderr, "deskpool-broker: %s\n", err);
        return 1;
    }
    ac = (struct bk_auth_config){cfg.pam_service, cfg.admin_group,
                                 cfg.login_timeout, cfg.max_logins};
    if (bk_auth_new(&auth, &ac, bk_main_wake, &http) ||
        bk_mgr_start(&mgr, &cfg, db, bk_main_wake, &http, err, sizeof(err))) {
        fprintf(stderr, "deskpool-broker: %s\n", err);
        goto out;
    }
    user_fails = bk_limit_new(cfg.user_failures, cfg.failure_window,
                              cfg.lockout, BK_LIMIT_KEYS);
    addr_fails = bk_limit_new(cfg.addr_failures, cfg.failure_window,
                              cfg.lockout, BK_LIMIT_KEYS);
    if (!user_fails || !addr_fails ||
        bk_api_new(&api, &(struct bk_api_parts){&cfg, store, auth, mgr,
                                                user_fails, addr_fails}))
        goto out;
    if (bk_local_start(
            &local,
            &(struct bk_local_parts){&cfg, db, ac, user_fails, addr_fails, mgr},
            err, sizeof(err))) {
        fprintf(stderr, "deskpool-broker: local API: %s\n", err);
        goto out;
    }
    hc = (struct bk_http_config){
        .listen = cfg.listen,
        .port = cfg.port,
        .cert = cfg.plain_http ? NULL : cfg.tls_cert,
        .key = cfg.plain_http ? NULL : cfg.tls_key,
        .web_root = cfg.web_root,
        .max_body = (size_t)cfg.max_body,
        .keepalive_s = 60,
        .ws_protocols = gw_protocols,
        .ws_nprotocols = BK_GATEWAY_NPROTOCOLS,
        .ws_path = "/ws",
        .ws_protocol = BK_GATEWAY_PROTOCOL,
    };
    gw.cfg = &cfg;
    gw.store = store;
    bk_gateway_protocols(&gw, gw_protocols);
    if (bk_http_new(&http, &hc, &hh, api, err, sizeof(err))) {
        fprintf(stderr, "deskpool-broker: %s\n", err);
        goto out;
    }
    bk_api_set_http(api, http);
    bk_main_http = http;
    signal(SIGTERM, bk_main_signal);
    signal(SIGINT, bk_main_signal);
    fprintf(stderr, "deskpool-broker: listening on %s://%s:%d\n",
            cfg.plain_http ? "http" : "https", cfg.listen, bk_http_port(http));
    bk_http_run(http);
    fprintf(stderr, "deskpool-broker: stopping\n");
    rc = 0;
out:
    bk_main_http = NULL;
    bk_local_stop(local);
    bk_mgr_stop(mgr); /* before the loop goes: it wakes the loop */
    bk_auth_free(auth);
    bk_http_free(http);
    bk_api_free(api);
    bk_limit_free(user_fails);
    bk_limit_free(addr_fails);
    bk_store_close(store);
    return rc;
}
