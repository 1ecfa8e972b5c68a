/*
 * portal.js - the user portal (index.html): the PAM login conversation and
 * "My desktops".
 *
 * Login: the form asks for a user name and a password, as users expect;
 * the page starts the broker's PAM conversation with the name and answers
 * the first password prompt with the password. Whatever else the stack
 * asks (an OTP, a second factor, information) is shown as PAM sends it,
 * one form per round, until the broker says ok or failed.
 *
 * My desktops: the pools the user is entitled to, refreshed every 5 s,
 * with the actions of each: open in the browser (desktop.html, which
 * launches by itself, so the new tab is opened within the click and no
 * popup blocker stops it), download an .rdp file, VNC details, disconnect
 * and log off.
 */
import { api, ApiError, loginAnswer, loginStart, logout, me } from './api.js';
import { badge, confirmDialog, el, every, replace, stateLabel, toast, when } from './ui.js';

const $ = (id) => document.getElementById(id);

/* Pages a login may return to (?next=): same-origin pages of ours only. */
const NEXT_PAGES = ['admin.html'];

let stopRefresh = null;

/* --- login ------------------------------------------------------------------- */

/* The conversation in progress: its id and the password not yet used. */
const login = { conversation: '', password: '', user: '' };

function showLogin(message = '') {
    if (stopRefresh)
        stopRefresh();
    $('desktops').hidden = true;
    $('who').hidden = $('admin-link').hidden = $('logout').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message;
    renderCredentials();
}

/* The first form: user name and password. */
function renderCredentials() {
    const form = $('login-form');
    replace(form,
        el('label', { for: 'username' }, 'User name'),
        el('input', { id: 'username', name: 'username', type: 'text', autocomplete: 'username',
                      autocapitalize: 'none', spellcheck: 'false', required: true,
                      value: login.user }),
        el('label', { for: 'password' }, 'Password'),
        el('input', { id: 'password', name: 'password', type: 'password',
                      autocomplete: 'current-password' }),
        el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Log in')));
    form.onsubmit = (e) => {
        e.preventDefault();
        startLogin($('username').value.trim(), $('password').value);
    };
    (login.user ? $('password') : $('username')).focus();
}

async function startLogin(user, password) {
    if (!user) {
        $('login-error').textContent = 'Enter your user name.';
        $('username').focus();
        return;
    }
    login.user = user;
    login.password = password;
    await step(() => loginStart(user));
}

/* Runs one request of the conversation and handles its reply. */
async function step(request) {
    const form = $('login-form');
    setBusy(form, true);
    $('login-error').textContent = '';
    try {
        onReply(await request());
    } catch (e) {
        login.conversation = '';
        login.password = '';
        showLogin(failureText(e));
    } finally {
        setBusy(form, false);
    }
}

function failureText(e) {
    if (!(e instanceof ApiError))
        return String(e.message || e);
    if (e.status === 429 && e.body.retry_after)
        return `${e.message} (try again in ${Math.ceil(e.body.retry_after / 60)} min)`;
    return e.message;
}

function setBusy(form, busy) {
    for (const b of form.querySelectorAll('button, input'))
        b.disabled = busy;
    form.setAttribute('aria-busy', busy ? 'true' : 'false');
}

function onReply(r) {
    if (r.state === 'ok') {
        login.conversation = login.password = '';
        for (const m of r.messages || [])
            toast(m);
        const next = new URLSearchParams(location.search).get('next');
        if (next && NEXT_PAGES.includes(next)) {
            location.assign(next);
            return;
        }
        showDesktops(r);
        return;
    }
    login.conversation = r.conversation;
    const answerable = r.prompts.filter((p) => p.style === 'password' || p.style === 'text');
    /* The password the user typed answers the stack's first password
     * question; anything else is asked on the page. */
    if (login.password && answerable.length === 1 && answerable[0].style === 'password' &&
        answerable.length === r.prompts.length) {
        const pw = login.password;
        login.password = '';
        step(() => loginAnswer(login.conversation, [pw]));
        return;
    }
    renderPrompts(r.prompts);
}

/* A form with PAM's own questions and messages. */
function renderPrompts(prompts) {
    const form = $('login-form');
    const inputs = [];
    const parts = prompts.map((p, i) => {
        const text = (p.text || '').trim();
        if (p.style === 'info' || p.style === 'error')
            return el('p', { class: p.style === 'error' ? 'prompt-info error' : 'prompt-info' }, text);
        const id = `answer-${i}`;
        const input = el('input', { id, name: 'answer', type: p.style === 'password' ? 'password' : 'text',
                                    autocomplete: p.style === 'password' ? 'current-password' : 'one-time-code',
                                    spellcheck: 'false' });
        inputs.push(input);
        return [el('label', { for: id }, text || 'Answer'), input];
    });
    replace(form, el('p', { class: 'muted' }, `Logging in as ${login.user}`), parts,
        el('div', { class: 'actions' },
            el('button', { type: 'submit', class: 'primary' }, 'Log in'),
            el('button', { type: 'button', onclick: () => showLogin() }, 'Start over')));
    form.onsubmit = (e) => {
        e.preventDefault();
        const answers = inputs.map((i) => i.value);
        /* info-only rounds are acknowledged with no answers */
        step(() => loginAnswer(login.conversation, answers));
    };
    if (inputs.length)
        inputs[0].focus();
    else
        form.querySelector('button[type=submit]').focus();
}

/* --- my desktops ------------------------------------------------------------- */

function showDesktops(who) {
    $('login').hidden = true;
    $('desktops').hidden = false;
    $('who').hidden = false;
    $('who').textContent = who.user;
    $('admin-link').hidden = !who.admin;
    $('logout').hidden = false;
    refresh();
    if (stopRefresh)
        stopRefresh();
    stopRefresh = every(5000, refresh);
}

async function refresh() {
    let pools;
    try {
        pools = (await api('GET', '/pools')).pools;
    } catch (e) {
        if (e.status === 401) {
            showLogin('Your session has ended. Log in again.');
            return;
        }
        notice(`Cannot load your desktops: ${e.message}`);
        return;
    }
    notice('');
    const list = $('pool-list');
    /* keep focus on the same button across a refresh */
    const focused = document.activeElement && document.activeElement.dataset
        ? document.activeElement.dataset.focusKey : null;
    if (!pools.length)
        replace(list, el('p', { class: 'muted' }, 'No desktop pools are assigned to you. Ask your IT department.'));
    else
        replace(list, pools.map(poolCard));
    if (focused) {
        const again = list.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`);
        if (again)
            again.focus();
    }
}

function notice(text) {
    $('desktops-notice').hidden = !text;
    $('desktops-notice').textContent = text;
}

/* The desktop the user holds in a pool, if any (newest first). */
function myDesktop(pool) {
    const mine = (pool.desktops || []).filter((d) => d.state !== 'DELETING');
    return mine.length ? mine[0] : null;
}

function poolCard(pool) {
    const d = myDesktop(pool);
    const usable = pool.state !== 'maintenance' && pool.state !== 'unavailable';
    const key = (what) => `${pool.name}:${what}`;
    const button = (label, what, onclick, extra = {}) =>
        el('button', { type: 'button', dataset: { focusKey: key(what) }, onclick, ...extra }, label);
    return el('article', { class: 'card', dataset: { pool: pool.name }, 'aria-labelledby': `pool-${pool.name}` },
        el('h2', { id: `pool-${pool.name}` }, pool.name),
        pool.description ? el('p', {}, pool.description) : null,
        el('p', { class: 'meta' }, badge(d ? d.state : pool.state), ' ',
            pool.type === 'dedicated' ? 'Your own desktop' : 'A fresh desktop each time',
            ` · ${pool.ready} ready`),
        d ? el('p', { class: 'meta' }, 'Your desktop ', el('code', {}, d.id), ': ',
               stateLabel(d.state), d.state_since ? ` since ${when(d.state_since)}` : '') : null,
        el('div', { class: 'actions' },
            button('Open in browser', 'open', () => openInBrowser(pool.name),
                { class: 'primary', disabled: !usable && !d }),
            button('Download .rdp', 'rdp', () => downloadRdp(pool.name, d), { disabled: !usable && !d }),
            button('VNC details', 'vnc', () => vncDetails(pool.name), { disabled: !usable && !d }),
            d ? button('Disconnect', 'disconnect', () => act(d, 'disconnect')) : null,
            d ? button('Log off', 'logoff', () => logOff(d), { class: 'danger' }) : null));
}

/* A tab per pool: opening it again brings the same tab back. */
function openInBrowser(pool) {
    const w = window.open(`desktop.html#pool=${encodeURIComponent(pool)}`, `deskpool-${pool}`);
    if (!w)
        toast('The browser blocked the new tab: allow pop-ups for this site.', 'error');
}

async function launch(pool, protocol) {
    const r = await api('POST', `/pools/${encodeURIComponent(pool)}/launch`, { protocol });
    if (r._status === 202)
        throw new ApiError(202, 'provisioning',
            r.message || 'Your desktop is being prepared. Try again in a few seconds.');
    return r;
}

/* With a desktop already held, its .rdp file straight away (one ticket);
 * else a launch assigns one first. */
async function downloadRdp(pool, desktop) {
    try {
        const href = desktop ? `/api/v1/desktops/${encodeURIComponent(desktop.id)}/rdp`
            : (await launch(pool, 'rdp')).rdp_file;
        const a = el('a', { href, download: `${pool}.rdp` });
        document.body.append(a);
        a.click();
        a.remove();
        toast('Open the downloaded file with your RDP client. It works once.');
    } catch (e) {
        toast(e.message, 'error');
    }
    refresh();
}

async function vncDetails(pool) {
    let r;
    try {
        r = await launch(pool, 'vnc');
    } catch (e) {
        toast(e.message, 'error');
        return;
    }
    $('vnc-host').textContent = r.host;
    $('vnc-port').textContent = r.port;
    $('vnc-address').textContent = `${r.host}::${r.port}`;
    $('vnc-password').textContent = r.password;
    $('vnc-expires').textContent = when(r.expires);
    $('vnc-dialog').showModal();
    $('vnc-close').focus();
    refresh();
}

async function act(d, what) {
    try {
        await api('POST', `/desktops/${encodeURIComponent(d.id)}/${what}`);
        toast(what === 'logoff' ? 'Logging off…' : 'Disconnected.');
    } catch (e) {
        toast(e.message, 'error');
    }
    refresh();
}

async function logOff(d) {
    if (await confirmDialog('Log off?', 'Unsaved work on the desktop is lost.', 'Log off'))
        act(d, 'logoff');
}

/* --- start ------------------------------------------------------------------- */

function wireStatic() {
    $('logout').addEventListener('click', async () => {
        try {
            await logout();
        } catch (e) {
            /* the session is gone either way */
        }
        showLogin('You are logged out.');
    });
    $('vnc-close').addEventListener('click', () => $('vnc-dialog').close());
    $('vnc-copy').addEventListener('click', async () => {
        try {
            await navigator.clipboard.writeText($('vnc-password').textContent);
            toast('Password copied.');
        } catch (e) {
            toast('Copy it by hand: the browser does not allow it here.', 'error');
        }
    });
}

async function start() {
    wireStatic();
    try {
        const who = await me();
        const next = new URLSearchParams(location.search).get('next');
        if (who && next && NEXT_PAGES.includes(next))
            location.replace(next);
        else if (who)
            showDesktops(who);
        else
            showLogin();
    } catch (e) {
        showLogin(`The broker cannot be reached: ${e.message}`);
    }
}

start();
