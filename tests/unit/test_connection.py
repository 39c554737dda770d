"""A connection's cursor, hold and release rules (hub/connection.py), in-process.

Each broadcast frame is delivered once, in seq order, whatever a replay or a join does
at the same time; a gap starts a hold; a hold's frames count against the send budget.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from companion_ws.auth.tokens import Principal
from companion_ws.hub.connection import Connection
from companion_ws.hub.outbox import Outbox
from companion_ws.protocol.closecodes import Close


class Socket:
    """What the outbox writes: the texts, then the close frame."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.close: tuple[int, str] | None = None
        self.aborted = False

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            self.texts.append(message["text"])
        else:
            self.close = (message["code"], message["reason"])

    def abort(self) -> None:
        self.aborted = True


def connection(
    socket: Socket, *, max_bytes: int = 1 << 20, held: bool = False, epoch: str = "e1"
) -> Connection:
    outbox = Outbox(socket.send, limit=100, max_bytes=max_bytes, grace=1.0, abort=socket.abort)
    conn = Connection(
        id="c1",
        session_id="s1",
        principal=Principal(sub="alice"),
        client="ui",
        outbox=outbox,
        epoch=epoch,
    )
    if not held:
        conn.release(0, epoch)
    return conn


async def settle(conn: Connection) -> None:
    await conn.outbox.drained()
    await asyncio.sleep(0)


async def test_frames_in_order_are_sent_once() -> None:
    socket = Socket()
    conn = connection(socket)
    assert conn.deliver(1, "e1", "a")
    assert conn.deliver(2, "e1", "b")
    assert conn.deliver(2, "e1", "b again")  # already sent: dropped, not a gap
    assert conn.deliver(1, "e1", "a again")
    await settle(conn)
    assert socket.texts == ["a", "b"]
    assert conn.cursor == 2


async def test_a_gap_starts_a_hold_and_the_release_fills_it_in_order() -> None:
    socket = Socket()
    conn = connection(socket)
    conn.deliver(1, "e1", "1")
    assert conn.deliver(4, "e1", "4") is False  # 2 and 3 are missing: the node replays
    assert conn.deliver(3, "e1", "3")  # held, not sent
    await settle(conn)
    assert socket.texts == ["1"]
    # The replay sent 2 and 3 and brought the client to 3: only 4 is left to release.
    conn.send("2")
    conn.send("3")
    conn.release(3, "e1")
    await settle(conn)
    assert socket.texts == ["1", "2", "3", "4"]
    assert conn.cursor == 4 and conn.held is None


async def test_a_join_holds_live_frames_and_releases_only_the_newer_ones() -> None:
    socket = Socket()
    conn = connection(socket, held=True)
    conn.deliver(5, "e1", "5")
    conn.deliver(6, "e1", "6")
    conn.deliver(7, "e2", "other history")
    conn.send("welcome")
    conn.release(5, "e1")  # the welcome's snapshot covered up to 5
    await settle(conn)
    assert socket.texts == ["welcome", "6"]
    assert conn.cursor == 6


async def test_a_new_history_that_goes_on_right_after_the_cursor_is_followed() -> None:
    socket = Socket()
    conn = connection(socket)
    conn.deliver(1, "e1", "1")
    assert conn.deliver(2, "e2", "2")  # re-created history, numbering continues
    assert conn.epoch == "e2"
    await settle(conn)
    assert socket.texts == ["1", "2"]


async def test_a_new_history_that_does_not_go_on_is_a_gap() -> None:
    socket = Socket()
    conn = connection(socket)
    conn.deliver(1, "e1", "1")
    assert conn.deliver(1, "e2", "renumbered") is False
    assert conn.held == [(1, "e2", "renumbered")]


async def test_held_frames_count_against_the_send_budget() -> None:
    socket = Socket()
    conn = connection(socket, max_bytes=10, held=True)
    conn.deliver(1, "e1", "x" * 6)
    assert conn.outbox.held_bytes == 6
    conn.deliver(2, "e1", "y" * 6)  # 12 bytes held: over the budget
    assert conn.held == []  # cut off: nothing held is sent any more
    assert conn.outbox.closing == (Close.TOO_SLOW, "too slow: send queue overflowed")
    await settle(conn)
    assert socket.texts == []
    assert socket.close is not None and socket.close[0] == Close.TOO_SLOW


async def test_a_session_ended_during_a_hold_closes_after_the_release() -> None:
    socket = Socket()
    conn = connection(socket, held=True)
    conn.deliver(1, "e1", "session_ended")
    conn.end_session()
    assert conn.outbox.closing is None  # the held frame must go out first
    conn.release(0, "e1")
    await settle(conn)
    assert socket.texts == ["session_ended"]
    assert socket.close == (Close.SESSION_ENDED, "session ended")


async def test_a_session_ended_without_a_hold_closes_at_once() -> None:
    socket = Socket()
    conn = connection(socket)
    conn.deliver(1, "e1", "session_ended")
    conn.end_session()
    await settle(conn)
    assert socket.texts == ["session_ended"]
    assert socket.close == (Close.SESSION_ENDED, "session ended")


@pytest.mark.parametrize("order", [[1, 2, 3], [3, 1, 2], [2, 3, 1], [3, 2, 1]])
async def test_held_frames_go_out_in_seq_order_whatever_order_they_came(
    order: list[int],
) -> None:
    socket = Socket()
    conn = connection(socket, held=True)
    for seq in order:
        conn.deliver(seq, "e1", str(seq))
    conn.release(0, "e1")
    await settle(conn)
    assert socket.texts == ["1", "2", "3"]
