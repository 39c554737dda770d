"""Resume without loss (issue 3, docs/protocol.md section 4), on the in-process hub: a
client that missed events gets exactly those, in order, then live traffic, with no
duplicate, also while others keep publishing; history the hub cannot serve gets one
``resync_required`` snapshot; every reconnect is authenticated again. (Restarts keep
the epoch: tests/integration/test_resume.py.)"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from tests.support.frames import Frame, eventually, frames_until, is_, say, seqs
from tests.support.hub import token
from tests.support.inproc import InProcessHub, InProcessWS, inprocess_hub
from ui_state import merge_patch


class Publishers:
    """Clients that keep publishing until stopped, each its next update after the
    last one's echo; several at once, so that some land while a replay runs."""

    def __init__(self, sockets: list[InProcessWS], prefix: str) -> None:
        self.sockets = sockets
        self.prefix = prefix
        self.echoes: list[Frame] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def start(cls, hub: InProcessHub, sid: str, prefix: str, count: int = 3) -> Publishers:
        sockets = [await hub.connect(token("alice"), session_id=sid) for _ in range(count)]
        self = cls(sockets, prefix)
        self._tasks = [asyncio.create_task(self._run(ws, i)) for i, ws in enumerate(sockets)]
        return self

    async def _run(self, ws: InProcessWS, who: int) -> None:
        n = 0
        while not self._stop.is_set():
            self.echoes.append(await say(ws, f"{self.prefix}-{who}-{n}"))
            n += 1

    async def stop(self, at_least: int = 0) -> list[str]:
        """Stop once ``at_least`` updates are out; the texts published, in seq order."""
        await eventually(lambda: len(self.echoes) >= at_least)
        self._stop.set()
        await asyncio.gather(*self._tasks)
        for ws in self.sockets:
            await ws.close()
        return [e["text"] for e in sorted(self.echoes, key=lambda e: e["seq"])]


async def session_with_a_gap(
    hub: InProcessHub,
) -> tuple[str, str, int, InProcessWS, InProcessWS, list[Frame]]:
    """Alice's session: ``a`` saw everything up to ``last``, left, then ``b`` published
    20 events. Returns (sid, epoch, last, a, b, the 20 echoes as b saw them)."""
    a = await hub.connect(token("alice"), client="ui")
    sid, epoch = a.welcome["session_id"], a.welcome["epoch"]
    b = await hub.connect(token("alice"), session_id=sid, client="agent")
    joined = await a.recv_until(is_("client_joined", connection_id=b.welcome["connection_id"]))
    last = joined["seq"]
    await a.close()
    await b.recv_until(is_("client_left", connection_id=a.welcome["connection_id"]))
    missed = [await say(b, f"missed-{i}", i=i) for i in range(20)]
    assert [e["seq"] for e in missed] == list(range(last + 2, last + 22))
    return sid, epoch, last, a, b, missed


@pytest.mark.parametrize("busy", [False, True], ids=["quiet", "busy"])
async def test_reconnect_with_last_seq_replays_exactly_the_missed_events(
    shared_inproc: InProcessHub, busy: bool
) -> None:
    sid, epoch, last, _, b, missed = await session_with_a_gap(shared_inproc)
    publishers = None
    if busy:  # others keep publishing through the reconnect and the replay
        publishers = await Publishers.start(shared_inproc, sid, "live")

    a2 = await shared_inproc.connect(token("alice"), session_id=sid, last_seq=last, epoch=epoch)
    assert a2.welcome["session_id"] == sid and a2.welcome["epoch"] == epoch
    assert a2.welcome["resumed"] is True
    *replay, resumed = await frames_until(a2, is_("resumed"))
    live_texts = await publishers.stop(len(publishers.echoes) + 10) if publishers else []
    done = await say(b, "done")
    after = await frames_until(a2, is_("contextual_update", text="done"))

    # every event after last_seq, in order, once; then `resumed` says so
    assert seqs(replay) == list(range(last + 1, resumed["to_seq"] + 1))
    assert len(seqs(replay)) == len(replay)  # nothing else slipped in
    assert resumed["from_seq"] == last and resumed["replayed"] == len(replay)
    # the 20 it missed are exactly the frames the others got
    assert [f for f in replay if f.get("text", "").startswith("missed-")] == missed
    assert replay[0]["type"] == "client_left"  # its own departure, which it never saw
    if not busy:
        assert [f["type"] for f in replay] == ["client_left"] + ["contextual_update"] * 20 + [
            "client_joined"
        ]
        assert replay[-1]["connection_id"] == a2.welcome["connection_id"]
    # then live events, continuing the same sequence, none twice
    assert seqs(after) == list(range(resumed["to_seq"] + 1, done["seq"] + 1))
    everything = replay + after
    assert [f["text"] for f in everything if f.get("text", "").startswith("live-")] == live_texts
    for ws in (a2, b):
        await ws.close()


async def test_the_resume_message_replays_while_others_publish(shared_inproc: InProcessHub) -> None:
    """A client that reconnected without last_seq asks with ``resume``: live frames may
    precede the replay, the replay is exactly the events after last_seq, and after
    ``resumed`` the stream continues from its end."""
    sid, epoch, last, _, b, missed = await session_with_a_gap(shared_inproc)
    publishers = await Publishers.start(shared_inproc, sid, "live")
    a2 = await shared_inproc.connect(token("alice"), session_id=sid)
    start = a2.welcome["seq"]
    await a2.send({"type": "resume", "last_seq": last, "epoch": epoch, "requestId": "r-1"})
    frames = await frames_until(a2, is_("resumed"))
    resumed = frames.pop()
    live_texts = await publishers.stop(len(publishers.echoes) + 10)
    done = await say(b, "done")
    after = await frames_until(a2, is_("contextual_update", text="done"))

    assert resumed["requestId"] == "r-1" and resumed["from_seq"] == last
    count, to_seq = resumed["replayed"], resumed["to_seq"]
    before, replay = frames[: len(frames) - count], frames[len(frames) - count :]
    assert seqs(replay) == list(range(last + 1, to_seq + 1))
    assert [f for f in replay if f.get("text", "").startswith("missed-")] == missed
    # what was live before the replay started is a prefix of what the replay covers
    assert seqs(before) == list(range(start + 1, start + 1 + len(before)))
    assert not before or before[-1]["seq"] <= to_seq
    assert seqs(after) == list(range(to_seq + 1, done["seq"] + 1))
    merged = {f["seq"]: f for f in before + replay + after}
    assert sorted(merged) == list(range(last + 1, done["seq"] + 1))
    texts = [merged[s].get("text", "") for s in sorted(merged)]
    assert [t for t in texts if t.startswith("live-")] == live_texts
    for ws in (a2, b):
        await ws.close()


async def test_resync_when_the_history_cannot_serve_the_resume(shared_db_url: str) -> None:
    """Beyond the window, another epoch, a seq ahead of the session, or no epoch:
    exactly one ``resync_required`` with the state, and the client that applies it ends
    with everyone's state."""
    async with inprocess_hub(shared_db_url, history_size=10) as hub:
        await _resync_when_the_history_cannot_serve_the_resume(hub)


async def _resync_when_the_history_cannot_serve_the_resume(hub: InProcessHub) -> None:
    b = await hub.connect(token("alice"))
    sid, epoch = b.welcome["session_id"], b.welcome["epoch"]
    a = await hub.connect(token("alice"), session_id=sid)
    last = (await a.recv_until(is_("client_joined", connection_id=a.welcome["connection_id"])))[
        "seq"
    ]
    await a.close()
    quiet = await hub.connect(token("alice"))  # another session, with its own window
    quiet_events = [await say(quiet, f"quiet-{i}") for i in range(3)]
    for i in range(30):
        if i % 5 == 0:
            await b.request(
                {"type": "update_session_state", "patch": {"n": i, "seen": {str(i): i}}}
            )
        await say(b, f"gone-{i}")

    async def resyncs(ws: InProcessWS, snapshot: Frame) -> None:
        """``snapshot`` is the hub's truth; then one more change reaches ``ws``, whose
        state (snapshot + patches) must match the others', with no second resync."""
        truth = await b.request({"type": "get_session_state"})
        assert snapshot["type"] == "resync_required"
        assert snapshot["state"] == truth["state"] and snapshot["version"] == truth["version"]
        assert snapshot["seq"] == truth["seq"] and snapshot["epoch"] == epoch
        change = await b.request(
            {"type": "update_session_state", "patch": {"by": ws.welcome.get("connection_id")}}
        )
        frames = await frames_until(ws, lambda f: f.get("seq") == change["seq"])
        assert not [f for f in frames if f["type"] == "resync_required"]
        assert seqs(frames) == list(range(snapshot["seq"] + 1, change["seq"] + 1))
        state = snapshot["state"]
        for f in frames:
            if f["type"] == "session_state_updated":
                state = merge_patch(state, f["patch"])
        assert state == (await b.request({"type": "get_session_state"}))["state"]

    # a busy session never shortens a quiet one's history
    await quiet.send({"type": "resume", "last_seq": 0, "epoch": quiet.welcome["epoch"]})
    *replay, resumed = await frames_until(quiet, is_("resumed"))
    assert seqs(replay) == list(range(1, 5)) and replay[1:] == quiet_events
    await quiet.close()

    # 1. beyond the window (connect parameters)
    a2 = await hub.connect(token("alice"), session_id=sid, last_seq=last, epoch=epoch)
    await resyncs(a2, await a2.recv())
    position = (await b.request({"type": "get_session_state"}))["seq"]
    # 2. another epoch, 3. ahead of the session, 4. without its epoch but too old
    for params in (
        {"last_seq": position, "epoch": "0badc0de"},
        {"last_seq": position + 100, "epoch": epoch},
        {"last_seq": last},
    ):
        ws = await hub.connect(token("alice"), session_id=sid, **params)
        assert ws.welcome["resumed"] is False
        await resyncs(ws, await ws.recv())
        await ws.close()
        await a2.recv_until(is_("client_left", connection_id=ws.welcome["connection_id"]))

    # the same through the `resume` message, on a live connection
    for params in (
        {"last_seq": 1, "epoch": epoch},
        {"last_seq": 10_000, "epoch": epoch},
        {"last_seq": 3, "epoch": "0badc0de"},
    ):
        await a2.send({"type": "resume", "requestId": "again", **params})
        await resyncs(a2, await a2.recv_until(lambda f: f.get("requestId") == "again"))

    # the window's edge, on a quiet session: the last 10 events replay, the 11th does not
    position = (await a2.request({"type": "get_session_state"}))["seq"]
    await a2.send({"type": "resume", "last_seq": position - 10, "epoch": epoch})
    *replay, resumed = await frames_until(a2, is_("resumed"))
    assert seqs(replay) == list(range(position - 9, position + 1)) and resumed["replayed"] == 10
    await a2.send({"type": "resume", "last_seq": position - 11, "epoch": epoch})
    assert (await a2.recv())["type"] == "resync_required"
    await a2.close()
    await b.close()


async def test_every_reconnect_is_authenticated_again(shared_inproc: InProcessHub) -> None:
    owner = await shared_inproc.connect(token("alice"))
    sid, epoch = owner.welcome["session_id"], owner.welcome["epoch"]
    reconnect_token = owner.welcome["reconnect_token"]
    last = (await say(owner, "one"))["seq"]
    await say(owner, "two")

    async def refused(tok: str, code: int, wire: str, **params: Any) -> None:
        ws = await shared_inproc.connect(tok, expect_welcome=False, **params)
        error = await ws.recv()
        assert error["type"] == "error" and error["code"] == wire, error
        assert (await ws.closed())[0] == code

    resume = {"session_id": sid, "last_seq": last, "epoch": epoch}
    await refused(token("alice", ttl=-120), 4401, "unauthorized", **resume)  # expired
    await refused(token("mallory"), 4403, "forbidden", **resume)  # another user's
    await refused(
        token("mallory", session_id=sid, token_type="reconnect"), 4403, "forbidden", **resume
    )
    await refused(
        token("alice", session_id=sid, token_type="reconnect", ttl=-120),
        4401,
        "unauthorized",
        **resume,
    )

    # the welcome's reconnect token resumes this session, and only this one
    back = await shared_inproc.connect(reconnect_token, last_seq=last, epoch=epoch)
    assert back.welcome["session_id"] == sid and back.welcome["resumed"] is True
    *replay, _ = await frames_until(back, is_("resumed"))
    assert [f.get("text") for f in replay][:1] == ["two"]
    other = await shared_inproc.connect(token("alice"))
    await refused(reconnect_token, 4403, "forbidden", session_id=other.welcome["session_id"])

    # a companion that joined with a one-time join token comes back with its reconnect token
    reply = await shared_inproc.http.post(
        f"/sessions/{sid}/join-token", headers={"Authorization": f"Bearer {token('alice')}"}
    )
    assert reply.status_code == 201, reply.text
    join_token = reply.json()["join_token"]
    companion = await shared_inproc.connect(join_token, client="ui")
    assert companion.welcome["session_id"] == sid
    companion_token = companion.welcome["reconnect_token"]
    seen = (await companion.recv_type("client_joined"))["seq"]
    await companion.close()
    await say(owner, "while-the-phone-was-away")
    await refused(join_token, 4401, "unauthorized")  # one connect only
    phone = await shared_inproc.connect(companion_token, session_id=sid, last_seq=seen, epoch=epoch)
    *replay, _ = await frames_until(phone, is_("resumed"))
    assert "while-the-phone-was-away" in [f.get("text") for f in replay]
    await refused(companion_token, 4403, "forbidden", session_id=other.welcome["session_id"])
    for ws in (owner, back, other, phone):
        with contextlib.suppress(Exception):
            await ws.close()
