// view.js: DOM rendering. Every function takes plain data and draws it; none of
// them talks to the network.

import { describeMember, taskName } from './activity.js';
import { h, replaceChildren } from './dom.js';
import {
  STEPS, currentStep, formatDays, formatFullTime, formatMoney, formatTime, formatWeight, hasData,
  isoTime, sameQuote,
} from './format.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

export function icon(paths, cls = 'icon') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', cls);
  for (const d of paths) {
    const p = document.createElementNS(SVG_NS, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

export const ICONS = {
  box: ['M3 7.5 12 3l9 4.5v9L12 21l-9-4.5z', 'M3 7.5 12 12l9-4.5', 'M12 12v9'],
  check: ['M5 12.5l4.5 4.5L19 7.5'],
  ended: ['M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z', 'M9 9l6 6M15 9l-6 6'],
  lock: ['M6 11h12v9H6z', 'M8.5 11V8a3.5 3.5 0 0 1 7 0v3'],
  link: ['M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1', 'M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1'],
  plug: ['M9 3v5M15 3v5', 'M6 8h12v3a6 6 0 0 1-12 0z', 'M12 17v4'],
  arrow: ['M5 12h14', 'M13 6l6 6-6 6'],
  mic: ['M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z', 'M5 11a7 7 0 0 0 14 0', 'M12 18v3'],
  screen: ['M3 5h18v11H3z', 'M8 20h8', 'M12 16v4'],
  server: ['M4 4h16v6H4z', 'M4 14h16v6H4z', 'M8 7h.01M8 17h.01'],
  dot: ['M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z'],
  warn: ['M12 4 2.5 20h19z', 'M12 10v4', 'M12 17h.01'],
  cross: ['M7 7l10 10M17 7 7 17'],
  person: ['M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M4 21a8 8 0 0 1 16 0'],
  eye: ['M2 12s3.5-7 10-7 10 7 10 7-3.5 7-10 7S2 12 2 12z', 'M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z'],
  tool: ['M14.7 6.3a4 4 0 0 0-5.4 5.4L3 18l3 3 6.3-6.3a4 4 0 0 0 5.4-5.4l-2.5 2.5-2.5-.5-.5-2.5z'],
  restore: ['M3 12a9 9 0 1 0 3-6.7', 'M3 4v5h5'],
};

// ---- header -------------------------------------------------------------

const STATUS_TEXT = {
  idle: 'Connecting…',
  connecting: 'Connecting…',
  connected: 'Connected',
  offline: 'Offline',
  ended: 'Ended',
  stopped: 'Disconnected',
  closed: 'Closed',
  no_token: 'Not connected',
};

export function statusText(status) {
  if (status === 'reconnecting') return 'Reconnecting…';
  return STATUS_TEXT[status] || status;
}

export function renderStatus(el, textEl, status, detail = {}) {
  el.dataset.status = status;
  textEl.textContent = statusText(status, detail);
  el.title = status === 'reconnecting' && detail.delay
    ? `Attempt ${detail.attempt || 1}; next try in ${(detail.delay / 1000).toFixed(1)} s`
    : '';
}

// ---- the task -----------------------------------------------------------

export function renderStepper(ol, state) {
  // Before anything is known (no state yet, or nothing to ship) no step is current.
  const known = hasShipping(state);
  const now = known ? currentStep(state) : null;
  const index = STEPS.findIndex((s) => s.id === now);
  ol.hidden = !known;
  replaceChildren(ol, STEPS.map((step, i) => h('li', {
    class: `step ${i < index ? 'is-done' : ''} ${i === index ? 'is-current' : ''}`,
    'aria-current': i === index ? 'step' : null,
    dataset: { step: step.id },
  }, h('span', { class: 'step-dot', 'aria-hidden': 'true' }, i < index ? icon(ICONS.check, 'icon tiny') : String(i + 1)),
  h('span', { class: 'step-label' }, step.label))));
}

export function hasShipping(state) {
  const s = state || {};
  return Boolean(s.shipping_details || Array.isArray(s.quotes) || s.label || s.selected_option);
}

function emptyState(agentPresent) {
  const example = h('strong', { class: 'example' }, '“ship a 5 lb box from 90210 to 10001”');
  return h('div', { class: 'empty', 'data-testid': 'empty-state', 'data-agent': agentPresent ? 'present' : 'absent' },
    h('div', { class: 'empty-icon' }, icon(ICONS.box, 'icon large')),
    h('h3', { class: 'empty-title' }, 'Nothing to ship yet'),
    agentPresent
      ? h('p', { class: 'empty-text' }, 'Ask the voice agent to ship a package — e.g. ', example, '. Quotes will appear here.')
      : h('p', { class: 'empty-text' },
        'No voice agent is connected to this session yet. Once one joins, ask it to ship a package — e.g. ',
        example, '.'));
}

function details(d) {
  return h('section', { class: 'block', 'aria-labelledby': 'details-title', 'data-step': 'details' },
    h('h3', { class: 'block-title', id: 'details-title' }, 'Package'),
    h('dl', { class: 'details', 'data-testid': 'shipping-details' },
      h('div', { class: 'detail' }, h('dt', {}, 'From'), h('dd', {}, d.from ?? '—')),
      h('div', { class: 'detail detail-arrow', 'aria-hidden': 'true' }, icon(ICONS.arrow)),
      h('div', { class: 'detail' }, h('dt', {}, 'To'), h('dd', {}, d.to ?? '—')),
      h('div', { class: 'detail' }, h('dt', {}, 'Weight'), h('dd', {}, formatWeight(d.weight_lbs)))));
}

function extremes(quotes) {
  const costs = quotes.map((q) => Number(q.cost)).filter(Number.isFinite);
  const days = quotes.map((q) => Number(q.days)).filter(Number.isFinite);
  return { cheapest: Math.min(...costs), fastest: Math.min(...days) };
}

function quoteOption(q, { checked, pending, disabled, best, onChoose }) {
  const id = String(q.quote_id ?? `${q.carrier}-${q.service}`);
  const badges = [];
  if (quotesHaveChoice(best) && Number(q.cost) === best.cheapest) badges.push('Cheapest');
  if (quotesHaveChoice(best) && Number(q.days) === best.fastest) badges.push('Fastest');
  const input = h('input', {
    type: 'radio',
    name: 'quote',
    value: id,
    class: 'quote-radio',
    checked,
    disabled,
    'data-focus-key': `quote:${id}`,
  });
  input.addEventListener('change', (ev) => {
    if (input.checked) onChoose(q, ev);
  });
  return h('label', {
    class: `quote ${checked ? 'is-selected' : ''} ${pending && checked ? 'is-pending' : ''}`,
    'data-testid': 'quote-option',
    'data-quote-id': id,
    'data-selected': checked ? 'true' : 'false',
  },
  input,
  h('span', { class: 'quote-main' },
    h('span', { class: 'quote-name' },
      h('span', { class: 'quote-carrier' }, q.carrier ?? 'Carrier'),
      ' ',
      h('span', { class: 'quote-service' }, q.service ?? '')),
    h('span', { class: 'quote-meta' },
      h('span', { class: 'quote-days' }, formatDays(q.days)),
      badges.map((b) => h('span', { class: `badge badge-${b.toLowerCase()}` }, b)))),
  h('span', { class: 'quote-side' },
    h('span', { class: 'quote-cost' }, formatMoney(q.cost)),
    checked ? h('span', { class: 'quote-flag' }, pending ? 'Saving…' : 'Selected') : null));
}

function quotesHaveChoice(best) {
  return best.count > 1;
}

function quotesBlock(quotes, selected, { pendingQuote, disabled, onChoose }) {
  const best = { ...extremes(quotes), count: quotes.length };
  const chosen = pendingQuote || selected;
  return h('section', { class: 'block', 'aria-labelledby': 'quotes-title', 'data-step': 'quotes' },
    h('div', { class: 'block-head' },
      h('h3', { class: 'block-title', id: 'quotes-title' }, 'Rates'),
      h('span', { class: 'block-hint' }, chosen ? '' : 'Pick one — every screen and the agent will see it.')),
    quotes.length === 0
      ? h('p', { class: 'placeholder' }, 'No carrier serves this route. Ask the agent to try other ZIP codes.')
      : h('div', {
        class: 'quotes',
        role: 'radiogroup',
        'aria-labelledby': 'quotes-title',
        'data-testid': 'quotes',
      }, quotes.map((q) => quoteOption(q, {
        checked: sameQuote(q, chosen),
        pending: Boolean(pendingQuote),
        disabled,
        best,
        onChoose,
      }))));
}

function selectedBlock(sel) {
  return h('section', {
    class: 'block selected',
    'data-testid': 'selected-option',
    'data-quote-id': sel.quote_id ?? '',
    'data-step': 'selected',
    'aria-label': 'Selected rate',
  },
  h('span', { class: 'selected-icon' }, icon(ICONS.check)),
  h('div', { class: 'selected-main' },
    h('span', { class: 'kicker' }, 'Selected'),
    h('span', { class: 'selected-name' }, `${sel.carrier ?? ''} ${sel.service ?? ''}`.trim()),
    h('span', { class: 'selected-meta' }, formatDays(sel.days))),
  h('span', { class: 'selected-cost' }, formatMoney(sel.cost)));
}

function labelBlock(label, selected, onCopy) {
  const stale = selected && label.carrier
    && (selected.carrier !== label.carrier || selected.service !== label.service);
  return h('section', { class: 'block label', 'data-testid': 'label', 'data-step': 'label', 'aria-labelledby': 'label-title' },
    h('div', { class: 'label-head' },
      h('span', { class: 'label-icon' }, icon(ICONS.check)),
      h('h3', { class: 'block-title', id: 'label-title' }, 'Label created')),
    h('div', { class: 'tracking' },
      h('span', { class: 'tracking-label' }, 'Tracking number'),
      h('div', { class: 'tracking-row' },
        h('code', { class: 'tracking-number', 'data-testid': 'tracking-number' }, label.tracking_number ?? '—'),
        label.tracking_number
          ? h('button', { type: 'button', class: 'btn btn-small', onclick: () => onCopy(label.tracking_number, 'Tracking number copied') }, 'Copy')
          : null)),
    h('dl', { class: 'label-facts' },
      h('div', {}, h('dt', {}, 'Carrier'), h('dd', {}, label.carrier ?? '—')),
      h('div', {}, h('dt', {}, 'Service'), h('dd', {}, label.service ?? '—')),
      h('div', {}, h('dt', {}, 'Postage'), h('dd', {}, formatMoney(label.cost)))),
    stale
      ? h('p', { class: 'label-note' }, icon(ICONS.warn, 'icon small'),
        `This label is for ${label.carrier} ${label.service ?? ''}, not the rate selected now. Ask the agent for a new label if you changed your mind.`)
      : null);
}

// Draw the whole task card body from the state document.
export function renderTask(body, state, opts) {
  const s = state || {};
  const quotes = Array.isArray(s.quotes) ? s.quotes : null;
  const parts = [];
  if (!hasShipping(s)) {
    parts.push(emptyState(opts.agentPresent));
  } else {
    // The label is the outcome, so once it exists it comes first.
    if (s.label) parts.push(labelBlock(s.label, s.selected_option, opts.onCopy));
    if (s.shipping_details) parts.push(details(s.shipping_details));
    if (quotes) parts.push(quotesBlock(quotes, s.selected_option, opts));
    else if (s.shipping_details) {
      parts.push(h('p', { class: 'placeholder' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' Waiting for rates…'));
    }
    if (s.selected_option) parts.push(selectedBlock(s.selected_option));
  }
  withFocus(body, () => replaceChildren(body, parts));
}

// Rebuild a subtree without losing the keyboard focus inside it.
export function withFocus(root, draw) {
  const active = document.activeElement;
  const key = active && root.contains(active) ? active.dataset.focusKey : null;
  draw();
  if (key) root.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus({ preventScroll: true });
}

// ---- the feed -----------------------------------------------------------

// One entry of activity.js's feed.
export function feedItem(entry) {
  const data = entry.data;
  let pretty = '';
  if (hasData(data) && typeof data === 'object') {
    try {
      pretty = JSON.stringify(data, null, 2);
    } catch {
      pretty = String(data);
    }
  }
  return h('li', {
    class: `feed-item from-${entry.who.kind} kind-${entry.kind}`,
    'data-testid': 'feed-item',
    'data-seq': entry.seq ?? '',
    'data-kind': entry.kind,
    'data-sender': entry.who.kind,
  },
  h('div', { class: 'feed-meta' },
    // A state change or a presence says who in its sentence; an event names its sender here.
    entry.kind === 'update' ? h('span', { class: `who who-${entry.who.kind}` }, entry.who.label) : null,
    h('time', { datetime: isoTime(entry.timestamp), title: formatFullTime(entry.timestamp) }, formatTime(entry.timestamp))),
  h('p', { class: 'feed-text' }, entry.title),
  entry.detail ? h('p', { class: 'feed-data' }, entry.detail) : null,
  pretty && needsDetails(data, entry.detail || '')
    ? h('details', { class: 'feed-details' }, h('summary', {}, 'All data'), h('pre', {}, pretty))
    : null);
}

// The one-line summary is enough unless it had to leave something out.
function needsDetails(data, summary) {
  const values = Array.isArray(data) ? data : Object.values(data);
  return summary.includes('…') || summary.includes(' more')
    || values.some((v) => v !== null && typeof v === 'object');
}

// ---- presence -----------------------------------------------------------

export function renderPresence(ul, countEl, members, myConnectionId, joinedAt = new Map()) {
  const order = { self: 0, agent: 1, owner: 2, companion: 3, observer: 4, backend: 5, admin: 6 };
  const rows = members.map((m) => ({ m, ...describeMember(m, myConnectionId) }));
  rows.sort((a, b) => (order[a.kind] ?? 9) - (order[b.kind] ?? 9)
    || (joinedAt.get(a.m.connection_id) ?? 0) - (joinedAt.get(b.m.connection_id) ?? 0));
  replaceChildren(ul, rows.map(({ m, kind, name, detail }) => {
    const glyph = { agent: ICONS.mic, backend: ICONS.server, observer: ICONS.eye }[kind] || ICONS.screen;
    const since = joinedAt.get(m.connection_id);
    const meta = [detail, since ? `since ${formatTime(since, { seconds: false })}` : null].filter(Boolean).join(' · ');
    return h('li', {
      class: `member member-${kind}`,
      'data-testid': 'presence-item',
      'data-client': m.client ?? '',
      'data-role': m.role ?? '',
    },
    h('span', { class: 'avatar', 'aria-hidden': 'true' }, icon(glyph, 'icon small')),
    h('span', { class: 'member-main' },
      h('span', { class: 'member-name' }, name, kind === 'self' ? h('span', { class: 'you' }, ' (you)') : null),
      meta ? h('span', { class: 'member-meta' }, meta) : null));
  }));
  if (rows.length === 0) ul.append(h('li', { class: 'placeholder' }, 'Nobody yet.'));
  countEl.textContent = rows.length ? String(rows.length) : '';
}

// ---- tasks ------------------------------------------------------------------

const TASK_STATUS = {
  active: 'In progress',
  completed: 'Completed',
  abandoned: 'Abandoned',
};

// The task card's title and chip, and the other tasks folded below it.
export function renderTasks({ title, chip, earlier }, view) {
  const shown = view.active || view.others[0] || null;
  title.textContent = shown ? taskName(shown) : 'Shipping';
  chip.hidden = !shown;
  if (shown) {
    chip.textContent = TASK_STATUS[shown.status] || shown.status;
    chip.dataset.status = shown.status;
  }
  const rest = view.others.filter((t) => t !== shown);
  earlier.hidden = rest.length === 0;
  replaceChildren(earlier, rest.length
    ? [h('h3', { class: 'block-title' }, rest.length === 1 ? 'Earlier task' : `Earlier tasks (${rest.length})`),
      rest.map((t) => h('details', { class: `earlier-task is-${t.status}`, 'data-testid': 'earlier-task', 'data-status': t.status },
        h('summary', {},
          h('span', { class: 'earlier-name' }, taskName(t)),
          h('span', { class: `chip chip-small`, 'data-status': t.status }, TASK_STATUS[t.status] || t.status)),
        h('dl', { class: 'earlier-facts' },
          h('div', {}, h('dt', {}, 'Started'), h('dd', {}, formatFullTime(t.started_at) || '—')),
          h('div', {}, h('dt', {}, t.status === 'abandoned' ? 'Abandoned' : 'Finished'), h('dd', {}, formatFullTime(t.ended_at) || '—')))))]
    : []);
}

// ---- the terminal message --------------------------------------------------

const TERMINAL = {
  no_token: {
    icon: ICONS.link,
    title: 'Open this page from a session link',
    text: () => {
      const origin = globalThis.location?.origin || '';
      const sid = new URLSearchParams(globalThis.location?.search || '').get('session_id');
      return [
        h('span', {}, sid
          ? 'This address names a session but carries no access token: the page takes the token out of the address bar so a copied or bookmarked address never hands out your access. To get back in:'
          : 'This screen follows a live session with a voice agent, so it needs a link that carries an access token. To get one:'),
        h('ul', { class: 'howto' },
          h('li', {}, 'ask the session’s owner, or the app that sent you here, for a fresh link, or'),
          h('li', {}, 'scan the QR code under “Add a device” on a screen that is already in the session, or'),
          h('li', {}, 'if you run the hub: open the link ', h('code', {}, 'companion-ws serve'), ' prints (',
            h('code', { 'data-testid': 'link-hint' }, `${origin}/?token=…${sid ? `&session_id=${sid}` : ''}`), ').')),
      ];
    },
  },
  ended: {
    icon: ICONS.ended,
    title: 'This session has ended',
    text: 'The session was closed by its owner or the voice agent, or it expired. What you see below is how it finished; nothing will change here any more.',
  },
  unauthorized: {
    icon: ICONS.lock,
    title: 'Your link has expired or is invalid — ask for a new one',
    text: 'Links stop working when their access token expires. Ask the session’s owner, or the app that sent you here, for a fresh link, or scan a new QR code from a screen that is in the session (“Add a device”). If you run the hub, “companion-ws serve” prints a fresh link and “companion-ws token --sub <you>” mints a token.',
  },
  unauthorized_device: {
    icon: ICONS.lock,
    title: 'Your link has expired or is invalid — ask for a new one',
    text: 'QR codes work once and only for a few minutes. Ask for a new code on a screen that is already in the session (“Add a device” → “New code”) and scan it again.',
  },
  forbidden: {
    icon: ICONS.lock,
    title: 'This session belongs to someone else',
    text: 'Your link is valid, but not for this session. Open the link for your own session, or ask the session’s owner for a QR code.',
  },
  bad_request: {
    icon: ICONS.link,
    title: 'This link is not valid — ask for a new one',
    text: 'The hub could not make sense of the connection request. Open the link exactly as it was printed or shared.',
  },
  message_too_big: {
    icon: ICONS.plug,
    title: 'Disconnected',
    text: 'The hub closed the connection because a message was too large.',
  },
  normal: {
    icon: ICONS.plug,
    title: 'Disconnected',
    text: 'The hub closed the connection.',
  },
};

export function terminalCopy(reason, { device = false } = {}) {
  if (reason === 'unauthorized' && device) return TERMINAL.unauthorized_device;
  return TERMINAL[reason] || TERMINAL.normal;
}

export function renderTerminal(parts, info) {
  const { root, iconEl, title, text, detail, actions } = parts;
  if (!info) {
    root.hidden = true;
    return;
  }
  const copy = terminalCopy(info.reason, info);
  root.hidden = false;
  root.dataset.reason = info.reason;
  replaceChildren(iconEl, icon(copy.icon, 'icon large'));
  title.textContent = copy.title;
  if (typeof copy.text === 'function') replaceChildren(text, copy.text());
  else text.textContent = copy.text;
  detail.hidden = !info.message;
  detail.textContent = info.message ? `The hub said: ${info.message}` : '';
  replaceChildren(actions, (info.actions || []).map((a) => h('button', {
    type: 'button',
    class: `btn ${a.primary ? 'btn-primary' : ''}`,
    onclick: a.onClick,
  }, a.label)));
}
