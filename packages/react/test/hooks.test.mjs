// The hooks in jsdom with React's own act(), over a CompanionClient on a fake socket:
// each hook shows its slice and re-renders only when that slice changes.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><div id="root"></div>', { url: 'http://hub.test/' });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.navigator = dom.window.navigator;
globalThis.HTMLElement = dom.window.HTMLElement;
globalThis.IS_REACT_ACT_ENVIRONMENT = true;

const { act, createElement: h } = await import('react');
const { createRoot } = await import('react-dom/client');
const { CompanionClient } = await import('@companion-ws/client');
const {
  CompanionProvider, useAgentState, useCompanionSession, useConversation, usePresence, useSessionState, useToolRuns,
  useVoiceFloor,
} = await import('../dist/index.js');

const T = 1_700_000_000_000;

class FakeSocket {
  static all = [];

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.sent = [];
    this.readyState = 1;
    FakeSocket.all.push(this);
  }

  send(text) { this.sent.push(JSON.parse(text)); }

  close() { this.readyState = 3; }

  serve(frame) { act(() => this.onmessage({ data: JSON.stringify(frame) })); }
}

const renders = {};
function counted(name, hook, show) {
  return function Probe() {
    renders[name] = (renders[name] ?? 0) + 1;
    const value = hook();
    return h('p', { id: name }, show(value));
  };
}

const Step = counted('step', () => useSessionState((s) => s.ui?.step ?? '-'), (v) => v);
const Picked = counted('picked', () => useSessionState((s) => s.picked ?? '-'), (v) => v);
const Session = counted('session', useCompanionSession, (s) => `${s.status} ${s.sessionId} ${s.role} ${s.seq}`);
const Said = counted('said', useConversation, (c) => c.messages.map((m) => m.text).join('|'));
const Agent = counted('agent', useAgentState, (a) => a?.state ?? 'none');
const People = counted('people', usePresence, (p) => p.map((m) => m.connection_id).join(','));
let floorSeen = null;
const Floor = counted('floor', () => { floorSeen = useVoiceFloor(); return floorSeen; },
  (f) => `${f.holder?.device_id ?? 'free'} ${f.isMine ? 'mine' : 'not-mine'}`);
const Tools = counted('tools', useToolRuns, (runs) => runs.map((r) => `${r.name}:${r.status}`).join(','));

let client;
let root;
let sock;
const text = (id) => document.getElementById(id).textContent;
const seq = { n: 0 };
const broadcast = (frame) => sock.serve({ session_id: 's1', timestamp: T, sender: 'c2', seq: ++seq.n, ...frame });

before(async () => {
  client = new CompanionClient('ws://hub.test', {
    token: 'tok', WebSocket: FakeSocket, loadHistory: false, watchNetwork: false,
  });
  root = createRoot(document.getElementById('root'));
  await act(async () => {
    root.render(h(CompanionProvider, { client }, h(Step), h(Picked), h(Session), h(Said), h(Agent), h(People), h(Tools), h(Floor)));
  });
  await act(() => new Promise((r) => setTimeout(r, 5)));
  sock = FakeSocket.all.at(-1);
  sock.serve({
    type: 'session_joined', session_id: 's1', connection_id: 'c1', user_id: 'alice', role: 'owner', device_id: 'd1',
    created: true, resumed: false, seq: 0, epoch: 'e1', state_version: 0, clients: 1, reconnect_token: null, timestamp: T,
  });
  const fetch = sock.sent.findLast((f) => f.type === 'get_session_state');
  sock.serve({ type: 'session_state', session_id: 's1', state: { ui: { step: 'quotes' } }, version: 1, seq: 0, requestId: fetch.requestId, timestamp: T });
});

after(async () => {
  act(() => root.unmount());
  await client.close();
});

test('each hook shows its slice', () => {
  assert.equal(text('step'), 'quotes');
  assert.equal(text('picked'), '-');
  assert.equal(text('session'), 'connected s1 owner 0');
  assert.equal(text('people'), 'c1');
});

test('a state change re-renders the hooks that select it, and not the others', () => {
  const before = { ...renders };
  broadcast({ type: 'session_state_updated', patch: { picked: 'ups' }, version: 2 });
  assert.equal(text('picked'), 'ups');
  assert.equal(renders.picked, before.picked + 1);
  assert.equal(renders.step, before.step, 'the step did not change');
  assert.equal(renders.said, before.said);
  assert.equal(renders.people, before.people);
  assert.equal(renders.session, before.session + 1, 'seq and version moved');
});

test('the conversation, the agent and the tool runs', () => {
  const before = { ...renders };
  broadcast({ type: 'transcript', role: 'agent', message_id: 'm1', text: 'Hello', final: true });
  assert.equal(text('said'), 'Hello');
  assert.equal(renders.agent, before.agent, 'no agent_state yet: the agent hook stays');
  assert.equal(renders.step, before.step);
  broadcast({ type: 'agent_state', state: 'thinking' });
  assert.equal(text('agent'), 'thinking');
  const tools = renders.tools;
  broadcast({ type: 'tool_call_started', tool_call_id: 'tc1', tool_name: 'get_shipping_quotes' });
  broadcast({ type: 'tool_call_finished', tool_call_id: 'tc1', tool_name: 'get_shipping_quotes', is_error: false, duration_ms: 12 });
  assert.equal(text('tools'), 'get_shipping_quotes:done');
  assert.equal(renders.tools, tools + 2);
});

test('presence: who comes and goes', () => {
  const before = { ...renders };
  broadcast({ type: 'client_joined', connection_id: 'c2', user_id: 'bob', client: 'ui', role: 'device', device_id: 'd2' });
  assert.equal(text('people'), 'c1,c2');
  assert.equal(renders.people, before.people + 1);
  assert.equal(renders.said, before.said);
});

test('the voice floor: the holder, whether it is this screen, and take / release / control', async () => {
  assert.equal(text('floor'), 'free not-mine');
  const before = { ...renders };
  const first = floorSeen;
  broadcast({ type: 'transcript', role: 'user', message_id: 'm2', text: 'Hi', final: true });
  assert.equal(renders.floor, before.floor, 'a transcript does not re-render the floor');
  assert.equal(floorSeen, first);

  let taking;
  act(() => { taking = floorSeen.take(); });
  const take = sock.sent.findLast((f) => f.type === 'take_voice');
  broadcast({
    type: 'voice_floor', device_id: 'd1', connection_id: 'c1', previous_device_id: null, reason: 'taken',
    sender: 'c1', requestId: take.requestId,
  });
  assert.equal((await taking).reason, 'taken');
  assert.equal(text('floor'), 'd1 mine');
  assert.equal(renders.floor, before.floor + 1);
  // The conversation re-rendered for the transcript and for the mark where the voice moved.
  assert.equal(renders.said, before.said + 2);
  assert.deepEqual(client.conversation.voiceMoves.map((m) => [m.from, m.to]), [[null, 'd1']]);
  assert.equal(renders.people, before.people, 'presence did not move');

  let muting;
  act(() => { muting = floorSeen.control('mute'); });
  const control = sock.sent.findLast((f) => f.type === 'agent_control');
  assert.equal(control.action, 'mute');
  broadcast({ type: 'agent_control', action: 'mute', device_id: 'd1', sender: 'c1', requestId: control.requestId });
  assert.equal((await muting).device_id, 'd1');
  assert.equal(renders.floor, before.floor + 1, 'a control moves nothing');

  broadcast({ type: 'voice_floor', device_id: 'd2', connection_id: 'c2', previous_device_id: 'd1', reason: 'taken', sender: 'c2' });
  assert.equal(text('floor'), 'd2 not-mine');
  let releasing;
  act(() => { releasing = floorSeen.release(); });
  const release = sock.sent.findLast((f) => f.type === 'release_voice');
  sock.serve({ type: 'error', code: 'no_voice', message: 'not yours', requestId: release.requestId, timestamp: T });
  await assert.rejects(releasing, (e) => e.code === 'no_voice');
  assert.equal(renders.floor, before.floor + 2);
});
