// static/conversation.js: frames -> the conversation the page draws (docs/protocol.md
// section 13), in any order, each seq once. Its messages against the shared fixtures
// in tests/fixtures/conversation, the same files tests/unit/test_conversation_fixtures.py
// runs against ui_state/conversation.py.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe as suite, test } from 'node:test';

import {
  addFrames, agentStatus, conversationFrom, emptyConversation, formatDuration, isAgent,
  progressStatusText, progressTitle, timeline,
} from '../../companion_ws/static/conversation.js';
import { problems } from './schema.mjs';

const T = 1_700_000_000_000;
let n = 0;
const at = (seq) => ({ session_id: 's1', seq, timestamp: T + seq * 1000, sender: 'c-agent' });
const said = (seq, role, id, text, final = true) => ({ type: 'transcript', role, message_id: id, text, final, ...at(seq) });
const state = (seq, s) => ({ type: 'agent_state', state: s, ...at(seq) });
const step = (seq, id, name, status, detail) => ({
  type: 'step', step_id: id, name, status, ...(detail ? { detail } : {}), ...at(seq),
});
const started = (seq, id, name) => {
  const { sender, ...rest } = at(seq);
  return { type: 'tool_call_started', tool_call_id: id, tool_name: name, ...rest };
};
const finished = (seq, id, name, ms, isError = false) => {
  const { sender, ...rest } = at(seq);
  return { type: 'tool_call_finished', tool_call_id: id, tool_name: name, is_error: isError, duration_ms: ms, ...rest };
};

// The scripted conversation the e2e test plays, as the hub broadcasts it.
const SCRIPT = [
  state(1, 'listening'),
  said(2, 'user', 'u1', 'Ship a 5 lb box from 90210 to 10001'),
  state(3, 'thinking'),
  step(4, 'st1', 'intent_recognition', 'started'),
  step(5, 'st1', 'intent_recognition', 'done', 'shipping quote'),
  started(6, 'call-1', 'get_shipping_quotes'),
  finished(7, 'call-1', 'get_shipping_quotes', 42),
  state(8, 'speaking'),
  said(9, 'agent', 'a1', 'I found five', false),
  said(10, 'agent', 'a1', 'I found five rates. The cheapest is', false),
  said(11, 'agent', 'a1', 'I found five rates. The cheapest is USPS Ground at $9.10, and the fastest'),
  said(12, 'user', 'u2', 'Wait'),
  said(13, 'agent', 'a1', 'I found five rates. The cheapest is USPS Ground at $9.10'),
  state(14, 'listening'),
];

test('the script is made of frames the hub sends', () => {
  for (const f of SCRIPT) assert.deepEqual(problems(f, 'server'), [], JSON.stringify(f));
});

test('messages in order of first appearance, partials replaced in place, a final message corrected', () => {
  const conv = conversationFrom(SCRIPT);
  assert.deepEqual(conv.messages.map((m) => [m.message_id, m.role, m.final, m.corrected]), [
    ['u1', 'user', true, false],
    ['a1', 'agent', true, true],
    ['u2', 'user', true, false],
  ]);
  const a1 = conv.messages[1];
  assert.equal(a1.text, 'I found five rates. The cheapest is USPS Ground at $9.10');
  // The partials are not "earlier wordings": only what was final and then changed.
  assert.deepEqual(a1.earlier, ['I found five rates. The cheapest is USPS Ground at $9.10, and the fastest']);
  assert.equal(a1.seq, 9);
  assert.equal(a1.updated_seq, 13);
  assert.equal(a1.timestamp, T + 9000);
  assert.equal(conv.lastSeq, 14);
});

test('a partial stays partial until its final frame', () => {
  const conv = conversationFrom(SCRIPT.slice(0, 10));
  const a1 = conv.messages.find((m) => m.message_id === 'a1');
  assert.equal(a1.final, false);
  assert.equal(a1.corrected, false);
  assert.equal(a1.text, 'I found five rates. The cheapest is');
});

test('the agent state is the latest one', () => {
  assert.equal(conversationFrom(SCRIPT).agentState.state, 'listening');
  assert.equal(conversationFrom(SCRIPT.slice(0, 8)).agentState.state, 'speaking');
  assert.equal(emptyConversation().agentState, null);
  assert.equal(conversationFrom([{ type: 'agent_state', state: 'dancing', ...at(1) }]).agentState, null);
});

test('steps and tool runs: running, done, failed, with durations', () => {
  const running = conversationFrom(SCRIPT.slice(0, 6));
  assert.deepEqual(running.progress.map((p) => [p.key, p.status]), [
    ['step:st1', 'done'], ['tool:call-1', 'running'],
  ]);
  const conv = conversationFrom([...SCRIPT, step(15, 'st2', 'label', 'started'), step(16, 'st2', 'label', 'failed', 'no quote')]);
  assert.deepEqual(conv.progress.map((p) => [p.kind, p.id, p.status, p.duration_ms, p.detail]), [
    ['step', 'st1', 'done', 1000, 'shipping quote'],
    ['tool', 'call-1', 'done', 42, null],
    ['step', 'st2', 'failed', 1000, 'no quote'],
  ]);
  assert.deepEqual(conv.progress.map((p) => p.parent), [null, null, null]); // no step was under way
  const nested = conversationFrom([
    step(1, 'x', 'tool_execution', 'started'), started(2, 'c', 'get_shipping_quotes'),
    finished(3, 'c', 'get_shipping_quotes', 5), step(4, 'x', 'tool_execution', 'done'),
  ]);
  assert.deepEqual(nested.progress.map((p) => [p.key, p.parent]), [['step:x', null], ['tool:c', 'step:x']]);
  assert.equal(progressTitle(conv.progress[0]), 'Intent recognition');
  assert.equal(progressTitle(conv.progress[1]), 'Looking up shipping rates');
  assert.equal(progressTitle({ kind: 'tool', name: 'lookup_order' }), 'Running lookup_order');
  assert.equal(progressStatusText(conv.progress[1]), 'Done · 42 ms');
  assert.equal(progressStatusText(conv.progress[2]), 'Failed · 1.0 s');
  assert.equal(progressStatusText(running.progress[1]), 'Running…');
  const failedTool = conversationFrom([started(1, 'x', 'create_shipping_label'), finished(2, 'x', 'create_shipping_label', 7, true)]);
  assert.equal(failedTool.progress[0].status, 'failed');
});

test('a tool run whose start is not known still shows its end', () => {
  const conv = conversationFrom([finished(7, 'call-1', 'get_shipping_quotes', 42)]);
  assert.deepEqual(conv.progress.map((p) => [p.status, p.duration_ms]), [['done', 42]]);
});

test('any order, any overlap: the same model as the frames in order', () => {
  const inOrder = conversationFrom(SCRIPT);
  // live frames first, then a history page that overlaps them (a reload)
  let conv = addFrames(emptyConversation(), SCRIPT.slice(9));
  conv = addFrames(conv, SCRIPT.slice(0, 11));
  conv = addFrames(conv, SCRIPT); // a replay of everything: nothing new
  for (const key of ['messages', 'agentState', 'progress', 'lastSeq']) {
    assert.deepEqual(conv[key], inOrder[key], key);
  }
  // reversed, one by one
  let back = emptyConversation();
  for (const f of [...SCRIPT].reverse()) back = addFrames(back, [f]);
  assert.deepEqual(back.messages, inOrder.messages);
});

test('nothing new: the same object, so the page need not redraw', () => {
  const conv = conversationFrom(SCRIPT);
  assert.equal(addFrames(conv, SCRIPT.slice(3, 5)), conv);
  assert.equal(addFrames(conv, [{ type: 'contextual_update', text: 'quote_ready', data: {}, ...at(20) }]), conv);
  assert.equal(addFrames(conv, [{ type: 'transcript', role: 'user', message_id: 'x', text: 'no seq' }]), conv);
});

// ---- the shared fixtures -------------------------------------------------------------

const dir = new URL('../fixtures/conversation/', import.meta.url);
const fixtures = readdirSync(dir)
  .filter((name) => name.endsWith('.json'))
  .sort()
  .map((name) => ({ name, ...JSON.parse(readFileSync(new URL(name, dir), 'utf8')) }));

// The fields the Python fold answers (GET /sessions/{id}/messages); the page's model
// has more (corrected, earlier, sender, updated_seq).
const shared = (conv) => conv.messages.map(({
  message_id, role, text, final, seq, timestamp,
}) => ({ message_id, role, text, final, seq, timestamp }));

test('there is a conversation fixture for every rule', () => {
  const names = new Set(fixtures.map((f) => f.name));
  for (const name of ['partials_then_final', 'correction_after_interruption', 'message_id_seen_again',
    'malformed', 'other_frames', 'voice_moved']) {
    assert.ok(names.has(`${name}.json`), name);
  }
});

suite('the conversation follows every fixture', () => {
  for (const fixture of fixtures) {
    test(fixture.name, () => {
      const events = structuredClone(fixture.events);
      const moves = fixture.voice_moves ?? [];
      const all = conversationFrom(events);
      assert.deepEqual(shared(all), fixture.messages, 'all at once');
      assert.deepEqual(all.voiceMoves, moves, 'the voice moves, all at once');
      let one = emptyConversation();
      for (const f of events) one = addFrames(one, [f]);
      assert.deepEqual(shared(one), fixture.messages, 'one by one');
      assert.deepEqual(one.voiceMoves, moves, 'the voice moves, one by one');
      // The page's own rule besides: any order gives the fold in seq order.
      let back = emptyConversation();
      for (const f of [...events].reverse()) back = addFrames(back, [f]);
      assert.deepEqual(shared(back), fixture.messages, 'in reverse');
      assert.deepEqual(back.voiceMoves, moves, 'the voice moves, in reverse');
    });
  }
});

suite('the conversation fixtures speak the wire of protocol.json', () => {
  for (const fixture of fixtures.filter((f) => !f.off_schema)) {
    test(fixture.name, () => {
      for (const [i, f] of fixture.events.entries()) {
        assert.deepEqual(problems(f, 'server'), [], `${fixture.name} event ${i}`);
      }
    });
  }
});

test('the timeline puts the marks where the voice moved among the messages, in seq order', () => {
  const fixture = fixtures.find((f) => f.name === 'voice_moved.json');
  const line = timeline(conversationFrom(fixture.events));
  assert.deepEqual(line.map((e) => e.kind === 'voice_moved' ? `moved:${e.to}` : e.message_id),
    ['moved:d-laptop', 'u1', 'a1', 'moved:d-phone', 'a2', 'moved:d-laptop']);
});

test('a correction marks a final message corrected and keeps its earlier wording', () => {
  const fixture = fixtures.find((f) => f.name === 'correction_after_interruption.json');
  const a1 = conversationFrom(fixture.events).messages.find((m) => m.message_id === 'a1');
  assert.equal(a1.corrected, true);
  assert.deepEqual(a1.earlier, [fixture.events[1].text]);
  assert.equal(a1.updated_seq, 5);
});

test('the agent at a glance', () => {
  const listening = { state: 'listening' };
  assert.equal(agentStatus(listening, { present: true }).label, 'Listening');
  assert.equal(agentStatus(null, { present: true }).kind, 'idle');
  assert.equal(agentStatus(listening, { present: false }).kind, 'none');
  assert.equal(agentStatus(listening, { present: false }).label, 'No agent');
  assert.equal(agentStatus(listening, { present: true, live: false }).kind, 'unknown');
  assert.ok(isAgent({ role: 'agent', client: 'agent' }));
  assert.ok(isAgent({ client: 'agent' }));
  assert.ok(!isAgent({ role: 'owner', client: 'ui' }));
});

test('a long conversation keeps every message but only the newest frames', () => {
  const frames = [];
  for (let i = 1; i <= 6000; i += 1) frames.push(said(i, i % 2 ? 'user' : 'agent', `m${Math.ceil(i / 3)}`, `t${i}`, i % 3 === 0));
  let conv = emptyConversation();
  for (let i = 0; i < frames.length; i += 500) conv = addFrames(conv, frames.slice(i, i + 500));
  assert.equal(conv.messages.length, 2000);
  assert.ok(conv.frames.length <= 5000);
  assert.equal(conv.lastSeq, 6000);
});

test('durations in words', () => {
  assert.equal(formatDuration(42), '42 ms');
  assert.equal(formatDuration(1400), '1.4 s');
  assert.equal(formatDuration(12_000), '12 s');
  assert.equal(formatDuration(125_000), '2 min 5 s');
  assert.equal(formatDuration(null), '');
  n += 1;
});
