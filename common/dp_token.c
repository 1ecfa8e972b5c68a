/*
 * dp_token.c - random secrets and their hashes (see dp_token.h).
 */
#include "dp_token.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

int dp_token_random_text(char *out, size_t n, const char *alphabet)
{
    size_t len = strlen(alphabet), limit, i = 0;
    unsigned char buf[64];

    if (len < 2 || len > 256)
        return -EINVAL;
    limit = 256 - 256 % len; /* bytes >= limit would favour some letters */
    while (i < n) {
        size_t j;

        if (RAND_bytes(buf, sizeof(buf)) != 1)
            return -EIO;
        for (j = 0; j < sizeof(buf) && i < n; j++)
            if (buf[j] < limit)
                out[i++] = alphabet[buf[j] % len];
    }
    out[n] = '\0';
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

int dp_token_new(char out[DP_TOKEN_LEN + 1])
{
    return dp_token_random_text(out, DP_TOKEN_LEN, DP_TOKEN_B64URL);
}

int dp_token_shape_ok(const char *t)
{
    size_t n = t ? strnlen(t, DP_TOKEN_LEN + 1) : 0;

    return n == DP_TOKEN_LEN && strspn(t, DP_TOKEN_B64URL) == n;
}

int dp_token_hash(const char *text, unsigned char out[DP_TOKEN_HASH_LEN])
{
    unsigned int n = 0;

    if (EVP_Digest(text, strlen(text), out, &n, EVP_sha256(), NULL) != 1 ||
        n != DP_TOKEN_HASH_LEN)
        return -EIO;
    return 0;
}

int dp_token_hash_hex(const char *text, char out[DP_TOKEN_HEX_LEN + 1])
{
    unsigned char h[DP_TOKEN_HASH_LEN];
    int i, r = dp_token_hash(text, h);

    if (r)
        return r;
    for (i = 0; i < DP_TOKEN_HASH_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
    return 0;
}

int dp_token_equal(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);

    return na == nb && CRYPTO_memcmp(a, b, na) == 0;
}
