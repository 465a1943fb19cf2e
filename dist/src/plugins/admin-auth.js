import { safeEqual } from "../crypto/oauth-state.js";
import { Errors } from "../errors.js";
/**
 * Requires `Authorization: Bearer <ADMIN_TOKEN>` on every route of the scope it is added to,
 * compared in constant time. Added as a hook on the /api scope, so no route there can skip it.
 */
export function requireAdmin(app) {
    const expected = app.config.adminToken;
    app.addHook('onRequest', async (request) => {
        const header = request.headers.authorization ?? '';
        const token = header.startsWith('Bearer ') ? header.slice(7) : '';
        if (!token || !safeEqual(token, expected))
            throw new Errors.UNAUTHORIZED();
    });
}
