/*
 * events.js - the Events page (#events): the broker's audit log, newest
 * first, filtered by user, pool and time (datetime-local inputs, sent as
 * Unix milliseconds) with a limit of 50, 200 or 1000 events. "Refresh"
 * loads it again; without a filter it also refreshes every 10 s.
 */
import { api } from '../api.js';
import { el, every, when } from '../ui.js';
import {
    code, compact, dash, dataTable, emptyRow, pageHeader, pollNotice, refresher, td, th, updateRows,
} from './common.js';

export const title = 'Events';

const COLUMNS = 6;
const LIMITS = [50, 200, 1000];
/* The fields with a column of their own; the rest is "Details". */
const OWN = ['id', 'time', 'kind', 'user', 'pool', 'desktop'];

/* A labelled filter control. */
function filter(id, label, control) {
    control.id = id;
    return el('div', { class: 'filter' }, el('label', { for: id }, label), control);
}

/* Everything of an event but its own columns, as compact JSON. */
function details(e) {
    const rest = Object.fromEntries(Object.entries(e).filter(([k]) => !OWN.includes(k)));
    const keys = Object.keys(rest);
    if (!keys.length)
        return '';
    return compact(keys.length === 1 && keys[0] === 'detail' ? rest.detail : rest);
}

function row(e) {
    return el('tr', { dataset: { key: String(e.id ?? `${e.time}-${e.kind}`) } },
        td(el('time', { datetime: new Date(e.time).toISOString() }, when(e.time, true)), false, 'nowrap'),
        td(el('span', { class: 'kind' }, e.kind)),
        td(dash(e.user)),
        td(dash(e.pool), true),
        td(code(e.desktop)),
        td(el('code', { class: 'details' }, details(e))));
}

export function mount(section) {
    const notice = pollNotice();
    const user = el('input', { type: 'text', name: 'user', autocomplete: 'off', spellcheck: 'false' });
    const pool = el('input', { type: 'text', name: 'pool', autocomplete: 'off', spellcheck: 'false',
                               list: 'event-pools' });
    const poolNames = el('datalist', { id: 'event-pools' });
    const since = el('input', { type: 'datetime-local', name: 'since', step: 1 });
    const until = el('input', { type: 'datetime-local', name: 'until', step: 1 });
    const limit = el('select', { name: 'limit' },
        LIMITS.map((n) => el('option', { value: n, selected: n === 200 }, String(n))));
    const refreshButton = el('button', { type: 'submit', class: 'primary' }, 'Refresh');
    const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter events' },
        filter('event-filter-user', 'User', user),
        filter('event-filter-pool', 'Pool', pool),
        filter('event-filter-since', 'Since', since),
        filter('event-filter-until', 'Until', until),
        filter('event-filter-limit', 'Limit', limit),
        el('div', { class: 'filter filter-submit' }, refreshButton),
        poolNames);
    const count = el('p', { class: 'muted' });
    const t = dataTable('Events, newest first', [
        th('Time'), th('Kind'), th('User'), th('Pool', true), th('Desktop'), th('Details'),
    ]);
    section.append(pageHeader('Events'), form, notice.node, count, t.wrap);

    /* Local date-time of an input to Unix ms (empty: no bound). */
    const ms = (input) => (input.value ? new Date(input.value).getTime() : NaN);
    const filtered = () => Boolean(user.value.trim() || pool.value.trim() || since.value || until.value);

    function load() {
        const q = new URLSearchParams();
        if (user.value.trim())
            q.set('user', user.value.trim());
        if (pool.value.trim())
            q.set('pool', pool.value.trim());
        if (Number.isFinite(ms(since)))
            q.set('since', String(ms(since)));
        if (Number.isFinite(ms(until)))
            q.set('until', String(ms(until)));
        q.set('limit', limit.value);
        return Promise.all([api('GET', `/admin/events?${q}`), api('GET', '/admin/pools')]);
    }

    function render([reply, pools]) {
        const names = pools.pools.map((p) => p.name);
        if ([...poolNames.options].map((o) => o.value).join('\n') !== names.join('\n'))
            poolNames.replaceChildren(...names.map((n) => el('option', { value: n })));
        const events = reply.events;
        count.textContent = events.length >= Number(limit.value)
            ? `The newest ${events.length} events (the limit); narrow the filter or raise the limit for more.`
            : `${events.length} event${events.length === 1 ? '' : 's'}`;
        const rows = events.map(row);
        updateRows(t.tbody, rows.length ? rows : [emptyRow(COLUMNS, 'No events match.')]);
    }

    const list = refresher(0, 'Cannot load the events', load, render, notice);
    const stopAuto = every(10000, () => (filtered() ? null : list.refresh()));
    form.addEventListener('submit', (e) => {
        e.preventDefault();
        list.refresh();
    });
    for (const c of [user, pool, since, until, limit])
        c.addEventListener('change', list.refresh);
    return () => {
        list.stop();
        stopAuto();
    };
}
