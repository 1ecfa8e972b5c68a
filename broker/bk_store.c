/*
 * bk_store.c - the broker's SQLite store (see bk_store.h).
 *
 * Statements are prepared once per connection and kept in a small cache
 * keyed by the address of their SQL text (each is a string literal here),
 * so the hot paths (session lookup, assignment, tickets) cost one step.
 */
#include "bk_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BK_STORE_CACHE 48

struct bk_store {
    sqlite3 *db;
    int in_tx; /* a caller's transaction is open */
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } cache[BK_STORE_CACHE];
};

static const char *const bk_state_names[BK_STATE_COUNT] = {
    "PROVISIONING", "BOOTING",      "READY",       "ASSIGNED",
    "CONNECTED",    "DISCONNECTED", "LOGGED_OFF",  "REFRESHING",
    "DELETING",     "ERROR",        "MAINTENANCE",
};

const char *bk_state_name(enum bk_state s)
{
    return (unsigned)s < BK_STATE_COUNT ? bk_state_names[s] : "UNKNOWN";
}

int bk_state_parse(const char *name)
{
    int i;

    for (i = 0; i < BK_STATE_COUNT; i++)
        if (name && !strcmp(name, bk_state_names[i]))
            return i;
    return -1;
}

int bk_state_in_use(enum bk_state s)
{
    return s == BK_ASSIGNED || s == BK_CONNECTED || s == BK_DISCONNECTED;
}

static int64_t bk_store_now(void)
{
    return (int64_t)time(NULL);
}

/* --- schema -------------------------------------------------------------- */

/* Migration N brings user_version from N to N + 1. Append, never edit. */
static const char *const bk_store_migrations[] = {
    "CREATE TABLE pools ("
    "  name TEXT PRIMARY KEY,"
    "  settings TEXT NOT NULL,"
    "  image_gen INTEGER NOT NULL DEFAULT 1,"
    "  restrained INTEGER NOT NULL DEFAULT 0,"
    "  errors INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT '',"
    "  deleting INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL);"
    "CREATE TABLE desktops ("
    "  id TEXT PRIMARY KEY,"
    "  pool TEXT NOT NULL REFERENCES pools(name),"
    "  state TEXT NOT NULL,"
    "  user TEXT NOT NULL DEFAULT '',"
    "  image_gen INTEGER NOT NULL,"
    "  error TEXT NOT NULL DEFAULT '',"
    "  protocol TEXT NOT NULL DEFAULT '',"
    "  created INTEGER NOT NULL,"
    "  state_since INTEGER NOT NULL,"
    "  assigned_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX desktops_pool ON desktops(pool, state);"
    "CREATE INDEX desktops_user ON desktops(user);"
    "CREATE TABLE sessions ("
    "  hash TEXT PRIMARY KEY,"
    "  user TEXT NOT NULL,"
    "  admin INTEGER NOT NULL,"
    "  groups TEXT NOT NULL,"
    "  csrf TEXT NOT NULL,"
    "  addr TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL);"
    "CREATE TABLE tickets ("
    "  hash TEXT PRIMARY KEY,"
    "  user TEXT NOT NULL,"
    "  desktop TEXT NOT NULL REFERENCES desktops(id) ON DELETE CASCADE,"
    "  protocol TEXT NOT NULL,"
    "  expires INTEGER NOT NULL,"
    "  used INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX tickets_desktop ON tickets(desktop);"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  time INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  user TEXT NOT NULL DEFAULT '',"
    "  pool TEXT NOT NULL DEFAULT '',"
    "  desktop TEXT NOT NULL DEFAULT '',"
    "  detail TEXT NOT NULL DEFAULT '{}');"
    "CREATE INDEX events_time ON events(time);",
    /* 2: purging expired tickets must not scan them all */
    "CREATE INDEX tickets_expires ON tickets(expires);",
    /* 3: who is looking at a desktop in use (deskpool-display's client) */
    "ALTER TABLE desktops ADD COLUMN client TEXT NOT NULL DEFAULT '';",
    /* 4: how a desktop was made (boot or instant clone), and whether its
     * agent took its own identity (an instant clone's personalise) */
    "ALTER TABLE desktops ADD COLUMN provisioning TEXT NOT NULL"
    " DEFAULT 'boot';"
    "ALTER TABLE desktops ADD COLUMN personalised INTEGER NOT NULL"
    " DEFAULT 0;",
};

static int bk_store_exec(struct bk_store *s, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "deskpool-broker: store: %s\n",
                msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

static int bk_store_migrate(struct bk_store *s, char *err, size_t err_size)
{
    int n = (int)(sizeof(bk_store_migrations) / sizeof(*bk_store_migrations));
    sqlite3_stmt *st;
    int version = 0;

    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (version > n) {
        snprintf(err, err_size,
                 "store schema version %d is newer than this broker's %d",
                 version, n);
        return -EPROTO;
    }
    for (; version < n; version++) {
        char bump[64];

        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", version + 1);
        if (bk_store_exec(s, "BEGIN IMMEDIATE") ||
            bk_store_exec(s, bk_store_migrations[version]) ||
            bk_store_exec(s, bump) || bk_store_exec(s, "COMMIT")) {
            bk_store_exec(s, "ROLLBACK");
            snprintf(err, err_size, "store: migration %d failed", version + 1);
            return -EIO;
        }
    }
    return 0;
}

/* The store holds password-lockout state, tickets and the audit log: it
 * is made (or kept) 0600 whatever the umask. SQLite gives its -wal and
 * -shm files the database file's mode. An existing store is never opened
 * here: closing any descriptor of it would drop this process's POSIX
 * locks on it, which other store connections hold. */
static int bk_store_private(const char *path, char *err, size_t err_size)
{
    int fd =
        open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    int e = 0;

    if (fd >= 0)
        close(fd); /* new: no connection has it open yet */
    else if (errno != EEXIST || chmod(path, 0600) < 0)
        e = errno;
    if (e)
        snprintf(err, err_size, "%s: %s", path, strerror(e));
    return -e;
}

int bk_store_open(struct bk_store **out, const char *path, char *err,
                  size_t err_size)
{
    struct bk_store *s = calloc(1, sizeof(*s));
    int r;

    if (!s)
        return -ENOMEM;
    r = bk_store_private(path, err, err_size);
    if (r < 0) {
        free(s);
        return r;
    }
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, err_size, "%s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : "cannot open");
        bk_store_close(s);
        return -EIO;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (bk_store_exec(s, "PRAGMA journal_mode = WAL") ||
        bk_store_exec(s, "PRAGMA synchronous = NORMAL") ||
        bk_store_exec(s, "PRAGMA foreign_keys = ON")) {
        snprintf(err, err_size, "%s: %s", path, sqlite3_errmsg(s->db));
        bk_store_close(s);
        return -EIO;
    }
    r = bk_store_migrate(s, err, err_size);
    if (r) {
        bk_store_close(s);
        return r;
    }
    *out = s;
    return 0;
}

void bk_store_close(struct bk_store *s)
{
    int i;

    if (!s)
        return;
    for (i = 0; i < BK_STORE_CACHE; i++)
        sqlite3_finalize(s->cache[i].st);
    sqlite3_close(s->db);
    free(s);
}

/* A prepared statement for sql (a string literal), reset and unbound. */
static sqlite3_stmt *bk_store_stmt(struct bk_store *s, const char *sql)
{
    int i;

    for (i = 0; i < BK_STORE_CACHE && s->cache[i].sql; i++)
        if (s->cache[i].sql == sql) {
            sqlite3_reset(s->cache[i].st);
            sqlite3_clear_bindings(s->cache[i].st);
            return s->cache[i].st;
        }
    if (i == BK_STORE_CACHE) { /* full: should not happen, grow the cache */
        fprintf(stderr, "deskpool-broker: store: statement cache full\n");
        return NULL;
    }
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                           &s->cache[i].st, NULL) != SQLITE_OK) {
        fprintf(stderr, "deskpool-broker: store: %s: %s\n",
                sqlite3_errmsg(s->db), sql);
        return NULL;
    }
    s->cache[i].sql = sql;
    return s->cache[i].st;
}

static void bk_store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_TRANSIENT);
}

/* Steps a statement that returns no rows. 0, -EEXIST (constraint) or
 * -EIO. */
static int bk_store_done(struct bk_store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc == SQLITE_CONSTRAINT) /* primary key or reference */
        return -EEXIST;
    fprintf(stderr, "deskpool-broker: store: %s\n", sqlite3_errmsg(s->db));
    return -EIO;
}

int bk_store_begin(struct bk_store *s)
{
    if (s->in_tx)
        return -EBUSY;
    if (bk_store_exec(s, "BEGIN IMMEDIATE"))
        return -EIO;
    s->in_tx = 1;
    return 0;
}

int bk_store_commit(struct bk_store *s)
{
    int r = bk_store_exec(s, "COMMIT");

    if (r)
        bk_store_exec(s, "ROLLBACK");
    s->in_tx = 0;
    return r;
}

void bk_store_rollback(struct bk_store *s)
{
    if (s->in_tx)
        bk_store_exec(s, "ROLLBACK");
    s->in_tx = 0;
}

/* Own transaction around a change unless the caller holds one: open with
 * bk_store_tx_open, close with bk_store_tx_close(s, own, result). */
static int bk_store_tx_open(struct bk_store *s, int *own)
{
    *own = !s->in_tx;
    return *own ? bk_store_begin(s) : 0;
}

static int bk_store_tx_close(struct bk_store *s, int own, int r)
{
    if (!own)
        return r;
    if (r) {
        bk_store_rollback(s);
        return r;
    }
    return bk_store_commit(s);
}

/* --- pools ---------------------------------------------------------------- */

static const char BK_SQL_POOL_INSERT[] =
    "INSERT INTO pools(name, settings, created, updated) VALUES(?,?,?,?)";
static const char BK_SQL_POOL_SETTINGS[] =
    "SELECT settings FROM pools WHERE name = ?";
static const char BK_SQL_POOL_UPDATE[] =
    "UPDATE pools SET settings = ?, updated = ?, errors = 0, restrained = 0,"
    " image_gen = image_gen + ? WHERE name = ?";

/* The pool fields whose change makes new desktops from a new image. */
static int bk_store_image_changed(const json_t *a, const json_t *b)
{
    static const char *const keys[] = {"golden", "kernel", "initrd", "cmdline"};
    size_t i;

    for (i = 0; i < sizeof(keys) / sizeof(*keys); i++)
        if (!json_equal(json_object_get(a, keys[i]),
                        json_object_get(b, keys[i])))
            return 1;
    return 0;
}

int bk_store_pool_put(struct bk_store *s, const char *name,
                      const json_t *settings, int create)
{
    char *text = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS);
    sqlite3_stmt *st;
    int own, r;

    if (!text)
        return -ENOMEM;
    r = bk_store_tx_open(s, &own);
    if (r)
        goto out;
    if (create) {
        st = bk_store_stmt(s, BK_SQL_POOL_INSERT);
        if (!st) {
            r = -EIO;
            goto close;
        }
        bk_store_bind_text(st, 1, name);
        bk_store_bind_text(st, 2, text);
        sqlite3_bind_int64(st, 3, bk_store_now());
        sqlite3_bind_int64(st, 4, bk_store_now());
        r = bk_store_done(s, st);
    } else {
        json_t *old = NULL;

        st = bk_store_stmt(s, BK_SQL_POOL_SETTINGS);
        r = -EIO;
        if (!st)
            goto close;
        bk_store_bind_text(st, 1, name);
        r = -ENOENT;
        if (sqlite3_step(st) == SQLITE_ROW)
            old = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        sqlite3_reset(st);
        if (!old)
            goto close;
        st = bk_store_stmt(s, BK_SQL_POOL_UPDATE);
        r = -EIO;
        if (st) {
            bk_store_bind_text(st, 1, text);
            sqlite3_bind_int64(st, 2, bk_store_now());
            sqlite3_bind_int(st, 3, bk_store_image_changed(old, settings));
            bk_store_bind_text(st, 4, name);
            r = bk_store_done(s, st);
        }
        json_decref(old);
    }
close:
    r = bk_store_tx_close(s, own, r);
out:
    free(text);
    return r;
}

static const char BK_SQL_POOL_GET[] =
    "SELECT name, settings, image_gen, restrained, errors, last_error,"
    " deleting FROM pools WHERE name = ?";
static const char BK_SQL_POOL_LIST[] =
    "SELECT name, settings, image_gen, restrained, errors, last_error,"
    " deleting FROM pools ORDER BY name";

static json_t *bk_store_pool_row(sqlite3_stmt *st)
{
    json_t *p = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);

    if (!json_is_object(p)) {
        json_decref(p);
        return NULL;
    }
    json_object_set_new(p, "name",
                        json_string((const char *)sqlite3_column_text(st, 0)));
    json_object_set_new(p, "image_gen",
                        json_integer(sqlite3_column_int64(st, 2)));
    json_object_set_new(p, "restrained",
                        json_boolean(sqlite3_column_int(st, 3)));
    json_object_set_new(p, "errors", json_integer(sqlite3_column_int(st, 4)));
    json_object_set_new(p, "last_error",
                        json_string((const char *)sqlite3_column_text(st, 5)));
    json_object_set_new(p, "deleting", json_boolean(sqlite3_column_int(st, 6)));
    return p;
}

json_t *bk_store_pool_get(struct bk_store *s, const char *name)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_POOL_GET);
    json_t *p = NULL;

    if (!st)
        return NULL;
    bk_store_bind_text(st, 1, name);
    if (sqlite3_step(st) == SQLITE_ROW)
        p = bk_store_pool_row(st);
    sqlite3_reset(st);
    return p;
}

json_t *bk_store_pool_list(struct bk_store *s)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_POOL_LIST);
    json_t *a = json_array();

    if (!st || !a) {
        json_decref(a);
        return NULL;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *p = bk_store_pool_row(st);

        if (p)
            json_array_append_new(a, p);
    }
    sqlite3_reset(st);
    return a;
}

static const char BK_SQL_POOL_MARK_DELETE[] =
    "UPDATE pools SET deleting = 1, updated = ? WHERE name = ?";
static const char BK_SQL_POOL_REMOVE[] =
    "DELETE FROM pools WHERE name = ? AND deleting = 1 AND"
    " NOT EXISTS (SELECT 1 FROM desktops WHERE pool = ?)";

int bk_store_pool_delete(struct bk_store *s, const char *name)
{
    sqlite3_stmt *st;
    int own, r = bk_store_tx_open(s, &own);

    if (r)
        return r;
    st = bk_store_stmt(s, BK_SQL_POOL_MARK_DELETE);
    r = -EIO;
    if (st) {
        sqlite3_bind_int64(st, 1, bk_store_now());
        bk_store_bind_text(st, 2, name);
        r = bk_store_done(s, st);
        if (!r && !sqlite3_changes(s->db))
            r = -ENOENT;
    }
    if (!r) {
        st = bk_store_stmt(s, BK_SQL_POOL_REMOVE);
        r = -EIO;
        if (st) {
            bk_store_bind_text(st, 1, name);
            bk_store_bind_text(st, 2, name);
            r = bk_store_done(s, st);
        }
    }
    return bk_store_tx_close(s, own, r);
}

static const char BK_SQL_POOL_FAIL[] =
    "UPDATE pools SET errors = errors + 1, last_error = ?,"
    " restrained = (errors + 1 >= ?) WHERE name = ?";
static const char BK_SQL_POOL_OK[] =
    "UPDATE pools SET errors = 0 WHERE name = ? AND errors > 0";
static const char BK_SQL_POOL_UNRESTRAIN[] =
    "UPDATE pools SET errors = 0, restrained = 0 WHERE name = ?";

int bk_store_pool_result(struct bk_store *s, const char *name,
                         const char *error, int limit)
{
    sqlite3_stmt *st =
        bk_store_stmt(s, error ? BK_SQL_POOL_FAIL : BK_SQL_POOL_OK);

    if (!st)
        return -EIO;
    if (error) {
        bk_store_bind_text(st, 1, error);
        sqlite3_bind_int(st, 2, limit);
        bk_store_bind_text(st, 3, name);
    } else {
        bk_store_bind_text(st, 1, name);
    }
    return bk_store_done(s, st);
}

int bk_store_pool_unrestrain(struct bk_store *s, const char *name)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_POOL_UNRESTRAIN);

    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, name);
    return bk_store_done(s, st);
}

/* --- desktops ------------------------------------------------------------- */

#define BK_DESKTOP_COLS                                                        \
    "id, pool, state, user, image_gen, created, state_since, assigned_at,"     \
    " error, protocol, client, provisioning, personalised"

static const char BK_SQL_DESKTOP_INSERT[] =
    "INSERT INTO desktops(id, pool, state, image_gen, created, state_since)"
    " VALUES(?,?,?,?,?,?)";
static const char BK_SQL_DESKTOP_GET[] =
    "SELECT " BK_DESKTOP_COLS " FROM desktops WHERE id = ?";

static void bk_store_copy(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);

    snprintf(dst, size, "%s", v ? (const char *)v : "");
}

static void bk_store_desktop_row(sqlite3_stmt *st, struct bk_desktop *d)
{
    char state[32];
    int n;

    memset(d, 0, sizeof(*d));
    bk_store_copy(d->id, sizeof(d->id), st, 0);
    bk_store_copy(d->pool, sizeof(d->pool), st, 1);
    bk_store_copy(state, sizeof(state), st, 2);
    n = bk_state_parse(state);
    d->state = n < 0 ? BK_ERROR : (enum bk_state)n;
    bk_store_copy(d->user, sizeof(d->user), st, 3);
    d->image_gen = sqlite3_column_int64(st, 4);
    d->created = sqlite3_column_int64(st, 5);
    d->state_since = sqlite3_column_int64(st, 6);
    d->assigned_at = sqlite3_column_int64(st, 7);
    bk_store_copy(d->error, sizeof(d->error), st, 8);
    bk_store_copy(d->protocol, sizeof(d->protocol), st, 9);
    bk_store_copy(d->client, sizeof(d->client), st, 10);
    bk_store_copy(d->provisioning, sizeof(d->provisioning), st, 11);
    d->personalised = sqlite3_column_int(st, 12);
}

int bk_store_desktop_insert(struct bk_store *s, const char *id,
                            const char *pool, enum bk_state state,
                            int64_t image_gen)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_DESKTOP_INSERT);

    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, id);
    bk_store_bind_text(st, 2, pool);
    bk_store_bind_text(st, 3, bk_state_name(state));
    sqlite3_bind_int64(st, 4, image_gen);
    sqlite3_bind_int64(st, 5, bk_store_now());
    sqlite3_bind_int64(st, 6, bk_store_now());
    return bk_store_done(s, st);
}

int bk_store_desktop_get(struct bk_store *s, const char *id,
                         struct bk_desktop *d)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_DESKTOP_GET);
    int r = -ENOENT;

    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        bk_store_desktop_row(st, d);
        r = 0;
    }
    sqlite3_reset(st);
    return r;
}

/* Leaving the in-use states (?7 = 1) frees a floating desktop from its
 * user; a dedicated pool's desktop stays theirs. Nobody is connected
 * then. */
static const char BK_SQL_DESKTOP_STATE[] =
    "UPDATE desktops SET state = ?1, error = ?2, state_since = ?3,"
    " client = CASE WHEN ?7 THEN '' ELSE client END,"
    " user = CASE WHEN ?7 AND (SELECT json_extract(settings, '$.type')"
    "   FROM pools WHERE name = desktops.pool) IS NOT 'dedicated'"
    "   THEN '' ELSE user END,"
    " assigned_at = CASE WHEN ?7 AND user != '' AND"
    "   (SELECT json_extract(settings, '$.type') FROM pools"
    "   WHERE name = desktops.pool) IS NOT 'dedicated' THEN 0"
    "   ELSE assigned_at END"
    " WHERE id = ?4 AND (?5 = '' OR state = ?6)";

int bk_store_desktop_set_state(struct bk_store *s, const char *id, int from,
                               enum bk_state to, const char *error)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_DESKTOP_STATE);
    const char *f = from >= 0 ? bk_state_name((enum bk_state)from) : "";
    int r;

    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, bk_state_name(to));
    bk_store_bind_text(st, 2, to == BK_ERROR && error ? error : "");
    sqlite3_bind_int64(st, 3, bk_store_now());
    bk_store_bind_text(st, 4, id);
    bk_store_bind_text(st, 5, f);
    bk_store_bind_text(st, 6, f);
    sqlite3_bind_int(st, 7, !bk_state_in_use(to));
    r = bk_store_done(s, st);
    if (!r && !sqlite3_changes(s->db)) {
        struct bk_desktop d;

        r = bk_store_desktop_get(s, id, &d) ? -ENOENT : -EBUSY;
    }
    return r;
}

static const char BK_SQL_DESKTOP_UNASSIGN[] =
    "UPDATE desktops SET user = '', assigned_at = 0, protocol = '',"
    " client = '' WHERE id = ?";
static const char BK_SQL_DESKTOP_CLIENT_SET[] =
    "UPDATE desktops SET client = ? WHERE id = ?";
static const char BK_SQL_DESKTOP_CLIENT_END[] =
    "UPDATE desktops SET client = '' WHERE client = ? AND id = ?";

int bk_store_desktop_set_client(struct bk_store *s, const char *id,
                                const char *client, int connected)
{
    sqlite3_stmt *st = bk_store_stmt(s, connected ? BK_SQL_DESKTOP_CLIENT_SET
                                                  : BK_SQL_DESKTOP_CLIENT_END);
    struct bk_desktop d;
    int r;

    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, client);
    bk_store_bind_text(st, 2, id);
    r = bk_store_done(s, st);
    if (!r && !sqlite3_changes(s->db) && bk_store_desktop_get(s, id, &d))
        r = -ENOENT;
    return r;
}
static const char BK_SQL_DESKTOP_GEN[] =
    "UPDATE desktops SET image_gen = ? WHERE id = ?";
static const char BK_SQL_DESKTOP_REMOVE[] = "DELETE FROM desktops WHERE id = ?";
static const char BK_SQL_DESKTOP_MADE[] =
    "UPDATE desktops SET provisioning = ?, personalised = ? WHERE id = ?";

int bk_store_desktop_set_made(struct bk_store *s, const char *id,
                              const char *provisioning, int personalised)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_DESKTOP_MADE);
    int r;

    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, provisioning);
    sqlite3_bind_int(st, 2, personalised ? 1 : 0);
    bk_store_bind_text(st, 3, id);
    r = bk_store_done(s, st);
    if (!r && !sqlite3_changes(s->db))
        r = -ENOENT;
    return r;
}

int bk_store_desktop_unassign(struct bk_store *s, const char *id)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_DESKTOP_UNASSIGN);

    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, id);
    return bk_store_done(s, st);
}

int bk_store_desktop_set_gen(struct bk_store *s, const char *id, int64_t gen)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_DESKTOP_GEN);

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, gen);
    bk_store_bind_text(st, 2, id);
    return bk_store_done(s, st);
}

int bk_store_desktop_remove(struct bk_store *s, const char *id)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_DESKTOP_REMOVE);

    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, id);
    return bk_store_done(s, st);
}

static const char BK_SQL_DESKTOP_LIST[] =
    "SELECT " BK_DESKTOP_COLS " FROM desktops"
    " WHERE (? = '' OR pool = ?) AND (? = '' OR user = ?) ORDER BY id";

int bk_store_desktop_list(struct bk_store *s, const char *pool,
                          const char *user, struct bk_desktop **out,
                          size_t *count)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_DESKTOP_LIST);
    struct bk_desktop *v = NULL;
    size_t n = 0, cap = 0;

    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, pool);
    bk_store_bind_text(st, 2, pool);
    bk_store_bind_text(st, 3, user);
    bk_store_bind_text(st, 4, user);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            struct bk_desktop *nv;

            cap = cap ? cap * 2 : 16;
            nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                free(v);
                sqlite3_reset(st);
                return -ENOMEM;
            }
            v = nv;
        }
        bk_store_desktop_row(st, &v[n++]);
    }
    sqlite3_reset(st);
    *out = v;
    *count = n;
    return 0;
}

static const char BK_SQL_DESKTOP_COUNTS[] =
    "SELECT state, count(*) FROM desktops WHERE pool = ? GROUP BY state";

int bk_store_desktop_counts(struct bk_store *s, const char *pool,
                            int counts[BK_STATE_COUNT])
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_DESKTOP_COUNTS);

    memset(counts, 0, sizeof(int) * BK_STATE_COUNT);
    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, pool);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int i = bk_state_parse((const char *)sqlite3_column_text(st, 0));

        if (i >= 0)
            counts[i] = sqlite3_column_int(st, 1);
    }
    sqlite3_reset(st);
    return 0;
}

/* The user's desktop in the pool: in use, or kept for them (dedicated). */
static const char BK_SQL_ASSIGN_MINE[] =
    "SELECT " BK_DESKTOP_COLS " FROM desktops WHERE pool = ? AND user = ?"
    " AND state NOT IN ('DELETING', 'ERROR') ORDER BY assigned_at LIMIT 1";
/* The oldest-ready spare of the newest image. */
static const char BK_SQL_ASSIGN_SPARE[] =
    "SELECT " BK_DESKTOP_COLS " FROM desktops WHERE pool = ? AND user = ''"
    " AND state = 'READY' ORDER BY image_gen DESC, state_since LIMIT 1";
static const char BK_SQL_ASSIGN_TAKE[] =
    "UPDATE desktops SET user = ?, state = 'ASSIGNED', state_since = ?,"
    " assigned_at = ?, protocol = ?, client = '' WHERE id = ?";
static const char BK_SQL_ASSIGN_PROTOCOL[] =
    "UPDATE desktops SET protocol = ? WHERE id = ?";
static const char BK_SQL_POOL_USABLE[] =
    "SELECT deleting, settings FROM pools WHERE name = ?";

/* 0 if the pool takes launches, -ENOENT / -EBUSY otherwise. */
static int bk_store_pool_usable(struct bk_store *s, const char *pool)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_POOL_USABLE);
    int r = -ENOENT;

    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, pool);
    if (sqlite3_step(st) == SQLITE_ROW) {
        json_t *set =
            json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);

        r = sqlite3_column_int(st, 0) ||
                    json_is_true(json_object_get(set, "maintenance"))
                ? -EBUSY
                : 0;
        json_decref(set);
    }
    sqlite3_reset(st);
    return r;
}

static int bk_store_assign_locked(struct bk_store *s, const char *pool,
                                  const char *user, const char *protocol,
                                  struct bk_desktop *d)
{
    sqlite3_stmt *st;
    int found = 0, r = bk_store_pool_usable(s, pool);

    if (r)
        return r;
    st = bk_store_stmt(s, BK_SQL_ASSIGN_MINE);
    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, pool);
    bk_store_bind_text(st, 2, user);
    if (sqlite3_step(st) == SQLITE_ROW) {
        bk_store_desktop_row(st, d);
        found = 1;
    }
    sqlite3_reset(st);
    if (found) {
        /* A dedicated desktop kept for the user is in use again once it is
         * running; one still booting or refreshing makes the caller wait. */
        if (d->state == BK_READY) {
            found = 0; /* take it below, like a spare */
        } else if (!bk_state_in_use(d->state)) {
            return -EAGAIN;
        } else {
            st = bk_store_stmt(s, BK_SQL_ASSIGN_PROTOCOL);
            if (!st)
                return -EIO;
            bk_store_bind_text(st, 1, protocol);
            bk_store_bind_text(st, 2, d->id);
            snprintf(d->protocol, sizeof(d->protocol), "%s", protocol);
            return bk_store_done(s, st);
        }
    }
    if (!found) {
        if (!d->id[0] || d->state != BK_READY) {
            st = bk_store_stmt(s, BK_SQL_ASSIGN_SPARE);
            if (!st)
                return -EIO;
            bk_store_bind_text(st, 1, pool);
            r = -EAGAIN;
            if (sqlite3_step(st) == SQLITE_ROW) {
                bk_store_desktop_row(st, d);
                r = 0;
            }
            sqlite3_reset(st);
            if (r)
                return r;
        }
    }
    st = bk_store_stmt(s, BK_SQL_ASSIGN_TAKE);
    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, user);
    sqlite3_bind_int64(st, 2, bk_store_now());
    sqlite3_bind_int64(st, 3, bk_store_now());
    bk_store_bind_text(st, 4, protocol);
    bk_store_bind_text(st, 5, d->id);
    r = bk_store_done(s, st);
    if (!r) {
        d->fresh = 1;
        d->state = BK_ASSIGNED;
        snprintf(d->user, sizeof(d->user), "%s", user);
        snprintf(d->protocol, sizeof(d->protocol), "%s", protocol);
        d->client[0] = '\0';
    }
    return r;
}

int bk_store_assign(struct bk_store *s, const char *pool, const char *user,
                    const char *protocol, struct bk_desktop *d)
{
    int own, r = bk_store_tx_open(s, &own);

    if (r)
        return r;
    memset(d, 0, sizeof(*d));
    r = bk_store_assign_locked(s, pool, user, protocol, d);
    /* -EAGAIN is an answer, not a failure: nothing was changed. */
    return bk_store_tx_close(s, own, r);
}

/* --- sessions ------------------------------------------------------------- */

static const char BK_SQL_SESSION_PUT[] =
    "INSERT INTO sessions(hash, user, admin, groups, csrf, addr, created,"
    " last_seen) VALUES(?,?,?,?,?,?,?,?)";
static const char BK_SQL_SESSION_GET[] =
    "SELECT user, admin, groups, csrf, created, last_seen FROM sessions"
    " WHERE hash = ?";
static const char BK_SQL_SESSION_TOUCH[] =
    "UPDATE sessions SET last_seen = ? WHERE hash = ?";
static const char BK_SQL_SESSION_DELETE[] =
    "DELETE FROM sessions WHERE hash = ?";
static const char BK_SQL_SESSION_EXPIRE[] =
    "DELETE FROM sessions WHERE last_seen < ? OR created < ?";

int bk_store_session_put(struct bk_store *s, const char *hash,
                         const struct bk_session *ss, const char *addr)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_SESSION_PUT);
    char *groups;
    int r;

    if (!st)
        return -EIO;
    groups = ss->groups ? json_dumps(ss->groups, JSON_COMPACT) : strdup("[]");
    if (!groups)
        return -ENOMEM;
    bk_store_bind_text(st, 1, hash);
    bk_store_bind_text(st, 2, ss->user);
    sqlite3_bind_int(st, 3, ss->admin);
    bk_store_bind_text(st, 4, groups);
    bk_store_bind_text(st, 5, ss->csrf);
    bk_store_bind_text(st, 6, addr);
    sqlite3_bind_int64(st, 7, ss->created);
    sqlite3_bind_int64(st, 8, ss->last_seen);
    r = bk_store_done(s, st);
    free(groups);
    return r;
}

int bk_store_session_get(struct bk_store *s, const char *hash, int idle,
                         int max, struct bk_session *ss)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_SESSION_GET);
    int64_t now = bk_store_now();
    int r = -ENOENT;

    memset(ss, 0, sizeof(*ss));
    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, hash);
    if (sqlite3_step(st) == SQLITE_ROW) {
        bk_store_copy(ss->user, sizeof(ss->user), st, 0);
        ss->admin = sqlite3_column_int(st, 1);
        ss->groups =
            json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
        bk_store_copy(ss->csrf, sizeof(ss->csrf), st, 3);
        ss->created = sqlite3_column_int64(st, 4);
        ss->last_seen = sqlite3_column_int64(st, 5);
        r = 0;
    }
    sqlite3_reset(st);
    if (r)
        return r;
    if (now - ss->last_seen > idle || now - ss->created > max) {
        json_decref(ss->groups);
        ss->groups = NULL;
        bk_store_session_delete(s, hash);
        return -ENOENT;
    }
    if (!ss->groups)
        ss->groups = json_array();
    if (now - ss->last_seen > 60) { /* not every request: writes cost */
        st = bk_store_stmt(s, BK_SQL_SESSION_TOUCH);
        if (st) {
            sqlite3_bind_int64(st, 1, now);
            bk_store_bind_text(st, 2, hash);
            bk_store_done(s, st);
        }
        ss->last_seen = now;
    }
    return 0;
}

int bk_store_session_delete(struct bk_store *s, const char *hash)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_SESSION_DELETE);

    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, hash);
    return bk_store_done(s, st);
}

int bk_store_session_expire(struct bk_store *s, int idle, int max)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_SESSION_EXPIRE);
    int r;

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, bk_store_now() - idle);
    sqlite3_bind_int64(st, 2, bk_store_now() - max);
    r = bk_store_done(s, st);
    return r ? r : sqlite3_changes(s->db);
}

/* --- tickets -------------------------------------------------------------- */

static const char BK_SQL_TICKET_PUT[] =
    "INSERT INTO tickets(hash, user, desktop, protocol, expires)"
    " VALUES(?,?,?,?,?)";
static const char BK_SQL_TICKET_GET[] =
    "SELECT user, desktop, protocol, expires, used FROM tickets"
    " WHERE hash = ?";
static const char BK_SQL_TICKET_USE[] =
    "UPDATE tickets SET used = 1 WHERE hash = ?";
/* Used and expired tickets are kept a while so a replay is told "already
 * used" rather than "unknown". */
static const char BK_SQL_TICKET_PURGE[] =
    "DELETE FROM tickets WHERE expires < ?";

int bk_store_ticket_purge(struct bk_store *s, int64_t before)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_TICKET_PURGE);

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, before);
    return bk_store_done(s, st);
}

int bk_store_ticket_put(struct bk_store *s, const char *hash, const char *user,
                        const char *desktop, const char *protocol,
                        int64_t expires)
{
    sqlite3_stmt *st;

    st = bk_store_stmt(s, BK_SQL_TICKET_PUT);
    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, hash);
    bk_store_bind_text(st, 2, user);
    bk_store_bind_text(st, 3, desktop);
    bk_store_bind_text(st, 4, protocol);
    sqlite3_bind_int64(st, 5, expires);
    return bk_store_done(s, st);
}

int bk_store_ticket_peek(struct bk_store *s, const char *hash, char *user,
                         size_t user_size, char *protocol, size_t protocol_size)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_TICKET_GET);
    int r = -ENOENT;

    if (!st)
        return -EIO;
    bk_store_bind_text(st, 1, hash);
    if (sqlite3_step(st) == SQLITE_ROW) {
        bk_store_copy(user, user_size, st, 0);
        bk_store_copy(protocol, protocol_size, st, 2);
        r = sqlite3_column_int(st, 4)                       ? -EALREADY
            : bk_store_now() >= sqlite3_column_int64(st, 3) ? -ETIMEDOUT
                                                            : 0;
    }
    sqlite3_reset(st);
    return r;
}

int bk_store_ticket_redeem(struct bk_store *s, const char *hash,
                           const char *protocol, char *user, size_t user_size,
                           char *desktop, size_t desktop_size)
{
    sqlite3_stmt *st;
    char proto[16] = "";
    int64_t expires = 0;
    int used = 0, own, r = bk_store_tx_open(s, &own);

    if (r)
        return r;
    st = bk_store_stmt(s, BK_SQL_TICKET_GET);
    r = -EIO;
    if (!st)
        goto out;
    bk_store_bind_text(st, 1, hash);
    r = -ENOENT;
    if (sqlite3_step(st) == SQLITE_ROW) {
        bk_store_copy(user, user_size, st, 0);
        bk_store_copy(desktop, desktop_size, st, 1);
        bk_store_copy(proto, sizeof(proto), st, 2);
        expires = sqlite3_column_int64(st, 3);
        used = sqlite3_column_int(st, 4);
        r = 0;
    }
    sqlite3_reset(st);
    if (r)
        goto out;
    if (used)
        r = -EALREADY;
    else if (bk_store_now() >= expires)
        r = -ETIMEDOUT;
    else if (strcmp(proto, protocol) != 0)
        r = -EPROTO;
    if (r)
        goto out;
    st = bk_store_stmt(s, BK_SQL_TICKET_USE);
    r = -EIO;
    if (st) {
        bk_store_bind_text(st, 1, hash);
        r = bk_store_done(s, st);
    }
out:
    if (r == -EALREADY || r == -ETIMEDOUT || r == -EPROTO) {
        /* A refusal changed nothing; keep it from rolling back as an
         * error of the store. */
        bk_store_tx_close(s, own, 0);
        return r;
    }
    return bk_store_tx_close(s, own, r);
}

/* --- events --------------------------------------------------------------- */

static const char BK_SQL_EVENT_ADD[] =
    "INSERT INTO events(time, kind, user, pool, desktop, detail)"
    " VALUES(?,?,?,?,?,?)";
static const char BK_SQL_EVENTS[] =
    "SELECT id, time, kind, user, pool, desktop, detail FROM events"
    " WHERE (? = 0 OR time >= ?) AND (? = 0 OR time <= ?)"
    " AND (? = '' OR user = ?) AND (? = '' OR pool = ?)"
    " ORDER BY id DESC LIMIT ?";

int bk_store_event(struct bk_store *s, const char *kind, const char *user,
                   const char *pool, const char *desktop, json_t *detail)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_EVENT_ADD);
    char *text = detail ? json_dumps(detail, JSON_COMPACT) : strdup("{}");
    struct timespec ts;
    int r = -EIO;

    json_decref(detail);
    if (!text)
        return -ENOMEM;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (st) {
        sqlite3_bind_int64(st, 1,
                           (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        bk_store_bind_text(st, 2, kind);
        bk_store_bind_text(st, 3, user);
        bk_store_bind_text(st, 4, pool);
        bk_store_bind_text(st, 5, desktop);
        bk_store_bind_text(st, 6, text);
        r = bk_store_done(s, st);
    }
    free(text);
    return r;
}

json_t *bk_store_events(struct bk_store *s, int64_t since, int64_t until,
                        const char *user, const char *pool, int limit)
{
    sqlite3_stmt *st = bk_store_stmt(s, BK_SQL_EVENTS);
    json_t *a = json_array();

    if (!st || !a) {
        json_decref(a);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, since);
    sqlite3_bind_int64(st, 3, until);
    sqlite3_bind_int64(st, 4, until);
    bk_store_bind_text(st, 5, user);
    bk_store_bind_text(st, 6, user);
    bk_store_bind_text(st, 7, pool);
    bk_store_bind_text(st, 8, pool);
    sqlite3_bind_int(st, 9, limit);
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *detail =
            json_loads((const char *)sqlite3_column_text(st, 6), 0, NULL);

        json_array_append_new(
            a, json_pack("{sI sI ss ss ss ss so}", "id",
                         (json_int_t)sqlite3_column_int64(st, 0), "time",
                         (json_int_t)sqlite3_column_int64(st, 1), "kind",
                         (const char *)sqlite3_column_text(st, 2), "user",
                         (const char *)sqlite3_column_text(st, 3), "pool",
                         (const char *)sqlite3_column_text(st, 4), "desktop",
                         (const char *)sqlite3_column_text(st, 5), "detail",
                         detail ? detail : json_object()));
    }
    sqlite3_reset(st);
    return a;
}
