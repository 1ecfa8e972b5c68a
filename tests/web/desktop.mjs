/*
 * desktop.mjs - a user's desktop in the browser: log in to the portal,
 * "Open in browser", and use the desktop in the viewer's noVNC canvas.
 *
 * Steps (the C side, tests/integration/test_web.c, checks the pixels):
 *  1. the portal: the pool's card, "Open in browser" opens the viewer in
 *     a new tab, which reaches data-state "connected";
 *  2. once the canvas shows the desktop and holds still (outside the
 *     clock), its pixels go to DESKPOOL_CANVAS1 (binary PPM); then the
 *     script waits for DESKPOOL_CANVAS_ACK (the C side took the guest's
 *     screendump to compare with);
 *  3. a click into the canvas at DESKPOOL_CLICK (inside the text box) and
 *     DESKPOOL_TEXT typed on the page's keyboard; once the canvas shows ink
 *     in the text box's first cells where the text has characters, and
 *     holds still, its pixels go to DESKPOOL_CANVAS2;
 *  4. the network goes (the browser reaches the broker through a TCP relay
 *     of the script's, which resets every connection and refuses new ones
 *     for a while; Chromium's offline emulation leaves websockets open)
 *     and comes back: the viewer goes "reconnecting", then "connected" by
 *     itself, and shows the desktop (with the typed text) again;
 *  5. the portal again: the card says the desktop is connected and offers
 *     "Disconnect" and "Log off"; "VNC details" opens its dialog (the C
 *     side logs in with what it shows).
 *
 * Inputs: DESKPOOL_URL, DESKPOOL_USER, DESKPOOL_PASSWORD, DESKPOOL_POOL,
 * DESKPOOL_CANVAS1, DESKPOOL_CANVAS2, DESKPOOL_CANVAS_ACK, DESKPOOL_CLOCK
 * ("x,y,w,h": left out of "holds still"), DESKPOOL_PROBE ("x,y,RRGGBB": a
 * pixel of the drawn desktop), DESKPOOL_CLICK ("x,y"), DESKPOOL_TEXT,
 * DESKPOOL_TEXT_CELL ("x,y": the text box's first cell), DESKPOOL_CELL
 * ("w,h": a glyph cell).
 * RESULT: {state, width, height, viewerUrl, toolbar: {NAME: count},
 * cardButtons: {NAME: count}, cardBadge, vnc: {host, port, password} (the
 * VNC details dialog's Host, Port and Password), states (every data-state
 * the viewer went through), reconnectedSize}.
 */
import fs from 'node:fs';

import {
    canvasLook, check, env, log, login, near, openViewer, poll, scenario, shot, startRelay,
    typeOnCanvas, useUrl, viewerConnected, Failure,
} from './lib.mjs';

const nums = (name) => env(name).split(',').map((v) => Number(v));
const user = env('DESKPOOL_USER');
const password = env('DESKPOOL_PASSWORD');
const pool = env('DESKPOOL_POOL');
const text = env('DESKPOOL_TEXT');
const [clockX, clockY, clockW, clockH] = nums('DESKPOOL_CLOCK');
const probe = env('DESKPOOL_PROBE').split(',');
const [clickX, clickY] = nums('DESKPOOL_CLICK');
const [cellX, cellY] = nums('DESKPOOL_TEXT_CELL');
const [cellW, cellH] = nums('DESKPOOL_CELL');

/* The canvas as this scenario reads it (lib.mjs canvasLook): the probe
 * pixel, the ink of the typed text's cells and one more, and a hash of
 * everything but the clock. */
function canvasState(page) {
    return canvasLook(page, {
        points: { probe: [Number(probe[0]), Number(probe[1])] },
        cell: [cellX, cellY, cellW, cellH],
        cells: text.length + 1,
        clock: [clockX, clockY, clockW, clockH],
    });
}


/* Polls the canvas until ready(state) holds for two looks in a row with
 * the same pixels (outside the clock): the screen holds still. */
async function settle(page, what, timeoutMs, ready) {
    let last = null;
    let state = null;
    await poll(what, timeoutMs, 300, async () => {
        state = await canvasState(page);
        const ok = state && ready(state) && last && last.hash === state.hash;
        last = state && ready(state) ? state : null;
        return ok;
    }).catch((e) => {
        throw new Failure(`${e.message} (last look: ${JSON.stringify(state && { ...state, hash: undefined })})`);
    });
    return state;
}

/* The canvas's pixels as a binary PPM at file (written whole, then
 * renamed: the C side never reads half a file). */
async function savePpm(page, file) {
    const img = await page.evaluate(() => {
        const c = [...document.querySelectorAll('#screen canvas')]
            .sort((x, y) => y.width * y.height - x.width * x.height)[0];
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const rgb = new Uint8Array(c.width * c.height * 3);
        for (let i = 0, j = 0; i < d.length; i += 4) {
            rgb[j++] = d[i];
            rgb[j++] = d[i + 1];
            rgb[j++] = d[i + 2];
        }
        let bin = '';
        for (let i = 0; i < rgb.length; i += 0x8000)
            bin += String.fromCharCode.apply(null, rgb.subarray(i, i + 0x8000));
        return { width: c.width, height: c.height, data: btoa(bin) };
    });
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, Buffer.concat([
        Buffer.from(`P6\n${img.width} ${img.height}\n255\n`),
        Buffer.from(img.data, 'base64')]));
    fs.renameSync(tmp, file);
    log(`canvas ${img.width}x${img.height} saved to ${file}`);
}

await scenario('desktop', async (s) => {
    /* the browser reaches the broker through a relay it can cut */
    const relay = await startRelay(s.url);
    useUrl(relay.url);
    const context = await s.newContext();
    const portal = await context.newPage();

    await login(portal, user, password);
    const card = portal.locator(`article.card[data-pool="${pool}"]`);
    await card.waitFor();
    await shot(portal, 'desktop-portal');

    /* 1. the viewer, in a new tab */
    const viewer = await openViewer(context, card);
    /* every data-state the viewer goes through from now on (an init
     * script would watch the popup's first about:blank document: the
     * window is reused for desktop.html) */
    await viewer.evaluate(() => {
        const seen = [document.body.dataset.state];
        window.deskpoolStates = seen;
        new MutationObserver(() => {
            if (seen[seen.length - 1] !== document.body.dataset.state)
                seen.push(document.body.dataset.state);
        }).observe(document.body, { attributes: true, attributeFilter: ['data-state'] });
    });
    const viewerUrl = new URL(viewer.url());
    log(`viewer at ${viewerUrl.pathname}`);
    check(viewerUrl.pathname === '/desktop.html', `the viewer opened at ${viewerUrl.pathname}`);
    check(viewerUrl.hash.includes(`pool=${pool}`), `the viewer's URL names no pool=${pool}`);
    const body = viewer.locator('body.viewer');
    await viewerConnected(viewer, 60000, 'desktop-viewer-not-connected');

    /* 2. the desktop as the canvas shows it */
    const first = await settle(viewer, 'the canvas showing the desktop', 60000,
        (st) => near(st.probe, probe[2]));
    await shot(viewer, 'desktop-viewer');
    await savePpm(viewer, env('DESKPOOL_CANVAS1'));
    const ack = env('DESKPOOL_CANVAS_ACK');
    await poll('the test\'s screendump', 120000, 100, () => fs.existsSync(ack));

    /* 3. typing into the desktop */
    await typeOnCanvas(viewer, first, clickX, clickY, text);
    const typed = await settle(viewer, `"${text}" in the canvas's text box`, 90000,
        (st) => st.ink.every((n, i) => (i < text.length && text[i] !== ' ') === n > 0));
    log(`ink per cell: ${typed.ink.join(' ')}`);
    await shot(viewer, 'desktop-viewer-typed');
    await savePpm(viewer, env('DESKPOOL_CANVAS2'));

    /* 4. the network goes and comes back: the viewer reconnects by itself */
    relay.drop();
    await viewer.locator('body.viewer[data-state="reconnecting"]').waitFor({ timeout: 30000 })
        .catch(async () => {
            throw new Failure(`the viewer is "${await body.getAttribute('data-state')}" with the network gone, not reconnecting`);
        });
    log('network gone: the viewer is reconnecting');
    await shot(viewer, 'desktop-viewer-reconnecting');
    /* an outage of a few seconds: the viewer's retries fail meanwhile */
    await new Promise((resolve) => setTimeout(resolve, 2000));
    relay.restore();
    await viewer.locator('body.viewer[data-state="connected"]').waitFor({ timeout: 60000 })
        .catch(async () => {
            throw new Failure(`the viewer is "${await body.getAttribute('data-state')}" with the network back, not connected`);
        });
    const again = await settle(viewer, 'the canvas after reconnecting', 60000,
        (st) => near(st.probe, probe[2]) &&
            st.ink.every((n, i) => (i < text.length && text[i] !== ' ') === n > 0));
    await shot(viewer, 'desktop-viewer-reconnected');
    const states = await viewer.evaluate(() => window.deskpoolStates || []);
    log(`viewer states: ${states.join(' ')}`);

    const toolbar = {};
    for (const name of ['Ctrl-Alt-Del', 'Clipboard', 'Scale to window', 'Fullscreen',
        'Disconnect', 'Log off'])
        toolbar[name] = await viewer.getByRole('button', { name, exact: true }).count();
    const state = await body.getAttribute('data-state');

    /* 5. the portal knows the desktop is the user's now */
    await portal.bringToFront();
    await portal.reload();
    await card.waitFor();
    const cardButtons = {};
    for (const name of ['Open in browser', 'Download .rdp', 'VNC details', 'Disconnect', 'Log off']) {
        const b = card.getByRole('button', { name, exact: true });
        if (name === 'Disconnect' || name === 'Log off')
            await b.waitFor().catch(() => {});
        cardButtons[name] = await b.count();
    }
    const cardBadge = (await card.locator('.badge').first().innerText()).trim();
    await shot(portal, 'desktop-portal-in-use');
    await card.getByRole('button', { name: 'VNC details', exact: true }).click();
    const dialog = portal.locator('dialog#vnc-dialog');
    await dialog.waitFor();
    /* what a person copies into a VNC client (the C side uses it) */
    const detail = async (label) =>
        (await dialog.locator(`dt:text-is("${label}") + dd`).innerText()).trim();
    const vnc = {
        host: await detail('Host'), port: Number(await detail('Port')),
        password: await detail('Password'),
    };
    await shot(portal, 'desktop-vnc-details');
    return {
        state, width: first.width, height: first.height, viewerUrl: viewerUrl.pathname,
        toolbar, cardButtons, cardBadge, vnc, states,
        reconnectedSize: [again.width, again.height],
    };
});
