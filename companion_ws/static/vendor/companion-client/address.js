// address.ts: where and as whom the client connects (companion_ws/client/address.py).
//
// The token travels in the handshake, never the URL (proxies log URLs): the socket
// offers the subprotocols `companion.v1` and `bearer.<token>`, and the hub answers
// `companion.v1` (docs/protocol.md section 1).
export const SUBPROTOCOL = 'companion.v1';
export const BEARER_PREFIX = 'bearer.';
// RFC 7230 token characters: what a subprotocol value may hold (JWTs and join codes do).
const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** The subprotocols to offer for `token`; null when it cannot ride in one. */
export function handshake(token) {
    return TOKEN_CHARS.test(token) ? [SUBPROTOCOL, `${BEARER_PREFIX}${token}`] : null;
}
/** `ws://host:port` (or http/https, or a URL ending in /ws) -> `ws://host:port/ws`. */
export function wsBase(url, base) {
    const u = new URL(url, base);
    const scheme = { 'http:': 'ws:', 'https:': 'wss:' }[u.protocol] ?? u.protocol;
    if (scheme !== 'ws:' && scheme !== 'wss:')
        throw new TypeError(`not a ws:// or http:// URL: ${url}`);
    let path = u.pathname.replace(/\/+$/, '');
    if (!path.endsWith('/ws'))
        path += '/ws';
    return `${scheme}//${u.host}${path}`;
}
/** The URL of the next connect: the client's kind, its session, its device, and where it
 * left off (`last_seq`/`epoch`, when the mirror asks the hub to replay). */
export function connectUrl(base, client, sessionId, resume, deviceId = null) {
    const query = new URLSearchParams();
    if (sessionId !== null)
        query.set('session_id', sessionId);
    if (resume !== null) {
        query.set('last_seq', String(resume.lastSeq));
        query.set('epoch', resume.epoch);
    }
    query.set('client', client);
    if (deviceId)
        query.set('device_id', deviceId);
    return `${base}?${query}`;
}
async function call(source) {
    const value = typeof source === 'function' ? await source() : source;
    return value ? String(value) : null;
}
/** The token for the next connect: the source's, unless it is a one-time join token
 * already spent, in which case the welcome's `reconnect_token`. */
export async function currentToken(source, reconnectToken) {
    const token = await call(source);
    if (token !== null && reconnectToken !== null && isJoinToken(token))
        return reconnectToken;
    return token;
}
/** The token to renew an open connection with (docs/protocol.md section 12): the
 * source's when it is a function; else a joined device's own token; else null (a user's
 * reconnect token may not renew itself: the connection ends with its credential). */
export async function renewalToken(source, reconnectToken) {
    if (typeof source === 'function')
        return currentToken(source, reconnectToken);
    if (reconnectToken !== null && tokenType(reconnectToken) === 'device')
        return reconnectToken;
    return null;
}
/** A one-time join token: a join code (not a JWT: no dots), or a JWT with `typ: join`. */
export function isJoinToken(token) {
    return token.split('.').length !== 3 || tokenType(token) === 'join';
}
function tokenType(token) {
    const parts = token.split('.');
    if (parts.length !== 3)
        return null;
    try {
        const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
        const claims = JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
        const typ = claims?.typ;
        return typeof typ === 'string' ? typ : null;
    }
    catch {
        return null;
    }
}
