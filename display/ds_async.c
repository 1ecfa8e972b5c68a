/*
 * ds_async.c - broker requests off the daemon's loop (see ds_async.h).
 */
#include "ds_async.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dp_rpc.h"

struct ds_async_req {
    struct ds_async_req *next;
    struct ds_async *a;
    char *path, *op;
    json_t *args;
    int timeout_ms;
    ds_async_fn done;
    void *arg;
    /* the outcome, filled by the worker */
    int r;
    json_t *result;
    char code[32], message[256];
};

struct ds_async {
    int efd;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    int running;                     /* requests not yet finished */
    struct ds_async_req *done_first; /* finished, in order */
    struct ds_async_req **done_last;

    /* the ordered lane: one worker, first in first out */
    pthread_cond_t lane_cv;
    pthread_t lane_thread;
    int lane_started, lane_stop, lane_queued;
    struct ds_async_req *lane_first, **lane_last;
};

static void ds_async_req_free(struct ds_async_req *q)
{
    free(q->path);
    free(q->op);
    json_decref(q->args);
    json_decref(q->result);
    free(q);
}

/* Hands a finished request to the loop; the caller holds the lock. */
static void ds_async_finish_locked(struct ds_async *a, struct ds_async_req *q)
{
    uint64_t one = 1;

    q->next = NULL;
    *a->done_last = q;
    a->done_last = &q->next;
    if (write(a->efd, &one, sizeof(one)) < 0) {
        /* cannot overflow here; the list holds the outcome anyway */
    }
    a->running--;
    pthread_cond_broadcast(&a->idle);
}

static void ds_async_run(struct ds_async_req *q)
{
    q->r = dp_rpc_request(q->path, q->op, q->args, q->timeout_ms, &q->result,
                          q->code, sizeof(q->code), q->message,
                          sizeof(q->message));
    q->args = NULL; /* consumed */
}

static void *ds_async_worker(void *arg)
{
    struct ds_async_req *q = arg;
    struct ds_async *a = q->a;

    ds_async_run(q);
    /* Under the lock: once running drops, ds_async_close() may free the
     * queue, so nothing of it is touched after the unlock. */
    pthread_mutex_lock(&a->lock);
    ds_async_finish_locked(a, q);
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* The ordered lane's worker: one request after the other; once told to
 * stop, what is left is cancelled, not sent. */
static void *ds_async_lane(void *arg)
{
    struct ds_async *a = arg;

    pthread_mutex_lock(&a->lock);
    for (;;) {
        struct ds_async_req *q;

        while (!a->lane_first && !a->lane_stop)
            pthread_cond_wait(&a->lane_cv, &a->lock);
        q = a->lane_first;
        if (!q)
            break;
        a->lane_first = q->next;
        if (!a->lane_first)
            a->lane_last = &a->lane_first;
        a->lane_queued--;
        if (a->lane_stop) {
            q->r = -ECANCELED;
            snprintf(q->message, sizeof(q->message), "%s",
                     "the display daemon is stopping");
        } else {
            pthread_mutex_unlock(&a->lock);
            ds_async_run(q);
            pthread_mutex_lock(&a->lock);
        }
        ds_async_finish_locked(a, q);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

int ds_async_open(struct ds_async **out)
{
    struct ds_async *a = calloc(1, sizeof(*a));

    *out = NULL;
    if (!a)
        return -ENOMEM;
    a->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->efd < 0) {
        int r = -errno;

        free(a);
        return r;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->idle, NULL);
    pthread_cond_init(&a->lane_cv, NULL);
    a->done_last = &a->done_first;
    a->lane_last = &a->lane_first;
    *out = a;
    return 0;
}

int ds_async_fd(const struct ds_async *a)
{
    return a->efd;
}

/* A request record, or NULL (args consumed either way). */
static struct ds_async_req *ds_async_req_new(struct ds_async *a,
                                             const char *path, const char *op,
                                             json_t *args, int timeout_ms,
                                             ds_async_fn done, void *arg)
{
    struct ds_async_req *q = calloc(1, sizeof(*q));

    if (!q || !(q->path = strdup(path)) || !(q->op = strdup(op))) {
        json_decref(args);
        if (q)
            ds_async_req_free(q);
        return NULL;
    }
    q->a = a;
    q->args = args;
    q->timeout_ms = timeout_ms;
    q->done = done;
    q->arg = arg;
    return q;
}

int ds_async_request_ordered(struct ds_async *a, const char *path,
                             const char *op, json_t *args, int timeout_ms,
                             ds_async_fn done, void *arg)
{
    struct ds_async_req *q =
        ds_async_req_new(a, path, op, args, timeout_ms, done, arg);
    int r = 0;

    if (!q)
        return -ENOMEM;
    pthread_mutex_lock(&a->lock);
    if (a->lane_queued >= DS_ASYNC_ORDERED_MAX)
        r = -EBUSY;
    else if (!a->lane_started)
        r = -pthread_create(&a->lane_thread, NULL, ds_async_lane, a);
    if (r) {
        pthread_mutex_unlock(&a->lock);
        ds_async_req_free(q);
        return r;
    }
    a->lane_started = 1;
    *a->lane_last = q;
    a->lane_last = &q->next;
    a->lane_queued++;
    a->running++;
    pthread_cond_signal(&a->lane_cv);
    pthread_mutex_unlock(&a->lock);
    return 0;
}

int ds_async_request(struct ds_async *a, const char *path, const char *op,
                     json_t *args, int timeout_ms, ds_async_fn done, void *arg)
{
    struct ds_async_req *q =
        ds_async_req_new(a, path, op, args, timeout_ms, done, arg);
    pthread_attr_t attr;
    pthread_t t;
    int r;

    if (!q)
        return -ENOMEM;
    pthread_mutex_lock(&a->lock);
    if (a->running - a->lane_queued >= DS_ASYNC_MAX) {
        pthread_mutex_unlock(&a->lock);
        ds_async_req_free(q);
        return -EBUSY;
    }
    a->running++;
    pthread_mutex_unlock(&a->lock);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024); /* dp_rpc needs little */
    r = pthread_create(&t, &attr, ds_async_worker, q);
    pthread_attr_destroy(&attr);
    if (r) {
        pthread_mutex_lock(&a->lock);
        a->running--;
        pthread_mutex_unlock(&a->lock);
        ds_async_req_free(q);
        return -r;
    }
    return 0;
}

/* Takes the finished requests, oldest first. */
static struct ds_async_req *ds_async_take(struct ds_async *a)
{
    struct ds_async_req *q;
    uint64_t n;

    if (read(a->efd, &n, sizeof(n)) < 0) {
        /* nothing counted yet (EAGAIN): the list says what is there */
    }
    pthread_mutex_lock(&a->lock);
    q = a->done_first;
    a->done_first = NULL;
    a->done_last = &a->done_first;
    pthread_mutex_unlock(&a->lock);
    return q;
}

void ds_async_dispatch(struct ds_async *a)
{
    struct ds_async_req *q = ds_async_take(a), *next;

    for (; q; q = next) {
        next = q->next;
        q->done(q->arg, q->r, q->r ? NULL : q->result, q->code, q->message);
        ds_async_req_free(q);
    }
}

void ds_async_close(struct ds_async *a)
{
    struct ds_async_req *q, *next;

    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->lane_stop = 1;
    pthread_cond_signal(&a->lane_cv);
    while (a->running > 0)
        pthread_cond_wait(&a->idle, &a->lock);
    pthread_mutex_unlock(&a->lock);
    if (a->lane_started)
        pthread_join(a->lane_thread, NULL);
    for (q = ds_async_take(a); q; q = next) {
        next = q->next;
        q->done(q->arg, -ECANCELED, NULL, "", "the display daemon is stopping");
        ds_async_req_free(q);
    }
    close(a->efd);
    pthread_cond_destroy(&a->lane_cv);
    pthread_cond_destroy(&a->idle);
    pthread_mutex_destroy(&a->lock);
    free(a);
}
