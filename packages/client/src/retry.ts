// retry.ts: when the client reconnects, and when it gives up (companion_ws/client/retry.py).
// Pure: a close in, a decision out (a delay in ms, or why to stop); the clock is passed in.
//
// Exponential backoff with full jitter between attempts; the count starts again after
// every welcome. It stops for good after a close shouldReconnect() calls final, after
// `maxAttempts` failures in a row, and when nothing has ever answered within
// `firstConnectTimeout` (a wrong URL is a mistake to report, not an outage to ride out).

import { shouldReconnect } from './protocol.js';

export interface Stop {
  stop: string;
}

export interface RetryOptions {
  backoffInitial?: number;
  backoffMax?: number;
  maxAttempts?: number | null;
  firstConnectTimeout?: number | null;
  random?: () => number;
}

/** Full jitter: uniform in [0, min(max, initial * 2^failures)]. */
export function backoffDelay(failures: number, initial: number, max: number, random: () => number = Math.random): number {
  const ceiling = Math.min(max, initial * 2 ** Math.max(0, failures));
  return Math.round(random() * ceiling);
}

export class Retry {
  failures = 0;
  ever = false; // some connection was welcomed
  private readonly o: Required<RetryOptions>;

  constructor(readonly started: number, readonly where: string, options: RetryOptions = {}) {
    this.o = {
      backoffInitial: options.backoffInitial ?? 300,
      backoffMax: options.backoffMax ?? 10000,
      maxAttempts: options.maxAttempts ?? null,
      firstConnectTimeout: options.firstConnectTimeout ?? null,
      random: options.random ?? Math.random,
    };
  }

  /** After a connection closed: ms to wait before the next, or a Stop. */
  after(code: number | null, reason: string, welcomed: boolean, now: number): number | Stop {
    this.ever = this.ever || welcomed;
    if (!shouldReconnect(code)) return { stop: reason };
    const limit = this.o.firstConnectTimeout;
    if (!this.ever && limit !== null && now - this.started >= limit) {
      return { stop: `nothing answers at ${this.where} (${reason})` };
    }
    this.failures = welcomed ? 0 : this.failures + 1;
    if (this.o.maxAttempts !== null && this.failures >= this.o.maxAttempts) {
      return { stop: `gave up after ${this.failures} attempts: ${reason}` };
    }
    let delay = backoffDelay(this.failures, this.o.backoffInitial, this.o.backoffMax, this.o.random);
    if (code === 4429) delay = Math.max(delay, 1000); // the hub said too many: slow down
    if (!this.ever && limit !== null) delay = Math.min(delay, Math.max(0, this.started + limit - now));
    return delay;
  }

  /** A connect that came back: the count starts again. */
  reset(): void {
    this.failures = 0;
  }
}
