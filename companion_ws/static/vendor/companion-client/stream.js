// stream.ts: frames handed to `events()` iterators and `waitFor()` waiters
// (companion_ws/client/stream.py).
import { timeoutError } from './errors.js';
export const EVENT_QUEUE_LIMIT = 10000;
/** An events() iterator fell more than EVENT_QUEUE_LIMIT frames behind and was cut off. */
export class EventStreamOverflow extends Error {
    name = 'EventStreamOverflow';
}
export class EventStreams {
    streams = new Set();
    waiters = new Set();
    ended = null;
    push(frame) {
        for (const s of this.streams) {
            if (s.queue.length >= EVENT_QUEUE_LIMIT) {
                s.overflow = true;
                this.streams.delete(s);
            }
            else {
                s.queue.push(frame);
            }
            s.wake?.();
        }
        for (const w of [...this.waiters]) {
            let hit = false;
            try {
                hit = w.predicate(frame);
            }
            catch (err) {
                this.waiters.delete(w);
                w.reject(err);
                continue;
            }
            if (hit) {
                this.waiters.delete(w);
                w.resolve(frame);
            }
        }
    }
    /** The client stopped: iterators end, waiters reject with `error`. */
    end(error) {
        this.ended = error;
        for (const s of this.streams) {
            s.ended = true;
            s.wake?.();
        }
        this.streams.clear();
        for (const w of this.waiters)
            w.reject(error);
        this.waiters.clear();
    }
    open(signal) {
        const s = { queue: [], wake: null, ended: this.ended !== null, overflow: false };
        if (!s.ended)
            this.streams.add(s);
        const stop = () => {
            s.ended = true;
            this.streams.delete(s);
            s.wake?.();
        };
        signal?.addEventListener('abort', stop, { once: true });
        const iterator = {
            next: async () => {
                for (;;) {
                    const frame = s.queue.shift();
                    if (frame !== undefined)
                        return { value: frame, done: false };
                    if (s.overflow)
                        throw new EventStreamOverflow(`fell more than ${EVENT_QUEUE_LIMIT} frames behind`);
                    if (s.ended)
                        return { value: undefined, done: true };
                    await new Promise((resolve) => { s.wake = resolve; });
                    s.wake = null;
                }
            },
            return: async () => {
                stop();
                return { value: undefined, done: true };
            },
            [Symbol.asyncIterator]() {
                return iterator;
            },
        };
        return iterator;
    }
    waitFor(predicate, { timeout = 10000, signal } = {}) {
        if (this.ended !== null)
            return Promise.reject(this.ended);
        return new Promise((resolve, reject) => {
            let timer;
            const done = () => {
                clearTimeout(timer);
                signal?.removeEventListener('abort', aborted);
                this.waiters.delete(w);
            };
            const w = {
                predicate,
                resolve: (f) => { done(); resolve(f); },
                reject: (e) => { done(); reject(e); },
            };
            const aborted = () => w.reject(signal?.reason);
            if (signal?.aborted) {
                reject(signal.reason);
                return;
            }
            signal?.addEventListener('abort', aborted, { once: true });
            if (timeout !== null)
                timer = setTimeout(() => w.reject(timeoutError(timeout)), timeout);
            this.waiters.add(w);
        });
    }
}
