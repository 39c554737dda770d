"""Every request is answered (docs/protocol.md section 4): with the broker stalled (the
test-only failpoint ``stall_publish``: every publish waits), a request frame is answered
``error`` ``unavailable`` (retryable) within ``COMPANION_REQUEST_TIMEOUT`` and its socket
is closed 1011 (no late answer); an HTTP request is answered 503 ``unavailable``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from companion_ws import failpoints
from tests.support.frames import bearer, new_user
from tests.support.hub import token
from tests.support.inproc import inprocess_hub


@contextlib.contextmanager
def stalled_broker() -> Iterator[None]:
    """Every publish waits 1.5 s meanwhile (armed after the connects: their own
    broadcasts are not requests)."""
    failpoints.arm("stall_publish=1.5")
    try:
        yield
    finally:
        failpoints.arm(None)


async def test_a_stalled_request_frame_is_answered_unavailable_in_time(db_url: str) -> None:
    async with inprocess_hub(db_url, request_timeout=0.3) as hub:
        ws = await hub.connect(token(new_user()))
        with stalled_broker():
            began = time.monotonic()
            await ws.send({"type": "contextual_update", "text": "hi", "requestId": "r1"})
            answer = await ws.recv_until(lambda f: f.get("requestId") == "r1", 1.0)
            assert answer["type"] == "error" and answer["code"] == "unavailable", answer
            assert answer["retryable"] is True
            assert time.monotonic() - began < 1.0  # within the timeout, not after the stall
            assert (await ws.closed(1.0))[0] == 1011  # no late answer follows


async def test_a_stalled_http_request_is_answered_503_in_time(db_url: str) -> None:
    owner = new_user()
    async with inprocess_hub(db_url, request_timeout=0.3) as hub:
        created = await hub.http.post("/sessions", headers=bearer(owner))
        sid = created.json()["session_id"]
        began = time.monotonic()
        with stalled_broker():
            r = await hub.http.post(
                f"/sessions/{sid}/events", json={"text": "x"}, headers=bearer(owner)
            )
            assert time.monotonic() - began < 1.0
            assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable", r.text
            assert r.json()["error"]["retryable"] is True
            assert r.headers["retry-after"] == "1"  # the 503's own header
        # Not stalled, the same door answers as ever.
        r = await hub.http.get(f"/sessions/{sid}/state", headers=bearer(owner))
        assert r.status_code == 200
