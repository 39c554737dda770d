// activity.js: the "Live activity" feed's words, and the names of who is in the
// session. Pure: frames and presence entries in, plain objects out.
//
// The feed says who did what and when: events (contextual_update), state changes a
// person cares about (a quote picked, a task started or finished), and people coming
// and going. What the conversation panel shows (transcripts, agent state, steps,
// tool runs) and housekeeping (a screen's saved scroll position) stay out of it.

import { eventTitle, formatDays, formatMoney, formatWeight, summarizeData } from './format.js';

// ---- who ------------------------------------------------------------------------

// kind: self | agent | backend | owner | companion | observer | admin | other | server
// `me`: this screen's connection id, or {connectionId, deviceId} (a reloaded page is a
// new connection of the same device).
export function memberKind(m, me) {
  const { connectionId, deviceId } = typeof me === 'object' && me !== null ? me : { connectionId: me };
  if (m?.connection_id && m.connection_id === connectionId) return 'self';
  if (m?.device_id && deviceId && m.device_id === deviceId) return 'self';
  if (m?.role === 'agent' || m?.client === 'agent') return 'agent';
  if (m?.role === 'service' || m?.client === 'backend') return 'backend';
  if (['owner', 'companion', 'observer', 'admin'].includes(m?.role)) return m.role;
  return 'other';
}

const NAMES = {
  self: 'This screen',
  agent: 'Voice agent',
  backend: 'Backend',
  owner: 'Owner’s screen',
  companion: 'Screen joined by QR',
  observer: 'Viewer joined by QR',
  admin: 'Admin',
  other: 'Another screen',
  server: 'Hub',
};

const ROLE_WORDS = {
  self: 'You are here',
  agent: 'Hears you, runs the tools',
  backend: 'A service publishing to the session',
  owner: 'Signed in as the session’s owner',
  companion: 'Can pick options',
  observer: 'Can watch, not change',
  admin: 'An operator',
  other: '',
};

export function memberName(m, myConnectionId) {
  return NAMES[memberKind(m, myConnectionId)];
}

// One presence row: {kind, name, detail}; never a raw id.
export function describeMember(m, myConnectionId) {
  const kind = memberKind(m, myConnectionId);
  let detail = ROLE_WORDS[kind];
  if (kind === 'self') {
    detail = { owner: 'Session owner', companion: 'Joined by QR code', observer: 'Joined by QR code, read only' }[m.role]
      || (m.role === 'agent' ? 'Voice agent' : 'This screen');
  }
  return { kind, name: NAMES[kind], detail };
}

// Who sent a frame, from this screen's point of view: {kind, label}.
export function describeSender(sender, { myConnectionId, myDeviceId, members }) {
  if (!sender) return { kind: 'server', label: NAMES.server };
  if (sender === myConnectionId) return { kind: 'self', label: NAMES.self };
  const m = members.get(sender);
  if (m) {
    const kind = memberKind(m, { connectionId: myConnectionId, deviceId: myDeviceId });
    return { kind, label: NAMES[kind] };
  }
  if (isBackendSender(sender)) return { kind: 'backend', label: NAMES.backend };
  return { kind: 'other', label: NAMES.other };
}

// Events from a backend name no connection (docs/backends.md): gRPC's "backend:<sub>",
// REST's "<role>:<sub>" ("service:billing") and "http", the bus's "bus". A connection id
// never has a colon; "elevenlabs:..." is the voice agent's server tools and webhook.
const BACKEND_PREFIXES = ['backend:', 'service:', 'owner:', 'admin:', 'grpc:'];
export function isBackendSender(sender) {
  if (typeof sender !== 'string') return false;
  return sender === 'http' || sender === 'bus' || BACKEND_PREFIXES.some((p) => sender.startsWith(p));
}

// ---- what happened ------------------------------------------------------------------

// The feed's entries for one broadcast frame (often none), given the tasks known
// before it (for "started" / "completed"). Each: {seq, timestamp, kind, who, title,
// detail, data}. `who` is {kind, label}.
export function activityEntries(frame, ctx, tasksBefore = []) {
  const base = { seq: frame.seq ?? null, timestamp: frame.timestamp ?? null };
  switch (frame.type) {
    case 'contextual_update': {
      const who = describeSender(frame.sender, ctx);
      return [{ ...base, kind: 'update', who, title: eventTitle(frame.text), ...updateDetail(frame), }];
    }
    case 'session_state_updated':
      return stateEntries(frame, ctx, tasksBefore).map((e) => ({ ...base, kind: 'state', ...e }));
    case 'client_joined':
    case 'client_left': {
      const kind = memberKind(frame, { connectionId: ctx.myConnectionId, deviceId: ctx.myDeviceId });
      if (kind === 'self') return []; // this screen's own comings and goings
      const verb = frame.type === 'client_joined' ? 'joined' : 'left';
      return [{
        ...base, kind: 'presence', who: { kind, label: NAMES[kind] }, title: `${NAMES[kind]} ${verb}`, detail: '',
      }];
    }
    case 'session_ended':
      return [{ ...base, kind: 'presence', who: { kind: 'server', label: NAMES.server }, title: 'The session ended', detail: '' }];
    default:
      return [];
  }
}

function updateDetail(frame) {
  const d = frame.data;
  if (frame.text === 'quote_ready' && Array.isArray(d?.quotes)) {
    const s = d.shipping_details || {};
    const n = d.quotes.length;
    const route = s.from && s.to ? ` · ${s.from} → ${s.to}` : '';
    const weight = s.weight_lbs !== undefined ? ` · ${formatWeight(s.weight_lbs)}` : '';
    return { detail: `${n === 1 ? '1 rate' : `${n} rates`}${route}${weight}`, data: null };
  }
  if (frame.text === 'label_created' && d?.label) {
    const l = d.label;
    return { detail: [l.carrier && `${l.carrier} ${l.service ?? ''}`.trim(), l.tracking_number && `tracking ${l.tracking_number}`].filter(Boolean).join(' · '), data: null };
  }
  return { detail: summarizeData(d), data: d };
}

// Keys the feed leaves to other parts of the page: the tools' results are announced by
// their own events, and ui.* is each screen's housekeeping.
const QUIET_KEYS = new Set(['ui', 'quotes', 'shipping_details', 'label']);

function stateEntries(frame, ctx, tasksBefore) {
  const patch = frame.patch;
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return [];
  const who = describeSender(frame.sender, ctx);
  const out = [];
  // (a label also sets selected_option: the rate it was made for, announced by its event)
  if ('selected_option' in patch && !('label' in patch)) {
    const q = patch.selected_option;
    if (q && typeof q === 'object') {
      const name = `${q.carrier ?? ''} ${q.service ?? ''}`.trim() || 'a rate';
      out.push({
        who, title: `${who.label} picked ${name}`, detail: [formatMoney(q.cost), formatDays(q.days)].filter(Boolean).join(' · '),
      });
    } else if (!('quotes' in patch)) {
      out.push({ who, title: `${who.label} cleared the choice of rate`, detail: '' });
    }
  }
  if (Array.isArray(patch.tasks)) {
    for (const change of taskChanges(tasksBefore, patch.tasks)) out.push({ who, ...change });
  }
  const other = Object.keys(patch).filter((k) => !QUIET_KEYS.has(k) && k !== 'selected_option' && k !== 'tasks');
  if (other.length) out.push({ who, title: `${who.label} changed ${other.join(', ')}`, detail: '' });
  return out;
}

const TASK_VERBS = { active: 'started', completed: 'completed', abandoned: 'abandoned' };

export function taskChanges(before, after) {
  const known = new Map((before || []).map((t) => [t?.task_id, t?.status]));
  const out = [];
  for (const t of after || []) {
    if (!t || !TASK_VERBS[t.status] || known.get(t.task_id) === t.status) continue;
    const resumed = t.status === 'active' && known.get(t.task_id) === 'abandoned';
    out.push({ title: `Task ${resumed ? 'resumed' : TASK_VERBS[t.status]}: ${taskName(t)}`, detail: '' });
  }
  return out;
}

export function taskName(t) {
  const n = String(t?.name ?? 'task');
  return n ? n[0].toUpperCase() + n.slice(1).replace(/_/g, ' ') : 'Task';
}

// The tasks for the page: the active one, then the others newest first.
export function taskView(tasks) {
  const list = Array.isArray(tasks) ? tasks.filter((t) => t && typeof t === 'object') : [];
  const active = list.filter((t) => t.status === 'active');
  const done = list.filter((t) => t.status !== 'active')
    .sort((a, b) => (b.ended_at ?? b.started_at ?? 0) - (a.ended_at ?? a.started_at ?? 0));
  return { active: active[active.length - 1] || null, others: done, count: list.length };
}

// The feed from every broadcast frame known, newest first, at most `limit` entries.
// `frames` may be in any order; the tasks a state change is compared with are the
// ones the frames before it left.
export const FEED_TYPES = Object.freeze(new Set([
  'contextual_update', 'session_state_updated', 'client_joined', 'client_left', 'session_ended',
]));

export function feedFrom(frames, ctx, limit = 200) {
  const sorted = frames.filter((f) => f && FEED_TYPES.has(f.type) && Number.isInteger(f.seq))
    .sort((a, b) => a.seq - b.seq);
  let tasks = [];
  const entries = [];
  for (const f of sorted) {
    entries.push(...activityEntries(f, ctx, tasks));
    if (f.type === 'session_state_updated' && Array.isArray(f.patch?.tasks)) tasks = f.patch.tasks;
  }
  return entries.reverse().slice(0, limit);
}
