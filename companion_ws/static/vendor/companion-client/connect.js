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
/** The page's URL of the hub's socket: this origin's /ws. */
export function defaultUrl(loc = globalThis.location) {
    const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${loc.host}/ws`;
}
export function connect(options) {
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
    const controller = Object.freeze({
        client,
        send: (frame) => client.send(frame),
        updateState(patch, { expectedVersion } = {}) {
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
    if (options.onEvent)
        client.on('frame', (f) => options.onEvent(f, controller));
    if (options.onStatus)
        client.on('status', (d) => options.onStatus(d, controller));
    if (options.onState)
        client.on('state', (s, info) => options.onState(s, info, controller));
    queueMicrotask(() => { client.start().catch(() => { }); }); // callbacks start after connect() returned
    return controller;
}
