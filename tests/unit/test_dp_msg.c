/*
 * Unit tests of the agent protocol's shared pieces (common/dp_msg.h):
 * framing of a byte stream into bounded lines, message parsing with its
 * error codes, building, field checks and the bounded output queue.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dp_msg.h"
#include "tsguest.h"

/* --- framing --------------------------------------------------------- */

struct got {
    char lines[8][128];
    int n, too_long;
};

static void collect(void *arg, char *line, size_t len)
{
    struct got *g = arg;
    if (!line) {
        g->too_long++;
        return;
    }
    ck_assert_uint_eq(strlen(line), len);
    if (g->n < 8)
        snprintf(g->lines[g->n++], sizeof(g->lines[0]), "%s", line);
}

START_TEST(lines_split_across_reads)
{
    struct dp_lines l;
    struct got g = {0};

    ck_assert_int_eq(dp_lines_init(&l), 0);
    dp_lines_feed(&l, "one\r\ntw", 7, collect, &g);
    dp_lines_feed(&l, "o\n\nthr", 6, collect, &g);
    ck_assert_int_eq(g.n, 3);
    ck_assert_str_eq(g.lines[0], "one");
    ck_assert_str_eq(g.lines[1], "two");
    ck_assert_str_eq(g.lines[2], "");
    dp_lines_reset(&l); /* the partial "thr" is forgotten */
    dp_lines_feed(&l, "four\n", 5, collect, &g);
    ck_assert_str_eq(g.lines[3], "four");
    dp_lines_free(&l);
}
END_TEST

START_TEST(lines_drop_overlong_and_go_on)
{
    struct dp_lines l;
    struct got g = {0};
    char *big = malloc(3 * DP_MSG_LINE_MAX);

    memset(big, 'x', 3 * DP_MSG_LINE_MAX);
    ck_assert_int_eq(dp_lines_init(&l), 0);
    /* Longest allowed: LINE_MAX bytes with the newline. */
    dp_lines_feed(&l, big, DP_MSG_LINE_MAX - 1, collect, &g);
    dp_lines_feed(&l, "\n", 1, collect, &g);
    ck_assert_int_eq(g.n, 1);
    ck_assert_int_eq(g.too_long, 0);
    /* One byte more is refused once, in pieces too, and the next line is
     * whole again. */
    for (int i = 0; i < 3; i++)
        dp_lines_feed(&l, big, DP_MSG_LINE_MAX, collect, &g);
    dp_lines_feed(&l, "\nok\n", 4, collect, &g);
    ck_assert_int_eq(g.too_long, 1);
    ck_assert_int_eq(g.n, 2);
    ck_assert_str_eq(g.lines[1], "ok");
    dp_lines_free(&l);
    free(big);
}
END_TEST

/* --- messages ---------------------------------------------------------- */

static int parse(const char *text, struct dp_msg *m, const char **code)
{
    char detail[256];
    return dp_msg_parse(text, strlen(text), m, code, detail, sizeof(detail));
}

START_TEST(msg_kinds)
{
    struct dp_msg m;
    const char *code;

    ck_assert_int_eq(parse("{\"id\":7,\"op\":\"ping\"}", &m, &code), 0);
    ck_assert_int_eq(m.kind, DP_MSG_REQUEST);
    ck_assert_int_eq(m.id, 7);
    ck_assert_str_eq(m.name, "ping");
    ck_assert(json_is_object(m.body)); /* absent args: {} */
    dp_msg_free(&m);

    ck_assert_int_eq(parse("{\"id\":7,\"ok\":false,\"error\":\"unknown-op\","
                           "\"message\":\"no\"}",
                           &m, &code),
                     0);
    ck_assert_int_eq(m.kind, DP_MSG_REPLY);
    ck_assert_int_eq(m.ok, 0);
    ck_assert_str_eq(m.error, "unknown-op");
    ck_assert_str_eq(m.message, "no");
    dp_msg_free(&m);

    ck_assert_int_eq(parse("{\"event\":\"heartbeat\",\"data\":{\"user\":"
                           "\"alice\"}}",
                           &m, &code),
                     0);
    ck_assert_int_eq(m.kind, DP_MSG_EVENT);
    ck_assert_str_eq(json_string_value(json_object_get(m.body, "user")),
                     "alice");
    dp_msg_free(&m);
}
END_TEST

START_TEST(msg_refuses_bad_input)
{
    static const struct {
        const char *text, *code;
    } bad[] = {
        {"", "bad-json"},
        {"{\"id\":1,\"op\":", "bad-json"},
        {"[1,2,3]", "bad-json"},
        {"\"text\"", "bad-json"},
        {"{\"id\":1,\"op\":\"a\",\"op\":\"b\"}", "bad-json"},
        {"{\"a\":[[[[[[[[[[1]]]]]]]]]]}", "bad-json"},
        {"{\"id\":0,\"op\":\"ping\"}", "bad-request"},
        {"{\"id\":-4,\"op\":\"ping\"}", "bad-request"},
        {"{\"id\":\"1\",\"op\":\"ping\"}", "bad-request"},
        {"{\"id\":9007199254740992,\"op\":\"ping\"}", "bad-request"},
        {"{\"id\":1,\"op\":\"ping\",\"args\":[]}", "bad-request"},
        {"{\"id\":1,\"op\":\"ping\",\"ok\":true}", "bad-request"},
        {"{\"id\":1,\"ok\":false}", "bad-request"},
        {"{\"event\":\"x\",\"data\":7}", "bad-request"},
        {"{\"event\":5}", "bad-request"},
        {"{}", "bad-request"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct dp_msg m;
        const char *code = NULL;
        ck_assert_msg(parse(bad[i].text, &m, &code) == -EINVAL, "%s",
                      bad[i].text);
        ck_assert_msg(code && strcmp(code, bad[i].code) == 0,
                      "%s: got %s, want %s", bad[i].text, code, bad[i].code);
    }
}
END_TEST

START_TEST(msg_builders_round_trip)
{
    struct dp_msg m;
    const char *code;
    char *line =
        dp_msg_request(42, "set-resolution",
                       json_pack("{s:i, s:i}", "width", 800, "height", 600));

    ck_assert_ptr_nonnull(line);
    ck_assert_int_eq(line[strlen(line) - 1], '\n');
    ck_assert_ptr_eq(strchr(line, '\n'), line + strlen(line) - 1);
    ck_assert_int_eq(dp_msg_parse(line, strlen(line) - 1, &m, &code, NULL, 0),
                     0);
    ck_assert_int_eq(m.id, 42);
    ck_assert_int_eq(json_integer_value(json_object_get(m.body, "width")), 800);
    dp_msg_free(&m);
    free(line);

    /* Strings with newlines stay on one line (JSON escapes them). */
    line = dp_msg_reply_ok(3, json_pack("{s:s}", "text", "a\nb"));
    ck_assert_ptr_eq(strchr(line, '\n'), line + strlen(line) - 1);
    free(line);
    line = dp_msg_reply_error(3, "failed", "nope");
    ck_assert_str_eq(line, "{\"id\":3,\"ok\":false,\"error\":\"failed\","
                           "\"message\":\"nope\"}\n");
    free(line);
    line = dp_msg_event("ready", NULL);
    ck_assert_str_eq(line, "{\"event\":\"ready\"}\n");
    free(line);
}
END_TEST

START_TEST(msg_field_checks)
{
    json_t *o = json_pack("{s:s, s:s, s:i, s:s}", "user", "alice", "ctl",
                          "a\tb", "n", 5, "long", "abcdef");
    const char *s;
    json_int_t n;
    char detail[128];

    ck_assert_int_eq(dp_msg_string(o, "user", 1, 64, 1, &s, detail, 128), 0);
    ck_assert_str_eq(s, "alice");
    ck_assert_int_eq(dp_msg_string(o, "ctl", 1, 64, 1, &s, detail, 128),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(detail, "printable"));
    ck_assert_int_eq(dp_msg_string(o, "long", 1, 5, 0, &s, detail, 128),
                     -EINVAL);
    ck_assert_int_eq(dp_msg_string(o, "n", 0, 5, 0, &s, detail, 128), -EINVAL);
    ck_assert_int_eq(dp_msg_string(o, "none", 0, 5, 0, &s, detail, 128),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(detail, "none"));
    ck_assert_int_eq(dp_msg_int(o, "n", 1, 9, &n, detail, 128), 0);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(dp_msg_int(o, "n", 6, 9, &n, detail, 128), -EINVAL);
    ck_assert_int_eq(dp_msg_int(o, "user", 0, 9, &n, detail, 128), -EINVAL);
    json_decref(o);
}
END_TEST

START_TEST(outq_bounded_and_partial)
{
    struct dp_outq q;
    int sv[2], size = 4096;
    char buf[300000];
    ssize_t n, total = 0;

    dp_outq_init(&q, 100000);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 10; i++) {
        char *line = malloc(9001);
        memset(line, 'a' + i, 9000);
        line[9000] = '\0';
        ck_assert_int_eq(dp_outq_push(&q, line), 0);
    }
    /* Over the bound: refused, queue intact. */
    {
        char *huge = malloc(20001);
        memset(huge, 'z', 20000);
        huge[20000] = '\0';
        ck_assert_int_eq(dp_outq_push(&q, huge), -ENOBUFS);
    }
    /* The peer gets every byte in order, across partial writes. */
    while (dp_outq_pending(&q)) {
        ck_assert_int_eq(dp_outq_flush(&q, sv[0]), 0);
        while ((n = recv(sv[1], buf + total, sizeof(buf) - (size_t)total,
                         MSG_DONTWAIT)) > 0)
            total += n;
    }
    ck_assert_int_eq(total, 90000);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(buf[i * 9000 + 8999], 'a' + i);
    close(sv[1]);
    ck_assert_int_eq(dp_outq_push(&q, strdup("x\n")), 0);
    ck_assert_int_eq(dp_outq_flush(&q, sv[0]), -EPIPE);
    close(sv[0]);
    dp_outq_free(&q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dp-msg");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, lines_split_across_reads);
    tcase_add_test(tc, lines_drop_overlong_and_go_on);
    tcase_add_test(tc, msg_kinds);
    tcase_add_test(tc, msg_refuses_bad_input);
    tcase_add_test(tc, msg_builders_round_trip);
    tcase_add_test(tc, msg_field_checks);
    tcase_add_test(tc, outq_bounded_and_partial);
    suite_add_tcase(s, tc);
    return tsguest_run_checks(s);
}
