/*
 * pool-form.js - the form that creates a pool or edits one
 * (<form id="pool-form"> in a modal <dialog>), for the Pools page.
 *
 * Create sends POST /admin/pools with the name and every setting filled
 * in (empty optional text fields are left out, so the broker's defaults
 * apply); edit sends PATCH /admin/pools/NAME with the settings that
 * changed, so a change made meanwhile by someone else (maintenance, say)
 * is not overwritten. The broker validates: its message is shown in
 * #pool-form-error and the form stays open with what was typed.
 */
import { api } from '../api.js';
import { el, toast } from '../ui.js';
import { toLogin } from './common.js';

/*
 * The settings of broker/README.md, "Pools": key, label, kind (text,
 * number, select, list, check), the default a new pool starts with and
 * a hint. Number defaults are the broker's.
 */
const FIELDS = {
    name: { label: 'Name', kind: 'text', hint: '1 to 32 of a-z, 0-9 and "-"; cannot be changed later.' },
    description: { label: 'Description', kind: 'text', hint: 'Shown to users.' },
    type: { label: 'Type', kind: 'select', options: ['floating', 'dedicated'],
            hint: 'floating: a clean desktop after each logoff; dedicated: the user keeps it.' },
    provisioning: { label: 'Provisioning', kind: 'select', options: ['boot', 'instant'],
                    hint: 'boot: a linked clone of the golden image, booted.' },
    maintenance: { label: 'Maintenance', kind: 'check', hint: 'No launches and no provisioning while on.' },
    golden: { label: 'Golden image', kind: 'text',
              hint: 'Absolute path of the qcow2 image desktops are linked clones of.' },
    kernel: { label: 'Kernel', kind: 'text', hint: 'Optional: direct kernel boot.' },
    initrd: { label: 'Initrd', kind: 'text' },
    cmdline: { label: 'Kernel command line', kind: 'text' },
    min: { label: 'Minimum', kind: 'number', def: 0, hint: 'Desktops kept at least.' },
    max: { label: 'Maximum', kind: 'number', def: 10, hint: 'Desktops at most.' },
    spare: { label: 'Spare', kind: 'number', def: 1, hint: 'Ready unassigned desktops kept.' },
    vcpus: { label: 'vCPUs', kind: 'number', def: 1 },
    memory_mb: { label: 'Memory (MiB)', kind: 'number', def: 1024 },
    width: { label: 'Width', kind: 'number', def: 1024 },
    height: { label: 'Height', kind: 'number', def: 768 },
    accel: { label: 'Accelerator', kind: 'select', options: ['auto', 'kvm', 'tcg'],
             hint: 'auto: KVM when it works, else TCG.' },
    idle_timeout: { label: 'Idle timeout (s)', kind: 'number', def: 0, hint: '0: never.' },
    disconnect_timeout: { label: 'Disconnect timeout (s)', kind: 'number', def: 0, hint: '0: never.' },
    users: { label: 'Users', kind: 'list', hint: 'Comma-separated user names.' },
    groups: { label: 'Groups', kind: 'list', hint: 'Comma-separated group names.' },
};

const SECTIONS = [
    { legend: 'General', keys: ['name', 'description', 'type', 'provisioning', 'maintenance'] },
    { legend: 'Image', keys: ['golden', 'kernel', 'initrd', 'cmdline'],
      hint: 'Changing the image, kernel, initrd or command line starts a rolling image update.' },
    { legend: 'Size', keys: ['min', 'max', 'spare'] },
    { legend: 'Virtual machine', keys: ['vcpus', 'memory_mb', 'width', 'height', 'accel'] },
    { legend: 'Sessions', keys: ['idle_timeout', 'disconnect_timeout'] },
    { legend: 'Entitlement', keys: ['users', 'groups'],
      hint: 'Users who may launch desktops of this pool: by name or by group.' },
];

const inputId = (key) => `pool-${key.replace(/_/g, '-')}`;

/* One input with its <label> (and hint, tied by aria-describedby). */
function field(key) {
    const f = FIELDS[key];
    const id = inputId(key);
    const hintId = f.hint ? `${id}-hint` : null;
    const hint = f.hint ? el('p', { class: 'field-hint', id: hintId }, f.hint) : null;
    const common = { id, name: key, 'aria-describedby': hintId };
    if (f.kind === 'check')
        return el('div', { class: 'field field-check' },
            el('label', { class: 'inline', for: id }, el('input', { ...common, type: 'checkbox' }), f.label),
            hint);
    let input;
    if (f.kind === 'select')
        input = el('select', common, f.options.map((o) => el('option', { value: o }, o)));
    else if (f.kind === 'number')
        input = el('input', { ...common, type: 'number', inputmode: 'numeric', step: 1 });
    else
        input = el('input', { ...common, type: 'text', autocomplete: 'off', spellcheck: 'false' });
    return el('div', { class: `field field-${f.kind}` }, el('label', { for: id }, f.label), input, hint);
}

/* The value a setting has in the form, in the broker's JSON types. */
function readValue(key, input) {
    const kind = FIELDS[key].kind;
    if (kind === 'check')
        return input.checked;
    const text = input.value.trim();
    if (kind === 'number')
        return text === '' ? undefined : Number(text);
    if (kind === 'list')
        return text.split(',').map((s) => s.trim()).filter(Boolean);
    return text;
}

function writeValue(key, input, value) {
    const kind = FIELDS[key].kind;
    if (kind === 'check')
        input.checked = Boolean(value);
    else if (kind === 'list')
        input.value = (value || []).join(', ');
    else
        input.value = value === undefined || value === null ? '' : String(value);
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/*
 * Builds the dialog (appended to parent) and returns {open(pool)}:
 * open(null) for a new pool, open(poolJson) to edit one. onSaved(name)
 * runs after the broker accepted the form.
 */
export function poolForm(parent, onSaved) {
    const title = el('h2', { id: 'pool-dialog-title' }, 'New pool');
    const error = el('p', { id: 'pool-form-error', role: 'alert', class: 'error' });
    const save = el('button', { type: 'submit', class: 'primary' }, 'Save');
    const cancel = el('button', { type: 'button' }, 'Cancel');
    const form = el('form', { id: 'pool-form', novalidate: true },
        SECTIONS.map((s) => el('fieldset', {},
            el('legend', {}, s.legend),
            s.hint ? el('p', { class: 'field-hint' }, s.hint) : null,
            el('div', { class: 'field-grid' }, s.keys.map(field)))),
        /* kept in sight at the bottom of the dialog, next to Save */
        el('div', { class: 'form-footer' }, error, el('div', { class: 'actions' }, save, cancel)));
    const dialog = el('dialog', { id: 'pool-dialog', class: 'pool-dialog', 'aria-labelledby': 'pool-dialog-title' },
        title, form);
    parent.append(dialog);

    const input = (key) => form.elements.namedItem(key);
    const state = { editing: null, original: null, opener: null, saving: false };

    function fill(pool) {
        for (const [key, f] of Object.entries(FIELDS)) {
            const v = pool ? pool[key] : (f.def ?? (f.kind === 'select' ? f.options[0] : undefined));
            writeValue(key, input(key), v);
            input(key).removeAttribute('aria-invalid');
        }
    }

    function open(pool) {
        state.editing = pool ? pool.name : null;
        state.original = pool;
        state.opener = document.activeElement;
        title.textContent = pool ? `Edit pool ${pool.name}` : 'New pool';
        error.textContent = '';
        fill(pool);
        input('name').readOnly = Boolean(pool);
        dialog.showModal();
        input(pool ? 'description' : 'name').focus();
    }

    /* POST for a new pool: the name and every setting given. */
    function createBody() {
        const body = { name: input('name').value.trim() };
        for (const key of Object.keys(FIELDS)) {
            if (key === 'name')
                continue;
            const v = readValue(key, input(key));
            if (v === undefined || v === '')
                continue;
            body[key] = v;
        }
        return body;
    }

    /* PATCH for an edit: only what changed (an emptied number is sent as
     * null, so the broker says what it needs). */
    function patchBody() {
        const body = {};
        for (const key of Object.keys(FIELDS)) {
            if (key === 'name')
                continue;
            const v = readValue(key, input(key));
            if (!same(v, state.original[key]))
                body[key] = v === undefined ? null : v;
        }
        return body;
    }

    /* Marks the input the broker's message names ("min: must ..."). */
    function markInvalid(message) {
        const key = String(message).split(':')[0];
        if (Object.hasOwn(FIELDS, key))
            input(key).setAttribute('aria-invalid', 'true');
    }

    async function submit() {
        if (state.saving)
            return;
        error.textContent = '';
        for (const key of Object.keys(FIELDS))
            input(key).removeAttribute('aria-invalid');
        const name = state.editing || input('name').value.trim();
        let body = null;
        if (state.editing) {
            body = patchBody();
            if (!Object.keys(body).length) {
                close();
                toast(`Nothing changed in pool ${name}`);
                return;
            }
        }
        state.saving = true;
        form.setAttribute('aria-busy', 'true');
        try {
            if (state.editing)
                await api('PATCH', `/admin/pools/${encodeURIComponent(name)}`, body);
            else
                await api('POST', '/admin/pools', createBody());
            const created = !state.editing;
            close();
            toast(created ? `Pool ${name} created` : `Pool ${name} saved`);
            onSaved(name);
        } catch (e) {
            if (e.status === 401)
                toLogin();
            error.textContent = e.message;
            markInvalid(e.message);
        } finally {
            state.saving = false;
            form.removeAttribute('aria-busy');
        }
    }

    function close() {
        if (dialog.open)
            dialog.close();
    }

    /* Back to the button that opened the form (or its row's new copy). */
    dialog.addEventListener('close', () => {
        const o = state.opener;
        if (o && o.isConnected)
            o.focus();
        else if (state.editing)
            parent.querySelector(`tr[data-pool="${CSS.escape(state.editing)}"] [data-action="edit"]`)?.focus();
    });
    form.addEventListener('submit', (e) => {
        e.preventDefault();
        submit();
    });
    cancel.addEventListener('click', close);
    return { open, close };
}
