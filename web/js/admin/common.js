/*
 * common.js - what the admin console's pages share: tables whose rows are
 * updated in place (focus, selection and images survive a refresh),
 * periodic refreshes whose failures show a non-blocking notice, buttons
 * that run one broker action and toast its result or error, and small
 * formatting helpers.
 */
import { el, every, toast } from '../ui.js';

export const DASH = '—';

/* Desktops in use by someone (the broker's bk_state_in_use). */
export const IN_USE = ['ASSIGNED', 'CONNECTED', 'DISCONNECTED'];

/* Desktops whose VM runs, so a screenshot can be taken. */
export const RUNNING = ['BOOTING', 'READY', 'ASSIGNED', 'CONNECTED', 'DISCONNECTED'];

/* Without a session: the portal logs in and comes back here. */
export function toLogin() {
    location.replace('index.html?next=admin.html');
}

/* A value, or "—" when the reply has none. */
export function dash(v) {
    return v === undefined || v === null || v === '' ? DASH : String(v);
}

/* Seconds since a Unix time in seconds. */
export function ageOf(unixSeconds) {
    return Date.now() / 1000 - unixSeconds;
}

/* The page's <h1> and an optional toolbar of controls beside it. */
export function pageHeader(title, ...controls) {
    return el('div', { class: 'page-head' },
        el('h1', {}, title),
        controls.length ? el('div', { class: 'page-tools' }, controls) : null);
}

/*
 * A notice for a failing refresh: shown with the broker's message while
 * requests fail, hidden when one succeeds. Never blocks the page.
 */
export function pollNotice() {
    const p = el('p', { class: 'notice error poll-notice', role: 'status', hidden: true });
    return {
        node: p,
        fail(what, e) {
            p.textContent = `${what}: ${e.message}. Retrying.`;
            p.hidden = false;
        },
        ok() {
            p.hidden = true;
            p.textContent = '';
        },
    };
}

/*
 * Loads data now, every ms while the page is visible, and on refresh();
 * render(data) gets only the newest reply (an older one arriving late is
 * dropped). A failure shows on notice as "what: message"; 401 means the
 * session ended. Returns {first (the first load's promise), refresh, stop}.
 */
export function refresher(ms, what, load, render, notice) {
    let seq = 0;
    let stopped = false;
    const refresh = async () => {
        const mine = ++seq;
        try {
            const data = await load();
            if (stopped || mine !== seq)
                return;
            render(data);
            notice.ok();
        } catch (e) {
            if (stopped || mine !== seq)
                return;
            if (e.status === 401)
                toLogin();
            else
                notice.fail(what, e);
        }
    };
    const first = refresh();
    const stopTimer = ms ? every(ms, refresh) : () => {};
    return {
        first,
        refresh,
        stop() {
            stopped = true;
            stopTimer();
        },
    };
}

/* A header cell; optional columns hide at narrow widths. */
export function th(label, optional = false) {
    return el('th', { scope: 'col', class: optional ? 'optional' : null }, label);
}

export function td(content, optional = false, cls = '') {
    const c = [cls, optional ? 'optional' : ''].filter(Boolean).join(' ');
    return el('td', { class: c || null }, content);
}

/*
 * A table in a horizontally scrolling .table-wrap, with a caption for
 * screen readers. Returns {wrap, table, tbody}.
 */
export function dataTable(caption, headers) {
    const tbody = el('tbody');
    const table = el('table', {},
        el('caption', { class: 'visually-hidden' }, caption),
        el('thead', {}, el('tr', {}, headers)),
        tbody);
    const wrap = el('div', { class: 'table-wrap' }, table);
    return { wrap, table, tbody };
}

/* A full-width row saying the table is empty. */
export function emptyRow(columns, text) {
    return el('tr', { dataset: { key: 'empty' } },
        el('td', { colspan: columns, class: 'muted empty' }, text));
}

/* The key of a row: its data-pool, data-desktop or data-key. */
function rowKey(tr) {
    return tr.dataset.pool ?? tr.dataset.desktop ?? tr.dataset.key ?? '';
}

/*
 * Makes tbody show rows (new <tr> elements, in order), keeping each old
 * row whose content is the same, so focus, text selection and images in
 * it stay. When a focused control's row is replaced, the control with the
 * same data-action in the new row gets the focus.
 */
export function updateRows(tbody, rows) {
    const old = new Map();
    for (const tr of tbody.rows)
        old.set(rowKey(tr), tr);
    const focused = document.activeElement;
    const focusRow = focused && tbody.contains(focused) ? focused.closest('tr') : null;
    let refocus = null;
    const keep = rows.map((tr) => {
        tr.dataset.sig = tr.outerHTML;
        const prev = old.get(rowKey(tr));
        if (prev && prev.dataset.sig === tr.dataset.sig)
            return prev;
        if (prev && prev === focusRow && focused.dataset.action)
            refocus = tr.querySelector(`[data-action="${focused.dataset.action}"]`);
        return tr;
    });
    keep.forEach((tr, i) => {
        if (tbody.rows[i] !== tr)
            tbody.insertBefore(tr, tbody.rows[i] || null);
    });
    while (tbody.rows.length > keep.length)
        tbody.rows[keep.length].remove();
    if (refocus)
        refocus.focus();
}

/*
 * A small button that runs one broker action: run() returns a promise of
 * the reply (null: nothing was done); success toasts done(reply) (when
 * given), failure toasts "label: the broker's message". A second click
 * while it runs is ignored. `action` is a stable name kept in data-action
 * (for the focus across refreshes).
 */
export function actionButton(label, action, run, done, cls = '') {
    const b = el('button', { type: 'button', class: `small ${cls}`.trim(), dataset: { action } }, label);
    b.addEventListener('click', async () => {
        if (b.getAttribute('aria-busy') === 'true')
            return;
        b.setAttribute('aria-busy', 'true');
        try {
            const reply = await run();
            if (reply !== null && done)
                toast(done(reply));
        } catch (e) {
            if (e.status === 401)
                toLogin();
            else
                toast(`${label}: ${e.message}`, 'error');
        } finally {
            b.removeAttribute('aria-busy');
        }
    });
    return b;
}

/*
 * Compact JSON for a details column ('' for nothing), with a space after
 * the top level's commas and colons so long values can wrap.
 */
export function compact(v) {
    if (v === undefined || v === null)
        return '';
    if (typeof v === 'string')
        return v;
    if (typeof v !== 'object' || Array.isArray(v))
        return JSON.stringify(v);
    const entries = Object.entries(v);
    if (!entries.length)
        return '';
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}: ${JSON.stringify(x)}`).join(', ')}}`;
}

/* A name or id in monospace, or "—". */
export function code(v) {
    return v ? el('span', { class: 'mono' }, v) : DASH;
}
