/*
 * hv_proc.c - child processes and /proc (see hv_proc.h).
 */
#include "hv_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dp_time.h"

/* In the child: stdin and stdout to /dev/null, stderr to the pipe. Only
 * async-signal-safe calls between fork and exec. */
static void hv_proc_child(char *const argv[], int err_fd)
{
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
        dup2(err_fd, 2) < 0)
        _exit(126);
    execvp(argv[0], argv);
    /* Say why, where the parent collects it. */
    static const char msg[] = "cannot execute program\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(127);
}

/* Appends n bytes to out, keeping the newest when it is full. */
static void hv_proc_keep(char *out, size_t size, size_t *len, const char *buf,
                         size_t n)
{
    if (size == 0)
        return;
    if (n >= size - 1) {
        buf += n - (size - 1);
        n = size - 1;
        *len = 0;
    } else if (*len + n > size - 1) {
        size_t drop = *len + n - (size - 1);
        memmove(out, out + drop, *len - drop);
        *len -= drop;
    }
    memcpy(out + *len, buf, n);
    *len += n;
    out[*len] = '\0';
}

/* Collects stderr until EOF or the deadline. Returns 0 or -ETIMEDOUT. */
static int hv_proc_collect(int fd, uint64_t deadline, char *out, size_t size)
{
    size_t len = 0;
    char buf[4096];

    if (size)
        out[0] = '\0';
    for (;;) {
        uint64_t now = dp_time_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (now >= deadline)
            return -ETIMEDOUT;
        if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR)
            return -errno;
        if (!p.revents)
            continue;
        n = read(fd, buf, sizeof(buf));
        if (n == 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0)
            hv_proc_keep(out, size, &len, buf, (size_t)n);
    }
}

int hv_proc_run(char *const argv[], int timeout_ms, char *output,
                size_t output_size)
{
    uint64_t deadline = dp_time_now_ms() + (uint64_t)timeout_ms;
    int pipefd[2], status, rc;
    pid_t pid;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        close(pipefd[0]);
        close(pipefd[1]);
        return rc;
    }
    if (pid == 0)
        hv_proc_child(argv, pipefd[1]);
    close(pipefd[1]);
    /* EOF on stderr means the program exited (or closed its stderr). */
    rc = hv_proc_collect(pipefd[0], deadline, output, output_size);
    close(pipefd[0]);
    if (rc == -ETIMEDOUT)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    if (rc < 0)
        return rc;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    return -ECHILD;
}

/* The environment with tunables added to GLIBC_TUNABLES: a new array of
 * borrowed strings but one, *merged (free both); NULL on no memory. */
static char **hv_proc_env(const char *tunables, char **merged)
{
    static const char key[] = "GLIBC_TUNABLES=";
    size_t n = 0, k = 0;
    char **env;

    *merged = NULL;
    while (environ[n])
        n++;
    env = calloc(n + 2, sizeof(*env));
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], key, sizeof(key) - 1) == 0 && !*merged) {
            if (asprintf(merged, "%s:%s", environ[i], tunables) < 0) {
                free(env);
                return NULL;
            }
            env[k++] = *merged;
        } else {
            env[k++] = environ[i];
        }
    }
    if (!*merged) {
        if (asprintf(merged, "%s%s", key, tunables) < 0) {
            free(env);
            return NULL;
        }
        env[k++] = *merged;
    }
    env[k] = NULL;
    return env;
}

/* The grandchild: becomes the program. */
static void hv_proc_exec_detached(char *const argv[], int log_fd, int keep_fd,
                                  char **env)
{
    int null = open("/dev/null", O_RDONLY);
    if (keep_fd >= 0 && keep_fd < 3) {
        keep_fd = fcntl(keep_fd, F_DUPFD_CLOEXEC, 3); /* out of the way */
        if (keep_fd < 0)
            _exit(126);
    }
    if (null < 0 || dup2(null, 0) < 0 || dup2(log_fd, 1) < 0 ||
        dup2(log_fd, 2) < 0)
        _exit(126);
    if (keep_fd >= 0) {
        /* dup2 clears close-on-exec; onto itself it does not. */
        if ((keep_fd == 3 ? fcntl(3, F_SETFD, 0) : dup2(keep_fd, 3)) < 0)
            _exit(126);
        close_range(4, ~0u, 0);
    } else {
        close_range(3, ~0u, 0); /* the caller's sockets are not QEMU's */
    }
    if (env)
        execvpe(argv[0], argv, env);
    else
        execvp(argv[0], argv);
    static const char msg[] = "cannot execute program\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(127);
}

int hv_proc_spawn_detached(char *const argv[], const char *log_path, pid_t *pid)
{
    return hv_proc_spawn_detached_fd(argv, log_path, -1, NULL, pid);
}

static int hv_proc_spawn(char *const argv[], const char *log_path, int keep_fd,
                         char **env, pid_t *pid)
{
    int log_fd, pfd[2], status, rc = 0;
    pid_t child, grandchild = -1;

    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return -errno;
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        rc = -errno;
        close(log_fd);
        return rc;
    }
    child = fork();
    if (child == 0) {
        /* The middle process: new session, fork, report, exit - so the
         * program is reparented and never becomes our zombie. */
        setsid();
        grandchild = fork();
        if (grandchild == 0)
            hv_proc_exec_detached(argv, log_fd, keep_fd, env);
        (void)!write(pfd[1], &grandchild, sizeof(grandchild));
        _exit(grandchild < 0 ? 1 : 0);
    }
    close(pfd[1]);
    close(log_fd);
    if (child < 0) {
        close(pfd[0]);
        return -errno;
    }
    if (read(pfd[0], &grandchild, sizeof(grandchild)) !=
            (ssize_t)sizeof(grandchild) ||
        grandchild <= 0)
        rc = -ECHILD;
    close(pfd[0]);
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0)
        *pid = grandchild;
    return rc;
}

int hv_proc_spawn_detached_fd(char *const argv[], const char *log_path,
                              int keep_fd, const char *tunables, pid_t *pid)
{
    char **env = NULL, *merged = NULL;
    int rc;

    /* Built before fork: the child of a threaded caller must not malloc. */
    if (tunables && !(env = hv_proc_env(tunables, &merged)))
        return -ENOMEM;
    rc = hv_proc_spawn(argv, log_path, keep_fd, env, pid);
    free(env);
    free(merged);
    return rc;
}

void hv_proc_log_tail(const char *path, char *buf, size_t size)
{
    char chunk[4096];
    size_t len = 0;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (size)
        buf[0] = '\0';
    if (fd < 0)
        return;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        hv_proc_keep(buf, size, &len, chunk, (size_t)n);
    close(fd);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        buf[--len] = '\0';
}

/* Reads a small /proc file into buf (NUL-terminated). Returns its length
 * or a negative errno. */
static ssize_t hv_proc_read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    if (fd < 0)
        return -errno;
    n = read(fd, buf, size - 1);
    if (n < 0)
        n = -errno;
    close(fd);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

/* Parses /proc/PID/stat: the fields after the ")" that ends the command
 * name (which may itself contain spaces and parentheses). */
static int hv_proc_stat(pid_t pid, char *state, uint64_t *ticks)
{
    char path[64], buf[1024], *p;
    unsigned long long utime, stime;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (hv_proc_read_file(path, buf, sizeof(buf)) < 0)
        return -ESRCH;
    p = strrchr(buf, ')');
    /* ") S ppid pgrp session tty tpgid flags minflt cminflt majflt
     *  cmajflt utime stime" */
    if (!p ||
        sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               state, &utime, &stime) != 3)
        return -ESRCH;
    *ticks = utime + stime;
    return 0;
}

int hv_proc_usage(pid_t pid, struct hv_proc_usage *u)
{
    char path[64], buf[256], state;
    unsigned long long size, resident;
    uint64_t ticks;
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);

    if (hv_proc_stat(pid, &state, &ticks) < 0)
        return -ESRCH;
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    if (hv_proc_read_file(path, buf, sizeof(buf)) < 0 ||
        sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return -ESRCH;
    u->cpu_ms = ticks * 1000u / (uint64_t)(hz > 0 ? hz : 100);
    u->rss_bytes = resident * (uint64_t)page;
    return 0;
}

int hv_proc_memory(pid_t pid, struct hv_proc_memory *m)
{
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        {"Rss:", offsetof(struct hv_proc_memory, rss)},
        {"Pss:", offsetof(struct hv_proc_memory, pss)},
        {"Shared_Clean:", offsetof(struct hv_proc_memory, shared)},
        {"Shared_Dirty:", offsetof(struct hv_proc_memory, shared)},
        {"Private_Clean:", offsetof(struct hv_proc_memory, private_)},
        {"Private_Dirty:", offsetof(struct hv_proc_memory, private_)},
        {"Anonymous:", offsetof(struct hv_proc_memory, anonymous)},
    };
    char path[64], buf[4096];
    int found = 0;

    memset(m, 0, sizeof(*m));
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    if (hv_proc_read_file(path, buf, sizeof(buf)) < 0)
        return -ESRCH;
    /* Lines "Key:   123 kB"; the first line names the range. */
    for (char *line = buf; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
            size_t n = strlen(keys[i].key);
            unsigned long long kb;
            if (strncmp(line, keys[i].key, n) == 0 &&
                sscanf(line + n, " %llu kB", &kb) == 1) {
                *(uint64_t *)((char *)m + keys[i].off) += kb * 1024u;
                found++;
            }
        }
    }
    return found ? 0 : -EIO;
}

int hv_proc_alive(pid_t pid)
{
    char state;
    uint64_t ticks;
    if (pid <= 0 || hv_proc_stat(pid, &state, &ticks) < 0)
        return 0;
    return state != 'Z' && state != 'X';
}

int hv_proc_cmdline_has(pid_t pid, const char *needle)
{
    enum { CMDLINE_MAX = 65536 };
    char path[64], *buf = malloc(CMDLINE_MAX);
    ssize_t n;
    int found = 0;

    if (!buf)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    n = hv_proc_read_file(path, buf, CMDLINE_MAX);
    /* Arguments are NUL-separated; search each one. */
    for (ssize_t i = 0; i < n && !found; i += (ssize_t)strlen(buf + i) + 1)
        found = strstr(buf + i, needle) != NULL;
    free(buf);
    return found;
}

pid_t hv_proc_read_pidfile(const char *path)
{
    char buf[32], *end;
    long v;
    ssize_t n = hv_proc_read_file(path, buf, sizeof(buf));

    if (n < 0)
        return (pid_t)n;
    v = strtol(buf, &end, 10);
    if (end == buf || v <= 0 || v > 4194304 || (*end && *end != '\n'))
        return -EINVAL;
    return (pid_t)v;
}
