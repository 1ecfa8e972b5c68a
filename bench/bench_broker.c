/*
 * bench_broker - how much deskpool-broker does on this machine, against
 * the targets of its issue: logins per second (the whole PAM conversation,
 * two requests, pam_matrix as the module, through pam_wrapper), launches
 * per second and their latency with a ready desktop, and the broker's RSS
 * holding 10,000 idle HTTPS keep-alive connections with sessions.
 *
 * The broker is the real binary with its real store (SQLite on this
 * disk); the clients are threads of this program speaking HTTPS with the
 * same client deskpoolctl uses. Prints one Markdown table. It runs as one
 * Check test (no fork) because it starts the broker with the tests'
 * helpers, whose assertions need a Check runner.
 *
 *   bench_broker [SECONDS]   (per measurement, default 5)
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bk_client.h"
#include "hv_spec.h"
#include "tsbench.h"
#include "tsbroker.h"
#include "tsguest.h"

#define THREADS    4
#define IDLE_CONNS 10000

static struct tsbroker broker;
static double seconds = 5;

struct worker {
    pthread_t thread;
    int launches; /* else logins */
    double end_ms;
    long done, failed;
    double *lat; /* ms per operation */
    size_t n, cap;
};

static void worker_note(struct worker *w, double ms)
{
    if (w->n == w->cap) {
        double *v;

        w->cap = w->cap ? w->cap * 2 : 4096;
        v = realloc(w->lat, w->cap * sizeof(*v));
        if (!v)
            return;
        w->lat = v;
    }
    w->lat[w->n++] = ms;
}

/* A whole login conversation; the bearer token into token. */
static int login(struct bk_client *c, const char *user, const char *pw,
                 char token[64])
{
    struct bk_response r;
    char body[256], err[256];
    json_t *j;
    int ok = -1;

    snprintf(body, sizeof(body), "{\"username\":\"%s\",\"bearer\":true}", user);
    if (bk_client_request(c, "POST", "/api/v1/login", NULL, body, strlen(body),
                          &r, err, sizeof(err)) ||
        r.status != 200) {
        bk_response_free(&r);
        return -1;
    }
    j = json_loadb(r.body, r.len, 0, NULL);
    bk_response_free(&r);
    snprintf(body, sizeof(body),
             "{\"conversation\":\"%s\",\"answers\":[\"%s\"],\"bearer\":true}",
             json_string_value(json_object_get(j, "conversation")), pw);
    json_decref(j);
    if (bk_client_request(c, "POST", "/api/v1/login", NULL, body, strlen(body),
                          &r, err, sizeof(err)) == 0 &&
        r.status == 200) {
        j = json_loadb(r.body, r.len, 0, NULL);
        snprintf(token, 64, "%s",
                 json_string_value(json_object_get(j, "token")) ?: "");
        json_decref(j);
        ok = 0;
    }
    bk_response_free(&r);
    return ok;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct bk_client *c = NULL;
    char err[256], token[64], auth[128];

    if (bk_client_open(&c, broker.url, broker.cert, 0, 30000, err, sizeof(err)))
        return NULL;
    if (w->launches) {
        if (login(c, "alice", "alice-pw", token)) {
            bk_client_close(c);
            return NULL;
        }
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    }
    while (tsbench_now_ms() < w->end_ms) {
        double t0 = tsbench_now_ms();
        struct bk_response r;
        int ok;

        if (w->launches) {
            ok = bk_client_request(c, "POST", "/api/v1/pools/bench/launch",
                                   auth, "{\"protocol\":\"browser\"}", 22, &r,
                                   err, sizeof(err)) == 0 &&
                 r.status == 200;
            bk_response_free(&r);
        } else {
            ok = login(c, "alice", "alice-pw", token) == 0;
        }
        if (ok) {
            w->done++;
            worker_note(w, tsbench_now_ms() - t0);
        } else {
            w->failed++;
        }
    }
    bk_client_close(c);
    return NULL;
}

/* Runs THREADS workers for `seconds`; rate per second, p50/p99 in ms. */
static double run(int launches, double *p50, double *p99, long *failed)
{
    struct worker w[THREADS];
    double end = tsbench_now_ms() + seconds * 1000, t0 = tsbench_now_ms(), *all;
    size_t n = 0, i;
    long done = 0;
    int k;

    memset(w, 0, sizeof(w));
    *failed = 0;
    for (k = 0; k < THREADS; k++) {
        w[k].launches = launches;
        w[k].end_ms = end;
        pthread_create(&w[k].thread, NULL, worker_main, &w[k]);
    }
    for (k = 0; k < THREADS; k++) {
        pthread_join(w[k].thread, NULL);
        done += w[k].done;
        *failed += w[k].failed;
        n += w[k].n;
    }
    all = malloc((n ? n : 1) * sizeof(*all));
    for (n = 0, k = 0; k < THREADS; k++) {
        for (i = 0; i < w[k].n; i++)
            all[n++] = w[k].lat[i];
        free(w[k].lat);
    }
    *p50 = tsbench_percentile(all, (int)n, 0.50);
    *p99 = tsbench_percentile(all, (int)n, 0.99);
    free(all);
    return (double)done / ((tsbench_now_ms() - t0) / 1000.0);
}

/* One idle keep-alive connection that made an authenticated request. */
static SSL *idle_conn(SSL_CTX *ctx, const char *req)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)broker.port)};
    char buf[4096];
    int fd = socket(AF_INET, SOCK_STREAM, 0), n;
    SSL *ssl;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1 ||
        SSL_write(ssl, req, (int)strlen(req)) != (int)strlen(req) ||
        (n = SSL_read(ssl, buf, sizeof(buf) - 1)) <= 0 ||
        strncmp(buf, "HTTP/1.1 200", 12) != 0) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    return ssl;
}

static void idle_sessions(long *before, long *after, int *held)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL **conns = calloc(IDLE_CONNS, sizeof(*conns));
    struct bk_client *c = NULL;
    char err[256], token[64], req[512];
    int i;

    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    bk_client_open(&c, broker.url, broker.cert, 0, 30000, err, sizeof(err));
    login(c, "bob", "bob-pw", token);
    bk_client_close(c);
    snprintf(req, sizeof(req),
             "GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Authorization: Bearer %s\r\n\r\n",
             token);
    *before = tsbench_rss_kib(broker.pid);
    for (*held = 0, i = 0; i < IDLE_CONNS; i++)
        if ((conns[i] = idle_conn(ctx, req)))
            (*held)++;
    sleep(1);
    *after = tsbench_rss_kib(broker.pid);
    for (i = 0; i < IDLE_CONNS; i++)
        if (conns[i]) {
            close(SSL_get_fd(conns[i]));
            SSL_free(conns[i]);
        }
    free(conns);
    SSL_CTX_free(ctx);
}

START_TEST(bench)
{
    struct tsbroker_session admin;
    double lps, lp50, lp99, aps, ap50, ap99;
    long lfail, afail, before, after;
    int held;
    char cpu[128], *pool;
    struct rlimit rl;

    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    tsbroker_init(&broker, 0);
    tsbroker_start(&broker);
    tsbroker_connect(&broker, &admin);
    tsbroker_login(&broker, &admin, "admin", "admin-pw", NULL, 1);
    /* one real desktop; alice's launches get it again and again */
    pool = tsbroker_pool_json("bench", 1, 0, 1, NULL);
    tsbroker_call(&admin, "POST", "/api/v1/admin/pools", pool, NULL);
    free(pool);
    ck_assert_msg(tsbroker_wait_ready(&admin, "bench", 1, 120000) >= 1,
                  "no desktop became ready");

    lps = run(0, &lp50, &lp99, &lfail);
    aps = run(1, &ap50, &ap99, &afail);
    idle_sessions(&before, &after, &held);

    tsguest_cpu_model(cpu, sizeof(cpu));
    printf("\n### deskpool-broker (%s, %ld CPUs, %d client threads, %.0f s "
           "each)\n\n",
           cpu, sysconf(_SC_NPROCESSORS_ONLN), THREADS, seconds);
    printf("| measure | target | deskpool-broker |\n|---|---|---|\n");
    printf("| logins/s (PAM conversation: 2 requests, pam_matrix) | >= 1000 "
           "| %.0f (p50 %.1f ms, p99 %.1f ms, %ld failed) |\n",
           lps, lp50, lp99, lfail);
    printf("| launches/s, ready desktop (assignment + ticket) | >= 2000 | "
           "%.0f (%ld failed) |\n",
           aps, afail);
    printf("| launch latency p50 / p99 | p99 <= 20 ms | %.2f / %.2f ms |\n",
           ap50, ap99);
    printf("| RSS with %d idle HTTPS sessions | <= 1 GiB | %.0f MiB "
           "(%d held; %.0f MiB before, %.1f KiB each) |\n",
           IDLE_CONNS, after / 1024.0, held, before / 1024.0,
           held ? (double)(after - before) / held : 0.0);
    {
        char v[128], t[64], acc[8] = "?";
        enum hv_accel a;

        if (tsguest_accel(&a) == 0)
            snprintf(acc, sizeof(acc), "%s", hv_accel_name(a));
        tsbench_summary_fact("accel", acc);
        snprintf(v, sizeof(v), "%.0f/s (p50 %.1f ms, p99 %.1f ms)", lps, lp50,
                 lp99);
        snprintf(t, sizeof(t), ">= 1000/s: %s", tsbench_met(lps >= 1000));
        tsbench_summary_row("broker",
                            "logins/s (PAM conversation, pam_matrix, 4 "
                            "client threads)",
                            v, NULL, NULL, t);
        snprintf(v, sizeof(v), "%.0f/s (p50 %.2f ms, p99 %.2f ms)", aps, ap50,
                 ap99);
        snprintf(t, sizeof(t), ">= 2000/s, p99 <= 20 ms: %s",
                 tsbench_met(aps >= 2000 && ap99 <= 20));
        tsbench_summary_row("broker",
                            "launches/s, ready desktop (assignment + ticket)",
                            v, NULL, NULL, t);
    }
    tsbroker_disconnect(&admin);
    tsbroker_stop(&broker);
    tsbroker_remove_vms(&broker);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        seconds = atof(argv[1]) > 0 ? atof(argv[1]) : 5;
    return tsbench_run_test(bench, 900);
}
