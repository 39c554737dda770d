// @companion-ws/client: the browser and Node client of a companion_ws hub.
export { CompanionClient } from './client.js';
export type {
  ClientOptions, EventName, Listeners, StateInfo, Status, StatusDetail, WebSocketConstructor, WebSocketLike,
} from './client.js';
export { ClientClosed, ClientError, ConnectionLost } from './errors.js';
export { EventStreamOverflow, EVENT_QUEUE_LIMIT } from './stream.js';
export type { WaitOptions } from './stream.js';
export type { RequestOptions } from './pending.js';
export { connect, defaultUrl } from './connect.js';
export type { ConnectOptions, Controller } from './connect.js';
export { SessionMirror, Phase, FEED_LIMIT, describe, sequenceOf } from './mirror.js';
export type { Action, Frame, Position } from './mirror.js';
export {
  AGENT_STATES, CONVERSATION_TYPES, KEPT_FRAMES, addFrames, conversationFrom, emptyConversation, isTranscript,
  timeline,
} from './conversation.js';
export type { AgentState, AgentStateName, Conversation, Message, Progress, VoiceMove } from './conversation.js';
export type { Member } from './presence.js';
export { FLOOR_CONTROLS, NO_FLOOR, floorAfter, floorFromWelcome } from './floor.js';
export type { FloorControl, FloorHolder, VoiceFloor } from './floor.js';
export { BEARER_PREFIX, SUBPROTOCOL, handshake, isJoinToken, wsBase } from './address.js';
export type { TokenSource } from './address.js';
export { Retry, backoffDelay } from './retry.js';
export { deepFreeze, isPlainObject, mergePatch } from './merge-patch.js';
export type { Json, JsonObject } from './merge-patch.js';
export type * from './frames.js';
export { BROADCAST_TYPES, CLOSE_NAMES, DIRECT_TYPES, RECONNECT, shouldReconnect } from './protocol.js';
export type { BroadcastType, DirectType } from './protocol.js';

/** The protocol version this client speaks (docs/protocol.md). */
export const PROTOCOL_VERSION = '1.2';
