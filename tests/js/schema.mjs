// A small checker of frames against companion_ws/static/protocol.json (no npm
// dependency): a frame's `type` must name a client or a server frame, and the
// properties its schema requires must be there. Enough to keep the fixtures honest.

import { readFileSync } from 'node:fs';

export const protocol = JSON.parse(
  readFileSync(new URL('../../companion_ws/static/protocol.json', import.meta.url), 'utf8'),
);

function schemasOf(union) {
  const out = new Map();
  for (const [type, ref] of Object.entries(protocol.$defs[union].discriminator.mapping)) {
    out.set(type, protocol.$defs[ref.replace('#/$defs/', '')]);
  }
  return out;
}

export const SERVER_FRAMES = schemasOf('ServerFrame');
export const CLIENT_FRAMES = schemasOf('ClientFrame');

// The problems with `frame` as a frame sent by `side` ('server' or 'client'); [] if none.
export function problems(frame, side = 'server') {
  const known = side === 'server' ? SERVER_FRAMES : CLIENT_FRAMES;
  if (frame === null || typeof frame !== 'object') return ['not an object'];
  const schema = known.get(frame.type);
  if (!schema) return [`unknown ${side} frame type ${JSON.stringify(frame.type)}`];
  const missing = (schema.required || []).filter((key) => !(key in frame));
  return missing.map((key) => `${frame.type}: missing required "${key}"`);
}
