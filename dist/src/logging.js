/** Query parameters that carry credentials on our routes: the OAuth code and state, Wix's tokens. */
const SECRET_PARAMS = ['code', 'state', 'token', 'access_token', 'refresh_token'];
/** A URL as logged: secret query values replaced, everything else kept for debugging. */
export function redactUrl(url) {
    const q = url.indexOf('?');
    if (q < 0)
        return url;
    const params = new URLSearchParams(url.slice(q + 1));
    for (const name of SECRET_PARAMS) {
        if (params.has(name))
            params.set(name, '[redacted]');
    }
    return `${url.slice(0, q)}?${params.toString()}`;
}
/** JSON lines, a request id on each, secrets never written. */
export function loggerOptions(level) {
    return {
        level,
        redact: {
            paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', 'res.headers.location'],
            censor: '[redacted]',
        },
        serializers: {
            req: (req) => ({
                method: req.method,
                url: redactUrl(req.url),
                host: req.hostname,
                remoteAddress: req.ip,
            }),
        },
    };
}
