import WebSocket from 'ws';
/**
 * The transport of `createInspector` (the same messages `createWebSocketInspector` sends), with
 * what a long-running service needs and its own adapter lacks: reconnecting after the inspector
 * went away (not only after a failed connect), sending the buffer once rather than again on every
 * reconnect, a stop that stays stopped, and no timer that keeps the process alive.
 */
export function createSocketAdapter(o) {
    const max = o.maxBuffered ?? 1_000;
    const retry = o.retryMs ?? { min: 1_000, max: 30_000 };
    const buffer = [];
    const openWaiters = new Set();
    let socket;
    let open = false;
    let stopped = false;
    let reported = false;
    let delay = retry.min;
    let timer;
    let dropped = 0;
    function connect() {
        if (stopped)
            return;
        let reason = 'connection closed';
        const ws = new WebSocket(o.url, { handshakeTimeout: 5_000 });
        socket = ws;
        ws.on('open', () => {
            open = true;
            reported = false;
            delay = retry.min;
            o.onUp?.();
            for (const message of buffer.splice(0))
                ws.send(message);
            for (const wake of openWaiters)
                wake();
        });
        ws.on('error', (err) => {
            reason = err.message || String(err.code ?? err);
        });
        // `ws` emits close after every error, so this is the one place that reconnects.
        ws.on('close', () => {
            if (socket !== ws)
                return;
            open = false;
            if (stopped)
                return;
            if (!reported) {
                reported = true;
                o.onDown?.(reason);
            }
            timer = setTimeout(connect, delay);
            timer.unref();
            delay = Math.min(delay * 2, retry.max);
        });
    }
    return {
        start: connect,
        send(event) {
            let message;
            try {
                message = JSON.stringify(event);
            }
            catch {
                return;
            }
            if (open && socket)
                return socket.send(message);
            buffer.push(message);
            if (buffer.length > max) {
                buffer.shift();
                dropped++;
            }
        },
        /** Resolves true once connected, false after `ms` without a connection. */
        whenOpen(ms) {
            if (open)
                return Promise.resolve(true);
            return new Promise((resolve) => {
                const done = (ok) => {
                    clearTimeout(giveUp);
                    openWaiters.delete(wake);
                    resolve(ok);
                };
                const wake = () => done(true);
                const giveUp = setTimeout(() => done(false), ms);
                openWaiters.add(wake);
            });
        },
        /** Messages dropped so far because the buffer was full. */
        dropped: () => dropped,
        /** Closes the connection after what was sent has gone out (at most `ms`); never reconnects. */
        stop(ms = 1_000) {
            stopped = true;
            clearTimeout(timer);
            const ws = socket;
            if (!ws || ws.readyState === WebSocket.CLOSED)
                return Promise.resolve();
            return new Promise((resolve) => {
                const force = setTimeout(() => ws.terminate(), ms);
                ws.once('close', () => {
                    clearTimeout(force);
                    resolve();
                });
                if (ws.readyState === WebSocket.CONNECTING)
                    ws.terminate();
                else
                    ws.close();
            });
        },
    };
}
