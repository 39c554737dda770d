// narration.js: what the voice agent is told about its session, in plain words: a port
// of ui_state/summary.py (createSessionContext, describeChange) and of the bridge's
// describe_update (companion_ws/integrations/narrator.py), sentence for sentence. Both
// run the shared fixtures in tests/fixtures/narration. No DOM.

const DATA_MAX = 600;
// How many of the conversation's last messages a summary quotes, and how much of each.
export const LAST_MESSAGES = 4;
const QUOTE_CHARS = 200;

const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// Python's str() of the values a state holds.
function str(value) {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  return String(value);
}

// f"${value:,.2f}"
function money(value) {
  if (!isNumber(value)) return str(value);
  const text = Math.abs(value).toLocaleString('en-US', {
    minimumFractionDigits: 2, maximumFractionDigits: 2,
  });
  return `${value < 0 ? '-' : ''}$${text}`;
}

// f"{value:g}": a number as said aloud, 5.0 -> "5", 2.5 -> "2.5".
function amount(value) {
  if (!isNumber(value)) return str(value);
  return String(Number(value.toPrecision(6)));
}

function quoteName(quote) {
  const carrier = str(quote.carrier ?? '').trim();
  const service = str(quote.service ?? '').trim();
  return [carrier, service].filter(Boolean).join(' ') || str(quote.quote_id ?? 'an option');
}

function describeQuote(quote) {
  let text = `${quoteName(quote)} for ${money(quote.cost)}`;
  const { days } = quote;
  if (Number.isInteger(days)) text += `, ${days} day${days !== 1 ? 's' : ''}`;
  return text;
}

function quotesOf(state) {
  return Array.isArray(state.quotes) ? state.quotes.filter(isObject) : [];
}

function selectedOf(state) {
  const selected = state.selected_option;
  if (isObject(selected)) return selected;
  if (typeof selected === 'string') {
    return quotesOf(state).find((q) => q.quote_id === selected) || { quote_id: selected };
  }
  return null;
}

// What a restored session's agent is told first: it carries on a task.
function continued(state) {
  const tasks = state?.tasks;
  if (!Array.isArray(tasks) || !tasks.length) return null;
  const task = tasks[tasks.length - 1];
  if (!isObject(task) || task.status !== 'active' || !task.restored_from) return null;
  const name = task.name ? str(task.name) : 'task';
  return `This session continues an unfinished ${name} task from an earlier session; `
    + 'do not start over, carry on from what was already done.';
}

// The last messages with text, quoted for the agent.
function exchanges(messages, last) {
  const said = (messages || []).filter((m) => typeof m?.text === 'string' && m.text.trim());
  const quoted = (last > 0 ? said.slice(-last) : []).map((m) => {
    let text = m.text.split(/\s+/).filter(Boolean).join(' ');
    if (text.length > QUOTE_CHARS) text = `${text.slice(0, QUOTE_CHARS - 1).trimEnd()}…`;
    return `${m.role === 'agent' ? 'you' : 'the user'} said "${text}"`;
  });
  return quoted.length ? quoted.join('; ') : null;
}

// The session's task so far, in a few sentences an agent can act on; with the
// conversation's messages ({role, text}), quote the last of them.
export function createSessionContext(state, messages = [], last = LAST_MESSAGES) {
  const sentences = [];
  const carried = continued(state);
  const details = state?.shipping_details;
  if (isObject(details)) {
    sentences.push(`Shipping details: a ${amount(details.weight_lbs ?? '?')} lb package from `
      + `${str(details.from ?? '?')} to ${str(details.to ?? '?')}.`);
  }
  const quotes = quotesOf(state || {});
  if (quotes.length) {
    sentences.push(`Quotes offered (${quotes.length}): ${quotes.map(describeQuote).join('; ')}.`);
  }
  const selected = selectedOf(state || {});
  if (selected) sentences.push(`The user selected ${describeQuote(selected)}.`);
  const label = state?.label;
  if (isObject(label) && label.tracking_number) {
    sentences.push(`A label was created: ${quoteName(label)}, tracking number `
      + `${str(label.tracking_number)}.`);
  }
  const ui = state?.ui;
  if (isObject(ui) && ui.current_step) {
    sentences.push(`The screen is at the '${str(ui.current_step)}' step.`);
  }
  const quoted = exchanges(messages, last);
  const said = quoted ? ` The conversation so far ended with: ${quoted}.` : '';
  if (carried !== null) {
    return `${carried} Already done: ${sentences.join(' ') || 'Nothing had been decided yet.'}${said}`;
  }
  if (!sentences.length && !said) return 'The session has just started: nothing has been decided yet.';
  return `Resuming the session. ${sentences.join(' ')}`.trimEnd() + said;
}

// One sentence about a state patch made on a screen (state: after the patch), or null
// when it changes nothing the agent needs to know (a scroll position, say).
export function describeChange(patch, state, actor = 'the user') {
  const parts = [];
  if ('selected_option' in patch) {
    const selected = selectedOf(state);
    parts.push(selected ? `${actor} selected ${describeQuote(selected)}`
      : `${actor} cleared the selected shipping option`);
  }
  if ('shipping_details' in patch && isObject(state.shipping_details)) {
    const d = state.shipping_details;
    parts.push(`${actor} set the shipping details to a ${amount(d.weight_lbs ?? '?')} lb package `
      + `from ${str(d.from ?? '?')} to ${str(d.to ?? '?')}`);
  }
  const other = Object.keys(patch)
    .filter((k) => !['selected_option', 'shipping_details', 'ui'].includes(k)).sort();
  if (other.length) parts.push(`${actor} changed ${other.join(', ')}`);
  if (!parts.length) return null;
  return `On screen, ${parts.join('; ')}.`;
}

// A contextual_update from a screen or a backend, in words for the agent.
export function describeUpdate(frame) {
  const sender = str(frame.sender ?? '');
  const source = sender.startsWith('backend') ? 'the backend' : 'the screen';
  let words = `Update from ${source}: ${str(frame.text)}`;
  const { data } = frame;
  const empty = data === null || data === undefined || data === ''
    || (Array.isArray(data) && !data.length) || (isObject(data) && !Object.keys(data).length);
  if (!empty) {
    const text = JSON.stringify(data);
    words += ` (${text.length <= DATA_MAX ? text : `${text.slice(0, DATA_MAX)}...`})`;
  }
  return words;
}
