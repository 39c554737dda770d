// app.js: the companion page. Bootstraps the token, connects with @companion-ws/client
// (packages/client, vendored under vendor/companion-client/),
// and keeps the screen in step with the session.
//
// Every broadcast this page learns of, live, replayed or from get_history, goes into
// one map by seq; the conversation (conversation.js) and the feed (activity.js) are
// folds of it, so a reload or a reconnect draws the same conversation again.

import { feedFrom, FEED_TYPES, memberKind, taskView } from './activity.js';
import { bootstrapAuth, rememberWelcome, saveAuth, setAddress } from './auth.js';
import {
  addFrames, agentStatus, CONVERSATION_TYPES, emptyConversation, isAgent,
} from './conversation.js';
import { createConversationView, renderAgentPill } from './conversation-view.js';
import { $, h, reconcile } from './dom.js';
import { currentStep, formatTime, sameQuote } from './format.js';
import { createScrollSync } from './scroll.js';
import { createSessionsPanel } from './sessions.js';
import { createDevicePanel } from './share.js';
import { createTalk } from './talk.js';
import { BROADCAST_TYPES, connect } from './vendor/companion-client/index.js';
import {
  feedItem, renderPresence, renderStatus, renderStepper, renderTask, renderTasks, renderTerminal,
} from './view.js';

const FEED_LIMIT = 200;
const EVENTS_LIMIT = 5000; // broadcasts kept for the conversation and the feed
const HISTORY_PAGE = 500;
const HISTORY_PAGES = 10;
const PENDING_TIMEOUT = 10000;
const OUTAGE_AFTER = 1200; // ms without a connection before the page says so

const el = {
  topbar: $('.topbar'),
  status: $('#status'),
  statusText: $('#status-text'),
  agentPill: $('#agent-pill'),
  agentText: $('#agent-text'),
  session: $('#session'),
  sessionId: $('#session-id'),
  copySession: $('#copy-session'),
  notice: $('#notice'),
  outage: $('#outage'),
  outageTitle: $('#outage-title'),
  outageText: $('#outage-text'),
  layout: $('#layout'),
  stepper: $('#stepper'),
  taskBody: $('#task-body'),
  restoredNote: $('#restored-note'),
  tasks: { title: $('#task-title'), chip: $('#task-status'), earlier: $('#earlier-tasks') },
  feed: $('#feed'),
  feedEmpty: $('#feed-empty'),
  feedCount: $('#feed-count'),
  presence: $('#presence'),
  presenceCount: $('#presence-count'),
  chat: {
    card: $('#chat-card'),
    peek: $('#chat-peek'),
    scroll: $('#chat-scroll'),
    chat: $('#chat'),
    empty: $('#chat-empty'),
    thinking: $('#chat-thinking'),
    latest: $('#chat-latest'),
    progress: $('#progress'),
    progressEmpty: $('#progress-empty'),
    progressCount: $('#progress-count'),
    progressMore: $('#progress-more'),
  },
  sessions: {
    card: $('#sessions-card'),
    list: $('#sessions'),
    refresh: $('#sessions-refresh'),
    error: $('#sessions-error'),
  },
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
    picks: new Map(), // requestId -> quote, for picks not yet answered
    pickedBy: null, // the connection whose pick is the selected_option now, when known
    restoreScroll: true,
    opened: false, // this page load's scroll positions were put back
    shownStep: null, // the ui.current_step the screen showed last
    events: new Map(), // seq -> every broadcast frame known
    conv: emptyConversation(),
    members: new Map(), // every connection seen, for naming senders
    joinedAt: new Map(), // connection_id -> when it joined
    feedCache: new Map(),
    historyFor: null,
    history: null, // {requestId, until, pages} while get_history pages are coming
    historyDone: false,
    everConnected: false,
    lastLiveAt: null, // the last frame from a live connection
    outageTimer: null,
    outage: false,
  };
}

// ---- bootstrap ----------------------------------------------------------------

function main() {
  if ('scrollRestoration' in history) history.scrollRestoration = 'manual';
  el.copySession.addEventListener('click', () => copy(el.sessionId.textContent, 'Session id copied'));
  el.taskBody.addEventListener('keydown', () => { model.lastKeyAt = performance.now(); }, true);
  trackHeader();

  auth = bootstrapAuth();
  if (!auth) {
    renderStatus(el.status, el.statusText, 'no_token');
    el.agentPill.hidden = true;
    el.layout.hidden = true;
    showTerminal({ reason: 'no_token' });
    return;
  }
  start();
}

// The sticky header's height, for scroll-padding (a scrolled-to title lands below it).
function trackHeader() {
  const set = () => document.documentElement.style.setProperty(
    '--header-h', `${Math.ceil(el.topbar.getBoundingClientRect().height)}px`);
  set();
  if ('ResizeObserver' in window) new ResizeObserver(set).observe(el.topbar);
}

const scroll = createScrollSync({
  stored: () => model.state?.ui?.scroll_position,
  sessionId: () => hub?.sessionId,
  header: el.topbar,
  save: (y) => {
    if (hub?.status === 'connected' && model.state) hub.updateState({ ui: { scroll_position: y } });
  },
});

const chatView = createConversationView(el.chat, { nameScreen });

const device = createDevicePanel(el.device, {
  getToken: () => auth?.token,
  getSessionId: () => hub?.sessionId,
  isOwner: () => auth?.kind === 'owner',
  onCopy: copy,
  onRefused: () => notify('Only the session’s owner can add devices.', 5000),
});

const sessions = createSessionsPanel(el.sessions, {
  getToken: () => auth?.token,
  getSessionId: () => hub?.sessionId,
  isOwner: () => auth?.kind === 'owner',
  onOpen: openSession,
  onFailed: (message) => notify(`Could not restore the session: ${message}`, 6000),
});

// "Talk to the agent" (talk.js): its own card, fed every frame through observe().
const talk = createTalk($('#talk'), {
  getToken: async () => auth?.token,
  isOwner: () => auth?.kind === 'owner',
});

function start() {
  clearTimeout(model.outageTimer);
  model = freshModel();
  device.reset();
  sessions.reset();
  showOutage(null);
  el.layout.hidden = false;
  el.agentPill.hidden = false;
  el.feed.replaceChildren();
  el.restoredNote.hidden = true;
  chatView.setSession(null);
  updateFeedChrome();
  showLoading();
  hub = connect(talk.observe({
    getToken: async () => auth?.token, // after a QR join: the reconnect token
    sessionId: auth.kind === 'join' ? null : auth.sessionId,
    deviceId: auth.kind === 'owner' ? tabDeviceId() : null,
    onEvent,
    onStatus,
    onState,
  }));
  talk.attach(hub);
  window.companion = hub; // for debugging and for tests: window.companion.state
  drawConversation();
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
  drawAgent();
  if (s.status === 'connected') {
    model.everConnected = true;
    model.lastLiveAt = Date.now();
    if (model.outage) notify('Connected again — the screen is up to date.', 4000);
    showOutage(null);
    if (s.created && s.requestedSessionId) {
      const why = { expired: 'had expired', ended: 'has ended' }[s.reason] || 'was not found';
      notify(`The session in your link ${why}, so a new one was started.`, 8000);
    }
    return;
  }
  if (s.status === 'reconnecting' || s.status === 'offline' || s.status === 'connecting') {
    if (model.everConnected) scheduleOutage(s.status);
    return;
  }
  showOutage(null);
  if (s.status === 'ended' || s.status === 'stopped') {
    device.hide();
    const reason = s.status === 'ended' ? 'ended' : s.reason;
    if (!model.state) el.layout.hidden = true;
    showTerminal({ reason, message: s.error?.message, code: s.code });
    redrawTask();
    drawConversation();
    if (s.status === 'ended' && auth?.kind === 'owner') sessions.load(); // now restorable
  }
}

// Say an outage in words, after a moment (a quick reconnect needs no alarm), and mark
// what is on screen as possibly out of date.
function scheduleOutage(status) {
  if (model.outage) {
    showOutage(status);
    return;
  }
  // Counted from the first loss, not from each retry: with full-jitter backoff the
  // attempts can come faster than OUTAGE_AFTER, and the page must still say so.
  if (model.outageTimer !== null) return;
  model.outageTimer = setTimeout(() => {
    model.outageTimer = null;
    if (hub.status !== 'connected' && !model.terminal) showOutage(hub.status);
  }, OUTAGE_AFTER);
}

function showOutage(status) {
  clearTimeout(model.outageTimer);
  model.outageTimer = null;
  model.outage = Boolean(status);
  el.outage.hidden = !status;
  document.body.classList.toggle('is-stale', Boolean(status));
  if (!status) return;
  const since = model.lastLiveAt
    ? `The screen shows the session as it was at ${formatTime(model.lastLiveAt)}`
    : 'What the screen shows may be out of date';
  el.outageTitle.textContent = status === 'offline'
    ? 'This device is offline.'
    : 'The connection to the session was lost. Trying to reconnect…';
  el.outageText.textContent = `${since}; anything you pick is sent once the connection is back, and applied if nobody changed the session meanwhile.`;
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
    const ended = hub?.sessionId;
    if (ended && model.state && Object.keys(model.state).length) {
      // Pick up where it stopped: a new session with this one's state (section 13).
      actions.push({ label: 'Restore this session', primary: true, onClick: () => sessions.restore(ended) });
    }
    actions.push({ label: 'Start a new session', primary: !actions.length, onClick: startNewSession });
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
  openSession(null, null);
}

// Leave this session for another one (null: a new one), e.g. one just restored.
function openSession(sessionId, restoredFrom) {
  hub.close();
  auth = { ...auth, sessionId };
  saveAuth(auth);
  setAddress(sessionId);
  showTerminal(null);
  el.session.hidden = true;
  start();
  if (restoredFrom) model.restoredFrom = restoredFrom;
}

// ---- frames --------------------------------------------------------------------

function onEvent(frame) {
  if (hub.status === 'connected') model.lastLiveAt = Date.now();
  if (BROADCAST_TYPES.has(frame.type) && Number.isInteger(frame.seq)) ingest([frame]);
  switch (frame.type) {
    case 'session_joined':
      welcomed(frame);
      break;
    case 'client_joined':
      if (frame.connection_id !== hub.connectionId && frame.client === 'ui' && auth.kind === 'owner') {
        device.refresh(); // the last code was probably spent by this screen
      }
      drawPresence();
      break;
    case 'client_left':
    case 'presence':
      for (const m of hub.presence) model.members.set(m.connection_id, { ...model.members.get(m.connection_id), ...m });
      drawPresence();
      break;
    case 'history':
      historyPage(frame);
      break;
    case 'resync_required':
      notify('The connection was interrupted for a while — the screen was brought up to date.', 6000);
      fetchHistory(maxSeq(), frame.seq); // what happened meanwhile, for the conversation
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
  for (const m of hub.presence) model.members.set(m.connection_id, { ...model.members.get(m.connection_id), ...m });
  drawPresence();
  if (firstForSession) {
    model.historyFor = frame.session_id;
    chatView.setSession(frame.session_id);
    const restored = frame.restored_from || model.restoredFrom;
    el.restoredNote.hidden = !restored;
    if (restored) {
      el.restoredNote.textContent = 'This session continues an earlier one: what was done is back, and its unfinished task is active again.';
      el.restoredNote.title = `Restored from session ${restored}`;
    }
    // Everything said and done before this page came: the conversation, the feed.
    if (Number.isInteger(frame.seq) && frame.seq > 0) fetchHistory(0, frame.seq);
    else historyDone();
    if (auth.kind === 'owner') sessions.load();
  }
  if (firstForSession || device.idle()) device.refresh();
}

function fetchHistory(after, until) {
  if (!Number.isInteger(until) || until <= after) {
    historyDone();
    return;
  }
  const pages = model.history ? model.history.pages : 0;
  model.history = {
    requestId: hub.send({ type: 'get_history', after_seq: after, limit: HISTORY_PAGE }),
    until,
    pages: pages + 1,
  };
}

function historyPage(frame) {
  const asked = model.history;
  if (!asked || frame.requestId !== asked.requestId) return;
  ingest((frame.events || []).filter((e) => e && typeof e === 'object'));
  const next = frame.next_after_seq;
  if (frame.has_more && Number.isInteger(next) && next < asked.until && asked.pages < HISTORY_PAGES) {
    fetchHistory(next, asked.until);
  } else {
    historyDone();
  }
}

function historyDone() {
  model.history = null;
  if (model.historyDone) return;
  model.historyDone = true;
  pageOpened();
}

function maxSeq() {
  let max = 0;
  for (const seq of model.events.keys()) max = Math.max(max, seq);
  return max;
}

function failed(frame) {
  const pick = model.picks.get(frame.requestId);
  model.picks.delete(frame.requestId);
  if (pick && (frame.code === 'version_conflict' || frame.code === 'state_refused')) {
    conflicted(pick, frame.requestId);
    return;
  }
  const p = model.pending;
  if (p && frame.requestId && frame.requestId === p.requestId) {
    clearPending();
    redrawTask();
    notify(`Your choice was not saved: ${frame.message || frame.code}.`, 6000);
  }
  if (model.history && frame.requestId === model.history.requestId) historyDone();
}

// New broadcasts (live, replayed, or from history): fold them into the page.
function ingest(frames) {
  let conversation = false;
  let feed = false;
  let joins = false;
  for (const f of frames) {
    if (!Number.isInteger(f.seq) || model.events.has(f.seq)) continue;
    model.events.set(f.seq, f);
    if (CONVERSATION_TYPES.has(f.type)) conversation = true;
    if (FEED_TYPES.has(f.type)) feed = true;
    if (f.type === 'client_joined' && f.connection_id) {
      model.members.set(f.connection_id, { ...f, ...model.members.get(f.connection_id) });
      model.joinedAt.set(f.connection_id, f.timestamp);
      joins = true;
    }
  }
  if (model.events.size > EVENTS_LIMIT) {
    const old = [...model.events.keys()].sort((a, b) => a - b).slice(0, model.events.size - EVENTS_LIMIT);
    for (const seq of old) model.events.delete(seq);
  }
  if (conversation) {
    model.conv = addFrames(model.conv, frames);
    drawConversation();
  }
  if (feed) drawFeed();
  if (joins && hub) renderPresence(el.presence, el.presenceCount, hub.presence, hub.connectionId, model.joinedAt);
}

// ---- state ------------------------------------------------------------------------

function onState(state, info) {
  model.state = state;
  if (info.frame?.requestId) model.picks.delete(info.frame.requestId);
  if (info.patch && 'selected_option' in info.patch) model.pickedBy = info.frame?.sender || null;
  const p = model.pending;
  if (p && (info.patch ? 'selected_option' in info.patch : sameQuote(state.selected_option, p.quote))) {
    clearPending();
  }
  redrawTask();
  const step = currentStep(state);
  if (info.reason === 'resync' || (info.reason === 'snapshot' && model.restoreScroll)) {
    model.restoreScroll = false;
    if (!model.opened) {
      pageOpened();
    } else if (step !== model.shownStep) {
      // Back after a drop, and the task moved on meanwhile: show where it is now.
      // Otherwise the user's own position stays: ui.scroll_position is shared by
      // every screen, and jumping to another screen's spot would be disorienting.
      scroll.restore(undefined, stepSection(step));
    }
  }
  model.shownStep = step;
}

function stepSection(step) {
  return el.taskBody.querySelector(`[data-step="${step}"]`);
}

// A page that just opened (or reloaded) goes back to where it was, once the state and
// the conversation are both drawn (the conversation's height moves what is below it).
function pageOpened() {
  if (model.opened || !model.state || !model.historyDone) return;
  model.opened = true;
  drawConversation();
  chatView.restore();
  scroll.restore(scroll.opened(), stepSection(currentStep(model.state)));
}

function taskOptions() {
  return {
    pendingQuote: model.pending?.quote || null,
    disabled: model.terminal !== null,
    agentPresent: agentPresent(),
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
    s.tasks, model.pending, model.terminal, agentPresent()];
  if (!force && model.rendered && parts.every((v, i) => v === model.rendered[i])) return;
  model.rendered = parts;
  renderTask(el.taskBody, s, taskOptions());
  renderStepper(el.stepper, s);
  renderTasks(el.tasks, taskView(s.tasks));
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
    // The pick carries the version this screen showed when the user tapped: queued
    // while offline and sent on reconnect, it is applied only if nothing changed
    // meanwhile; otherwise the hub answers version_conflict and conflicted() shows what
    // changed (docs/protocol.md section 10).
    const seen = hub.version;
    p.requestId = hub.updateState(
      { selected_option: quote, ui: { current_step: 'selected' } },
      seen === null ? {} : { expectedVersion: seen },
    );
    model.picks.set(p.requestId, quote);
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

// A pick made on an older state (queued while offline, or raced by another screen) was
// not applied: say what changed meanwhile, and let the user decide again.
function conflicted(pick, requestId) {
  if (model.pending?.requestId === requestId) clearPending();
  redrawTask(true);
  const s = model.state || {};
  const mine = quoteName(pick);
  const where = model.pickedBy && model.pickedBy === hub.connectionId ? 'on this screen' : 'on another screen';
  const now = s.label
    ? `the label was made for ${s.label.carrier} ${s.label.service}`
    : s.selected_option
      ? `${quoteName(s.selected_option)} was picked ${where}`
      : 'the rates changed';
  const again = s.label ? 'Ask the agent for new quotes to ship differently.' : 'Pick again if you still want it.';
  notify(`Your pick of ${mine} was not applied: ${now} meanwhile. ${again}`, 20000);
}

function quoteName(q) {
  return [q?.carrier, q?.service].filter(Boolean).join(' ') || 'that rate';
}

function clearPending() {
  const p = model.pending;
  if (!p) return;
  clearTimeout(p.timer);
  clearTimeout(p.sendTimer);
  model.pending = null;
}

// ---- the conversation and the agent ------------------------------------------------

function agentPresent() {
  return Boolean(hub) && hub.status === 'connected' && hub.presence.some(isAgent);
}

function agentNow() {
  if (['ended', 'stopped', 'closed'].includes(hub?.status)) {
    return { kind: 'none', label: 'No agent', detail: 'This screen is no longer connected to the session.' };
  }
  return agentStatus(model.conv.agentState, {
    present: agentPresent(),
    live: hub?.status === 'connected' || !model.everConnected,
  });
}

function drawAgent() {
  renderAgentPill(el.agentPill, el.agentText, agentNow());
}

function drawConversation() {
  const agent = agentNow();
  renderAgentPill(el.agentPill, el.agentText, agent);
  chatView.render(model.conv, agent, agentPresent(), Boolean(model.terminal));
}

// The screen a device is, as a mark where the voice moved names it (section 17).
const SCREEN_NAMES = {
  self: 'this screen',
  owner: 'the owner’s screen',
  companion: 'the screen joined by QR',
  admin: 'an admin’s screen',
  agent: 'the voice agent',
  backend: 'the voice agent',
};

function nameScreen(deviceId) {
  if (deviceId && deviceId === myDeviceId()) return SCREEN_NAMES.self;
  const all = [...(hub?.presence ?? []), ...model.members.values()];
  const m = all.find((x) => x.device_id === deviceId);
  const kind = m ? memberKind(m, { connectionId: hub?.connectionId, deviceId: myDeviceId() }) : null;
  return SCREEN_NAMES[kind] ?? 'another screen';
}

// ---- feed ---------------------------------------------------------------------

function context() {
  return { myConnectionId: hub.connectionId, myDeviceId: myDeviceId(), members: model.members };
}

// This screen's device id: the hub's for a device joined by QR code; for an owner's tab,
// one it keeps for its life (sessionStorage), so a reload is the same device.
function myDeviceId() {
  return hub?.presence.find((m) => m.connection_id === hub.connectionId)?.device_id || tabDeviceId();
}

function tabDeviceId() {
  try {
    let id = sessionStorage.getItem('companion.device-id');
    if (!id) {
      id = `tab-${crypto.randomUUID?.() || Math.random().toString(36).slice(2)}`;
      sessionStorage.setItem('companion.device-id', id);
    }
    return id;
  } catch {
    return null;
  }
}

function drawFeed() {
  const entries = feedFrom([...model.events.values()], context(), FEED_LIMIT);
  reconcile(el.feed, entries, {
    key: (e) => `${e.seq}:${e.kind}:${e.title}`,
    sig: (e) => `${e.who.label}|${e.detail}`,
    create: feedItem,
    fill: (_node, e) => feedItem(e),
    cache: model.feedCache,
  });
  updateFeedChrome();
}

function updateFeedChrome() {
  const n = el.feed.querySelectorAll('[data-testid="feed-item"]').length;
  el.feedEmpty.hidden = n > 0;
  el.feedCount.textContent = n ? String(n) : '';
}

// ---- presence -------------------------------------------------------------------

function drawPresence() {
  renderPresence(el.presence, el.presenceCount, hub.presence, hub.connectionId, model.joinedAt);
  drawConversation();
  redrawTask();
  if (model.events.size) drawFeed(); // names of senders may be known now
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

// For tests and debugging: the conversation as the page folded it.
Object.defineProperty(window, 'companionConversation', { get: () => model.conv });

main();
