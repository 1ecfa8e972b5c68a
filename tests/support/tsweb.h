/*
 * tsweb.h - browser tests: run a Playwright scenario script
 * (tests/web/NAME.mjs: Node.js driving Debian's Chromium through
 * playwright-core, see tests/web/lib.mjs) and read what it reports, and
 * compare what the browser's noVNC canvas showed with a guest's screen.
 *
 * A script takes its inputs from environment variables and ends with one
 * line on its stdout: "RESULT {json}" (exit status 0) or "FAIL reason"
 * (exit status 1). Its stdout and stderr go to files in a folder of this
 * process under the test root; they are printed to stderr when the script
 * fails, and its stderr (what it did, step by step) is kept as
 * $DESKPOOL_ARTIFACTS/web/NAME.log beside its screenshots. Scripts are found in
 * $DESKPOOL_WEB_TESTS, else tests/web under the current folder (make runs tests
 * from the source tree).
 *
 * The script runs with TMPDIR in the test root, so the browser's profile
 * (on Chromium's command line) is under it and tsguest_cleanup() ends a
 * browser that outlived its script.
 *
 * Check assertions inside tsweb_start(), tsweb_finish() and tsweb_run():
 * for test cases. The pixel functions assert nothing.
 */
#ifndef TSWEB_H
#define TSWEB_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "td_layout.h"
#include "tsscreen.h"

/* A running scenario script. */
struct tsweb;

/*
 * A path for a file exchanged with scripts: NAME in this process's web
 * folder under the test root (made on first use). Fails the test if it
 * does not fit in buf.
 */
void tsweb_path(char *buf, size_t size, const char *name);

/*
 * Empties $DESKPOOL_ARTIFACTS/web/ (its files), so that what a run leaves
 * there for review is all its own: call it in main, before the suite.
 * Nothing happens without DESKPOOL_ARTIFACTS.
 */
void tsweb_clear_artifacts(void);

/* Removes the regular files of folder dir (not its subfolders); nothing
 * if it cannot be read. */
void tsweb_empty_folder(const char *dir);

/*
 * A copy of the built site ($DESKPOOL_WEB_DIR, `make web`) in this
 * process's web folder, its path in buf: what a broker under test serves
 * (tsbroker takes DESKPOOL_WEB_DIR: set it to this), so that a `make web`
 * running meanwhile (it replaces build/www) cannot change or remove pages
 * under a test. Fails the test without a built site (index.html and the
 * .stamp make writes last).
 */
void tsweb_site(char *buf, size_t size);

/* A "KEY=VALUE" entry for a script's environment, printf-formatted, in a
 * static ring of 32 buffers (a scenario's whole environment lives at
 * once; not thread-safe). */
const char *tsweb_kv(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Adds at env[*n] (advancing *n) where a script that types into the test
 * desktop (lib.mjs typeOnCanvas()) looks and clicks, for layout l:
 * DESKPOOL_PROBE (the top bar's colour in its corner: the desktop is
 * drawn), DESKPOOL_CLICK (into the text box, away from its first row,
 * which the pointer marker would cover, and from the top bar's "Log
 * off"), DESKPOOL_TEXT_CELL (the text box's first cell) and DESKPOOL_CELL
 * (a cell's size). The strings come from tsweb_kv().
 */
void tsweb_desk_env(const char **env, int *n, const struct td_layout *l);

/*
 * Starts `node tests/web/NAME.mjs` with this process's environment plus
 * env ("KEY=VALUE" strings, NULL-terminated; NULL for none). Fails the
 * test when the script is missing or cannot be started.
 */
struct tsweb *tsweb_start(const char *name, const char *const *env);

/*
 * Waits until path exists (the script made it), for at most timeout_ms.
 * Returns 0, -ECHILD when the script ended first, or -ETIMEDOUT.
 */
int tsweb_wait_file(struct tsweb *w, const char *path, int timeout_ms);

/*
 * Waits for the script to end, for at most timeout_ms (then SIGTERM,
 * which lets Playwright close the browser, and SIGKILL 5 s later), and
 * frees w. Returns the object of its RESULT line (json_decref() it). A
 * script that failed, timed out or printed no RESULT fails the test with
 * its reason, after its output went to stderr.
 */
json_t *tsweb_finish(struct tsweb *w, int timeout_ms);

/* tsweb_start() and tsweb_finish(). */
json_t *tsweb_run(const char *name, const char *const *env, int timeout_ms);

/*
 * Steps: a script stops at `await step(NAME, info)` (lib.mjs) until the
 * test answers, so the test can look at what the browser did meanwhile
 * (the guest's screen, the broker) before the script goes on. The files
 * are exchanged in a folder of the script's own ($DESKPOOL_STEPS, set by
 * tsweb_start()).
 *
 * tsweb_step() waits (at most timeout_ms) until the script reached step
 * name and returns the info object it sent (json_decref() it). A script
 * that ended first, or did not get there in time (it is then ended),
 * fails the test as tsweb_finish() does, with its reason; w is then
 * freed.
 */
json_t *tsweb_step(struct tsweb *w, const char *name, int timeout_ms);

/* Lets the script go on from step name: its step() resolves to answer
 * (an object; NULL for {}). */
void tsweb_step_done(struct tsweb *w, const char *name, const json_t *answer);

/* The string member key of o, or "" (for messages and comparisons). */
const char *tsweb_str(const json_t *o, const char *key);

/* --- pixels ---------------------------------------------------------------
 * noVNC may get the screen with lossy (JPEG) Tight rectangles, so what a
 * browser shows is compared with a tolerance, not pixel for pixel. */

/* The largest difference of one channel between two XRGB pixels. */
int tsweb_channel_diff(uint32_t a, uint32_t b);

/* What tsweb_compare() found. */
struct tsweb_cmp {
    int compared;      /* pixels compared (outside the masks) */
    int beyond;        /* of them, pixels off by more than the tolerance */
    int max;           /* the largest channel difference seen */
    int x, y;          /* the first pixel beyond the tolerance */
    uint32_t a, b;     /* its values */
    int width, height; /* the size compared (a's) */
};

/*
 * Compares a with b (same size, else every pixel counts as beyond): a
 * pixel is beyond when one of its channels differs by more than tol.
 * Pixels inside one of the nmask rectangles of mask are skipped.
 */
void tsweb_compare(const struct tsscreen *a, const struct tsscreen *b, int tol,
                   const struct td_rect *mask, int nmask, struct tsweb_cmp *c);

/*
 * The pointer marker's hotspot as tsscreen_find_pointer() finds it, but
 * accepting pixels within tol of TD_COLOR_POINTER (a lossy copy of the
 * screen). 0 with (*x, *y), or -ENOENT.
 */
int tsweb_find_pointer(const struct tsscreen *s, int tol, int *x, int *y);

/*
 * Reads text drawn from (x, y) in fg on bg on a lossy copy: each pixel of
 * the text's cells counts as the one of fg and bg it is nearer to.
 * Returns how many pixels read as the wrong one (0: the text shows).
 */
int tsweb_text_errors(const struct tsscreen *s, int x, int y, const char *text,
                      uint32_t fg, uint32_t bg);

#endif
