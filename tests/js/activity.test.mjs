// static/activity.js (the feed's words, who is who) and static/sessions.js's rows.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  activityEntries, describeMember, describeSender, feedFrom, taskChanges, taskView,
} from '../../companion_ws/static/activity.js';
import { sessionDetail, sessionRows } from '../../companion_ws/static/sessions.js';

const T = 1_700_000_000_000;
const joined = (seq, id, role, client) => ({
  type: 'client_joined', session_id: 's1', seq, timestamp: T + seq, connection_id: id,
  user_id: 'alice', client, role, device_id: `d-${id}`,
});
const members = new Map([
  ['c-desk', joined(1, 'c-desk', 'owner', 'ui')],
  ['c-agent', joined(2, 'c-agent', 'agent', 'agent')],
  ['c-phone', joined(3, 'c-phone', 'companion', 'ui')],
]);
const desk = { myConnectionId: 'c-desk', members };
const phone = { myConnectionId: 'c-phone', members };
const QUOTE = { quote_id: 'q2', carrier: 'UPS', service: 'Ground', cost: 12.3, days: 3 };

test('who is who: roles in words, never a raw id', () => {
  assert.deepEqual(describeSender('c-phone', desk), { kind: 'companion', label: 'Screen joined by QR' });
  assert.deepEqual(describeSender('c-phone', phone), { kind: 'self', label: 'This screen' });
  assert.deepEqual(describeSender('c-agent', desk), { kind: 'agent', label: 'Voice agent' });
  assert.deepEqual(describeSender('c-desk', phone), { kind: 'owner', label: 'Owner’s screen' });
  assert.equal(describeSender('backend:svc', desk).kind, 'backend');
  // Every backend door's sender (docs/backends.md) reads "Backend"; the voice agent's
  // server tools and webhook do not.
  for (const sender of ['service:backend1', 'bus', 'http', 'owner:alice', 'admin:root', 'grpc:old']) {
    assert.deepEqual(describeSender(sender, desk), { kind: 'backend', label: 'Backend' }, sender);
  }
  assert.notEqual(describeSender('elevenlabs:server-tool', desk).kind, 'backend');
  assert.equal(describeSender(null, desk).kind, 'server');
  assert.equal(describeSender('c-gone', desk).label, 'Another screen');
  for (const m of members.values()) {
    const d = describeMember(m, 'c-desk');
    assert.ok(!`${d.name} ${d.detail}`.includes(m.connection_id), d.name);
  }
  assert.equal(describeMember(members.get('c-desk'), 'c-desk').detail, 'Session owner');
  assert.equal(describeMember(members.get('c-phone'), 'c-phone').detail, 'Joined by QR code');
});

test('a reloaded page is a new connection of the same device: still "This screen"', () => {
  const ctx = { myConnectionId: 'c-phone-2', myDeviceId: 'd-c-phone', members };
  assert.deepEqual(describeSender('c-phone', ctx), { kind: 'self', label: 'This screen' });
  assert.deepEqual(activityEntries(joined(3, 'c-phone', 'companion', 'ui'), ctx), []);
});

test('who picked a quote, and when', () => {
  const frame = {
    type: 'session_state_updated', seq: 10, timestamp: T + 10, sender: 'c-phone', version: 4,
    patch: { selected_option: QUOTE, ui: { current_step: 'selected' } },
  };
  const [entry] = activityEntries(frame, desk);
  assert.equal(entry.title, 'Screen joined by QR picked UPS Ground');
  assert.match(entry.detail, /12\.30 · 3 business days/);
  assert.equal(entry.who.kind, 'companion');
  assert.equal(entry.timestamp, T + 10);
  assert.equal(activityEntries(frame, phone)[0].title, 'This screen picked UPS Ground');
});

test('housekeeping and the tools\' own results stay out of the feed', () => {
  const scroll = { type: 'session_state_updated', seq: 11, sender: 'c-desk', version: 5, patch: { ui: { scroll_position: 300 } } };
  assert.deepEqual(activityEntries(scroll, desk), []);
  const quotes = {
    type: 'session_state_updated', seq: 12, sender: 'c-agent', version: 6,
    patch: { shipping_details: {}, quotes: [], selected_option: null, label: null, ui: { current_step: 'quotes' } },
  };
  assert.deepEqual(activityEntries(quotes, desk), []);
  assert.deepEqual(activityEntries({ type: 'transcript', seq: 14 }, desk), []);
  // The older bridge's contextual_update "user_transcript" is no section 13 transcript:
  // the conversation leaves it out (tests/fixtures/conversation/other_frames.json), so
  // the feed shows it as the update it is.
  const said = { type: 'contextual_update', seq: 13, sender: 'c-agent', text: 'user_transcript', data: { text: 'hi' } };
  assert.equal(activityEntries(said, desk)[0].kind, 'update');
});

test('events in words: quotes and labels summarized, other data kept', () => {
  const ready = {
    type: 'contextual_update', seq: 5, sender: 'c-agent', text: 'quote_ready',
    data: { shipping_details: { from: '90210', to: '10001', weight_lbs: 5 }, quotes: [QUOTE, QUOTE] },
  };
  const [e] = activityEntries(ready, desk);
  assert.equal(e.title, 'Quote ready');
  assert.equal(e.detail, '2 rates · 90210 → 10001 · 5 lb');
  assert.equal(e.data, null);
  const other = { type: 'contextual_update', seq: 6, sender: 'c-agent', text: 'Pickup booked', data: { date: 'tomorrow' } };
  assert.deepEqual(activityEntries(other, desk)[0].data, { date: 'tomorrow' });
});

test('presence in the feed, except this screen\'s own comings and goings', () => {
  assert.equal(activityEntries(joined(3, 'c-phone', 'companion', 'ui'), desk)[0].title, 'Screen joined by QR joined');
  assert.deepEqual(activityEntries(joined(1, 'c-desk', 'owner', 'ui'), desk), []);
  const left = { ...joined(9, 'c-agent', 'agent', 'agent'), type: 'client_left' };
  assert.equal(activityEntries(left, desk)[0].title, 'Voice agent left');
});

test('tasks: started, completed, abandoned, resumed', () => {
  const active = { task_id: 't1', name: 'shipment', status: 'active', started_at: T, ended_at: null };
  const done = { ...active, status: 'completed', ended_at: T + 5 };
  assert.deepEqual(taskChanges([], [active]).map((c) => c.title), ['Task started: Shipment']);
  assert.deepEqual(taskChanges([active], [done]).map((c) => c.title), ['Task completed: Shipment']);
  assert.deepEqual(taskChanges([done], [done]), []);
  assert.deepEqual(taskChanges([{ ...active, status: 'abandoned' }], [active]).map((c) => c.title), ['Task resumed: Shipment']);
  const frames = [
    { type: 'session_state_updated', seq: 1, sender: 'c-agent', version: 1, patch: { tasks: [active] } },
    { type: 'session_state_updated', seq: 2, sender: 'c-agent', version: 2, patch: { tasks: [done] } },
  ];
  // in any order, the tasks compared are those before each change
  assert.deepEqual(feedFrom([frames[1], frames[0]], desk).map((e) => e.title), [
    'Task completed: Shipment', 'Task started: Shipment',
  ]);
  const view = taskView([{ ...done, task_id: 't0', ended_at: T - 9 }, { ...active, task_id: 't2' }, { ...active, task_id: 't3', status: 'abandoned' }]);
  assert.equal(view.active.task_id, 't2');
  assert.deepEqual(view.others.map((t) => t.task_id), ['t3', 't0']);
  assert.equal(taskView(undefined).active, null);
});

test('your sessions: newest first, restore what ended or expired, open what is live', () => {
  const now = T + 10_000_000;
  const rows = sessionRows([
    { session_id: 'old', created_at: T, last_activity_at: T + 100, expires_at: T + 3600_000, ended_at: T + 200, end_reason: 'ended', active: false, seq: 12 },
    { session_id: 'cur', created_at: T + 5_000_000, last_activity_at: now, expires_at: now + 3600_000, ended_at: null, active: true, seq: 3 },
    { session_id: 'exp', created_at: T + 1000, last_activity_at: T + 2000, expires_at: T + 3000, ended_at: null, active: true, seq: 1 },
    { session_id: 'other', created_at: T + 6_000_000, last_activity_at: T + 6_000_000, expires_at: now + 1, ended_at: null, active: true, seq: 0 },
  ], 'cur', now);
  assert.deepEqual(rows.map((r) => [r.session_id, r.status, r.canRestore, r.canOpen]), [
    ['cur', 'live', false, false],
    ['other', 'live', false, true],
    ['exp', 'expired', true, false],
    ['old', 'ended', true, false],
  ]);
  assert.match(sessionDetail(rows[0]), /^This session · Open · last active /);
  assert.match(sessionDetail(rows[3]), /^Ended · last active /);
  assert.deepEqual(sessionRows(null, 'x'), []);
  // the session on screen, once ended, can be restored too
  assert.equal(sessionRows([{ ...rows[3], session_id: 'old', ended_at: T + 200, end_reason: 'ended' }], 'old', now)[0].canRestore, true);
});
