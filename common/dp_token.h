/*
 * dp_token.h - random secrets and their hashes: session tokens, tickets,
 * CSRF tokens, one-time VNC passwords.
 *
 * Secrets are text drawn uniformly from an alphabet with OpenSSL's CSPRNG
 * (rejection sampling: no modulo bias). Whoever checks a secret later
 * keeps only its SHA-256 (dp_token_hash), so a leaked store or core dump
 * gives nothing to replay.
 */
#ifndef DP_TOKEN_H
#define DP_TOKEN_H

#include <stddef.h>

/* base64url without padding: 32 random bytes (256 bits) are 43 of these. */
#define DP_TOKEN_B64URL                                                        \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#define DP_TOKEN_LEN      43 /* 256 bits */
#define DP_TOKEN_HASH_LEN 32 /* SHA-256 */
#define DP_TOKEN_HEX_LEN  64 /* the hash in lowercase hex */

/* n uniform random characters of alphabet (2..256 distinct characters)
 * into out, NUL-terminated (out holds n + 1). Returns 0 or -EIO. */
int dp_token_random_text(char *out, size_t n, const char *alphabet);

/* A new 256-bit token: DP_TOKEN_LEN base64url characters + NUL. */
int dp_token_new(char out[DP_TOKEN_LEN + 1]);

/* True when t has a token's shape (length and alphabet). */
int dp_token_shape_ok(const char *t);

/* SHA-256 of text, raw or as hex. Return 0 or -EIO. */
int dp_token_hash(const char *text, unsigned char out[DP_TOKEN_HASH_LEN]);
int dp_token_hash_hex(const char *text, char out[DP_TOKEN_HEX_LEN + 1]);

/* Constant-time comparison of two NUL-terminated strings (time depends
 * only on their lengths): for CSRF tokens and other secrets compared in
 * the clear. */
int dp_token_equal(const char *a, const char *b);

#endif
