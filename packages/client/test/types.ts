// Compile-time checks of the public types (`npm test` runs tsc on this file; nothing
// runs it): the replies are typed from the generated frames.ts, and a misuse fails.
import { ClientError, CompanionClient } from '../dist/index.js';
import type { ServerFrame, ServerFrameOf } from '../dist/index.js';

declare const hub: CompanionClient;

export async function typed(): Promise<number> {
  const echo = await hub.updateState({ step: 'quotes' }, { expectedVersion: hub.version, timeout: 5000 });
  const version: number = echo.version;
  const seq: number = echo.seq;
  // @ts-expect-error the version is a number
  const wrong: string = echo.version;
  const result = await hub.callTool('get_shipping_quotes', 'call-1', { weight: 5 });
  const failed: boolean = result.is_error;
  const said = await hub.contextualUpdate('hello', { n: 1 });
  // @ts-expect-error a token is a string or a function, not a number
  void new CompanionClient('ws://x', { token: 5 });
  hub.on('state', (state, info) => void [state.step, info.reason]);
  // @ts-expect-error no such event
  hub.on('nonsense', () => {});
  const took = await hub.takeVoice();
  const holder: string | null = took.device_id;
  const controlled = await hub.agentControl('interrupt');
  // @ts-expect-error an action is interrupt, mute, unmute or end
  void hub.agentControl('louder');
  hub.on('floor', (floor) => void [floor.holder?.device_id, floor.mine]);
  const mine: boolean = hub.voiceFloor.mine;
  return version + seq + said.seq + Number(failed) + wrong.length + Number(mine) + controlled.seq + (holder ?? '').length;
}

export function narrow(frame: ServerFrame, error: unknown): string {
  if (error instanceof ClientError && error.code === 'version_conflict') return 'conflict';
  if (frame.type === 'transcript') return frame.text;
  const joined: ServerFrameOf<'session_joined'> | null = frame.type === 'session_joined' ? frame : null;
  return joined?.session_id ?? '';
}
