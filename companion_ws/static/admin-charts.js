// admin-charts.js: series from sampled totals, and a tiny SVG sparkline to draw them.
// No library: a polyline (levels, rates) or bars (counts per sample) in a viewBox that
// stretches to its box. Text never goes in as HTML.

const SVG = 'http://www.w3.org/2000/svg';

export const WINDOW_MS = 5 * 60 * 1000;
const W = 300; // viewBox units; the SVG stretches to its container
const H = 64;
const PAD = 3;

// [{t, v}] from samples [{t, ...}]: the value as it is (a gauge).
export function levels(samples, pick) {
  return samples.map((s) => ({ t: s.t, v: pick(s) }));
}

// How much a counter grew between consecutive samples. A counter that went down
// means the process restarted: its new total is what it counted since.
export function increments(samples, pick) {
  const out = [];
  for (let i = 1; i < samples.length; i += 1) {
    const before = pick(samples[i - 1]);
    const now = pick(samples[i]);
    out.push({ t: samples[i].t, v: now >= before ? now - before : now, dt: samples[i].t - samples[i - 1].t });
  }
  return out;
}

// Per second, from the increments.
export function rates(samples, pick) {
  return increments(samples, pick)
    .filter((p) => p.dt > 0)
    .map((p) => ({ t: p.t, v: (p.v * 1000) / p.dt }));
}

export function sum(points) {
  return points.reduce((acc, p) => acc + p.v, 0);
}

export function peak(points) {
  return points.reduce((acc, p) => Math.max(acc, p.v), 0);
}

// "0", "0.4", "12", "1.2k"
export function compact(n) {
  if (!Number.isFinite(n)) return '—';
  if (n >= 10000) return `${(n / 1000).toFixed(n >= 100000 ? 0 : 1)}k`;
  if (n >= 10 || Number.isInteger(n)) return String(Math.round(n));
  return n.toFixed(1);
}

function el(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function x(t, now, span) {
  return W - ((now - t) / span) * W;
}

function y(v, top) {
  return H - PAD - (v / top) * (H - 2 * PAD);
}

// How much time the x axis spans: the samples so far, at least a minute, at most the
// window (so a fresh page draws across the chart rather than in its last pixels).
export function spanOf(samples, now = Date.now()) {
  const oldest = samples.length ? samples[0].t : now;
  return Math.min(WINDOW_MS, Math.max(60 * 1000, now - oldest));
}

// The drawing of `points` over the `span` ms before `now`, as the children of an <svg>
// (a line and the area under it, or one bar per sample).
export function drawSpark(svg, points, {
  now = Date.now(), span = WINDOW_MS, bars = false, label = '',
} = {}) {
  const shown = points.filter((p) => now - p.t <= span);
  const top = Math.max(1, peak(shown)) * 1.1;
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.dataset.points = String(shown.length);
  svg.append(el('line', { class: 'spark-base', x1: 0, x2: W, y1: H - PAD, y2: H - PAD }));
  if (bars) {
    const width = Math.max(1.5, Math.min(6, ((W * 2000) / span) * 0.6));
    for (const p of shown) {
      if (p.v <= 0) continue;
      const left = Math.max(0, x(p.t, now, span) - width);
      svg.append(el('rect', {
        class: 'spark-bar', x: left.toFixed(1), y: y(p.v, top).toFixed(1), width: width.toFixed(1),
        height: (H - PAD - y(p.v, top)).toFixed(1),
      }));
    }
    return svg;
  }
  if (shown.length === 0) return svg;
  const coords = shown.map((p) => `${x(p.t, now, span).toFixed(1)},${y(p.v, top).toFixed(1)}`);
  const first = x(shown[0].t, now, span).toFixed(1);
  const last = x(shown[shown.length - 1].t, now, span).toFixed(1);
  svg.append(el('path', { class: 'spark-area', d: `M${first},${H - PAD}L${coords.join('L')}L${last},${H - PAD}Z` }));
  svg.append(el('path', {
    class: 'spark-line', d: `M${coords.join('L')}`, 'vector-effect': 'non-scaling-stroke',
  }));
  return svg;
}

export function sparkSvg() {
  return el('svg', { class: 'spark', focusable: 'false' });
}
