/*
 * ag_desk.h - what deskpool-agent asks of the desktop it runs in.
 *
 * The agent speaks the host protocol (agent/PROTOCOL.md); a desktop backend
 * does the work inside the guest. Two backends exist: ag_testdesk (the test
 * guest's testdesk, over its control socket) and ag_logind (Linux desktops
 * with systemd-logind). Functions return 0 or a negative errno and write a
 * reason into err; -ENOTSUP means this desktop cannot do it.
 */
#ifndef AG_DESK_H
#define AG_DESK_H

#include <stddef.h>
#include <stdint.h>

#define AG_USER_MAX      64
#define AG_CLIPBOARD_MAX 32768

struct ag_session {
    char user[AG_USER_MAX + 1]; /* "" when nobody is logged in */
    int64_t since;              /* login time, Unix seconds; 0 if nobody */
    int64_t idle_seconds;
    int locked;
};

/* Things the desktop reports on its own. */
enum ag_desk_event_kind {
    AG_DESK_LOGOUT,     /* the user logged off; user says who */
    AG_DESK_RESOLUTION, /* the screen is now width x height */
    AG_DESK_UP,         /* the desktop (re)appeared: it can take a session */
    AG_DESK_DOWN,       /* the desktop went away */
};

struct ag_desk_event {
    enum ag_desk_event_kind kind;
    char user[AG_USER_MAX + 1];
    int width, height;
};

typedef void (*ag_desk_event_fn)(void *arg, const struct ag_desk_event *ev);

struct ag_desk;

struct ag_desk_ops {
    const char *name;
    /* Whether the desktop can take a session now. */
    int (*ready)(struct ag_desk *d);
    int (*status)(struct ag_desk *d, struct ag_session *s, char *err, size_t n);
    int (*prepare)(struct ag_desk *d, const char *user, const char *display,
                   char *err, size_t n);
    int (*logoff)(struct ag_desk *d, char *err, size_t n);
    int (*lock)(struct ag_desk *d, char *err, size_t n);
    int (*set_resolution)(struct ag_desk *d, int w, int h, int *got_w,
                          int *got_h, char *err, size_t n);
    int (*message)(struct ag_desk *d, const char *text, char *err, size_t n);
    int (*clipboard_set)(struct ag_desk *d, const char *text, char *err,
                         size_t n);
    /* *text is malloc'd on success. */
    int (*clipboard_get)(struct ag_desk *d, char **text, char *err, size_t n);
    /* Event plumbing: the fd to poll (-1: none now), the next timer. */
    int (*fd)(struct ag_desk *d);
    int (*timeout_ms)(struct ag_desk *d);
    void (*process)(struct ag_desk *d, short revents, ag_desk_event_fn fn,
                    void *arg);
    void (*close)(struct ag_desk *d);
};

/* Every backend's struct starts with this. */
struct ag_desk {
    const struct ag_desk_ops *ops;
};

/* The testdesk backend, talking to its control socket at path. */
struct ag_desk *ag_testdesk_open(const char *path);
/* The systemd-logind backend (through loginctl). */
struct ag_desk *ag_logind_open(void);

/*
 * The logind backend's choice of the user's session, from the output of
 * `loginctl list-sessions --no-legend` (SESSION UID USER [SEAT [TTY]] per
 * line). Sessions logind does not class as "user" (CLASS= in
 * sessions_dir/SESSION, normally /run/systemd/sessions) are skipped: a
 * display manager's greeter (user lightdm, Debian-gdm) is no one's
 * session, so its hand-over to the user's session is not a logout. Of
 * the rest, the first on a seat wins, else the first. Fills session and
 * user, both "" when there is none.
 */
void ag_logind_pick(const char *list, const char *sessions_dir, char *session,
                    size_t session_size, char *user, size_t user_size);

#endif
