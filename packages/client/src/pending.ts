// pending.ts: the requests waiting for their replies, by requestId
// (companion_ws/client/pending.py). A request is "queued" until its frame is on a live
// socket, then "sent": a drop fails the sent ones (nothing is resent, since the hub may
// have acted on them) and keeps the queued ones for the next connection.

import { ClientError, timeoutError } from './errors.js';
import type { Frame } from './mirror.js';

export type Want = (frame: Frame) => boolean;

interface Entry {
  resolve: (frame: Frame) => void;
  reject: (err: unknown) => void;
  want: Want | null;
  sent: boolean;
}

export interface RequestOptions {
  /** ms before the wait rejects with a TimeoutError; default 10000; null: none. */
  timeout?: number | null;
  signal?: AbortSignal;
}

export class PendingRequests {
  private readonly waiting = new Map<string, Entry>();

  /** A promise for the first frame carrying `rid` back that `want` accepts. */
  add(rid: string, want: Want | null, { timeout = 10000, signal }: RequestOptions = {}): Promise<Frame> {
    return new Promise<Frame>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        this.waiting.delete(rid);
      };
      const aborted = (): void => { settle(); reject(signal?.reason); };
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      signal?.addEventListener('abort', aborted, { once: true });
      if (timeout !== null) timer = setTimeout(() => { settle(); reject(timeoutError(timeout)); }, timeout);
      this.waiting.set(rid, {
        resolve: (f) => { settle(); resolve(f); },
        reject: (e) => { settle(); reject(e); },
        want,
        sent: false,
      });
    });
  }

  has(rid: string): boolean {
    return this.waiting.has(rid);
  }

  sent(rid: string): void {
    const entry = this.waiting.get(rid);
    if (entry) entry.sent = true;
  }

  answer(frame: Frame): void {
    const rid = frame.requestId;
    if (typeof rid !== 'string') return;
    const entry = this.waiting.get(rid);
    if (!entry) return;
    if (frame.type === 'error') entry.reject(new ClientError(frame));
    else if (entry.want === null || entry.want(frame)) entry.resolve(frame);
  }

  /** Fail one request (its frame was dropped from the queue). */
  fail(rid: string, err: unknown): void {
    this.waiting.get(rid)?.reject(err);
  }

  /** A drop: fail the requests already sent. */
  dropped(err: unknown): void {
    for (const entry of [...this.waiting.values()]) if (entry.sent) entry.reject(err);
  }

  /** The end: fail them all. */
  failAll(err: unknown): void {
    for (const entry of [...this.waiting.values()]) entry.reject(err);
  }
}
