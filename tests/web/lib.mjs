/*
 * lib.mjs - what every browser scenario (tests/web/NAME.mjs) shares: a
 * headless Debian Chromium through playwright-core, screenshots for
 * review, page-error checks, the portal's login form, and the result
 * protocol tests/support/tsweb.c reads.
 *
 * Protocol: a scenario prints exactly one final line on stdout,
 * `RESULT {json}` (exit status 0) or `FAIL reason` (exit status 1);
 * everything else goes to stderr. A scenario that runs longer than
 * DESKPOOL_WEB_TIMEOUT_MS (default 90 s) fails instead of hanging, and the
 * browser is closed whatever happens.
 *
 * Steps: a scenario that needs the test to look at something meanwhile
 * (the guest's screen, the broker) stops at a step() until the test
 * answers (tsweb_step() and tsweb_step_done() in tests/support/tsweb.h).
 *
 * Environment: DESKPOOL_NPM_DIR (build/npm: playwright-core),
 * DESKPOOL_ARTIFACTS (screenshots go to its web/ folder), DESKPOOL_URL
 * (https://127.0.0.1:PORT of the broker), DESKPOOL_STEPS (the folder of
 * step files, set by tsweb), and what each scenario names.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';

/* An input the scenario needs, from the environment. */
export function env(name, fallback) {
    const v = process.env[name];
    if (v !== undefined && v !== '')
        return v;
    if (fallback !== undefined)
        return fallback;
    throw new Failure(`${name} is not set`);
}

/* A failed expectation: its message is the FAIL reason. */
export class Failure extends Error {}

export function check(condition, message) {
    if (!condition)
        throw new Failure(message);
}

/* Progress on stderr (kept by the C side, shown when a scenario fails). */
let lastLog = '';

export function log(...args) {
    const t = new Date().toISOString().slice(11, 23);
    lastLog = args.join(' ').split('\n')[0];
    console.error(`[${t}]`, ...args);
}

/* A path for a file to keep for review: $DESKPOOL_ARTIFACTS/web/NAME. */
export function artifact(name) {
    const dir = path.join(env('DESKPOOL_ARTIFACTS'), 'web');
    fs.mkdirSync(dir, { recursive: true });
    return path.join(dir, name);
}

/* A full-page screenshot of page as NAME.png under the artifacts. */
export async function shot(page, name) {
    const file = artifact(`${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    log(`screenshot ${file}`);
    return file;
}

const require = createRequire(env('DESKPOOL_NPM_DIR') + '/');
const { chromium } = require('playwright-core');

/* Without the networking switches Chromium keeps calling out to a
 * network the tests do not have. */
const LAUNCH = {
    executablePath: process.env.DESKPOOL_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update',
        '--disable-sync'],
};

/*
 * Runs a scenario: fn(s) gets s = {browser, newContext(), url,
 * pageErrors, consoleErrors} and returns the RESULT object. Uncaught page
 * errors in any page fail the scenario; console errors are logged (a 401
 * from /api/v1/me before the login is one the portal expects).
 */
export async function scenario(name, fn) {
    const timeoutMs = Number(env('DESKPOOL_WEB_TIMEOUT_MS', '90000'));
    const s = {
        browser: null,
        url: env('DESKPOOL_URL'),
        pageErrors: [],
        consoleErrors: [],
    };
    let done = false;

    const finish = async (code, line) => {
        if (done)
            return;
        done = true;
        clearTimeout(timer);
        if (s.browser) {
            /* closing may itself hang on a wedged browser: bounded */
            await Promise.race([s.browser.close().catch(() => {}),
                new Promise((resolve) => setTimeout(resolve, 10000))]);
        }
        process.stdout.write(line.replace(/\n/g, ' ') + '\n');
        process.exit(code);
    };
    const timer = setTimeout(async () => {
        const why = `FAIL ${name}: still running after ${timeoutMs / 1000} s (last step: ${lastLog})`;
        await Promise.race([failureShots(s, name),
            new Promise((resolve) => setTimeout(resolve, 10000))]);
        finish(1, why);
    }, timeoutMs);

    s.newContext = async (options = {}) => {
        const context = await s.browser.newContext({
            ignoreHTTPSErrors: true,
            viewport: { width: 1280, height: 720 },
            ...options,
        });
        context.setDefaultTimeout(20000);
        context.on('page', (page) => watch(s, page));
        return context;
    };
    try {
        s.browser = await chromium.launch(LAUNCH);
        log(`${name}: Chromium ${s.browser.version()}, ${s.url}`);
        const result = await fn(s);
        check(s.pageErrors.length === 0,
            `uncaught error in a page: ${s.pageErrors.join(' | ')}`);
        await finish(0, `RESULT ${JSON.stringify(result || {})}`);
    } catch (e) {
        log(e && e.stack ? e.stack : String(e));
        await failureShots(s, name);
        await finish(1, `FAIL ${name}: ${reason(e)}${s.pageErrors.length
            ? ` (page errors: ${s.pageErrors.join(' | ')})` : ''}`);
    }
}

/* One line: the message, and for a Playwright wait what it waited for. */
function reason(e) {
    if (e instanceof Failure)
        return e.message.split('\n')[0];
    /* without the terminal colours of Playwright's call log */
    const text = String((e && e.message) || e).replace(/\x1b\[[0-9;]*m/g, '');
    const waiting = text.match(/waiting for (.*)/);
    return `${e && e.name}: ${text.split('\n')[0]}${waiting ? ` (waiting for ${waiting[1]})` : ''}`;
}

/* Every open page as it was when the scenario failed, for review. */
async function failureShots(s, name) {
    if (!s.browser)
        return;
    const pages = s.browser.contexts().flatMap((c) => c.pages());
    for (let i = 0; i < pages.length; i++)
        await shot(pages[i], `${name}-failed-${i + 1}`).catch(() => {});
}

function watch(s, page) {
    page.on('pageerror', (e) => {
        const m = `${page.url()}: ${e.message}`;
        s.pageErrors.push(m);
        log(`page error: ${m}`);
    });
    page.on('console', (msg) => {
        if (msg.type() === 'error') {
            s.consoleErrors.push(msg.text());
            log(`console error: ${page.url()}: ${msg.text()}`);
        }
    });
}

let base = '';

/* Where login() goes: DESKPOOL_URL, or what useUrl() set (a relay). */
export function baseUrl() {
    return base || env('DESKPOOL_URL');
}

export function useUrl(url) {
    base = url;
}

/*
 * A TCP relay to target (https://HOST:PORT): the browser's network, which
 * the scenario can cut. drop() resets every connection through it (as a
 * network that went away: the browser sees its websocket end abnormally,
 * 1006) and refuses new ones until restore().
 */
export async function startRelay(target) {
    const to = new URL(target);
    const pairs = new Set();
    let down = false;
    const reset = (sock) => {
        try {
            sock.resetAndDestroy();
        } catch (e) {
            sock.destroy();
        }
    };
    const server = net.createServer((client) => {
        if (down) {
            reset(client);
            return;
        }
        const upstream = net.connect(Number(to.port), to.hostname);
        const pair = { client, upstream };
        pairs.add(pair);
        const end = () => {
            pairs.delete(pair);
            client.destroy();
            upstream.destroy();
        };
        for (const sock of [client, upstream]) {
            sock.on('error', end);
            sock.on('close', end);
        }
        client.pipe(upstream);
        upstream.pipe(client);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const relay = {
        url: `https://127.0.0.1:${server.address().port}`,
        drop() {
            down = true;
            for (const p of pairs) {
                reset(p.client);
                reset(p.upstream);
            }
            pairs.clear();
        },
        restore() {
            down = false;
        },
    };
    return relay;
}

/* The heading of the portal's signed-in page. */
export function myDesktops(page) {
    return page.getByRole('heading', { name: 'My desktops' });
}

/* Fills the portal's first login form (user name and password) and
 * submits it; the page must show it. */
export async function submitLogin(page, user, password) {
    const form = page.locator('form#login-form');
    await form.getByLabel('User name', { exact: true }).fill(user);
    await form.getByLabel('Password', { exact: true }).fill(password);
    await form.getByRole('button', { name: 'Log in' }).click();
}

/* The text of the login error once it shows. */
export async function loginError(page) {
    const alert = page.locator('#login-error');
    await alert.filter({ hasText: /\S/ }).waitFor({ state: 'visible' });
    check(await alert.getAttribute('role') === 'alert',
        '#login-error is not role=alert');
    return (await alert.innerText()).trim();
}

/*
 * Logs in through the portal at DESKPOOL_URL: the user name and password
 * form, then, when otp is given, the prompt labelled otpPrompt (PAM's own
 * text). Resolves once "My desktops" shows; fails with the page's login
 * error otherwise.
 */
export async function login(page, user, password, otp, otpPrompt) {
    await page.goto(baseUrl() + '/');
    await submitLogin(page, user, password);
    if (otp !== undefined) {
        const input = page.locator('form#login-form')
            .getByLabel(otpPrompt, { exact: true });
        await input.fill(otp);
        await page.locator('form#login-form')
            .getByRole('button', { name: 'Log in' }).click();
    }
    try {
        await myDesktops(page).waitFor({ state: 'visible' });
    } catch (e) {
        const err = await page.locator('#login-error').innerText().catch(() => '');
        throw new Failure(`${user} is not logged in${err ? `: ${err}` : ''} (${e.message.split('\n')[0]})`);
    }
    const who = (await page.locator('#who').innerText()).trim();
    check(who.includes(user), `#who shows "${who}", not ${user}`);
}

/* A fetch from inside page (its cookies, no CSRF token): the status. */
export async function fetchStatus(page, path, method = 'GET') {
    return page.evaluate(async ([p, m]) => {
        const r = await fetch(p, { method: m, credentials: 'same-origin', cache: 'no-store' });
        return r.status;
    }, [path, method]);
}

/* Polls fn (async, true when done) every ms until timeoutMs. */
export async function poll(what, timeoutMs, ms, fn) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        if (await fn())
            return;
        if (Date.now() > deadline)
            throw new Failure(`${what}: not within ${timeoutMs / 1000} s`);
        await new Promise((resolve) => setTimeout(resolve, ms));
    }
}

/* The test that started this script: its process (our parent). */
const testPid = process.ppid;

/*
 * A meeting point with the test: tells it the scenario reached step name
 * (writes info, an object, as $DESKPOOL_STEPS/NAME.json) and waits for
 * its answer (NAME.done.json, an object), which it returns. Fails when
 * no answer comes within timeoutMs, or at once when the test went away
 * (it failed meanwhile: nobody will answer).
 */
export async function step(name, info = {}, timeoutMs = 120000) {
    const dir = env('DESKPOOL_STEPS');
    const file = path.join(dir, `${name}.json`);
    const answer = path.join(dir, `${name}.done.json`);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(info));
    fs.renameSync(`${file}.tmp`, file);
    log(`step ${name}: the test looks`);
    await poll(`the test's answer at step ${name}`, timeoutMs, 100, () => {
        check(process.ppid === testPid, `the test went away at step ${name}`);
        return fs.existsSync(answer);
    });
    log(`step ${name}: done`);
    return JSON.parse(fs.readFileSync(answer, 'utf8'));
}

/*
 * In the page: the noVNC canvas (the largest under #screen) summed up:
 * its size; the colour [r, g, b] at each of points ({name: [x, y]}, set
 * on the result under its name); how many dark pixels each of cells text
 * cells holds, from cell [x, y, w, h] to the right (ink); with clock
 * ([x, y, w, h]), a hash of every pixel outside it (the screen holds
 * still when it stays the same). null while no canvas has a size.
 */
export function canvasLook(page, { points = {}, cell = [0, 0, 0, 0], cells = 0, clock = null } = {}) {
    return page.evaluate((a) => {
        const c = [...document.querySelectorAll('#screen canvas')]
            .sort((x, y) => y.width * y.height - x.width * x.height)[0];
        if (!c || !c.width || !c.height)
            return null;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const at = (x, y) => {
            const i = (y * c.width + x) * 4;
            return [d[i], d[i + 1], d[i + 2]];
        };
        const out = { width: c.width, height: c.height, ink: [] };
        for (const [name, [x, y]] of Object.entries(a.points))
            out[name] = at(x, y);
        for (let n = 0; n < a.cells; n++) {
            let dark = 0;
            for (let y = a.cell[1]; y < a.cell[1] + a.cell[3]; y++)
                for (let x = a.cell[0] + n * a.cell[2]; x < a.cell[0] + (n + 1) * a.cell[2]; x++)
                    if (Math.max(...at(x, y)) < 128)
                        dark++;
            out.ink.push(dark);
        }
        if (a.clock) {
            const [cx, cy, cw, ch] = a.clock;
            let hash = 2166136261;
            for (let y = 0; y < c.height; y++)
                for (let x = 0; x < c.width; x++) {
                    if (y >= cy && y < cy + ch && x >= cx && x < cx + cw)
                        continue;
                    const i = (y * c.width + x) * 4;
                    hash = Math.imul(hash ^ (d[i] | d[i + 1] << 8 | d[i + 2] << 16), 16777619);
                }
            out.hash = hash >>> 0;
        }
        return out;
    }, { points, cell, cells, clock });
}

/* Within a lossy encoding's reach (24 a channel) of the colour hex
 * ("RRGGBB"). */
export function near(rgb, hex) {
    const v = parseInt(hex, 16);
    return Math.abs(rgb[0] - (v >> 16 & 255)) <= 24 && Math.abs(rgb[1] - (v >> 8 & 255)) <= 24 &&
        Math.abs(rgb[2] - (v & 255)) <= 24;
}

/* Clicks "Open in browser" on a pool's card: the viewer's new tab, its
 * document loaded. */
export async function openViewer(context, card) {
    const [viewer] = await Promise.all([
        context.waitForEvent('page'),
        card.getByRole('button', { name: 'Open in browser', exact: true }).click(),
    ]);
    await viewer.waitForLoadState('domcontentloaded');
    return viewer;
}

/* Waits for the viewer's data-state "connected"; a screenshot (shotName)
 * and the state it is in otherwise. */
export async function viewerConnected(viewer, timeoutMs, shotName) {
    try {
        await viewer.locator('body.viewer[data-state="connected"]').waitFor({ timeout: timeoutMs });
    } catch (e) {
        const state = await viewer.locator('body.viewer').getAttribute('data-state').catch(() => '?');
        await shot(viewer, shotName);
        throw new Failure(`the viewer is "${state}", not connected`);
    }
}

/* Clicks at (x, y) of the desktop (first: a canvasLook with its width and
 * height) and types text one key at a time, as a person types: the
 * guest's keyboard queue is short. */
export async function typeOnCanvas(viewer, first, x, y, text) {
    const canvas = viewer.locator('#screen canvas').first();
    const box = await canvas.boundingBox();
    check(box, 'the canvas is not on the page');
    await canvas.click({ position: { x: x * box.width / first.width, y: y * box.height / first.height } });
    await viewer.keyboard.type(text, { delay: 80 });
}
