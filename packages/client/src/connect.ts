// connect.ts: the hub's page's controller over a CompanionClient (the page's own
// callbacks-and-getters shape, kept so static/app.js and talk.js need no rewrite).
//
//   import { connect } from '/static/vendor/companion-client/index.js';
//   const hub = connect({ getToken: async () => jwt, onEvent, onStatus, onState });
//
// Everything it does is CompanionClient's; only the shape differs: send() and
// updateState() return the requestId at once (the reply comes as an event), and
// state/version are null until the state is known.

import { CompanionClient } from './client.js';
import type { StateInfo, Status, StatusDetail, WebSocketConstructor } from './client.js';
import type { JsonObject } from './merge-patch.js';
import type { Frame, Phase } from './mirror.js';
import type { Member } from './presence.js';

export interface ConnectOptions {
  getToken: () => string | null | undefined | Promise<string | null | undefined>;
  url?: string;
  sessionId?: string | null;
  deviceId?: string | null;
  client?: string;
  WebSocket?: WebSocketConstructor;
  backoffBase?: number;
  backoffMax?: number;
  pingInterval?: number;
  idleTimeout?: number;
  outboxLimit?: number;
  onEvent?: (frame: Frame, hub: Controller) => void;
  onStatus?: (detail: StatusDetail, hub: Controller) => void;
  onState?: (state: Readonly<JsonObject>, info: StateInfo, hub: Controller) => void;
}

export interface Controller {
  readonly client: CompanionClient;
  send(frame: Frame): string | null;
  updateState(patch: JsonObject, options?: { expectedVersion?: number }): string | null;
  refresh(): string | null;
  reconnect(): void;
  close(): void;
  readonly state: Readonly<JsonObject> | null;
  readonly version: number | null;
  readonly seq: number;
  readonly epoch: string | null;
  readonly phase: Phase;
  readonly feed: readonly Frame[];
  readonly sessionId: string | null;
  readonly connectionId: string | null;
  readonly userId: string | null;
  readonly status: Status;
  readonly statusDetail: StatusDetail;
  readonly presence: readonly Member[];
}

/** The page's URL of the hub's socket: this origin's /ws. */
export function defaultUrl(loc: { protocol: string; host: string } = (globalThis as unknown as { location: Location }).location): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

export function connect(options: ConnectOptions): Controller {
  if (typeof options?.getToken !== 'function') {
    throw new TypeError('connect(): getToken must be a function returning a token');
  }
  const client = new CompanionClient(options.url ?? defaultUrl(), {
    token: options.getToken,
    sessionId: options.sessionId ?? null,
    deviceId: options.deviceId ?? null,
    client: options.client ?? 'ui',
    ...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
    ...(options.backoffBase !== undefined ? { backoffInitial: options.backoffBase } : {}),
    ...(options.backoffMax !== undefined ? { backoffMax: options.backoffMax } : {}),
    ...(options.pingInterval !== undefined ? { pingInterval: options.pingInterval } : {}),
    ...(options.idleTimeout !== undefined ? { idleTimeout: options.idleTimeout } : {}),
    ...(options.outboxLimit !== undefined ? { outboxLimit: options.outboxLimit } : {}),
    loadHistory: false, // the page reads history itself, page by page, as it scrolls
  });
  const controller: Controller = Object.freeze({
    client,
    send: (frame: Frame) => client.send(frame),
    updateState(patch: JsonObject, { expectedVersion }: { expectedVersion?: number } = {}) {
      return client.send(client.updateFrame(patch, expectedVersion));
    },
    refresh: () => client.send({ type: 'get_session_state' }),
    reconnect: () => client.reconnect(),
    close: () => { void client.close(); },
    get state() { return client.synced ? client.state : null; },
    get version() { return client.synced ? client.version : null; },
    get seq() { return client.seq; },
    get epoch() { return client.epoch; },
    get phase() { return client.phase; },
    get feed() { return client.feed; },
    get sessionId() { return client.sessionId; },
    get connectionId() { return client.connectionId; },
    get userId() { return client.userId; },
    get status() { return client.status; },
    get statusDetail() { return client.statusDetail; },
    get presence() { return client.presence; },
  });
  if (options.onEvent) client.on('frame', (f) => options.onEvent!(f, controller));
  if (options.onStatus) client.on('status', (d) => options.onStatus!(d, controller));
  if (options.onState) client.on('state', (s, info) => options.onState!(s, info, controller));
  queueMicrotask(() => { client.start().catch(() => {}); }); // callbacks start after connect() returned
  return controller;
}
