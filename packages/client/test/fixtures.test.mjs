// The package's built output (dist/) against the shared fixtures in tests/fixtures/:
// the same files tests/unit/test_mirror.py runs against the Python mirror and
// ui_state/conversation.py's tests against the Python fold.
//
//   npm test            (tsc, then node --test test/)

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe as suite, test } from 'node:test';

import {
  NO_FLOOR, SessionMirror, addFrames, conversationFrom, describe, emptyConversation, floorAfter,
} from '../dist/index.js';

const FIXTURES = new URL('../../../tests/fixtures/', import.meta.url);

function load(kind) {
  const dir = new URL(`${kind}/`, FIXTURES);
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => ({ name, ...JSON.parse(readFileSync(new URL(name, dir), 'utf8')) }));
}

suite('the mirror follows every shared fixture', () => {
  const fixtures = load('mirror');
  test('they are there', () => assert.ok(fixtures.length >= 8));
  for (const fixture of fixtures) {
    test(fixture.name, () => {
      const mirror = new SessionMirror(fixture.session_id ?? null);
      fixture.steps.forEach((step, i) => {
        const where = `${fixture.name} step ${i}`;
        if ('connect' in step) {
          const position = mirror.connecting();
          assert.deepEqual(position && { last_seq: position.lastSeq, epoch: position.epoch }, step.connect, where);
        } else if ('drop' in step) {
          mirror.dropped();
        } else if ('fetch_failed' in step) {
          mirror.fetchFailed();
        } else {
          assert.deepEqual(mirror.receive(structuredClone(step.frame)).map(describe), step.actions, where);
        }
      });
      const { phase, ...expect } = fixture.expect;
      assert.equal(mirror.phase, phase);
      assert.deepEqual({
        session_id: mirror.sessionId,
        connection_id: mirror.connectionId,
        seq: mirror.seq,
        epoch: mirror.epoch,
        state: mirror.state,
        version: mirror.version,
        synced: mirror.synced,
        reconnects: mirror.reconnects,
        feed: mirror.feed.map((f) => [f.type, f.seq]),
      }, expect);
    });
  }
});

suite('the conversation follows every shared fixture', () => {
  const fixtures = load('conversation');
  const shared = (conv) => conv.messages.map(({
    message_id, role, text, final, seq, timestamp,
  }) => ({ message_id, role, text, final, seq, timestamp }));
  test('they are there', () => assert.ok(fixtures.length >= 5));
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
      let back = emptyConversation();
      for (const f of [...events].reverse()) back = addFrames(back, [f]);
      assert.deepEqual(shared(back), fixture.messages, 'in reverse');
      assert.deepEqual(back.voiceMoves, moves, 'the voice moves, in reverse');
    });
  }
});

suite('the voice floor follows every shared fixture (tests/unit/test_floor_fixtures.py)', () => {
  const fixtures = load('floor');
  test('they are there', () => assert.ok(fixtures.length >= 3));
  for (const fixture of fixtures) {
    test(fixture.name, () => {
      let floor = NO_FLOOR;
      let self = null;
      fixture.steps.forEach((step, i) => {
        if (step.frame.type === 'session_joined') self = step.frame.connection_id;
        floor = floorAfter(floor, structuredClone(step.frame), self);
        assert.deepEqual({ ...floor }, step.floor, `${fixture.name} step ${i}`);
      });
    });
  }
});
