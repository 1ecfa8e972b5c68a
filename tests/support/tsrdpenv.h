/*
 * tsrdpenv.h - the world an RDP client test logs into: the real broker
 * (tsbroker: PAM through pam_wrapper, accounts alice/alice-pw, admin/
 * admin-pw...), the real deskpool-display with its RDP port (tsdisplay),
 * redeeming passwords and tickets with that broker, and a pool "desk" of
 * one desktop of the test image, booted and READY; admin and alice
 * logged in to the broker's API.
 *
 * The caller owns the parts (often a test's static variables, which its
 * cases use by name) and points an environment at them:
 *
 *   static struct tsbroker broker;
 *   static struct tsdisplay dmn;
 *   static struct tsbroker_session admin, alice;
 *   static struct tsrdpenv env = {
 *       .broker = &broker, .display = &dmn, .admin = &admin, .alice = &alice};
 *
 * Check assertions inside: for fixtures and test cases.
 */
#ifndef TSRDPENV_H
#define TSRDPENV_H

#include <stddef.h>

#include "tsbroker.h"
#include "tsdisplay.h"

/* The pool tsrdpenv_start() makes: one desktop, at most two. */
#define TSRDPENV_POOL "desk"

struct tsrdpenv {
    struct tsbroker *broker;        /* started, ticket_ttl 30 s */
    struct tsdisplay *display;      /* started with an RDP port */
    struct tsbroker_session *admin; /* logged in as admin (bearer) */
    struct tsbroker_session *alice; /* logged in as alice (cookie) */
    int rdp_port;                   /* set by tsrdpenv_start() */
    char broker_socket[256];        /* the broker's local API */
};

/*
 * Starts the broker and the display, logs admin and alice in, creates
 * the pool and waits (up to two minutes, a TCG boot) until its desktop
 * is READY; sets e->rdp_port. A fixture's setup.
 */
void tsrdpenv_start(struct tsrdpenv *e);

/* Logs both out, stops the display and the broker and deletes the
 * broker's VMs (they outlive it by design). A fixture's teardown. */
void tsrdpenv_stop(struct tsrdpenv *e);

/* The id of the desktop alice holds (the only one of the pool in use),
 * into id; fails the test when she has none. */
void tsrdpenv_alice_desktop(struct tsrdpenv *e, char *id, size_t size);

#endif
