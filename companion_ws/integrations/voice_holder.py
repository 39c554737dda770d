"""The Python bridge as a holder of the voice floor (docs/protocol.md section 17).

A server-side agent (``companion-ws agent``, the demo's agent) holds the session's voice
conversation as a page does: it takes the floor once connected, so a page that held it
ends its own. When a screen takes the floor ("Talk here" on the phone) or sends
``agent_control`` ``end``, the bridge ends its conversation and leaves (its outcome
``voice_moved`` or ``ended_from_screen``); the page's conversation carries on with the
context. An ``interrupt`` stops what the agent is saying (the bridge's audio interface
drops its output, as on the platform's own interruption; the screens get
``agent_state`` ``listening``) and the agent is told why. The bridge has no microphone
(its audio interface sends silence), so ``mute`` and ``unmute`` change nothing it sends.

    outcome = await run_holding(bridge)     # instead of ``await bridge.run()``

It follows the bridge from outside (its own view of the hub's frames), so the bridge
itself needs no change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from companion_ws.integrations.elevenlabs import AgentBridge

__all__ = ["INTERRUPTED", "follow_floor", "run_holding"]

log = logging.getLogger("companion_ws.bridge")

INTERRUPTED = "The user interrupted you from a screen: stop, and wait for what they say next."
_POLL = 0.05  # s, while the bridge connects


async def run_holding(bridge: AgentBridge) -> str:
    """``bridge.run()``, holding the voice floor while it talks; its outcome."""
    running = asyncio.ensure_future(bridge.run())
    following = asyncio.ensure_future(follow_floor(bridge))
    try:
        return await running
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await following


async def follow_floor(bridge: AgentBridge) -> None:
    """Take the floor once the bridge is connected, then apply what the screens do."""
    # The bridge makes its hub client inside run() and says nothing when it connects.
    while bridge.hub is None or not bridge.hub.connected:  # noqa: ASYNC110
        await asyncio.sleep(_POLL)
    hub = bridge.hub
    events = hub.events()
    device = hub.welcome.get("device_id")
    await hub.send({"type": "take_voice"})
    async for frame in events:
        if frame.get("type") == "voice_floor" and frame.get("device_id") != device:
            if frame.get("previous_device_id") == device:
                _leave(bridge, "voice_moved")
                return
        elif frame.get("type") == "agent_control" and frame.get("device_id") == device:
            action = frame.get("action")
            if action == "end":
                _leave(bridge, "ended_from_screen")
                return
            if action == "interrupt":
                await _interrupt(bridge)


def _leave(bridge: AgentBridge, outcome: str) -> None:
    log.info("bridge: %s: the conversation ends here", outcome)
    bridge.stop()
    bridge.outcome = outcome


async def _interrupt(bridge: AgentBridge) -> None:
    hub = bridge.hub
    assert hub is not None
    for frame in bridge.frames.interrupted():
        await hub.send(frame)
    if bridge.audio is not None:
        await bridge.audio.interrupt()
    conversation: Any = bridge.conversation
    if conversation is not None:
        with contextlib.suppress(Exception):  # it may be ending meanwhile
            await conversation.send_contextual_update(INTERRUPTED)
