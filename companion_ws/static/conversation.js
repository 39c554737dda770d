// conversation.js: what the voice agent heard, said and did, as the page words it
// (docs/protocol.md section 13).
//
// The model itself (the fold of transcript, agent_state, step and tool_call_* frames,
// in seq order, each seq once) is @companion-ws/client's conversation.ts, vendored
// under vendor/companion-client/: the page, the package and ui_state/conversation.py
// are held to the same tests/fixtures/conversation. This module re-exports it and adds
// the page's words (agent status, progress titles, durations).

export {
  AGENT_STATES, CONVERSATION_TYPES, KEPT_FRAMES, addFrames, conversationFrom, emptyConversation, isTranscript,
  timeline,
} from './vendor/companion-client/index.js';

// ---- what the page says about the agent ------------------------------------------

const STATE_WORDS = {
  idle: { label: 'Idle', detail: 'The voice agent is waiting.' },
  listening: { label: 'Listening', detail: 'The voice agent is listening.' },
  thinking: { label: 'Thinking', detail: 'The voice agent is working on an answer.' },
  speaking: { label: 'Speaking', detail: 'The voice agent is speaking.' },
};

// The agent at a glance, from the latest agent_state and who is connected.
//   present: an agent connection is in the session now; live: this screen is connected.
// -> {kind: 'none'|'unknown'|'idle'|'listening'|'thinking'|'speaking', label, detail}
export function agentStatus(agentState, { present, live = true }) {
  if (!live) {
    return { kind: 'unknown', label: 'Agent: unknown', detail: 'Not connected to the session, so the voice agent’s state is not known.' };
  }
  if (!present) {
    return { kind: 'none', label: 'No agent', detail: 'No voice agent is connected to this session.' };
  }
  const s = agentState?.state;
  if (!STATE_WORDS[s]) {
    return { kind: 'idle', label: 'Agent ready', detail: 'A voice agent is connected.' };
  }
  return { kind: s, ...STATE_WORDS[s] };
}

// Is one of these presence entries a voice agent?
export function isAgent(member) {
  return member?.role === 'agent' || member?.client === 'agent';
}

// ---- progress words -------------------------------------------------------------------

const TOOL_WORDS = {
  get_shipping_quotes: 'Looking up shipping rates',
  create_shipping_label: 'Creating the shipping label',
};

export function humanize(name) {
  const raw = String(name ?? '');
  if (!/^[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*$/.test(raw)) return raw;
  const words = raw.replace(/[_-]/g, ' ');
  return words[0].toUpperCase() + words.slice(1);
}

export function progressTitle(p) {
  if (p.kind === 'tool') return TOOL_WORDS[p.name] || `Running ${p.name}`;
  return humanize(p.name);
}

// "120 ms", "1.4 s", "2 min 5 s"
export function formatDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

export function progressStatusText(p) {
  if (p.status === 'running') return 'Running…';
  const took = formatDuration(p.duration_ms);
  const word = p.status === 'failed' ? 'Failed' : 'Done';
  return took ? `${word} · ${took}` : word;
}
