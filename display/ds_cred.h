/*
 * ds_cred.h - one-time credentials of deskpool-display.
 *
 * The daemon issues a credential for one desktop and one user when the
 * broker asks (control socket, "issue"); the connection that presents it
 * uses it up. Two kinds:
 *
 *   DS_CRED_VNC      an 8-character VNC password (VNC authentication uses
 *                    at most 8) from DS_CRED_VNC_ALPHABET, unique among
 *                    the live ones: on the shared VNC port the password
 *                    says which desktop the client wants. Kept in clear:
 *                    checking a VNC DES response needs the password.
 *   DS_CRED_GATEWAY  a ticket for the gateway socket: 256 random bits,
 *                    base64url without padding (43 characters), kept only
 *                    as its SHA-256 and compared in constant time.
 *
 * Each is valid for ttl seconds and single use. Used and expired
 * credentials are remembered for DS_CRED_REMEMBER_MS so a refusal can say
 * "expired" or "already used" rather than "unknown". The store is bounded
 * (DS_CRED_MAX entries, the oldest forgotten first once full).
 *
 * Time is passed in by the caller (milliseconds, any monotonic origin), so
 * tests need no sleeping. Randomness comes from OpenSSL's RAND_bytes.
 * Not thread-safe; the daemon is single-threaded.
 */
#ifndef DS_CRED_H
#define DS_CRED_H

#include <stddef.h>
#include <stdint.h>

#define DS_CRED_VNC_LEN    8
#define DS_CRED_TICKET_LEN 43
#define DS_CRED_VNC_ALPHABET                                                   \
    "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
#define DS_CRED_NAME_MAX    64     /* desktop ids and user names */
#define DS_CRED_MAX         4096   /* credentials kept, live or not */
#define DS_CRED_REMEMBER_MS 600000 /* used/expired ones kept 10 min */
#define DS_CRED_CHALLENGE   16     /* VNC challenge and response bytes */

enum ds_cred_kind { DS_CRED_VNC, DS_CRED_GATEWAY };

/* Why a credential was refused (ds_cred_reason() gives the text). */
enum ds_cred_refusal {
    DS_CRED_OK = 0,
    DS_CRED_UNKNOWN, /* "unknown password" / "unknown ticket" */
    DS_CRED_EXPIRED, /* "expired" */
    DS_CRED_USED,    /* "already used" */
};

/* What a credential was issued for (copied out on success). */
struct ds_cred_grant {
    enum ds_cred_kind kind;
    char desktop[DS_CRED_NAME_MAX + 1];
    char user[DS_CRED_NAME_MAX + 1];
    /* a helpdesk's view (only the broker grants one): the client sees the
     * desktop and sends it nothing */
    int view_only;
};

struct ds_cred_store;

/* A new, empty store; NULL on no memory. */
struct ds_cred_store *ds_cred_store_new(void);
void ds_cred_store_free(struct ds_cred_store *s);

/* True if name is a valid desktop id or user name: 1..DS_CRED_NAME_MAX
 * printable ASCII characters, no spaces. */
int ds_cred_name_ok(const char *name);

/*
 * Issues a credential of kind for desktop and user, valid from now_ms for
 * ttl_s seconds (1..3600). Writes it NUL-terminated into out (out_size
 * must be at least DS_CRED_TICKET_LEN + 1) and its expiry (now_ms +
 * ttl_s * 1000) into *expires_ms when not NULL. Returns 0, -EINVAL (bad
 * name, ttl or buffer), -EIO (no randomness), -ENOMEM.
 */
int ds_cred_issue(struct ds_cred_store *s, enum ds_cred_kind kind,
                  const char *desktop, const char *user, int ttl_s,
                  int64_t now_ms, char *out, size_t out_size,
                  int64_t *expires_ms);

/*
 * Redeems a gateway ticket at now_ms: on DS_CRED_OK the ticket is used up
 * and *grant tells for what. Otherwise the refusal (nothing changes).
 * A string of the wrong length or alphabet is DS_CRED_UNKNOWN.
 */
enum ds_cred_refusal ds_cred_redeem_ticket(struct ds_cred_store *s,
                                           const char *ticket, int64_t now_ms,
                                           struct ds_cred_grant *grant);

/*
 * Redeems the VNC password whose DES encryption of challenge equals
 * response (VNC authentication, RFB 6.2.2, as libvncserver's
 * rfbEncryptBytes computes it), at now_ms. Live passwords are tried
 * first; a match among used or expired ones gives DS_CRED_USED or
 * DS_CRED_EXPIRED.
 */
enum ds_cred_refusal
ds_cred_redeem_vnc(struct ds_cred_store *s,
                   const unsigned char challenge[DS_CRED_CHALLENGE],
                   const unsigned char response[DS_CRED_CHALLENGE],
                   int64_t now_ms, struct ds_cred_grant *grant);

/* Drops the unused credentials of desktop (they become unknown). Returns
 * how many. */
int ds_cred_revoke(struct ds_cred_store *s, const char *desktop);

/* Forgets what is past remembering at now_ms (call now and then). */
void ds_cred_expire(struct ds_cred_store *s, int64_t now_ms);

/* Number of live (unused, unexpired at now_ms) credentials. */
int ds_cred_live(const struct ds_cred_store *s, int64_t now_ms);

/* "unknown password", "unknown ticket", "expired", "already used", "ok". */
const char *ds_cred_reason(enum ds_cred_refusal r, enum ds_cred_kind kind);

#endif
