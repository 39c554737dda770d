// admin.js: the operator's page at /admin.
//
//   /admin?token=ADMIN_JWT[&session_id=ID]
//
// The token goes to sessionStorage (this tab only) and leaves the address bar at once.
// Everything is read over HTTP with `Authorization: Bearer`:
//   GET /sessions?limit&cursor&active   every 3 s: the table (paged with the cursor)
//   GET /sessions/{id}/state            only for rows whose state_version changed: tasks
//   GET /sessions/{id}/history?after_seq every second for the selected session: the tail
//   GET /admin/stats                    every 2 s: the charts
// Reading the history, rather than opening a WebSocket into the session, keeps the
// operator invisible: no client_joined/client_left in the session's log, no connection
// counted in the charts, and no new session made for an id that has expired.

import {
  WINDOW_MS, compact, drawSpark, increments, levels, peak, rates, spanOf, sparkSvg, sum,
} from './admin-charts.js';
import { ago, describeTasks, isTrouble, summarizeEvent } from './admin-events.js';
import { $, h, replaceChildren, show } from './dom.js';
import { formatFullTime, formatTime, shortId } from './format.js';

const KEY = 'companion.admin';
const PAGE_SIZE = 15;
const TAIL_MAX = 200;
const EVERY = { sessions: 3000, stats: 2000, tail: 1000 };

const page = {
  token: null,
  cursors: [null], // the cursor of each page seen so far; the last is the current page's
  next: null,
  selected: null, // session id
  tail: { sid: null, after: 0, events: [], busy: false },
  tasks: new Map(), // session id -> {version, text}
  samples: [],
  timers: [],
  stopped: false,
};

// -- the token ----------------------------------------------------------------------

function bootstrap() {
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get('token');
  if (fromUrl) saveToken(fromUrl.trim());
  page.selected = params.get('session_id') || null;
  setAddress();
  try {
    return fromUrl || sessionStorage.getItem(KEY) || null;
  } catch {
    return fromUrl || null;
  }
}

function saveToken(token) {
  try {
    if (token) sessionStorage.setItem(KEY, token);
    else sessionStorage.removeItem(KEY);
  } catch {
    /* storage disabled: the page works until it is reloaded */
  }
}

// The address bar says /admin[?session_id=ID] and never holds the token.
function setAddress() {
  const query = page.selected ? `?session_id=${encodeURIComponent(page.selected)}` : '';
  const next = `${location.pathname}${query}`;
  if (next !== `${location.pathname}${location.search}`) history.replaceState(null, '', next);
}

// -- HTTP -----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path) {
  let response;
  try {
    response = await fetch(path, {
      headers: { Authorization: `Bearer ${page.token}`, Accept: 'application/json' },
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'unreachable', 'the hub does not answer');
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON: described by the status below */
  }
  if (!response.ok) {
    const error = body?.error || {};
    throw new ApiError(response.status, error.code || 'http_error',
      error.message || `HTTP ${response.status}`);
  }
  return body;
}

// 401/403 stop the page and ask for a token; anything else is retried by the timers.
function failed(err) {
  if (err.status === 401) {
    refuse(`The hub refused this token: ${err.message}.`);
  } else if (err.status === 403) {
    refuse('This token is valid, but it is not an admin token: it lacks the admin claim.');
  } else {
    setStatus('trouble', err.status === 0 ? 'Hub unreachable, retrying…' : `Error: ${err.message}`);
  }
}

// -- status and the token gate ------------------------------------------------------

function setStatus(status, text) {
  const pill = $('#status');
  pill.dataset.status = status;
  $('#status-text').textContent = text;
}

function refuse(reason) {
  stop();
  saveToken(null);
  page.token = null;
  show($('#console'), false);
  show($('#forget'), false);
  show($('#gate'), true);
  const why = $('#gate-reason');
  why.textContent = reason || '';
  show(why, Boolean(reason));
  setStatus('locked', 'Admin token needed');
  $('#gate-token').focus();
}

function stop() {
  page.stopped = true;
  for (const t of page.timers) clearInterval(t);
  page.timers = [];
}

function start(token) {
  page.token = token;
  page.stopped = false;
  show($('#gate'), false);
  show($('#console'), true);
  show($('#forget'), true);
  setStatus('starting', 'Loading…');
  buildCharts();
  const every = (fn, ms) => {
    fn();
    page.timers.push(setInterval(fn, ms));
  };
  every(loadSessions, EVERY.sessions);
  every(sampleStats, EVERY.stats);
  every(pollTail, EVERY.tail);
  if (page.selected) select(page.selected);
}

// -- the sessions table ---------------------------------------------------------------

let loadingSessions = false;

async function loadSessions() {
  if (loadingSessions || page.stopped) return;
  loadingSessions = true;
  try {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    const cursor = page.cursors[page.cursors.length - 1];
    if (cursor) params.set('cursor', cursor);
    if (!$('#show-ended').checked) params.set('active', 'true');
    const body = await api(`/sessions?${params}`);
    if (page.stopped) return;
    page.next = body.next_cursor;
    renderSessions(body.sessions);
    setStatus('live', 'Live');
    loadTasks(body.sessions);
  } catch (err) {
    failed(err);
  } finally {
    loadingSessions = false;
  }
}

function renderSessions(sessions) {
  const now = Date.now();
  const rows = sessions.map((s) => {
    const selected = s.session_id === page.selected;
    const task = page.tasks.get(s.session_id);
    return h('tr', {
      class: `row${selected ? ' selected' : ''}${s.active ? '' : ' ended'}`,
      dataset: { testid: 'session-row', sessionId: s.session_id },
      'aria-selected': selected ? 'true' : 'false',
      onclick: () => select(s.session_id, s),
    },
    h('td', { class: 'sid' },
      h('button', {
        type: 'button', class: 'link', title: s.session_id,
        'aria-label': `Follow session ${s.session_id}`,
        onclick: (ev) => { ev.stopPropagation(); select(s.session_id, s); },
      }, shortId(s.session_id, 10)),
      s.active ? null : h('span', { class: 'tag' }, 'ended')),
    h('td', { class: 'owner', title: s.owner_id }, s.owner_id),
    h('td', { class: `num${s.connections ? ' live' : ''}` }, String(s.connections)),
    h('td', { class: 'num col-seq' }, String(s.seq)),
    h('td', { class: 'col-activity', title: formatFullTime(s.last_activity_at) },
      ago(s.last_activity_at, now)),
    h('td', { class: 'col-tasks muted', dataset: { testid: 'session-tasks' } },
      task?.text || '—'));
  });
  replaceChildren($('#sessions-body'), rows);
  show($('#sessions-empty'), sessions.length === 0);
  $('#sessions-empty').textContent = page.cursors.length > 1
    ? 'No more sessions on this page.'
    : $('#show-ended').checked ? 'No sessions yet.' : 'No live sessions. Tick "include ended" to see the others.';
  $('#prev').disabled = page.cursors.length <= 1;
  $('#next').disabled = !page.next;
  const pageNo = page.cursors.length;
  $('#sessions-updated').textContent = `page ${pageNo} · updated ${formatTime(now)}`;
}

// The state's tasks, fetched again only when a row's state_version moved.
async function loadTasks(sessions) {
  const stale = sessions.filter((s) => page.tasks.get(s.session_id)?.version !== s.state_version);
  if (stale.length === 0) return;
  await Promise.all(stale.map(async (s) => {
    try {
      const body = await api(`/sessions/${encodeURIComponent(s.session_id)}/state`);
      page.tasks.set(s.session_id, { version: body.version, text: describeTasks(body.state) });
    } catch {
      page.tasks.set(s.session_id, { version: s.state_version, text: null });
    }
  }));
  for (const row of document.querySelectorAll('[data-testid=session-row]')) {
    const task = page.tasks.get(row.dataset.sessionId);
    row.querySelector('.col-tasks').textContent = task?.text || '—';
  }
}

function turnPage(delta) {
  if (delta > 0 && page.next) page.cursors.push(page.next);
  else if (delta < 0 && page.cursors.length > 1) page.cursors.pop();
  loadSessions();
}

// -- the tail of one session ------------------------------------------------------------

function select(sid, row) {
  page.selected = sid;
  setAddress();
  for (const tr of document.querySelectorAll('[data-testid=session-row]')) {
    const on = tr.dataset.sessionId === sid;
    tr.classList.toggle('selected', on);
    tr.setAttribute('aria-selected', on ? 'true' : 'false');
  }
  if (page.tail.sid === sid) return;
  // Start a little before the newest event: the last TAIL_MAX of them, then follow.
  const seq = Number(row?.seq);
  page.tail = { sid, after: Number.isFinite(seq) ? Math.max(0, seq - TAIL_MAX) : null,
    events: [], busy: false };
  const tag = $('#tail-session');
  tag.textContent = shortId(sid, 12);
  tag.title = sid;
  replaceChildren($('#tail-list'));
  $('#tail-empty').textContent = 'No events yet. New ones appear here within a second.';
  show($('#tail-empty'), true);
  show($('#tail-error'), false);
  pollTail();
}

async function pollTail() {
  const tail = page.tail;
  if (!tail.sid || tail.busy || page.stopped) return;
  tail.busy = true;
  const sid = encodeURIComponent(tail.sid);
  try {
    if (tail.after === null) {
      // Selected from the address bar: ask where the session is first.
      const probe = await api(`/sessions/${sid}/history?after_seq=0&limit=1`);
      tail.after = Math.max(0, probe.latest_seq - TAIL_MAX);
    }
    for (let pages = 0; pages < 5; pages += 1) {
      const body = await api(`/sessions/${sid}/history?after_seq=${tail.after}&limit=${TAIL_MAX}`);
      if (page.tail !== tail) return; // another session was selected meanwhile
      addEvents(tail, body.events);
      tail.after = Math.max(tail.after, body.next_after_seq);
      if (!body.has_more) break;
    }
    show($('#tail-error'), false);
  } catch (err) {
    if (page.tail !== tail) return;
    if (err.status === 401 || err.status === 403) failed(err);
    else {
      const box = $('#tail-error');
      box.textContent = err.status === 404
        ? 'This session is no longer in the hub (retention removed it).'
        : `Cannot read this session's events: ${err.message}`;
      show(box, true);
    }
  } finally {
    tail.busy = false;
  }
}

function addEvents(tail, events) {
  const fresh = events.filter((e) => Number(e.seq) > (tail.events[0]?.seq ?? 0));
  if (fresh.length === 0) return;
  const list = $('#tail-list');
  for (const frame of fresh) {
    tail.events.unshift(frame);
    list.prepend(eventRow(frame));
  }
  while (tail.events.length > TAIL_MAX) {
    tail.events.pop();
    list.lastElementChild?.remove();
  }
  show($('#tail-empty'), false);
  $('#tail-count').textContent = `${tail.events.length}${tail.events.length >= TAIL_MAX ? '+' : ''}`;
}

function eventRow(frame) {
  return h('li', {
    class: `event${isTrouble(frame) ? ' trouble' : ''}`,
    dataset: { testid: 'tail-row', seq: String(frame.seq), type: frame.type },
  },
  h('span', { class: 'seq' }, `#${frame.seq}`),
  h('span', { class: 'type' }, frame.type),
  h('time', { class: 'when', datetime: new Date(frame.timestamp || 0).toISOString() },
    formatTime(frame.timestamp)),
  h('span', { class: 'summary' }, summarizeEvent(frame)));
}

// -- the charts ---------------------------------------------------------------------------

const CHARTS = [
  {
    key: 'connections', title: 'Connections', kind: 'level',
    help: 'open WebSockets on this process',
    series: (s) => levels(s, (x) => x.connections),
    big: (pts) => compact(pts.at(-1)?.v ?? 0),
    sub: (pts) => `peak ${compact(peak(pts))}`,
  },
  {
    key: 'events', title: 'Events / s', kind: 'rate',
    help: 'events published, averaged over 10 s',
    series: (s) => rates(s, (x) => x.counters.events),
    big: (pts) => compact(sum(pts.slice(-5)) / Math.max(1, pts.slice(-5).length)),
    sub: (pts, last) => `peak ${compact(peak(pts))}/s · ${compact(last.counters.events)} since start`,
  },
  {
    key: 'tool_calls', title: 'Tool calls', kind: 'count',
    help: 'tool runs since the process started',
    series: (s) => increments(s, (x) => x.counters.tool_calls),
    big: (pts, last) => compact(last.counters.tool_calls),
    sub: (pts, last, during) => {
      const by = last.breakdown?.tool_calls || {};
      const bad = Object.entries(by).filter(([k]) => k !== 'ok').reduce((a, [, v]) => a + v, 0);
      return `+${compact(sum(pts))} in the ${during}${bad ? ` · ${compact(bad)} failed` : ''}`;
    },
  },
  {
    key: 'slow_consumer_closes', title: 'Slow-consumer closes', kind: 'count',
    help: 'closed 4409: send queue full',
    series: (s) => increments(s, (x) => x.counters.slow_consumer_closes),
    big: (pts, last) => compact(last.counters.slow_consumer_closes),
    sub: (pts, last, during) => `+${compact(sum(pts))} in the ${during}`,
    warn: (pts) => sum(pts) > 0,
  },
];

const chartEls = new Map();

function buildCharts() {
  if (chartEls.size) return;
  const cards = CHARTS.map((c) => {
    const svg = sparkSvg();
    const big = h('span', { class: 'big' }, '—');
    const sub = h('span', { class: 'sub muted small' }, 'waiting for samples…');
    chartEls.set(c.key, { svg, big, sub });
    return h('figure', { class: 'chart', dataset: { testid: 'chart', chart: c.key } },
      h('figcaption', {},
        h('span', { class: 'chart-title' }, c.title),
        h('span', { class: 'chart-help muted small' }, c.help)),
      h('div', { class: 'chart-numbers' }, big, sub),
      svg);
  });
  replaceChildren($('#charts'), cards);
}

let sampling = false;

async function sampleStats() {
  if (sampling || page.stopped) return;
  sampling = true;
  try {
    const body = await api('/admin/stats');
    page.samples.push({ t: Date.now(), ...body });
    const cutoff = Date.now() - WINDOW_MS - 10000;
    while (page.samples.length && page.samples[0].t < cutoff) page.samples.shift();
    drawCharts();
  } catch (err) {
    failed(err);
  } finally {
    sampling = false;
  }
}

function drawCharts() {
  const now = Date.now();
  const last = page.samples.at(-1);
  const span = spanOf(page.samples, now);
  const minutes = Math.round(span / 60000);
  const during = minutes === 1 ? 'last minute' : `last ${minutes} minutes`;
  $('#charts-note').textContent = `${during} · sampled every 2 s`;
  for (const c of CHARTS) {
    const { svg, big, sub } = chartEls.get(c.key);
    const points = c.series(page.samples).filter((p) => now - p.t <= span);
    const ready = points.length > 0 || c.kind !== 'rate';
    svg.closest('figure').classList.toggle('warn', Boolean(c.warn?.(points)));
    big.textContent = ready ? c.big(points, last) : '—';
    sub.textContent = ready ? c.sub(points, last, during) : 'waiting for a second sample…';
    drawSpark(svg, points, {
      now, span, bars: c.kind === 'count', label: `${c.title}: ${big.textContent}, ${sub.textContent}`,
    });
  }
}

// -- wiring ---------------------------------------------------------------------------------

function main() {
  $('#gate-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('#gate-token').value.trim();
    if (!token) return;
    $('#gate-token').value = '';
    saveToken(token);
    start(token);
  });
  $('#forget').addEventListener('click', () => refuse(''));
  $('#prev').addEventListener('click', () => turnPage(-1));
  $('#next').addEventListener('click', () => turnPage(1));
  $('#show-ended').addEventListener('change', () => {
    page.cursors = [null];
    loadSessions();
  });
  const token = bootstrap();
  if (token) start(token);
  else refuse('');
  window.admin = page; // for tests and the console: read-only use
}

main();
