/*
 * dashboard.js - the Dashboard page (#dashboard): tiles with the numbers
 * of now (sessions connected, desktops in use, ready, provisioning,
 * pools), a uPlot chart of sessions, ready and provisioning desktops over
 * the last hour, and each pool's utilisation (in use / total / max).
 *
 * Data: GET /admin/stats ({interval, now, samples, pools}; then
 * ?since=<ms of the last sample> every `interval` seconds, appending).
 * A broker without that route (404) is served from /admin/pools and
 * /admin/desktops instead, and the page keeps its own samples for the
 * chart while it is open, so it works either way.
 */
import uPlot from '../../vendor/uplot/uPlot.esm.js';
import { api } from '../api.js';
import { el, replace } from '../ui.js';
import { IN_USE, dataTable, emptyRow, pageHeader, pollNotice, refresher, td, th, updateRows } from './common.js';

export const title = 'Dashboard';

const HOUR_MS = 3600 * 1000;
const DEFAULT_INTERVAL = 10;
const CHART_HEIGHT = 260;
/* As the broker counts them for /admin/stats (broker/README.md, "Dashboard"). */
const PROVISIONING = ['PROVISIONING', 'BOOTING', 'REFRESHING'];

/* Samples for the chart, kept between visits: {t, sessions, in_use, ready, provisioning}, oldest first. */
const history = { source: '', samples: [] };

/* 'stats' (the broker's /admin/stats), 'lists' (computed here, asked once
 * per page load after a 404) or '' (not known yet). */
let source = '';

const TILES = [
    { key: 'sessions', label: 'Sessions connected' },
    { key: 'in_use', label: 'Desktops in use' },
    { key: 'ready', label: 'Ready' },
    { key: 'provisioning', label: 'Provisioning' },
    { key: 'pools', label: 'Pools' },
];

const SERIES = [
    { key: 'sessions', label: 'Sessions', stroke: '#1d5fbf' },
    { key: 'ready', label: 'Ready', stroke: '#1b7a3d' },
    { key: 'provisioning', label: 'Provisioning', stroke: '#b86e00', dash: [6, 4] },
];

/* What /admin/stats would say, from the pool and desktop lists. */
function statsFromLists(pools, desktops) {
    const count = (list, states) => list.filter((d) => states.includes(d.state)).length;
    const now = Date.now();
    return {
        interval: DEFAULT_INTERVAL,
        now,
        samples: [{
            t: now,
            sessions: count(desktops, ['CONNECTED']),
            in_use: count(desktops, IN_USE),
            ready: count(desktops, ['READY']),
            provisioning: count(desktops, PROVISIONING),
        }],
        pools: pools.map((p) => {
            const mine = desktops.filter((d) => d.pool === p.name);
            return {
                name: p.name, max: p.max, desktops: mine.length, in_use: count(mine, IN_USE),
                ready: count(mine, ['READY']), provisioning: count(mine, PROVISIONING),
            };
        }),
    };
}

/* Adds the samples newer than the last one kept; drops those older than an hour. */
function remember(from, stats) {
    if (history.source !== from)
        Object.assign(history, { source: from, samples: [] });
    const s = history.samples;
    for (const sample of stats.samples || [])
        if (!s.length || sample.t > s[s.length - 1].t)
            s.push(sample);
    const cut = (stats.now || Date.now()) - HOUR_MS;
    while (s.length && s[0].t < cut)
        s.shift();
}

function chartData() {
    const s = history.samples;
    return [s.map((x) => x.t / 1000), ...SERIES.map((k) => s.map((x) => x[k.key] ?? null))];
}

/* The chart, sized to its container. */
function makeChart(box) {
    const opts = {
        width: Math.max(box.clientWidth, 200),
        height: CHART_HEIGHT,
        series: [{}, ...SERIES.map((k) => ({ label: k.label, stroke: k.stroke, width: 2, dash: k.dash }))],
        scales: {
            /* the samples' span, at least five minutes (uPlot widens a
             * single point to days, so the range comes from the data) */
            x: { time: true, range: (u) => {
                const xs = u.data[0];
                const end = xs.length ? xs[xs.length - 1] : Date.now() / 1000;
                return [Math.min(xs.length ? xs[0] : end, end - 300), end];
            } },
            y: { range: (u, lo, hi) => [0, Math.max(4, Math.ceil((hi ?? 0) * 1.15))] },
        },
        axes: [
            { space: 90 },
            /* whole desktops only */
            { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000], values: (u, v) => v.map(String) },
        ],
    };
    return new uPlot(opts, chartData(), box);
}

export function mount(section) {
    const notice = pollNotice();
    const tiles = el('dl', { class: 'tiles' }, TILES.map((x) =>
        el('div', { class: 'tile', id: `tile-${x.key.replace('_', '-')}` },
            el('dt', {}, x.label), el('dd', {}, '—'))));
    const chartBox = el('div', { id: 'chart-activity', class: 'chart', role: 'img',
                                 'aria-label': 'Sessions, ready and provisioning desktops over time' });
    const chartNote = el('p', { class: 'field-hint' });
    const t = dataTable('Utilisation by pool', [
        th('Pool'), th('In use'), th('Total'), th('Max'), th('Ready', true), th('Provisioning', true),
        th('Utilisation'),
    ]);
    section.append(pageHeader('Dashboard'), notice.node, tiles,
        el('section', { class: 'panel chart-panel', 'aria-labelledby': 'chart-title' },
            el('h2', { id: 'chart-title' }, 'Sessions, ready and provisioning desktops over time'),
            chartBox, chartNote),
        el('section', { class: 'pool-usage', 'aria-labelledby': 'usage-title' },
            el('h2', { id: 'usage-title' }, 'Pools'), t.wrap));

    const chart = makeChart(chartBox);
    const resize = new ResizeObserver(() => {
        const w = chartBox.clientWidth;
        if (w > 0 && w !== chart.width)
            chart.setSize({ width: w, height: CHART_HEIGHT });
    });
    resize.observe(chartBox);

    let interval = DEFAULT_INTERVAL;

    async function fromLists() {
        const [pools, desktops] = await Promise.all([api('GET', '/admin/pools'), api('GET', '/admin/desktops')]);
        return statsFromLists(pools.pools, desktops.desktops);
    }

    async function load() {
        if (source === 'lists')
            return ['lists', await fromLists()];
        const last = history.source === 'stats' ? history.samples.at(-1) : null;
        try {
            return ['stats', await api('GET', last ? `/admin/stats?since=${last.t}` : '/admin/stats')];
        } catch (e) {
            if (e.status !== 404)
                throw e;
            source = 'lists';
            return ['lists', await fromLists()];
        }
    }

    function renderTiles(stats) {
        const last = history.samples.at(-1) || {};
        const values = { ...last, pools: (stats.pools || []).length };
        for (const x of TILES)
            tiles.querySelector(`#tile-${x.key.replace('_', '-')} dd`).textContent =
                values[x.key] === undefined ? '—' : String(values[x.key]);
        const now = TILES.slice(0, 4).map((x) => `${values[x.key] ?? 'no'} ${x.label.toLowerCase()}`).join(', ');
        chartBox.setAttribute('aria-label',
            `Sessions, ready and provisioning desktops over the last ${spanMinutes()} min; now ${now}`);
    }

    function spanMinutes() {
        const s = history.samples;
        return s.length > 1 ? Math.round((s.at(-1).t - s[0].t) / 60000) : 0;
    }

    function poolRow(p) {
        const pct = p.max > 0 ? Math.round((100 * p.in_use) / p.max) : null;
        return el('tr', { dataset: { pool: p.name } },
            td(el('strong', {}, p.name)),
            td(String(p.in_use), false, 'num'),
            td(String(p.desktops), false, 'num'),
            td(String(p.max), false, 'num'),
            td(String(p.ready), true, 'num'),
            td(String(p.provisioning), true, 'num'),
            td(el('div', { class: 'usage' },
                el('meter', { min: 0, max: Math.max(p.max, 1), value: p.in_use, low: 0.7 * p.max, high: 0.9 * p.max,
                              optimum: 0, 'aria-label': `${p.name}: ${p.in_use} of at most ${p.max} in use` }),
                el('span', { class: 'num' }, pct === null ? '—' : `${pct} %`))));
    }

    function render([from, stats]) {
        source = from;
        interval = stats.interval > 0 ? stats.interval : DEFAULT_INTERVAL;
        remember(from, stats);
        renderTiles(stats);
        chart.setData(chartData());
        replace(chartNote, from === 'lists'
            ? 'Collected by this page while it is open (the broker does not keep these numbers).'
            : `One sample every ${interval} s.`);
        const rows = (stats.pools || []).map(poolRow);
        updateRows(t.tbody, rows.length ? rows : [emptyRow(7, 'No pools yet.')]);
    }

    const data = refresher(0, 'Cannot refresh the dashboard', load, render, notice);
    /* Every `interval` seconds (the broker's), while the page is visible. */
    let timer = null;
    let stopped = false;
    const tick = async () => {
        if (!document.hidden)
            await data.refresh();
        if (!stopped)
            timer = setTimeout(tick, interval * 1000);
    };
    data.first.then(() => {
        if (!stopped)
            timer = setTimeout(tick, interval * 1000);
    });
    return () => {
        stopped = true;
        clearTimeout(timer);
        data.stop();
        resize.disconnect();
        chart.destroy();
    };
}
