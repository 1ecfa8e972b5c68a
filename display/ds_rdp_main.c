/*
 * ds_rdp_main.c - deskpool-display-rdp: the session process of one RDP
 * client. The display daemon runs it, never a user, as
 *
 *   deskpool-display-rdp --session rdp --peer PEER --stats-interval N
 *
 * with the client on descriptor 3 and its channel to the daemon on 4,
 * privileges already dropped (display/README.md). A program of its own:
 * FreeRDP 2 brings FFmpeg's codec libraries with it (about a hundred
 * shared objects to load and relocate, a tenth of a second of CPU per
 * connection), which VNC and browser sessions - deskpool-display itself -
 * need not load.
 */
#include <stdio.h>

#include "ds_rdp.h"
#include "ds_session.h"

#ifdef __SANITIZE_ADDRESS__
/*
 * make SANITIZE=1: FreeRDP 2.11's tls_accept() never drops its references
 * to the private key and certificate it parses (PEM_read_bio_PrivateKey,
 * PEM_read_bio_X509), about 6 KB once per RDP session process. The stacks
 * end inside libcrypto (no frame pointers there), so the suppression can
 * only name the library; this program's only other OpenSSL use is
 * FreeRDP's own TLS.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libcrypto.so\n";
}
#endif

int main(int argc, char **argv)
{
    struct ds_session_args a;

    ds_session_init(argc, argv, &a);
    if (a.via != DS_SESSION_RDP) {
        fprintf(stderr, "deskpool-display-rdp: run by deskpool-display for "
                        "RDP clients only\n");
        return 2;
    }
    return ds_rdp_run(&a);
}
