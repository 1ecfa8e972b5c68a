/*
 * desktops.js - the Desktops page (#desktops): every desktop (filtered by
 * pool and user) with a thumbnail of its screen, state, user (and the
 * connected client's address), image generation, CPU and memory when the
 * broker reports them, and the helpdesk's actions: reset, refresh, power
 * off/on, log off, disconnect, delete (confirmed) and "View screen" (a
 * read-only viewer in a new tab). The table refreshes every 5 s, the
 * thumbnails every 15 s.
 */
import { api } from '../api.js';
import { badge, confirmDialog, duration, el, every, when } from '../ui.js';
import {
    DASH, RUNNING, actionButton, ageOf, code, dash, dataTable, emptyRow, pageHeader, pollNotice, refresher, td, th,
    updateRows,
} from './common.js';

export const title = 'Desktops';

const COLUMNS = 10;
const THUMB_EVERY = 15000;

const path = (id, rest = '') => `/admin/desktops/${encodeURIComponent(id)}${rest}`;

/* "2 vCPU · 14 %": what the reply has of vcpus and cpu_percent. */
function cpuText(d) {
    const parts = [];
    if (d.vcpus !== undefined && d.vcpus !== null)
        parts.push(`${d.vcpus} vCPU`);
    if (d.cpu_percent !== undefined && d.cpu_percent !== null)
        parts.push(`${Number(d.cpu_percent).toFixed(d.cpu_percent < 10 ? 1 : 0)} %`);
    return parts.join(' · ') || DASH;
}

/* "312 / 1024 MiB": resident memory of the VM and its size; an instant
 * clone's line below says how much of it is its own. */
function memoryText(d) {
    const has = (v) => v !== undefined && v !== null;
    if (!has(d.rss_mb) && !has(d.memory_mb))
        return DASH;
    const text = `${dash(has(d.rss_mb) ? Math.round(d.rss_mb) : null)} / ${dash(d.memory_mb)} MiB`;
    if (!has(d.private_mb))
        return text;
    return [text, el('div', { class: 'field-hint' }, `${d.private_mb} private · ${d.shared_mb} shared`)];
}

/*
 * Opens the desktop's screen read-only in a new tab. The tab is opened
 * within the click (a window.open after an await may be blocked) and
 * sent to the viewer once the broker gave its URL.
 */
async function viewScreen(id) {
    const w = window.open('about:blank', '_blank');
    if (!w)
        throw new Error('The browser blocked the new tab: allow pop-ups for this site');
    try {
        const reply = await api('POST', path(id, '/view'));
        w.opener = null;
        w.location.href = new URL(reply.url, location.href).href;
        return reply;
    } catch (e) {
        w.close();
        throw e;
    }
}

export function mount(section) {
    const notice = pollNotice();
    const poolSelect = el('select', { id: 'desktop-filter-pool', name: 'pool' },
        el('option', { value: '' }, 'All pools'));
    const userInput = el('input', { id: 'desktop-filter-user', name: 'user', type: 'text', autocomplete: 'off',
                                    spellcheck: 'false', 'aria-describedby': 'desktop-filter-user-hint' });
    const filters = el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter desktops' },
        el('div', {}, el('label', { for: 'desktop-filter-pool' }, 'Pool'), poolSelect),
        el('div', {}, el('label', { for: 'desktop-filter-user' }, 'User'), userInput,
            el('p', { class: 'field-hint', id: 'desktop-filter-user-hint' }, 'The exact user name.')));
    const t = dataTable('Desktops', [
        th('Screen'), th('Desktop'), th('Pool'), th('State'), th('User'), th('Image', true),
        th('CPU', true), th('Memory', true), th('Since', true), th('Actions'),
    ]);
    section.append(pageHeader('Desktops'), filters, notice.node, t.wrap);

    /* Thumbnails by desktop id, moved into a row when it is rebuilt. */
    const thumbs = new Map();
    let stamp = Date.now();
    const thumbUrl = (id) => `/api/v1${path(id, '/screenshot')}?t=${stamp}`;

    function thumb(id) {
        let img = thumbs.get(id);
        if (!img) {
            img = el('img', { class: 'thumb', alt: `screen of ${id}`, loading: 'lazy', width: 128, height: 96 });
            img.addEventListener('load', () => img.classList.remove('missing'));
            img.addEventListener('error', () => img.classList.add('missing'));
            img.src = thumbUrl(id);
            thumbs.set(id, img);
        }
        return img;
    }

    /* Puts thumbnails into rows of running desktops; forgets the others. */
    function placeThumbs(desktops) {
        const running = new Set(desktops.filter((d) => RUNNING.includes(d.state)).map((d) => d.id));
        for (const id of thumbs.keys())
            if (!running.has(id))
                thumbs.delete(id);
        for (const tr of t.tbody.rows) {
            const cell = tr.querySelector('td.thumb-cell');
            if (cell && running.has(tr.dataset.desktop) && !cell.querySelector('img'))
                cell.append(thumb(tr.dataset.desktop));
        }
    }

    function refreshThumbs() {
        stamp = Date.now();
        for (const [id, img] of thumbs)
            img.src = thumbUrl(id);
    }

    /* Runs an action, then refreshes the table. */
    const then = (fn) => async () => {
        const r = await fn();
        list.refresh();
        return r;
    };
    const post = (id, action) => then(() => api('POST', path(id, `/${action}`)));

    async function remove(id) {
        const yes = await confirmDialog(`Delete desktop ${id}?`,
            'The VM and its disk are deleted; a user on it loses the session. The pool makes a new one if it needs it.',
            'Delete');
        return yes ? api('POST', path(id, '/delete')) : null;
    }

    function actions(d) {
        const done = (what) => () => `${what} ${d.id}: done`;
        const off = d.state === 'MAINTENANCE';
        return el('div', { class: 'row-actions' },
            actionButton('View screen', 'view', () => viewScreen(d.id),
                () => `The screen of ${d.id} opens in a new tab`),
            actionButton('Reset', 'reset', post(d.id, 'reset'), done('Reset')),
            actionButton('Refresh', 'refresh', post(d.id, 'refresh'), done('Refresh')),
            off
                ? actionButton('Power on', 'power', post(d.id, 'power-on'), done('Power on'))
                : actionButton('Power off', 'power', post(d.id, 'power-off'), done('Power off')),
            actionButton('Log off', 'logoff', post(d.id, 'logoff'), done('Log off')),
            actionButton('Disconnect', 'disconnect', post(d.id, 'disconnect'), done('Disconnect')),
            actionButton('Delete', 'delete', then(() => remove(d.id)), () => `Desktop ${d.id} is being deleted`,
                'danger'));
    }

    /* The image generation, and how the VM was made: an instant clone
     * its agent did not personalise runs as a twin of its template. */
    function imageCell(d, pool) {
        const made = d.provisioning !== 'instant' ? null
            : el('div', { class: d.personalised ? 'field-hint' : 'field-hint error-text' },
                d.personalised ? 'instant clone' : 'instant clone, not personalised');
        if (!pool || pool.image_gen === d.image_gen)
            return [String(d.image_gen), made];
        return [String(d.image_gen), el('span', { class: 'muted' }, ` (pool: ${pool.image_gen})`), made];
    }

    function row(d, pool) {
        const running = RUNNING.includes(d.state);
        return el('tr', { dataset: { desktop: d.id, state: d.state } },
            td(running ? null : el('span', { class: 'thumb-none', 'aria-hidden': 'true' }, DASH), false, 'thumb-cell'),
            td(code(d.id)),
            td(d.pool),
            td([badge(d.state), d.error ? el('div', { class: 'field-hint error-text' }, d.error) : null]),
            td([dash(d.user), d.client ? el('div', { class: 'field-hint' }, `from ${d.client}`) : null]),
            td(imageCell(d, pool), true, 'num'),
            td(cpuText(d), true, 'num'),
            td(memoryText(d), true, 'num'),
            td(el('span', { title: when(d.state_since) }, `for ${duration(ageOf(d.state_since))}`), true, 'nowrap'),
            td(actions(d)));
    }

    /* The pool filter's options: every pool, keeping the choice made. */
    function fillPools(pools) {
        const names = pools.map((p) => p.name);
        const chosen = poolSelect.value;
        if (chosen && !names.includes(chosen))
            names.push(chosen);
        const have = [...poolSelect.options].slice(1).map((o) => o.value);
        if (have.join('\n') === names.join('\n'))
            return;
        poolSelect.replaceChildren(el('option', { value: '' }, 'All pools'),
            ...names.map((n) => el('option', { value: n }, n)));
        poolSelect.value = chosen;
    }

    function load() {
        const q = new URLSearchParams();
        if (poolSelect.value)
            q.set('pool', poolSelect.value);
        if (userInput.value.trim())
            q.set('user', userInput.value.trim());
        const query = q.toString() ? `?${q}` : '';
        return Promise.all([api('GET', `/admin/desktops${query}`), api('GET', '/admin/pools')]);
    }

    function render([desktops, pools]) {
        fillPools(pools.pools);
        const byName = new Map(pools.pools.map((p) => [p.name, p]));
        const rows = desktops.desktops.map((d) => row(d, byName.get(d.pool)));
        const filtered = poolSelect.value || userInput.value.trim();
        updateRows(t.tbody, rows.length ? rows
            : [emptyRow(COLUMNS, filtered ? 'No desktops match the filter.' : 'No desktops.')]);
        placeThumbs(desktops.desktops);
    }

    const list = refresher(5000, 'Cannot refresh the desktops', load, render, notice);
    const stopThumbs = every(THUMB_EVERY, refreshThumbs);

    let typing = null;
    userInput.addEventListener('input', () => {
        clearTimeout(typing);
        typing = setTimeout(list.refresh, 400);
    });
    poolSelect.addEventListener('change', list.refresh);
    filters.addEventListener('submit', (e) => {
        e.preventDefault();
        list.refresh();
    });
    return () => {
        clearTimeout(typing);
        list.stop();
        stopThumbs();
    };
}
