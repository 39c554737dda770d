// conversation.js: what the voice agent heard, said and did, as a model the page
// draws (docs/protocol.md section 13). Pure: no DOM, no socket, no clock.
//
//   let conv = emptyConversation();
//   conv = addFrames(conv, [frame, ...]);   // live frames, replays, get_history pages
//
// Frames may come in any order and more than once (a history page answered after the
// live frames that followed it, a replay overlapping what was seen): the model is the
// fold, in seq order, of every frame it was given, each seq once. Frames in order are
// folded one by one; a frame older than the newest seen refolds from the start.
//
// The model:
//   messages    [{message_id, role, text, final, corrected, earlier: [texts], sender,
//                 seq, timestamp, updated_seq}]   in order of first appearance; a later
//                 transcript with the same message_id replaces the text and final (a
//                 partial silently; a final message whose text changes is "corrected",
//                 its earlier wording kept); role, seq and timestamp stay the first
//                 transcript's. A transcript without every field of section 13 (role
//                 user or agent, message_id, text, final) is dropped whole.
//                 ui_state/conversation.py folds messages the same way:
//                 tests/fixtures/conversation holds both to it.
//   agentState  {state, seq, timestamp, sender} | null   the latest agent_state
//   progress    [{key, kind: 'step'|'tool', id, name, status: 'running'|'done'|'failed',
//                 detail, seq, started_at, ended_at, duration_ms, parent}]   by first
//                 appearance; a tool run started during a step has that step's key as
//                 its parent
//   lastSeq     the newest seq folded

export const CONVERSATION_TYPES = Object.freeze(new Set([
  'transcript', 'agent_state', 'step', 'tool_call_started', 'tool_call_finished',
]));

const ROLES = Object.freeze(['user', 'agent']);

// A transcript as section 13 has it: the fields the fold reads, each of its type.
export function isTranscript(f) {
  return f?.type === 'transcript' && ROLES.includes(f.role) && typeof f.message_id === 'string'
    && typeof f.text === 'string' && typeof f.final === 'boolean';
}

export const AGENT_STATES = Object.freeze(['idle', 'listening', 'thinking', 'speaking']);

// The frames kept for a refold (a frame older than the newest seen): the newest ones.
// The model itself keeps every message; only a refold would forget the oldest.
export const KEPT_FRAMES = 5000;

export function emptyConversation() {
  return Object.freeze({
    frames: Object.freeze([]), // the frames folded, by seq
    seqs: new Set(),
    messages: Object.freeze([]),
    agentState: null,
    progress: Object.freeze([]),
    lastSeq: 0,
  });
}

const isSeq = (v) => Number.isInteger(v) && v > 0;

// Fold `frames` into `conv`; returns `conv` itself when nothing in them is new.
export function addFrames(conv, frames) {
  const fresh = [];
  for (const f of frames) {
    if (!f || !CONVERSATION_TYPES.has(f.type) || !isSeq(f.seq)) continue;
    if (f.type === 'transcript' && !isTranscript(f)) continue;
    if (conv.seqs.has(f.seq) || fresh.some((g) => g.seq === f.seq)) continue;
    fresh.push(f);
  }
  if (fresh.length === 0) return conv;
  fresh.sort((a, b) => a.seq - b.seq);
  const seqs = new Set(conv.seqs);
  for (const f of fresh) seqs.add(f.seq);
  if (fresh[0].seq > conv.lastSeq) {
    return fold(conv, fresh, seqs, [...conv.frames, ...fresh]);
  }
  const all = [...conv.frames, ...fresh].sort((a, b) => a.seq - b.seq);
  return fold(emptyConversation(), all, seqs, all);
}

export function conversationFrom(frames) {
  return addFrames(emptyConversation(), frames);
}

function fold(base, frames, seqs, allFrames) {
  const messages = base.messages.slice();
  const byMessage = new Map(messages.map((m, i) => [m.message_id, i]));
  const progress = base.progress.slice();
  const byKey = new Map(progress.map((p, i) => [p.key, i]));
  let { agentState } = base;
  for (const f of frames) {
    switch (f.type) {
      case 'transcript': {
        const i = byMessage.get(f.message_id);
        if (i === undefined) {
          byMessage.set(f.message_id, messages.length);
          messages.push(newMessage(f));
        } else {
          messages[i] = revised(messages[i], f);
        }
        break;
      }
      case 'agent_state':
        if (AGENT_STATES.includes(f.state)) {
          agentState = Object.freeze({
            state: f.state, seq: f.seq, timestamp: f.timestamp ?? null, sender: f.sender ?? null,
          });
        }
        break;
      case 'step':
        track(progress, byKey, 'step', f.step_id, f, stepStatus(f.status), f.name);
        break;
      case 'tool_call_started':
        track(progress, byKey, 'tool', f.tool_call_id, f, 'running', f.tool_name, undefined,
          runningStep(progress));
        break;
      case 'tool_call_finished':
        track(progress, byKey, 'tool', f.tool_call_id, f, f.is_error ? 'failed' : 'done',
          f.tool_name, f.duration_ms);
        break;
      default:
        break;
    }
  }
  return Object.freeze({
    frames: Object.freeze(allFrames.length > KEPT_FRAMES ? allFrames.slice(-KEPT_FRAMES) : allFrames),
    seqs,
    messages: Object.freeze(messages),
    agentState,
    progress: Object.freeze(progress),
    lastSeq: Math.max(base.lastSeq, frames[frames.length - 1].seq),
  });
}

function newMessage(f) {
  return Object.freeze({
    message_id: f.message_id,
    role: f.role,
    text: f.text,
    final: f.final,
    corrected: false,
    earlier: Object.freeze([]),
    sender: f.sender ?? null,
    seq: f.seq,
    timestamp: f.timestamp ?? null,
    updated_seq: f.seq,
  });
}

// A later transcript of the same message: a partial grows, a final one is corrected.
// The role stays the first transcript's.
function revised(m, f) {
  const { text } = f;
  const correction = m.final && text !== m.text;
  return Object.freeze({
    ...m,
    text,
    final: f.final,
    corrected: m.corrected || correction,
    earlier: correction ? Object.freeze([...m.earlier, m.text]) : m.earlier,
    updated_seq: f.seq,
  });
}

function stepStatus(status) {
  if (status === 'done' || status === 'failed') return status;
  return 'running';
}

// The step under way (the latest one started and not ended): a tool run that starts
// now is part of it.
function runningStep(progress) {
  for (let i = progress.length - 1; i >= 0; i -= 1) {
    if (progress[i].kind === 'step' && progress[i].status === 'running') return progress[i].key;
  }
  return null;
}

function track(progress, byKey, kind, id, f, status, name, durationMs, parent = null) {
  if (typeof id !== 'string' || !id) return;
  const key = `${kind}:${id}`;
  const i = byKey.get(key);
  const at = f.timestamp ?? null;
  const ended = status !== 'running';
  if (i === undefined) {
    byKey.set(key, progress.length);
    progress.push(Object.freeze({
      key,
      kind,
      id,
      name: typeof name === 'string' && name ? name : id,
      status,
      detail: typeof f.detail === 'string' ? f.detail : null,
      seq: f.seq,
      started_at: ended ? null : at,
      ended_at: ended ? at : null,
      duration_ms: Number.isFinite(durationMs) ? durationMs : null,
      parent,
    }));
    return;
  }
  const p = progress[i];
  const startedAt = p.started_at ?? (ended ? null : at);
  let duration = Number.isFinite(durationMs) ? durationMs : p.duration_ms;
  if (ended && duration === null && startedAt !== null && at !== null) duration = Math.max(0, at - startedAt);
  progress[i] = Object.freeze({
    ...p,
    name: typeof name === 'string' && name ? name : p.name,
    status,
    detail: typeof f.detail === 'string' ? f.detail : p.detail,
    started_at: startedAt,
    ended_at: ended ? at : null,
    duration_ms: ended ? duration : null,
  });
}

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
