// auth.js: where the page's token comes from, and where it is kept.
//
//   /?token=JWT[&session_id=ID]   dev link printed by `companion-ws serve` ("owner")
//   /join?token=JOIN_TOKEN        one-time QR join token ("join"); the welcome's
//                                 reconnect_token replaces it ("device")
//
// The token lives in sessionStorage (this tab only) and is stripped from the
// address bar at once, so it is not bookmarked, shared or left in history.

const KEY = 'companion.auth';

export function loadAuth() {
  try {
    const value = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    return value && typeof value.token === 'string' && value.token ? value : null;
  } catch {
    return null;
  }
}

export function saveAuth(auth) {
  try {
    if (auth) sessionStorage.setItem(KEY, JSON.stringify(auth));
    else sessionStorage.removeItem(KEY);
  } catch {
    /* storage disabled: the page still works until it is reloaded */
  }
}

function isJoinPath(pathname) {
  return pathname.replace(/\/+$/, '').endsWith('/join');
}

// Read the address bar and storage; returns {kind, token, sessionId} or null.
export function bootstrapAuth(loc = location) {
  const params = new URLSearchParams(loc.search);
  const urlToken = params.get('token');
  const urlSession = params.get('session_id');
  let auth = loadAuth();
  if (urlToken) {
    auth = isJoinPath(loc.pathname)
      ? { kind: 'join', token: urlToken, sessionId: null }
      : { kind: 'owner', token: urlToken, sessionId: urlSession || linkSession(urlToken) };
    saveAuth(auth);
  } else if (auth && urlSession && auth.kind === 'owner' && urlSession !== auth.sessionId) {
    auth = { ...auth, sessionId: urlSession };
    saveAuth(auth);
  }
  if (urlToken) setAddress(auth?.kind === 'join' ? null : auth?.sessionId);
  return auth;
}

// After the welcome: remember the session, and swap a spent join token for the
// reconnect token the hub handed us.
export function rememberWelcome(auth, frame) {
  if (!auth) return auth;
  const next = { ...auth, sessionId: frame.session_id || auth.sessionId };
  if ((auth.kind === 'join' || auth.kind === 'device') && frame.reconnect_token) {
    next.kind = 'device';
    next.token = frame.reconnect_token;
  }
  saveAuth(next);
  if (next.kind === 'owner') rememberLinkSession(next.token, next.sessionId);
  setAddress(next.sessionId);
  return next;
}

// A link without a session_id, opened again (a second tab, the printed link once more):
// the session it opened last time on this browser, not one more empty session. Keyed by
// the token's user; the hub starts a new session if that one has ended.
const LINK_SESSION = 'companion.link-session.';

function subOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const sub = JSON.parse(atob(part)).sub;
    return typeof sub === 'string' && sub ? sub : null;
  } catch {
    return null;
  }
}

function linkSession(token) {
  const sub = subOf(token);
  try {
    return (sub && localStorage.getItem(LINK_SESSION + sub)) || null;
  } catch {
    return null;
  }
}

function rememberLinkSession(token, sessionId) {
  const sub = subOf(token);
  try {
    if (sub && sessionId) localStorage.setItem(LINK_SESSION + sub, sessionId);
  } catch {
    /* storage disabled: each open of the link starts a session, as before */
  }
}

// Put the page at "/?session_id=ID" (or "/"), keeping no token in the address bar.
export function setAddress(sessionId) {
  const params = new URLSearchParams(location.search);
  params.delete('token');
  if (sessionId) params.set('session_id', sessionId);
  else params.delete('session_id');
  const query = params.toString();
  const path = isJoinPath(location.pathname) && !sessionId ? location.pathname : '/';
  const next = `${path}${query ? `?${query}` : ''}${location.hash}`;
  if (next !== `${location.pathname}${location.search}${location.hash}`) {
    history.replaceState(history.state, '', next);
  }
}
