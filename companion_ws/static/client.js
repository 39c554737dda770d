// client.js: one live connection to a companion_ws hub (docs/protocol.md v1).
//
//   import { connect } from '/static/client.js';
//   const hub = connect({ getToken: async () => jwt, onEvent, onStatus, onState });
//
// The controller drives a SessionMirror (mirror.js, the port of the Python client's
// mirror): it feeds it every frame and carries out what it asks (deliver the frame,
// ask a replay with `resume` for a gap, fetch the state). It reconnects with
// exponential backoff and jitter when protocol.js's shouldReconnect(code) says so,
// resuming with the mirror's `last_seq` + `epoch`, and tracks presence. It never
// touches the DOM, so any page can embed it.
//
// The token travels in the handshake, not the URL (proxies log URLs): the socket
// offers the subprotocols `companion.v1` and `bearer.<token>`, and the hub answers
// `companion.v1` (docs/protocol.md section 1; companion_ws/protocol/handshake.py). Only a
// token that is not a valid subprotocol value falls back to `?token=`.

import { SessionMirror } from './mirror.js';
import { CLOSE_NAMES, shouldReconnect } from './protocol.js';

export const DEFAULTS = Object.freeze({
  client: 'ui',
  backoffBase: 300, // ms, first retry waits 150–300 ms
  backoffMax: 10000, // ms, cap before jitter
  stableAfter: 10000, // ms connected before the attempt counter resets
  pingInterval: 20000, // ms between pings while idle
  idleTimeout: 45000, // ms without any frame before the socket counts as dead
  outboxLimit: 100, // frames kept while disconnected
});

export function defaultUrl(loc = globalThis.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

// Exponential backoff with "equal jitter": somewhere in [d/2, d].
export function backoffDelay(attempt, base = DEFAULTS.backoffBase, max = DEFAULTS.backoffMax,
  random = Math.random) {
  const d = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(d / 2 + (random() * d) / 2);
}

export const SUBPROTOCOL = 'companion.v1';
export const BEARER_PREFIX = 'bearer.';
// RFC 7230 token characters: what a subprotocol value may hold (JWTs and join codes do).
const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

// The subprotocols to offer for `token`, and whether it must go in the URL instead.
export function handshake(token) {
  if (TOKEN_CHARS.test(token)) {
    return { protocols: [SUBPROTOCOL, `${BEARER_PREFIX}${token}`], inUrl: false };
  }
  return { protocols: [SUBPROTOCOL], inUrl: true };
}

let requestCounter = 0;
function nextRequestId() {
  requestCounter += 1;
  return `ui-${Date.now().toString(36)}-${requestCounter}`;
}

const noop = () => {};

export function connect(options = {}) {
  const opts = { ...DEFAULTS, ...options };
  if (typeof opts.getToken !== 'function') {
    throw new TypeError('connect(): getToken must be a function returning a token');
  }
  const onEvent = opts.onEvent || noop;
  const onStatus = opts.onStatus || noop;
  const onState = opts.onState || noop;
  const WebSocketImpl = opts.WebSocket || globalThis.WebSocket;

  let ws = null; // the live socket, or null
  let welcomed = false; // session_joined received on the live socket
  let generation = 0; // bumps on every open(); stale async work checks it
  const mirror = new SessionMirror(opts.sessionId || null);
  let userId = null;
  let fetchRequestId = null; // the get_session_state the mirror asked for
  let presence = new Map();
  let status = 'idle';
  let statusDetail = {};
  let attempt = 0;
  let done = false; // terminal close, session ended, or close() called
  let endedByFrame = false;
  let retryTimer = null;
  let pingTimer = null;
  let stableTimer = null;
  let endTimer = null;
  let lastFrameAt = 0;
  let lastError = null;
  let outbox = [];

  function setStatus(next, detail = {}) {
    status = next;
    statusDetail = { ...detail };
    safe(onStatus, { status: next, ...detail }, controller);
  }

  function safe(fn, ...args) {
    try {
      fn(...args);
    } catch (err) {
      // A bug in a callback must not kill the connection; report it asynchronously.
      setTimeout(() => { throw err; });
    }
  }

  async function open() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (done) return;
    const gen = ++generation;
    setStatus(attempt ? 'reconnecting' : 'connecting', { attempt });
    let token;
    try {
      token = await opts.getToken();
    } catch {
      if (gen === generation && !done) scheduleRetry({ code: 0, reason: 'token_unavailable' });
      return;
    }
    if (gen !== generation || done) return;
    if (!token) {
      finish('stopped', { code: 4401, reason: 'no_token' });
      return;
    }
    const url = new URL(opts.url || defaultUrl(), globalThis.location?.href);
    url.searchParams.delete('token');
    const { protocols, inUrl } = handshake(token);
    if (inUrl) url.searchParams.set('token', token);
    if (mirror.sessionId) url.searchParams.set('session_id', mirror.sessionId);
    const resume = mirror.connecting();
    if (resume) {
      url.searchParams.set('last_seq', String(resume.lastSeq));
      url.searchParams.set('epoch', String(resume.epoch));
    }
    url.searchParams.set('client', opts.client);
    if (opts.deviceId) url.searchParams.set('device_id', opts.deviceId);
    let sock;
    try {
      sock = new WebSocketImpl(url.toString(), protocols);
    } catch {
      mirror.dropped();
      scheduleRetry({ code: 0, reason: 'bad_url' });
      return;
    }
    ws = sock;
    welcomed = false;
    lastFrameAt = Date.now();
    sock.onmessage = (ev) => {
      if (ws === sock) receive(ev.data);
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      closed(ev.code, ev.reason);
    };
    sock.onerror = noop; // a close event always follows
  }

  // Forget the socket without waiting for its close handshake (dead network).
  function drop(reason) {
    const sock = ws;
    if (!sock) return;
    ws = null;
    try {
      sock.close(4000, reason);
    } catch {
      /* already closing */
    }
    closed(1006, reason);
  }

  function closed(code, reason) {
    stopTimers();
    welcomed = false;
    mirror.dropped();
    fetchRequestId = null;
    if (done) return;
    const recent = lastError && Date.now() - lastError.at < 5000 ? lastError : null;
    lastError = null;
    const retry = shouldReconnect(code);
    const named = retry ? null : CLOSE_NAMES[code];
    const detail = { code, reason: named || reason || 'connection_lost' };
    if (recent) detail.error = { code: recent.code, message: recent.message };
    if (endedByFrame || code === 4410) {
      finish('ended', { ...detail, code: 4410, reason: 'ended' });
    } else if (!retry) {
      finish('stopped', detail);
    } else {
      scheduleRetry(detail);
    }
  }

  function scheduleRetry(detail) {
    attempt += 1;
    if (globalThis.navigator && navigator.onLine === false) {
      // The 'online' event reconnects at once; the slow timer is a fallback.
      setStatus('offline', { ...detail, attempt });
      retryTimer = setTimeout(open, opts.backoffMax);
      return;
    }
    let delay = backoffDelay(attempt, opts.backoffBase, opts.backoffMax);
    if (detail.code === 4429) delay = Math.max(delay, 1000);
    setStatus('reconnecting', { ...detail, attempt, delay });
    retryTimer = setTimeout(open, delay);
  }

  function finish(next, detail) {
    done = true;
    mirror.close();
    stopTimers();
    clearTimeout(retryTimer);
    clearTimeout(endTimer);
    outbox = [];
    removeWindowListeners();
    if (ws) {
      const sock = ws;
      ws = null;
      try {
        sock.close(1000);
      } catch {
        /* ignore */
      }
    }
    setStatus(next, detail);
  }

  function stopTimers() {
    clearInterval(pingTimer);
    clearTimeout(stableTimer);
    pingTimer = null;
    stableTimer = null;
  }

  function rawSend(frame) {
    ws.send(JSON.stringify(frame));
  }

  function send(frame) {
    if (!frame || typeof frame.type !== 'string') {
      throw new TypeError('send(): a frame is an object with a string "type"');
    }
    if (done) return null;
    const out = { ...frame };
    if (out.requestId === undefined) out.requestId = nextRequestId();
    if (ws && welcomed && ws.readyState === 1) {
      rawSend(out);
    } else {
      outbox.push(out);
      if (outbox.length > opts.outboxLimit) outbox.shift();
    }
    return out.requestId;
  }

  function receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!frame || typeof frame !== 'object' || typeof frame.type !== 'string') return;
    lastFrameAt = Date.now();
    const wasSynced = mirror.synced;
    const before = mirror.state;
    let delivered = false;
    const actions = mirror.receive(frame);
    for (const action of actions) {
      if (action.action === 'deliver') {
        delivered = true;
        note(frame);
      }
    }
    for (const action of actions) {
      if (action.action === 'request_replay') {
        // A gap: the frames in it come in order from the replay, then the live ones.
        if (ws && welcomed && ws.readyState === 1) {
          rawSend({ type: 'resume', last_seq: action.lastSeq, epoch: action.epoch });
        }
      } else if (action.action === 'fetch_state') {
        fetchRequestId = send({ type: 'get_session_state' });
      }
    }
    if (mirror.synced && (mirror.state !== before || !wasSynced)) stateChanged(frame);
    if (delivered) safe(onEvent, frame, controller);
  }

  // What the connection (not the session, which is the mirror's) takes from a frame.
  function note(frame) {
    switch (frame.type) {
      case 'session_joined':
        welcome(frame);
        break;
      case 'resync_required':
        send({ type: 'get_presence' });
        break;
      case 'client_joined':
        if (frame.connection_id) presence.set(frame.connection_id, member(frame));
        break;
      case 'client_left':
        if (frame.connection_id !== mirror.connectionId) presence.delete(frame.connection_id);
        break;
      case 'presence':
        presence = new Map((frame.clients || []).map((c) => [c.connection_id, member(c)]));
        addSelf();
        break;
      case 'refresh_required':
        renewToken(); // docs/protocol.md section 12: a fresh credential before this one expires
        break;
      case 'session_ended':
        endedByFrame = true;
        clearTimeout(endTimer);
        endTimer = setTimeout(() => closed(4410, 'ended'), 3000);
        break;
      case 'error':
        lastError = { code: frame.code, message: frame.message, at: Date.now() };
        if (fetchRequestId !== null && frame.requestId === fetchRequestId) {
          fetchRequestId = null;
          mirror.fetchFailed();
        }
        break;
      default:
        break;
    }
  }

  async function renewToken() {
    let token;
    try {
      token = await opts.getToken();
    } catch {
      return; // the hub closes 4401 after its grace; the reconnect asks getToken again
    }
    if (token) send({ type: 'refresh', token });
  }

  function stateChanged(frame) {
    const reasons = { session_state: 'snapshot', resync_required: 'resync' };
    const info = { version: mirror.version, reason: reasons[frame.type] || 'patch', frame };
    if (frame.type === 'session_state_updated') info.patch = frame.patch;
    safe(onState, mirror.state, info, controller);
  }

  function member(c) {
    return Object.freeze({
      connection_id: c.connection_id, user_id: c.user_id, client: c.client, role: c.role, device_id: c.device_id,
    });
  }

  function addSelf() {
    const connectionId = mirror.connectionId;
    if (connectionId && !presence.has(connectionId)) {
      presence.set(connectionId, member({
        connection_id: connectionId, user_id: userId, client: opts.client, role: mirror.welcome?.role,
        device_id: mirror.welcome?.device_id,
      }));
    }
  }

  function welcome(frame) {
    welcomed = true;
    userId = frame.user_id || null;
    addSelf();
    setStatus('connected', {
      attempt,
      resumed: Boolean(frame.resumed),
      created: Boolean(frame.created),
      requestedSessionId: frame.requested_session_id,
      reason: frame.reason,
    });
    stableTimer = setTimeout(() => { attempt = 0; }, opts.stableAfter);
    pingTimer = setInterval(heartbeat, opts.pingInterval);
    send({ type: 'get_presence' });
    const queued = outbox;
    outbox = [];
    for (const f of queued) rawSend(f);
  }

  function heartbeat() {
    if (!ws || ws.readyState !== 1) return;
    if (Date.now() - lastFrameAt > opts.idleTimeout) drop('idle_timeout');
    else rawSend({ type: 'ping' });
  }

  // The browser knows more about the network than our backoff does.
  const onOnline = () => {
    if (!done && !ws) open();
  };
  const onOffline = () => {
    if (!done && ws) drop('offline');
  };
  const onVisible = () => {
    if (document.visibilityState !== 'visible' || done) return;
    if (retryTimer) open();
    else if (ws && Date.now() - lastFrameAt > opts.pingInterval) heartbeat();
  };
  function removeWindowListeners() {
    if (typeof window === 'undefined') return;
    window.removeEventListener('online', onOnline);
    window.removeEventListener('offline', onOffline);
    document.removeEventListener('visibilitychange', onVisible);
  }
  if (typeof window !== 'undefined') {
    window.addEventListener('online', onOnline);
    window.addEventListener('offline', onOffline);
    document.addEventListener('visibilitychange', onVisible);
  }

  const controller = Object.freeze({
    send,
    updateState(mergePatchDoc, { expectedVersion } = {}) {
      const frame = { type: 'update_session_state', patch: mergePatchDoc };
      if (expectedVersion !== undefined) frame.expected_version = expectedVersion;
      return send(frame);
    },
    // Read the whole state again; the reply is applied by the mirror's rules.
    refresh: () => send({ type: 'get_session_state' }),
    reconnect() {
      if (status === 'closed') return;
      done = false;
      endedByFrame = false;
      attempt = 0;
      if (ws) {
        const sock = ws;
        ws = null;
        try {
          sock.close(1000);
        } catch {
          /* ignore */
        }
      }
      removeWindowListeners();
      if (typeof window !== 'undefined') {
        window.addEventListener('online', onOnline);
        window.addEventListener('offline', onOffline);
        document.addEventListener('visibilitychange', onVisible);
      }
      open();
    },
    close() {
      if (status === 'closed') return;
      finish('closed', { code: 1000, reason: 'closed_by_client' });
    },
    // The state document (frozen) and its version, once known; null before.
    get state() { return mirror.synced ? mirror.state : null; },
    get version() { return mirror.synced ? mirror.version : null; },
    get seq() { return mirror.seq; },
    get epoch() { return mirror.epoch; },
    get phase() { return mirror.phase; },
    get feed() { return [...mirror.feed]; }, // the broadcasts delivered, oldest first
    get sessionId() { return mirror.sessionId; },
    get connectionId() { return mirror.connectionId; },
    get userId() { return userId; },
    get status() { return status; },
    get statusDetail() { return statusDetail; },
    get presence() { return [...presence.values()]; },
  });

  queueMicrotask(open); // callbacks start after connect() has returned
  return controller;
}
