// conversation.ts: what the voice agent heard, said and did, as a model a screen draws
// (docs/protocol.md section 13). Pure: no DOM, no socket, no clock.
//
//   let conv = emptyConversation();
//   conv = addFrames(conv, [frame, ...]);   // live frames, replays, get_history pages
//
// Frames may come in any order and more than once (a history page answered after the
// live frames that followed it, a replay overlapping what was seen): the model is the
// fold, in seq order, of every frame it was given, each seq once. Frames in order are
// folded one by one; a frame older than the newest seen refolds from the start.
//
//   messages    in order of first appearance; a later transcript with the same
//               message_id replaces the text and final (a partial silently; a final
//               message whose text changes is "corrected", its earlier wording kept);
//               role, seq and timestamp stay the first transcript's. A transcript
//               without every field of section 13 is dropped whole.
//               ui_state/conversation.py folds messages the same way:
//               tests/fixtures/conversation holds both to it.
//   agentState  the latest agent_state, or null
//   progress    steps and tool runs by first appearance; a tool run started during a
//               step has that step's key as its parent
//   voiceMoves  where the voice moved (section 17): a voice_floor event whose holder
//               is a device other than the one before it, as
//               {kind: 'voice_moved', from, to, seq, timestamp} (`from` null: the voice
//               started there); a release, an end, or the same device taking it again
//               from a new connection moves nothing. timeline(conv) puts them among
//               the messages, in seq order. ui_state/conversation.py marks the same
//               moves (tests/fixtures/conversation/voice_moved.json).
//   lastSeq     the newest seq folded
export const CONVERSATION_TYPES = Object.freeze(new Set(['transcript', 'agent_state', 'step', 'tool_call_started', 'tool_call_finished', 'voice_floor']));
export const AGENT_STATES = Object.freeze(['idle', 'listening', 'thinking', 'speaking']);
const ROLES = Object.freeze(['user', 'agent']);
/** A transcript as section 13 has it: the fields the fold reads, each of its type. */
export function isTranscript(f) {
    return f?.type === 'transcript' && typeof f.role === 'string' && ROLES.includes(f.role)
        && typeof f.message_id === 'string' && typeof f.text === 'string' && typeof f.final === 'boolean';
}
/** The frames kept for a refold (a frame older than the newest seen): the newest ones.
 * The model itself keeps every message; only a refold would forget the oldest. */
export const KEPT_FRAMES = 5000;
export function emptyConversation() {
    return Object.freeze({
        frames: Object.freeze([]),
        seqs: new Set(),
        messages: Object.freeze([]),
        agentState: null,
        progress: Object.freeze([]),
        voiceMoves: Object.freeze([]),
        lastSeq: 0,
    });
}
const isSeq = (v) => Number.isInteger(v) && v > 0;
/** Fold `frames` into `conv`; returns `conv` itself when nothing in them is new. */
export function addFrames(conv, frames) {
    const fresh = [];
    for (const f of frames) {
        if (!f || !CONVERSATION_TYPES.has(f.type) || !isSeq(f.seq))
            continue;
        if (f.type === 'transcript' && !isTranscript(f))
            continue;
        const seq = f.seq;
        if (conv.seqs.has(seq) || fresh.some((g) => g.seq === seq))
            continue;
        fresh.push(f);
    }
    if (fresh.length === 0)
        return conv;
    fresh.sort((a, b) => a.seq - b.seq);
    const seqs = new Set(conv.seqs);
    for (const f of fresh)
        seqs.add(f.seq);
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
    const moves = base.voiceMoves.slice();
    for (const f of frames) {
        switch (f.type) {
            case 'transcript': {
                const t = f;
                const i = byMessage.get(t.message_id);
                if (i === undefined) {
                    byMessage.set(t.message_id, messages.length);
                    messages.push(newMessage(t));
                }
                else {
                    messages[i] = revised(messages[i], t);
                }
                break;
            }
            case 'agent_state':
                if (AGENT_STATES.includes(f.state)) {
                    agentState = Object.freeze({
                        state: f.state, seq: f.seq, timestamp: num(f.timestamp), sender: str(f.sender),
                    });
                }
                break;
            case 'step':
                track(progress, byKey, 'step', f.step_id, f, stepStatus(f.status), f.name);
                break;
            case 'tool_call_started':
                track(progress, byKey, 'tool', f.tool_call_id, f, 'running', f.tool_name, undefined, runningStep(progress));
                break;
            case 'tool_call_finished':
                track(progress, byKey, 'tool', f.tool_call_id, f, f.is_error ? 'failed' : 'done', f.tool_name, f.duration_ms);
                break;
            case 'voice_floor':
                if (typeof f.device_id === 'string' && f.device_id !== f.previous_device_id) {
                    moves.push(Object.freeze({
                        kind: 'voice_moved', from: str(f.previous_device_id), to: f.device_id, seq: f.seq, timestamp: num(f.timestamp),
                    }));
                }
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
        voiceMoves: moves.length === base.voiceMoves.length ? base.voiceMoves : Object.freeze(moves),
        lastSeq: Math.max(base.lastSeq, frames[frames.length - 1].seq),
    });
}
/** The messages and the marks where the voice moved, in seq order (a message at its
 * first transcript's seq), as a transcript shows them. */
export function timeline(conv) {
    const out = [];
    let i = 0;
    for (const m of conv.messages) {
        while (i < conv.voiceMoves.length && conv.voiceMoves[i].seq < m.seq)
            out.push(conv.voiceMoves[i++]);
        out.push(m);
    }
    while (i < conv.voiceMoves.length)
        out.push(conv.voiceMoves[i++]);
    return out;
}
const num = (v) => (typeof v === 'number' ? v : null);
const str = (v) => (typeof v === 'string' ? v : null);
function newMessage(f) {
    return Object.freeze({
        message_id: f.message_id,
        role: f.role,
        text: f.text,
        final: f.final,
        corrected: false,
        earlier: Object.freeze([]),
        sender: str(f.sender),
        seq: f.seq,
        timestamp: num(f.timestamp),
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
    if (status === 'done' || status === 'failed')
        return status;
    return 'running';
}
// The step under way (the latest one started and not ended): a tool run that starts
// now is part of it.
function runningStep(progress) {
    for (let i = progress.length - 1; i >= 0; i -= 1) {
        const p = progress[i];
        if (p.kind === 'step' && p.status === 'running')
            return p.key;
    }
    return null;
}
function track(progress, byKey, kind, id, f, status, name, durationMs, parent = null) {
    if (typeof id !== 'string' || !id)
        return;
    const key = `${kind}:${id}`;
    const i = byKey.get(key);
    const at = num(f.timestamp);
    const ended = status !== 'running';
    const given = typeof durationMs === 'number' && Number.isFinite(durationMs) ? durationMs : null;
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
            duration_ms: given,
            parent,
        }));
        return;
    }
    const p = progress[i];
    const startedAt = p.started_at ?? (ended ? null : at);
    let duration = given ?? p.duration_ms;
    if (ended && duration === null && startedAt !== null && at !== null)
        duration = Math.max(0, at - startedAt);
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
