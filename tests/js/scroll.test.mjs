// static/scroll.js: only the user's scrolling is saved to the session's shared
// ui.scroll_position; a scroll the layout makes by itself (the browser's scroll
// anchoring) is not.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';

import { createScrollSync } from '../../companion_ws/static/scroll.js';

let clock;
let timers;
let listeners;
const realPerformance = globalThis.performance;
const { setTimeout: realSetTimeout, clearTimeout: realClearTimeout } = globalThis;

function fire(type) {
  for (const handler of listeners.get(type) ?? []) handler();
}

// Runs the timers that are due by `ms` from now, in order.
function advance(ms) {
  clock += ms;
  for (;;) {
    const due = [...timers.entries()].filter(([, t]) => t.at <= clock).sort((a, b) => a[1].at - b[1].at);
    if (due.length === 0) return;
    const [id, t] = due[0];
    timers.delete(id);
    t.fn();
  }
}

beforeEach(() => {
  clock = 10_000;
  timers = new Map();
  listeners = new Map();
  let nextId = 1;
  Object.defineProperty(globalThis, 'performance', { value: { now: () => clock }, configurable: true });
  globalThis.setTimeout = (fn, ms) => { const id = nextId++; timers.set(id, { fn, at: clock + ms }); return id; };
  globalThis.clearTimeout = (id) => { timers.delete(id); };
  globalThis.sessionStorage = { getItem: () => null, setItem: () => {} };
  globalThis.window = {
    scrollY: 0,
    addEventListener: (type, handler) => {
      if (!listeners.has(type)) listeners.set(type, []);
      listeners.get(type).push(handler);
    },
  };
});

afterEach(() => {
  Object.defineProperty(globalThis, 'performance', { value: realPerformance, configurable: true });
  globalThis.setTimeout = realSetTimeout;
  globalThis.clearTimeout = realClearTimeout;
  delete globalThis.window;
  delete globalThis.sessionStorage;
});

function sync() {
  const saved = [];
  createScrollSync({ save: (y) => saved.push(y), stored: () => 444 });
  return saved;
}

test("a scroll that follows no input (the layout moved the page) is not saved", () => {
  const saved = sync();
  window.scrollY = 21; // scroll anchoring, as another screen joins
  fire('scroll');
  advance(2000);
  assert.deepEqual(saved, []);
});

test("the user's scroll is saved once it stops", () => {
  const saved = sync();
  fire('wheel');
  window.scrollY = 900;
  fire('scroll');
  advance(200);
  window.scrollY = 1200;
  fire('scroll');
  assert.deepEqual(saved, []); // not while scrolling
  advance(600);
  assert.deepEqual(saved, [1200]);
});

test("a fling's momentum after the input window still counts; a later layout move does not", () => {
  const saved = sync();
  fire('touchmove');
  window.scrollY = 600;
  fire('scroll');
  for (let i = 1; i <= 8; i += 1) { // the page keeps moving, 300 ms apart, past 1 s
    advance(300);
    window.scrollY = 600 + i * 50;
    fire('scroll');
  }
  advance(600);
  assert.deepEqual(saved, [1000]);
  advance(5000);
  window.scrollY = 30; // anchoring, long after the user let go
  fire('scroll');
  advance(2000);
  assert.deepEqual(saved, [1000]);
});
