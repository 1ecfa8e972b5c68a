/*
 * test_broker_auth.c - deskpool-broker's logins, sessions and the way it
 * treats bad clients, without a guest: the real broker binary with the
 * real PAM library (pam_wrapper + pam_matrix accounts from tsbroker.h),
 * clients speaking HTTPS and verifying its self-signed certificate.
 * (Pools with booted desktops are in test_broker_pool.c.)
 */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tsbroker.h"
#include "tsguest.h"

static struct tsbroker broker;

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

/* One login attempt's reply: status, and the final JSON in *reply. */
static int login_reply(struct tsbroker_session *s, const char *user,
                       const char *password, json_t **reply)
{
    char body[256];
    json_t *first = NULL;
    int status;

    snprintf(body, sizeof(body), "{\"username\":\"%s\"}", user);
    status = tsbroker_call(s, "POST", "/api/v1/login", body, &first);
    if (status != 200) {
        *reply = first;
        return status;
    }
    ck_assert_str_eq(str(first, "state"), "prompt");
    snprintf(body, sizeof(body),
             "{\"conversation\":\"%s\",\"answers\":[\"%s\"]}",
             str(first, "conversation"), password);
    json_decref(first);
    return tsbroker_call(s, "POST", "/api/v1/login", body, reply);
}

START_TEST(login_conversation_gives_a_cookie_session)
{
    struct tsbroker_session s;
    struct bk_response resp;
    json_t *first = NULL, *me = NULL, *prompt;
    char body[256], cookie[256];

    tsbroker_connect(&broker, &s);
    ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/login",
                                   "{\"username\":\"alice\"}", &first),
                     200);
    /* PAM's own prompt, as the module sent it */
    ck_assert_str_eq(str(first, "state"), "prompt");
    ck_assert_uint_eq(strlen(str(first, "conversation")), 43);
    prompt = json_array_get(json_object_get(first, "prompts"), 0);
    ck_assert_str_eq(str(prompt, "style"), "password");
    ck_assert_str_eq(str(prompt, "text"), "Password: ");

    snprintf(body, sizeof(body),
             "{\"conversation\":\"%s\",\"answers\":[\"alice-pw\"]}",
             str(first, "conversation"));
    ck_assert_int_eq(tsbroker_raw(&s, "POST", "/api/v1/login", NULL, body,
                                  strlen(body), &resp),
                     200);
    ck_assert_int_eq(
        bk_response_header(&resp, "set-cookie", cookie, sizeof(cookie)), 0);
    ck_assert_ptr_nonnull(strstr(cookie, "deskpool_session="));
    ck_assert_ptr_nonnull(strstr(cookie, "HttpOnly"));
    ck_assert_ptr_nonnull(strstr(cookie, "Secure"));
    ck_assert_ptr_nonnull(strstr(cookie, "SameSite=Strict"));
    /* HTTPS only from now on, and no caching of API answers */
    ck_assert_int_eq(bk_response_header(&resp, "strict-transport-security",
                                        cookie, sizeof(cookie)),
                     0);
    ck_assert_int_eq(
        bk_response_header(&resp, "cache-control", cookie, sizeof(cookie)), 0);
    ck_assert_str_eq(cookie, "no-store");
    bk_response_free(&resp);

    /* the same answer again: the conversation is over */
    ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/login", body, NULL),
                     404);
    json_decref(first);

    ck_assert_int_eq(tsbroker_login(&broker, &s, "alice", "alice-pw", NULL, 0),
                     200);
    ck_assert_int_eq(tsbroker_call(&s, "GET", "/api/v1/me", NULL, &me), 200);
    ck_assert_str_eq(str(me, "user"), "alice");
    ck_assert(json_is_false(json_object_get(me, "admin")));
    json_decref(me);

    /* logout ends the session for good */
    ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/logout", NULL, NULL),
                     200);
    ck_assert_int_eq(tsbroker_call(&s, "GET", "/api/v1/me", NULL, NULL), 401);
    tsbroker_disconnect(&s);
}
END_TEST

START_TEST(wrong_passwords_and_accounts_say_why)
{
    struct tsbroker_session s;
    json_t *r = NULL;

    tsbroker_connect(&broker, &s);
    ck_assert_int_eq(login_reply(&s, "alice", "nope", &r), 401);
    ck_assert_str_eq(str(r, "state"), "failed");
    ck_assert_str_eq(str(r, "message"), "wrong user name or password");
    json_decref(r);
    /* an unknown user reads the same: no way to probe for accounts */
    ck_assert_int_eq(login_reply(&s, "nosuchuser", "x", &r), 401);
    ck_assert_str_eq(str(r, "message"), "wrong user name or password");
    json_decref(r);
    /* PAM's account step refuses: not a password problem */
    ck_assert_int_eq(login_reply(&s, "locked", "locked-pw", &r), 403);
    ck_assert_str_eq(str(r, "message"),
                     "account locked or not allowed to log in");
    json_decref(r);
    /* a bad user name never reaches PAM */
    ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/login",
                                   "{\"username\":\"a b\"}", &r),
                     400);
    json_decref(r);
    ck_assert_int_eq(tsbroker_login(&broker, &s, "bob", "bob-pw", NULL, 0),
                     200);
    tsbroker_disconnect(&s);
}
END_TEST

START_TEST(repeated_failures_lock_the_user_out)
{
    struct tsbroker_session s;
    json_t *r = NULL;
    int i;

    tsbroker_connect(&broker, &s);
    for (i = 0; i < 5; i++) { /* user_failures = 5 */
        ck_assert_int_eq(login_reply(&s, "bob", "guess", &r), 401);
        json_decref(r);
    }
    /* now even the right password is refused, before PAM runs */
    ck_assert_int_eq(login_reply(&s, "bob", "bob-pw", &r), 429);
    ck_assert_str_eq(str(r, "error"), "locked");
    ck_assert_ptr_nonnull(strstr(str(r, "message"), "for this user"));
    ck_assert_int_gt(json_integer_value(json_object_get(r, "retry_after")), 0);
    json_decref(r);
    /* other users from the same address are not affected */
    ck_assert_int_eq(tsbroker_login(&broker, &s, "alice", "alice-pw", NULL, 0),
                     200);
    tsbroker_disconnect(&s);
}
END_TEST

START_TEST(one_address_cannot_hold_every_login)
{
    struct tsbroker_session s;
    json_t *r = NULL;
    int i;

    tsbroker_connect(&broker, &s);
    /* conversations started and never answered (BK_AUTH_PER_ADDR = 32) */
    for (i = 0; i < 32; i++) {
        ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/login",
                                       "{\"username\":\"alice\"}", NULL),
                         200);
    }
    ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/login",
                                   "{\"username\":\"bob\"}", &r),
                     503);
    ck_assert_str_eq(str(r, "error"), "busy");
    json_decref(r);
    tsbroker_disconnect(&s);
}
END_TEST

START_TEST(csrf_token_guards_cookie_sessions)
{
    struct tsbroker_session s;
    char csrf[64];

    tsbroker_connect(&broker, &s);
    ck_assert_int_eq(tsbroker_login(&broker, &s, "alice", "alice-pw", NULL, 0),
                     200);
    snprintf(csrf, sizeof(csrf), "%s", s.csrf);
    /* a forged cross-site POST carries the cookie but not the token */
    snprintf(s.csrf, sizeof(s.csrf), "%s", "forged");
    ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/logout", NULL, NULL),
                     403);
    snprintf(s.csrf, sizeof(s.csrf), "%s", csrf);
    ck_assert_int_eq(tsbroker_call(&s, "GET", "/api/v1/me", NULL, NULL), 200);
    /* bearer tokens (the CLI) need no CSRF token */
    ck_assert_int_eq(tsbroker_login(&broker, &s, "bob", "bob-pw", NULL, 1),
                     200);
    ck_assert_uint_eq(strlen(s.token), 43);
    ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/logout", NULL, NULL),
                     200);
    ck_assert_int_eq(tsbroker_call(&s, "GET", "/api/v1/me", NULL, NULL), 401);
    tsbroker_disconnect(&s);
}
END_TEST

START_TEST(admin_routes_need_an_admin)
{
    static const char *const routes[][2] = {
        {"GET", "/api/v1/admin/pools"},
        {"POST", "/api/v1/admin/pools"},
        {"GET", "/api/v1/admin/pools/p1"},
        {"PUT", "/api/v1/admin/pools/p1"},
        {"PATCH", "/api/v1/admin/pools/p1"},
        {"DELETE", "/api/v1/admin/pools/p1"},
        {"POST", "/api/v1/admin/pools/p1/resume"},
        {"GET", "/api/v1/admin/desktops"},
        {"GET", "/api/v1/admin/desktops/p1-abc"},
        {"POST", "/api/v1/admin/desktops/p1-abc/reset"},
        {"GET", "/api/v1/admin/desktops/p1-abc/screenshot"},
        {"POST", "/api/v1/admin/desktops/p1-abc/view"},
        {"GET", "/api/v1/admin/sessions"},
        {"GET", "/api/v1/admin/events"},
        {"GET", "/api/v1/admin/stats"},
        {"GET", "/api/v1/admin/stats?since=0"},
    };
    struct tsbroker_session user, admin, anon;
    size_t i;
    char *pool = tsbroker_pool_json("p1", 0, 0, 1, NULL), path[96];
    json_t *r = NULL, *samples, *first, *p;
    json_int_t t0;

    tsbroker_connect(&broker, &user);
    tsbroker_connect(&broker, &admin);
    tsbroker_connect(&broker, &anon);
    ck_assert_int_eq(
        tsbroker_login(&broker, &user, "alice", "alice-pw", NULL, 1), 200);
    ck_assert_int_eq(
        tsbroker_login(&broker, &admin, "admin", "admin-pw", NULL, 1), 200);
    ck_assert(admin.admin && !user.admin);
    ck_assert_int_eq(
        tsbroker_call(&admin, "POST", "/api/v1/admin/pools", pool, NULL), 201);
    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        ck_assert_msg(
            tsbroker_call(&user, routes[i][0], routes[i][1], "{}", NULL) == 403,
            "%s %s: a user got past", routes[i][0], routes[i][1]);
        ck_assert_msg(
            tsbroker_call(&anon, routes[i][0], routes[i][1], "{}", NULL) == 401,
            "%s %s: no session got past", routes[i][0], routes[i][1]);
    }
    /* the pool is still there, unchanged */
    ck_assert_int_eq(
        tsbroker_call(&admin, "GET", "/api/v1/admin/pools/p1", NULL, NULL),
        200);
    /* the admin's dashboard: a history that starts with the broker (one
     * sample at start, the default interval), and the pool now */
    ck_assert_int_eq(
        tsbroker_call(&admin, "GET", "/api/v1/admin/stats", NULL, &r), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "interval")), 10);
    ck_assert_int_gt(json_integer_value(json_object_get(r, "now")), 0);
    samples = json_object_get(r, "samples");
    ck_assert_uint_ge(json_array_size(samples), 1);
    first = json_array_get(samples, 0);
    ck_assert_int_le(json_integer_value(json_object_get(first, "t")),
                     json_integer_value(json_object_get(r, "now")));
    ck_assert_int_eq(json_integer_value(json_object_get(first, "sessions")), 0);
    ck_assert_ptr_nonnull(json_object_get(first, "provisioning"));
    p = json_array_get(json_object_get(r, "pools"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(p, "name")), "p1");
    ck_assert_int_eq(json_integer_value(json_object_get(p, "max")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "desktops")), 0);
    t0 = json_integer_value(json_object_get(first, "t"));
    snprintf(path, sizeof(path), "/api/v1/admin/stats?since=%lld",
             (long long)t0);
    json_decref(r);
    ck_assert_int_eq(tsbroker_call(&admin, "GET", path, NULL, &r), 200);
    json_array_foreach(json_object_get(r, "samples"), i, p)
    {
        ck_assert_int_gt(json_integer_value(json_object_get(p, "t")), t0);
    }
    json_decref(r);
    free(pool);
    tsbroker_disconnect(&user);
    tsbroker_disconnect(&admin);
    tsbroker_disconnect(&anon);
}
END_TEST

START_TEST(admin_pool_changes_are_validated)
{
    struct tsbroker_session a;
    json_t *r = NULL;
    char *pool = tsbroker_pool_json("v1", 0, 0, 2, NULL);

    tsbroker_connect(&broker, &a);
    ck_assert_int_eq(tsbroker_login(&broker, &a, "admin", "admin-pw", NULL, 1),
                     200);
    ck_assert_int_eq(tsbroker_call(&a, "POST", "/api/v1/admin/pools", pool, &r),
                     201);
    ck_assert_str_eq(str(r, "type"), "floating"); /* defaults filled in */
    ck_assert_int_eq(json_integer_value(json_object_get(r, "vcpus")), 1);
    json_decref(r);
    ck_assert_int_eq(tsbroker_call(&a, "POST", "/api/v1/admin/pools", pool, &r),
                     409);
    json_decref(r);
    ck_assert_int_eq(tsbroker_call(&a, "PATCH", "/api/v1/admin/pools/v1",
                                   "{\"spare\":5}", &r),
                     400);
    ck_assert_str_eq(str(r, "message"), "spare: must be 0..max (2)");
    json_decref(r);
    ck_assert_int_eq(tsbroker_call(&a, "PATCH", "/api/v1/admin/pools/v1",
                                   "{\"colour\":\"red\"}", &r),
                     400);
    ck_assert_str_eq(str(r, "message"), "colour: unknown setting");
    json_decref(r);
    ck_assert_int_eq(tsbroker_call(&a, "PATCH", "/api/v1/admin/pools/v1",
                                   "{\"golden\":\"relative.qcow2\"}", &r),
                     400);
    json_decref(r);
    ck_assert_int_eq(tsbroker_call(&a, "POST", "/api/v1/admin/pools",
                                   "{\"name\":\"Bad Name\"}", &r),
                     400);
    json_decref(r);
    ck_assert_int_eq(
        tsbroker_call(&a, "PATCH", "/api/v1/admin/pools/v1", "{\"max\":4}", &r),
        200);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "max")), 4);
    json_decref(r);
    ck_assert_int_eq(
        tsbroker_call(&a, "DELETE", "/api/v1/admin/pools/v1", NULL, &r), 202);
    json_decref(r);
    ck_assert_int_eq(
        tsbroker_call(&a, "GET", "/api/v1/admin/pools/v1", NULL, &r), 404);
    json_decref(r);
    free(pool);
    tsbroker_disconnect(&a);
}
END_TEST

START_TEST(bad_bodies_get_clear_4xx)
{
    struct tsbroker_session s;
    struct bk_response resp;
    json_t *r = NULL;
    char *big = malloc(200000);

    tsbroker_connect(&broker, &s);
    ck_assert_int_eq(
        tsbroker_call(&s, "POST", "/api/v1/login", "{\"username\":", &r), 400);
    ck_assert_str_eq(str(r, "error"), "bad_json");
    json_decref(r);
    ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/login", "[1,2]", &r),
                     400);
    json_decref(r);
    /* invalid UTF-8 inside a JSON string */
    ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/login",
                                   "{\"username\":\"\xff\xfe\"}", &r),
                     400);
    json_decref(r);
    ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/login",
                                   "{\"username\":\"a\",\"username\":\"b\"}",
                                   &r),
                     400);
    json_decref(r);
    /* a body over max_body (64 KiB): refused, the connection closed */
    memset(big, 'x', 199999);
    big[199999] = '\0';
    ck_assert_int_eq(tsbroker_raw(&s, "POST", "/api/v1/login", NULL, big,
                                  strlen(big), &resp),
                     413);
    bk_response_free(&resp);
    free(big);
    ck_assert_int_eq(tsbroker_call(&s, "GET", "/api/v1/nothing", NULL, NULL),
                     404);
    /* and the server still serves */
    ck_assert_int_eq(tsbroker_login(&broker, &s, "alice", "alice-pw", NULL, 0),
                     200);
    tsbroker_disconnect(&s);
}
END_TEST

/* A raw TLS connection for clients that misbehave. */
static SSL *raw_tls(SSL_CTX **ctx, int *fd)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)broker.port)};
    SSL *ssl;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(*fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *ctx = SSL_CTX_new(TLS_client_method());
    ssl = SSL_new(*ctx);
    SSL_set_fd(ssl, *fd);
    ck_assert_int_eq(SSL_connect(ssl), 1);
    return ssl;
}

static void raw_close(SSL *ssl, SSL_CTX *ctx, int fd)
{
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
}

START_TEST(slow_and_garbage_clients_slow_nobody)
{
    struct tsbroker_session s;
    SSL_CTX *c1, *c2;
    SSL *half, *junk;
    int f1, f2, fd, n;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)broker.port)};
    char buf[256];

    /* half a request, never finished */
    half = raw_tls(&c1, &f1);
    SSL_write(half, "POST /api/v1/login HTTP/1.1\r\nHost: x\r\n", 38);
    /* garbage after TLS, and garbage instead of TLS */
    junk = raw_tls(&c2, &f2);
    SSL_write(junk, "\x16\x03\x01\xff\xff garbage\r\n\r\n", 17);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);

    tsbroker_connect(&broker, &s);
    ck_assert_int_eq(tsbroker_login(&broker, &s, "alice", "alice-pw", NULL, 0),
                     200);
    ck_assert_int_eq(tsbroker_call(&s, "GET", "/api/v1/me", NULL, NULL), 200);
    /* the garbage got a 400 or a closed connection, nothing else */
    n = SSL_read(junk, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    ck_assert_msg(n <= 0 || (!strncmp(buf, "HTTP/1.", 7) && buf[9] == '4'),
                  "got: %s", buf);
    ck_assert_int_le(read(fd, buf, sizeof(buf)), 0);
    close(fd);
    raw_close(half, c1, f1);
    raw_close(junk, c2, f2);
    tsbroker_disconnect(&s);
}
END_TEST

START_TEST(sessions_survive_a_broker_restart)
{
    struct tsbroker_session s;
    char token[64];
    json_t *me = NULL;

    tsbroker_connect(&broker, &s);
    ck_assert_int_eq(tsbroker_login(&broker, &s, "alice", "alice-pw", NULL, 1),
                     200);
    snprintf(token, sizeof(token), "%s", s.token);
    tsbroker_disconnect(&s);
    tsbroker_kill9(&broker);
    broker.port = 0;
    tsbroker_start(&broker);
    tsbroker_connect(&broker, &s);
    snprintf(s.token, sizeof(s.token), "%s", token);
    ck_assert_int_eq(tsbroker_call(&s, "GET", "/api/v1/me", NULL, &me), 200);
    ck_assert_str_eq(str(me, "user"), "alice");
    json_decref(me);
    tsbroker_disconnect(&s);
}
END_TEST

static void setup(void)
{
    tsbroker_init(&broker, 0);
    tsbroker_start(&broker);
}

static void teardown(void)
{
    tsbroker_stop(&broker);
}

/* --- stacks with more than a password ------------------------------------ */

START_TEST(second_prompt_is_relayed)
{
    struct tsbroker_session s;
    json_t *r = NULL, *p;
    char body[256];

    tsbroker_init(&broker, TSBROKER_OTP);
    tsbroker_start(&broker);
    tsbroker_connect(&broker, &s);
    ck_assert_int_eq(login_reply(&s, "alice", "alice-pw", &r), 200);
    /* the password was right: PAM asks the next question */
    ck_assert_str_eq(str(r, "state"), "prompt");
    p = json_array_get(json_object_get(r, "prompts"), 0);
    ck_assert_str_eq(str(p, "style"), "text");
    snprintf(body, sizeof(body),
             "{\"conversation\":\"%s\",\"answers\":[\"otp-wrong\"]}",
             str(r, "conversation"));
    json_decref(r);
    ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/login", body, &r), 401);
    json_decref(r);
    ck_assert_int_eq(
        tsbroker_login(&broker, &s, "alice", "alice-pw", "otp-alice", 0), 200);
    tsbroker_disconnect(&s);
    tsbroker_stop(&broker);
}
END_TEST

START_TEST(slow_pam_does_not_stall_other_requests)
{
    struct tsbroker_session s;
    SSL_CTX *ctx;
    SSL *slow;
    int fd;
    char req[256], buf[4096];
    int n;

    tsbroker_init(&broker, TSBROKER_SLOW);
    tsbroker_start(&broker);
    /* a login whose PAM stack sleeps 2 s before asking anything */
    slow = raw_tls(&ctx, &fd);
    snprintf(req, sizeof(req),
             "POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: "
             "20\r\n\r\n{\"username\":\"alice\"}");
    ck_assert_int_eq(SSL_write(slow, req, (int)strlen(req)), (int)strlen(req));
    /* meanwhile other clients are answered at once, while the slow login
     * still has nothing to say */
    tsbroker_connect(&broker, &s);
    ck_assert_int_eq(tsbroker_call(&s, "GET", "/api/v1/me", NULL, NULL), 401);
    ck_assert_int_eq(tsbroker_call(&s, "GET", "/api/v1/pools", NULL, NULL),
                     401);
    /* (TLS 1.3 session tickets may be waiting on the socket: ask TLS
     * whether application data is there, without blocking) */
    fcntl(fd, F_SETFL, O_NONBLOCK);
    n = SSL_read(slow, buf, sizeof(buf) - 1);
    ck_assert_msg(n <= 0 && SSL_get_error(slow, n) == SSL_ERROR_WANT_READ,
                  "the slow login answered before the fast requests");
    fcntl(fd, F_SETFL, 0);
    /* and the slow one gets its prompt in the end */
    ck_assert_int_gt(SSL_read(slow, buf, sizeof(buf) - 1), 0);
    ck_assert_ptr_nonnull(strstr(buf, "200 OK"));
    raw_close(slow, ctx, fd);
    tsbroker_disconnect(&s);
    tsbroker_stop(&broker);
}
END_TEST

START_TEST(failures_from_one_address_lock_it)
{
    struct tsbroker_session s;
    json_t *r = NULL;
    const char *users[] = {"alice", "bob", "carol"};
    int i;

    tsbroker_init(&broker, 0);
    tsbroker_set(&broker, "addr_failures", "3");
    tsbroker_start(&broker);
    tsbroker_connect(&broker, &s);
    for (i = 0; i < 3; i++) { /* a password spray: one guess per user */
        ck_assert_int_eq(login_reply(&s, users[i], "spray", &r), 401);
        json_decref(r);
    }
    ck_assert_int_eq(login_reply(&s, "admin", "admin-pw", &r), 429);
    ck_assert_ptr_nonnull(strstr(str(r, "message"), "from this address"));
    json_decref(r);
    tsbroker_disconnect(&s);
    tsbroker_stop(&broker);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("broker_auth");
    TCase *tc = tcase_create("broker");
    TCase *own = tcase_create("own broker");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, login_conversation_gives_a_cookie_session);
    tcase_add_test(tc, wrong_passwords_and_accounts_say_why);
    tcase_add_test(tc, repeated_failures_lock_the_user_out);
    tcase_add_test(tc, one_address_cannot_hold_every_login);
    tcase_add_test(tc, csrf_token_guards_cookie_sessions);
    tcase_add_test(tc, admin_routes_need_an_admin);
    tcase_add_test(tc, admin_pool_changes_are_validated);
    tcase_add_test(tc, bad_bodies_get_clear_4xx);
    tcase_add_test(tc, slow_and_garbage_clients_slow_nobody);
    tcase_add_test(tc, sessions_survive_a_broker_restart);
    suite_add_tcase(s, tc);
    tcase_add_test(own, second_prompt_is_relayed);
    tcase_add_test(own, slow_pam_does_not_stall_other_requests);
    tcase_add_test(own, failures_from_one_address_lock_it);
    suite_add_tcase(s, own);
    return tsguest_run_suite(s);
}
