/*
 * ds_main.c - deskpool-display: the display daemon (display/README.md).
 *
 *   deskpool-display [--config FILE] [--state-dir DIR] [--control PATH]
 *                    [--gateway PATH] [--vnc-listen ADDR:PORT]
 *                    [--rdp-listen ADDR:PORT] [--user USER]
 *
 * The same program runs each client connection's session process: the
 * daemon re-executes it as
 *
 *   deskpool-display --session vnc|gateway|rdp --peer PEER --stats-interval N
 *
 * with the client on descriptor 3 and its channel to the daemon on 4.
 *
 * And it is the control socket's command-line client, for admins (and
 * scripts) until the broker calls the daemon itself:
 *
 *   deskpool-display ctl [--control PATH] OP ['{"json":"args"}']
 *
 * prints the reply's result as JSON (exit 0) or the error (exit 1); with
 * OP subscribe it then prints each event as a JSON line until killed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dp_msg.h"
#include "dp_unix.h"

#include "ds_config.h"
#include "ds_daemon.h"
#include "ds_session.h"

static void ds_main_usage(FILE *f)
{
    fprintf(f,
            "usage: deskpool-display [--config FILE] [--state-dir DIR]\n"
            "                        [--control PATH] [--gateway PATH]\n"
            "                        [--vnc-listen ADDR:PORT]\n"
            "                        [--rdp-listen ADDR:PORT] [--user USER]\n"
            "Serves desktops to VNC clients and the broker's gateway; see\n"
            "display/README.md.\n");
}

static int ds_main_session(int argc, char **argv)
{
    struct ds_session_args a;

    ds_session_init(argc, argv, &a);
    if (a.via == DS_SESSION_RDP) {
        ds_session_log("RDP sessions run in deskpool-display-rdp");
        return 1;
    }
    return ds_session_run(&a);
}

/* deskpool-display-rdp beside this program (its RDP sessions); "" if
 * this program's own path cannot be read. */
static void ds_main_rdp_exe(char *out, size_t size)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    out[0] = '\0';
    if (n <= 0)
        return;
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (slash)
        snprintf(out, size, "%.*s/deskpool-display-rdp", (int)(slash - self),
                 self);
}

/* State of the ctl client: prints the reply, then events if asked. */
struct ds_main_ctl {
    int done, status, follow;
};

static void ds_main_ctl_line(void *arg, char *line, size_t len)
{
    struct ds_main_ctl *st = arg;
    struct dp_msg m;
    const char *code;
    char detail[200], *text;

    if (!line || dp_msg_parse(line, len, &m, &code, detail, sizeof(detail)))
        return;
    if (m.kind == DP_MSG_REPLY && m.id == 1) {
        if (m.ok) {
            text = json_dumps(m.body, JSON_INDENT(2) | JSON_SORT_KEYS);
            printf("%s\n", text ? text : "{}");
            free(text);
        } else {
            fprintf(stderr, "deskpool-display: %s: %s\n", m.error, m.message);
            st->status = 1;
        }
        st->done = !st->follow || !m.ok;
    } else if (m.kind == DP_MSG_EVENT && st->follow &&
               strcmp(m.name, "hello") != 0) {
        printf("%s\n", line);
    }
    fflush(stdout);
    dp_msg_free(&m);
}

static int ds_main_ctl(int argc, char **argv, const char *path)
{
    struct ds_main_ctl st = {0};
    struct dp_lines lines;
    json_t *args = NULL;
    json_error_t jerr;
    char *req, buf[4096];
    int fd;

    if (argc < 1 || argc > 2) {
        fprintf(stderr, "usage: deskpool-display ctl [--control PATH] OP "
                        "['{JSON args}']\n");
        return 2;
    }
    if (argc == 2 && !(args = json_loads(argv[1], 0, &jerr))) {
        fprintf(stderr, "deskpool-display: args: %s\n", jerr.text);
        return 2;
    }
    st.follow = !strcmp(argv[0], "subscribe");
    req = dp_msg_request(1, argv[0], args);
    fd = dp_unix_connect(path);
    if (!req || fd < 0 || dp_lines_init(&lines) < 0 ||
        write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        fprintf(stderr, "deskpool-display: %s: %s\n", path,
                strerror(fd < 0 ? -fd : errno));
        return 1;
    }
    free(req);
    while (!st.done) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n <= 0) {
            fprintf(stderr, "deskpool-display: the daemon closed the "
                            "connection\n");
            return 1;
        }
        dp_lines_feed(&lines, buf, (size_t)n, ds_main_ctl_line, &st);
    }
    dp_lines_free(&lines);
    close(fd);
    return st.status;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"state-dir", required_argument, NULL, 's'},
        {"control", required_argument, NULL, 'C'},
        {"gateway", required_argument, NULL, 'g'},
        {"vnc-listen", required_argument, NULL, 'v'},
        {"rdp-listen", required_argument, NULL, 'r'},
        {"user", required_argument, NULL, 'u'},
        {"broker", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static const char *keys[128] = {
        ['s'] = "state_dir",      ['C'] = "control_socket",
        ['g'] = "gateway_socket", ['v'] = "vnc_listen",
        ['u'] = "user",           ['b'] = "broker_socket",
        ['r'] = "rdp_listen"};
    struct ds_config cfg;
    struct ds_daemon *d;
    char err[512], rdp_exe[4096];
    int c, r, i;

    if (argc > 1 && !strcmp(argv[1], "--session"))
        return ds_main_session(argc, argv);
    ds_config_defaults(&cfg);
    if (argc > 1 && !strcmp(argv[1], "ctl")) {
        if (argc > 3 && !strcmp(argv[2], "--control"))
            return ds_main_ctl(argc - 4, argv + 4, argv[3]);
        return ds_main_ctl(argc - 2, argv + 2, cfg.control_socket);
    }
    /* The file first, whatever the order: options override it. */
    for (i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--config") &&
            ds_config_load(&cfg, argv[i + 1], err, sizeof(err)) < 0) {
            fprintf(stderr, "deskpool-display: %s\n", err);
            return 2;
        }
    while ((c = getopt_long(argc, argv, "c:s:C:g:v:r:u:b:h", opts, NULL)) !=
           -1) {
        if (c == 'h') {
            ds_main_usage(stdout);
            return 0;
        }
        if (c == 'c')
            continue;
        if (c < 0 || c >= 128 || !keys[c]) {
            ds_main_usage(stderr);
            return 2;
        }
        if (ds_config_set(&cfg, keys[c], optarg, err, sizeof(err)) < 0) {
            fprintf(stderr, "deskpool-display: %s\n", err);
            return 2;
        }
    }
    if (optind != argc) {
        ds_main_usage(stderr);
        return 2;
    }
    ds_main_rdp_exe(rdp_exe, sizeof(rdp_exe));
    r = ds_daemon_open(&d, &cfg, "/proc/self/exe", rdp_exe);
    if (r < 0)
        return 1;
    r = ds_daemon_run(d);
    ds_daemon_close(d);
    return r < 0 ? 1 : 0;
}
