// presence.ts: who is connected to the session, as the page shows it (docs/protocol.md
// section 6): the `presence` snapshot, then client_joined / client_left, and this
// connection itself.
const s = (v) => (typeof v === 'string' ? v : null);
export function member(c) {
    return Object.freeze({
        connection_id: String(c.connection_id),
        user_id: s(c.user_id),
        client: s(c.client),
        role: s(c.role),
        device_id: s(c.device_id),
    });
}
export class Presence {
    members = new Map();
    list = Object.freeze([]);
    get all() {
        return this.list;
    }
    /** Apply a delivered frame; true when the members changed. `self` is this connection. */
    apply(frame, self) {
        const before = this.list;
        switch (frame.type) {
            case 'client_joined':
                if (typeof frame.connection_id === 'string')
                    this.members.set(frame.connection_id, member(frame));
                break;
            case 'client_left':
                if (frame.connection_id !== self?.connection_id)
                    this.members.delete(String(frame.connection_id));
                break;
            case 'presence': {
                const clients = Array.isArray(frame.clients) ? frame.clients : [];
                this.members = new Map(clients.map((c) => [String(c.connection_id), member(c)]));
                break;
            }
            default:
                return false;
        }
        this.addSelf(self);
        this.list = Object.freeze([...this.members.values()]);
        return !sameMembers(before, this.list);
    }
    /** This connection is in the session (welcomed); true when that changed the members. */
    welcomed(self) {
        const before = this.list;
        this.addSelf(self);
        this.list = Object.freeze([...this.members.values()]);
        return !sameMembers(before, this.list);
    }
    clear() {
        const had = this.list.length > 0;
        this.members.clear();
        this.list = Object.freeze([]);
        return had;
    }
    addSelf(self) {
        if (self && !this.members.has(self.connection_id))
            this.members.set(self.connection_id, self);
    }
}
function sameMembers(a, b) {
    if (a.length !== b.length)
        return false;
    return a.every((m, i) => {
        const n = b[i];
        return m.connection_id === n.connection_id && m.user_id === n.user_id && m.client === n.client
            && m.role === n.role && m.device_id === n.device_id;
    });
}
