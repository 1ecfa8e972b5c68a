/*
 * sessions.js - the Sessions page (#sessions): the desktops in use, live
 * (every 5 s), with user, desktop, pool, protocol, client address, state
 * and how long the session has lasted; each can be disconnected (the
 * desktop stays the user's) or logged off.
 */
import { api } from '../api.js';
import { badge, duration, el, when } from '../ui.js';
import {
    actionButton, ageOf, code, dash, dataTable, emptyRow, pageHeader, pollNotice, refresher, td, th, updateRows,
} from './common.js';

export const title = 'Sessions';

const COLUMNS = 8;

const path = (id, rest) => `/admin/desktops/${encodeURIComponent(id)}${rest}`;

export function mount(section) {
    const notice = pollNotice();
    const count = el('p', { class: 'muted', role: 'status' });
    const t = dataTable('Sessions', [
        th('User'), th('Desktop'), th('Pool', true), th('Protocol'), th('Client', true), th('State'),
        th('Duration'), th('Actions'),
    ]);
    section.append(pageHeader('Sessions'), count, notice.node, t.wrap);

    /* Runs an action on the session's desktop, then refreshes. */
    const post = (id, action) => async () => {
        const r = await api('POST', path(id, `/${action}`));
        list.refresh();
        return r;
    };

    function row(s) {
        return el('tr', { dataset: { desktop: s.desktop } },
            td(s.user),
            td(code(s.desktop)),
            td(s.pool, true),
            td(dash(s.protocol)),
            td(code(s.client), true),
            td(badge(s.state)),
            td(el('span', { title: `since ${when(s.since)}` }, duration(ageOf(s.since))), false, 'num'),
            td(el('div', { class: 'row-actions' },
                actionButton('Disconnect', 'disconnect', post(s.desktop, 'disconnect'),
                    () => `${s.user} disconnected from ${s.desktop}`),
                actionButton('Log off', 'logoff', post(s.desktop, 'logoff'),
                    () => `${s.user} logged off ${s.desktop}`))));
    }

    function render(reply) {
        const sessions = reply.sessions;
        count.textContent = sessions.length === 1 ? '1 desktop in use' : `${sessions.length} desktops in use`;
        const rows = sessions.map(row);
        updateRows(t.tbody, rows.length ? rows : [emptyRow(COLUMNS, 'Nobody is using a desktop.')]);
    }

    const list = refresher(5000, 'Cannot refresh the sessions', () => api('GET', '/admin/sessions'), render,
        notice);
    return list.stop;
}
