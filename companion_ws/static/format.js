// format.js: pure helpers that turn protocol values into words for the page.

import { isPlainObject } from './vendor/companion-client/index.js';

const money = new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD' });
const clock = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' });
const shortClock = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function formatMoney(value) {
  const n = Number(value);
  return Number.isFinite(n) ? money.format(n) : '—';
}

export function formatDays(days) {
  const n = Number(days);
  if (!Number.isFinite(n)) return '';
  return n === 1 ? '1 business day' : `${n} business days`;
}

export function formatWeight(lbs) {
  const n = Number(lbs);
  if (!Number.isFinite(n)) return '—';
  return `${n} lb`;
}

export function formatTime(ms, { seconds = true } = {}) {
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return '';
  return (seconds ? clock : shortClock).format(d);
}

export function formatFullTime(ms) {
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? '' : full.format(d);
}

export function isoTime(ms) {
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

// "in 4 min", "in 30 s", "expired"
export function formatCountdown(untilMs, now = Date.now()) {
  const left = Math.round((untilMs - now) / 1000);
  if (left <= 0) return 'expired';
  if (left < 60) return `in ${left} s`;
  return `in ${Math.ceil(left / 60)} min`;
}

// Accepts seconds, milliseconds or an ISO string; returns milliseconds or NaN.
export function parseTime(value) {
  if (typeof value === 'number') return value < 1e12 ? value * 1000 : value;
  if (typeof value === 'string' && /^\d+$/.test(value)) return parseTime(Number(value));
  return Date.parse(value);
}

function scalar(value, max = 40, depth = 0) {
  if (value === null) return 'null';
  if (typeof value === 'string') return value.length > max ? `${value.slice(0, max - 1)}…` : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.length === 1 ? '1 item' : `${value.length} items`;
  if (isPlainObject(value)) {
    const entries = Object.entries(value);
    if (depth === 0 && entries.length > 0) {
      // One level down, inline: "label: {tracking_number: 1Z…, carrier: FedEx, +2}"
      const shown = entries.slice(0, 3).map(([k, v]) => `${k}: ${scalar(v, 24, depth + 1)}`);
      if (entries.length > 3) shown.push(`+${entries.length - 3}`);
      return `{${shown.join(', ')}}`;
    }
    return entries.length === 1 ? '1 field' : `${entries.length} fields`;
  }
  return String(value);
}

// A one-line summary of any JSON value: "from: 90210 · to: 10001 · quotes: 3 items".
export function summarizeData(data, maxParts = 4) {
  if (data === undefined || data === null) return '';
  if (!isPlainObject(data)) return scalar(data, 80);
  const entries = Object.entries(data);
  if (entries.length === 0) return '';
  const parts = entries.slice(0, maxParts).map(([k, v]) => `${k}: ${scalar(v)}`);
  if (entries.length > maxParts) parts.push(`+${entries.length - maxParts} more`);
  return parts.join(' · ');
}

// An event name such as "quote_ready" reads as "Quote ready"; any other text is
// shown as it is.
export function eventTitle(text) {
  if (text === undefined || text === null || text === '') return '(no text)';
  const raw = String(text);
  if (!/^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$/.test(raw)) return raw;
  const words = raw.replace(/_/g, ' ');
  return words[0].toUpperCase() + words.slice(1);
}

export function hasData(data) {
  if (data === undefined || data === null) return false;
  if (isPlainObject(data)) return Object.keys(data).length > 0;
  if (Array.isArray(data)) return data.length > 0;
  return true;
}

export const STEPS = Object.freeze([
  { id: 'details', label: 'Details' },
  { id: 'quotes', label: 'Quotes' },
  { id: 'selected', label: 'Selected' },
  { id: 'label', label: 'Label' },
]);

// The step the state says, or, if it says none, the furthest one its data reached.
export function currentStep(state) {
  const said = state?.ui?.current_step;
  if (STEPS.some((s) => s.id === said)) return said;
  if (state?.label) return 'label';
  if (state?.selected_option) return 'selected';
  if (Array.isArray(state?.quotes) && state.quotes.length) return 'quotes';
  return 'details';
}

export function sameQuote(a, b) {
  if (!a || !b) return false;
  if (a.quote_id !== undefined && b.quote_id !== undefined) return a.quote_id === b.quote_id;
  return a.carrier === b.carrier && a.service === b.service;
}

export function shortId(id, keep = 8) {
  if (!id) return '';
  return id.length > keep + 1 ? `${id.slice(0, keep)}…` : id;
}

// What an HTTP error answer says ({"error": {"code", "message"}}), or its status.
export async function errorReason(res) {
  try {
    const body = await res.json();
    return body?.error?.message || `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}
