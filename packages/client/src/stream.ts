// stream.ts: frames handed to `events()` iterators and `waitFor()` waiters
// (companion_ws/client/stream.py).

import type { Frame } from './mirror.js';
import { timeoutError } from './errors.js';

export const EVENT_QUEUE_LIMIT = 10000;

/** An events() iterator fell more than EVENT_QUEUE_LIMIT frames behind and was cut off. */
export class EventStreamOverflow extends Error {
  override name = 'EventStreamOverflow';
}

interface Stream {
  queue: Frame[];
  wake: (() => void) | null;
  ended: boolean;
  overflow: boolean;
}

interface Waiter {
  predicate: (frame: Frame) => boolean;
  resolve: (frame: Frame) => void;
  reject: (err: unknown) => void;
}

export interface WaitOptions {
  /** ms; default 10000; null: no limit. */
  timeout?: number | null;
  signal?: AbortSignal;
}

export class EventStreams {
  private readonly streams = new Set<Stream>();
  private readonly waiters = new Set<Waiter>();
  private ended: unknown = null;

  push(frame: Frame): void {
    for (const s of this.streams) {
      if (s.queue.length >= EVENT_QUEUE_LIMIT) {
        s.overflow = true;
        this.streams.delete(s);
      } else {
        s.queue.push(frame);
      }
      s.wake?.();
    }
    for (const w of [...this.waiters]) {
      let hit = false;
      try {
        hit = w.predicate(frame);
      } catch (err) {
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
  end(error: unknown): void {
    this.ended = error;
    for (const s of this.streams) {
      s.ended = true;
      s.wake?.();
    }
    this.streams.clear();
    for (const w of this.waiters) w.reject(error);
    this.waiters.clear();
  }

  open(signal?: AbortSignal): AsyncIterableIterator<Frame> {
    const s: Stream = { queue: [], wake: null, ended: this.ended !== null, overflow: false };
    if (!s.ended) this.streams.add(s);
    const stop = (): void => {
      s.ended = true;
      this.streams.delete(s);
      s.wake?.();
    };
    signal?.addEventListener('abort', stop, { once: true });
    const iterator: AsyncIterableIterator<Frame> = {
      next: async (): Promise<IteratorResult<Frame>> => {
        for (;;) {
          const frame = s.queue.shift();
          if (frame !== undefined) return { value: frame, done: false };
          if (s.overflow) throw new EventStreamOverflow(`fell more than ${EVENT_QUEUE_LIMIT} frames behind`);
          if (s.ended) return { value: undefined, done: true };
          await new Promise<void>((resolve) => { s.wake = resolve; });
          s.wake = null;
        }
      },
      return: async (): Promise<IteratorResult<Frame>> => {
        stop();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  waitFor(predicate: (frame: Frame) => boolean, { timeout = 10000, signal }: WaitOptions = {}): Promise<Frame> {
    if (this.ended !== null) return Promise.reject(this.ended);
    return new Promise<Frame>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        this.waiters.delete(w);
      };
      const w: Waiter = {
        predicate,
        resolve: (f) => { done(); resolve(f); },
        reject: (e) => { done(); reject(e); },
      };
      const aborted = (): void => w.reject(signal?.reason);
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      signal?.addEventListener('abort', aborted, { once: true });
      if (timeout !== null) timer = setTimeout(() => w.reject(timeoutError(timeout)), timeout);
      this.waiters.add(w);
    });
  }
}
