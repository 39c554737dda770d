// A Node program that uses @companion-ws/client as an adopter would: installed from the
// packed tarball (tests/integration/test_npm_packages.py), against a live hub.
//
//   HUB=ws://127.0.0.1:PORT SECRET=... node --experimental-websocket consumer.mjs
//
// It connects, reads the state, updates it and loses a race on expectedVersion, calls a
// tool, has its socket cut and resumes by seq without a gap, and answers the hub's
// refresh_required with a fresh token. It prints one JSON line of what it saw and exits
// non-zero on the first thing that is not so.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';

import { ClientError, CompanionClient } from '@companion-ws/client';

const { HUB, SECRET } = process.env;
const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
let minted = 0;
function mint(sub) {
  minted += 1;
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, iat: now, exp: now + 3600, jti: `j${minted}` })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

// The platform's WebSocket, injected: the program keeps its sockets to cut one.
const sockets = [];
class Tracked extends WebSocket {
  constructor(...args) {
    super(...args);
    sockets.push(this);
  }
}

const seen = {};
const a = new CompanionClient(HUB, { token: () => mint('alice'), client: 'backend', WebSocket: Tracked });
// What happened, on stderr (shown when the test fails).
a.on('status', (s) => console.error('a:', JSON.stringify(s)));
await a.start();
const refreshed = a.waitFor((f) => f.type === 'refreshed', { timeout: 20000 });
assert.ok(a.sessionId);
assert.equal(a.role, 'owner');
assert.deepEqual(a.state, {});
const b = new CompanionClient(HUB, {
  token: async () => mint('alice'), sessionId: a.sessionId, client: 'ui', WebSocket: Tracked,
});
b.on('status', (s) => console.error('b:', JSON.stringify(s)));
await b.start();
assert.equal(b.sessionId, a.sessionId);

// state: an update, then a stale one that loses
const echo = await a.updateState({ step: 'one' }, { expectedVersion: a.version });
assert.equal(echo.version, 1);
await b.waitFor(() => b.version === 1, { timeout: 5000 }).catch(() => {});
assert.deepEqual(b.state, { step: 'one' });
await a.updateState({ step: 'two' });
try {
  await b.updateState({ step: 'stale' }, { expectedVersion: 1 });
  assert.fail('a stale expectedVersion was applied');
} catch (err) {
  assert.ok(err instanceof ClientError, String(err));
  seen.conflict = err.code;
}
assert.equal(seen.conflict, 'version_conflict');
assert.deepEqual(a.state, { step: 'two' });

// a tool
const result = await a.callTool('get_shipping_quotes', `tc-${a.sessionId}`, { from_zip: '90210', to_zip: '10001', weight: 5 });
assert.equal(result.type, 'client_tool_result');
assert.equal(result.is_error, false, JSON.stringify(result));
seen.tool = result.tool_call_id;

// a forced disconnect: b speaks while a is away; a resumes by seq, without a gap
const before = a.seq;
const back = new Promise((resolve) => {
  const off = a.on('status', (s) => { if (s.status === 'connected') { off(); resolve(s); } });
});
sockets.filter((s) => s.readyState === 1)[0].close(4000, 'cut by the test');
const said = [];
for (const text of ['while', 'you', 'were', 'away']) said.push((await b.contextualUpdate(text)).seq);
const welcome = await back;
assert.equal(welcome.resumed, true);
await a.waitFor(() => a.seq >= said.at(-1), { timeout: 10000 }).catch(() => {});
const seqs = a.feed.map((f) => f.seq);
for (let s = 1; s <= a.seq; s += 1) assert.ok(seqs.includes(s), `seq ${s} missing from ${seqs}`);
assert.deepEqual(
  a.feed.filter((f) => f.type === 'contextual_update' && f.seq > before).map((f) => f.text),
  ['while', 'you', 'were', 'away'],
);
seen.resume = { before, after: a.seq, reconnects: a.reconnects };

// refresh_required (the hub runs with a long COMPANION_REFRESH_LEAD): a fresh token
await refreshed;
seen.minted = minted;

// @companion-ws/react from its tarball: the hooks read the live client (server rendering
// reads the same snapshots as the browser's first render).
const { createElement: h } = await import('react');
const { renderToString } = await import('react-dom/server');
const { CompanionProvider, useCompanionSession, usePresence, useSessionState } = await import('@companion-ws/react');
function Probe() {
  const { status, sessionId } = useCompanionSession();
  const step = useSessionState((s) => s.step);
  return h('p', null, `${status} ${sessionId === a.sessionId} ${step} ${usePresence().length}`);
}
seen.react = renderToString(h(CompanionProvider, { client: a, autoStart: false }, h(Probe)));
await a.close();
await b.close();
console.log(JSON.stringify(seen));
