// floor.ts: the voice floor as one connection knows it (docs/protocol.md section 17).
// Pure: the welcome's `voice_floor` and the `voice_floor` broadcasts in, the holder out.
//
//   let floor = floorFromWelcome(welcome);       // session_joined
//   floor = floorAfter(floor, frame, self);      // a voice_floor broadcast; the same
//                                                // object when nothing changed
//
// `mine` is true when the holder is this connection (`self`, its connection id): a
// screen that holds the floor runs the conversation; the others show where it is.
// companion_ws/client/voice.py is the Python client's copy, name for name.

import type { Frame } from './mirror.js';

export const FLOOR_CONTROLS = Object.freeze(['interrupt', 'mute', 'unmute', 'end'] as const);
export type FloorControl = (typeof FLOOR_CONTROLS)[number];

export interface FloorHolder {
  readonly device_id: string;
  readonly connection_id: string | null;
}

export interface VoiceFloor {
  /** Who holds the voice conversation, or null (the floor is free). */
  readonly holder: FloorHolder | null;
  /** The holder is this connection. */
  readonly mine: boolean;
  /** The seq of the voice_floor event that set it (0: from the welcome). */
  readonly seq: number;
}

export const NO_FLOOR: VoiceFloor = Object.freeze({ holder: null, mine: false, seq: 0 });

function holderOf(v: unknown): FloorHolder | null {
  if (v === null || typeof v !== 'object') return null;
  const h = v as Record<string, unknown>;
  if (typeof h.device_id !== 'string') return null;
  return Object.freeze({
    device_id: h.device_id,
    connection_id: typeof h.connection_id === 'string' ? h.connection_id : null,
  });
}

function made(holder: FloorHolder | null, self: string | null, seq: number): VoiceFloor {
  const mine = holder !== null && self !== null && holder.connection_id === self;
  return Object.freeze({ holder, mine, seq });
}

/** The floor the welcome (session_joined) names; `self` is its connection_id. */
export function floorFromWelcome(welcome: Frame): VoiceFloor {
  const self = typeof welcome.connection_id === 'string' ? welcome.connection_id : null;
  return made(holderOf(welcome.voice_floor), self, 0);
}

/** The floor after a delivered frame: `floor` itself unless it is a voice_floor that
 * changes the holder. `self`: this connection's id. */
export function floorAfter(floor: VoiceFloor, frame: Frame, self: string | null): VoiceFloor {
  if (frame.type !== 'voice_floor') return floor;
  const holder = holderOf(frame);
  const seq = Number.isInteger(frame.seq) ? (frame.seq as number) : floor.seq;
  const next = made(holder, self, seq);
  const same = floor.mine === next.mine && floor.holder?.device_id === holder?.device_id
    && floor.holder?.connection_id === holder?.connection_id;
  return same ? floor : next;
}
