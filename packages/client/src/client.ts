// client.ts: CompanionClient, one session of a companion_ws hub kept live across drops
// (docs/protocol.md; the Python companion_ws/client/companion.py name for name).
//
//   const hub = new CompanionClient('ws://127.0.0.1:8000', { token, sessionId });
//   await hub.start();                          // welcome + state in
//   await hub.updateState({ ui: { step: 2 } }, { expectedVersion: hub.version });
//   const off = hub.on('state', (state, info) => render(state));
//   await hub.close();
//
// It feeds every frame to a SessionMirror (mirror.ts), which keeps the session's
// position (seq, epoch) and state and says what to do: deliver the frame, ask a replay
// for a gap, fetch the state. On a close that shouldReconnect() calls retryable it
// reconnects with exponential backoff and full jitter, passing last_seq/epoch so the hub
// replays what was missed; any other close stops it for good. Broadcast frames reach the
// listeners exactly once and in seq order. It also folds the conversation
// (conversation.ts) and tracks presence (presence.ts) and the voice floor (floor.ts), as
// the hub's page shows them.
//
// Frames sent while offline wait in a bounded queue and go out after the next welcome,
// in order. An update asked for offline carries the version last seen (unless it names
// its own `expectedVersion`); the hub checks it against the state as it is then: when
// another change came first, it is not applied and its promise rejects with
// ClientError code `version_conflict`.

import { connectUrl, currentToken, handshake, renewalToken, wsBase } from './address.js';
import type { TokenSource } from './address.js';
import { addFrames, CONVERSATION_TYPES, emptyConversation } from './conversation.js';
import type { Conversation } from './conversation.js';
import { ClientClosed, ConnectionLost } from './errors.js';
import { FLOOR_CONTROLS, floorAfter, NO_FLOOR } from './floor.js';
import type { FloorControl, VoiceFloor } from './floor.js';
import type { ServerFrameOf } from './frames.js';
import type { JsonObject } from './merge-patch.js';
import { Phase, SessionMirror } from './mirror.js';
import type { Frame } from './mirror.js';
import { PendingRequests } from './pending.js';
import type { RequestOptions, Want } from './pending.js';
import { member, Presence } from './presence.js';
import type { Member } from './presence.js';
import { CLOSE_NAMES, shouldReconnect } from './protocol.js';
import { Retry } from './retry.js';
import { EventStreams } from './stream.js';
import type { WaitOptions } from './stream.js';

/** What the client needs of a WebSocket (the browser's, Node 22's, or the `ws` package's). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export type Status = 'idle' | 'connecting' | 'reconnecting' | 'offline' | 'connected' | 'stopped' | 'ended' | 'closed';

export interface StatusDetail {
  status: Status;
  attempt?: number;
  delay?: number;
  code?: number | null;
  reason?: string;
  error?: { code: unknown; message: unknown };
  resumed?: boolean;
  created?: boolean;
  requestedSessionId?: unknown;
}

export interface StateInfo {
  version: number;
  reason: 'snapshot' | 'resync' | 'patch';
  frame: Frame;
  patch?: unknown;
}

export interface Listeners {
  frame: (frame: Frame) => void;
  state: (state: Readonly<JsonObject>, info: StateInfo) => void;
  status: (detail: StatusDetail) => void;
  conversation: (conversation: Conversation) => void;
  presence: (members: readonly Member[]) => void;
  /** The voice floor changed (its holder, or whether it is this connection). */
  floor: (floor: VoiceFloor) => void;
}
export type EventName = keyof Listeners;

export interface ClientOptions {
  /** A token, or a (sync or async) function called on every connect and refresh. */
  token: TokenSource;
  sessionId?: string | null;
  /** The client kind the hub records (`ui`, `agent`, `backend`...); default `ui`. */
  client?: string;
  deviceId?: string | null;
  /** A WebSocket constructor; default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Backoff, ms: the first retry waits up to 2 × backoffInitial, capped at backoffMax. */
  backoffInitial?: number;
  backoffMax?: number;
  /** Stop after this many failed connects in a row; default: never. */
  maxAttempts?: number | null;
  /** Stop when nothing has ever answered within this many ms; default: never. */
  firstConnectTimeout?: number | null;
  /** ms between pings while idle, and without any frame before the socket counts as dead. */
  pingInterval?: number;
  idleTimeout?: number;
  /** Frames kept while disconnected. */
  outboxLimit?: number;
  /** Default timeout of requests, ms. */
  requestTimeout?: number;
  /** Read the session's conversation history after joining (get_history); default true. */
  loadHistory?: boolean;
  /** Listen to the window's online/offline/visibility events (browsers); default true. */
  watchNetwork?: boolean;
  random?: () => number;
}

const HISTORY_PAGE = 500;
const HISTORY_LIMIT = 5000;
const OPEN = 1;

let requestCounter = 0;
function nextRequestId(): string {
  requestCounter += 1;
  return `js-${Date.now().toString(36)}-${requestCounter}`;
}

export class CompanionClient {
  readonly mirror: SessionMirror;
  /** The welcome's reconnect token, used when the token source is a spent join token. */
  reconnectToken: string | null = null;
  closedCode: number | null = null;
  closedReason = '';

  private readonly base: string;
  private readonly o: Required<Omit<ClientOptions, 'sessionId' | 'deviceId' | 'WebSocket'>> & {
    deviceId: string | null;
  };
  private readonly WS: WebSocketConstructor;
  private ws: WebSocketLike | null = null;
  private welcomed = false;
  private generation = 0;
  private done = false;
  private endedByFrame = false;
  private retry: Retry;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private endTimer: ReturnType<typeof setTimeout> | null = null;
  private lastFrameAt = 0;
  private lastError: (Frame & { at: number }) | null = null;
  private outbox: Frame[] = [];
  private fetchRequestId: string | null = null;
  private ready: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | null = null;
  private readonly pending = new PendingRequests();
  private readonly streams = new EventStreams();
  private readonly listeners: { [K in EventName]: Set<Listeners[K]> } = {
    frame: new Set(), state: new Set(), status: new Set(), conversation: new Set(), presence: new Set(),
    floor: new Set(),
  };
  private readonly people = new Presence();
  private conv: Conversation = emptyConversation();
  private floorValue: VoiceFloor = NO_FLOOR;
  private statusValue: Status = 'idle';
  private detail: StatusDetail = { status: 'idle' };
  private userIdValue: string | null = null;
  private windowWatched = false;

  constructor(url: string, options: ClientOptions) {
    if (options === null || typeof options !== 'object' || options.token === undefined) {
      throw new TypeError('new CompanionClient(url, { token }): a token (or a function returning one) is required');
    }
    this.base = wsBase(url, (globalThis as { location?: { href: string } }).location?.href);
    this.o = {
      token: options.token,
      client: options.client ?? 'ui',
      deviceId: options.deviceId ?? null,
      backoffInitial: options.backoffInitial ?? 300,
      backoffMax: options.backoffMax ?? 10000,
      maxAttempts: options.maxAttempts ?? null,
      firstConnectTimeout: options.firstConnectTimeout ?? null,
      pingInterval: options.pingInterval ?? 20000,
      idleTimeout: options.idleTimeout ?? 45000,
      outboxLimit: options.outboxLimit ?? 100,
      requestTimeout: options.requestTimeout ?? 10000,
      loadHistory: options.loadHistory ?? true,
      watchNetwork: options.watchNetwork ?? true,
      random: options.random ?? Math.random,
    };
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError('no WebSocket here: pass one, e.g. { WebSocket } from the "ws" package');
    this.WS = WS;
    this.mirror = new SessionMirror(options.sessionId ?? null);
    this.retry = this.newRetry();
  }

  // ---------------------------------------------------------------- read-only views

  get sessionId(): string | null { return this.mirror.sessionId; }
  get connectionId(): string | null { return this.mirror.connectionId; }
  get seq(): number { return this.mirror.seq; }
  get epoch(): string | null { return this.mirror.epoch; }
  /** The state document (frozen); {} until synced (see `synced`). */
  get state(): Readonly<JsonObject> { return this.mirror.state; }
  get version(): number { return this.mirror.version; }
  get synced(): boolean { return this.mirror.synced; }
  get phase(): Phase { return this.mirror.phase; }
  get welcome(): Readonly<Frame> | Record<string, never> { return this.mirror.welcome; }
  get reconnects(): number { return this.mirror.reconnects; }
  get role(): string | null { return str(this.mirror.welcome.role); }
  get deviceId(): string | null { return str(this.mirror.welcome.device_id) ?? this.o.deviceId; }
  get userId(): string | null { return this.userIdValue; }
  /** Welcomed on a connection that is still open. */
  get connected(): boolean { return this.mirror.phase === Phase.LIVE || this.mirror.phase === Phase.REPLAYING; }
  get status(): Status { return this.statusValue; }
  get statusDetail(): StatusDetail { return this.detail; }
  get presence(): readonly Member[] { return this.people.all; }
  get conversation(): Conversation { return this.conv; }
  /** Who holds the voice (docs/protocol.md section 17), and whether it is this connection. */
  get voiceFloor(): VoiceFloor { return this.floorValue; }
  /** The broadcasts delivered, oldest first. */
  get feed(): readonly Frame[] { return [...this.mirror.feed]; }

  // ---------------------------------------------------------------- lifecycle

  /** Connect (retrying with backoff) and resolve once the welcome and the state are in.
   * Rejects with ClientClosed if the hub refuses for good. */
  start(): Promise<void> {
    if (this.done) return Promise.reject(this.closedError());
    if (this.ready === null) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
      promise.catch(() => {}); // rejected when start() is not awaited: not an unhandled one
      this.ready = { promise, resolve, reject };
      if (this.connected && this.mirror.synced) resolve();
    }
    if (this.statusValue === 'idle') {
      this.watchWindow(true);
      void this.open();
    }
    return this.ready.promise;
  }

  /** Close with 1000 and stop: events() iterators end, requests reject with ClientClosed. */
  async close(): Promise<void> {
    if (this.statusValue === 'closed') return;
    this.finish('closed', { code: 1000, reason: 'closed_by_client' });
  }

  /** Connect again now (after a stop, or to skip a backoff wait). */
  reconnect(): void {
    if (this.statusValue === 'closed') return;
    this.done = false;
    this.endedByFrame = false;
    this.retry = this.newRetry();
    this.closedCode = null;
    this.closedReason = '';
    const sock = this.ws;
    this.ws = null;
    if (sock) {
      // The open connection is dropped like any other: requests sent on it fail, the
      // mirror resumes from where it was on the next one.
      sock.onclose = null;
      this.dropped(sock, 1000);
      this.stopTimers();
      this.welcomed = false;
      this.mirror.dropped();
      this.fetchRequestId = null;
      this.pending.dropped(new ConnectionLost());
    }
    this.watchWindow(true);
    void this.open();
  }

  // ---------------------------------------------------------------- listeners

  /** Listen; returns the function that stops listening. */
  on<K extends EventName>(event: K, fn: Listeners[K]): () => void {
    const set = this.listeners[event] as Set<Listeners[K]> | undefined;
    if (!set) throw new TypeError(`unknown event ${String(event)}`);
    set.add(fn);
    return () => { set.delete(fn); };
  }

  /** Every frame delivered from now on, in order, across reconnects; ends when the client stops. */
  events(options: { signal?: AbortSignal } = {}): AsyncIterableIterator<Frame> {
    return this.streams.open(options.signal);
  }

  /** The next delivered frame (from now on) that matches. */
  waitFor(predicate: (frame: Frame) => boolean, options: WaitOptions = {}): Promise<Frame> {
    return this.streams.waitFor(predicate, options);
  }

  // ---------------------------------------------------------------- sending

  /** Send a frame without waiting for its answer (queued while offline); its requestId. */
  send(frame: Frame): string | null {
    if (!frame || typeof frame.type !== 'string') {
      throw new TypeError('send(): a frame is an object with a string "type"');
    }
    if (this.done) return null;
    const out: Frame = { ...frame };
    if (out.requestId === undefined) out.requestId = nextRequestId();
    this.transmit(out);
    return out.requestId as string;
  }

  /** Send `frame` (with a fresh requestId unless it has one); the first frame carrying it
   * back. Rejects with ClientError for an `error` frame, ConnectionLost if the connection
   * dropped after sending (nothing is resent), ClientClosed, or the TimeoutError/AbortError. */
  request(frame: Frame, options: RequestOptions = {}): Promise<Frame> {
    return this.ask(frame, null, options);
  }

  /** Merge-patch the session state; the session_state_updated echo. */
  updateState(
    patch: JsonObject, options: RequestOptions & { expectedVersion?: number } = {},
  ): Promise<ServerFrameOf<'session_state_updated'>> {
    return this.request(this.updateFrame(patch, options.expectedVersion), options) as Promise<never>;
  }

  /** @internal The update_session_state frame. Asked for while offline, it is a decision
   * made on the state last seen: unless `expectedVersion` is given it carries that
   * state's version, so the hub applies it only if nothing changed meanwhile (else
   * ClientError version_conflict), as the Python client does. */
  updateFrame(patch: JsonObject, expectedVersion?: number): Frame {
    const frame: Frame = { type: 'update_session_state', patch };
    const seen = expectedVersion ?? (!this.connected && this.mirror.synced ? this.mirror.version : undefined);
    if (seen !== undefined) frame.expected_version = seen;
    return frame;
  }

  /** Broadcast a contextual_update; the echo (it carries the seq). */
  contextualUpdate(text: string, data: unknown = null, options: RequestOptions = {}): Promise<ServerFrameOf<'contextual_update'>> {
    return this.request({ type: 'contextual_update', text, data }, options) as Promise<never>;
  }

  /** Run a registered tool; the client_tool_result frame. */
  callTool(
    toolName: string, toolCallId: string, parameters: JsonObject, options: RequestOptions = {},
  ): Promise<ServerFrameOf<'client_tool_result'>> {
    const call = { tool_name: toolName, tool_call_id: toolCallId, parameters };
    const isResult = (f: Frame): boolean => f.type === 'client_tool_result';
    return this.ask({ type: 'client_tool_call', client_tool_call: call }, isResult, options) as Promise<never>;
  }

  /** Take the voice floor (section 17); the voice_floor echo naming this connection. */
  takeVoice(options: RequestOptions = {}): Promise<ServerFrameOf<'voice_floor'>> {
    return this.request({ type: 'take_voice' }, options) as Promise<never>;
  }

  /** Free the floor this connection holds; the voice_floor echo. ClientError `no_voice`
   * when it does not hold it. */
  releaseVoice(options: RequestOptions = {}): Promise<ServerFrameOf<'voice_floor'>> {
    return this.request({ type: 'release_voice' }, options) as Promise<never>;
  }

  /** Act on the holder's conversation (interrupt, mute, unmute, end); the agent_control
   * echo, which names the holder's device. ClientError `no_voice` without a holder. */
  agentControl(action: FloorControl, options: RequestOptions = {}): Promise<ServerFrameOf<'agent_control'>> {
    if (!(FLOOR_CONTROLS as readonly string[]).includes(action)) {
      return Promise.reject(new TypeError(`agentControl(): action is one of ${FLOOR_CONTROLS.join(', ')}`));
    }
    return this.request({ type: 'agent_control', action }, options) as Promise<never>;
  }

  /** Read the whole state again (get_session_state); the mirror applies the reply. */
  fetchState(options: RequestOptions = {}): Promise<ServerFrameOf<'session_state'>> {
    return this.request({ type: 'get_session_state' }, options) as Promise<never>;
  }

  private ask(frame: Frame, want: Want | null, options: RequestOptions): Promise<Frame> {
    if (this.done) return Promise.reject(this.closedError());
    const rid = typeof frame.requestId === 'string' ? frame.requestId : nextRequestId();
    const answer = this.pending.add(rid, want, { timeout: this.o.requestTimeout, ...options });
    if (this.pending.has(rid)) this.transmit({ ...frame, requestId: rid });
    return answer;
  }

  private transmit(frame: Frame): void {
    const ws = this.ws;
    if (ws && this.welcomed && ws.readyState === OPEN) {
      ws.send(JSON.stringify(frame));
      if (typeof frame.requestId === 'string') this.pending.sent(frame.requestId);
      return;
    }
    this.outbox.push(frame);
    if (this.outbox.length > this.o.outboxLimit) {
      const lost = this.outbox.shift()!;
      if (typeof lost.requestId === 'string') {
        this.pending.fail(lost.requestId, new ConnectionLost('offline too long: the queued frame was dropped'));
      }
    }
  }

  // ---------------------------------------------------------------- the connection

  private newRetry(): Retry {
    return new Retry(Date.now(), this.base, {
      backoffInitial: this.o.backoffInitial,
      backoffMax: this.o.backoffMax,
      maxAttempts: this.o.maxAttempts,
      firstConnectTimeout: this.o.firstConnectTimeout,
      random: this.o.random,
    });
  }

  private async open(): Promise<void> {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.done) return;
    const gen = ++this.generation;
    const attempt = this.retry.failures;
    this.setStatus(attempt > 0 || this.retry.ever ? 'reconnecting' : 'connecting', { attempt });
    let token: string | null;
    try {
      token = await currentToken(this.o.token, this.reconnectToken);
    } catch (err) {
      if (gen === this.generation && !this.done) this.closed(1006, `token_unavailable: ${String(err)}`);
      return;
    }
    if (gen !== this.generation || this.done) return;
    if (!token) {
      this.finish('stopped', { code: 4401, reason: 'no_token' });
      return;
    }
    const protocols = handshake(token);
    if (protocols === null) {
      this.finish('stopped', { code: 4401, reason: 'bad_token' }); // never put it in the URL
      return;
    }
    const url = connectUrl(this.base, this.o.client, this.mirror.sessionId, this.mirror.connecting(), this.o.deviceId);
    let sock: WebSocketLike;
    try {
      sock = new this.WS(url, protocols);
    } catch (err) {
      this.closed(1006, `bad_url: ${String(err)}`);
      return;
    }
    this.ws = sock;
    this.welcomed = false;
    this.lastFrameAt = Date.now();
    sock.onmessage = (ev) => {
      if (this.ws === sock) this.receive(ev.data);
    };
    sock.onclose = (ev) => {
      if (this.ws !== sock) return;
      this.ws = null;
      this.closed(ev.code, ev.reason);
    };
    sock.onerror = () => {}; // a close event always follows
  }

  /** Forget the socket without waiting for its close handshake (a dead network). */
  private drop(reason: string): void {
    const sock = this.ws;
    if (!sock) return;
    this.ws = null;
    sock.onclose = null;
    try {
      sock.close(4000, reason);
    } catch {
      /* already closing */
    }
    this.closed(1006, reason);
  }

  private dropped(sock: WebSocketLike, code: number): void {
    try {
      sock.close(code);
    } catch {
      /* already closing */
    }
  }

  private closed(code: number | null, reason: string): void {
    const welcomed = this.welcomed;
    this.stopTimers();
    this.welcomed = false;
    this.mirror.dropped();
    this.fetchRequestId = null;
    this.pending.dropped(new ConnectionLost());
    if (this.done) return;
    const recent = this.lastError && Date.now() - this.lastError.at < 5000 ? this.lastError : null;
    this.lastError = null;
    const named = shouldReconnect(code) ? null : CLOSE_NAMES[String(code)];
    const detail: Omit<StatusDetail, 'status'> = { code, reason: named || reason || 'connection_lost' };
    if (recent) detail.error = { code: recent.code, message: recent.message };
    if (this.endedByFrame || code === 4410) {
      this.finish('ended', { ...detail, code: 4410, reason: 'ended' });
      return;
    }
    const decision = this.retry.after(code, detail.reason ?? '', welcomed, Date.now());
    if (typeof decision !== 'number') {
      this.finish('stopped', { ...detail, reason: shouldReconnect(code) ? decision.stop : detail.reason });
      return;
    }
    const attempt = this.retry.failures || 1;
    const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
    if (this.windowWatched && nav?.onLine === false) {
      // The 'online' event reconnects at once; the slow timer is a fallback.
      this.setStatus('offline', { ...detail, attempt });
      this.retryTimer = setTimeout(() => void this.open(), this.o.backoffMax);
      return;
    }
    this.setStatus('reconnecting', { ...detail, attempt, delay: decision });
    this.retryTimer = setTimeout(() => void this.open(), decision);
  }

  private finish(next: Status, detail: Omit<StatusDetail, 'status'>): void {
    this.done = true;
    this.closedCode = detail.code ?? null;
    this.closedReason = detail.reason ?? '';
    this.mirror.close();
    this.stopTimers();
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.endTimer !== null) clearTimeout(this.endTimer);
    this.retryTimer = null;
    this.endTimer = null;
    this.watchWindow(false);
    const sock = this.ws;
    this.ws = null;
    if (sock) {
      sock.onclose = null;
      this.dropped(sock, 1000);
    }
    const err = this.closedError();
    this.outbox = [];
    this.pending.failAll(err);
    this.ready?.reject(err);
    this.ready = null;
    this.streams.end(err);
    this.setStatus(next, detail);
  }

  private closedError(): ClientClosed {
    const e = this.lastError;
    return new ClientClosed(this.closedCode, this.closedReason, e);
  }

  private stopTimers(): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  // ---------------------------------------------------------------- frames

  private receive(data: unknown): void {
    let frame: Frame;
    try {
      frame = JSON.parse(String(data)) as Frame;
    } catch {
      return;
    }
    if (!frame || typeof frame !== 'object' || typeof frame.type !== 'string') return;
    this.lastFrameAt = Date.now();
    const wasSynced = this.mirror.synced;
    const before = this.mirror.state;
    let delivered = false;
    let ready = false;
    const actions = this.mirror.receive(frame);
    for (const action of actions) {
      if (action.action === 'deliver') {
        delivered = true;
        this.note(frame);
      }
    }
    for (const action of actions) {
      if (action.action === 'request_replay') {
        // A gap: the frames in it come in order from the replay, then the live ones.
        this.rawSend({ type: 'resume', last_seq: action.lastSeq, epoch: action.epoch });
      } else if (action.action === 'fetch_state') {
        this.fetchRequestId = this.send({ type: 'get_session_state' });
      } else if (action.action === 'ready') {
        ready = true;
      }
    }
    if (this.mirror.synced && (this.mirror.state !== before || !wasSynced)) this.stateChanged(frame);
    if (delivered) {
      this.pending.answer(frame);
      this.emit('frame', frame);
      this.streams.push(frame);
    }
    if (ready) this.ready?.resolve();
  }

  /** What the connection (not the session, which is the mirror's) takes from a frame. */
  private note(frame: Frame): void {
    if (CONVERSATION_TYPES.has(frame.type)) this.fold([frame]);
    if (this.people.apply(frame, this.self())) this.emit('presence', this.people.all);
    this.setFloor(floorAfter(this.floorValue, frame, this.mirror.connectionId));
    switch (frame.type) {
      case 'session_joined':
        this.joined(frame);
        break;
      case 'resync_required':
        this.send({ type: 'get_presence' });
        if (this.o.loadHistory) void this.loadHistory(0);
        break;
      case 'history':
        if (Array.isArray(frame.events)) this.fold(frame.events as Frame[]);
        break;
      case 'refresh_required':
        void this.renewToken(); // docs/protocol.md section 12
        break;
      case 'session_ended':
        this.endedByFrame = true;
        if (this.endTimer !== null) clearTimeout(this.endTimer);
        this.endTimer = setTimeout(() => this.closed(4410, 'ended'), 3000);
        break;
      case 'error':
        this.lastError = { ...frame, at: Date.now() };
        if (this.fetchRequestId !== null && frame.requestId === this.fetchRequestId) {
          this.fetchRequestId = null;
          this.mirror.fetchFailed();
        }
        break;
      default:
        break;
    }
  }

  private joined(frame: Frame): void {
    const fresh = !frame.resumed;
    if (fresh && this.conv.lastSeq > 0) {
      this.conv = emptyConversation();
      this.emit('conversation', this.conv);
    }
    this.welcomed = true;
    this.userIdValue = str(frame.user_id);
    this.reconnectToken = str(frame.reconnect_token) ?? this.reconnectToken;
    const self = this.self();
    if (self && this.people.welcomed(self)) this.emit('presence', this.people.all);
    this.retry.reset();
    this.setStatus('connected', {
      attempt: 0,
      resumed: Boolean(frame.resumed),
      created: Boolean(frame.created),
      requestedSessionId: frame.requested_session_id,
      reason: str(frame.reason) ?? undefined,
    });
    this.pingTimer = setInterval(() => this.heartbeat(), this.o.pingInterval);
    this.send({ type: 'get_presence' });
    const queued = this.outbox;
    this.outbox = [];
    for (const f of queued) this.transmit(f);
    if (fresh && this.o.loadHistory) void this.loadHistory(0);
  }

  private self(): Member | null {
    const id = this.mirror.connectionId;
    if (!id) return null;
    const w = this.mirror.welcome;
    return member({
      connection_id: id, user_id: this.userIdValue ?? w.user_id, client: this.o.client, role: w.role, device_id: w.device_id,
    });
  }

  private setFloor(next: VoiceFloor): void {
    const was = this.floorValue;
    this.floorValue = next; // its seq, at least
    if (next === was || (next.mine === was.mine && next.holder?.connection_id === was.holder?.connection_id
      && next.holder?.device_id === was.holder?.device_id)) return;
    this.emit('floor', next);
  }

  private fold(frames: Frame[]): void {
    const next = addFrames(this.conv, frames);
    if (next !== this.conv) {
      this.conv = next;
      this.emit('conversation', next);
    }
  }

  /** The session's conversation so far, page by page (docs/protocol.md section 4, get_history). */
  private async loadHistory(after: number): Promise<void> {
    let cursor = after;
    for (let n = 0; n < HISTORY_LIMIT / HISTORY_PAGE; n += 1) {
      let page: Frame;
      try {
        page = await this.request({ type: 'get_history', after_seq: cursor, limit: HISTORY_PAGE });
      } catch {
        return; // dropped or refused: the next welcome asks again
      }
      if (!page.has_more || typeof page.next_after_seq !== 'number') return;
      cursor = page.next_after_seq;
    }
  }

  private async renewToken(): Promise<void> {
    try {
      const token = await renewalToken(this.o.token, this.reconnectToken);
      if (token) await this.request({ type: 'refresh', token });
    } catch {
      // the hub closes 4401 after its grace; the reconnect asks the token source again
    }
  }

  private stateChanged(frame: Frame): void {
    const reasons: Record<string, StateInfo['reason']> = { session_state: 'snapshot', resync_required: 'resync' };
    const info: StateInfo = { version: this.mirror.version, reason: reasons[frame.type] ?? 'patch', frame };
    if (frame.type === 'session_state_updated') info.patch = frame.patch;
    this.emit('state', this.mirror.state, info);
  }

  private rawSend(frame: Frame): void {
    const ws = this.ws;
    if (ws && this.welcomed && ws.readyState === OPEN) ws.send(JSON.stringify(frame));
  }

  private heartbeat(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return;
    if (Date.now() - this.lastFrameAt > this.o.idleTimeout) this.drop('idle_timeout');
    else ws.send(JSON.stringify({ type: 'ping' }));
  }

  private setStatus(next: Status, detail: Omit<StatusDetail, 'status'> = {}): void {
    this.statusValue = next;
    this.detail = { status: next, ...detail };
    this.emit('status', this.detail);
  }

  private emit<K extends EventName>(event: K, ...args: Parameters<Listeners[K]>): void {
    for (const fn of [...this.listeners[event]]) {
      try {
        (fn as (...a: Parameters<Listeners[K]>) => void)(...args);
      } catch (err) {
        // A bug in a listener must not kill the connection; report it asynchronously.
        setTimeout(() => { throw err; });
      }
    }
  }

  // ---------------------------------------------------------------- the browser's hints

  private readonly onOnline = (): void => {
    if (!this.done && !this.ws) void this.open();
  };

  private readonly onOffline = (): void => {
    if (!this.done && this.ws) this.drop('offline');
  };

  private readonly onVisible = (): void => {
    const doc = (globalThis as { document?: { visibilityState?: string } }).document;
    if (doc?.visibilityState !== 'visible' || this.done) return;
    if (this.retryTimer !== null) void this.open();
    else if (this.ws && Date.now() - this.lastFrameAt > this.o.pingInterval) this.heartbeat();
  };

  private watchWindow(on: boolean): void {
    const g = globalThis as { window?: EventTarget; document?: EventTarget };
    if (!this.o.watchNetwork || !g.window?.addEventListener || !g.document?.addEventListener) return;
    if (on === this.windowWatched) return;
    this.windowWatched = on;
    const method = on ? 'addEventListener' : 'removeEventListener';
    g.window[method]('online', this.onOnline);
    g.window[method]('offline', this.onOffline);
    g.document[method]('visibilitychange', this.onVisible);
  }
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}
