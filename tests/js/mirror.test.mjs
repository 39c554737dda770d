// The page's session mirror (@companion-ws/client's, as vendored under
// companion_ws/static/vendor/companion-client/) against the shared
// fixtures in tests/fixtures/mirror, the same files tests/unit/test_mirror.py runs
// against the Python mirror; and the fixtures' frames against protocol.json.
//
//   node --test tests/js/

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe as suite, test } from 'node:test';

import { Phase, SessionMirror, describe } from '../../companion_ws/static/vendor/companion-client/index.js';
import {
  BROADCAST_TYPES, DIRECT_TYPES, RECONNECT, shouldReconnect,
} from '../../companion_ws/static/vendor/companion-client/index.js';
import { CLIENT_FRAMES, problems, protocol } from './schema.mjs';

const dir = new URL('../fixtures/mirror/', import.meta.url);
const fixtures = readdirSync(dir)
  .filter((name) => name.endsWith('.json'))
  .sort()
  .map((name) => ({ name, ...JSON.parse(readFileSync(new URL(name, dir), 'utf8')) }));

// What the driver would send for an action (checked against the client schema).
function sent(action) {
  if (action.action === 'request_replay') {
    return { type: 'resume', last_seq: action.lastSeq, epoch: action.epoch };
  }
  if (action.action === 'fetch_state') return { type: 'get_session_state' };
  return null;
}

function run(fixture) {
  const mirror = new SessionMirror(fixture.session_id ?? null);
  fixture.steps.forEach((step, i) => {
    const where = `${fixture.name} step ${i}: ${JSON.stringify(step).slice(0, 160)}`;
    if ('connect' in step) {
      const position = mirror.connecting();
      const got = position && { last_seq: position.lastSeq, epoch: position.epoch };
      assert.deepEqual(got, step.connect, where);
    } else if ('drop' in step) {
      mirror.dropped();
    } else if ('fetch_failed' in step) {
      mirror.fetchFailed();
    } else {
      const actions = mirror.receive(structuredClone(step.frame));
      assert.deepEqual(actions.map(describe), step.actions, where);
      for (const action of actions) {
        const frame = sent(action);
        if (frame) assert.deepEqual(problems(frame, 'client'), [], where);
      }
    }
  });
  return mirror;
}

test('there is a fixture for every rule', () => {
  assert.ok(fixtures.length >= 8, `${fixtures.length} fixtures`);
  const names = new Set(fixtures.map((f) => f.name));
  for (const name of ['duplicates', 'gap_then_replay', 'resync', 'state_patches']) {
    assert.ok(names.has(`${name}.json`), name);
  }
});

suite('the mirror follows every fixture', () => {
  for (const fixture of fixtures) {
    test(fixture.name, () => {
      const mirror = run(fixture);
      const { expect } = fixture;
      assert.equal(mirror.phase, expect.phase);
      assert.deepEqual(
        {
          session_id: mirror.sessionId,
          connection_id: mirror.connectionId,
          seq: mirror.seq,
          epoch: mirror.epoch,
          state: mirror.state,
          version: mirror.version,
          synced: mirror.synced,
          reconnects: mirror.reconnects,
          feed: mirror.feed.map((f) => [f.type, f.seq]),
        },
        Object.fromEntries(Object.entries(expect).filter(([key]) => key !== 'phase')),
      );
    });
  }
});

suite('the fixtures speak the wire of protocol.json', () => {
  for (const fixture of fixtures) {
    test(fixture.name, () => {
      for (const [i, step] of fixture.steps.entries()) {
        if (!('frame' in step) || step.off_schema) continue;
        assert.deepEqual(problems(step.frame, 'server'), [], `${fixture.name} step ${i}`);
      }
    });
  }

  test('the checker refuses what it should', () => {
    assert.deepEqual(problems({ type: 'no_such_frame' }), ['unknown server frame type "no_such_frame"']);
    assert.deepEqual(problems({ type: 'resumed', session_id: 's', from_seq: 1, replayed: 0 }), [
      'resumed: missing required "to_seq"',
    ]);
    assert.deepEqual(problems({ type: 'resume' }, 'client'), ['resume: missing required "last_seq"']);
    assert.ok(CLIENT_FRAMES.has('get_session_state'));
  });
});

suite('the generated protocol module says what protocol.json says', () => {
  test('frame families', () => {
    assert.deepEqual([...BROADCAST_TYPES].sort(), protocol.broadcast_types);
    assert.deepEqual([...DIRECT_TYPES].sort(), protocol.direct_types);
  });

  test('shouldReconnect matches the exported table and the ranges', () => {
    for (const [code, reconnect] of Object.entries(protocol.close_codes.reconnect)) {
      assert.equal(shouldReconnect(Number(code)), reconnect, code);
      assert.equal(RECONNECT[code], reconnect, code);
    }
    assert.equal(shouldReconnect(undefined), true);
    assert.equal(shouldReconnect(2999), true);
    assert.equal(shouldReconnect(4001), true);
    assert.equal(shouldReconnect(4404), false);
    assert.equal(shouldReconnect(3000), false);
  });

  test('the phases are the Python ones', () => {
    assert.deepEqual(Object.values(Phase), ['connecting', 'joining', 'replaying', 'live', 'closed']);
  });
});
