// admin-events.js: pure helpers for the operator's page. One line of words for any
// broadcast event, the tasks of a session's state, and "12 s ago". No DOM.

import { eventTitle, summarizeData } from './format.js';

function keys(obj) {
  return obj && typeof obj === 'object' && !Array.isArray(obj) ? Object.keys(obj) : [];
}

function who(frame) {
  const parts = [frame.user_id, frame.client, frame.role].filter(Boolean);
  return parts.join(' · ');
}

function clip(text, max = 120) {
  const s = String(text ?? '');
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

// A short summary of a broadcast event (docs/protocol.md sections 2 and 13).
export function summarizeEvent(frame) {
  switch (frame.type) {
    case 'contextual_update': {
      const data = summarizeData(frame.data, 3);
      return clip(data ? `${eventTitle(frame.text)} — ${data}` : eventTitle(frame.text));
    }
    case 'session_state_updated': {
      const changed = keys(frame.patch);
      const list = changed.length ? changed.join(', ') : 'nothing';
      return clip(`v${frame.version ?? '?'} · ${list}`);
    }
    case 'client_joined':
    case 'client_left':
      return who(frame) || frame.connection_id || '';
    case 'transcript':
      return clip(`${frame.role === 'agent' ? 'Agent' : 'User'}: ${frame.text ?? ''}`);
    case 'agent_state':
      return String(frame.state ?? '');
    case 'step':
      return clip(`${frame.name ?? frame.step_id ?? 'step'} · ${frame.status ?? ''}`);
    case 'tool_call_started':
      return String(frame.tool_name ?? '');
    case 'tool_call_finished': {
      const took = Number.isFinite(frame.duration_ms) ? ` · ${Math.round(frame.duration_ms)} ms` : '';
      return `${frame.tool_name ?? ''}${frame.is_error ? ' · failed' : ''}${took}`;
    }
    case 'device_revoked':
      return String(frame.device_id ?? '');
    case 'session_ended':
      return String(frame.reason ?? '');
    default:
      return clip(summarizeData(Object.fromEntries(Object.entries(frame).filter(
        ([k]) => !['type', 'seq', 'session_id', 'timestamp', 'requestId'].includes(k),
      )), 3));
  }
}

// Whether an event reads as trouble in the tail (a failed tool, an error frame).
export function isTrouble(frame) {
  return (frame.type === 'tool_call_finished' && Boolean(frame.is_error))
    || frame.type === 'error' || frame.type === 'session_ended' || frame.type === 'device_revoked';
}

// "2 tasks · shipment active" from the state's `tasks` (docs/protocol.md section 13);
// null when the state keeps none.
export function describeTasks(state) {
  const tasks = state?.tasks;
  if (!Array.isArray(tasks) || tasks.length === 0) return null;
  const active = tasks.filter((t) => t && t.status === 'active');
  const latest = active[active.length - 1] || tasks[tasks.length - 1] || {};
  const count = tasks.length === 1 ? '1 task' : `${tasks.length} tasks`;
  const name = latest.name ? `${latest.name} ${latest.status ?? ''}`.trim() : latest.status ?? '';
  return name ? `${count} · ${name}` : count;
}

// "just now", "12 s ago", "4 min ago", "3 h ago", "2 d ago"
export function ago(ms, now = Date.now()) {
  const t = Number(ms);
  if (!Number.isFinite(t) || t <= 0) return '—';
  const s = Math.max(0, Math.round((now - (t < 1e12 ? t * 1000 : t)) / 1000));
  if (s < 3) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}
