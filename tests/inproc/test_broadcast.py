"""Broadcast (docs/protocol.md sections 2-4): per-session isolation, the sender included,
``requestId`` echoes, presence in ``seq`` order, ``end_session``, and one gap-free
``seq`` order that every client sees under concurrent publishers, on the in-process hub."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.support.hub import token
from tests.support.inproc import InProcessHub, InProcessWS


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def _drain_until_pong(ws: InProcessWS, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every frame the client has been sent before a fresh ping's pong (the pong included)."""
    rid = f"drain-{uuid.uuid4().hex[:6]}"
    await ws.send({"type": "ping", "requestId": rid})
    frames = []
    while True:
        frame = await ws.recv(timeout)
        frames.append(frame)
        if frame.get("requestId") == rid:
            return frames


def _assert_server_frame(frame: dict[str, Any], sid: str) -> None:
    assert frame["session_id"] == sid, frame
    assert isinstance(frame["type"], str) and isinstance(frame["timestamp"], int), frame


async def test_sessions_are_isolated_and_the_sender_gets_its_own_update(
    shared_inproc: InProcessHub,
) -> None:
    sessions: list[tuple[str, list[InProcessWS]]] = []
    for _ in range(4):
        user = _user()
        first = await shared_inproc.connect(token(user))
        sid = first.welcome["session_id"]
        rest = [await shared_inproc.connect(token(user), session_id=sid) for _ in range(2)]
        sessions.append((sid, [first, *rest]))

    async def talk(sid: str, clients: list[InProcessWS]) -> None:
        for i, ws in enumerate(clients):
            await ws.send(
                {
                    "type": "contextual_update",
                    "text": "quote_ready",
                    "data": {"session": sid, "i": i},
                    "requestId": f"{sid}-{i}",
                }
            )

    await asyncio.gather(*(talk(sid, clients) for sid, clients in sessions))

    async def three_updates(ws: InProcessWS) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        while sum(f["type"] == "contextual_update" for f in frames) < 3:
            frames.append(await ws.recv())
        return frames

    received = {id(ws): await three_updates(ws) for _, clients in sessions for ws in clients}
    # Every publish has now been delivered: a frame leaked across sessions would be
    # queued before the pong.
    for sid, clients in sessions:
        for ws in clients:
            frames = received[id(ws)] + await _drain_until_pong(ws)
            for frame in frames:
                _assert_server_frame(frame, sid)
            updates = [f for f in frames if f["type"] == "contextual_update"]
            # Every client, the sender included, got its own session's three, and no other.
            assert sorted(u["data"]["i"] for u in updates) == [0, 1, 2]
            assert {u["data"]["session"] for u in updates} == {sid}
            for u in updates:
                assert u["requestId"] == f"{sid}-{u['data']['i']}"
                assert u["sender"] == clients[u["data"]["i"]].welcome["connection_id"]
                assert isinstance(u["seq"], int)
    for _, clients in sessions:
        for ws in clients:
            await ws.close()


async def test_request_ids_are_echoed_on_broadcasts_replies_and_errors(
    shared_inproc: InProcessHub,
) -> None:
    user = _user()
    a = await shared_inproc.connect(token(user))
    sid = a.welcome["session_id"]
    b = await shared_inproc.connect(token(user), session_id=sid)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": "ping"}, "pong"),
        ({"type": "get_session_state"}, "session_state"),
        ({"type": "get_presence"}, "presence"),
        ({"type": "get_history", "after_seq": 0}, "history"),
        ({"type": "update_session_state", "key": "k", "value": 1}, "session_state_updated"),
        ({"type": "contextual_update", "text": "t", "data": None}, "contextual_update"),
        ({"type": "update_session_state", "patch": {"k": 2}, "expected_version": 0}, "error"),
        ({"type": "teleport"}, "error"),
    ]
    for frame, kind in cases:
        reply = await a.request(frame)
        assert reply["type"] == kind, (frame, reply)
        _assert_server_frame(reply, sid)
    # B sees the broadcasts with A's requestId too (the seeds' correlation id).
    seen = [f for f in await _drain_until_pong(b) if f["type"] != "pong"]
    broadcast = [f for f in seen if f["type"] in ("session_state_updated", "contextual_update")]
    assert len(broadcast) == 2 and all(f["requestId"].startswith("r") for f in broadcast)
    assert all("requestId" not in f for f in seen if f["type"] == "client_joined")
    await a.close()
    await b.close()


async def test_presence_events_are_in_seq_order_and_get_presence_lists_clients(
    shared_inproc: InProcessHub,
) -> None:
    user = _user()
    a = await shared_inproc.connect(token(user), client="ui")
    sid = a.welcome["session_id"]
    joined_a = await a.recv_type("client_joined")
    b = await shared_inproc.connect(token(user), session_id=sid, client="agent")
    joined_b = await a.recv_type("client_joined")
    assert joined_b["seq"] == joined_a["seq"] + 1 == b.welcome["seq"] + 1
    assert joined_b["connection_id"] == b.welcome["connection_id"]
    assert joined_b["user_id"] == user and joined_b["client"] == "agent"

    reply = await b.request({"type": "get_presence"})
    clients = sorted(reply["clients"], key=lambda c: c["client"])
    assert clients == [
        {
            "connection_id": b.welcome["connection_id"],
            "user_id": user,
            "client": "agent",
            "role": "agent",
            "device_id": b.welcome["device_id"],
        },
        {
            "connection_id": a.welcome["connection_id"],
            "user_id": user,
            "client": "ui",
            "role": "owner",
            "device_id": a.welcome["device_id"],
        },
    ]

    await b.send({"type": "contextual_update", "text": "bye", "data": None})
    await b.close()
    update = await a.recv_type("contextual_update")
    left = await a.recv_type("client_left")
    assert left["seq"] == update["seq"] + 1
    assert left["connection_id"] == b.welcome["connection_id"] and left["client"] == "agent"
    reply = await a.request({"type": "get_presence"})
    assert [c["connection_id"] for c in reply["clients"]] == [a.welcome["connection_id"]]
    await a.close()


async def test_end_session_by_the_owner_ends_it_for_everyone(shared_inproc: InProcessHub) -> None:
    user = _user()
    a = await shared_inproc.connect(token(user))
    sid = a.welcome["session_id"]
    b = await shared_inproc.connect(token(user), session_id=sid)
    root = await shared_inproc.connect(token("root", admin=True), session_id=sid)
    await a.send({"type": "end_session", "requestId": "bye"})
    for ws in (a, b, root):
        ended = await ws.recv_type("session_ended")
        _assert_server_frame(ended, sid)
        assert isinstance(ended["seq"], int) and ended["reason"] == "ended"
        assert ended["requestId"] == "bye"  # caused by a's end_session
        code, _ = await ws.closed()
        assert code == 4410
    info = await shared_inproc.http.get(
        f"/sessions/{sid}", headers={"Authorization": f"Bearer {token(user)}"}
    )
    assert info.json()["active"] is False and info.json()["end_reason"] == "ended"


async def test_an_admin_may_end_a_session_and_a_stranger_may_not(
    shared_inproc: InProcessHub,
) -> None:
    """A stranger can never be a member of the session (joining is refused with 4403),
    so the non-owner path of ``end_session`` is the REST one: 403, the session lives on."""
    user = _user()
    a = await shared_inproc.connect(token(user))
    sid = a.welcome["session_id"]
    refused = await shared_inproc.http.delete(
        f"/sessions/{sid}", headers={"Authorization": f"Bearer {token(_user())}"}
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    pong = await a.request({"type": "ping"})
    assert pong["type"] == "pong"
    root = await shared_inproc.connect(token("root", admin=True), session_id=sid)
    await root.send({"type": "end_session"})
    assert (await a.recv_type("session_ended"))["reason"] == "ended"
    assert (await a.closed())[0] == 4410
    assert (await root.closed())[0] == 4410


async def test_concurrent_publishers_give_every_client_one_gap_free_seq_order(
    shared_inproc: InProcessHub,
) -> None:
    clients_n, per_client = 5, 200
    user = _user()
    first = await shared_inproc.connect(token(user))
    sid = first.welcome["session_id"]
    clients = [first] + [
        await shared_inproc.connect(token(user), session_id=sid) for _ in range(clients_n - 1)
    ]
    last_join = clients[-1].welcome["seq"] + 1  # the seq of the last client_joined

    async def run(index: int, ws: InProcessWS) -> list[dict[str, Any]]:
        async def publish() -> None:
            for n in range(per_client):
                await ws.send(
                    {"type": "contextual_update", "text": "tick", "data": {"c": index, "n": n}}
                )

        async def read() -> list[dict[str, Any]]:
            seen: list[dict[str, Any]] = []
            mine = 0
            while mine < clients_n * per_client:
                frame = await ws.recv(20)
                seen.append(frame)
                mine += frame["type"] == "contextual_update"
            return seen

        _, seen = await asyncio.gather(publish(), read())
        frames: list[dict[str, Any]] = seen
        return frames

    streams = await asyncio.gather(*(run(i, ws) for i, ws in enumerate(clients)))
    views = []
    for ws, frames in zip(clients, streams, strict=True):
        seqs = [f["seq"] for f in frames]
        # Gap-free from the client's own join on, no duplicate.
        assert seqs == list(range(ws.welcome["seq"] + 1, ws.welcome["seq"] + 1 + len(seqs)))
        views.append(
            [
                (f["seq"], f["data"]["c"], f["data"]["n"])
                for f in frames
                if f["seq"] > last_join and f["type"] == "contextual_update"
            ]
        )
    expected = views[0]
    assert [seq for seq, _, _ in expected] == list(
        range(last_join + 1, last_join + 1 + clients_n * per_client)
    )
    for view in views[1:]:
        assert view == expected  # the same order for every client
    for c in range(clients_n):
        assert [n for _, who, n in expected if who == c] == list(range(per_client))
    for ws in clients:
        await ws.close()
