// voice-floor.js: the voice floor as one page sees it (docs/protocol.md section 17).
// Pure: no DOM, no socket, no SDK. talk.js feeds it the hub's frames and asks it what
// they mean for this screen.
//
//   const floor = new VoiceFloor();
//   floor.joined(welcome);           // session_joined: this device, its role, the holder
//   const change = floor.changed(f); // voice_floor: {lost, gained, moved: {from, to}}
//   floor.controlFor(f);             // agent_control: the action, when this screen holds it
//
// One device of a session holds the conversation. A screen that can talk (owner,
// companion, admin) offers "Talk here" while another holds it; taking it there ends the
// conversation here (`lost`), and every screen marks where the voice moved.

export const CAN_TALK = Object.freeze(new Set(['owner', 'companion', 'admin']));
export const CONTROLS = Object.freeze(['interrupt', 'mute', 'unmute', 'end']);

export class VoiceFloor {
  constructor() {
    this.device = null; // this screen's device_id
    this.role = null;
    this.holder = null; // {device_id, connection_id} | null
    this.lastSeq = 0;
  }

  joined(frame) {
    if (typeof frame?.device_id === 'string') this.device = frame.device_id;
    if (typeof frame?.role === 'string') this.role = frame.role;
    const held = frame?.voice_floor;
    this.holder = held && typeof held.device_id === 'string' ? { ...held } : null;
  }

  get canTalk() {
    return CAN_TALK.has(this.role);
  }

  get mine() {
    return this.holder !== null && this.holder.device_id === this.device;
  }

  get elsewhere() {
    return this.holder !== null && !this.mine;
  }

  // A voice_floor broadcast: what it changes for this screen. Each seq counts once (a
  // replay may bring one again).
  changed(frame) {
    const none = { lost: false, gained: false, moved: null };
    if (frame?.type !== 'voice_floor') return none;
    if (Number.isInteger(frame.seq)) {
      if (frame.seq <= this.lastSeq) return none;
      this.lastSeq = frame.seq;
    }
    const had = this.mine;
    const previous = this.holder?.device_id ?? null;
    this.holder = typeof frame.device_id === 'string'
      ? { device_id: frame.device_id, connection_id: frame.connection_id } : null;
    const next = this.holder?.device_id ?? null;
    const moved = previous !== null && next !== null && previous !== next
      ? { from: previous, to: next, here: next === this.device } : null;
    return { lost: had && !this.mine, gained: !had && this.mine, moved };
  }

  // An agent_control broadcast: its action when it is for this screen's conversation.
  controlFor(frame) {
    if (frame?.type !== 'agent_control' || !CONTROLS.includes(frame.action)) return null;
    return frame.device_id === this.device ? frame.action : null;
  }
}
