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
export const FLOOR_CONTROLS = Object.freeze(['interrupt', 'mute', 'unmute', 'end']);
export const NO_FLOOR = Object.freeze({ holder: null, mine: false, seq: 0 });
function holderOf(v) {
    if (v === null || typeof v !== 'object')
        return null;
    const h = v;
    if (typeof h.device_id !== 'string')
        return null;
    return Object.freeze({
        device_id: h.device_id,
        connection_id: typeof h.connection_id === 'string' ? h.connection_id : null,
    });
}
function made(holder, self, seq) {
    const mine = holder !== null && self !== null && holder.connection_id === self;
    return Object.freeze({ holder, mine, seq });
}
/** The floor the welcome (session_joined) names; `self` is its connection_id. */
export function floorFromWelcome(welcome) {
    const self = typeof welcome.connection_id === 'string' ? welcome.connection_id : null;
    return made(holderOf(welcome.voice_floor), self, 0);
}
/** The floor after a delivered frame: `floor` itself unless it is a voice_floor that
 * changes the holder. `self`: this connection's id. */
export function floorAfter(floor, frame, self) {
    if (frame.type !== 'voice_floor')
        return floor;
    const holder = holderOf(frame);
    const seq = Number.isInteger(frame.seq) ? frame.seq : floor.seq;
    const next = made(holder, self, seq);
    const same = floor.mine === next.mine && floor.holder?.device_id === holder?.device_id
        && floor.holder?.connection_id === holder?.connection_id;
    return same ? floor : next;
}
