import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
/**
 * The OAuth `state` sent through Wix and back: the installation's id, a dot, 256 random bits
 * (URL-safe). The id takes the callback straight to its installation, with no lookup; the random
 * part is what no one can guess. The installation keeps only the whole state's hash.
 */
export const newOAuthState = (installationId) => `${installationId}.${randomBytes(32).toString('base64url')}`;
/** The installation a state (of OAUTH_STATE_PATTERN's shape) belongs to. */
export const installationIdOf = (state) => state.slice(0, state.indexOf('.'));
/** What the server keeps of a state: its hash, so a database read cannot replay it. */
export const hashOAuthState = (state) => createHash('sha256').update(state).digest('hex');
/** Constant-time equality for strings of any length (hashing first equalises the lengths). */
export function safeEqual(a, b) {
    const ha = createHash('sha256').update(a).digest();
    const hb = createHash('sha256').update(b).digest();
    return timingSafeEqual(ha, hb);
}
/** The shape of a state we issue; anything else is rejected before a database read. */
export const OAUTH_STATE_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[A-Za-z0-9_-]{43}$/;
