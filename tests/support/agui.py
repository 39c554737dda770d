"""A reader of ``GET /sessions/{id}/ag-ui`` (docs/protocol.md section 13), for the AG-UI
tests against either hub: each event parsed from its one ``data:`` line and validated
with the official ``ag_ui.core`` models, the state rebuilt from snapshot and deltas."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
from ag_ui.core import Event
from pydantic import TypeAdapter

_events: TypeAdapter[Any] = TypeAdapter(Event)


@dataclass
class Reader:
    """A client of the stream: each event parsed from its one ``data:`` line and
    validated with the official models; the state rebuilt from snapshot and deltas."""

    lines: AsyncIterator[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    state: Any = None
    last_id: int | None = None
    closed: bool = False

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            data: list[str] = []
            event_id: int | None = None
            async for line in self.lines:
                if line == "":
                    if not data:
                        continue
                    assert len(data) == 1, data  # each event is one data: line
                    event: dict[str, Any] = json.loads(data[0])
                    _events.validate_python(event)
                    self._apply(event)
                    if event_id is not None:
                        self.ids.append(event_id)
                        self.last_id = event_id
                    self.events.append(event)
                    return event
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                if name == "id":
                    event_id = int(value)
                elif name == "data":
                    data.append(value)
                else:
                    raise AssertionError(f"unexpected SSE line {line!r}")
            self.closed = True
            raise EOFError("the stream ended")

    async def until(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            event = await self.next(timeout)
            if predicate(event):
                return event

    def _apply(self, event: dict[str, Any]) -> None:
        if event["type"] == "STATE_SNAPSHOT":
            self.state = event["snapshot"]
        elif event["type"] == "STATE_DELTA":
            self.state = jsonpatch.apply_patch(self.state, event["delta"])


def is_custom(name: str, text: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def match(event: dict[str, Any]) -> bool:
        return (
            event["type"] == "CUSTOM"
            and event["name"] == name
            and (text is None or event["value"].get("text") == text)
        )

    return match
