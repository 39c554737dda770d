// app.js: the companion page. Bootstraps the token, connects with client.js,
// and keeps the screen in step with the session.

import { bootstrapAuth, rememberWelcome, saveAuth, setAddress } from './auth.js';
import { connect } from './client.js';
import { $, h } from './dom.js';
import { currentStep, sameQuote } from './format.js';
import { createScrollSync } from './scroll.js';
import { createDevicePanel } from './share.js';
import { createTalk } from './talk.js';
import {
  feedItem, feedNotice, renderPresence, renderStatus, renderStepper, renderTask,
  renderTerminal, senderOf,
} from './view.js';

const FEED_LIMIT = 200;
const HISTORY_BACKFILL = 50;
const PENDING_TIMEOUT = 10000;

const el = {
  status: $('#status'),
  statusText: $('#status-text'),
  session: $('#session'),
  sessionId: $('#session-id'),
  copySession: $('#copy-session'),
  notice: $('#notice'),
  layout: $('#layout'),
  stepper: $('#stepper'),
  taskBody: $('#task-body'),
  feed: $('#feed'),
  feedEmpty: $('#feed-empty'),
  feedCount: $('#feed-count'),
  presence: $('#presence'),
  presenceCount: $('#presence-count'),
  terminal: {
    root: $('#terminal'),
    iconEl: $('#terminal-icon'),
    title: $('#terminal-title'),
    text: $('#terminal-text'),
    detail: $('#terminal-detail'),
    actions: $('#terminal-actions'),
  },
  device: {
    card: $('#device-card'),
    intro: $('#device-intro'),
    body: $('#device-body'),
    frame: $('#qr-frame'),
    qr: $('#qr'),
    placeholder: $('#qr-placeholder'),
    expired: $('#qr-expired'),
    link: $('#join-link'),
    copy: $('#copy-join'),
    expiry: $('#join-expiry'),
    error: $('#device-error'),
    newCode: $('#new-code'),
  },
};

let auth = null;
let hub = null;
let model = freshModel();

function freshModel() {
  return {
    state: null,
    rendered: null, // the parts of the state the task card was last drawn from
    terminal: null,
    pending: null, // {quote, requestId, timer}
    restoreScroll: true,
    scrollRestored: false, // ui.scroll_position applied once since this page opened
    shownStep: null, // the ui.current_step the screen showed last
    members: new Map(), // every connection seen, for naming senders
    feedSeqs: new Set(),
    feedCount: 0,
    historyFor: null,
    welcomeSeq: null,
  };
}

// ---- bootstrap ----------------------------------------------------------------

function main() {
  if ('scrollRestoration' in history) history.scrollRestoration = 'manual';
  el.copySession.addEventListener('click', () => copy(el.sessionId.textContent, 'Session id copied'));
  el.taskBody.addEventListener('keydown', () => { model.lastKeyAt = performance.now(); }, true);

  auth = bootstrapAuth();
  if (!auth) {
    renderStatus(el.status, el.statusText, 'no_token');
    el.layout.hidden = true;
    showTerminal({ reason: 'no_token' });
    return;
  }
  start();
}

const scroll = createScrollSync({
  stored: () => model.state?.ui?.scroll_position,
  save: (y) => {
    if (hub?.status === 'connected' && model.state) hub.updateState({ ui: { scroll_position: y } });
  },
});

const device = createDevicePanel(el.device, {
  getToken: () => auth?.token,
  getSessionId: () => hub?.sessionId,
  isOwner: () => auth?.kind === 'owner',
  onCopy: copy,
  onRefused: () => notify('Only the session’s owner can add devices.', 5000),
});

// "Talk to the agent" (talk.js): its own card, fed every frame through observe().
const talk = createTalk($('#talk'), {
  getToken: async () => auth?.token,
  isOwner: () => auth?.kind === 'owner',
});

function start() {
  model = freshModel();
  device.reset();
  el.layout.hidden = false;
  el.feed.replaceChildren();
  updateFeedChrome();
  showLoading();
  hub = connect(talk.observe({
    getToken: async () => auth?.token, // after a QR join: the reconnect token
    sessionId: auth.kind === 'join' ? null : auth.sessionId,
    onEvent,
    onStatus,
    onState,
  }));
  talk.attach(hub);
  window.companion = hub; // for debugging and for tests: window.companion.state
}

function showLoading() {
  el.taskBody.replaceChildren(h('div', { class: 'loading' },
    h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' Loading the session…'));
  renderStepper(el.stepper, null);
}

// ---- connection status ------------------------------------------------------

function onStatus(s) {
  renderStatus(el.status, el.statusText, s.status, s);
  device.setLive(s.status === 'connected');
  document.body.dataset.status = s.status;
  if (s.status === 'connected') {
    if (s.created && s.requestedSessionId) {
      const why = { expired: 'had expired', ended: 'has ended' }[s.reason] || 'was not found';
      notify(`The session in your link ${why}, so a new one was started.`, 8000);
    }
    return;
  }
  if (s.status === 'ended' || s.status === 'stopped') {
    device.hide();
    const reason = s.status === 'ended' ? 'ended' : s.reason;
    if (!model.state) el.layout.hidden = true;
    showTerminal({ reason, message: s.error?.message, code: s.code });
    redrawTask();
  }
}

function showTerminal(info) {
  model.terminal = info;
  document.body.classList.toggle('is-terminal', Boolean(info));
  if (!info) {
    renderTerminal(el.terminal, null);
    return;
  }
  const actions = [];
  if (info.reason === 'ended' && auth?.kind === 'owner') {
    actions.push({ label: 'Start a new session', primary: true, onClick: startNewSession });
  }
  if (info.reason === 'normal' || info.reason === 'message_too_big') {
    actions.push({ label: 'Reconnect', primary: true, onClick: reconnect });
  }
  renderTerminal(el.terminal, { ...info, device: auth?.kind !== 'owner', actions });
  el.terminal.root.classList.toggle('is-standalone', el.layout.hidden);
  el.terminal.root.focus?.();
}

function reconnect() {
  showTerminal(null);
  device.reset();
  el.layout.hidden = false;
  redrawTask();
  hub.reconnect();
}

function startNewSession() {
  hub.close();
  auth = { ...auth, sessionId: null };
  saveAuth(auth);
  setAddress(null);
  showTerminal(null);
  el.session.hidden = true;
  start();
}

// ---- frames --------------------------------------------------------------------

function onEvent(frame) {
  switch (frame.type) {
    case 'session_joined':
      welcomed(frame);
      break;
    case 'contextual_update':
      addFeed([frame]);
      break;
    case 'client_joined':
      model.members.set(frame.connection_id, frame);
      drawPresence();
      if (frame.connection_id !== hub.connectionId && frame.client === 'ui' && auth.kind === 'owner') {
        device.refresh(); // the last code was probably spent by this screen
      }
      break;
    case 'client_left':
    case 'presence':
      for (const m of hub.presence) model.members.set(m.connection_id, m);
      drawPresence();
      break;
    case 'history':
      backfill(frame.events || []);
      break;
    case 'resync_required':
      prependFeedNode(feedNotice('The connection was interrupted — the screen was brought up to date.'));
      break;
    case 'error':
      failed(frame);
      break;
    default:
      break;
  }
}

function welcomed(frame) {
  const firstForSession = model.historyFor !== frame.session_id;
  auth = rememberWelcome(auth, frame);
  el.session.hidden = false;
  el.sessionId.textContent = frame.session_id;
  el.sessionId.title = frame.session_id;
  model.restoreScroll = true;
  for (const m of hub.presence) model.members.set(m.connection_id, m);
  drawPresence();
  if (firstForSession) {
    model.historyFor = frame.session_id;
    model.welcomeSeq = typeof frame.seq === 'number' ? frame.seq : null;
    if (model.welcomeSeq) {
      hub.send({
        type: 'get_history',
        after_seq: Math.max(0, model.welcomeSeq - HISTORY_BACKFILL),
        limit: HISTORY_BACKFILL,
      });
    }
  }
  if (firstForSession || device.idle()) device.refresh();
}

function failed(frame) {
  const p = model.pending;
  if (p && frame.requestId && frame.requestId === p.requestId) {
    clearPending();
    redrawTask();
    notify(`Your choice was not saved: ${frame.message || frame.code}.`, 6000);
  }
}

// ---- state ------------------------------------------------------------------------

function onState(state, info) {
  model.state = state;
  const p = model.pending;
  if (p && (info.patch ? 'selected_option' in info.patch : sameQuote(state.selected_option, p.quote))) {
    clearPending();
  }
  redrawTask();
  const step = currentStep(state);
  const section = () => el.taskBody.querySelector(`[data-step="${step}"]`);
  if (info.reason === 'resync' || (info.reason === 'snapshot' && model.restoreScroll)) {
    model.restoreScroll = false;
    if (!model.scrollRestored) {
      // A page just opened (or reloaded): go back to where the session was.
      model.scrollRestored = true;
      scroll.restore(state.ui?.scroll_position, section());
    } else if (step !== model.shownStep) {
      // Back after a drop, and the task moved on meanwhile: show where it is now.
      // Otherwise the user's own position stays: ui.scroll_position is shared by
      // every screen, and jumping to another screen's spot would be disorienting.
      scroll.restore(undefined, section());
    }
  }
  model.shownStep = step;
}

function taskOptions() {
  return {
    pendingQuote: model.pending?.quote || null,
    disabled: model.terminal !== null,
    onChoose: choose,
    onCopy: copy,
  };
}

// Redraw the task card only when something it shows has changed (merge patches
// keep untouched parts of the document identical, so === is enough).
function redrawTask(force = false) {
  const s = model.state;
  if (!s) return;
  const parts = [s.shipping_details, s.quotes, s.selected_option, s.label, s.ui?.current_step,
    model.pending, model.terminal];
  if (!force && model.rendered && parts.every((v, i) => v === model.rendered[i])) return;
  model.rendered = parts;
  renderTask(el.taskBody, s, taskOptions());
  renderStepper(el.stepper, s);
}

function choose(quote) {
  if (model.terminal) return;
  const keyboard = performance.now() - (model.lastKeyAt || 0) < 300;
  clearPending();
  model.pending = { quote, requestId: null, timer: null, sendTimer: null };
  redrawTask();
  const sendNow = () => {
    const p = model.pending;
    if (!p || p.quote !== quote) return;
    p.requestId = hub.updateState({ selected_option: quote, ui: { current_step: 'selected' } });
    p.timer = setTimeout(function expire() {
      if (model.pending !== p) return;
      if (hub.status !== 'connected') {
        p.timer = setTimeout(expire, PENDING_TIMEOUT);
        return;
      }
      clearPending();
      redrawTask();
      notify('The hub did not confirm your choice. Please pick again.', 6000);
    }, PENDING_TIMEOUT);
  };
  // Arrow keys move through a radio group one option at a time; only send the
  // option the user settles on.
  if (keyboard) model.pending.sendTimer = setTimeout(sendNow, 600);
  else sendNow();
}

function clearPending() {
  const p = model.pending;
  if (!p) return;
  clearTimeout(p.timer);
  clearTimeout(p.sendTimer);
  model.pending = null;
}

// ---- feed ---------------------------------------------------------------------

function context() {
  return { myConnectionId: hub.connectionId, members: model.members };
}

function addFeed(frames) {
  for (const frame of frames) {
    if (typeof frame.seq === 'number') {
      if (model.feedSeqs.has(frame.seq)) continue;
      model.feedSeqs.add(frame.seq);
    }
    prependFeedNode(feedItem(frame, senderOf(frame, context())));
  }
}

function prependFeedNode(node) {
  el.feed.prepend(node);
  model.feedCount += 1;
  while (el.feed.children.length > FEED_LIMIT) el.feed.lastElementChild.remove();
  updateFeedChrome();
}

// Older events from get_history go below everything already shown.
function backfill(events) {
  const sorted = [...events].filter((e) => e && typeof e === 'object')
    .sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  for (const e of sorted) {
    if (e.type === 'client_joined' && e.connection_id && !model.members.has(e.connection_id)) {
      model.members.set(e.connection_id, e);
    }
  }
  const older = sorted.filter((e) => e.type === 'contextual_update' && typeof e.seq === 'number'
    && !model.feedSeqs.has(e.seq));
  for (const e of older.reverse()) {
    model.feedSeqs.add(e.seq);
    const node = feedItem(e, senderOf(e, context()));
    const after = [...el.feed.children].find((li) => Number(li.dataset.seq) < e.seq);
    el.feed.insertBefore(node, after || null);
  }
  while (el.feed.children.length > FEED_LIMIT) el.feed.lastElementChild.remove();
  updateFeedChrome();
}

function updateFeedChrome() {
  const n = el.feed.querySelectorAll('[data-testid="feed-item"]').length;
  el.feedEmpty.hidden = n > 0;
  el.feedCount.textContent = n ? String(n) : '';
}

// ---- presence -------------------------------------------------------------------

function drawPresence() {
  renderPresence(el.presence, el.presenceCount, hub.presence, hub.connectionId);
}

// ---- small things -----------------------------------------------------------------

let noticeTimer = null;
function notify(text, ms = 3000) {
  el.notice.textContent = text;
  el.notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.notice.hidden = true; }, ms);
}

async function copy(text, done = 'Copied') {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Plain-http pages on another host have no clipboard API.
    const area = h('textarea', { class: 'offscreen', readonly: true }, text);
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    if (!ok) {
      notify('Copy is not available here — select the text instead.');
      return;
    }
  }
  notify(done);
}

main();
