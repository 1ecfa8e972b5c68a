/*
 * admin.js - the admin console (admin.html): checks the session, then
 * shows one page at a time by the location's hash (#dashboard, #pools,
 * #desktops, #sessions, #events; the modules in js/admin/).
 *
 * Without a session the portal's login comes first and returns here;
 * a user who is not an administrator gets a message and no admin data.
 * Each page module exports `title` and `mount(section)`, which builds the
 * page into the section, starts its refreshes and returns a function that
 * stops them when another page is shown. Modules load on first use.
 */
import { logout, me } from './api.js';
import { el, replace } from './ui.js';

/* The pages, loaded when first shown (nothing of them for non-admins). */
const PAGES = {
    dashboard: () => import('./admin/dashboard.js'),
    pools: () => import('./admin/pools.js'),
    desktops: () => import('./admin/desktops.js'),
    sessions: () => import('./admin/sessions.js'),
    events: () => import('./admin/events.js'),
};
const DEFAULT_PAGE = 'dashboard';

const $ = (id) => document.getElementById(id);

/* The page shown (or being loaded): its name and the function that stops
 * it; routes counts the pages asked for, so only the last one shows. */
let current = { name: '', stop: null };
let routes = 0;

function pageName() {
    const name = location.hash.replace(/^#/, '');
    return Object.hasOwn(PAGES, name) ? name : DEFAULT_PAGE;
}

/* Marks the nav link of the page shown with aria-current="page". */
function markNav(name) {
    for (const a of $('admin-nav').querySelectorAll('a')) {
        if (a.getAttribute('href') === `#${name}`)
            a.setAttribute('aria-current', 'page');
        else
            a.removeAttribute('aria-current');
    }
}

/* Shows the page the hash names (focus moves to it when the user navigated). */
async function route(moveFocus) {
    const name = pageName();
    if (name === current.name)
        return;
    if (current.stop)
        current.stop();
    current = { name, stop: null };
    const mine = ++routes;
    markNav(name);
    let page;
    try {
        page = await PAGES[name]();
    } catch (e) {
        if (mine === routes) {
            replace($('main'),
                el('p', { role: 'alert', class: 'notice error' }, `Cannot load this page: ${e.message}`));
            current.name = '';
        }
        return;
    }
    if (mine !== routes)
        return; /* another page was asked for meanwhile */
    const section = el('section', { class: 'page', id: `page-${name}` });
    replace($('main'), section);
    document.title = `${page.title} - Deskpool admin`;
    current.stop = page.mount(section);
    if (moveFocus) {
        const h1 = section.querySelector('h1');
        if (h1) {
            h1.tabIndex = -1;
            h1.focus();
        }
    }
}

/* The message for a user who is logged in but not an administrator. */
function showNotAdmin() {
    replace($('main'),
        el('section', { class: 'panel not-admin' },
            el('p', { role: 'alert', class: 'error' }, 'You are not an administrator.'),
            el('p', {}, el('a', { href: 'index.html' }, 'Back to my desktops'))));
}

/* The broker could not say who we are (not a missing session): retry. */
function showUnreachable(e) {
    replace($('main'),
        el('section', { class: 'panel not-admin' },
            el('p', { role: 'alert', class: 'error' }, `Cannot reach the broker: ${e.message}`),
            el('div', { class: 'actions' },
                el('button', { type: 'button', class: 'primary', onclick: start }, 'Try again'))));
}

async function onLogout() {
    try {
        await logout();
    } catch (e) {
        /* the session is gone either way */
    }
    location.replace('index.html');
}

async function start() {
    let who;
    try {
        who = await me();
    } catch (e) {
        showUnreachable(e);
        return;
    }
    if (!who) {
        location.replace('index.html?next=admin.html');
        return;
    }
    if (!who.admin) {
        showNotAdmin();
        return;
    }
    $('who').textContent = who.user;
    $('topbar').hidden = false;
    $('logout').addEventListener('click', onLogout);
    window.addEventListener('hashchange', () => route(true));
    route(false);
}

start();
