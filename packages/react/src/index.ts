// @companion-ws/react: a provider and hooks over @companion-ws/client.
//
//   const client = new CompanionClient(url, { token });
//   <CompanionProvider client={client}> ... </CompanionProvider>
//   const step = useSessionState((s) => s.ui?.current_step);
//
// Every hook reads its slice with useSyncExternalStore, subscribed to the one client
// event that can change it; the client's models are immutable (a new object only when
// something changed), so a hook re-renders only when its slice does.

import { createContext, createElement, useContext, useEffect, useMemo, useRef, useSyncExternalStore } from 'react';
import type { ReactNode } from 'react';

import type {
  AgentControlFrame, AgentState, CompanionClient, Conversation, EventName, FloorControl, FloorHolder, JsonObject,
  Member, Progress, RequestOptions, Status, VoiceFloorFrame,
} from '@companion-ws/client';

const ClientContext = createContext<CompanionClient | null>(null);

export interface CompanionProviderProps {
  client: CompanionClient;
  /** Call client.start() on mount (default true); the provider never closes a client it was given. */
  autoStart?: boolean;
  children?: ReactNode;
}

/** Puts a CompanionClient in reach of the hooks below it. */
export function CompanionProvider({ client, autoStart = true, children }: CompanionProviderProps): ReactNode {
  useEffect(() => {
    if (autoStart) client.start().catch(() => {}); // the status says why; hooks show it
  }, [client, autoStart]);
  return createElement(ClientContext.Provider, { value: client }, children);
}

/** The client of the nearest CompanionProvider. */
export function useCompanionClient(): CompanionClient {
  const client = useContext(ClientContext);
  if (client === null) throw new Error('a companion hook is used outside <CompanionProvider>');
  return client;
}

/** A snapshot of `read(client)` that changes only when `events` say so and the value
 * differs by `isEqual`. */
function useSlice<T>(events: EventName[], read: (c: CompanionClient) => T, isEqual: (a: T, b: T) => boolean = Object.is): T {
  const client = useCompanionClient();
  const cache = useRef<{ client: CompanionClient; value: T } | null>(null);
  const readRef = useRef(read);
  readRef.current = read;
  const snapshot = (): T => {
    const next = readRef.current(client);
    const held = cache.current;
    if (held && held.client === client && isEqual(held.value, next)) return held.value;
    cache.current = { client, value: next };
    return next;
  };
  const subscribe = (notify: () => void): (() => void) => {
    const offs = events.map((e) => client.on(e, notify as never));
    return () => { for (const off of offs) off(); };
  };
  return useSyncExternalStore(useStable(client, events, subscribe), snapshot, snapshot);
}

// One subscribe function per client (a new one each render would resubscribe each render).
function useStable<F>(client: CompanionClient, events: EventName[], make: F): F {
  const held = useRef<{ client: CompanionClient; key: string; fn: F } | null>(null);
  const key = events.join();
  if (!held.current || held.current.client !== client || held.current.key !== key) {
    held.current = { client, key, fn: make };
  }
  return held.current.fn;
}

export interface CompanionSession {
  status: Status;
  sessionId: string | null;
  connectionId: string | null;
  role: string | null;
  deviceId: string | null;
  seq: number;
  version: number;
  synced: boolean;
}

function sameFields<T extends object>(a: T, b: T): boolean {
  return (Object.keys(a) as (keyof T)[]).every((k) => Object.is(a[k], b[k]));
}

/** The connection and the session's position: status, sessionId, role, seq... */
export function useCompanionSession(): CompanionSession {
  return useSlice(['status', 'frame', 'state'], (c) => ({
    status: c.status,
    sessionId: c.sessionId,
    connectionId: c.connectionId,
    role: c.role,
    deviceId: c.deviceId,
    seq: c.seq,
    version: c.version,
    synced: c.synced,
  }), sameFields);
}

/** The session state, or `selector(state)`: re-renders only when the selection changes
 * (by `isEqual`, default Object.is; the state is immutable, so an untouched branch keeps
 * its identity). */
export function useSessionState(): Readonly<JsonObject>;
export function useSessionState<T>(selector: (state: Readonly<JsonObject>) => T, isEqual?: (a: T, b: T) => boolean): T;
export function useSessionState<T>(
  selector?: (state: Readonly<JsonObject>) => T, isEqual?: (a: T, b: T) => boolean,
): T | Readonly<JsonObject> {
  return useSlice<T | Readonly<JsonObject>>(
    ['state'],
    (c) => (selector ? selector(c.state) : c.state),
    isEqual as ((a: T | Readonly<JsonObject>, b: T | Readonly<JsonObject>) => boolean) | undefined,
  );
}

/** The conversation: messages, agentState, progress (steps and tool runs). */
export function useConversation(): Conversation {
  return useSlice(['conversation'], (c) => c.conversation);
}

/** The voice agent's latest state (idle, listening, thinking, speaking), or null. */
export function useAgentState(): AgentState | null {
  return useSlice(['conversation'], (c) => c.conversation.agentState);
}

/** Who is connected to the session. */
export function usePresence(): readonly Member[] {
  return useSlice(['presence'], (c) => c.presence);
}

const sameRuns = (a: readonly Progress[], b: readonly Progress[]): boolean =>
  a.length === b.length && a.every((p, i) => p === b[i]);

/** The tool runs of the conversation (running, done, failed), by first appearance. */
export function useToolRuns(): readonly Progress[] {
  return useSlice(['conversation'], (c) => c.conversation.progress.filter((p) => p.kind === 'tool'), sameRuns);
}

export interface VoiceFloorSlice {
  /** Who holds the voice conversation (docs/protocol.md section 17), or null. */
  holder: FloorHolder | null;
  /** The holder is this client's connection. */
  isMine: boolean;
  /** Take the floor; the voice_floor echo. */
  take: (options?: RequestOptions) => Promise<VoiceFloorFrame>;
  /** Free the floor this connection holds (ClientError `no_voice` otherwise). */
  release: (options?: RequestOptions) => Promise<VoiceFloorFrame>;
  /** Interrupt, mute, unmute or end the holder's conversation; the agent_control echo. */
  control: (action: FloorControl, options?: RequestOptions) => Promise<AgentControlFrame>;
}

/** The voice floor: who holds the voice, whether it is this screen, and the requests
 * that move it. Re-renders only when the holder, or whether it is this connection, changes. */
export function useVoiceFloor(): VoiceFloorSlice {
  const client = useCompanionClient();
  const floor = useSlice(['floor'], (c) => c.voiceFloor);
  const actions = useMemo(() => ({
    take: (options?: RequestOptions) => client.takeVoice(options),
    release: (options?: RequestOptions) => client.releaseVoice(options),
    control: (action: FloorControl, options?: RequestOptions) => client.agentControl(action, options),
  }), [client]);
  return useMemo(() => ({ holder: floor.holder, isMine: floor.mine, ...actions }), [floor, actions]);
}
