const escape = (s) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
/** The few pages a browser sees from us: plain, escaped, no script, no external resource. */
export function htmlPage(title, message, opts = {}) {
    const refresh = opts.refreshTo
        ? `<meta http-equiv="refresh" content="${opts.refreshSeconds ?? 2};url=${escape(opts.refreshTo)}">`
        : '';
    return `<!doctype html><html lang="en"><head><meta charset="utf-8">${refresh}<title>${escape(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}</style></head>
<body><h1>${escape(title)}</h1><p>${escape(message)}</p></body></html>`;
}
