// CompanionClient over a fake WebSocket: requests and their typed errors, the offline
// queue (a conflicting queued update is refused, not applied), tokens on every connect
// and refresh, waits with timeouts and AbortSignals, and the conversation and presence.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ClientClosed, ClientError, CompanionClient, ConnectionLost, backoffDelay,
} from '../dist/index.js';

const T = 1_700_000_000_000;
const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

class FakeSocket {
  static all = [];

  constructor(url, protocols = []) {
    this.url = new URL(url);
    this.protocols = protocols;
    this.sent = [];
    this.readyState = 1;
    FakeSocket.all.push(this);
  }

  send(text) { this.sent.push(JSON.parse(text)); }

  close() { this.readyState = 3; }

  serve(frame) { this.onmessage({ data: JSON.stringify(frame) }); }

  shut(code, reason = '') {
    this.readyState = 3;
    this.onclose({ code, reason });
  }

  last(type) { return this.sent.findLast((f) => f.type === type); }
}

const welcome = (extra = {}) => ({
  type: 'session_joined', session_id: 's1', connection_id: 'c1', user_id: 'alice', role: 'owner',
  device_id: 'd1', created: true, resumed: false, seq: 0, epoch: 'e1', state_version: 0, clients: 1,
  reconnect_token: null, timestamp: T, ...extra,
});
const snapshot = (sock, state, version) => sock.serve({
  type: 'session_state', session_id: 's1', state, version, seq: 0,
  requestId: sock.last('get_session_state').requestId, timestamp: T,
});

async function started(extra = {}) {
  FakeSocket.all = [];
  const tokens = [];
  const hub = new CompanionClient('http://hub.test:8000', {
    token: async () => { tokens.push(`t${tokens.length}`); return tokens.at(-1); },
    WebSocket: FakeSocket, backoffInitial: 1, backoffMax: 2, loadHistory: false, ...extra,
  });
  const ready = hub.start();
  await tick();
  const sock = FakeSocket.all.at(-1);
  sock.serve(welcome());
  snapshot(sock, { a: 1 }, 1);
  await ready;
  return { hub, sock, tokens };
}

test('start resolves with the welcome and the state; the token rides in the subprotocol', async () => {
  const { hub, sock } = await started();
  assert.equal(sock.url.href, 'ws://hub.test:8000/ws?client=ui');
  assert.deepEqual(sock.protocols, ['companion.v1', 'bearer.t0']);
  assert.deepEqual([hub.sessionId, hub.role, hub.deviceId, hub.version, hub.seq, hub.epoch],
    ['s1', 'owner', 'd1', 1, 0, 'e1']);
  assert.deepEqual(hub.state, { a: 1 });
  await hub.close();
});

test('updateState resolves with its echo; an error frame rejects with a typed ClientError', async () => {
  const { hub, sock } = await started();
  const update = hub.updateState({ b: 2 }, { expectedVersion: 1 });
  const sent = sock.last('update_session_state');
  assert.equal(sent.expected_version, 1);
  sock.serve({
    type: 'session_state_updated', seq: 1, session_id: 's1', patch: { b: 2 }, version: 2, sender: 'c1',
    requestId: sent.requestId, timestamp: T,
  });
  assert.equal((await update).version, 2);
  assert.deepEqual(hub.state, { a: 1, b: 2 });
  const stale = hub.updateState({ b: 3 }, { expectedVersion: 1 });
  sock.serve({
    type: 'error', session_id: 's1', code: 'version_conflict', message: 'at 2',
    requestId: sock.last('update_session_state').requestId, timestamp: T,
  });
  await assert.rejects(stale, (e) => e instanceof ClientError && e.code === 'version_conflict');
  await hub.close();
});

test('offline: a queued update goes out after the welcome; a conflicting one rejects and is not applied', async () => {
  const { hub, sock, tokens } = await started();
  sock.shut(1006);
  const queued = hub.updateState({ picked: 'x' }, { expectedVersion: 1 });
  assert.equal(sock.last('update_session_state'), undefined);
  await tick();
  const again = FakeSocket.all.at(-1);
  assert.notEqual(again, sock);
  assert.deepEqual(tokens, ['t0', 't1']); // the token function, on every connect
  assert.equal(again.url.searchParams.get('last_seq'), '0');
  assert.equal(again.last('update_session_state'), undefined); // not before the welcome
  again.serve(welcome({ created: false, resumed: true, connection_id: 'c2' }));
  const sent = again.last('update_session_state');
  assert.equal(sent.expected_version, 1);
  // Meanwhile another screen changed the state: the hub refuses the stale write.
  again.serve({
    type: 'session_state_updated', seq: 1, session_id: 's1', patch: { picked: 'y' }, version: 2, sender: 'c9',
    timestamp: T,
  });
  again.serve({
    type: 'error', session_id: 's1', code: 'version_conflict', message: 'at 2', requestId: sent.requestId, timestamp: T,
  });
  await assert.rejects(queued, (e) => e instanceof ClientError && e.code === 'version_conflict');
  assert.deepEqual(hub.state, { a: 1, picked: 'y' });
  await hub.close();
});

test('a request sent before a drop rejects with ConnectionLost; close rejects with ClientClosed', async () => {
  const { hub, sock } = await started();
  const lost = hub.contextualUpdate('hello');
  sock.shut(1012);
  await assert.rejects(lost, (e) => e instanceof ConnectionLost && !(e instanceof ClientClosed));
  const waiting = hub.callTool('get_shipping_quotes', 'tc1', { weight: 1 });
  await hub.close();
  await assert.rejects(waiting, (e) => e instanceof ClientClosed && e.code === 1000);
  await assert.rejects(hub.request({ type: 'ping' }), ClientClosed);
  assert.equal(hub.status, 'closed');
});

test('waits time out and abort with the signal\'s reason', async () => {
  const { hub } = await started();
  await assert.rejects(hub.waitFor(() => false, { timeout: 10 }), { name: 'TimeoutError' });
  await assert.rejects(hub.request({ type: 'get_presence' }, { timeout: 10 }), { name: 'TimeoutError' });
  const ctl = new AbortController();
  const aborted = hub.waitFor(() => false, { timeout: null, signal: ctl.signal });
  ctl.abort();
  await assert.rejects(aborted, { name: 'AbortError' });
  await hub.close();
});

test('refresh_required is answered with a fresh token from the function', async () => {
  const { hub, sock, tokens } = await started();
  sock.serve({ type: 'refresh_required', session_id: 's1', expires_at: T + 60000, timestamp: T });
  await tick();
  const refresh = sock.last('refresh');
  assert.equal(refresh.token, 't1');
  assert.deepEqual(tokens, ['t0', 't1']);
  await hub.close();
});

test('a terminal close stops for good; start() rejects with ClientClosed', async () => {
  FakeSocket.all = [];
  const hub = new CompanionClient('ws://hub.test', { token: 'x', WebSocket: FakeSocket, loadHistory: false });
  const ready = hub.start();
  await tick();
  FakeSocket.all.at(-1).shut(4403, 'forbidden');
  await assert.rejects(ready, (e) => e instanceof ClientClosed && e.code === 4403);
  assert.equal(hub.status, 'stopped');
});

test('events() yields delivered frames in order and ends with the client', async () => {
  const { hub, sock } = await started();
  const seen = [];
  const reading = (async () => { for await (const f of hub.events()) seen.push(f.seq ?? f.type); })();
  for (const seq of [1, 2, 2, 3]) {
    sock.serve({ type: 'contextual_update', seq, session_id: 's1', text: `n${seq}`, data: null, sender: 'c2', timestamp: T });
  }
  await hub.close();
  await reading;
  assert.deepEqual(seen, [1, 2, 3]);
});

test('the conversation and presence, as the page shows them', async () => {
  const { hub, sock } = await started();
  const convs = [];
  const rosters = [];
  hub.on('conversation', (c) => convs.push(c));
  const off = hub.on('presence', (p) => rosters.push(p.map((m) => m.connection_id)));
  sock.serve({ type: 'presence', session_id: 's1', timestamp: T, clients: [
    { connection_id: 'c1', user_id: 'alice', client: 'ui', role: 'owner', device_id: 'd1' },
    { connection_id: 'c7', user_id: 'bot', client: 'agent', role: 'agent', device_id: null },
  ] });
  sock.serve({ type: 'transcript', seq: 1, session_id: 's1', timestamp: T, sender: 'c7', role: 'agent', message_id: 'm1', text: 'Hi', final: true });
  sock.serve({ type: 'agent_state', seq: 2, session_id: 's1', timestamp: T, sender: 'c7', state: 'thinking' });
  sock.serve({ type: 'tool_call_started', seq: 3, session_id: 's1', timestamp: T, sender: 'c7', tool_call_id: 'tc1', tool_name: 'get_shipping_quotes' });
  off();
  sock.serve({ type: 'client_left', seq: 4, session_id: 's1', timestamp: T, connection_id: 'c7', user_id: 'bot', client: 'agent', role: 'agent' });
  assert.deepEqual(rosters, [['c1', 'c7']]);
  assert.deepEqual(hub.presence.map((m) => m.connection_id), ['c1']);
  assert.equal(hub.conversation.messages[0].text, 'Hi');
  assert.equal(hub.conversation.agentState.state, 'thinking');
  assert.deepEqual(hub.conversation.progress.map((p) => [p.key, p.status]), [['tool:tc1', 'running']]);
  assert.equal(convs.length, 3);
  await hub.close();
});

test('full jitter: anywhere from 0 to the capped exponential', () => {
  assert.equal(backoffDelay(1, 300, 10000, () => 0), 0);
  assert.equal(backoffDelay(1, 300, 10000, () => 1), 600);
  assert.equal(backoffDelay(10, 300, 10000, () => 1), 10000);
});

test('reconnect() on an open connection drops it like any other and resumes', async () => {
  const { hub, sock } = await started();
  sock.serve({ type: 'contextual_update', seq: 1, session_id: 's1', text: 'one', data: null, sender: 'c2', timestamp: T });
  const sent = hub.contextualUpdate('in flight');
  hub.reconnect();
  await assert.rejects(sent, ConnectionLost);
  await tick();
  const again = FakeSocket.all.at(-1);
  assert.notEqual(again, sock);
  assert.equal(sock.readyState, 3);
  assert.equal(again.url.searchParams.get('last_seq'), '1');
  assert.equal(hub.phase, 'joining');
  await hub.close();
});

test('an update asked for offline carries the version last seen, as the Python client\'s does', async () => {
  const { hub, sock } = await started();
  const online = hub.updateState({ x: 1 });
  assert.equal(sock.last('update_session_state').expected_version, undefined); // online: as asked
  sock.shut(1006);
  await assert.rejects(online, ConnectionLost);
  const queued = hub.updateState({ picked: 'x' });
  await tick();
  const again = FakeSocket.all.at(-1);
  again.serve(welcome({ created: false, resumed: true, connection_id: 'c2' }));
  const sent = again.last('update_session_state');
  assert.equal(sent.expected_version, 1);
  again.serve({
    type: 'error', session_id: 's1', code: 'version_conflict', message: 'at 2', requestId: sent.requestId, timestamp: T,
  });
  await assert.rejects(queued, (e) => e instanceof ClientError && e.code === 'version_conflict');
  await hub.close();
});

test('the voice floor: from the welcome and the broadcasts, this connection\'s or not; take, release, control', async () => {
  FakeSocket.all = [];
  const hub = new CompanionClient('http://hub.test:8000', {
    token: 't', WebSocket: FakeSocket, backoffInitial: 1, backoffMax: 2, loadHistory: false,
  });
  const floors = [];
  hub.on('floor', (f) => floors.push(f));
  const ready = hub.start();
  await tick();
  let sock = FakeSocket.all.at(-1);
  sock.serve(welcome({ voice_floor: { device_id: 'd2', connection_id: 'c2' } }));
  snapshot(sock, {}, 0);
  await ready;
  assert.deepEqual(hub.voiceFloor, { holder: { device_id: 'd2', connection_id: 'c2' }, mine: false, seq: 0 });
  const floorFrame = (seq, device, connection, previous, reason, requestId) => ({
    type: 'voice_floor', seq, session_id: 's1', device_id: device, connection_id: connection,
    previous_device_id: previous, reason, sender: 'c1', timestamp: T, ...(requestId ? { requestId } : {}),
  });

  const taking = hub.takeVoice();
  const take = sock.last('take_voice');
  assert.ok(take.requestId);
  const echo = floorFrame(1, 'd1', 'c1', 'd2', 'taken', take.requestId);
  sock.serve(echo);
  assert.deepEqual(await taking, echo);
  assert.deepEqual(hub.voiceFloor, { holder: { device_id: 'd1', connection_id: 'c1' }, mine: true, seq: 1 });
  const before = hub.voiceFloor;
  sock.serve(floorFrame(1, 'd1', 'c1', 'd2', 'taken')); // the same seq again: nothing new
  assert.equal(hub.voiceFloor, before);

  const control = hub.agentControl('interrupt');
  const sent = sock.last('agent_control');
  assert.equal(sent.action, 'interrupt');
  const controlled = { type: 'agent_control', seq: 2, session_id: 's1', action: 'interrupt', device_id: 'd1',
    sender: 'c1', requestId: sent.requestId, timestamp: T };
  sock.serve(controlled);
  assert.deepEqual(await control, controlled);
  await assert.rejects(hub.agentControl('louder'), TypeError);

  const releasing = hub.releaseVoice();
  const release = sock.last('release_voice');
  sock.serve({ type: 'error', code: 'no_voice', message: 'not yours', requestId: release.requestId });
  await assert.rejects(releasing, (e) => e instanceof ClientError && e.code === 'no_voice');

  sock.serve(floorFrame(3, 'd3', 'c3', 'd1', 'taken')); // another screen took it
  assert.deepEqual(hub.voiceFloor, { holder: { device_id: 'd3', connection_id: 'c3' }, mine: false, seq: 3 });
  sock.serve(floorFrame(4, null, null, 'd3', 'released'));
  assert.deepEqual(hub.voiceFloor, { holder: null, mine: false, seq: 4 });
  assert.deepEqual(floors.map((f) => [f.holder?.device_id ?? null, f.mine]),
    [['d2', false], ['d1', true], ['d3', false], [null, false]]);

  // A fresh welcome (a new connection) says again who holds it.
  hub.reconnect();
  await tick();
  sock = FakeSocket.all.at(-1);
  sock.serve(welcome({ connection_id: 'c9', resumed: true, seq: 4, voice_floor: { device_id: 'd1', connection_id: 'c9' } }));
  assert.deepEqual(hub.voiceFloor, { holder: { device_id: 'd1', connection_id: 'c9' }, mine: true, seq: 4 });
  await hub.close();
});
