// The page's controller (connect() of @companion-ws/client, vendored under
// static/vendor/companion-client/) driving its mirror over a fake WebSocket: what it
// sends, what the page is handed, and when it reconnects (by shouldReconnect).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { connect, handshake } from '../../companion_ws/static/vendor/companion-client/index.js';

const T = 1_700_000_000_000;
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

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

  types() { return this.sent.map((f) => f.type); }
}

function welcome(seq, extra = {}) {
  return {
    type: 'session_joined', session_id: 's1', connection_id: 'c1', user_id: 'alice',
    created: true, resumed: false, seq, epoch: 'e1', state_version: 0, clients: 1,
    reconnect_token: null, timestamp: T, ...extra,
  };
}
const update = (seq, text) => ({
  type: 'contextual_update', seq, session_id: 's1', text, data: null, sender: 'c2', timestamp: T,
});

async function open(extra = {}) {
  FakeSocket.all = [];
  const seen = { events: [], states: [], statuses: [] };
  const hub = connect({
    getToken: async () => 'token',
    url: 'ws://hub.test/ws',
    WebSocket: FakeSocket,
    backoffBase: 1,
    backoffMax: 2,
    onEvent: (frame) => seen.events.push(frame),
    onState: (state, info) => seen.states.push([state, info.reason]),
    onStatus: (s) => seen.statuses.push(s),
    ...extra,
  });
  await tick();
  const sock = FakeSocket.all.at(-1);
  sock.serve(welcome(0));
  const fetch = sock.sent.find((f) => f.type === 'get_session_state');
  sock.serve({
    type: 'session_state', session_id: 's1', state: { a: 1 }, version: 1, seq: 0,
    requestId: fetch.requestId, timestamp: T,
  });
  return { hub, sock, seen };
}

test('a gap asks for a replay, and the replayed events reach the page in order', async () => {
  const { hub, sock, seen } = await open();
  assert.deepEqual(hub.state, { a: 1 });
  sock.serve(update(1, 'one'));
  sock.serve(update(4, 'four')); // 2 and 3 are missing
  assert.deepEqual(sock.sent.at(-1), { type: 'resume', last_seq: 1, epoch: 'e1' });
  sock.serve(update(5, 'five')); // still in the gap: dropped, no second resume
  assert.equal(sock.types().filter((t) => t === 'resume').length, 1);
  for (const seq of [2, 3, 4, 5]) sock.serve(update(seq, `n${seq}`));
  sock.serve({ type: 'resumed', session_id: 's1', from_seq: 1, to_seq: 5, replayed: 4, timestamp: T });
  const feed = seen.events.filter((f) => f.type === 'contextual_update').map((f) => f.seq);
  assert.deepEqual(feed, [1, 2, 3, 4, 5]);
  assert.deepEqual(hub.feed.map((f) => f.seq), [1, 2, 3, 4, 5]);
  assert.equal(hub.seq, 5);
  assert.equal(hub.phase, 'live');
  assert.equal(sock.types().filter((t) => t === 'get_session_state').length, 1); // no snapshot
  hub.close();
});

test('patches are applied by version; a skip fetches the state', async () => {
  const { hub, sock, seen } = await open();
  const patch = (seq, p, version) => ({
    type: 'session_state_updated', seq, session_id: 's1', patch: p, version, sender: 'c2', timestamp: T,
  });
  sock.serve(patch(1, { b: 2 }, 2));
  assert.deepEqual(hub.state, { a: 1, b: 2 });
  assert.deepEqual(seen.states.at(-1), [{ a: 1, b: 2 }, 'patch']);
  sock.serve(patch(2, { d: 4 }, 4));
  assert.equal(hub.version, 2);
  const fetch = sock.sent.at(-1);
  assert.equal(fetch.type, 'get_session_state');
  sock.serve({ type: 'error', session_id: 's1', code: 'rate_limited', message: 'slow', requestId: fetch.requestId, timestamp: T });
  sock.serve(patch(3, { e: 5 }, 5)); // refused fetch: the next skip asks again
  assert.equal(sock.types().filter((t) => t === 'get_session_state').length, 3);
  hub.close();
});

test('reconnects resume from the mirror; terminal closes stop, by shouldReconnect', async () => {
  const { hub, sock, seen } = await open();
  sock.serve(update(1, 'one'));
  sock.shut(4409, 'too slow');
  assert.equal(seen.statuses.at(-1).status, 'reconnecting');
  await tick();
  const again = FakeSocket.all.at(-1);
  assert.notEqual(again, sock);
  assert.equal(again.url.searchParams.get('last_seq'), '1');
  assert.equal(again.url.searchParams.get('epoch'), 'e1');
  assert.equal(again.url.searchParams.get('session_id'), 's1');
  assert.deepEqual(again.protocols, ['companion.v1', 'bearer.token']); // again, not in the URL
  assert.equal(again.url.searchParams.get('token'), null);
  again.serve(welcome(1, { created: false, resumed: true, connection_id: 'c2' }));
  assert.equal(hub.phase, 'replaying');
  assert.ok(!again.types().includes('get_session_state')); // the state is known
  again.shut(1009);
  assert.deepEqual(
    [seen.statuses.at(-1).status, seen.statuses.at(-1).reason],
    ['stopped', 'message_too_big'],
  );
  assert.equal(hub.phase, 'closed');
  hub.close();
});

test('the token rides in the subprotocols, never the URL, when it is a valid one', async () => {
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLV8';
  const { hub, sock } = await open({ getToken: async () => jwt, url: 'ws://hub.test/ws?token=old' });
  assert.deepEqual(sock.protocols, ['companion.v1', `bearer.${jwt}`]);
  assert.equal(sock.url.searchParams.get('token'), null);
  assert.equal(sock.url.href.includes(jwt), false);
  hub.close();
  const joinCode = 'Zm9vYmFyLWJhei1xdXV4XzE';
  assert.deepEqual(handshake(joinCode), ['companion.v1', `bearer.${joinCode}`]);
  // A token with characters a subprotocol may not hold is refused, never put in the URL.
  assert.equal(handshake('a/b+c=='), null);
  FakeSocket.all = [];
  const statuses = [];
  const bad = connect({
    getToken: () => 'a/b+c==', url: 'ws://hub.test/ws', WebSocket: FakeSocket, onStatus: (s) => statuses.push(s),
  });
  await tick();
  assert.equal(FakeSocket.all.length, 0);
  assert.deepEqual([statuses.at(-1).status, statuses.at(-1).reason], ['stopped', 'bad_token']);
  bad.close();
});

test('a device id rides in the URL; presence keeps each member\'s role and device', async () => {
  const { hub, sock } = await open({ deviceId: 'tab-1' });
  assert.equal(sock.url.searchParams.get('device_id'), 'tab-1');
  sock.serve({
    type: 'presence', session_id: 's1', timestamp: T, clients: [
      { connection_id: 'c1', user_id: 'alice', client: 'ui', role: 'owner', device_id: 'tab-1' },
      { connection_id: 'c9', user_id: 'alice', client: 'agent', role: 'agent', device_id: 'd9' },
    ],
  });
  assert.deepEqual(hub.presence.map((m) => [m.connection_id, m.role, m.device_id]), [
    ['c1', 'owner', 'tab-1'], ['c9', 'agent', 'd9'],
  ]);
  hub.close();
});
