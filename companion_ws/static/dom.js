// A tiny element builder. Text always goes in as text, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function testid(id, root = document) {
  return root.querySelector(`[data-testid="${id}"]`);
}

export function show(el, visible) {
  if (el) el.hidden = !visible;
}

export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// Keep `list`'s children in the order of `items`, reusing the node of each key and
// refilling it only when its signature changed. `cache` (a Map) is the caller's.
export function reconcile(list, items, { key, sig, create, fill, cache }) {
  const seen = new Set();
  let prev = null;
  for (const item of items) {
    const k = key(item);
    seen.add(k);
    let entry = cache.get(k);
    if (!entry) {
      entry = { node: create(item), sig: sig(item) };
      cache.set(k, entry);
    } else if (entry.sig !== sig(item)) {
      const node = fill(entry.node, item);
      if (node && node !== entry.node) {
        entry.node.replaceWith(node);
        entry.node = node;
      }
      entry.sig = sig(item);
    }
    const want = prev ? prev.nextSibling : list.firstChild;
    if (want !== entry.node) list.insertBefore(entry.node, want);
    prev = entry.node;
  }
  for (const [k, entry] of cache) {
    if (!seen.has(k)) {
      entry.node.remove();
      cache.delete(k);
    }
  }
}
