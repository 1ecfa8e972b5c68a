/*
 * nonadmin.mjs - a user who is no administrator (bob) gets nothing of the
 * admin console: no "Admin console" link in the portal, only the alert
 * "You are not an administrator." on /admin.html (whatever page its hash
 * names), and 403 from the admin API when the browser asks it directly.
 *
 * Inputs: DESKPOOL_URL, DESKPOOL_USER, DESKPOOL_PASSWORD.
 * RESULT: {adminLinks, pages: {HASH: {alert, poolRows, desktopRows,
 * poolForm}}, status: {PATH: HTTP status}}.
 */
import {
    check, env, fetchStatus, log, login, scenario, shot,
} from './lib.mjs';

const user = env('DESKPOOL_USER');
const password = env('DESKPOOL_PASSWORD');

await scenario('nonadmin', async (s) => {
    const context = await s.newContext();
    const page = await context.newPage();

    await login(page, user, password);
    const adminLinks = await page.getByRole('link', { name: 'Admin console' }).count();
    await shot(page, 'nonadmin-portal');

    const pages = {};
    for (const hash of ['', '#pools', '#desktops']) {
        /* a new load each time: the hash alone does not reload */
        await page.goto('about:blank');
        await page.goto(`${s.url}/admin.html${hash}`);
        const alert = page.getByRole('alert').filter({ hasText: 'You are not an administrator.' });
        await alert.first().waitFor();
        pages[hash || '#'] = {
            alert: (await alert.first().innerText()).trim(),
            poolRows: await page.locator('tr[data-pool]').count(),
            desktopRows: await page.locator('tr[data-desktop]').count(),
            poolForm: await page.locator('form#pool-form').count(),
        };
        log(`admin.html${hash}: ${JSON.stringify(pages[hash || '#'])}`);
        await shot(page, `nonadmin-admin${hash ? '-' + hash.slice(1) : ''}`);
    }

    const status = {};
    for (const p of ['/api/v1/admin/pools', '/api/v1/admin/desktops',
        '/api/v1/admin/sessions', '/api/v1/admin/events', '/api/v1/me'])
        status[p] = await fetchStatus(page, p);
    check(status['/api/v1/me'] === 200, 'bob\'s session did not last');
    return { adminLinks, pages, status };
});
