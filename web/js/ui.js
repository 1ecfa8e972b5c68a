/*
 * ui.js - small DOM helpers shared by the portal and the admin console.
 * No framework: pages build their elements with el() and replace whole
 * regions when data changes.
 */

/*
 * Makes an element: el('button', {class: 'primary', onclick: f}, 'Open').
 * Attributes starting with "on" become listeners; `dataset` is an object
 * of data-* values; null/undefined/false attributes are skipped; children
 * may be strings, nodes, arrays or null.
 */
export function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === null || v === undefined || v === false)
            continue;
        if (k.startsWith('on') && typeof v === 'function')
            e.addEventListener(k.slice(2), v);
        else if (k === 'dataset')
            Object.assign(e.dataset, v);
        else if (k === 'class')
            e.className = v;
        else if (v === true)
            e.setAttribute(k, '');
        else
            e.setAttribute(k, String(v));
    }
    append(e, children);
    return e;
}

function append(parent, children) {
    for (const c of children) {
        if (c === null || c === undefined || c === false)
            continue;
        if (Array.isArray(c))
            append(parent, c);
        else
            parent.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
}

/* Replaces the children of parent. */
export function replace(parent, ...children) {
    parent.replaceChildren();
    append(parent, children);
}

/*
 * A short message at the bottom of the page (role=status, read out by
 * screen readers); kind 'error' makes it an alert.
 */
export function toast(message, kind = 'info') {
    let box = document.getElementById('toasts');
    if (!box) {
        box = el('div', { id: 'toasts', class: 'toasts' });
        document.body.append(box);
    }
    const t = el('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
        message);
    box.append(t);
    setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

/* "3 h 12 min", "4 min", "12 s" for a number of seconds. */
export function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60)
        return `${seconds} s`;
    const m = Math.floor(seconds / 60);
    if (m < 60)
        return `${m} min`;
    const h = Math.floor(m / 60);
    return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}

/* A local date and time for Unix seconds (or milliseconds with ms = true). */
export function when(t, ms = false) {
    if (!t)
        return '';
    return new Date(ms ? t : t * 1000).toLocaleString();
}

/* A desktop state as the badge text users read ("READY" → "ready"). */
export function stateLabel(state) {
    return String(state || '').toLowerCase().replace(/_/g, ' ');
}

/* A <span class="badge state-STATE"> for a desktop or pool state. */
export function badge(state) {
    const s = String(state || 'unknown');
    return el('span', { class: `badge state-${s.toLowerCase()}` }, stateLabel(s));
}

/* Calls fn every ms while the page is visible; returns a stop function. */
export function every(ms, fn) {
    let timer = null;
    let stopped = false;
    const tick = async () => {
        if (stopped)
            return;
        if (!document.hidden) {
            try {
                await fn();
            } catch (e) {
                /* the page shows its own errors */
            }
        }
        timer = setTimeout(tick, ms);
    };
    timer = setTimeout(tick, ms);
    return () => {
        stopped = true;
        clearTimeout(timer);
    };
}

/*
 * Asks a yes/no question in a modal <dialog> (keyboard: Enter on the
 * focused button, Escape cancels). Resolves to true for yes.
 */
export function confirmDialog(title, text, yesLabel = 'OK') {
    return new Promise((resolve) => {
        const yes = el('button', { type: 'button', class: 'primary' }, yesLabel);
        const no = el('button', { type: 'button' }, 'Cancel');
        const d = el('dialog', { class: 'confirm', 'aria-label': title },
            el('h2', {}, title), el('p', {}, text), el('div', { class: 'actions' }, yes, no));
        const done = (v) => {
            d.close();
            d.remove();
            resolve(v);
        };
        yes.addEventListener('click', () => done(true));
        no.addEventListener('click', () => done(false));
        d.addEventListener('cancel', (e) => {
            e.preventDefault();
            done(false);
        });
        document.body.append(d);
        d.showModal();
        no.focus();
    });
}
