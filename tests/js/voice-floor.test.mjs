// The voice floor as a page sees it (companion_ws/static/voice-floor.js, docs/protocol.md
// section 17): who holds it, what a voice_floor changes for this screen, which controls
// are for it.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { VoiceFloor } from '../../companion_ws/static/voice-floor.js';

const floor = (seq, device, previous = null) => ({
  type: 'voice_floor', seq, device_id: device, connection_id: device ? `c-${device}` : null,
  previous_device_id: previous,
});

test('the welcome says who holds it and whether this screen can talk', () => {
  const f = new VoiceFloor();
  f.joined({ device_id: 'phone', role: 'companion', voice_floor: { device_id: 'laptop', connection_id: 'c1' } });
  assert.equal(f.canTalk, true);
  assert.equal(f.elsewhere, true);
  assert.equal(f.mine, false);
  const tv = new VoiceFloor();
  tv.joined({ device_id: 'tv', role: 'observer', voice_floor: null });
  assert.equal(tv.canTalk, false);
  assert.equal(tv.elsewhere, false);
});

test('a take elsewhere is lost here, with the move marked; a replay counts once', () => {
  const f = new VoiceFloor();
  f.joined({ device_id: 'laptop', role: 'owner', voice_floor: null });
  assert.deepEqual(f.changed(floor(3, 'laptop')), { lost: false, gained: true, moved: null });
  const moved = f.changed(floor(7, 'phone', 'laptop'));
  assert.deepEqual(moved, { lost: true, gained: false, moved: { from: 'laptop', to: 'phone', here: false } });
  assert.deepEqual(f.changed(floor(7, 'phone', 'laptop')), { lost: false, gained: false, moved: null });
  assert.deepEqual(f.changed(floor(9, null, 'phone')), { lost: false, gained: false, moved: null });
  assert.equal(f.holder, null);
});

test('a control is for the screen that holds the conversation', () => {
  const f = new VoiceFloor();
  f.joined({ device_id: 'phone', role: 'companion', voice_floor: null });
  assert.equal(f.controlFor({ type: 'agent_control', action: 'interrupt', device_id: 'phone' }), 'interrupt');
  assert.equal(f.controlFor({ type: 'agent_control', action: 'interrupt', device_id: 'laptop' }), null);
  assert.equal(f.controlFor({ type: 'agent_control', action: 'dance', device_id: 'phone' }), null);
});
