"""companion_ws.hub.outbox.Outbox with a fake ASGI ``send``: order, overflow, grace."""

from __future__ import annotations

import asyncio
from typing import Any

from companion_ws.auth.tokens import Principal
from companion_ws.hub.connection import Connection
from companion_ws.hub.outbox import Outbox
from companion_ws.protocol.closecodes import Close


class FakeSocket:
    """An ASGI ``send`` that records messages and blocks while ``paused``."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.open = asyncio.Event()
        self.open.set()
        self.aborted = 0
        self.overflows = 0

    async def send(self, message: dict[str, Any]) -> None:
        await self.open.wait()
        self.sent.append(message)

    def abort(self) -> None:
        self.aborted += 1

    def overflow(self) -> None:
        self.overflows += 1

    def outbox(self, limit: int = 3, grace: float = 30.0, max_bytes: int = 1 << 20) -> Outbox:
        return Outbox(
            self.send,
            limit=limit,
            max_bytes=max_bytes,
            grace=grace,
            abort=self.abort,
            on_overflow=self.overflow,
        )

    @property
    def texts(self) -> list[str]:
        return [m["text"] for m in self.sent if m["type"] == "websocket.send"]

    @property
    def closes(self) -> list[tuple[int, str]]:
        return [(m["code"], m["reason"]) for m in self.sent if m["type"] == "websocket.close"]


async def test_frames_go_out_in_order_and_the_writer_goes_away() -> None:
    sock = FakeSocket()
    box = sock.outbox(limit=100)
    for i in range(10):
        box.push(str(i))
    # A socket that takes frames at once gets them in the call: no writer Task at all.
    assert sock.texts == [str(i) for i in range(10)] and not box.busy
    await asyncio.wait_for(box.drained(), 5)
    assert len(box) == 0 and box._writer is None  # an idle connection costs no task
    box.push("again")
    await asyncio.wait_for(box.drained(), 5)
    assert sock.texts[-1] == "again"


async def test_overflow_drops_the_queue_and_closes_4409_once_the_client_reads() -> None:
    sock = FakeSocket()
    box = sock.outbox(limit=3)
    sock.open.clear()  # the client stops reading
    box.push("0")
    await asyncio.sleep(0)  # the writer takes "0" and blocks on the socket
    for i in range(1, 5):
        box.push(str(i))  # 1, 2, 3 fit; 4 overflows
    assert sock.overflows == 1 and len(box) == 0
    box.push("late")  # ignored: the connection is closing
    assert len(box) == 0
    sock.open.set()  # the client reads again
    await asyncio.wait_for(box.drained(), 5)
    assert sock.texts == ["0"]
    assert sock.closes == [(Close.TOO_SLOW, "too slow: send queue overflowed")]
    assert box.closed and sock.aborted == 0


async def test_a_client_that_never_reads_is_cut_off_after_the_grace_period() -> None:
    sock = FakeSocket()
    box = sock.outbox(limit=2, grace=0.05)
    sock.open.clear()
    for i in range(4):
        box.push(str(i))
        await asyncio.sleep(0)
    assert sock.overflows == 1
    await asyncio.wait_for(box.drained(), 5)
    assert sock.aborted == 1 and box.closed
    assert sock.sent == []


async def test_close_sends_what_is_queued_first() -> None:
    sock = FakeSocket()
    box = sock.outbox(limit=10)
    box.push("a")
    box.push("b")
    box.close(Close.SESSION_ENDED, "session ended")
    box.close(Close.NORMAL)  # the first close wins
    await asyncio.wait_for(box.drained(), 5)
    assert sock.texts == ["a", "b"]
    assert sock.closes == [(Close.SESSION_ENDED, "session ended")]
    assert sock.aborted == 0


async def test_a_dead_socket_ends_the_writer_quietly() -> None:
    calls = 0

    async def broken(message: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        raise ConnectionResetError

    box = Outbox(broken, limit=10, max_bytes=1 << 20, grace=30, abort=lambda: None)
    for i in range(5):
        box.push(str(i))
    await asyncio.wait_for(box.drained(), 5)
    assert calls == 1 and box.closed and len(box) == 0


async def test_overflow_by_bytes_closes_4409_whatever_the_count() -> None:
    sock = FakeSocket()
    box = sock.outbox(limit=1000, max_bytes=100)
    sock.open.clear()
    box.push("x" * 10)
    await asyncio.sleep(0)  # in flight: no longer queued
    box.push("y" * 60)
    assert sock.overflows == 0
    box.push("z" * 60)  # 120 queued > 100
    assert sock.overflows == 1 and len(box) == 0


async def test_frames_held_back_during_a_replay_count_against_the_same_budget() -> None:
    sock = FakeSocket()
    box = sock.outbox(limit=1000, max_bytes=100)
    conn = Connection("c", "s", Principal(sub="u"), "ui", box)
    conn.hold()
    for seq in range(1, 4):
        assert conn.deliver(seq, "e", "h" * 30)  # 90 held: fits
    assert sock.overflows == 0 and box.held_bytes == 90
    conn.deliver(4, "e", "h" * 30)  # 120 > 100: cut off, and nothing is held any more
    assert sock.overflows == 1 and conn.held == []
    conn.release(0, "e")
    await asyncio.wait_for(box.drained(), 5)
    assert sock.texts == [] and sock.closes[0][0] == Close.TOO_SLOW
