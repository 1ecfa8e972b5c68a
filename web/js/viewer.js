/*
 * viewer.js - a desktop in the browser (desktop.html): noVNC over the
 * broker's websocket gateway.
 *
 * The page's hash says what to open:
 *   #pool=NAME                  launch (or reattach to) my desktop in NAME
 *   #ticket=T&pool=NAME         a launch the portal or API already made
 *   #ticket=T&view=1&desktop=ID a helpdesk view (read-only) an admin asked for
 * A ticket opens the gateway once, so it is dropped from the address bar as
 * soon as it is read; reconnecting launches again for a fresh one.
 *
 * Connection states (body data-state, also for tests): connecting,
 * connected, reconnecting (after a drop, with backoff), disconnected (the
 * user chose to, or the desktop was logged off), failed (cannot connect).
 */
import RFB from '../vendor/novnc/core/rfb.js';
import { api, ApiError, me } from './api.js';
import { confirmDialog, toast } from './ui.js';

const $ = (id) => document.getElementById(id);

const params = new URLSearchParams(location.hash.slice(1));
const viewer = {
    pool: params.get('pool') || '',
    desktop: params.get('desktop') || '',
    viewOnly: params.get('view') === '1',
    ticket: params.get('ticket') || '',
    rfb: null,
    userClosed: false, /* Disconnect or Log off pressed */
    loggedOff: false,  /* the session ended: nothing to reconnect to */
    attempts: 0,       /* reconnects since the last good connection */
    timer: null,
};
/* For tests and debugging: the live RFB object. */
window.deskpoolViewer = viewer;

/* Reconnect delays after a drop (ms); then the user is asked. */
const BACKOFF = [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000];

function setState(state, text) {
    document.body.dataset.state = state;
    $('status').textContent = text;
    const overlay = state !== 'connected';
    $('overlay').hidden = !overlay;
    $('overlay-text').textContent = text;
    /* after a log off there is no session to go back to: a new one
     * starts from the portal */
    $('reconnect').hidden = !(state === 'disconnected' || state === 'failed') ||
        viewer.viewOnly || viewer.loggedOff;
}

/* The desktop's name where users look for it: the toolbar and the tab
 * (the RFB desktop name is the display's, the same for every desktop). */
function showTitle() {
    const name = viewer.viewOnly ? `Helpdesk view: ${viewer.desktop}`
        : [viewer.pool, viewer.desktop].filter(Boolean).join(' · ') || 'Desktop';
    $('title').textContent = name;
    document.title = `${name} - Deskpool`;
}

/* A fresh browser ticket for my desktop in the pool. */
async function launch() {
    const r = await api('POST', `/pools/${encodeURIComponent(viewer.pool)}/launch`,
        { protocol: 'browser' });
    if (r._status === 202)
        throw new ApiError(202, 'provisioning', r.message || 'Your desktop is being prepared');
    viewer.desktop = r.desktop.id;
    showTitle();
    return r.ticket;
}

async function connect() {
    clearTimeout(viewer.timer);
    viewer.userClosed = false;
    setState(viewer.attempts ? 'reconnecting' : 'connecting',
        viewer.attempts ? 'Reconnecting…' : 'Connecting to your desktop…');
    let ticket = viewer.ticket;
    viewer.ticket = '';
    try {
        if (!ticket) {
            if (viewer.viewOnly || !viewer.pool) {
                setState('failed', 'This link has been used. Open the desktop again from the portal.');
                return;
            }
            ticket = await launch();
        }
    } catch (e) {
        launchFailed(e);
        return;
    }
    open(ticket);
}

function launchFailed(e) {
    if (e.status === 401) {
        setState('failed', 'Your session has ended. Log in again.');
        $('back').textContent = 'Log in';
        return;
    }
    if (e.status === 202 || e.status === 0 || e.status >= 500) {
        retry(e.message);
        return;
    }
    setState('failed', e.message);
}

/*
 * Opens the websocket ourselves (noVNC accepts a channel) to learn its
 * close code: 1006 means the network went, anything else a deliberate
 * close by the broker or the display.
 */
function open(ticket) {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${proto}://${location.host}/ws?ticket=${encodeURIComponent(ticket)}`,
        ['binary']);
    ws.binaryType = 'arraybuffer';
    let closeCode = 0;
    ws.addEventListener('close', (e) => {
        closeCode = e.code;
    });
    const rfb = new RFB($('rfb'), ws, { wsProtocols: ['binary'] });
    viewer.rfb = rfb;
    rfb.viewOnly = viewer.viewOnly;
    rfb.scaleViewport = scalePreference();
    rfb.resizeSession = false;
    rfb.focusOnClick = true;
    rfb.background = '#111';
    rfb.addEventListener('connect', () => {
        viewer.attempts = 0;
        setState('connected', viewer.viewOnly ? 'Viewing (read-only)' : 'Connected');
        if (!viewer.viewOnly)
            rfb.focus();
    });
    rfb.addEventListener('disconnect', () => onDisconnect(rfb, closeCode));
    rfb.addEventListener('securityfailure', (e) => {
        setState('failed', `The desktop refused the connection: ${e.detail.reason || 'security failure'}`);
    });
    rfb.addEventListener('clipboard', (e) => {
        $('clipboard-text').value = e.detail.text;
        $('status').textContent = 'Text copied on the desktop is in the clipboard panel';
    });
}

async function onDisconnect(rfb, closeCode) {
    if (viewer.rfb !== rfb || document.body.dataset.state === 'failed')
        return;
    viewer.rfb = null;
    if (viewer.userClosed) {
        setState('disconnected', 'Disconnected. Your desktop keeps running.');
        return;
    }
    if (viewer.viewOnly) {
        setState('disconnected', 'The view has ended.');
        return;
    }
    /* The desktop may have been logged off (by the user elsewhere, an
     * admin or a timeout): then there is nothing to go back to. */
    if (closeCode !== 1006 && await loggedOff()) {
        viewer.loggedOff = true;
        setState('disconnected', 'Your desktop was logged off.');
        return;
    }
    retry('The connection was lost');
}

async function loggedOff() {
    try {
        const d = await api('GET', `/desktops/${encodeURIComponent(viewer.desktop)}`);
        return ['LOGGED_OFF', 'REFRESHING', 'DELETING', 'READY', 'BOOTING'].includes(d.state);
    } catch (e) {
        return e.status === 404 || e.status === 403;
    }
}

function retry(why) {
    if (viewer.attempts >= BACKOFF.length) {
        viewer.attempts = 0;
        setState('disconnected', `${why}. Reconnect when your network is back.`);
        return;
    }
    const delay = BACKOFF[viewer.attempts++];
    setState('reconnecting', `${why}. Reconnecting in ${Math.ceil(delay / 1000)} s…`);
    viewer.timer = setTimeout(connect, delay);
}

/* --- toolbar ----------------------------------------------------------------- */

function scalePreference() {
    return localStorage.getItem('deskpool.scale') === '1';
}

function toggleScale() {
    const on = !scalePreference();
    localStorage.setItem('deskpool.scale', on ? '1' : '0');
    $('scale').setAttribute('aria-pressed', on ? 'true' : 'false');
    if (viewer.rfb)
        viewer.rfb.scaleViewport = on;
}

function toggleClipboard(show = $('clipboard-panel').hidden) {
    $('clipboard-panel').hidden = !show;
    $('clipboard').setAttribute('aria-expanded', show ? 'true' : 'false');
    if (show)
        $('clipboard-text').focus();
    else if (viewer.rfb)
        viewer.rfb.focus();
}

/*
 * The panel talks to the desktop's clipboard through the broker and the
 * desktop's agent (the same path RDP's clipboard takes), so it works
 * whatever the guest's VNC side does with cut text.
 */
async function sendClipboard() {
    const text = $('clipboard-text').value;
    if (!text) {
        toast('Nothing to send: the text box is empty.', 'error');
        return;
    }
    try {
        await api('POST', `/desktops/${encodeURIComponent(viewer.desktop)}/clipboard`, { text });
        toast('Sent to the desktop\'s clipboard.');
    } catch (e) {
        toast(e.message, 'error');
    }
}

async function fetchClipboard() {
    try {
        const r = await api('GET', `/desktops/${encodeURIComponent(viewer.desktop)}/clipboard`);
        $('clipboard-text').value = r.text;
        toast('Copied from the desktop\'s clipboard.');
    } catch (e) {
        toast(e.message, 'error');
    }
}

async function toggleFullscreen() {
    try {
        if (document.fullscreenElement)
            await document.exitFullscreen();
        else
            await document.documentElement.requestFullscreen();
    } catch (e) {
        toast('Full screen is not available here.', 'error');
    }
}

function disconnect() {
    viewer.userClosed = true;
    clearTimeout(viewer.timer);
    if (viewer.rfb)
        viewer.rfb.disconnect();
    else
        setState('disconnected', 'Disconnected. Your desktop keeps running.');
}

async function logOff() {
    if (!await confirmDialog('Log off?', 'Unsaved work on the desktop is lost.', 'Log off'))
        return;
    try {
        await api('POST', `/desktops/${encodeURIComponent(viewer.desktop)}/logoff`);
        viewer.userClosed = viewer.loggedOff = true;
        clearTimeout(viewer.timer);
        /* its disconnect event is ours: onDisconnect ignores an RFB that
         * is no longer the viewer's */
        const rfb = viewer.rfb;
        viewer.rfb = null;
        if (rfb)
            rfb.disconnect();
        setState('disconnected', 'You are logged off.');
    } catch (e) {
        toast(e.message, 'error');
    }
}

function wire() {
    $('cad').addEventListener('click', () => viewer.rfb && viewer.rfb.sendCtrlAltDel());
    $('clipboard').addEventListener('click', () => toggleClipboard());
    $('clipboard-close').addEventListener('click', () => toggleClipboard(false));
    $('clipboard-send').addEventListener('click', sendClipboard);
    $('clipboard-fetch').addEventListener('click', fetchClipboard);
    $('scale').addEventListener('click', toggleScale);
    $('scale').setAttribute('aria-pressed', scalePreference() ? 'true' : 'false');
    $('fullscreen').addEventListener('click', toggleFullscreen);
    $('disconnect').addEventListener('click', disconnect);
    $('logoff').addEventListener('click', logOff);
    $('reconnect').addEventListener('click', () => {
        viewer.attempts = 0;
        connect();
    });
    /* the network coming back is a good moment to try at once */
    window.addEventListener('online', () => {
        if (document.body.dataset.state === 'reconnecting') {
            clearTimeout(viewer.timer);
            connect();
        }
    });
    if (viewer.viewOnly) {
        $('view-only').hidden = false;
        for (const id of ['cad', 'clipboard', 'logoff'])
            $(id).hidden = true;
    }
}

async function start() {
    /* the ticket is spent by the first connection: keep it out of the
     * address bar, history and any reload */
    const keep = new URLSearchParams();
    if (viewer.pool)
        keep.set('pool', viewer.pool);
    if (viewer.viewOnly) {
        keep.set('view', '1');
        keep.set('desktop', viewer.desktop);
    }
    history.replaceState(null, '', `#${keep}`);
    wire();
    showTitle();
    try {
        if (!await me()) {
            setState('failed', 'Log in first.');
            $('back').textContent = 'Log in';
            return;
        }
    } catch (e) {
        setState('failed', `The broker cannot be reached: ${e.message}`);
        return;
    }
    connect();
}

start();
