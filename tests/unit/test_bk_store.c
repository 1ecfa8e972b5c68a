/*
 * Unit tests of the broker's store (broker/bk_store.h) on a real SQLite
 * file: the schema and its version, pools, desktops and their state
 * machine, the launch decision, sessions, one-time tickets, the audit log,
 * and what a process killed in the middle of a transaction leaves behind.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bk_pool.h"
#include "bk_store.h"
#include "tsguest.h"

/* One folder per test case run, made and removed by the parent process
 * (unchecked fixture), so a failed test (whose forked child exits before
 * its teardown) leaves nothing behind in /tmp. */
static char root[64];
static char db[160];
static struct bk_store *st;

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void root_make(void)
{
    snprintf(root, sizeof(root), "/tmp/bk_store_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void root_remove(void)
{
    if (root[0])
        nftw(root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    root[0] = '\0';
}

static void setup(void)
{
    char dir[96], err[256];

    snprintf(dir, sizeof(dir), "%s/XXXXXX", root);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/deskpool.db", dir);
    ck_assert_msg(bk_store_open(&st, db, err, sizeof(err)) == 0, "%s", err);
}

static void teardown(void)
{
    bk_store_close(st);
    st = NULL;
}

/* --- helpers -------------------------------------------------------------- */

/* Complete settings from an admin's JSON, as the API stores them. */
static json_t *settings(const char *text)
{
    json_error_t jerr;
    json_t *in = json_loads(text, 0, &jerr), *out;
    char err[256];

    ck_assert_msg(in != NULL, "bad test JSON: %s", jerr.text);
    out = bk_pool_validate(in, NULL, err, sizeof(err));
    ck_assert_msg(out != NULL, "%s", err);
    json_decref(in);
    return out;
}

static void pool_create(const char *name, const char *text)
{
    json_t *p = settings(text);

    ck_assert_int_eq(bk_store_pool_put(st, name, p, 1), 0);
    json_decref(p);
}

static int pool_update(const char *name, const char *text)
{
    json_t *p = settings(text);
    int r = bk_store_pool_put(st, name, p, 0);

    json_decref(p);
    return r;
}

static json_int_t pool_int(const char *name, const char *key)
{
    json_t *p = bk_store_pool_get(st, name);
    json_int_t v;

    ck_assert_msg(p != NULL, "pool %s missing", name);
    ck_assert_msg(json_is_integer(json_object_get(p, key)), "%s", key);
    v = json_integer_value(json_object_get(p, key));
    json_decref(p);
    return v;
}

static int pool_bool(const char *name, const char *key)
{
    json_t *p = bk_store_pool_get(st, name);
    int v;

    ck_assert_msg(p != NULL, "pool %s missing", name);
    ck_assert_msg(json_is_boolean(json_object_get(p, key)), "%s", key);
    v = json_is_true(json_object_get(p, key));
    json_decref(p);
    return v;
}

static void desktop_add(const char *id, const char *pool, enum bk_state s)
{
    ck_assert_int_eq(bk_store_desktop_insert(st, id, pool, s, 1), 0);
}

static struct bk_desktop desktop(const char *id)
{
    struct bk_desktop d;

    ck_assert_msg(bk_store_desktop_get(st, id, &d) == 0, "desktop %s", id);
    return d;
}

/* PRAGMA user_version of the store file, read with SQLite itself. */
static int file_version(const char *path)
{
    sqlite3 *h;
    sqlite3_stmt *q;
    int v = -1;

    ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &q, NULL),
                     SQLITE_OK);
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(h);
    return v;
}

static void file_exec(const char *path, const char *sql)
{
    sqlite3 *h;

    ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
    ck_assert_msg(sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s",
                  sql, sqlite3_errmsg(h));
    sqlite3_close(h);
}

static void session_add(const char *hash, const char *user, int64_t created,
                        int64_t last_seen)
{
    struct bk_session ss = {
        .admin = 0, .created = created, .last_seen = last_seen};

    snprintf(ss.user, sizeof(ss.user), "%s", user);
    snprintf(ss.csrf, sizeof(ss.csrf), "csrf-%s", hash);
    ss.groups = json_pack("[s]", "staff");
    ck_assert_int_eq(bk_store_session_put(st, hash, &ss, "192.0.2.7"), 0);
    json_decref(ss.groups);
}

/* --- schema --------------------------------------------------------------- */

START_TEST(open_creates_and_migrates)
{
    static const char *const tables[] = {"pools", "desktops", "sessions",
                                         "tickets", "events"};
    char sql[128], err[256];
    sqlite3 *h;
    int v;
    size_t i;

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    bk_store_close(st);
    st = NULL;

    v = file_version(db);
    ck_assert_int_ge(v, 1);
    ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
    for (i = 0; i < sizeof(tables) / sizeof(*tables); i++) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
        ck_assert_msg(sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK,
                      "table %s: %s", tables[i], sqlite3_errmsg(h));
    }
    sqlite3_close(h);

    /* Reopening an up-to-date store changes nothing and keeps the data. */
    ck_assert_msg(bk_store_open(&st, db, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(file_version(db), v);
    ck_assert_int_eq(pool_int("p", "image_gen"), 1);

    /* v is exactly the number of migrations this broker knows: it opens a
     * store at v (above) and refuses one at v + 1 (below). */
    bk_store_close(st);
    st = NULL;
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
    file_exec(db, sql);
    err[0] = '\0';
    ck_assert_int_eq(bk_store_open(&st, db, err, sizeof(err)), -EPROTO);
    ck_assert_ptr_null(st);
    ck_assert_msg(err[0] != '\0', "no reason given");
    /* A newer store is left as it is for the newer broker. */
    ck_assert_int_eq(file_version(db), v + 1);
}
END_TEST

/* The store is the broker's secrets (tickets, lockouts, the audit log):
 * 0600 whatever the umask, its WAL files too, and an existing store with
 * a wider mode is narrowed. */
START_TEST(store_files_are_private)
{
    struct bk_store *other = NULL;
    char path[200], err[256];
    struct stat sb;
    mode_t old = umask(022);

    ck_assert_int_eq(stat(db, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s-wal", db);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0600);
    bk_store_close(st);
    st = NULL;
    ck_assert_int_eq(chmod(db, 0644), 0);
    ck_assert_msg(bk_store_open(&other, db, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(stat(db, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0600);
    st = other;
    umask(old);
}
END_TEST

/* Whether another process sees a lock on the database file's SQLite
 * SHARED byte range: an open WAL-mode connection holds one for its whole
 * life, so that a closing connection knows it is not the last. Asked
 * from a child: a process never sees its own POSIX locks. */
static int db_locked_for_others(void)
{
    pid_t pid = fork();
    int status;

    if (pid == 0) {
        struct flock fl = {.l_type = F_WRLCK,
                           .l_whence = SEEK_SET,
                           .l_start = 0x40000002, /* SQLite's SHARED_FIRST */
                           .l_len = 510};
        int fd = open(db, O_RDWR);

        _exit(fd >= 0 && fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK
                  ? 0
                  : 1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Another store connection of this process opening the same file must
 * not drop the first one's POSIX locks (closing any descriptor of a file
 * does): else an admin's sqlite3 shell, closing as the "last" connection,
 * checkpoints and deletes the WAL under the broker. */
START_TEST(a_second_connection_keeps_the_first_ones_locks)
{
    struct bk_store *other = NULL;
    char err[256];
    json_t *pools;

    pool_create("p", "{\"golden\":\"/img/p.qcow2\"}");
    ck_assert(db_locked_for_others());
    ck_assert_msg(bk_store_open(&other, db, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(db_locked_for_others(), "opening a second connection "
                                          "dropped the first one's locks");
    pool_create("q", "{\"golden\":\"/img/q.qcow2\"}");
    pools = bk_store_pool_list(other);
    ck_assert_uint_eq(json_array_size(pools), 2);
    json_decref(pools);
    bk_store_close(other);
}
END_TEST

START_TEST(open_fails_cleanly)
{
    struct bk_store *other = NULL;
    char err[256] = "";

    ck_assert_int_lt(
        bk_store_open(&other, "/nonexistent/dir/deskpool.db", err, sizeof(err)),
        0);
    ck_assert_ptr_null(other);
    ck_assert_msg(strstr(err, "/nonexistent/dir/deskpool.db"), "%s", err);
}
END_TEST

START_TEST(state_names)
{
    int i;

    for (i = 0; i < BK_STATE_COUNT; i++)
        ck_assert_int_eq(bk_state_parse(bk_state_name((enum bk_state)i)), i);
    ck_assert_str_eq(bk_state_name(BK_READY), "READY");
    ck_assert_str_eq(bk_state_name(BK_LOGGED_OFF), "LOGGED_OFF");
    ck_assert_int_eq(bk_state_parse("ready"), -1);
    ck_assert_int_eq(bk_state_parse(NULL), -1);
    ck_assert(bk_state_in_use(BK_ASSIGNED));
    ck_assert(bk_state_in_use(BK_CONNECTED));
    ck_assert(bk_state_in_use(BK_DISCONNECTED));
    ck_assert(!bk_state_in_use(BK_READY));
    ck_assert(!bk_state_in_use(BK_LOGGED_OFF));
}
END_TEST

/* --- pools ---------------------------------------------------------------- */

START_TEST(pools_put_get_list)
{
    json_t *p, *list;

    pool_create("beta", "{\"golden\":\"/img/b.qcow2\",\"max\":4}");
    pool_create("alpha", "{\"golden\":\"/img/a.qcow2\"}");

    p = settings("{\"golden\":\"/img/other.qcow2\"}");
    ck_assert_int_eq(bk_store_pool_put(st, "alpha", p, 1), -EEXIST);
    ck_assert_int_eq(bk_store_pool_put(st, "gamma", p, 0), -ENOENT);
    json_decref(p);
    ck_assert_ptr_null(bk_store_pool_get(st, "gamma"));

    p = bk_store_pool_get(st, "beta");
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(json_string_value(json_object_get(p, "name")), "beta");
    ck_assert_str_eq(json_string_value(json_object_get(p, "golden")),
                     "/img/b.qcow2");
    ck_assert_int_eq(json_integer_value(json_object_get(p, "max")), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "image_gen")), 1);
    ck_assert(json_is_false(json_object_get(p, "restrained")));
    ck_assert_int_eq(json_integer_value(json_object_get(p, "errors")), 0);
    ck_assert_str_eq(json_string_value(json_object_get(p, "last_error")), "");
    ck_assert(json_is_false(json_object_get(p, "deleting")));
    json_decref(p);

    /* The failed create did not overwrite alpha. */
    p = bk_store_pool_get(st, "alpha");
    ck_assert_str_eq(json_string_value(json_object_get(p, "golden")),
                     "/img/a.qcow2");
    json_decref(p);

    list = bk_store_pool_list(st);
    ck_assert_ptr_nonnull(list);
    ck_assert_uint_eq(json_array_size(list), 2);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(list, 0), "name")),
        "alpha");
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(list, 1), "name")),
        "beta");
    json_decref(list);
}
END_TEST

START_TEST(image_change_bumps_generation)
{
    json_t *p;

    pool_create("p", "{\"golden\":\"/img/g1.qcow2\"}");
    ck_assert_int_eq(pool_int("p", "image_gen"), 1);

    /* Sizes are not the image: existing desktops stay. */
    ck_assert_int_eq(pool_update("p", "{\"golden\":\"/img/g1.qcow2\","
                                      "\"min\":2,\"max\":5,\"memory_mb\":512}"),
                     0);
    ck_assert_int_eq(pool_int("p", "image_gen"), 1);
    ck_assert_int_eq(pool_int("p", "min"), 2);
    ck_assert_int_eq(pool_int("p", "memory_mb"), 512);

    ck_assert_int_eq(pool_update("p", "{\"golden\":\"/img/g2.qcow2\"}"), 0);
    ck_assert_int_eq(pool_int("p", "image_gen"), 2);
    p = bk_store_pool_get(st, "p");
    ck_assert_str_eq(json_string_value(json_object_get(p, "golden")),
                     "/img/g2.qcow2");
    json_decref(p);

    ck_assert_int_eq(pool_update("p", "{\"golden\":\"/img/g2.qcow2\","
                                      "\"kernel\":\"/boot/vmlinuz\"}"),
                     0);
    ck_assert_int_eq(pool_int("p", "image_gen"), 3);
    ck_assert_int_eq(pool_update("p", "{\"golden\":\"/img/g2.qcow2\","
                                      "\"kernel\":\"/boot/vmlinuz\","
                                      "\"initrd\":\"/boot/initrd.img\"}"),
                     0);
    ck_assert_int_eq(pool_int("p", "image_gen"), 4);
    ck_assert_int_eq(pool_update("p", "{\"golden\":\"/img/g2.qcow2\","
                                      "\"kernel\":\"/boot/vmlinuz\","
                                      "\"initrd\":\"/boot/initrd.img\","
                                      "\"cmdline\":\"console=ttyS0\"}"),
                     0);
    ck_assert_int_eq(pool_int("p", "image_gen"), 5);
    /* The same image again is no change. */
    ck_assert_int_eq(pool_update("p", "{\"golden\":\"/img/g2.qcow2\","
                                      "\"kernel\":\"/boot/vmlinuz\","
                                      "\"initrd\":\"/boot/initrd.img\","
                                      "\"cmdline\":\"console=ttyS0\","
                                      "\"description\":\"new text\"}"),
                     0);
    ck_assert_int_eq(pool_int("p", "image_gen"), 5);
}
END_TEST

START_TEST(pool_delete_waits_for_desktops)
{
    struct bk_desktop d;

    pool_create("busy", "{\"golden\":\"/img/g.qcow2\"}");
    pool_create("empty", "{\"golden\":\"/img/g.qcow2\"}");
    desktop_add("busy-1", "busy", BK_READY);

    /* No desktops: the row goes at once. */
    ck_assert_int_eq(bk_store_pool_delete(st, "empty"), 0);
    ck_assert_ptr_null(bk_store_pool_get(st, "empty"));
    ck_assert_int_eq(bk_store_pool_delete(st, "empty"), -ENOENT);
    ck_assert_int_eq(bk_store_pool_delete(st, "nosuch"), -ENOENT);

    /* With a desktop: marked, kept, and no more launches. */
    ck_assert_int_eq(bk_store_pool_delete(st, "busy"), 0);
    ck_assert(pool_bool("busy", "deleting"));
    ck_assert_int_eq(bk_store_assign(st, "busy", "alice", "vnc", &d), -EBUSY);
    ck_assert_str_eq(desktop("busy-1").user, "");

    /* Its last desktop gone, the next delete removes it. */
    ck_assert_int_eq(bk_store_desktop_remove(st, "busy-1"), 0);
    ck_assert_int_eq(bk_store_pool_delete(st, "busy"), 0);
    ck_assert_ptr_null(bk_store_pool_get(st, "busy"));
}
END_TEST

START_TEST(pool_result_restrains_after_limit)
{
    json_t *p;

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    ck_assert_int_eq(bk_store_pool_result(st, "p", "qemu failed", 3), 0);
    ck_assert_int_eq(bk_store_pool_result(st, "p", "disk full", 3), 0);
    ck_assert_int_eq(pool_int("p", "errors"), 2);
    ck_assert(!pool_bool("p", "restrained"));
    p = bk_store_pool_get(st, "p");
    ck_assert_str_eq(json_string_value(json_object_get(p, "last_error")),
                     "disk full");
    json_decref(p);

    /* A success starts the count again. */
    ck_assert_int_eq(bk_store_pool_result(st, "p", NULL, 0), 0);
    ck_assert_int_eq(pool_int("p", "errors"), 0);
    ck_assert_int_eq(bk_store_pool_result(st, "p", "e1", 3), 0);
    ck_assert_int_eq(bk_store_pool_result(st, "p", "e2", 3), 0);
    ck_assert(!pool_bool("p", "restrained"));
    ck_assert_int_eq(bk_store_pool_result(st, "p", "e3", 3), 0);
    ck_assert(pool_bool("p", "restrained"));
    ck_assert_int_eq(pool_int("p", "errors"), 3);

    ck_assert_int_eq(bk_store_pool_unrestrain(st, "p"), 0);
    ck_assert(!pool_bool("p", "restrained"));
    ck_assert_int_eq(pool_int("p", "errors"), 0);
}
END_TEST

/* --- desktops ------------------------------------------------------------- */

START_TEST(desktops_insert_get_state)
{
    struct bk_desktop d;

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    ck_assert_int_eq(
        bk_store_desktop_insert(st, "p-1", "p", BK_PROVISIONING, 7), 0);
    ck_assert_int_eq(bk_store_desktop_insert(st, "p-1", "p", BK_READY, 7),
                     -EEXIST);
    /* A desktop needs its pool. */
    ck_assert_int_lt(bk_store_desktop_insert(st, "x-1", "nosuch", BK_READY, 1),
                     0);
    ck_assert_int_eq(bk_store_desktop_get(st, "x-1", &d), -ENOENT);

    d = desktop("p-1");
    ck_assert_str_eq(d.id, "p-1");
    ck_assert_str_eq(d.pool, "p");
    ck_assert_int_eq(d.state, BK_PROVISIONING);
    ck_assert_str_eq(d.user, "");
    ck_assert_int_eq(d.image_gen, 7);
    ck_assert_int_gt(d.created, 0);
    ck_assert_int_eq(d.assigned_at, 0);

    /* from must match the current state. */
    ck_assert_int_eq(
        bk_store_desktop_set_state(st, "p-1", BK_BOOTING, BK_READY, NULL),
        -EBUSY);
    ck_assert_int_eq(desktop("p-1").state, BK_PROVISIONING);
    ck_assert_int_eq(bk_store_desktop_set_state(st, "p-1", BK_PROVISIONING,
                                                BK_BOOTING, NULL),
                     0);
    ck_assert_int_eq(desktop("p-1").state, BK_BOOTING);
    ck_assert_int_eq(
        bk_store_desktop_set_state(st, "nosuch", BK_BOOTING, BK_READY, NULL),
        -ENOENT);
    ck_assert_int_eq(
        bk_store_desktop_set_state(st, "nosuch", -1, BK_READY, NULL), -ENOENT);

    /* The error text is kept for ERROR only. */
    ck_assert_int_eq(
        bk_store_desktop_set_state(st, "p-1", -1, BK_ERROR, "boot timed out"),
        0);
    d = desktop("p-1");
    ck_assert_int_eq(d.state, BK_ERROR);
    ck_assert_str_eq(d.error, "boot timed out");
    ck_assert_int_eq(
        bk_store_desktop_set_state(st, "p-1", -1, BK_READY, "ignored"), 0);
    d = desktop("p-1");
    ck_assert_int_eq(d.state, BK_READY);
    ck_assert_str_eq(d.error, "");

    ck_assert_int_eq(bk_store_desktop_set_gen(st, "p-1", 8), 0);
    ck_assert_int_eq(desktop("p-1").image_gen, 8);
    ck_assert_int_eq(bk_store_desktop_remove(st, "p-1"), 0);
    ck_assert_int_eq(bk_store_desktop_get(st, "p-1", &d), -ENOENT);
}
END_TEST

START_TEST(desktops_list_and_count)
{
    struct bk_desktop d, *v = NULL;
    int counts[BK_STATE_COUNT];
    size_t n = 0;

    pool_create("a", "{\"golden\":\"/img/g.qcow2\"}");
    pool_create("b", "{\"golden\":\"/img/g.qcow2\"}");
    desktop_add("a-2", "a", BK_READY);
    desktop_add("a-1", "a", BK_READY);
    desktop_add("a-3", "a", BK_BOOTING);
    desktop_add("b-1", "b", BK_READY);
    ck_assert_int_eq(bk_store_assign(st, "b", "bob", "vnc", &d), 0);
    ck_assert_str_eq(d.id, "b-1");

    ck_assert_int_eq(bk_store_desktop_list(st, NULL, NULL, &v, &n), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(v[0].id, "a-1"); /* by id */
    ck_assert_str_eq(v[3].id, "b-1");
    free(v);

    ck_assert_int_eq(bk_store_desktop_list(st, "a", NULL, &v, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(v[0].id, "a-1");
    ck_assert_str_eq(v[1].id, "a-2");
    ck_assert_str_eq(v[2].id, "a-3");
    ck_assert_int_eq(v[2].state, BK_BOOTING);
    free(v);

    ck_assert_int_eq(bk_store_desktop_list(st, NULL, "bob", &v, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0].id, "b-1");
    ck_assert_str_eq(v[0].user, "bob");
    free(v);

    v = NULL;
    ck_assert_int_eq(bk_store_desktop_list(st, "a", "bob", &v, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(v);

    ck_assert_int_eq(bk_store_desktop_counts(st, "a", counts), 0);
    ck_assert_int_eq(counts[BK_READY], 2);
    ck_assert_int_eq(counts[BK_BOOTING], 1);
    ck_assert_int_eq(counts[BK_ASSIGNED], 0);
    ck_assert_int_eq(bk_store_desktop_counts(st, "b", counts), 0);
    ck_assert_int_eq(counts[BK_ASSIGNED], 1);
    ck_assert_int_eq(counts[BK_READY], 0);
    ck_assert_int_eq(bk_store_desktop_counts(st, "nosuch", counts), 0);
    ck_assert_int_eq(counts[BK_READY], 0);
}
END_TEST

/* bk_store.h: "Leaving the in-use states of a floating pool clears the
 * user." */
START_TEST(floating_logoff_clears_user)
{
    struct bk_desktop d;

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    desktop_add("p-1", "p", BK_READY);
    ck_assert_int_eq(bk_store_assign(st, "p", "alice", "vnc", &d), 0);
    ck_assert_int_eq(
        bk_store_desktop_set_state(st, "p-1", BK_ASSIGNED, BK_CONNECTED, NULL),
        0);
    /* Still in use: still hers. */
    ck_assert_str_eq(desktop("p-1").user, "alice");
    ck_assert_int_eq(bk_store_desktop_set_state(st, "p-1", BK_CONNECTED,
                                                BK_LOGGED_OFF, NULL),
                     0);
    ck_assert_msg(desktop("p-1").user[0] == '\0',
                  "a logged-off desktop of a floating pool still belongs to "
                  "\"%s\"",
                  desktop("p-1").user);
}
END_TEST

/* What that costs a user: after logging off a floating desktop, her next
 * launch waits for the old desktop's refresh although a spare is READY. */
START_TEST(floating_relaunch_after_logoff_gets_spare)
{
    struct bk_desktop d;

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    desktop_add("p-1", "p", BK_READY);
    ck_assert_int_eq(bk_store_assign(st, "p", "alice", "vnc", &d), 0);
    ck_assert_str_eq(d.id, "p-1");
    ck_assert_int_eq(
        bk_store_desktop_set_state(st, "p-1", BK_ASSIGNED, BK_LOGGED_OFF, NULL),
        0);
    desktop_add("p-2", "p", BK_READY);
    ck_assert_int_eq(bk_store_assign(st, "p", "alice", "vnc", &d), 0);
    ck_assert_str_eq(d.id, "p-2");
    ck_assert_int_eq(d.state, BK_ASSIGNED);
}
END_TEST

/* The address of the client looking at a desktop: set when its session
 * connects, gone when it ends, when the desktop leaves its user or is
 * assigned again. */
START_TEST(client_address_follows_the_session)
{
    struct bk_desktop d;

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    pool_create("q", "{\"golden\":\"/img/g.qcow2\",\"type\":\"dedicated\"}");
    desktop_add("p-1", "p", BK_READY);
    ck_assert_str_eq(desktop("p-1").client, "");
    ck_assert_int_eq(bk_store_assign(st, "p", "alice", "browser", &d), 0);
    ck_assert_int_eq(
        bk_store_desktop_set_state(st, "p-1", BK_ASSIGNED, BK_CONNECTED, NULL),
        0);
    ck_assert_int_eq(bk_store_desktop_set_client(st, "p-1", "10.1.2.3", 1), 0);
    ck_assert_str_eq(desktop("p-1").client, "10.1.2.3");
    /* a second client took over; the first one's end leaves it */
    ck_assert_int_eq(bk_store_desktop_set_client(st, "p-1", "10.9.9.9", 1), 0);
    ck_assert_int_eq(bk_store_desktop_set_client(st, "p-1", "10.1.2.3", 0), 0);
    ck_assert_str_eq(desktop("p-1").client, "10.9.9.9");
    ck_assert_int_eq(bk_store_desktop_set_client(st, "p-1", "10.9.9.9", 0), 0);
    ck_assert_str_eq(desktop("p-1").client, "");
    /* logged off (then refreshed): nobody is connected */
    ck_assert_int_eq(bk_store_desktop_set_client(st, "p-1", "10.1.2.3", 1), 0);
    ck_assert_int_eq(bk_store_desktop_set_state(st, "p-1", BK_CONNECTED,
                                                BK_LOGGED_OFF, NULL),
                     0);
    ck_assert_str_eq(desktop("p-1").client, "");
    /* a refresh's unassign, and a new assignment, clear it too */
    ck_assert_int_eq(bk_store_desktop_set_client(st, "p-1", "10.1.2.3", 1), 0);
    ck_assert_int_eq(bk_store_desktop_unassign(st, "p-1"), 0);
    ck_assert_str_eq(desktop("p-1").client, "");
    desktop_add("q-1", "q", BK_READY);
    ck_assert_int_eq(bk_store_desktop_set_client(st, "q-1", "10.1.2.3", 1), 0);
    ck_assert_int_eq(bk_store_assign(st, "q", "bob", "browser", &d), 0);
    ck_assert_str_eq(d.client, "");
    ck_assert_str_eq(desktop("q-1").client, "");
    /* a dedicated desktop keeps its user but not the client */
    ck_assert_int_eq(bk_store_desktop_set_client(st, "q-1", "10.1.2.3", 1), 0);
    ck_assert_int_eq(
        bk_store_desktop_set_state(st, "q-1", BK_ASSIGNED, BK_LOGGED_OFF, NULL),
        0);
    ck_assert_str_eq(desktop("q-1").user, "bob");
    ck_assert_str_eq(desktop("q-1").client, "");
    ck_assert_int_eq(bk_store_desktop_set_client(st, "nosuch", "x", 1),
                     -ENOENT);
}
END_TEST

/* A store of an older broker (version 2: no client column, nor how
 * desktops were made) gains them, and keeps its desktops. */
START_TEST(version_2_store_gains_the_client_column)
{
    char err[256];

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    desktop_add("p-1", "p", BK_READY);
    bk_store_close(st);
    st = NULL;
    ck_assert_int_eq(file_version(db), 4);
    file_exec(db, "ALTER TABLE desktops DROP COLUMN client");
    file_exec(db, "ALTER TABLE desktops DROP COLUMN provisioning");
    file_exec(db, "ALTER TABLE desktops DROP COLUMN personalised");
    file_exec(db, "PRAGMA user_version = 2");
    ck_assert_msg(bk_store_open(&st, db, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(file_version(db), 4);
    ck_assert_int_eq(desktop("p-1").state, BK_READY);
    ck_assert_str_eq(desktop("p-1").client, "");
    ck_assert_int_eq(bk_store_desktop_set_client(st, "p-1", "10.1.2.3", 1), 0);
    ck_assert_str_eq(desktop("p-1").client, "10.1.2.3");
    /* made by booting, not personalised, until the manager says more */
    ck_assert_str_eq(desktop("p-1").provisioning, "boot");
    ck_assert_int_eq(desktop("p-1").personalised, 0);
    ck_assert_int_eq(bk_store_desktop_set_made(st, "p-1", "instant", 1), 0);
    ck_assert_str_eq(desktop("p-1").provisioning, "instant");
    ck_assert_int_eq(desktop("p-1").personalised, 1);
    ck_assert_int_eq(bk_store_desktop_set_made(st, "nosuch", "boot", 0),
                     -ENOENT);
}
END_TEST

/* --- launch --------------------------------------------------------------- */

START_TEST(assign_takes_a_spare)
{
    struct bk_desktop d, again;
    int64_t before = (int64_t)time(NULL);

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    desktop_add("p-1", "p", BK_READY);
    ck_assert_int_eq(bk_store_assign(st, "p", "alice", "vnc", &d), 0);
    ck_assert_str_eq(d.id, "p-1");
    ck_assert_str_eq(d.pool, "p");
    ck_assert_int_eq(d.state, BK_ASSIGNED);
    ck_assert_str_eq(d.user, "alice");
    ck_assert_str_eq(d.protocol, "vnc");

    /* The store says the same. */
    again = desktop("p-1");
    ck_assert_int_eq(again.state, BK_ASSIGNED);
    ck_assert_str_eq(again.user, "alice");
    ck_assert_str_eq(again.protocol, "vnc");
    ck_assert_int_ge(again.assigned_at, before);

    /* Launching again (another protocol) gives her the same desktop. */
    ck_assert_int_eq(
        bk_store_desktop_set_state(st, "p-1", BK_ASSIGNED, BK_CONNECTED, NULL),
        0);
    ck_assert_int_eq(bk_store_assign(st, "p", "alice", "rdp", &d), 0);
    ck_assert_str_eq(d.id, "p-1");
    ck_assert_int_eq(d.state, BK_CONNECTED);
    ck_assert_str_eq(d.protocol, "rdp");
    ck_assert_str_eq(desktop("p-1").protocol, "rdp");
}
END_TEST

START_TEST(assign_other_users_get_other_spares)
{
    struct bk_desktop a, b, c;

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    desktop_add("p-1", "p", BK_READY);
    desktop_add("p-2", "p", BK_READY);
    desktop_add("p-3", "p", BK_BOOTING); /* not ready: not a spare */

    ck_assert_int_eq(bk_store_assign(st, "p", "alice", "vnc", &a), 0);
    ck_assert_int_eq(bk_store_assign(st, "p", "bob", "vnc", &b), 0);
    ck_assert_str_ne(a.id, b.id);
    ck_assert_str_eq(b.user, "bob");
    ck_assert_str_eq(desktop(a.id).user, "alice");
    ck_assert_str_eq(desktop(b.id).user, "bob");

    ck_assert_int_eq(bk_store_assign(st, "p", "carol", "vnc", &c), -EAGAIN);
    ck_assert_str_eq(desktop("p-3").user, "");
    ck_assert_int_eq(desktop("p-3").state, BK_BOOTING);
    /* alice still has hers. */
    ck_assert_int_eq(bk_store_assign(st, "p", "alice", "vnc", &c), 0);
    ck_assert_str_eq(c.id, a.id);
}
END_TEST

START_TEST(assign_refused_pools)
{
    struct bk_desktop d;

    pool_create("p", "{\"golden\":\"/img/g.qcow2\",\"maintenance\":true}");
    desktop_add("p-1", "p", BK_READY);
    ck_assert_int_eq(bk_store_assign(st, "p", "alice", "vnc", &d), -EBUSY);
    ck_assert_str_eq(desktop("p-1").user, "");
    ck_assert_int_eq(desktop("p-1").state, BK_READY);
    ck_assert_int_eq(bk_store_assign(st, "nosuch", "alice", "vnc", &d),
                     -ENOENT);

    /* Out of maintenance, the same desktop is launched. */
    ck_assert_int_eq(pool_update("p", "{\"golden\":\"/img/g.qcow2\"}"), 0);
    ck_assert_int_eq(bk_store_assign(st, "p", "alice", "vnc", &d), 0);
    ck_assert_str_eq(d.id, "p-1");
}
END_TEST

START_TEST(assign_dedicated_desktop_kept_for_its_user)
{
    struct bk_desktop d;

    pool_create("d", "{\"golden\":\"/img/g.qcow2\",\"type\":\"dedicated\"}");
    desktop_add("d-1", "d", BK_READY);
    ck_assert_int_eq(bk_store_assign(st, "d", "alice", "vnc", &d), 0);
    ck_assert_str_eq(d.id, "d-1");
    /* She logged off; the desktop was rebooted and is READY, still hers. */
    ck_assert_int_eq(
        bk_store_desktop_set_state(st, "d-1", BK_ASSIGNED, BK_LOGGED_OFF, NULL),
        0);
    ck_assert_int_eq(
        bk_store_desktop_set_state(st, "d-1", BK_LOGGED_OFF, BK_READY, NULL),
        0);
    ck_assert_str_eq(desktop("d-1").user, "alice");

    ck_assert_int_eq(bk_store_assign(st, "d", "bob", "vnc", &d), -EAGAIN);
    ck_assert_str_eq(desktop("d-1").user, "alice");

    ck_assert_int_eq(bk_store_assign(st, "d", "alice", "rdp", &d), 0);
    ck_assert_str_eq(d.id, "d-1");
    ck_assert_int_eq(d.state, BK_ASSIGNED);
    ck_assert_int_eq(desktop("d-1").state, BK_ASSIGNED);
    ck_assert_str_eq(desktop("d-1").protocol, "rdp");

    /* bob gets a new spare, not hers. */
    desktop_add("d-2", "d", BK_READY);
    ck_assert_int_eq(bk_store_assign(st, "d", "bob", "vnc", &d), 0);
    ck_assert_str_eq(d.id, "d-2");
}
END_TEST

/* --- transactions and crashes --------------------------------------------- */

START_TEST(caller_transactions)
{
    struct bk_desktop d;
    json_t *p = settings("{\"golden\":\"/img/g.qcow2\"}");

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    ck_assert_int_eq(bk_store_begin(st), 0);
    ck_assert_int_eq(bk_store_begin(st), -EBUSY);
    desktop_add("p-1", "p", BK_READY);
    /* Calls that open their own transaction join the caller's. */
    ck_assert_int_eq(bk_store_pool_put(st, "q", p, 1), 0);
    ck_assert_int_eq(bk_store_assign(st, "p", "alice", "vnc", &d), 0);
    bk_store_rollback(st);
    ck_assert_int_eq(bk_store_desktop_get(st, "p-1", &d), -ENOENT);
    ck_assert_ptr_null(bk_store_pool_get(st, "q"));

    ck_assert_int_eq(bk_store_begin(st), 0);
    desktop_add("p-2", "p", BK_READY);
    ck_assert_int_eq(bk_store_pool_put(st, "q", p, 1), 0);
    ck_assert_int_eq(bk_store_commit(st), 0);
    ck_assert_int_eq(desktop("p-2").state, BK_READY);
    ck_assert_int_eq(pool_int("q", "image_gen"), 1);
    json_decref(p);
}
END_TEST

/* In a child: opens the store, inserts desktop id in a transaction, commits
 * if asked, then dies as told. Returns the child's wait status. */
static int child_insert(const char *id, int commit, int how)
{
    pid_t pid = fork();
    int status = 0;

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct bk_store *c;
        char err[256];

        /* No Check calls here: this process only dies. */
        if (bk_store_open(&c, db, err, sizeof(err)) || bk_store_begin(c) ||
            bk_store_desktop_insert(c, id, "p", BK_READY, 1) ||
            (commit && bk_store_commit(c)))
            _exit(3);
        if (how == SIGKILL)
            raise(SIGKILL);
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

START_TEST(killed_writer_leaves_old_or_new_state)
{
    struct bk_desktop d;
    char err[256];
    int status;

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    bk_store_close(st);
    st = NULL;

    status = child_insert("killed", 0, SIGKILL);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    status = child_insert("exited", 0, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    status = child_insert("committed", 1, SIGKILL);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    ck_assert_msg(bk_store_open(&st, db, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(bk_store_desktop_get(st, "killed", &d), -ENOENT);
    ck_assert_int_eq(bk_store_desktop_get(st, "exited", &d), -ENOENT);
    ck_assert_int_eq(desktop("committed").state, BK_READY);
    /* The dead writers' locks are gone: this process can write. */
    ck_assert_int_eq(bk_store_begin(st), 0);
    desktop_add("after", "p", BK_READY);
    ck_assert_int_eq(bk_store_commit(st), 0);
    ck_assert_int_eq(desktop("after").state, BK_READY);
}
END_TEST

/* --- sessions ------------------------------------------------------------- */

START_TEST(sessions_put_get_delete)
{
    struct bk_session ss = {.admin = 1};
    int64_t now = (int64_t)time(NULL);

    snprintf(ss.user, sizeof(ss.user), "alice");
    snprintf(ss.csrf, sizeof(ss.csrf), "c5rf");
    ss.groups = json_pack("[ss]", "staff", "deskpool-admins");
    ss.created = ss.last_seen = now;
    ck_assert_int_eq(bk_store_session_put(st, "h1", &ss, "192.0.2.1"), 0);
    ck_assert_int_eq(bk_store_session_put(st, "h1", &ss, "192.0.2.1"), -EEXIST);
    json_decref(ss.groups);

    ck_assert_int_eq(bk_store_session_get(st, "h1", 1800, 43200, &ss), 0);
    ck_assert_str_eq(ss.user, "alice");
    ck_assert_int_eq(ss.admin, 1);
    ck_assert_str_eq(ss.csrf, "c5rf");
    ck_assert_int_eq(ss.created, now);
    ck_assert(json_is_array(ss.groups));
    ck_assert_uint_eq(json_array_size(ss.groups), 2);
    ck_assert_str_eq(json_string_value(json_array_get(ss.groups, 1)),
                     "deskpool-admins");
    json_decref(ss.groups);

    ck_assert_int_eq(bk_store_session_get(st, "nosuch", 1800, 43200, &ss),
                     -ENOENT);
    ck_assert_int_eq(bk_store_session_delete(st, "h1"), 0);
    ck_assert_int_eq(bk_store_session_get(st, "h1", 1800, 43200, &ss), -ENOENT);
}
END_TEST

/* ss->groups may be left NULL by a caller (no groups); under
 * `make SANITIZE=1` LeakSanitizer also checks nothing is leaked then. */
START_TEST(session_without_groups)
{
    struct bk_session ss = {.admin = 0};

    snprintf(ss.user, sizeof(ss.user), "bob");
    ss.created = ss.last_seen = (int64_t)time(NULL);
    ck_assert_int_eq(bk_store_session_put(st, "h", &ss, "::1"), 0);
    ck_assert_int_eq(bk_store_session_get(st, "h", 1800, 43200, &ss), 0);
    ck_assert(json_is_array(ss.groups));
    ck_assert_uint_eq(json_array_size(ss.groups), 0);
    json_decref(ss.groups);
}
END_TEST

START_TEST(session_idle_and_absolute_expiry)
{
    struct bk_session ss;
    int64_t now = (int64_t)time(NULL);

    session_add("idle", "alice", now - 1000, now - 1000);
    session_add("old", "bob", now - 50000, now - 10);
    session_add("fresh", "carol", now - 10, now - 10);

    ck_assert_int_eq(bk_store_session_get(st, "idle", 600, 43200, &ss),
                     -ENOENT);
    /* Expired is gone, not just refused this once. */
    ck_assert_int_eq(bk_store_session_get(st, "idle", 86400, 86400, &ss),
                     -ENOENT);

    ck_assert_int_eq(bk_store_session_get(st, "old", 1800, 43200, &ss),
                     -ENOENT);
    ck_assert_int_eq(bk_store_session_get(st, "old", 86400, 86400, &ss),
                     -ENOENT);

    ck_assert_int_eq(bk_store_session_get(st, "fresh", 600, 43200, &ss), 0);
    ck_assert_str_eq(ss.user, "carol");
    json_decref(ss.groups);
}
END_TEST

START_TEST(session_use_is_remembered)
{
    struct bk_session ss;
    int64_t now = (int64_t)time(NULL);

    /* Used 5 minutes ago, idle limit 10 minutes: a use now must move
     * last_seen, or the session would die 5 minutes early. */
    session_add("h", "alice", now - 300, now - 300);
    ck_assert_int_eq(bk_store_session_get(st, "h", 600, 43200, &ss), 0);
    ck_assert_int_ge(ss.last_seen, now);
    json_decref(ss.groups);
    ck_assert_int_eq(bk_store_session_get(st, "h", 600, 43200, &ss), 0);
    ck_assert_int_ge(ss.last_seen, now);
    ck_assert_int_eq(ss.created, now - 300);
    json_decref(ss.groups);
    /* Had last_seen stayed 300 s old, this would drop the session. */
    ck_assert_int_eq(bk_store_session_expire(st, 250, 43200), 0);
}
END_TEST

START_TEST(session_expire_counts)
{
    struct bk_session ss;
    int64_t now = (int64_t)time(NULL);

    session_add("fresh", "a", now - 10, now - 10);
    session_add("idle", "b", now - 2000, now - 2000);
    session_add("old", "c", now - 50000, now - 5);
    session_add("both", "d", now - 50000, now - 40000);
    ck_assert_int_eq(bk_store_session_expire(st, 1800, 43200), 3);
    ck_assert_int_eq(bk_store_session_expire(st, 1800, 43200), 0);
    ck_assert_int_eq(bk_store_session_get(st, "fresh", 1800, 43200, &ss), 0);
    json_decref(ss.groups);
    ck_assert_int_eq(bk_store_session_get(st, "idle", 86400, 86400, &ss),
                     -ENOENT);
}
END_TEST

/* --- tickets -------------------------------------------------------------- */

START_TEST(tickets_redeemed_once)
{
    char user[BK_USER_MAX + 1] = "", desk[BK_NAME_MAX + 1] = "";
    int64_t now = (int64_t)time(NULL);

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    desktop_add("p-1", "p", BK_ASSIGNED);
    ck_assert_int_eq(
        bk_store_ticket_put(st, "t-ok", "alice", "p-1", "vnc", now + 60), 0);
    ck_assert_int_eq(
        bk_store_ticket_put(st, "t-rdp", "alice", "p-1", "rdp", now + 60), 0);
    ck_assert_int_eq(
        bk_store_ticket_put(st, "t-old", "alice", "p-1", "vnc", now - 5), 0);

    ck_assert_int_eq(bk_store_ticket_redeem(st, "t-ok", "vnc", user,
                                            sizeof(user), desk, sizeof(desk)),
                     0);
    ck_assert_str_eq(user, "alice");
    ck_assert_str_eq(desk, "p-1");
    ck_assert_int_eq(bk_store_ticket_redeem(st, "t-ok", "vnc", user,
                                            sizeof(user), desk, sizeof(desk)),
                     -EALREADY);

    ck_assert_int_eq(bk_store_ticket_redeem(st, "t-rdp", "browser", user,
                                            sizeof(user), desk, sizeof(desk)),
                     -EPROTO);
    ck_assert_int_eq(bk_store_ticket_redeem(st, "t-old", "vnc", user,
                                            sizeof(user), desk, sizeof(desk)),
                     -ETIMEDOUT);
    ck_assert_int_eq(bk_store_ticket_redeem(st, "nosuch", "vnc", user,
                                            sizeof(user), desk, sizeof(desk)),
                     -ENOENT);
    /* A refusal is not a failure of the store: the next call works. */
    ck_assert_int_eq(
        bk_store_ticket_put(st, "t-2", "bob", "p-1", "browser", now + 60), 0);
    ck_assert_int_eq(bk_store_ticket_redeem(st, "t-2", "browser", user,
                                            sizeof(user), desk, sizeof(desk)),
                     0);
    ck_assert_str_eq(user, "bob");
}
END_TEST

/* Purging forgets tickets that expired before the cut, and no others. */
START_TEST(expired_tickets_are_purged)
{
    char user[BK_USER_MAX + 1] = "", desk[BK_NAME_MAX + 1] = "";
    int64_t now = (int64_t)time(NULL);

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    desktop_add("p-1", "p", BK_ASSIGNED);
    ck_assert_int_eq(
        bk_store_ticket_put(st, "t-ancient", "alice", "p-1", "vnc", now - 900),
        0);
    ck_assert_int_eq(
        bk_store_ticket_put(st, "t-recent", "alice", "p-1", "vnc", now - 5), 0);
    ck_assert_int_eq(bk_store_ticket_purge(st, now - 600), 0);
    ck_assert_int_eq(bk_store_ticket_redeem(st, "t-ancient", "vnc", user,
                                            sizeof(user), desk, sizeof(desk)),
                     -ENOENT);
    ck_assert_int_eq(bk_store_ticket_redeem(st, "t-recent", "vnc", user,
                                            sizeof(user), desk, sizeof(desk)),
                     -ETIMEDOUT);
}
END_TEST

START_TEST(ticket_goes_with_its_desktop)
{
    char user[BK_USER_MAX + 1], desk[BK_NAME_MAX + 1];
    int64_t now = (int64_t)time(NULL);

    pool_create("p", "{\"golden\":\"/img/g.qcow2\"}");
    desktop_add("p-1", "p", BK_ASSIGNED);
    desktop_add("p-2", "p", BK_ASSIGNED);
    ck_assert_int_eq(
        bk_store_ticket_put(st, "t1", "alice", "p-1", "vnc", now + 60), 0);
    ck_assert_int_eq(
        bk_store_ticket_put(st, "t2", "bob", "p-2", "vnc", now + 60), 0);
    ck_assert_int_eq(bk_store_desktop_remove(st, "p-1"), 0);
    ck_assert_int_eq(bk_store_ticket_redeem(st, "t1", "vnc", user, sizeof(user),
                                            desk, sizeof(desk)),
                     -ENOENT);
    ck_assert_int_eq(bk_store_ticket_redeem(st, "t2", "vnc", user, sizeof(user),
                                            desk, sizeof(desk)),
                     0);
    ck_assert_str_eq(desk, "p-2");
    /* And none can be issued for a desktop that does not exist. */
    ck_assert_int_lt(
        bk_store_ticket_put(st, "t3", "alice", "p-1", "vnc", now + 60), 0);
}
END_TEST

/* --- events --------------------------------------------------------------- */

static const char *ev_str(const json_t *a, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(a, i), key));
}

static json_int_t ev_int(const json_t *a, size_t i, const char *key)
{
    return json_integer_value(json_object_get(json_array_get(a, i), key));
}

START_TEST(events_filtered_newest_first)
{
    json_t *a;

    ck_assert_int_eq(bk_store_event(st, "login", "alice", NULL, NULL,
                                    json_pack("{ss}", "addr", "192.0.2.1")),
                     0);
    ck_assert_int_eq(bk_store_event(st, "launch", "alice", "p", "p-1",
                                    json_pack("{ss}", "protocol", "vnc")),
                     0);
    /* detail may be NULL; under `make SANITIZE=1` LeakSanitizer also
     * checks that costs no memory. */
    ck_assert_int_eq(bk_store_event(st, "launch", "bob", "q", "q-1", NULL), 0);
    ck_assert_int_eq(
        bk_store_event(st, "pool-update", "admin", "p", NULL, json_object()),
        0);

    a = bk_store_events(st, 0, 0, NULL, NULL, 100);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(json_array_size(a), 4);
    ck_assert_str_eq(ev_str(a, 0, "kind"), "pool-update");
    ck_assert_str_eq(ev_str(a, 3, "kind"), "login");
    ck_assert_int_gt(ev_int(a, 0, "id"), ev_int(a, 1, "id"));
    ck_assert_int_ge(ev_int(a, 0, "time"), ev_int(a, 3, "time"));
    ck_assert_str_eq(ev_str(a, 3, "user"), "alice");
    ck_assert_str_eq(ev_str(a, 3, "pool"), "");
    ck_assert_str_eq(
        json_string_value(json_object_get(
            json_object_get(json_array_get(a, 3), "detail"), "addr")),
        "192.0.2.1");
    /* No detail is an empty object. */
    ck_assert(json_is_object(json_object_get(json_array_get(a, 1), "detail")));
    ck_assert_str_eq(ev_str(a, 1, "desktop"), "q-1");
    json_decref(a);

    a = bk_store_events(st, 0, 0, "alice", NULL, 100);
    ck_assert_uint_eq(json_array_size(a), 2);
    ck_assert_str_eq(ev_str(a, 0, "kind"), "launch");
    ck_assert_str_eq(ev_str(a, 1, "kind"), "login");
    json_decref(a);

    a = bk_store_events(st, 0, 0, NULL, "p", 100);
    ck_assert_uint_eq(json_array_size(a), 2);
    ck_assert_str_eq(ev_str(a, 0, "user"), "admin");
    ck_assert_str_eq(ev_str(a, 1, "desktop"), "p-1");
    json_decref(a);

    a = bk_store_events(st, 0, 0, "alice", "p", 100);
    ck_assert_uint_eq(json_array_size(a), 1);
    ck_assert_str_eq(ev_str(a, 0, "desktop"), "p-1");
    json_decref(a);

    a = bk_store_events(st, 0, 0, "nobody", NULL, 100);
    ck_assert_uint_eq(json_array_size(a), 0);
    json_decref(a);

    /* limit keeps the newest. */
    a = bk_store_events(st, 0, 0, NULL, NULL, 2);
    ck_assert_uint_eq(json_array_size(a), 2);
    ck_assert_str_eq(ev_str(a, 0, "kind"), "pool-update");
    ck_assert_str_eq(ev_str(a, 1, "user"), "bob");
    json_decref(a);
}
END_TEST

/* Appends an event and returns its time as the store reports it. */
static json_int_t event_at(const char *kind)
{
    json_t *a;
    json_int_t t;

    ck_assert_int_eq(
        bk_store_event(st, kind, "u", "p", NULL, json_pack("{si}", "n", 1)), 0);
    a = bk_store_events(st, 0, 0, NULL, NULL, 1);
    ck_assert_str_eq(ev_str(a, 0, "kind"), kind);
    t = ev_int(a, 0, "time");
    json_decref(a);
    return t;
}

/* Every event of a is within [since, until] (0: open) and none is kind. */
static void ev_all_within(const json_t *a, json_int_t since, json_int_t until,
                          const char *absent)
{
    size_t i;

    for (i = 0; i < json_array_size(a); i++) {
        ck_assert_int_ge(ev_int(a, i, "time"), since);
        if (until)
            ck_assert_int_le(ev_int(a, i, "time"), until);
        ck_assert_str_ne(ev_str(a, i, "kind"), absent);
    }
}

START_TEST(events_since_until)
{
    json_int_t t1, t2;
    json_t *a;
    int tries = 0;

    /* Events at two distinct times, in whatever unit the store keeps: the
     * filters are checked against the times it reports. Retries may add
     * more "second" events at t1; the filters must sort them by time. */
    t1 = event_at("first");
    do {
        usleep(20000);
        t2 = event_at("second");
    } while (t2 == t1 && ++tries < 200);
    ck_assert_int_gt(t2, t1);

    a = bk_store_events(st, t2, 0, NULL, NULL, 100);
    ck_assert_uint_ge(json_array_size(a), 1);
    ck_assert_int_eq(ev_int(a, 0, "time"), t2);
    ev_all_within(a, t2, 0, "first");
    json_decref(a);

    a = bk_store_events(st, 0, t1, NULL, NULL, 100);
    ck_assert_uint_ge(json_array_size(a), 1);
    ck_assert_str_eq(ev_str(a, json_array_size(a) - 1, "kind"), "first");
    ev_all_within(a, 0, t1, "none");
    json_decref(a);

    a = bk_store_events(st, t1, t2, NULL, NULL, 100);
    ck_assert_uint_eq(json_array_size(a), (size_t)tries + 2);
    json_decref(a);

    a = bk_store_events(st, t2 + 1, 0, NULL, NULL, 100);
    ck_assert_uint_eq(json_array_size(a), 0);
    json_decref(a);
}
END_TEST

static Suite *bk_store_suite(void)
{
    Suite *s = suite_create("bk-store");
    TCase *tc = tcase_create("core");

    tcase_add_unchecked_fixture(tc, root_make, root_remove);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, open_creates_and_migrates);
    tcase_add_test(tc, store_files_are_private);
    tcase_add_test(tc, a_second_connection_keeps_the_first_ones_locks);
    tcase_add_test(tc, open_fails_cleanly);
    tcase_add_test(tc, state_names);
    tcase_add_test(tc, pools_put_get_list);
    tcase_add_test(tc, image_change_bumps_generation);
    tcase_add_test(tc, pool_delete_waits_for_desktops);
    tcase_add_test(tc, pool_result_restrains_after_limit);
    tcase_add_test(tc, desktops_insert_get_state);
    tcase_add_test(tc, desktops_list_and_count);
    tcase_add_test(tc, floating_logoff_clears_user);
    tcase_add_test(tc, floating_relaunch_after_logoff_gets_spare);
    tcase_add_test(tc, client_address_follows_the_session);
    tcase_add_test(tc, version_2_store_gains_the_client_column);
    tcase_add_test(tc, assign_takes_a_spare);
    tcase_add_test(tc, assign_other_users_get_other_spares);
    tcase_add_test(tc, assign_refused_pools);
    tcase_add_test(tc, assign_dedicated_desktop_kept_for_its_user);
    tcase_add_test(tc, caller_transactions);
    tcase_add_test(tc, killed_writer_leaves_old_or_new_state);
    tcase_add_test(tc, sessions_put_get_delete);
    tcase_add_test(tc, session_without_groups);
    tcase_add_test(tc, session_idle_and_absolute_expiry);
    tcase_add_test(tc, session_use_is_remembered);
    tcase_add_test(tc, session_expire_counts);
    tcase_add_test(tc, tickets_redeemed_once);
    tcase_add_test(tc, ticket_goes_with_its_desktop);
    tcase_add_test(tc, expired_tickets_are_purged);
    tcase_add_test(tc, events_filtered_newest_first);
    tcase_add_test(tc, events_since_until);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tsguest_run_checks(bk_store_suite());
}
