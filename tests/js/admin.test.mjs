// The operator page's pure helpers (companion_ws/static/admin-charts.js, admin-events.js):
// series from sampled counters, and the words for events, tasks and times.
//
//   node --test tests/js/

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  WINDOW_MS, compact, increments, levels, peak, rates, spanOf, sum,
} from '../../companion_ws/static/admin-charts.js';
import { ago, describeTasks, isTrouble, summarizeEvent } from '../../companion_ws/static/admin-events.js';

const T = 1_700_000_000_000;
const samples = [
  { t: T, connections: 1, n: 10 },
  { t: T + 2000, connections: 3, n: 14 },
  { t: T + 4000, connections: 2, n: 14 },
  { t: T + 6000, connections: 2, n: 3 }, // the process restarted: 3 since
];

test('levels, increments and per-second rates; a counter that goes down restarted', () => {
  assert.deepEqual(levels(samples, (s) => s.connections).map((p) => p.v), [1, 3, 2, 2]);
  assert.deepEqual(increments(samples, (s) => s.n).map((p) => p.v), [4, 0, 3]);
  assert.deepEqual(rates(samples, (s) => s.n).map((p) => p.v), [2, 0, 1.5]);
  assert.equal(sum(increments(samples, (s) => s.n)), 7);
  assert.equal(peak(levels(samples, (s) => s.connections)), 3);
  assert.deepEqual(rates([samples[0]], (s) => s.n), []);
});

test('the x axis spans the samples, at least a minute, at most the window', () => {
  assert.equal(spanOf([], T), 60_000);
  assert.equal(spanOf(samples, T + 6000), 60_000);
  assert.equal(spanOf([{ t: T }], T + 120_000), 120_000);
  assert.equal(spanOf([{ t: T }], T + 3_600_000), WINDOW_MS);
});

test('compact numbers', () => {
  assert.equal(compact(0), '0');
  assert.equal(compact(0.44), '0.4');
  assert.equal(compact(12.6), '13');
  assert.equal(compact(12_345), '12.3k');
  assert.equal(compact(NaN), '—');
});

test('one line per event type', () => {
  assert.equal(
    summarizeEvent({ type: 'contextual_update', text: 'quote_ready', data: { carrier: 'UPS', cost: 4 } }),
    'Quote ready — carrier: UPS · cost: 4',
  );
  assert.equal(summarizeEvent({ type: 'contextual_update', text: 'hello' }), 'hello');
  assert.equal(
    summarizeEvent({ type: 'session_state_updated', version: 3, patch: { quotes: [], ui: {} } }),
    'v3 · quotes, ui',
  );
  assert.equal(
    summarizeEvent({ type: 'client_joined', user_id: 'bob', client: 'ui', role: 'owner' }),
    'bob · ui · owner',
  );
  assert.equal(summarizeEvent({ type: 'transcript', role: 'user', text: 'hi' }), 'User: hi');
  assert.equal(
    summarizeEvent({ type: 'tool_call_finished', tool_name: 'x', is_error: true, duration_ms: 12 }),
    'x · failed · 12 ms',
  );
  assert.equal(summarizeEvent({ type: 'something_new', seq: 4, answer: 42 }), 'answer: 42');
  assert.ok(summarizeEvent({ type: 'contextual_update', text: 'x'.repeat(500) }).length <= 120);
  assert.ok(isTrouble({ type: 'tool_call_finished', is_error: true }));
  assert.ok(!isTrouble({ type: 'contextual_update' }));
});

test('tasks from the state, and times ago', () => {
  assert.equal(describeTasks({}), null);
  assert.equal(describeTasks({ tasks: [] }), null);
  assert.equal(
    describeTasks({ tasks: [{ name: 'shipment', status: 'completed' }, { name: 'return', status: 'active' }] }),
    '2 tasks · return active',
  );
  assert.equal(describeTasks({ tasks: [{ name: 'shipment', status: 'abandoned' }] }), '1 task · shipment abandoned');
  assert.equal(ago(T, T + 1000), 'just now');
  assert.equal(ago(T, T + 42_000), '42 s ago');
  assert.equal(ago(T, T + 5 * 60_000), '5 min ago');
  assert.equal(ago(T, T + 3 * 3_600_000), '3 h ago');
  assert.equal(ago(null, T), '—');
});
