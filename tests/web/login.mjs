/*
 * login.mjs - the portal's login form, as a person uses it.
 *
 * Without DESKPOOL_OTP_PROMPT (a password-only PAM stack): a wrong
 * password shows the broker's message, the right one (typed into the
 * focused field, Enter to submit) shows "My desktops"
 * with the user's name and pool; "Log out" brings the form back and ends
 * the session.
 * With DESKPOOL_OTP_PROMPT (PAM asks a second, echoed question with that
 * text): after the password the form asks it; a wrong answer is refused
 * with the broker's message, DESKPOOL_OTP logs in.
 *
 * Inputs: DESKPOOL_URL, DESKPOOL_USER, DESKPOOL_PASSWORD, optional
 * DESKPOOL_POOL (a pool the user is entitled to), DESKPOOL_OTP_PROMPT,
 * DESKPOOL_OTP.
 * RESULT: {error, who, adminLinks, card, meAfterLogout} or, with an OTP,
 * {otpInputType, otpError, who}.
 */
import {
    check, env, fetchStatus, log, login, loginError, myDesktops, scenario,
    shot, submitLogin,
} from './lib.mjs';

const user = env('DESKPOOL_USER');
const password = env('DESKPOOL_PASSWORD');
const otpPrompt = process.env.DESKPOOL_OTP_PROMPT;

async function passwordOnly(page, url) {
    await page.goto(url + '/');
    await page.locator('form#login-form').waitFor();
    await shot(page, 'login-form');

    await submitLogin(page, user, `${password}-wrong`);
    const error = await loginError(page);
    log(`wrong password: "${error}"`);
    check(await myDesktops(page).count() === 0, 'a wrong password logged in');
    await shot(page, 'login-wrong-password');

    /* by keyboard alone: after a refusal the password field has the
     * focus (the user name is kept), and Enter submits */
    await page.keyboard.type(password);
    await page.keyboard.press('Enter');
    await myDesktops(page).waitFor();
    const who = (await page.locator('#who').innerText()).trim();
    check(who.includes(user), `#who shows "${who}", not ${user}`);
    check(await page.locator('#login-error').filter({ hasText: /\S/ }).isVisible() === false,
        'the login error still shows after a good login');
    const adminLinks = await page.getByRole('link', { name: 'Admin console' }).count();

    let card = null;
    const pool = process.env.DESKPOOL_POOL;
    if (pool) {
        const c = page.locator(`article.card[data-pool="${pool}"]`);
        await c.waitFor();
        card = {
            badge: (await c.locator('.badge').first().innerText()).trim(),
            buttons: {},
        };
        for (const name of ['Open in browser', 'Download .rdp', 'VNC details'])
            card.buttons[name] = await c.getByRole('button', { name, exact: true }).count();
    }
    await shot(page, 'login-portal');
    /* readable at tablet width: nothing wider than the window */
    await page.setViewportSize({ width: 768, height: 1024 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `at 768 px the portal is ${overflow} px wider than the window`);
    await shot(page, 'login-portal-tablet');
    await page.setViewportSize({ width: 1280, height: 720 });

    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await page.locator('form#login-form').getByLabel('User name', { exact: true }).waitFor();
    const meAfterLogout = await fetchStatus(page, '/api/v1/me');
    await shot(page, 'login-logged-out');
    return { error, who, adminLinks, card, meAfterLogout };
}

async function withOtp(page, url) {
    const otp = env('DESKPOOL_OTP');
    const form = page.locator('form#login-form');

    await page.goto(url + '/');
    await submitLogin(page, user, password);
    /* the password was right: PAM's second question, in its own words */
    const input = form.getByLabel(otpPrompt, { exact: true });
    await input.waitFor();
    const otpInputType = await input.getAttribute('type');
    check(!(await form.getByLabel('User name', { exact: true }).isVisible()),
        'the user name field still shows beside the OTP prompt');
    await shot(page, 'login-otp-prompt');

    await input.fill(`${otp}-wrong`);
    await form.getByRole('button', { name: 'Log in' }).click();
    const otpError = await loginError(page);
    log(`wrong OTP: "${otpError}"`);
    check(await myDesktops(page).count() === 0, 'a wrong OTP logged in');
    await shot(page, 'login-otp-wrong');

    await login(page, user, password, otp, otpPrompt);
    const who = (await page.locator('#who').innerText()).trim();
    await shot(page, 'login-otp-portal');
    return { otpInputType, otpError, who };
}

await scenario('login', async (s) => {
    const context = await s.newContext();
    const page = await context.newPage();
    return otpPrompt ? withOtp(page, s.url) : passwordOnly(page, s.url);
});
