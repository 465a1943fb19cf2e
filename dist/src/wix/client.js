import { Agent, request } from 'undici';
import { z } from 'zod';
/** A failed Wix call. Built only from safe parts, so it can be stored, logged and shown as is. */
export class WixApiError extends Error {
    code;
    endpoint;
    status;
    wixRequestId;
    retryable;
    retryAfterMs;
    constructor(f) {
        super(f.message);
        this.name = 'WixApiError';
        this.code = f.code;
        this.endpoint = f.endpoint;
        this.retryable = f.retryable;
        if (f.status !== undefined)
            this.status = f.status;
        if (f.wixRequestId !== undefined)
            this.wixRequestId = f.wixRequestId;
        if (f.retryAfterMs !== undefined)
            this.retryAfterMs = f.retryAfterMs;
    }
    toJSON() {
        const { code, message, endpoint, status, wixRequestId, retryable, retryAfterMs } = this;
        return { code, message, endpoint, status, wixRequestId, retryable, retryAfterMs };
    }
}
const tokenResponse = z.object({ access_token: z.string().min(1), refresh_token: z.string().min(1) });
const WHAT = {
    authorization_code: 'the code exchange',
    refresh_token: 'the token refresh',
    'bi-event': 'the bi-event',
};
export function createWixClient(opts) {
    const apiUrl = opts.apiUrl.replace(/\/+$/, '');
    const timeoutMs = opts.timeoutMs ?? 10_000;
    // One keep-alive pool per client: token calls come in bursts after deploys and outbox wake-ups.
    const agent = new Agent({ connect: { timeout: timeoutMs }, keepAliveTimeout: 30_000 });
    /** Sends one call; returns the parsed 2xx body (or undefined when `expectJson` is false). */
    async function call(c, expectJson) {
        const what = WHAT[c.grant ?? c.endpoint];
        const started = performance.now();
        let status = null;
        let wixRequestId;
        const finish = (outcome) => opts.onCall?.({
            endpoint: c.endpoint, ...(c.grant && { grant: c.grant }), status,
            durationMs: performance.now() - started, outcome, ...(wixRequestId && { wixRequestId }),
        });
        const fail = (e) => {
            const err = new WixApiError({ ...e, message: scrub(e.message, c.secrets) });
            finish(err.retryable ? 'retryable' : 'final');
            opts.log?.warn({ endpoint: c.endpoint, status, wixRequestId, code: err.code }, err.message);
            throw err;
        };
        const timeout = new AbortController();
        const timer = setTimeout(() => timeout.abort(), timeoutMs);
        const signal = c.signal ? AbortSignal.any([c.signal, timeout.signal]) : timeout.signal;
        let text;
        try {
            const res = await request(`${apiUrl}${c.path}`, {
                method: 'POST',
                dispatcher: agent,
                headers: { 'content-type': 'application/json', accept: 'application/json', ...c.headers },
                body: JSON.stringify(c.body),
                signal,
                headersTimeout: timeoutMs,
                bodyTimeout: timeoutMs,
            });
            status = res.statusCode;
            wixRequestId = firstHeader(res.headers['x-wix-request-id']);
            // Read every body, even unwanted ones, so the keep-alive socket goes back to the pool.
            text = await res.body.text();
            if (status < 200 || status >= 300) {
                const said = wixMessage(text, c.secrets);
                return fail(httpError(c.endpoint, what, status, wixRequestId, said, firstHeader(res.headers['retry-after'])));
            }
        }
        catch (error) {
            if (error instanceof WixApiError)
                throw error;
            // The caller's own abort (shutdown, say) is not Wix's slowness: it reads as a network error.
            const callerAborted = c.signal?.aborted && !timeout.signal.aborted;
            const timedOut = !callerAborted && (timeout.signal.aborted || isTimeoutError(error));
            const reason = callerAborted ? 'the call was aborted by the caller' : errorName(error);
            return fail({
                code: timedOut ? 'WIX_TIMEOUT' : 'WIX_NETWORK',
                endpoint: c.endpoint, retryable: true, status: status ?? undefined, wixRequestId,
                message: timedOut
                    ? `Wix did not answer ${what} within ${timeoutMs} ms`
                    : `Could not reach Wix for ${what}: ${reason}`,
            });
        }
        finally {
            clearTimeout(timer);
        }
        if (!expectJson) {
            finish('ok');
            return undefined;
        }
        let parsed;
        try {
            parsed = JSON.parse(text);
        }
        catch {
            parsed = undefined;
        }
        const tokens = tokenResponse.safeParse(parsed);
        if (!tokens.success) {
            // Never echo the body: a half-valid answer may still carry a token.
            return fail({
                code: 'WIX_BAD_RESPONSE', endpoint: c.endpoint, retryable: false, status: status ?? undefined, wixRequestId,
                message: `Wix answered ${what} with ${status} but no access_token and refresh_token`,
            });
        }
        finish('ok');
        return tokens.data;
    }
    async function tokenCall(grant, field, value, signal) {
        const data = await call({
            endpoint: 'oauth/access', grant, path: '/oauth/access', signal,
            body: { grant_type: grant, client_id: opts.appId, client_secret: opts.appSecret, [field]: value },
            secrets: [opts.appSecret, value],
        }, true);
        return { accessToken: data.access_token, refreshToken: data.refresh_token };
    }
    return {
        exchangeCode(code, o = {}) {
            return tokenCall('authorization_code', 'code', code, o.signal);
        },
        refreshAccessToken(refreshToken, o = {}) {
            return tokenCall('refresh_token', 'refresh_token', refreshToken, o.signal);
        },
        async sendBiEvent(accessToken, o = {}) {
            await call({
                endpoint: 'bi-event', path: '/apps/v1/bi-event', signal: o.signal,
                // Wix wants the token raw here; a `Bearer ` prefix is refused.
                headers: { authorization: accessToken },
                body: { eventName: o.eventName ?? 'APP_FINISHED_CONFIGURATION' },
                secrets: [accessToken, opts.appSecret],
            }, false);
        },
        close: () => agent.close(),
    };
}
function httpError(endpoint, what, status, wixRequestId, said, retryAfter) {
    const suffix = said ? `: ${said}` : '';
    const base = { endpoint, status, wixRequestId };
    if (status === 429) {
        const retryAfterMs = parseRetryAfter(retryAfter);
        return { ...base, code: 'WIX_RATE_LIMITED', retryable: true, retryAfterMs, message: `Wix rate-limited ${what} (429)${suffix}` };
    }
    if (status >= 500)
        return { ...base, code: 'WIX_UNAVAILABLE', retryable: true, message: `Wix failed ${what} (${status})${suffix}` };
    if (status >= 400)
        return { ...base, code: 'WIX_REJECTED', retryable: false, message: `Wix refused ${what} (${status})${suffix}` };
    return { ...base, code: 'WIX_BAD_RESPONSE', retryable: false, message: `Wix answered ${what} with an unexpected ${status}` };
}
/** Wix errors have no fixed shape; only a top-level string `message` is taken, never `details`. */
function wixMessage(text, secrets) {
    let m;
    try {
        m = JSON.parse(text)?.message;
    }
    catch {
        return undefined;
    }
    if (typeof m !== 'string' || !m.trim())
        return undefined;
    // Truncate only after scrubbing, so a cut can never leave part of a secret behind.
    const safe = scrub(m.trim(), secrets);
    return safe.length > 200 ? `${safe.slice(0, 200)}…` : safe;
}
/** Wix may echo what it was sent; replace every secret of this call before the text goes anywhere. */
function scrub(message, secrets) {
    let out = message;
    for (const s of secrets) {
        if (!s)
            continue;
        for (const form of new Set([s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)])) {
            out = out.split(form).join('[redacted]');
        }
    }
    return out;
}
export function parseRetryAfter(value, now = Date.now()) {
    if (!value)
        return undefined;
    if (/^\s*\d+\s*$/.test(value))
        return Number(value) * 1000;
    const at = Date.parse(value);
    return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
function firstHeader(v) {
    return Array.isArray(v) ? v[0] : v;
}
function isTimeoutError(error) {
    const code = error?.code;
    return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
}
/** The error's code (ECONNREFUSED, UND_ERR_SOCKET…), not its message: it names the cause without payload. */
function errorName(error) {
    const e = error;
    return typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'unknown error';
}
