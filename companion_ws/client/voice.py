"""The voice floor as one connection knows it (docs/protocol.md section 17), and the
requests that move it: the ``@companion-ws/client`` package's ``floor.ts`` name for
name (``voice_floor``, ``take_voice``, ``release_voice``, ``agent_control``).

``voice_floor`` is ``{"holder": {"device_id", "connection_id"} | None, "mine", "seq"}``:
the holder from the welcome, then from each delivered ``voice_floor`` broadcast after
the floor's ``seq`` (the seq it is as of: the welcome's, or the last ``voice_floor``'s;
one at or below it is counted already); ``mine`` when it is this connection. The rule is
tests/fixtures/floor/*.json, for both clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["FLOOR_CONTROLS", "NO_FLOOR", "VoiceFloorRequests", "floor_after", "floor_from_welcome"]

Frame = dict[str, Any]
FLOOR_CONTROLS = ("interrupt", "mute", "unmute", "end")
NO_FLOOR: Frame = {"holder": None, "mine": False, "seq": 0}


def _holder(value: Any) -> Frame | None:
    if not isinstance(value, dict) or not isinstance(value.get("device_id"), str):
        return None
    connection = value.get("connection_id")
    return {
        "device_id": value["device_id"],
        "connection_id": connection if isinstance(connection, str) else None,
    }


def _made(holder: Frame | None, me: Any, seq: int) -> Frame:
    mine = holder is not None and isinstance(me, str) and holder["connection_id"] == me
    return {"holder": holder, "mine": mine, "seq": seq}


def floor_from_welcome(welcome: Frame) -> Frame:
    """The floor a ``session_joined`` names."""
    seq = welcome.get("seq")
    return _made(
        _holder(welcome.get("voice_floor")),
        welcome.get("connection_id"),
        seq if isinstance(seq, int) else 0,
    )


def floor_after(floor: Frame, frame: Frame, me: str | None) -> Frame:
    """The floor after a delivered frame: ``floor`` itself unless it is a welcome (the
    floor it names), a ``history`` page (its ``voice_floor`` events), a
    ``resync_required`` (the seq counts again from its: the holder stays) or a
    ``voice_floor`` after the floor's ``seq``; ``me``: this connection's id."""
    kind = frame.get("type")
    if kind == "session_joined":
        return floor_from_welcome(frame)
    if kind == "history":  # a page of the log: the floor reads it as the conversation does
        events = frame.get("events")
        for event in events if isinstance(events, list) else []:
            if isinstance(event, dict) and event.get("type") == "voice_floor":
                floor = floor_after(floor, event, me)
        return floor
    raw = frame.get("seq")
    seq = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if kind == "resync_required":
        return floor if seq is None else {**floor, "seq": seq}
    if kind != "voice_floor" or (seq is not None and seq <= floor["seq"]):
        return floor
    return _made(_holder(frame), me, floor["seq"] if seq is None else seq)


class VoiceFloorRequests:
    """The floor's part of :class:`~companion_ws.client.CompanionClient`."""

    _floor: Frame = NO_FLOOR

    if TYPE_CHECKING:

        @property
        def connection_id(self) -> str | None: ...

        async def request(self, frame: Frame, timeout: float = 10.0) -> Frame: ...

    @property
    def voice_floor(self) -> Frame:
        """Who holds the voice, and whether it is this connection (a copy)."""
        return dict(self._floor)

    def _note_floor(self, frame: Frame) -> None:
        self._floor = floor_after(self._floor, frame, self.connection_id)

    async def take_voice(self) -> Frame:
        """Take the floor; the ``voice_floor`` echo naming this connection."""
        return await self.request({"type": "take_voice"})

    async def release_voice(self) -> Frame:
        """Free the floor this connection holds; the ``voice_floor`` echo
        (:class:`ClientError` ``no_voice`` when it does not hold it)."""
        return await self.request({"type": "release_voice"})

    async def agent_control(self, action: str) -> Frame:
        """Interrupt, mute, unmute or end the holder's conversation; the
        ``agent_control`` echo (:class:`ClientError` ``no_voice`` without a holder)."""
        if action not in FLOOR_CONTROLS:
            raise ValueError(f"agent_control(): action is one of {', '.join(FLOOR_CONTROLS)}")
        return await self.request({"type": "agent_control", "action": action})
