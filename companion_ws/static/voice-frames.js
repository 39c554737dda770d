// voice-frames.js: what the voice conversation looks like on the screens: ElevenLabs'
// conversation events in, docs/protocol.md section 13 frames (`transcript`, `agent_state`)
// out. Pure: no DOM, no socket, no SDK. A port of
// companion_ws/integrations/voice_frames.py (its docstring has the table); both run the
// fixtures in tests/fixtures/voice. talk.js feeds it what the browser client reports
// and publishes what it returns, in order.
//
//   const frames = new ConversationFrames({ newId });   // one per conversation
//   publish(frames.userSaid('Ship a box'));   // -> [transcript, agent_state thinking]
//
//   ready()                     conversation ready: listening
//   userPartial(text)           tentative_user_transcript: the user's turn so far
//                               (final false); listening if the agent was speaking
//   userSaid(text)              user_transcript: final, the same message_id as its
//                               tentative ones; then thinking
//   toolCall()                  client_tool_call: thinking
//   agentPart(text, kind)       agent_chat_response_part start/delta/stop: one agent
//                               message, partial until stop
//   agentSaid(text)             agent_response: speaking, then the agent's message
//                               (the streamed one's id if parts came first)
//   corrected(original, text)   agent_response_correction: the interrupted message
//                               (the latest agent message whose text is the original)
//                               gets the corrected text
//   interrupted()               interruption: listening
//   mode(mode)                  the client's onModeChange (audio playback): speaking;
//                               listening unless thinking
//   ended()                     conversation over: idle
//
// An agent_state is returned only when the state changes.

const REMEMBERED = 32; // agent messages kept to find a correction's original

function randomHex(length) {
  const bytes = new Uint8Array(Math.ceil(length / 2));
  globalThis.crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('').slice(0, length);
}

// `user_3f9a…`, as the Python bridge names its messages.
export function randomId(prefix) {
  return `${prefix}_${randomHex(12)}`;
}

export class ConversationFrames {
  // transcripts: false leaves the transcripts out and keeps the agent's state.
  // newId(prefix): a new message id ('user' or 'agent' prefix).
  constructor({ transcripts = true, newId = randomId } = {}) {
    this.transcripts = transcripts;
    this.newId = newId;
    this.state = null; // 'idle' | 'listening' | 'thinking' | 'speaking' | null
    this.userId = null; // the user's turn in progress (tentative)
    this.partId = null; // the agent message being streamed in parts
    this.partText = '';
    this.agent = []; // [message_id, text], newest last
  }

  // ---- the agent's state ------------------------------------------------------------

  setState(state) {
    if (state === this.state) return [];
    this.state = state;
    return [{ type: 'agent_state', state }];
  }

  ready() {
    return this.setState('listening');
  }

  interrupted() {
    return this.setState('listening');
  }

  toolCall() {
    return this.setState('thinking');
  }

  ended() {
    return this.setState('idle');
  }

  mode(mode) {
    if (mode === 'speaking') return this.setState('speaking');
    if (this.state === 'thinking') return []; // its speech ended, its work did not
    return this.setState('listening');
  }

  // ---- the user ---------------------------------------------------------------------

  transcript(role, messageId, text, final) {
    if (!this.transcripts) return [];
    return [{ type: 'transcript', role, message_id: messageId, text, final }];
  }

  userPartial(text) {
    if (this.userId === null) this.userId = this.newId('user');
    const frames = this.state === 'speaking' ? this.setState('listening') : [];
    return [...frames, ...this.transcript('user', this.userId, text, false)];
  }

  userSaid(text) {
    const messageId = this.userId ?? this.newId('user');
    this.userId = null;
    return [...this.transcript('user', messageId, text, true), ...this.setState('thinking')];
  }

  // ---- the agent --------------------------------------------------------------------

  agentPart(text, kind) {
    if (kind === 'start' || this.partId === null) {
      this.partId = this.newId('agent');
      this.partText = '';
    }
    if (kind === 'start' && !text) return [];
    if (kind !== 'stop') this.partText += text;
    return [...this.setState('speaking'),
      ...this.transcript('agent', this.partId, this.partText, kind === 'stop')];
  }

  agentSaid(text) {
    const messageId = this.partId ?? this.newId('agent');
    this.partId = null;
    this.partText = '';
    this.remember(messageId, text);
    return [...this.setState('speaking'), ...this.transcript('agent', messageId, text, true)];
  }

  corrected(original, corrected) {
    const wanted = original.trim();
    let found = null;
    for (let i = this.agent.length - 1; i >= 0; i -= 1) {
      if (this.agent[i][1].trim() === wanted) {
        [found] = this.agent[i];
        break;
      }
    }
    const messageId = found ?? this.agent.at(-1)?.[0] ?? this.newId('agent');
    this.remember(messageId, corrected);
    return this.transcript('agent', messageId, corrected, true);
  }

  remember(messageId, text) {
    this.agent = this.agent.filter(([id]) => id !== messageId);
    this.agent.push([messageId, text]);
    if (this.agent.length > REMEMBERED) this.agent.splice(0, this.agent.length - REMEMBERED);
  }
}
