/*
 * dp_msg.h - JSON-lines messages between the agent and the host.
 *
 * Shared by deskpool-agent (guest) and hv_agent (host); the protocol is in
 * agent/PROTOCOL.md. Three pieces, each usable alone:
 *  - dp_lines: splits a byte stream into bounded lines;
 *  - dp_msg:   parses a line into a request, reply or event, and builds
 *              lines from them (jansson);
 *  - dp_outq:  a bounded queue of outgoing bytes for a non-blocking fd.
 * Nothing here aborts or grows without bound on input from the other end.
 */
#ifndef DP_MSG_H
#define DP_MSG_H

#include <jansson.h>
#include <stddef.h>

#define DP_MSG_VERSION   1
#define DP_MSG_LINE_MAX  65536 /* bytes, newline included */
#define DP_MSG_DEPTH_MAX 8

/* --- framing ------------------------------------------------------------ */

struct dp_lines {
    char *buf; /* DP_MSG_LINE_MAX bytes */
    size_t len;
    int skipping; /* inside an over-long line: drop up to its newline */
};

/* Called for each complete line (NUL-terminated, without "\r\n"), or once
 * per over-long line with line == NULL. */
typedef void (*dp_line_fn)(void *arg, char *line, size_t len);

int dp_lines_init(struct dp_lines *l); /* 0 or -ENOMEM */
void dp_lines_free(struct dp_lines *l);
void dp_lines_reset(struct dp_lines *l); /* forget a partial line */
void dp_lines_feed(struct dp_lines *l, const char *data, size_t n,
                   dp_line_fn fn, void *arg);

/* --- messages ------------------------------------------------------------ */

enum dp_msg_kind { DP_MSG_REQUEST, DP_MSG_REPLY, DP_MSG_EVENT };

struct dp_msg {
    enum dp_msg_kind kind;
    json_int_t id;       /* requests and replies */
    const char *name;    /* op (request) or event name */
    json_t *body;        /* args, result or data: always an object */
    int ok;              /* replies */
    const char *error;   /* replies with ok false: the error code */
    const char *message; /* and its text ("" if none) */
    json_t *root;        /* owns all of the above */
};

/*
 * Parses one line. Returns 0, or -EINVAL with err set to "bad-json" (not a
 * JSON object, too deep) or "bad-request" (not a well-formed message), and
 * why in detail. Free a parsed message with dp_msg_free().
 */
int dp_msg_parse(const char *line, size_t len, struct dp_msg *m,
                 const char **err, char *detail, size_t detail_size);
void dp_msg_free(struct dp_msg *m);

/* Lines ready to send (malloc'd, ending in "\n"), or NULL on no memory.
 * The json_t arguments are consumed (may be NULL for an empty object). */
char *dp_msg_request(json_int_t id, const char *op, json_t *args);
char *dp_msg_reply_ok(json_int_t id, json_t *result);
char *dp_msg_reply_error(json_int_t id, const char *code, const char *message);
char *dp_msg_event(const char *name, json_t *data);

/*
 * Reads string field key of obj: present, a string, min..max bytes, and
 * (if printable) only printable ASCII. Returns 0 and *out (borrowed), or
 * -EINVAL with detail naming the field.
 */
int dp_msg_string(const json_t *obj, const char *key, size_t min, size_t max,
                  int printable, const char **out, char *detail,
                  size_t detail_size);
/* Integer field key in lo..hi; same conventions. */
int dp_msg_int(const json_t *obj, const char *key, json_int_t lo, json_int_t hi,
               json_int_t *out, char *detail, size_t detail_size);

/* --- output queue ----------------------------------------------------------
 */

struct dp_outq {
    char *buf;
    size_t len, off, max;
};

void dp_outq_init(struct dp_outq *q, size_t max);
void dp_outq_free(struct dp_outq *q);
void dp_outq_clear(struct dp_outq *q);
/* Queues a line (takes ownership of line, even on error). Returns 0,
 * -ENOBUFS when max would be exceeded, -ENOMEM. */
int dp_outq_push(struct dp_outq *q, char *line);
/* Writes what fd takes now. Returns 0, or a negative errno on a write
 * error (-EPIPE etc.; -EAGAIN is not an error). */
int dp_outq_flush(struct dp_outq *q, int fd);
int dp_outq_pending(const struct dp_outq *q);

#endif
