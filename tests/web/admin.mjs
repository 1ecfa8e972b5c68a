/*
 * admin.mjs - an administrator's day in the admin console: log in through
 * the portal, follow "Admin console", look at every page (Dashboard,
 * Pools, Desktops, Sessions, Events: each screenshot under the
 * artifacts), create a pool with the "New pool" form (first with Minimum
 * above Maximum: the broker's message shows in the form; then right, with
 * Minimum 1), and watch the pool's desktop become ready on the Desktops
 * page (which refreshes itself: no reload).
 *
 * Inputs: DESKPOOL_URL, DESKPOOL_USER, DESKPOOL_PASSWORD, DESKPOOL_NEW_POOL
 * (the pool's name), DESKPOOL_GOLDEN, DESKPOOL_KERNEL, DESKPOOL_INITRD,
 * DESKPOOL_CMDLINE, DESKPOOL_MEMORY, DESKPOOL_ACCEL, DESKPOOL_GROUPS (the
 * test image's pool settings), DESKPOOL_READY_MS (how long the desktop
 * may take to be ready; default 150000).
 * RESULT: {headings: {PAGE: h1 text}, formError, poolRow, desktop, badge,
 * eventsMentionPool}.
 */
import {
    check, env, log, login, poll, scenario, shot, Failure,
} from './lib.mjs';

const name = env('DESKPOOL_NEW_POOL');
const readyMs = Number(env('DESKPOOL_READY_MS', '150000'));

/* Sets the form field labelled label: inputs, selects, checkboxes. */
async function setField(form, label, value) {
    const field = form.getByLabel(label, { exact: true });
    const kind = await field.evaluate((e) => `${e.tagName.toLowerCase()}:${e.type || ''}`);
    if (kind.startsWith('select'))
        await field.selectOption(String(value));
    else if (kind === 'input:checkbox')
        await field.setChecked(Boolean(value));
    else
        await field.fill(String(value));
}

/* The visible <h1> texts of the page, joined. */
async function heading(page) {
    const texts = await page.locator('h1:visible').allInnerTexts();
    return texts.map((t) => t.trim()).filter((t) => t).join(' / ');
}

/* Follows a nav link and waits for the page's heading to change. */
async function go(page, link, before) {
    await page.locator('nav').getByRole('link', { name: link, exact: true }).click();
    let h = '';
    await poll(`the ${link} page's heading`, 15000, 100, async () => {
        h = await heading(page);
        return h && h !== before;
    });
    log(`${link}: "${h}" at ${new URL(page.url()).hash}`);
    return h;
}

await scenario('admin', async (s) => {
    const context = await s.newContext();
    const page = await context.newPage();
    const headings = {};

    await login(page, env('DESKPOOL_USER'), env('DESKPOOL_PASSWORD'));
    const consoleLink = page.getByRole('link', { name: 'Admin console', exact: true });
    await consoleLink.waitFor();
    await shot(page, 'admin-portal');
    await consoleLink.click();
    await page.waitForURL(/\/admin\.html/);

    /* Dashboard */
    await poll('the dashboard\'s heading', 15000, 100, async () => !!(await heading(page)));
    headings.Dashboard = await heading(page);
    const chart = page.locator('#chart-activity');
    await chart.waitFor();
    /* the chart draws once its data came: give it its first draw */
    await poll('the activity chart', 15000, 200,
        async () => (await chart.locator('canvas, svg').count()) > 0);
    await shot(page, 'admin-dashboard');

    /* Pools, and a new pool */
    headings.Pools = await go(page, 'Pools', headings.Dashboard);
    await shot(page, 'admin-pools');
    await page.getByRole('button', { name: 'New pool', exact: true }).click();
    const form = page.locator('form#pool-form');
    await form.waitFor();
    const fields = {
        Name: name,
        Description: 'made in the browser test',
        'Golden image': env('DESKPOOL_GOLDEN'),
        Kernel: env('DESKPOOL_KERNEL'),
        Initrd: env('DESKPOOL_INITRD'),
        'Kernel command line': env('DESKPOOL_CMDLINE'),
        Minimum: 2,
        Maximum: 1,
        Spare: 1,
        'Memory (MiB)': env('DESKPOOL_MEMORY'),
        Accelerator: env('DESKPOOL_ACCEL'),
        Groups: env('DESKPOOL_GROUPS'),
    };
    for (const [label, value] of Object.entries(fields))
        await setField(form, label, value);
    await shot(page, 'admin-pool-form');
    await form.getByRole('button', { name: 'Save', exact: true }).click();
    const errorBox = page.locator('#pool-form-error');
    await errorBox.filter({ hasText: /\S/ }).waitFor();
    check(await errorBox.getAttribute('role') === 'alert', '#pool-form-error is not role=alert');
    const formError = (await errorBox.innerText()).trim();
    log(`Minimum above Maximum: "${formError}"`);
    await errorBox.scrollIntoViewIfNeeded();
    await shot(page, 'admin-pool-form-error');

    await setField(form, 'Minimum', 1);
    await setField(form, 'Maximum', 1);
    await form.getByRole('button', { name: 'Save', exact: true }).click();
    const row = page.locator(`tr[data-pool="${name}"]`);
    try {
        await row.waitFor();
    } catch (e) {
        const err = await errorBox.innerText().catch(() => '');
        throw new Failure(`no row for pool ${name} after Save${err ? `: ${err}` : ''}`);
    }
    const poolRow = (await row.innerText()).replace(/\s+/g, ' ').trim();
    await shot(page, 'admin-pools-created');

    /* Desktops: the new pool's desktop becomes ready */
    headings.Desktops = await go(page, 'Desktops', headings.Pools);
    const rows = page.locator('tr[data-desktop]').filter({ hasText: name });
    let badge = '';
    /* no reload: the page refreshes itself while it is shown */
    await poll(`a ready desktop of ${name} on the Desktops page`, readyMs, 500, async () => {
        const n = await rows.count();
        for (let i = 0; i < n; i++) {
            badge = (await rows.nth(i).locator('.badge').first().innerText().catch(() => '')).trim();
            if (/^ready$/i.test(badge))
                return true;
        }
        return false;
    }).catch(async (e) => {
        await shot(page, 'admin-desktops-not-ready');
        throw new Failure(`${e.message} (badge: "${badge}")`);
    });
    const ready = rows.filter({ has: page.locator('.badge', { hasText: /^\s*ready\s*$/i }) }).first();
    const desktop = await ready.getAttribute('data-desktop');
    log(`desktop ${desktop} is ${badge}`);
    await shot(page, 'admin-desktops');

    /* Sessions and Events */
    headings.Sessions = await go(page, 'Sessions', headings.Desktops);
    await shot(page, 'admin-sessions');
    headings.Events = await go(page, 'Events', headings.Sessions);
    let eventsMentionPool = false;
    await poll('an event of the new pool', 15000, 300, async () => {
        eventsMentionPool = (await page.locator('main, body').first().innerText()).includes(name);
        return eventsMentionPool;
    }).catch(() => {});
    await shot(page, 'admin-events');

    /* the dashboard again, now with a pool and a desktop */
    await go(page, 'Dashboard', headings.Events);
    await shot(page, 'admin-dashboard-later');
    return { headings, formError, poolRow, desktop, badge, eventsMentionPool };
});
