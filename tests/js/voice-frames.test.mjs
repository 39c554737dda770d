// The page's voice mapping (companion_ws/static/voice-frames.js: ElevenLabs'
// conversation events -> section 13 frames) against the shared fixtures in
// tests/fixtures/voice, the same files tests/unit/test_voice_frames.py runs against
// companion_ws/integrations/voice_frames.py; and the frames against protocol.json.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe as suite, test } from 'node:test';

import { ConversationFrames, randomId } from '../../companion_ws/static/voice-frames.js';
import { problems } from './schema.mjs';

const dir = new URL('../fixtures/voice/', import.meta.url);
const fixtures = readdirSync(dir)
  .filter((name) => name.endsWith('.json'))
  .sort()
  .map((name) => ({ name, ...JSON.parse(readFileSync(new URL(name, dir), 'utf8')) }));

// The fixtures name the Python methods; the module has them in JS style.
const METHODS = Object.freeze({
  ready: 'ready',
  interrupted: 'interrupted',
  tool_call: 'toolCall',
  ended: 'ended',
  mode: 'mode',
  user_partial: 'userPartial',
  user_said: 'userSaid',
  agent_part: 'agentPart',
  agent_said: 'agentSaid',
  corrected: 'corrected',
});

// Deterministic ids, as the Python test's: user1, agent2, …
function counted(options = {}) {
  let n = 0;
  return new ConversationFrames({ ...options, newId: (prefix) => `${prefix}${(n += 1)}` });
}

test('there is a voice fixture for every call', () => {
  assert.ok(fixtures.length >= 6, `${fixtures.length} fixtures`);
  const called = new Set(fixtures.flatMap((f) => f.steps.map((s) => s.call)));
  assert.deepEqual([...called].sort(), Object.keys(METHODS).sort());
});

suite('the voice mapping follows every fixture', () => {
  for (const fixture of fixtures) {
    test(fixture.name, () => {
      const frames = counted({ transcripts: fixture.transcripts ?? true });
      fixture.steps.forEach((step, i) => {
        const method = METHODS[step.call];
        assert.ok(method, `unknown call ${step.call}`);
        const got = frames[method](...(step.args ?? []));
        assert.deepEqual(got, step.frames, `${fixture.name} step ${i}: ${step.event}`);
      });
      assert.equal(frames.state, fixture.state);
    });
  }
});

suite('the voice fixtures\' frames are frames a client sends', () => {
  for (const fixture of fixtures) {
    test(fixture.name, () => {
      for (const step of fixture.steps) {
        for (const frame of step.frames) assert.deepEqual(problems(frame, 'client'), [], JSON.stringify(frame));
      }
    });
  }
});

test('message ids are new each time, as the Python bridge makes them', () => {
  const a = randomId('user');
  assert.match(a, /^user_[0-9a-f]{12}$/);
  assert.notEqual(randomId('user'), a);
  const [said] = new ConversationFrames().userSaid('hi');
  assert.match(said.message_id, /^user_[0-9a-f]{12}$/);
});
