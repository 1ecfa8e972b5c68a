/*
 * api.js - the broker's REST API (/api/v1, broker/README.md) for the
 * portal and the admin console.
 *
 * The session is the HttpOnly cookie the login set; every request that is
 * not a GET carries the session's CSRF token (X-CSRF-Token), which the
 * login reply and GET /me give. Errors are thrown as ApiError with the
 * broker's own message, so pages can show it as it is.
 */

let csrf = '';

/* An error reply: HTTP status, the broker's error code and message. */
export class ApiError extends Error {
    constructor(status, code, message, body) {
        super(message || `request failed (${status})`);
        this.status = status;
        this.code = code || '';
        this.body = body || {};
    }
}

/* Remembers the session's CSRF token (from a login reply or /me). */
export function setCsrf(token) {
    csrf = token || '';
}

/*
 * One request: method, path under /api/v1 (or an absolute path starting
 * with /api/ or /metrics), optional JSON body. Resolves to the parsed
 * reply ({} when empty) with its status as `_status`; rejects with
 * ApiError for 4xx/5xx and for a network failure (status 0).
 */
export async function api(method, path, body) {
    const url = path.startsWith('/api/') || path.startsWith('/metrics')
        ? path : `/api/v1${path}`;
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET' && method !== 'HEAD')
        headers['X-CSRF-Token'] = csrf;
    if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
    }
    let res;
    try {
        res = await fetch(url, init);
    } catch (e) {
        throw new ApiError(0, 'network', 'the broker cannot be reached');
    }
    const text = await res.text();
    let json = {};
    if (text) {
        try {
            json = JSON.parse(text);
        } catch (e) {
            json = { message: text };
        }
    }
    if (!res.ok)
        throw new ApiError(res.status, json.error, json.message, json);
    json._status = res.status;
    return json;
}

/*
 * The logged-in user ({user, admin, groups, csrf}), or null without a
 * session. Remembers the CSRF token.
 */
export async function me() {
    try {
        const m = await api('GET', '/me');
        setCsrf(m.csrf);
        return m;
    } catch (e) {
        if (e.status === 401)
            return null;
        throw e;
    }
}

/* Ends the session (the cookie is cleared by the broker). */
export async function logout() {
    try {
        await api('POST', '/logout');
    } finally {
        setCsrf('');
    }
}

/*
 * Starts a login conversation for username, or answers its prompts.
 * Replies are the broker's: {state: "prompt", conversation, prompts},
 * {state: "ok", user, admin, csrf, ...}; failures throw ApiError whose
 * body has state "failed" and the message to show.
 */
export async function loginStart(username) {
    return api('POST', '/login', { username });
}

export async function loginAnswer(conversation, answers) {
    const r = await api('POST', '/login', { conversation, answers });
    if (r.state === 'ok')
        setCsrf(r.csrf);
    return r;
}
