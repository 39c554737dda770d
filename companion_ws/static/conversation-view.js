// conversation-view.js: draws conversation.js's model: the chat, the agent's state,
// and the agent's steps and tool runs. Nodes are kept by message id and step key, so a
// partial transcript is replaced in place and nothing else is redrawn.
//
// The chat follows new messages while it is scrolled to the bottom; scrolled up, it
// stays put and offers "New messages". Where it was scrolled is kept per tab
// (sessionStorage) and put back after a reload, by message, not by pixel.
//
// Between the messages, in seq order (timeline()), a mark where the voice moved
// (docs/protocol.md section 17): "The voice moved to this screen", "... to the screen
// joined by QR". `nameScreen(deviceId)` (from app.js) names the device.

import { h, reconcile, replaceChildren } from './dom.js';
import { formatFullTime, formatTime, isoTime } from './format.js';
import { progressStatusText, progressTitle, timeline } from './conversation.js';
import { isBackendSender } from './activity.js';
import { ICONS, icon } from './view.js';

const SCROLL_KEY = 'companion.chat-scroll';
const NEAR_BOTTOM = 48; // px: closer than this to the end counts as "at the end"
const PROGRESS_SHOWN = 8; // the newest steps shown before "Show earlier"

const ROLE_NAMES = { user: 'You', agent: 'Voice agent' };
// A backend's streamed answer (gRPC StreamTask, the bus) is the agent side, not the voice.
const whoSaid = (m) => (m.role === 'agent' && isBackendSender(m.sender) ? 'Backend' : ROLE_NAMES[m.role]);

export function renderAgentPill(pill, textEl, status) {
  pill.dataset.state = status.kind;
  textEl.textContent = status.label;
  pill.title = status.detail;
  pill.setAttribute('aria-label', status.detail);
}

function messageNode(m) {
  const node = h('li', {
    class: `msg msg-${m.role}`,
    'data-testid': 'message',
    'data-message-id': m.message_id,
  });
  fillMessage(node, m);
  return node;
}

function fillMessage(node, m) {
  node.className = `msg msg-${m.role}${m.final ? '' : ' is-partial'}${m.corrected ? ' is-corrected' : ''}`;
  node.dataset.role = m.role;
  node.dataset.final = String(m.final);
  node.dataset.corrected = String(m.corrected);
  replaceChildren(node,
    h('div', { class: 'msg-meta' },
      h('span', { class: 'msg-who', 'data-testid': 'message-who' }, whoSaid(m)),
      m.timestamp ? h('time', { datetime: isoTime(m.timestamp), title: formatFullTime(m.timestamp) }, formatTime(m.timestamp, { seconds: false })) : null),
    h('div', { class: 'bubble' },
      h('span', { class: 'msg-text', 'data-testid': 'message-text' }, m.text),
      m.final ? null : h('span', { class: 'dots', 'aria-label': '(still speaking)' }, h('span'), h('span'), h('span'))),
    m.corrected
      ? h('details', { class: 'msg-correction', 'data-testid': 'message-corrected' },
        h('summary', {}, icon(ICONS.restore, 'icon tiny'), 'Corrected'),
        h('p', {}, m.earlier.length > 1 ? 'Earlier wordings: ' : 'Before the correction: ',
          m.earlier.map((t, i) => h('q', { class: 'msg-earlier' }, t, i < m.earlier.length - 1 ? ' ' : null))))
      : null);
}

// A mark where the voice moved; `name(deviceId)` names the screen it moved to.
export function voiceMoveWords(move, name) {
  return move.from === null ? `The voice started on ${name(move.to)}.` : `The voice moved to ${name(move.to)}.`;
}

function moveNode(move, name) {
  return h('li', {
    class: 'msg-mark', 'data-testid': 'voice-moved', 'data-seq': String(move.seq),
    'data-from': move.from ?? '', 'data-to': move.to, role: 'note',
  }, icon(ICONS.mic, 'icon tiny'), voiceMoveWords(move, name),
  move.timestamp ? h('time', { datetime: isoTime(move.timestamp), title: formatFullTime(move.timestamp) }, formatTime(move.timestamp, { seconds: false })) : null);
}

const isMove = (e) => e.kind === 'voice_moved';

function progressNode(p) {
  const node = h('li', { 'data-testid': 'progress-item' });
  fillProgress(node, p);
  return node;
}

function fillProgress(node, p) {
  node.className = `progress-item is-${p.status} kind-${p.kind}${p.parent ? ' is-nested' : ''}`;
  node.dataset.kind = p.kind;
  node.dataset.status = p.status;
  node.dataset.id = p.id;
  const mark = {
    running: h('span', { class: 'spinner', 'aria-hidden': 'true' }),
    done: icon(ICONS.check, 'icon small'),
    failed: icon(ICONS.cross, 'icon small'),
  }[p.status];
  const when = p.started_at ?? p.ended_at;
  replaceChildren(node,
    h('span', { class: 'progress-mark', 'aria-hidden': 'true' }, mark),
    h('span', { class: 'progress-main' },
      h('span', { class: 'progress-name' }, progressTitle(p)),
      p.kind === 'tool'
        ? h('span', { class: 'progress-detail progress-kind' }, icon(ICONS.tool, 'icon tiny'), `tool ${p.name}`)
        : null,
      p.detail ? h('span', { class: 'progress-detail' }, p.detail) : null),
    h('span', { class: 'progress-side' },
      h('span', { class: 'progress-status', 'data-testid': 'progress-status' }, progressStatusText(p)),
      when ? h('time', { datetime: isoTime(when), title: formatFullTime(when) }, formatTime(when)) : null));
}

export function createConversationView(els, { nameScreen = () => 'another screen' } = {}) {
  const messages = new Map();
  const steps = new Map();
  let following = true;
  let lastCount = 0;
  let saveTimer = null;
  let sessionId = null;
  let showAllProgress = false;
  let lastConv = null;

  // Scrolled away from the chat (a phone, picking a rate): a new message shows as a
  // button at the bottom of the screen that brings the chat back.
  let chatInView = true;
  let peekedSeq = 0;
  if ('IntersectionObserver' in globalThis) {
    new IntersectionObserver(([entry]) => {
      chatInView = entry.isIntersecting;
      if (chatInView) els.peek.hidden = true;
    }, { threshold: 0.15 }).observe(els.card);
  }
  els.peek.addEventListener('click', () => {
    els.peek.hidden = true;
    els.card.scrollIntoView({ block: 'start', behavior: 'smooth' });
    toBottom();
  });

  function peek(conv) {
    const last = conv.messages[conv.messages.length - 1];
    if (!last || last.updated_seq <= peekedSeq) return;
    const first = peekedSeq === 0;
    peekedSeq = last.updated_seq;
    if (chatInView || first) return; // nothing new to this reader, or the page just opened
    els.peek.replaceChildren(
      h('span', { class: 'peek-who' }, `${whoSaid(last)}:`),
      h('span', { class: 'peek-text' }, last.text),
      h('span', { class: 'peek-go', 'aria-hidden': 'true' }, '↑'));
    els.peek.setAttribute('aria-label', `${whoSaid(last)} said: ${last.text}. Show the conversation`);
    els.peek.hidden = false;
  }

  const atBottom = () => els.scroll.scrollHeight - els.scroll.scrollTop - els.scroll.clientHeight < NEAR_BOTTOM;

  function toBottom() {
    els.scroll.scrollTop = els.scroll.scrollHeight;
    markScrolled();
    following = true;
    els.latest.hidden = true;
  }

  const markScrolled = () => els.scroll.classList.toggle('is-scrolled', els.scroll.scrollTop > 4);

  els.scroll.addEventListener('scroll', () => {
    markScrolled();
    following = atBottom();
    if (following) els.latest.hidden = true;
    clearTimeout(saveTimer);
    saveTimer = setTimeout(save, 300);
  }, { passive: true });
  els.latest.addEventListener('click', () => {
    toBottom();
    save();
  });
  els.progressMore.addEventListener('click', () => {
    showAllProgress = !showAllProgress;
    if (lastConv) drawProgress(lastConv);
  });

  // The first message whose bottom is below the top edge, and how far down it starts.
  function anchor() {
    const top = els.scroll.scrollTop;
    for (const node of els.chat.children) {
      if (!node.dataset.messageId) continue; // a mark where the voice moved
      if (node.offsetTop + node.offsetHeight > top) {
        return { message_id: node.dataset.messageId, offset: node.offsetTop - top };
      }
    }
    return null;
  }

  function save() {
    if (!sessionId) return;
    const where = following ? { bottom: true } : anchor();
    try {
      sessionStorage.setItem(SCROLL_KEY, JSON.stringify({ session_id: sessionId, ...where }));
    } catch {
      /* storage disabled */
    }
  }

  function drawProgress(conv) {
    const all = conv.progress;
    const hidden = showAllProgress ? 0 : Math.max(0, all.length - PROGRESS_SHOWN);
    reconcile(els.progress, all.slice(hidden), {
      key: (p) => p.key,
      sig: (p) => `${p.status}|${p.duration_ms}|${p.detail}|${p.name}`,
      create: progressNode,
      fill: fillProgress,
      cache: steps,
    });
    els.progressEmpty.hidden = all.length > 0;
    els.progressCount.textContent = all.length ? String(all.length) : '';
    els.progressMore.hidden = all.length <= PROGRESS_SHOWN;
    els.progressMore.textContent = showAllProgress
      ? 'Show only the latest'
      : `Show ${hidden} earlier ${hidden === 1 ? 'step' : 'steps'}`;
  }

  return {
    setSession(id) {
      if (id === sessionId) return;
      sessionId = id;
      messages.clear();
      steps.clear();
      els.chat.replaceChildren();
      els.progress.replaceChildren();
      els.peek.hidden = true;
      peekedSeq = 0;
      following = true;
      lastCount = 0;
    },

    // conv: conversation.js's model; agent: agentStatus(); agentPresent: boolean.
    render(conv, agent, agentPresent, over = false) {
      lastConv = conv;
      const wasBottom = following && atBottom();
      reconcile(els.chat, timeline(conv), {
        key: (e) => (isMove(e) ? `voice:${e.seq}` : e.message_id),
        sig: (e) => (isMove(e) ? voiceMoveWords(e, nameScreen) : e.updated_seq),
        create: (e) => (isMove(e) ? moveNode(e, nameScreen) : messageNode(e)),
        fill: (node, e) => (isMove(e) ? moveNode(e, nameScreen) : fillMessage(node, e)),
        cache: messages,
      });
      const n = conv.messages.length;
      els.empty.hidden = n > 0;
      els.empty.textContent = over ? 'Nothing was said in this session.' : agentPresent
        ? 'Nothing said yet. Talk to the voice agent — what you say and what it answers will show here as it happens.'
        : 'No voice agent is connected yet. When one joins, what you say and what it answers will show here as it happens.';
      els.thinking.hidden = agent.kind !== 'thinking';
      const grew = n > lastCount || conv.messages.some((m) => !m.final);
      lastCount = n;
      if (following || wasBottom) toBottom();
      else if (grew) els.latest.hidden = false;
      drawProgress(conv);
      peek(conv);
    },

    // Back to where this tab was in the chat; true if it had a place to go back to.
    restore() {
      let saved = null;
      try {
        saved = JSON.parse(sessionStorage.getItem(SCROLL_KEY) || 'null');
      } catch {
        saved = null;
      }
      if (!saved || saved.session_id !== sessionId || saved.bottom) {
        toBottom();
        return Boolean(saved && saved.session_id === sessionId);
      }
      const node = [...els.chat.children].find((li) => li.dataset.messageId === saved.message_id);
      if (!node) {
        toBottom();
        return false;
      }
      els.scroll.scrollTop = node.offsetTop - (Number(saved.offset) || 0);
      markScrolled();
      following = atBottom();
      return true;
    },
  };
}
