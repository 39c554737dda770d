"""Connect-time authentication (docs/protocol.md sections 1, 6, 8), on the in-process hub:
each refusal is one ``error`` frame then close 4401 (no token in the hub's log:
tests/integration/test_auth.py)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from tests.support.hub import SECRET, token
from tests.support.inproc import InProcessHub


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "alice", "exp": int(time.time()) + 600, **extra}


BAD_TOKENS: dict[str, str | None] = {
    "missing": None,
    "expired": jwt.encode(_claims(exp=int(time.time()) - 30), SECRET, algorithm="HS256"),
    "bad-signature": jwt.encode(_claims(), SECRET + "-not-it", algorithm="HS256"),
    "alg-none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
    "no-sub": jwt.encode({"exp": int(time.time()) + 600}, SECRET, algorithm="HS256"),
    "no-exp": jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"),
    "garbage": "not-a-jwt",
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_a_bad_token_gets_one_error_frame_then_4401(
    shared_inproc: InProcessHub, kind: str
) -> None:
    ws = await shared_inproc.connect(BAD_TOKENS[kind], expect_welcome=False)
    error = await ws.recv()
    assert error["type"] == "error" and error["code"] == "unauthorized", error
    assert error["message"] and isinstance(error["timestamp"], int)
    code, reason = await ws.closed()
    assert code == 4401, (code, reason)


@pytest.mark.parametrize("kind", ["expired", "alg-none", "no-sub"])
async def test_a_bad_bearer_header_is_refused_the_same_way(
    shared_inproc: InProcessHub, kind: str
) -> None:
    bad = BAD_TOKENS[kind]
    ws = await shared_inproc.connect(
        None, headers={"Authorization": f"Bearer {bad}"}, expect_welcome=False
    )
    error = await ws.recv()
    assert error["type"] == "error" and error["code"] == "unauthorized"
    assert (await ws.closed())[0] == 4401


async def test_nothing_but_the_error_frame_precedes_the_close(shared_inproc: InProcessHub) -> None:
    ws = await shared_inproc.connect(BAD_TOKENS["expired"], expect_welcome=False)
    frames = []
    with pytest.raises(ConnectionError):
        while True:
            frames.append(await ws.recv(5))
    assert ws.close_code is not None
    code = ws.close_code[0]
    assert [f["type"] for f in frames] == ["error"]
    assert code == 4401


async def test_a_token_in_the_authorization_header_works(shared_inproc: InProcessHub) -> None:
    ws = await shared_inproc.connect(
        None, headers={"Authorization": f"Bearer {token('bearer-user')}"}
    )
    assert ws.welcome["user_id"] == "bearer-user" and ws.welcome["created"] is True
    pong = await ws.request({"type": "ping"})
    assert pong["type"] == "pong"
    await ws.close()
