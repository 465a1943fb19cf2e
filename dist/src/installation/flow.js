import { randomUUID } from 'node:crypto';
import { hashOAuthState, installationIdOf, newOAuthState, safeEqual } from "../crypto/oauth-state.js";
import { EngineError } from "../engine/index.js";
import { Errors } from "../errors.js";
/** Wix codes are valid 10 minutes: past that, an exchange can only fail. */
export const CODE_TTL_MS = 10 * 60_000;
/** How long a browser sent on may take to come back before setup counts as begun anyway. */
export const BROWSER_RETURN_TIMEOUT_MS = 15 * 60_000;
const context = (w) => w.context;
/**
 * The browser-facing steps of the Wix flow, free of HTTP: routes parse and answer, this decides.
 * Every check that fails throws a named 4xx before the installation or Wix is touched.
 */
export function createInstallFlow(deps) {
    const { engine, config, vault } = deps;
    /** Steps 1–2: a new installation, sent to the Wix installer with a fresh state. */
    async function begin(origin, wixToken) {
        const id = randomUUID();
        const state = newOAuthState(id);
        const input = {
            id,
            origin,
            stateHash: hashOAuthState(state),
            closeWindow: config.closeWindow,
            autoFinish: config.autoFinish,
            consentTimeoutMs: config.consentTimeoutMs,
            codeTtlMs: CODE_TTL_MS,
            browserReturnTimeoutMs: BROWSER_RETURN_TIMEOUT_MS,
        };
        const installation = await engine.create('installation', { ...input }, {
            source: origin === 'app-url' ? 'route:app-url' : 'route:install',
            events: origin === 'app-url' ? [{ type: 'INSTALLER_REDIRECTED' }] : [],
        });
        const url = new URL(`${config.wix.wwwUrl}/installer/install`);
        if (wixToken)
            url.searchParams.set('token', wixToken);
        url.searchParams.set('appId', config.wix.appId);
        url.searchParams.set('redirectUrl', config.redirectUrl);
        url.searchParams.set('state', state);
        return { installation, state, installerUrl: url.toString() };
    }
    /**
     * Step 3: the state must match this browser's cookie (checked here) and the installation it
     * names (checked by the machine, against the hash it keeps, as it takes the event). Exactly one
     * event per state is ever accepted.
     */
    async function answer(state, cookieState, event) {
        if (cookieState === undefined)
            throw new Errors.STATE_COOKIE_MISSING();
        if (!safeEqual(state, cookieState))
            throw new Errors.STATE_MISMATCH();
        const stateHash = hashOAuthState(state);
        const r = await engine.send(installationIdOf(state), { ...event, stateHash }, { source: 'route:redirect', machine: 'installation' }).catch((err) => {
            if (err instanceof EngineError && err.code === 'WORKFLOW_NOT_FOUND')
                throw new Errors.STATE_UNKNOWN();
            throw err;
        });
        if (r.accepted)
            return r.workflow;
        const w = r.workflow;
        if (context(w).stateHash !== stateHash)
            throw new Errors.STATE_UNKNOWN();
        if (w.state === 'ConsentAbandoned' || w.state === 'Cancelled')
            throw new Errors.STATE_EXPIRED();
        // Cookie and hash both match: this browser's own state, come back (a reload, or a retry
        // after an answer it never got). Still a replay, but the browser may follow its installation.
        throw Object.assign(new Errors.STATE_ALREADY_USED(), { installationId: w.id });
    }
    /** Step 3: the code arrives. */
    const callback = (q, cookieState) => answer(q.state, cookieState, { type: 'CALLBACK', code: q.code, instanceId: q.instanceId });
    /** Wix sent the browser back with an OAuth error instead of a code (consent declined). */
    const decline = (q, cookieState) => answer(q.state, cookieState, { type: 'CONSENT_DECLINED', error: q.error, description: q.description });
    /** Step 6: where the browser goes once the exchange is over. */
    async function destination(w) {
        if (w.state === 'CodeReceived')
            return { kind: 'pending' };
        if (!['Tokened', 'SetupIncomplete', 'Finished'].includes(w.state))
            return { kind: 'failed', failure: context(w).failure };
        const { instanceId, closeWindow } = context(w);
        let url;
        if (closeWindow) {
            const { accessToken } = await vault.accessToken(instanceId);
            const u = new URL(`${config.wix.wwwUrl}/installer/close-window`);
            u.searchParams.set('access_token', accessToken);
            url = u.toString();
        }
        else {
            const u = new URL(config.postInstallUrl);
            u.searchParams.set('instanceId', instanceId);
            url = u.toString();
        }
        if (w.state === 'Tokened') {
            await engine.send(w.id, { type: 'BROWSER_SENT_ON', destination: closeWindow ? 'close-window' : 'post-install' }, { source: 'route:redirect' });
        }
        return { kind: 'redirect', url };
    }
    /** Waits, bounded, for the code exchange to end. */
    const settled = (id, timeoutMs) => engine.waitFor(id, (w) => w.state !== 'CodeReceived', timeoutMs);
    return { begin, callback, decline, destination, settled };
}
