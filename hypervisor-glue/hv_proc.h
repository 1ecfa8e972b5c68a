/*
 * hv_proc.h - running helper programs (qemu-img, QEMU) and reading what
 * /proc says about a process.
 *
 * Programs are started with fork + execvp and an argv array: nothing is
 * ever passed through a shell, so no input can become a command.
 */
#ifndef HV_PROC_H
#define HV_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Runs argv[0] (looked up in PATH) with argv, stdin from /dev/null and
 * stdout discarded, and waits at most timeout_ms. Whatever the program
 * writes to stderr (up to output_size - 1 bytes, the last lines kept) ends
 * up in output, NUL-terminated. Returns 0 if it exited with status 0,
 * -ECHILD if it exited otherwise (output says why), -ETIMEDOUT if it was
 * killed for taking too long, or another negative errno if it could not run.
 */
int hv_proc_run(char *const argv[], int timeout_ms, char *output,
                size_t output_size);

/*
 * Starts argv detached from the caller: in a new session, reparented away
 * (double fork) so it outlives the caller and is never its zombie, with
 * stdin from /dev/null and stdout + stderr appended to log_path, and no
 * file descriptors but those three. Returns 0 with its pid in *pid, or a
 * negative errno if it could not be started (a failing exec shows up as
 * the process dying, with the reason in the log).
 */
int hv_proc_spawn_detached(char *const argv[], const char *log_path,
                           pid_t *pid);

/*
 * The same, handing the program one more open file and glibc tunables:
 * keep_fd becomes its fd 3 (e.g. a saved state QEMU reads with
 * migrate-incoming fd:3); tunables (e.g. "glibc.malloc.hugetlb=1") are
 * added to its GLIBC_TUNABLES. keep_fd < 0 and tunables NULL: as
 * hv_proc_spawn_detached().
 */
int hv_proc_spawn_detached_fd(char *const argv[], const char *log_path,
                              int keep_fd, const char *tunables, pid_t *pid);

/* The last lines of a text file, up to size - 1 bytes; "" if unreadable. */
void hv_proc_log_tail(const char *path, char *buf, size_t size);

/* Usage of a running process, from /proc/PID/stat and statm. */
struct hv_proc_usage {
    uint64_t cpu_ms;    /* user + system CPU time since it started */
    uint64_t rss_bytes; /* resident memory */
};

/* Fills *u for pid. Returns 0 or -ESRCH when the process is gone. */
int hv_proc_usage(pid_t pid, struct hv_proc_usage *u);

/* Resident memory of a process by who else maps it, from
 * /proc/PID/smaps_rollup (all in bytes). */
struct hv_proc_memory {
    uint64_t rss;       /* resident */
    uint64_t pss;       /* proportional: shared pages divided among mappers */
    uint64_t shared;    /* Shared_Clean + Shared_Dirty: mapped by others too */
    uint64_t private_;  /* Private_Clean + Private_Dirty: by this one alone */
    uint64_t anonymous; /* not backed by a file: heap, copied-on-write pages */
};

/* Fills *m for pid. Returns 0, -ESRCH when the process is gone, or -EIO
 * when smaps_rollup cannot be parsed. */
int hv_proc_memory(pid_t pid, struct hv_proc_memory *m);

/* True when pid is alive (and not a zombie). */
int hv_proc_alive(pid_t pid);

/*
 * True when pid is a process whose command line contains `needle` as one
 * whole argument or inside one (used to tell our QEMU, started with our run
 * directory in its arguments, from a recycled pid).
 */
int hv_proc_cmdline_has(pid_t pid, const char *needle);

/* Reads a pidfile; returns the pid or a negative errno. */
pid_t hv_proc_read_pidfile(const char *path);

#endif
