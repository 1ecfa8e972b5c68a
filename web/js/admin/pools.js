/*
 * pools.js - the Pools page (#pools): every pool with its sizes, its
 * desktops (total and ready), its state (maintenance, restrained, ok) and
 * how far a rolling image update got ("3 of 5 desktops on image 2"),
 * refreshed every 5 s; "New pool", and per pool Edit (pool-form.js),
 * Maintenance on/off, Resume (restrained pools) and Delete (confirmed).
 */
import { api } from '../api.js';
import { badge, confirmDialog, el } from '../ui.js';
import {
    actionButton, dataTable, emptyRow, pageHeader, pollNotice, refresher, td, th, updateRows,
} from './common.js';
import { poolForm } from './pool-form.js';

export const title = 'Pools';

const path = (name, rest = '') => `/admin/pools/${encodeURIComponent(name)}${rest}`;

/* Desktop counts of one pool, from the admin desktop list. */
function countDesktops(pool, desktops) {
    const mine = desktops.filter((d) => d.pool === pool.name);
    return {
        total: mine.length,
        ready: mine.filter((d) => d.state === 'READY').length,
        current: mine.filter((d) => d.image_gen === pool.image_gen).length,
    };
}

/* Badges for the pool's state: deleting, maintenance, restrained, or ok. */
function stateCell(p) {
    const states = [];
    if (p.deleting)
        states.push('deleting');
    if (p.maintenance)
        states.push('maintenance');
    if (p.restrained)
        states.push('restrained');
    const badges = (states.length ? states : ['ok']).map(badge);
    const failures = p.errors > 0
        ? el('div', { class: 'field-hint error-text' },
            `${p.errors} provisioning failure${p.errors === 1 ? '' : 's'}: ${p.last_error}`)
        : null;
    return [el('div', { class: 'badges' }, badges), failures];
}

/* "3 of 5 desktops on image 2", with a bar while an update rolls. */
function imageCell(p, n) {
    if (!n.total)
        return el('span', { class: 'muted' }, `image ${p.image_gen}, no desktops`);
    const text = `${n.current} of ${n.total} desktops on image ${p.image_gen}`;
    return [
        el('div', {}, text),
        n.current < n.total
            ? el('progress', { max: n.total, value: n.current, 'aria-label': `Image update of ${p.name}` })
            : null,
    ];
}

export function mount(section) {
    const notice = pollNotice();
    const t = dataTable('Pools', [
        th('Name'), th('Type', true), th('Provisioning', true), th('Min / max / spare'),
        th('Desktops'), th('State'), th('Image'), th('Actions'),
    ]);
    const form = poolForm(section, () => list.refresh());
    const newPool = el('button', { type: 'button', class: 'primary', id: 'new-pool', onclick: () => form.open(null) },
        'New pool');
    section.append(pageHeader('Pools', newPool), notice.node, t.wrap);

    /* The form with the pool as the broker has it now. */
    async function edit(name) {
        form.open(await api('GET', path(name)));
        return null;
    }

    async function remove(name) {
        const yes = await confirmDialog(`Delete pool ${name}?`,
            `Its desktops are deleted first, with whatever is on them; users lose their sessions.`,
            'Delete');
        return yes ? api('DELETE', path(name)) : null;
    }

    /* Runs an action, then refreshes the table. */
    const then = (fn) => async () => {
        const r = await fn();
        list.refresh();
        return r;
    };

    function actions(p) {
        const busy = Boolean(p.deleting);
        const buttons = [
            actionButton('Edit', 'edit', () => edit(p.name)),
            actionButton(p.maintenance ? 'Maintenance off' : 'Maintenance on', 'maintenance',
                then(() => api('PATCH', path(p.name), { maintenance: !p.maintenance })),
                () => `Pool ${p.name}: maintenance ${p.maintenance ? 'off' : 'on'}`),
            p.restrained
                ? actionButton('Resume', 'resume', then(() => api('POST', path(p.name, '/resume'))),
                    () => `Pool ${p.name} resumed`)
                : null,
            actionButton('Delete', 'delete', then(() => remove(p.name)),
                () => `Pool ${p.name} is being deleted`, 'danger'),
        ].filter(Boolean);
        if (busy)
            buttons.forEach((b) => { b.disabled = true; });
        return el('div', { class: 'row-actions' }, buttons);
    }

    function row(p, desktops) {
        const n = countDesktops(p, desktops);
        return el('tr', { dataset: { pool: p.name } },
            td([el('strong', {}, p.name), p.description ? el('div', { class: 'muted small' }, p.description) : null]),
            td(p.type, true),
            td(p.provisioning, true),
            td(`${p.min} / ${p.max} / ${p.spare}`, false, 'num'),
            td(`${n.total} total, ${n.ready} ready`),
            td(stateCell(p)),
            td(imageCell(p, n)),
            td(actions(p)));
    }

    const list = refresher(5000, 'Cannot refresh the pools',
        () => Promise.all([api('GET', '/admin/pools'), api('GET', '/admin/desktops')]),
        ([pools, desktops]) => {
            const rows = pools.pools.map((p) => row(p, desktops.desktops));
            updateRows(t.tbody, rows.length ? rows : [emptyRow(8, 'No pools yet. "New pool" makes one.')]);
        },
        notice);
    return () => {
        list.stop();
        form.close();
    };
}
