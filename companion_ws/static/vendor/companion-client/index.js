// @companion-ws/client: the browser and Node client of a companion_ws hub.
export { CompanionClient } from './client.js';
export { ClientClosed, ClientError, ConnectionLost } from './errors.js';
export { EventStreamOverflow, EVENT_QUEUE_LIMIT } from './stream.js';
export { connect, defaultUrl } from './connect.js';
export { SessionMirror, Phase, FEED_LIMIT, describe, sequenceOf } from './mirror.js';
export { AGENT_STATES, CONVERSATION_TYPES, KEPT_FRAMES, addFrames, conversationFrom, emptyConversation, isTranscript, timeline, } from './conversation.js';
export { FLOOR_CONTROLS, NO_FLOOR, floorAfter, floorFromWelcome } from './floor.js';
export { BEARER_PREFIX, SUBPROTOCOL, handshake, isJoinToken, wsBase } from './address.js';
export { Retry, backoffDelay } from './retry.js';
export { deepFreeze, isPlainObject, mergePatch } from './merge-patch.js';
export { BROADCAST_TYPES, CLOSE_NAMES, DIRECT_TYPES, RECONNECT, shouldReconnect } from './protocol.js';
/** The protocol version this client speaks (docs/protocol.md). */
export const PROTOCOL_VERSION = '1.2';
