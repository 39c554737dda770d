// mirror.ts: the session mirror, a port of companion_ws/client/mirror.py, rule for rule
// (both run the fixtures in tests/fixtures/mirror). No DOM, no socket, no timer:
// receive(frame) returns the actions its driver (client.ts) carries out, in order.
//
//   deliver         {action, frame, seq}      hand the frame on (seq: its place in the
//                                             order, null for a direct frame)
//   request_replay  {action, lastSeq, epoch}  send {type: 'resume', last_seq, epoch}
//   fetch_state     {action}                  send {type: 'get_session_state'}
//   resynced        {action, seq, epoch}      a resync_required snapshot replaced it all
//   ready           {action}                  welcomed on this connection, state known
//
// The rules (docs/protocol.md sections 2 and 4): a frame with an integer seq whose type is
// not a direct type is a broadcast. At or below the mirror's seq it is a duplicate,
// dropped; at seq+1 it is applied, delivered and joins the feed; further ahead it is a
// gap: dropped, and one replay asked until `resumed` or `resync_required` ends it. A
// state patch is merged at version+1, ignored when older, and a skip fetches the state
// (again while a newer version than the fetched state has been seen). A welcome is
// fresh unless the connection resumed the same session. resync_required replaces the
// state, seq and epoch.
import { DIRECT_TYPES } from './protocol.js';
import { deepFreeze, isPlainObject, mergePatch } from './merge-patch.js';
export const FEED_LIMIT = 1000;
export const Phase = Object.freeze({
    CONNECTING: 'connecting', // no connection: before the first one, or between drops
    JOINING: 'joining', // a connection is open; its welcome has not come
    REPLAYING: 'replaying', // a replay was asked (on connect, or for a gap): waiting for it
    LIVE: 'live', // welcomed, every broadcast continues the seq
    CLOSED: 'closed', // stopped for good
});
const isInt = (v) => Number.isInteger(v);
/** The frame's place in the session's order, or null for a direct frame. */
export function sequenceOf(frame) {
    return isInt(frame.seq) && !DIRECT_TYPES.has(frame.type) ? frame.seq : null;
}
const deliver = (frame, seq = null) => ({ action: 'deliver', frame, seq });
const FETCH = Object.freeze({ action: 'fetch_state' });
const READY = Object.freeze({ action: 'ready' });
export class SessionMirror {
    phase = Phase.CONNECTING;
    sessionId;
    connectionId = null;
    welcome = {};
    seq = 0;
    epoch = null;
    state = deepFreeze({});
    version = 0;
    /** The state is known to match the hub's at `version`. */
    synced = false;
    /** Welcomes after the first. */
    reconnects = 0;
    /** The broadcasts delivered, oldest first (at most feedLimit). */
    feed = [];
    feedLimit;
    welcomed = false; // ever: later connections resume
    asked = null; // this connection was opened to resume from
    ready = false; // `ready` was said on this connection
    fetching = false; // a get_session_state is on its way
    newestVersion = 0; // the highest version seen in any frame
    constructor(sessionId = null, { feedLimit = FEED_LIMIT } = {}) {
        this.sessionId = sessionId;
        this.feedLimit = feedLimit;
    }
    // ---- the connection ----
    /** A connection is being opened: the position to resume from, or null to join afresh. */
    connecting() {
        this.phase = Phase.JOINING;
        this.ready = false;
        this.asked = this.welcomed && this.epoch !== null ? { lastSeq: this.seq, epoch: this.epoch } : null;
        return this.asked;
    }
    dropped() {
        if (this.phase !== Phase.CLOSED)
            this.phase = Phase.CONNECTING;
        this.ready = false;
        this.fetching = false;
    }
    close() {
        this.phase = Phase.CLOSED;
        this.ready = false;
        this.fetching = false;
    }
    /** The get_session_state asked by fetch_state was refused: the next reason asks again. */
    fetchFailed() {
        this.fetching = false;
    }
    // ---- frames ----
    receive(frame) {
        const seq = sequenceOf(frame);
        if (seq !== null)
            return this.broadcast(frame, seq);
        let follow = [];
        switch (frame.type) {
            case 'session_joined':
                follow = this.joined(frame);
                break;
            case 'session_state':
                follow = this.snapshot(frame);
                break;
            case 'resync_required':
                follow = this.resync(frame);
                break;
            case 'resumed':
                if (this.phase === Phase.REPLAYING)
                    this.phase = Phase.LIVE;
                break;
            default:
                break;
        }
        return [deliver(frame), ...follow];
    }
    broadcast(frame, seq) {
        if (seq <= this.seq)
            return []; // a duplicate: a replay overlapping what was seen
        if (seq > this.seq + 1)
            return this.gap();
        this.seq = seq;
        this.feed.push(frame);
        if (this.feed.length > this.feedLimit)
            this.feed.shift();
        const follow = frame.type === 'session_state_updated' ? this.patch(frame) : [];
        return [deliver(frame, seq), ...follow];
    }
    // Missed broadcasts: drop this one and ask, once, for the ones in between.
    gap() {
        if (this.phase === Phase.REPLAYING)
            return []; // the replay brings it in order
        this.phase = Phase.REPLAYING;
        return [{ action: 'request_replay', lastSeq: this.seq, epoch: this.epoch }];
    }
    patch(frame) {
        const { version, patch } = frame;
        if (!isInt(version))
            return [];
        this.newestVersion = Math.max(this.newestVersion, version);
        if (version === this.version + 1 && isPlainObject(patch)) {
            this.state = deepFreeze(mergePatch(this.state, patch));
            this.version = version;
            return [];
        }
        if (version > this.version)
            return this.fetch(); // a change was missed
        return []; // older: in the state already
    }
    joined(frame) {
        const sid = frame.session_id;
        const fresh = this.asked === null || Boolean(frame.created) || sid !== this.sessionId;
        if (fresh && this.welcomed) {
            // Another session (the old one ended or expired): start over.
            this.state = deepFreeze({});
            this.version = 0;
            this.synced = false;
            this.newestVersion = 0;
            this.feed = [];
        }
        if (typeof sid === 'string')
            this.sessionId = sid;
        this.connectionId = typeof frame.connection_id === 'string' ? frame.connection_id : null;
        this.welcome = frame;
        if (fresh) {
            this.seq = isInt(frame.seq) ? frame.seq : 0;
            this.epoch = typeof frame.epoch === 'string' ? frame.epoch : null;
        }
        if (this.welcomed)
            this.reconnects += 1;
        this.welcomed = true;
        this.phase = fresh ? Phase.LIVE : Phase.REPLAYING;
        const behind = fresh || !this.synced || this.newestVersion > this.version;
        return [...(behind ? this.fetch() : []), ...this.becameReady()];
    }
    snapshot(frame) {
        const { state, version } = frame;
        if (!isPlainObject(state) || !isInt(version))
            return [];
        if (version >= this.version) {
            this.state = deepFreeze(state);
            this.version = version;
        }
        this.newestVersion = Math.max(this.newestVersion, version);
        this.synced = true;
        this.fetching = false;
        const follow = this.newestVersion > this.version ? this.fetch() : [];
        return [...follow, ...this.becameReady()];
    }
    resync(frame) {
        if (isInt(frame.seq))
            this.seq = frame.seq;
        if (typeof frame.epoch === 'string' && frame.epoch)
            this.epoch = frame.epoch;
        if (isPlainObject(frame.state) && isInt(frame.version)) {
            this.state = deepFreeze(frame.state);
            this.version = frame.version;
            this.newestVersion = Math.max(this.newestVersion, frame.version);
            this.synced = true;
        }
        this.phase = Phase.LIVE;
        return [{ action: 'resynced', seq: this.seq, epoch: this.epoch }, ...this.becameReady()];
    }
    fetch() {
        if (this.fetching)
            return [];
        this.fetching = true;
        return [FETCH];
    }
    becameReady() {
        const welcomed = this.phase === Phase.LIVE || this.phase === Phase.REPLAYING;
        if (this.ready || !this.synced || !welcomed)
            return [];
        this.ready = true;
        return [READY];
    }
}
/** An action as the shared fixtures write it: ["deliver", type, seq], ... */
export function describe(action) {
    switch (action.action) {
        case 'deliver':
            return ['deliver', action.frame.type, action.seq];
        case 'request_replay':
            return ['request_replay', action.lastSeq, action.epoch];
        case 'resynced':
            return ['resynced', action.seq, action.epoch];
        default:
            return [action.action];
    }
}
