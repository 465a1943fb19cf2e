import { Buffer } from 'node:buffer';
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
// Node's timers, not the global ones: on Deno only these have unref().
import { clearTimeout, setTimeout } from 'node:timers';
import Fastify, {} from 'fastify';
import { z } from 'zod';
const MAX_RECORDED = 1_000;
const MAX_HANG_MS = 60_000;
const REDACTED = '[redacted]';
const secretBody = ['client_secret', 'code', 'refresh_token'];
const random = (prefix = '') => `${prefix}${randomBytes(24).toString('base64url')}`;
/*
 * Tokens carry what they grant, signed with the app secret, so a sandbox restarted on the same
 * DATA_DIR (same secret) still honours the tokens its previous run issued, as Wix would:
 *   refresh: OAUTH2.R.<instanceId>.<nonce>.<mac>
 *   access:  OAUTH2.A.<instanceId>.<expiresAtMs>.<nonce>.<mac>
 */
const REFRESH_PREFIX = 'OAUTH2.R.';
const ACCESS_PREFIX = 'OAUTH2.A.';
function tokenSigner(appSecret) {
    const key = createHmac('sha256', appSecret).update('fake-wix token signing key').digest();
    const mac = (payload) => createHmac('sha256', key).update(payload).digest('base64url');
    return {
        sign: (prefix, fields) => {
            const payload = `${prefix}${[...fields, randomBytes(12).toString('base64url')].join('.')}`;
            return `${payload}.${mac(payload)}`;
        },
        /** The signed fields (nonce dropped), or undefined for a forged or malformed token. */
        open(prefix, token, count) {
            if (!token.startsWith(prefix))
                return undefined;
            const dot = token.lastIndexOf('.');
            const payload = token.slice(0, dot);
            if (!safeEqual(token.slice(dot + 1), mac(payload)))
                return undefined;
            const parts = payload.slice(prefix.length).split('.');
            parts.pop();
            // The instanceId comes first and may itself hold dots: the other fields are counted from the end.
            if (parts.length < count)
                return undefined;
            return [parts.slice(0, parts.length - count + 1).join('.'), ...parts.slice(parts.length - count + 1)];
        },
    };
}
export function createFakeWix(opts) {
    const now = opts.now ?? Date.now;
    const codeTtlMs = opts.codeTtlMs ?? 600_000;
    const accessTokenTtlMs = opts.accessTokenTtlMs ?? 300_000;
    const failures = [];
    const installs = new Map();
    const revoked = new Set();
    const signer = tokenSigner(opts.appSecret);
    const held = new Set();
    const wix = {
        appId: opts.appId,
        appSecret: opts.appSecret,
        requests: [],
        issuedCodes: new Map(),
        refreshTokens: new Map(),
        now,
        failNext(f) { failures.push({ ...f, left: f.times ?? 1 }); },
        reset() {
            wix.requests.length = 0;
            failures.length = 0;
            wix.releaseAll();
        },
        instanceIdFor(installToken, forced) {
            const known = installToken ? installs.get(installToken) : undefined;
            const id = forced ?? known ?? randomUUID();
            if (installToken)
                installs.set(installToken, id);
            return id;
        },
        issueCode(instanceId = randomUUID()) {
            const code = random('OAUTH2.code.');
            wix.issuedCodes.set(code, { instanceId, expiresAt: now() + codeTtlMs, used: false });
            return { code, instanceId };
        },
        countExchanges(code) {
            return wix.requests.filter((r) => r.endpoint === 'oauth/access' && r.body?.code === code).length;
        },
        isValidAccessToken(token) {
            const fields = signer.open(ACCESS_PREFIX, token, 2);
            return fields !== undefined && now() < Number(fields[1]);
        },
        verifyRefreshToken(token) {
            const instanceId = signer.open(REFRESH_PREFIX, token, 1)?.[0];
            if (instanceId === undefined || revoked.has(token))
                return undefined;
            if (!wix.refreshTokens.has(token))
                wix.refreshTokens.set(token, { instanceId, revoked: false });
            return instanceId;
        },
        revokeRefreshToken(token) {
            revoked.add(token);
            const t = wix.refreshTokens.get(token);
            if (t)
                t.revoked = true;
        },
        mintTokens(instanceId, refreshToken) {
            const access_token = signer.sign(ACCESS_PREFIX, [instanceId, String(now() + accessTokenTtlMs)]);
            // Wix refresh tokens do not rotate: a refresh answers with the one it was given.
            const refresh_token = refreshToken ?? signer.sign(REFRESH_PREFIX, [instanceId]);
            if (!refreshToken)
                wix.refreshTokens.set(refresh_token, { instanceId, revoked: false });
            return { access_token, refresh_token };
        },
        takeFailure(endpoint, grant) {
            const i = failures.findIndex((f) => (f.endpoint === 'any' || f.endpoint === endpoint) && (!f.grant || f.grant === grant));
            if (i < 0)
                return undefined;
            const f = failures[i];
            if (--f.left <= 0)
                failures.splice(i, 1);
            return f;
        },
        pendingFailures: () => failures.map((f) => ({ ...f })),
        hold(ms) {
            return new Promise((resolve) => {
                const release = () => { clearTimeout(timer); held.delete(release); resolve('released'); };
                const timer = setTimeout(() => { held.delete(release); resolve('elapsed'); }, Math.min(ms, MAX_HANG_MS));
                timer.unref();
                held.add(release);
            });
        },
        releaseAll() { for (const release of [...held])
            release(); },
    };
    return wix;
}
// ---- inputs ---------------------------------------------------------------------------------
const httpUrl = z.string().refine((s) => {
    try {
        return ['http:', 'https:'].includes(new URL(s).protocol);
    }
    catch {
        return false;
    }
}, 'must be an absolute http(s) URL');
const installQuery = z.object({
    appId: z.string().min(1),
    redirectUrl: httpUrl,
    state: z.string().min(1),
    token: z.string().min(1).optional(),
    instanceId: z.uuid().optional(),
});
const accessBody = z.discriminatedUnion('grant_type', [
    z.object({ grant_type: z.literal('authorization_code'), client_id: z.string(), client_secret: z.string(), code: z.string().min(1) }),
    z.object({ grant_type: z.literal('refresh_token'), client_id: z.string(), client_secret: z.string(), refresh_token: z.string().min(1) }),
]);
const failureBody = z.object({
    endpoint: z.enum(['oauth/access', 'bi-event', 'any']),
    grant: z.enum(['authorization_code', 'refresh_token']).optional(),
    status: z.int().min(400).max(599).optional(),
    retryAfterSeconds: z.int().min(0).optional(),
    delayMs: z.int().min(0).max(MAX_HANG_MS).optional(),
    hang: z.boolean().optional(),
    times: z.int().min(1).optional(),
    message: z.string().max(1000).optional(),
});
/** The panel's one-click failures; each plays the failure path its label names. */
export const SANDBOX_SWITCHES = {
    'exchange-503': { label: 'Next code exchange answers 503 (retried, then the install completes)', failure: { endpoint: 'oauth/access', grant: 'authorization_code', status: 503 } },
    'exchange-429': { label: 'Next code exchange answers 429 with Retry-After: 1 (retried)', failure: { endpoint: 'oauth/access', grant: 'authorization_code', status: 429, retryAfterSeconds: 1 } },
    'exchange-400': { label: 'Next code exchange answers 400 (refused: never retried, the install fails)', failure: { endpoint: 'oauth/access', grant: 'authorization_code', status: 400, message: 'Injected failure: the authorization code was refused' } },
    'exchange-slow': { label: 'Next code exchange answers after 15 s (the browser sees the waiting page)', failure: { endpoint: 'oauth/access', grant: 'authorization_code', delayMs: 15_000 } },
    'bi-event-500': { label: 'Next bi-event answers 500 (retried, then the install finishes)', failure: { endpoint: 'bi-event', status: 500 } },
};
const actionBody = z.object({ action: z.enum([...Object.keys(SANDBOX_SWITCHES), 'release', 'reset']) });
// ---- answers --------------------------------------------------------------------------------
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const page = (title, body) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
    `<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
const sendHtml = (reply, status, html) => reply.code(status).type('text/html; charset=utf-8').send(html);
const issuesOf = (e) => e.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
function withParams(url, params) {
    const u = new URL(url);
    for (const [k, v] of Object.entries(params))
        u.searchParams.set(k, v);
    return u.toString();
}
function safeEqual(a, b) {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
}
// ---- the plugin -----------------------------------------------------------------------------
export async function fakeWixPlugin(fastify, opts) {
    const wix = opts.wix ?? createFakeWix(opts);
    const records = new WeakMap();
    // Held requests must not keep a closing server open.
    fastify.addHook('preClose', async () => wix.releaseAll());
    fastify.addHook('onRequest', async (_req, reply) => { reply.header('x-wix-request-id', randomUUID()); });
    // onSend, not 'finish': a request whose caller gave up still gets its status recorded.
    fastify.addHook('onSend', async (req, reply) => {
        const record = records.get(req);
        if (record)
            record.status = reply.statusCode;
    });
    fastify.setErrorHandler((error, _req, reply) => {
        const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
        return reply.code(status).send({ message: status < 500 ? error.message : 'Internal error', details: {} });
    });
    // -- the installer, seen by the site owner's browser --
    const installer = (req, reply) => {
        const q = installQuery.safeParse(req.query);
        if (!q.success) {
            const list = issuesOf(q.error).map((i) => `<li>${escapeHtml(`${i.path}: ${i.message}`)}</li>`).join('');
            sendHtml(reply, 400, page('Invalid installation link', `<ul>${list}</ul>`));
            return undefined;
        }
        if (q.data.appId !== wix.appId) {
            sendHtml(reply, 400, page('Unknown app', `<p>No app with id ${escapeHtml(q.data.appId)} exists.</p>`));
            return undefined;
        }
        return q.data;
    };
    fastify.get('/installer/install', async (req, reply) => {
        const q = installer(req, reply);
        if (!q)
            return reply;
        const hidden = Object.entries(q).filter(([, v]) => v !== undefined)
            .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(String(v))}">`).join('');
        // Relative actions, so the page works under any mount prefix.
        return sendHtml(reply, 200, page('Install app on your site (fake Wix)', `<p>The app <code>${escapeHtml(q.appId)}</code> asks for access to your site.</p>` +
            `<form method="get" action="approve">${hidden}<button type="submit" id="approve">Approve</button></form>` +
            `<form method="get" action="cancel">${hidden}<button type="submit" id="cancel">Cancel</button></form>`));
    });
    fastify.get('/installer/approve', async (req, reply) => {
        const q = installer(req, reply);
        if (!q)
            return reply;
        const { code, instanceId } = wix.issueCode(wix.instanceIdFor(q.token, q.instanceId));
        return reply.redirect(withParams(q.redirectUrl, { code, state: q.state, instanceId }), 302);
    });
    fastify.get('/installer/cancel', async (req, reply) => {
        const q = installer(req, reply);
        if (!q)
            return reply;
        return reply.redirect(withParams(q.redirectUrl, {
            error: 'access_denied', error_description: 'The site owner cancelled the installation', state: q.state,
        }), 302);
    });
    fastify.get('/installer/close-window', async (req, reply) => {
        const token = req.query.access_token;
        const note = typeof token !== 'string' ? 'No access token was given.'
            : wix.isValidAccessToken(token) ? 'The access token is valid.' : 'The access token is not valid.';
        return sendHtml(reply, 200, page('Installation complete', `<p>Installation complete, you can close this window.</p><p id="token-status">${escapeHtml(note)}</p>`));
    });
    // -- the API, seen by our server --
    /** Records the call, plays any queued failure; returns false when the failure answered. */
    async function intercept(req, reply, endpoint) {
        const record = {
            endpoint, method: req.method, headers: { ...req.headers }, body: req.body ?? null, status: 0, at: wix.now(),
        };
        wix.requests.push(record);
        if (wix.requests.length > MAX_RECORDED)
            wix.requests.shift();
        records.set(req, record);
        const grant = req.body?.grant_type;
        const f = wix.takeFailure(endpoint, typeof grant === 'string' ? grant : undefined);
        if (!f)
            return true;
        if (f.hang) {
            await wix.hold(Infinity);
            wixError(reply, 504, 'Fake Wix released a hanging request');
            return false;
        }
        if (f.delayMs)
            await wix.hold(f.delayMs);
        if (!f.status)
            return true;
        if (f.status === 429)
            reply.header('retry-after', String(f.retryAfterSeconds ?? 1));
        else if (f.retryAfterSeconds !== undefined)
            reply.header('retry-after', String(f.retryAfterSeconds));
        wixError(reply, f.status, f.message ?? `Injected failure ${f.status}`, { injected: true });
        return false;
    }
    fastify.post('/oauth/access', async (req, reply) => {
        if (!(await intercept(req, reply, 'oauth/access')))
            return reply;
        const b = accessBody.safeParse(req.body);
        if (!b.success)
            return wixError(reply, 400, 'Invalid request body', { issues: issuesOf(b.error) });
        if (!safeEqual(b.data.client_id, wix.appId) || !safeEqual(b.data.client_secret, wix.appSecret)) {
            return wixError(reply, 401, 'Invalid client credentials', { reason: 'INVALID_CLIENT' });
        }
        if (b.data.grant_type === 'refresh_token') {
            const instanceId = wix.verifyRefreshToken(b.data.refresh_token);
            if (!instanceId)
                return wixError(reply, 400, 'Invalid refresh token', { reason: 'INVALID_REFRESH_TOKEN' });
            return wix.mintTokens(instanceId, b.data.refresh_token);
        }
        const c = wix.issuedCodes.get(b.data.code);
        if (!c)
            return wixError(reply, 400, 'Invalid authorization code', { reason: 'INVALID_CODE' });
        if (c.used)
            return wixError(reply, 400, 'Authorization code was already used', { reason: 'CODE_USED' });
        if (wix.now() >= c.expiresAt)
            return wixError(reply, 400, 'Authorization code expired', { reason: 'CODE_EXPIRED' });
        c.used = true;
        return wix.mintTokens(c.instanceId);
    });
    fastify.post('/apps/v1/bi-event', async (req, reply) => {
        if (!(await intercept(req, reply, 'bi-event')))
            return reply;
        const auth = req.headers.authorization;
        if (!auth)
            return wixError(reply, 401, 'Missing Authorization header', { reason: 'UNAUTHENTICATED' });
        if (/^bearer /i.test(auth)) {
            return wixError(reply, 401, 'Authorization must be the raw access token, without "Bearer"', { reason: 'UNAUTHENTICATED' });
        }
        if (!wix.isValidAccessToken(auth))
            return wixError(reply, 401, 'Invalid or expired access token', { reason: 'UNAUTHENTICATED' });
        const b = z.object({ eventName: z.literal('APP_FINISHED_CONFIGURATION') }).safeParse(req.body);
        if (!b.success)
            return wixError(reply, 400, 'Unsupported event', { issues: issuesOf(b.error) });
        return {};
    });
    // -- switches for a human or another process --
    fastify.post('/_control/fail', async (req, reply) => {
        const f = failureBody.safeParse(req.body);
        if (!f.success)
            return wixError(reply, 400, 'Invalid failure', { issues: issuesOf(f.error) });
        wix.failNext(f.data);
        return reply.code(204).send();
    });
    fastify.post('/_control/reset', async (_req, reply) => {
        wix.reset();
        return reply.code(204).send();
    });
    fastify.get('/_control/requests', async () => wix.requests.map(redactRequest));
    // -- the same switches as a page of plain forms, for a person showing the failure paths --
    fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(String(body))));
    });
    fastify.get('/', async (req, reply) => {
        const path = req.url.split('?')[0];
        // Relative form actions need the trailing slash (`/_sandbox/wix` → `/_sandbox/wix/`).
        if (!path.endsWith('/'))
            return reply.redirect(`${path.slice(path.lastIndexOf('/') + 1)}/`, 302);
        return sendHtml(reply, 200, controlPanel(wix));
    });
    fastify.post('/_control/action', async (req, reply) => {
        const b = actionBody.safeParse(req.body);
        if (!b.success)
            return sendHtml(reply, 400, page('Unknown action', '<p><a href="../">Back to the control panel</a></p>'));
        const { action } = b.data;
        if (action === 'release')
            wix.releaseAll();
        else if (action === 'reset')
            wix.reset();
        else
            wix.failNext(SANDBOX_SWITCHES[action].failure);
        // 303: the browser GETs the panel again, and a reload does not post twice.
        return reply.redirect('../', 303);
    });
}
function controlPanel(wix) {
    const count = (endpoint, grant) => wix.requests.filter((r) => r.endpoint === endpoint && (!grant || r.body?.grant_type === grant)).length;
    const button = (action, label) => `<form method="post" action="_control/action"><input type="hidden" name="action" value="${escapeHtml(action)}">` +
        `<button type="submit" id="${escapeHtml(action)}">${escapeHtml(label)}</button></form>`;
    const describe = (f) => `${f.endpoint}${f.grant ? ` (${f.grant})` : ''}: ${f.hang ? 'hangs' : `${f.delayMs ? `after ${f.delayMs / 1000} s, ` : ''}${f.status ?? 'a normal answer'}`}, ${f.left} more time(s)`;
    const pending = wix.pendingFailures();
    const recent = wix.requests.slice(-20).reverse().map((r) => {
        const grant = r.body?.grant_type;
        return `<li>${escapeHtml(`${new Date(r.at).toISOString()} ${r.method} ${r.endpoint}${typeof grant === 'string' ? ` ${grant}` : ''} → ${r.status || 'held'}`)}</li>`;
    }).join('');
    return page('Sandbox Wix control panel', `<p id="calls">Recorded calls: ${wix.requests.length} (code exchanges: ${count('oauth/access', 'authorization_code')}, ` +
        `refreshes: ${count('oauth/access', 'refresh_token')}, bi-events: ${count('bi-event')}).</p>` +
        `<h2>Make the next call fail</h2>${Object.entries(SANDBOX_SWITCHES).map(([k, s]) => button(k, s.label)).join('')}` +
        `<h2>Queued failures</h2>${pending.length ? `<ul id="pending">${pending.map((f) => `<li>${escapeHtml(describe(f))}</li>`).join('')}</ul>` : '<p id="pending">None.</p>'}` +
        button('release', 'Answer held calls now') + button('reset', 'Clear queued failures and recorded calls') +
        `<h2>Latest calls</h2>${recent ? `<ol>${recent}</ol>` : '<p>None yet.</p>'}`);
}
function wixError(reply, status, message, details = {}) {
    return reply.code(status).send({ message, details });
}
function redactRequest(r) {
    const body = r.body && typeof r.body === 'object' && !Array.isArray(r.body)
        ? Object.fromEntries(Object.entries(r.body).map(([k, v]) => [k, secretBody.includes(k) ? REDACTED : v]))
        : r.body;
    const headers = { ...r.headers, ...(r.headers.authorization !== undefined && { authorization: REDACTED }) };
    return { ...r, headers, body };
}
/** The fake alone on a real port, for tests and for pointing a separately run service at it. */
export async function startFakeWix(opts = {}) {
    const wix = createFakeWix({
        ...opts,
        appId: opts.appId ?? randomUUID(),
        appSecret: opts.appSecret ?? random('fake-secret-'),
    });
    const app = Fastify({ logger: false });
    app.setNotFoundHandler((_req, reply) => wixError(reply, 404, 'Not found'));
    await app.register(fakeWixPlugin, { appId: wix.appId, appSecret: wix.appSecret, wix });
    const address = await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
    return {
        url: address.replace(/\/+$/, ''),
        wix,
        close: () => app.close(),
    };
}
