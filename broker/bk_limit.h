/*
 * bk_limit.h - failed-login counters with lockout, per key (a user name or
 * a source address).
 *
 * A key that fails `max` times within `window` seconds is locked for
 * `lockout` seconds: while locked, logins for it are refused before PAM
 * runs. A success resets the key. Counters live in memory (a restart
 * forgets them, as a restart of sshd's MaxStartups does); the table is
 * bounded: when full, expired entries go first, then the oldest. Calls
 * are thread-safe: web logins and the display's RDP logins share one.
 */
#ifndef BK_LIMIT_H
#define BK_LIMIT_H

#include <stdint.h>

struct bk_limit;

struct bk_limit *bk_limit_new(int max, int window_s, int lockout_s,
                              int capacity);
void bk_limit_free(struct bk_limit *l);

/* Seconds the key stays locked (0: it may try now). */
int bk_limit_locked(struct bk_limit *l, const char *key, int64_t now);
/* Counts a failure; returns 1 if the key is now locked. */
int bk_limit_fail(struct bk_limit *l, const char *key, int64_t now);
/* Forgets the key's failures (a successful login). */
void bk_limit_reset(struct bk_limit *l, const char *key);
/* Keys tracked (for tests and metrics). */
int bk_limit_size(const struct bk_limit *l);

#endif
