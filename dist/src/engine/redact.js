/**
 * Event fields that carry credentials (the OAuth code of a callback, say). History, logs and the
 * inspector get events with these replaced; the machine never branches on their values, so a
 * redacted history still replays to the same state. Effect results and errors are built safe by
 * the effects themselves and are kept whole.
 */
const SECRET_FIELDS = new Set(['code', 'token', 'accessToken', 'access_token', 'refreshToken', 'refresh_token', 'clientSecret',
    'client_secret', 'secret', 'password', 'authorization'].map((k) => k.toLowerCase()));
export const REDACTED = '[redacted]';
export function redactEvent(event) {
    const out = {};
    for (const [key, value] of Object.entries(event)) {
        out[key] = SECRET_FIELDS.has(key.toLowerCase()) && value != null ? REDACTED : value;
    }
    return out;
}
