// The page's narration.js (what the page that talks tells the agent) against the
// shared fixtures in tests/fixtures/narration, which tests/unit/test_narration_fixtures.py
// runs against ui_state and the bridge's narrator.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { mergePatch } from '../../companion_ws/static/vendor/companion-client/index.js';
import {
  createSessionContext, describeChange, describeUpdate,
} from '../../companion_ws/static/narration.js';

const cases = JSON.parse(readFileSync(new URL('../fixtures/narration/cases.json', import.meta.url), 'utf8'));

for (const c of cases.summaries) {
  test(`summary: ${c.name}`, () => {
    assert.equal(createSessionContext(c.state, c.messages ?? [], c.last ?? 4), c.expected);
  });
}
for (const c of cases.changes) {
  test(`change: ${c.name}`, () => {
    assert.equal(describeChange(c.patch, mergePatch(c.before, c.patch)), c.expected);
  });
}
for (const c of cases.updates) {
  test(`update: ${c.name}`, () => assert.equal(describeUpdate(c.frame), c.expected));
}
