// sessions.js: "Your sessions": the signed-in user's own sessions, and a button that
// restores an ended or expired one (docs/protocol.md section 13, Restore).
//
//   GET  /sessions                         -> {sessions: [{session_id, created_at,
//                                             last_activity_at, expires_at, ended_at,
//                                             end_reason, active, connections, seq, ...}]}
//   POST /sessions {"restore_from": ID}    -> the new session (as a create), plus
//                                             restored_from
// Both with `Authorization: Bearer <token>` (the owner's; a device joined by QR code may
// not list or create sessions, and the panel stays hidden for it).

import { h, replaceChildren } from './dom.js';
import { errorReason, formatFullTime, formatTime, parseTime } from './format.js';

const day = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

// The rows to draw, newest first: pure, for the tests.
export function sessionRows(sessions, currentId, now = Date.now()) {
  const list = Array.isArray(sessions) ? sessions.filter((s) => s && typeof s.session_id === 'string') : [];
  return list.map((s) => {
    const created = parseTime(s.created_at);
    const last = parseTime(s.last_activity_at ?? s.created_at);
    const expires = parseTime(s.expires_at);
    const ended = s.ended_at !== null && s.ended_at !== undefined;
    let status = 'live';
    if (ended) status = s.end_reason === 'expired' ? 'expired' : 'ended';
    else if (s.active === false || (Number.isFinite(expires) && expires <= now)) status = 'expired';
    const current = s.session_id === currentId;
    return {
      session_id: s.session_id,
      current,
      status,
      created,
      last,
      events: Number.isInteger(s.seq) ? s.seq : null,
      restoredFrom: typeof s.restored_from === 'string' ? s.restored_from : null,
      canRestore: status !== 'live', // this session too, once it has ended
      canOpen: !current && status === 'live',
    };
  }).sort((a, b) => (b.last || 0) - (a.last || 0));
}

const STATUS_WORDS = { live: 'Open', ended: 'Ended', expired: 'Expired' };

export function sessionTitle(row, now = Date.now()) {
  if (!Number.isFinite(row.created)) return 'Session';
  const sameDay = new Date(row.created).toDateString() === new Date(now).toDateString();
  return `${sameDay ? 'Today' : day.format(row.created)}, ${formatTime(row.created, { seconds: false })}`;
}

export function sessionDetail(row) {
  const parts = [STATUS_WORDS[row.status]];
  if (row.current) parts.unshift('This session');
  if (Number.isFinite(row.last)) parts.push(`last active ${formatTime(row.last, { seconds: false })}`);
  return parts.join(' · ');
}

export function createSessionsPanel(els, { getToken, getSessionId, isOwner, onOpen, onFailed }) {
  let loading = false;
  let generation = 0;

  els.refresh.addEventListener('click', () => load());

  function setError(message) {
    els.error.hidden = !message;
    els.error.textContent = message || '';
  }

  async function load() {
    const token = getToken();
    if (!token || !isOwner() || loading) {
      if (!isOwner()) els.card.hidden = true;
      return;
    }
    loading = true;
    const gen = ++generation;
    els.refresh.disabled = true;
    try {
      const res = await fetch('/sessions?limit=20', {
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      });
      if (gen !== generation) return;
      if (res.status === 401 || res.status === 403 || res.status === 404 || res.status === 405) {
        els.card.hidden = true; // this hub does not list a user's own sessions
        return;
      }
      if (!res.ok) throw new Error(await errorReason(res));
      const body = await res.json();
      if (gen !== generation) return;
      draw(sessionRows(body.sessions, getSessionId()));
      setError('');
      els.card.hidden = false;
    } catch (err) {
      if (gen !== generation) return;
      setError(`Could not list your sessions: ${err.message}`);
    } finally {
      if (gen === generation) {
        loading = false;
        els.refresh.disabled = false;
      }
    }
  }

  function draw(rows) {
    const now = Date.now();
    const shown = rows.slice(0, 8);
    replaceChildren(els.list, shown.map((row) => h('li', {
      class: `session-row is-${row.status}${row.current ? ' is-current' : ''}`,
      'data-testid': 'session-row',
      'data-session-id': row.session_id,
      'data-status': row.status,
    },
    h('span', { class: 'session-main' },
      h('span', { class: 'session-when', title: formatFullTime(row.created) }, sessionTitle(row, now)),
      h('span', { class: 'session-meta' }, sessionDetail(row))),
    row.canRestore
      ? h('button', {
        type: 'button',
        class: 'btn btn-small',
        'data-testid': 'restore-session',
        'aria-label': `Restore the session of ${sessionTitle(row, now)}`,
        onclick: (ev) => restore(row, ev.currentTarget),
      }, 'Restore')
      : null,
    row.canOpen
      ? h('button', {
        type: 'button',
        class: 'btn btn-small',
        'aria-label': `Open the session of ${sessionTitle(row, now)}`,
        onclick: () => onOpen(row.session_id, null),
      }, 'Open')
      : null)));
    if (shown.length === 0) els.list.append(h('li', { class: 'placeholder' }, 'No other sessions yet.'));
  }

  // Restore `row` (a session id will do); `button`, if any, shows that it is busy.
  async function restore(row, button = null) {
    const token = getToken();
    if (!token) return;
    if (typeof row === 'string') row = { session_id: row };
    if (button) {
      button.disabled = true;
      button.textContent = 'Restoring…';
    }
    setError('');
    try {
      const res = await fetch('/sessions', {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ restore_from: row.session_id }),
      });
      if (!res.ok) throw new Error(await errorReason(res));
      const body = await res.json();
      if (typeof body.session_id !== 'string') throw new Error('the hub answered no session');
      onOpen(body.session_id, body.restored_from ?? row.session_id);
    } catch (err) {
      setError(`Could not restore that session: ${err.message}`);
      onFailed?.(err.message);
      if (button) {
        button.disabled = false;
        button.textContent = 'Restore';
      }
    }
  }

  return {
    load,
    restore,
    reset() {
      generation += 1;
      loading = false;
      els.refresh.disabled = false;
      els.card.hidden = true;
      replaceChildren(els.list);
      setError('');
    },
  };
}
