// talk.js: "Talk to the agent" (docs/protocol.md section 14). The voice conversation runs in
// this page with ElevenLabs' official browser client (vendored under /static/vendor/,
// loaded only when the owner presses Talk), and every screen of the session follows it.
//
//   const talk = createTalk(root, { getToken, isOwner });
//   hub = connect(talk.observe({ getToken, onEvent, onStatus, onState, ... }));
//   talk.attach(hub);
//
// - The hub signs the conversation (POST /sessions/{id}/elevenlabs/conversation): a
//   signed URL, the session's capability for the `session_id` dynamic variable, and the
//   tools. The ElevenLabs API key never reaches the page.
// - Every tool becomes a client tool that runs through this page's hub socket
//   (`client_tool_call` with the agent's own tool_call_id, so a repeat runs once). A
//   call waits for a dropped hub socket to come back (within the tool's
//   response_timeout_secs), and is sent again on the new connection with the same id.
// - The conversation is published to the session as section 13 frames (`transcript`,
//   `agent_state`); every page, phones included, draws them in this card. The mapping
//   from the client's events to frames is voice-frames.js (the port of the Python
//   bridge's, held to it by tests/fixtures/voice); this file only adapts the browser
//   client's callbacks to it.
// - What others do on the screens reaches the agent as `contextual_update`s, in the
//   bridge's words (narration.js); after the page's hub socket comes back, one summary
//   of what it missed. Each (re)start of the conversation begins with the session's
//   summary, so the agent picks up where the session stands.
// - The voice floor (docs/protocol.md section 17): one screen holds the conversation.
//   Who holds it is the client package's (hub.client.voiceFloor, floor.ts: the rule both
//   clients share); this card only draws it and acts on it. Every screen that can talk (owner, companion) offers "Talk here";
//   pressing it takes the floor (`take_voice`) and starts this screen's conversation,
//   whose first contextual update is the session's summary and last exchanges, so the
//   agent carries on mid-task; the screen that held it ends its own at once. Interrupt,
//   mute and end, on every screen, are `agent_control`s that the holder applies.

import { h } from './dom.js';
import { createSessionContext, describeChange, describeUpdate } from './narration.js';
import { ConversationFrames } from './voice-frames.js';

const VENDOR = '/static/vendor/elevenlabs-client';
const CLIENT_MODULE = `${VENDOR}/elevenlabs-client.js`;
// Served by the hub, so the client never builds blob:/data: worklets or uses a CDN
// (the page's CSP allows neither).
const AUDIO_FILES = Object.freeze({
  workletPaths: {
    rawAudioProcessor: `${VENDOR}/worklets/rawAudioProcessor.js`,
    audioConcatProcessor: `${VENDOR}/worklets/audioConcatProcessor.js`,
  },
  libsampleratePath: `${VENDOR}/libsamplerate.worklet.js`,
});
const AGENT_SENDER_PREFIX = 'elevenlabs:'; // the agent's own server tools and webhooks
const DEFAULT_TOOL_TIMEOUT = 20; // s, when the hub names none
const TRANSCRIPT_LIMIT = 50; // lines kept in the card

// What the card says in each state: [title, detail, button label or null].
const TEXT = {
  idle: ['Talk to the agent',
    'Speak with the voice agent from this page. Your browser will ask to use the '
    + 'microphone when you press Talk; what you say goes to ElevenLabs’ voice agent, '
    + 'and the conversation shows on every screen of this session.', 'Talk to the agent'],
  connecting: ['Connecting…', 'Opening a conversation with the voice agent.', 'Cancel'],
  listening: ['Listening', 'Speak now — the agent is listening.', 'End conversation'],
  thinking: ['Working on it', 'The agent is working on its answer.', 'End conversation'],
  speaking: ['Agent speaking', 'The agent is answering.', 'End conversation'],
  ended: ['Conversation ended', 'The conversation with the agent is over.', 'Talk again'],
  dropped: ['Conversation lost', '', 'Start again'],
  error: ['Could not start talking', '', 'Try again'],
  unavailable: ['Talking is not set up', '', null],
  unset: ['Connect a voice agent', 'No voice agent is set up for this hub yet. Whoever runs it '
    + 'can make one with “companion-ws elevenlabs provision” and set the lines it prints '
    + '(docs/elevenlabs.md).', null],
  // Screens that can talk while another holds the conversation.
  elsewhere: ['Voice on another screen', 'The conversation is held on another screen of this '
    + 'session. Talk here to carry it on from this one: the agent is told where things stand.', 'Talk here'],
  moved: ['The voice moved', 'The conversation moved to another screen and carries on there.', 'Talk here'],
  // Pages that do not hold the conversation: they follow it.
  following: ['Conversation', 'The voice conversation held on another screen shows here live.', null],
};
const RUNNING_TOOL = 'The agent is running a tool on this session.';
const LIVE = new Set(['connecting', 'listening', 'thinking', 'speaking']);
const AGENT_LIVE = new Set(['listening', 'thinking', 'speaking']); // the card follows these
const STATE_WORDS = { listening: 'Listening', thinking: 'Thinking', speaking: 'Speaking', idle: 'Idle' };

// The roles that may hold the voice floor (section 17), and the controls any screen sends.
const CAN_TALK = Object.freeze(new Set(['owner', 'companion', 'admin']));
const CONTROLS = Object.freeze(['interrupt', 'mute', 'unmute', 'end']);

// Whether this hub can sign a conversation (the hub writes it into the page).
const CONFIGURED = globalThis.document?.querySelector('meta[name="companion-talk"]')?.content === 'on';

export function createTalk(root, { getToken, isOwner }) {
  let hub = null;
  let device = null; // this screen's device_id and role, from the welcome
  let role = null;
  let seen = null; // the floor's holder as this card last drew it
  let muted = false;
  let conversation = null; // the SDK's conversation while one is open
  let voice = null; // its mapping to section 13 frames (voice-frames.js), from its start
  let starting = null; // {cancelled} while startSession runs
  let status = 'idle';
  let detail = '';
  let agentState = null; // the last agent_state the hub broadcast (any page's)
  let conversationId = null;
  let toolCall = null; // the client_tool_call event the SDK is about to hand a handler
  let capability = null;
  const pending = new Map(); // tool_call_id -> {frame, sentOn, resolve, timer, promise}
  const own = new Set(); // this page's hub connections, one per (re)connect
  let catchingUp = false; // back after a hub reconnect, until the replay ends
  let missed = false; // the replay brought changes made by others
  const lines = new Map(); // message_id -> {role, text, li}
  let backfilled = null; // the session whose earlier messages were fetched
  let movedAway = false; // the conversation ends because another screen took the voice
  let letGo = true; // this screen's hold was released (or is not its to release)

  // ---- the card --------------------------------------------------------------------

  const ui = {
    dot: h('span', { class: 'talk-dot', 'aria-hidden': 'true' }),
    title: h('h2', { id: 'talk-title' }),
    badge: h('span', { class: 'talk-badge', 'data-testid': 'talk-agent-state', hidden: true }),
    detail: h('p', { class: 'talk-detail', 'data-testid': 'talk-detail' }),
    button: h('button', { type: 'button', class: 'btn btn-primary btn-block', 'data-testid': 'talk-button' }),
    transcript: h('ol', {
      class: 'talk-transcript', 'data-testid': 'talk-transcript', 'aria-live': 'polite',
      'aria-label': 'Conversation with the agent',
    }),
    empty: h('p', { class: 'talk-empty muted small' }, 'Nothing said yet.'),
    moved: h('p', { class: 'talk-moved small', 'data-testid': 'talk-moved', hidden: true }),
    controls: h('div', { class: 'talk-controls', 'data-testid': 'talk-controls', hidden: true }),
    interrupt: h('button', { type: 'button', class: 'btn', 'data-testid': 'talk-interrupt' }, 'Interrupt'),
    mute: h('button', { type: 'button', class: 'btn', 'data-testid': 'talk-mute' }, 'Mute'),
    end: h('button', { type: 'button', class: 'btn', 'data-testid': 'talk-end' }, 'End'),
  };
  ui.controls.append(ui.interrupt, ui.mute, ui.end);
  root.replaceChildren(
    h('div', { class: 'card-head talk-head' },
      h('div', { class: 'talk-heading' }, ui.dot, ui.title), ui.badge),
    ui.detail,
    ui.button,
    ui.controls,
    ui.moved,
    ui.empty,
    ui.transcript,
  );
  root.setAttribute('aria-labelledby', 'talk-title');
  ui.button.addEventListener('click', pressed);
  ui.interrupt.addEventListener('click', () => steer('interrupt'));
  ui.mute.addEventListener('click', () => steer(muted ? 'unmute' : 'mute'));
  ui.end.addEventListener('click', () => steer('end'));

  // Can this screen talk: the owner (the app says so before the welcome) or any role
  // the welcome names that may hold the floor.
  function canTalk() {
    return role ? CAN_TALK.has(role) : isOwner();
  }

  // The floor as the hub's connection knows it (the package's rule, floor.ts), seen
  // from this screen: held on this device (whichever of its connections), elsewhere, free.
  function holder() {
    return hub?.client?.voiceFloor?.holder ?? null;
  }

  function held(h = holder()) {
    return h !== null && device !== null && h.device_id === device;
  }

  function elsewhere() {
    return holder() !== null && !held();
  }

  function draw() {
    const owner = canTalk();
    const resting = !LIVE.has(status) && elsewhere();
    const talking = resting && status !== 'moved' ? 'elsewhere' : status;
    const shown = !CONFIGURED ? 'unset' : owner ? talking : 'following';
    const [title, text, action] = TEXT[shown];
    root.hidden = !hub; // once the page is in a session
    root.dataset.state = shown;
    root.dataset.agentState = agentState || '';
    ui.title.textContent = title;
    const waiting = shown === 'thinking' && hub && hub.status !== 'connected';
    const tool = shown === 'thinking' && pending.size > 0;
    ui.detail.textContent = waiting
      ? 'The connection to the session dropped. The agent’s request goes through as soon as '
        + 'it is back.'
      : detail || (tool ? RUNNING_TOOL : text);
    ui.button.hidden = !owner || !action;
    ui.button.textContent = action || '';
    ui.button.classList.toggle('btn-primary', !LIVE.has(shown));
    ui.badge.hidden = !agentState || agentState === 'idle' || (owner && LIVE.has(status));
    ui.badge.textContent = STATE_WORDS[agentState] || '';
    // "Nothing said yet" only where something could be said.
    ui.empty.hidden = lines.size > 0 || !(LIVE.has(shown) || shown === 'following');
    root.dataset.floor = held() ? 'here' : elsewhere() ? 'elsewhere' : 'free';
    root.dataset.muted = String(muted);
    ui.controls.hidden = !owner || !holder();
    ui.mute.textContent = muted ? 'Unmute' : 'Mute';
  }

  function setStatus(next, words = '') {
    status = next;
    detail = words;
    draw();
  }

  // ---- the transcript every page draws from the hub's broadcasts -------------------

  function makeLine(frame) {
    const role = frame.role === 'user' ? 'user' : 'agent';
    const text = h('span', { class: 'talk-text' });
    const li = h('li', { class: `talk-line talk-${role}`, 'data-testid': 'talk-line', 'data-role': role },
      h('span', { class: 'talk-who' }, role === 'user' ? 'You' : 'Agent'), text);
    const line = { li, text, role };
    lines.set(String(frame.message_id), line);
    return line;
  }

  function fill(line, frame) {
    line.text.textContent = frame.text;
    line.li.dataset.final = frame.final === false ? 'false' : 'true';
  }

  function trim() {
    while (ui.transcript.children.length > TRANSCRIPT_LIMIT) {
      const first = ui.transcript.firstElementChild;
      for (const [key, value] of lines) if (value.li === first) lines.delete(key);
      first.remove();
    }
    ui.transcript.scrollTop = ui.transcript.scrollHeight;
    draw();
  }

  function showTranscript(frame) {
    let line = lines.get(String(frame.message_id));
    if (!line) {
      line = makeLine(frame);
      ui.transcript.append(line.li);
    }
    fill(line, frame);
    trim();
  }

  // What was said before this page joined (GET /sessions/{id}/messages), above the
  // lines that arrived live meanwhile.
  async function backfill(sessionId) {
    const said = [];
    let after = 0;
    try {
      for (let page = 0; page < 20; page += 1) {
        const token = await getToken();
        const response = await fetch(`/sessions/${encodeURIComponent(sessionId)}/messages?after_seq=${after}`, {
          headers: { Authorization: `Bearer ${token}` }, cache: 'no-store',
        });
        if (!response.ok) return;
        const body = await response.json();
        const messages = Array.isArray(body.messages) ? body.messages : [];
        said.push(...messages);
        if (!body.has_more || !messages.length) break;
        after = messages[messages.length - 1].seq;
      }
    } catch {
      return; // the live frames still come
    }
    if (hub?.sessionId !== sessionId) return;
    const older = said.filter((m) => m && m.message_id && !lines.has(String(m.message_id)));
    const nodes = older.slice(-TRANSCRIPT_LIMIT).map((m) => {
      const line = makeLine(m);
      fill(line, m);
      return line.li;
    });
    ui.transcript.prepend(...nodes);
    trim();
  }

  // The conversation as this page has it, for a summary that quotes its last exchanges.
  function messages() {
    return [...ui.transcript.children].map((li) => {
      const line = [...lines.values()].find((l) => l.li === li);
      return line ? { role: line.role, text: line.text.textContent } : null;
    }).filter(Boolean);
  }

  // ---- the hub socket ----------------------------------------------------------------

  // Wrap connect()'s callbacks: this module sees every frame and status too.
  function observe(options) {
    return {
      ...options,
      onEvent(frame, controller) {
        options.onEvent?.(frame, controller);
        hubFrame(frame);
      },
      onStatus(s, controller) {
        options.onStatus?.(s, controller);
        if (s.status === 'connected') resendPending();
        draw();
      },
    };
  }

  function attach(controller) {
    hub = controller;
    own.clear();
    draw();
  }

  function hubFrame(frame) {
    switch (frame.type) {
      case 'session_joined':
        if (frame.session_id && frame.session_id !== backfilled) {
          backfilled = frame.session_id;
          backfill(frame.session_id);
        }
        if (own.size) {
          catchingUp = true; // the replay (or a snapshot) follows
          missed = false;
        }
        if (frame.connection_id) own.add(frame.connection_id);
        if (typeof frame.device_id === 'string') device = frame.device_id;
        if (typeof frame.role === 'string') role = frame.role;
        // Back on a new connection while this screen talks: it takes the floor again
        // (its old connection's hold ends with it).
        if (conversation && held() && holder().connection_id !== frame.connection_id) {
          hub.send({ type: 'take_voice' });
        }
        draw();
        break;
      case 'agent_control':
        // For this screen's conversation when it names this device.
        if (CONTROLS.includes(frame.action) && device !== null && frame.device_id === device) {
          control(frame.action);
        }
        break;
      case 'resumed':
        if (catchingUp && missed) tell(createSessionContext(hub.state || {}, messages()));
        catchingUp = false;
        break;
      case 'resync_required':
        if (catchingUp || conversation) tell(createSessionContext(hub.state || {}, messages()));
        catchingUp = false;
        break;
      case 'transcript':
        showTranscript(frame);
        break;
      case 'agent_state':
        agentState = frame.state;
        draw();
        break;
      case 'client_tool_result':
        answered(frame.tool_call_id, frame);
        break;
      case 'error':
        for (const [id, call] of pending) {
          if (frame.requestId && frame.requestId === call.requestId) {
            answered(id, { is_error: true, result: frame.message || frame.code });
          }
        }
        break;
      case 'session_state_updated':
        if (foreign(frame)) {
          const words = describeChange(frame.patch || {}, hub.state || {});
          if (words) heard(words);
        }
        break;
      case 'contextual_update':
        if (foreign(frame)) heard(describeUpdate(frame));
        break;
      default:
        break;
    }
    floorFollowed(frame);
  }

  function foreign(frame) {
    const sender = typeof frame.sender === 'string' ? frame.sender : '';
    return !sender.startsWith(AGENT_SENDER_PREFIX) && !own.has(sender);
  }

  function heard(words) {
    if (!conversation) return;
    if (catchingUp) {
      missed = true;
      return;
    }
    tell(words);
  }

  function tell(words) {
    // Only while the conversation is open: once its socket is closing, a send would be
    // dropped (the browser only logs it); the next start begins with a summary.
    if (!conversation || !conversation.isOpen()) return;
    try {
      conversation.sendContextualUpdate(words);
    } catch {
      /* the conversation is closing; the next start begins with a summary */
    }
  }

  function publish(frame) {
    if (hub && canTalk()) hub.send(frame);
  }

  // ---- the voice floor (section 17) --------------------------------------------------

  // After each frame the package has folded (a welcome, a voice_floor, a resync): what a
  // change of holder means for this screen.
  function floorFollowed(frame) {
    const now = holder();
    const before = seen;
    if (before?.device_id === now?.device_id && before?.connection_id === now?.connection_id) return;
    seen = now;
    if (frame.type === 'voice_floor' && before && now && before.device_id !== now.device_id) {
      markMove({ from: before.device_id, to: now.device_id, here: held(now) }, frame);
    }
    if (held(before) && !held(now) && (conversation || starting)) {
      // Another screen took the voice: this conversation ends now; the other carries on.
      stop('moved');
    }
    draw();
  }

  // A mark in the conversation where the voice moved, on every screen.
  function markMove(moved, frame) {
    const words = moved.here ? 'The voice moved to this screen.' : 'The voice moved to another screen.';
    ui.moved.textContent = words;
    ui.moved.hidden = false;
    const li = h('li', {
      class: 'talk-line talk-mark', 'data-testid': 'talk-mark', 'data-seq': String(frame.seq ?? ''),
      'data-from': moved.from, 'data-to': moved.to,
    }, words);
    ui.transcript.append(li);
    trim();
  }

  // This screen lets the floor go, once per conversation.
  function release() {
    if (letGo) return;
    letGo = true;
    if (held()) hub?.send({ type: 'release_voice' });
  }

  function steer(action) {
    if (hub) hub.send({ type: 'agent_control', action });
  }

  // A control for this screen's conversation, from any screen.
  function control(action) {
    if (action === 'end') {
      letGo = true; // the hub frees the floor after an end
      stop();
      return;
    }
    if (!conversation) return;
    if (action === 'mute' || action === 'unmute') {
      muted = action === 'mute';
      try {
        conversation.setMicMuted(muted);
      } catch {
        /* a text conversation has no microphone */
      }
      draw();
      return;
    }
    // interrupt: the agent's current speech stops here (the client drops the rest of
    // its audio and fades out what plays, as when the user speaks over it), and the
    // agent is told why it was cut off.
    if (typeof conversation.handleInterruption === 'function') {
      conversation.handleInterruption({ interruption_event: { event_id: (conversation.currentEventId || 0) + 1 } });
    }
    tell('The user interrupted you from another screen: stop, and wait for what they say next.');
  }

  // What a conversation's mapping returned, published in order; while that
  // conversation is the open one, the card follows the agent's state.
  function emit(mapping, frames) {
    if (mapping !== voice) return; // a conversation that is over, or was cancelled
    for (const frame of frames) publish(frame);
    if (conversation && LIVE.has(status) && AGENT_LIVE.has(mapping.state) && status !== mapping.state) {
      setStatus(mapping.state);
    }
  }

  // ---- client tools through the hub ------------------------------------------------

  function clientTools(tools) {
    const handlers = {};
    for (const tool of tools) {
      handlers[tool.name] = (parameters) => runTool(tool, parameters);
    }
    return handlers;
  }

  // The SDK hands a handler the parameters only: the call's id comes from the event it
  // announced just before (onIncomingEvent runs synchronously before the handler).
  function runTool(tool, parameters) {
    const event = toolCall && toolCall.tool_name === tool.name ? toolCall : null;
    toolCall = null;
    const id = event?.tool_call_id || `page_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 10)}`;
    const existing = pending.get(id);
    if (existing) return existing.promise; // the same call again: one run, one answer
    const params = { ...(parameters || {}) };
    delete params.tool_call_id;
    if (!params.session_id && capability) params.session_id = capability;
    const call = {
      frame: { type: 'client_tool_call', client_tool_call: { tool_name: tool.name, tool_call_id: id, parameters: params } },
      sentOn: null,
      requestId: null,
    };
    call.promise = new Promise((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    const seconds = tool.response_timeout_secs > 0 ? tool.response_timeout_secs : DEFAULT_TOOL_TIMEOUT;
    call.timer = setTimeout(() => {
      if (pending.get(id) !== call) return;
      pending.delete(id);
      draw();
      call.reject(new Error(`the session did not answer within ${seconds} s (connection lost)`));
    }, seconds * 1000);
    pending.set(id, call);
    if (conversation && voice) emit(voice, voice.toolCall());
    draw();
    sendCall(call);
    return call.promise;
  }

  function sendCall(call) {
    // Only on a live connection: a frame queued while it is down would go out with no
    // way to tell which connection it was answered on; resendPending sends it then.
    if (!hub || hub.status !== 'connected' || !hub.connectionId) return;
    call.sentOn = hub.connectionId;
    call.requestId = hub.send(call.frame);
  }

  // Back on a (new) connection: every call not answered yet goes again, same id; the
  // hub runs it once and answers the stored result if it already ran.
  function resendPending() {
    for (const call of pending.values()) {
      if (call.sentOn !== hub.connectionId) sendCall(call);
    }
  }

  function answered(id, frame) {
    const call = pending.get(id);
    if (!call) return; // a repeat's answer, or one after the timeout
    pending.delete(id);
    clearTimeout(call.timer);
    draw(); // the agent works on its answer: it is thinking until it speaks
    const result = typeof frame.result === 'string' ? frame.result : JSON.stringify(frame.result ?? null);
    if (frame.is_error) call.reject(new Error(result));
    else call.resolve(result);
  }

  function dropPending() {
    for (const call of pending.values()) clearTimeout(call.timer);
    pending.clear();
  }

  // ---- the conversation --------------------------------------------------------------

  function pressed() {
    if (LIVE.has(status)) stop();
    else start();
  }

  async function start() {
    if (!hub?.sessionId || starting) return;
    const attempt = { cancelled: false };
    starting = attempt;
    muted = false;
    movedAway = false;
    letGo = false;
    hub.send({ type: 'take_voice' }); // the screen that held the voice ends its conversation
    if (!navigator.mediaDevices?.getUserMedia) {
      starting = null;
      setStatus('error', 'This browser gives no microphone to this page. Open it over HTTPS '
        + '(or on localhost) in a current browser.');
      return;
    }
    const permission = await microphonePermission();
    if (permission === 'denied') {
      starting = null;
      setStatus('error', 'Microphone access is blocked for this site. Allow it in the '
        + 'browser’s site settings (the icon next to the address), then try again.');
      return;
    }
    setStatus('connecting', permission === 'prompt'
      ? 'Your browser will now ask to use the microphone: allow it to talk.' : '');
    let signed;
    let Conversation;
    try {
      [signed, { Conversation }] = await Promise.all([signConversation(), import(CLIENT_MODULE)]);
    } catch (err) {
      if (starting === attempt) starting = null;
      if (!attempt.cancelled) failed(err);
      return;
    }
    if (attempt.cancelled) return;
    capability = signed.dynamic_variables?.session_id || null;
    toolCall = null;
    let opened = null; // this attempt's conversation, once startSession answers
    const frames = new ConversationFrames();
    voice = frames;
    const text = (value) => String(value ?? '');
    try {
      opened = await Conversation.startSession({
        signedUrl: signed.signed_url,
        connectionType: 'websocket',
        dynamicVariables: signed.dynamic_variables,
        clientTools: clientTools(signed.tools || []),
        ...AUDIO_FILES,
        // The client's events, adapted to the mapping's calls (voice-frames.js).
        onIncomingEvent: (event) => {
          if (event?.type === 'client_tool_call') toolCall = event.client_tool_call;
          if (event?.type === 'tentative_user_transcript') { // no callback of its own
            const said = event.tentative_user_transcription_event?.user_transcript;
            if (typeof said === 'string' && said) emit(frames, frames.userPartial(said));
          }
        },
        onConnect: ({ conversationId: id }) => { conversationId = id; },
        onMessage: ({ role, message }) => emit(frames, role === 'user'
          ? frames.userSaid(text(message)) : frames.agentSaid(text(message))),
        onAgentChatResponsePart: (part) => emit(frames, frames.agentPart(text(part?.text), part?.type)),
        onAgentResponseCorrection: (event) => emit(frames, frames.corrected(
          text(event?.original_agent_response), text(event?.corrected_agent_response))),
        onInterruption: () => emit(frames, frames.interrupted()),
        onModeChange: ({ mode }) => emit(frames, frames.mode(mode)),
        onDisconnect: (details) => disconnected(opened, frames, details),
        onError: (message) => console.warn('[talk]', message),
      });
      if (attempt.cancelled) {
        await opened.endSession().catch(() => {});
        return;
      }
      conversation = opened;
      starting = null;
      // The agent hears where the session stands before anything else.
      tell(createSessionContext(hub.state || {}, messages()));
      emit(frames, frames.ready());
      if (pending.size) emit(frames, frames.toolCall());
      setStatus(AGENT_LIVE.has(frames.state) ? frames.state : 'listening');
    } catch (err) {
      if (starting === attempt) starting = null;
      if (!attempt.cancelled) failed(err);
    }
  }

  // `why`: 'moved' when another screen took the voice (the floor is theirs: nothing to
  // release); otherwise this screen lets the floor go.
  async function stop(why = null) {
    movedAway = why === 'moved';
    if (movedAway) {
      voice = null; // nothing more of this conversation goes out: it carries on elsewhere
      letGo = true;
    }
    release();
    if (starting) {
      starting.cancelled = true;
      starting = null;
    }
    const open = conversation;
    if (!open) {
      setStatus(movedAway ? 'moved' : 'idle');
      return;
    }
    await open.endSession().catch(() => {});
  }

  async function microphonePermission() {
    try {
      return (await navigator.permissions.query({ name: 'microphone' })).state;
    } catch {
      return 'prompt'; // browsers that cannot say
    }
  }

  async function signConversation() {
    const token = await getToken();
    const response = await fetch(`/sessions/${encodeURIComponent(hub.sessionId)}/elevenlabs/conversation`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
      cache: 'no-store',
    });
    let body = null;
    try {
      body = await response.json();
    } catch {
      /* not JSON: said below */
    }
    if (!response.ok) {
      const err = new Error(body?.error?.message || `the hub answered ${response.status}`);
      err.code = body?.error?.code || `http_${response.status}`;
      throw err;
    }
    return body;
  }

  function failed(err) {
    conversation = null;
    voice = null;
    release();
    dropPending();
    const message = err?.message || String(err);
    if (err?.code === 'not_configured') {
      setStatus('unavailable', 'Talking from this page is off on this hub. Whoever runs it can '
        + 'turn it on with COMPANION_ELEVENLABS_AGENT_ID and COMPANION_ELEVENLABS_API_KEY.');
    } else if (err?.name === 'NotAllowedError' || /permission/i.test(message)) {
      setStatus('error', 'The microphone was not allowed. Allow it for this site, then try again.');
    } else if (err?.name === 'NotFoundError') {
      setStatus('error', 'No microphone was found. Connect one, then try again.');
    } else {
      setStatus('error', `The conversation could not start: ${message}`);
    }
  }

  function disconnected(session, frames, details) {
    if (session && conversation && session !== conversation) return;
    conversation = null;
    dropPending();
    if (!movedAway) for (const frame of frames.ended()) publish(frame);
    if (voice === frames) voice = null;
    release();
    if (details?.reason === 'error' && !movedAway) {
      const why = details.message || details.closeReason || 'the connection closed';
      setStatus('dropped', `The conversation with the agent was lost (${why}). Start again `
        + 'to continue: the agent will be told where the session stands.');
    } else if (movedAway) {
      setStatus('moved');
    } else if (details?.reason === 'agent') {
      setStatus('ended', 'The agent ended the conversation.');
    } else {
      setStatus('ended', 'You ended the conversation. The session keeps everything decided so far.');
    }
  }

  draw();
  return Object.freeze({
    observe,
    attach,
    get status() { return status; },
    get conversationId() { return conversationId; },
  });
}
