// floor.ts: the voice floor as one connection knows it (docs/protocol.md section 17).
// Pure: the welcome's `voice_floor` and the `voice_floor` broadcasts in, the holder out.
//
//   floor = floorAfter(floor, frame, self);      // every delivered frame (the welcome,
//                                                // a voice_floor, a resync); the same
//                                                // object when nothing changed
//
// It converges to the hub's floor: a voice_floor at or below the floor's `seq` is
// already counted (a replay after a resumed welcome brings the changes the welcome's
// floor includes: applied again, they would show an older holder for a while), and
// every later one is applied in seq order, live or in a page of history (the last
// voice_floor in the log names the holder). tests/fixtures/floor/*.json hold the rule
// for both clients.
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
    const seq = Number.isInteger(welcome.seq) ? welcome.seq : 0;
    return made(holderOf(welcome.voice_floor), self, seq);
}
/** The floor after a delivered frame: `floor` itself unless the frame is a welcome (the
 * floor it names), a history page (its voice_floor events), a resync_required (the seq counts again from the frame's: the holder
 * stays) or a voice_floor after the floor's seq. `self`: this connection's id. */
export function floorAfter(floor, frame, self) {
    if (frame.type === 'session_joined')
        return floorFromWelcome(frame);
    if (frame.type === 'history') {
        // A page of the session's log (get_history): the conversation fold reads it, and so
        // does the floor, so the two never disagree about a voice_floor the page has.
        const events = Array.isArray(frame.events) ? frame.events : [];
        return events.reduce((f, e) => (e?.type === 'voice_floor' ? floorAfter(f, e, self) : f), floor);
    }
    const seq = Number.isInteger(frame.seq) ? frame.seq : null;
    if (frame.type === 'resync_required') {
        return seq === null || seq === floor.seq ? floor : Object.freeze({ ...floor, seq });
    }
    if (frame.type !== 'voice_floor')
        return floor;
    if (seq !== null && seq <= floor.seq)
        return floor; // counted already
    const holder = holderOf(frame);
    const same = floor.holder?.device_id === holder?.device_id
        && floor.holder?.connection_id === holder?.connection_id;
    const next = seq ?? floor.seq;
    if (same)
        return next === floor.seq ? floor : Object.freeze({ ...floor, seq: next });
    return made(holder, self, next);
}
