"""A thin test client over the ``websockets`` library: JSON in, JSON out, with timeouts."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import websockets
from websockets.asyncio.client import ClientConnection

from tests.support.frames import FrameSocket


class WS(FrameSocket):
    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.welcome: dict[str, Any] = {}

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.conn.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv(), timeout)
        frame: dict[str, Any] = json.loads(raw)
        return frame

    async def closed(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Wait for the server to close; (code, reason)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.conn.recv()
        except websockets.ConnectionClosed as exc:
            rcvd = exc.rcvd
            return (rcvd.code if rcvd else None), (rcvd.reason if rcvd else "")
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self.conn.close()


async def connect(
    ws_url: str,
    token: str | None,
    *,
    session_id: str | None = None,
    path_session: bool = False,
    expect_welcome: bool = True,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> WS:
    query: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
    if token is not None:
        query["token"] = token
    path = "/ws"
    if session_id is not None:
        if path_session:
            path = f"/ws/{session_id}"
        else:
            query["session_id"] = session_id
    url = f"{ws_url}{path}?{urlencode(query)}" if query else f"{ws_url}{path}"
    conn = await websockets.connect(
        url, additional_headers=headers, max_size=2**22, max_queue=None, open_timeout=10
    )
    ws = WS(conn)
    if expect_welcome:
        ws.welcome = await ws.recv()
        assert ws.welcome["type"] == "session_joined", ws.welcome
    return ws
