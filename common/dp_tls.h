/*
 * dp_tls.h - TLS material for servers that were given none: a self-signed
 * certificate made on first start (the broker's HTTPS port; the display's
 * RDP port).
 *
 * The key is ECDSA P-256, the certificate valid for ten years with the
 * host name and localhost as subject alternative names. Both files are
 * written atomically (temporary file, fsync, rename), the key with mode
 * 0600, so a crash never leaves half a key behind. Production setups
 * configure a certificate from their CA instead.
 */
#ifndef DP_TLS_H
#define DP_TLS_H

#include <stddef.h>

/*
 * Makes cert_path and key_path unless both exist (then returns 1, having
 * changed nothing). host names the certificate. Returns 0 when it made
 * them, or a negative errno with the reason in err.
 */
int dp_tls_selfsigned(const char *cert_path, const char *key_path,
                      const char *host, char *err, size_t err_size);

/* SHA-256 fingerprint of a PEM certificate file, "AB:CD:..." (95 chars +
 * NUL), for logs that let admins check what clients see. 0 or -errno. */
int dp_tls_fingerprint(const char *cert_path, char out[96]);

#endif
