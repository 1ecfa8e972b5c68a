/*
 * bk_store.h - the broker's store: the source of truth (SQLite).
 *
 * One file (state_dir/deskpool.db) in WAL mode with foreign keys on and the
 * schema migrated through PRAGMA user_version. Each thread opens its own
 * struct bk_store (SQLite connections are not shared between threads);
 * writers wait for each other up to 5 s (busy timeout). Every state change
 * below is one transaction, so a kill -9 at any moment leaves either the
 * old or the new state, never half of one. synchronous=NORMAL: a committed
 * transaction survives the process dying; only a power cut may lose the
 * last few.
 *
 * Tables: pools (settings as validated JSON, see bk_pool.h), desktops
 * (state machine of design.md, assignment = user column, the connected
 * client's address), sessions (login
 * tokens, hashed), tickets (one-time, hashed), events (audit log).
 *
 * Errors: functions return 0 or a negative errno: -ENOENT (no such row),
 * -EEXIST, -EBUSY (state does not allow it), -EIO (SQLite failed: the
 * message goes to the log with the statement).
 */
#ifndef BK_STORE_H
#define BK_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define BK_NAME_MAX   63 /* pool names, desktop ids */
#define BK_USER_MAX   64 /* user names */
#define BK_ERROR_MAX  255
#define BK_CLIENT_MAX 72 /* a client's address as the display saw it */

/* Desktop states (design.md). The names are what the API shows. */
enum bk_state {
    BK_PROVISIONING,
    BK_BOOTING,
    BK_READY,
    BK_ASSIGNED,
    BK_CONNECTED,
    BK_DISCONNECTED,
    BK_LOGGED_OFF,
    BK_REFRESHING,
    BK_DELETING,
    BK_ERROR,
    BK_MAINTENANCE,
    BK_STATE_COUNT
};

const char *bk_state_name(enum bk_state s); /* "READY", ... */
int bk_state_parse(const char *name);       /* enum value or -1 */
/* A user holds the desktop in these states (ASSIGNED, CONNECTED,
 * DISCONNECTED). */
int bk_state_in_use(enum bk_state s);

struct bk_desktop {
    char id[BK_NAME_MAX + 1];
    char pool[BK_NAME_MAX + 1];
    enum bk_state state;
    char user[BK_USER_MAX + 1]; /* "" when unassigned */
    int64_t image_gen;          /* pool image generation it was made from */
    int64_t created, state_since, assigned_at; /* Unix seconds */
    char error[BK_ERROR_MAX + 1];
    char protocol[16]; /* of the last launch */
    /* address of the display client of the current session; "" when no
     * session is connected */
    char client[BK_CLIENT_MAX + 1];
    char provisioning[8]; /* how its VM was made: "boot" or "instant" */
    int personalised;     /* an instant clone's agent took its identity */
    int fresh;            /* bk_store_assign: assigned just now (not a row) */
};

struct bk_store;

/* Opens (creating and migrating) the store at path. */
int bk_store_open(struct bk_store **out, const char *path, char *err,
                  size_t err_size);
void bk_store_close(struct bk_store *s);

/* Transactions around several calls (BEGIN IMMEDIATE: takes the write
 * lock at once, so two writers never deadlock on an upgrade). Calls below
 * that change state open their own transaction unless one is open. */
int bk_store_begin(struct bk_store *s);
int bk_store_commit(struct bk_store *s);
void bk_store_rollback(struct bk_store *s);

/* --- pools ---------------------------------------------------------------- */

/* Inserts (create = 1; -EEXIST if present) or replaces the settings of
 * pool name (-ENOENT if absent). settings is a validated pool object; an
 * image change bumps the pool's image generation. */
int bk_store_pool_put(struct bk_store *s, const char *name,
                      const json_t *settings, int create);
/* The pool as the API shows it: its settings plus "name", "image_gen",
 * "restrained", "errors", "last_error", "deleting". NULL if absent. */
json_t *bk_store_pool_get(struct bk_store *s, const char *name);
/* All pools (array of what bk_store_pool_get returns), by name. */
json_t *bk_store_pool_list(struct bk_store *s);
/* Marks the pool for deletion (its desktops go first), or removes its
 * row when it has no desktops left. */
int bk_store_pool_delete(struct bk_store *s, const char *name);
/* Counts a provisioning failure (restrained = errors >= limit) or, with
 * error NULL, a success (errors back to 0). */
int bk_store_pool_result(struct bk_store *s, const char *name,
                         const char *error, int limit);
/* Lifts the restraint (an admin acted). */
int bk_store_pool_unrestrain(struct bk_store *s, const char *name);

/* --- desktops ------------------------------------------------------------- */

int bk_store_desktop_insert(struct bk_store *s, const char *id,
                            const char *pool, enum bk_state state,
                            int64_t image_gen);
int bk_store_desktop_get(struct bk_store *s, const char *id,
                         struct bk_desktop *d);
/* Moves a desktop to state; error is kept for BK_ERROR (else cleared).
 * With from >= 0, only if it is in state from (-EBUSY otherwise). Leaving
 * the in-use states of a floating pool clears the user; leaving them in
 * any pool clears the client address. */
int bk_store_desktop_set_state(struct bk_store *s, const char *id, int from,
                               enum bk_state to, const char *error);
/* Records the client address of the session that connected to a desktop
 * in use (connected = 1), or forgets it when that client's session ended
 * (connected = 0; another client's address stays). -ENOENT if absent. */
int bk_store_desktop_set_client(struct bk_store *s, const char *id,
                                const char *client, int connected);
/* Clears the desktop's user (a refresh of a floating desktop). */
int bk_store_desktop_unassign(struct bk_store *s, const char *id);
/* Sets the image generation (after a refresh or rebuild from a new
 * image). */
int bk_store_desktop_set_gen(struct bk_store *s, const char *id, int64_t gen);
int bk_store_desktop_remove(struct bk_store *s, const char *id);
/* Records how the desktop's current VM was made ("boot" or "instant") and
 * whether its agent was personalised. -ENOENT if absent. */
int bk_store_desktop_set_made(struct bk_store *s, const char *id,
                              const char *provisioning, int personalised);
/* Desktops, optionally only of pool and/or user (NULL: any), by id.
 * Caller frees *out. */
int bk_store_desktop_list(struct bk_store *s, const char *pool,
                          const char *user, struct bk_desktop **out,
                          size_t *count);
/* Number of desktops of pool per state (counts[BK_STATE_COUNT]). */
int bk_store_desktop_counts(struct bk_store *s, const char *pool,
                            int counts[BK_STATE_COUNT]);

/*
 * The launch decision, one transaction: the user's desktop in pool (in
 * use, or their dedicated one) if any, else a READY unassigned desktop,
 * which becomes ASSIGNED to user. Returns 0 with *d filled, or -EAGAIN
 * when none is ready (the manager should provision), -ENOENT if the pool
 * does not exist, -EBUSY if it is in maintenance or being deleted.
 * dedicated: the pool keeps desktops for their users.
 */
int bk_store_assign(struct bk_store *s, const char *pool, const char *user,
                    const char *protocol, struct bk_desktop *d);

/* --- sessions ------------------------------------------------------------- */

struct bk_session {
    char user[BK_USER_MAX + 1];
    int admin;
    json_t *groups; /* array of group names; owned */
    char csrf[64];
    int64_t created, last_seen; /* Unix seconds */
};

/* Stores a session under the SHA-256 hex of its token. */
int bk_store_session_put(struct bk_store *s, const char *hash,
                         const struct bk_session *ss, const char *addr);
/* Looks a session up; -ENOENT if absent or past idle/absolute expiry
 * (then deleted). Touches last_seen when it is more than 60 s old.
 * Caller frees ss->groups (json_decref). */
int bk_store_session_get(struct bk_store *s, const char *hash, int idle,
                         int max, struct bk_session *ss);
int bk_store_session_delete(struct bk_store *s, const char *hash);
/* Drops sessions past their expiry; returns how many. */
int bk_store_session_expire(struct bk_store *s, int idle, int max);

/* --- tickets -------------------------------------------------------------- */

int bk_store_ticket_put(struct bk_store *s, const char *hash, const char *user,
                        const char *desktop, const char *protocol,
                        int64_t expires);
/* Looks at a ticket without using it: 0 with its user and protocol when
 * it is live (unused, unexpired), else what bk_store_ticket_redeem would
 * say. */
int bk_store_ticket_peek(struct bk_store *s, const char *hash, char *user,
                         size_t user_size, char *protocol,
                         size_t protocol_size);
/* Forgets tickets that expired before `before` (Unix seconds). */
int bk_store_ticket_purge(struct bk_store *s, int64_t before);
/* Redeems a ticket for protocol: -ENOENT unknown, -ETIMEDOUT expired,
 * -EALREADY already used, -EPROTO issued for another protocol. On success
 * the user and desktop it was bound to. */
int bk_store_ticket_redeem(struct bk_store *s, const char *hash,
                           const char *protocol, char *user, size_t user_size,
                           char *desktop, size_t desktop_size);

/* --- events --------------------------------------------------------------- */

/* Appends to the audit log (detail: an object, consumed; may be NULL). */
int bk_store_event(struct bk_store *s, const char *kind, const char *user,
                   const char *pool, const char *desktop, json_t *detail);
/* Events newest first, filtered (0/NULL: no filter), at most limit. */
json_t *bk_store_events(struct bk_store *s, int64_t since, int64_t until,
                        const char *user, const char *pool, int limit);

#endif
