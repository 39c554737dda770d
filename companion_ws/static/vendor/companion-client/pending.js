// pending.ts: the requests waiting for their replies, by requestId
// (companion_ws/client/pending.py). A request is "queued" until its frame is on a live
// socket, then "sent": a drop fails the sent ones (nothing is resent, since the hub may
// have acted on them) and keeps the queued ones for the next connection.
import { ClientError, timeoutError } from './errors.js';
export class PendingRequests {
    waiting = new Map();
    /** A promise for the first frame carrying `rid` back that `want` accepts. */
    add(rid, want, { timeout = 10000, signal } = {}) {
        return new Promise((resolve, reject) => {
            let timer;
            const settle = () => {
                clearTimeout(timer);
                signal?.removeEventListener('abort', aborted);
                this.waiting.delete(rid);
            };
            const aborted = () => { settle(); reject(signal?.reason); };
            if (signal?.aborted) {
                reject(signal.reason);
                return;
            }
            signal?.addEventListener('abort', aborted, { once: true });
            if (timeout !== null)
                timer = setTimeout(() => { settle(); reject(timeoutError(timeout)); }, timeout);
            this.waiting.set(rid, {
                resolve: (f) => { settle(); resolve(f); },
                reject: (e) => { settle(); reject(e); },
                want,
                sent: false,
            });
        });
    }
    has(rid) {
        return this.waiting.has(rid);
    }
    sent(rid) {
        const entry = this.waiting.get(rid);
        if (entry)
            entry.sent = true;
    }
    answer(frame) {
        const rid = frame.requestId;
        if (typeof rid !== 'string')
            return;
        const entry = this.waiting.get(rid);
        if (!entry)
            return;
        if (frame.type === 'error')
            entry.reject(new ClientError(frame));
        else if (entry.want === null || entry.want(frame))
            entry.resolve(frame);
    }
    /** Fail one request (its frame was dropped from the queue). */
    fail(rid, err) {
        this.waiting.get(rid)?.reject(err);
    }
    /** A drop: fail the requests already sent. */
    dropped(err) {
        for (const entry of [...this.waiting.values()])
            if (entry.sent)
                entry.reject(err);
    }
    /** The end: fail them all. */
    failAll(err) {
        for (const entry of [...this.waiting.values()])
            entry.reject(err);
    }
}
