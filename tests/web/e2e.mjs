/*
 * e2e.mjs - the browser part of the end-to-end test (tests/e2e/test_e2e.c)
 * against the system `make run` starts (config/deskpool-demo): a user
 * logs in on the portal, "Open in browser" on the demo pool's card, and
 * types into the desktop in the viewer's noVNC canvas.
 *
 * Steps:
 *  1. the portal's login form, then the pool's card; "Open in browser"
 *     opens the viewer in a new tab, which reaches data-state
 *     "connected" and shows the desktop (DESKPOOL_PROBE's pixel);
 *  2. a click into the text box (DESKPOOL_CLICK) and DESKPOOL_TEXT typed
 *     on the page's keyboard, until the canvas shows ink in the text
 *     box's first cells where the text has characters; step "typed": the
 *     test reads the guest's own screen and the broker meanwhile, the
 *     viewer still connected;
 *  3. the viewer's tab closes (the user's session ends with it, the
 *     desktop stays hers).
 *
 * Inputs: DESKPOOL_URL, DESKPOOL_USER, DESKPOOL_PASSWORD, DESKPOOL_POOL,
 * DESKPOOL_TEXT, DESKPOOL_PROBE ("x,y,RRGGBB": a pixel of the drawn
 * desktop), DESKPOOL_CLICK ("x,y": inside the text box), DESKPOOL_TEXT_CELL
 * ("x,y": the text box's first cell), DESKPOOL_CELL ("w,h": a glyph cell).
 * RESULT: {state (the viewer's data-state when typed), width, height (the
 * canvas), ink (dark pixels per text cell)}.
 */
import {
    canvasLook, env, log, login, near, openViewer, poll, scenario, shot, step, typeOnCanvas,
    viewerConnected, Failure,
} from './lib.mjs';

const nums = (name) => env(name).split(',').map((v) => Number(v));
const user = env('DESKPOOL_USER');
const password = env('DESKPOOL_PASSWORD');
const pool = env('DESKPOOL_POOL');
const text = env('DESKPOOL_TEXT');
const probe = env('DESKPOOL_PROBE').split(',');
const [clickX, clickY] = nums('DESKPOOL_CLICK');
const [cellX, cellY] = nums('DESKPOOL_TEXT_CELL');
const [cellW, cellH] = nums('DESKPOOL_CELL');

/* Polls the canvas until ready(look) holds; the last look on failure. */
async function until(page, what, timeoutMs, ready) {
    let look = null;
    await poll(what, timeoutMs, 300, async () => {
        look = await canvasLook(page, {
            points: { probe: [Number(probe[0]), Number(probe[1])] },
            cell: [cellX, cellY, cellW, cellH],
            cells: text.length + 1,
        });
        return look && ready(look);
    }).catch((e) => {
        throw new Failure(`${e.message} (last look: ${JSON.stringify(look)})`);
    });
    return look;
}

await scenario('e2e', async (s) => {
    const context = await s.newContext();
    const portal = await context.newPage();

    /* 1. the portal, the pool's card, the viewer in a new tab */
    await login(portal, user, password);
    const card = portal.locator(`article.card[data-pool="${pool}"]`);
    await card.waitFor();
    await shot(portal, 'e2e-portal');
    const viewer = await openViewer(context, card);
    const body = viewer.locator('body.viewer');
    await viewerConnected(viewer, 90000, 'e2e-viewer-not-connected');
    const first = await until(viewer, 'the canvas showing the desktop', 90000,
        (l) => near(l.probe, probe[2]));
    await shot(viewer, 'e2e-viewer');

    /* 2. typing, one key at a time as a person types: the guest's
     * keyboard queue is short */
    await typeOnCanvas(viewer, first, clickX, clickY, text);
    const typed = await until(viewer, `"${text}" in the canvas's text box`, 90000,
        (l) => l.ink.every((n, i) => (i < text.length && text[i] !== ' ') === n > 0));
    log(`ink per cell: ${typed.ink.join(' ')}`);
    await shot(viewer, 'e2e-viewer-typed');
    const state = await body.getAttribute('data-state');
    await step('typed', { state }, 240000);

    /* 3. the user closes the viewer's tab */
    await viewer.close();
    await shot(portal, 'e2e-portal-after');
    return { state, width: typed.width, height: typed.height, ink: typed.ink };
});
