import { z } from 'zod';
import { OAUTH_STATE_PATTERN } from "../crypto/oauth-state.js";
import { Errors } from "../errors.js";
import { bindWorkflow } from "./bind-log.js";
import { htmlPage } from "./html.js";
const STATE_COOKIE = 'wix_install_state';
const FLOW_COOKIE = 'wix_install_flow';
const errorReply = z.object({ statusCode: z.number(), code: z.string(), error: z.string(), message: z.string() });
const errorReplies = { 400: errorReply, 403: errorReply, 409: errorReply, 410: errorReply };
/** Pages for the browser, sent as they are. */
const page = z.string().describe('An HTML page');
const state = z.string().regex(OAUTH_STATE_PATTERN, 'must be a state this service issued');
const redirectQuery = z
    .object({
    code: z.string().min(1).max(2048).optional(),
    state,
    instanceId: z.uuid({ error: 'must be a Wix instance id (a UUID)' }).optional(),
    error: z.string().min(1).max(200).optional(),
    error_description: z.string().max(1000).optional(),
})
    .refine((q) => q.error !== undefined || (q.code !== undefined && q.instanceId !== undefined), {
    message: 'needs code and instanceId (or error)',
});
/** The three browser-facing steps: App URL, platform-started install, Redirect URL. */
const wixRoutes = async (app) => {
    const { config, installFlow: flow, engine } = app;
    const cookie = (maxAgeSeconds) => ({
        path: '/wix',
        httpOnly: true,
        signed: true,
        sameSite: config.cookieSameSite,
        secure: config.secureCookies,
        maxAge: maxAgeSeconds,
    });
    // Wix may load these pages in its window or an iframe; nothing here may be cached or leak a
    // code or token through the Referer header.
    app.addHook('onRequest', async (_request, reply) => {
        reply.header('cross-origin-opener-policy', 'unsafe-none');
        reply.header('cache-control', 'no-store');
        reply.header('referrer-policy', 'no-referrer');
    });
    const readCookie = (request, name) => {
        const raw = request.cookies[name];
        if (raw === undefined)
            return undefined;
        const unsigned = request.unsignCookie(raw);
        // A tampered cookie is present but proves nothing: it can only mismatch.
        return unsigned.valid && unsigned.value !== null ? unsigned.value : '';
    };
    /** Where a browser waiting on its installation checks again. */
    const continueUrl = `${config.publicUrl}/wix/redirect/continue`;
    /** The state is spent: from here this browser follows its installation by the flow cookie. */
    function followInstallation(reply, installationId) {
        reply.clearCookie(STATE_COOKIE, { path: '/wix' });
        reply.setCookie(FLOW_COOKIE, installationId, cookie(15 * 60));
    }
    async function begin(request, reply, origin, token) {
        const started = await flow.begin(origin, token);
        bindWorkflow(request, reply, started.installation.id);
        reply.setCookie(STATE_COOKIE, started.state, cookie(config.consentTimeoutMs / 1000));
        return reply.redirect(started.installerUrl, 302);
    }
    /** Step 6, or a page that gets there once the exchange is over. */
    async function sendOn(reply, installation) {
        const destination = await flow.destination(installation);
        if (destination.kind === 'redirect')
            return reply.redirect(destination.url, 302);
        if (destination.kind === 'pending') {
            return reply.code(202).type('text/html; charset=utf-8').send(htmlPage('Finishing the installation…', 'Wix is taking a moment to confirm the installation. This page moves on by itself.', {
                refreshTo: continueUrl,
            }));
        }
        reply.clearCookie(FLOW_COOKIE, { path: '/wix' });
        return reply.type('text/html; charset=utf-8').send(htmlPage('The installation could not be completed', `${destination.failure?.detail ?? 'The installation failed.'} Please install the app again.`));
    }
    app.get('/wix/app-url', {
        schema: { querystring: z.object({ token: z.string().min(1).max(4096) }), response: errorReplies },
        handler: async (request, reply) => begin(request, reply, 'app-url', request.query.token),
    });
    app.get('/wix/install', {
        schema: { querystring: z.object({}), response: errorReplies },
        handler: async (request, reply) => begin(request, reply, 'platform'),
    });
    app.get('/wix/redirect', {
        schema: { querystring: redirectQuery, response: { ...errorReplies, 200: page, 202: page } },
        handler: async (request, reply) => {
            const q = request.query;
            const cookieState = readCookie(request, STATE_COOKIE);
            if (q.error !== undefined) {
                const declined = await flow.decline({ error: q.error, description: q.error_description, state: q.state }, cookieState);
                bindWorkflow(request, reply, declined.id);
                reply.clearCookie(STATE_COOKIE, { path: '/wix' });
                return reply.type('text/html; charset=utf-8').send(htmlPage('Installation cancelled', 'The app was not installed. You can close this window.'));
            }
            const installation = await flow.callback({ code: q.code, state: q.state, instanceId: q.instanceId }, cookieState).catch((err) => {
                // This browser's own callback again: the answer stays 409, and the page (for a browser)
                // moves on to wherever its installation got to, as the first answer would have.
                if (err instanceof Errors.STATE_ALREADY_USED && 'installationId' in err) {
                    followInstallation(reply, String(err.installationId));
                    Object.assign(err, { continueTo: continueUrl });
                }
                throw err;
            });
            bindWorkflow(request, reply, installation.id);
            followInstallation(reply, installation.id);
            return sendOn(reply, await flow.settled(installation.id, config.redirectWaitMs));
        },
    });
    app.get('/wix/redirect/continue', {
        schema: { response: { 200: page, 202: page, 400: errorReply } },
        handler: async (request, reply) => {
            const id = readCookie(request, FLOW_COOKIE);
            if (!id)
                throw new Errors.FLOW_COOKIE_MISSING();
            const installation = await engine.get(id);
            if (!installation)
                throw new Errors.FLOW_COOKIE_MISSING();
            bindWorkflow(request, reply, id);
            return sendOn(reply, await flow.settled(id, config.redirectWaitMs / 2));
        },
    });
};
export default wixRoutes;
